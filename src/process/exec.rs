//! Joining a running container (`exec`), the parent and the child side.
//!
//! The runtime opens every namespace of the container init that differs
//! from its own (/proc/<pid>/ns/*, all opened before any is entered), makes
//! itself non-dumpable, enters the container's pid namespace (only children
//! can live in it) and forks. The parent places the child in the container's
//! cgroups and tells it to go on; the child opens its trusted procfs, joins
//! the other namespaces (user first), sets up its terminal, drops privileges
//! as the init does (`finish`: LSM labels and the container's seccomp filter
//! included) and execs. A failure in the child comes back over the sync
//! channel as one line; EOF on the (close-on-exec) channel means the execve
//! succeeded.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::channel::{self, Channel, Msg};
use super::clone::fork_into;
use super::finish::{self, Program};
use crate::error::{Context, Error, Result};
use crate::security::procfs::Procfs;
use crate::security::{rlimits, seccomp};

/// What joining needs, prepared by `container::exec`.
pub struct ExecArgs<'a> {
    /// Container id (names its session keyring).
    pub id: &'a str,
    /// Host pid of the container init.
    pub init_pid: i32,
    /// Its recorded start time: the namespaces opened must be its own.
    pub init_start_time: u64,
    /// The process to run.
    pub process: &'a Process,
    /// Cgroup directories to join (the container's, or `--cgroup` ones).
    pub cgroup_paths: &'a [PathBuf],
    /// With `process.terminal`: where the pty master goes.
    pub console: Option<RawFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// Socket-activation fds passed on before the preserved ones.
    pub listen_fds: u32,
    /// Runtime fds the child must drop at once (the state directory: a host
    /// directory must never be reachable from inside, CVE-2024-21626).
    pub close_in_child: &'a [RawFd],
    /// The container's seccomp filter (listener already connected), if any.
    pub seccomp: Option<&'a seccomp::Filter>,
    /// The container's state, sent with a seccomp notify fd.
    pub state: &'a serde_json::Value,
}

/// Namespaces the child joins, in order: user first, so that it holds
/// capabilities over the namespaces the container's user namespace owns.
/// The pid namespace is the parent's business.
const JOIN_ORDER: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
];

/// An opened namespace of the init.
struct Ns {
    name: &'static str,
    flag: CloneFlags,
    file: File,
}

/// Starts the process in the container; returns its host pid once it has
/// been executed. `placed` runs once the process is in the container's
/// cgroups, before it runs anything (the caller releases its state lock
/// there: in a frozen cgroup the process stops until a `resume`).
pub fn spawn(a: &ExecArgs, placed: impl FnOnce()) -> Result<i32> {
    let pid_ns = open_if_different(a.init_pid, "pid")?;
    let mut joins = Vec::new();
    for (name, flag) in JOIN_ORDER {
        if let Some(file) = open_if_different(a.init_pid, name)? {
            joins.push(Ns { name, flag, file });
        }
    }
    // The files name the init's namespaces only if it is still the same
    // process now that they are open.
    match crate::state::proc_stat(a.init_pid) {
        Some((st, start)) if start == a.init_start_time && st != 'Z' && st != 'X' => {}
        _ => return Err(Error::NotRunning),
    }
    // Until its execve the child is this binary inside the container's pid
    // namespace: non-dumpable, container processes can neither ptrace it nor
    // open its /proc/<pid>/exe, mem or fds (CVE-2019-5736 class). The flag
    // is inherited by the fork and reset by the kernel at execve.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "exec: PR_SET_DUMPABLE");
    }
    let (parent_chan, child_chan) = channel::pair()?;
    if let Some(f) = &pid_ns {
        nix::sched::setns(f, CloneFlags::CLONE_NEWPID)
            .ctx(|| "exec: join the container's pid namespace")?;
    }
    let pid = fork_into(CloneFlags::empty())?;
    if pid == 0 {
        drop(parent_chan);
        let err = match child(a, &child_chan, &joins) {
            Ok((program, host_pid)) => finish::exec(
                &program,
                a.listen_fds + a.preserve_fds,
                a.listen_fds,
                a.seccomp.map(|f| (f, a.state, host_pid)),
            ),
            Err(e) => e,
        };
        let _ = child_chan.send(&Msg::Error(err.to_string()));
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or flushing its copied stdio buffers a second time.
        unsafe { libc::_exit(255) };
    }
    drop(child_chan);
    drop(joins);
    if let Err(e) = drive(a, pid, &parent_chan, placed) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(e);
    }
    Ok(pid)
}

