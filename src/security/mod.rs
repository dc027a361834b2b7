//! Privilege settings of the container process: capabilities, user and
//! groups, rlimits, no_new_privs, oom score.

pub mod caps;
pub mod exeseal;
pub mod keyring;
pub mod lsm;
pub mod procfs;
pub mod rlimits;
pub mod seccomp;
pub mod user;
