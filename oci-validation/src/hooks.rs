//! config.md#posix-platform-hooks and the hook steps of runtime.md's lifecycle.
//!
//! Hooks that run in the runtime namespace are the host's /bin/sh writing into
//! the test's `out` dir by its host path; hooks in the container namespace
//! (startContainer) are the container's busybox sh writing to /out.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ensure;
use crate::harness::*;

crate::tests! {
    "hooks/prestart-during-create", "config.md#prestart" => prestart_during_create;
    "hooks/create-runtime-during-create", "config.md#createruntime-hooks" => create_runtime_during_create;
    "hooks/create-container-in-container-ns", "config.md#createcontainer-hooks" => create_container_in_container;
    "hooks/start-container-before-process", "config.md#startcontainer-hooks" => start_container;
    "hooks/poststart-before-start-returns", "config.md#poststart" => poststart;
    "hooks/poststop-after-delete", "config.md#poststop" => poststop;
    "hooks/called-in-listed-order", "config.md#posix-platform-hooks" => listed_order;
    "hooks/state-on-stdin", "config.md#posix-platform-hooks" => state_on_stdin;
    "hooks/in-container-ns-pid", "runtime.md#state (pid)" => container_ns_pid;
    "hooks/args-and-env", "config.md#posix-platform-hooks" => args_env;
    "hooks/timeout-aborts", "config.md#posix-platform-hooks" => timeout;
    "hooks/prestart-failure-errors", "runtime.md#lifecycle step 3" => prestart_failure;
    "hooks/create-runtime-failure-errors", "runtime.md#lifecycle step 4" => create_runtime_failure;
    "hooks/create-container-failure-errors", "runtime.md#lifecycle step 5" => create_container_failure;
    "hooks/start-container-failure-errors", "runtime.md#lifecycle step 7" => start_container_failure;
    "hooks/poststart-failure-errors-1.3", "runtime.md#lifecycle step 9 (1.3.0)" => poststart_failure;
    "hooks/poststop-failure-warns", "runtime.md#lifecycle step 13" => poststop_failure;
}

/// A runtime-namespace hook: appends `name` to out/order, saves its stdin
/// as out/<name>.json and its mount namespace as out/<name>.mnt.
fn host_hook(t: &Ctx, name: &str) -> Value {
    let d = t.out.to_string_lossy();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "cat > {d}/$1.json; readlink /proc/self/ns/mnt > {d}/$1.mnt; echo $1 >> {d}/order"),
            "sh", name],
    })
}

/// A hook that fails with status 1 after noting that it ran.
fn failing_hook(t: &Ctx, name: &str) -> Value {
    let d = t.out.to_string_lossy();
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {d}/order; exit 1")]})
}

