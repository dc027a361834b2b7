//! cgroup v1: one directory per mounted hierarchy. On a hybrid host the
//! cgroup2 mount is joined too, and carries the controllers that have no v1
//! mount (see `Manager::unified`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::resources::PREFIX;
use super::stats::{self, Stats};
use super::{io_err, v2, write, write_raw};
use crate::error::{Error, Result};

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone)]
pub struct Dir {
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The container's directory in it.
    pub path: PathBuf,
    /// Its controllers (`name=systemd` for a named hierarchy).
    pub controllers: Vec<String>,
}

/// The container's cgroups on a v1 (or hybrid) host.
#[derive(Debug, Clone)]
pub struct Manager {
    /// One per v1 hierarchy.
    pub dirs: Vec<Dir>,
    /// The hybrid host's cgroup2 directory, if it has a cgroup2 mount.
    pub unified: Option<v2::Manager>,
}

impl Manager {
    /// The container's directory for controller `c`, if that is mounted.
    pub fn dir(&self, c: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|x| x == c))
            .map(|d| d.path.as_path())
    }

    /// Makes every directory (and the unified one, enabling the given
    /// controllers there). `created` gets the container's own directories
    /// that did not exist before.
    pub fn create(&self, unified_controllers: &[&str], created: &mut Vec<PathBuf>) -> Result<()> {
        for d in &self.dirs {
            let existed = d.path.exists();
            // Parents (like /mydocker) are shared by every container and
            // stay; only the container's own directory is removed on delete.
            std::fs::create_dir_all(&d.path)
                .map_err(|e| io_err(e, format!("create cgroup {}", d.path.display())))?;
            if !existed {
                created.push(d.path.clone());
            }
            if d.controllers.iter().any(|c| c == "cpuset") {
                // Top-down: a parent made by a concurrent create may still be
                // empty, and an empty cpuset accepts no task (ENOSPC).
                let rel = d.path.strip_prefix(&d.mount).unwrap_or(Path::new(""));
                let mut cur = d.mount.clone();
                for c in rel.components() {
                    cur.push(c);
                    inherit_cpuset(&cur)?;
                }
            }
        }
        if let Some(u) = &self.unified {
            u.create(unified_controllers, created)?;
        }
        Ok(())
    }

    /// Freezes the freezer cgroup, retrying until every task is frozen
    /// (tasks in the middle of a fork or a vfork keep it FREEZING).
    pub fn freeze(&self) -> Result<()> {
        let dir = self
            .dir("freezer")
            .ok_or_else(|| Error::NotSupported("pause: no freezer cgroup on this host".into()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut i = 0u32;
        loop {
            if i % 50 == 49 {
                // A task stuck in FREEZING may need a thaw to make progress.
                let _ = write_raw(dir, "freezer.state", "THAWED");
                std::thread::sleep(Duration::from_millis(10));
            }
            write(dir, "freezer.state", "FROZEN", "pause")?;
            match stats::read(dir, "freezer.state").as_deref().map(str::trim) {
                Some("FROZEN") => return Ok(()),
                Some("FREEZING") => {}
                other => {
                    return Err(Error::msg(format!(
                        "pause: unexpected freezer state {other:?}"
                    )))
                }
            }
            if Instant::now() > deadline {
                let _ = write_raw(dir, "freezer.state", "THAWED");
                return Err(Error::msg("pause: the cgroup did not freeze within 10s"));
            }
            i += 1;
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Thaws the freezer cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.dir("freezer") {
            Some(dir) => write(dir, "freezer.state", "THAWED", "resume"),
            None => Ok(()),
        }
    }
}

/// A new v1 cpuset cgroup starts with no cpus and mems and accepts no task
/// until they are copied from the parent.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let v = std::fs::read_to_string(parent.join(f))
                .map_err(|e| io_err(e, format!("read {}", parent.join(f).display())))?;
            write(dir, f, v.trim(), "cpuset")?;
        }
    }
    Ok(())
}

/// pids.max.
pub fn apply_pids(dir: &Path, r: &LinuxResources) -> Result<()> {
    v2::apply_pids(dir, r)
}

