//! config.md: version, root, mounts, process, hostname, annotations and
//! extensibility.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::ensure;
use crate::harness::*;

crate::tests! {
    "config/oci-version-must-be-semver", "config.md#specification-version" => version_semver;
    "config/unknown-properties-ignored", "config.md#extensibility" => unknown_properties;
    "config/unknown-annotations-ignored", "config.md#annotations" => unknown_annotations;
    "root/path-relative-to-bundle", "config.md#root" => root_relative;
    "root/readonly", "config.md#root" => root_readonly;
    "mounts/listed-order", "config.md#mounts" => mounts_order;
    "mounts/options-applied", "config.md#linux-mount-options" => mount_options;
    "mounts/bind-source-relative-to-bundle", "config.md#mounts" => bind_relative_source;
    "mounts/relative-destination", "config.md#mounts" => relative_destination;
    "process/args-execvp-path", "config.md#process" => args_path;
    "process/cwd", "config.md#process" => cwd;
    "process/env", "config.md#process" => env;
    "process/user", "config.md#posix-platform-user" => user;
    "process/rlimits-applied", "config.md#posix-process" => rlimits;
    "process/rlimits-duplicate-errors", "config.md#posix-process" => rlimits_duplicate;
    "process/capabilities-root", "config.md#linux-process" => caps_root;
    "process/capabilities-ambient-non-root", "config.md#linux-process" => caps_non_root;
    "process/capabilities-unknown-errors-1.0", "config.md#linux-process (1.0.2)" => caps_unknown;
    "process/no-new-privileges", "config.md#linux-process" => no_new_privs;
    "process/oom-score-adj-set", "config.md#linux-process" => oom_set;
    "process/oom-score-adj-unset-unchanged", "config.md#linux-process" => oom_unset;
    "hostname-and-domainname", "config.md#hostname" => hostname;
}

fn version_semver() -> TestResult {
    let t = Ctx::new("version");
    for v in ["invalid", "1.0", "v1.0.2"] {
        let mut cfg = base_config(&["true"]);
        cfg["ociVersion"] = json!(v);
        t.create(&cfg)
            .error(&format!("ociVersion {v:?} is not SemVer"))?;
        t.rt(&["state", &t.id])
            .error("no container after a failed create")?;
    }
    Ok(())
}

fn unknown_properties() -> TestResult {
    let t = Ctx::new("unknown-props");
    let mut cfg = base_config(&["echo", "ran"]);
    cfg["org.example.unknown"] = json!({"a": 1});
    cfg["process"]["org.example.unknown"] = json!("x");
    cfg["root"]["org.example.unknown"] = json!(true);
    cfg["linux"]["org.example.unknown"] = json!([1, 2]);
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "ran\n", "output {out:?}");
    Ok(())
}

fn unknown_annotations() -> TestResult {
    let t = Ctx::new("unknown-annotations");
    let mut cfg = base_config(&["echo", "ran"]);
    cfg["annotations"] = json!({"org.example.never.heard.of": "", "io.other": "x"});
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "ran\n", "output {out:?}");
    Ok(())
}

/// A small writable rootfs inside the bundle.
fn private_rootfs(t: &Ctx) -> Result<std::path::PathBuf, Failure> {
    let r = t.bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(r.join(d)).or_fail("mkdir")?;
    }
    fs::set_permissions(&r, fs::Permissions::from_mode(0o755)).or_fail("chmod")?;
    fs::copy(rootfs().join("bin/busybox"), r.join("bin/busybox")).or_fail("copy busybox")?;
    for a in ["sh", "touch", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).or_fail("symlink")?;
    }
    Ok(r)
}

fn root_relative() -> TestResult {
    let t = Ctx::new("root-relative");
    let r = private_rootfs(&t)?;
    let mut cfg = t.sh_config("touch /created && echo ok");
    cfg["root"] = json!({"path": "rootfs", "readonly": false});
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "ok\n", "output {out:?}");
    ensure!(
        r.join("created").exists(),
        "root.path \"rootfs\" was not the bundle's rootfs"
    );
    Ok(())
}

fn root_readonly() -> TestResult {
    let t = Ctx::new("root-readonly");
    let cfg = t.sh_config("touch /x 2>/dev/null && echo writable || echo read-only");
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "read-only\n", "root.readonly: / is {out:?}");
    Ok(())
}

fn mounts_order() -> TestResult {
    let t = Ctx::new("mounts-order");
    let mut cfg = t.sh_config("cat /proc/self/mountinfo");
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a/b", "type": "tmpfs", "source": "tmpfs"}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a/b/c", "type": "bind", "source": t.out, "options": ["rbind"]}),
    );
    let mi = t.run_to_end(&cfg)?;
    let m = parse_mountinfo(&mi);
    let pos = |p: &str| m.iter().position(|x| x.point == p);
    let (a, b, c) = (pos("/mnt/a"), pos("/mnt/a/b"), pos("/mnt/a/b/c"));
    ensure!(
        a.is_some() && b.is_some() && c.is_some() && a < b && b < c,
        "mounts not made in the listed order: {a:?} {b:?} {c:?}\n{mi}"
    );
    Ok(())
}

