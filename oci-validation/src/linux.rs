//! config-linux.md: namespaces, user namespace mappings, devices, cgroups
//! path, sysctl, masked and read-only paths, rootfs propagation.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::harness::*;
use crate::{ensure, skip};

crate::tests! {
    "namespaces/new-without-path", "config-linux.md#namespaces" => ns_new;
    "namespaces/inherited-when-absent", "config-linux.md#namespaces" => ns_inherited;
    "namespaces/joined-by-path", "config-linux.md#namespaces" => ns_join;
    "namespaces/path-of-wrong-type-errors", "config-linux.md#namespaces" => ns_wrong_type;
    "namespaces/duplicate-type-errors", "config-linux.md#namespaces" => ns_duplicate;
    "user-namespace/mappings", "config-linux.md#user-namespace-mappings" => userns;
    "devices/created", "config-linux.md#devices" => devices_created;
    "devices/existing-mismatch-errors", "config-linux.md#devices" => devices_mismatch;
    "devices/defaults-supplied", "config-linux.md#default-devices" => default_devices;
    "cgroups-path/absolute", "config-linux.md#cgroups-path" => cgroups_path;
    "resources/devices-in-listed-order", "config-linux.md#allowed-device-list" => device_rules_order;
    "sysctl/applied", "config-linux.md#sysctl" => sysctl;
    "masked-paths", "config-linux.md#masked-paths" => masked;
    "readonly-paths", "config-linux.md#readonly-paths" => readonly;
    "rootfs-propagation", "config-linux.md#rootfs-mount-propagation" => propagation;
}

const NS: [&str; 5] = ["mnt", "net", "ipc", "uts", "pid"];

fn ns_new() -> TestResult {
    let t = Ctx::new("ns-new");
    let mut cfg = base_config(&["sleep", "30"]);
    set_namespace(&mut cfg, "cgroup", None);
    t.create(&cfg).success()?;
    let pid = t.pid(&t.id)?.to_string();
    for ns in NS.iter().chain(&["cgroup"]) {
        ensure!(
            ns_link(&pid, ns) != ns_link("self", ns),
            "no new {ns} namespace for a type without path"
        );
    }
    Ok(())
}

fn ns_inherited() -> TestResult {
    let t = Ctx::new("ns-inherit");
    let mut cfg = base_config(&["sleep", "30"]);
    for n in ["network", "ipc", "uts"] {
        remove_namespace(&mut cfg, n);
    }
    cfg.as_object_mut().map(|o| o.remove("hostname"));
    // sysfs cannot be mounted afresh without a network namespace: bind it.
    if let Some(m) = cfg["mounts"].as_array_mut() {
        m.retain(|x| x["type"] != "sysfs");
    }
    t.create(&cfg).success()?;
    let pid = t.pid(&t.id)?.to_string();
    for ns in ["net", "ipc", "uts"] {
        ensure!(
            ns_link(&pid, ns) == ns_link("self", ns),
            "{ns} namespace not inherited from the runtime"
        );
    }
    Ok(())
}

fn ns_join() -> TestResult {
    let mut t = Ctx::new("ns-join");
    t.create(&base_config(&["sleep", "30"])).success()?;
    let a = t.pid(&t.id)?.to_string();
    let b = t.other_id("b");
    let mut cfg = base_config(&["sleep", "30"]);
    for (ty, link) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        set_namespace(&mut cfg, ty, Some(&format!("/proc/{a}/ns/{link}")));
    }
    cfg.as_object_mut().map(|o| o.remove("hostname"));
    t.create_id(&b, &cfg).success()?;
    let bp = t.pid(&b)?.to_string();
    for ns in ["net", "ipc", "uts"] {
        ensure!(
            ns_link(&bp, ns) == ns_link(&a, ns),
            "{ns}: not placed in the namespace of the given path"
        );
    }
    ensure!(
        ns_link(&bp, "mnt") != ns_link(&a, "mnt"),
        "mount namespace shared although not joined"
    );
    Ok(())
}

fn ns_wrong_type() -> TestResult {
    let mut t = Ctx::new("ns-wrongtype");
    t.create(&base_config(&["sleep", "30"])).success()?;
    let a = t.pid(&t.id)?.to_string();
    let b = t.other_id("b");
    let mut cfg = base_config(&["true"]);
    set_namespace(&mut cfg, "ipc", Some(&format!("/proc/{a}/ns/net")));
    t.create_id(&b, &cfg)
        .error("an ipc namespace path that is a network namespace")?;
    t.rt(&["state", &b])
        .error("no container after a failed create")
}

