//! The container process: the parent side that clones and drives the init
//! (`spawn`), the init's own setup ending in execve (`init`), and the typed
//! sync channel between them (`channel`).

pub mod channel;
pub mod clone;
pub mod init;
pub mod spawn;
