//! The container process: the parent side that clones and drives the init
//! (`spawn`), the init's own setup ending in execve (`init`), the typed
//! sync channel between them (`channel`), joining a running container
//! (`exec`), and the last steps both kinds of process share (`finish`).

pub mod channel;
pub mod clone;
pub mod exec;
pub mod finish;
pub mod init;
pub mod spawn;
