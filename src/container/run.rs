//! `run`: create + start, then (unless detached) wait for the container,
//! forwarding signals, and return its exit status.
//!
//! Every signal is blocked before the init is cloned, so even a container
//! that exits at once cannot lose its SIGCHLD: it stays pending until the
//! wait loop takes it with sigwaitinfo.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateRequest};
use crate::error::{Context, Result};

/// What `run` was asked to do.
pub struct RunFlags {
    /// Return after start.
    pub detach: bool,
    /// Keep state after exit.
    pub keep: bool,
    /// Do not become a child subreaper.
    pub no_subreaper: bool,
}

/// Runs the container; returns the exit code for the runtime's own exit.
pub fn run(req: &CreateRequest, flags: &RunFlags) -> Result<i32> {
    let all = SigSet::all();
    let mut old = SigSet::empty();
    if !flags.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old))
            .ctx(|| "block signals")?;
        if !flags.no_subreaper {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
    }
    let created = create(req)?;
    let pid = created.record.pid;
    let started = super::release(&created.dir, &created.record)
        .map_err(|f| f.err)
        .and_then(|()| super::poststart(&created.record));
    if let Err(e) = started {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        super::destroy(created.dir, &created.record);
        return Err(e);
    }
    // Unlock while waiting: `kill`, `state` and `delete` must work meanwhile.
    drop(created.dir);
    if flags.detach {
        return Ok(0);
    }
    let code = wait_forwarding(pid);
    if !flags.keep {
        // A concurrent `delete --force` may have cleaned up already.
        if let Ok(sd) = crate::state::StateDir::open(req.root, req.id) {
            super::destroy(sd, &created.record);
        }
    }
    Ok(code)
}

/// Waits for the init, passing every other signal on to it.
fn wait_forwarding(pid: i32) -> i32 {
    let all = SigSet::all();
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            continue;
        }
        // Reap everything that exited: the init, and orphans we adopted.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return c,
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
