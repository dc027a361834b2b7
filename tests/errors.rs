//! Error handling: messages, exit codes and "nothing left behind" after a
//! failed create.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;

#[test]
fn unknown_id_does_not_exist() {
    let t = Ctx::new("unknownid");
    fs::create_dir_all(&t.root).unwrap();
    t.md(&["state", &t.id]).err("does not exist");
    t.md(&["start", &t.id]).err("does not exist");
    t.md(&["kill", &t.id, "KILL"]).err("does not exist");
    t.md(&["delete", &t.id]).err("does not exist");
}

#[test]
fn duplicate_id_already_exists() {
    let t = Ctx::new("dupid");
    t.create_ok(&t.spec(&["sleep", "30"]));
    let pid = state_pid(&t.state());
    t.create().err("already exists");
    let st = t.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(state_pid(&st), pid, "first container's pid changed");
    assert!(!pid_gone(pid));
    // and `run` with the same id too
    t.md(&["run", "--bundle", t.bundle_str(), &t.id])
        .err("already exists");
    assert_eq!(t.status(), "created");
}

#[test]
fn kill_stopped_container_not_running() {
    let t = Ctx::new("killstopped");
    t.write_config(&t.spec(&["true"]));
    t.md(&["run", "--keep", "--bundle", t.bundle_str(), &t.id])
        .ok();
    assert_eq!(t.status(), "stopped");
    t.md(&["kill", &t.id, "KILL"]).err("container not running");
    t.md(&["kill", &t.id]).err("container not running");
}

#[test]
fn kill_unknown_signal() {
    let t = Ctx::new("killbadsig");
    t.create_ok(&t.spec(&["sleep", "30"]));
    for sig in ["SIGFOO", "NOPE", "999"] {
        t.md(&["kill", &t.id, sig]).err("unknown signal");
    }
    assert_eq!(t.status(), "created");
}

#[test]
fn start_unknown_state_not_created() {
    let t = Ctx::new("startstopped");
    t.write_config(&t.spec(&["true"]));
    t.md(&["run", "--keep", "--bundle", t.bundle_str(), &t.id])
        .ok();
    t.md(&["start", &t.id]).err("not created");
}

/// Create with `cfg` (already written) must fail with `phrase` and leave nothing.
fn expect_create_failure(t: &Ctx, phrase: &str) -> Out {
    let out = t.create();
    out.err(phrase);
    t.assert_no_leftovers();
    out
}

fn write_raw_config(t: &Ctx, text: &str) {
    fs::write(t.bundle.join("config.json"), text).unwrap();
}

#[test]
fn malformed_config_truncated_json() {
    let t = Ctx::new("truncjson");
    let text = serde_json::to_string_pretty(&t.spec(&["true"])).unwrap();
    write_raw_config(&t, &text[..text.len() / 2]);
    expect_create_failure(&t, "config.json");
}

#[test]
fn malformed_config_wrong_type_names_json_path() {
    let t = Ctx::new("wrongtype");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["args"] = json!("sh -c true");
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "config.json");
    assert!(out.stderr.contains("process.args"), "{out}");
}

#[test]
fn malformed_config_wrong_type_nested() {
    let t = Ctx::new("wrongtype2");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["user"]["uid"] = json!("zero");
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "config.json");
    assert!(out.stderr.contains("process.user.uid"), "{out}");
}

#[test]
fn missing_config_json() {
    let t = Ctx::new("noconfig");
    expect_create_failure(&t, "config.json");
}

#[test]
fn missing_bundle_dir() {
    let t = Ctx::new("nobundle");
    let missing = t.tmp.path().join("no-such-bundle");
    let out = t.md(&["create", "--bundle", missing.to_str().unwrap(), &t.id]);
    out.failed();
    assert!(out.stderr.contains("no-such-bundle"), "{out}");
    t.assert_no_leftovers();
}

#[test]
fn missing_rootfs() {
    let t = Ctx::new("norootfs");
    let mut cfg = t.spec(&["true"]);
    let missing = t.tmp.path().join("no-such-rootfs");
    cfg["root"]["path"] = json!(missing.to_str().unwrap());
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "rootfs");
    assert!(out.stderr.contains(missing.to_str().unwrap()), "{out}");
}

#[test]
fn missing_relative_rootfs() {
    let t = Ctx::new("norootfsrel");
    let mut cfg = t.spec(&["true"]);
    cfg["root"]["path"] = json!("rootfs");
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "rootfs");
    assert!(
        out.stderr
            .contains(t.bundle.join("rootfs").to_str().unwrap()),
        "{out}"
    );
}

fn unsupported(name: &str, path: &str, f: impl FnOnce(&mut Value)) {
    let t = Ctx::new(name);
    let mut cfg = t.spec(&["true"]);
    f(&mut cfg);
    t.write_config(&cfg);
    expect_create_failure(&t, &format!("not supported: {path}"));
}

