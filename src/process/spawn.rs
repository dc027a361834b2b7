//! The parent side of `create`: clone the init into its namespaces, place it
//! (id maps, cgroup, oom score), and drive it over the sync channel until it
//! reports ready. Any failure kills the init before returning the error.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{self, Msg};
use super::clone::fork_into_cgroup;
use super::init::{self, InitCtx};
use crate::cgroups::Placement;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};

/// What spawning needs.
pub struct SpawnArgs<'a> {
    /// The parsed config.
    pub spec: &'a Spec,
    /// Container id.
    pub id: &'a str,
    /// Absolute bundle dir.
    pub bundle: &'a Path,
    /// Absolute rootfs dir.
    pub rootfs: &'a Path,
    /// Where to bind the start socket (a short /proc/self/fd path).
    pub exec_sock: PathBuf,
    /// The container's cgroups, made but empty.
    pub placement: &'a Placement,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// Socket-activation fds passed on before the preserved ones.
    pub listen_fds: u32,
    /// With `process.terminal`: where the init sends the pty master.
    pub console: Option<RawFd>,
    /// The compiled seccomp filter, if any.
    pub seccomp: Option<&'a crate::security::seccomp::Filter>,
}

/// Clones and sets up the init; returns its host pid once it waits for `start`.
pub fn spawn(a: &SpawnArgs) -> Result<i32> {
    let linux = a
        .spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let plan = Plan::new(linux.namespaces().as_deref().unwrap_or_default())?;
    let joins = plan.open_joins()?;
    let listener = start_listener(&a.exec_sock)?;
    let (parent_chan, child_chan) = channel::pair()?;

    // A pid namespace cannot be entered by the process itself, only by its
    // future children: join it here, right before the clone.
    if let Some((t, f)) = joins.iter().find(|(t, _)| *t == LinuxNamespaceType::Pid) {
        namespaces::join(*t, f)?;
    }

    // On cgroup v2 the init starts in its cgroup (CLONE_INTO_CGROUP).
    let cg_fd = a.placement.clone_target();
    let (pid, in_cgroup) = fork_into_cgroup(plan.clone_flags, cg_fd.as_ref().map(|f| f.as_fd()))?;
    if pid == 0 {
        drop(parent_chan);
        let code = init::run(InitCtx {
            spec: a.spec,
            id: a.id,
            bundle: a.bundle,
            rootfs: a.rootfs,
            plan: &plan,
            joins,
            chan: child_chan,
            listener,
            cgroup_paths: &a.placement.paths,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            preserve_fds: a.preserve_fds,
            listen_fds: a.listen_fds,
            console: a.console,
            seccomp: a.seccomp,
        });
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or flushing its copied stdio buffers a second time.
        unsafe { libc::_exit(code) };
    }
    drop(child_chan);
    drop(listener);
    drop(cg_fd);
    let res = drive(a, &plan, pid, in_cgroup, &parent_chan);
    if let Err(e) = res {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(e);
    }
    Ok(pid)
}

fn start_listener(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "start socket")?;
    let addr = UnixAddr::new(path).ctx(|| "start socket address")?;
    bind(fd.as_raw_fd(), &addr).ctx(|| format!("bind {}", path.display()))?;
    listen(&fd, Backlog::new(4).unwrap_or(Backlog::MAXCONN)).ctx(|| "listen on start socket")?;
    Ok(fd)
}

fn drive(
    a: &SpawnArgs,
    plan: &Plan,
    pid: i32,
    in_cgroup: bool,
    chan: &channel::Channel,
) -> Result<()> {
    let linux = a
        .spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    if plan.new_userns {
        namespaces::write_id_maps(
            pid,
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
    }
    if !in_cgroup {
        a.placement.join(pid)?;
    }
    if let Some(score) = a.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        crate::security::procfs::Procfs::host()?
            .write(
                &format!("{pid}/oom_score_adj"),
                score.to_string().as_bytes(),
            )
            .ctx(|| "process.oomScoreAdj")?;
    }
    chan.send(&Msg::Setup { pid })?;
    loop {
        match chan.recv()? {
            Some(Msg::HooksRequest) => {
                let r = run_parent_hooks(a, pid);
                match r {
                    Ok(()) => chan.send(&Msg::HooksDone)?,
                    Err(e) => {
                        let _ = chan.send(&Msg::Error(e.to_string()));
                        return Err(e);
                    }
                }
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Error(e)) => return Err(Error::Msg(e)),
            Some(other) => return Err(Error::msg(format!("sync: unexpected {other:?}"))),
            None => {
                let st = waitpid(Pid::from_raw(pid), None);
                return Err(Error::msg(format!(
                    "container init exited during setup ({st:?})"
                )));
            }
        }
    }
}

/// prestart (deprecated) and createRuntime hooks, in the runtime namespace.
fn run_parent_hooks(a: &SpawnArgs, pid: i32) -> Result<()> {
    let Some(h) = a.spec.hooks() else {
        return Ok(());
    };
    // The runtime environment exists (lifecycle step 2 is over), so the
    // status is "created", as crun reports and runtime-tools expects.
    let state = serde_json::json!({
        "ociVersion": a.spec.version(),
        "id": a.id,
        "pid": pid,
        "status": "created",
        "bundle": a.bundle,
        "annotations": a.spec.annotations().clone().unwrap_or_default(),
    })
    .to_string();
    #[allow(deprecated)]
    if let Some(list) = h.prestart() {
        crate::hooks::run_all("prestart", list, &state)?;
    }
    if let Some(list) = h.create_runtime() {
        crate::hooks::run_all("createRuntime", list, &state)?;
    }
    Ok(())
}
