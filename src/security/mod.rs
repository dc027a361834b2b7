//! Privilege settings of the container process: capabilities, user and
//! groups, rlimits, no_new_privs, oom score.

pub mod caps;
pub mod keyring;
pub mod rlimits;
pub mod user;
