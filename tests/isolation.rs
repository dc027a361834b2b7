//! Namespaces, filesystem, mounts, masked/readonly paths, devices, sysctl,
//! user namespaces and cgroups, as seen from inside the container.
mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;

#[test]
fn new_netns_has_only_lo() {
    let t = Ctx::new("netns");
    let out = t.run_sh("ls /sys/class/net; echo ===; tail -n +3 /proc/net/dev | cut -d: -f1");
    let (sys, dev) = out.split_once("===\n").unwrap();
    assert_eq!(sys, "lo\n", "{out}");
    assert_eq!(dev.trim(), "lo", "{out}");
}

#[test]
fn namespaces_differ_from_host() {
    let t = Ctx::new("nsdiff");
    let out = t.run_sh(
        "for n in pid net ipc uts mnt cgroup; do echo $n $(readlink /proc/self/ns/$n); done",
    );
    for line in out.lines() {
        let (n, link) = line.split_once(' ').unwrap();
        let host = fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(
            link,
            host.to_str().unwrap(),
            "{n} namespace not new:\n{out}"
        );
    }
    assert_eq!(out.lines().count(), 6, "{out}");
}

#[test]
fn without_namespace_shares_host() {
    let t = Ctx::new("nsshare");
    let mut cfg = t.spec_sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    remove_namespace(&mut cfg, "network");
    remove_namespace(&mut cfg, "ipc");
    let out = t.run_ok(&cfg);
    let want = format!(
        "{}\n{}\n",
        fs::read_link("/proc/self/ns/net").unwrap().display(),
        fs::read_link("/proc/self/ns/ipc").unwrap().display()
    );
    assert_eq!(out, want);
}

