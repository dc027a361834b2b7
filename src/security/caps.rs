//! The five capability sets of `process.capabilities`.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The sets translated for the `caps` crate.
#[derive(Debug, Default)]
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

fn convert(set: Option<&Capabilities>, name: &str) -> Result<CapsHashSet> {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let s = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let cap = Capability::from_str(&s).map_err(|_| Error::Config {
            file: "config.json".into(),
            path: format!("process.capabilities.{name}"),
            msg: format!("unknown capability {s:?}"),
        })?;
        out.insert(cap);
    }
    Ok(out)
}

impl CapSets {
    /// Translates the spec's sets; an absent section means no capabilities.
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: convert(c.bounding().as_ref(), "bounding")?,
            effective: convert(c.effective().as_ref(), "effective")?,
            permitted: convert(c.permitted().as_ref(), "permitted")?,
            inheritable: convert(c.inheritable().as_ref(), "inheritable")?,
            ambient: convert(c.ambient().as_ref(), "ambient")?,
        })
    }

    /// The requested capabilities this process cannot grant: those outside
    /// its own bounding set, which nothing (not even a new user namespace)
    /// can add back.
    pub fn ungrantable(&self) -> Vec<Capability> {
        let have = caps::read(None, CapSet::Bounding).unwrap_or_default();
        let mut out: Vec<Capability> = [
            &self.bounding,
            &self.effective,
            &self.permitted,
            &self.inheritable,
            &self.ambient,
        ]
        .into_iter()
        .flatten()
        .filter(|c| !have.contains(c))
        .copied()
        .collect();
        out.sort_by_key(|c| c.index());
        out.dedup();
        out
    }

    /// The sets without the capabilities that cannot be granted here (spec
    /// 1.1+: those are a warning, which `create` logs, not a failure).
    pub fn grantable_only(mut self) -> CapSets {
        let have = caps::read(None, CapSet::Bounding).unwrap_or_default();
        for set in [
            &mut self.bounding,
            &mut self.effective,
            &mut self.permitted,
            &mut self.inheritable,
            &mut self.ambient,
        ] {
            set.retain(|c| have.contains(c));
        }
        self
    }

    /// Drops from the bounding set everything not listed. Needs CAP_SETPCAP,
    /// so it runs before the user switch.
    ///
    /// One PR_CAPBSET_DROP per unlisted capability and nothing else: the
    /// `caps` crate first probes every capability (PR_CAPBSET_READ) and then
    /// reads again before each drop, ~2x the prctl calls on every start
    /// (measured in docs/performance.md). Dropping a capability that is
    /// already out of the set succeeds; EINVAL means this kernel does not
    /// know the capability, so it cannot be in the set either.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if self.bounding.contains(&cap) {
                continue;
            }
            // SAFETY: prctl with integer arguments only.
            let r = unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, cap.index() as libc::c_ulong, 0, 0, 0)
            };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(Error::msg(format!("drop {cap} from the bounding set: {e}")));
                }
            }
        }
        Ok(())
    }

    /// Sets inheritable, effective, permitted and ambient, in the order the
    /// kernel allows (effective must stay within permitted at every step).
    pub fn apply_process(&self) -> Result<()> {
        let set = |which: CapSet, v: &CapsHashSet, name: &str| {
            caps::set(None, which, v)
                .map_err(|e| Error::msg(format!("process.capabilities.{name}: {e}")))
        };
        set(CapSet::Inheritable, &self.inheritable, "inheritable")?;
        let eff_now: CapsHashSet = self
            .effective
            .intersection(&caps::read(None, CapSet::Permitted).unwrap_or_default())
            .cloned()
            .collect();
        set(CapSet::Effective, &eff_now, "effective")?;
        set(CapSet::Permitted, &self.permitted, "permitted")?;
        if eff_now != self.effective {
            set(CapSet::Effective, &self.effective, "effective")?;
        }
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::msg(format!("process.capabilities.ambient: {e}")))?;
        for cap in &self.ambient {
            // The kernel raises an ambient capability only if it is also
            // inheritable and permitted. runc's default config lists ambient
            // without inheritable and runc drops them silently; we log it (at
            // info level: on stderr it would land in the container's output).
            if !self.inheritable.contains(cap) || !self.permitted.contains(cap) {
                log::info!(
                    "process.capabilities.ambient: {cap} is not also inheritable and permitted, so it cannot be raised; skipped"
                );
                continue;
            }
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| {
                Error::msg(format!("process.capabilities.ambient: raise {cap}: {e}"))
            })?;
        }
        Ok(())
    }
}
