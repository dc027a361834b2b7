//! The container init: everything between the clone and execve, in the
//! order the spec prescribes. It runs in the cloned child, which holds a copy
//! of the parsed config, so nothing is re-read or re-parsed here.
//!
//! Steps: wait for the parent (id maps, cgroup) → join/unshare namespaces →
//! hostname → mounts and devices → prestart/createRuntime (parent) and
//! createContainer hooks → sysctl → masked/readonly paths → pivot_root →
//! rlimits, no_new_privs, capabilities, user → cwd → report ready → wait for
//! `start` → startContainer hooks → execve.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::socket::{accept4, recv, send, MsgFlags, SockFlag};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{Channel, Msg, START_FAILED, START_HOOK_FAILED, START_REFUSED};
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsCtx};
use crate::security::procfs::Procfs;
use crate::security::{caps::CapSets, lsm, rlimits, seccomp, user};

/// Everything the init needs, prepared by the parent before the clone.
pub struct InitCtx<'a> {
    /// The parsed config.
    pub spec: &'a Spec,
    /// Container id.
    pub id: &'a str,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// Absolute rootfs path.
    pub rootfs: &'a Path,
    /// The namespace plan.
    pub plan: &'a Plan,
    /// Namespaces to join, opened by the parent.
    pub joins: Vec<(LinuxNamespaceType, File)>,
    /// Init's end of the sync channel.
    pub chan: Channel,
    /// The listening socket `start` connects to.
    pub listener: OwnedFd,
    /// The container's cgroup directories.
    pub cgroup_paths: &'a [PathBuf],
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// The compiled seccomp filter, if any.
    pub seccomp: Option<&'a seccomp::Filter>,
}

/// What the final execve takes.
struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Runs the init; returns only with the exit code of a failed init.
pub fn run(ctx: InitCtx) -> i32 {
    // CVE-2016-9962: until execve, no process of the container may ptrace
    // the init or open its /proc files (fds, exe, memory).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let mut pid = 0;
    let program = match prepare(&ctx, &mut pid) {
        Ok(p) => p,
        Err(e) => {
            let _ = ctx.chan.send(&Msg::Error(e.to_string()));
            return 1;
        }
    };
    if ctx.chan.send(&Msg::Ready).is_err() {
        return 1;
    }
    // Block until `start` connects. Anything else that connects and does
    // not say "start" is dropped.
    let (conn, program) = loop {
        let fd = match accept4(ctx.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        let mut b = [0u8; 1];
        match (recv(fd, &mut b, MsgFlags::empty()), &program) {
            (Ok(1), Some(p)) if b[0] == b'S' => break (fd, p),
            // Without `process` start must fail and leave the container
            // as it was: refuse, and keep waiting.
            (Ok(1), None) if b[0] == b'S' => {
                let mut msg = vec![START_REFUSED];
                msg.extend_from_slice(b"process is not set in config.json");
                let _ = send(fd, &msg, MsgFlags::MSG_NOSIGNAL);
                let _ = nix::unistd::close(fd);
            }
            _ => {
                let _ = nix::unistd::close(fd);
            }
        }
    };
    let (tag, err) = start(&ctx, pid, program);
    let mut msg = vec![tag];
    msg.extend_from_slice(err.to_string().as_bytes());
    let _ = send(conn, &msg, MsgFlags::MSG_NOSIGNAL);
    1
}

/// The container's state with `pid`: the host pid for the seccomp listener
/// (runtime namespace), the container's own (`own_pid`) for the hooks that
/// run in the container's namespaces, as the spec asks.
fn state_json(ctx: &InitCtx, pid: i32, status: &str) -> String {
    serde_json::json!({
        "ociVersion": ctx.spec.version(),
        "id": ctx.id,
        "pid": pid,
        "status": status,
        "bundle": ctx.bundle,
        "annotations": ctx.spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
}

/// This process's pid as the container sees it (1 with its own pid namespace).
fn own_pid() -> i32 {
    std::process::id() as i32
}

fn prepare(ctx: &InitCtx, pid_out: &mut i32) -> Result<Option<Program>> {
    let pid = match ctx.chan.recv()? {
        Some(Msg::Setup { pid }) => pid,
        Some(Msg::Error(e)) => return Err(Error::Msg(e)),
        other => return Err(Error::msg(format!("sync: expected setup, got {other:?}"))),
    };
    *pid_out = pid;

    // Namespaces: join by path (user first), then create the deferred ones.
    for (t, f) in &ctx.joins {
        if *t != LinuxNamespaceType::Pid {
            namespaces::join(*t, f)?;
        }
    }
    if ctx.plan.userns {
        // Become root of the user namespace (mapped by the parent by now).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .ctx(|| "setgid 0 in user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .ctx(|| "setuid 0 in user namespace")?;
    }
    if !ctx.plan.unshare_flags.is_empty() {
        nix::sched::unshare(ctx.plan.unshare_flags).ctx(|| "unshare namespaces")?;
    }
    if !ctx.no_new_keyring {
        crate::security::keyring::join_new(ctx.id)?;
    }
    let new_net = nix::sched::CloneFlags::CLONE_NEWNET;
    if ctx.plan.clone_flags.contains(new_net) || ctx.plan.unshare_flags.contains(new_net) {
        crate::net::loopback_up()?;
    }
    let spec = ctx.spec;
    // Every /proc write below goes through this handle, opened while /proc
    // is still the runtime's.
    let proc = Procfs::private()?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| "hostname: sethostname")?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = CString::new(d).map_err(|_| Error::msg("domainname: contains NUL"))?;
        // SAFETY: setdomainname reads `len` bytes from the valid buffer.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "domainname: setdomainname");
        }
    }

    // Relative bind sources are relative to the bundle.
    std::env::set_current_dir(ctx.bundle)
        .ctx(|| format!("chdir to bundle {}", ctx.bundle.display()))?;
    // Device nodes and mount points get exactly the modes asked for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let root = rootfs::prepare(&RootfsCtx {
        spec,
        rootfs: ctx.rootfs,
        userns: ctx.plan.userns,
        cgroup_paths: ctx.cgroup_paths,
        host_mount_ns: ctx.plan.host_mount_ns,
    })?;

    if let Some(hooks) = spec.hooks() {
        #[allow(deprecated)]
        let parent_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
            || hooks
                .create_runtime()
                .as_ref()
                .is_some_and(|h| !h.is_empty());
        if parent_hooks {
            ctx.chan.send(&Msg::HooksRequest)?;
            match ctx.chan.recv()? {
                Some(Msg::HooksDone) => {}
                Some(Msg::Error(e)) => return Err(Error::Msg(e)),
                other => {
                    return Err(Error::msg(format!(
                        "sync: expected hooks done, got {other:?}"
                    )))
                }
            }
        }
        if let Some(list) = hooks.create_container().as_ref().filter(|l| !l.is_empty()) {
            crate::hooks::run_all(
                "createContainer",
                list,
                &state_json(ctx, own_pid(), "created"),
            )?;
        }
    }

    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        crate::sysctl::apply(sysctl, ctx.plan, &proc)?;
    }
    rootfs::mask_and_protect(&root, spec)?;
    rootfs::enter(root, ctx.no_pivot, ctx.plan.host_mount_ns)?;
    rootfs::finish(spec)?;

    // `process` is only needed by start (config.md): create without it.
    let Some(process) = spec.process().as_ref() else {
        return Ok(None);
    };
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask & 0o777));
    if let Some(l) = process.rlimits() {
        rlimits::apply(l)?;
    }
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "noNewPrivileges");
        }
    }
    let mut caps = CapSets::from_spec(process.capabilities().as_ref())?;
    if crate::spec::version_at_least(spec.version(), 1, 1) {
        // What cannot be granted here was warned about by create.
        caps = caps.grantable_only();
    }
    caps.apply_bounding()?;
    lsm::apply_exec_labels(&proc, spec)?;
    // Inherited fds must not reach the container (CVE-2024-21626); marked
    // here too, before an early seccomp filter could forbid close_range.
    mark_cloexec(3 + ctx.preserve_fds).ctx(|| "mark fds close-on-exec")?;
    let early = ctx.seccomp.filter(|f| f.early);
    // Under an early filter the working directory is entered before it
    // loads: it is resolved with openat2, which a profile older than that
    // syscall denies. As runc does, root tries first; a directory only the
    // container user may enter is tried again after the switch.
    let cwd_done = early.is_some() && rootfs::safepath::chdir_in_root(process.cwd()).is_ok();
    if let Some(f) = early {
        f.load(&state_value(ctx, pid, "creating"), pid)?;
    }
    user::switch(process.user(), setgroups_allowed(&proc))?;
    drop(proc);
    caps.apply_process()?;
    if !cwd_done {
        rootfs::safepath::chdir_in_root(process.cwd())?;
    }
    program(
        process.args().as_deref().unwrap_or_default(),
        process.env().as_deref().unwrap_or_default(),
    )
    .map(Some)
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

