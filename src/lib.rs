//! MyDocker: an OCI runtime. The CLI (`cli`) parses; `container` holds the
//! lifecycle operations; `process` the clone/init model; the rest are the
//! kernel concerns the init applies, one module each.

pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod logging;
pub mod namespaces;
pub mod net;
pub mod process;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod spec_template;
pub mod state;
pub mod sysctl;
