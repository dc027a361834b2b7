//! What the container process sees about itself: pid, user, groups, umask,
//! cwd, env, rlimits, capabilities, no_new_privs.
mod common;

use common::*;
use serde_json::json;

#[test]
fn process_is_pid_1() {
    let t = Ctx::new("pid1");
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/stat"]));
    assert_eq!(out.split(' ').next(), Some("1"), "stat: {out:?}");
    let t2 = Ctx::new("pid1sh");
    assert_eq!(t2.run_sh("echo $$; echo $PPID"), "1\n0\n");
}

#[test]
fn hostname_is_set() {
    let t = Ctx::new("hostname");
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = t.run_sh("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(out, "mydocker\nmydocker\n");
    let host_after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(host_before, host_after, "host hostname changed");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let t = Ctx::new("user");
    let mut cfg = t.spec_sh("id; echo ===; cat /proc/self/status");
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [100]});
    let out = t.run_ok(&cfg);
    let (id, status) = out.split_once("===\n").unwrap();
    assert_eq!(id, "uid=1000(tester) gid=1000(tester) groups=100(users)\n");
    let fields = |k: &str| -> Vec<String> {
        status_field(status, k)
            .unwrap_or_else(|| panic!("no {k} in {status}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(fields("Uid"), ["1000"; 4], "{status}");
    assert_eq!(fields("Gid"), ["1000"; 4], "{status}");
    assert_eq!(fields("Groups"), ["100"], "{status}");
}

#[test]
fn root_user_has_no_supplementary_groups() {
    let t = Ctx::new("rootgroups");
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/status"]));
    assert_eq!(
        status_field(&out, "Uid")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0"; 4]
    );
    assert_eq!(
        status_field(&out, "Gid")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0"; 4]
    );
    assert_eq!(status_field(&out, "Groups"), Some(""), "{out}");
}

#[test]
fn umask_is_applied() {
    let t = Ctx::new("umask");
    let mut cfg = t.spec_sh("umask; touch /out/f; stat -c %a /out/f");
    cfg["process"]["user"]["umask"] = json!(0o027);
    t.with_out(&mut cfg);
    assert_eq!(t.run_ok(&cfg), "0027\n640\n");
}

#[test]
fn cwd_is_applied() {
    let t = Ctx::new("cwd");
    let mut cfg = t.spec(&["pwd"]);
    cfg["process"]["cwd"] = json!("/tmp");
    assert_eq!(t.run_ok(&cfg), "/tmp\n");
    let t2 = Ctx::new("cwd2");
    let mut cfg = t2.spec_sh("pwd; readlink /proc/self/cwd");
    cfg["process"]["cwd"] = json!("/etc");
    assert_eq!(t2.run_ok(&cfg), "/etc\n/etc\n");
}

#[test]
fn env_is_exactly_the_config_env() {
    let t = Ctx::new("env");
    let mut cfg = t.spec(&["env"]);
    add_env(&mut cfg, "FOO=bar baz");
    add_env(&mut cfg, "EMPTY=");
    let out = t.run_ok(&cfg);
    let lines: Vec<&str> = out.lines().collect();
    for want in [PATH_ENV, "TERM=xterm", "FOO=bar baz", "EMPTY=", &t.marker()] {
        assert!(lines.contains(&want), "{want:?} missing from env:\n{out}");
    }
    // nothing from the runtime's own environment leaks in (HOME may be added)
    for l in &lines {
        let expected = cfg["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str() == Some(*l));
        assert!(
            expected || l.starts_with("HOME="),
            "unexpected env entry {l:?}:\n{out}"
        );
    }
}

#[test]
fn args_are_passed_verbatim() {
    let t = Ctx::new("args");
    let cfg = t.spec(&[
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "sh",
        "a b",
        "",
        "*",
        "$HOME",
    ]);
    assert_eq!(t.run_ok(&cfg), "[a b]\n[]\n[*]\n[$HOME]\n");
}

#[test]
fn args_resolved_via_path() {
    let t = Ctx::new("argspath");
    // "echo" is not absolute: the runtime resolves it with the container's PATH
    assert_eq!(t.run_ok(&t.spec(&["echo", "hi"])), "hi\n");
}

fn limit_line(limits: &str, name: &str) -> (String, String) {
    let l = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in:\n{limits}"));
    let v: Vec<&str> = l[name.len()..].split_whitespace().collect();
    (v[0].to_string(), v[1].to_string())
}

#[test]
fn rlimits_are_applied() {
    let t = Ctx::new("rlimits");
    let mut cfg = t.spec(&["cat", "/proc/self/limits"]);
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
        {"type": "RLIMIT_NPROC", "hard": 200, "soft": 100},
        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
    ]);
    let out = t.run_ok(&cfg);
    assert_eq!(
        limit_line(&out, "Max open files"),
        ("1024".into(), "1024".into()),
        "{out}"
    );
    assert_eq!(
        limit_line(&out, "Max processes"),
        ("100".into(), "200".into()),
        "{out}"
    );
    assert_eq!(
        limit_line(&out, "Max core file size"),
        ("0".into(), "0".into()),
        "{out}"
    );
}

#[test]
fn capabilities_default_set() {
    let t = Ctx::new("capsdefault");
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/status"]));
    assert_eq!(cap_mask(&out, "CapBnd"), DEFAULT_CAP_MASK, "{out}");
    assert_eq!(cap_mask(&out, "CapEff"), DEFAULT_CAP_MASK, "{out}");
    assert_eq!(cap_mask(&out, "CapPrm"), DEFAULT_CAP_MASK, "{out}");
    assert_eq!(cap_mask(&out, "CapInh"), 0, "{out}");
}

/// A non-root user keeps capabilities across exec only through the ambient set.
#[test]
fn capabilities_ambient_for_non_root_user() {
    let t = Ctx::new("capsambient");
    let mut cfg = t.spec(&["cat", "/proc/self/status"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["process"]["capabilities"]["inheritable"] = json!(DEFAULT_CAPS);
    let out = t.run_ok(&cfg);
    for k in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(cap_mask(&out, k), DEFAULT_CAP_MASK, "{k}:\n{out}");
    }
}

#[test]
fn capabilities_distinct_sets() {
    let t = Ctx::new("capssets");
    let mut cfg = t.spec(&["cat", "/proc/self/status"]);
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    });
    cfg["process"]["noNewPrivileges"] = json!(true);
    let out = t.run_ok(&cfg);
    assert_eq!(
        cap_mask(&out, "CapBnd"),
        (1 << 0) | (1 << 5) | (1 << 10),
        "{out}"
    );
    // root's execve would raise permitted to the bounding set, but with
    // no_new_privs it cannot gain beyond the permitted set the runtime set, and
    // for root effective follows permitted: CAP_CHOWN must not appear in either
    assert_eq!(cap_mask(&out, "CapPrm"), (1 << 5) | (1 << 10), "{out}");
    assert_eq!(cap_mask(&out, "CapEff"), (1 << 5) | (1 << 10), "{out}");
    assert_eq!(cap_mask(&out, "CapInh"), 0, "{out}");
    assert_eq!(cap_mask(&out, "CapAmb"), 0, "{out}");
}

