//! OCI hooks: order, namespaces, state on stdin, env, failures, timeouts.
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hook run by the host's /bin/sh that records its stdin, its env and some
/// namespace links under `dir` and appends `name` to `dir/order.log`.
fn host_hook(dir: &Path, name: &str) -> Value {
    let d = dir.to_str().unwrap();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c",
            format!("cat > {d}/$1.json; env > {d}/$1.env; \
                     readlink /proc/self/ns/mnt > {d}/$1.mntns; \
                     readlink /proc/self/ns/net > {d}/$1.netns; \
                     hostname > {d}/$1.hostname; \
                     echo $1 >> {d}/order.log"),
            "sh", name],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOKVAR={name}")],
    })
}

/// A startContainer hook: runs inside the container, writes to the bind-mounted /out.
fn container_hook(name: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c",
            "cat > /out/$1.json; hostname > /out/$1.hostname; ls / > /out/$1.root; echo $1 >> /out/order.log",
            "sh", name],
        "env": ["PATH=/bin:/usr/bin"],
    })
}

fn order(t: &Ctx) -> Vec<String> {
    fs::read_to_string(t.out.join("order.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn pos(v: &[String], name: &str) -> usize {
    v.iter()
        .position(|x| x == name)
        .unwrap_or_else(|| panic!("{name} missing from hook order {v:?}"))
}

fn hook_state(t: &Ctx, name: &str) -> Value {
    let p = t.out.join(format!("{name}.json"));
    let s = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s)
        .unwrap_or_else(|e| panic!("{name} stdin is not state JSON ({e}): {s:?}"))
}

fn read_out(t: &Ctx, file: &str) -> String {
    fs::read_to_string(t.out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn hooks_run_in_order_with_state() {
    let t = Ctx::new("hooksorder");
    let mut cfg =
        t.spec_sh("echo main >> /out/order.log; while [ ! -e /out/stop ]; do sleep 0.02; done");
    t.with_out(&mut cfg);
    cfg["hooks"] = json!({
        "prestart": [host_hook(&t.out, "prestart")],
        "createRuntime": [host_hook(&t.out, "createRuntime")],
        "createContainer": [host_hook(&t.out, "createContainer")],
        "startContainer": [container_hook("startContainer")],
        "poststart": [host_hook(&t.out, "poststart")],
        "poststop": [host_hook(&t.out, "poststop")],
    });
    t.create_ok(&cfg);
    let pid = state_pid(&t.state());

    // create: prestart, createRuntime, then createContainer; nothing else yet
    let o = order(&t);
    assert_eq!(o.len(), 3, "after create: {o:?}");
    assert!(pos(&o, "prestart") < pos(&o, "createContainer"), "{o:?}");
    assert!(
        pos(&o, "createRuntime") < pos(&o, "createContainer"),
        "{o:?}"
    );

    // start: startContainer before the user process; poststart before start returns
    t.md(&["start", &t.id]).ok();
    let o = order(&t);
    assert!(
        o.contains(&"poststart".to_string()),
        "poststart not run when start returned: {o:?}"
    );
    assert!(
        wait_until(WAIT, || order(&t).contains(&"main".to_string())),
        "{:?}",
        order(&t)
    );
    let o = order(&t);
    assert_eq!(o.len(), 6, "{o:?}");
    assert!(
        pos(&o, "createContainer") < pos(&o, "startContainer"),
        "{o:?}"
    );
    assert!(pos(&o, "startContainer") < pos(&o, "main"), "{o:?}");
    assert!(pos(&o, "startContainer") < pos(&o, "poststart"), "{o:?}");

    // delete: poststop last
    fs::write(t.out.join("stop"), "").unwrap();
    t.wait_status("stopped");
    assert!(
        !order(&t).contains(&"poststop".to_string()),
        "poststop ran before delete"
    );
    t.md(&["delete", &t.id]).ok();
    let o = order(&t);
    assert_eq!(o.last().map(String::as_str), Some("poststop"), "{o:?}");
    assert_eq!(o.len(), 7, "{o:?}");

    // every hook got the state on stdin
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let s = hook_state(&t, name);
        assert_eq!(s["id"], t.id.as_str(), "{name}: {s}");
        assert_eq!(s["bundle"], t.bundle_str(), "{name}: {s}");
        assert!(s["status"].is_string(), "{name}: {s}");
        assert!(s["ociVersion"].is_string(), "{name}: {s}");
    }
    for name in ["prestart", "createRuntime", "poststart"] {
        let s = hook_state(&t, name);
        assert_eq!(
            s["pid"], pid,
            "{name} should see the container's host pid: {s}"
        );
    }
    // Hooks in the container's namespaces get the pid as the container sees
    // it: its init is pid 1 of its own pid namespace.
    for name in ["createContainer", "startContainer"] {
        let s = hook_state(&t, name);
        assert_eq!(s["pid"], 1, "{name}: {s}");
    }
    // The environment exists once create runs hooks: "created" (crun agrees).
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        assert_eq!(hook_state(&t, name)["status"], "created", "{name}");
    }
    assert_eq!(hook_state(&t, "poststart")["status"], "running");
    assert_eq!(hook_state(&t, "poststop")["status"], "stopped");

    // namespaces: createRuntime/poststart/poststop on the host,
    // createContainer in the container's mount and network namespaces
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_net = fs::read_link("/proc/self/ns/net").unwrap();
    for name in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            read_out(&t, &format!("{name}.mntns")).trim(),
            host_mnt.to_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            read_out(&t, &format!("{name}.netns")).trim(),
            host_net.to_str().unwrap(),
            "{name}"
        );
    }
    assert_ne!(
        read_out(&t, "createContainer.mntns").trim(),
        host_mnt.to_str().unwrap()
    );
    assert_ne!(
        read_out(&t, "createContainer.netns").trim(),
        host_net.to_str().unwrap()
    );
    assert_eq!(read_out(&t, "startContainer.hostname"), "mydocker\n");
    // startContainer ran after pivot_root: / is the container's rootfs
    assert!(read_out(&t, "startContainer.root")
        .lines()
        .any(|l| l == "masked-file"));

    // hook env is exactly what the config gives
    let env = read_out(&t, "createRuntime.env");
    assert!(env.lines().any(|l| l == "HOOKVAR=createRuntime"), "{env}");
    assert!(
        !env.contains("CARGO_"),
        "runtime env leaked into the hook:\n{env}"
    );
}

