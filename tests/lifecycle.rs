//! Container lifecycle: create / start / state / kill / delete / run.
mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// A script that signals readiness in /out and then waits for /out/stop.
const WAIT_FOR_STOP: &str =
    "echo up > /out/ready; while [ ! -e /out/stop ]; do sleep 0.02; done; echo bye";

#[test]
fn create_start_state_stopped_delete() {
    let t = Ctx::new("lifecycle");
    let mut cfg = t.spec_sh(WAIT_FOR_STOP);
    cfg["annotations"] = json!({"org.example.key": "value"});
    t.with_out(&mut cfg);
    t.create_ok(&cfg);

    // created
    let st = t.state();
    assert_eq!(st["id"], t.id.as_str(), "{st}");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["bundle"], t.bundle_str(), "{st}");
    assert_eq!(st["rootfs"], rootfs().to_str().unwrap(), "{st}");
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    assert!(
        st["created"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    assert!(st.get("owner").is_some(), "state has no owner field: {st}");
    assert_eq!(st["annotations"]["org.example.key"], "value", "{st}");
    let pid = state_pid(&st);
    assert!(
        !pid_gone(pid),
        "created container's init pid {pid} is not alive"
    );
    // the init process is in its own pid namespace but has not run the user process yet
    let host_ns = fs::read_link("/proc/self/ns/pid").unwrap();
    let ctr_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(
        host_ns, ctr_ns,
        "container init is not in a new pid namespace"
    );
    assert!(
        !t.out.join("ready").exists(),
        "user process ran before start"
    );

    // running
    t.md(&["start", &t.id]).ok();
    t.wait_out_file("ready");
    let st = t.state();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(
        state_pid(&st),
        pid,
        "pid changed between created and running"
    );

    // stopped
    fs::write(t.out.join("stop"), "").unwrap();
    t.wait_status("stopped");
    let st = t.state();
    assert_eq!(st["pid"], 0, "stopped container should report pid 0: {st}");
    assert!(
        wait_until(WAIT, || pid_gone(pid)),
        "init pid {pid} still alive"
    );

    // delete
    t.md(&["delete", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
    assert!(
        !t.root.join(&t.id).exists(),
        "state dir still there after delete"
    );
}

#[test]
fn create_pid_file_written_before_create_returns() {
    let t = Ctx::new("pidfile");
    t.write_config(&t.spec(&["sleep", "30"]));
    let pf = t.tmp.path().join("ctr.pid");
    t.md(&[
        "create",
        "--bundle",
        t.bundle_str(),
        "--pid-file",
        pf.to_str().unwrap(),
        &t.id,
    ])
    .ok();
    let content = fs::read_to_string(&pf).expect("pid file missing right after create");
    assert!(
        !content.is_empty() && content.bytes().all(|b| b.is_ascii_digit()),
        "pid file should hold digits only, got {content:?}"
    );
    assert_eq!(content.parse::<u32>().unwrap(), state_pid(&t.state()));
}

#[test]
fn create_accepts_flags_after_id() {
    let t = Ctx::new("flagsafter");
    t.write_config(&t.spec(&["sleep", "30"]));
    let pf = t.tmp.path().join("ctr.pid");
    t.md(&[
        "create",
        &t.id,
        "--bundle",
        t.bundle_str(),
        "--pid-file",
        pf.to_str().unwrap(),
    ])
    .ok();
    let st = t.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["bundle"], t.bundle_str(), "{st}");
    let content = fs::read_to_string(&pf).unwrap();
    assert_eq!(content.parse::<u32>().unwrap(), state_pid(&st));
}

#[test]
fn create_uses_cwd_as_default_bundle() {
    let t = Ctx::new("cwdbundle");
    t.write_config(&t.spec(&["sleep", "30"]));
    let mut cmd = t.md_command(&["create", &t.id]);
    cmd.current_dir(&t.bundle);
    let (mut child, _o, e, desc) = spawn_logged(&t.logs, &mut cmd);
    let st = wait_child(&mut child, CMD_TIMEOUT).expect("create timed out");
    assert!(
        st.success(),
        "{desc} failed: {}",
        fs::read_to_string(e).unwrap_or_default()
    );
    let st = t.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["bundle"], t.bundle_str(), "{st}");
}

#[test]
fn start_twice_fails_not_created() {
    let t = Ctx::new("starttwice");
    let mut cfg = t.spec_sh(WAIT_FOR_STOP);
    t.with_out(&mut cfg);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    t.wait_out_file("ready");
    t.md(&["start", &t.id]).err("not created");
    assert_eq!(t.status(), "running");
    fs::write(t.out.join("stop"), "").unwrap();
    t.wait_status("stopped");
    t.md(&["start", &t.id]).err("not created");
    assert_eq!(t.status(), "stopped");
}

#[test]
fn kill_created_container_with_sigkill_variants() {
    let t = Ctx::new("killforms");
    t.write_config(&t.spec(&["sleep", "30"]));
    for (i, sig) in ["KILL", "SIGKILL", "9"].iter().enumerate() {
        let id = t.other_id(&format!("k{i}"));
        t.md(&["create", "--bundle", t.bundle_str(), &id]).ok();
        assert_eq!(t.status_of(&id), "created");
        let pid = state_pid(&t.state_of(&id));
        t.md(&["kill", &id, sig]).ok();
        t.wait_status_of(&id, "stopped");
        assert!(
            wait_until(WAIT, || pid_gone(pid)),
            "pid {pid} survived kill {sig}"
        );
        t.md(&["delete", &id]).ok();
        t.md(&["state", &id]).err("does not exist");
    }
}

/// PID 1 of a pid namespace only gets signals it handles, so the container
/// traps TERM and records it.
#[test]
fn kill_running_container_with_term_variants() {
    let t = Ctx::new("killterm");
    let script = "trap 'echo term > /out/got-$1; exit 42' TERM; echo up > /out/ready-$1; \
                  while :; do sleep 0.02; done";
    for (i, sig) in [None, Some("TERM"), Some("SIGTERM"), Some("15")]
        .iter()
        .enumerate()
    {
        let id = t.other_id(&format!("t{i}"));
        let bundle = t.tmp.path().join(format!("bundle{i}"));
        fs::create_dir(&bundle).unwrap();
        let mut cfg = t.spec(&["sh", "-c", script, "sh", &i.to_string()]);
        t.with_out(&mut cfg);
        t.write_config_in(&bundle, &cfg);
        t.md(&["create", "--bundle", bundle.to_str().unwrap(), &id])
            .ok();
        t.md(&["start", &id]).ok();
        t.wait_out_file(&format!("ready-{i}"));
        assert_eq!(t.status_of(&id), "running");
        match sig {
            Some(s) => t.md(&["kill", &id, s]).ok(),
            None => t.md(&["kill", &id]).ok(),
        };
        assert_eq!(
            t.wait_out_file(&format!("got-{i}")),
            "term\n",
            "signal {sig:?}"
        );
        t.wait_status_of(&id, "stopped");
        t.md(&["delete", &id]).ok();
    }
}

#[test]
fn kill_all_stops_container() {
    let t = Ctx::new("killall");
    let mut cfg = t.spec_sh("sleep 30 & sleep 31 & echo up > /out/ready; wait");
    t.with_out(&mut cfg);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    t.wait_out_file("ready");
    let pid = state_pid(&t.state());
    t.md(&["kill", "--all", &t.id, "KILL"]).ok();
    t.wait_status("stopped");
    assert!(wait_until(WAIT, || pid_gone(pid)));
    t.md(&["delete", &t.id]).ok();
}

#[test]
fn delete_created_without_force_fails_then_force_succeeds() {
    let t = Ctx::new("delcreated");
    t.create_ok(&t.spec(&["sleep", "30"]));
    let pid = state_pid(&t.state());
    t.md(&["delete", &t.id]).err("not stopped");
    let st = t.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(state_pid(&st), pid);
    assert!(!pid_gone(pid));

    t.md(&["delete", "--force", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
    assert!(!t.root.join(&t.id).exists());
    assert!(
        wait_until(WAIT, || pid_gone(pid)),
        "pid {pid} survived delete --force"
    );
}

#[test]
fn delete_running_without_force_fails_then_force_succeeds() {
    let t = Ctx::new("delrunning");
    let mut cfg = t.spec_sh(WAIT_FOR_STOP);
    t.with_out(&mut cfg);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    t.wait_out_file("ready");
    let pid = state_pid(&t.state());
    t.md(&["delete", &t.id]).err("not stopped");
    assert_eq!(t.status(), "running");

    t.md(&["delete", "--force", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
    assert!(
        wait_until(WAIT, || pid_gone(pid)),
        "pid {pid} survived delete --force"
    );
    t.assert_no_leftovers();
}

#[test]
fn cgroup_default_path_created_and_removed() {
    if !is_mydocker() {
        return; // the default cgroup path is MyDocker's own convention
    }
    let t = Ctx::new("cgdefault");
    t.create_ok(&t.spec(&["sleep", "30"]));
    let pid = state_pid(&t.state());
    let v2 = cgroup2_host();
    let base = if v2 {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    let cg = Path::new(base).join("mydocker").join(&t.id);
    let procs = fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("{}: {e}", cg.display()));
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "init pid {pid} not in {}/cgroup.procs: {procs:?}",
        cg.display()
    );
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let ctrls: &[&str] = if v2 { &[""] } else { &["pids", "memory"] };
    for c in ctrls {
        let want = format!(":{c}:/mydocker/{}", t.id);
        assert!(
            host_view.lines().any(|l| l.ends_with(&want)),
            "/proc/{pid}/cgroup lacks {want:?}:\n{host_view}"
        );
    }
    t.md(&["delete", "--force", &t.id]).ok();
    let ctrls: &[&str] = if v2 {
        &[""]
    } else {
        &["pids", "memory", "cpu", "devices", "freezer"]
    };
    for c in ctrls {
        let p = Path::new("/sys/fs/cgroup")
            .join(c)
            .join("mydocker")
            .join(&t.id);
        assert!(
            wait_until(WAIT, || !p.exists()),
            "{} still exists after delete",
            p.display()
        );
    }
}

#[test]
fn run_foreground_forwards_output_and_exit_code() {
    let t = Ctx::new("runexit");
    let out = t.run(&t.spec_sh("echo to-stdout; echo to-stderr >&2; exit 3"));
    out.ok_code(3);
    assert_eq!(out.stdout, "to-stdout\n", "{out}");
    assert_eq!(out.stderr, "to-stderr\n", "{out}");
    // without --keep the container is gone after run
    t.md(&["state", &t.id]).err("does not exist");
    assert!(!t.root.join(&t.id).exists());
}

#[test]
fn run_exit_zero() {
    let t = Ctx::new("runzero");
    let out = t.run(&t.spec(&["true"]));
    out.ok_code(0);
    assert_eq!(out.stdout, "", "{out}");
}

/// A process killed by signal N yields 128+N. PID 1 of a pid namespace cannot
/// be SIGKILLed from inside, so this container shares the host pid namespace.
#[test]
fn run_self_killed_exits_128_plus_signal() {
    let t = Ctx::new("runsigkill");
    let mut cfg = t.spec_sh("kill -9 $$; sleep 5; echo survived");
    remove_namespace(&mut cfg, "pid");
    let out = t.run(&cfg);
    out.ok_code(137);
    assert!(!out.stdout.contains("survived"), "{out}");
}

#[test]
fn run_keep_keeps_stopped_container() {
    let t = Ctx::new("runkeep");
    t.write_config(&t.spec_sh("exit 5"));
    t.md(&["run", "--keep", "--bundle", t.bundle_str(), &t.id])
        .ok_code(5);
    let st = t.state();
    assert_eq!(st["status"], "stopped", "{st}");
    t.md(&["delete", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
}

#[test]
fn run_detach_returns_at_once_and_container_runs() {
    let t = Ctx::new("rundetach");
    let mut cfg = t.spec_sh(WAIT_FOR_STOP);
    t.with_out(&mut cfg);
    t.write_config(&cfg);
    let pf = t.tmp.path().join("ctr.pid");
    let started = Instant::now();
    // the container waits for /out/stop, which nobody creates before run returns
    t.md(&[
        "run",
        "--detach",
        "--bundle",
        t.bundle_str(),
        "--pid-file",
        pf.to_str().unwrap(),
        &t.id,
    ])
    .ok();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "run --detach took {took:?}");
    let st = t.state();
    assert_eq!(st["status"], "running", "{st}");
    let pid = state_pid(&st);
    assert_eq!(fs::read_to_string(&pf).unwrap(), pid.to_string());
    t.wait_out_file("ready");
    fs::write(t.out.join("stop"), "").unwrap();
    t.wait_status("stopped");
    t.md(&["delete", &t.id]).ok();
}

/// `mydocker run` in the foreground relays SIGTERM to the container.
#[test]
fn run_forwards_sigterm_to_container() {
    let t = Ctx::new("runsigterm");
    let mut cfg = t.spec_sh(
        "trap 'echo trapped; exit 7' TERM; echo up > /out/ready; while :; do sleep 0.02; done",
    );
    t.with_out(&mut cfg);
    t.write_config(&cfg);
    let mut cmd = t.md_command(&["run", "--bundle", t.bundle_str(), &t.id]);
    let (mut child, o, e, desc) = spawn_logged(&t.logs, &mut cmd);
    // killed at the end of the test if still there
    struct KillGuard(u32);
    impl Drop for KillGuard {
        fn drop(&mut self) {
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let _guard = KillGuard(child.id());
    let running = wait_until(WAIT, || {
        let o = t.md(&["state", &t.id]);
        o.code == 0 && o.stdout.contains("\"running\"")
    });
    assert!(running, "container never reached running");
    t.wait_out_file("ready"); // the trap is installed
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut child, WAIT);
    let out = Out {
        cmd: desc,
        code: st.map_or(-1, exit_code),
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
    };
    assert!(
        st.is_some(),
        "mydocker run did not exit after SIGTERM\n{out}"
    );
    out.ok_code(7);
    assert_eq!(out.stdout, "trapped\n", "{out}");
}

#[test]
fn run_stdin_is_runtime_stdin() {
    let t = Ctx::new("runstdin");
    t.write_config(&t.spec(&["cat"]));
    let input = t.tmp.path().join("input.txt");
    fs::write(&input, "line one\nline two\n").unwrap();
    let mut cmd = t.md_command(&["run", "--bundle", t.bundle_str(), &t.id]);
    let (mut child, o, e, desc) = {
        // spawn_logged sets stdin to /dev/null; set it after
        let n = t.logs.join("stdin-run");
        let o = n.with_extension("stdout");
        let e = n.with_extension("stderr");
        cmd.stdin(fs::File::open(&input).unwrap())
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap());
        (
            cmd.spawn().unwrap(),
            o,
            e,
            "mydocker run cat < input.txt".to_string(),
        )
    };
    let st = wait_child(&mut child, CMD_TIMEOUT);
    let out = Out {
        cmd: desc,
        code: st.map_or(-1, exit_code),
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
    };
    out.ok();
    assert_eq!(out.stdout, "line one\nline two\n", "{out}");
}

#[test]
fn state_stopped_when_process_killed_from_host() {
    let t = Ctx::new("hostkill");
    t.create_ok(&t.spec(&["sleep", "30"]));
    t.md(&["start", &t.id]).ok();
    let pid = state_pid(&t.state());
    assert_eq!(t.status(), "running");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    t.wait_status("stopped");
    t.md(&["delete", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
}

#[test]
fn global_flags_accepted() {
    let t = Ctx::new("globalflags");
    t.create_ok(&t.spec(&["sleep", "30"]));
    let log = t.tmp.path().join("debug.log");
    let out = run_cmd(
        &t.logs,
        &[
            "--root",
            t.root.to_str().unwrap(),
            "--debug",
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "text",
            "state",
            &t.id,
        ],
        CMD_TIMEOUT,
    );
    out.ok();
    let st: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("state output is not JSON with --debug: {e}\n{out}"));
    assert_eq!(st["status"], "created", "{out}");
}

#[test]
fn create_without_process_then_start_fails_and_leaves_it_created() {
    // config.md: `process` is only REQUIRED when start is called; start must
    // then fail, and a failed operation leaves the container as it was.
    let t = Ctx::new("noprocess");
    let mut cfg = t.spec(&["true"]);
    cfg.as_object_mut().unwrap().remove("process");
    t.create_ok(&cfg);
    assert_eq!(t.status(), "created");
    t.md(&["start", &t.id]).err("process is not set");
    assert_eq!(t.status(), "created");
    t.md(&["start", &t.id]).err("process is not set");
    t.md(&["delete", "--force", &t.id]).ok();
    t.assert_no_leftovers();
    // `run` cannot start it either, and leaves nothing behind.
    t.run(&cfg).err("process is not set");
    t.md(&["state", &t.id]).err("does not exist");
    t.assert_no_leftovers();
}
