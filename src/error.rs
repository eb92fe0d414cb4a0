//! Errors of the core: a kind (mapped one to one onto the C status codes) and a message.

use std::fmt;

/// What went wrong. Each kind is one C status code (`rarch_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NullArgument,
    InvalidArgument,
    InvalidLevel,
    InvalidUtf8,
    InvalidJson,
    InvalidTimestamp,
    Config,
    QueueFull,
    TimedOut,
    Io,
    Transport,
    Auth,
    Rejected,
    Closed,
    Panic,
}

/// An error with a message meant for a person. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
