//! Shared helpers for the MyDocker integration tests.
//!
//! Every test runs the real `mydocker` binary as root against a real bundle on
//! the real kernel. The busybox rootfs is built once per test run (shared by all
//! tests and test binaries, guarded by a file lock) and is mounted read-only;
//! each test gets its own temp dir holding the `--root` state dir, the bundle
//! (config.json only, `root.path` points at the shared rootfs) and an `out`
//! dir that tests bind-mount into the container when they need it to write.
//!
//! Set `MYDOCKER_TEST_BINARY=/usr/sbin/runc` (or crun) to run the suite against
//! a reference runtime and sanity-check the expectations.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default deadline for one runtime invocation.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// Default deadline for waiting on a condition.
pub const WAIT: Duration = Duration::from_secs(10);

pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
/// CAP_KILL (5) | CAP_NET_BIND_SERVICE (10) | CAP_AUDIT_WRITE (29)
pub const DEFAULT_CAP_MASK: u64 = (1 << 5) | (1 << 10) | (1 << 29);

pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime under test.
pub fn bin() -> PathBuf {
    match std::env::var_os("MYDOCKER_TEST_BINARY") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_mydocker")),
    }
}

/// True when the suite runs against our own binary (not a reference runtime),
/// for the few checks that are MyDocker-specific (default cgroup path).
pub fn is_mydocker() -> bool {
    std::env::var_os("MYDOCKER_TEST_BINARY").is_none_or(|p| p.is_empty())
}

/// Poll `cond` every few milliseconds until it is true or `deadline` elapses.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// shared rootfs
// ---------------------------------------------------------------------------

const ROOTFS_VERSION: &str = "mydocker-test-rootfs v3";

/// Directories created in the rootfs so that no mount destination used by the
/// tests has to be created by the runtime inside the shared read-only rootfs.
const ROOTFS_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "proc",
    "sys",
    "dev",
    "tmp",
    "etc",
    "root",
    "home/tester",
    "out",
    "mnt",
    "mnt/ro",
    "mnt/rw",
    "mnt/tmp",
    "masked-dir",
    "var",
];

/// Path of the shared busybox rootfs, built on first use (once per run; safe
/// across the test binaries cargo runs and across threads).
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let base = rootfs_base();
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.join("mydocker-test-rootfs");
        let ready = base.join("mydocker-test-rootfs.ready");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(base.join("mydocker-test-rootfs.lock"))
            .unwrap();
        use std::os::unix::io::AsRawFd;
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let up_to_date = fs::read_to_string(&ready).is_ok_and(|s| s == ROOTFS_VERSION)
            && dir.join("bin/busybox").exists();
        if !up_to_date {
            let _ = fs::remove_file(&ready);
            let tmp = base.join("mydocker-test-rootfs.tmp");
            let _ = fs::remove_dir_all(&tmp);
            let _ = fs::remove_dir_all(&dir);
            build_rootfs(&tmp);
            fs::rename(&tmp, &dir).unwrap();
            fs::write(&ready, ROOTFS_VERSION).unwrap();
        }
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
        dir
    })
}

/// Where the shared rootfs lives: cargo's target tmp dir, unless one of its
/// ancestors is not world-searchable (a checkout under /root, say), which
/// would hide the rootfs from the unprivileged root of a user namespace; then
/// a per-checkout directory under /tmp.
fn rootfs_base() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let searchable = target.ancestors().skip(1).all(|a| {
        fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    });
    if searchable {
        return target;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut h);
    PathBuf::from(format!("/tmp/mydocker-test-{:016x}", h.finish()))
}

