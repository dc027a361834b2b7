//! A trusted handle on procfs for the runtime's writes under /proc (sysctls,
//! LSM attributes, id maps, oom_score_adj, setgroups).
//!
//! A path string like `/proc/self/attr/exec` can be redirected: the container
//! image may put a fake /proc over the real one (CVE-2019-16884), or a racing
//! container with a shared mount may bind another procfs file over the
//! target (CVE-2025-52881). So:
//! - the init uses a private procfs instance of its own (fsopen/fsmount: a
//!   mount attached to no mount tree, so nobody can mount anything on it),
//!   and falls back to the runtime's own /proc, opened before pivot_root;
//! - the root of the handle must be the root of a procfs (statfs magic and
//!   inode number), and every file is opened with openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): no way out of the handle, no
//!   magic link, no crossing onto a mount placed over a procfs file. The
//!   opened file is checked to be on procfs again before it is used.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const PROC_ROOT_INO: u64 = 1;

/// A verified procfs root.
#[derive(Debug)]
pub struct Procfs {
    root: OwnedFd,
}

fn is_procfs(fd: RawFd) -> io::Result<bool> {
    // SAFETY: fstatfs fills the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == PROC_SUPER_MAGIC)
}

fn check_root(fd: &OwnedFd) -> io::Result<()> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(io::Error::from)?;
    if !is_procfs(fd.as_raw_fd())? || st.st_ino != PROC_ROOT_INO {
        return Err(io::Error::other("not the root of a procfs"));
    }
    Ok(())
}

fn sys(r: libc::c_long) -> io::Result<RawFd> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as RawFd)
    }
}

/// A new procfs instance for the caller's pid namespace, mounted nowhere.
fn private_instance() -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
    // SAFETY: fsopen with a NUL-terminated name; returns a new fd or -1.
    let fsfd = sys(unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: the fd is new and owned here.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    sys(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount on the configured context; returns a new fd or -1.
    let m = sys(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fsfd.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        )
    })?;
    // SAFETY: the fd is new and owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(m) })
}

impl Procfs {
    /// A private procfs instance, else the runtime's /proc. Call it before
    /// pivot_root: the fallback must see the host's /proc, not the image's.
    pub fn private() -> Result<Procfs> {
        match private_instance() {
            Ok(fd) => {
                check_root(&fd).map_err(|e| Error::msg(format!("private procfs: {e}")))?;
                Ok(Procfs { root: fd })
            }
            Err(e) => {
                log::debug!("private procfs instance unavailable ({e}); using /proc");
                Procfs::host()
            }
        }
    }

    /// The runtime's own /proc, checked to be the root of a procfs.
    pub fn host() -> Result<Procfs> {
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open("/proc")
            .map_err(|e| Error::msg(format!("open /proc: {e}")))?;
        let fd = OwnedFd::from(f);
        check_root(&fd).map_err(|e| Error::msg(format!("/proc: {e}")))?;
        Ok(Procfs { root: fd })
    }

    /// Opens `path` (relative, e.g. `self/attr/exec` or `sys/net/...`)
    /// beneath the handle, on procfs only.
    pub fn open(&self, path: &str, flags: i32) -> io::Result<File> {
        let c = CString::new(path.trim_start_matches('/'))
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let how = crate::rootfs::safepath::OpenHow {
            flags: (flags | libc::O_CLOEXEC | libc::O_NOCTTY) as u64,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV,
        };
        let fd = crate::rootfs::safepath::openat2(self.root.as_raw_fd(), &c, &how)?;
        if !is_procfs(fd.as_raw_fd())? {
            return Err(io::Error::other("not on procfs"));
        }
        Ok(File::from(fd))
    }

    /// Writes `data` to a procfs file in one write(2), as procfs expects.
    pub fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut f = self.open(path, libc::O_WRONLY)?;
        let n = f.write(data)?;
        if n != data.len() {
            return Err(io::Error::other(format!(
                "short write ({n} of {} bytes)",
                data.len()
            )));
        }
        Ok(())
    }

    /// Reads a procfs file.
    pub fn read(&self, path: &str) -> io::Result<String> {
        let mut s = String::new();
        self.open(path, libc::O_RDONLY)?.read_to_string(&mut s)?;
        Ok(s)
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_out_of_procfs() {
        let p = Procfs::host().unwrap();
        assert!(p.read("self/status").unwrap().contains("Pid:"));
        // A magic link and an escape are both refused.
        assert!(p.open("self/cwd", libc::O_PATH).is_err());
        assert!(p.open("../etc/passwd", libc::O_RDONLY).is_err());
        // Not a procfs root at all.
        let f = File::open("/").unwrap();
        assert!(check_root(&OwnedFd::from(f)).is_err());
    }
}
