//! Running OCI hooks: the state JSON on stdin, the hook's own env, a timeout.

use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Keep at most this much of a hook's output for the error message.
const OUTPUT_LIMIT: usize = 4096;

/// Runs each hook in order; the first failure stops the list.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state)
            .map_err(|e| Error::msg(format!("{kind} hook #{i} ({}): {}", h.path().display(), e)))?;
    }
    Ok(())
}

/// Runs every hook, logging failures as warnings (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            log::warn!("{kind} hook #{i} ({}): {e}", h.path().display());
        }
    }
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn run_one(h: &Hook, state: &str) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let wr2 = wr.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2));
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    // The write ends now live only in the child: EOF comes when it exits.
    drop(cmd);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin may exit first: EPIPE is not its failure.
        let _ = stdin.write_all(state.as_bytes());
    }
    let pidfd = pidfd_open(child.id()).map_err(|e| format!("pidfd_open: {e}"))?;
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut out = Vec::new();
    let mut rd = std::fs::File::from(rd);
    let mut rd_open = true;
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if rd_open {
            fds.push(PollFd::new(rd.as_fd(), PollFlags::POLLIN));
        }
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
                }
                PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let exited = fds[0].any().unwrap_or(false);
        let readable = rd_open && fds.get(1).and_then(|f| f.any()).unwrap_or(false);
        if readable {
            let mut buf = [0u8; 4096];
            match rd.read(&mut buf) {
                Ok(0) | Err(_) => rd_open = false,
                Ok(n) => {
                    if out.len() < OUTPUT_LIMIT {
                        out.extend_from_slice(&buf[..n.min(OUTPUT_LIMIT - out.len())]);
                    }
                }
            }
        }
        if exited {
            break;
        }
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out);
    let text = text.trim().replace('\n', " ");
    let why = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    if text.is_empty() {
        Err(why)
    } else {
        Err(format!("{why}: {text}"))
    }
}
