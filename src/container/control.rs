//! Operations on a live container's cgroup: pause, resume, ps, update,
//! events, and the cgroup side of `kill --all`.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cgroups::{resources::parse_ram, Manager};
use crate::cli::UpdateArgs;
use crate::error::{Error, Result};
use crate::state::{self, Record, StateDir, Status};

fn manager(rec: &Record) -> Result<Manager> {
    Manager::from_paths(&rec.cgroup_paths)
}

/// `pause`: freezes a created or running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let sd = StateDir::open(root, id)?;
    let rec = sd.load()?;
    match state::status(&sd.path, &rec) {
        Status::Running | Status::Created => manager(&rec)?.freeze(),
        _ => Err(Error::NotRunning),
    }
}

/// `resume`: thaws a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let sd = StateDir::open(root, id)?;
    let rec = sd.load()?;
    match state::status(&sd.path, &rec) {
        Status::Paused => manager(&rec)?.thaw(),
        _ => Err(Error::msg("container not paused")),
    }
}

/// `kill --all`: signals every process of the container's cgroup. The
/// cgroup is frozen meanwhile, so no process can fork a new one between the
/// listing and the signal (SIGKILL on cgroup v2 is one cgroup.kill write).
/// A paused container stays paused, unless killed.
pub(crate) fn signal_all(rec: &Record, signo: i32, paused: bool) -> Result<()> {
    let m = manager(rec)?;
    if signo == libc::SIGKILL && m.kill_all()? {
        return Ok(());
    }
    let froze = !paused && m.freeze().is_ok();
    for pid in m.pids() {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(pid, signo) };
    }
    if froze || (paused && signo == libc::SIGKILL) {
        m.thaw()?;
    }
    Ok(())
}

/// Lets a paused container's processes act on a SIGKILL just sent: a v1
/// frozen task does not die until thawed.
pub(crate) fn thaw_for_kill(rec: &Record) -> Result<()> {
    manager(rec)?.thaw()
}

/// `ps`: with `json`, the container's pids as a JSON array (what containerd
/// reads); else ps(1) run with `args` (default `-ef`), keeping the header and
/// the container's lines.
pub fn ps(root: &Path, id: &str, json: bool, args: &[String]) -> Result<String> {
    let (_, rec) = state::load_unlocked(root, id)?;
    let pids = manager(&rec)?.pids();
    if json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string(&pids).unwrap_or_default()
        ));
    }
    let default = ["-ef".to_string()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps")
        .args(args)
        .output()
        .map_err(|e| Error::msg(format!("run ps: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(Error::msg(format!(
            "ps {}: {} {first}",
            args.join(" "),
            out.status
        )));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| Error::msg("couldn't find PID field in ps output"))?;
    let mut res = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let pid: i32 = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::msg(format!("unable to parse pid in ps line {line:?}")))?;
        if pids.contains(&pid) {
            res.push_str(line);
            res.push('\n');
        }
    }
    Ok(res)
}

/// `update`: applies new limits to a live container. `--resources` gives
/// a LinuxResources JSON (file or `-`); the flags are applied on top of it.
pub fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    if a.l3_cache_schema.is_some() {
        return Err(Error::NotSupported("--l3-cache-schema (Intel RDT)".into()));
    }
    if a.mem_bw_schema.is_some() {
        return Err(Error::NotSupported("--mem-bw-schema (Intel RDT)".into()));
    }
    let mut r = match a.resources.as_deref() {
        Some(src) => read_resources(src)?,
        None => LinuxResources::default(),
    };
    apply_flags(&mut r, a)?;
    let sd = StateDir::open(root, &a.id)?;
    let rec = sd.load()?;
    if state::status(&sd.path, &rec) == Status::Stopped {
        return Err(Error::NotRunning);
    }
    if let Some(unit) = &rec.systemd_unit {
        crate::cgroups::systemd::update(unit, &r)?;
    }
    manager(&rec)?.apply(&r, true)
}

fn read_resources(src: &str) -> Result<LinuxResources> {
    let (data, name) = if src == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .map_err(|e| Error::msg(format!("read resources from stdin: {e}")))?;
        (v, "<stdin>".to_string())
    } else {
        let v = std::fs::read(src).map_err(|e| Error::msg(format!("{src}: {e}")))?;
        (v, src.to_string())
    };
    let mut de = serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Config {
        file: name,
        path: e.path().to_string(),
        msg: e.inner().to_string(),
    })
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::msg(format!("invalid value for {flag}: {v:?}")))
}

fn ram(flag: &str, v: &str) -> Result<i64> {
    parse_ram(v).map_err(|e| Error::msg(format!("invalid value for {flag}: {e}")))
}

