//! Terminals (`process.terminal`).
//!
//! The pty is allocated inside the container: the container process opens
//! the ptmx of the container's own devpts, takes its peer with TIOCGPTPEER
//! (no path lookup of /dev/pts/N that the container could redirect), makes it
//! its controlling terminal and stdio, and sends the master over a unix
//! socket with SCM_RIGHTS, the master's name as payload: runc's
//! `--console-socket` protocol, which containerd, conmon and runc's recvtty
//! receive. A foreground `run`/`exec` passes an internal socketpair instead
//! and relays the master itself (`container::foreground`).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, socketpair, AddressFamily, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::termios::{self, SetArg, Termios};
use oci_spec::runtime::Process;

use crate::error::{Context, Error, Result};
use crate::rootfs::safepath::{ensure_in_root, fd_path, open_in_root, Kind};

/// Checks the terminal flags the way runc does: a detached process with a
/// terminal needs a console socket, and a console socket needs both.
pub fn check_flags(terminal: bool, detach: bool, socket: Option<&Path>) -> Result<()> {
    if detach && terminal && socket.is_none() {
        return Err(Error::msg(
            "cannot allocate tty if runc will detach without setting console socket",
        ));
    }
    if (!detach || !terminal) && socket.is_some() {
        return Err(Error::msg(
            "cannot use console socket if runc will not detach or allocate tty",
        ));
    }
    Ok(())
}

/// Connects to the caller's console socket (a listening SOCK_STREAM unix
/// socket), close-on-exec.
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let what = || format!("--console-socket {}", path.display());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(what)?;
    let addr = UnixAddr::new(path).ctx(what)?;
    connect(fd.as_raw_fd(), &addr).ctx(what)?;
    Ok(fd)
}

/// A connected pair standing in for a console socket when the runtime
/// relays the terminal itself: (receiving end, container's end).
pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "terminal socketpair")
}

/// How the container process sets up its terminal.
pub struct PtyOpts {
    /// `process.consoleSize` as (rows, columns).
    pub size: Option<(u16, u16)>,
    /// Owner to give the pty (the process's uid), so that it can reopen its
    /// own terminal after dropping privileges.
    pub owner: Option<u32>,
    /// Bind the pty onto /dev/console (the container init only). Needs the
    /// host's /proc, so it runs before pivot_root.
    pub console_mount: bool,
}

impl PtyOpts {
    /// The settings `process` asks for: consoleSize (when both dimensions are
    /// set, as runc reads it) and the pty owned by the process's user.
    pub fn for_process(process: &Process, console_mount: bool) -> PtyOpts {
        PtyOpts {
            size: process
                .console_size()
                .as_ref()
                .filter(|b| b.height() > 0 && b.width() > 0)
                .map(|b| (clamp(b.height()), clamp(b.width()))),
            owner: Some(process.user().uid()),
            console_mount,
        }
    }
}

fn clamp(v: u64) -> u16 {
    v.min(u16::MAX as u64) as u16
}

/// In the container process: allocates the pty in the devpts under `root`,
/// sends the master over `socket`, and makes the pty the controlling
/// terminal and fds 0, 1, 2. Closes `socket`.
pub fn setup(root: RawFd, socket: RawFd, opts: &PtyOpts) -> Result<()> {
    // SAFETY: the caller hands us this fd to consume.
    let socket = unsafe { OwnedFd::from_raw_fd(socket) };
    let master = open_ptmx(root)?;
    // SAFETY: TIOCSPTLCK reads an int through the pointer we pass.
    let unlock: libc::c_int = 0;
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "terminal: unlockpt");
    }
    if let Some((rows, cols)) = opts.size {
        set_winsize(
            master.as_fd(),
            &libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .ctx(|| "process.consoleSize: TIOCSWINSZ")?;
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd or -1.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "terminal: TIOCGPTPEER");
    }
    // SAFETY: the kernel just returned this fd.
    let slave = unsafe { OwnedFd::from_raw_fd(peer) };
    if opts.console_mount {
        let target = ensure_in_root(root, Path::new("/dev/console"), Kind::File)
            .ctx(|| "terminal: create /dev/console")?;
        mount(
            Some(fd_path(&slave).as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| "terminal: bind the pty onto /dev/console")?;
    }
    // The payload is the master's name; runc's is the path its pty library
    // opens, /dev/ptmx. Receivers use it for nothing else: send the same.
    send_master(socket.as_fd(), master.as_fd(), "/dev/ptmx")?;
    drop(socket);
    drop(master);
    nix::unistd::setsid().ctx(|| "terminal: setsid")?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "terminal: TIOCSCTTY");
    }
    if let Some(uid) = opts.owner {
        nix::unistd::fchown(slave.as_raw_fd(), Some(uid.into()), None)
            .ctx(|| "terminal: chown the pty to process.user.uid")?;
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).ctx(|| format!("terminal: dup2 onto fd {fd}"))?;
    }
    Ok(())
}

