//! The container init: everything between the clone and execve, in the
//! order the spec prescribes. It runs in the cloned child, which holds a copy
//! of the parsed config, so nothing is re-read or re-parsed here.
//!
//! Steps: wait for the parent (id maps, cgroup) → join/unshare namespaces →
//! hostname → mounts and devices → prestart/createRuntime (parent) and
//! createContainer hooks → sysctl → terminal (pty, /dev/console) →
//! masked/readonly paths → pivot_root → rlimits, no_new_privs, capabilities,
//! LSM labels, seccomp, user → cwd → report ready → wait for `start` →
//! startContainer hooks → execve (the last steps are shared with `exec`, in
//! `finish`).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{accept4, recv, send, MsgFlags, SockFlag};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{Channel, Msg, START_FAILED, START_HOOK_FAILED, START_REFUSED};
use super::finish::{self, Program};
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsCtx};
use crate::security::procfs::Procfs;
use crate::security::{caps::CapSets, rlimits, seccomp};

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
    /// Socket-activation fds passed on before the preserved ones.
    pub listen_fds: u32,
    /// With `process.terminal`: the socket to send the pty master over.
    pub console: Option<RawFd>,
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
    // `process` is only needed by start (config.md): create without it.
    let process = spec.process().as_ref();
    if let (Some(socket), Some(process)) = (ctx.console, process) {
        let opts = crate::console::PtyOpts::for_process(process, true);
        crate::console::setup(root.as_raw_fd(), socket, &opts)?;
    }
    rootfs::mask_and_protect(&root, spec)?;
    rootfs::enter(root, ctx.no_pivot, ctx.plan.host_mount_ns)?;
    rootfs::finish(spec)?;
    let Some(process) = process else {
        return Ok(None);
    };

    finish::set_umask(process);
    if let Some(l) = process.rlimits() {
        rlimits::apply(l)?;
    }
    let mut caps = CapSets::from_spec(process.capabilities().as_ref())?;
    if crate::spec::version_at_least(spec.version(), 1, 1) {
        // What cannot be granted here was warned about by create.
        caps = caps.grantable_only();
    }
    let state = state_value(ctx, pid, "creating");
    finish::drop_privileges(
        process,
        caps,
        proc,
        ctx.listen_fds + ctx.preserve_fds,
        ctx.seccomp.map(|f| (f, &state, pid)),
    )?;
    finish::resolve(
        process.args().as_deref().unwrap_or_default(),
        process.env().as_deref().unwrap_or_default(),
    )
    .map(Some)
}

fn state_value(ctx: &InitCtx, pid: i32, status: &str) -> serde_json::Value {
    serde_json::from_str(&state_json(ctx, pid, status)).unwrap_or_default()
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
    let state = state_value(ctx, pid, "created");
    let err = finish::exec(
        p,
        ctx.listen_fds + ctx.preserve_fds,
        ctx.listen_fds,
        ctx.seccomp.map(|f| (f, &state, pid)),
    );
    (START_FAILED, err)
}
