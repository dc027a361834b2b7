//! runtime.md: state, lifecycle and the five operations.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::harness::*;
use crate::{ensure, fail};

crate::tests! {
    "state/requires-id", "runtime.md#query-state" => state_requires_id;
    "state/unknown-container-errors", "runtime.md#query-state" => state_unknown_errors;
    "state/created-fields", "runtime.md#state" => state_created_fields;
    "state/json-schema", "runtime.md#state (schema/state-schema.json)" => state_schema;
    "state/running-after-start", "runtime.md#state" => state_running;
    "state/stopped-after-exit", "runtime.md#state" => state_stopped;
    "state/pid-is-container-process", "runtime.md#state" => state_pid;
    "state/annotations", "runtime.md#state" => state_annotations;
    "lifecycle/create-does-not-run-process", "runtime.md#lifecycle step 2" => create_no_process;
    "lifecycle/create-applies-config", "runtime.md#create" => create_applies_config;
    "lifecycle/config-changes-after-create-ignored", "runtime.md#lifecycle step 2" => config_changes_ignored;
    "lifecycle/start-runs-process", "runtime.md#lifecycle step 8" => start_runs_process;
    "create/requires-id", "runtime.md#create" => create_requires_id;
    "create/duplicate-id-errors", "runtime.md#create" => create_duplicate_id;
    "create/invalid-id-errors", "runtime.md#create" => create_invalid_id;
    "create/unapplicable-config-errors", "runtime.md#create" => create_unapplicable;
    "create/error-leaves-nothing", "runtime.md#errors" => create_error_leaves_nothing;
    "start/requires-id", "runtime.md#start" => start_requires_id;
    "start/not-created-errors", "runtime.md#start" => start_not_created;
    "start/without-process-errors", "runtime.md#start" => start_without_process;
    "kill/requires-id", "runtime.md#kill" => kill_requires_id;
    "kill/stopped-errors", "runtime.md#kill" => kill_stopped;
    "kill/sends-signal", "runtime.md#kill" => kill_sends_signal;
    "kill/created-container", "runtime.md#kill" => kill_created;
    "delete/requires-id", "runtime.md#delete" => delete_requires_id;
    "delete/not-stopped-errors", "runtime.md#delete" => delete_not_stopped;
    "delete/removes-resources", "runtime.md#delete" => delete_removes;
    "delete/keeps-foreign-resources", "runtime.md#delete" => delete_keeps_foreign;
    "delete/id-reusable", "runtime.md#delete" => delete_id_reusable;
}

fn state_requires_id() -> TestResult {
    let t = Ctx::new("state-noid");
    t.rt(&["state"]).error("no container id")
}

fn state_unknown_errors() -> TestResult {
    let t = Ctx::new("state-unknown");
    t.rt(&["state", &t.id]).error("no such container")
}

fn state_created_fields() -> TestResult {
    let t = Ctx::new("state-created");
    t.create(&base_config(&["sleep", "30"])).success()?;
    let st = t.state(&t.id)?;
    ensure!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion missing: {st}"
    );
    ensure!(st["id"] == t.id.as_str(), "id: {st}");
    ensure!(st["status"] == "created", "status: {st}");
    let pid = st["pid"].as_i64().unwrap_or(0);
    ensure!(pid > 0, "pid REQUIRED when created: {st}");
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} is not a live process"
    );
    ensure!(
        st["bundle"] == t.bundle_str().as_str(),
        "bundle must be the absolute bundle path: {st}"
    );
    Ok(())
}

fn state_schema() -> TestResult {
    let t = Ctx::new("state-schema");
    t.create(&base_config(&["true"])).success()?;
    let check = |st: &Value| -> TestResult {
        let o = st
            .as_object()
            .ok_or_else(|| Failure::Fail(format!("not an object: {st}")))?;
        for k in ["ociVersion", "id", "status", "bundle"] {
            ensure!(
                o.get(k).is_some_and(Value::is_string),
                "{k} must be a string: {st}"
            );
        }
        ensure!(
            o.get("pid").is_none_or(|p| p.is_i64()),
            "pid must be an integer: {st}"
        );
        if let Some(a) = o.get("annotations") {
            ensure!(
                a.as_object()
                    .is_some_and(|m| m.values().all(Value::is_string)),
                "annotations must map strings to strings: {st}"
            );
        }
        Ok(())
    };
    check(&t.state(&t.id)?)?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    check(&t.state(&t.id)?)
}

