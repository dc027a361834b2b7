//! The state directory `<root>/<id>/`: what `create` recorded, the lock that
//! serialises commands on one id, and the status computed from the live process.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Name of the socket the init process listens on until `start`.
pub const EXEC_SOCK: &str = "exec.sock";
const STATE_FILE: &str = "state.json";

/// Lifecycle status, as the OCI spec names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `create` is in progress.
    Creating,
    /// Init waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// The cgroup is frozen.
    Paused,
    /// The process has exited.
    Stopped,
}

impl Status {
    /// The spec's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `create` records about a container.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Host pid of the container init.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (field 22 of
    /// /proc/pid/stat): tells the init apart from a later process reusing the pid.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created: String,
    /// Annotations from config.json.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The spec version of the bundle.
    pub oci_version: String,
    /// Hooks that run after `create` returns (poststart, poststop).
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// Cgroup directories the container was placed in.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// The subset of `cgroup_paths` (and parents) that create made, removed on delete.
    #[serde(default)]
    pub cgroup_created: Vec<PathBuf>,
    /// With `--systemd-cgroup`: the container's scope unit, stopped on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// Whether the container has its own pid namespace (its processes die with init).
    pub own_pid_ns: bool,
    /// For a container in the runtime's mount namespace: the id of the mount
    /// at the rootfs path before create; delete detaches the ones above it.
    #[serde(default)]
    pub rootfs_mount: Option<u64>,
}

/// The container's state directory, locked for the life of this value.
pub struct StateDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    /// The directory, kept open (and flock'ed) for the life of this value.
    pub dir: Flock<File>,
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "invalid container id \"{id}\": use letters, digits and . _ - + : @"
        )))
    }
}

impl StateDir {
    /// Makes `<root>/<id>` for a new container; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        check_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .ctx(|| format!("create state root {}", root.display()))?;
        let path = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.into()))
            }
            Err(e) => return Err(e).ctx(|| format!("create state dir {}", path.display())),
        }
        let dir = File::open(&path).ctx(|| format!("open {}", path.display()))?;
        let dir = lock(dir)?;
        Ok(StateDir { path, dir })
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        check_id(id)?;
        let path = root.join(id);
        let dir = match File::open(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.into()))
            }
            Err(e) => return Err(e).ctx(|| format!("open {}", path.display())),
        };
        let dir = lock(dir)?;
        // A concurrent delete may have removed it while we waited for the lock.
        if !path.join(STATE_FILE).exists() {
            return Err(Error::NotExist(id.into()));
        }
        Ok(StateDir { path, dir })
    }

    /// `/proc/self/fd/N/<name>`: a short path to a file in this directory that
    /// fits in a unix socket address whatever the length of `--root`.
    pub fn fd_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.dir.as_raw_fd()))
    }

    /// Writes the record atomically (temp file + rename).
    pub fn save(&self, rec: &Record) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).map_err(|e| Error::msg(e.to_string()))?;
        let mut f = File::create(&tmp).ctx(|| format!("write {}", tmp.display()))?;
        f.write_all(&data)
            .ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.path.join(STATE_FILE)).ctx(|| "save state")?;
        Ok(())
    }

    /// Reads the record.
    pub fn load(&self) -> Result<Record> {
        load_record(&self.path)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path).ctx(|| format!("remove {}", self.path.display()))
    }
}

fn lock(dir: File) -> Result<Flock<File>> {
    Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
        context: "lock state dir".into(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })
}

/// Reads the record of container `id` under `root` without the lock, for the
/// read-only commands; returns its directory too.
pub fn load_unlocked(root: &Path, id: &str) -> Result<(PathBuf, Record)> {
    let dir = root.join(id);
    if !dir.is_dir() {
        return Err(Error::NotExist(id.into()));
    }
    let rec = load_record(&dir).map_err(|e| match e {
        Error::NotExist(_) => Error::NotExist(id.into()),
        o => o,
    })?;
    Ok((dir, rec))
}

/// Reads `<dir>/state.json` without taking the lock (writes are atomic renames).
pub fn load_record(dir: &Path) -> Result<Record> {
    let data = std::fs::read(dir.join(STATE_FILE)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotExist(
                dir.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        } else {
            Error::msg(format!("read state of {}: {e}", dir.display()))
        }
    })?;
    serde_json::from_slice(&data)
        .map_err(|e| Error::msg(format!("corrupt state file in {}: {e}", dir.display())))
}

/// Process state letter and start time from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    // One read (read_to_string grows its buffer from 32 bytes: five reads
    // for a typical line, on every `state` and `delete`). Only fields 3 and
    // 22 are parsed: the pid, a command name of at most 64 bytes and 20
    // numbers of at most 20 digits always fit in 1 KiB, so a longer line is
    // cut after what is needed.
    let mut buf = [0u8; 1024];
    let n = std::io::Read::read(
        &mut std::fs::File::open(format!("/proc/{pid}/stat")).ok()?,
        &mut buf,
    )
    .ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // Field 22 overall is the 20th after the state (field 3).
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The status of a recorded container, from its live init process.
pub fn status(dir: &Path, rec: &Record) -> Status {
    if !init_alive(rec) {
        return Status::Stopped;
    }
    if dir.join(EXEC_SOCK).exists() {
        return Status::Created;
    }
    if crate::cgroups::is_frozen(&rec.cgroup_paths) {
        return Status::Paused;
    }
    Status::Running
}

/// True while the recorded init process (same pid and start time) lives.
pub fn init_alive(rec: &Record) -> bool {
    if rec.pid <= 0 {
        return false;
    }
    match proc_stat(rec.pid) {
        Some((st, start)) => start == rec.start_time && st != 'Z' && st != 'X',
        None => false,
    }
}

/// The owner name runc reports: the user owning the state directory.
pub fn owner_name(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(dir).map(|m| m.uid()).unwrap_or(0);
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_string())
        })
    });
    name.unwrap_or_else(|| format!("#{uid}"))
}

/// The state JSON printed by `state` and given to hooks.
pub fn state_json(rec: &Record, status: Status, owner: Option<&str>) -> serde_json::Value {
    let pid = match status {
        Status::Stopped => 0,
        _ => rec.pid,
    };
    let mut v = serde_json::json!({
        "ociVersion": rec.oci_version,
        "id": rec.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": rec.bundle,
        "rootfs": rec.rootfs,
        "created": rec.created,
        "annotations": rec.annotations,
    });
    if let Some(o) = owner {
        v["owner"] = serde_json::Value::String(o.to_string());
    }
    v
}
