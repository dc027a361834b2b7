//! The container's cgroups: placement, `linux.resources`, freezing,
//! statistics and removal, on cgroup v1, v2 and hybrid hosts.
//!
//! `Manager` is the one interface; `v1::Manager` (one directory per v1
//! hierarchy, plus the cgroup2 directory of a hybrid host) and
//! `v2::Manager` (one directory) implement it. Each controller of a config
//! is applied where the host has it: on a hybrid host a controller with no
//! v1 mount but listed by the cgroup2 root (hugetlb on this kind of machine)
//! is driven through cgroup2, which crun refuses to do.
//!
//! Hand-written rather than cgroups-rs or youki's libcgroups: placement and
//! limits are a mkdir and a few writes per hierarchy, and the libraries cost
//! 2x (cgroups-rs) to 23x (libcgroups) the instructions for the same job,
//! pull in a second oci-spec and nix, and neither drives a hybrid host's
//! cgroup2-only controllers. Measurements: docs/cgroups.md.

pub mod dbus;
pub mod devices;
pub mod ebpf;
pub mod resources;
pub mod stats;
pub mod subpath;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use resources::{Need, PREFIX};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// Controllers (v1) or empty for cgroup2.
    pub controllers: Vec<String>,
    /// True for the cgroup2 (unified) hierarchy.
    pub unified: bool,
}

/// True when /sys/fs/cgroup itself is cgroup2 (a pure v2 host).
pub fn is_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The cgroup hierarchies mounted on this host, from /proc/self/mountinfo.
pub fn hierarchies() -> Result<Vec<Hierarchy>> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| io_err(e, "read mountinfo"))?;
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let mount = pre.split(' ').nth(4).unwrap_or("");
        if !mount.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let mount = PathBuf::from(mount);
        if out.iter().any(|h| h.mount == mount) {
            continue;
        }
        let unified = fstype == "cgroup2";
        let controllers = if unified {
            Vec::new()
        } else {
            let opts = post.nth(1).unwrap_or("");
            opts.split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                .map(str::to_string)
                .chain(
                    opts.split(',')
                        .filter_map(|o| o.strip_prefix("name="))
                        .map(|n| format!("name={n}")),
                )
                .collect()
        };
        out.push(Hierarchy {
            mount,
            controllers,
            unified,
        });
    }
    Ok(out)
}

/// The cgroup path of this process in a hierarchy, from /proc/self/cgroup.
fn own_cgroup(data: &str, h: &Hierarchy) -> String {
    for line in data.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let matches = if h.unified {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty()
                && ctrls
                    .split(',')
                    .any(|c| h.controllers.iter().any(|x| x == c))
        };
        if matches {
            return path.to_string();
        }
    }
    "/".into()
}

/// Where the container goes: the spec's cgroupsPath or `/mydocker/<id>`.
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(format!("/mydocker/{id}")),
    }
}

/// Writes `value` to `dir/file` (never creating it).
pub(crate) fn write_raw(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

/// Writes `value` to `dir/file` on behalf of the config field `field`: a
/// missing file means the host cannot honour the field.
pub(crate) fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    write_raw(dir, file, value).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::NotSupported(format!("{field} (no {file} in {})", dir.display()))
        } else {
            Error::msg(format!(
                "{field}: write {value:?} to {}: {e}",
                dir.join(file).display()
            ))
        }
    })
}

pub(crate) fn io_err(source: std::io::Error, context: impl Into<String>) -> Error {
    Error::Io {
        context: context.into(),
        source,
    }
}

/// The container's cgroups, on either kind of host.
#[derive(Debug, Clone)]
pub enum Manager {
    /// A cgroup v1 or hybrid host.
    V1(v1::Manager),
    /// A pure cgroup v2 host.
    V2(v2::Manager),
}

