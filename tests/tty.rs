//! Terminals: the pty master sent over `--console-socket` (runc's protocol,
//! as containerd and conmon receive it), consoleSize, /dev/console, and the
//! relay of a foreground `run`/`exec` to the caller's terminal.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Processes the runtime leaves behind (a detached exec, an init after
/// `create` returned) are reparented to us, so that tests can read their
/// exit status.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    });
}

/// Waits for an adopted (or own) child `pid` and returns its exit code.
fn reap(pid: i32) -> i32 {
    let mut code = None;
    let ok = wait_until(WAIT, || {
        let mut st = 0;
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            code = Some(if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                128 + libc::WTERMSIG(st)
            });
        }
        code.is_some()
    });
    assert!(ok, "process {pid} did not exit");
    code.unwrap()
}

/// The listening end of a console socket, as containerd's shim makes it.
struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new(t: &Ctx) -> ConsoleSocket {
        let path = t.tmp.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { path, listener }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accepts the runtime's connection and receives the master: one
    /// message, the fd as SCM_RIGHTS, the name as payload.
    fn receive(&self) -> (File, String) {
        let deadline = Instant::now() + WAIT;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "nobody connected");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(v) = c {
                assert_eq!(v.len(), 1, "one fd expected");
                fd = Some(v[0]);
            }
        }
        let n = msg.bytes;
        let fd = fd.expect("no fd received");
        let name = String::from_utf8_lossy(&buf[..n]).into_owned();
        (unsafe { File::from_raw_fd(fd) }, name)
    }
}

/// Writes `input` to a pty master and reads until the other side is gone
/// (EIO) or the deadline passes.
fn converse(master: &mut File, input: &str) -> String {
    master.write_all(input.as_bytes()).unwrap();
    read_all(master)
}

fn read_all(master: &mut File) -> String {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "pty never closed; got {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut p = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(1000) as i32).unwrap();
        let _ = nix::poll::poll(&mut p, ms);
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read pty: {e}"),
        }
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

fn has_line(out: &str, line: &str) -> bool {
    out.lines().any(|l| l == line)
}

fn terminal_spec(t: &Ctx, args: &[&str]) -> Value {
    let mut cfg = t.spec(args);
    cfg["process"]["terminal"] = json!(true);
    cfg
}

#[test]
fn console_socket_create_start_shell() {
    become_subreaper();
    let t = Ctx::new("ttycreate");
    let sock = ConsoleSocket::new(&t);
    t.write_config(&terminal_spec(&t, &["sh"]));
    t.md(&[
        "create",
        "--console-socket",
        sock.path(),
        "--bundle",
        t.bundle_str(),
        &t.id,
    ])
    .ok();
    // the master arrived while create ran
    let (mut master, name) = sock.receive();
    assert_eq!(
        name, "/dev/ptmx",
        "payload names the master, as runc's does"
    );
    let pid = state_pid(&t.state()) as i32;
    t.md(&["start", &t.id]).ok();
    let out = converse(&mut master, "echo $((6*7)); exit 5\n");
    assert!(has_line(&out, "42"), "{out:?}");
    assert_eq!(reap(pid), 5);
}