fn mount_options() -> TestResult {
    let t = Ctx::new("mount-options");
    let mut cfg = t.sh_config("cat /proc/self/mountinfo");
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs",
               "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "mode=700", "size=1m"]}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/b", "type": "bind", "source": t.out,
               "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
    );
    let mi = t.run_to_end(&cfg)?;
    let m = parse_mountinfo(&mi);
    let a = mount_at(&m, "/mnt/a").or_fail(&format!("no /mnt/a:\n{mi}"))?;
    for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        ensure!(has_opt(&a.opts, o), "tmpfs /mnt/a lacks {o}: {}", a.opts);
    }
    ensure!(
        has_opt(&a.super_opts, "mode=700"),
        "tmpfs data option mode=700 not passed: {}",
        a.super_opts
    );
    let b = mount_at(&m, "/mnt/b").or_fail(&format!("no /mnt/b:\n{mi}"))?;
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        ensure!(has_opt(&b.opts, o), "bind /mnt/b lacks {o}: {}", b.opts);
    }
    Ok(())
}

fn bind_relative_source() -> TestResult {
    let t = Ctx::new("bind-relative");
    fs::create_dir(t.bundle.join("data")).or_fail("mkdir")?;
    fs::write(t.bundle.join("data/hello"), "from the bundle\n").or_fail("write")?;
    let mut cfg = t.sh_config("cat /mnt/b/hello");
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/b", "type": "bind", "source": "data", "options": ["rbind"]}),
    );
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "from the bundle\n", "output {out:?}");
    Ok(())
}

fn relative_destination() -> TestResult {
    let t = Ctx::new("relative-dest");
    let mut cfg = t.sh_config("cat /proc/self/mountinfo");
    add_mount(
        &mut cfg,
        json!({"destination": "mnt/c", "type": "tmpfs", "source": "tmpfs"}),
    );
    let mi = t.run_to_end(&cfg)?;
    let m = parse_mountinfo(&mi);
    ensure!(
        mount_at(&m, "/mnt/c").is_some_and(|x| x.fstype == "tmpfs"),
        "destination \"mnt/c\" not mounted at /mnt/c:\n{mi}"
    );
    Ok(())
}

fn args_path() -> TestResult {
    // args[0] has execvp's file semantics, searched in process.env's PATH.
    let t = Ctx::new("args-path");
    let mut cfg = base_config(&["echo", "found"]);
    cfg["process"]["env"] = json!(["PATH=/nonexistent:/bin"]);
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "found\n", "output {out:?}");
    Ok(())
}

fn cwd() -> TestResult {
    let t = Ctx::new("cwd");
    let mut cfg = base_config(&["pwd"]);
    cfg["process"]["cwd"] = json!("/mnt/a");
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "/mnt/a\n", "cwd {out:?}");
    Ok(())
}

fn env() -> TestResult {
    let t = Ctx::new("env");
    let mut cfg = base_config(&["env"]);
    cfg["process"]["env"] = json!([PATH_ENV, "FOO=bar baz", "EMPTY="]);
    let out = t.run_to_end(&cfg)?;
    for want in ["FOO=bar baz", "EMPTY=", PATH_ENV] {
        ensure!(
            out.lines().any(|l| l == want),
            "{want} missing from:\n{out}"
        );
    }
    ensure!(
        !out.contains(RUNTIME_ENV_MARKER),
        "the runtime's environment leaked into the process:\n{out}"
    );
    Ok(())
}

fn user() -> TestResult {
    let t = Ctx::new("user");
    let mut cfg = base_config(&["cat", "/proc/self/status"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [100, 2000]});
    let st = t.run_to_end(&cfg)?;
    let f = |k: &str| {
        status_field(&st, k)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    ensure!(f("Uid") == ["1000"; 4], "Uid: {:?}", f("Uid"));
    ensure!(f("Gid") == ["1001"; 4], "Gid: {:?}", f("Gid"));
    ensure!(f("Groups") == ["100", "2000"], "Groups: {:?}", f("Groups"));
    Ok(())
}

fn rlimits() -> TestResult {
    let t = Ctx::new("rlimits");
    let mut cfg = base_config(&["cat", "/proc/self/limits"]);
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
    ]);
    let out = t.run_to_end(&cfg)?;
    for (name, soft, hard) in [
        ("Max open files", "1000", "2000"),
        ("Max core file size", "4096", "8192"),
        ("Max processes", "300", "400"),
    ] {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap_or("");
        let cols: Vec<&str> = line[name.len().min(line.len())..]
            .split_whitespace()
            .collect();
        ensure!(
            cols.first() == Some(&soft) && cols.get(1) == Some(&hard),
            "{name}: {line:?}, want soft {soft} hard {hard}"
        );
    }
    Ok(())
}

fn rlimits_duplicate() -> TestResult {
    let t = Ctx::new("rlimits-dup");
    let mut cfg = base_config(&["true"]);
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}
    ]);
    t.create(&cfg).error("rlimits has a duplicated type")?;
    t.rt(&["state", &t.id])
        .error("no container after a failed create")
}

