//! Containers without a mount namespace of their own.
//!
//! config-linux.md: a namespace type missing from `linux.namespaces` is
//! inherited from the runtime. For the mount namespace that means the
//! container's mounts are made in the runtime's (the host's) namespace: the
//! init binds the rootfs onto itself and mounts everything beneath that bind,
//! then chroots into it. Detaching the bind at delete (or after a failed
//! create) takes every container mount with it. Which bind is ours is told by
//! the mount id: the one at the rootfs path before create is the floor.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{umount2, MntFlags};

use crate::error::{Error, Result};

/// The id of the mount that `path` is on (statx STATX_MNT_ID, Linux 5.8+).
pub fn mount_id(path: &Path) -> Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::msg(format!("{}: contains NUL", path.display())))?;
    // SAFETY: a zeroed statx is a valid out-buffer; statx fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and out-pointer for the call.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut stx) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::msg(format!("statx {}: {e}", path.display())));
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Error::msg(format!(
            "statx {}: the kernel reports no mount id",
            path.display()
        )));
    }
    Ok(stx.stx_mnt_id)
}

/// Detaches whatever the container mounted on its rootfs path, down to the
/// mount that was there before (`floor`).
pub fn detach_rootfs(rootfs: &Path, floor: u64) {
    // The container itself may have stacked mounts on its root: a few rounds.
    for _ in 0..16 {
        match mount_id(rootfs) {
            Ok(id) if id != floor => {
                if let Err(e) = umount2(rootfs, MntFlags::MNT_DETACH) {
                    log::warn!("detach rootfs {}: {e}", rootfs.display());
                    return;
                }
            }
            _ => return,
        }
    }
}