#[test]
fn terminal_is_controlling_tty_stdio_and_dev_console() {
    become_subreaper();
    let t = Ctx::new("ttyctty");
    let sock = ConsoleSocket::new(&t);
    let mut cfg = terminal_spec(
        &t,
        &[
            "sh",
            "-c",
            "tty; for f in 0 1 2; do readlink /proc/$$/fd/$f; done | sort -u; \
             stat -c '%t:%T' /dev/console; stat -L -c '%t:%T' /proc/self/fd/0; \
             cut -d' ' -f1,6,7 /proc/$$/stat; stty size; ls /proc/self/fd; \
             stat -c %u:%g /dev/pts/0",
        ],
    );
    cfg["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    t.write_config(&cfg);
    t.md(&[
        "create",
        "--console-socket",
        sock.path(),
        "-b",
        t.bundle_str(),
        &t.id,
    ])
    .ok();
    let (mut master, _) = sock.receive();
    let pid = state_pid(&t.state()) as i32;
    t.md(&["start", &t.id]).ok();
    let out = read_all(&mut master);
    assert_eq!(reap(pid), 0, "{out}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "/dev/pts/0", "{out}");
    assert_eq!(l[1], "/dev/pts/0", "stdio is the pty\n{out}");
    // /dev/console is the pty (devpts major 136)
    assert_eq!(l[2], "88:0", "{out}");
    assert_eq!(l[3], "88:0", "{out}");
    // pid 1 leads its own session and the pty is its controlling tty
    let stat: Vec<&str> = l[4].split(' ').collect();
    assert_eq!(stat[0], "1", "{out}");
    assert_eq!(stat[1], "1", "session of its own\n{out}");
    assert_eq!(
        stat[2],
        (136 << 8).to_string(),
        "tty_nr is /dev/pts/0\n{out}"
    );
    assert_eq!(l[5], "33 111", "consoleSize\n{out}");
    // no fd but 0-2 (the 4th is ls's own)
    let fds: Vec<&str> = l[6].split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
    // the pty belongs to the process's user
    assert_eq!(l[7].split(':').next(), Some("1000"), "{out}");
}

/// `docker exec -it`: --process with terminal, --console-socket, --detach,
/// --pid-file; and podman's form with --tty.
#[test]
fn console_socket_exec() {
    become_subreaper();
    let t = Ctx::new("ttyexec");
    let mut cfg = t.spec(&["sleep", "1000"]);
    t.with_out(&mut cfg);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    let init = state_pid(&t.state());
    let pj = t.tmp.path().join("process.json");
    fs::write(
        &pj,
        serde_json::to_vec(&json!({
            "terminal": true,
            "consoleSize": {"height": 20, "width": 70},
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
        }))
        .unwrap(),
    )
    .unwrap();
    for podman in [false, true] {
        let sock = ConsoleSocket::new(&t);
        let pf = t.tmp.path().join("exec.pid");
        let mut args = vec!["exec", "--process", pj.to_str().unwrap()];
        if podman {
            args.extend(["--detach", "--tty", "--console-socket", sock.path()]);
        } else {
            args.extend(["--console-socket", sock.path(), "--detach"]);
        }
        args.extend(["--pid-file", pf.to_str().unwrap(), &t.id]);
        t.md(&args).ok();
        let (mut master, _) = sock.receive();
        let pid: i32 = fs::read_to_string(&pf).unwrap().parse().unwrap();
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
            fs::read_link(format!("/proc/{init}/ns/pid")).unwrap()
        );
        let out = converse(
            &mut master,
            "echo $((6*7)); stty size; tty; ls /proc/self/fd; exit 5\n",
        );
        assert!(has_line(&out, "42"), "{out:?}");
        assert!(has_line(&out, "20 70"), "{out:?}");
        assert!(has_line(&out, "/dev/pts/0"), "{out:?}");
        assert_eq!(reap(pid), 5);
        drop(sock);
        fs::remove_file(t.tmp.path().join("console.sock")).unwrap();
    }
}

fn openpty(rows: u16, cols: u16) -> (File, OwnedFd) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).unwrap();
    (File::from(p.master), p.slave)
}

/// Spawns `mydocker args` on a new session whose controlling terminal is
/// the slave of a pty we hold the master of, as under tmux or ssh.
fn spawn_on_pty(t: &Ctx, args: &[&str], slave: OwnedFd) -> Child {
    let mut cmd = t.md_command(args);
    let s = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    cmd.stdin(s(&slave)).stdout(s(&slave)).stderr(s(&slave));
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(slave);
    child
}

fn termios_of(f: &File) -> nix::sys::termios::Termios {
    nix::sys::termios::tcgetattr(f.as_fd()).unwrap()
}