fn build_rootfs(r: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing (apt-get install busybox-static)"
    );
    fs::create_dir_all(r).unwrap();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    for d in ROOTFS_DIRS {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(r.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::copy(busybox, r.join("bin/busybox")).unwrap();
    fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(busybox).arg("--list-full").output().unwrap();
    assert!(list.status.success(), "busybox --list-full failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() {
            continue;
        }
        let p = r.join(applet);
        if p.symlink_metadata().is_ok() {
            continue;
        }
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &p).unwrap();
    }
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         tester:x:1000:1000:tester:/home/tester:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        "root:x:0:\nnobody:x:65534:\nusers:x:100:\ntester:x:1000:\n",
    )
    .unwrap();
    fs::write(r.join("masked-dir/secret"), "secret-dir-content\n").unwrap();
    fs::write(r.join("masked-file"), "secret-file-content\n").unwrap();
    std::os::unix::fs::chown(r.join("home/tester"), Some(1000), Some(1000)).unwrap();
}

// ---------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------

/// A config like `runc spec` output (ociVersion 1.0.2, non-terminal), with
/// `args` as the process and the shared rootfs (absolute path, read-only).
pub fn base_spec(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
                "ambient": DEFAULT_CAPS,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs().to_str().unwrap(), "readonly": true},
        "hostname": "mydocker",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// `["sh", "-c", script]`
pub fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Remove the namespace of type `ty` from `linux.namespaces`.
pub fn remove_namespace(cfg: &mut Value, ty: &str) {
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != ty);
}

pub fn add_mount(cfg: &mut Value, m: Value) {
    cfg["mounts"].as_array_mut().unwrap().push(m);
}

pub fn add_env(cfg: &mut Value, kv: &str) {
    cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(kv));
}

// ---------------------------------------------------------------------------
// running the runtime
// ---------------------------------------------------------------------------

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    /// Exit code, or 128+N if the runtime died of signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed\n{self}");
        self
    }
    pub fn ok_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }
    /// The runtime's error contract: exit 1, ONE line on stderr containing `phrase`.
    pub fn err(&self, phrase: &str) -> &Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded\n{self}");
        assert_eq!(self.code, 1, "error exit code should be 1\n{self}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr\n{self}"
        );
        assert!(
            self.stderr.contains(phrase),
            "stderr does not contain {phrase:?}\n{self}"
        );
        self
    }
    /// Like `err` but only requires a non-zero exit code and one stderr line.
    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded\n{self}");
        self.err("")
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  command: {}\n  exit code: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

pub fn exit_code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Run `bin() args...` with stdout/stderr going to files in `dir` (files, not
/// pipes: the container inherits the runtime's stdio and may outlive it), wait
/// at most `timeout`, and return what it printed.
pub fn run_cmd<S: AsRef<OsStr>>(dir: &Path, args: &[S], timeout: Duration) -> Out {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    let (mut child, o, e, desc) = spawn_logged(dir, &mut cmd);
    let status = wait_child(&mut child, timeout);
    let out = Out {
        cmd: desc,
        code: status.map_or(-1, exit_code),
        stdout: fs::read_to_string(&o).unwrap_or_default(),
        stderr: fs::read_to_string(&e).unwrap_or_default(),
    };
    if status.is_none() {
        panic!("command did not finish within {timeout:?}\n{out}");
    }
    out
}

/// Spawn `cmd` with stdin=/dev/null and stdout/stderr to fresh files in `dir`.
pub fn spawn_logged(dir: &Path, cmd: &mut Command) -> (Child, PathBuf, PathBuf, String) {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let o = dir.join(format!("cmd{n}.stdout"));
    let e = dir.join(format!("cmd{n}.stderr"));
    let desc = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap());
    let child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("cannot spawn {desc}: {err}"));
    (child, o, e, desc)
}

/// Wait for `child` up to `timeout`; on timeout SIGKILL it, reap it and return None.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

// ---------------------------------------------------------------------------
// per-test context
// ---------------------------------------------------------------------------

/// One test's world: temp dir with `state/` (--root), `bundle/` and `out/`,
/// a unique container id, and a guard that force-deletes every container it
/// knows of when dropped (also on panic).
pub struct Ctx {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub out: PathBuf,
    pub logs: PathBuf,
    pub id: String,
    ids: Mutex<Vec<String>>,
}

