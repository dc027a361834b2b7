//! `run`: create + start, then (unless detached) wait for the container,
//! forwarding signals (and relaying its terminal), and return its exit status.
//!
//! Every signal is blocked before the init is cloned, so even a container
//! that exits at once cannot lose its SIGCHLD: it stays pending until the
//! wait loop takes it with sigwaitinfo.

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::create::{create_with, CreateRequest};
use super::foreground;
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
    let created = create_with(req, flags.detach)?;
    let pid = created.record.pid;
    // A terminal to relay: the init sent its pty master during create.
    let started = match &created.console {
        Some(rx) => crate::console::recv_master(rx.as_fd()).map(Some),
        None => Ok(None),
    }
    .and_then(|m| {
        super::release(&created.dir, &created.record)
            .map_err(|f| f.err)
            .and_then(|()| super::poststart(&created.record))
            .map(|()| m)
    });
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            super::destroy(created.dir, &created.record);
            return Err(e);
        }
    };
    // Unlock while waiting: `kill`, `state` and `delete` must work meanwhile.
    drop(created.dir);
    if flags.detach {
        return Ok(0);
    }
    let code = foreground::wait(pid, master);
    if !flags.keep {
        // A concurrent `delete --force` may have cleaned up already.
        if let Ok(sd) = crate::state::StateDir::open(req.root, req.id) {
            super::destroy(sd, &created.record);
        }
    }
    Ok(code)
}
