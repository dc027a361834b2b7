//! The sync channel between `create` and the container init: a
//! SOCK_SEQPACKET socketpair carrying small typed messages (one datagram each,
//! so no framing is needed).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::{Context, Error, Result};

/// Messages of the create protocol, in the order they normally flow.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: id maps are written and the cgroup is joined; carries
    /// the init's pid as the host sees it (for hook state).
    Setup {
        /// Host pid of the init.
        pid: i32,
    },
    /// Init → parent: mounts are done, run prestart and createRuntime hooks.
    HooksRequest,
    /// Parent → init: those hooks succeeded.
    HooksDone,
    /// Init → parent: everything is set up; init now waits for `start`.
    Ready,
    /// Either way: a failure, already phrased for the user.
    Error(String),
}

const MAX_MSG: usize = 64 * 1024;

/// First byte of the init's reply to `start` when the execve failed: the
/// init exits, the rest is the reason. (Success is EOF: the connection is
/// close-on-exec.)
pub const START_FAILED: u8 = b'E';
/// First byte of the init's reply when a startContainer hook failed: the
/// init exits and the runtime destroys the container (lifecycle step 12).
pub const START_HOOK_FAILED: u8 = b'H';
/// First byte of the init's reply when it refuses to start (no `process`):
/// it keeps waiting, the container stays `created`.
pub const START_REFUSED: u8 = b'N';

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Setup { pid } => {
                let mut v = vec![b'S'];
                v.extend_from_slice(&pid.to_le_bytes());
                v
            }
            Msg::HooksRequest => vec![b'H'],
            Msg::HooksDone => vec![b'h'],
            Msg::Ready => vec![b'R'],
            Msg::Error(m) => {
                let mut v = vec![b'E'];
                v.extend_from_slice(&m.as_bytes()[..m.len().min(MAX_MSG - 1)]);
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Result<Msg> {
        let bad = || Error::msg(format!("sync: malformed message {b:?}"));
        match b.first() {
            Some(b'S') if b.len() == 5 => Ok(Msg::Setup {
                pid: i32::from_le_bytes(b[1..5].try_into().map_err(|_| bad())?),
            }),
            Some(b'H') => Ok(Msg::HooksRequest),
            Some(b'h') => Ok(Msg::HooksDone),
            Some(b'R') => Ok(Msg::Ready),
            Some(b'E') => Ok(Msg::Error(String::from_utf8_lossy(&b[1..]).into_owned())),
            _ => Err(bad()),
        }
    }
}

/// One end of the sync socketpair.
pub struct Channel {
    fd: OwnedFd,
}

/// Makes a connected pair (both ends close-on-exec).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "sync socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends one message.
    pub fn send(&self, m: &Msg) -> Result<()> {
        loop {
            match send(self.fd.as_raw_fd(), &m.encode(), MsgFlags::MSG_NOSIGNAL) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map(|_| ()).ctx(|| "sync: send"),
            }
        }
    }

    /// Receives one message; `None` when the peer closed its end.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx(|| "sync: receive"),
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::Setup { pid: 4242 },
            Msg::HooksRequest,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Error("boom: x".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