#[test]
fn join_network_namespace_by_path() {
    let t = Ctx::new("nsjoin");
    t.create_ok(&t.spec(&["sleep", "30"]));
    let pid = state_pid(&t.state());
    let target = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let id2 = t.other_id("joiner");
    let bundle2 = t.tmp.path().join("bundle2");
    fs::create_dir(&bundle2).unwrap();
    let mut cfg = t.spec(&["readlink", "/proc/self/ns/net"]);
    for ns in cfg["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    t.write_config_in(&bundle2, &cfg);
    let out = t.md(&["run", "--bundle", bundle2.to_str().unwrap(), &id2]);
    out.ok();
    assert_eq!(out.stdout.trim(), target.to_str().unwrap(), "{out}");
}

#[test]
fn cgroup_namespace_root() {
    let t = Ctx::new("cgroupns");
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/cgroup"]));
    assert!(!out.is_empty());
    for l in out.lines() {
        assert!(
            l.ends_with(":/"),
            "cgroup path not / in a cgroup namespace: {l:?}\n{out}"
        );
    }
}

#[test]
fn root_readonly() {
    let t = Ctx::new("rootro");
    let out = t.run_sh(
        "if touch /probe-rootro 2>/dev/null; then echo writable; else echo readonly; fi; \
         grep -c ' / ' /proc/self/mountinfo >/dev/null; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("readonly"), "{out}");
    let opts = lines.last().unwrap_or("");
    assert!(has_opt(opts, "ro"), "/ not mounted ro: {out}");
    assert!(!rootfs().join("probe-rootro").exists());
}

#[test]
fn root_is_pivoted() {
    // the host filesystem is not reachable: / is the rootfs and .. of / is /
    let t = Ctx::new("pivot");
    let out = t.run_sh(
        "ls /; echo ===; ls /../..; echo ===; cut -d: -f1 /etc/passwd; echo ===; \
         cat /proc/self/mountinfo",
    );
    let parts: Vec<&str> = out.split("===\n").collect();
    assert_eq!(parts[0], parts[1], "{out}");
    assert!(parts[0].lines().any(|l| l == "masked-file"), "{out}");
    assert!(
        !parts[0].lines().any(|l| l == "work"),
        "host / visible:\n{out}"
    );
    assert_eq!(parts[2], "root\nnobody\ntester\n");
    let mi = parts[3];
    assert!(
        !parse_mountinfo(mi)
            .iter()
            .any(|m| m.0 == "/work" || m.0.starts_with("/work/")),
        "host mounts visible in container:\n{mi}"
    );
}

#[test]
fn standard_mounts() {
    let t = Ctx::new("stdmounts");
    let mi = t.run_ok(&t.spec(&["cat", "/proc/self/mountinfo"]));
    let expect = [
        ("/proc", "proc", vec![]),
        ("/dev", "tmpfs", vec!["nosuid"]),
        ("/dev/pts", "devpts", vec!["nosuid", "noexec"]),
        ("/dev/shm", "tmpfs", vec!["nosuid", "noexec", "nodev"]),
        ("/dev/mqueue", "mqueue", vec!["nosuid", "noexec", "nodev"]),
        ("/sys", "sysfs", vec!["nosuid", "noexec", "nodev", "ro"]),
    ];
    for (mp, fstype, opts) in expect {
        let m = mount_at(&mi, mp).unwrap_or_else(|| panic!("no mount at {mp}:\n{mi}"));
        assert_eq!(m.1, fstype, "fstype of {mp}:\n{mi}");
        for o in opts {
            assert!(has_opt(&m.2, o), "{mp} lacks {o}: {:?}\n{mi}", m.2);
        }
    }
    // /sys/fs/cgroup is mounted (tmpfs with per-controller cgroup mounts on v1) and ro
    let cg = parse_mountinfo(&mi);
    assert!(
        cg.iter().any(|m| m.0.starts_with("/sys/fs/cgroup")),
        "nothing mounted at /sys/fs/cgroup:\n{mi}"
    );
    for m in cg.iter().filter(|m| m.0.starts_with("/sys/fs/cgroup")) {
        assert!(has_opt(&m.2, "ro"), "{} is not ro:\n{mi}", m.0);
    }
    let devpts = mount_at(&mi, "/dev/pts").unwrap();
    assert!(
        has_opt(&devpts.3, "ptmxmode=666") || has_opt(&devpts.3, "ptmxmode=0666"),
        "{devpts:?}"
    );
}

#[test]
fn cgroup_files_visible_read_only() {
    let t = Ctx::new("cgroupfs");
    // cgroup v2: the container's cgroup is the root of its cgroup2 mount
    let (pids, mem) = if cgroup2_host() {
        ("pids.max", "memory.max")
    } else {
        ("pids/pids.max", "memory/memory.limit_in_bytes")
    };
    let mut cfg = t.spec_sh(&format!(
        "cat /sys/fs/cgroup/{pids}; cat /sys/fs/cgroup/{mem}; \
         if echo 5 > /sys/fs/cgroup/{pids}; then echo writable; else echo denied; fi"
    ));
    cfg["linux"]["resources"]["pids"] = json!({"limit": 77});
    cfg["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    let out = t.run(&cfg);
    out.ok();
    assert_eq!(out.stdout, "77\n67108864\ndenied\n", "{out}");
}

#[test]
fn cgroup_limits_on_host_side() {
    let t = Ctx::new("cglimits");
    let mut cfg = t.spec(&["sleep", "30"]);
    let cgpath = format!("/mydocker-it/{}", t.id);
    cfg["linux"]["cgroupsPath"] = json!(cgpath);
    cfg["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 512}
    });
    t.create_ok(&cfg);
    let pid = state_pid(&t.state());
    let v2 = cgroup2_host();
    let dir = |ctrl: &str| {
        if v2 {
            format!("/sys/fs/cgroup{cgpath}")
        } else {
            format!("/sys/fs/cgroup/{ctrl}{cgpath}")
        }
    };
    let read = |ctrl: &str, file: &str| {
        let p = format!("{}/{file}", dir(ctrl));
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    if v2 {
        assert_eq!(read("memory", "memory.max"), "67108864\n");
        assert_eq!(read("pids", "pids.max"), "50\n");
        // runc's shares->weight conversion
        assert_eq!(read("cpu", "cpu.weight"), "59\n");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864\n");
        assert_eq!(read("pids", "pids.max"), "50\n");
        assert_eq!(read("cpu", "cpu.shares"), "512\n");
    }
    let ctrls: &[&str] = if v2 {
        &["memory"]
    } else {
        &["memory", "pids", "cpu", "devices", "freezer"]
    };
    for &ctrl in ctrls {
        let procs = read(ctrl, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{pid} not in {ctrl}{cgpath}/cgroup.procs: {procs:?}"
        );
    }
    t.md(&["delete", "--force", &t.id]).ok();
    for ctrl in ["memory", "pids", "cpu"] {
        let p = dir(ctrl);
        assert!(
            wait_until(WAIT, || !Path::new(&p).exists()),
            "{p} not removed"
        );
    }
    // the parent cgroup the runtime may have created (fails harmlessly while
    // another test's container still uses it)
    for ctrl in CGROUP_V1_CONTROLLERS {
        let _ = fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/mydocker-it"));
    }
    let _ = fs::remove_dir("/sys/fs/cgroup/unified/mydocker-it");
    let _ = fs::remove_dir("/sys/fs/cgroup/mydocker-it");
}

#[test]
fn pids_limit_enforced() {
    let t = Ctx::new("pidslimit");
    // pid 1 + the inner sh + wc use 3 of the 5 pids: the inner shell can start
    // 2 sleeps, then fork fails and it dies; pid 1 prints how many started
    let mut cfg = t.spec_sh(
        "n=$(sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 >/dev/null & echo started; done' \
           2>/dev/null | wc -l); echo $n",
    );
    cfg["linux"]["resources"]["pids"] = json!({"limit": 5});
    let out = t.run(&cfg);
    out.ok();
    let n: u32 = out.stdout.trim().parse().unwrap_or(999);
    assert!(
        n < 10,
        "pids.max=5 did not stop the container from forking\n{out}"
    );
    assert!(n <= 3, "pids.max=5 allowed {n} extra processes\n{out}");
}

#[test]
fn device_cgroup_denies_other_devices() {
    // linux.resources.devices denies everything but the default devices: a
    // node for /dev/kmsg (1:11) created via linux.devices cannot be opened
    // (opening kmsg write-only needs no capability, so only the device cgroup
    // can deny it) until a rule allows it; /dev/null always works
    let script = "echo x > /dev/null && echo null-ok; \
         if (: > /dev/kmsg-test) 2>/dev/null; then echo kmsg-open; else echo kmsg-denied; fi";
    let dev = json!([{"path": "/dev/kmsg-test", "type": "c", "major": 1, "minor": 11,
                      "fileMode": 0o666, "uid": 0, "gid": 0}]);
    let t = Ctx::new("devcgroup");
    let mut cfg = t.spec_sh(script);
    cfg["linux"]["devices"] = dev.clone();
    assert_eq!(t.run_ok(&cfg), "null-ok\nkmsg-denied\n");

    let t2 = Ctx::new("devcgroupallow");
    let mut cfg = t2.spec_sh(script);
    cfg["linux"]["devices"] = dev;
    cfg["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}));
    assert_eq!(t2.run_ok(&cfg), "null-ok\nkmsg-open\n");
}

#[test]
fn masked_paths() {
    assert!(
        fs::read_to_string("/proc/timer_list").map_or(0, |s| s.len()) > 0,
        "precondition: host /proc/timer_list is readable and not empty"
    );
    assert!(
        fs::read_to_string("/proc/keys").map_or(0, |s| s.len()) > 0,
        "precondition: host /proc/keys is readable and not empty"
    );
    // /proc/kcore only exists with CONFIG_PROC_KCORE
    let have_kcore = Path::new("/proc/kcore").exists();
    let t = Ctx::new("masked");
    let mut cfg = t.spec_sh(
        "echo '=== timer_list ==='; cat /proc/timer_list; \
         echo '=== keys ==='; cat /proc/keys; \
         echo '=== kcore ==='; [ -e /proc/kcore ] && wc -c < /proc/kcore; \
         echo '=== acpi ==='; ls -A /proc/acpi; \
         echo '=== masked-dir ==='; ls -A /masked-dir; \
         echo '=== masked-file ==='; cat /masked-file; \
         echo '=== end ==='",
    );
    let masked = cfg["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/masked-dir"));
    masked.push(json!("/masked-file"));
    let out = t.run_ok(&cfg);
    assert_eq!(section(&out, "timer_list"), "", "{out}");
    assert_eq!(section(&out, "keys"), "", "{out}");
    if have_kcore {
        assert_eq!(section(&out, "kcore").trim(), "0", "{out}");
    }
    assert_eq!(section(&out, "acpi"), "", "{out}");
    assert_eq!(section(&out, "masked-dir"), "", "{out}");
    assert_eq!(section(&out, "masked-file"), "", "{out}");
    // the host files are untouched
    assert_eq!(
        fs::read_to_string(rootfs().join("masked-dir/secret")).unwrap(),
        "secret-dir-content\n"
    );
}

#[test]
fn masked_paths_cannot_be_written() {
    let t = Ctx::new("maskedwrite");
    let mut cfg = t.spec_sh(
        "if touch /masked-dir/new 2>/dev/null; then echo dir-writable; else echo dir-ro; fi",
    );
    cfg["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/masked-dir"));
    // even with a writable root the mask is read-only
    cfg["root"]["readonly"] = json!(false);
    assert_eq!(t.run_ok(&cfg), "dir-ro\n");
    assert!(!rootfs().join("masked-dir/new").exists());
}

#[test]
fn readonly_paths() {
    let t = Ctx::new("readonly");
    let mut cfg = t.spec_sh(
        "cat /proc/self/mountinfo; echo '=== write ==='; \
         echo x 2>&1 > /mnt/tmp/f || echo write-failed",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    cfg["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/mnt/tmp"));
    let out = t.run_ok(&cfg);
    let mi = out.split("=== write ===").next().unwrap();
    // paths this kernel does not have (no /proc/sysrq-trigger without
    // CONFIG_MAGIC_SYSRQ) are skipped by the runtime, so only check the others
    let listed = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    let present = listed.into_iter().filter(|p| Path::new(p).exists());
    for p in present.chain(["/mnt/tmp"]) {
        let m = mount_at(mi, p).unwrap_or_else(|| panic!("no mount at {p}:\n{out}"));
        assert!(has_opt(&m.2, "ro"), "{p} is not ro: {m:?}");
    }
    let w = section(&out, "write");
    assert!(
        w.contains("Read-only file system") && w.contains("write-failed"),
        "{w:?}"
    );
}

#[test]
fn tmpfs_mount() {
    let t = Ctx::new("tmpfs");
    let mut cfg = t.spec_sh(
        "echo data > /mnt/tmp/file && cat /mnt/tmp/file; stat -c %a /mnt/tmp; \
         awk '$5 == \"/mnt/tmp\" {print $6}' /proc/self/mountinfo; \
         grep ' /mnt/tmp ' /proc/self/mounts | cut -d' ' -f3",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}),
    );
    let out = t.run_ok(&cfg);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "data", "{out}");
    assert_eq!(lines[1], "1777", "{out}");
    assert!(
        has_opt(lines[2], "nosuid") && has_opt(lines[2], "nodev"),
        "{out}"
    );
    assert_eq!(lines[3], "tmpfs", "{out}");
}

