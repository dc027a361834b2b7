//! Parsing fstab-style mount options into flags, propagation and data.

use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// A mount entry's options, split the way mount(2) wants them.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Flags for the mount call.
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`mode=755,size=65536k`).
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind`: recursive bind.
    pub recursive: bool,
    /// `tmpcopyup`: fill a new tmpfs with what the directory it covers held.
    pub tmpcopyup: bool,
}

/// Every option `parse` implements (the rest is filesystem data, or refused):
/// what `features` reports as `mountOptions`.
pub const RECOGNIZED: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Parses options; `where_` names the entry for errors (`mounts[3].options`).
pub fn parse(opts: &[String], where_: &str) -> Result<MountOptions> {
    let mut m = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        recursive: false,
        tmpcopyup: false,
    };
    let mut data = Vec::new();
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "bind" => {
                m.bind = true;
                continue;
            }
            "tmpcopyup" => {
                m.tmpcopyup = true;
                continue;
            }
            "rbind" => {
                m.bind = true;
                m.recursive = true;
                continue;
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                m.propagation
                    .push(propagation(p).unwrap_or(MsFlags::empty()));
                continue;
            }
            "idmap" | "ridmap" | "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev"
            | "rnoexec" | "rexec" | "rnoatime" | "ratime" | "rrelatime" | "rnorelatime"
            | "rstrictatime" | "rnostrictatime" | "rnodiratime" | "rdiratime" | "nosymfollow"
            | "rnosymfollow" | "symfollow" | "rsymfollow" => {
                return Err(Error::NotSupported(format!("{where_}: {o}")));
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        m.flags.insert(set);
        m.flags.remove(clear);
    }
    m.data = data.join(",");
    Ok(m)
}

/// The propagation flags for a mode name (also used for rootfsPropagation).
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splits_flags_and_data() {
        let m = parse(
            &s(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            "m",
        )
        .unwrap();
        assert!(m
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME));
        assert_eq!(m.data, "mode=755,size=65536k");
        let m = parse(&s(&["rbind", "ro", "rw", "rprivate"]), "m").unwrap();
        assert!(m.bind && m.recursive && !m.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(m.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(parse(&s(&["rro"]), "m").is_err());
    }
}
