//! Regression tests for known container-runtime escapes: each test builds the
//! attack (a crafted bundle, a hostile rootfs, a second container) and shows
//! that it fails. docs/security.md maps each CVE class to its test here.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A writable busybox rootfs of the test's own in `<tmp>/rootfs`, so that a
/// test can plant symlinks, fake files and device paths in it.
fn crafted_rootfs(t: &Ctx) -> PathBuf {
    let r = t.tmp.path().join("rootfs");
    for d in [
        "bin", "proc", "sys", "dev", "tmp", "etc", "out", "root", "mnt",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::set_permissions(&r, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(applet));
        }
    }
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\ntester:x:1000:\n").unwrap();
    r
}

/// The default config with the crafted rootfs, writable, and /out bound.
fn crafted_spec(t: &Ctx, rootfs: &Path, script: &str) -> Value {
    let mut cfg = t.spec_sh(script);
    cfg["root"] = json!({"path": rootfs.to_str().unwrap(), "readonly": false});
    cfg["process"]["env"] = json!([PATH_ENV, t.marker()]);
    t.with_out(&mut cfg);
    cfg
}

fn mountinfo_mentions(needle: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(needle)
}

/// Runs `bin` (a copy of the runtime) with `--root` of the test.
fn run_bin(t: &Ctx, bin: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(&t.root).args(args);
    let (mut child, o, e, desc) = spawn_logged(&t.logs, &mut cmd);
    let status = wait_child(&mut child, CMD_TIMEOUT);
    let out = Out {
        cmd: desc,
        code: status.map_or(-1, exit_code),
        stdout: fs::read_to_string(&o).unwrap_or_default(),
        stderr: fs::read_to_string(&e).unwrap_or_default(),
    };
    assert!(status.is_some(), "command did not finish\n{out}");
    out
}

/// A private copy of the runtime binary: nobody else executes it, so a write
/// to it can only fail because of the defence, not because it is busy.
fn runtime_copy(t: &Ctx) -> PathBuf {
    let p = t.tmp.path().join("mydocker-copy");
    fs::copy(bin(), &p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

// ---------------------------------------------------------------------------
// tiny static x86_64 programs (no compiler needed)
// ---------------------------------------------------------------------------

const BASE: u64 = 0x40_0000;
const HDRS: usize = 64 + 56;

/// An ET_EXEC ELF with one RX segment holding `code` then `data`; `code` is
/// built by `f(data_addr)`.
fn elf(build: impl Fn(u64) -> Vec<u8>, data: &[u8]) -> Vec<u8> {
    let code_len = build(0).len();
    let data_addr = BASE + (HDRS + code_len) as u64;
    let code = build(data_addr);
    assert_eq!(code.len(), code_len);
    let total = (HDRS + code.len() + data.len()) as u64;
    let mut v = Vec::new();
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v.extend_from_slice(&0x3eu16.to_le_bytes()); // x86_64
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&(BASE + HDRS as u64).to_le_bytes()); // entry
    v.extend_from_slice(&64u64.to_le_bytes()); // phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // shoff
    v.extend_from_slice(&0u32.to_le_bytes());
    for x in [64u16, 56, 1, 64, 0, 0] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    v.extend_from_slice(&5u32.to_le_bytes()); // R+X
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&BASE.to_le_bytes());
    v.extend_from_slice(&BASE.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&0x1000u64.to_le_bytes());
    v.extend_from_slice(&code);
    v.extend_from_slice(data);
    v
}

fn mov_eax(v: &mut Vec<u8>, n: u32) {
    v.push(0xb8);
    v.extend_from_slice(&n.to_le_bytes());
}

fn mov_edi(v: &mut Vec<u8>, n: u32) {
    v.push(0xbf);
    v.extend_from_slice(&n.to_le_bytes());
}

fn mov_rsi(v: &mut Vec<u8>, n: u64) {
    v.extend_from_slice(&[0x48, 0xbe]);
    v.extend_from_slice(&n.to_le_bytes());
}

fn mov_rdi(v: &mut Vec<u8>, n: u64) {
    v.extend_from_slice(&[0x48, 0xbf]);
    v.extend_from_slice(&n.to_le_bytes());
}

const SYSCALL: [u8; 2] = [0x0f, 0x05];
const ZERO_ESI_EDX: [u8; 4] = [0x31, 0xf6, 0x31, 0xd2];

