//! The systemd cgroup driver (`--systemd-cgroup`): the scope unit systemd
//! makes for the container, its limits, `update`, `delete`, and a
//! `systemctl daemon-reload` under a running container.
//!
//! These need systemd as PID 1 with its bus: on this host (no systemd) they
//! print a note and return, except the ones checking that the driver fails
//! clearly. Run them in the VM: `hack/vm-test --systemd --test systemd`.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn systemd_here() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && UnixStream::connect("/run/dbus/system_bus_socket").is_ok()
}

/// Skips (with a note) when no systemd bus is reachable.
macro_rules! need_systemd {
    () => {
        if !systemd_here() {
            eprintln!("skipped: no systemd bus here (run in the VM: hack/vm-test --systemd --test systemd)");
            return;
        }
    };
}

fn unit(t: &Ctx) -> String {
    format!("mydocker-{}.scope", t.id)
}

fn scope_dir(t: &Ctx) -> PathBuf {
    Path::new("/sys/fs/cgroup/system.slice").join(unit(t))
}

fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn systemctl(args: &[&str]) -> (i32, String) {
    let o = Command::new("systemctl").args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn show(unit: &str, prop: &str) -> String {
    let (_, out) = systemctl(&["show", "-P", prop, unit]);
    out.trim().to_string()
}

fn sd(t: &Ctx, args: &[&str]) -> Out {
    let mut a = vec!["--systemd-cgroup"];
    a.extend_from_slice(args);
    t.md(&a)
}

fn spec(t: &Ctx, args: &[&str], res: Value) -> Value {
    let mut cfg = t.spec(args);
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:mydocker:{}", t.id));
    for (k, v) in res.as_object().unwrap() {
        cfg["linux"]["resources"][k] = v.clone();
    }
    cfg
}

#[test]
fn without_systemd_create_fails_clearly() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: systemd runs on this host");
        return;
    }
    let t = Ctx::new("sdnone");
    t.write_config(&spec(&t, &["true"], json!({})));
    sd(&t, &["create", "--bundle", t.bundle_str(), &t.id])
        .err("systemd is not running on this host");
    t.assert_no_leftovers();
    // run, too, and without a cgroupsPath
    let mut cfg = t.spec(&["true"]);
    cfg["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    t.write_config(&cfg);
    sd(&t, &["run", "--bundle", t.bundle_str(), &t.id]).err("systemd is not running");
    t.assert_no_leftovers();
}

#[test]
fn cgroups_path_must_be_slice_prefix_name() {
    let t = Ctx::new("sdpath");
    let mut cfg = t.spec(&["true"]);
    cfg["linux"]["cgroupsPath"] = json!("/mydocker/x");
    t.write_config(&cfg);
    sd(&t, &["create", "--bundle", t.bundle_str(), &t.id]).err("slice:prefix:name");
    t.assert_no_leftovers();
}

