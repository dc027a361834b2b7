//! A new session keyring per container, so that keys of the caller (or of
//! other containers) are not reachable from inside (runc does the same unless
//! `--no-new-keyring`).

use std::ffi::CString;

use crate::error::{Error, Result};

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

/// Joins a fresh anonymous-to-others session keyring named `_ses.<id>`.
pub fn join_new(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|_| Error::msg("keyring name"))?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads the NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels built without keys: there is no keyring to isolate.
        if e.raw_os_error() == Some(libc::ENOSYS) {
            return Ok(());
        }
        return Err(Error::msg(format!("join a new session keyring: {e}")));
    }
    Ok(())
}
