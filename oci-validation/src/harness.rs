//! What every test uses: the runtime under test, a per-test world (state
//! root, bundle, output dir), a shared busybox rootfs, a base config, and
//! small helpers to read what the container saw.
//!
//! Nothing here knows MyDocker: the runtime is only driven through the OCI
//! operations (create, start, state, kill, delete) with runc's command line,
//! which runc, crun, youki and MyDocker all share, plus the global `--root`.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one runtime command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a condition (a status, a file).
pub const WAIT: Duration = Duration::from_secs(10);

/// The default capability set (runc's default config).
pub const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Set in the runtime's environment: hooks must not inherit it.
pub const RUNTIME_ENV_MARKER: &str = "OCI_VALIDATION_RUNTIME_ENV=leaked";

/// Why a test did not pass.
#[derive(Debug)]
pub enum Failure {
    /// A MUST is not met (or the test could not run as it should).
    Fail(String),
    /// The host lacks what the test needs.
    Skip(String),
}

/// What a test returns.
pub type TestResult = Result<(), Failure>;

/// Fails the test with a message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::harness::Failure::Fail(format!($($fmt)+)));
        }
    };
}

/// Fails the test with a message.
#[macro_export]
macro_rules! fail {
    ($($fmt:tt)+) => {
        return Err($crate::harness::Failure::Fail(format!($($fmt)+)))
    };
}

/// Skips the test with a reason.
#[macro_export]
macro_rules! skip {
    ($($fmt:tt)+) => {
        return Err($crate::harness::Failure::Skip(format!($($fmt)+)))
    };
}

/// Turns any displayable error into a test failure with context.
pub trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Fail(format!("{what}: {e}")))
    }
}

impl<T> OrFail<T> for Option<T> {
    fn or_fail(self, what: &str) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::Fail(what.to_string()))
    }
}

/// Settings of the whole run.
pub struct Settings {
    /// The runtime binary under test.
    pub runtime: PathBuf,
    /// Where the run keeps its rootfs and the tests their worlds.
    pub work: PathBuf,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Records the run's settings (once, before any test runs).
pub fn init(s: Settings) {
    let _ = SETTINGS.set(s);
}

fn settings() -> &'static Settings {
    SETTINGS.get().expect("harness::init not called")
}

/// Poll `cond` until it holds or `deadline` passes.
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
// rootfs
// ---------------------------------------------------------------------------

/// Directories the tests mount on: they exist, so that no runtime has to
/// create a mount point in the shared read-only rootfs.
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
    "out",
    "mnt/a",
    "mnt/b",
    "mnt/c",
    "data",
    "masked-dir",
];

/// Builds the shared rootfs: static busybox with every applet, a passwd and
/// group file, a file and a directory with content to mask.
pub fn build_rootfs(dir: &Path) -> Result<(), String> {
    let busybox = Path::new("/bin/busybox");
    let static_ok = Command::new("ldd")
        .arg(busybox)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true);
    if !busybox.exists() || !static_ok {
        return Err("a static /bin/busybox is needed (apt-get install busybox-static)".into());
    }
    let io = |e: std::io::Error| e.to_string();
    for d in ROOTFS_DIRS {
        fs::create_dir_all(dir.join(d)).map_err(io)?;
    }
    for d in ["", "out", "mnt", "mnt/a", "mnt/b", "mnt/c", "data"] {
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io)?;
    fs::copy(busybox, dir.join("bin/busybox")).map_err(io)?;
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io)?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let p = dir.join(applet.trim().trim_start_matches('/'));
        if applet.trim().is_empty() || p.symlink_metadata().is_ok() {
            continue;
        }
        fs::create_dir_all(p.parent().unwrap_or(dir)).map_err(io)?;
        std::os::unix::fs::symlink("/bin/busybox", &p).map_err(io)?;
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(io)?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").map_err(io)?;
    fs::write(dir.join("masked-file"), "secret\n").map_err(io)?;
    fs::write(dir.join("masked-dir/secret"), "secret\n").map_err(io)?;
    Ok(())
}

/// The shared rootfs of this run.
pub fn rootfs() -> PathBuf {
    settings().work.join("rootfs")
}

// ---------------------------------------------------------------------------
// runtime invocations
// ---------------------------------------------------------------------------

