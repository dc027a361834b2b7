//! `create`: from bundle to an init waiting for `start`, with state recorded.
//! On any failure nothing is left: no state dir, cgroup, mount or process.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cgroups::{self, Placement};
use crate::cli::CreateOpts;
use crate::error::{Context, Error, Result};
use crate::process::spawn::{spawn, SpawnArgs};
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
}

/// Creates the container and returns it with its state dir still locked.
pub fn create(req: &CreateRequest) -> Result<Created> {
    if req.opts.console_socket.is_some() {
        return Err(Error::NotSupported(
            "--console-socket (terminals come with the exec/tty work)".into(),
        ));
    }
    let bundle = spec::load_bundle(&req.opts.bundle)?;
    let sd = StateDir::create(req.root, req.id)?;
    let mut placement = None;
    match create_in(req, &bundle, &sd, &mut placement) {
        Ok(record) => Ok(Created { dir: sd, record }),
        Err(e) => {
            if let Some(p) = placement {
                p.remove();
            }
            let _ = sd.remove();
            Err(e)
        }
    }
}

fn create_in(
    req: &CreateRequest,
    bundle: &Bundle,
    sd: &StateDir,
    placement_out: &mut Option<Placement>,
) -> Result<Record> {
    let spec = &bundle.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let cg_path = cgroups::container_path(linux.cgroups_path().as_deref(), req.id);
    let resources = linux.resources().as_ref();
    let placement = Placement::create(&cg_path, resources)?;
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
        preserve_fds: req.opts.preserve_fds,
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
        own_pid_ns: ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()),
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

/// Writes the pid file atomically, digits only (containerd parses it whole).
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
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