#[test]
fn capabilities_empty_drops_everything() {
    let t = Ctx::new("capsnone");
    let mut cfg = t.spec(&["cat", "/proc/self/status"]);
    cfg["process"]["capabilities"] = json!({
        "bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []
    });
    let out = t.run_ok(&cfg);
    for k in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(cap_mask(&out, k), 0, "{k}:\n{out}");
    }
}

#[test]
fn capabilities_are_enforced() {
    let t = Ctx::new("capsenforced");
    // without CAP_CHOWN, chown of a file we own to another uid fails
    let mut cfg = t.spec_sh(
        "touch /out/f; if chown 1000 /out/f 2>/dev/null; then echo chowned; else echo denied; fi",
    );
    t.with_out(&mut cfg);
    assert_eq!(t.run_ok(&cfg), "denied\n");
    let t2 = Ctx::new("capsenforced2");
    let mut cfg = t2.spec_sh(
        "touch /out/f; if chown 1000 /out/f 2>/dev/null; then echo chowned; else echo denied; fi",
    );
    for set in ["bounding", "effective", "permitted"] {
        cfg["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    t2.with_out(&mut cfg);
    assert_eq!(t2.run_ok(&cfg), "chowned\n");
}

#[test]
fn no_new_privileges_set() {
    let t = Ctx::new("nnp");
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/status"]));
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"), "{out}");
}

#[test]
fn no_new_privileges_unset() {
    let t = Ctx::new("nnpoff");
    let mut cfg = t.spec(&["cat", "/proc/self/status"]);
    cfg["process"]["noNewPrivileges"] = json!(false);
    let out = t.run_ok(&cfg);
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "{out}");
}

#[test]
fn oom_score_adj_is_applied() {
    let t = Ctx::new("oomscore");
    let mut cfg = t.spec(&["cat", "/proc/self/oom_score_adj"]);
    cfg["process"]["oomScoreAdj"] = json!(123);
    assert_eq!(t.run_ok(&cfg), "123\n");
}

#[test]
fn stdio_fds_are_only_0_1_2() {
    // no runtime fd (sync pipes, state files, ...) leaks into the container
    let t = Ctx::new("fdleak");
    let out = t.run_ok(&t.spec(&["ls", "/proc/self/fd"]));
    // `ls` itself opens one fd for the directory it lists
    let fds: Vec<u32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert!(
        fds.len() == 4 && fds[..3] == [0, 1, 2],
        "unexpected open fds in the container: {fds:?}"
    );
}

/// Each container gets its own session keyring `_ses.<id>` (seen from the
/// host in /proc/keys, as the container's /proc/keys is masked);
/// `--no-new-keyring` keeps the caller's.
#[test]
fn new_session_keyring_unless_no_new_keyring() {
    let t = Ctx::new("keyring");
    let cfg = t.spec(&["sleep", "30"]);
    t.write_config(&cfg);
    t.md(&["create", "--bundle", t.bundle_str(), &t.id]).ok();
    let keys = std::fs::read_to_string("/proc/keys").unwrap();
    assert!(
        keys.contains(&format!("_ses.{}:", t.id)),
        "no session keyring for {} in /proc/keys:\n{keys}",
        t.id
    );
    let other = t.other_id("nk");
    t.md(&[
        "create",
        "--no-new-keyring",
        "--bundle",
        t.bundle_str(),
        &other,
    ])
    .ok();
    let keys = std::fs::read_to_string("/proc/keys").unwrap();
    assert!(
        !keys.contains(&format!("_ses.{other}:")),
        "--no-new-keyring still made a keyring:\n{keys}"
    );
    t.md(&["delete", "--force", &t.id]).ok();
    t.md(&["delete", "--force", &other]).ok();
}
