//! Loading `config.json` and refusing what this runtime does not implement.
//!
//! Errors name the file and the dotted JSON path. A known spec field that the
//! runtime cannot honour fails `create` with `not supported: <path>`: ignoring a
//! setting, above all a security one, would be a silent vulnerability.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde_json::Value;

use crate::error::{Error, Result};

/// A parsed bundle: the spec plus the resolved paths create needs.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// Settings of the config that `oci-spec` does not model.
    pub unmodelled: Unmodelled,
}

/// Config settings the `oci-spec` types cannot hold, read from the raw JSON.
#[derive(Debug, Clone, Default)]
pub struct Unmodelled {
    /// `linux.seccomp.flags` has `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    pub seccomp_wait_killable_recv: bool,
}

/// Reads and validates `<bundle>/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle)
        .map_err(|e| Error::msg(format!("bundle {}: {e}", bundle.display())))?;
    let file = dir.join("config.json");
    let fname = file.display().to_string();
    let data = std::fs::read(&file).map_err(|e| Error::msg(format!("{fname}: {e}")))?;
    let (spec, unmodelled) = parse_full(&data, &fname)?;
    let root = spec.root().as_ref().ok_or_else(|| Error::Config {
        file: fname.clone(),
        path: "root".into(),
        msg: "missing (the container needs a root filesystem)".into(),
    })?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::Config {
            file: fname,
            path: "root.path".into(),
            msg: "empty".into(),
        });
    }
    let rootfs_raw = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs_raw).map_err(|e| Error::Config {
        file: fname.clone(),
        path: "root.path".into(),
        msg: format!("rootfs {}: {e}", rootfs_raw.display()),
    })?;
    if !rootfs.is_dir() {
        return Err(Error::Config {
            file: fname,
            path: "root.path".into(),
            msg: format!("rootfs {} is not a directory", rootfs.display()),
        });
    }
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        unmodelled,
    })
}

/// Parses and validates config bytes; `fname` names the file in errors.
pub fn parse(data: &[u8], fname: &str) -> Result<Spec> {
    parse_full(data, fname).map(|(spec, _)| spec)
}

/// Like `parse`, plus the settings `oci-spec` does not model.
pub fn parse_full(data: &[u8], fname: &str) -> Result<(Spec, Unmodelled)> {
    let mut raw: Value = serde_json::from_slice(data).map_err(|e| Error::Config {
        file: fname.into(),
        path: "$".into(),
        msg: format!("invalid JSON: {e}"),
    })?;
    check_raw(&raw).map_err(|e| relabel(e, fname))?;
    let unmodelled = take_unmodelled(&mut raw);
    let spec: Spec = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        Error::Config {
            file: fname.into(),
            path: if path == "." { "$".into() } else { path },
            msg: e.inner().to_string(),
        }
    })?;
    validate(&spec).map_err(|e| relabel(e, fname))?;
    Ok((spec, unmodelled))
}

/// Removes from `raw` what `oci-spec` would reject although the runtime
/// implements it, and returns it.
fn take_unmodelled(raw: &mut Value) -> Unmodelled {
    let mut u = Unmodelled::default();
    if let Some(flags) = raw
        .pointer_mut("/linux/seccomp/flags")
        .and_then(Value::as_array_mut)
    {
        let before = flags.len();
        flags.retain(|f| f.as_str() != Some(crate::security::seccomp::FLAG_WAIT_KILLABLE_RECV));
        u.seccomp_wait_killable_recv = flags.len() != before;
    }
    u
}

fn relabel(e: Error, fname: &str) -> Error {
    match e {
        Error::Config { path, msg, .. } => Error::Config {
            file: fname.into(),
            path,
            msg,
        },
        other => other,
    }
}

fn cfg_err(path: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Config {
        file: String::new(),
        path: path.into(),
        msg: msg.into(),
    }
}

fn unsupported(path: impl Into<String>) -> Error {
    Error::NotSupported(path.into())
}

/// Checks on the raw JSON for spec fields that `oci-spec` does not model (so
/// they would be dropped silently by deserialisation) and the version.
fn check_raw(raw: &Value) -> Result<()> {
    let version = raw
        .get("ociVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| cfg_err("ociVersion", "missing or not a string"))?;
    check_version(version)?;
    if let Some(mounts) = raw.get("mounts").and_then(Value::as_array) {
        for (i, m) in mounts.iter().enumerate() {
            for key in ["uidMappings", "gidMappings"] {
                if m.get(key).is_some() {
                    return Err(unsupported(format!("mounts[{i}].{key}")));
                }
            }
        }
    }
    for key in ["solaris", "windows", "vm", "zos"] {
        if raw.get(key).is_some() {
            return Err(unsupported(key));
        }
    }
    Ok(())
}

/// Accepts every 1.0.0 to 1.3.x version, with or without a pre-release tag
/// or build metadata; anything that is not SemVer 2.0.0 is invalid.
fn check_version(v: &str) -> Result<()> {
    let Some((major, minor)) = semver_major_minor(v) else {
        return Err(cfg_err(
            "ociVersion",
            format!("\"{v}\" is not a SemVer 2.0.0 version (like \"1.0.2\")"),
        ));
    };
    if major == 1 && minor <= 3 {
        return Ok(());
    }
    Err(cfg_err(
        "ociVersion",
        format!("unsupported version \"{v}\" (this runtime supports 1.0.0 to 1.3.x)"),
    ))
}

/// Major and minor of a SemVer 2.0.0 string (`1.2.3`, `1.2.3-rc.1+meta`).
fn semver_major_minor(v: &str) -> Option<(u64, u64)> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let ident_ok =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let numeric = |id: &str| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && (id == "0" || !id.starts_with('0'))
    };
    if let Some(b) = build {
        if !b.split('.').all(ident_ok) {
            return None;
        }
    }
    if let Some(p) = pre {
        let valid =
            |id: &str| ident_ok(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id));
        if !p.split('.').all(valid) {
            return None;
        }
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return None;
    }
    Some((parts[0].parse().ok()?, parts[1].parse().ok()?))
}