/// What one runtime command did.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    /// Exit code; -1 if killed for taking too long.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Fails unless the command succeeded.
    pub fn success(&self) -> TestResult {
        ensure!(self.ok(), "`{}` failed: {}", self.cmd, self.describe());
        Ok(())
    }

    /// Fails unless the command generated an error (non-zero exit).
    pub fn error(&self, why: &str) -> TestResult {
        ensure!(
            !self.ok() && self.code != -1,
            "`{}` must generate an error ({why}), but {}",
            self.cmd,
            if self.ok() {
                "it succeeded".to_string()
            } else {
                "it timed out".to_string()
            }
        );
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "exit {} stderr {:?}",
            self.code,
            self.stderr.trim().chars().take(300).collect::<String>()
        )
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// One test's world: `--root`, bundle, `out` (writable by any uid) and the
/// container ids it made, all removed when the test ends.
pub struct Ctx {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub out: PathBuf,
    pub logs: PathBuf,
    pub id: String,
    ids: Vec<String>,
}

impl Ctx {
    /// A fresh world for test `name`.
    pub fn new(name: &str) -> Ctx {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = settings().work.join(format!("t{n}"));
        let root = dir.join("state");
        let bundle = dir.join("bundle");
        let out = dir.join("out");
        let logs = dir.join("logs");
        for d in [&dir, &bundle, &out, &logs] {
            fs::create_dir_all(d).expect("create test dir");
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
        let short: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let id = format!("ocival-{short}-{}-{n}", std::process::id());
        Ctx {
            dir,
            root,
            bundle,
            out,
            logs,
            id: id.clone(),
            ids: vec![id],
        }
    }

    /// Another container id that this test owns.
    pub fn other_id(&mut self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.id);
        self.ids.push(id.clone());
        id
    }

    pub fn bundle_str(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    /// Runs `runtime --root <root> args...` (stdin from /dev/null, output to
    /// files: a container inherits them and may outlive the command).
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.rt_io(args, None)
    }

    /// Like `rt`, with the container's stdout going to `stdout` (create).
    pub fn rt_io<S: AsRef<OsStr>>(&self, args: &[S], stdout: Option<&Path>) -> Out {
        self.rt_full(args, stdout, None)
    }

