//! `exec --cgroup`: placing an exec'd process in an existing sub-cgroup of
//! the container's cgroup, with runc's argument forms: one plain `PATH` (the
//! same sub-path in every hierarchy; the only form on cgroup v2) or any
//! number of `CONTROLLER[,CONTROLLER...]:PATH` (cgroup v1).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::{hierarchies, Hierarchy};
use crate::error::{Error, Result};

/// The directories to join: `paths` (the container's cgroups) with each
/// `--cgroup` argument applied.
pub fn resolve(paths: &[PathBuf], args: &[String]) -> Result<Vec<PathBuf>> {
    if args.is_empty() {
        return Ok(paths.to_vec());
    }
    let subs = parse(args)?;
    if let Some(sub) = subs.get("") {
        return paths.iter().map(|p| join(p, sub)).collect();
    }
    let hs = hierarchies()?;
    let mut out = paths.to_vec();
    let mut done: HashMap<usize, &str> = HashMap::new();
    for (ctrl, sub) in &subs {
        let i = paths
            .iter()
            .position(|p| hierarchy_of(&hs, p).is_some_and(|h| h.controllers.contains(ctrl)))
            .ok_or_else(|| {
                Error::msg(format!(
                    "--cgroup: unknown controller {ctrl} (not a hierarchy of this container)"
                ))
            })?;
        // `cpu:a,cpuacct:b` on a shared cpu,cpuacct hierarchy cannot both hold.
        if let Some(prev) = done.insert(i, sub) {
            if prev != sub.as_str() {
                return Err(Error::msg(format!(
                    "--cgroup: controllers of one hierarchy given different paths ({prev} and {sub})"
                )));
            }
            continue;
        }
        out[i] = join(&paths[i], sub)?;
    }
    Ok(out)
}

/// Splits the arguments into controller → sub-path ("" for the plain form).
fn parse(args: &[String]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for a in args {
        match a.split_once(':') {
            Some((ctrls, path)) => {
                for c in ctrls.split(',') {
                    if c.is_empty() {
                        return Err(Error::msg(format!(
                            "invalid --cgroup argument: {a} (empty <controller> prefix)"
                        )));
                    }
                    if out.insert(c.to_string(), path.to_string()).is_some() {
                        return Err(Error::msg(format!(
                            "invalid --cgroup argument(s): controller {c} specified multiple times"
                        )));
                    }
                }
            }
            None => {
                if args.len() != 1 {
                    return Err(Error::msg(format!(
                        "invalid --cgroup argument: {a} (missing <controller>: prefix)"
                    )));
                }
                out.insert(String::new(), a.clone());
            }
        }
    }
    Ok(out)
}

/// `base/sub`, refusing a sub-path that could leave `base`.
fn join(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::msg(format!(
                    "--cgroup: {sub} is not a sub-cgroup path"
                )))
            }
        }
    }
    Ok(out)
}

/// The hierarchy a cgroup directory lives in (longest mount prefix).
fn hierarchy_of<'a>(hs: &'a [Hierarchy], p: &Path) -> Option<&'a Hierarchy> {
    hs.iter()
        .filter(|h| p.starts_with(&h.mount))
        .max_by_key(|h| h.mount.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_forms() {
        let m = parse(&["sub".into()]).unwrap();
        assert_eq!(m.get(""), Some(&"sub".to_string()));
        let m = parse(&["cpu,cpuacct:a".into(), "pids:b".into()]).unwrap();
        assert_eq!(m.get("cpuacct"), Some(&"a".to_string()));
        assert_eq!(m.get("pids"), Some(&"b".to_string()));
        assert!(parse(&["a".into(), "b".into()]).is_err());
        assert!(parse(&[":a".into()]).is_err());
        assert!(parse(&["cpu:a".into(), "cpu:b".into()]).is_err());
    }

    #[test]
    fn sub_paths_stay_below() {
        let base = Path::new("/sys/fs/cgroup/pids/c");
        assert_eq!(join(base, "/x/y").unwrap(), base.join("x/y"));
        assert!(join(base, "../x").is_err());
        assert!(join(base, "x/../../y").is_err());
    }
}
