//! Fork-style clone into new namespaces: clone3 where the kernel has it,
//! else the classic clone syscall.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sched::CloneFlags;

use crate::error::{Context, Result};

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Returns 0 in the child and the child's pid in the parent, like fork(2).
///
/// The runtime is single-threaded when it calls this (no thread is ever
/// started before the clone), so the child may run ordinary Rust code.
pub fn fork_into(flags: CloneFlags) -> Result<i32> {
    fork_into_cgroup(flags, None).map(|(pid, _)| pid)
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like `fork_into`, and with `cgroup` (a cgroup2 directory fd) the child
/// starts in that cgroup (CLONE_INTO_CGROUP, Linux 5.7). The flag says
/// whether it did; on older kernels the caller moves the child itself.
pub fn fork_into_cgroup(flags: CloneFlags, cgroup: Option<BorrowedFd>) -> Result<(i32, bool)> {
    if let Some(fd) = cgroup {
        let mut args = CloneArgs {
            flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: as below; `args` outlives the call and names a valid fd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r >= 0 {
            return Ok((r as i32, true));
        }
        // ENOSYS/E2BIG/EINVAL: no clone3 or no CLONE_INTO_CGROUP; any other
        // failure shows again (and is reported) when the parent writes
        // cgroup.procs.
    }
    fork_plain(flags).map(|pid| (pid, false))
}

fn fork_plain(flags: CloneFlags) -> Result<i32> {
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy
    // of the address space and returns here with 0. `args` outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok(r as i32);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err).ctx(|| "clone3 container init");
    }
    let mut legacy = flags;
    let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    if legacy.contains(time) {
        // clone(2) has no room for CLONE_NEWTIME (its bits hold the exit
        // signal): make the parent's children land in a new time namespace.
        nix::sched::unshare(time).ctx(|| "unshare time namespace")?;
        legacy.remove(time);
    }
    // SAFETY: fork-like clone (no CLONE_VM, null stack = share the copy).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (legacy.bits() as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "clone container init");
    }
    Ok(r as i32)
}