impl Ctx {
    pub fn new(name: &str) -> Ctx {
        let _ = rootfs();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("mydocker-it-{name}-"))
            .tempdir()
            .unwrap();
        let root = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        let out = tmp.path().join("out");
        let logs = tmp.path().join("logs");
        for d in [&bundle, &out, &logs] {
            fs::create_dir(d).unwrap();
        }
        // containers running as non-root users write into /out too
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
        let id = format!("it-{}-{}", name, std::process::id());
        Ctx {
            tmp,
            root,
            bundle,
            out,
            logs,
            id: id.clone(),
            ids: Mutex::new(vec![id]),
        }
    }

    /// A further container id owned (and cleaned up) by this test.
    pub fn other_id(&self, suffix: &str) -> String {
        let id = format!("{}-{}", self.id, suffix);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// The default config for this test: `base_spec(args)` plus an env marker
    /// used to find leftover processes.
    pub fn spec<S: AsRef<str>>(&self, args: &[S]) -> Value {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        let mut cfg = base_spec(&args);
        add_env(&mut cfg, &self.marker());
        cfg
    }

    /// `spec(["sh","-c",script])`
    pub fn spec_sh(&self, script: &str) -> Value {
        self.spec(&sh(script))
    }

    pub fn marker(&self) -> String {
        format!("MYDOCKER_TEST_ID={}", self.id)
    }

    /// Bind-mount the test's host `out/` dir read-write at /out.
    pub fn with_out(&self, cfg: &mut Value) {
        add_mount(
            cfg,
            json!({"destination": "/out", "type": "bind",
                   "source": self.out.to_str().unwrap(), "options": ["rbind", "rw"]}),
        );
    }

    pub fn write_config(&self, cfg: &Value) {
        self.write_config_in(&self.bundle, cfg);
    }

    pub fn write_config_in(&self, bundle: &Path, cfg: &Value) {
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    pub fn bundle_str(&self) -> &str {
        self.bundle.to_str().unwrap()
    }

    /// `mydocker --root R args...`
    pub fn md(&self, args: &[&str]) -> Out {
        self.md_timeout(args, CMD_TIMEOUT)
    }

    pub fn md_timeout(&self, args: &[&str], timeout: Duration) -> Out {
        let mut full: Vec<&str> = vec!["--root", self.root.to_str().unwrap()];
        full.extend_from_slice(args);
        run_cmd(&self.logs, &full, timeout)
    }

    /// A `Command` for `mydocker --root R args...` (for tests that spawn it).
    pub fn md_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// `create --bundle B ID` with the current config.json.
    pub fn create(&self) -> Out {
        self.md(&["create", "--bundle", self.bundle_str(), &self.id])
    }

    /// Write `cfg`, create, assert success.
    pub fn create_ok(&self, cfg: &Value) {
        self.write_config(cfg);
        self.create().ok();
    }

    /// Write `cfg` and `run --bundle B ID` in the foreground.
    pub fn run(&self, cfg: &Value) -> Out {
        self.write_config(cfg);
        self.md(&["run", "--bundle", self.bundle_str(), &self.id])
    }

    /// Run `cfg` in the foreground, assert exit 0 and return its stdout.
    pub fn run_ok(&self, cfg: &Value) -> String {
        let out = self.run(cfg);
        out.ok();
        out.stdout
    }

    /// Run a shell script with the default config, assert success, return stdout.
    pub fn run_sh(&self, script: &str) -> String {
        self.run_ok(&self.spec_sh(script))
    }

    pub fn state_of(&self, id: &str) -> Value {
        let out = self.md(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON: {e}\n{out}"))
    }

    pub fn state(&self) -> Value {
        self.state_of(&self.id)
    }

    pub fn status_of(&self, id: &str) -> String {
        self.state_of(id)["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn status(&self) -> String {
        self.status_of(&self.id)
    }

    /// Wait until `state ID` reports `status`.
    pub fn wait_status_of(&self, id: &str, status: &str) {
        let mut last = String::new();
        let ok = wait_until(WAIT, || {
            last = self.status_of(id);
            last == status
        });
        assert!(
            ok,
            "container {id} did not reach status {status:?} (last: {last:?})"
        );
    }

    pub fn wait_status(&self, status: &str) {
        self.wait_status_of(&self.id, status)
    }

    /// Wait until the host file `out/<name>` exists and return its content.
    pub fn wait_out_file(&self, name: &str) -> String {
        let p = self.out.join(name);
        let ok = wait_until(WAIT, || p.exists());
        assert!(ok, "{} did not appear", p.display());
        // the writer may still be writing: wait for a trailing newline
        let mut s = String::new();
        wait_until(Duration::from_secs(2), || {
            s = fs::read_to_string(&p).unwrap_or_default();
            s.ends_with('\n')
        });
        s
    }

    /// Assert that a failed create/run left nothing behind: no state dir, no
    /// cgroup dirs, no processes, no mounts on the host.
    pub fn assert_no_leftovers(&self) {
        self.assert_no_leftovers_of(&self.id)
    }

    pub fn assert_no_leftovers_of(&self, id: &str) {
        let state_dir = self.root.join(id);
        assert!(
            !state_dir.exists(),
            "state dir {} left behind",
            state_dir.display()
        );
        for c in CGROUP_V1_CONTROLLERS.iter().chain(&["unified", ""]) {
            let p = Path::new("/sys/fs/cgroup")
                .join(c)
                .join("mydocker")
                .join(id);
            assert!(!p.exists(), "cgroup dir {} left behind", p.display());
        }
        let mut procs = vec![];
        let gone = wait_until(Duration::from_secs(2), || {
            procs = self.leftover_processes(id);
            procs.is_empty()
        });
        assert!(gone, "processes left behind: {procs:?}");
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let rootfs = rootfs().to_str().unwrap();
        for needle in [rootfs, self.tmp.path().to_str().unwrap()] {
            assert!(
                !mi.contains(needle),
                "host mountinfo mentions {needle}:\n{}",
                mi.lines()
                    .filter(|l| l.contains(needle))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }

    /// Live (non-zombie) processes belonging to container `id`: cmdline has
    /// `id` as an argument, or environ carries this test's marker, or root/cwd
    /// points into this test's temp dir.
    pub fn leftover_processes(&self, id: &str) -> Vec<String> {
        let marker = format!("MYDOCKER_TEST_ID={}", self.id);
        let me = std::process::id();
        let tmp = self.tmp.path().to_path_buf();
        let mut found = vec![];
        for pid in all_pids() {
            if pid == me {
                continue;
            }
            let p = PathBuf::from(format!("/proc/{pid}"));
            if proc_state(pid) == Some('Z') || proc_state(pid).is_none() {
                continue;
            }
            let cmdline = fs::read(p.join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let environ = fs::read(p.join("environ")).unwrap_or_default();
            let env_hit = environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes());
            let arg_hit = args.contains(&id.as_bytes());
            let root_hit = ["root", "cwd"]
                .iter()
                .any(|l| fs::read_link(p.join(l)).is_ok_and(|t| t.starts_with(&tmp)));
            if env_hit || arg_hit || root_hit {
                found.push(format!(
                    "pid {pid}: {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        found
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        for id in ids {
            let args = [
                "--root",
                self.root.to_str().unwrap(),
                "delete",
                "--force",
                &id,
            ];
            let mut cmd = Command::new(bin());
            cmd.args(args);
            if let Ok(mut child) = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                wait_child(&mut child, Duration::from_secs(10));
            }
        }
    }
}

/// True on a pure cgroup v2 host (cgroup2 mounted at /sys/fs/cgroup).
pub fn cgroup2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub const CGROUP_V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
];

pub fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The state letter from /proc/PID/stat, None if the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.chars().next()
}

/// True if `pid` no longer exists (or is only a zombie).
pub fn pid_gone(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// The value of a `Key:\tvalue` line of a /proc/PID/status dump.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim())
}

/// Hex capability mask from a status dump.
pub fn cap_mask(status: &str, key: &str) -> u64 {
    let v = status_field(status, key).unwrap_or_else(|| panic!("no {key} line in:\n{status}"));
    u64::from_str_radix(v, 16).unwrap()
}

/// The section of `text` between `=== name ===` and the next `=== ` line.
/// Scripts print several things separated by such headers.
pub fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let hdr = format!("=== {name} ===\n");
    let start = text
        .find(&hdr)
        .unwrap_or_else(|| panic!("no section {name:?} in output:\n{text}"))
        + hdr.len();
    let rest = &text[start..];
    let end = rest.find("=== ").unwrap_or(rest.len());
    &rest[..end]
}

/// Parse /proc/self/mountinfo text into (mount point, fstype, mount options, super options).
pub fn parse_mountinfo(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some((
                pre.get(4)?.to_string(),
                post.first()?.to_string(),
                pre.get(5)?.to_string(),
                post.get(2).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

/// The last (top-most) mount at `mp` in a mountinfo dump.
pub fn mount_at(mountinfo: &str, mp: &str) -> Option<(String, String, String, String)> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .rev()
        .find(|m| m.0 == mp)
}

pub fn has_opt(opts: &str, opt: &str) -> bool {
    opts.split(',').any(|o| o == opt)
}

pub fn write_file(p: &Path, s: &str) {
    let mut f = fs::File::create(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

pub fn is_char_device(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

/// Pid of a running process read from `state`, as u32 (asserts > 0).
pub fn state_pid(state: &Value) -> u32 {
    let pid = state["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in state {state}"));
    assert!(pid > 0, "state pid should be > 0: {state}");
    pid as u32
}

/// Spawns `mydocker args...` with fd 3 (and 4) open on files holding
/// "three"/"four", and `env` set; returns what it printed.
pub fn with_extra_fds(t: &Ctx, env: &[(&str, &str)], wrap_pid: bool, args: &[&str]) -> Out {
    let three = t.tmp.path().join("three");
    let four = t.tmp.path().join("four");
    fs::write(&three, "three\n").unwrap();
    fs::write(&four, "four\n").unwrap();
    let f3 = fs::File::open(&three).unwrap();
    let f4 = fs::File::open(&four).unwrap();
    let mut full: Vec<String> = vec!["--root".into(), t.root.to_str().unwrap().into()];
    full.extend(args.iter().map(|s| s.to_string()));
    // LISTEN_PID must name the runtime itself: a shell sets it to its own
    // pid, then execs the runtime.
    let mut cmd = if wrap_pid {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\"")
            .arg(bin())
            .args(&full);
        c
    } else {
        let mut c = Command::new(bin());
        c.args(&full);
        c
    };
    cmd.envs(env.iter().copied());
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // Away from 3 and 4 first: dup2 onto the same number would keep
    // close-on-exec.
    let r3 = unsafe { libc::fcntl(f3.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    let r4 = unsafe { libc::fcntl(f4.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    assert!(r3 >= 10 && r4 >= 10);
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(r3, 3) < 0 || libc::dup2(r4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = t.logs.join("fds.stdout");
    let e = t.logs.join("fds.stderr");
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap());
    let mut child = cmd.spawn().unwrap();
    unsafe {
        libc::close(r3);
        libc::close(r4);
    }
    let st = wait_child(&mut child, CMD_TIMEOUT);
    Out {
        cmd: format!("{args:?}"),
        code: st.map_or(-1, exit_code),
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
    }
}

pub fn fd_list(s: &str) -> Vec<u32> {
    s.split_whitespace().map(|x| x.parse().unwrap()).collect()
}
