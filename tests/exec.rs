//! `exec`: the new process joins the container (every namespace, cgroup),
//! gets the process settings (user, groups, caps, cwd, env), returns its exit
//! code, and carries no fd but stdio and the passed ones.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

const NAMESPACES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

/// A config whose process waits until killed, with /out bound.
fn sleeper(t: &Ctx) -> Value {
    let mut cfg = t.spec(&["sleep", "1000"]);
    // An explicit path so that runc (MYDOCKER_TEST_BINARY) puts it there too.
    cfg["linux"]["cgroupsPath"] = json!(format!("/mydocker/{}", t.id));
    t.with_out(&mut cfg);
    cfg
}

/// Creates and starts `cfg`; returns the init's host pid.
fn start(t: &Ctx, cfg: &Value) -> u32 {
    t.create_ok(cfg);
    t.md(&["start", &t.id]).ok();
    state_pid(&t.state())
}

fn exec(t: &Ctx, args: &[&str]) -> Out {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    t.md(&full)
}

fn exec_sh(t: &Ctx, script: &str) -> Out {
    exec(t, &[&t.id, "sh", "-c", script])
}

/// exec's own failure: exit 255 and one line on stderr containing `phrase`.
fn assert_exec_failed(out: &Out, phrase: &str) {
    assert_eq!(out.code, 255, "exec should fail with 255\n{out}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr\n{out}");
    // runc words some of these differently
    if is_mydocker() {
        assert!(
            out.stderr.contains(phrase),
            "stderr lacks {phrase:?}\n{out}"
        );
    }
}

fn ns_script() -> String {
    let list = NAMESPACES.join(" ");
    format!("for n in {list}; do echo $n $(readlink /proc/self/ns/$n); done")
}

fn host_ns(pid: u32) -> Vec<String> {
    NAMESPACES
        .iter()
        .map(|n| {
            let l = fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
            format!("{n} {}", l.display())
        })
        .collect()
}

#[test]
fn exec_joins_every_namespace_of_the_init() {
    let t = Ctx::new("execns");
    let pid = start(&t, &sleeper(&t));
    let out = exec_sh(&t, &ns_script());
    out.ok();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, host_ns(pid), "{out}");
    // and they are not the host's
    assert_ne!(
        fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
        fs::read_link("/proc/self/ns/mnt").unwrap()
    );
    // the container sees its init and the exec'd process, nothing of the
    // runtime (which stays outside, the process is its direct child)
    let out = exec(&t, &[&t.id, "ps", "-o", "pid,args"]);
    out.ok();
    let procs: Vec<String> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(procs.len(), 2, "{out}");
    assert_eq!(procs[0], "1 sleep 1000", "{out}");
    assert!(procs[1].ends_with(" ps -o pid,args"), "{out}");
}

#[test]
fn exec_joins_a_user_namespace_container() {
    let t = Ctx::new("execuserns");
    let mut cfg = sleeper(&t);
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let pid = start(&t, &cfg);
    let out = exec_sh(&t, &format!("{}; id -u; id -g", ns_script()));
    out.ok();
    let mut want = host_ns(pid);
    want.push("0".into());
    want.push("0".into());
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, want, "{out}");
    // seen from the host, the exec'd process is the mapped root
    let out = exec(
        &t,
        &[
            "-d",
            "--pid-file",
            t.tmp.path().join("p").to_str().unwrap(),
            &t.id,
            "sleep",
            "100",
        ],
    );
    out.ok();
    let p: u32 = fs::read_to_string(t.tmp.path().join("p"))
        .unwrap()
        .parse()
        .unwrap();
    let st = fs::read_to_string(format!("/proc/{p}/status")).unwrap();
    let uids: Vec<&str> = status_field(&st, "Uid")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(uids, ["300000"; 4], "{st}");
}