fn order(t: &Ctx) -> Vec<String> {
    t.read_out("order")
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn hook_state(t: &Ctx, name: &str) -> Result<Value, Failure> {
    let s = t
        .read_out(&format!("{name}.json"))
        .or_fail(&format!("the {name} hook did not run"))?;
    serde_json::from_str(&s).or_fail(&format!("{name} hook's stdin is not the state JSON: {s:?}"))
}

/// A process that notes it started in out/order, then waits for out/stop.
fn waiting_config(t: &Ctx) -> Value {
    let mut cfg =
        t.sh_config("echo process >> /out/order; while [ ! -e /out/stop ]; do sleep 0.02; done");
    t.with_out(&mut cfg);
    cfg
}

fn prestart_during_create() -> TestResult {
    let t = Ctx::new("hook-prestart");
    let mut cfg = waiting_config(&t);
    cfg["hooks"] = json!({"prestart": [host_hook(&t, "prestart")]});
    t.create(&cfg).success()?;
    ensure!(order(&t) == ["prestart"], "after create: {:?}", order(&t));
    let mnt = t.read_out("prestart.mnt").unwrap_or_default();
    ensure!(
        mnt.trim() == ns_link("self", "mnt"),
        "prestart must run in the runtime namespace"
    );
    Ok(())
}

fn create_runtime_during_create() -> TestResult {
    let t = Ctx::new("hook-createruntime");
    let mut cfg = waiting_config(&t);
    cfg["hooks"] = json!({"createRuntime": [host_hook(&t, "createRuntime")]});
    t.create(&cfg).success()?;
    ensure!(
        order(&t) == ["createRuntime"],
        "after create: {:?}",
        order(&t)
    );
    let mnt = t.read_out("createRuntime.mnt").unwrap_or_default();
    ensure!(
        mnt.trim() == ns_link("self", "mnt"),
        "createRuntime must run in the runtime namespace"
    );
    Ok(())
}

fn create_container_in_container() -> TestResult {
    let t = Ctx::new("hook-createcontainer");
    let mut cfg = waiting_config(&t);
    cfg["hooks"] = json!({"createContainer": [host_hook(&t, "createContainer")]});
    t.create(&cfg).success()?;
    ensure!(
        order(&t) == ["createContainer"],
        "after create: {:?}",
        order(&t)
    );
    let pid = t.pid(&t.id)?.to_string();
    let mnt = t.read_out("createContainer.mnt").unwrap_or_default();
    ensure!(
        mnt.trim() == ns_link(&pid, "mnt"),
        "createContainer must run in the container's mount namespace ({} vs {})",
        mnt.trim(),
        ns_link(&pid, "mnt")
    );
    Ok(())
}

fn start_container() -> TestResult {
    let t = Ctx::new("hook-startcontainer");
    let mut cfg = waiting_config(&t);
    // The path resolves in the container: its busybox sh, writing to /out.
    cfg["hooks"] = json!({"startContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "hostname > /out/hook-hostname; echo startContainer >> /out/order"]
    }]});
    t.create(&cfg).success()?;
    ensure!(
        order(&t).is_empty(),
        "startContainer ran during create: {:?}",
        order(&t)
    );
    t.start(&t.id).success()?;
    ensure!(
        wait_until(WAIT, || order(&t).len() == 2),
        "order: {:?}",
        order(&t)
    );
    ensure!(
        order(&t) == ["startContainer", "process"],
        "startContainer must run before the process: {:?}",
        order(&t)
    );
    ensure!(
        t.read_out("hook-hostname").as_deref() == Some("ocival\n"),
        "startContainer must run in the container's namespaces"
    );
    Ok(())
}

fn poststart() -> TestResult {
    let t = Ctx::new("hook-poststart");
    let mut cfg = waiting_config(&t);
    let d = t.out.to_string_lossy();
    // The hook records what the container pid runs: the process, executed.
    cfg["hooks"] = json!({"poststart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); \
             readlink /proc/$pid/exe > {d}/poststart.exe; echo poststart >> {d}/order")]
    }]});
    t.create(&cfg).success()?;
    ensure!(order(&t).is_empty(), "poststart ran during create");
    t.start(&t.id).success()?;
    ensure!(
        order(&t).contains(&"poststart".to_string()),
        "poststart had not run when start returned: {:?}",
        order(&t)
    );
    let exe = t.read_out("poststart.exe").unwrap_or_default();
    ensure!(
        exe.trim().ends_with("busybox"),
        "poststart ran before the process was executed (container pid ran {exe:?})"
    );
    Ok(())
}

fn poststop() -> TestResult {
    let t = Ctx::new("hook-poststop");
    let mut cfg = t.sh_config("true");
    cfg["hooks"] = json!({"poststop": [host_hook(&t, "poststop")]});
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    ensure!(
        order(&t).is_empty(),
        "poststop ran before delete: {:?}",
        order(&t)
    );
    t.delete(&t.id).success()?;
    ensure!(order(&t) == ["poststop"], "after delete: {:?}", order(&t));
    Ok(())
}

fn listed_order() -> TestResult {
    let t = Ctx::new("hook-order");
    let mut cfg = waiting_config(&t);
    let d = t.out.to_string_lossy();
    let h = |n: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n} >> {d}/order")]});
    let c = |n: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n} >> /out/order")]});
    cfg["hooks"] = json!({
        "prestart": [h("prestart1"), h("prestart2")],
        "createRuntime": [h("createRuntime1"), h("createRuntime2")],
        "createContainer": [h("createContainer1"), h("createContainer2")],
        "startContainer": [c("startContainer1"), c("startContainer2")],
        "poststart": [h("poststart1"), h("poststart2")],
        "poststop": [h("poststop1"), h("poststop2")],
    });
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    ensure!(
        wait_until(WAIT, || order(&t).contains(&"process".to_string())),
        "{:?}",
        order(&t)
    );
    fs::write(t.out.join("stop"), "").or_fail("stop")?;
    t.wait_status(&t.id, "stopped")?;
    t.delete(&t.id).success()?;
    let got = order(&t);
    let want = [
        "prestart1",
        "prestart2",
        "createRuntime1",
        "createRuntime2",
        "createContainer1",
        "createContainer2",
        "startContainer1",
        "startContainer2",
        "poststop1",
        "poststop2",
    ];
    let without: Vec<&String> = got
        .iter()
        .filter(|n| !n.starts_with("poststart") && *n != "process")
        .collect();
    ensure!(without == want, "hooks ran in order {got:?}");
    let p = |n: &str| got.iter().position(|x| x == n);
    ensure!(
        p("poststart1") < p("poststart2") && p("startContainer2") < p("poststart1"),
        "poststart hooks out of order: {got:?}"
    );
    Ok(())
}