#[test]
fn unsupported_io_priority() {
    unsupported("ioprio", "process.ioPriority", |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
}

#[test]
fn unknown_seccomp_action_fails_create() {
    let t = Ctx::new("badscmpact");
    let mut cfg = t.spec(&["true"]);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_EXPLODE"}]
    });
    t.write_config(&cfg);
    expect_create_failure(&t, "linux.seccomp.syscalls[0].action");
}

#[test]
fn apparmor_profile_without_apparmor_fails_create() {
    // runc fails too (its write to /proc/self/attr/exec gets EINVAL); we say why.
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        eprintln!("skipped: this host has AppArmor");
        return;
    }
    let t = Ctx::new("apparmor");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["apparmorProfile"] = json!("docker-default");
    t.write_config(&cfg);
    expect_create_failure(
        &t,
        "process.apparmorProfile: AppArmor is not enabled on this host",
    );
}

#[test]
fn unknown_capability_fails_create() {
    let t = Ctx::new("badcap");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_NOT_A_CAPABILITY"));
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "");
    assert!(out.stderr.contains("CAP_NOT_A_CAPABILITY"), "{out}");
}

/// runtime-spec: "The runtime MUST generate an error for any values which
/// cannot be mapped to a relevant kernel interface" (process.rlimits[].type).
#[test]
fn unknown_rlimit_fails_create() {
    let t = Ctx::new("badrlimit");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["rlimits"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "RLIMIT_TEST", "hard": 1, "soft": 1}));
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "");
    assert!(out.stderr.contains("RLIMIT_TEST"), "{out}");
}

/// config.md: "If rlimits contains duplicated entries with same type, the
/// runtime MUST generate an error."
#[test]
fn duplicate_rlimit_fails_create() {
    let t = Ctx::new("duprlimit");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["rlimits"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}));
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "duplicate RLIMIT_NOFILE");
    assert!(out.stderr.contains("process.rlimits[1].type"), "{out}");
}

#[test]
fn empty_args_fails_create() {
    let t = Ctx::new("emptyargs");
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["args"] = json!([]);
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "");
    assert!(out.stderr.contains("args"), "{out}");
}

#[test]
fn unknown_namespace_type_fails() {
    let t = Ctx::new("badns");
    let mut cfg = t.spec(&["true"]);
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    t.write_config(&cfg);
    expect_create_failure(&t, "");
}

#[test]
fn invalid_mount_fails_create_and_cleans_up() {
    // a bind mount whose source is missing fails inside the container setup,
    // after the process and cgroup exist: everything must be rolled back
    let t = Ctx::new("badmount");
    let mut cfg = t.spec(&["true"]);
    let missing = t.tmp.path().join("no-such-source");
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/ro", "type": "bind", "source": missing.to_str().unwrap(), "options": ["rbind"]}),
    );
    t.write_config(&cfg);
    let out = expect_create_failure(&t, "");
    assert!(out.stderr.contains("no-such-source"), "{out}");
}

#[test]
fn missing_executable_run_fails_and_cleans_up() {
    let t = Ctx::new("noexec");
    let out = t.run(&t.spec(&["/no/such/binary"]));
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("/no/such/binary"), "{out}");
    t.assert_no_leftovers();
}

#[test]
fn invalid_container_id_rejected() {
    let t = Ctx::new("badid");
    t.write_config(&t.spec(&["sleep", "30"]));
    for id in ["../escape", "a/b", ""] {
        let out = t.md(&["create", "--bundle", t.bundle_str(), id]);
        out.failed();
    }
    assert!(
        !t.tmp.path().join("escape").exists(),
        "id escaped the state root"
    );
    assert!(!t.root.join("a").exists());
}

#[test]
fn log_json_on_failure() {
    let t = Ctx::new("logjson");
    let log = t.tmp.path().join("runtime.log");
    fs::create_dir_all(&t.root).unwrap();
    let out = run_cmd(
        &t.logs,
        &[
            "--root",
            t.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            &t.id,
        ],
        CMD_TIMEOUT,
    );
    assert_ne!(out.code, 0, "{out}");
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file: {e}\n{out}"));
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}"))
        })
        .collect();
    let err = entries
        .iter()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no error entry in log:\n{text}"));
    let msg = err["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("no msg in {err}"));
    assert!(msg.contains("does not exist"), "{err}");
}

#[test]
fn log_text_on_failure() {
    let t = Ctx::new("logtext");
    let log = t.tmp.path().join("runtime.log");
    t.write_config(&t.spec(&["true"]));
    let mut cfg = t.spec(&["true"]);
    cfg["process"]["terminal"] = json!(true);
    t.write_config(&cfg);
    let out = run_cmd(
        &t.logs,
        &[
            "--root",
            t.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "create",
            "--bundle",
            t.bundle_str(),
            &t.id,
        ],
        CMD_TIMEOUT,
    );
    // a terminal for a detached process, with no console socket
    out.err("cannot allocate tty");
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file: {e}\n{out}"));
    assert!(text.contains("cannot allocate tty"), "log:\n{text}");
    t.assert_no_leftovers();
}