/// Where a controller is driven.
enum Loc<'a> {
    V1(&'a Path),
    V2(&'a v2::Manager),
}

/// The controllers, with their v1 and v2 setters, in the order runc applies them.
type Setter = fn(&Path, &LinuxResources, bool) -> Result<()>;
const CONTROLLERS: &[(&str, Setter, Setter)] = &[
    (
        "pids",
        |d, r, _| v1::apply_pids(d, r),
        |d, r, _| v2::apply_pids(d, r),
    ),
    ("memory", |d, r, _| v1::apply_memory(d, r), v2::apply_memory),
    (
        "blkio",
        |d, r, _| v1::apply_blkio(d, r),
        |d, r, _| v2::apply_io(d, r),
    ),
    (
        "cpu",
        |d, r, _| v1::apply_cpu(d, r),
        |d, r, _| v2::apply_cpu(d, r),
    ),
    (
        "cpuset",
        |d, r, _| v1::apply_cpuset(d, r),
        |d, r, _| v2::apply_cpuset(d, r),
    ),
    (
        "hugetlb",
        |d, r, _| v1::apply_hugetlb(d, r),
        |d, r, _| v2::apply_hugetlb(d, r),
    ),
    (
        "net_cls",
        |d, r, _| v1::apply_net_cls(d, r),
        |_, _, _| Ok(()),
    ),
    (
        "net_prio",
        |d, r, _| v1::apply_net_prio(d, r),
        |_, _, _| Ok(()),
    ),
    (
        "rdma",
        |d, r, _| v2::apply_rdma(d, r),
        |d, r, _| v2::apply_rdma(d, r),
    ),
];

impl Manager {
    /// Works out the container's directory in every hierarchy for
    /// `cgroups_path` (nothing is made yet).
    pub fn new(cgroups_path: &Path) -> Result<Manager> {
        if cgroups_path
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(Error::msg(format!(
                "linux.cgroupsPath: {:?} must not contain \"..\"",
                cgroups_path
            )));
        }
        let hs = hierarchies()?;
        let own = if cgroups_path.is_absolute() {
            String::new()
        } else {
            std::fs::read_to_string("/proc/self/cgroup")
                .map_err(|e| io_err(e, "read /proc/self/cgroup"))?
        };
        let dir_in = |h: &Hierarchy| -> PathBuf {
            let rel = if cgroups_path.is_absolute() {
                cgroups_path.to_path_buf()
            } else {
                let own = PathBuf::from(own_cgroup(&own, h));
                // On cgroup2 our own cgroup holds processes, so it cannot
                // enable controllers for a child: use its parent, as runc.
                let base = if h.unified {
                    own.parent().map(Path::to_path_buf).unwrap_or(own)
                } else {
                    own
                };
                base.join(cgroups_path)
            };
            h.mount.join(rel.strip_prefix("/").unwrap_or(&rel))
        };
        if is_unified() {
            let h = hs
                .iter()
                .find(|h| h.unified && h.mount == Path::new("/sys/fs/cgroup"))
                .ok_or_else(|| Error::msg("cgroup2 is not mounted at /sys/fs/cgroup"))?;
            return Ok(Manager::V2(v2::Manager::new(&h.mount, dir_in(h))));
        }
        let mut dirs = Vec::new();
        let mut unified = None;
        for h in &hs {
            if h.unified {
                unified = Some(v2::Manager::new(&h.mount, dir_in(h)));
            } else {
                dirs.push(v1::Dir {
                    mount: h.mount.clone(),
                    path: dir_in(h),
                    controllers: h.controllers.clone(),
                });
            }
        }
        Ok(Manager::V1(v1::Manager { dirs, unified }))
    }

    /// The manager of a created container, from its recorded directories.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Manager> {
        let hs = hierarchies()?;
        let find = |p: &Path| {
            hs.iter()
                .filter(|h| p.starts_with(&h.mount))
                .max_by_key(|h| h.mount.components().count())
        };
        if is_unified() {
            let p = paths
                .first()
                .ok_or_else(|| Error::msg("the container has no cgroup"))?;
            let h = find(p)
                .ok_or_else(|| Error::msg(format!("{}: not in a cgroup hierarchy", p.display())))?;
            return Ok(Manager::V2(v2::Manager::new(&h.mount, p.clone())));
        }
        let mut dirs = Vec::new();
        let mut unified = None;
        for p in paths {
            let Some(h) = find(p) else { continue };
            if h.unified {
                unified = Some(v2::Manager::new(&h.mount, p.clone()));
            } else {
                dirs.push(v1::Dir {
                    mount: h.mount.clone(),
                    path: p.clone(),
                    controllers: h.controllers.clone(),
                });
            }
        }
        Ok(Manager::V1(v1::Manager { dirs, unified }))
    }

    /// The container's directory in every hierarchy.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Manager::V1(m) => m
                .dirs
                .iter()
                .map(|d| d.path.clone())
                .chain(m.unified.iter().map(|u| u.dir.clone()))
                .collect(),
            Manager::V2(m) => vec![m.dir.clone()],
        }
    }

    fn locate(&self, controller: &str) -> Option<Loc<'_>> {
        let v2name = resources::v2_controller(controller);
        match self {
            Manager::V1(m) => m
                .dir(controller)
                .map(Loc::V1)
                .or_else(|| m.unified.as_ref().filter(|u| u.has(v2name)).map(Loc::V2)),
            Manager::V2(m) => m.has(v2name).then_some(Loc::V2(m)),
        }
    }

    /// Refuses what this host cannot honour, before anything is made: a
    /// controller it lacks, a v1-only field on a controller driven through
    /// cgroup2, bad device rules or `unified` keys.
    pub fn check(&self, r: &LinuxResources) -> Result<()> {
        let pure_v2 = matches!(self, Manager::V2(_));
        for (field, ctrl, why) in resources::v2_refused(r) {
            if pure_v2 || matches!(self.locate(ctrl), Some(Loc::V2(_))) {
                return Err(Error::NotSupported(format!("{field} ({why})")));
            }
        }
        for Need { field, controller } in resources::needs(r) {
            if self.locate(controller).is_none() {
                let name = if pure_v2 {
                    resources::v2_controller(controller)
                } else {
                    controller
                };
                return Err(Error::NotSupported(format!(
                    "{field} (no {name} cgroup controller on this host)"
                )));
            }
        }
        let rules = r.devices().as_deref().unwrap_or_default();
        devices::rules(rules, &format!("{PREFIX}.devices"))?;
        if let Manager::V1(m) = self {
            if !rules.is_empty() && m.dir("devices").is_none() {
                return Err(Error::NotSupported(format!(
                    "{PREFIX}.devices (no devices cgroup controller on this host)"
                )));
            }
        }
        for k in r.unified().iter().flatten().map(|(k, _)| k) {
            resources::check_unified_key(k)?;
            let unified = match self {
                Manager::V1(m) => m.unified.as_ref(),
                Manager::V2(m) => Some(m),
            };
            if unified.is_none() {
                return Err(Error::NotSupported(format!(
                    "{PREFIX}.unified.{k} (no cgroup v2 hierarchy on this host)"
                )));
            }
        }
        Ok(())
    }

    /// Applies `r`: each set field to its controller (only the files the
    /// config asks for), the device rules (always at create: runc's default
    /// allow-list; on update only if given), then `unified`.
    pub fn apply(&self, r: &LinuxResources, update: bool) -> Result<()> {
        self.check(r)?;
        let needs = resources::needs(r);
        for (ctrl, set_v1, set_v2) in CONTROLLERS {
            if !needs.iter().any(|n| n.controller == *ctrl) {
                continue;
            }
            match self.locate(ctrl) {
                Some(Loc::V1(dir)) => set_v1(dir, r, update)?,
                Some(Loc::V2(m)) => set_v2(&m.dir, r, update)?,
                None => {}
            }
        }
        if !update || r.devices().is_some() {
            self.apply_devices(r, update)?;
        }
        match self {
            Manager::V1(m) => {
                if let Some(u) = &m.unified {
                    v2::apply_unified(u, r, true)?;
                }
            }
            Manager::V2(m) => v2::apply_unified(m, r, false)?,
        }
        Ok(())
    }

    fn apply_devices(&self, r: &LinuxResources, update: bool) -> Result<()> {
        let rules = devices::rules(
            r.devices().as_deref().unwrap_or_default(),
            &format!("{PREFIX}.devices"),
        )?;
        match self {
            Manager::V1(m) => {
                let Some(dir) = m.dir("devices") else {
                    return Ok(());
                };
                if update {
                    // Re-writing the list starts with "deny all": skip it
                    // when nothing changes, so running processes never see
                    // a device vanish for a moment.
                    let want = devices::Emulator::from_rules(&rules);
                    if devices::read_v1_list(dir).is_some_and(|cur| devices::same_list(&cur, &want))
                    {
                        return Ok(());
                    }
                }
                devices::apply_v1(dir, &rules)
            }
            Manager::V2(m) => ebpf::apply(&m.dir, &rules),
        }
    }

    /// Freezes every process of the container.
    pub fn freeze(&self) -> Result<()> {
        match self {
            Manager::V1(m) if m.dir("freezer").is_none() && m.unified.is_some() => {
                m.unified.as_ref().map_or(Ok(()), v2::Manager::freeze)
            }
            Manager::V1(m) => m.freeze(),
            Manager::V2(m) => m.freeze(),
        }
    }

    /// Thaws the container.
    pub fn thaw(&self) -> Result<()> {
        match self {
            Manager::V1(m) if m.dir("freezer").is_none() && m.unified.is_some() => {
                m.unified.as_ref().map_or(Ok(()), v2::Manager::thaw)
            }
            Manager::V1(m) => m.thaw(),
            Manager::V2(m) => m.thaw(),
        }
    }

    /// True when the container is frozen.
    pub fn is_frozen(&self) -> bool {
        is_frozen(&self.paths())
    }

    /// SIGKILLs the whole cgroup at once where the kernel can (v2
    /// cgroup.kill); false when the caller must signal pid by pid.
    pub fn kill_all(&self) -> Result<bool> {
        match self {
            Manager::V2(m) => m.kill(),
            Manager::V1(_) => Ok(false),
        }
    }

    /// Every process in the container's cgroup and its sub-cgroups.
    pub fn pids(&self) -> Vec<i32> {
        let dir = match self {
            Manager::V1(m) => ["pids", "freezer", "devices", "memory", "cpu"]
                .iter()
                .find_map(|c| m.dir(c))
                .map(Path::to_path_buf)
                .or_else(|| m.dirs.first().map(|d| d.path.clone())),
            Manager::V2(m) => Some(m.dir.clone()),
        };
        let mut out = Vec::new();
        if let Some(d) = dir {
            collect_pids(&d, &mut out);
        }
        out
    }

    /// Statistics in runc's `events` shape.
    pub fn stats(&self) -> stats::Stats {
        let mut s = stats::Stats::default();
        match self {
            Manager::V1(m) => v1::stats(m, &mut s),
            Manager::V2(m) => v2::stats(&m.dir, &mut s, None),
        }
        s
    }

    /// Starts watching for OOM kills in the container.
    pub fn oom_watch(&self) -> Result<OomWatch> {
        match self {
            Manager::V1(m) => match m.dir("memory") {
                Some(d) => Ok(OomWatch::V1(v1::OomWatch::new(d)?)),
                None => match m.unified.as_ref().filter(|u| u.has("memory")) {
                    Some(u) => Ok(OomWatch::V2(v2::OomWatch::new(&u.dir)?)),
                    None => Err(Error::NotSupported(
                        "events: no memory cgroup controller on this host".into(),
                    )),
                },
            },
            Manager::V2(m) => Ok(OomWatch::V2(v2::OomWatch::new(&m.dir)?)),
        }
    }
}