/// Calls syscall `nr` with zero arguments and exits with the errno it got
/// (0 on success).
fn syscall_prober(nr: u32) -> Vec<u8> {
    elf(
        |_| {
            let mut c = Vec::new();
            mov_eax(&mut c, nr);
            c.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
            c.extend_from_slice(&ZERO_ESI_EDX);
            c.extend_from_slice(&SYSCALL);
            c.extend_from_slice(&[0xf7, 0xd8, 0x89, 0xc7]); // neg eax; mov edi, eax
            mov_eax(&mut c, 60);
            c.extend_from_slice(&SYSCALL);
            c
        },
        &[],
    )
}

/// Opens /proc/self/exe read-only (fd 3) and execs `/bin/busybox sh
/// /attack.sh`. Used as the ELF interpreter of the runtime binary, it runs
/// the attack inside a process whose /proc/self/exe is the runtime.
fn exe_grabber() -> Vec<u8> {
    let mut data = Vec::new();
    let path_off = data.len();
    data.extend_from_slice(b"/proc/self/exe\0");
    let bb_off = data.len();
    data.extend_from_slice(b"/bin/busybox\0");
    let sh_off = data.len();
    data.extend_from_slice(b"sh\0");
    let script_off = data.len();
    data.extend_from_slice(b"/attack.sh\0");
    while data.len() % 8 != 0 {
        data.push(0);
    }
    let argv_off = data.len();
    data.extend_from_slice(&[0u8; 24]);
    let code = |d: u64| {
        let mut c = Vec::new();
        mov_eax(&mut c, 2); // open
        mov_rdi(&mut c, d + path_off as u64);
        c.extend_from_slice(&ZERO_ESI_EDX);
        c.extend_from_slice(&SYSCALL);
        mov_eax(&mut c, 59); // execve
        mov_rdi(&mut c, d + bb_off as u64);
        mov_rsi(&mut c, d + argv_off as u64);
        c.extend_from_slice(&[0x31, 0xd2]); // xor edx, edx
        c.extend_from_slice(&SYSCALL);
        mov_eax(&mut c, 60);
        mov_edi(&mut c, 100);
        c.extend_from_slice(&SYSCALL);
        c
    };
    // The argv array holds absolute addresses: fill it in once they are known.
    let d = BASE + (HDRS + code(0).len()) as u64;
    data[argv_off..argv_off + 8].copy_from_slice(&(d + sh_off as u64).to_le_bytes());
    data[argv_off + 8..argv_off + 16].copy_from_slice(&(d + script_off as u64).to_le_bytes());
    elf(code, &data)
}

/// The PT_INTERP path of an ELF file.
fn elf_interp(path: &Path) -> Option<String> {
    let b = fs::read(path).ok()?;
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum).find_map(|i| {
        let ph = phoff + i * phentsize;
        (u32::from_le_bytes(b[ph..ph + 4].try_into().unwrap()) == 3).then(|| {
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8_lossy(&b[off..off + size])
                .trim_end_matches('\0')
                .to_string()
        })
    })
}

fn x86_64() -> bool {
    if cfg!(target_arch = "x86_64") {
        return true;
    }
    eprintln!("skipped: the attack programs are x86_64 machine code");
    false
}

