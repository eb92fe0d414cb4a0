//! rarch-logging: a native client for the rarch logging API.
//!
//! The core (everything but [`ffi`]) is plain Rust with no C types: a [`Logger`] turns calls
//! into JSON entries, a shared [`pipeline`] delivers them over HTTP with a cached JWT, the
//! [`buffer`] keeps on disk what cannot be delivered, and the [`journal`] keeps what
//! `durable=true` accepted safe from a crash. [`ffi`] is the thin C ABI on top, the only place
//! that deals with pointers from C. Outside it, `unsafe` is confined to system calls (`flock`,
//! `fcntl`, `mmap`, `pthread_atfork`) and the journal's mapped memory, each with its reason.

pub mod buffer;
pub mod config;
pub mod entry;
pub mod error;
mod evloop;
pub mod ffi;
pub mod fork;
mod http1;
pub mod inspect;
pub mod journal;
pub mod json;
pub mod jwt;
pub mod level;
pub mod logger;
mod mem;
mod net;
pub mod otlp;
pub mod pipeline;
pub mod ratelimit;
pub mod record;
pub mod redact;
pub mod stats;
pub mod threads;
pub mod tls;
pub mod trace;
pub mod transport;

pub use config::{Config, Options};
pub use error::{Error, ErrorKind};
pub use level::Level;
pub use logger::Logger;
pub use stats::StatsSnapshot;