/// `tmpcopyup` (podman's --tmpfs): the tmpfs starts with a copy of what the
/// image had there, modes and owners kept; writes stay in the tmpfs.
#[test]
fn tmpfs_tmpcopyup_copies_the_image_directory() {
    let t = Ctx::new("tmpcopyup");
    let mut cfg = t.spec_sh(
        "grep -c '^root:' /etc/passwd; stat -c '%a %u' /etc /etc/passwd; \
         echo new > /etc/added && cat /etc/added; \
         grep ' /etc ' /proc/self/mounts | cut -d' ' -f3",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "tmpcopyup"]}),
    );
    let out = t.run_ok(&cfg);
    let etc = fs::metadata(rootfs().join("etc")).unwrap();
    let passwd = fs::metadata(rootfs().join("etc/passwd")).unwrap();
    use std::os::unix::fs::MetadataExt;
    let expect = format!(
        "1\n{:o} {}\n{:o} {}\nnew\ntmpfs\n",
        etc.mode() & 0o7777,
        etc.uid(),
        passwd.mode() & 0o7777,
        passwd.uid()
    );
    assert_eq!(out, expect);
    assert!(
        !rootfs().join("etc/added").exists(),
        "write leaked into the image"
    );
}

#[test]
fn mount_destination_created_in_tmpfs() {
    // a destination that does not exist in the rootfs is created by the runtime
    // (here inside a tmpfs mounted earlier, so the shared rootfs stays clean)
    let t = Ctx::new("mkmountpoint");
    let host = t.tmp.path().join("src");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("hello"), "hi\n").unwrap();
    let mut cfg = t.spec(&["cat", "/mnt/tmp/a/b/hello"]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp/a/b", "type": "bind", "source": host.to_str().unwrap(),
               "options": ["rbind", "ro"]}),
    );
    assert_eq!(t.run_ok(&cfg), "hi\n");
}