#[test]
fn exec_is_in_the_containers_cgroup() {
    let t = Ctx::new("execcg");
    let pid = start(&t, &sleeper(&t));
    let out = exec_sh(&t, "cat /proc/self/cgroup; echo ===; cat /proc/1/cgroup");
    out.ok();
    let (mine, init) = out.stdout.split_once("===\n").unwrap();
    assert_eq!(mine, init, "{out}");
    // host view of a detached exec
    let pf = t.tmp.path().join("exec.pid");
    exec(
        &t,
        &[
            "--detach",
            "--pid-file",
            pf.to_str().unwrap(),
            &t.id,
            "sleep",
            "100",
        ],
    )
    .ok();
    let text = fs::read_to_string(&pf).unwrap();
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "pid file must hold digits only: {text:?}"
    );
    let p: u32 = text.parse().unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
    );
    assert_eq!(host_ns(p), host_ns(pid));
    assert_eq!(
        fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap(),
        "sleep\x00100\0"
    );
    // the container's delete takes the exec'd process with it
    t.md(&["delete", "--force", &t.id]).ok();
    assert!(wait_until(WAIT, || pid_gone(p)), "exec'd process survived");
}

#[test]
fn exec_applies_user_groups_cwd_env_caps() {
    let t = Ctx::new("execproc");
    start(&t, &sleeper(&t));
    let out = exec(
        &t,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "100",
            "--cwd",
            "/tmp",
            "--env",
            "FOO=bar",
            "--env",
            "TERM=dumb",
            &t.id,
            "sh",
            "-c",
            "id; pwd; echo $FOO $TERM; env | grep -c '^TERM='; cat /proc/self/status",
        ],
    );
    out.ok();
    let mut l = out.stdout.lines();
    assert_eq!(
        l.next(),
        Some("uid=1000(tester) gid=1000(tester) groups=100(users)"),
        "{out}"
    );
    assert_eq!(l.next(), Some("/tmp"), "{out}");
    assert_eq!(l.next(), Some("bar dumb"), "{out}");
    assert_eq!(
        l.next(),
        Some("1"),
        "a replaced variable appears once\n{out}"
    );
    let st = out.stdout.as_str();
    // the config's bounding set; a non-root process keeps no effective
    // capability without inheritable+ambient ones (as the init, see process.rs)
    assert_eq!(cap_mask(st, "CapBnd"), DEFAULT_CAP_MASK, "{st}");
    assert_eq!(cap_mask(st, "CapEff"), 0, "{st}");
    assert_eq!(status_field(st, "NoNewPrivs"), Some("1"), "{st}");
    assert_eq!(status_field(st, "Seccomp"), Some("0"), "{st}");
}

#[test]
fn exec_cap_flag_adds_a_capability() {
    let t = Ctx::new("execcap");
    start(&t, &sleeper(&t));
    let out = exec(
        &t,
        &["--cap", "CAP_SYS_ADMIN", &t.id, "cat", "/proc/self/status"],
    );
    out.ok();
    let sys_admin = 1u64 << 21;
    assert_eq!(
        cap_mask(&out.stdout, "CapEff"),
        DEFAULT_CAP_MASK | sys_admin,
        "{out}"
    );
    assert_eq!(
        cap_mask(&out.stdout, "CapBnd"),
        DEFAULT_CAP_MASK | sys_admin
    );
    // never inheritable (CVE-2022-29162): the config has none
    assert_eq!(cap_mask(&out.stdout, "CapInh"), 0, "{out}");
}

#[test]
fn exec_exit_codes() {
    let t = Ctx::new("execcodes");
    start(&t, &sleeper(&t));
    exec_sh(&t, "exit 0").ok_code(0);
    exec_sh(&t, "exit 3").ok_code(3);
    exec_sh(&t, "kill -9 $$").ok_code(128 + 9);
    let out = exec(&t, &[&t.id, "no-such-binary"]);
    assert_exec_failed(&out, "executable file not found in $PATH");
    let out = exec(&t, &[&t.id, "/bin/no-such-binary"]);
    assert_exec_failed(&out, "no such file or directory");
    let out = exec(&t, &[&t.id]);
    assert_exec_failed(&out, "");
    let out = exec(&t, &["no-such-container", "true"]);
    assert_exec_failed(&out, "does not exist");
    // the failed ones left no process behind
    let pids = fs::read_to_string(format!(
        "/sys/fs/cgroup/pids/mydocker/{}/cgroup.procs",
        t.id
    ))
    .or_else(|_| fs::read_to_string(format!("/sys/fs/cgroup/mydocker/{}/cgroup.procs", t.id)))
    .unwrap();
    assert_eq!(
        pids.lines().count(),
        1,
        "cgroup holds more than the init: {pids}"
    );
}

