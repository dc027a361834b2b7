//! Device access rules: the spec's `linux.resources.devices` followed by
//! runc's default allow-list, starting from "deny everything" (so a config
//! without rules still gets only the default devices, as with runc).
//!
//! cgroup v1 applies them by writing each rule to devices.allow/deny; v2 has
//! no device files, so the rules are run through the same semantics as the v1
//! kernel code (`Emulator`) and compiled into an eBPF program (`ebpf.rs`).

use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Access bits, as the BPF device context encodes them.
pub const ACC_MKNOD: u8 = 1;
/// Read access.
pub const ACC_READ: u8 = 2;
/// Write access.
pub const ACC_WRITE: u8 = 4;
/// All three.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device type of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every device (`a`): resets the list.
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// One validated rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub allow: bool,
    /// Device type.
    pub kind: Kind,
    /// Major number, None = any.
    pub major: Option<u32>,
    /// Minor number, None = any.
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u8,
}

/// Devices every container may use (runc's default allow-list): mknod of any
/// node, and null, zero, full, random, urandom, tty, console, pts, ptmx, tun.
const DEFAULT_ALLOW: &[(Kind, Option<u32>, Option<u32>, u8)] = &[
    (Kind::Char, None, None, ACC_MKNOD),
    (Kind::Block, None, None, ACC_MKNOD),
    (Kind::Char, Some(1), Some(3), ACC_ALL),
    (Kind::Char, Some(1), Some(8), ACC_ALL),
    (Kind::Char, Some(1), Some(7), ACC_ALL),
    (Kind::Char, Some(5), Some(0), ACC_ALL),
    (Kind::Char, Some(1), Some(5), ACC_ALL),
    (Kind::Char, Some(1), Some(9), ACC_ALL),
    (Kind::Char, Some(136), None, ACC_ALL),
    (Kind::Char, Some(5), Some(2), ACC_ALL),
    (Kind::Char, Some(10), Some(200), ACC_ALL),
];

fn parse_access(s: &str) -> Option<u8> {
    let mut acc = 0;
    for c in s.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    (acc != 0).then_some(acc)
}

/// Validates the spec's rules and appends the default allow-list. `prefix`
/// is the JSON path of the list, for errors.
pub fn rules(spec: &[LinuxDeviceCgroup], prefix: &str) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(spec.len() + DEFAULT_ALLOW.len() + 1);
    // Start from "deny all", whatever the parent cgroup allows.
    out.push(Rule {
        allow: false,
        kind: Kind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    });
    for (i, r) in spec.iter().enumerate() {
        let field = |f: &str| format!("{prefix}[{i}].{f}");
        let kind = match r.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::P) => {
                return Err(Error::msg(format!(
                    "{}: \"p\" is not a cgroup device type (use a, b or c)",
                    field("type")
                )))
            }
        };
        let num = |v: Option<i64>, name: &str| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(Some)
                    .map_err(|_| Error::msg(format!("{}: out of range", field(name)))),
            }
        };
        let access = match r.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => parse_access(a).ok_or_else(|| {
                Error::msg(format!(
                    "{}: {a:?} is not a combination of r, w and m",
                    field("access")
                ))
            })?,
        };
        out.push(Rule {
            allow: r.allow(),
            kind,
            major: num(r.major(), "major")?,
            minor: num(r.minor(), "minor")?,
            access,
        });
    }
    for &(kind, major, minor, access) in DEFAULT_ALLOW {
        out.push(Rule {
            allow: true,
            kind,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

impl Rule {
    /// The v1 devices.allow/deny line.
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            Kind::All => return "a".into(),
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{t} {}:{} {acc}", n(self.major), n(self.minor))
    }
}

/// The v1 kernel's device list semantics: a default (allow or deny) and
/// exceptions to it, built by applying rules in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Emulator {
    /// True when everything not excepted is allowed.
    pub default_allow: bool,
    /// Exceptions to the default (each with the access bits excepted).
    pub exceptions: Vec<Rule>,
}

impl Emulator {
    /// Applies the rules in order to an allow-all start (as a fresh v2 cgroup).
    pub fn from_rules(rules: &[Rule]) -> Emulator {
        let mut e = Emulator {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for r in rules {
            e.apply(r);
        }
        e
    }

    fn apply(&mut self, r: &Rule) {
        if r.kind == Kind::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return;
        }
        let same = |x: &Rule| x.kind == r.kind && x.major == r.major && x.minor == r.minor;
        if r.allow == self.default_allow {
            // A rule agreeing with the default removes those bits from the
            // exception for exactly this device (as the kernel does).
            for x in self.exceptions.iter_mut().filter(|x| same(x)) {
                x.access &= !r.access;
            }
            self.exceptions.retain(|x| x.access != 0);
        } else if let Some(x) = self.exceptions.iter_mut().find(|x| same(x)) {
            x.access |= r.access;
        } else {
            self.exceptions.push(Rule {
                allow: r.allow,
                ..*r
            });
        }
    }
}

/// Applies the rules to a v1 devices cgroup. Each rule is one write(2) on
/// an fd kept open per file (the kernel takes one rule per write).
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    let open = |f: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(f))
            .map_err(|e| Error::msg(format!("{}: {e}", dir.join(f).display())))
    };
    let mut allow = open("devices.allow")?;
    let mut deny = open("devices.deny")?;
    for r in rules {
        let (f, name) = if r.allow {
            (&mut allow, "devices.allow")
        } else {
            (&mut deny, "devices.deny")
        };
        let line = r.v1_line();
        f.write_all(line.as_bytes()).map_err(|e| {
            Error::msg(format!(
                "linux.resources.devices: write {line:?} to {}: {e}",
                dir.join(name).display()
            ))
        })?;
    }
    Ok(())
}

