//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//!
//! Hand-written rather than env_logger because containerd and conmon parse the
//! exact runc line shape: JSON objects with lowercase `level`, `msg` and `time`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Output format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `time="..." level=info msg="..."` like logrus' text formatter.
    Text,
    /// One JSON object per line.
    Json,
}

struct Logger {
    sink: Mutex<Option<File>>,
    format: Format,
}

/// Installs the process-wide logger. Without a log file, warnings and errors go
/// to stderr as text; with one, every record at or above the level goes there.
pub fn init(path: Option<&str>, format: Format, debug: bool) -> std::io::Result<bool> {
    let sink = match path {
        Some(p) if !p.is_empty() => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .mode(0o644)
                .open(p)?,
        ),
        _ => None,
    };
    let has_file = sink.is_some();
    let level = if debug {
        LevelFilter::Debug
    } else if has_file {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    };
    let logger = Box::new(Logger {
        sink: Mutex::new(sink),
        format,
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    Ok(has_file)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let msg = r.args().to_string();
        let line = match self.format {
            Format::Json => {
                let v = serde_json::json!({"level": level, "msg": msg, "time": now_rfc3339()});
                format!("{v}\n")
            }
            Format::Text => format!(
                "time=\"{}\" level={} msg={}\n",
                now_rfc3339(),
                level,
                serde_json::Value::String(msg)
            ),
        };
        let mut guard = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            // One write per line so concurrent writers (O_APPEND) never interleave.
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}
