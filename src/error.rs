//! The crate's error type and the `Context` helper that attaches "what we were
//! doing" to low-level errors at the call site.

use std::fmt::Display;

/// Every failure the runtime reports. The CLI prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `config.json` problem: file, JSON path and reason.
    #[error("{file}: {path}: {msg}")]
    Config {
        /// The config file that was read.
        file: String,
        /// Dotted JSON path of the offending value (`process.args`).
        path: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A field of the spec this runtime does not implement (yet).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No container with this id in the state directory.
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    /// `create` of an id that is already taken.
    #[error("container \"{0}\" already exists")]
    Exists(String),
    /// An operation that needs a live container found it stopped.
    #[error("container not running")]
    NotRunning,
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the runtime was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure, already phrased for the user.
    #[error("{0}")]
    Msg(String),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds a plain message error.
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Msg(m.into())
    }
}

/// Attach context to an error from std or nix.
pub trait Context<T> {
    /// Wraps the error with the lazily built description of the operation.
    fn ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: f().to_string(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: f().to_string(),
            source: std::io::Error::from_raw_os_error(e as i32),
        })
    }
}

impl<T> Context<T> for Result<T> {
    fn ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Msg(format!("{}: {e}", f())))
    }
}