/// Opens the container devpts' ptmx, /dev/pts/ptmx or else /dev/ptmx,
/// resolved inside `root`, and checks that it is the ptmx device (5:2).
fn open_ptmx(root: RawFd) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    let mut last = None;
    for name in ["/dev/pts/ptmx", "/dev/ptmx"] {
        match open_in_root(root, Path::new(name), flags) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .ctx(|| format!("terminal: stat {name}"))?;
                let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
                if !is_chr || libc::major(st.st_rdev) != 5 || libc::minor(st.st_rdev) != 2 {
                    return Err(Error::msg(format!(
                        "terminal: {name} in the container is not the ptmx device"
                    )));
                }
                return Ok(fd);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => last = Some(e),
            Err(e) => return Err(e).ctx(|| format!("terminal: open {name} in the container")),
        }
    }
    Err(Error::msg(format!(
        "terminal: no /dev/pts/ptmx in the container (mount devpts on /dev/pts): {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// Sends `master` with SCM_RIGHTS, `name` as the message payload.
pub fn send_master(socket: BorrowedFd, master: BorrowedFd, name: &str) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(|_| ()).ctx(|| "terminal: send the pty master"),
        }
    }
}

/// Receives a pty master sent by `send_master` (close-on-exec).
pub fn recv_master(socket: BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.ctx(|| "terminal: receive the pty master")?,
        };
        for c in msg.cmsgs().ctx(|| "terminal: receive the pty master")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: the kernel installed this fd for us.
                    return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                }
            }
        }
        return Err(Error::msg(
            "terminal: the container process sent no pty master",
        ));
    }
}

/// The terminal size of `fd`, if it is a terminal.
pub fn get_winsize(fd: BorrowedFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws)
}

/// Sets the terminal size of `fd`.
pub fn set_winsize(fd: BorrowedFd, ws: &libc::winsize) -> std::io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The caller's terminal put in raw mode; restored when dropped.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// Makes `fd` raw (cfmakeraw) if it is a terminal.
    pub fn enter(fd: BorrowedFd<'a>) -> Option<RawMode<'a>> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_rules_follow_runc() {
        let s = Some(Path::new("/tmp/s"));
        assert!(check_flags(true, true, s).is_ok());
        assert!(check_flags(true, false, None).is_ok());
        assert!(check_flags(false, true, None).is_ok());
        assert!(check_flags(false, false, None).is_ok());
        assert!(check_flags(true, true, None).is_err());
        assert!(check_flags(false, true, s).is_err());
        assert!(check_flags(true, false, s).is_err());
    }

    #[test]
    fn master_travels_over_a_socket() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        send_master(a.as_fd(), f.as_fd(), "/dev/ptmx").unwrap();
        let got = recv_master(b.as_fd()).unwrap();
        let st = nix::sys::stat::fstat(got.as_raw_fd()).unwrap();
        assert_eq!(libc::major(st.st_rdev), 1);
        drop(a);
        assert!(recv_master(b.as_fd()).is_err());
    }
}