#[test]
fn exec_process_json() {
    let t = Ctx::new("execjson");
    start(&t, &sleeper(&t));
    let pj = t.tmp.path().join("process.json");
    let write = |v: &Value| fs::write(&pj, serde_json::to_vec(v).unwrap()).unwrap();
    write(&json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 100, "additionalGids": [1000]},
        "args": ["sh", "-c", "id; pwd; echo $A; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"],
        "env": [PATH_ENV, "A=from-json"],
        "cwd": "/home/tester",
        "noNewPrivileges": false
    }));
    let out = exec(&t, &["--process", pj.to_str().unwrap(), &t.id]);
    out.ok();
    assert_eq!(
        out.stdout,
        "uid=1000(tester) gid=100(users) groups=1000(tester)\n/home/tester\nfrom-json\n\
         CapEff:\t0000000000000000\nNoNewPrivs:\t0\n",
        "{out}"
    );

    // labels for an LSM this host lacks are refused, never ignored
    if !Path::new("/sys/kernel/security/apparmor").exists() {
        write(
            &json!({"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/",
                      "apparmorProfile": "unconfined"}),
        );
        let out = exec(&t, &["-p", pj.to_str().unwrap(), &t.id]);
        assert_exec_failed(&out, "process.apparmorProfile: AppArmor is not enabled");
        let out = exec(&t, &["--apparmor", "unconfined", &t.id, "true"]);
        assert_exec_failed(&out, "process.apparmorProfile: AppArmor is not enabled");
    }
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        let out = exec(
            &t,
            &[
                "--process-label",
                "system_u:system_r:container_t:s0",
                &t.id,
                "true",
            ],
        );
        assert_exec_failed(&out, "process.selinuxLabel: SELinux is not enabled");
    }
    write(&json!({"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "relative"}));
    let out = exec(&t, &["-p", pj.to_str().unwrap(), &t.id]);
    assert_exec_failed(&out, "process.cwd");
    write(&json!({"user": {"uid": 0, "gid": 0}, "args": "true", "cwd": "/"}));
    let out = exec(&t, &["-p", pj.to_str().unwrap(), &t.id]);
    assert_exec_failed(&out, "args");
}

#[test]
fn exec_into_stopped_created_and_paused_containers() {
    let t = Ctx::new("execstates");
    t.create_ok(&t.spec(&["true"]));
    // runc allows exec into a created container
    exec_sh(&t, "echo in-created").ok();
    t.md(&["start", &t.id]).ok();
    t.wait_status("stopped");
    let out = exec_sh(&t, "true");
    assert_exec_failed(&out, "cannot exec in a stopped container");

    let t = Ctx::new("execpaused");
    start(&t, &sleeper(&t));
    let freezer_v1 = format!("/sys/fs/cgroup/freezer/mydocker/{}/freezer.state", t.id);
    let freezer_v2 = format!("/sys/fs/cgroup/mydocker/{}/cgroup.freeze", t.id);
    let (file, frozen, thawed) = if Path::new(&freezer_v1).exists() {
        (freezer_v1, "FROZEN", "THAWED")
    } else {
        (freezer_v2, "1", "0")
    };
    fs::write(&file, frozen).unwrap();
    // thawed again whatever happens, so that the cleanup can kill it
    struct Thaw(String, &'static str);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = fs::write(&self.0, self.1);
        }
    }
    let _thaw = Thaw(file.clone(), thawed);
    t.wait_status("paused");
    let out = exec_sh(&t, "true");
    assert_exec_failed(&out, "cannot exec in a paused container");
    // --ignore-paused: the process joins the frozen cgroup and freezes
    // before it runs anything; like runc's, exec returns once it has run
    // (after the thaw).
    let mut cmd = t.md_command(&[
        "exec",
        "--ignore-paused",
        "-d",
        &t.id,
        "sh",
        "-c",
        "echo ran > /out/ran",
    ]);
    let (mut child, _o, _e, _desc) = spawn_logged(&t.logs, &mut cmd);
    // Once the process is in the (frozen) cgroup, exec holds no lock:
    // other commands on the container (a `resume`) go through.
    let procs = Path::new(&file).with_file_name("cgroup.procs");
    assert!(
        wait_until(WAIT, || fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .count()
            == 2),
        "the exec'd process never joined the cgroup"
    );
    t.md_timeout(&["kill", &t.id, "CONT"], std::time::Duration::from_secs(5))
        .ok();
    fs::write(&file, thawed).unwrap();
    let st = wait_child(&mut child, WAIT).expect("exec did not return after the thaw");
    assert_eq!(exit_code(st), 0);
    assert_eq!(t.wait_out_file("ran"), "ran\n");
}

#[test]
fn exec_fds_are_stdio_plus_preserved_only() {
    let t = Ctx::new("execfds");
    start(&t, &sleeper(&t));
    // the runtime itself had fds 3 and 4 open: neither leaks
    let out = with_extra_fds(&t, &[], false, &["exec", &t.id, "ls", "/proc/self/fd"]);
    out.ok();
    // `ls` opens one fd for the directory it lists
    assert_eq!(fd_list(&out.stdout), [0, 1, 2, 3], "{out}");
    let out = with_extra_fds(
        &t,
        &[],
        false,
        &[
            "exec",
            "--preserve-fds",
            "1",
            &t.id,
            "sh",
            "-c",
            "cat <&3; ls /proc/self/fd",
        ],
    );
    out.ok();
    let (first, rest) = out.stdout.split_once('\n').unwrap();
    assert_eq!(first, "three", "{out}");
    assert_eq!(fd_list(rest), [0, 1, 2, 3, 4], "{out}");
    // a preserved fd that is not open is an error, not a leak of ours
    let out = exec(&t, &["--preserve-fds", "5", &t.id, "true"]);
    assert_exec_failed(&out, "--preserve-fds");
}

#[test]
fn exec_socket_activation_fds_and_listen_pid() {
    if !is_mydocker() {
        eprintln!("skipped: runc passes LISTEN_FDS to run only, with LISTEN_PID=1");
        return;
    }
    let t = Ctx::new("listenfds");
    start(&t, &sleeper(&t));
    let script = "echo $LISTEN_FDS $LISTEN_PID $$; cat <&3; ls /proc/self/fd";
    let out = with_extra_fds(
        &t,
        &[("LISTEN_FDS", "1")],
        true,
        &["exec", &t.id, "sh", "-c", script],
    );
    out.ok();
    let mut l = out.stdout.lines();
    let ids: Vec<&str> = l.next().unwrap().split(' ').collect();
    assert_eq!(ids[0], "1", "{out}");
    assert_eq!(ids[1], ids[2], "LISTEN_PID is the process's own pid\n{out}");
    assert_eq!(l.next(), Some("three"), "{out}");
    // fd 3 passed, fd 4 (not asked for) closed: the 4 listed is ls's own
    let rest: Vec<&str> = l.collect();
    assert_eq!(fd_list(&rest.join(" ")), [0, 1, 2, 3, 4], "{out}");
}

#[test]
fn exec_cwd_through_an_inherited_fd_cannot_leave_the_container() {
    // CVE-2024-21626: a cwd of /proc/self/fd/N naming a runtime fd that is
    // a host directory would put the process outside its root.
    let t = Ctx::new("execcwdfd");
    start(&t, &sleeper(&t));
    for n in 3..12 {
        let dir = format!("/proc/self/fd/{n}");
        let out = exec(&t, &["--cwd", &dir, &t.id, "pwd"]);
        if out.code == 0 {
            assert!(
                out.stdout.starts_with('/') && !out.stdout.contains("unreachable"),
                "cwd outside the root\n{out}"
            );
        } else {
            assert_eq!(out.code, 255, "{out}");
        }
    }
}

#[test]
fn exec_into_a_sub_cgroup() {
    let t = Ctx::new("execsubcg");
    start(&t, &sleeper(&t));
    let v1 = Path::new("/sys/fs/cgroup/pids/mydocker").join(&t.id);
    let (dir, arg, line_prefix) = if v1.exists() {
        (v1.join("sub"), "pids:sub".to_string(), ":pids:")
    } else {
        let d = Path::new("/sys/fs/cgroup/mydocker").join(&t.id).join("sub");
        (d, "sub".to_string(), "0::")
    };
    fs::create_dir(&dir).unwrap();
    let out = exec(&t, &["--cgroup", &arg, &t.id, "cat", "/proc/self/cgroup"]);
    let _ = fs::remove_dir(&dir);
    out.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(line_prefix))
        .unwrap_or_else(|| panic!("no {line_prefix} line\n{out}"));
    assert!(line.ends_with("/sub"), "{out}");
    let out = exec(&t, &["--cgroup", "../escape", &t.id, "true"]);
    assert_exec_failed(&out, "not a sub-cgroup path");
    let out = exec(&t, &["--cgroup", "nosuchctl:x", &t.id, "true"]);
    assert_exec_failed(&out, "nosuchctl");
}