/// OOM notifications of either kind.
pub enum OomWatch {
    /// v1 eventfd.
    V1(v1::OomWatch),
    /// v2 inotify on memory.events.
    V2(v2::OomWatch),
}

impl OomWatch {
    /// The fd that becomes readable on an OOM.
    pub fn fd(&self) -> &OwnedFd {
        match self {
            OomWatch::V1(w) => w.fd(),
            OomWatch::V2(w) => w.fd(),
        }
    }

    /// The number of OOM kills since the last call.
    pub fn take(&mut self) -> u64 {
        match self {
            OomWatch::V1(w) => w.take(),
            OomWatch::V2(w) => w.take(),
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

/// The cgroup directories of a container, made and not yet joined.
#[derive(Debug)]
pub struct Placement {
    /// The container's directory in each hierarchy.
    pub paths: Vec<PathBuf>,
    /// The container's own directories that this placement created.
    pub created: Vec<PathBuf>,
    /// The manager of those directories.
    pub manager: Manager,
    /// With `--systemd-cgroup`: the scope systemd makes at `join`.
    pub systemd: Option<systemd::Scope>,
}

impl Placement {
    /// Checks `resources` against the host, then makes the container's
    /// cgroup in every hierarchy (v1, plus a hybrid host's cgroup2) or the
    /// unified one. Nothing is left behind on error.
    pub fn create(cgroups_path: &Path, resources: Option<&LinuxResources>) -> Result<Placement> {
        let manager = Manager::new(cgroups_path)?;
        let empty = LinuxResources::default();
        let r = resources.unwrap_or(&empty);
        manager.check(r)?;
        let enable: Vec<&str> = match &manager {
            // Every controller, as runc: later updates and stats need them.
            Manager::V2(m) => m.available.iter().map(String::as_str).collect(),
            // A hybrid host's cgroup2 only needs what the config asks of it.
            Manager::V1(m) => {
                let mut v: Vec<&str> = Vec::new();
                for n in resources::needs(r) {
                    if m.dir(n.controller).is_none() {
                        let c = resources::v2_controller(n.controller);
                        if !v.contains(&c) {
                            v.push(c);
                        }
                    }
                }
                for k in r.unified().iter().flatten().map(|(k, _)| k) {
                    if let Some((c, _)) = k.split_once('.') {
                        if c != "cgroup" && !v.contains(&c) {
                            v.push(c);
                        }
                    }
                }
                v
            }
        };
        let mut p = Placement {
            paths: manager.paths(),
            created: Vec::new(),
            manager: manager.clone(),
            systemd: None,
        };
        let made = match &manager {
            Manager::V1(m) => m.create(&enable, &mut p.created),
            Manager::V2(m) => m.create(&enable, &mut p.created),
        };
        if let Err(e) = made {
            p.remove();
            return Err(e);
        }
        Ok(p)
    }

    /// With `--systemd-cgroup`: a placement whose directory is the scope
    /// systemd will make for the init (see systemd.rs); nothing is made yet.
    pub fn create_systemd(
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
        annotations: &std::collections::HashMap<String, String>,
    ) -> Result<Placement> {
        let (scope, rel) = systemd::Scope::prepare(cgroups_path, id, resources, annotations)?;
        let manager = Manager::new(&Path::new("/").join(&rel))?;
        manager.check(resources.unwrap_or(&LinuxResources::default()))?;
        Ok(Placement {
            paths: manager.paths(),
            created: Vec::new(),
            manager,
            systemd: Some(scope),
        })
    }

    /// Applies `linux.resources` to the new cgroups (with systemd: at
    /// `join`, once the scope exists).
    pub fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(());
        }
        let empty = LinuxResources::default();
        self.manager.apply(resources.unwrap_or(&empty), false)
    }

    /// On a pure v2 host, the cgroup directory to clone the init straight
    /// into (CLONE_INTO_CGROUP), so it never runs outside its cgroup.
    pub fn clone_target(&self) -> Option<OwnedFd> {
        if self.systemd.is_some() {
            return None;
        }
        let Manager::V2(m) = &self.manager else {
            return None;
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&m.dir)
            .ok()?;
        Some(f.into())
    }

    /// Moves `pid` into the container's cgroup in every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        match &self.systemd {
            Some(s) => s.start(pid, &self.manager),
            None => join_paths(&self.paths, pid),
        }
    }

    /// Removes what `create` made (best effort, deepest first).
    pub fn remove(&self) {
        if let Some(s) = &self.systemd {
            s.remove();
        }
        remove_dirs(&self.created);
    }
}