/// Capability bit masks of /proc/self/status.
fn cap_masks(status: &str) -> Result<[u64; 5], Failure> {
    let mut out = [0; 5];
    for (i, k) in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .enumerate()
    {
        let v = status_field(status, k).or_fail(&format!("{k} missing"))?;
        out[i] = u64::from_str_radix(v, 16).or_fail(k)?;
    }
    Ok(out)
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_AUDIT_WRITE: u64 = 1 << 29;

fn caps_root() -> TestResult {
    // As root, execve makes permitted and effective the bounding set (plus
    // inheritable): a config that asks for that is observable exactly.
    let t = Ctx::new("caps-root");
    let mut cfg = base_config(&["cat", "/proc/self/status"]);
    let all = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    cfg["process"]["capabilities"] = json!({
        "bounding": all, "effective": all, "permitted": all,
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
    });
    let st = t.run_to_end(&cfg)?;
    let [inh, prm, eff, bnd, amb] = cap_masks(&st)?;
    let want = CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE;
    ensure!(bnd == want, "CapBnd {bnd:#x}, want {want:#x}");
    ensure!(
        prm == want && eff == want,
        "CapPrm {prm:#x} CapEff {eff:#x}, want {want:#x}"
    );
    ensure!(inh == CAP_KILL, "CapInh {inh:#x}");
    ensure!(amb == CAP_KILL, "CapAmb {amb:#x}");
    Ok(())
}

fn caps_non_root() -> TestResult {
    // A non-root process keeps across execve exactly its ambient set.
    let t = Ctx::new("caps-nonroot");
    let mut cfg = base_config(&["cat", "/proc/self/status"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let nbs = json!(["CAP_NET_BIND_SERVICE"]);
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": nbs, "permitted": nbs, "inheritable": nbs, "ambient": nbs
    });
    let st = t.run_to_end(&cfg)?;
    let [inh, prm, eff, bnd, amb] = cap_masks(&st)?;
    let b = CAP_AUDIT_WRITE | CAP_KILL | CAP_NET_BIND_SERVICE;
    ensure!(bnd == b, "CapBnd {bnd:#x}, want {b:#x}");
    for (k, v) in [
        ("CapInh", inh),
        ("CapPrm", prm),
        ("CapEff", eff),
        ("CapAmb", amb),
    ] {
        ensure!(
            v == CAP_NET_BIND_SERVICE,
            "{k} {v:#x}, want CAP_NET_BIND_SERVICE"
        );
    }
    Ok(())
}

fn caps_unknown() -> TestResult {
    // runtime-spec 1.0.x: "Any value which cannot be mapped to a relevant
    // kernel interface MUST cause an error." (1.1 made it a warning.)
    let t = Ctx::new("caps-unknown");
    let mut cfg = base_config(&["true"]);
    cfg["ociVersion"] = json!("1.0.2");
    cfg["process"]["capabilities"]["bounding"] = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NO_SUCH_THING"
    ]);
    t.create(&cfg)
        .error("CAP_NO_SUCH_THING is not a capability")?;
    t.rt(&["state", &t.id])
        .error("no container after a failed create")
}

fn no_new_privs() -> TestResult {
    for (set, want) in [(true, "1"), (false, "0")] {
        let t = Ctx::new("nnp");
        let mut cfg = base_config(&["cat", "/proc/self/status"]);
        cfg["process"]["noNewPrivileges"] = json!(set);
        let st = t.run_to_end(&cfg)?;
        let got = status_field(&st, "NoNewPrivs").unwrap_or("");
        ensure!(got == want, "noNewPrivileges {set}: NoNewPrivs {got:?}");
    }
    Ok(())
}

fn oom_set() -> TestResult {
    let t = Ctx::new("oom-set");
    let mut cfg = base_config(&["cat", "/proc/self/oom_score_adj"]);
    cfg["process"]["oomScoreAdj"] = json!(345);
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "345\n", "oom_score_adj {out:?}");
    Ok(())
}

fn oom_unset() -> TestResult {
    // Unset: the value the runtime was started with is kept.
    let t = Ctx::new("oom-unset");
    let cfg = base_config(&["cat", "/proc/self/oom_score_adj"]);
    t.write_config(&cfg);
    let o = t.rt_full(
        &["create", "--bundle", &t.bundle_str(), &t.id],
        Some(&t.stdout_path(&t.id)),
        Some(123),
    );
    o.success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    let out = t.stdout_of(&t.id);
    ensure!(out == "123\n", "oom_score_adj changed to {out:?}");
    Ok(())
}

fn hostname() -> TestResult {
    let t = Ctx::new("hostname");
    let mut cfg = t.sh_config("hostname; cat /proc/sys/kernel/domainname");
    cfg["ociVersion"] = json!("1.1.0");
    cfg["hostname"] = json!("oci-host");
    cfg["domainname"] = json!("oci.example");
    let out = t.run_to_end(&cfg)?;
    ensure!(
        out == "oci-host\noci.example\n",
        "hostname/domainname {out:?}"
    );
    Ok(())
}
