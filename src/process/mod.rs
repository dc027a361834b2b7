//! The container process: the parent side that clones and drives the init
//! (`spawn`), the init's own setup ending in execve (`init`), the typed
//! sync channel between them (`channel`), and the last steps every container
//! process takes (`finish`).

pub mod channel;
pub mod clone;
pub mod finish;
pub mod init;
pub mod spawn;