#[test]
fn hooks_run_for_run_command() {
    let t = Ctx::new("hooksrun");
    let mut cfg = t.spec_sh("echo main >> /out/order.log");
    t.with_out(&mut cfg);
    cfg["hooks"] = json!({
        "createRuntime": [host_hook(&t.out, "createRuntime")],
        "createContainer": [host_hook(&t.out, "createContainer")],
        "startContainer": [container_hook("startContainer")],
        "poststart": [host_hook(&t.out, "poststart")],
        "poststop": [host_hook(&t.out, "poststop")],
    });
    t.run(&cfg).ok();
    let o = order(&t);
    assert_eq!(o.len(), 6, "{o:?}");
    assert_eq!(
        &o[..3],
        ["createRuntime", "createContainer", "startContainer"],
        "{o:?}"
    );
    assert_eq!(o.last().map(String::as_str), Some("poststop"), "{o:?}");
    assert!(pos(&o, "startContainer") < pos(&o, "main"), "{o:?}");
}

#[test]
fn hook_args_env_multiple_in_order() {
    let t = Ctx::new("hooksmulti");
    let d = t.out.to_str().unwrap().to_string();
    let mut cfg = t.spec(&["true"]);
    let mk = |n: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n}:$X >> {d}/order.log")], "env": [format!("X=x{n}")]});
    cfg["hooks"] = json!({"createRuntime": [mk("1"), mk("2"), mk("3")]});
    t.create_ok(&cfg);
    assert_eq!(order(&t), ["1:x1", "2:x2", "3:x3"]);
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    let t = Ctx::new("hookfail");
    let mut cfg = t.spec(&["true"]);
    let d = t.out.to_str().unwrap();
    cfg["hooks"] = json!({
        "createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo second >> {d}/order.log")]}
        ],
        "createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo cc >> {d}/order.log")]}
        ]
    });
    t.write_config(&cfg);
    t.create().failed();
    t.assert_no_leftovers();
    assert_eq!(
        order(&t),
        Vec::<String>::new(),
        "hooks after a failing hook must not run"
    );
}