fn install_exec(rootfs: &Path, rel: &str, bytes: &[u8]) {
    let p = rootfs.join(rel.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe
// ---------------------------------------------------------------------------

/// Writes to fd 3 (the runtime binary), retrying while it is busy, and
/// records the outcome in /out/result.
const WRITE_FD3: &str = r#"
i=0
while :; do
  if { echo pwned > /proc/self/fd/3; } 2>/out/werr; then echo WROTE > /out/result; break; fi
  if grep -q busy /out/werr && [ $i -lt 1000 ]; then i=$((i+1)); usleep 10000; continue; fi
  cat /out/werr > /out/result; break
done
"#;

#[test]
fn cve_2019_5736_container_execs_proc_self_exe() {
    if !x86_64() {
        return;
    }
    let t = Ctx::new("cve5736exe");
    let copy = runtime_copy(&t);
    let Some(interp) = elf_interp(&copy) else {
        eprintln!("skipped: the runtime binary is static (no loader to hijack)");
        return;
    };
    let before = fs::read(&copy).unwrap();
    let r = crafted_rootfs(&t);
    // The image's "dynamic loader" is the attack: whatever runs the runtime
    // binary in the container runs it first, as that process.
    install_exec(&r, &interp, &exe_grabber());
    fs::write(r.join("attack.sh"), WRITE_FD3).unwrap();
    let mut cfg = crafted_spec(&t, &r, "");
    cfg["process"]["args"] = json!(["/proc/self/exe"]);
    t.write_config(&cfg);
    run_bin(&t, &copy, &["create", "--bundle", t.bundle_str(), &t.id]).ok();
    run_bin(&t, &copy, &["start", &t.id]).ok();
    let result = t.wait_out_file("result");
    assert!(
        result.contains("Read-only file system"),
        "the container could write to the runtime binary: {result:?}"
    );
    assert!(
        fs::read(&copy).unwrap() == before,
        "the runtime binary was modified"
    );
}

#[test]
fn cve_2019_5736_other_container_process_cannot_write_init_exe() {
    let t = Ctx::new("cve5736pidns");
    let copy = runtime_copy(&t);
    let before = fs::read(&copy).unwrap();
    // Container A: created, so its init is still the runtime (waiting for start).
    let a_root = crafted_rootfs(&t);
    t.write_config(&crafted_spec(&t, &a_root, "true"));
    run_bin(&t, &copy, &["create", "--bundle", t.bundle_str(), &t.id]).ok();
    let a_pid = state_pid(&t.state());
    // Container B joins A's pid namespace, where A's init is pid 1, and tries
    // to open its exe for writing: without CAP_SYS_PTRACE (denied by the
    // ptrace check) and with it (denied by the read-only binary).
    for (name, ptrace) in [("noptrace", false), ("ptrace", true)] {
        let b_bundle = t.tmp.path().join(format!("bundle-{name}"));
        fs::create_dir_all(&b_bundle).unwrap();
        let mut cfg = crafted_spec(&t, &a_root, "{ echo pwned > /proc/1/exe; } 2>&1; true");
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}));
        if ptrace {
            for set in ["bounding", "effective", "permitted"] {
                cfg["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYS_PTRACE"));
            }
        }
        t.write_config_in(&b_bundle, &cfg);
        let id = t.other_id(name);
        let out = run_bin(
            &t,
            &copy,
            &["run", "--bundle", b_bundle.to_str().unwrap(), &id],
        );
        out.ok();
        let want = if ptrace {
            "Read-only file system"
        } else {
            "Permission denied"
        };
        assert!(
            out.stdout.contains(want),
            "{name}: expected {want:?}\n{out}"
        );
    }
    assert!(
        fs::read(&copy).unwrap() == before,
        "runtime binary modified"
    );
}

// ---------------------------------------------------------------------------
// CVE-2016-9962: the init is not dumpable until execve
// ---------------------------------------------------------------------------

#[test]
fn cve_2016_9962_init_not_dumpable_before_exec() {
    let t = Ctx::new("cve9962");
    let r = crafted_rootfs(&t);
    t.create_ok(&crafted_spec(&t, &r, "true"));
    let a_pid = state_pid(&t.state());
    // B has the same uid and capabilities as A's init (which already dropped
    // to the container's set): only non-dumpability keeps B out of its fds.
    let b_bundle = t.tmp.path().join("bundle-b");
    fs::create_dir_all(&b_bundle).unwrap();
    let mut cfg = crafted_spec(
        &t,
        &r,
        "ls -l /proc/1/exe 2>&1; cat /proc/1/environ 2>&1; true",
    );
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}));
    t.write_config_in(&b_bundle, &cfg);
    let id = t.other_id("b");
    let out = t.md(&["run", "--bundle", b_bundle.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(
        out.stdout.matches("Permission denied").count(),
        2,
        "the container could inspect the runtime's init\n{out}"
    );
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked fds and a cwd outside the container
// ---------------------------------------------------------------------------

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_is_refused() {
    let t = Ctx::new("cve21626");
    for n in 3..10 {
        for cwd in [
            format!("/proc/self/fd/{n}"),
            format!("/proc/self/fd/{n}/.."),
        ] {
            let mut cfg = t.spec(&["pwd"]);
            cfg["process"]["cwd"] = json!(cwd);
            t.write_config(&cfg);
            let out = t.create();
            // Either refused, or (if it resolved at all) inside the container.
            if out.code == 0 {
                t.md(&["delete", "--force", &t.id]).ok();
                panic!("cwd {cwd} was accepted\n{out}");
            }
            out.err("process.cwd");
            t.assert_no_leftovers();
        }
    }
}

#[test]
fn cve_2024_21626_cwd_cannot_enter_an_inherited_host_dir() {
    // The image picks the cwd; a host directory fd the runtime holds (here
    // one passed with --preserve-fds) must not become the container's cwd.
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let t = Ctx::new("cve21626pfd");
    let host = t.tmp.path().join("hostdir");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("host-secret"), "x\n").unwrap();
    let mut cfg = t.spec(&["ls"]);
    cfg["process"]["cwd"] = json!("/proc/self/fd/3");
    t.write_config(&cfg);
    let dir = fs::File::open(&host).unwrap();
    // Away from 3 first: dup2(3, 3) would keep close-on-exec, and fd 3
    // would not reach the runtime at all.
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
    let raw = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    assert!(raw >= 10);
    let mut cmd = t.md_command(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        t.bundle_str(),
        &t.id,
    ]);
    // SAFETY: dup2 is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (mut child, o, e, desc) = spawn_logged(&t.logs, &mut cmd);
    // SAFETY: closing our duplicate.
    unsafe { libc::close(raw) };
    let status = wait_child(&mut child, CMD_TIMEOUT).expect("run did not finish");
    let out = Out {
        cmd: desc,
        code: exit_code(status),
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
    };
    assert!(
        !out.stdout.contains("host-secret"),
        "cwd on the host\n{out}"
    );
    out.err("process.cwd");
    t.assert_no_leftovers();
}