/// Moves `pid` into each of the cgroup directories `paths`.
pub fn join_paths(paths: &[PathBuf], pid: i32) -> Result<()> {
    let s = pid.to_string();
    for p in paths {
        write_raw(p, "cgroup.procs", &s).map_err(|e| {
            io_err(
                e,
                format!("join cgroup {}", p.join("cgroup.procs").display()),
            )
        })?;
    }
    Ok(())
}

/// Removes cgroup directories (and the sub-cgroups the container made in
/// them), deepest first, waiting briefly for exiting tasks to leave (rmdir
/// says EBUSY until they have).
pub fn remove_dirs(created: &[PathBuf]) {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for d in dirs {
        remove_tree(d, deadline);
    }
}

fn remove_tree(d: &Path, deadline: std::time::Instant) {
    // Most containers make no sub-cgroups: one rmdir, no directory listing.
    match std::fs::remove_dir(d) {
        Ok(()) => return,
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(_) => {}
    }
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), deadline);
            }
        }
    }
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            // A shared parent (like /mydocker) still used by others stays.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => break,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if std::time::Instant::now() > deadline {
                    log::warn!("cgroup {} still busy, left in place", d.display());
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                log::warn!("remove cgroup {}: {e}", d.display());
                break;
            }
        }
    }
}

/// The pids in a container's cgroup (from the first hierarchy that lists
/// any), including its sub-cgroups.
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    for p in paths {
        let mut v = Vec::new();
        collect_pids(p, &mut v);
        if !v.is_empty() {
            return v;
        }
    }
    Vec::new()
}

/// True when the container's freezer says it is frozen. Cheap: `state` and
/// `list` call it for every container.
pub fn is_frozen(paths: &[PathBuf]) -> bool {
    for p in paths {
        if let Ok(s) = std::fs::read_to_string(p.join("freezer.state")) {
            if s.trim() == "THAWED" {
                return false;
            }
            // FROZEN because a parent is frozen is not this container's pause.
            return std::fs::read_to_string(p.join("freezer.self_freezing"))
                .map_or(true, |s| s.trim() == "1");
        }
    }
    // No v1 freezer: cgroup2's (pure v2, or a hybrid host without one).
    paths
        .iter()
        .any(|p| std::fs::read_to_string(p.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"))
}

/// Thaws a frozen container so that it can be killed and reaped.
pub fn thaw(paths: &[PathBuf]) {
    for p in paths {
        let _ = write_raw(p, "freezer.state", "THAWED");
        let _ = write_raw(p, "cgroup.freeze", "0");
    }
}
