//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel`
//! and `linux.mountLabel`.
//!
//! Where the host has the LSM, this does what runc does: the AppArmor profile
//! is written as `exec <profile>` to attr/apparmor/exec (attr/exec on old
//! kernels), the SELinux label to attr/exec and attr/keycreate, and the mount
//! label becomes a `context=` option of the container's filesystem mounts.
//! Every write goes through the init's trusted procfs handle.
//!
//! Where the host lacks it, runc fails too, only later and less clearly (the
//! attr write returns EINVAL, the mount refuses `context=`, the SELinux label
//! is refused by its validation). We refuse at `create`, naming the field.

use oci_spec::runtime::{Process, Spec};

use super::procfs::Procfs;
use crate::error::{Error, Result};

const SELINUX_MAGIC: i64 = 0xf97c_ff8c;

/// AppArmor is enabled (runc's test: securityfs knows it and the module
/// parameter says Y).
pub fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// SELinux is active: selinuxfs is mounted and the runtime has a context.
pub fn selinux_enabled() -> bool {
    let Ok(st) = nix::sys::statfs::statfs("/sys/fs/selinux") else {
        return false;
    };
    st.filesystem_type().0 == SELINUX_MAGIC
        && std::fs::read_to_string("/proc/self/attr/current")
            .is_ok_and(|c| !c.trim_end_matches(['\0', '\n']).is_empty() && c.trim() != "kernel")
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn absent(path: &str, lsm: &str) -> Error {
    Error::Config {
        file: "config.json".into(),
        path: path.into(),
        msg: format!("{lsm} is not enabled on this host"),
    }
}

/// Refuses labels for an LSM the host does not have (at `create`).
pub fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    let selinux = || selinux_enabled();
    if spec
        .linux()
        .as_ref()
        .and_then(|l| nonempty(l.mount_label()))
        .is_some()
        && !selinux()
    {
        return Err(absent("linux.mountLabel", "SELinux"));
    }
    Ok(())
}

/// Refuses a process's labels for an LSM the host does not have (`create`,
/// and `exec` for the process it runs).
pub fn check_process(process: &Process) -> Result<()> {
    if nonempty(process.apparmor_profile()).is_some() && !apparmor_enabled() {
        return Err(absent("process.apparmorProfile", "AppArmor"));
    }
    if nonempty(process.selinux_label()).is_some() && !selinux_enabled() {
        return Err(absent("process.selinuxLabel", "SELinux"));
    }
    Ok(())
}

/// Sets the labels the user process gets at execve. Runs in the init after
/// pivot_root, with the procfs handle opened before it.
pub fn apply_exec_labels(proc: &Procfs, spec: &Spec) -> Result<()> {
    match spec.process() {
        Some(p) => apply_process_labels(proc, p),
        None => Ok(()),
    }
}

/// Sets the labels `process` gets at execve (the init's, or an exec'd one's).
pub fn apply_process_labels(proc: &Procfs, process: &Process) -> Result<()> {
    if let Some(profile) = nonempty(process.apparmor_profile()) {
        // Only a process's own attributes can be changed: thread-self is
        // exact (libapparmor uses /proc/<tid>/attr).
        let attr = if proc.open("thread-self/attr/apparmor", libc::O_PATH).is_ok() {
            "thread-self/attr/apparmor/exec"
        } else {
            "thread-self/attr/exec"
        };
        proc.write(attr, format!("exec {profile}").as_bytes())
            .map_err(|e| {
                Error::msg(format!(
                    "process.apparmorProfile: apply profile {profile:?}: {e}"
                ))
            })?;
    }
    if let Some(label) = nonempty(process.selinux_label()) {
        for attr in ["thread-self/attr/keycreate", "thread-self/attr/exec"] {
            proc.write(attr, label.as_bytes())
                .map_err(|e| Error::msg(format!("process.selinuxLabel: write {attr}: {e}")))?;
        }
    }
    Ok(())
}

/// Mount data with the `linux.mountLabel` context, for the filesystem types
/// runc labels this way (not proc, sysfs, mqueue, cgroup or binds).
pub fn mount_data(spec: &Spec, typ: &str, data: &str) -> String {
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| nonempty(l.mount_label()));
    match label {
        Some(l)
            if !matches!(
                typ,
                "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind"
            ) =>
        {
            let ctx = format!("context=\"{l}\"");
            if data.is_empty() {
                ctx
            } else {
                format!("{data},{ctx}")
            }
        }
        _ => data.to_string(),
    }
}