#[test]
fn bind_mounts_ro_and_rw() {
    let t = Ctx::new("bind");
    let ro = t.tmp.path().join("ro-src");
    let rw = t.tmp.path().join("rw-src");
    fs::create_dir(&ro).unwrap();
    fs::create_dir(&rw).unwrap();
    fs::write(ro.join("hello"), "from host\n").unwrap();
    let mut cfg = t.spec_sh(
        "cat /mnt/ro/hello; \
         if echo x > /mnt/ro/new 2>/dev/null; then echo ro-writable; else echo ro-denied; fi; \
         echo written > /mnt/rw/new && echo rw-ok",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/ro", "type": "bind", "source": ro.to_str().unwrap(), "options": ["rbind", "ro"]}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/rw", "type": "bind", "source": rw.to_str().unwrap(), "options": ["rbind", "rw"]}),
    );
    assert_eq!(t.run_ok(&cfg), "from host\nro-denied\nrw-ok\n");
    assert!(!ro.join("new").exists());
    assert_eq!(fs::read_to_string(rw.join("new")).unwrap(), "written\n");
}

#[test]
fn bind_mount_of_a_file() {
    let t = Ctx::new("bindfile");
    let src = t.tmp.path().join("hosts");
    fs::write(&src, "127.0.0.1 bound\n").unwrap();
    let mut cfg = t.spec(&["cat", "/mnt/tmp/hosts"]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/tmp/hosts", "type": "bind", "source": src.to_str().unwrap(), "options": ["bind", "ro"]}),
    );
    assert_eq!(t.run_ok(&cfg), "127.0.0.1 bound\n");
}