    /// Like `rt_io`, with the runtime started at the given oom_score_adj.
    pub fn rt_full<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        stdout: Option<&Path>,
        oom_score_adj: Option<i32>,
    ) -> Out {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let o = stdout
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.logs.join(format!("{n}.out")));
        let e = self.logs.join(format!("{n}.err"));
        let mut cmd = match oom_score_adj {
            None => Command::new(&settings().runtime),
            Some(adj) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "echo $0 > /proc/self/oom_score_adj && exec \"$@\""])
                    .arg(adj.to_string())
                    .arg(&settings().runtime);
                c
            }
        };
        cmd.arg("--root").arg(&self.root).args(args);
        let desc = format!(
            "{} {}",
            settings().runtime.display(),
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (Ok(fo), Ok(fe)) = (fs::File::create(&o), fs::File::create(&e)) else {
            return Out {
                cmd: desc,
                code: -1,
                stdout: String::new(),
                stderr: "cannot create output files".into(),
            };
        };
        let (k, v) = RUNTIME_ENV_MARKER.split_once('=').unwrap_or_default();
        cmd.env(k, v).stdin(Stdio::null()).stdout(fo).stderr(fe);
        let code = match cmd.spawn() {
            Err(err) => {
                return Out {
                    cmd: desc,
                    code: -1,
                    stdout: String::new(),
                    stderr: format!("cannot run the runtime: {err}"),
                }
            }
            Ok(mut child) => {
                let mut status = None;
                wait_until(CMD_TIMEOUT, || {
                    status = child.try_wait().ok().flatten();
                    status.is_some()
                });
                match status {
                    Some(s) => s.code().unwrap_or(128),
                    None => {
                        let _ = child.kill();
                        let _ = child.wait();
                        -1
                    }
                }
            }
        };
        Out {
            cmd: desc,
            code,
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr: fs::read_to_string(&e).unwrap_or_default(),
        }
    }

    /// Where the container `id`'s stdout goes.
    pub fn stdout_path(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.stdout"))
    }

    /// What container `id` has written to its stdout so far.
    pub fn stdout_of(&self, id: &str) -> String {
        fs::read_to_string(self.stdout_path(id)).unwrap_or_default()
    }

    /// Writes `cfg` as the bundle's config.json.
    pub fn write_config(&self, cfg: &Value) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(cfg).expect("config serialises"),
        )
        .expect("write config.json");
    }

    /// `create <id>` of the bundle holding `cfg`.
    pub fn create_id(&self, id: &str, cfg: &Value) -> Out {
        self.write_config(cfg);
        self.rt_io(
            &["create", "--bundle", &self.bundle_str(), id],
            Some(&self.stdout_path(id)),
        )
    }

    /// `create` of the test's container.
    pub fn create(&self, cfg: &Value) -> Out {
        self.create_id(&self.id, cfg)
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.rt(&["kill", id, sig])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    /// The state JSON of `id`.
    pub fn state(&self, id: &str) -> Result<Value, Failure> {
        let o = self.rt(&["state", id]);
        o.success()?;
        serde_json::from_str(&o.stdout).or_fail("state output is not JSON")
    }

    /// The `status` of `id`.
    pub fn status(&self, id: &str) -> Result<String, Failure> {
        Ok(self.state(id)?["status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The host pid of `id` from its state.
    pub fn pid(&self, id: &str) -> Result<i64, Failure> {
        let st = self.state(id)?;
        st["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .or_fail(&format!("state has no pid: {st}"))
    }

    /// Waits until `id` reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> TestResult {
        let mut last = String::new();
        let ok = wait_until(WAIT, || {
            last = self.status(id).unwrap_or_else(|_| "<state failed>".into());
            last == status
        });
        ensure!(ok, "{id} did not become {status} (last status: {last})");
        Ok(())
    }

    /// create + start + wait for stopped; the container's stdout.
    pub fn run_to_end(&self, cfg: &Value) -> Result<String, Failure> {
        self.create(cfg).success()?;
        self.start(&self.id).success()?;
        self.wait_status(&self.id, "stopped")?;
        Ok(self.stdout_of(&self.id))
    }

    /// The base config with `/bin/sh -c script` as the process.
    pub fn sh_config(&self, script: &str) -> Value {
        base_config(&["sh", "-c", script])
    }

    /// Bind-mounts the test's `out` dir read-write at /out.
    pub fn with_out(&self, cfg: &mut Value) {
        add_mount(
            cfg,
            json!({"destination": "/out", "type": "bind", "source": self.out,
                   "options": ["rbind", "rw"]}),
        );
    }

    /// Waits for a file in `out` and returns its content.
    pub fn wait_out(&self, name: &str) -> Result<String, Failure> {
        let p = self.out.join(name);
        ensure!(
            wait_until(WAIT, || p.exists()),
            "{} never appeared",
            p.display()
        );
        Ok(fs::read_to_string(&p).unwrap_or_default())
    }

    pub fn read_out(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.out.join(name)).ok()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.rt(&["delete", "--force", id]);
        }
        detach_mounts_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Detaches whatever a runtime left mounted under `dir` (deepest first), so
/// that removing `dir` never walks into a leaked /proc or /sys.
pub fn detach_mounts_under(dir: &Path) {
    let prefix = format!("{}/", dir.to_string_lossy());
    let mut mps: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mps {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

// ---------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------

/// A config like runc's default (spec 1.0.2, which every runtime under test
/// reads): no terminal, the given args, the shared rootfs read-only, new
/// pid/network/ipc/uts/mount namespaces.
pub fn base_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "noNewPrivileges": true
        },
        "root": {"path": rootfs(), "readonly": true},
        "hostname": "ocival",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    })
}

pub fn add_mount(cfg: &mut Value, m: Value) {
    if let Some(a) = cfg["mounts"].as_array_mut() {
        a.push(m);
    }
}

/// Removes namespace type `t` from the config.
pub fn remove_namespace(cfg: &mut Value, t: &str) {
    if let Some(a) = cfg["linux"]["namespaces"].as_array_mut() {
        a.retain(|n| n["type"] != t);
    }
}

/// Adds (or replaces) namespace `t`, optionally joined by `path`.
pub fn set_namespace(cfg: &mut Value, t: &str, path: Option<&str>) {
    remove_namespace(cfg, t);
    let mut ns = json!({"type": t});
    if let Some(p) = path {
        ns["path"] = json!(p);
    }
    if let Some(a) = cfg["linux"]["namespaces"].as_array_mut() {
        a.push(ns);
    }
}

// ---------------------------------------------------------------------------
// reading the container and the host
// ---------------------------------------------------------------------------

/// The value of `key:` in a /proc/<pid>/status text.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// The namespace link of `pid` (or "self") of type `ns` (`net`, `mnt`...).
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One mountinfo line: (mount point, optional fields, fs type, per-mount options, super options).
pub struct MountLine {
    pub point: String,
    pub optional: String,
    pub fstype: String,
    pub opts: String,
    pub super_opts: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountLine {
                point: pre.get(4)?.to_string(),
                opts: pre.get(5)?.to_string(),
                optional: pre.get(6..).map(|v| v.join(" ")).unwrap_or_default(),
                fstype: post.first()?.to_string(),
                super_opts: post.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `point`.
pub fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> Option<&'a MountLine> {
    mounts.iter().rev().find(|m| m.point == point)
}

pub fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

/// True when /sys/fs/cgroup is the cgroup v2 hierarchy.
pub fn cgroup2_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == 0x6367_7270)
        .unwrap_or(false)
}
