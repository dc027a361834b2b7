//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is
//! a transient scope unit that systemd owns, created over the system bus.
//!
//! Order of work, and why. systemd refuses a scope with no process, and the
//! runtime must stay single-threaded until the init is cloned, so:
//! 1. before the clone, `Scope::prepare` checks that systemd runs and
//!    connects to the bus (fail fast, nothing made), and works out the
//!    scope's cgroup directory from `slice:prefix:name`;
//! 2. the init is cloned outside any new cgroup and waits on the sync
//!    channel;
//! 3. the parent asks systemd for the scope with `PIDs=[init]`,
//!    `Delegate=yes` and the limits as unit properties, waits for the start
//!    job, then writes every `linux.resources` field with the cgroupfs
//!    manager into the scope's own (delegated) directory; only then is the
//!    init let go on.
//!
//! The D-Bus client (dbus.rs) starts no thread, so step 3 could equally run
//! before the clone; it runs after because a scope needs a pid in it.
//!
//! Both writers agree: the unit properties carry the same values the
//! cgroupfs manager writes, so a `systemctl daemon-reload` (systemd
//! re-applies its properties) leaves the limits as they were. Device rules
//! are not translated to DeviceAllow: with no DeviceAllow/DevicePolicy
//! systemd attaches no device program of its own and leaves the delegated
//! cgroup's BPF program (ebpf.rs) alone, so a reload cannot drop device
//! access (runc's bug, where systemd's rules replaced runc's).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::runtime::LinuxResources;

use super::dbus::{Conn, Property, Value};
use super::{resources, Manager};
use crate::error::{Error, Result};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the driver on for this process (the global `--systemd-cgroup`).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether `--systemd-cgroup` was given.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The annotation prefix whose keys become unit properties (as runc).
pub const PROPERTY_ANNOTATION: &str = "org.systemd.property.";

/// Splits runc's `slice:prefix:name` cgroupsPath into the slice and the
/// scope unit name. Empty cgroupsPath: `system.slice`, `mydocker-<id>.scope`
/// (runc uses its own name as the prefix).
pub fn parse_path(cgroups_path: Option<&str>, id: &str) -> Result<(String, String)> {
    let p = cgroups_path.unwrap_or("");
    let (slice, prefix, name) = if p.is_empty() {
        ("", "mydocker", id)
    } else {
        let parts: Vec<&str> = p.split(':').collect();
        if parts.len() != 3 {
            return Err(Error::msg(format!(
                "linux.cgroupsPath: expected \"slice:prefix:name\" with --systemd-cgroup, got {p:?}"
            )));
        }
        (parts[0], parts[1], parts[2])
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if name.is_empty() {
        return Err(Error::msg(format!(
            "linux.cgroupsPath: {p:?}: the name part is empty"
        )));
    }
    if name.ends_with(".slice") {
        return Err(Error::NotSupported(format!(
            "linux.cgroupsPath: {p:?} (a slice as the container's unit)"
        )));
    }
    for part in [slice, prefix, name] {
        if part.contains('/') || part == ".." || part == "." {
            return Err(Error::msg(format!(
                "linux.cgroupsPath: {p:?}: \"/\" and dot names are not allowed"
            )));
        }
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok((slice.to_string(), unit))
}

/// A slice's cgroup path: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`
/// (systemd's own nesting by dashes); `-.slice` is the root.
pub fn slice_dir(slice: &str) -> Result<PathBuf> {
    let bad = || Error::msg(format!("linux.cgroupsPath: bad slice name {slice:?}"));
    if slice == "-.slice" {
        return Ok(PathBuf::from("/"));
    }
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(bad());
    }
    let mut out = PathBuf::from("/");
    let mut acc = String::new();
    for (i, part) in stem.split('-').enumerate() {
        if i > 0 {
            acc.push('-');
        }
        acc.push_str(part);
        out.push(format!("{acc}.slice"));
    }
    Ok(out)
}

/// `linux.resources` as unit properties (the subset systemd models; the
/// cgroupfs manager writes the full set afterwards).
pub fn resource_properties(r: &LinuxResources) -> Vec<Property> {
    let mut p: Vec<Property> = Vec::new();
    let mut add = |k: &str, v: Value| p.push((k.to_string(), v));
    let max = |n: i64| if n < 0 { u64::MAX } else { n as u64 };
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            add("MemoryMax", Value::U64(max(l)));
        }
        if let Some(l) = m.reservation().filter(|l| *l > 0) {
            add("MemoryLow", Value::U64(l as u64));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            add("CPUWeight", Value::U64(resources::shares_to_weight(s)));
        }
        let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            let per_sec = if q < 0 {
                u64::MAX
            } else {
                // systemd keeps the quota in whole percents of a CPU: round
                // up to 10 ms per second, so the cgroup's own (exact) value
                // never exceeds what the unit allows.
                let us = (q as u64).saturating_mul(1_000_000) / period;
                us.div_ceil(10_000) * 10_000
            };
            add("CPUQuotaPerSecUSec", Value::U64(per_sec));
            if c.period().is_some() {
                add("CPUQuotaPeriodUSec", Value::U64(period));
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            if let Some(b) = bitmask(cpus) {
                add("AllowedCPUs", Value::Bytes(b));
            }
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            if let Some(b) = bitmask(mems) {
                add("AllowedMemoryNodes", Value::Bytes(b));
            }
        }
    }
    // 0 leaves the limit alone (runc); negative is "infinity".
    if let Some(l) = r.pids().map(|p| p.limit()).filter(|l| *l != 0) {
        add("TasksMax", Value::U64(max(l)));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w > 0 {
            add(
                "IOWeight",
                Value::U64(resources::blkio_weight_to_io_weight(w)),
            );
        }
    }
    p
}

