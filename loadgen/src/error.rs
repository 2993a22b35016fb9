//! Why a run could not be made at all (as opposed to a run whose SLO failed). All of these
//! exit with status 2.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A flag or configuration value that makes no sense.
    Argument(String),
    /// The target could not be resolved or connected to.
    Unreachable { target: String, reason: String },
    /// The prefill phase did not register the whole population.
    Prefill(String),
    /// The load generator itself could not set up (poll, timer, threads).
    Setup(std::io::Error),
}

impl Error {
    pub const EXIT_CODE: u8 = 2;
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Argument(msg) => write!(f, "bad argument: {msg}"),
            Error::Unreachable { target, reason } => write!(f, "cannot reach {target}: {reason}"),
            Error::Prefill(msg) => write!(f, "prefill failed: {msg}"),
            Error::Setup(e) => write!(f, "setup failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Setup(e)
    }
}
