//! cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program compiled
//! from the emulated rule list and attached to the container's cgroup.
//!
//! Hand-assembled, with the bpf(2) syscall called through libc: the program
//! is a straight run of compare-and-return blocks (5 to 9 instructions per
//! rule), which is what runc's Go code emits too. The Rust eBPF crates
//! (aya, libbpf-rs) need either a BPF compiler toolchain at build time or
//! the libbpf C library, and youki's filter pulls in libbpf-sys and rbpf:
//! far more weight than 30 lines of instruction encoding.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{Emulator, Kind, Rule, ACC_ALL};
use crate::error::{Context, Error, Result};

// bpf(2) commands, program and attach types (uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
// Device types in the context (BPF_DEVCG_DEV_*).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Opcodes.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// One `struct bpf_insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high nibble
    off: i16,
    imm: i32,
}

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// Compiles the rules. The context (`struct bpf_cgroup_dev_ctx`) is
/// `u32 access_type` (type in the low 16 bits, access in the high 16),
/// `u32 major`, `u32 minor`; R0 = 1 allows, 0 denies.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let emu = Emulator::from_rules(rules);
    // r2 = type, r3 = access, r4 = major, r5 = minor
    let mut p = vec![
        ins(LDX_W, 2, 1, 0, 0),
        ins(AND32_K, 2, 0, 0, 0xffff),
        ins(LDX_W, 3, 1, 0, 0),
        ins(RSH32_K, 3, 0, 0, 16),
        ins(LDX_W, 4, 1, 4, 0),
        ins(LDX_W, 5, 1, 8, 0),
    ];
    for ex in &emu.exceptions {
        let mut block = Vec::new();
        // Every jump in a block goes to the next block: its offset is the
        // number of instructions after the jump, fixed up below.
        let ty = if ex.kind == Kind::Block {
            DEV_BLOCK
        } else {
            DEV_CHAR
        };
        block.push(ins(JNE_K, 2, 0, 0, ty));
        if ex.access != ACC_ALL {
            block.push(ins(MOV32_X, 1, 3, 0, 0));
            block.push(ins(AND32_K, 1, 0, 0, i32::from(ex.access)));
            if ex.allow {
                // An allow exception must cover every requested bit.
                block.push(ins(JNE_X, 1, 3, 0, 0));
            } else {
                // A deny exception matches if any requested bit is denied.
                block.push(ins(JEQ_K, 1, 0, 0, 0));
            }
        }
        if let Some(m) = ex.major {
            block.push(ins(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = ex.minor {
            block.push(ins(JNE_K, 5, 0, 0, m as i32));
        }
        block.push(ins(MOV32_K, 0, 0, 0, i32::from(ex.allow)));
        block.push(ins(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if matches!(insn.code, JNE_K | JNE_X | JEQ_K) {
                insn.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(MOV32_K, 0, 0, 0, i32::from(emu.default_allow)));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: *mut libc::c_void, size: usize) -> std::io::Result<i64> {
    loop {
        // SAFETY: `attr` points to a live, initialised bpf_attr prefix of
        // `size` bytes whose pointers (if any) reference live buffers.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size) };
        if r >= 0 {
            return Ok(r);
        }
        let e = std::io::Error::last_os_error();
        // The verifier can be interrupted by a signal.
        if e.raw_os_error() == Some(libc::EAGAIN) && cmd == BPF_PROG_LOAD {
            continue;
        }
        return Err(e);
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: bpf(2) just returned this new fd; we are its only owner.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let size = std::mem::size_of::<ProgLoad>();
    let first = bpf(BPF_PROG_LOAD, (&raw mut attr).cast(), size);
    let err = match first {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    if err.raw_os_error() == Some(libc::EPERM) {
        // Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK: raise it
        // for this one call only, so the container never inherits it.
        if let Some(fd) = with_memlock_raised(|| bpf(BPF_PROG_LOAD, (&raw mut attr).cast(), size)) {
            return Ok(owned(fd));
        }
    }
    // Load again with the verifier log, to say why.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    if let Ok(fd) = bpf(BPF_PROG_LOAD, (&raw mut attr).cast(), size) {
        return Ok(owned(fd));
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&log[..end]);
    let text = text.trim().lines().last().unwrap_or("").to_string();
    Err(Error::msg(format!(
        "linux.resources.devices: load the cgroup v2 device filter: {err}{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(" ({text})")
        }
    )))
}

fn with_memlock_raised(f: impl FnOnce() -> std::io::Result<i64>) -> Option<i64> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers to rlimit structs.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut old) != 0 {
            return None;
        }
        let inf = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) != 0 {
            return None;
        }
    }
    let r = f().ok();
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &old) };
    r
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