/// A cpuset list ("0-2,5") as systemd's byte bitmask (bit n = cpu n).
fn bitmask(list: &str) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if a > b || b > 8191 {
            return None;
        }
        for n in a..=b {
            if out.len() <= n / 8 {
                out.resize(n / 8 + 1, 0);
            }
            out[n / 8] |= 1 << (n % 8);
        }
    }
    Some(out)
}

/// `org.systemd.property.<Name>` annotations as properties. Values are a
/// subset of GVariant text, as runc takes them: `true`/`false`, `'text'` or
/// `"text"`, `uint64 N`, `uint32 N`, `int32 N`, a bare number (`t`), and
/// `<Name>Sec` with a number of seconds becomes `<Name>USec`.
pub fn annotation_properties(
    annotations: &std::collections::HashMap<String, String>,
) -> Result<Vec<Property>> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PROPERTY_ANNOTATION))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let name = &k[PROPERTY_ANNOTATION.len()..];
        let raw = annotations[k].trim();
        let bad = || {
            Error::msg(format!(
                "annotations.{k}: cannot read {raw:?} as a systemd property value"
            ))
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::msg(format!("annotations.{k}: bad property name")));
        }
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let (name, v) = if let Some(stem) = name.strip_suffix("Sec").filter(|s| !s.ends_with('U')) {
            let secs: f64 = raw.parse().map_err(|_| bad())?;
            (
                format!("{stem}USec"),
                Value::U64((secs * 1_000_000.0) as u64),
            )
        } else if raw == "true" || raw == "false" {
            (name.to_string(), Value::Bool(raw == "true"))
        } else if let Some(n) = raw.strip_prefix("uint64 ") {
            (name.to_string(), Value::U64(num(n)?))
        } else if let Some(n) = raw.strip_prefix("uint32 ") {
            (name.to_string(), Value::U32(num(n)? as u32))
        } else if let Some(n) = raw.strip_prefix("int32 ") {
            (
                name.to_string(),
                Value::I32(n.trim().parse().map_err(|_| bad())?),
            )
        } else if raw.len() >= 2
            && ((raw.starts_with('\'') && raw.ends_with('\''))
                || (raw.starts_with('"') && raw.ends_with('"')))
        {
            (
                name.to_string(),
                Value::Str(raw[1..raw.len() - 1].to_string()),
            )
        } else {
            (name.to_string(), Value::U64(num(raw)?))
        };
        out.push((name, v));
    }
    Ok(out)
}