/// memory.limit_in_bytes, memory.memsw.limit_in_bytes (in the order the
/// kernel accepts: memsw may never be below the limit), and the rest.
pub fn apply_memory(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.memory.{s}");
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    if limit == -1 && swap == 0 && dir.join(MEMSW).exists() {
        swap = -1;
    }
    let set_limit = || -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let v = limit.to_string();
        match write_raw(dir, "memory.limit_in_bytes", &v) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let usage = stats::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
                let peak = stats::read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0);
                Err(Error::msg(format!(
                    "{}: cannot set {limit} (current usage {usage}, peak {peak})",
                    f("limit")
                )))
            }
            Err(_) => write(dir, "memory.limit_in_bytes", &v, &f("limit")),
            Ok(()) => Ok(()),
        }
    };
    let set_swap = || -> Result<()> {
        if swap == 0 {
            return Ok(());
        }
        write(dir, MEMSW, &swap.to_string(), &f("swap"))
    };
    let swap_first = limit != 0
        && swap != 0
        && (swap == -1
            || stats::read_u64(dir, "memory.limit_in_bytes").is_some_and(|cur| cur < swap as u64));
    if swap_first {
        set_swap()?;
        set_limit()?;
    } else {
        set_limit()?;
        set_swap()?;
    }
    if let Some(v) = m.reservation().filter(|&v| v != 0) {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            &v.to_string(),
            &f("reservation"),
        )?;
    }
    if let Some(k) = m.kernel().filter(|&k| k != 0) {
        const KMEM: &str = "memory.kmem.limit_in_bytes";
        write(dir, KMEM, &k.to_string(), &f("kernel"))?;
        // Kernels since 5.16 accept the write and ignore it.
        let got = stats::read_u64(dir, KMEM).unwrap_or(0);
        let page = 4096;
        let honoured = if k < 0 {
            got >= 1 << 62
        } else {
            got == (k as u64).div_ceil(page) * page || got == k as u64
        };
        if !honoured {
            return Err(Error::NotSupported(format!(
                "{} (this kernel ignores {KMEM})",
                f("kernel")
            )));
        }
    }
    if let Some(k) = m.kernel_tcp().filter(|&k| k != 0) {
        write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &k.to_string(),
            &f("kernelTCP"),
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::msg(format!(
                "{}: {s} is out of range (0-100)",
                f("swappiness")
            )));
        }
        write(dir, "memory.swappiness", &s.to_string(), &f("swappiness"))?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1", &f("disableOOMKiller"))?;
    }
    if let Some(h) = m.use_hierarchy() {
        let v = if h { "1" } else { "0" };
        write(dir, "memory.use_hierarchy", v, &f("useHierarchy"))?;
    }
    Ok(())
}

/// cpu.shares, CFS quota/period/burst, cpu.idle and realtime runtime/period.
pub fn apply_cpu(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.cpu.{s}");
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &s.to_string(), &f("shares"))?;
        // The kernel clamps out-of-range shares silently: say so.
        if let Some(got) = stats::read_u64(dir, "cpu.shares") {
            if got != s {
                return Err(Error::msg(format!(
                    "{}: {s} is out of range (the kernel set {got})",
                    f("shares")
                )));
            }
        }
    }
    let quota = c.quota().unwrap_or(0);
    // A smaller period may be refused (EINVAL) until the quota fits it:
    // then set it again after the quota, as runc does. Same for burst.
    let mut period_later = None;
    if let Some(p) = c.period().filter(|&p| p != 0) {
        if let Err(e) = write_raw(dir, "cpu.cfs_period_us", &p.to_string()) {
            if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 {
                period_later = Some(p);
            } else {
                write(dir, "cpu.cfs_period_us", &p.to_string(), &f("period"))?;
            }
        }
    }
    let mut burst_later = None;
    if let Some(b) = c.burst() {
        if let Err(e) = write_raw(dir, "cpu.cfs_burst_us", &b.to_string()) {
            if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 {
                burst_later = Some(b);
            } else {
                write(dir, "cpu.cfs_burst_us", &b.to_string(), &f("burst"))?;
            }
        }
    }
    if quota != 0 {
        write(dir, "cpu.cfs_quota_us", &quota.to_string(), &f("quota"))?;
    }
    if let Some(p) = period_later {
        write(dir, "cpu.cfs_period_us", &p.to_string(), &f("period"))?;
    }
    if let Some(b) = burst_later {
        write(dir, "cpu.cfs_burst_us", &b.to_string(), &f("burst"))?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string(), &f("idle"))?;
    }
    apply_rt(dir, r)
}