/// The state the kernel reports in devices.list, when it is a deny-by-default
/// list (in allow-by-default mode the kernel only prints `a *:* rwm`).
pub fn read_v1_list(dir: &Path) -> Option<Emulator> {
    let s = std::fs::read_to_string(dir.join("devices.list")).ok()?;
    let mut e = Emulator::default();
    for line in s.lines() {
        let mut f = line.split(' ');
        let (t, mm, acc) = (f.next()?, f.next()?, f.next()?);
        let kind = match t {
            "c" => Kind::Char,
            "b" => Kind::Block,
            _ => return None,
        };
        let (ma, mi) = mm.split_once(':')?;
        let n = |s: &str| {
            if s == "*" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        e.exceptions.push(Rule {
            allow: true,
            kind,
            major: n(ma)?,
            minor: n(mi)?,
            access: parse_access(acc)?,
        });
    }
    Some(e)
}

/// True when two emulated lists allow the same devices.
pub fn same_list(a: &Emulator, b: &Emulator) -> bool {
    if a.default_allow != b.default_allow || a.exceptions.len() != b.exceptions.len() {
        return false;
    }
    a.exceptions.iter().all(|x| b.exceptions.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn default_list_is_deny_plus_defaults() {
        let rules = rules(&[], "x").unwrap();
        assert_eq!(rules[0].v1_line(), "a");
        assert!(!rules[0].allow);
        assert_eq!(rules[3].v1_line(), "c 1:3 rwm");
        assert_eq!(rules[1].v1_line(), "c *:* m");
        let e = Emulator::from_rules(&rules);
        assert!(!e.default_allow);
        assert_eq!(e.exceptions.len(), DEFAULT_ALLOW.len());
    }

    #[test]
    fn emulator_merges_and_removes() {
        let e = Emulator::from_rules(&[
            r(false, Kind::All, None, None, ACC_ALL),
            r(true, Kind::Char, Some(1), Some(3), ACC_READ),
            r(true, Kind::Char, Some(1), Some(3), ACC_WRITE),
            r(true, Kind::Char, Some(1), Some(5), ACC_ALL),
            r(false, Kind::Char, Some(1), Some(5), ACC_ALL),
        ]);
        assert!(!e.default_allow);
        assert_eq!(
            e.exceptions,
            vec![r(true, Kind::Char, Some(1), Some(3), ACC_READ | ACC_WRITE)]
        );
        let e = Emulator::from_rules(&[r(true, Kind::All, None, None, ACC_ALL)]);
        assert!(e.default_allow && e.exceptions.is_empty());
    }

    #[test]
    fn bad_rules_are_refused() {
        let p: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "type": "p", "major": 1, "minor": 3, "access": "rwm"}]"#,
        )
        .unwrap();
        assert!(rules(&p, "x").is_err());
        let a: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "type": "c", "access": "rwx"}]"#).unwrap();
        assert!(rules(&a, "x").is_err());
    }
}
