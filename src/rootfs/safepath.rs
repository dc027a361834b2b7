//! Resolving paths inside the container rootfs into file descriptors.
//!
//! Every lookup goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS),
//! so a symlink planted in the rootfs (or swapped in during setup) resolves
//! inside the rootfs and never onto the host. Later operations use the fd,
//! via `/proc/self/fd/N`, so the path is never looked up twice.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The kernel's `struct open_how` for openat2(2).
#[repr(C)]
pub struct OpenHow {
    /// open(2) flags.
    pub flags: u64,
    /// Mode for O_CREAT.
    pub mode: u64,
    /// RESOLVE_* flags.
    pub resolve: u64,
}

/// openat2(2), retried on EAGAIN/EINTR (a rename raced the lookup).
pub fn openat2(dir: RawFd, path: &std::ffi::CStr, how: &OpenHow) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `how` and `path` are valid for the call; the result is a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just gave us this fd.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// `path` cleaned into a root-relative C string (`.` for the root itself).
fn root_relative(path: &Path) -> io::Result<CString> {
    let rel = clean(path);
    let bytes = if rel.as_os_str().is_empty() {
        b".".to_vec()
    } else {
        rel.as_os_str().as_bytes().to_vec()
    };
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `path` (taken as relative to `root`) with RESOLVE_IN_ROOT.
pub fn open_in_root(root: RawFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = root_relative(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    openat2(root, &c, &how)
}

/// Opens `path` in `root` refusing every symlink on the way: for the
/// destinations that must be ordinary directories (proc, sysfs).
pub fn open_in_root_nofollow(root: RawFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = root_relative(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS,
    };
    openat2(root, &c, &how)
}

/// `process.cwd` (CVE-2024-21626): resolved inside the current root with no
/// magic link (so `/proc/self/fd/N` cannot name a runtime fd), entered with
/// fchdir, and checked to be reachable from the root afterwards.
pub fn chdir_in_root(cwd: &Path) -> crate::error::Result<()> {
    use crate::error::{Context, Error};
    let what = || format!("process.cwd: chdir {}", cwd.display());
    let root = std::fs::File::open("/").ctx(what)?;
    let rel = cwd.as_os_str().as_bytes();
    let rel = match rel.iter().position(|b| *b != b'/') {
        Some(i) => &rel[i..],
        None => b".".as_slice(),
    };
    let c = CString::new(rel).map_err(|_| Error::msg(format!("{}: NUL in path", what())))?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    let fd = openat2(root.as_raw_fd(), &c, &how).ctx(what)?;
    nix::unistd::fchdir(fd.as_raw_fd()).ctx(what)?;
    // getcwd fails, or says "(unreachable)", outside the root.
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::msg(format!(
            "{}: the directory is outside the container root (possible container breakout)",
            what()
        ))),
    }
}

/// Lexically cleans an absolute container path into a relative one
/// (`/a/./b/../c` → `a/c`); `..` can never climb above the root.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// What to create at the end of a path that does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// An empty regular file (a bind mount target for a file).
    File,
}

/// Opens `path` in `root` as O_PATH, creating missing directories (mode 0755)
/// and, for `Kind::File`, the final empty file.
pub fn ensure_in_root(root: RawFd, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let rel = clean(path);
    let comps: Vec<_> = rel.components().collect();
    // The deepest existing prefix, searched from the parent up: usually
    // only the last component is missing (mount points under /dev, /sys),
    // so one open instead of one per component from the top.
    let mut have = comps.len().saturating_sub(1);
    let mut parent = loop {
        if have == 0 {
            break open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY)?;
        }
        let prefix: PathBuf = comps[..have].iter().collect();
        match open_in_root(root, &prefix, libc::O_PATH) {
            Ok(fd) => break fd,
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            Err(_) => have -= 1,
        }
    };
    let mut prefix: PathBuf = comps[..have].iter().collect();
    for (i, c) in comps.iter().enumerate().skip(have) {
        prefix.push(c);
        let last = i + 1 == comps.len();
        let name = CString::new(c.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // The name has no slash and the parent is an fd we resolved in root,
        // so creating it cannot land outside the rootfs.
        let r = if last && kind == Kind::File {
            // SAFETY: valid dirfd and NUL-terminated name.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: closing the fd we just opened.
                unsafe { libc::close(fd) };
                0
            } else {
                -1
            }
        } else {
            // SAFETY: valid dirfd and NUL-terminated name.
            unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) }
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        parent = open_in_root(root, &prefix, libc::O_PATH)?;
    }
    Ok(parent)
}

/// The magic-link path that names an open fd, for mount(2) targets.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Mount attributes for `bind_onto` (the kernel's MOUNT_ATTR_* bits).
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// No setuid.
    pub const NOSUID: u64 = 0x2;
    /// No devices.
    pub const NODEV: u64 = 0x4;
    /// No exec.
    pub const NOEXEC: u64 = 0x8;
    /// Relative atime (the atime mode is a 3-value field).
    pub const RELATIME: u64 = 0x0;
    /// No atime.
    pub const NOATIME: u64 = 0x10;
    /// Strict atime.
    pub const STRICTATIME: u64 = 0x20;
    /// The atime field mask.
    pub const ATIME_MASK: u64 = 0x70;
    /// No directory atime.
    pub const NODIRATIME: u64 = 0x80;
}

/// Bind-mounts the mount tree at `src` (recursively if asked) onto `target`
/// with mount attributes `set`, all by fd (open_tree, mount_setattr,
/// move_mount): no path is looked up again, so nothing can be swapped in
/// between. Returns an fd on the root of the new mount.
pub fn bind_onto(
    src: RawFd,
    target: &OwnedFd,
    recursive: bool,
    set: u64,
    clear: u64,
) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let cvt = |r: libc::c_long| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as RawFd)
        }
    };
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree on our fd with an empty path; a new fd or -1.
    let tree = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            src,
            c"".as_ptr(),
            OPEN_TREE_CLONE
                | rec
                | libc::AT_EMPTY_PATH as libc::c_uint
                | libc::O_CLOEXEC as libc::c_uint,
        )
    })?;
    // SAFETY: the fd is new and owned here.
    let tree = unsafe { OwnedFd::from_raw_fd(tree) };
    if set != 0 || clear != 0 {
        let a = MountAttr {
            attr_set: set,
            // Setting an atime mode needs the field cleared first.
            attr_clr: clear
                | if set & attr::ATIME_MASK != 0 {
                    attr::ATIME_MASK
                } else {
                    0
                },
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: mount_setattr reads `a`, which outlives the call.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH as libc::c_uint | rec,
                &a as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        })?;
    }
    // SAFETY: move_mount between two fds we own, empty paths.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(tree)
}

/// Mounts a read-only copy of the mount tree at `fd` onto `fd` itself.
pub fn bind_readonly_onto(fd: &OwnedFd) -> io::Result<()> {
    bind_onto(fd.as_raw_fd(), fd, true, attr::RDONLY, 0).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(clean(Path::new("/")), PathBuf::from(""));
    }

    #[test]
    fn symlink_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        let root = std::fs::File::open(d.path()).unwrap();
        let fd = ensure_in_root(root.as_raw_fd(), Path::new("/link/x"), Kind::Dir).unwrap();
        drop(fd);
        assert!(d.path().join("etc/x").is_dir());
    }
}
