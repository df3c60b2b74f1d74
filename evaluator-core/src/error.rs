//! The crate's one error type.
//!
//! Almost nothing in the core fails: bad flags degrade to warnings (see
//! [`crate::CompiledSnapshot::compile`]) and evaluation always answers. What remains is input
//! that is not a snapshot at all.

use alloc::string::String;
use core::fmt;

/// Why a snapshot could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not JSON, or not an object with `environment` and `version`.
    Parse {
        /// What the JSON parser reported, with line and column.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse { message } => write!(f, "not a snapshot: {message}"),
        }
    }
}

impl core::error::Error for Error {}
