//! rarch-logging: a native client for the rarch logging API.
//!
//! The core (everything but [`ffi`]) is plain Rust with no `unsafe` and no C types: a
//! [`Logger`] turns calls into JSON entries, a shared [`pipeline`] delivers them over HTTP with
//! a cached JWT, and the [`buffer`] keeps on disk what cannot be delivered. [`ffi`] is the thin
//! C ABI on top, the only place that deals with raw pointers.

pub mod buffer;
pub mod config;
pub mod entry;
pub mod error;
pub mod ffi;
pub mod fork;
pub mod json;
pub mod jwt;
pub mod level;
pub mod logger;
pub mod pipeline;
pub mod stats;
pub mod transport;

pub use config::{Config, Options};
pub use error::{Error, ErrorKind};
pub use level::Level;
pub use logger::Logger;
pub use stats::StatsSnapshot;