fn ns_duplicate() -> TestResult {
    let t = Ctx::new("ns-dup");
    let mut cfg = base_config(&["true"]);
    if let Some(a) = cfg["linux"]["namespaces"].as_array_mut() {
        a.push(json!({"type": "network"}));
    }
    t.create(&cfg).error("network is listed twice")?;
    t.rt(&["state", &t.id])
        .error("no container after a failed create")
}

fn userns() -> TestResult {
    if !std::path::Path::new("/proc/self/ns/user").exists() {
        skip!("no user namespaces");
    }
    let t = Ctx::new("userns");
    let mut cfg = t.sh_config("cat /proc/self/uid_map /proc/self/gid_map; id -u");
    set_namespace(&mut cfg, "user", None);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
    let out = t.run_to_end(&cfg)?;
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    ensure!(
        norm == ["0 100000 65536", "0 200000 1000", "0"],
        "maps as seen in the container: {norm:?}"
    );
    Ok(())
}

fn devices_created() -> TestResult {
    let t = Ctx::new("devices");
    let mut cfg =
        t.sh_config("stat -c '%F %t:%T %a %u %g' /dev/oci-null /dev/oci-loop /mnt/a/fifo");
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/oci-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1, "gid": 2},
        {"path": "/dev/oci-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/mnt/a/fifo", "type": "p", "fileMode": 0o644}
    ]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
    );
    let out = t.run_to_end(&cfg)?;
    let want =
        "character special file 1:3 640 1 2\nblock special file 7:c8 600 0 0\nfifo 0:0 644 0 0\n";
    ensure!(out == want, "devices: {out:?}, want {want:?}");
    Ok(())
}

fn devices_mismatch() -> TestResult {
    // /masked-file is a regular file in the rootfs, not the device asked for.
    let t = Ctx::new("devices-mismatch");
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["devices"] =
        json!([{"path": "/masked-file", "type": "c", "major": 1, "minor": 3}]);
    t.create(&cfg)
        .error("a file that is not the device is already at the path")?;
    t.rt(&["state", &t.id])
        .error("no container after a failed create")
}

fn default_devices() -> TestResult {
    let t = Ctx::new("default-devices");
    let cfg = t.sh_config(
        "for d in null zero full random urandom tty; do stat -c \"$d %F %t:%T\" /dev/$d; done; \
         stat -L -c 'ptmx %F %t:%T' /dev/ptmx",
    );
    let out = t.run_to_end(&cfg)?;
    for want in [
        "null character special file 1:3",
        "zero character special file 1:5",
        "full character special file 1:7",
        "random character special file 1:8",
        "urandom character special file 1:9",
        "tty character special file 5:0",
        "ptmx character special file 5:2",
    ] {
        ensure!(
            out.lines().any(|l| l == want),
            "missing {want:?} in:\n{out}"
        );
    }
    Ok(())
}

fn cgroups_path() -> TestResult {
    // An absolute cgroupsPath is relative to the cgroup mount point; the
    // same value gives the same place again.
    let t = Ctx::new("cgroups-path");
    let path = format!("/ocival/{}", t.id);
    let res = (|| {
        let mut cfg = base_config(&["sleep", "30"]);
        cfg["linux"]["cgroupsPath"] = json!(path);
        for round in 0..2 {
            t.create(&cfg).success()?;
            let pid = t.pid(&t.id)?;
            let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).or_fail("cgroup")?;
            let line = if cgroup2_host() {
                text.lines().find(|l| l.starts_with("0::"))
            } else {
                text.lines().find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|x| x == "memory"))
                })
            };
            let got = line.and_then(|l| l.splitn(3, ':').nth(2)).unwrap_or("");
            ensure!(
                got == path,
                "round {round}: in cgroup {got:?}, want {path:?}\n{text}"
            );
            t.rt(&["delete", "--force", &t.id]).success()?;
        }
        Ok(())
    })();
    let _ = t.rt(&["delete", "--force", &t.id]);
    // The parent the runtime made stays (it may be shared): remove it here.
    let mut parents = vec![std::path::PathBuf::from("/sys/fs/cgroup/ocival")];
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        parents.push(h.path().join("ocival"));
    }
    for p in parents {
        let _ = fs::remove_dir(p);
    }
    res
}