fn state_on_stdin() -> TestResult {
    let t = Ctx::new("hook-state");
    let mut cfg = waiting_config(&t);
    cfg["annotations"] = json!({"org.example.hook": "yes"});
    cfg["hooks"] = json!({
        "prestart": [host_hook(&t, "prestart")],
        "createRuntime": [host_hook(&t, "createRuntime")],
        "createContainer": [host_hook(&t, "createContainer")],
        "poststart": [host_hook(&t, "poststart")],
        "poststop": [host_hook(&t, "poststop")],
    });
    t.create(&cfg).success()?;
    let pid = t.pid(&t.id)?;
    t.start(&t.id).success()?;
    fs::write(t.out.join("stop"), "").or_fail("stop")?;
    t.wait_status(&t.id, "stopped")?;
    t.delete(&t.id).success()?;
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        let s = hook_state(&t, name)?;
        ensure!(s["id"] == t.id.as_str(), "{name}: id {s}");
        ensure!(s["bundle"] == t.bundle_str().as_str(), "{name}: bundle {s}");
        ensure!(s["ociVersion"].is_string(), "{name}: ociVersion {s}");
        ensure!(
            s["annotations"] == cfg["annotations"],
            "{name}: annotations {s}"
        );
    }
    // Runtime-namespace hooks see the host pid while there is a process.
    for name in ["prestart", "createRuntime", "poststart"] {
        let s = hook_state(&t, name)?;
        ensure!(
            s["pid"] == pid,
            "{name}: pid must be the host pid {pid}: {s}"
        );
    }
    let st = |n: &str| hook_state(&t, n).map(|s| s["status"].as_str().unwrap_or("").to_string());
    for name in ["prestart", "createRuntime", "createContainer"] {
        let s = st(name)?;
        ensure!(s == "creating" || s == "created", "{name}: status {s}");
    }
    ensure!(
        st("poststart")? == "running",
        "poststart: status {}",
        st("poststart")?
    );
    ensure!(
        st("poststop")? == "stopped",
        "poststop: status {}",
        st("poststop")?
    );
    Ok(())
}

fn container_ns_pid() -> TestResult {
    // For hooks in the container namespace the pid is the one the container
    // sees: its init is pid 1 of its pid namespace.
    let t = Ctx::new("hook-containerpid");
    let mut cfg = waiting_config(&t);
    cfg["hooks"] = json!({
        "createContainer": [host_hook(&t, "createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/startContainer.json"]}],
    });
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    t.wait_out("startContainer.json")?;
    for name in ["createContainer", "startContainer"] {
        let s = hook_state(&t, name)?;
        ensure!(
            s["pid"] == 1,
            "{name}: pid as seen in the container is 1: {s}"
        );
    }
    Ok(())
}

fn args_env() -> TestResult {
    let t = Ctx::new("hook-argsenv");
    let d = t.out.to_string_lossy();
    let mut cfg = t.sh_config("true");
    cfg["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0 $1 $2\" > {d}/args; /usr/bin/env > {d}/env"), "zero", "one", "two"],
        "env": ["HOOK_VAR=value", "PATH=/usr/bin:/bin"]
    }]});
    t.create(&cfg).success()?;
    let args = t.read_out("args").or_fail("the hook did not run")?;
    ensure!(args == "zero one two\n", "hook argv: {args:?}");
    let env = t.read_out("env").unwrap_or_default();
    ensure!(
        env.lines().any(|l| l == "HOOK_VAR=value"),
        "hook env: {env}"
    );
    ensure!(
        !env.contains(RUNTIME_ENV_MARKER),
        "the hook inherited the runtime's environment instead of `env`: {env}"
    );
    Ok(())
}