#[test]
fn default_devices() {
    let t = Ctx::new("devices");
    let out = t.run_sh(
        "for d in null zero full random urandom tty; do \
           [ -c /dev/$d ] && echo $d $(stat -c '%t:%T %a' /dev/$d); done; \
         echo ptmx $(readlink /dev/ptmx); [ -c /dev/ptmx ] && echo ptmx-char; \
         echo fd $(readlink /dev/fd); \
         echo stdin $(readlink /dev/stdin) stdout $(readlink /dev/stdout) stderr $(readlink /dev/stderr); \
         echo zero-bytes $(head -c 4 /dev/zero | wc -c); \
         echo urandom-bytes $(head -c 16 /dev/urandom | wc -c); \
         echo x > /dev/null && echo null-writable",
    );
    let want = [
        "null 1:3 666",
        "zero 1:5 666",
        "full 1:7 666",
        "random 1:8 666",
        "urandom 1:9 666",
        "tty 5:0 666",
    ];
    for w in want {
        assert!(out.lines().any(|l| l == w), "missing {w:?}:\n{out}");
    }
    let ptmx = out.lines().find(|l| l.starts_with("ptmx ")).unwrap();
    // spec: a bind mount or symlink to /dev/pts/ptmx
    assert!(
        ptmx == "ptmx pts/ptmx" || ptmx == "ptmx /dev/pts/ptmx" || ptmx == "ptmx ",
        "{out}"
    );
    assert!(out.lines().any(|l| l == "ptmx-char"), "{out}");
    assert!(out.lines().any(|l| l == "fd /proc/self/fd"), "{out}");
    assert!(
        out.lines()
            .any(|l| l == "stdin /proc/self/fd/0 stdout /proc/self/fd/1 stderr /proc/self/fd/2"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "zero-bytes 4"), "{out}");
    assert!(out.lines().any(|l| l == "urandom-bytes 16"), "{out}");
    assert!(out.lines().any(|l| l == "null-writable"), "{out}");
}

#[test]
fn linux_devices_created() {
    let t = Ctx::new("linuxdevices");
    let mut cfg = t.spec_sh("stat -c '%F %t:%T %a %u %g' /dev/mynull /dev/myblk");
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 100},
        {"path": "/dev/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
    let out = t.run_ok(&cfg);
    assert_eq!(
        out, "character special file 1:3 640 1000 100\nblock special file 7:c8 600 0 0\n",
        "stat output"
    );
}

#[test]
fn linux_devices_replace_defaults_and_refuse_a_mismatching_file() {
    // A configured /dev/null wins over the default one; a file already at a
    // device path that is not that device is an error (config-linux.md).
    let t = Ctx::new("devclash");
    let mut cfg = t.spec_sh("stat -c '%t:%T %a' /dev/null");
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}
    ]);
    assert_eq!(t.run_ok(&cfg), "1:3 600\n");
    // /masked-file is a regular file in the (read-only) test rootfs.
    cfg["linux"]["devices"] = json!([
        {"path": "/masked-file", "type": "c", "major": 1, "minor": 3}
    ]);
    t.write_config(&cfg);
    t.create()
        .err("/masked-file exists and is not the requested device");
    t.assert_no_leftovers();
}

#[test]
fn sysctl_applied_in_container_only() {
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let t = Ctx::new("sysctl");
    let mut cfg = t.spec(&[
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmni",
    ]);
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    assert_eq!(t.run_ok(&cfg), "1\n1234\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before,
        "host sysctl changed"
    );
}

