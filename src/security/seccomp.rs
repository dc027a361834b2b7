//! `linux.seccomp`: the filter is compiled with libseccomp in `create`,
//! before the clone (so a bad profile fails `create` before anything exists),
//! and loaded by the init as late as the config allows.
//!
//! libseccomp only compiles: the runtime exports the BPF program, prepends a
//! small stub of its own and loads it with seccomp(2) itself. Loading it
//! ourselves is what lets us
//! - return ENOSYS for syscalls newer than the profile: the stub compares the
//!   syscall number with the highest number the profile names (per
//!   architecture) and answers ENOSYS above it, so that libc falls back from
//!   a syscall the profile's author never heard of (glibc's clone3 → clone)
//!   instead of failing on the default EPERM. The same approach as runc's
//!   patchbpf, reduced to one comparison per architecture;
//! - pass every filter flag the kernel knows (WAIT_KILLABLE_RECV included,
//!   which libseccomp 2.5 does not), and get the notify fd for NOTIFY.

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpSyscall, ScmpVersion};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, Spec,
};

use crate::error::{Context, Error, Result};
use crate::spec::Unmodelled;

/// The spec's name of the flag `oci-spec` does not model.
pub const FLAG_WAIT_KILLABLE_RECV: &str = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE: u32 = 1 << 5;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// A compiled filter, ready for the init to load.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u32,
    /// Load before the user switch (the filter needs CAP_SYS_ADMIN or
    /// no_new_privs, and the process keeps neither) instead of at execve.
    pub early: bool,
    /// A connection to `listenerPath`, made by `create` (on the host, with
    /// the runtime's credentials) and inherited by the init.
    listener: std::cell::RefCell<Option<UnixStream>>,
    listener_path: Option<PathBuf>,
    metadata: String,
}

fn cfg_err(path: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Config {
        file: "config.json".into(),
        path: path.into(),
        msg: msg.into(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, path: &str) -> Result<ScmpAction> {
    let ret = |e: Option<u32>| -> Result<i32> {
        let v = e.unwrap_or(libc::EPERM as u32);
        if v > u16::MAX as u32 {
            return Err(cfg_err(path, format!("errnoRet {v} is out of range")));
        }
        Ok(v as i32)
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret(errno)?),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret(errno)? as u16),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// libseccomp's architecture and the kernel's AUDIT_ARCH value for it (None
/// for x32, which shares x86_64's and is told apart by a syscall bit).
fn arch(a: Arch) -> (ScmpArch, Option<u32>) {
    let audit = Some(a as u32);
    let s = match a {
        Arch::ScmpArchNative => return (ScmpArch::Native, native_audit_arch()),
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => return (ScmpArch::X32, None),
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    };
    (s, audit)
}

fn native_audit_arch() -> Option<u32> {
    match std::env::consts::ARCH {
        "x86_64" => Some(AUDIT_ARCH_X86_64),
        "x86" => Some(Arch::ScmpArchX86 as u32),
        "aarch64" => Some(Arch::ScmpArchAarch64 as u32),
        "arm" => Some(Arch::ScmpArchArm as u32),
        "riscv64" => Some(Arch::ScmpArchRiscv64 as u32),
        "s390x" => Some(Arch::ScmpArchS390x as u32),
        "powerpc64" if cfg!(target_endian = "little") => Some(Arch::ScmpArchPpc64le as u32),
        "powerpc64" => Some(Arch::ScmpArchPpc64 as u32),
        _ => None,
    }
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // As in runc and libseccomp: `value` is the mask, `valueTwo` the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            value_two.unwrap_or_default(),
        ),
    }
}

fn seccomp_err(what: impl std::fmt::Display, e: libseccomp::error::SeccompError) -> Error {
    Error::msg(format!("linux.seccomp: {what}: {e}"))
}