/// Realtime runtime must be in place before a realtime task joins, so this
/// runs before the init is moved in (all of `apply` does).
fn apply_rt(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.cpu.{s}");
    let runtime = c.realtime_runtime().unwrap_or(0);
    let mut period_later = None;
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        if let Err(e) = write_raw(dir, "cpu.rt_period_us", &p.to_string()) {
            if e.raw_os_error() == Some(libc::EINVAL) && runtime != 0 {
                period_later = Some(p);
            } else {
                write(
                    dir,
                    "cpu.rt_period_us",
                    &p.to_string(),
                    &f("realtimePeriod"),
                )?;
            }
        }
    }
    if runtime != 0 {
        let v = runtime.to_string();
        if let Err(e) = write_raw(dir, "cpu.rt_runtime_us", &v) {
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Err(Error::msg(format!(
                    "{}: {runtime} refused: it may not exceed the parent cgroup's \
                     cpu.rt_runtime_us (give the parents realtime runtime first)",
                    f("realtimeRuntime")
                )));
            }
            write(dir, "cpu.rt_runtime_us", &v, &f("realtimeRuntime"))?;
        }
    }
    if let Some(p) = period_later {
        write(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            &f("realtimePeriod"),
        )?;
    }
    Ok(())
}

/// cpuset.cpus and cpuset.mems.
pub fn apply_cpuset(dir: &Path, r: &LinuxResources) -> Result<()> {
    v2::apply_cpuset(dir, r)
}

/// blkio weights (blkio.weight, or BFQ's blkio.bfq.weight on kernels without
/// CFQ) and throttles.
pub fn apply_blkio(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(b) = r.block_io() else {
        return Ok(());
    };
    let f = |s: &str| format!("{PREFIX}.blockIO.{s}");
    let (weight, weight_dev) = if dir.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        write(dir, weight, &w.to_string(), &f("weight"))?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string(), &f("leafWeight"))?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            let field = f(&format!("weightDevice[{i}].weight"));
            write(dir, weight_dev, &format!("{dev} {w}"), &field)?;
        }
        if let Some(w) = d.leaf_weight().filter(|&w| w != 0) {
            let field = f(&format!("weightDevice[{i}].leafWeight"));
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{dev} {w}"),
                &field,
            )?;
        }
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            "read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, file, list) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            let file = format!("blkio.throttle.{file}");
            write(dir, &file, &v, &f(&format!("{name}[{i}]")))?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.limit_in_bytes (and the reservation limit where present).
pub fn apply_hugetlb(dir: &Path, r: &LinuxResources) -> Result<()> {
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("{PREFIX}.hugepageLimits[{i}]");
        let size = h.page_size();
        if !super::resources::check_page_size(size) {
            return Err(Error::msg(format!(
                "{field}.pageSize: {size:?} is not a page size like 2MB"
            )));
        }
        let v = h.limit().to_string();
        write(dir, &format!("hugetlb.{size}.limit_in_bytes"), &v, &field)?;
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if dir.join(&rsvd).exists() {
            write(dir, &rsvd, &v, &field)?;
        }
    }
    Ok(())
}

/// net_cls.classid.
pub fn apply_net_cls(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(id) = r.network().as_ref().and_then(|n| n.class_id()) {
        if id != 0 {
            let field = format!("{PREFIX}.network.classID");
            write(dir, "net_cls.classid", &id.to_string(), &field)?;
        }
    }
    Ok(())
}