#[test]
fn cve_2024_21626_no_runtime_fd_in_container() {
    let t = Ctx::new("cve21626fd");
    // `ls` lists the fds it inherited plus the directory it reads.
    let out = t.run_ok(&t.spec(&["ls", "-l", "/proc/self/fd"]));
    for l in out.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = l.split_once(" -> ").unwrap();
        let n: u32 = left.split_whitespace().last().unwrap().parse().unwrap();
        assert!(
            n <= 2 || target.ends_with("/fd"),
            "a runtime fd leaked into the container: {l}"
        );
    }
}

// ---------------------------------------------------------------------------
// CVE-2021-30465 / CVE-2024-45310: mount destinations through symlinks
// ---------------------------------------------------------------------------

#[test]
fn cve_2021_30465_mount_destination_symlink_stays_in_rootfs() {
    let t = Ctx::new("cve30465");
    let host = t.tmp.path().join("hostdir");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("keep"), "host\n").unwrap();
    let r = crafted_rootfs(&t);
    // Inside the rootfs the same absolute path exists: that is where the
    // symlink must lead.
    let inside = r.join(host.strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    std::os::unix::fs::symlink(&host, r.join("abs")).unwrap();
    let climb = format!("../../../../../../../..{}", host.display());
    std::os::unix::fs::symlink(&climb, r.join("climb")).unwrap();
    // A shared volume whose entry was swapped for a symlink to the host dir.
    let vol = t.tmp.path().join("volume");
    fs::create_dir(&vol).unwrap();
    std::os::unix::fs::symlink(&host, vol.join("swapped")).unwrap();
    let mut cfg = crafted_spec(
        &t,
        &r,
        &format!(
            "touch /abs/a /climb/b /vol/swapped/c && ls {h} && \
             grep -q ' {h} ' /proc/self/mountinfo && echo mounted-inside",
            h = host.display()
        ),
    );
    for (dest, src, typ) in [
        ("/abs", "tmpfs", "tmpfs"),
        ("/climb", "tmpfs", "tmpfs"),
        ("/vol", vol.to_str().unwrap(), "bind"),
        ("/vol/swapped", "tmpfs", "tmpfs"),
    ] {
        let opts = if typ == "bind" {
            json!(["rbind"])
        } else {
            json!([])
        };
        add_mount(
            &mut cfg,
            json!({"destination": dest, "type": typ, "source": src, "options": opts}),
        );
    }
    let out = t.run_ok(&cfg);
    // All three landed on one dir inside the rootfs (the last tmpfs is on
    // top), as mounts the container sees, so nothing was written to disk.
    assert!(out.contains('c') && out.contains("mounted-inside"), "{out}");
    assert_eq!(
        fs::read_dir(&inside).unwrap().count(),
        0,
        "written under the mount"
    );
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        1,
        "the host dir was written to"
    );
    assert!(!mountinfo_mentions(host.to_str().unwrap()));
}

#[test]
fn cve_2024_45310_mount_point_creation_stays_in_rootfs() {
    let t = Ctx::new("cve45310");
    let host = t.tmp.path().join("hostdir");
    fs::create_dir(&host).unwrap();
    let r = crafted_rootfs(&t);
    std::os::unix::fs::symlink(&host, r.join("link")).unwrap();
    let file = t.tmp.path().join("file");
    fs::write(&file, "x\n").unwrap();
    fs::create_dir_all(r.join(host.strip_prefix("/").unwrap())).unwrap();
    let mut cfg = crafted_spec(&t, &r, "cat /link/new/dir/file");
    add_mount(
        &mut cfg,
        json!({"destination": "/link/new/dir/file", "type": "bind",
               "source": file.to_str().unwrap(), "options": ["bind"]}),
    );
    let out = t.run_ok(&cfg);
    assert_eq!(out, "x\n");
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "created on the host"
    );
    let inside = r.join(host.strip_prefix("/").unwrap()).join("new/dir/file");
    assert!(inside.exists(), "mount point not created inside the rootfs");
}

