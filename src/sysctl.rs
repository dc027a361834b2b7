//! `linux.sysctl`: only namespaced keys, written from inside the container's
//! namespaces so they reach the container's, never the host's, values.

use std::collections::HashMap;

use nix::sched::CloneFlags;

use crate::error::{Error, Result};
use crate::namespaces::Plan;
use crate::security::procfs::Procfs;

/// Which namespace makes a key container-local, if any.
fn owner(key: &str) -> Option<CloneFlags> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(CloneFlags::CLONE_NEWIPC)
    } else if key.starts_with("net.") {
        Some(CloneFlags::CLONE_NEWNET)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(CloneFlags::CLONE_NEWUTS)
    } else {
        None
    }
}

/// Validates and writes every sysctl, through the init's procfs handle (never
/// through a /proc the image could have replaced or overmounted).
pub fn apply(sysctl: &HashMap<String, String>, plan: &Plan, proc: &Procfs) -> Result<()> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let path_err = |m: String| Error::Config {
            file: "config.json".into(),
            path: format!("linux.sysctl.{key}"),
            msg: m,
        };
        if key.contains("..") || key.contains('\0') {
            return Err(path_err("invalid key".into()));
        }
        let ns = owner(key)
            .ok_or_else(|| path_err("not namespaced: it would change the host".into()))?;
        let own = plan.clone_flags.contains(ns)
            || plan.unshare_flags.contains(ns)
            || plan
                .join
                .iter()
                .any(|(t, _)| crate::namespaces::flag(*t) == ns);
        if !own {
            return Err(path_err(format!(
                "needs the container's own {} namespace",
                match ns {
                    CloneFlags::CLONE_NEWNET => "network",
                    CloneFlags::CLONE_NEWIPC => "ipc",
                    _ => "uts",
                }
            )));
        }
        let file = format!("sys/{}", key.replace('.', "/"));
        proc.write(&file, sysctl[key].as_bytes())
            .map_err(|e| path_err(format!("write /proc/{file}: {e}")))?;
    }
    Ok(())
}
