//! Foreground `run` as the process supervisor: a child subreaper (unless
//! `--no-subreaper`), so orphans of a container without its own pid
//! namespace are reaped by it. And what the init passes on or refuses: the
//! socket-activation fds.
mod common;

use common::*;
use serde_json::json;

/// Parent of an orphaned grandchild, and the init's own parent (the runtime).
fn orphan_parent(no_subreaper: bool) -> (String, String) {
    let t = Ctx::new(if no_subreaper {
        "nosubreaper"
    } else {
        "subreaper"
    });
    // Without a pid namespace orphans do not go to a container init. The
    // subshell exits (and is waited for) before the next line runs, so the
    // sleep has been reparented by then.
    let mut cfg = t.spec_sh(
        "(sleep 30 & echo $! > /out/orphan); \
         cut -d' ' -f4 /proc/$(cat /out/orphan)/stat; echo $PPID",
    );
    remove_namespace(&mut cfg, "pid");
    t.with_out(&mut cfg);
    t.write_config(&cfg);
    let mut args = vec!["run", "-b", t.bundle_str(), &t.id];
    if no_subreaper {
        args.insert(1, "--no-subreaper");
    }
    let out = t.md(&args);
    out.ok();
    let mut l = out.stdout.lines();
    let got = (l.next().unwrap().to_string(), l.next().unwrap().to_string());
    // the orphan died with the container (it was in its cgroup)
    let orphan: u32 = std::fs::read_to_string(t.out.join("orphan"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until(WAIT, || pid_gone(orphan)), "orphan survived run");
    got
}

#[test]
fn foreground_run_is_a_subreaper() {
    let (orphan_ppid, runtime) = orphan_parent(false);
    assert_eq!(orphan_ppid, runtime, "the orphan went to the runtime");
}

#[test]
fn no_subreaper_leaves_orphans_to_the_host() {
    let (orphan_ppid, runtime) = orphan_parent(true);
    assert_ne!(orphan_ppid, runtime, "--no-subreaper adopted the orphan");
}

/// Socket activation (LISTEN_FDS/LISTEN_PID naming the runtime): the fds go
/// to the container process first, then the --preserve-fds ones; LISTEN_PID
/// becomes the process's own pid.
#[test]
fn run_passes_socket_activation_fds() {
    // The init is pid 1 in its namespace; LISTEN_FDS=1 plus one
    // preserved fd is fds 3 and 4
    let t = Ctx::new("listenfdsrun");
    let mut cfg = t.spec_sh("echo $LISTEN_FDS $LISTEN_PID; cat <&3; cat <&4; ls /proc/self/fd");
    cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("LISTEN_PID=77"));
    t.write_config(&cfg);
    let out = with_extra_fds(
        &t,
        &[("LISTEN_FDS", "1")],
        true,
        &["run", "--preserve-fds", "1", "-b", t.bundle_str(), &t.id],
    );
    out.ok();
    assert_eq!(out.stdout, "1 1\nthree\nfour\n0\n1\n2\n3\n4\n5\n", "{out}");
}
