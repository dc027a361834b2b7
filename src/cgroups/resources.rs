//! `linux.resources` as the cgroup managers see it: which fields are set
//! (with their JSON paths, for errors), which controller each needs, and the
//! v1↔v2 unit conversions runc and crun use.
//!
//! Zero means "not set" for the numeric limits, as in runc: engines send
//! `0` for every limit the user did not give (docker's `update` sends
//! `"reservation":0`, `"quota":0`, `"weight":0`), and writing those would be
//! wrong or fail. `pids.limit` follows the same rule: oci-spec cannot tell an
//! absent limit from `0`.

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::error::{Error, Result};

/// Prefix of every resource field path in errors.
pub const PREFIX: &str = "linux.resources";

/// A set field and the controller that must apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Dotted JSON path, e.g. `linux.resources.memory.limit`.
    pub field: String,
    /// The cgroup controller (v1 name, except `io`/`blkio` which are given as
    /// `blkio` and mapped to `io` on v2).
    pub controller: &'static str,
}

fn set_i64(v: Option<i64>) -> bool {
    v.is_some_and(|v| v != 0)
}

fn set_u64(v: Option<u64>) -> bool {
    v.is_some_and(|v| v != 0)
}

/// The fields of `r` that ask for something, each with its controller.
/// Device rules are not listed: they are always applied (runc's default
/// allow-list) by the device controller or the eBPF filter.
pub fn needs(r: &LinuxResources) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |field: String, controller: &'static str| {
        out.push(Need {
            field: format!("{PREFIX}.{field}"),
            controller,
        })
    };
    if let Some(m) = r.memory() {
        for (name, set) in [
            ("limit", set_i64(m.limit())),
            ("reservation", set_i64(m.reservation())),
            ("swap", set_i64(m.swap())),
            ("kernel", set_i64(m.kernel())),
            ("kernelTCP", set_i64(m.kernel_tcp())),
            ("swappiness", m.swappiness().is_some()),
            ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
            ("useHierarchy", m.use_hierarchy().is_some()),
        ] {
            if set {
                need(format!("memory.{name}"), "memory");
            }
        }
    }
    if let Some(c) = r.cpu() {
        for (name, set) in [
            ("shares", set_u64(c.shares())),
            ("quota", set_i64(c.quota())),
            ("period", set_u64(c.period())),
            ("burst", c.burst().is_some()),
            ("realtimeRuntime", set_i64(c.realtime_runtime())),
            ("realtimePeriod", set_u64(c.realtime_period())),
            ("idle", c.idle().is_some()),
        ] {
            if set {
                need(format!("cpu.{name}"), "cpu");
            }
        }
        if c.cpus().as_deref().is_some_and(|s| !s.is_empty()) {
            need("cpu.cpus".into(), "cpuset");
        }
        if c.mems().as_deref().is_some_and(|s| !s.is_empty()) {
            need("cpu.mems".into(), "cpuset");
        }
    }
    if r.pids().is_some_and(|p| p.limit() != 0) {
        need("pids.limit".into(), "pids");
    }
    if let Some(b) = r.block_io() {
        if b.weight().is_some_and(|w| w != 0) {
            need("blockIO.weight".into(), "blkio");
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            need("blockIO.leafWeight".into(), "blkio");
        }
        let lists = [
            (
                "weightDevice",
                b.weight_device().as_ref().map_or(0, Vec::len),
            ),
            ("throttleReadBpsDevice", len(b.throttle_read_bps_device())),
            ("throttleWriteBpsDevice", len(b.throttle_write_bps_device())),
            ("throttleReadIOPSDevice", len(b.throttle_read_iops_device())),
            (
                "throttleWriteIOPSDevice",
                len(b.throttle_write_iops_device()),
            ),
        ];
        for (name, n) in lists {
            if n > 0 {
                need(format!("blockIO.{name}"), "blkio");
            }
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        need("hugepageLimits".into(), "hugetlb");
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|c| c != 0) {
            need("network.classID".into(), "net_cls");
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            need("network.priorities".into(), "net_prio");
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        need("rdma".into(), "rdma");
    }
    out
}