/// Whether systemd is the init of this host (sd_booted's test).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A scope to be created for the container's init.
pub struct Scope {
    /// The unit name, `prefix-name.scope`.
    pub unit: String,
    slice: String,
    id: String,
    props: Vec<Property>,
    resources: LinuxResources,
    conn: RefCell<Conn>,
    /// Whether systemd took our StartTransientUnit (so the unit is ours to
    /// stop on error: a name clash must not stop another container's unit).
    started: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("unit", &self.unit).finish()
    }
}

impl Scope {
    /// Checks that systemd is there and connects to it; returns the scope
    /// and its future cgroup directory (relative to the cgroup2 root).
    pub fn prepare(
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
        annotations: &std::collections::HashMap<String, String>,
    ) -> Result<(Scope, PathBuf)> {
        let (slice, unit) = parse_path(cgroups_path, id)?;
        if !booted() {
            return Err(Error::msg(
                "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver (no --systemd-cgroup)",
            ));
        }
        if !super::is_unified() {
            return Err(Error::NotSupported(
                "--systemd-cgroup on a cgroup v1 or hybrid host".into(),
            ));
        }
        let mut props = annotation_properties(annotations)?;
        let r = resources.cloned().unwrap_or_default();
        props.extend(resource_properties(&r));
        let t0 = std::time::Instant::now();
        let conn = Conn::system().map_err(|e| {
            Error::msg(format!(
                "--systemd-cgroup: cannot reach systemd on the system bus: {e}"
            ))
        })?;
        log::debug!("systemd: bus connected in {} us", t0.elapsed().as_micros());
        let rel = slice_dir(&slice)?.join(&unit);
        Ok((
            Scope {
                unit,
                slice,
                id: id.to_string(),
                props,
                resources: r,
                conn: RefCell::new(conn),
                started: std::cell::Cell::new(false),
            },
            rel,
        ))
    }

    /// Creates the scope with `pid` in it, waits for systemd to start it,
    /// checks `pid` landed in `manager`'s directory, then writes the
    /// resources there.
    pub fn start(&self, pid: i32, manager: &Manager) -> Result<()> {
        let t0 = std::time::Instant::now();
        let mut conn = self.conn.borrow_mut();
        conn.watch_jobs()?;
        let mut props: Vec<Property> = vec![
            (
                "Description".into(),
                Value::Str(format!("mydocker container {}", self.id)),
            ),
            ("Slice".into(), Value::Str(self.slice.clone())),
            ("Delegate".into(), Value::Bool(true)),
            ("PIDs".into(), Value::U32s(vec![pid as u32])),
            ("DefaultDependencies".into(), Value::Bool(false)),
            ("MemoryAccounting".into(), Value::Bool(true)),
            ("CPUAccounting".into(), Value::Bool(true)),
            ("IOAccounting".into(), Value::Bool(true)),
            ("TasksAccounting".into(), Value::Bool(true)),
        ];
        props.extend(self.props.iter().cloned());
        let job = conn.start_transient(&self.unit, &props).map_err(|e| {
            if e.to_string()
                .starts_with("org.freedesktop.systemd1.UnitExists")
            {
                Error::msg(format!("systemd: unit {} already exists", self.unit))
            } else {
                Error::msg(format!("systemd: start unit {}: {e}", self.unit))
            }
        })?;
        self.started.set(true);
        let result = conn.wait_job(&job)?;
        drop(conn);
        log::debug!(
            "systemd: unit {} started ({result}) in {} us",
            self.unit,
            t0.elapsed().as_micros()
        );
        if result != "done" {
            return Err(Error::msg(format!(
                "systemd: start unit {}: job {result}",
                self.unit
            )));
        }
        let dir = manager.paths().into_iter().next().unwrap_or_default();
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("");
        if Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')) != dir {
            return Err(Error::msg(format!(
                "systemd: unit {} put the container in {rel:?}, not {}",
                self.unit,
                dir.display()
            )));
        }
        manager.apply(&self.resources, false)
    }

    /// Stops the unit (best effort: error cleanup).
    pub fn remove(&self) {
        if !self.started.get() {
            return;
        }
        if let Err(e) = stop_with(&mut self.conn.borrow_mut(), &self.unit) {
            log::warn!("{e}");
        }
    }
}