fn state_value(ctx: &InitCtx, pid: i32, status: &str) -> serde_json::Value {
    serde_json::from_str(&state_json(ctx, pid, status)).unwrap_or_default()
}

/// Resolves the executable as execvp would, with the container's PATH.
fn program(args: &[String], env: &[String]) -> Result<Program> {
    let name = &args[0];
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

/// After `start`: startContainer hooks, then execve. Returns only on
/// failure, with the reply tag that tells which step failed.
fn start(ctx: &InitCtx, pid: i32, p: &Program) -> (u8, Error) {
    if let Some(list) = ctx
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .filter(|l| !l.is_empty())
    {
        if let Err(e) = crate::hooks::run_all(
            "startContainer",
            list,
            &state_json(ctx, own_pid(), "created"),
        ) {
            return (START_HOOK_FAILED, e);
        }
    }
    // The container starts with no blocked signals and default SIGPIPE (the
    // Rust runtime ignores it, and ignored dispositions survive execve).
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: resetting a disposition to the default has no memory effects.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    // Every fd past stdio and --preserve-fds is closed by the execve. An
    // early seccomp filter may forbid close_range: then the marking done
    // before it loaded stands (every fd opened since is close-on-exec).
    if let Err(e) = mark_cloexec(3 + ctx.preserve_fds) {
        if !ctx.seccomp.is_some_and(|f| f.early) {
            return (
                START_FAILED,
                Error::msg(format!("mark fds close-on-exec: {e}")),
            );
        }
    }
    // As late as possible: only the execve (and, for NOTIFY, the send of
    // the notify fd) run under the filter.
    if let Some(f) = ctx.seccomp.filter(|f| !f.early) {
        if let Err(e) = f.load(&state_value(ctx, pid, "created"), pid) {
            return (START_FAILED, e);
        }
    }
    let e = nix::unistd::execve(&p.path, &p.argv, &p.envp).unwrap_err();
    let err = Error::msg(format!(
        "exec {:?}: {}",
        p.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::io::Error::from_raw_os_error(e as i32)
    ));
    (START_FAILED, err)
}
