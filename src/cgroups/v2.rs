//! cgroup v2: one directory in the unified hierarchy. Used for every
//! controller on a pure v2 host, and on a hybrid host for the controllers
//! that are only on its cgroup2 mount (hugetlb on this kind of machine).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::resources::{self, PREFIX};
use super::stats::{self, Stats};
use super::{io_err, write, write_raw};
use crate::error::{Error, Result};

/// The container's cgroup in a cgroup2 hierarchy.
#[derive(Debug, Clone)]
pub struct Manager {
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The container's directory.
    pub dir: PathBuf,
    /// Controllers the hierarchy offers (its root's cgroup.controllers).
    pub available: Vec<String>,
}

impl Manager {
    /// A manager for `dir` in the hierarchy mounted at `mount`.
    pub fn new(mount: &Path, dir: PathBuf) -> Manager {
        let available = stats::read(mount, "cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Manager {
            mount: mount.to_path_buf(),
            dir,
            available,
        }
    }

    /// True when the hierarchy offers controller `c` (v2 name).
    pub fn has(&self, c: &str) -> bool {
        self.available.iter().any(|a| a == c)
    }

    /// Makes the directory and enables `controllers` in every ancestor's
    /// cgroup.subtree_control (only writing where one is missing).
    pub fn create(&self, controllers: &[&str], created: &mut Vec<PathBuf>) -> Result<()> {
        let rel = self.dir.strip_prefix(&self.mount).unwrap_or(Path::new(""));
        let mut cur = self.mount.clone();
        let n = rel.components().count();
        for (i, c) in rel.components().enumerate() {
            if !controllers.is_empty() {
                enable(&cur, controllers);
            }
            cur.push(c);
            match std::fs::create_dir(&cur) {
                // Parents (like /mydocker) are shared and stay on delete.
                Ok(()) if i + 1 == n => created.push(cur.clone()),
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e, format!("create cgroup {}", cur.display()))),
            }
        }
        Ok(())
    }

    /// Freezes the cgroup and waits until every task in it is frozen.
    pub fn freeze(&self) -> Result<()> {
        write(&self.dir, "cgroup.freeze", "1", "pause")?;
        wait_frozen(&self.dir)
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<()> {
        write(&self.dir, "cgroup.freeze", "0", "resume")
    }

    /// True when the cgroup is (being) frozen.
    pub fn is_frozen(&self) -> bool {
        stats::read(&self.dir, "cgroup.freeze").is_some_and(|s| s.trim() == "1")
    }

    /// SIGKILLs every process in the cgroup at once (cgroup.kill, 5.14+).
    /// False when the kernel has no cgroup.kill.
    pub fn kill(&self) -> Result<bool> {
        if !self.dir.join("cgroup.kill").exists() {
            return Ok(false);
        }
        write(&self.dir, "cgroup.kill", "1", "kill")?;
        Ok(true)
    }
}

fn enable(dir: &Path, controllers: &[&str]) {
    let have = stats::read(dir, "cgroup.subtree_control").unwrap_or_default();
    let have: Vec<&str> = have.split_whitespace().collect();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !have.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    // All at once; if that fails (one is busy or absent), one by one. What
    // cannot be enabled shows later as a missing file, named by its field.
    if write_raw(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for m in &missing {
            let _ = write_raw(dir, "cgroup.subtree_control", m);
        }
    }
}

fn wait_frozen(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir.join("cgroup.events")).map_err(|e| {
        io_err(
            e,
            format!("pause: open {}", dir.join("cgroup.events").display()),
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if s.lines().any(|l| l == "frozen 1") {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::msg("pause: the cgroup did not freeze within 10s"));
        }
        // cgroup.events signals POLLPRI when it changes.
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLPRI,
        )];
        let ms = left.as_millis().min(100) as u16;
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }
}

/// pids.max: a negative limit is "max".
pub fn apply_pids(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(p) = r.pids().filter(|p| p.limit() != 0) {
        let field = format!("{PREFIX}.pids.limit");
        write(dir, "pids.max", &resources::v2_limit(p.limit()), &field)?;
    }
    Ok(())
}