fn device_rules_order() -> TestResult {
    // The device allow-list is applied in the listed order: allowing the
    // node and then denying it leaves it denied. Reading a loop node is
    // EPERM only when the device cgroup refuses it.
    let t = Ctx::new("device-rules");
    let node = json!([{"path": "/dev/oci-loop", "type": "b", "major": 7, "minor": 200}]);
    let deny_all = json!({"allow": false, "access": "rwm"});
    let allow = json!({"allow": true, "type": "b", "major": 7, "minor": 200, "access": "rwm"});
    let deny = json!({"allow": false, "type": "b", "major": 7, "minor": 200, "access": "rwm"});
    for (rules, denied) in [
        (json!([deny_all, allow]), false),
        (json!([deny_all, allow, deny]), true),
    ] {
        let mut cfg = t.sh_config("head -c1 /dev/oci-loop 2>&1 >/dev/null; true");
        cfg["linux"]["devices"] = node.clone();
        cfg["linux"]["resources"] = json!({"devices": rules});
        let out = t.run_to_end(&cfg)?;
        t.rt(&["delete", "--force", &t.id]).success()?;
        ensure!(
            out.contains("Operation not permitted") == denied,
            "rules {rules}: reading the node said {out:?} (denied expected: {denied})"
        );
    }
    Ok(())
}

fn sysctl() -> TestResult {
    let t = Ctx::new("sysctl");
    let mut cfg = base_config(&[
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmni",
    ]);
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    let out = t.run_to_end(&cfg)?;
    ensure!(
        out == "1\n1234\n",
        "sysctl values in the container: {out:?}"
    );
    Ok(())
}

fn masked() -> TestResult {
    let t = Ctx::new("masked");
    let mut cfg = t.sh_config(
        "echo \"file:$(cat /masked-file 2>/dev/null)\"; echo \"dir:$(ls -A /masked-dir 2>/dev/null)\"",
    );
    cfg["linux"]["maskedPaths"] = json!(["/masked-file", "/masked-dir", "/does/not/exist"]);
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "file:\ndir:\n", "masked paths readable: {out:?}");
    Ok(())
}

fn readonly() -> TestResult {
    let t = Ctx::new("readonly");
    let mut cfg = t.sh_config(
        "touch /mnt/a/x 2>/dev/null && echo writable || echo read-only; \
         touch /mnt/b/x 2>/dev/null && echo writable || echo read-only",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/b", "type": "tmpfs", "source": "tmpfs"}),
    );
    cfg["linux"]["readonlyPaths"] = json!(["/mnt/a"]);
    let out = t.run_to_end(&cfg)?;
    ensure!(out == "read-only\nwritable\n", "readonlyPaths: {out:?}");
    Ok(())
}

fn propagation() -> TestResult {
    // A private copy of the rootfs: with "shared" some runtimes let the
    // container's mounts reach the host, and they must not land on the
    // rootfs other tests use.
    let t = Ctx::new("propagation");
    let r = t.dir.join("prop-rootfs");
    for d in ["bin", "proc", "dev", "sys"] {
        fs::create_dir_all(r.join(d)).or_fail("mkdir")?;
    }
    fs::set_permissions(&r, fs::Permissions::from_mode(0o755)).or_fail("chmod")?;
    fs::copy(rootfs().join("bin/busybox"), r.join("bin/busybox")).or_fail("copy")?;
    std::os::unix::fs::symlink("busybox", r.join("bin/cat")).or_fail("symlink")?;
    // "slave" can only show a master where the host mount holding the
    // rootfs is shared; on a private one it stays without propagation.
    let host = fs::read_to_string("/proc/self/mountinfo").or_fail("mountinfo")?;
    let rs = r.to_string_lossy().into_owned();
    let host_shared = parse_mountinfo(&host)
        .iter()
        .filter(|m| rs.starts_with(&m.point))
        .max_by_key(|m| m.point.len())
        .is_some_and(|m| m.optional.contains("shared:"));
    let slave_tag = if host_shared { "master:" } else { "" };
    for (mode, tag) in [("slave", slave_tag), ("private", ""), ("shared", "shared:")] {
        let mut cfg = base_config(&["cat", "/proc/self/mountinfo"]);
        cfg["root"]["path"] = json!(r);
        cfg["linux"]["rootfsPropagation"] = json!(mode);
        let mi = t.run_to_end(&cfg)?;
        t.rt(&["delete", "--force", &t.id]).success()?;
        let m = parse_mountinfo(&mi);
        let root = mount_at(&m, "/").or_fail(&format!("no / in:\n{mi}"))?;
        let ok = if tag.is_empty() {
            !root.optional.contains("shared:") && !root.optional.contains("master:")
        } else {
            root.optional.contains(tag)
        };
        ensure!(ok, "rootfsPropagation {mode}: / has {:?}", root.optional);
    }
    Ok(())
}