fn state_running() -> TestResult {
    let t = Ctx::new("state-running");
    t.create(&base_config(&["sleep", "30"])).success()?;
    t.start(&t.id).success()?;
    let st = t.state(&t.id)?;
    ensure!(st["status"] == "running", "{st}");
    ensure!(
        st["pid"].as_i64().unwrap_or(0) > 0,
        "pid REQUIRED when running: {st}"
    );
    Ok(())
}

fn state_stopped() -> TestResult {
    let t = Ctx::new("state-stopped");
    t.create(&base_config(&["true"])).success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")
}

fn state_pid() -> TestResult {
    let t = Ctx::new("state-pid");
    t.create(&base_config(&["sleep", "31"])).success()?;
    t.start(&t.id).success()?;
    let pid = t.pid(&t.id)?.to_string();
    let mut cmd = String::new();
    let ok = wait_until(WAIT, || {
        cmd = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        cmd.trim() == "sleep 31"
    });
    ensure!(ok, "pid {pid} runs {cmd:?}, not the container process");
    ensure!(
        ns_link(&pid, "pid") != ns_link("self", "pid"),
        "pid {pid} is not in the container's pid namespace"
    );
    Ok(())
}

fn state_annotations() -> TestResult {
    let t = Ctx::new("state-annotations");
    let mut cfg = base_config(&["true"]);
    cfg["annotations"] = json!({"org.example.a": "1", "org.example.b": "two"});
    t.create(&cfg).success()?;
    let st = t.state(&t.id)?;
    ensure!(st["annotations"] == cfg["annotations"], "{st}");
    Ok(())
}

fn create_no_process() -> TestResult {
    let t = Ctx::new("create-noproc");
    let mut cfg = t.sh_config("echo ran > /out/ran");
    t.with_out(&mut cfg);
    t.create(&cfg).success()?;
    // Give a runtime that wrongly runs the process time to do it.
    wait_until(std::time::Duration::from_millis(200), || {
        t.out.join("ran").exists()
    });
    ensure!(
        !t.out.join("ran").exists(),
        "process.args ran during create"
    );
    t.start(&t.id).success()?;
    t.wait_out("ran")?;
    Ok(())
}

fn create_applies_config() -> TestResult {
    // Everything but process is applied by create: the container's mounts
    // and namespaces exist before start.
    let t = Ctx::new("create-applies");
    let mut cfg = base_config(&["true"]);
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    t.create(&cfg).success()?;
    let pid = t.pid(&t.id)?.to_string();
    for ns in ["mnt", "net", "ipc", "uts", "pid"] {
        ensure!(
            ns_link(&pid, ns) != ns_link("self", ns),
            "no new {ns} namespace after create"
        );
    }
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).or_fail("mountinfo")?;
    let mounts = parse_mountinfo(&mi);
    ensure!(
        mount_at(&mounts, "/mnt/a").is_some_and(|m| m.fstype == "tmpfs"),
        "mounts[] not applied by create:\n{mi}"
    );
    Ok(())
}

fn config_changes_ignored() -> TestResult {
    let t = Ctx::new("config-changes");
    let mut cfg = t.sh_config("echo original > /out/which");
    t.with_out(&mut cfg);
    t.create(&cfg).success()?;
    let mut changed = t.sh_config("echo changed > /out/which");
    t.with_out(&mut changed);
    changed["hostname"] = json!("changed");
    t.write_config(&changed);
    t.start(&t.id).success()?;
    let which = t.wait_out("which")?;
    ensure!(
        which == "original\n",
        "config.json edited after create took effect: {which:?}"
    );
    Ok(())
}

fn start_runs_process() -> TestResult {
    let t = Ctx::new("start-runs");
    let out = t.run_to_end(&base_config(&["echo", "hello", "world"]))?;
    ensure!(out == "hello world\n", "process output {out:?}");
    Ok(())
}

fn create_requires_id() -> TestResult {
    let t = Ctx::new("create-noid");
    t.write_config(&base_config(&["true"]));
    t.rt(&["create", "--bundle", &t.bundle_str()])
        .error("no container id")?;
    let listed = fs::read_dir(&t.root).map(|d| d.count()).unwrap_or(0);
    ensure!(listed == 0, "a container was created without an id");
    Ok(())
}

