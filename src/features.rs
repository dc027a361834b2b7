//! `features`: the OCI Features structure (runtime-spec features.md,
//! features-linux.md) that engines read to learn what they may send.
//!
//! The spec wants it decided by what the runtime implements, not by the host
//! it runs on, so it is built from the same tables the config code uses (mount
//! options, namespace types, capability names, the seccomp mappings). What
//! is not implemented is reported as such, never left to guess: containerd 2 sends idmapped mounts
//! only if `linux.mountExtensions.idmap.enabled`, and recursive read-only
//! mounts only if `rro` is listed.

use std::collections::HashMap;

use oci_spec::runtime::{
    ApparmorBuilder, Arch, CgroupBuilder, Features, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MemoryPolicyBuilder,
    MountExtensionsBuilder, NetDevicesBuilder, SeccompBuilder, SelinuxBuilder,
};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::rootfs::options;

/// The oldest `ociVersion` a config may declare.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The runtime-spec version this runtime implements (configs up to 1.3.x
/// are accepted, see `spec::check_version`).
pub const OCI_VERSION_MAX: &str = "1.3.0";

/// The hook names `config.json` may use; all of them are run.
const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Every namespace type the runtime creates or joins.
const NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
];

/// Every seccomp action security/seccomp.rs maps to libseccomp.
const SECCOMP_ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

/// Every argument comparison security/seccomp.rs implements.
const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The architectures security/seccomp.rs maps (SCMP_ARCH_NATIVE is taken
/// too but is not a name the features schema allows).
const SECCOMP_ARCHS: [Arch; 17] = [
    Arch::ScmpArchAarch64,
    Arch::ScmpArchArm,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchX32,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
];

/// The filter flags config.json may name, with the kernel flag bits that
/// probe them (WAIT_KILLABLE_RECV is only valid with a listener).
const SECCOMP_FLAGS: [(&str, libc::c_ulong); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ),
];

/// The known flags this kernel accepts (the spec allows this subset to
/// depend on the host). The kernel checks the flags before it reads the
/// program, so a NULL program answers EFAULT for a known flag and EINVAL
/// for an unknown one, and installs nothing.
fn supported_seccomp_flags() -> Vec<String> {
    SECCOMP_FLAGS
        .iter()
        .filter(|(_, bits)| {
            // SAFETY: seccomp(2) with a NULL program pointer fails before it
            // touches memory or changes the process.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    *bits,
                    std::ptr::null::<libc::c_void>(),
                )
            };
            r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The Features structure of this build.
pub fn features() -> Result<Features> {
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort_by_key(|name| {
        name.parse::<caps::Capability>()
            .map(|c| c.index())
            .unwrap_or(u8::MAX)
    });
    let err = |e: oci_spec::OciSpecError| Error::msg(format!("features: {e}"));
    let linux = LinuxFeatureBuilder::default()
        .namespaces(NAMESPACES.to_vec())
        .capabilities(caps)
        .cgroup(
            // cgroupfs on v1 and v2 hierarchies (rdma.max included); the
            // systemd driver (system instance, cgroup v2) where systemd runs.
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(crate::cgroups::systemd::booted() && crate::cgroups::is_unified())
                .systemd_user(false)
                .rdma(true)
                .build()
                .map_err(err)?,
        )
        .seccomp(
            SeccompBuilder::default()
                .enabled(true)
                .actions(SECCOMP_ACTIONS.to_vec())
                .operators(SECCOMP_OPERATORS.map(String::from).to_vec())
                .archs(SECCOMP_ARCHS.to_vec())
                .known_flags(SECCOMP_FLAGS.map(|(n, _)| n.to_string()).to_vec())
                .supported_flags(supported_seccomp_flags())
                .build()
                .map_err(err)?,
        )
        // Labels are applied where the LSM is active (security/lsm.rs).
        .apparmor(
            ApparmorBuilder::default()
                .enabled(true)
                .build()
                .map_err(err)?,
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(true)
                .build()
                .map_err(err)?,
        )
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(false)
                .build()
                .map_err(err)?,
        )
        .memory_policy(
            MemoryPolicyBuilder::default()
                .modes(Vec::<String>::new())
                .flags(Vec::<String>::new())
                .build()
                .map_err(err)?,
        )
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(
                    IDMapBuilder::default()
                        .enabled(false)
                        .build()
                        .map_err(err)?,
                )
                .build()
                .map_err(err)?,
        )
        .net_devices(
            NetDevicesBuilder::default()
                .enabled(false)
                .build()
                .map_err(err)?,
        )
        .build()
        .map_err(err)?;
    FeaturesBuilder::default()
        .oci_version_min(OCI_VERSION_MIN)
        .oci_version_max(OCI_VERSION_MAX)
        .hooks(HOOKS.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .mount_options(
            options::RECOGNIZED
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>(),
        )
        .linux(linux)
        .annotations(HashMap::from([
            (
                "io.mydocker.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                "io.github.seccomp.libseccomp.version".to_string(),
                crate::security::seccomp::libseccomp_version(),
            ),
        ]))
        // No annotation changes what the runtime does.
        .potentially_unsafe_config_annotations(Vec::<String>::new())
        .build()
        .map_err(err)
}

/// The Features structure as JSON, without the `null`s of unset optional
/// fields (the schema types them as arrays and objects).
pub fn to_json(f: &Features) -> Result<Value> {
    let mut v = serde_json::to_value(f).map_err(|e| Error::msg(format!("features: {e}")))?;
    strip_nulls(&mut v);
    Ok(v)
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_accepted_by_the_config_loader() {
        for v in [OCI_VERSION_MIN, OCI_VERSION_MAX] {
            assert!(crate::spec::version_at_least(v, 1, 0), "{v}");
        }
        assert!(crate::spec::version_at_least(OCI_VERSION_MAX, 1, 3));
    }

    #[test]
    fn every_listed_mount_option_parses() {
        for o in options::RECOGNIZED {
            let m = options::parse(&[o.to_string()], "m").unwrap_or_else(|e| panic!("{o}: {e}"));
            assert!(m.data.is_empty(), "{o} would be passed to the filesystem");
        }
    }

    #[test]
    fn json_has_no_nulls_and_the_required_keys() {
        let v = to_json(&features().unwrap()).unwrap();
        assert_eq!(v["ociVersionMin"], OCI_VERSION_MIN);
        assert_eq!(v["ociVersionMax"], OCI_VERSION_MAX);
        assert!(!v.to_string().contains("null"), "{v}");
        assert_eq!(v["linux"]["seccomp"]["enabled"], true);
        assert_eq!(
            v["linux"]["seccomp"]["actions"].as_array().unwrap().len(),
            9
        );
        assert!(!v.to_string().contains("SCMP_ARCH_NATIVE"));
        assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        let caps = v["linux"]["capabilities"].as_array().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        assert!(caps.iter().all(|c| c.as_str().unwrap().starts_with("CAP_")));
        let opts = v["mountOptions"].as_array().unwrap();
        assert!(!opts.iter().any(|o| o == "rro" || o == "idmap"), "{opts:?}");
    }
}
