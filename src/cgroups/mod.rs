//! Placing containers in cgroups and removing what was made.
//!
//! This covers what `create`/`delete` need: find the hierarchies, make the
//! container's directory in each, move the init in, apply device rules, and
//! remove the directories again. The full `linux.resources` set lands with the
//! cgroup manager issue; until then those fields are refused by `spec`.
//!
//! Hand-written instead of cgroups-rs: placement is a mkdir and one write per
//! hierarchy, and cgroups-rs probes every subsystem on every call (see
//! docs/cgroups.md for the measurement plan).

pub mod devices;
pub mod subpath;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

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
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read mountinfo")?;
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
fn own_cgroup(h: &Hierarchy) -> Result<String> {
    let data = std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
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
            return Ok(path.to_string());
        }
    }
    Ok("/".into())
}

/// Where the container goes: the spec's cgroupsPath or `/mydocker/<id>`.
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(format!("/mydocker/{id}")),
    }
}

/// The cgroup directories of a container, made and not yet joined.
#[derive(Debug, Default)]
pub struct Placement {
    /// The container's directory in each hierarchy.
    pub paths: Vec<PathBuf>,
    /// The container's own directories that this placement created.
    pub created: Vec<PathBuf>,
}

impl Placement {
    /// Makes the container's cgroup in every hierarchy (v1) or the unified one.
    pub fn create(cgroups_path: &Path) -> Result<Placement> {
        let mut p = Placement::default();
        let res = p.make_all(cgroups_path);
        if let Err(e) = res {
            p.remove();
            return Err(e);
        }
        Ok(p)
    }

    fn make_all(&mut self, cgroups_path: &Path) -> Result<()> {
        let pure_v2 = is_unified();
        for h in hierarchies()? {
            if pure_v2 != h.unified {
                // Hybrid host: v1 hierarchies carry the controllers; the empty
                // unified one is joined too, as runc does, for systemd's sake.
                if pure_v2 {
                    continue;
                }
            }
            let rel = if cgroups_path.is_absolute() {
                cgroups_path.to_path_buf()
            } else {
                Path::new(&own_cgroup(&h)?).join(cgroups_path)
            };
            let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
            let dir = h.mount.join(&rel);
            self.mkdir_all(&h, &dir)?;
            self.paths.push(dir);
        }
        Ok(())
    }

    fn mkdir_all(&mut self, h: &Hierarchy, dir: &Path) -> Result<()> {
        let existed = dir.exists();
        // Parents (like /mydocker) are shared by every container and stay;
        // only the container's own directory is removed on delete.
        std::fs::create_dir_all(dir).ctx(|| format!("create cgroup {}", dir.display()))?;
        if !existed {
            self.created.push(dir.to_path_buf());
        }
        if h.controllers.iter().any(|c| c == "cpuset") {
            // Top-down: a parent made by a concurrent create may still be
            // empty, and an empty cpuset accepts no task (ENOSPC).
            let rel = dir.strip_prefix(&h.mount).unwrap_or(Path::new(""));
            let mut cur = h.mount.clone();
            for c in rel.components() {
                cur.push(c);
                inherit_cpuset(&cur)?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the container's cgroup in every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        let s = pid.to_string();
        for p in &self.paths {
            let f = p.join("cgroup.procs");
            std::fs::write(&f, &s).ctx(|| format!("join cgroup {}", f.display()))?;
        }
        Ok(())
    }

    /// Removes what `create` made (best effort, deepest first).
    pub fn remove(&self) {
        remove_dirs(&self.created);
    }
}

/// A new v1 cpuset cgroup starts with no cpus and mems and accepts no task
/// until they are copied from the parent.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let v = std::fs::read_to_string(parent.join(f)).ctx(|| format!("read {f}"))?;
            std::fs::write(dir.join(f), v.trim()).ctx(|| format!("write {f}"))?;
        }
    }
    Ok(())
}

/// Removes cgroup directories, deepest first, waiting briefly for exiting
/// tasks to leave (rmdir says EBUSY until they have).
pub fn remove_dirs(created: &[PathBuf]) {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for d in dirs {
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
}

/// The pids in a container's cgroup (from the first hierarchy that lists any).
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    for p in paths {
        if let Ok(s) = std::fs::read_to_string(p.join("cgroup.procs")) {
            let v: Vec<i32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !v.is_empty() {
                return v;
            }
        }
    }
    Vec::new()
}

/// True when the container's freezer says it is frozen.
pub fn is_frozen(paths: &[PathBuf]) -> bool {
    for p in paths {
        if let Ok(s) = std::fs::read_to_string(p.join("freezer.state")) {
            return s.trim() == "FROZEN";
        }
        if p.join("cgroup.freeze").exists() {
            if let Ok(s) = std::fs::read_to_string(p.join("cgroup.freeze")) {
                if s.trim() == "1" {
                    return true;
                }
            }
        }
    }
    false
}

/// The device controller's directory among a container's cgroups (v1).
pub fn devices_dir(paths: &[PathBuf]) -> Option<&PathBuf> {
    paths.iter().find(|p| p.join("devices.allow").exists())
}

/// Checks that a placement exists for a pure cgroup v2 host (device rules
/// there need an eBPF program, which the cgroup issue brings).
pub fn check_devices_supported(rules: usize) -> Result<()> {
    if rules > 0 && is_unified() {
        return Err(Error::NotSupported(
            "linux.resources.devices on a cgroup v2 host".into(),
        ));
    }
    Ok(())
}

/// Thaws a frozen container so that it can be killed and reaped.
pub fn thaw(paths: &[PathBuf]) {
    for p in paths {
        let f = p.join("freezer.state");
        if f.exists() {
            let _ = std::fs::write(f, "THAWED");
        }
        let f = p.join("cgroup.freeze");
        if f.exists() {
            let _ = std::fs::write(f, "0");
        }
    }
}
