//! CVE-2019-5736: the container must never be able to write to the runtime's
//! binary through `/proc/<pid>/exe`.
//!
//! The init is a clone of `mydocker create`, so until it execs the user
//! process its `/proc/self/exe` is the runtime binary; the user process may
//! even exec `/proc/self/exe` (or a script whose interpreter it is) and so
//! run the runtime binary inside the container with the image's dynamic
//! loader. A bind mount made later in the init's mount namespace would not
//! help: the exe link names the mount the binary was executed from.
//!
//! So `create`/`run` (and `exec`) first make sure that the binary they run
//! from cannot be opened for writing by any path: if its mount is not already
//! read-only, they re-execute themselves from a read-only, detached bind
//! mount of the binary (open_tree + mount_setattr: no copy, no mount visible
//! anywhere), or, where the mount API is missing, from a sealed memfd copy.
//! The re-exec keeps the pid and every inherited fd.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use crate::error::{Error, Result};

/// Set in the environment of the re-executed runtime, to stop a loop if the
/// result is somehow still not protected.
const MARK: &str = "_MYDOCKER_EXESEAL";

fn cvt(r: libc::c_long) -> io::Result<RawFd> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as RawFd)
    }
}

/// Whether the running binary is on a read-only mount or a sealed memfd.
pub fn is_protected() -> io::Result<bool> {
    let exe = File::open("/proc/self/exe")?;
    let st = nix::sys::statvfs::fstatvfs(&exe).map_err(io::Error::from)?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    // SAFETY: F_GET_SEALS only reads the fd's seals.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(seals >= 0 && seals & libc::F_SEAL_WRITE != 0)
}

/// Re-executes the runtime from a protected copy of its binary unless it
/// already runs from one. Call it first thing in commands that start
/// container processes.
pub fn ensure() -> Result<()> {
    let protected = is_protected().map_err(|e| Error::msg(format!("check /proc/self/exe: {e}")))?;
    let marked = std::env::var_os(MARK).is_some();
    if protected {
        if marked {
            // Single-threaded here: nothing reads the environment concurrently.
            std::env::remove_var(MARK);
        }
        return Ok(());
    }
    if marked {
        return Err(Error::msg(
            "cannot protect the runtime binary (CVE-2019-5736): re-executed, still writable",
        ));
    }
    let fd = match read_only_bind() {
        Ok(fd) => {
            log::debug!("exeseal: re-executing from a read-only bind of the binary");
            fd
        }
        Err(e) => {
            log::debug!("exeseal: read-only bind failed ({e}); using a sealed memfd copy");
            sealed_copy().map_err(|e| {
                Error::msg(format!(
                    "cannot protect the runtime binary (CVE-2019-5736): {e}"
                ))
            })?
        }
    };
    let e = reexec(&fd);
    Err(Error::msg(format!(
        "cannot protect the runtime binary (CVE-2019-5736): re-exec: {e}"
    )))
}

/// A detached bind mount of the binary, made read-only.
fn read_only_bind() -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    // SAFETY: open_tree with a NUL-terminated path; returns a new fd or -1.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })?;
    // SAFETY: the fd is new and owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr`, which outlives the call.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(fd)
}

/// A memfd copy of the binary, sealed against any change.
fn sealed_copy() -> io::Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name; a new fd or -1.
    let mut fd = unsafe { libc::memfd_create(c"mydocker".as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // Kernels before 6.3 do not know MFD_EXEC (and need not be told).
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c"mydocker".as_ptr(), flags) };
    }
    let fd = cvt(fd as libc::c_long)?;
    // SAFETY: the fd is new and owned here.
    let mut mem = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    io::copy(&mut File::open("/proc/self/exe")?, &mut mem)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(mem))
}

/// execveat(fd, "", argv, envp + MARK, AT_EMPTY_PATH); returns only on error.
fn reexec(fd: &OwnedFd) -> io::Error {
    let cstr = |v: Vec<u8>| CString::new(v).unwrap_or_default();
    let argv: Vec<CString> = std::env::args_os().map(|a| cstr(a.into_vec())).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstr(kv.into_vec())
        })
        .collect();
    envp.push(cstr(format!("{MARK}=1").into_bytes()));
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envpp: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envpp.push(std::ptr::null());
    // SAFETY: argv/envp are NUL-terminated arrays of C strings that outlive
    // the call; on success execveat does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argp.as_ptr(),
            envpp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}