fn create_duplicate_id() -> TestResult {
    let t = Ctx::new("create-dup");
    t.create(&base_config(&["sleep", "30"])).success()?;
    let pid = t.pid(&t.id)?;
    let mut other = base_config(&["true"]);
    other["hostname"] = json!("other");
    t.create(&other).error("the id is taken")?;
    let st = t.state(&t.id)?;
    ensure!(
        st["status"] == "created" && st["pid"] == pid,
        "the first container changed: {st}"
    );
    Ok(())
}

fn create_invalid_id() -> TestResult {
    let t = Ctx::new("create-badid");
    t.write_config(&base_config(&["true"]));
    for id in ["../escape", "a/b", ""] {
        t.rt(&["create", "--bundle", &t.bundle_str(), id])
            .error(&format!("id {id:?} is not valid"))?;
    }
    ensure!(
        !t.dir.join("escape").exists(),
        "an id with .. made a directory outside the state root"
    );
    Ok(())
}

fn create_unapplicable() -> TestResult {
    // A property that cannot be applied as specified: an rlimit type with
    // no kernel interface.
    let t = Ctx::new("create-unapplicable");
    let mut cfg = base_config(&["true"]);
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NO_SUCH_THING", "soft": 1, "hard": 1}]);
    t.create(&cfg).error("an unknown rlimit")?;
    t.rt(&["state", &t.id])
        .error("no container may exist after a failed create")
}

fn create_error_leaves_nothing() -> TestResult {
    // A create that fails late (a bind mount without a source) leaves no
    // container, no process of it and no mount.
    let t = Ctx::new("create-cleanup");
    let mut cfg = t.sh_config("sleep 30");
    add_mount(
        &mut cfg,
        json!({"destination": "/mnt/a", "type": "bind", "source": t.dir.join("missing"),
               "options": ["rbind"]}),
    );
    t.create(&cfg).error("the bind source does not exist")?;
    t.rt(&["state", &t.id])
        .error("no container after a failed create")?;
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    ensure!(
        !mi.contains(&*rootfs().to_string_lossy()),
        "mounts left on the host"
    );
    Ok(())
}

fn start_requires_id() -> TestResult {
    let t = Ctx::new("start-noid");
    t.rt(&["start"]).error("no container id")
}

fn start_not_created() -> TestResult {
    let t = Ctx::new("start-notcreated");
    t.rt(&["start", &t.id]).error("no such container")?;
    let mut cfg = t.sh_config("echo run >> /out/runs; sleep 30");
    t.with_out(&mut cfg);
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    t.wait_out("runs")?;
    t.start(&t.id).error("the container is running")?;
    ensure!(
        t.status(&t.id)? == "running",
        "start of a running container changed it"
    );
    t.kill(&t.id, "KILL").success()?;
    t.wait_status(&t.id, "stopped")?;
    t.start(&t.id).error("the container is stopped")?;
    ensure!(
        t.status(&t.id)? == "stopped",
        "start of a stopped container changed it"
    );
    ensure!(
        t.read_out("runs").as_deref() == Some("run\n"),
        "the process ran more than once: {:?}",
        t.read_out("runs")
    );
    Ok(())
}

fn start_without_process() -> TestResult {
    let t = Ctx::new("start-noprocess");
    let mut cfg = base_config(&["true"]);
    cfg.as_object_mut().map(|o| o.remove("process"));
    if !t.create(&cfg).ok() {
        // Refusing at create also keeps start from running nothing.
        return Ok(());
    }
    t.start(&t.id).error("process is not set")
}

fn kill_requires_id() -> TestResult {
    let t = Ctx::new("kill-noid");
    t.rt(&["kill"]).error("no container id")
}

fn kill_stopped() -> TestResult {
    let t = Ctx::new("kill-stopped");
    t.create(&base_config(&["true"])).success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    t.kill(&t.id, "KILL").error("the container is stopped")?;
    ensure!(
        t.status(&t.id)? == "stopped",
        "kill changed a stopped container"
    );
    Ok(())
}

fn kill_sends_signal() -> TestResult {
    let t = Ctx::new("kill-signal");
    let mut cfg = t.sh_config(
        "trap 'echo usr1 > /out/got; exit 0' USR1; touch /out/ready; while :; do sleep 0.05; done",
    );
    t.with_out(&mut cfg);
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    t.wait_out("ready")?;
    t.kill(&t.id, "USR1").success()?;
    let got = t.wait_out("got")?;
    ensure!(
        got == "usr1\n",
        "the container did not get SIGUSR1: {got:?}"
    );
    t.wait_status(&t.id, "stopped")
}

