//! The lifecycle operations, each a function over the state directory:
//! create, start, state, kill, delete, run, list, exec; and (control.rs) the
//! cgroup operations pause, resume, ps, update, events.

mod control;
mod create;
mod exec;
mod foreground;
pub mod listing;
mod run;
pub mod signal;

pub use control::{events, pause, ps, resume, update};
pub use create::{create, CreateRequest};
pub use exec::exec;
pub use run::{run, RunFlags};

use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::os::fd::{AsFd, AsRawFd};

use crate::error::{Context, Error, Result};
use crate::process::channel::{START_HOOK_FAILED, START_REFUSED};
use crate::state::{self, Record, StateDir, Status};

/// `start`: releases a created container's init to execve the user process.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let sd = StateDir::open(root, id)?;
    let rec = sd.load()?;
    let st = state::status(&sd.path, &rec);
    if st != Status::Created {
        return Err(Error::msg(format!(
            "cannot start container \"{id}\": it is {}, not created",
            st.as_str()
        )));
    }
    if let Err(f) = release(&sd, &rec) {
        if f.destroy {
            stop(&rec);
            destroy(sd, &rec);
        }
        return Err(f.err);
    }
    if let Err(e) = poststart(&rec) {
        stop(&rec);
        destroy(sd, &rec);
        return Err(e);
    }
    Ok(())
}

/// Tells the waiting init to go on and waits until its execve succeeded (the
/// close-on-exec connection closes) or reports why it failed. A failure says
/// whether the container must now be destroyed: after a failing
/// startContainer hook the spec continues the lifecycle at step 12.
pub(crate) fn release(sd: &StateDir, rec: &Record) -> std::result::Result<(), StartFailure> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "start: socket")?;
    let addr = UnixAddr::new(&sd.fd_path(state::EXEC_SOCK)).ctx(|| "start: socket address")?;
    connect(fd.as_raw_fd(), &addr).map_err(|e| {
        Error::msg(format!(
            "cannot start container \"{}\": init is gone ({e})",
            rec.id
        ))
    })?;
    send(fd.as_raw_fd(), b"S", MsgFlags::MSG_NOSIGNAL).ctx(|| "start: signal init")?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.unwrap_or(0),
        }
    };
    let why = || String::from_utf8_lossy(&buf[1..n]).into_owned();
    if n > 0 && buf[0] == START_REFUSED {
        // The init refused and still waits: the container stays created.
        return Err(Error::msg(format!("cannot start container \"{}\": {}", rec.id, why())).into());
    }
    // The container is running (or failed) from here: the socket has served.
    let _ = std::fs::remove_file(sd.path.join(state::EXEC_SOCK));
    match buf[..n].first() {
        None => Ok(()),
        Some(&START_HOOK_FAILED) => Err(StartFailure {
            err: Error::msg(why()),
            destroy: true,
        }),
        Some(_) => Err(Error::msg(why()).into()),
    }
}

/// Runs the poststart hooks of a container whose process was just executed.
/// Since runtime-spec 1.3 a failing hook is an error (the caller then stops
/// and destroys the container); configs written for earlier versions get the
/// warning their spec asks for.
pub(crate) fn poststart(rec: &Record) -> Result<()> {
    let Some(list) = rec.hooks.as_ref().and_then(|h| h.poststart().as_ref()) else {
        return Ok(());
    };
    let st = state::state_json(rec, Status::Running, None).to_string();
    if crate::spec::version_at_least(&rec.oci_version, 1, 3) {
        crate::hooks::run_all("poststart", list, &st)
    } else {
        crate::hooks::run_all_warn("poststart", list, &st);
        Ok(())
    }
}

/// Kills the init and waits (with a deadline) until it is gone.
fn stop(rec: &Record) -> bool {
    let _ = signal_init(rec, libc::SIGKILL);
    wait_exit(rec, Duration::from_secs(10))
}

/// A failed `start`.
pub(crate) struct StartFailure {
    /// What went wrong.
    pub err: Error,
    /// The container must be destroyed now (a startContainer hook failed).
    pub destroy: bool,
}

impl From<Error> for StartFailure {
    fn from(err: Error) -> Self {
        StartFailure {
            err,
            destroy: false,
        }
    }
}

/// `state`: the spec's state JSON.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let (dir, rec) = state::load_unlocked(root, id)?;
    let st = state::status(&dir, &rec);
    Ok(state::state_json(&rec, st, Some(&state::owner_name(&dir))))
}