/// True when `version` (a SemVer accepted by `check_version`) is at least
/// `major.minor`: behaviour the spec changed between versions follows the
/// version the bundle was written for.
pub fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut it = version
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Semantic checks and the refusal of fields not implemented yet.
fn validate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    if let Some(h) = spec.hooks() {
        #[allow(deprecated)]
        let lists = [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
            ("poststart", h.poststart()),
            ("poststop", h.poststop()),
        ];
        for (name, list) in lists {
            for (i, hook) in list.iter().flatten().enumerate() {
                if !hook.path().is_absolute() {
                    return Err(cfg_err(
                        format!("hooks.{name}[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                if hook.timeout().is_some_and(|t| t <= 0) {
                    return Err(cfg_err(
                        format!("hooks.{name}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    // A relative mounts[].destination is deprecated but valid: it is taken
    // as relative to "/" (the rootfs code resolves every destination so).
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(cfg_err(format!("mounts[{i}].destination"), "empty"));
        }
    }
    let Some(linux) = spec.linux() else {
        return Err(cfg_err(
            "linux",
            "missing (this runtime runs Linux containers)",
        ));
    };
    if linux.intel_rdt().is_some() {
        return Err(unsupported("linux.intelRdt"));
    }
    if linux.memory_policy().is_some() {
        return Err(unsupported("linux.memoryPolicy"));
    }
    if linux.personality().is_some() {
        return Err(unsupported("linux.personality"));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(unsupported("linux.netDevices"));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(unsupported("linux.timeOffsets"));
    }
    // linux.resources: every field is applied, or refused by the host check
    // in src/cgroups (Manager::check) before anything is made.
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if seen.contains(&ns.typ()) {
            return Err(cfg_err(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace type {}", ns.typ()),
            ));
        }
        seen.push(ns.typ());
    }
    let has = |t| seen.contains(&t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(cfg_err("hostname", "needs a new uts namespace"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(cfg_err("domainname", "needs a new uts namespace"));
    }
    let user_new = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if user_new
        && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
    {
        return Err(cfg_err(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !has(LinuxNamespaceType::User)
        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
    {
        return Err(cfg_err(
            "linux.uidMappings",
            "mappings given without a user namespace",
        ));
    }
    Ok(())
}

/// Checks a `process` object (config.json's, or the one `exec` runs) and
/// refuses its fields not implemented yet (LSM labels are checked against
/// the host by `security::lsm`).
pub fn validate_process(p: &Process) -> Result<()> {
    if p.io_priority().is_some() {
        return Err(unsupported("process.ioPriority"));
    }
    if p.scheduler().is_some() {
        return Err(unsupported("process.scheduler"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(unsupported("process.execCPUAffinity"));
    }
    if p.command_line().is_some() {
        return Err(unsupported("process.commandLine"));
    }
    if p.user()
        .username()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(unsupported("process.user.username"));
    }
    match p.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(cfg_err("process.args", "must name the program to run")),
    }
    if !p.cwd().is_absolute() {
        return Err(cfg_err("process.cwd", "must be an absolute path"));
    }
    let rlimits = p.rlimits().as_deref().unwrap_or_default();
    for (i, r) in rlimits.iter().enumerate() {
        if rlimits[..i].iter().any(|o| o.typ() == r.typ()) {
            let name = serde_json::to_value(r.typ()).unwrap_or_default();
            return Err(cfg_err(
                format!("process.rlimits[{i}].type"),
                format!("duplicate {}", name.as_str().unwrap_or("type")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_resources(res: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}], "resources": res}
        }))
        .unwrap()
    }

    #[test]
    fn unset_resource_values_are_accepted() {
        // What dockerd 20.10 sends for a container without limits.
        let docker = serde_json::json!({
            "memory": {"disableOOMKiller": false},
            "cpu": {"shares": 0},
            "blockIO": {"weight": 0},
            "pids": {"limit": 0}
        });
        assert!(parse(&config_with_resources(docker), "c").is_ok());
    }

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "1.0.1",
            "1.0.2",
            "1.0.2-dev",
            "1.0.0-rc.1",
            "1.1.0",
            "1.1.0-rc.3",
            "1.2.0",
            "1.2.1",
            "1.3.0",
            "1.3.1",
            "1.3.10+build.5",
        ] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for unsupported in ["0.9.0", "1.4.0", "2.0.0", "1.10.0"] {
            let e = check_version(unsupported).unwrap_err().to_string();
            assert!(
                e.contains("unsupported version") && e.contains("1.3.x"),
                "{e}"
            );
        }
        for invalid in [
            "",
            "abc",
            "1",
            "1.0",
            "1.0.0.0",
            "v1.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-rc..1",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-ä",
            " 1.0.0",
            "1.0.x",
        ] {
            let e = check_version(invalid).unwrap_err().to_string();
            assert!(
                e.contains("ociVersion") && e.contains("SemVer"),
                "{invalid:?}: {e}"
            );
        }
    }

    #[test]
    fn version_comparison() {
        assert!(version_at_least("1.3.0", 1, 3));
        assert!(version_at_least("1.3.2-rc.1", 1, 3));
        assert!(!version_at_least("1.2.1", 1, 3));
        assert!(!version_at_least("1.0.2-dev", 1, 3));
        assert!(version_at_least("1.1.0", 1, 1));
    }
}
