//! Linux namespaces: which to create with the clone, which to join by path,
//! and the user namespace's id maps.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace plan of a container.
#[derive(Debug)]
pub struct Plan {
    /// New namespaces to create with the clone itself.
    pub clone_flags: CloneFlags,
    /// New namespaces the init unshares later (cgroup: after it joined its
    /// cgroup, so that the namespace is rooted there).
    pub unshare_flags: CloneFlags,
    /// Namespaces to join, user first.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Whether the container has a user namespace (new or joined).
    pub userns: bool,
    /// Whether a new user namespace is made (maps to write).
    pub new_userns: bool,
    /// Whether the container gets its own new pid namespace.
    pub new_pidns: bool,
}

impl Plan {
    /// Builds the plan from `linux.namespaces`.
    pub fn new(list: &[LinuxNamespace]) -> Result<Plan> {
        let mut p = Plan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            join: Vec::new(),
            userns: false,
            new_userns: false,
            new_pidns: false,
        };
        let joins_user = list
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
        for ns in list {
            let t = ns.typ();
            match ns.path() {
                Some(path) => {
                    if t == LinuxNamespaceType::User {
                        p.join.insert(0, (t, path.clone()));
                    } else {
                        p.join.push((t, path.clone()));
                    }
                }
                None => {
                    match t {
                        LinuxNamespaceType::Cgroup => p.unshare_flags |= flag(t),
                        // Namespaces created after joining a user namespace
                        // must be owned by it, so they wait for the setns.
                        LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                            p.clone_flags |= flag(t)
                        }
                        _ if joins_user => p.unshare_flags |= flag(t),
                        _ => p.clone_flags |= flag(t),
                    }
                    if t == LinuxNamespaceType::User {
                        p.new_userns = true;
                    }
                    if t == LinuxNamespaceType::Pid {
                        p.new_pidns = true;
                    }
                }
            }
            if t == LinuxNamespaceType::User {
                p.userns = true;
            }
        }
        Ok(p)
    }

    /// Opens the namespaces to join (before any of them is entered, so that
    /// every path resolves in the runtime's view).
    pub fn open_joins(&self) -> Result<Vec<(LinuxNamespaceType, File)>> {
        self.join
            .iter()
            .map(|(t, p)| {
                let f = File::open(p)
                    .ctx(|| format!("linux.namespaces: open {} namespace {}", t, p.display()))?;
                Ok((*t, f))
            })
            .collect()
    }
}

/// Enters a namespace; setns checks that the file is of the expected type.
pub fn join(t: LinuxNamespaceType, f: &File) -> Result<()> {
    nix::sched::setns(f.as_fd(), flag(t)).map_err(|e| {
        let why = if e == nix::errno::Errno::EINVAL {
            format!("not a {t} namespace, or it cannot be joined")
        } else {
            e.to_string()
        };
        Error::msg(format!("linux.namespaces: join {t} namespace: {why}"))
    })
}

/// Writes uid_map and gid_map of a child in a new user namespace.
pub fn write_id_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    let fmt = |m: &[LinuxIdMapping]| {
        m.iter()
            .map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size()))
            .collect::<String>()
    };
    let proc = crate::security::procfs::Procfs::host()?;
    proc.write(&format!("{pid}/uid_map"), fmt(uid).as_bytes())
        .ctx(|| "linux.uidMappings: write uid_map")?;
    proc.write(&format!("{pid}/gid_map"), fmt(gid).as_bytes())
        .ctx(|| "linux.gidMappings: write gid_map")?;
    Ok(())
}