#[test]
fn missing_hook_binary_fails_create() {
    let t = Ctx::new("hookmissing");
    let mut cfg = t.spec(&["true"]);
    cfg["hooks"] = json!({"createRuntime": [{"path": "/no/such/hook"}]});
    t.write_config(&cfg);
    let out = t.create();
    out.failed();
    assert!(out.stderr.contains("/no/such/hook"), "{out}");
    t.assert_no_leftovers();
}

#[test]
fn hook_timeout_fails_create_quickly() {
    let t = Ctx::new("hooktimeout");
    let mut cfg = t.spec(&["true"]);
    cfg["hooks"] = json!({
        "createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "exec sleep 30"],
            "env": [t.marker()],
            "timeout": 1
        }]
    });
    t.write_config(&cfg);
    let started = Instant::now();
    let out = t.md_timeout(
        &["create", "--bundle", t.bundle_str(), &t.id],
        Duration::from_secs(15),
    );
    let took = started.elapsed();
    out.failed();
    assert!(
        took < Duration::from_secs(8),
        "create with a 1 s hook timeout took {took:?}\n{out}"
    );
    // the timed-out hook (sleep, carrying the marker in its env) is killed too
    t.assert_no_leftovers();
}

#[test]
fn failing_start_container_hook_fails_start() {
    // A failing startContainer hook stops the container and the lifecycle
    // continues at step 12: it is destroyed and the poststop hooks run.
    let t = Ctx::new("hookstartfail");
    let mut cfg = t.spec_sh("echo main >> /out/order.log");
    t.with_out(&mut cfg);
    let d = t.out.to_str().unwrap();
    cfg["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {d}/order.log")]}]
    });
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).err("startContainer hook #0");
    t.md(&["state", &t.id]).err("does not exist");
    assert_eq!(
        order(&t),
        ["poststop"],
        "the user process ran despite the failing hook, or poststop did not"
    );
    t.assert_no_leftovers();
}

#[test]
fn failing_poststop_hook_does_not_fail_delete() {
    let t = Ctx::new("hookpoststop");
    let mut cfg = t.spec(&["true"]);
    let d = t.out.to_str().unwrap();
    cfg["hooks"] = json!({"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("echo second >> {d}/order.log")]}
    ]});
    t.write_config(&cfg);
    t.md(&["run", "--keep", "--bundle", t.bundle_str(), &t.id])
        .ok();
    t.md(&["delete", &t.id]).ok();
    t.md(&["state", &t.id]).err("does not exist");
    assert_eq!(
        order(&t),
        ["second"],
        "remaining poststop hooks must still run"
    );
}

/// A poststart hook that fails, then one that records that it ran.
fn failing_poststart(t: &Ctx) -> Value {
    let d = t.out.to_str().unwrap();
    json!({"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststart2 >> {d}/order.log")]}
    ], "poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {d}/order.log")]}
    ]})
}

#[test]
fn failing_poststart_hook_fails_start_since_spec_1_3() {
    // runtime-spec 1.3: a failing poststart hook is an error; the container
    // is stopped and destroyed (lifecycle step 12), poststop hooks run.
    let t = Ctx::new("poststart13");
    let mut cfg = t.spec(&["sleep", "100"]);
    cfg["ociVersion"] = json!("1.3.0");
    cfg["hooks"] = failing_poststart(&t);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).err("poststart hook #0");
    t.md(&["state", &t.id]).err("does not exist");
    assert_eq!(
        order(&t),
        ["poststop"],
        "later poststart hooks must not run"
    );
    t.assert_no_leftovers();
}

#[test]
fn failing_poststart_hook_only_warns_before_spec_1_3() {
    // Up to runtime-spec 1.2 a failing poststart hook is logged as a warning
    // and the remaining hooks and the lifecycle go on.
    let t = Ctx::new("poststart12");
    let mut cfg = t.spec(&["sleep", "100"]);
    cfg["ociVersion"] = json!("1.2.1");
    cfg["hooks"] = failing_poststart(&t);
    t.create_ok(&cfg);
    t.md(&["start", &t.id]).ok();
    assert_eq!(t.status(), "running");
    assert_eq!(order(&t), ["poststart2"]);
    t.md(&["delete", "--force", &t.id]).ok();
    assert_eq!(order(&t), ["poststart2", "poststop"]);
}