/// net_prio.ifpriomap, one write per interface.
pub fn apply_net_prio(dir: &Path, r: &LinuxResources) -> Result<()> {
    let prios = r.network().as_ref().and_then(|n| n.priorities().clone());
    for (i, p) in prios.iter().flatten().enumerate() {
        let field = format!("{PREFIX}.network.priorities[{i}]");
        let v = format!("{} {}", p.name(), p.priority());
        write(dir, "net_prio.ifpriomap", &v, &field)?;
    }
    Ok(())
}

/// Statistics from the v1 controller files (and the hybrid cgroup2 dir for
/// the controllers only it has).
pub fn stats(m: &Manager, s: &mut Stats) {
    if let Some(d) = m.dir("cpuacct") {
        let list = |f: &str| -> Vec<u64> {
            stats::read(d, f)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        };
        s.cpu.usage.total = stats::read_u64(d, "cpuacct.usage").unwrap_or(0);
        s.cpu.usage.percpu = list("cpuacct.usage_percpu");
        s.cpu.usage.percpu_kernel = list("cpuacct.usage_percpu_sys");
        s.cpu.usage.percpu_user = list("cpuacct.usage_percpu_user");
        let st = stats::read_kv(d, "cpuacct.stat");
        // SAFETY: sysconf has no side effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let ns = |t: u64| t.saturating_mul(1_000_000_000) / hz;
        s.cpu.usage.user = ns(st.get("user").copied().unwrap_or(0));
        s.cpu.usage.kernel = ns(st.get("system").copied().unwrap_or(0));
    }
    if let Some(d) = m.dir("cpu") {
        let st = stats::read_kv(d, "cpu.stat");
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_time");
    }
    if let Some(d) = m.dir("cpuset") {
        let c = &mut s.cpuset;
        let n = |f: &str| stats::read_u64(d, f).unwrap_or(0);
        c.cpus = stats::parse_list(&stats::read(d, "cpuset.cpus").unwrap_or_default());
        c.mems = stats::parse_list(&stats::read(d, "cpuset.mems").unwrap_or_default());
        c.cpu_exclusive = n("cpuset.cpu_exclusive");
        c.mem_hardwall = n("cpuset.mem_hardwall");
        c.mem_exclusive = n("cpuset.mem_exclusive");
        c.memory_migrate = n("cpuset.memory_migrate");
        c.memory_spread_page = n("cpuset.memory_spread_page");
        c.memory_spread_slab = n("cpuset.memory_spread_slab");
        c.memory_pressure = n("cpuset.memory_pressure");
        c.sched_load_balance = n("cpuset.sched_load_balance");
        c.sched_relax_domain_level = stats::read(d, "cpuset.sched_relax_domain_level")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    }
    if let Some(d) = m.dir("memory") {
        let raw = stats::read_kv(d, "memory.stat");
        s.memory.cache = raw.get("cache").copied().unwrap_or(0);
        s.memory.raw = raw;
        for (entry, prefix) in [
            (&mut s.memory.usage, "memory"),
            (&mut s.memory.swap, "memory.memsw"),
            (&mut s.memory.kernel, "memory.kmem"),
            (&mut s.memory.kernel_tcp, "memory.kmem.tcp"),
        ] {
            let n = |f: &str| stats::read_u64(d, &format!("{prefix}.{f}")).unwrap_or(0);
            entry.usage = n("usage_in_bytes");
            entry.max = n("max_usage_in_bytes");
            entry.failcnt = n("failcnt");
            entry.limit = n("limit_in_bytes");
        }
    }
    if let Some(d) = m.dir("pids") {
        s.pids.current = stats::read_u64(d, "pids.current").unwrap_or(0);
        s.pids.limit = match stats::read_u64(d, "pids.max") {
            Some(u64::MAX) | None => 0,
            Some(v) => v,
        };
    }
    if let Some(d) = m.dir("blkio") {
        blkio_stats(d, s);
    }
    if let Some(d) = m.dir("hugetlb") {
        for size in stats::hugepage_sizes() {
            let p = format!("hugetlb.{size}");
            let n = |f: &str| stats::read_u64(d, &format!("{p}.{f}"));
            let Some(usage) = n("usage_in_bytes") else {
                continue;
            };
            s.hugetlb.insert(
                size.clone(),
                stats::Hugetlb {
                    usage,
                    max: n("max_usage_in_bytes").unwrap_or(0),
                    failcnt: n("failcnt").unwrap_or(0),
                },
            );
        }
    } else if let Some(u) = m.unified.as_ref().filter(|u| u.has("hugetlb")) {
        v2::stats(&u.dir, s, Some(&["hugetlb".to_string()]));
    }
}

