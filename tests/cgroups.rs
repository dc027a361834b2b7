//! cgroups as the host sees them: the files `create` and `update` write,
//! pause/resume, ps, events, OOM kills, pids limits, cgroupsPath, cleanup,
//! and the refusal of fields the host cannot honour.
//!
//! The same tests run on this cgroup v1 (hybrid) host and, through
//! hack/vm-test, on a pure cgroup v2 VM: each reads the v1 or v2 file of the
//! setting it checks. Tests that only make sense on one kind of host say so
//! and return early.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The container's cgroup path used by these tests (runc needs one given).
fn cg_path(id: &str) -> String {
    format!("/mydocker/{id}")
}

/// Where controller `ctrl` (v1 name) keeps the cgroup `cg` on this host: the
/// v1 hierarchy, the hybrid host's cgroup2 mount for a controller only it
/// has, or the v2 hierarchy.
fn cg_dir(ctrl: &str, cg: &str) -> PathBuf {
    let rel = cg.trim_start_matches('/');
    if cgroup2_host() {
        return Path::new("/sys/fs/cgroup").join(rel);
    }
    let v1 = Path::new("/sys/fs/cgroup").join(ctrl);
    if v1.is_dir() {
        v1.join(rel)
    } else {
        Path::new("/sys/fs/cgroup/unified").join(rel)
    }
}

fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A config for `args` in cgroup /mydocker/<id> with the given resources
/// (devices stay as the base config has them).
fn spec_with(t: &Ctx, args: &[&str], res: Value) -> Value {
    let mut cfg = t.spec(args);
    cfg["linux"]["cgroupsPath"] = json!(cg_path(&t.id));
    for (k, v) in res.as_object().unwrap() {
        cfg["linux"]["resources"][k] = v.clone();
    }
    cfg
}

fn run_detached(t: &Ctx, cfg: &Value) {
    t.write_config(cfg);
    t.md(&["run", "--detach", "--bundle", t.bundle_str(), &t.id])
        .ok();
}