/// memory.max, memory.low, memory.swap.max (swap alone, converted from the
/// spec's memory+swap total). Other memory fields have no v2 file: they were
/// refused before, or ask for what v2 always does (kernel -1, useHierarchy
/// true, disableOOMKiller false).
pub fn apply_memory(dir: &Path, r: &LinuxResources, update: bool) -> Result<()> {
    let Some(m) = r.memory() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.memory.{s}");
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    if update && m.check_before_update() == Some(true) && limit > 0 {
        let cur = stats::read_u64(dir, "memory.current").unwrap_or(0);
        if (limit as u64) < cur {
            return Err(Error::msg(format!(
                "{}: {limit} is below the current usage {cur} (checkBeforeUpdate)",
                f("limit")
            )));
        }
    }
    // On update without a new limit, the swap total is relative to the
    // limit in force.
    let base = if limit == 0 && swap != 0 && update {
        match stats::read_u64(dir, "memory.max") {
            Some(u64::MAX) => -1,
            Some(v) => v as i64,
            None => 0,
        }
    } else {
        limit
    };
    let swap_v2 =
        resources::swap_v2(swap, base).map_err(|e| Error::msg(format!("{}: {e}", f("swap"))))?;
    if let Some(s) = swap_v2 {
        let v = resources::v2_limit(s);
        if let Err(e) = write_raw(dir, "memory.swap.max", &v) {
            // Without swap accounting there is no file: unlimited or no swap
            // is then what the container gets anyway.
            let absent = e.raw_os_error() == Some(libc::ENOENT);
            if !(absent && (s == -1 || s == 0)) {
                write(dir, "memory.swap.max", &v, &f("swap"))?;
            }
        }
    }
    if limit != 0 {
        write(dir, "memory.max", &resources::v2_limit(limit), &f("limit"))?;
    }
    if let Some(res) = m.reservation().filter(|&v| v != 0) {
        write(
            dir,
            "memory.low",
            &resources::v2_limit(res),
            &f("reservation"),
        )?;
    }
    Ok(())
}

/// cpu.weight (converted from shares), cpu.max, cpu.max.burst, cpu.idle.
pub fn apply_cpu(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.cpu.{s}");
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string(), &f("idle"))?;
    }
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        let w = resources::shares_to_weight(s);
        write(dir, "cpu.weight", &w.to_string(), &f("shares"))?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    // A burst larger than the old quota is refused until the new quota is
    // in: retry it after cpu.max.
    let mut burst_later = None;
    if let Some(b) = c.burst() {
        if let Err(e) = write_raw(dir, "cpu.max.burst", &b.to_string()) {
            if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 {
                burst_later = Some(b);
            } else {
                write(dir, "cpu.max.burst", &b.to_string(), &f("burst"))?;
            }
        }
    }
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        let field = if quota != 0 { f("quota") } else { f("period") };
        write(dir, "cpu.max", &v, &field)?;
    }
    if let Some(b) = burst_later {
        write(dir, "cpu.max.burst", &b.to_string(), &f("burst"))?;
    }
    Ok(())
}

/// cpuset.cpus and cpuset.mems.
pub fn apply_cpuset(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else {
        return Ok(());
    };
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus, &format!("{PREFIX}.cpu.cpus"))?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems, &format!("{PREFIX}.cpu.mems"))?;
    }
    Ok(())
}

/// io.bfq.weight where BFQ is present (same scale as blkio), else
/// io.weight (converted); io.max for the throttles.
pub fn apply_io(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(b) = r.block_io() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.blockIO.{s}");
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string(), &f("weight"))?;
        } else {
            let v = resources::blkio_weight_to_io_weight(w);
            write(dir, "io.weight", &v.to_string(), &f("weight"))?;
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let Some(w) = d.weight().filter(|&w| w != 0) else {
            continue;
        };
        let field = f(&format!("weightDevice[{i}].weight"));
        let (file, v) = if bfq {
            ("io.bfq.weight", u64::from(w))
        } else {
            ("io.weight", resources::blkio_weight_to_io_weight(w))
        };
        write(
            dir,
            file,
            &format!("{}:{} {v}", d.major(), d.minor()),
            &field,
        )?;
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            let v = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            write(dir, "io.max", &v, &f(&format!("{name}[{i}]")))?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.max, and the reservation limit where the kernel has it.
pub fn apply_hugetlb(dir: &Path, r: &LinuxResources) -> Result<()> {
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("{PREFIX}.hugepageLimits[{i}]");
        let size = h.page_size();
        if !resources::check_page_size(size) {
            return Err(Error::msg(format!(
                "{field}.pageSize: {size:?} is not a page size like 2MB"
            )));
        }
        let v = resources::v2_limit(h.limit());
        write(dir, &format!("hugetlb.{size}.max"), &v, &field)?;
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if dir.join(&rsvd).exists() {
            write(dir, &rsvd, &v, &field)?;
        }
    }
    Ok(())
}

/// rdma.max, one line per device.
pub fn apply_rdma(dir: &Path, r: &LinuxResources) -> Result<()> {
    for (dev, l) in r.rdma().iter().flatten() {
        let line = resources::rdma_line(dev, l.hca_handles(), l.hca_objects());
        write(dir, "rdma.max", &line, &format!("{PREFIX}.rdma.{dev}"))?;
    }
    Ok(())
}