/// Compiles `linux.seccomp`, if any.
pub fn prepare(spec: &Spec, extra: &Unmodelled) -> Result<Option<Filter>> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let default = action(
        sc.default_action(),
        sc.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    if default == ScmpAction::Notify {
        return Err(cfg_err(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime itself could not run)",
        ));
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| seccomp_err("new filter", e))?;
    let mut archs = vec![(ScmpArch::Native, native_audit_arch())];
    for a in sc.architectures().iter().flatten() {
        let (s, audit) = arch(*a);
        if s != ScmpArch::Native {
            ctx.add_arch(s)
                .map_err(|e| seccomp_err(format!("architecture {a}"), e))?;
        }
        if !archs.iter().any(|(x, _)| *x == s) {
            archs.push((s, audit));
        }
    }
    let mut notify = false;
    // Highest syscall number named by the profile, per architecture.
    let mut highest: Vec<(ScmpArch, Option<u32>, i32)> =
        archs.iter().map(|(s, a)| (*s, *a, -1)).collect();
    for (i, rule) in sc.syscalls().iter().flatten().enumerate() {
        let path = format!("linux.seccomp.syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &format!("{path}.action"))?;
        if act == ScmpAction::Notify {
            if rule.names().iter().any(|n| n == "write") {
                return Err(cfg_err(
                    path,
                    "SCMP_ACT_NOTIFY on write would block the runtime sending the notify fd",
                ));
            }
            notify = true;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                if a.index() > 5 {
                    return Err(cfg_err(
                        format!("{path}.args"),
                        format!("argument index {} (a syscall has 6)", a.index()),
                    ));
                }
                let (o, datum) = op(a.op(), a.value(), a.value_two());
                Ok(ScmpArgCompare::new(a.index() as u32, o, datum))
            })
            .collect::<Result<_>>()?;
        // libseccomp refuses two conditions on one argument in one rule: like
        // runc, such conditions become one rule each (either matches).
        let mut idx: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                // runc's behaviour: a profile may list syscalls of newer
                // kernels or other architectures.
                log::debug!(
                    "linux.seccomp: syscall {name:?} is unknown to libseccomp here; skipped"
                );
                continue;
            };
            for h in highest.iter_mut() {
                if let Ok(n) = ScmpSyscall::from_name_by_arch(name, h.0) {
                    h.2 = h.2.max(i32::from(n));
                }
            }
            // libseccomp refuses a rule that repeats the default action.
            if act == default {
                continue;
            }
            let what = || format!("{path}: rule for {name}");
            if conds.is_empty() {
                ctx.add_rule(act, nr).map_err(|e| seccomp_err(what(), e))?;
            } else if repeated {
                for c in &conds {
                    ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                        .map_err(|e| seccomp_err(what(), e))?;
                }
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
                    .map_err(|e| seccomp_err(what(), e))?;
            }
        }
    }
    let mut prog = Vec::new();
    // A profile that allows by default lets new syscalls through anyway; a
    // tracer is trusted to handle new syscalls itself (runc does the same).
    if !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) {
        for (_, audit, max) in &highest {
            if let (Some(audit), true) = (audit, *max >= 0) {
                enosys_block(&mut prog, *audit, *max as u32);
            }
        }
    }
    prog.extend(export(&ctx)?);
    if prog.len() > u16::MAX as usize {
        return Err(Error::msg("linux.seccomp: the compiled filter is too long"));
    }

    let flags = flags(sc, extra, notify)?;
    if notify && sc.listener_path().is_none() {
        return Err(cfg_err(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listenerPath to send the notify fd to",
        ));
    }
    let process = spec.process().as_ref();
    let nnp = process.and_then(|p| p.no_new_privileges()).unwrap_or(false);
    let keeps_admin = process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.effective().as_ref())
        .is_some_and(|e| e.contains(&oci_spec::runtime::Capability::SysAdmin));
    Ok(Some(Filter {
        prog,
        flags,
        early: !nnp && !keeps_admin,
        listener: std::cell::RefCell::new(None),
        listener_path: if notify {
            sc.listener_path().clone()
        } else {
            None
        },
        metadata: sc.listener_metadata().clone().unwrap_or_default(),
    }))
}

fn flags(sc: &LinuxSeccomp, extra: &Unmodelled, notify: bool) -> Result<u32> {
    // Without a `flags` list runc sets SPEC_ALLOW (no speculative store
    // bypass mitigation, which costs a lot); a list, even empty, is exact.
    let mut f = match sc.flags() {
        None if !extra.seccomp_wait_killable_recv => FLAG_SPEC_ALLOW,
        None => 0,
        Some(list) => list.iter().fold(0, |acc, fl| {
            acc | match fl {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            }
        }),
    };
    if extra.seccomp_wait_killable_recv {
        if !notify {
            return Err(cfg_err(
                "linux.seccomp.flags",
                format!("{FLAG_WAIT_KILLABLE_RECV} needs a SCMP_ACT_NOTIFY rule"),
            ));
        }
        f |= FLAG_WAIT_KILLABLE;
    }
    if notify {
        f |= FLAG_NEW_LISTENER;
        // The kernel takes TSYNC with a listener only with TSYNC_ESRCH.
        if f & FLAG_TSYNC != 0 {
            f |= FLAG_TSYNC_ESRCH;
        }
    }
    Ok(f)
}