fn v1_memsw() -> bool {
    !cgroup2_host() && Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

#[test]
fn create_writes_the_limits() {
    let t = Ctx::new("cglimits");
    let v2 = cgroup2_host();
    let mut mem = json!({"limit": 67108864, "reservation": 33554432});
    if v1_memsw() {
        mem["swap"] = json!(134217728);
    }
    let cfg = spec_with(
        &t,
        &["sleep", "100"],
        json!({
            "memory": mem,
            "pids": {"limit": 40},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
        }),
    );
    t.create_ok(&cfg);
    let pid = state_pid(&t.state());
    let cg = cg_path(&t.id);
    let (mem, cpu, pids, cpuset) = (
        cg_dir("memory", &cg),
        cg_dir("cpu", &cg),
        cg_dir("pids", &cg),
        cg_dir("cpuset", &cg),
    );
    if v2 {
        assert_eq!(read(&mem, "memory.max"), "67108864");
        assert_eq!(read(&mem, "memory.low"), "33554432");
        // runc's conversion of 512 shares
        assert_eq!(read(&cpu, "cpu.weight"), "59");
        assert_eq!(read(&cpu, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
        if v1_memsw() {
            assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "134217728");
        }
        assert_eq!(read(&cpu, "cpu.shares"), "512");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(read(&pids, "pids.max"), "40");
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(read(&cpuset, "cpuset.mems"), "0");
    // the init is in its cgroup before `start`
    let procs = read(&mem, "cgroup.procs");
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    t.md(&["delete", "--force", &t.id]).ok();
    for d in [&mem, &cpu, &pids, &cpuset] {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    t.assert_no_leftovers();
}

#[test]
fn update_applies_flags_and_resources_live() {
    let t = Ctx::new("cgupdate");
    let cfg = spec_with(
        &t,
        &["sleep", "100"],
        json!({"memory": {"limit": 67108864}}),
    );
    run_detached(&t, &cfg);
    let cg = cg_path(&t.id);
    let (mem, cpu, pids) = (
        cg_dir("memory", &cg),
        cg_dir("cpu", &cg),
        cg_dir("pids", &cg),
    );
    let v2 = cgroup2_host();
    let swap = if v2 {
        mem.join("memory.swap.max").exists()
    } else {
        v1_memsw()
    };
    let mut args = vec![
        "update",
        "--memory",
        "128M",
        "--memory-reservation",
        "64m",
        "--pids-limit",
        "30",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
    ];
    if swap {
        args.extend(["--memory-swap", "256M"]);
    }
    args.push(&t.id);
    t.md(&args).ok();
    assert_eq!(read(&pids, "pids.max"), "30");
    if v2 {
        assert_eq!(read(&mem, "memory.max"), "134217728");
        assert_eq!(read(&mem, "memory.low"), "67108864");
        if swap {
            // swap alone: 256M total - 128M memory
            assert_eq!(read(&mem, "memory.swap.max"), "134217728");
        }
        assert_eq!(read(&cpu, "cpu.weight"), "35");
        assert_eq!(read(&cpu, "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "134217728");
        assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "67108864");
        if swap {
            assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "268435456");
        }
        assert_eq!(read(&cpu, "cpu.shares"), "256");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "20000");
    }

    // docker's `update`: a LinuxResources file where 0 means "unchanged"
    let mut docker = json!({"memory": {"limit": 100663296, "reservation": 0, "kernel": 0},
        "cpu": {"shares": 512, "quota": 0, "period": 0},
        "pids": {"limit": 20}, "blockIO": {"weight": 0}});
    if swap {
        docker["memory"]["swap"] = json!(201326592);
    }
    let file = t.tmp.path().join("res.json");
    fs::write(&file, docker.to_string()).unwrap();
    t.md(&["update", "--resources", file.to_str().unwrap(), &t.id])
        .ok();
    assert_eq!(read(&pids, "pids.max"), "20");
    if v2 {
        assert_eq!(read(&mem, "memory.max"), "100663296");
        assert_eq!(read(&cpu, "cpu.weight"), "59");
        assert_eq!(read(&cpu, "cpu.max"), "20000 100000", "quota 0 = unchanged");
    } else {
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "100663296");
        if swap {
            assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "201326592");
        }
        assert_eq!(read(&cpu, "cpu.shares"), "512");
        assert_eq!(
            read(&cpu, "cpu.cfs_quota_us"),
            "20000",
            "quota 0 = unchanged"
        );
    }

    // containerd's `update --resources -`: JSON on stdin
    let mut cmd = t.md_command(&["update", "-r", "-", &t.id]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": -1}}"#)
        .unwrap();
    assert!(wait_child(&mut child, CMD_TIMEOUT).unwrap().success());
    assert_eq!(read(&pids, "pids.max"), "max");

    // device rules given to update replace the container's list
    let devs = json!({"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}]});
    fs::write(&file, devs.to_string()).unwrap();
    t.md(&["update", "-r", file.to_str().unwrap(), &t.id]).ok();
    let ddir = cg_dir("devices", &cg);
    if v2 {
        // one device program: the new one replaced the one of create
        let o = std::process::Command::new("bpftool")
            .args(["cgroup", "list"])
            .arg(&ddir)
            .output();
        match o {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let n = text.lines().filter(|l| l.contains("cgroup_device")).count();
                assert_eq!(n, 1, "{text}");
            }
            _ => println!("bpftool not available: device programs not counted"),
        }
    } else {
        let list = read(&ddir, "devices.list");
        assert!(list.lines().any(|l| l == "c 1:11 rw"), "{list}");
    }

    t.md(&["update", "--memory", "lots", &t.id])
        .err("invalid value for memory");
    t.md(&["update", "--l3-cache-schema", "L3:0=f", &t.id])
        .err("not supported: --l3-cache-schema");
    fs::write(&file, r#"{"memory": {"limit": "big"}}"#).unwrap();
    t.md(&["update", "-r", file.to_str().unwrap(), &t.id])
        .err("memory.limit");
    t.md(&["kill", &t.id, "KILL"]).ok();
    t.wait_status("stopped");
    t.md(&["update", "--pids-limit", "10", &t.id])
        .err("container not running");
    t.md(&["delete", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let t = Ctx::new("cgpause");
    let cfg = spec_with(&t, &["sleep", "100"], json!({}));
    run_detached(&t, &cfg);
    let dir = cg_dir("freezer", &cg_path(&t.id));
    t.md(&["pause", &t.id]).ok();
    if cgroup2_host() {
        assert_eq!(read(&dir, "cgroup.freeze"), "1");
        assert!(read(&dir, "cgroup.events").lines().any(|l| l == "frozen 1"));
    } else {
        assert_eq!(read(&dir, "freezer.state"), "FROZEN");
    }
    assert_eq!(t.status(), "paused");
    t.md(&["pause", &t.id]).err("container not running");
    t.md(&["resume", &t.id]).ok();
    if cgroup2_host() {
        assert_eq!(read(&dir, "cgroup.freeze"), "0");
    } else {
        assert_eq!(read(&dir, "freezer.state"), "THAWED");
    }
    assert_eq!(t.status(), "running");
    t.md(&["resume", &t.id]).err("container not paused");
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn paused_container_can_be_killed_and_force_deleted() {
    let t = Ctx::new("cgpausekill");
    let cfg = spec_with(&t, &["sleep", "100"], json!({}));
    run_detached(&t, &cfg);
    t.md(&["pause", &t.id]).ok();
    t.md(&["kill", &t.id, "KILL"]).ok();
    t.wait_status("stopped");
    t.md(&["delete", &t.id]).ok();
    t.assert_no_leftovers();

    let id = t.other_id("force");
    let mut cfg = spec_with(&t, &["sleep", "100"], json!({}));
    cfg["linux"]["cgroupsPath"] = json!(cg_path(&id));
    t.write_config(&cfg);
    t.md(&["run", "-d", "--bundle", t.bundle_str(), &id]).ok();
    t.md(&["pause", &id]).ok();
    assert_eq!(t.status_of(&id), "paused");
    t.md(&["delete", "--force", &id]).ok();
    t.assert_no_leftovers_of(&id);
}

#[test]
fn ps_lists_the_container_processes() {
    let t = Ctx::new("cgps");
    let cfg = spec_with(&t, &["sh", "-c", "sleep 100 & sleep 101 & wait"], json!({}));
    run_detached(&t, &cfg);
    let mut pids: Vec<u32> = Vec::new();
    let three = wait_until(WAIT, || {
        let out = t.md(&["ps", "--format", "json", &t.id]);
        out.ok();
        pids = serde_json::from_str(&out.stdout).unwrap();
        pids.len() == 3
    });
    assert!(three, "expected sh and two sleeps, got {pids:?}");
    assert!(pids.contains(&state_pid(&t.state())));

    let out = t.md(&["ps", &t.id]);
    out.ok();
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    let col = header.split_whitespace().position(|f| f == "PID").unwrap();
    let listed: Vec<u32> = lines
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{out}");
    assert!(listed.iter().all(|p| pids.contains(p)), "{out}");

    // ps(1) arguments after the id, with or without `--`
    for args in [&["--", "-o", "pid,comm"][..], &["-o", "pid,comm"]] {
        let mut a = vec!["ps", t.id.as_str()];
        a.extend_from_slice(args);
        // a child may still be between fork and exec (comm "sh"): wait
        let mut last = None;
        let seen = wait_until(WAIT, || {
            let out = t.md(&a);
            out.ok();
            let mut lines = out.stdout.lines();
            let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
            assert_eq!(header, ["PID", "COMMAND"], "{out}");
            let mut comms: Vec<&str> = lines
                .map(|l| l.split_whitespace().nth(1).unwrap())
                .collect();
            comms.sort();
            let ok = comms == ["sh", "sleep", "sleep"];
            last = Some(out);
            ok
        });
        assert!(seen, "{}", last.unwrap());
    }
    t.md(&["ps", "--format", "json", "no-such-ctr"])
        .err("does not exist");
    t.md(&["delete", "--force", &t.id]).ok();
}

#[test]
fn events_stats_has_runc_shape() {
    let t = Ctx::new("cgevents");
    let cfg = spec_with(
        &t,
        &["sleep", "100"],
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 40}}),
    );
    run_detached(&t, &cfg);
    let out = t.md(&["events", "--stats", &t.id]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let ev: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], t.id.as_str(), "{ev}");
    let d = &ev["data"];
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d[k].is_object(), "no {k} in {d}");
    }
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 40, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    t.md(&["events", "--interval", "0s", &t.id])
        .err("interval must be greater than 0");
    t.md(&["kill", &t.id, "KILL"]).ok();
    t.wait_status("stopped");
    t.md(&["events", "--stats", &t.id]).err("is not running");
    t.md(&["delete", &t.id]).ok();
}

/// Memory and swap limited to `bytes` (no swap to escape to).
fn memory_only(bytes: i64) -> Value {
    let mut m = json!({"limit": bytes});
    if cgroup2_host() || v1_memsw() {
        m["swap"] = json!(bytes);
    }
    json!({ "memory": m })
}

#[test]
fn memory_hog_is_oom_killed_with_137() {
    let t = Ctx::new("cgoom");
    // busybox tail keeps /dev/zero's endless "line" in memory
    let cfg = spec_with(&t, &["tail", "/dev/zero"], memory_only(32 << 20));
    t.run(&cfg).ok_code(137);
    t.assert_no_leftovers();
}

#[test]
fn events_reports_oom_and_ends_with_the_container() {
    let t = Ctx::new("cgoomev");
    let mut cfg = spec_with(
        &t,
        &[
            "sh",
            "-c",
            "while [ ! -e /out/go ]; do sleep 0.02; done; exec tail /dev/zero",
        ],
        memory_only(32 << 20),
    );
    t.with_out(&mut cfg);
    run_detached(&t, &cfg);
    let mut cmd = t.md_command(&["events", "--interval", "100ms", &t.id]);
    let (mut child, stdout, _, desc) = spawn_logged(&t.logs, &mut cmd);
    // The first stats line means the OOM watch is in place: let it OOM.
    assert!(
        wait_until(WAIT, || fs::read_to_string(&stdout)
            .unwrap_or_default()
            .contains(r#""type":"stats""#)),
        "{desc}: no stats line"
    );
    fs::write(t.out.join("go"), "").unwrap();
    let st = wait_child(&mut child, CMD_TIMEOUT).expect("events did not end with the container");
    assert!(st.success(), "{desc}: {st:?}");
    let text = fs::read_to_string(&stdout).unwrap();
    let oom = format!(r#"{{"type":"oom","id":"{}"}}"#, t.id);
    assert!(text.lines().any(|l| l == oom), "no {oom} in:\n{text}");
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["type"] == "stats" || v["type"] == "oom", "{l}");
    }
    t.md(&["delete", &t.id]).ok();
}

#[test]
fn fork_bomb_stopped_by_pids_max() {
    let t = Ctx::new("cgforkbomb");
    let mut cfg = spec_with(
        &t,
        &[
            "sh",
            "-c",
            // the inner shell forks until fork fails (and then dies)
            "sh -c 'while :; do sleep 100 & done' 2>/dev/null; echo done > /out/done; exec sleep 100",
        ],
        json!({"pids": {"limit": 10}}),
    );
    t.with_out(&mut cfg);
    run_detached(&t, &cfg);
    t.wait_out_file("done");
    let dir = cg_dir("pids", &cg_path(&t.id));
    // pid 1 and the sleeps; the inner shell is gone
    assert_eq!(read(&dir, "pids.current"), "9");
    let events = read(&dir, "pids.events");
    let max: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max > 0, "pids.events: {events}");
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

/// This process's cgroup in the hierarchy of `ctrl` ("" for cgroup2).
fn own_cgroup(ctrl: &str) -> String {
    let s = fs::read_to_string("/proc/self/cgroup").unwrap();
    for l in s.lines() {
        let mut f = l.splitn(3, ':');
        let (_, c, p) = (f.next(), f.next().unwrap(), f.next().unwrap());
        if (ctrl.is_empty() && c.is_empty()) || c.split(',').any(|x| x == ctrl) {
            return p.to_string();
        }
    }
    "/".into()
}

#[test]
fn cgroups_path_absolute_and_relative() {
    let t = Ctx::new("cgpaths");
    let abs = format!("/mydocker-it-abs/{}", t.id);
    let rel = format!("mydocker-it-rel/{}", t.id);
    // relative: under the runtime's own cgroup (v1), or its parent on v2
    // (which holds processes and cannot enable controllers for a child)
    let v2_base = {
        let own = own_cgroup("");
        Path::new(&own)
            .parent()
            .unwrap_or(Path::new("/"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let rel_base = if cgroup2_host() {
        v2_base.clone()
    } else {
        own_cgroup("memory")
    };
    let rel_full = format!("{}/{rel}", rel_base.trim_end_matches('/'));
    for (path, host) in [(&abs, abs.clone()), (&rel, rel_full)] {
        let mut cfg = t.spec(&["sleep", "100"]);
        cfg["linux"]["cgroupsPath"] = json!(path);
        t.create_ok(&cfg);
        let pid = state_pid(&t.state());
        let dir = cg_dir("memory", &host);
        let procs = read(&dir, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{pid} not in {}: {procs:?}",
            dir.display()
        );
        t.md(&["delete", "--force", &t.id]).ok();
        assert!(!dir.exists(), "{} left behind", dir.display());
        // the parent the runtime made (shared, so it stays): tidy up
        let _ = fs::remove_dir(dir.parent().unwrap());
    }
    for c in CGROUP_V1_CONTROLLERS.iter().chain(&["unified", ""]) {
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join("mydocker-it-abs"));
        let base = Path::new("/sys/fs/cgroup").join(c);
        // a hybrid host's cgroup2 follows the v2 rule too
        let own = if c.is_empty() || *c == "unified" {
            v2_base.clone()
        } else {
            own_cgroup(c)
        };
        let _ = fs::remove_dir(
            base.join(own.trim_start_matches('/'))
                .join("mydocker-it-rel"),
        );
    }
}

#[test]
fn preexisting_cgroup_stays_after_delete() {
    let t = Ctx::new("cgpre");
    let cg = format!("/mydocker-it-pre/{}", t.id);
    let dirs: Vec<PathBuf> = if cgroup2_host() {
        vec![cg_dir("memory", &cg)]
    } else {
        CGROUP_V1_CONTROLLERS
            .iter()
            .chain(&["unified"])
            .map(|c| Path::new("/sys/fs/cgroup").join(c))
            .filter(|b| b.is_dir())
            .map(|b| b.join(cg.trim_start_matches('/')))
            .collect()
    };
    for d in &dirs {
        fs::create_dir_all(d).unwrap();
    }
    let mut cfg = t.spec(&["sleep", "100"]);
    cfg["linux"]["cgroupsPath"] = json!(cg);
    cfg["linux"]["resources"]["pids"] = json!({"limit": 20});
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    t.md(&["delete", "--force", &t.id]).ok();
    for d in &dirs {
        assert!(d.exists(), "pre-existing {} was removed", d.display());
        assert_eq!(read(d, "cgroup.procs"), "", "{}", d.display());
    }
    for d in &dirs {
        fs::remove_dir(d).unwrap();
        let _ = fs::remove_dir(d.parent().unwrap());
    }
}

/// Kernels since 5.16 accept memory.kmem.limit_in_bytes and ignore it.
fn kernel_ignores_kmem() -> bool {
    let rel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = rel.split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    (major, minor) >= (5, 16)
}

#[test]
fn fields_the_host_cannot_honour_fail_create_cleanly() {
    let t = Ctx::new("cgunsup");
    let v2 = cgroup2_host();
    let no_v1 = |c: &str| !Path::new("/sys/fs/cgroup").join(c).is_dir();
    let unified_ctrls = fs::read_to_string(if v2 {
        "/sys/fs/cgroup/cgroup.controllers"
    } else {
        "/sys/fs/cgroup/unified/cgroup.controllers"
    })
    .unwrap_or_default();
    let has_unified = |c: &str| unified_ctrls.split_whitespace().any(|x| x == c);
    // (name, resources, phrase of the error)
    let mut cases: Vec<(&str, Value, &str)> = vec![
        (
            "unified-reserved",
            json!({"unified": {"cgroup.procs": "1"}}),
            "not supported: linux.resources.unified.cgroup.procs",
        ),
        (
            "device-type",
            json!({"devices": [{"allow": true, "type": "p", "access": "rwm"}]}),
            "linux.resources.devices[0].type",
        ),
    ];
    if v2 || no_v1("net_cls") {
        cases.push((
            "classid",
            json!({"network": {"classID": 1048577}}),
            "not supported: linux.resources.network.classID",
        ));
    }
    if v2 || no_v1("net_prio") {
        cases.push((
            "prio",
            json!({"network": {"priorities": [{"name": "lo", "priority": 1}]}}),
            "not supported: linux.resources.network.priorities",
        ));
    }
    if no_v1("rdma") && !has_unified("rdma") {
        cases.push((
            "rdma",
            json!({"rdma": {"mlx5_1": {"hcaHandles": 3}}}),
            "not supported: linux.resources.rdma",
        ));
    }
    if v2 || kernel_ignores_kmem() {
        cases.push((
            "kmem",
            json!({"memory": {"kernel": 16777216}}),
            "not supported: linux.resources.memory.kernel",
        ));
    }
    if v2 {
        for (name, res, phrase) in [
            (
                "swappiness",
                json!({"memory": {"swappiness": 10}}),
                "memory.swappiness",
            ),
            (
                "oomkill",
                json!({"memory": {"disableOOMKiller": true}}),
                "memory.disableOOMKiller",
            ),
            (
                "kmemtcp",
                json!({"memory": {"kernelTCP": 1048576}}),
                "memory.kernelTCP",
            ),
            (
                "rt",
                json!({"cpu": {"realtimeRuntime": 1000}}),
                "cpu.realtimeRuntime",
            ),
            (
                "leaf",
                json!({"blockIO": {"leafWeight": 100}}),
                "blockIO.leafWeight",
            ),
        ] {
            cases.push((name, res, phrase));
        }
    } else {
        if no_v1("unified") || !has_unified("memory") {
            cases.push((
                "unified-v1",
                json!({"unified": {"memory.high": "100000000"}}),
                "not supported: linux.resources.unified.memory.high",
            ));
        }
        if !Path::new("/sys/fs/cgroup/blkio/blkio.leaf_weight").exists() {
            cases.push((
                "leaf",
                json!({"blockIO": {"leafWeight": 100}}),
                "not supported: linux.resources.blockIO.leafWeight",
            ));
        }
        cases.push((
            "swappiness-range",
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness",
        ));
    }
    for (name, res, phrase) in cases {
        let id = t.other_id(name);
        let mut cfg = t.spec(&["true"]);
        cfg["linux"]["cgroupsPath"] = json!(cg_path(&id));
        for (k, v) in res.as_object().unwrap() {
            cfg["linux"]["resources"][k] = v.clone();
        }
        t.write_config(&cfg);
        t.md(&["create", "--bundle", t.bundle_str(), &id])
            .err(phrase);
        t.assert_no_leftovers_of(&id);
    }
    let mut cfg = t.spec(&["true"]);
    cfg["linux"]["cgroupsPath"] = json!("/mydocker/../escape");
    t.write_config(&cfg);
    let id = t.other_id("dotdot");
    t.md(&["create", "--bundle", t.bundle_str(), &id])
        .err("linux.cgroupsPath");
    t.assert_no_leftovers_of(&id);
}

#[test]
fn hugepage_limit() {
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        println!("skipped: no 2MB huge pages on this host");
        return;
    }
    let t = Ctx::new("cghugetlb");
    let cfg = spec_with(
        &t,
        &["true"],
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    );
    let dir = cg_dir("hugetlb", &cg_path(&t.id));
    let v1 = !cgroup2_host() && Path::new("/sys/fs/cgroup/hugetlb").is_dir();
    let unified = fs::read_to_string(if cgroup2_host() {
        "/sys/fs/cgroup/cgroup.controllers"
    } else {
        "/sys/fs/cgroup/unified/cgroup.controllers"
    })
    .unwrap_or_default();
    if !v1 && !unified.split_whitespace().any(|c| c == "hugetlb") {
        t.write_config(&cfg);
        t.create()
            .err("not supported: linux.resources.hugepageLimits");
        t.assert_no_leftovers();
        return;
    }
    t.create_ok(&cfg);
    // on a hybrid host without a v1 hugetlb mount this is the cgroup2 file
    let file = if v1 {
        "hugetlb.2MB.limit_in_bytes"
    } else {
        "hugetlb.2MB.max"
    };
    assert_eq!(read(&dir, file), "4194304");
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

/// The first real block device, as "major:minor".
fn block_device() -> Option<(u32, u32)> {
    let mut devs: Vec<_> = fs::read_dir("/sys/block").ok()?.flatten().collect();
    devs.sort_by_key(|e| e.file_name());
    devs.iter()
        .filter(|e| !e.file_name().to_string_lossy().starts_with("loop"))
        .find_map(|e| {
            let s = fs::read_to_string(e.path().join("dev")).ok()?;
            let (a, b) = s.trim().split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
}

#[test]
fn block_io_weight_and_throttle() {
    let t = Ctx::new("cgblkio");
    let mut bio = json!({"weight": 500});
    let dev = block_device();
    if let Some((ma, mi)) = dev {
        bio["throttleReadBpsDevice"] = json!([{"major": ma, "minor": mi, "rate": 1048576}]);
        bio["throttleWriteIOPSDevice"] = json!([{"major": ma, "minor": mi, "rate": 300}]);
    }
    let cfg = spec_with(&t, &["true"], json!({ "blockIO": bio }));
    t.write_config(&cfg);
    let out = t.create();
    if out.code != 0 {
        // a kernel without any weight file (no BFQ, no io cost model)
        out.err("not supported: linux.resources.blockIO.weight");
        println!("skipped: this host has no block I/O weight file");
        t.assert_no_leftovers();
        return;
    }
    let dir = cg_dir("blkio", &cg_path(&t.id));
    if cgroup2_host() {
        if dir.join("io.bfq.weight").exists() {
            assert!(read(&dir, "io.bfq.weight").contains("500"));
        } else {
            // runc's blkio -> io.weight conversion
            assert!(read(&dir, "io.weight").contains("default 4950"));
        }
        if let Some((ma, mi)) = dev {
            let max = read(&dir, "io.max");
            let line = max
                .lines()
                .find(|l| l.starts_with(&format!("{ma}:{mi} ")))
                .unwrap_or_else(|| panic!("no {ma}:{mi} in io.max: {max}"));
            assert!(
                line.contains("rbps=1048576") && line.contains("wiops=300"),
                "{line}"
            );
        }
    } else {
        let w = if dir.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        assert_eq!(read(&dir, w), "500");
        if let Some((ma, mi)) = dev {
            assert_eq!(
                read(&dir, "blkio.throttle.read_bps_device"),
                format!("{ma}:{mi} 1048576")
            );
            assert_eq!(
                read(&dir, "blkio.throttle.write_iops_device"),
                format!("{ma}:{mi} 300")
            );
        }
    }
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn no_device_rules_still_only_default_devices() {
    // as with runc: without linux.resources.devices the container gets the
    // default allow-list only (v1 devices.list, v2 the eBPF filter)
    let t = Ctx::new("cgdevdefault");
    let mut cfg = t.spec_sh(
        "echo x > /dev/null && echo null-ok; \
         if (: > /dev/kmsg-test) 2>/dev/null; then echo kmsg-open; else echo kmsg-denied; fi",
    );
    cfg["linux"]["devices"] = json!([{"path": "/dev/kmsg-test", "type": "c", "major": 1,
        "minor": 11, "fileMode": 0o666, "uid": 0, "gid": 0}]);
    cfg["linux"]["resources"] = json!({});
    assert_eq!(t.run_ok(&cfg), "null-ok\nkmsg-denied\n");
}

#[test]
fn kill_all_without_pid_namespace() {
    let t = Ctx::new("cgkillall");
    let mut cfg = spec_with(&t, &["sh", "-c", "sleep 100 & sleep 101 & wait"], json!({}));
    remove_namespace(&mut cfg, "pid");
    run_detached(&t, &cfg);
    let mut pids: Vec<u32> = Vec::new();
    assert!(wait_until(WAIT, || {
        let out = t.md(&["ps", "--format", "json", &t.id]);
        pids = serde_json::from_str(&out.stdout).unwrap_or_default();
        pids.len() == 3
    }));
    t.md(&["kill", "--all", &t.id, "KILL"]).ok();
    for p in &pids {
        assert!(
            wait_until(WAIT, || pid_gone(*p)),
            "pid {p} survived kill --all"
        );
    }
    t.wait_status("stopped");
    t.md(&["delete", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn realtime_runtime_v1() {
    if cgroup2_host() {
        println!("skipped: cgroup v2 has no realtime group scheduling (refused, see fields_the_host_cannot_honour_fail_create_cleanly)");
        return;
    }
    if !Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        println!("skipped: kernel without CONFIG_RT_GROUP_SCHED");
        return;
    }
    let t = Ctx::new("cgrt");
    // A child may not have more realtime runtime than its parent: without
    // one given to the parent, the kernel refuses it.
    let parent = Path::new("/sys/fs/cgroup/cpu/mydocker-it-rt");
    let cg = format!("/mydocker-it-rt/{}", t.id);
    let mut cfg = spec_with(
        &t,
        &["true"],
        json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}}),
    );
    cfg["linux"]["cgroupsPath"] = json!(cg);
    t.write_config(&cfg);
    t.create().err("linux.resources.cpu.realtimeRuntime");
    t.assert_no_leftovers();
    fs::create_dir_all(parent).unwrap();
    fs::write(parent.join("cpu.rt_runtime_us"), "20000").unwrap();
    t.create_ok(&cfg);
    let dir = cg_dir("cpu", &cg);
    assert_eq!(read(&dir, "cpu.rt_period_us"), "1000000");
    assert_eq!(read(&dir, "cpu.rt_runtime_us"), "10000");
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
    assert!(!dir.exists());
    for c in CGROUP_V1_CONTROLLERS.iter().chain(&["unified"]) {
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join("mydocker-it-rt"));
    }
}

#[test]
fn unified_keys_written_where_cgroup2_has_the_controller() {
    let t = Ctx::new("cgunified");
    let (res, file, want) = if cgroup2_host() {
        (
            json!({"unified": {"memory.high": "50000000", "pids.max": "33"}}),
            "memory.high",
            "49999872",
        )
    } else if fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        // a hybrid host whose cgroup2 carries hugetlb (this kind of machine)
        (
            json!({"unified": {"hugetlb.2MB.max": "2097152"}}),
            "hugetlb.2MB.max",
            "2097152",
        )
    } else {
        println!("skipped: no controller on this host's cgroup2 hierarchy");
        return;
    };
    let cfg = spec_with(&t, &["true"], res);
    t.create_ok(&cfg);
    let dir = if cgroup2_host() {
        cg_dir("memory", &cg_path(&t.id))
    } else {
        Path::new("/sys/fs/cgroup/unified").join(cg_path(&t.id).trim_start_matches('/'))
    };
    assert_eq!(read(&dir, file), want);
    if cgroup2_host() {
        assert_eq!(read(&dir, "pids.max"), "33");
    }
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}