fn len(v: &Option<Vec<LinuxThrottleDevice>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// The v2 name of a v1 controller.
pub fn v2_controller(v1: &str) -> &str {
    match v1 {
        "blkio" => "io",
        other => other,
    }
}

/// Fields that have no cgroup v2 equivalent, when set: (field, controller,
/// why). They are refused when their controller is on the v2 hierarchy.
pub fn v2_refused(r: &LinuxResources) -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    let mut no = |field: &str, ctrl: &'static str, why: &'static str| {
        out.push((format!("{PREFIX}.{field}"), ctrl, why))
    };
    if let Some(m) = r.memory() {
        // -1 (unlimited) is what v2 gives anyway.
        if m.kernel().is_some_and(|v| v > 0) {
            no(
                "memory.kernel",
                "memory",
                "cgroup v2 has no kernel memory limit",
            );
        }
        if m.kernel_tcp().is_some_and(|v| v > 0) {
            no(
                "memory.kernelTCP",
                "memory",
                "cgroup v2 has no kernel TCP memory limit",
            );
        }
        if m.swappiness().is_some() {
            no("memory.swappiness", "memory", "cgroup v2 has no swappiness");
        }
        if m.disable_oom_killer() == Some(true) {
            no(
                "memory.disableOOMKiller",
                "memory",
                "cgroup v2 cannot disable the OOM killer",
            );
        }
        if m.use_hierarchy() == Some(false) {
            no(
                "memory.useHierarchy",
                "memory",
                "cgroup v2 accounting is always hierarchical",
            );
        }
    }
    if let Some(c) = r.cpu() {
        if set_i64(c.realtime_runtime()) {
            no(
                "cpu.realtimeRuntime",
                "cpu",
                "cgroup v2 has no realtime group scheduling",
            );
        }
        if set_u64(c.realtime_period()) {
            no(
                "cpu.realtimePeriod",
                "cpu",
                "cgroup v2 has no realtime group scheduling",
            );
        }
    }
    if let Some(b) = r.block_io() {
        let leaf = b.leaf_weight().is_some_and(|w| w != 0)
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some_and(|w| w != 0));
        if leaf {
            no(
                "blockIO.leafWeight",
                "blkio",
                "cgroup v2 has no leaf weights",
            );
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|c| c != 0) {
            no(
                "network.classID",
                "net_cls",
                "cgroup v2 has no net_cls controller",
            );
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            no(
                "network.priorities",
                "net_prio",
                "cgroup v2 has no net_prio controller",
            );
        }
    }
    out
}

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000): the quadratic
/// fit runc and crun use, which maps the default 1024 to the default 100.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// blkio.weight (10..1000) to io.weight (1..10000), linearly.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// The v2 swap limit (swap alone) from the spec's memory+swap total.
/// `Ok(None)` = leave memory.swap.max alone; `Some(-1)` = "max".
pub fn swap_v2(swap: i64, memory: i64) -> std::result::Result<Option<i64>, &'static str> {
    match (swap, memory) {
        // Unlimited memory with swap unset: both unlimited, as on v1.
        (0, -1) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (-1, _) => Ok(Some(-1)),
        (s, -1) => Ok(Some(s)),
        (_, 0) => Err("a swap limit needs a memory limit"),
        (_, m) if m < 0 => Err("invalid memory limit"),
        (s, m) if s < m => Err("memory+swap limit must be >= the memory limit"),
        (s, m) => Ok(Some(s - m)),
    }
}