#[test]
fn user_namespace_mappings() {
    let t = Ctx::new("userns");
    let mut cfg =
        t.spec_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; ls /bin/busybox");
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let out = t.run(&cfg);
    out.ok();
    let norm: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        norm,
        ["0 100000 65536", "0 100000 65536", "0", "0", "/bin/busybox"],
        "{out}"
    );
}

#[test]
fn user_namespace_host_view() {
    let t = Ctx::new("usernshost");
    let mut cfg = t.spec(&["sleep", "30"]);
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    let pid = state_pid(&t.state());
    let mut status = String::new();
    let ok = wait_until(WAIT, || {
        status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status_field(&status, "Name") == Some("sleep")
    });
    assert!(ok, "container never exec'd sleep:\n{status}");
    let uids: Vec<&str> = status_field(&status, "Uid")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        uids, ["200000"; 4],
        "host view of the container's uid:\n{status}"
    );
    assert_ne!(
        fs::read_link(format!("/proc/{pid}/ns/user")).unwrap(),
        fs::read_link("/proc/self/ns/user").unwrap()
    );
}

#[test]
fn relative_mount_destination_is_relative_to_root() {
    // config.md: a relative destination is deprecated but MUST be taken as
    // relative to "/".
    let t = Ctx::new("reldest");
    let mut cfg = t.spec_sh("cat /proc/self/mountinfo");
    add_mount(
        &mut cfg,
        json!({"destination": "mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    let out = t.run_ok(&cfg);
    let m = mount_at(&out, "/mnt/tmp").unwrap_or_else(|| panic!("no mount at /mnt/tmp:\n{out}"));
    assert_eq!(m.1, "tmpfs", "{m:?}");
}

/// A minimal private rootfs under the test's temp dir (for tests whose
/// container mounts land in the host's mount namespace, so that the shared
/// rootfs other tests use is never touched).
fn private_rootfs(t: &Ctx) -> std::path::PathBuf {
    let r = t.tmp.path().join("rootfs");
    for d in ["bin", "proc", "dev", "tmp"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::copy(rootfs().join("bin/busybox"), r.join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "readlink", "sleep", "grep"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
    }
    r
}

#[test]
fn no_mount_namespace_uses_the_runtimes_and_cleans_up() {
    // config-linux.md: a namespace type not listed is inherited from the
    // runtime. Without a mount namespace the container's mounts are made in
    // the host's; delete (and a failed create) must take them all away.
    let t = Ctx::new("nomntns");
    let r = private_rootfs(&t);
    let mut cfg = t.spec_sh("readlink /proc/self/ns/mnt; grep -c . /proc/self/mountinfo");
    cfg["root"] = json!({"path": r.to_str().unwrap(), "readonly": true});
    cfg["linux"]["namespaces"] = json!([]);
    cfg.as_object_mut().unwrap().remove("hostname");
    cfg["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
    ]);
    cfg["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    cfg["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    t.create_ok(&cfg);
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let under: Vec<&str> = mi
        .lines()
        .filter(|l| l.contains(r.to_str().unwrap()))
        .collect();
    assert!(
        under.len() >= 4,
        "the container's mounts are not in the host's namespace:\n{mi}"
    );
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();

    let out = t.run_ok(&cfg);
    let host = fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(out.lines().next(), host.to_str(), "{out}");
    t.assert_no_leftovers();

    // A create that fails after some mounts leaves none behind.
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}));
    t.write_config(&cfg);
    t.create().failed();
    t.assert_no_leftovers();
}

#[test]
fn bind_mount_ignores_filesystem_parameters_with_a_warning() {
    // runtime-tools (and some engines) put tmpfs parameters on bind mounts;
    // the kernel ignores them for a bind, and so does MyDocker, saying so.
    // A bare unknown word is still an error (tests/security.rs).
    let t = Ctx::new("bindparams");
    let mut cfg = t.spec(&["ls", "/mnt/ro"]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/ro", "type": "bind", "source": t.out.to_str().unwrap(),
               "options": ["rbind", "nosuid", "mode=755", "size=1k"]}),
    );
    std::fs::write(t.out.join("seen"), "").unwrap();
    let out = t.run(&cfg);
    out.ok();
    assert_eq!(out.stdout, "seen\n", "{out}");
    assert!(out.stderr.contains("mode=755,size=1k ignored"), "{out}");
}
