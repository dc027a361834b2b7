//! `spec`, `list`, `features` and the `ociVersion` range, checked against
//! runc's output where runc is installed.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Command;

fn runc() -> Option<&'static str> {
    let p = "/usr/sbin/runc";
    if Path::new(p).exists() {
        Some(p)
    } else {
        println!("runc is not installed: skipping the comparison with runc");
        None
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// runc's default config with the differences MyDocker makes on purpose
/// (see src/spec_template.rs) applied, so that the rest must be equal.
fn runc_spec_normalised(rootless: bool) -> Option<Value> {
    let runc = runc()?;
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(runc);
    c.arg("spec").current_dir(dir.path());
    if rootless {
        c.arg("--rootless");
    }
    assert!(c.status().unwrap().success(), "runc spec failed");
    let mut v = read_json(&dir.path().join("config.json"));
    v["hostname"] = json!("mydocker");
    v["ociVersion"] = json!("1.3.0");
    v["process"]["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("ambient");
    let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
    if !ns.iter().any(|n| n["type"] == "cgroup") {
        // runc adds the cgroup namespace on cgroup v2 hosts only
        let at = ns
            .iter()
            .position(|n| n["type"] == "user")
            .unwrap_or(ns.len());
        ns.insert(at, json!({"type": "cgroup"}));
    }
    Some(v)
}

#[test]
fn spec_writes_runcs_default_config() {
    let t = Ctx::new("specdefault");
    let b = t.tmp.path().join("specb");
    fs::create_dir(&b).unwrap();
    t.md(&["spec", "--bundle", b.to_str().unwrap()]).ok();
    let ours = read_json(&b.join("config.json"));
    assert_eq!(ours["ociVersion"], "1.3.0");
    assert_eq!(ours["root"]["path"], "rootfs");
    assert!(ours["process"]["capabilities"].get("ambient").is_none());
    if let Some(theirs) = runc_spec_normalised(false) {
        assert_eq!(ours, theirs, "differs from runc spec");
    }
    // An existing config.json is never overwritten.
    t.md(&["spec", "--bundle", b.to_str().unwrap()])
        .err("exists");
    // Bundle defaults to the current directory.
    let cwd = t.tmp.path().join("speccwd");
    fs::create_dir(&cwd).unwrap();
    let st = t.md_command(&["spec"]).current_dir(&cwd).status().unwrap();
    assert!(st.success());
    assert_eq!(read_json(&cwd.join("config.json")), ours);
}

#[test]
fn spec_rootless_writes_runcs_rootless_config() {
    let t = Ctx::new("specrootless");
    for (i, args) in [
        vec!["spec", "--rootless", "--bundle"],
        vec!["--rootless=true", "spec", "--bundle"],
    ]
    .into_iter()
    .enumerate()
    {
        let b = t.tmp.path().join(format!("b{i}"));
        fs::create_dir(&b).unwrap();
        let mut full = args.clone();
        full.push(b.to_str().unwrap());
        t.md(&full).ok();
        let ours = read_json(&b.join("config.json"));
        let ns: Vec<&str> = ours["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
        assert_eq!(ours["linux"]["uidMappings"][0]["hostID"], 0);
        if let Some(theirs) = runc_spec_normalised(true) {
            assert_eq!(ours, theirs, "differs from runc spec --rootless");
        }
    }
}

#[test]
fn spec_default_config_runs_once_terminal_is_off() {
    // The default config is valid for create: only the terminal (not
    // implemented yet) and the rootfs location need changing.
    let t = Ctx::new("specruns");
    t.md(&["spec", "--bundle", t.bundle_str()]).ok();
    let mut cfg = read_json(&t.bundle.join("config.json"));
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["true"]);
    cfg["root"]["path"] = json!(rootfs().to_str().unwrap());
    t.run(&cfg).ok();
    t.assert_no_leftovers();
}

fn runc_empty_list(args: &[&str]) -> Option<String> {
    let runc = runc()?;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(runc)
        .arg("--root")
        .arg(dir.path())
        .arg("list")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn list_formats_match_runc() {
    let t = Ctx::new("listfmt");
    fs::create_dir_all(&t.root).unwrap();
    // empty: byte for byte what runc prints
    let table = t.md(&["list"]).ok().stdout.clone();
    assert_eq!(
        table,
        "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    );
    let js = t.md(&["list", "--format", "json"]).ok().stdout.clone();
    assert_eq!(js, "null\n");
    assert_eq!(t.md(&["list", "-q"]).ok().stdout, "");
    if let Some(r) = runc_empty_list(&[]) {
        assert_eq!(table, r);
        assert_eq!(js, runc_empty_list(&["--format", "json"]).unwrap());
        assert_eq!("", runc_empty_list(&["--quiet"]).unwrap());
    }

    // one created and one stopped container, with an annotation on one
    let mut cfg = t.spec(&["sleep", "30"]);
    cfg["annotations"] = json!({"org.example.key": "v"});
    t.create_ok(&cfg);
    let other = t.other_id("b");
    t.write_config(&t.spec(&["true"]));
    t.md(&["run", "--keep", "--bundle", t.bundle_str(), &other])
        .ok();
    let pid = state_pid(&t.state());

    let out = t.md(&["list", "--format=json"]).ok().stdout.clone();
    assert!(out.ends_with("]\n") && out.lines().count() == 1, "{out:?}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    let get = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    let a = get(&t.id);
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "annotations",
        "bundle",
        "created",
        "id",
        "ociVersion",
        "owner",
        "pid",
        "rootfs",
        "status",
    ];
    assert_eq!(keys, want, "{a}");
    assert_eq!(a["status"], "created");
    assert_eq!(a["pid"], pid);
    assert_eq!(a["owner"], "root");
    assert_eq!(a["bundle"], t.bundle_str());
    assert_eq!(a["annotations"]["org.example.key"], "v");
    let b = get(&other);
    want.remove(0);
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, want, "no annotations: left out, as runc does: {b}");
    assert_eq!(b["status"], "stopped");
    assert_eq!(b["pid"], 0);

    let q = t.md(&["list", "--quiet"]).ok().stdout.clone();
    let mut ids: Vec<&str> = q.lines().collect();
    ids.sort();
    let mut expect = vec![t.id.as_str(), other.as_str()];
    expect.sort();
    assert_eq!(ids, expect);

    // table: every column starts where its header does (tabwriter layout)
    let table = t.md(&["list"]).ok().stdout.clone();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in ["PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        let at = lines[0].find(col).unwrap();
        for row in &lines[1..] {
            assert_eq!(
                row.as_bytes()[at - 1],
                b' ',
                "column {col} misaligned:\n{table}"
            );
            assert_ne!(row.as_bytes()[at], b' ', "column {col} empty:\n{table}");
        }
    }
    let row = lines.iter().find(|l| l.starts_with(&t.id)).unwrap();
    assert!(row.contains(&format!(" {pid} ")) && row.contains(" created "));
    assert!(row.ends_with(" root"), "{row}");
    t.md(&["delete", "--force", &t.id]).ok();
    t.md(&["delete", &other]).ok();
}

#[test]
fn list_of_a_missing_named_root_fails() {
    let t = Ctx::new("listmissing");
    let missing = t.tmp.path().join("no-such-root");
    let out = run_cmd(
        &t.logs,
        &["--root", missing.to_str().unwrap(), "list"],
        CMD_TIMEOUT,
    );
    out.err("no-such-root");
}

#[test]
fn features_reports_this_build() {
    let t = Ctx::new("features");
    let out = t.md(&["features"]).ok().stdout.clone();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert_eq!(v["ociVersionMax"], "1.3.0");
    assert_eq!(
        v["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for must in [
        "bind", "rbind", "ro", "nosuid", "rprivate", "rslave", "iversion",
    ] {
        assert!(opts.contains(&must), "{must} missing: {opts:?}");
    }
    // not implemented, so not announced (containerd keys off these)
    assert!(opts.contains(&"tmpcopyup"), "{opts:?}");
    for not in ["rro", "idmap", "ridmap"] {
        assert!(!opts.contains(&not), "{not} announced: {opts:?}");
    }
    let l = &v["linux"];
    assert_eq!(l["namespaces"].as_array().unwrap().len(), 8);
    assert!(l["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    assert_eq!(l["cgroup"]["v1"], true);
    // The systemd driver exists where systemd is PID 1 on a cgroup v2 host.
    let systemd = std::path::Path::new("/run/systemd/system").is_dir()
        && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(l["cgroup"]["systemd"], systemd);
    for on in ["seccomp", "apparmor", "selinux"] {
        assert_eq!(l[on]["enabled"], true, "{on}: {l}");
    }
    for off in ["intelRdt", "netDevices"] {
        assert_eq!(l[off]["enabled"], false, "{off}: {l}");
    }
    let sc = &l["seccomp"];
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(
            sc[k].as_array().is_some_and(|a| !a.is_empty()),
            "seccomp.{k}: {sc}"
        );
    }
    assert_eq!(l["mountExtensions"]["idmap"]["enabled"], false);
    assert!(!out.contains("null"), "{out}");

    // Every section runc reports is there too.
    if let Some(runc) = runc() {
        let r = Command::new(runc).arg("features").output().unwrap();
        if r.status.success() {
            let theirs: Value = serde_json::from_slice(&r.stdout).unwrap();
            for k in theirs.as_object().unwrap().keys() {
                assert!(v.get(k).is_some(), "runc reports {k}, we do not");
            }
            for k in theirs["linux"].as_object().unwrap().keys() {
                assert!(l.get(k).is_some(), "runc reports linux.{k}, we do not");
            }
        }
    }
}

#[test]
fn every_oci_version_from_1_0_0_to_1_3_x_is_accepted() {
    let t = Ctx::new("versions");
    for v in [
        "1.0.0",
        "1.0.1",
        "1.0.2",
        "1.0.2-dev",
        "1.1.0",
        "1.1.0-rc.1",
        "1.2.0",
        "1.2.1",
        "1.3.0",
        "1.3.1",
    ] {
        let mut cfg = t.spec(&["true"]);
        cfg["ociVersion"] = json!(v);
        t.run(&cfg).ok();
    }
    t.assert_no_leftovers();
}

#[test]
fn invalid_or_unsupported_oci_version_is_refused() {
    let t = Ctx::new("badversion");
    for (v, phrase) in [
        (json!("invalid"), "is not a SemVer"),
        (json!("1.0"), "is not a SemVer"),
        (json!("01.0.0"), "is not a SemVer"),
        (json!("1.4.0"), "unsupported version \"1.4.0\""),
        (json!("2.0.0"), "unsupported version"),
        (json!("0.6.0"), "unsupported version"),
        (json!(1.0), "ociVersion"),
    ] {
        let mut cfg = t.spec(&["true"]);
        cfg["ociVersion"] = v.clone();
        t.write_config(&cfg);
        let out = t.create();
        out.err(phrase);
        assert!(out.stderr.contains("ociVersion"), "{v}: {out}");
        t.assert_no_leftovers();
    }
    let mut cfg = t.spec(&["true"]);
    cfg.as_object_mut().unwrap().remove("ociVersion");
    t.write_config(&cfg);
    t.create().err("ociVersion");
    t.assert_no_leftovers();
}