#[test]
fn dev_symlink_cannot_redirect_device_setup() {
    // runc CVE-2026-41579, crun CVE-2026-47766: /dev in the image is a symlink.
    let t = Ctx::new("devlink");
    let host = t.tmp.path().join("hostdev");
    fs::create_dir(&host).unwrap();
    let r = crafted_rootfs(&t);
    fs::remove_dir(r.join("dev")).unwrap();
    std::os::unix::fs::symlink(&host, r.join("dev")).unwrap();
    fs::create_dir_all(r.join(host.strip_prefix("/").unwrap())).unwrap();
    let mut cfg = crafted_spec(&t, &r, "ls /dev");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/extra", "type": "c", "major": 1, "minor": 3}
    ]);
    let out = t.run_ok(&cfg);
    assert!(out.contains("null") && out.contains("extra"), "{out}");
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "device nodes were created on the host"
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-19921 / CVE-2023-27561: /proc or /sys as a symlink
// ---------------------------------------------------------------------------

#[test]
fn cve_2019_19921_proc_or_sys_symlink_is_refused() {
    for dir in ["proc", "sys"] {
        let t = Ctx::new(&format!("cve19921{dir}"));
        let r = crafted_rootfs(&t);
        fs::create_dir_all(r.join("tmp/fake")).unwrap();
        fs::remove_dir(r.join(dir)).unwrap();
        std::os::unix::fs::symlink("/tmp/fake", r.join(dir)).unwrap();
        t.write_config(&crafted_spec(&t, &r, "true"));
        t.create().err("must be mounted on ordinary directory");
        t.assert_no_leftovers();
        assert_eq!(fs::read_dir(r.join("tmp/fake")).unwrap().count(), 0);
    }
}

// ---------------------------------------------------------------------------
// CVE-2022-29162: inheritable capabilities
// ---------------------------------------------------------------------------