/// `kill`: sends a signal to the init, or with `all` to every process in the
/// container's cgroup.
pub fn kill(root: &Path, id: &str, sig: &str, all: bool) -> Result<()> {
    let signo = signal::parse(sig)?;
    let sd = StateDir::open(root, id)?;
    let rec = sd.load()?;
    let st = state::status(&sd.path, &rec);
    // With --all the cgroup's processes are signalled even once the init is
    // gone, as runc does: the shim sends `kill --all` when the init of a
    // container without its own pid namespace exits.
    if st == Status::Stopped && !all {
        return Err(Error::NotRunning);
    }
    if all {
        return control::signal_all(&rec, signo, st == Status::Paused);
    }
    signal_init(&rec, signo)?;
    if st == Status::Paused && signo == libc::SIGKILL {
        control::thaw_for_kill(&rec)?;
    }
    Ok(())
}

/// Signals the recorded init through a pidfd, after checking it is still the
/// same process (pid and start time), so a recycled pid is never hit.
fn signal_init(rec: &Record, signo: i32) -> Result<()> {
    let pidfd = match pidfd_open(rec.pid) {
        Ok(fd) => fd,
        Err(_) => return Err(Error::NotRunning),
    };
    if !state::init_alive(rec) {
        return Err(Error::NotRunning);
    }
    // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signo,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Err(Error::NotRunning);
        }
        return Err(e).ctx(|| "kill");
    }
    Ok(())
}

pub(crate) fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags, returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned by the kernel and is ours.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the init has exited (or the deadline passes).
fn wait_exit(rec: &Record, timeout: Duration) -> bool {
    let Ok(pidfd) = pidfd_open(rec.pid) else {
        return true;
    };
    let deadline = Instant::now() + timeout;
    loop {
        if !state::init_alive(rec) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.as_millis().min(1000) as i32).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, ms);
    }
}

/// `delete`: removes a stopped container (any with `force`), its cgroups and
/// state, then runs the poststop hooks.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let sd = match StateDir::open(root, id) {
        Ok(sd) => sd,
        // A create that died mid-way leaves a directory without a record:
        // --force clears it.
        Err(Error::NotExist(_)) if force && root.join(id).is_dir() => {
            return std::fs::remove_dir_all(root.join(id)).ctx(|| "remove state dir");
        }
        // Like runc: engines force-delete ids they may already have deleted
        // (the shim's cleanup after `delete`, after a failed create).
        Err(Error::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let rec = sd.load()?;
    let st = state::status(&sd.path, &rec);
    if st != Status::Stopped {
        if !force {
            return Err(Error::msg(format!(
                "cannot delete container \"{id}\" that is not stopped: {}",
                st.as_str()
            )));
        }
        if st == Status::Paused {
            crate::cgroups::thaw(&rec.cgroup_paths);
        }
        if !stop(&rec) {
            return Err(Error::msg(format!(
                "container \"{id}\" init did not die after SIGKILL"
            )));
        }
    }
    destroy(sd, &rec);
    Ok(())
}

/// Tears down a stopped container: stray processes, cgroups, state, poststop.
pub(crate) fn destroy(sd: StateDir, rec: &Record) {
    // Without its own pid namespace the container's other processes outlive
    // the init: they go with the container. With one, the kernel killed them
    // all when the init died, so the cgroup walk (a listing per hierarchy)
    // is skipped.
    if !rec.own_pid_ns {
        for pid in crate::cgroups::pids(&rec.cgroup_paths) {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // Frozen leftovers die only once thawed.
    if crate::cgroups::is_frozen(&rec.cgroup_paths) {
        crate::cgroups::thaw(&rec.cgroup_paths);
    }
    crate::cgroups::remove_dirs(&rec.cgroup_created);
    if let Some(floor) = rec.rootfs_mount {
        crate::rootfs::hostns::detach_rootfs(&rec.rootfs, floor);
    }
    if let Some(unit) = &rec.systemd_unit {
        if let Err(e) = crate::cgroups::systemd::stop(unit) {
            log::warn!("{e}");
        }
    }
    if let Err(e) = sd.remove() {
        log::warn!("{e}");
    }
    if let Some(list) = rec.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        let st = state::state_json(rec, Status::Stopped, None).to_string();
        crate::hooks::run_all_warn("poststop", list, &st);
    }
}

/// `list`: every container in the state root. A missing root is an empty
/// list when it is the default one (nothing created yet), an error when the
/// caller named it, as with runc.
pub fn list(root: &Path, named_root: bool) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named_root => return Ok(out),
        Err(e) => return Err(e).ctx(|| format!("read {}", root.display())),
    };
    for e in entries.flatten() {
        let dir = e.path();
        let Ok(rec) = state::load_record(&dir) else {
            continue;
        };
        let st = state::status(&dir, &rec);
        out.push(state::state_json(&rec, st, Some(&state::owner_name(&dir))));
    }
    out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(out)
}
