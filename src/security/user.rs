//! Switching to `process.user`: groups, gid, uid, keeping capabilities
//! across the switch so that the configured sets can be applied after it.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Context, Result};

/// Becomes `user`, keeping permitted capabilities (PR_SET_KEEPCAPS).
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_KEEPCAPS");
    }
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if setgroups_allowed {
        setgroups(&gids).ctx(|| "process.user.additionalGids: setgroups")?;
    } else if !gids.is_empty() {
        return Err(crate::error::Error::msg(
            "process.user.additionalGids: setgroups is denied in this user namespace",
        ));
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).ctx(|| format!("process.user.gid: setgid {}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).ctx(|| format!("process.user.uid: setuid {}", user.uid()))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_KEEPCAPS");
    }
    Ok(())
}
