//! cgroup v1 device rules: the spec's list followed by the allow-list of the
//! devices every container gets, as runc applies them.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Context, Result};

/// Devices every container may use (runc's default allow-list).
const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

fn rule(r: &LinuxDeviceCgroup) -> String {
    let t = match r.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::B) => "b",
        _ => "a",
    };
    let num = |n: Option<i64>| n.map_or("*".to_string(), |v| v.to_string());
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    if t == "a" {
        "a".to_string()
    } else {
        format!("{t} {}:{} {access}", num(r.major()), num(r.minor()))
    }
}

/// Applies the rules in order, then the default allow-list.
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let write = |file: &str, v: &str| {
        std::fs::write(dir.join(file), v)
            .ctx(|| format!("{}: write {v:?}", dir.join(file).display()))
    };
    for r in rules {
        write(
            if r.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            },
            &rule(r),
        )?;
    }
    for a in DEFAULT_ALLOW {
        write("devices.allow", a)?;
    }
    Ok(())
}
