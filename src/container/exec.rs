//! `exec`: runs a new process in a created, running (or, with
//! `--ignore-paused`, paused) container, as runc does: the process is the
//! `--process` JSON or the container's own `process` with the command and
//! the flags applied. Detached it returns once the process runs; in the
//! foreground it forwards signals, relays a terminal, and exits with the
//! process's status. Every failure of exec itself is reported as
//! `exec failed: ...` and exits 255 (see `main`).

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};

use super::create::write_pid_file;
use super::foreground;
use crate::cli::ExecArgs;
use crate::error::{Context, Error, Result};
use crate::process::exec as join;
use crate::process::finish;
use crate::state::{self, StateDir, Status};

/// `exec`; returns the exit code for the runtime (0 when detached).
pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    exec_inner(root, a).map_err(|e| Error::msg(format!("exec failed: {e}")))
}

fn exec_inner(root: &Path, a: &ExecArgs) -> Result<i32> {
    // Before anything opens an fd that could take a passed one's number.
    let listen_fds = finish::listen_fds();
    finish::check_passed_fds(listen_fds + a.preserve_fds)?;
    // Held until the process is placed: a concurrent delete waits, so the
    // process is never placed in a container being torn down.
    let sd = StateDir::open(root, &a.id)?;
    let rec = sd.load()?;
    match state::status(&sd.path, &rec) {
        Status::Stopped => return Err(Error::msg("cannot exec in a stopped container")),
        Status::Paused if !a.ignore_paused => {
            return Err(Error::msg(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ))
        }
        _ => {}
    }
    let bundle = crate::spec::load_bundle(&rec.bundle)?;
    let process = build_process(a, &bundle.spec)?;
    // The container's filter confines exec'd processes too. Whether it must
    // load before the user switch depends on this process's no_new_privs and
    // capabilities, so it is compiled for a spec holding this process.
    let mut spec = bundle.spec.clone();
    spec.set_process(Some(process.clone()));
    let mut seccomp = crate::security::seccomp::prepare(&spec, &bundle.unmodelled)?;
    if let Some(f) = seccomp.as_mut() {
        f.connect_listener()?;
    }
    let state = state::state_json(&rec, Status::Running, None);
    let terminal = process.terminal().unwrap_or(false);
    crate::console::check_flags(terminal, a.detach, a.console_socket.as_deref())?;
    let cgroup_paths = crate::cgroups::subpath::resolve(&rec.cgroup_paths, &a.cgroup)?;
    let (console, relay) = match (&a.console_socket, terminal) {
        (Some(path), _) => (Some(crate::console::connect_socket(path)?), None),
        (None, true) => {
            let (ours, theirs) = crate::console::pair()?;
            (Some(theirs), Some(ours))
        }
        (None, false) => (None, None),
    };
    if !a.detach {
        // Before the process exists, so that none of its signals is lost.
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
            .ctx(|| "block signals")?;
    }
    let state_fd = sd.dir.as_raw_fd();
    let args = join::ExecArgs {
        id: &a.id,
        init_pid: rec.pid,
        init_start_time: rec.start_time,
        process: &process,
        cgroup_paths: &cgroup_paths,
        console: console.as_ref().map(|c| c.as_raw_fd()),
        preserve_fds: a.preserve_fds,
        listen_fds,
        close_in_child: &[state_fd],
        seccomp: seccomp.as_ref(),
        state: &state,
    };
    // Unlocked (explicitly: the child may still hold a copy of the fd) once
    // the process is in the cgroups, where a delete will find it; a paused
    // container's `resume` must not wait for us.
    let pid = join::spawn(&args, move || drop(sd.dir.unlock()))?;
    drop(console);
    let started = match &relay {
        Some(rx) => crate::console::recv_master(rx.as_fd()).map(Some),
        None => Ok(None),
    }
    .and_then(|m| match &a.pid_file {
        Some(p) => write_pid_file(p, pid).map(|()| m),
        None => Ok(m),
    });
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            return Err(e);
        }
    };
    if a.detach {
        return Ok(0);
    }
    Ok(foreground::wait(pid, master))
}

