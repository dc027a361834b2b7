//! What the engines (containerd's runc v2 shim, conmon, podman) rely on beyond
//! the plain lifecycle: the calls and error phrases of
//! ../shared/notes/runtime-calls.md, replayed by hand.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;

/// The `msg` of the last `"level":"error"` line, as the shim reads it.
fn last_error(log: &std::path::Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_else(|e| panic!("no log file: {e}"));
    let mut msg = None;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}"));
        if v["level"] == "error" {
            msg = v["msg"].as_str().map(str::to_string);
        }
    }
    msg.unwrap_or_else(|| panic!("no error line in\n{text}"))
}

/// `--root R --log F --log-format json ARGS...`, the shim's global flags.
fn shim_call(t: &Ctx, log: &std::path::Path, args: &[&str]) -> Out {
    let mut full = vec![
        "--root",
        t.root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    full.extend_from_slice(args);
    run_cmd(&t.logs, &full, CMD_TIMEOUT)
}

#[test]
fn delete_force_of_missing_id_succeeds() {
    // The shim's cleanup binary force-deletes ids already deleted, and ids
    // whose create failed.
    let t = Ctx::new("delforcemissing");
    t.md(&["delete", "--force", "never-created"]).ok();
    fs::create_dir_all(&t.root).unwrap();
    t.md(&["delete", "--force", "never-created"]).ok();
    t.md(&["delete", "never-created"]).err("does not exist");
}

#[test]
fn delete_force_twice_like_the_shim() {
    let t = Ctx::new("deltwice");
    t.create_ok(&t.spec(&["true"]));
    t.md(&["start", &t.id]).ok();
    t.wait_status("stopped");
    let log = t.tmp.path().join("log.json");
    shim_call(&t, &log, &["delete", &t.id]).ok();
    shim_call(&t, &log, &["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn kill_errors_carry_the_phrases_containerd_matches() {
    let t = Ctx::new("killphrases");
    let log = t.tmp.path().join("log.json");
    fs::create_dir_all(&t.root).unwrap();
    shim_call(&t, &log, &["kill", &t.id, "9"]).failed();
    assert!(
        last_error(&log).contains("does not exist"),
        "{:?}",
        last_error(&log)
    );

    t.create_ok(&t.spec(&["true"]));
    t.md(&["start", &t.id]).ok();
    t.wait_status("stopped");
    shim_call(&t, &log, &["kill", &t.id, "15"]).failed();
    assert!(
        last_error(&log).contains("container not running"),
        "{:?}",
        last_error(&log)
    );
    t.md(&["delete", &t.id]).ok();
}

#[test]
fn state_of_container_whose_init_was_killed() {
    let t = Ctx::new("initdied");
    t.create_ok(&t.spec(&["sleep", "30"]));
    t.md(&["start", &t.id]).ok();
    let pid = t.state()["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of the container init this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    t.wait_status("stopped");
    let st = t.state();
    assert_eq!(st["pid"], 0, "{st}");
    t.md(&["delete", &t.id]).ok();
    t.assert_no_leftovers();
}

#[test]
fn kill_all_after_init_exit_reaches_the_cgroup() {
    // Without its own pid namespace the container's other processes outlive
    // the init; the shim then sends `kill --all ID 9` to a stopped container.
    let t = Ctx::new("killallstopped");
    let mut cfg = t.spec_sh("sleep 1000 & echo $! > /out/child; echo x > /out/ready");
    remove_namespace(&mut cfg, "pid");
    t.with_out(&mut cfg);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    t.wait_out_file("ready");
    let child: u32 = t.wait_out_file("child").trim().parse().unwrap();
    t.wait_status("stopped");
    assert!(!pid_gone(child), "child {child} died with the init");
    t.md(&["kill", "--all", &t.id, "9"]).ok();
    assert!(
        wait_until(WAIT, || pid_gone(child)),
        "kill --all left {child} running"
    );
    t.md(&["delete", &t.id]).ok();
}

#[test]
fn flags_after_the_subcommand_and_equals_forms() {
    // conmon: `--log-format=json --log F create ...`; the shim puts globals
    // first; some callers append them after the subcommand.
    let t = Ctx::new("flagorder");
    t.write_config(&t.spec(&["sleep", "30"]));
    let log = t.tmp.path().join("oci-log");
    let pid_file = t.tmp.path().join("pidfile");
    let root = format!("--root={}", t.root.display());
    let log_arg = format!("--log={}", log.display());
    run_cmd(
        &t.logs,
        &[
            "--log-format=json",
            &log_arg,
            &root,
            "create",
            "--bundle",
            t.bundle_str(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &t.id,
        ],
        CMD_TIMEOUT,
    )
    .ok();
    let pid = fs::read_to_string(&pid_file).unwrap();
    assert!(pid.bytes().all(|b| b.is_ascii_digit()), "{pid:?}");
    // Globals after the subcommand: MyDocker takes them anywhere (runc's
    // parser does not, so the reference runtimes skip this part).
    if is_mydocker() {
        let out = run_cmd(
            &t.logs,
            &[
                "state",
                &t.id,
                &root,
                "--systemd-cgroup",
                "--log-format",
                "json",
            ],
            CMD_TIMEOUT,
        );
        out.ok();
        let st: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(st["status"], "created");
    }
    run_cmd(&t.logs, &[&root, "delete", "--force", &t.id], CMD_TIMEOUT).ok();
    t.assert_no_leftovers();
}

#[test]
fn default_root_without_flag() {
    // podman's own start/kill/delete calls pass no --root at all.
    let t = Ctx::new("defaultroot");
    t.write_config(&t.spec(&["sleep", "30"]));
    let id = format!("{}-noroot", t.id);
    let no_root = |args: &[&str]| run_cmd(&t.logs, args, CMD_TIMEOUT);
    no_root(&["create", "--bundle", t.bundle_str(), &id]).ok();
    let out = no_root(&["state", &id]);
    out.ok();
    assert!(out.stdout.contains("\"created\""), "{out}");
    no_root(&["start", &id]).ok();
    no_root(&["kill", &id, "15"]).ok();
    no_root(&["delete", "--force", &id]).ok();
    no_root(&["state", &id]).err("does not exist");
}

#[test]
fn docker_unset_resource_values_are_accepted() {
    // dockerd 20.10 sends these for a container without limits.
    let t = Ctx::new("dockerres");
    let mut cfg = t.spec_sh("echo ok");
    cfg["linux"]["resources"]["memory"] = json!({"disableOOMKiller": false});
    cfg["linux"]["resources"]["cpu"] = json!({"shares": 0});
    cfg["linux"]["resources"]["blockIO"] = json!({"weight": 0});
    assert_eq!(t.run_ok(&cfg), "ok\n");
    t.assert_no_leftovers();
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    // runc brings lo up; podman (netns=none) and ctr set up nothing else.
    let t = Ctx::new("loup");
    let out = t.run_sh("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags");
    let flags = out.lines().nth(1).unwrap_or("");
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP not set on lo: {out:?}");
    t.assert_no_leftovers();
}