/// `unified`: each key is a file of the container's cgroup, written as is,
/// after everything else (it overrides the converted values, as in runc).
pub fn apply_unified(m: &Manager, r: &LinuxResources, only_hybrid: bool) -> Result<()> {
    for (k, v) in r.unified().iter().flatten() {
        let ctrl = resources::check_unified_key(k)?;
        let field = format!("{PREFIX}.unified.{k}");
        if ctrl != "cgroup" && !m.has(ctrl) {
            return Err(Error::NotSupported(format!(
                "{field} (no {ctrl} controller on the cgroup v2 hierarchy{})",
                if only_hybrid {
                    "; it is a cgroup v1 controller on this host"
                } else {
                    ""
                }
            )));
        }
        write(&m.dir, k, v, &field)?;
    }
    Ok(())
}

/// Statistics from the v2 files; `controllers` limits them on a hybrid host.
pub fn stats(dir: &Path, s: &mut Stats, only: Option<&[String]>) {
    let want = |c: &str| only.is_none_or(|o| o.iter().any(|x| x == c));
    if want("cpu") {
        let cpu = stats::read_kv(dir, "cpu.stat");
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        if !cpu.is_empty() {
            s.cpu.usage.total = g("usage_usec") * 1000;
            s.cpu.usage.user = g("user_usec") * 1000;
            s.cpu.usage.kernel = g("system_usec") * 1000;
            s.cpu.throttling.periods = g("nr_periods");
            s.cpu.throttling.throttled_periods = g("nr_throttled");
            s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
        }
    }
    if want("memory") {
        let raw = stats::read_kv(dir, "memory.stat");
        if !raw.is_empty() {
            s.memory.cache = raw.get("file").copied().unwrap_or(0);
            s.memory.raw = raw;
            let u = &mut s.memory.usage;
            u.usage = stats::read_u64(dir, "memory.current").unwrap_or(0);
            u.limit = stats::read_u64(dir, "memory.max").unwrap_or(0);
            u.max = stats::read_u64(dir, "memory.peak").unwrap_or(0);
            let sw = &mut s.memory.swap;
            sw.usage = stats::read_u64(dir, "memory.swap.current").unwrap_or(0) + u.usage;
            sw.limit = match stats::read_u64(dir, "memory.swap.max") {
                Some(u64::MAX) | None => u64::MAX,
                Some(v) => v.saturating_add(u.limit),
            };
        }
    }
    if want("pids") {
        if let Some(cur) = stats::read_u64(dir, "pids.current") {
            s.pids.current = cur;
            s.pids.limit = match stats::read_u64(dir, "pids.max") {
                Some(u64::MAX) | None => 0,
                Some(v) => v,
            };
        }
    }
    if want("io") {
        for line in stats::read(dir, "io.stat").unwrap_or_default().lines() {
            let mut f = line.split_whitespace();
            let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(stats::BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    if want("hugetlb") {
        for size in stats::hugepage_sizes() {
            let usage = stats::read_u64(dir, &format!("hugetlb.{size}.rsvd.current"))
                .or_else(|| stats::read_u64(dir, &format!("hugetlb.{size}.current")));
            let Some(usage) = usage else { continue };
            let ev = stats::read_kv(dir, &format!("hugetlb.{size}.events"));
            s.hugetlb.insert(
                size,
                stats::Hugetlb {
                    usage,
                    max: 0,
                    failcnt: ev.get("max").copied().unwrap_or(0),
                },
            );
        }
    }
}

/// OOM kills, from memory.events (inotify tells when it changes).
pub struct OomWatch {
    fd: OwnedFd,
    dir: PathBuf,
    seen: u64,
}

impl OomWatch {
    /// Starts watching the cgroup's memory.events.
    pub fn new(dir: &Path) -> Result<OomWatch> {
        // SAFETY: inotify_init1 takes flags and returns a new fd or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(io_err(std::io::Error::last_os_error(), "inotify_init1"));
        }
        // SAFETY: the fd was just created and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = dir.join("memory.events");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::msg("memory.events: bad path"))?;
        // SAFETY: valid inotify fd and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(io_err(
                std::io::Error::last_os_error(),
                format!("watch {}", path.display()),
            ));
        }
        let seen = stats::read_kv(dir, "memory.events")
            .get("oom_kill")
            .copied()
            .unwrap_or(0);
        Ok(OomWatch {
            fd,
            dir: dir.to_path_buf(),
            seen,
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// New OOM kills since the last call.
    pub fn take(&mut self) -> u64 {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a local buffer from our non-blocking fd.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        let now = stats::read_kv(&self.dir, "memory.events")
            .get("oom_kill")
            .copied()
            .unwrap_or(self.seen);
        let n = now.saturating_sub(self.seen);
        self.seen = now;
        n
    }
}