#[test]
fn foreground_run_relays_the_terminal() {
    let t = Ctx::new("ttyrelayrun");
    t.write_config(&terminal_spec(&t, &["sh"]));
    let (mut master, slave) = openpty(40, 120);
    let before = termios_of(&master);
    let mut child = spawn_on_pty(&t, &["run", "-b", t.bundle_str(), &t.id], slave);
    let out = converse(&mut master, "stty size; echo $((6*7)); tty; exit 5\n");
    let st = wait_child(&mut child, WAIT).expect("run did not exit");
    assert_eq!(exit_code(st), 5, "{out}");
    assert!(has_line(&out, "40 120"), "window size copied\n{out:?}");
    assert!(has_line(&out, "42"), "{out:?}");
    assert!(has_line(&out, "/dev/pts/0"), "{out:?}");
    // the caller's terminal is back in the mode it was in
    let after = termios_of(&master);
    assert_eq!(before.local_flags, after.local_flags);
    assert_eq!(before.input_flags, after.input_flags);
    assert_eq!(before.output_flags, after.output_flags);
    t.assert_no_leftovers();
}

#[test]
fn foreground_exec_relays_the_terminal() {
    let t = Ctx::new("ttyrelayexec");
    t.create_ok(&t.spec(&["sleep", "1000"]));
    t.md(&["start", &t.id]).ok();
    let (mut master, slave) = openpty(25, 90);
    let mut child = spawn_on_pty(&t, &["exec", "-t", &t.id, "sh"], slave);
    let out = converse(&mut master, "stty size; echo $((6*7)); tty; exit 5\n");
    let st = wait_child(&mut child, WAIT).expect("exec did not exit");
    assert_eq!(exit_code(st), 5, "{out}");
    assert!(has_line(&out, "25 90"), "{out:?}");
    assert!(has_line(&out, "42"), "{out:?}");
    assert!(has_line(&out, "/dev/pts/0"), "{out:?}");
}

#[test]
fn terminal_flag_errors_follow_runc() {
    let t = Ctx::new("ttyerrs");
    // create detaches: a terminal needs a console socket
    t.write_config(&terminal_spec(&t, &["true"]));
    t.create()
        .err("cannot allocate tty if runc will detach without setting console socket");
    t.assert_no_leftovers();
    t.md(&["run", "-d", "-b", t.bundle_str(), &t.id])
        .err("cannot allocate tty");
    t.assert_no_leftovers();
    // a console socket needs a terminal, and a detached process
    let sock = ConsoleSocket::new(&t);
    t.write_config(&t.spec(&["true"]));
    t.md(&[
        "create",
        "--console-socket",
        sock.path(),
        "-b",
        t.bundle_str(),
        &t.id,
    ])
    .err("cannot use console socket if runc will not detach or allocate tty");
    t.assert_no_leftovers();
    t.write_config(&terminal_spec(&t, &["true"]));
    t.md(&[
        "run",
        "--console-socket",
        sock.path(),
        "-b",
        t.bundle_str(),
        &t.id,
    ])
    .err("cannot use console socket");
    t.assert_no_leftovers();
    // a socket nobody listens on
    let gone = t.tmp.path().join("nobody.sock");
    let out = t.md(&[
        "create",
        "--console-socket",
        gone.to_str().unwrap(),
        "-b",
        t.bundle_str(),
        &t.id,
    ]);
    out.err(if is_mydocker() { "console-socket" } else { "" });
    t.assert_no_leftovers();
    // no devpts in the container: the terminal cannot be made
    let mut cfg = terminal_spec(&t, &["true"]);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev/pts");
    t.write_config(&cfg);
    let out = t.md(&[
        "create",
        "--console-socket",
        sock.path(),
        "-b",
        t.bundle_str(),
        &t.id,
    ]);
    out.err("ptmx");
    t.assert_no_leftovers();
    let _ = Path::new(sock.path());
}