/// `if arch == audit && nr > max (and not an x32 call) return ENOSYS`.
fn enosys_block(prog: &mut Vec<libc::sock_filter>, audit: u32, max: u32) {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let x86 = audit == AUDIT_ARCH_X86_64;
    let len: u8 = if x86 { 6 } else { 5 };
    // seccomp_data: nr at offset 0, arch at offset 4.
    prog.push(stmt(ld_abs, 4));
    prog.push(jump(
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        audit,
        0,
        len - 2,
    ));
    prog.push(stmt(ld_abs, 0));
    if x86 {
        prog.push(jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            X32_SYSCALL_BIT,
            2,
            0,
        ));
    }
    prog.push(jump(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, max, 0, 1));
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        RET_ERRNO | libc::ENOSYS as u32,
    ));
}

/// libseccomp's program, as instructions.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    // SAFETY: memfd_create with a NUL-terminated name; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "linux.seccomp: memfd");
    }
    // SAFETY: the fd was just created and is owned here only.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(|e| seccomp_err("export BPF", e))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .ctx(|| "linux.seccomp: read BPF")?;
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    Ok(bytes
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

impl Filter {
    /// Connects to the notify listener, from `create`, before the clone.
    pub fn connect_listener(&mut self) -> Result<()> {
        if let Some(p) = &self.listener_path {
            let s = UnixStream::connect(p)
                .ctx(|| format!("linux.seccomp.listenerPath: connect {}", p.display()))?;
            *self.listener.get_mut() = Some(s);
        }
        Ok(())
    }

    /// Loads the filter into the calling process. With a NOTIFY rule, sends
    /// the notify fd and `state` (the container's state JSON) to the listener.
    pub fn load(&self, state: &serde_json::Value, pid: i32) -> Result<()> {
        let prog = libc::sock_fprog {
            len: self.prog.len() as u16,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at the program, which outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                " (the kernel refused the filter or one of its flags)"
            } else {
                ""
            };
            return Err(Error::msg(format!("linux.seccomp: load filter{hint}: {e}")));
        }
        // Taken, so that the connection is closed once the fd is sent.
        let Some(sock) = self.listener.borrow_mut().take() else {
            return Ok(());
        };
        // SAFETY: with NEW_LISTENER the kernel returns a new (close-on-exec) fd.
        let nfd = unsafe { OwnedFd::from_raw_fd(r as i32) };
        let msg = serde_json::json!({
            "ociVersion": state["ociVersion"],
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": self.metadata,
            "state": state,
        })
        .to_string();
        let iov = [std::io::IoSlice::new(msg.as_bytes())];
        let fds = [nfd.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .ctx(|| "linux.seccomp.listenerPath: send the notify fd")?;
        Ok(())
    }
}

/// The libseccomp version, for error messages and `features`.
pub fn libseccomp_version() -> String {
    ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(seccomp: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "noNewPrivileges": true},
            "linux": {"namespaces": [{"type": "mount"}]}
        });
        v["linux"]["seccomp"] = seccomp;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn enosys_stub_only_for_denying_defaults() {
        let allow = spec_with(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
        }));
        let f = prepare(&allow, &Unmodelled::default()).unwrap().unwrap();
        assert!(!f
            .prog
            .iter()
            .any(|i| i.k == RET_ERRNO | libc::ENOSYS as u32));
        let deny = spec_with(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getcwd", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let f = prepare(&deny, &Unmodelled::default()).unwrap().unwrap();
        assert!(f
            .prog
            .iter()
            .any(|i| i.k == RET_ERRNO | libc::ENOSYS as u32));
        assert_eq!(f.flags, FLAG_SPEC_ALLOW);
        assert!(!f.early);
    }

    #[test]
    fn notify_needs_listener_and_not_default() {
        let s = spec_with(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(prepare(&s, &Unmodelled::default()).is_err());
        let s = spec_with(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(prepare(&s, &Unmodelled::default()).is_err());
    }
}