// The full query layout: kernels 6.17+ write `revision` whatever size we pass.
#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The device programs attached to the cgroup (as fds), to be replaced.
fn attached(cg: &OwnedFd) -> Result<Vec<OwnedFd>> {
    let mut ids = vec![0u32; 64];
    let mut q = Query {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(
        BPF_PROG_QUERY,
        (&raw mut q).cast(),
        std::mem::size_of::<Query>(),
    )
    .ctx(|| "linux.resources.devices: query the cgroup's device programs")?;
    let mut out = Vec::new();
    for &id in &ids[..(q.prog_cnt as usize).min(ids.len())] {
        let mut a = [id, 0, 0];
        match bpf(BPF_PROG_GET_FD_BY_ID, a.as_mut_ptr().cast(), 12) {
            Ok(fd) => out.push(owned(fd)),
            // A program we may not touch (an LSM says no) only adds
            // restrictions: leave it.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(e).ctx(|| "linux.resources.devices: open a device program"),
        }
    }
    Ok(out)
}

/// Loads the program for `rules` and attaches it to the cgroup `dir`, then
/// detaches the device programs that were there before (an update): with
/// both attached for a moment the container only ever has fewer rights.
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = program(rules);
    let fd = load(&prog)?;
    let cg: OwnedFd = std::fs::File::open(dir)
        .ctx(|| format!("open {}", dir.display()))?
        .into();
    let old = attached(&cg)?;
    let mut a = Attach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(
        BPF_PROG_ATTACH,
        (&raw mut a).cast(),
        std::mem::size_of::<Attach>(),
    )
    .ctx(|| "linux.resources.devices: attach the cgroup v2 device filter")?;
    for o in old {
        let mut d = Attach {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: o.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, (&raw mut d).cast(), 12)
            .ctx(|| "linux.resources.devices: detach the previous device filter")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices;

    /// Runs the program on one access, as the kernel would.
    fn eval(p: &[Insn], ty: u32, access: u32, major: u32, minor: u32) -> u32 {
        let ctx = [ty | (access << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV32_X => r[dst] = r[src] as u32 as u64,
                MOV32_K => r[dst] = i.imm as u32 as u64,
                JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JEQ_K | JNE_K | JNE_X => {}
                EXIT => return r[0] as u32,
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    const R: u32 = devices::ACC_READ as u32;
    const W: u32 = devices::ACC_WRITE as u32;
    const M: u32 = devices::ACC_MKNOD as u32;

    #[test]
    fn default_list() {
        let p = program(&devices::rules(&[], "x").unwrap());
        let c = DEV_CHAR as u32;
        assert_eq!(eval(&p, c, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(eval(&p, c, R | W, 136, 7), 1, "pts");
        assert_eq!(eval(&p, c, W, 1, 11), 0, "kmsg");
        assert_eq!(eval(&p, c, M, 1, 11), 1, "mknod any");
        assert_eq!(eval(&p, DEV_BLOCK as u32, R, 8, 0), 0, "disk");
        assert_eq!(eval(&p, DEV_BLOCK as u32, M, 8, 0), 1, "mknod disk");
    }

    #[test]
    fn explicit_rules() {
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"},
                {"allow": true, "type": "b", "major": 8, "access": "r"}]"#,
        )
        .unwrap();
        let p = program(&devices::rules(&spec, "x").unwrap());
        let c = DEV_CHAR as u32;
        assert_eq!(eval(&p, c, W, 1, 11), 1);
        assert_eq!(eval(&p, c, R | W, 1, 11), 0, "read not allowed");
        assert_eq!(eval(&p, DEV_BLOCK as u32, R, 8, 3), 1);
        assert_eq!(eval(&p, DEV_BLOCK as u32, W, 8, 3), 0);
        let all: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rwm"}]"#).unwrap();
        let p = program(&devices::rules(&all, "x").unwrap());
        assert_eq!(eval(&p, DEV_BLOCK as u32, R | W, 8, 3), 1, "privileged");
        let deny: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        )
        .unwrap();
        // the default allow-list re-allows 1:3 after the deny rule
        let p = program(&devices::rules(&deny, "x").unwrap());
        assert_eq!(eval(&p, c, W, 1, 3), 1);
        let mut rules = devices::rules(&deny, "x").unwrap();
        rules.truncate(3);
        let p = program(&rules);
        assert_eq!(eval(&p, c, R | W, 1, 3), 0, "partial deny");
        assert_eq!(eval(&p, c, R, 1, 3), 1);
        assert_eq!(eval(&p, c, R | W, 1, 5), 1);
    }
}