#[test]
fn cve_2022_29162_no_inheritable_unless_asked() {
    let t = Ctx::new("cve29162");
    // The default set lists ambient capabilities but no inheritable ones.
    let out = t.run_ok(&t.spec(&["cat", "/proc/self/status"]));
    assert_eq!(cap_mask(&out, "CapInh"), 0, "{out}");
    assert_eq!(cap_mask(&out, "CapAmb"), 0, "{out}");
    let mut cfg = t.spec(&["cat", "/proc/self/status"]);
    cfg["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    let out = t.run_ok(&cfg);
    assert_eq!(cap_mask(&out, "CapInh"), 1 << 5, "{out}");
    assert_eq!(cap_mask(&out, "CapAmb"), 1 << 5, "{out}");
    // `spec` writes no inheritable set.
    let dir = t.tmp.path().join("specdir");
    fs::create_dir(&dir).unwrap();
    t.md(&["spec", "--bundle", dir.to_str().unwrap()]).ok();
    let v: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(
        v["process"]["capabilities"]["inheritable"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{v}"
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-16884 / CVE-2025-52881: /proc writes redirected
// ---------------------------------------------------------------------------

#[test]
fn cve_2025_52881_proc_writes_cannot_be_redirected() {
    let t = Ctx::new("cve52881");
    let r = crafted_rootfs(&t);
    fs::create_dir(r.join("realproc")).unwrap();
    // A "procfs file" that is really a host file, mounted over the sysctl.
    let fake = t.tmp.path().join("fake_ip_forward");
    fs::write(&fake, "fake\n").unwrap();
    let mut cfg = crafted_spec(
        &t,
        &r,
        "cat /proc/sys/net/ipv4/ip_forward /realproc/sys/net/ipv4/ip_forward",
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
               "source": fake.to_str().unwrap(), "options": ["bind"]}),
    );
    add_mount(
        &mut cfg,
        json!({"destination": "/realproc", "type": "proc", "source": "proc"}),
    );
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(t.run_ok(&cfg), "fake\n1\n");
    assert_eq!(fs::read_to_string(&fake).unwrap(), "fake\n");
}

// ---------------------------------------------------------------------------
// CVE-2025-31133 and masked/readonly paths
// ---------------------------------------------------------------------------

#[test]
fn cve_2025_31133_masks_use_the_real_dev_null() {
    if !Path::new("/proc/timer_list").exists() {
        eprintln!("skipped: no /proc/timer_list to mask here");
        return;
    }
    let t = Ctx::new("cve31133");
    let r = crafted_rootfs(&t);
    // The container's /dev is a host dir whose "null" points at a procfs file.
    let dev = t.tmp.path().join("dev");
    fs::create_dir(&dev).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    let mut cfg = crafted_spec(
        &t,
        &r,
        "stat -c '%F %t:%T' /proc/timer_list; cat /proc/timer_list",
    );
    cfg["linux"]["maskedPaths"] = json!(["/proc/timer_list"]);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    add_mount(
        &mut cfg,
        json!({"destination": "/dev", "type": "bind", "source": dev.to_str().unwrap(),
               "options": ["rbind"]}),
    );
    let out = t.run_ok(&cfg);
    assert_eq!(out, "character special file 1:3\n", "{out}");
}

#[test]
fn masked_path_through_symlink_is_masked() {
    // youki GHSA-3q8j-pf29-vwv8: masked/readonly paths given through symlinks.
    let t = Ctx::new("masklink");
    let r = crafted_rootfs(&t);
    std::os::unix::fs::symlink("/proc/sys", r.join("procsys")).unwrap();
    let mut cfg = crafted_spec(
        &t,
        &r,
        "ls /sys/firmware | wc -l; echo core > /proc/sys/kernel/core_pattern; echo rc=$?",
    );
    cfg["linux"]["readonlyPaths"] = json!(["/procsys"]);
    let out = t.run_ok(&cfg);
    assert!(out.starts_with("0\n"), "/sys/firmware not masked: {out}");
    assert!(out.contains("rc=1"), "core_pattern writable: {out}");
}

#[test]
fn core_pattern_is_read_only_and_firmware_masked() {
    let t = Ctx::new("corepattern");
    let out = t.run_sh(
        "echo '|/tmp/x' > /proc/sys/kernel/core_pattern; echo rc=$?; \
         ls -A /sys/firmware | wc -l",
    );
    assert_eq!(out, "rc=1\n0\n");
}

// ---------------------------------------------------------------------------
// devices, ptrace, no_new_privs
// ---------------------------------------------------------------------------

#[test]
fn device_access_denied_by_cgroup() {
    if !Path::new("/sys/fs/cgroup/devices").exists() {
        eprintln!("skipped: no cgroup v1 devices controller (the VM tests v2)");
        return;
    }
    let t = Ctx::new("devdeny");
    let mut cfg = t.spec_sh("head -c1 /dev/mem; echo rc=$?");
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/mem", "type": "c", "major": 1, "minor": 1, "fileMode": 0o666}
    ]);
    let out = t.run_ok(&cfg);
    assert!(out.contains("rc=1"), "{out}");
}

#[test]
fn runtime_processes_are_unreachable_across_pid_ns() {
    // The runtime (the foreground `run`) is outside the container's pid
    // namespace: it cannot be named, signalled or ptraced from inside.
    let t = Ctx::new("ptracens");
    let me = std::process::id();
    let out = t.run_sh(&format!(
        "kill -0 {me} 2>&1; echo rc=$?; test -e /proc/{me} || echo invisible"
    ));
    assert!(
        out.contains("No such process") && out.contains("rc=1"),
        "{out}"
    );
    assert!(out.contains("invisible"), "{out}");
}

#[test]
fn no_new_privileges_blocks_setuid_root() {
    let t = Ctx::new("nnpsuid");
    let r = crafted_rootfs(&t);
    // su with an empty root password: a setuid copy would make uid 1000 root.
    fs::write(
        r.join("etc/passwd"),
        "root::0:0:root:/root:/bin/sh\ntester:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    for (nnp, want) in [(true, "must be suid"), (false, "uid=0")] {
        let mut cfg = crafted_spec(
            &t,
            &r,
            "cp /bin/busybox /mnt/su && chmod 4755 /mnt/su && \
             su tester -c '/mnt/su -c id root' 2>&1; true",
        );
        cfg["process"]["noNewPrivileges"] = json!(nnp);
        for set in ["bounding", "effective", "permitted"] {
            for c in ["CAP_SETUID", "CAP_SETGID"] {
                cfg["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(c));
            }
        }
        add_mount(
            &mut cfg,
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["exec"]}),
        );
        let out = t.run_ok(&cfg);
        assert!(out.contains(want), "noNewPrivileges={nnp}: {out}");
    }
}

// ---------------------------------------------------------------------------
// an unknown setting is an error
// ---------------------------------------------------------------------------

#[test]
fn unknown_bind_mount_option_fails_create() {
    let t = Ctx::new("badmntopt");
    let mut cfg = t.spec(&["true"]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/ro", "type": "bind", "source": "/tmp",
               "options": ["rbind", "nosuchoption"]}),
    );
    t.write_config(&cfg);
    t.create()
        .err("unknown option(s) for a bind mount: nosuchoption");
    t.assert_no_leftovers();
}

