//! The last steps every container process takes, shared by the container
//! init (`init`) and processes joined to a running container (`exec`):
//! privilege drop, program resolution and execve.
//!
//! Both callers run these in the spec's order: umask, rlimits (callers place
//! them: `exec` must set them before it enters a user namespace), then
//! no_new_privs → bounding set → LSM labels → fds close-on-exec → an early
//! seccomp filter → user and groups → capability sets → cwd (entered before
//! an early filter when root can); then program → late seccomp filter →
//! execve.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use oci_spec::runtime::Process;

use crate::error::{Context, Error, Result};
use crate::rootfs::safepath::chdir_in_root;
use crate::security::procfs::Procfs;
use crate::security::seccomp::Filter;
use crate::security::{caps::CapSets, lsm, user};

/// A seccomp filter to load, with the container state and pid that a
/// `listenerPath` receives along with the notify fd.
pub type Seccomp<'a> = (&'a Filter, &'a serde_json::Value, i32);

/// What the final execve takes.
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Sets `process.user.umask` (0022 when absent, as runc does).
pub fn set_umask(process: &Process) {
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask & 0o777));
}

/// no_new_privs, bounding set, LSM labels, an early seccomp filter, user and
/// groups, then the other capability sets (`caps`, from the process's, as
/// the caller decided to grant them) and the working directory: the order in
/// which each step still has the privilege it needs. Every fd from
/// 3 + `keep_fds` is marked close-on-exec before the filter loads (it may
/// forbid close_range later). `proc` (the trusted procfs handle, opened while
/// /proc was the runtime's) is closed after the user switch.
pub fn drop_privileges(
    process: &Process,
    caps: CapSets,
    proc: Procfs,
    keep_fds: u32,
    seccomp: Option<Seccomp>,
) -> Result<()> {
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "noNewPrivileges");
        }
    }
    caps.apply_bounding()?;
    lsm::apply_process_labels(&proc, process)?;
    // Inherited fds must not reach the container (CVE-2024-21626); marked
    // here too, before an early seccomp filter could forbid close_range.
    mark_cloexec(3 + keep_fds).ctx(|| "mark fds close-on-exec")?;
    let early = seccomp.filter(|(f, _, _)| f.early);
    // Under an early filter the working directory is entered before it
    // loads: it is resolved with openat2, which a profile older than that
    // syscall denies (runtime-tools' default one does). As runc does, root
    // tries first; a directory only the user may enter is tried after the
    // switch.
    let cwd_done = early.is_some() && chdir_in_root(process.cwd()).is_ok();
    if let Some((f, state, pid)) = early {
        f.load(state, pid)?;
    }
    user::switch(process.user(), setgroups_allowed(&proc))?;
    drop(proc);
    caps.apply_process()?;
    if !cwd_done {
        chdir_in_root(process.cwd())?;
    }
    Ok(())
}

/// Whether setgroups(2) is allowed here (it is not in a user namespace whose
/// /proc/self/setgroups says "deny").
fn setgroups_allowed(proc: &Procfs) -> bool {
    proc.read("self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC).
fn mark_cloexec(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range with CLOEXEC only flags fds; no memory is touched.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Resolves the executable as execvp would, with the process's own PATH.
pub fn resolve(args: &[String], env: &[String]) -> Result<Program> {
    let name = args
        .first()
        .ok_or_else(|| Error::msg("process.args: must name the program to run"))?;
    let path = if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.exists() {
            return Err(Error::msg(format!(
                "exec: \"{name}\": no such file or directory"
            )));
        }
        p
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        search
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
            .find(|p| {
                p.metadata().map(|m| m.is_file()).unwrap_or(false)
                    && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            })
            .ok_or_else(|| {
                Error::msg(format!(
                    "exec: \"{name}\": executable file not found in $PATH"
                ))
            })?
    };
    let cstr =
        |s: &str| CString::new(s).map_err(|_| Error::msg(format!("process: {s:?} contains NUL")));
    Ok(Program {
        path: CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::msg("process.args[0]: NUL"))?,
        argv: args.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        envp: env.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
    })
}

/// Socket activation passed on (sd_listen_fds(3)): when the runtime itself
/// was started with `LISTEN_FDS=N` and `LISTEN_PID` naming it, fds 3..3+N go
/// to the container process, before any `--preserve-fds`.
pub fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Checks that fds 3..3+n exist: a missing one would be taken by the next fd
/// the runtime opens and leak into the container.
pub fn check_passed_fds(n: u32) -> Result<()> {
    for fd in 3..3 + n as RawFd {
        // SAFETY: F_GETFD only queries the fd table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::msg(format!(
                "--preserve-fds: fd {fd} is not open (fds 3..{} are passed to the container)",
                3 + n - 1
            )));
        }
    }
    Ok(())
}

