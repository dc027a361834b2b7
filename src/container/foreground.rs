//! Waiting in the foreground for a container process (`run`, `exec`):
//! every signal the runtime gets is passed on to the process, its exit status
//! becomes the runtime's (128+N for signal N), and with a terminal the pty
//! master is relayed to the caller's stdin/stdout.
//!
//! The caller blocks every signal before the process exists, so none is lost;
//! they are then taken synchronously (sigwaitinfo, or a signalfd when the
//! terminal relay needs one poll loop for signals and data).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{get_winsize, set_winsize, RawMode};

/// Waits for `pid`, forwarding signals, relaying `master` if given; returns
/// the exit code.
pub(crate) fn wait(pid: i32, master: Option<OwnedFd>) -> i32 {
    match master {
        Some(m) => relay(pid, m),
        None => wait_forwarding(pid),
    }
}

/// Reaps every exited child (a subreaper adopts orphans); returns the exit
/// code once `pid` is among them.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Waits for the process, passing every other signal on to it.
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
        if let Some(code) = reap(pid) {
            return code;
        }
    }
}

/// The caller's terminal: the first of stdin, stdout, stderr that is one.
fn host_tty() -> Option<BorrowedFd<'static>> {
    // SAFETY: fds 0-2 stay open for the life of the process.
    [0, 1, 2]
        .into_iter()
        .map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .find(|fd| nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false))
}

const STDIN: i32 = 0;
const STDOUT: i32 = 1;
/// Input bytes buffered for the container before stdin is paused.
const IN_MAX: usize = 64 * 1024;

/// The terminal relay: stdin → master, master → stdout, signals forwarded,
/// SIGWINCH copied as the pty's size; the caller's tty is raw meanwhile.
fn relay(pid: i32, master: OwnedFd) -> i32 {
    let Ok(sfd) = SignalFd::with_flags(
        &SigSet::all(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    ) else {
        return wait_forwarding(pid);
    };
    let host = host_tty();
    let _raw = host.and_then(RawMode::enter);
    let resize = || {
        if let Some(ws) = host.and_then(get_winsize) {
            let _ = set_winsize(master.as_fd(), &ws);
        }
    };
    resize();
    let _ = fcntl(master.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));

    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    let mut master_open = true;
    let mut status = None;
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(STDIN) };
    while status.is_none() {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let stdin_at = (stdin_open && inbuf.len() < IN_MAX).then(|| {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
            fds.len() - 1
        });
        let master_at = master_open.then(|| {
            let mut ev = PollFlags::POLLIN;
            if !inbuf.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(master.as_fd(), ev));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return wait_forwarding(pid),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        let (sig_ev, in_ev, m_ev) = (
            fds[0].revents().unwrap_or(PollFlags::empty()),
            ready(stdin_at),
            ready(master_at),
        );
        drop(fds);

        if !sig_ev.is_empty() {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if let Some(code) = reap(pid) {
                            status = Some(code);
                        }
                    }
                    Ok(Signal::SIGWINCH) => resize(),
                    _ => {
                        // SAFETY: kill(2) with plain integers.
                        unsafe { libc::kill(pid, info.ssi_signo as i32) };
                    }
                }
            }
        }
        if !in_ev.is_empty() {
            match nix::unistd::read(STDIN, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => inbuf.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
        if m_ev.contains(PollFlags::POLLOUT) && !inbuf.is_empty() {
            match nix::unistd::write(&master, &inbuf) {
                Ok(n) => {
                    inbuf.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => master_open = false,
            }
        }
        if !m_ev.is_empty() && master_open && !copy_out(&master, &mut buf) {
            master_open = false;
        }
    }
    // The process is gone: pass on what it wrote last.
    if master_open {
        copy_out(&master, &mut buf);
    }
    status.unwrap_or(255)
}

/// Copies what the master has to stdout; false once the pty is closed (EIO
/// when no process holds its terminal end any more).
fn copy_out(master: &OwnedFd, buf: &mut [u8]) -> bool {
    loop {
        match nix::unistd::read(master.as_raw_fd(), buf) {
            Ok(0) => return false,
            Ok(n) => write_all(STDOUT, &buf[..n]),
            Err(nix::errno::Errno::EAGAIN) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Writes everything, waiting for a non-blocking stdout to drain.
fn write_all(fd: i32, mut data: &[u8]) {
    // SAFETY: fds 0-2 stay open for the life of the process.
    let out = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(out, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut p = [PollFd::new(out, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::NONE);
            }
            Err(_) => return,
        }
    }
}