#[test]
fn unknown_seccomp_flag_and_arch_fail_create() {
    let t = Ctx::new("badscmp");
    for (field, seccomp) in [
        (
            "linux.seccomp.flags",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
        ),
        (
            "linux.seccomp.architectures",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        ),
        (
            "linux.seccomp.syscalls[0].args[0].op",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}),
        ),
    ] {
        let mut cfg = t.spec(&["true"]);
        cfg["linux"]["seccomp"] = seccomp;
        t.write_config(&cfg);
        t.create().err(field);
        t.assert_no_leftovers();
    }
}

#[test]
fn lsm_labels_without_the_lsm_fail_create() {
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipped: SELinux is active here");
        return;
    }
    let t = Ctx::new("lsmabsent");
    for (field, set) in [
        (
            "process.selinuxLabel",
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
        ),
        (
            "linux.mountLabel",
            json!({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}),
        ),
    ] {
        let mut cfg = t.spec(&["true"]);
        for (k, v) in set.as_object().unwrap() {
            for (k2, v2) in v.as_object().unwrap() {
                cfg[k][k2] = v2.clone();
            }
        }
        t.write_config(&cfg);
        t.create()
            .err(&format!("{field}: SELinux is not enabled on this host"));
        t.assert_no_leftovers();
    }
}

// ---------------------------------------------------------------------------
// seccomp
// ---------------------------------------------------------------------------

#[test]
fn seccomp_errno_ret_and_masked_eq() {
    let t = Ctx::new("scmperrno");
    let r = crafted_rootfs(&t);
    let mut cfg = crafted_spec(&t, &r, "kill -0 1 2>&1; kill -CONT 1 && echo sent-cont");
    // kill(pid, sig) with sig & 0xff == 0 (the probe signal only) fails
    // with EOPNOTSUPP; other signals pass.
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
                      "args": [{"index": 1, "value": 255, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    });
    let out = t.run_ok(&cfg);
    assert!(out.contains("Operation not supported"), "{out}");
    assert!(out.contains("sent-cont"), "{out}");
}

#[test]
fn seccomp_kill_process() {
    let t = Ctx::new("scmpkill");
    let mut cfg = t.spec(&["uname"]);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    t.run(&cfg).ok_code(128 + libc::SIGSYS);
}

#[test]
fn seccomp_loads_before_the_user_switch_without_nnp() {
    // Without no_new_privs and CAP_SYS_ADMIN the filter cannot be loaded at
    // execve: it is loaded before the user switch instead, and still applies.
    let t = Ctx::new("scmpearly");
    let r = crafted_rootfs(&t);
    let mut cfg = crafted_spec(&t, &r, "mkdir /tmp/x 2>&1; id -u");
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]
    });
    let out = t.run_ok(&cfg);
    assert!(
        out.contains("Operation not supported") && out.ends_with("1000\n"),
        "{out}"
    );
}

/// Exit code of the clone3 prober under `seccomp` (None: no filter).
fn clone3_errno(t: &Ctx, r: &Path, seccomp: Option<Value>) -> i32 {
    let mut cfg = crafted_spec(t, r, "");
    cfg["process"]["args"] = json!(["/probe"]);
    if let Some(s) = seccomp {
        cfg["linux"]["seccomp"] = s;
    }
    t.run(&cfg).code
}

#[test]
fn seccomp_newer_syscalls_get_enosys() {
    if !x86_64() {
        return;
    }
    let t = Ctx::new("scmpenosys");
    let r = crafted_rootfs(&t);
    install_exec(&r, "/probe", &syscall_prober(435)); // clone3
    let profile = |names: &[&str]| {
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        })
    };
    let base = ["execve", "exit", "exit_group"];
    // No filter: the kernel checks clone3's arguments.
    assert_eq!(clone3_errno(&t, &r, None), libc::EINVAL);
    // clone3 is newer than anything the profile names: ENOSYS (libc falls
    // back to clone), not the default EPERM.
    assert_eq!(clone3_errno(&t, &r, Some(profile(&base))), libc::ENOSYS);
    // A profile that knows a newer syscall (openat2, 437) has judged clone3:
    // the default applies.
    let mut known = base.to_vec();
    known.push("openat2");
    assert_eq!(clone3_errno(&t, &r, Some(profile(&known))), libc::EPERM);
}