/// The last step: clean signal state, fds past stdio and the `keep_fds`
/// passed ones close on exec, socket activation variables, a late seccomp
/// filter, execve. Returns only on failure.
///
/// `listen_fds` > 0 sets `LISTEN_FDS`; whenever the environment carries
/// `LISTEN_FDS`, `LISTEN_PID` becomes this process's pid as it sees it (the
/// caller cannot know it beforehand: 1 for an init in a new pid namespace).
pub fn exec(p: &Program, keep_fds: u32, listen_fds: u32, seccomp: Option<Seccomp>) -> Error {
    let mut envp = p.envp.clone();
    if listen_fds > 0 {
        set_env(&mut envp, "LISTEN_FDS", &listen_fds.to_string());
    }
    if envp
        .iter()
        .any(|e| e.to_bytes().starts_with(b"LISTEN_FDS="))
    {
        set_env(&mut envp, "LISTEN_PID", &std::process::id().to_string());
    }
    // The process starts with no blocked signals and default SIGPIPE (the
    // Rust runtime ignores it, and ignored dispositions survive execve).
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: resetting a disposition to the default has no memory effects.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    // Every fd past stdio and the passed ones is closed by the execve. An
    // early seccomp filter may forbid close_range: then the marking done
    // before it loaded stands (every fd opened since is close-on-exec).
    if let Err(e) = mark_cloexec(3 + keep_fds) {
        if !seccomp.is_some_and(|(f, _, _)| f.early) {
            return Error::msg(format!("mark fds close-on-exec: {e}"));
        }
    }
    // As late as possible: only the execve (and, for NOTIFY, the send of
    // the notify fd) run under the filter.
    if let Some((f, state, pid)) = seccomp.filter(|(f, _, _)| !f.early) {
        if let Err(e) = f.load(state, pid) {
            return e;
        }
    }
    let e = nix::unistd::execve(&p.path, &p.argv, &envp).unwrap_err();
    Error::msg(format!(
        "exec {:?}: {}",
        p.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::io::Error::from_raw_os_error(e as i32)
    ))
}

/// Replaces (or appends) `key=value` in an environment list.
fn set_env(env: &mut Vec<CString>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    let Ok(entry) = CString::new(format!("{key}={value}")) else {
        return;
    };
    match env
        .iter_mut()
        .find(|e| e.to_bytes().starts_with(prefix.as_bytes()))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Merges `extra` `KEY=VALUE` entries into `env`: a key already present is
/// replaced in place (so getenv sees the new value), others are appended.
pub fn merge_env(env: &mut Vec<String>, extra: &[String]) {
    for kv in extra {
        let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            Some(e) => e.clone_from(kv),
            None => env.push(kv.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_env_replaces_and_appends() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        merge_env(&mut env, &["A=2".into(), "B=3".into()]);
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn set_env_replaces() {
        let mut env = vec![CString::new("LISTEN_PID=9").unwrap()];
        set_env(&mut env, "LISTEN_PID", "1");
        set_env(&mut env, "LISTEN_FDS", "2");
        assert_eq!(
            env,
            [
                CString::new("LISTEN_PID=1").unwrap(),
                CString::new("LISTEN_FDS=2").unwrap()
            ]
        );
    }
}