#[test]
fn exec_foreground_forwards_signals() {
    let t = Ctx::new("execsig");
    start(&t, &sleeper(&t));
    let mut cmd = t.md_command(&[
        "exec",
        &t.id,
        "sh",
        "-c",
        "trap 'echo trapped; exit 7' TERM; echo up > /out/ready; while :; do sleep 0.02; done",
    ]);
    let (mut child, o, _e, _desc) = spawn_logged(&t.logs, &mut cmd);
    t.wait_out_file("ready");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut child, WAIT).expect("exec did not exit after SIGTERM");
    assert_eq!(exit_code(st), 7);
    assert_eq!(fs::read_to_string(o).unwrap(), "trapped\n");
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let t = Ctx::new("execseccomp");
    let mut cfg = sleeper(&t);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    start(&t, &cfg);
    let out = exec_sh(
        &t,
        "grep Seccomp: /proc/self/status; mkdir /dev/shm/d 2>&1 || echo refused",
    );
    out.ok();
    let mut l = out.stdout.lines();
    assert_eq!(
        l.next().map(|s| s.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["Seccomp:", "2"]),
        "{out}"
    );
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.ends_with("refused\n"), "{out}");
    // and a --process one too
    let pj = t.tmp.path().join("p.json");
    fs::write(
        &pj,
        serde_json::to_vec(&json!({"user": {"uid": 1000, "gid": 1000}, "cwd": "/",
            "args": ["sh", "-c", "mkdir /dev/shm/e || echo refused"], "env": [PATH_ENV]}))
        .unwrap(),
    )
    .unwrap();
    let out = exec(&t, &["-p", pj.to_str().unwrap(), &t.id]);
    out.ok();
    assert!(out.stdout.ends_with("refused\n"), "{out}");
}

#[test]
fn exec_joins_the_containers_session_keyring() {
    let t = Ctx::new("execkeys");
    let mut cfg = sleeper(&t);
    // /proc/keys is masked by default; a uid-1000 process sees in it only
    // the keyrings it possesses (they are owned by root).
    cfg["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p != "/proc/keys");
    start(&t, &cfg);
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let mine = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0,
        )
    };
    assert!(mine > 0, "no session keyring here");
    let out = exec(&t, &["--user", "1000:1000", &t.id, "cat", "/proc/keys"]);
    out.ok();
    assert!(
        out.stdout.contains(&format!("_ses.{}:", t.id)),
        "not in the container's keyring\n{out}"
    );
    let ours = format!("{mine:08x} ");
    assert!(
        !out.stdout.lines().any(|l| l.starts_with(&ours)),
        "the caller's session keyring {ours}reached the container\n{out}"
    );
}