fn apply_flags(r: &mut LinuxResources, a: &UpdateArgs) -> Result<()> {
    let mut mem = r.memory().unwrap_or_default();
    let mut cpu = r.cpu().clone().unwrap_or_default();
    let mut touched = (false, false);
    type MemSet = for<'a> fn(&'a mut LinuxMemory, Option<i64>) -> &'a mut LinuxMemory;
    type CpuU64 = for<'a> fn(&'a mut LinuxCpu, Option<u64>) -> &'a mut LinuxCpu;
    type CpuI64 = for<'a> fn(&'a mut LinuxCpu, Option<i64>) -> &'a mut LinuxCpu;
    let mem_flags: [(&str, &Option<String>, MemSet); 5] = [
        ("memory", &a.memory, LinuxMemory::set_limit),
        ("memory-swap", &a.memory_swap, LinuxMemory::set_swap),
        (
            "memory-reservation",
            &a.memory_reservation,
            LinuxMemory::set_reservation,
        ),
        ("kernel-memory", &a.kernel_memory, LinuxMemory::set_kernel),
        (
            "kernel-memory-tcp",
            &a.kernel_memory_tcp,
            LinuxMemory::set_kernel_tcp,
        ),
    ];
    for (flag, v, set) in mem_flags {
        if let Some(v) = v {
            set(&mut mem, Some(ram(flag, v)?));
            touched.0 = true;
        }
    }
    let u64_flags: [(&str, &Option<String>, CpuU64); 4] = [
        ("cpu-period", &a.cpu_period, LinuxCpu::set_period),
        ("cpu-share", &a.cpu_share, LinuxCpu::set_shares),
        (
            "cpu-rt-period",
            &a.cpu_rt_period,
            LinuxCpu::set_realtime_period,
        ),
        ("cpu-burst", &a.cpu_burst, LinuxCpu::set_burst),
    ];
    for (flag, v, set) in u64_flags {
        if let Some(v) = v {
            set(&mut cpu, Some(num(flag, v)?));
            touched.1 = true;
        }
    }
    let i64_flags: [(&str, &Option<String>, CpuI64); 3] = [
        ("cpu-quota", &a.cpu_quota, LinuxCpu::set_quota),
        (
            "cpu-rt-runtime",
            &a.cpu_rt_runtime,
            LinuxCpu::set_realtime_runtime,
        ),
        ("cpu-idle", &a.cpu_idle, LinuxCpu::set_idle),
    ];
    for (flag, v, set) in i64_flags {
        if let Some(v) = v {
            set(&mut cpu, Some(num(flag, v)?));
            touched.1 = true;
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
        touched.1 = true;
    }
    if let Some(v) = &a.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
        touched.1 = true;
    }
    if touched.0 {
        r.set_memory(Some(mem));
    }
    if touched.1 {
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = &a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(num("pids-limit", v)?);
        r.set_pids(Some(p));
    }
    if let Some(v) = &a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(num("blkio-weight", v)?));
        r.set_block_io(Some(b));
    }
    Ok(())
}

/// One line of `events` output, fields in runc's order.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<crate::cgroups::stats::Stats>,
}

/// `events`: JSON lines of `{"type":"stats","id":..,"data":{..}}` every
/// `interval` and `{"type":"oom","id":..}` on each OOM kill, until the
/// container stops; with `stats_only`, one stats line. The state lock is
/// not held (delete must not wait for a reader of events).
pub fn events(
    root: &Path,
    id: &str,
    interval: &str,
    stats_only: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let every = humantime::parse_duration(interval)
        .map_err(|e| Error::msg(format!("invalid --interval {interval:?}: {e}")))?;
    if every.is_zero() {
        return Err(Error::msg("duration interval must be greater than 0"));
    }
    let (dir, rec) = state::load_unlocked(root, id)?;
    if state::status(&dir, &rec) == Status::Stopped {
        return Err(Error::msg(format!("container with id {id} is not running")));
    }
    let m = manager(&rec)?;
    let emit = |out: &mut dyn Write, ev: Event| -> Result<()> {
        let line = serde_json::to_string(&ev).unwrap_or_default();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::msg(format!("events: write: {e}")))
    };
    let stats = |m: &Manager| Event {
        typ: "stats",
        id,
        data: Some(m.stats()),
    };
    if stats_only {
        return emit(out, stats(&m));
    }
    // Without a memory controller there are no OOM events, only stats.
    let mut oom = m.oom_watch().ok();
    let pidfd = super::pidfd_open(rec.pid).map_err(|_| Error::NotRunning)?;
    if !state::init_alive(&rec) {
        return Err(Error::msg(format!("container with id {id} is not running")));
    }
    let mut next = Instant::now() + every;
    loop {
        let left = next.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = &oom {
            fds.push(PollFd::new(w.fd().as_fd(), PollFlags::POLLIN));
        }
        let n = match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::msg(format!("events: poll: {e}"))),
        };
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let exited = ready(&fds[0]);
        let oom_ready = fds.get(1).is_some_and(ready);
        drop(fds);
        if let Some(w) = oom.as_mut().filter(|_| n > 0 && (oom_ready || exited)) {
            for _ in 0..w.take() {
                let oom = Event {
                    typ: "oom",
                    id,
                    data: None,
                };
                emit(out, oom)?;
            }
        }
        if exited {
            return Ok(());
        }
        if Instant::now() >= next {
            emit(out, stats(&m))?;
            next += every;
            if next < Instant::now() {
                next = Instant::now() + every;
            }
        }
    }
}