fn kill_created() -> TestResult {
    let t = Ctx::new("kill-created");
    t.create(&base_config(&["sleep", "30"])).success()?;
    t.kill(&t.id, "KILL").success()?;
    t.wait_status(&t.id, "stopped")
}

fn delete_requires_id() -> TestResult {
    let t = Ctx::new("delete-noid");
    t.rt(&["delete"]).error("no container id")
}

fn delete_not_stopped() -> TestResult {
    let t = Ctx::new("delete-notstopped");
    t.create(&base_config(&["sleep", "30"])).success()?;
    let pid = t.pid(&t.id)?;
    t.delete(&t.id).error("the container is created")?;
    let st = t.state(&t.id)?;
    ensure!(
        st["status"] == "created" && st["pid"] == pid,
        "delete changed it: {st}"
    );
    t.start(&t.id).success()?;
    t.delete(&t.id).error("the container is running")?;
    let st = t.state(&t.id)?;
    ensure!(
        st["status"] == "running" && st["pid"] == pid,
        "delete changed it: {st}"
    );
    Ok(())
}

/// The cgroup directories of `pid`, as host paths.
fn cgroup_dirs(pid: &str) -> Vec<std::path::PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let mount = if ctrl.is_empty() {
            if cgroup2_host() {
                "/sys/fs/cgroup".to_string()
            } else {
                "/sys/fs/cgroup/unified".to_string()
            }
        } else if let Some(name) = ctrl.strip_prefix("name=") {
            format!("/sys/fs/cgroup/{name}")
        } else {
            format!("/sys/fs/cgroup/{ctrl}")
        };
        if path != "/" {
            out.push(Path::new(&mount).join(path.trim_start_matches('/')));
        }
    }
    out
}

fn delete_removes() -> TestResult {
    let t = Ctx::new("delete-removes");
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("/{}", t.id));
    t.create(&cfg).success()?;
    let pid = t.pid(&t.id)?.to_string();
    let dirs: Vec<_> = cgroup_dirs(&pid)
        .into_iter()
        .filter(|d| d.ends_with(&t.id) && d.exists())
        .collect();
    ensure!(
        !dirs.is_empty(),
        "the container has no cgroup named after cgroupsPath"
    );
    t.kill(&t.id, "KILL").success()?;
    t.wait_status(&t.id, "stopped")?;
    t.delete(&t.id).success()?;
    t.rt(&["state", &t.id]).error("the container was deleted")?;
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    ensure!(
        left.is_empty(),
        "cgroups created by create were not deleted: {left:?}"
    );
    ensure!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z")),
        "the container process is still alive"
    );
    Ok(())
}

fn delete_keeps_foreign() -> TestResult {
    // A cgroup that existed before create is not the container's to delete.
    let t = Ctx::new("delete-foreign");
    let rel = format!("/{}", t.id);
    let base = if cgroup2_host() {
        "/sys/fs/cgroup".to_string()
    } else {
        "/sys/fs/cgroup/pids".to_string()
    };
    if !Path::new(&base).is_dir() {
        crate::skip!("no {base} hierarchy");
    }
    let pre = Path::new(&base).join(&t.id);
    fs::create_dir(&pre).or_fail("make the pre-existing cgroup")?;
    let res = (|| {
        let mut cfg = base_config(&["true"]);
        cfg["linux"]["cgroupsPath"] = json!(rel);
        t.create(&cfg).success()?;
        t.start(&t.id).success()?;
        t.wait_status(&t.id, "stopped")?;
        t.delete(&t.id).success()?;
        ensure!(
            pre.exists(),
            "delete removed a cgroup it did not create: {}",
            pre.display()
        );
        Ok(())
    })();
    let _ = fs::remove_dir(&pre);
    res
}

fn delete_id_reusable() -> TestResult {
    let t = Ctx::new("delete-reuse");
    t.create(&base_config(&["true"])).success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    t.delete(&t.id).success()?;
    t.create(&base_config(&["true"])).success()?;
    match t.status(&t.id)?.as_str() {
        "created" => Ok(()),
        s => fail!("recreated container is {s}"),
    }
}
