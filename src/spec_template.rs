//! `spec`: the default config.json, shaped like runc's.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Context, Error, Result};

/// The default configuration: runc's (`runc spec`, spec 1.3.0), with three
/// deliberate differences: the hostname is "mydocker"; there is no ambient
/// capability set (runc lists ambient capabilities that are not inheritable,
/// which the kernel cannot raise); and the cgroup namespace is always there
/// (runc adds it on cgroup v2 hosts only; our v1 `cgroup` mount shows the
/// container's own directories, which its cgroup namespace makes consistent
/// with /proc/self/cgroup).
pub fn default_config(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut v = json!({
        "ociVersion": crate::features::OCI_VERSION_MAX,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "mydocker",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let linux = &mut v["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}
        ]);
        if let Some(o) = linux.as_object_mut() {
            o.remove("resources");
        }
        v["mounts"][2]["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620"
        ]);
        v["mounts"][5] = json!({"destination": "/sys", "type": "none", "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    v
}

/// Writes `<bundle>/config.json`, refusing to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::msg(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let data = serde_json::to_string_pretty(&default_config(rootless))
        .map_err(|e| Error::msg(e.to_string()))?;
    std::fs::write(&path, data + "\n").ctx(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_parses() {
        let v = super::default_config(false);
        let data = serde_json::to_vec(&v).unwrap();
        // The default has a terminal, which create refuses until ttys land:
        // check that everything else validates.
        let mut v2 = v.clone();
        v2["process"]["terminal"] = serde_json::json!(false);
        crate::spec::parse(&serde_json::to_vec(&v2).unwrap(), "config.json").unwrap();
        assert!(!data.is_empty());
    }
}