fn timeout() -> TestResult {
    let t = Ctx::new("hook-timeout");
    let mut cfg = t.sh_config("true");
    cfg["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", "sleep 20"], "timeout": 1
    }]});
    let started = Instant::now();
    t.create(&cfg).error("the hook timed out")?;
    let took = started.elapsed();
    ensure!(
        took < Duration::from_secs(10),
        "a hook with timeout 1 s ran for {took:?}"
    );
    t.rt(&["state", &t.id])
        .error("no container after a failed create")
}

/// A create-time hook failure: an error, the process never runs, and the
/// container is destroyed (step 12), so state finds nothing.
fn create_time_failure(kind: &str) -> TestResult {
    let t = Ctx::new(&format!("hook-fail-{kind}"));
    let mut cfg = t.sh_config("echo process >> /out/order");
    t.with_out(&mut cfg);
    let d = t.out.to_string_lossy();
    cfg["hooks"] = json!({
        kind: [failing_hook(&t, kind),
               {"path": "/bin/sh", "args": ["sh", "-c", format!("echo after >> {d}/order")]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {d}/order")]}],
    });
    t.create(&cfg).error(&format!("a {kind} hook failed"))?;
    let _ = t.start(&t.id);
    t.rt(&["state", &t.id])
        .error("the container is destroyed after the failure")?;
    let o = order(&t);
    ensure!(
        !o.contains(&"process".to_string()) && !o.contains(&"after".to_string()),
        "after a failing {kind} hook: {o:?}"
    );
    Ok(())
}

fn prestart_failure() -> TestResult {
    create_time_failure("prestart")
}

fn create_runtime_failure() -> TestResult {
    create_time_failure("createRuntime")
}

fn create_container_failure() -> TestResult {
    create_time_failure("createContainer")
}

fn start_container_failure() -> TestResult {
    let t = Ctx::new("hook-fail-startcontainer");
    let mut cfg = t.sh_config("echo process >> /out/order");
    t.with_out(&mut cfg);
    let d = t.out.to_string_lossy();
    cfg["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {d}/order")]}],
    });
    t.create(&cfg).success()?;
    t.start(&t.id).error("a startContainer hook failed")?;
    let gone = wait_until(WAIT, || !t.rt(&["state", &t.id]).ok());
    ensure!(
        gone,
        "the container must be stopped and destroyed (lifecycle step 12); state: {:?}",
        t.status(&t.id).ok()
    );
    let o = order(&t);
    ensure!(
        !o.contains(&"process".to_string()),
        "the process ran: {o:?}"
    );
    ensure!(
        o == ["poststop"],
        "poststop hooks must run after destroying: {o:?}"
    );
    Ok(())
}

fn poststart_failure() -> TestResult {
    // runtime-spec 1.3.0 made a failing poststart hook an error that stops
    // and destroys the container (1.0-1.2 only asked for a warning).
    let t = Ctx::new("hook-fail-poststart");
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["ociVersion"] = json!("1.3.0");
    let d = t.out.to_string_lossy();
    cfg["hooks"] = json!({
        "poststart": [failing_hook(&t, "poststart1"),
                      {"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststart2 >> {d}/order")]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {d}/order")]}],
    });
    t.create(&cfg).success()?;
    t.start(&t.id).error("a poststart hook failed")?;
    let gone = wait_until(WAIT, || !t.rt(&["state", &t.id]).ok());
    ensure!(
        gone,
        "the container must be stopped and destroyed: {:?}",
        t.status(&t.id).ok()
    );
    ensure!(
        order(&t) == ["poststart1", "poststop"],
        "hooks after the failure: {:?}",
        order(&t)
    );
    Ok(())
}

fn poststop_failure() -> TestResult {
    let t = Ctx::new("hook-fail-poststop");
    let mut cfg = t.sh_config("true");
    let d = t.out.to_string_lossy();
    cfg["hooks"] = json!({"poststop": [
        failing_hook(&t, "poststop1"),
        {"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop2 >> {d}/order")]}
    ]});
    t.create(&cfg).success()?;
    t.start(&t.id).success()?;
    t.wait_status(&t.id, "stopped")?;
    t.delete(&t.id).success()?;
    ensure!(
        order(&t) == ["poststop1", "poststop2"],
        "the remaining poststop hooks must run: {:?}",
        order(&t)
    );
    t.rt(&["state", &t.id]).error("the container was deleted")
}