/// A v2 limit value: -1 (or below) is "max".
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// Checks a hugepage size like `2MB`, `1GB`, `64KB` (the form of the
/// hugetlb file names) so that it cannot name another file.
pub fn check_page_size(s: &str) -> bool {
    let Some(num) = s
        .strip_suffix("KB")
        .or_else(|| s.strip_suffix("MB"))
        .or_else(|| s.strip_suffix("GB"))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

/// An rdma.max line: `dev hca_handle=N hca_object=M`.
pub fn rdma_line(dev: &str, handles: Option<u32>, objects: Option<u32>) -> String {
    let mut s = dev.to_string();
    if let Some(h) = handles {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = objects {
        s.push_str(&format!(" hca_object={o}"));
    }
    s
}

/// `unified` keys name files in the container's own cgroup: no path
/// separators, and none of the files through which the runtime controls
/// membership and state (a config must not move or kill the runtime's view).
pub fn check_unified_key(key: &str) -> Result<&str> {
    let field = format!("{PREFIX}.unified.{key}");
    if key.is_empty() || key.contains('/') || key.starts_with('.') {
        return Err(Error::msg(format!("{field}: not a cgroup file name")));
    }
    let Some((ctrl, _)) = key.split_once('.') else {
        return Err(Error::msg(format!(
            "{field}: must be of the form <controller>.<file>"
        )));
    };
    const RESERVED: &[&str] = &[
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
        "cgroup.type",
        "cgroup.freeze",
        "cgroup.kill",
    ];
    if RESERVED.contains(&key) {
        return Err(Error::NotSupported(format!(
            "{field} (the runtime manages this file)"
        )));
    }
    Ok(ctrl)
}

/// Parses a memory size like runc's update flags (docker's RAMInBytes):
/// `1024`, `64k`, `100M`, `1.5g`, `2GiB`; binary multiples.
pub fn parse_ram(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let lower = lower.strip_suffix('i').unwrap_or(lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        Some('p') => (&lower[..lower.len() - 1], 1 << 50),
        _ => (lower, 1),
    };
    let num = num.trim();
    let ok = !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && num.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let v: f64 =
        if ok { num.parse().ok() } else { None }.ok_or_else(|| format!("invalid size: {s:?}"))?;
    let bytes = v * mult as f64;
    if bytes >= i64::MAX as f64 {
        return Err(format!("size too large: {s:?}"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_conversion_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // the cases of runc's own test
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(262_143), 10_000);
        assert_eq!(shares_to_weight(262_145), 10_000);
    }

    #[test]
    fn blkio_conversion() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }

    #[test]
    fn swap() {
        assert_eq!(swap_v2(0, 100), Ok(None));
        assert_eq!(swap_v2(0, -1), Ok(Some(-1)));
        assert_eq!(swap_v2(-1, 100), Ok(Some(-1)));
        assert_eq!(swap_v2(300, 100), Ok(Some(200)));
        assert_eq!(swap_v2(100, 100), Ok(Some(0)));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(50, 0).is_err());
    }

    #[test]
    fn page_sizes() {
        assert!(check_page_size("2MB"));
        assert!(check_page_size("1GB"));
        assert!(check_page_size("64KB"));
        assert!(!check_page_size("2M"));
        assert!(!check_page_size("../x"));
        assert!(!check_page_size("MB"));
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("1024"), Ok(1024));
        assert_eq!(parse_ram("64k"), Ok(65536));
        assert_eq!(parse_ram("100M"), Ok(100 << 20));
        assert_eq!(parse_ram("1.5g"), Ok(3 << 29));
        assert_eq!(parse_ram("2GiB"), Ok(2 << 30));
        assert_eq!(parse_ram("-1"), Ok(-1));
        assert!(parse_ram("abc").is_err());
        assert!(parse_ram("").is_err());
        assert!(parse_ram("-5").is_err());
    }

    #[test]
    fn unified_keys() {
        assert_eq!(check_unified_key("memory.high").unwrap(), "memory");
        assert!(check_unified_key("cgroup.procs").is_err());
        assert!(check_unified_key("../memory.max").is_err());
        assert!(check_unified_key("nodot").is_err());
    }
}
