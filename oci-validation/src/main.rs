//! oci-validation: the project's own OCI runtime-spec conformance suite.
//!
//! One test per normative MUST of runtime.md (state, lifecycle, operations),
//! config.md and config-linux.md that the tested runtime features cover, run
//! against any runtime with runc's command line:
//!
//!     cargo test --test oci-validation                    # target/debug/mydocker
//!     cargo test --test oci-validation -- --runtime /usr/sbin/runc
//!     OCI_RUNTIME=/usr/bin/crun cargo test --test oci-validation -- hooks
//!
//! Arguments: `--runtime PATH` (or `OCI_RUNTIME`, or a path as a positional
//! argument), `--jobs N` / `--test-threads=N` (default 2), `--list`, and name
//! filters (a test runs if its name contains any of them). Other libtest
//! flags cargo may pass are ignored. Prints `ok`/`not ok` per test and a
//! closing `N passed, M failed, K skipped` line; exits 1 if any test failed.
//! Needs root.

mod config;
mod harness;
mod hooks;
mod linux;
mod runtime;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use harness::{Failure, TestResult};

/// One conformance test: a name, the spec section it checks, the check.
pub struct Test {
    pub name: &'static str,
    pub spec: &'static str,
    pub run: fn() -> TestResult,
}

/// Shorthand for the test tables of each module.
#[macro_export]
macro_rules! tests {
    ($($name:literal, $spec:literal => $f:path;)*) => {
        pub fn all() -> Vec<$crate::Test> {
            vec![$($crate::Test { name: $name, spec: $spec, run: $f }),*]
        }
    };
}

struct Args {
    runtime: PathBuf,
    jobs: usize,
    list: bool,
    filters: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut runtime = std::env::var_os("OCI_RUNTIME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut jobs = 2;
    let mut list = false;
    let mut filters = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if a.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--runtime" | "-r" => runtime = Some(PathBuf::from(value("--runtime")?)),
            "--jobs" | "-j" | "--test-threads" => {
                jobs = value(&flag)?
                    .parse()
                    .map_err(|_| format!("{flag} wants a number"))?
            }
            "--list" => list = true,
            "-h" | "--help" => {
                println!(
                    "usage: oci-validation [--runtime PATH] [--jobs N] [--list] [FILTER...]\n\
                     The runtime also comes from OCI_RUNTIME; default: this build's mydocker."
                );
                std::process::exit(0);
            }
            // libtest flags cargo test may pass on: not ours
            f if f.starts_with('-') => {}
            _ if a.contains('/') && std::path::Path::new(&a).is_file() => {
                runtime = Some(PathBuf::from(&a))
            }
            _ => filters.push(a),
        }
    }
    let runtime = runtime.unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mydocker")));
    Ok(Args {
        runtime,
        jobs: jobs.max(1),
        list,
        filters,
    })
}

/// A bare name (`runc`) is looked up in $PATH, like a shell would.
fn resolve(p: &std::path::Path) -> PathBuf {
    if p.components().count() > 1 {
        return p.to_path_buf();
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .unwrap_or_else(|| p.to_path_buf())
}

fn all_tests() -> Vec<Test> {
    let mut v = runtime::all();
    v.extend(hooks::all());
    v.extend(config::all());
    v.extend(linux::all());
    v
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("oci-validation: {e}");
            std::process::exit(2);
        }
    };
    let tests: Vec<Test> = all_tests()
        .into_iter()
        .filter(|t| args.filters.is_empty() || args.filters.iter().any(|f| t.name.contains(f)))
        .collect();
    if args.list {
        for t in &tests {
            println!("{:<48} {}", t.name, t.spec);
        }
        return;
    }
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("oci-validation: needs root (namespaces, mounts, cgroups)");
        std::process::exit(2);
    }
    let runtime = match std::fs::canonicalize(resolve(&args.runtime)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("oci-validation: runtime {}: {e}", args.runtime.display());
            std::process::exit(2);
        }
    };
    let work = match tempfile::Builder::new().prefix("oci-validation-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("oci-validation: temp dir: {e}");
            std::process::exit(2);
        }
    };
    // Containers whose root is mapped to another uid must reach the rootfs.
    let _ = std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    harness::init(harness::Settings {
        runtime: runtime.clone(),
        work: work.path().to_path_buf(),
    });
    if let Err(e) = harness::build_rootfs(&harness::rootfs()) {
        eprintln!("oci-validation: rootfs: {e}");
        std::process::exit(2);
    }
    let version = std::process::Command::new(&runtime)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!("# runtime: {} ({version})", runtime.display());
    println!("1..{}", tests.len());

    let started = Instant::now();
    let tests = Arc::new(tests);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = (0..args.jobs.min(tests.len().max(1)))
        .map(|_| {
            let (tests, next, tx) = (tests.clone(), next.clone(), tx.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(t) = tests.get(i) else { break };
                let r = std::panic::catch_unwind(t.run).unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(Failure::Fail(format!("panicked: {msg}")))
                });
                if tx.send((i, r)).is_err() {
                    break;
                }
            })
        })
        .collect();
    drop(tx);

    // Print in test order as results come in.
    let mut results: Vec<Option<TestResult>> = (0..tests.len()).map(|_| None).collect();
    let (mut shown, mut pass, mut fail, mut skip) = (0, 0, 0, 0);
    for (i, r) in rx {
        results[i] = Some(r);
        while shown < tests.len() {
            let Some(r) = results[shown].take() else {
                break;
            };
            let t = &tests[shown];
            shown += 1;
            match r {
                Ok(()) => {
                    pass += 1;
                    println!("ok {shown} - {}", t.name);
                }
                Err(Failure::Skip(why)) => {
                    skip += 1;
                    println!("ok {shown} - {} # SKIP {why}", t.name);
                }
                Err(Failure::Fail(why)) => {
                    fail += 1;
                    println!("not ok {shown} - {} ({})", t.name, t.spec);
                    for l in why.lines() {
                        println!("#   {l}");
                    }
                }
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
    println!("# {:.1}s", started.elapsed().as_secs_f64());
    println!("{pass} passed, {fail} failed, {skip} skipped");
    harness::detach_mounts_under(work.path());
    drop(work);
    std::process::exit(if fail > 0 { 1 } else { 0 });
}
