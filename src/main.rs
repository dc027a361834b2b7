//! The `mydocker` binary: parse, dispatch, print one error line, exit code.

use clap::Parser;

use std::path::Path;

use mydocker::cli::{Cli, Command, ListFormat, LogFormat, DEFAULT_ROOT};
use mydocker::container::{self, CreateRequest};
use mydocker::error::Result;
use mydocker::logging;

fn main() {
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    let to_file = match logging::init(cli.log.as_deref(), format, cli.debug) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "mydocker: open log file {}: {e}",
                cli.log.as_deref().unwrap_or("")
            );
            std::process::exit(1);
        }
    };
    if cli.systemd_cgroup {
        mydocker::cgroups::systemd::enable();
    }
    match dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if to_file {
                log::error!("{e}");
            }
            eprintln!("mydocker: {e}");
            // exec's own failures exit 255 like runc's, apart from any
            // exit code of the process it runs.
            let code = if matches!(cli.command, Command::Exec(_)) {
                255
            } else {
                1
            };
            std::process::exit(code);
        }
    }
}

fn dispatch(cli: &Cli) -> Result<i32> {
    let root = cli.root.as_path();
    // CVE-2019-5736: commands that start container processes run from a
    // copy of the binary the container cannot write to.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        mydocker::security::exeseal::ensure()?;
    }
    match &cli.command {
        Command::Create(a) => {
            container::create(&CreateRequest {
                root,
                id: &a.id,
                opts: &a.opts,
            })?;
            Ok(0)
        }
        Command::Start(a) => container::start(root, &a.id).map(|()| 0),
        Command::State(a) => {
            let v = container::state(root, &a.id)?;
            // One write(2) for the whole document.
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            let _ = std::io::Write::write_all(&mut std::io::stdout(), s.as_bytes());
            Ok(0)
        }
        Command::Kill(a) => container::kill(root, &a.id, &a.signal, a.all).map(|()| 0),
        Command::Delete(a) => container::delete(root, &a.id, a.force).map(|()| 0),
        Command::Run(a) => container::run(
            &CreateRequest {
                root,
                id: &a.id,
                opts: &a.opts,
            },
            &container::RunFlags {
                detach: a.detach,
                keep: a.keep,
                no_subreaper: a.no_subreaper,
            },
        ),
        Command::List(a) => {
            let all = container::list(root, root != Path::new(DEFAULT_ROOT))?;
            print!(
                "{}",
                if a.quiet {
                    container::listing::quiet(&all)
                } else if a.format == ListFormat::Json {
                    container::listing::json(&all)
                } else {
                    container::listing::table(&all)
                }
            );
            Ok(0)
        }
        Command::Features => {
            let v = mydocker::features::to_json(&mydocker::features::features()?)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(0)
        }
        Command::Exec(a) => container::exec(root, a),
        Command::Pause(a) => container::pause(root, &a.id).map(|()| 0),
        Command::Resume(a) => container::resume(root, &a.id).map(|()| 0),
        Command::Ps(a) => {
            let json = a.format == ListFormat::Json;
            print!("{}", container::ps(root, &a.id, json, &a.ps_args)?);
            Ok(0)
        }
        Command::Update(a) => container::update(root, a).map(|()| 0),
        Command::Events(a) => {
            container::events(root, &a.id, &a.interval, a.stats, &mut std::io::stdout()).map(|()| 0)
        }
        Command::Spec(a) => {
            let rootless = cli.rootless.as_deref().is_some_and(|r| r != "false");
            mydocker::spec_template::write(&a.bundle, rootless)?;
            Ok(0)
        }
    }
}