/// Opens /proc/<pid>/ns/<name> unless it is the namespace we are in already
/// (joining one's own user namespace is an error, the others are no-ops).
fn open_if_different(pid: i32, name: &str) -> Result<Option<File>> {
    let theirs = format!("/proc/{pid}/ns/{name}");
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    let file = match File::open(&theirs) {
        Ok(f) => f,
        // A kernel without this namespace type has the file for nobody.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && ours.is_err() => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotRunning),
        Err(e) => return Err(e).ctx(|| format!("exec: open {theirs}")),
    };
    let meta = file.metadata().ctx(|| format!("exec: stat {theirs}"))?;
    match ours {
        Ok(o) if o.dev() == meta.dev() && o.ino() == meta.ino() => Ok(None),
        _ => Ok(Some(file)),
    }
}

/// Parent: cgroups before any code of the process runs, oom score, go.
fn drive(a: &ExecArgs, pid: i32, chan: &Channel, placed: impl FnOnce()) -> Result<()> {
    crate::cgroups::join_paths(a.cgroup_paths, pid)?;
    placed();
    if let Some(score) = a.process.oom_score_adj() {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
            .ctx(|| "process.oomScoreAdj")?;
    }
    chan.send(&Msg::Setup { pid })?;
    match chan.recv()? {
        // Close-on-exec: the channel closed because execve succeeded (or the
        // child died, which the caller sees when it waits).
        None => Ok(()),
        Some(Msg::Error(e)) => Err(Error::Msg(e)),
        Some(other) => Err(Error::msg(format!("sync: unexpected {other:?}"))),
    }
}

/// Child: everything between the fork and execve; returns the program and
/// the child's host pid (for a seccomp listener).
fn child(a: &ExecArgs, chan: &Channel, joins: &[Ns]) -> Result<(Program, i32)> {
    for fd in a.close_in_child {
        let _ = nix::unistd::close(*fd);
    }
    let process = a.process;
    // While still in the runtime's user namespace, where raising a hard
    // limit is allowed.
    if let Some(l) = process.rlimits() {
        rlimits::apply(l)?;
    }
    let host_pid = match chan.recv()? {
        Some(Msg::Setup { pid }) => pid,
        Some(Msg::Error(e)) => return Err(Error::Msg(e)),
        other => return Err(Error::msg(format!("sync: expected setup, got {other:?}"))),
    };
    // Every /proc access below goes through this handle, opened while /proc
    // is still the runtime's (a private instance for the container's pid
    // namespace, which this process was born in).
    let proc = Procfs::private()?;
    for ns in joins {
        nix::sched::setns(&ns.file, ns.flag)
            .ctx(|| format!("exec: join the container's {} namespace", ns.name))?;
    }
    if joins.iter().any(|ns| ns.flag == CloneFlags::CLONE_NEWUSER) {
        // Become root of the user namespace, as the init did.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .ctx(|| "exec: setgid 0 in the container's user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .ctx(|| "exec: setuid 0 in the container's user namespace")?;
    }
    // The container's session keyring (runc's setns process joins it by
    // name too), never the caller's: its keys must not reach the container.
    crate::security::keyring::join_new(a.id)?;
    if process.terminal().unwrap_or(false) {
        let socket = a
            .console
            .ok_or_else(|| Error::msg("terminal: no console socket"))?;
        // After setns into the mount namespace, / is the container's root.
        let root = File::open("/").ctx(|| "terminal: open /")?;
        let opts = crate::console::PtyOpts::for_process(process, false);
        crate::console::setup(root.as_raw_fd(), socket, &opts)?;
    }
    finish::set_umask(process);
    finish::drop_privileges(
        process,
        crate::security::caps::CapSets::from_spec(process.capabilities().as_ref())?,
        proc,
        a.listen_fds + a.preserve_fds,
        a.seccomp.map(|f| (f, a.state, host_pid)),
    )?;
    let program = finish::resolve(
        process.args().as_deref().unwrap_or_default(),
        process.env().as_deref().unwrap_or_default(),
    )?;
    Ok((program, host_pid))
}