#[test]
fn scope_limits_update_reload_delete() {
    need_systemd!();
    let t = Ctx::new("sdscope");
    let mut cfg = spec(
        &t,
        &["sleep", "300"],
        json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 50},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        }),
    );
    // a node the rules deny: must stay denied, and /dev/null allowed,
    // across a daemon-reload
    cfg["linux"]["devices"] = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                                      "fileMode": 0o644, "uid": 0, "gid": 0}]);
    t.write_config(&cfg);
    sd(&t, &["create", "--bundle", t.bundle_str(), &t.id]).ok();
    let u = unit(&t);
    let dir = scope_dir(&t);

    let (code, status) = systemctl(&["status", "--no-pager", &u]);
    assert_eq!(code, 0, "systemctl status {u}: {status}");
    assert_eq!(show(&u, "Delegate"), "yes");
    assert_eq!(show(&u, "MemoryMax"), "67108864");
    assert_eq!(show(&u, "TasksMax"), "50");
    let pid = t.state()["pid"].as_i64().unwrap();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{u}"));
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "pids.max"), "50");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "cpu.weight"), "59");

    sd(&t, &["start", &t.id]).ok();
    sd(
        &t,
        &["update", "--memory", "128M", "--pids-limit", "70", &t.id],
    )
    .ok();
    assert_eq!(read(&dir, "memory.max"), "134217728");
    assert_eq!(read(&dir, "pids.max"), "70");
    assert_eq!(show(&u, "MemoryMax"), "134217728");
    assert_eq!(show(&u, "TasksMax"), "70");

    let devices = |t: &Ctx| {
        let o = t.md(&[
            "exec",
            &t.id,
            "sh",
            "-c",
            "echo x > /dev/null && echo null-ok; cat /dev/kmsg >/dev/null 2>&1 || echo kmsg-denied",
        ]);
        o.ok();
        o.stdout.clone()
    };
    assert_eq!(devices(&t).trim(), "null-ok\nkmsg-denied");
    let (code, out) = systemctl(&["daemon-reload"]);
    assert_eq!(code, 0, "daemon-reload: {out}");
    assert_eq!(t.status(), "running");
    assert_eq!(read(&dir, "memory.max"), "134217728");
    assert_eq!(read(&dir, "pids.max"), "70");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "cpu.weight"), "59");
    assert_eq!(devices(&t).trim(), "null-ok\nkmsg-denied");

    sd(&t, &["delete", "--force", &t.id]).ok();
    let (code, out) = systemctl(&["status", "--no-pager", &u]);
    assert_ne!(code, 0, "unit {u} still there after delete: {out}");
    assert!(
        wait_until(Duration::from_secs(5), || !dir.exists()),
        "{} left behind",
        dir.display()
    );
    t.assert_no_leftovers();
}

#[test]
fn annotations_become_unit_properties() {
    need_systemd!();
    let t = Ctx::new("sdannot");
    let mut cfg = spec(&t, &["sleep", "300"], json!({}));
    cfg["annotations"] = json!({
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.TimeoutStopUSec": "uint64 123000000",
    });
    t.write_config(&cfg);
    sd(&t, &["create", "--bundle", t.bundle_str(), &t.id]).ok();
    let u = unit(&t);
    assert_eq!(show(&u, "CollectMode"), "inactive-or-failed");
    assert_eq!(show(&u, "TimeoutStopUSec"), "2min 3s");
    sd(&t, &["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn taken_unit_fails_and_leaves_nothing() {
    need_systemd!();
    let t = Ctx::new("sdtaken");
    t.write_config(&spec(&t, &["sleep", "300"], json!({})));
    sd(&t, &["create", "--bundle", t.bundle_str(), &t.id]).ok();
    // a second container asking for the same scope
    let other = t.other_id("b");
    sd(&t, &["create", "--bundle", t.bundle_str(), &other]).err("already exists");
    t.assert_no_leftovers_of(&other);
    assert_eq!(t.status(), "created");
    sd(&t, &["delete", "--force", &t.id]).ok();
    assert!(systemctl(&["status", "--no-pager", &unit(&t)]).0 != 0);
}

#[test]
fn run_to_the_end_removes_the_scope() {
    need_systemd!();
    let t = Ctx::new("sdrun");
    // no cgroupsPath: system.slice:mydocker:<id>
    let mut cfg = t.spec(&["sh", "-c", "cat /sys/fs/cgroup/pids.max; exit 3"]);
    cfg["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    cfg["linux"]["resources"]["pids"] = json!({"limit": 33});
    t.write_config(&cfg);
    let o = sd(&t, &["run", "--bundle", t.bundle_str(), &t.id]);
    o.ok_code(3);
    assert_eq!(o.stdout.trim(), "33");
    assert!(systemctl(&["status", "--no-pager", &unit(&t)]).0 != 0);
    assert!(!scope_dir(&t).exists());
    t.assert_no_leftovers();
}
