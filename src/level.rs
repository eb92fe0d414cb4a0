//! Log levels, in the protocol's order.

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Fatal = 4,
}

#[cold]
fn invalid_level(v: i32) -> Error {
    Error::new(
        ErrorKind::InvalidLevel,
        format!("invalid level {v}: expected 0 (DEBUG) to 4 (FATAL)"),
    )
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The level for an integer from C, range-checked.
    /// A match, not an index into [`Level::ALL`]: the table would be one more cache line (and
    /// page) for a call to touch.
    #[inline]
    pub fn from_i32(v: i32) -> Result<Level> {
        match v {
            0 => Ok(Level::Debug),
            1 => Ok(Level::Info),
            2 => Ok(Level::Warn),
            3 => Ok(Level::Error),
            4 => Ok(Level::Fatal),
            _ => Err(invalid_level(v)),
        }
    }

    /// The wire name: `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// Parses a level name, case-insensitively; `WARNING` is accepted for `WARN`.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        Level::ALL
            .iter()
            .copied()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .or_else(|| s.eq_ignore_ascii_case("WARNING").then_some(Level::Warn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names() {
        assert!(Level::Debug < Level::Info && Level::Error < Level::Fatal);
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
        assert_eq!(Level::from_i32(4).unwrap(), Level::Fatal);
        assert_eq!(
            Level::from_i32(5).unwrap_err().kind,
            ErrorKind::InvalidLevel
        );
        assert_eq!(
            Level::from_i32(-1).unwrap_err().kind,
            ErrorKind::InvalidLevel
        );
    }
}