fn stop_with(conn: &mut Conn, unit: &str) -> Result<()> {
    conn.watch_jobs()?;
    match conn.stop_unit(unit) {
        Ok(job) => {
            conn.wait_job(&job)?;
            Ok(())
        }
        Err(e)
            if e.to_string()
                .starts_with("org.freedesktop.systemd1.NoSuchUnit") =>
        {
            Ok(())
        }
        Err(e) => Err(Error::msg(format!("systemd: stop unit {unit}: {e}"))),
    }
}

/// `delete`: stops the container's unit and waits until it is gone.
pub fn stop(unit: &str) -> Result<()> {
    stop_with(&mut Conn::system()?, unit)
}

/// `update`: the new limits as unit properties (runtime), so systemd keeps
/// them over a reload; the caller then writes them through cgroupfs.
pub fn update(unit: &str, r: &LinuxResources) -> Result<()> {
    let props = resource_properties(r);
    if props.is_empty() {
        return Ok(());
    }
    Conn::system()?
        .set_properties(unit, &props)
        .map_err(|e| Error::msg(format!("systemd: update unit {unit}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_runc() {
        assert_eq!(
            parse_path(Some("machine.slice:docker:abc"), "x").unwrap(),
            ("machine.slice".into(), "docker-abc.scope".into())
        );
        assert_eq!(
            parse_path(Some(":cri:abc"), "x").unwrap(),
            ("system.slice".into(), "cri-abc.scope".into())
        );
        assert_eq!(
            parse_path(None, "c1").unwrap(),
            ("system.slice".into(), "mydocker-c1.scope".into())
        );
        assert_eq!(
            parse_path(Some("a.slice::n"), "x").unwrap().1,
            "n.scope".to_string()
        );
        assert!(parse_path(Some("/a/b"), "x").is_err());
        assert!(parse_path(Some("a.slice:p:../x"), "x").is_err());
        assert_eq!(
            slice_dir("a-b-c.slice").unwrap(),
            PathBuf::from("/a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(slice_dir("-.slice").unwrap(), PathBuf::from("/"));
        assert!(slice_dir("a--b.slice").is_err());
        assert!(slice_dir("ab").is_err());
    }

    #[test]
    fn resources_to_properties() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": -1},
            "cpu": {"shares": 1024, "quota": 33333, "period": 100000, "cpus": "1"},
            "pids": {"limit": 0},
            "blockIO": {"weight": 1000}
        }))
        .unwrap();
        let p = resource_properties(&r);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(100)));
        // 333330 us per second, rounded up to whole percents
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(340_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(get("AllowedCPUs"), Some(Value::Bytes(vec![0b10])));
        assert_eq!(get("TasksMax"), None);
        assert_eq!(get("IOWeight"), Some(Value::U64(10_000)));
    }

    #[test]
    fn cpu_bitmask() {
        assert_eq!(bitmask("0-2,9").unwrap(), vec![0b111, 0b10]);
        assert!(bitmask("x").is_none());
    }

    #[test]
    fn annotations_to_properties() {
        let mut a = std::collections::HashMap::new();
        a.insert(
            "org.systemd.property.TimeoutStopSec".to_string(),
            "5".to_string(),
        );
        a.insert(
            "org.systemd.property.CollectMode".to_string(),
            "'inactive-or-failed'".to_string(),
        );
        a.insert("other".to_string(), "1".to_string());
        let p = annotation_properties(&a).unwrap();
        assert_eq!(
            p,
            vec![
                (
                    "CollectMode".to_string(),
                    Value::Str("inactive-or-failed".into())
                ),
                ("TimeoutStopUSec".to_string(), Value::U64(5_000_000)),
            ]
        );
        a.insert("org.systemd.property.X".to_string(), "nope".to_string());
        assert!(annotation_properties(&a).is_err());
    }
}