/// The process to run: `--process` or the container's own process with the
/// command, then the flags applied on top (runc applies them only without
/// `--process`; here none is ever ignored).
fn build_process(a: &ExecArgs, spec: &Spec) -> Result<Process> {
    let mut p = match &a.process {
        Some(path) => {
            if !a.command.is_empty() {
                return Err(Error::msg("give either --process or a command, not both"));
            }
            load_process(path)?
        }
        None => {
            if a.command.is_empty() {
                return Err(Error::msg("exec args cannot be empty"));
            }
            let mut p = spec
                .process()
                .clone()
                .ok_or_else(|| Error::msg("the container's config.json has no process"))?;
            p.set_args(Some(a.command.clone()));
            // As runc: the container's terminal setting is not inherited.
            p.set_terminal(Some(false));
            p
        }
    };
    if a.tty {
        p.set_terminal(Some(true));
    }
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        finish::merge_env(&mut env, &a.env);
        p.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !a.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend_from_slice(&a.additional_gids);
        p.user_mut().set_additional_gids(Some(gids));
    }
    if !a.cap.is_empty() {
        let add = a
            .cap
            .iter()
            .map(|c| parse_cap(c))
            .collect::<Result<Vec<_>>>()?;
        p.set_capabilities(Some(add_caps(p.capabilities().clone(), &add)));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = a.apparmor.as_deref().filter(|s| !s.is_empty()) {
        p.set_apparmor_profile(Some(l.to_string()));
    }
    if let Some(l) = a.process_label.as_deref().filter(|s| !s.is_empty()) {
        p.set_selinux_label(Some(l.to_string()));
    }
    crate::spec::validate_process(&p).map_err(|e| match (e, &a.process) {
        (Error::Config { path, msg, .. }, Some(f)) => Error::Config {
            file: f.display().to_string(),
            path,
            msg,
        },
        (Error::Config { path, msg, .. }, None) => Error::msg(format!("{path}: {msg}")),
        (e, _) => e,
    })?;
    crate::security::lsm::check_process(&p)?;
    Ok(p)
}

/// Reads a `--process` file: one OCI `process` object.
fn load_process(path: &Path) -> Result<Process> {
    let fname = path.display().to_string();
    let data = std::fs::read(path).ctx(|| format!("--process {fname}"))?;
    let mut de = serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let p = e.path().to_string();
        Error::Config {
            file: fname,
            path: if p == "." { "$".into() } else { p },
            msg: e.inner().to_string(),
        }
    })
}

/// `UID[:GID]`, numeric as runc takes them.
fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let num = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| Error::msg(format!("--user {u}: {what} {s:?} is not a number")))
    };
    Ok((num(uid, "uid")?, gid.map(|g| num(g, "gid")).transpose()?))
}

/// A capability name as `CAP_SYS_ADMIN` or `sys_admin`.
fn parse_cap(name: &str) -> Result<Capability> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| Error::msg(format!("--cap: unknown capability {name:?}")))
}

/// `--cap` adds to the bounding, effective and permitted sets, and to the
/// ambient set when there is an inheritable one (ambient needs inheritable).
fn add_caps(caps: Option<LinuxCapabilities>, add: &[Capability]) -> LinuxCapabilities {
    let mut c = caps.unwrap_or_else(|| {
        // No section means no capabilities (oci-spec's Default has some).
        let mut c = LinuxCapabilities::default();
        c.set_bounding(None);
        c.set_effective(None);
        c.set_inheritable(None);
        c.set_permitted(None);
        c.set_ambient(None);
        c
    });
    let plus = |set: &Option<HashSet<Capability>>| {
        let mut s = set.clone().unwrap_or_default();
        s.extend(add.iter().copied());
        Some(s)
    };
    let (b, e, p) = (plus(c.bounding()), plus(c.effective()), plus(c.permitted()));
    c.set_bounding(b);
    c.set_effective(e);
    c.set_permitted(p);
    if c.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
        let amb = plus(c.ambient());
        c.set_ambient(amb);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_caps() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
        assert_eq!(parse_cap("sys_admin").unwrap(), Capability::SysAdmin);
        assert_eq!(parse_cap("CAP_KILL").unwrap(), Capability::Kill);
        assert!(parse_cap("CAP_NOPE").is_err());
        let c = add_caps(None, &[Capability::Kill]);
        assert!(c.bounding().as_ref().unwrap().contains(&Capability::Kill));
        assert_eq!(c.effective().as_ref().unwrap().len(), 1);
        assert!(c.ambient().as_ref().is_none_or(|a| a.is_empty()));
    }
}