fn blkio_stats(d: &Path, s: &mut Stats) {
    let entries = |f: &str| -> Option<Vec<stats::BlkioEntry>> {
        let text = stats::read(d, f)?;
        Some(
            text.lines()
                .filter_map(|l| {
                    let mut it = l.split([' ', ':']);
                    let major = it.next()?.parse().ok()?;
                    let minor = it.next()?.parse().ok()?;
                    let a = it.next()?;
                    let (op, value) = match it.next() {
                        Some(v) => (a.to_string(), v.parse().ok()?),
                        None => (String::new(), a.parse().ok()?),
                    };
                    Some(stats::BlkioEntry {
                        major,
                        minor,
                        op,
                        value,
                    })
                })
                .collect(),
        )
    };
    let b = &mut s.blkio;
    // CFQ's files first, then BFQ's, then the throttle counters, as runc.
    if let Some(v) = entries("blkio.io_service_bytes_recursive") {
        b.io_service_bytes_recursive = v;
        b.io_serviced_recursive = entries("blkio.io_serviced_recursive").unwrap_or_default();
        b.io_queued_recursive = entries("blkio.io_queued_recursive").unwrap_or_default();
        b.io_service_time_recursive =
            entries("blkio.io_service_time_recursive").unwrap_or_default();
        b.io_wait_time_recursive = entries("blkio.io_wait_time_recursive").unwrap_or_default();
        b.io_merged_recursive = entries("blkio.io_merged_recursive").unwrap_or_default();
        b.io_time_recursive = entries("blkio.time_recursive").unwrap_or_default();
        b.sectors_recursive = entries("blkio.sectors_recursive").unwrap_or_default();
    } else if let Some(v) = entries("blkio.bfq.io_service_bytes_recursive") {
        b.io_service_bytes_recursive = v;
        b.io_serviced_recursive = entries("blkio.bfq.io_serviced_recursive").unwrap_or_default();
    } else {
        b.io_service_bytes_recursive =
            entries("blkio.throttle.io_service_bytes_recursive").unwrap_or_default();
        b.io_serviced_recursive =
            entries("blkio.throttle.io_serviced_recursive").unwrap_or_default();
    }
}

/// OOM notifications of the v1 memory controller (an eventfd registered
/// through cgroup.event_control on memory.oom_control).
pub struct OomWatch {
    fd: OwnedFd,
    _ctl: std::fs::File,
    dir: PathBuf,
}

impl OomWatch {
    /// Registers for OOM notifications of the memory cgroup `dir`.
    pub fn new(dir: &Path) -> Result<OomWatch> {
        // SAFETY: eventfd takes an initial value and flags, returns an fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io_err(std::io::Error::last_os_error(), "eventfd"));
        }
        // SAFETY: the fd was just created and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ctl = std::fs::File::open(dir.join("memory.oom_control")).map_err(|e| {
            io_err(
                e,
                format!("open {}", dir.join("memory.oom_control").display()),
            )
        })?;
        let line = format!("{} {}", fd.as_raw_fd(), ctl.as_raw_fd());
        write(dir, "cgroup.event_control", &line, "events")?;
        Ok(OomWatch {
            fd,
            _ctl: ctl,
            dir: dir.to_path_buf(),
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// OOM events since the last call (the eventfd counter).
    pub fn take(&mut self) -> u64 {
        let mut n = 0u64;
        // SAFETY: an eventfd read fills exactly 8 bytes.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut n).cast(), 8) };
        // The eventfd also fires when the cgroup is removed: that is no OOM.
        if r == 8 && self.dir.join("cgroup.event_control").exists() {
            n
        } else {
            0
        }
    }
}
