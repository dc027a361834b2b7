//! `create`: from bundle to an init waiting for `start`, with state recorded.
//! On any failure nothing is left: no state dir, cgroup, mount or process.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::cgroups::{self, Placement};
use crate::cli::CreateOpts;
use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Context, Error, Result};
use crate::namespaces;
use crate::process::finish;
use crate::process::spawn::{spawn, SpawnArgs};
use crate::rootfs;
use crate::spec::{self, Bundle};
use crate::state::{self, Record, StateDir};

/// A create call.
pub struct CreateRequest<'a> {
    /// `--root`.
    pub root: &'a Path,
    /// Container id.
    pub id: &'a str,
    /// The create flags.
    pub opts: &'a CreateOpts,
}

/// A created container, still locked by this process.
pub struct Created {
    /// Its state directory.
    pub dir: StateDir,
    /// What was recorded.
    pub record: Record,
    /// For a foreground `run` with a terminal: where the pty master arrives.
    pub console: Option<OwnedFd>,
}

/// Creates the container and returns it with its state dir still locked.
pub fn create(req: &CreateRequest) -> Result<Created> {
    create_with(req, true)
}

/// `create`, or the create step of `run` (`detach` false: a terminal is
/// relayed by the caller rather than sent to a console socket).
pub(crate) fn create_with(req: &CreateRequest, detach: bool) -> Result<Created> {
    let bundle = spec::load_bundle(&req.opts.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .is_some_and(|p| p.terminal().unwrap_or(false));
    crate::console::check_flags(terminal, detach, req.opts.console_socket.as_deref())?;
    let listen_fds = finish::listen_fds();
    finish::check_passed_fds(listen_fds + req.opts.preserve_fds)?;
    // The container's end of the console socket, and our end when we relay.
    let (console, relay) = match (&req.opts.console_socket, terminal) {
        (Some(path), _) => (Some(crate::console::connect_socket(path)?), None),
        (None, true) => {
            let (ours, theirs) = crate::console::pair()?;
            (Some(theirs), Some(ours))
        }
        (None, false) => (None, None),
    };
    let rootfs_mount = host_mount_floor(&bundle)?;
    let sd = StateDir::create(req.root, req.id)?;
    let mut placement = None;
    let io = Io {
        console: console.as_ref().map(|c| c.as_raw_fd()),
        listen_fds,
    };
    match create_in(req, &bundle, &sd, &io, &mut placement, rootfs_mount) {
        Ok(record) => Ok(Created {
            dir: sd,
            record,
            console: relay,
        }),
        Err(e) => {
            if let Some(floor) = rootfs_mount {
                rootfs::hostns::detach_rootfs(&bundle.rootfs, floor);
            }
            if let Some(p) = placement {
                p.remove();
            }
            let _ = sd.remove();
            Err(e)
        }
    }
}

/// For a container that inherits the runtime's mount namespace, the mount
/// its rootfs is on now: its own mounts will stack above it (see hostns).
fn host_mount_floor(bundle: &Bundle) -> Result<Option<u64>> {
    let ns = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    if !namespaces::inherited(ns, LinuxNamespaceType::Mount) {
        return Ok(None);
    }
    rootfs::hostns::mount_id(&bundle.rootfs).map(Some)
}

/// The fds `create` hands to the init besides its stdio.
struct Io {
    console: Option<std::os::fd::RawFd>,
    listen_fds: u32,
}

fn create_in(
    req: &CreateRequest,
    bundle: &Bundle,
    sd: &StateDir,
    io: &Io,
    placement_out: &mut Option<Placement>,
    rootfs_mount: Option<u64>,
) -> Result<Record> {
    let spec = &bundle.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let cg_path = cgroups::container_path(linux.cgroups_path().as_deref(), req.id);
    warn_ungrantable_caps(spec)?;
    crate::security::lsm::check(spec)?;
    let mut seccomp = crate::security::seccomp::prepare(spec, &bundle.unmodelled)?;
    if let Some(f) = seccomp.as_mut() {
        f.connect_listener()?;
    }
    let resources = linux.resources().as_ref();
    let placement = if cgroups::systemd::enabled() {
        Placement::create_systemd(
            linux.cgroups_path().as_deref().and_then(Path::to_str),
            req.id,
            resources,
            &spec.annotations().clone().unwrap_or_default(),
        )?
    } else {
        Placement::create(&cg_path, resources)?
    };
    let placement = placement_out.insert(placement);
    // Limits and device rules are in force before the init is cloned into
    // the cgroup. linux.devices only creates nodes: access is what the
    // device rules (and runc's default allow-list) say.
    placement.apply(resources)?;

    let pid = spawn(&SpawnArgs {
        spec,
        id: req.id,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        exec_sock: sd.fd_path(state::EXEC_SOCK),
        placement,
        no_pivot: req.opts.no_pivot,
        no_new_keyring: req.opts.no_new_keyring,
        preserve_fds: req.opts.preserve_fds,
        listen_fds: io.listen_fds,
        console: io.console,
        seccomp: seccomp.as_ref(),
    })?;
    let start_time = state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
    let ns = linux.namespaces().as_deref().unwrap_or_default();
    let record = Record {
        id: req.id.to_string(),
        pid,
        start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        oci_version: spec.version().clone(),
        hooks: spec.hooks().clone(),
        cgroup_paths: placement.paths.clone(),
        cgroup_created: placement.created.clone(),
        systemd_unit: placement.systemd.as_ref().map(|s| s.unit.clone()),
        own_pid_ns: ns
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()),
        rootfs_mount,
    };
    let saved = sd.save(&record).and_then(|()| match &req.opts.pid_file {
        Some(p) => write_pid_file(p, pid),
        None => Ok(()),
    });
    if let Err(e) = saved {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(e);
    }
    Ok(record)
}

/// runtime-spec 1.1+: a capability that cannot be granted (it is not in the
/// runtime's own bounding set, e.g. CAP_SYS_RESOURCE on a restricted host) is
/// logged as a warning and left out rather than failing create. Configs for
/// 1.0.x keep failing, as their spec asks. Unknown names always fail.
fn warn_ungrantable_caps(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let Some(p) = spec.process() else {
        return Ok(());
    };
    let sets = crate::security::caps::CapSets::from_spec(p.capabilities().as_ref())?;
    let missing = sets.ungrantable();
    if !missing.is_empty() && spec::version_at_least(spec.version(), 1, 1) {
        let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        log::warn!(
            "process.capabilities: {} not in the runtime's bounding set, so not granted",
            names.join(", ")
        );
    }
    Ok(())
}

/// Writes the pid file atomically, digits only (containerd parses it whole).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx(|| "getcwd")?.join(path)
    };
    let dir = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("pid file {}", tmp.display()))?;
    f.write_all(pid.to_string().as_bytes())
        .ctx(|| format!("pid file {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &abs).ctx(|| format!("pid file {}", abs.display()))
}