/// The syscalls a busybox shell needs, in the style of Docker's default
/// profile (allow-list, default EPERM, clone3 not listed).
const DOCKER_LIKE_ALLOW: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_gettime",
    "clone",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fork",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "getrlimit",
    "getuid",
    "ioctl",
    "kill",
    "lseek",
    "lstat",
    "madvise",
    "mkdir",
    "mkdirat",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "readv",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "sigaltstack",
    "stat",
    "statfs",
    "statx",
    "sysinfo",
    "tgkill",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "vfork",
    "wait4",
    "write",
    "writev",
    "rseq",
];

#[test]
fn seccomp_docker_like_profile_runs_programs() {
    let t = Ctx::new("scmpdocker");
    let r = crafted_rootfs(&t);
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": DOCKER_LIKE_ALLOW, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            // Docker's profile names syscalls newer than clone3 (faccessat2),
            // so it answers clone3 with ENOSYS explicitly; so do we.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["mount", "ptrace", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 95}
        ]
    });
    let mut cfg = crafted_spec(
        &t,
        &r,
        "ls / >/dev/null && cat /etc/passwd | wc -l && mount -t tmpfs x /mnt 2>&1; true",
    );
    cfg["linux"]["seccomp"] = profile.clone();
    let out = t.run_ok(&cfg);
    assert!(out.starts_with("2\n"), "{out}");
    assert!(
        out.contains("Operation not supported"),
        "mount allowed: {out}"
    );
    if x86_64() {
        // glibc's clone3 gets ENOSYS, so its clone fallback works.
        install_exec(&r, "/probe", &syscall_prober(435));
        assert_eq!(clone3_errno(&t, &r, Some(profile)), libc::ENOSYS);
    }
}

#[test]
fn seccomp_notify_sends_fd_and_state_to_listener() {
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, RawFd};
    use std::os::unix::net::UnixListener;

    let t = Ctx::new("scmpnotify");
    let r = crafted_rootfs(&t);
    let sock = t.tmp.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> (Value, usize) {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = nix::sys::socket::recvmsg::<()>(
                conn.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                nix::sys::socket::MsgFlags::empty(),
            )
            .unwrap();
            let fd = msg
                .cmsgs()
                .unwrap()
                .find_map(|c| match c {
                    nix::sys::socket::ControlMessageOwned::ScmRights(f) => f.first().copied(),
                    _ => None,
                })
                .expect("no fd received");
            (msg.bytes, fd)
        };
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        // Answer every notification with EOPNOTSUPP until the container ends.
        let mut handled = 0;
        while let Ok(req) = libseccomp::ScmpNotifReq::receive(fd) {
            let resp = libseccomp::ScmpNotifResp::new_error(
                req.id,
                -libc::EOPNOTSUPP,
                libseccomp::ScmpNotifRespFlags::empty(),
            );
            let _ = resp.respond(fd);
            handled += 1;
        }
        (state, handled)
    });
    let mut cfg = crafted_spec(&t, &r, "mkdir /tmp/x 2>&1; echo done");
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_str().unwrap(),
        "listenerMetadata": "agent-metadata",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = t.run_ok(&cfg);
    assert!(
        out.contains("Operation not supported") && out.contains("done"),
        "{out}"
    );
    let (state, handled) = agent.join().unwrap();
    assert!(handled >= 1);
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "agent-metadata", "{state}");
    assert_eq!(state["state"]["id"], t.id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
}

#[test]
fn seccomp_wait_killable_recv_needs_notify() {
    let t = Ctx::new("scmpwkr");
    let mut cfg = t.spec(&["true"]);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    });
    t.write_config(&cfg);
    t.create().err("needs a SCMP_ACT_NOTIFY rule");
    t.assert_no_leftovers();
}

#[test]
fn seccomp_trap_trace_log_and_kill_thread() {
    let t = Ctx::new("scmpactions");
    let r = crafted_rootfs(&t);
    let scmp = |rules: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules});
    // TRAP: SIGSYS; KILL (= KILL_THREAD) of the only thread kills it.
    for action in ["SCMP_ACT_TRAP", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let mut cfg = t.spec(&["uname"]);
        cfg["linux"]["seccomp"] = scmp(json!([{"names": ["uname"], "action": action}]));
        t.run(&cfg).ok_code(128 + libc::SIGSYS);
    }
    // TRACE without a tracer: the kernel answers ENOSYS. LOG: allowed.
    let mut cfg = crafted_spec(&t, &r, "mkdir /tmp/t 2>&1; uname -s");
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"}
        ]
    });
    assert_eq!(
        t.run_ok(&cfg),
        "mkdir: can't create directory '/tmp/t': Function not implemented\nLinux\n"
    );
}
