//! The C ABI. This is the only module with raw pointers; everything it does is: check the
//! arguments (NULL, UTF-8, range), call the core, turn the result into a status, and never let
//! a panic cross into C. `unwrap`/`expect` are not used here (clippy denies them).
//!
//! Threading (for every function): a `rarch_options` may be used by one thread at a time. A
//! `rarch_logger` may be used by any number of threads at once, except `rarch_logger_free`,
//! which must be the last call on it. Error messages are per thread (`rarch_last_error`);
//! `rarch_flush_msg` returns a flush's message with its status.
#![allow(non_camel_case_types)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use crate::config::Options;
use crate::entry::{utf8, Fields};
use crate::error::{Error, ErrorKind, Result};
use crate::level::Level;
use crate::logger::Logger;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Log levels, lowest first. Functions take a level as an `int` and range-check it, so a value
/// outside this enum is reported as `RARCH_ERR_INVALID_LEVEL`, never undefined behaviour.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rarch_level {
    RARCH_LEVEL_DEBUG = 0,
    RARCH_LEVEL_INFO = 1,
    RARCH_LEVEL_WARN = 2,
    RARCH_LEVEL_ERROR = 3,
    RARCH_LEVEL_FATAL = 4,
}

/// The result of a call. `RARCH_OK` is 0; every failure has its own value, and
/// `rarch_last_error` gives this thread's message for the last failure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rarch_status {
    /// Success.
    RARCH_OK = 0,
    /// A required pointer argument was NULL.
    RARCH_ERR_NULL_ARGUMENT = 1,
    /// An argument is out of its allowed range (e.g. an empty or path-escaping service name,
    /// an entry above `max_entry_bytes`, a stats struct too small, a malformed traceparent).
    RARCH_ERR_INVALID_ARGUMENT = 2,
    /// A level outside `RARCH_LEVEL_DEBUG`..`RARCH_LEVEL_FATAL`.
    RARCH_ERR_INVALID_LEVEL = 3,
    /// A string is not valid UTF-8.
    RARCH_ERR_INVALID_UTF8 = 4,
    /// `context_json` is not valid JSON or not a JSON object.
    RARCH_ERR_INVALID_JSON = 5,
    /// `client_log_datetime` is not an RFC 3339 timestamp.
    RARCH_ERR_INVALID_TIMESTAMP = 6,
    /// An unknown option key or a bad option value (also from an environment variable).
    RARCH_ERR_CONFIG = 7,
    /// The queue is full and the entry was not taken (`on_full` = `block` or `drop`; never
    /// with the default `spill`); it is counted in `dropped_queue_full`.
    RARCH_ERR_QUEUE_FULL = 8,
    /// `rarch_flush` did not see everything delivered in time. Nothing was dropped.
    RARCH_ERR_TIMED_OUT = 9,
    /// A file or directory of the disk buffer could not be used.
    RARCH_ERR_IO = 10,
    /// Blocking mode: the request failed (network, timeout, 5xx); the entry is in the buffer.
    RARCH_ERR_TRANSPORT = 11,
    /// Blocking mode: the server answered 401/403; the entry is in the buffer.
    RARCH_ERR_AUTH = 12,
    /// Blocking mode: the server refused the entry (4xx); it is in `buffer.rejected.jsonl`.
    RARCH_ERR_REJECTED = 13,
    /// The logger can no longer be used.
    RARCH_ERR_CLOSED = 14,
    /// An internal error (a Rust panic) was caught; the call did nothing.
    RARCH_ERR_PANIC = 15,
}

impl rarch_status {
    /// Every status, by value (a unit test checks it against the header).
    const ALL: [rarch_status; 16] = {
        use rarch_status::*;
        [
            RARCH_OK,
            RARCH_ERR_NULL_ARGUMENT,
            RARCH_ERR_INVALID_ARGUMENT,
            RARCH_ERR_INVALID_LEVEL,
            RARCH_ERR_INVALID_UTF8,
            RARCH_ERR_INVALID_JSON,
            RARCH_ERR_INVALID_TIMESTAMP,
            RARCH_ERR_CONFIG,
            RARCH_ERR_QUEUE_FULL,
            RARCH_ERR_TIMED_OUT,
            RARCH_ERR_IO,
            RARCH_ERR_TRANSPORT,
            RARCH_ERR_AUTH,
            RARCH_ERR_REJECTED,
            RARCH_ERR_CLOSED,
            RARCH_ERR_PANIC,
        ]
    };

    /// What `rarch_status_str` says of it.
    fn description(self) -> &'static CStr {
        use rarch_status::*;
        match self {
            RARCH_OK => c"ok",
            RARCH_ERR_NULL_ARGUMENT => c"NULL argument",
            RARCH_ERR_INVALID_ARGUMENT => c"invalid argument",
            RARCH_ERR_INVALID_LEVEL => c"invalid level",
            RARCH_ERR_INVALID_UTF8 => c"invalid UTF-8",
            RARCH_ERR_INVALID_JSON => c"invalid JSON (context must be a JSON object)",
            RARCH_ERR_INVALID_TIMESTAMP => c"invalid timestamp (RFC 3339 expected)",
            RARCH_ERR_CONFIG => c"bad configuration",
            RARCH_ERR_QUEUE_FULL => c"queue full",
            RARCH_ERR_TIMED_OUT => c"timed out",
            RARCH_ERR_IO => c"I/O error",
            RARCH_ERR_TRANSPORT => c"transport error",
            RARCH_ERR_AUTH => c"authentication refused (401/403)",
            RARCH_ERR_REJECTED => c"entry rejected by the server",
            RARCH_ERR_CLOSED => c"closed",
            RARCH_ERR_PANIC => c"internal error (panic)",
        }
    }
}

/// A string given as pointer and length, not NUL-terminated. `ptr == NULL` means "absent"
/// (the protocol's default); `len` bytes from `ptr` must be readable otherwise.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rarch_str {
    pub ptr: *const c_char,
    pub len: usize,
}

/// One entry for `rarch_log_n`. Every field but `message` may be absent (`ptr == NULL`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rarch_entry {
    pub message: rarch_str,
    pub user_id: rarch_str,
    pub tenant_id: rarch_str,
    pub request_id: rarch_str,
    /// A JSON object, e.g. `{"order": 42}`.
    pub context_json: rarch_str,
    /// RFC 3339, e.g. `2026-11-23T22:30:00.123456Z`; other offsets are converted to UTC.
    pub client_log_datetime: rarch_str,
}

/// Counters of the logger's pipeline (shared by every logger with the same options). Set
/// `size` to `sizeof(rarch_statistics)` before the call: the library fills at most that many bytes
/// and sets `size` to what it wrote, so old callers keep working when fields are added.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct rarch_statistics {
    pub size: usize,
    /// Entries taken by rarch_log (after the level filter; not those refused with
    /// RARCH_ERR_QUEUE_FULL).
    pub logged: u64,
    /// Entries below the logger's level.
    pub filtered: u64,
    /// Entries the server accepted (fresh and replayed).
    pub delivered: u64,
    /// Requests that did not deliver.
    pub failed_attempts: u64,
    /// In-memory retries.
    pub retried: u64,
    /// Entries written to the buffer file.
    pub buffered: u64,
    /// Entries delivered from the buffer file.
    pub replayed: u64,
    /// Entries refused by the server (4xx), written to buffer.rejected.jsonl.
    pub rejected: u64,
    /// Buffer lines that did not parse, moved to buffer.corrupt.jsonl.
    pub corrupt: u64,
    /// 401/403 answers (wrong key or token); the entries are kept.
    pub auth_failures: u64,
    /// Dropped: the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped: the buffer reached buffer_max_total_bytes (oldest segment deleted).
    pub dropped_buffer_cap: u64,
    /// Dropped: the buffer file could not be written.
    pub dropped_io: u64,
    /// Entries in memory now.
    pub queue_len: u64,
    /// Entries dead-lettered to buffer.rejected.jsonl after max_attempts failed attempts while
    /// the server delivered other entries (a "poison" entry).
    pub poisoned: u64,
    /// Requests in flight the pipeline allows now (the adaptive concurrency limit; with
    /// concurrency=fixed, connections).
    pub concurrency_limit: u64,
    /// The median round-trip time of the pipeline's last 256 requests, in microseconds.
    pub rtt_p50_us: u64,
    /// Panics caught in a sending thread's request (the entry was retried; the thread went on).
    pub sender_panics: u64,
    /// Entries dropped by a logger's `rate_limit` (each counted in a summary entry).
    pub dropped_rate_limit: u64,
}

/// Options for `rarch_logger_new` (opaque). See `rarch_options_set` for the keys.
pub struct rarch_options {
    inner: Options,
}

/// A logger (opaque).
pub struct rarch_logger {
    inner: Logger,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(e: &Error) {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(&e.message);
    });
}

fn status_of(kind: ErrorKind) -> rarch_status {
    use rarch_status::*;
    match kind {
        ErrorKind::NullArgument => RARCH_ERR_NULL_ARGUMENT,
        ErrorKind::InvalidArgument => RARCH_ERR_INVALID_ARGUMENT,
        ErrorKind::InvalidLevel => RARCH_ERR_INVALID_LEVEL,
        ErrorKind::InvalidUtf8 => RARCH_ERR_INVALID_UTF8,
        ErrorKind::InvalidJson => RARCH_ERR_INVALID_JSON,
        ErrorKind::InvalidTimestamp => RARCH_ERR_INVALID_TIMESTAMP,
        ErrorKind::Config => RARCH_ERR_CONFIG,
        ErrorKind::QueueFull => RARCH_ERR_QUEUE_FULL,
        ErrorKind::TimedOut => RARCH_ERR_TIMED_OUT,
        ErrorKind::Io => RARCH_ERR_IO,
        ErrorKind::Transport => RARCH_ERR_TRANSPORT,
        ErrorKind::Auth => RARCH_ERR_AUTH,
        ErrorKind::Rejected => RARCH_ERR_REJECTED,
        ErrorKind::Closed => RARCH_ERR_CLOSED,
        ErrorKind::Panic => RARCH_ERR_PANIC,
    }
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> Error {
    let what = crate::threads::caught(payload.as_ref());
    Error::new(ErrorKind::Panic, format!("internal error (panic): {what}"))
}

/// Runs `f` behind the panic boundary and turns its result into a status.
#[link_section = ".text.hot.rarch_log"]
fn status(f: impl FnOnce() -> Result<()>) -> rarch_status {
    let r = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_error(p)));
    match r {
        Ok(()) => rarch_status::RARCH_OK,
        Err(e) => {
            let s = status_of(e.kind);
            set_error(&e);
            s
        }
    }
}

/// Runs `f` behind the panic boundary; on error or panic, records it and returns `fallback`.
fn value<T>(fallback: T, f: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_error(p))) {
        Ok(v) => v,
        Err(e) => {
            set_error(&e);
            fallback
        }
    }
}

fn null(what: &str) -> Error {
    Error::new(ErrorKind::NullArgument, format!("{what} is NULL"))
}

/// A reference from a pointer, or a NULL-argument error naming it.
macro_rules! non_null {
    ($ptr:expr, $name:literal) => {
        // SAFETY: the caller passes NULL or a valid pointer (documented for each function).
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return Err(null($name)),
        }
    };
}

/// `bytes` checked as UTF-8. ASCII, the common case, is recognised first by a faster test
/// than the full UTF-8 check.
#[inline]
#[link_section = ".text.hot.rarch_log"]
fn text<'a>(field: &str, bytes: &'a [u8]) -> Result<&'a str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    utf8(field, bytes)
}

/// An optional NUL-terminated string, checked as UTF-8. Inlined into each of its five uses:
/// called, it returns its `Result<Option<&str>>` through memory (about 140 more instructions
/// a call).
#[inline(always)]
#[link_section = ".text.hot.rarch_log"]
unsafe fn opt_cstr<'a>(p: *const c_char, field: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, NUL-terminated by the caller's contract: its length, then its bytes
    // before the NUL.
    let bytes =
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), crate::mem::cstr_len(p.cast())) };
    text(field, bytes).map(Some)
}

#[link_section = ".text.hot.rarch_log"]
unsafe fn req_cstr<'a>(p: *const c_char, field: &str) -> Result<&'a str> {
    // SAFETY: forwarded contract.
    unsafe { opt_cstr(p, field) }?.ok_or_else(|| null(field))
}

/// An optional pointer+length string, checked as UTF-8.
#[link_section = ".text.hot.rarch_log"]
unsafe fn opt_str<'a>(s: &rarch_str, field: &str) -> Result<Option<&'a str>> {
    if s.ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: `len` readable bytes at `ptr` by the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr.cast::<u8>(), s.len) };
    text(field, bytes).map(Some)
}

/// The fields of a `rarch_entry`, checked as UTF-8 (`message` required).
///
/// # Safety
/// Each string of `e` has `ptr == NULL` or `len` readable bytes at `ptr`.
#[inline(always)]
#[link_section = ".text.hot.rarch_log"]
unsafe fn entry_fields<'a>(
    e: &rarch_entry,
    trace: Option<crate::trace::Trace>,
) -> Result<Fields<'a>> {
    // SAFETY: forwarded contract.
    unsafe {
        Ok(Fields {
            message: opt_str(&e.message, "message")?.ok_or_else(|| null("message"))?,
            user_id: opt_str(&e.user_id, "user_id")?,
            tenant_id: opt_str(&e.tenant_id, "tenant_id")?,
            request_id: opt_str(&e.request_id, "request_id")?,
            context_json: opt_str(&e.context_json, "context_json")?,
            client_log_datetime: opt_str(&e.client_log_datetime, "client_log_datetime")?,
            trace,
        })
    }
}

/// Makes an empty options object. Free it with `rarch_options_free`.
///
/// Returns NULL only if memory ran out (see `rarch_last_error`).
#[no_mangle]
pub extern "C" fn rarch_options_new() -> *mut rarch_options {
    crate::threads::quiet_panics();
    value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(rarch_options {
            inner: Options::new(),
        })))
    })
}

/// Sets one option; the value is checked now. Keys (environment variable, where there is
/// one, and default in brackets; an unset key falls back to its environment variable, then
/// to the default; one key per item: the library's tests check this list against its own
/// table of options, and each binding's tests check theirs against it):
/// - `sink` (rarch): the wire protocol: `rarch` (the logging API, one JWT-signed entry per
///   POST) or `otlp` (OTLP/HTTP logs in protobuf or OTLP/JSON, see otlp_protocol, many entries
///   per POST, to an OpenTelemetry Collector or any OTLP backend; the JWT only when api_key is
///   set).
/// - `url` (RARCH_LOGGING_URL, http://localhost:8080/log): the endpoint, http or https. With
///   sink=otlp: the logs endpoint, falling back to OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, then
///   OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs, then http://localhost:4318/v1/logs.
/// - `api_key` (RARCH_LOGGING_API_KEY, empty): the HS256 secret. Never printed or written.
/// - `level` (RARCH_LOGGING_DEFAULT_LEVEL, DEBUG): DEBUG, INFO, WARN, ERROR or FATAL.
/// - `mode` (threaded): `threaded` (rarch_log enqueues) or `blocking` (rarch_log posts).
/// - `buffer_dir` (./var/log): the disk buffer is `<buffer_dir>/<service>/buffer.jsonl`.
/// - `timeout_ms` (2000): timeout of each phase of a request.
/// - `queue_capacity` (8192): entries held in memory in the queue (and as many in the spill
///   overflow); with on_full=spill, each logging thread's lane holds as many more (see
///   rarch_log), and past that takes burst_memory_bytes.
/// - `burst_memory_bytes` (8388608): with on_full=spill and durable=false, the memory the
///   logging threads' lanes may take together past queue_capacity entries in a burst, while
///   the spill thread writes the excess to disk; a call waits for the spill thread only once
///   it is taken, or once its own lane holds 16 MiB. 0: none (a call whose lane is full waits
///   at once).
/// - `connections` (64): the most requests in flight at once, all on the sender's event loop
///   (through a proxy, a sender thread each, started as the concurrency limit grows).
/// - `concurrency` (adaptive): `adaptive` finds the requests in flight the server sustains
///   (AIMD on round-trip times and back-pressure), up to `connections`; `fixed` keeps
///   `connections` always.
/// - `close_timeout_ms` (5000): how long rarch_logger_free delivers before writing the rest to disk.
/// - `mirror` (off): `off`, `stdout` or `stderr`: also print each entry as one line.
/// - `max_retries` (5): in-memory retries before an entry goes to disk.
/// - `max_attempts` (10): failed attempts of one entry, counted while the server delivers
///   others (across live sends, replays and restarts), before it is dead-lettered.
/// - `backoff_initial_ms` (100): the first retry delay (full-jitter exponential backoff).
/// - `backoff_max_ms` (30000): the largest retry delay, also the slowest outage probe.
/// - `on_full` (spill): `spill` (to disk, by the spill thread; the caller never writes to
///   disk. In a burst that outruns the senders, the spill thread takes the entries of a
///   thread's lane past half its capacity as they are, 512 at a time, and appends them raw to
///   the overflow's segment, moved into buffer.jsonl once the burst is over. A call that finds
///   its lane full (past queue_capacity and burst_memory_bytes) waits for the next such step,
///   woken when it is written (0.15 ms at the median on a local disk, 0.4-0.6 ms at p90, a few
///   ms when the spill thread itself waits for a CPU); after 1 s of a stalled disk the entry
///   is refused with RARCH_ERR_QUEUE_FULL, counted), `block` (wait up to block_timeout_ms,
///   then RARCH_ERR_QUEUE_FULL) or `drop` (RARCH_ERR_QUEUE_FULL at once).
/// - `block_timeout_ms` (100): the wait of on_full=block.
/// - `max_entry_bytes` (1048576): largest JSON entry accepted.
/// - `buffer_max_file_bytes` (5242880): rotation size of buffer.jsonl.
/// - `buffer_max_total_bytes` (268435456): cap of a service's buffer files; oldest dropped.
/// - `durable` (false): true copies each entry into a crash journal (a shared memory-mapped
///   file in the buffer directory) before rarch_log returns: it survives a crash or kill -9 of
///   the process (the next logger of the service recovers it), not a power loss (no fsync).
/// - `ca_file` (empty: the system roots): PEM CA certificates to trust for https.
/// - `token_lifetime_s` (3600): JWT lifetime; tokens are re-signed at half of it.
/// - `headers` (OTEL_EXPORTER_OTLP_LOGS_HEADERS, empty): with sink=otlp, request headers as
///   `k1=v1,k2=v2` (values percent-decoded; then OTEL_EXPORTER_OTLP_HEADERS). Never printed or
///   written.
/// - `compression` (none): with sink=otlp, `none` or `gzip` (the request body).
/// - `batch_max_entries` (512): with sink=otlp, the most entries in one request.
/// - `batch_max_bytes` (1048576): with sink=otlp, the most bytes of entries in one request
///   (before encoding).
/// - `batch_linger_ms` (20): with sink=otlp, how long a batch that is not full waits for more;
///   a flush sends at once.
/// - `events` (off): what `rarch_poll_events` reports: `off` (nothing is made), `problems`
///   (every kind but DELIVERED) or `all`.
/// - `events_capacity` (10000): the most events waiting to be polled; past it one
///   RARCH_EVENT_EVENTS_LOST counts the rest.
/// - `redact_keys` (empty): context keys, comma-separated, matched in any case at any depth
///   (inside arrays too), whose values become the string "[REDACTED]" before the entry is
///   copied anywhere: no redacted value reaches the network or a file under buffer_dir.
/// - `rate_limit` (0): entries a second the logger takes below ERROR (0: no limit); the rest are
///   dropped (RARCH_OK is returned), counted in `dropped_rate_limit`, and reported by summary
///   entries at WARN, at most one a second and a last one at flush or free: message
///   `suppressed N entries (rate_limit R/s)`, context `{"suppressed":N,"by_level":{...}}`.
///   ERROR and FATAL are never limited.
/// - `rate_limit_burst` (0): entries the logger may take at once (0: a second's worth).
/// - `otlp_protocol` (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, http/protobuf): with sink=otlp,
///   `http/protobuf` (Content-Type application/x-protobuf) or `http/json` (OTLP/JSON); unset,
///   OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL. `grpc` is refused
///   (it needs HTTP/2): use http/protobuf, on the Collector's OTLP/HTTP port 4318.
/// - `resource_attributes` (OTEL_RESOURCE_ATTRIBUTES, empty): with sink=otlp, resource
///   attributes as `k1=v1,k2=v2` (values percent-decoded), added to OTEL_RESOURCE_ATTRIBUTES's
///   and winning over them key by key; besides them the resource has telemetry.sdk.name
///   (rarch-logging), telemetry.sdk.language, telemetry.sdk.version, host.name and
///   process.pid (which an attribute of the same key replaces), and service.name, always the
///   logger's service.
///
/// Returns RARCH_OK, RARCH_ERR_NULL_ARGUMENT, RARCH_ERR_INVALID_UTF8, RARCH_ERR_CONFIG
/// (unknown key or bad value; the message names the key) or RARCH_ERR_PANIC.
/// Ownership: key and value are copied. Threading: one thread at a time per options object.
///
/// # Safety
/// `opts` is NULL or a live pointer from `rarch_options_new`, not used by another thread
/// during the call; `key` and `value` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn rarch_options_set(
    opts: *mut rarch_options,
    key: *const c_char,
    value: *const c_char,
) -> rarch_status {
    status(|| {
        // SAFETY: NULL or a pointer from rarch_options_new.
        let opts = match unsafe { opts.as_mut() } {
            Some(o) => o,
            None => return Err(null("opts")),
        };
        // SAFETY: NULL or a NUL-terminated string, by contract (both).
        let key = unsafe { req_cstr(key, "key") }?;
        // SAFETY: as for `key`.
        let value = unsafe { req_cstr(value, "value") }?;
        opts.inner.set(key, value)
    })
}

/// Frees an options object. NULL is fine. Loggers made with it keep their own copy.
///
/// # Safety
/// `opts` is NULL or a pointer from `rarch_options_new` not freed yet; it is not used after
/// the call.
#[no_mangle]
pub unsafe extern "C" fn rarch_options_free(opts: *mut rarch_options) {
    if opts.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a pointer from rarch_options_new, freed once.
        drop(unsafe { Box::from_raw(opts) });
    }));
}

/// Makes a logger for `service` (required; one path component: not empty, no `/` or `\`,
/// no leading `.`, no control characters; such names are refused, not mapped).
/// `logger_name` may be NULL or empty (then it is the service name). `opts` may be NULL
/// (environment and defaults); it is copied, the caller still frees it.
///
/// Loggers with the same options share one pipeline (threads, connections, queue);
/// it starts with the first and stops with the last `rarch_logger_free`. The disk buffer of
/// the service is replayed in the background from the start. The pipeline's threads start
/// here: a sender, the spill thread and the replay thread are needed, and if one cannot be
/// started (a pids or thread limit) this fails with RARCH_ERR_IO saying so; more senders are
/// started when the process can have them. Every library thread blocks the asynchronously
/// delivered signals, so the host's handlers run on the host's threads only; the library
/// changes no signal disposition and prints nothing (unless `mirror` is set).
///
/// Exit without free: at a normal exit (`exit()`, a return from `main`) with loggers still
/// open, an `atexit` handler registered with the first logger closes every pipeline as
/// `rarch_logger_free` would: it delivers within close_timeout_ms and writes the rest to the
/// disk buffer (at once while the server is unreachable), which the next start sends. An
/// entry another thread logs after that is written to disk on its own thread. A forked
/// child's exit touches only the child's own loggers. `_exit`, `abort` and fatal signals do
/// not run it: durable=true covers those, and a FATAL entry (see `rarch_log`).
///
/// Returns NULL on error: `rarch_last_error` says why (NULL service, invalid UTF-8, bad
/// service name, bad option or environment variable, buffer directory unusable, ca_file
/// unreadable). Thread-safe.
///
/// # Safety
/// `service` and `logger_name` are NULL or NUL-terminated strings; `opts` is NULL or a live
/// pointer from `rarch_options_new`.
#[no_mangle]
pub unsafe extern "C" fn rarch_logger_new(
    service: *const c_char,
    logger_name: *const c_char,
    opts: *const rarch_options,
) -> *mut rarch_logger {
    let mut out = std::ptr::null_mut();
    // SAFETY: forwarded contract; `out` is a local.
    unsafe { rarch_logger_open(service, logger_name, opts, &mut out) };
    out
}

/// The same as `rarch_logger_new`, returning a status: on RARCH_OK `*out` is the new logger;
/// otherwise `*out` is NULL and the status says why (RARCH_ERR_NULL_ARGUMENT,
/// RARCH_ERR_INVALID_UTF8, RARCH_ERR_INVALID_ARGUMENT for a bad service name, RARCH_ERR_CONFIG,
/// RARCH_ERR_IO for an unusable buffer directory, RARCH_ERR_PANIC). `out` must not be NULL.
/// Thread-safe.
///
/// # Safety
/// As for `rarch_logger_new`; `out` is NULL or points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn rarch_logger_open(
    service: *const c_char,
    logger_name: *const c_char,
    opts: *const rarch_options,
    out: *mut *mut rarch_logger,
) -> rarch_status {
    crate::threads::quiet_panics();
    if out.is_null() {
        set_error(&null("out"));
        return rarch_status::RARCH_ERR_NULL_ARGUMENT;
    }
    // SAFETY: `out` is a valid pointer to write to, by contract.
    unsafe { *out = std::ptr::null_mut() };
    status(|| {
        // SAFETY: NULL or a NUL-terminated string, by contract.
        let service = unsafe { req_cstr(service, "service") }?;
        // SAFETY: as for `service`.
        let name = unsafe { opt_cstr(logger_name, "logger_name") }?;
        // SAFETY: NULL or a live pointer from rarch_options_new, by contract.
        let opts = unsafe { opts.as_ref() }.map(|o| &o.inner);
        let inner = Logger::new(service, name, opts)?;
        // SAFETY: `out` is writable, checked non-NULL above.
        unsafe { *out = Box::into_raw(Box::new(rarch_logger { inner })) };
        Ok(())
    })
}

/// Checks the level; `None` when the entry is below the logger's level (counted as
/// filtered), so that no other work is done for it.
#[link_section = ".text.hot.rarch_log"]
fn level_to_log(logger: &rarch_logger, level: c_int) -> Result<Option<Level>> {
    let level = Level::from_i32(level)?;
    if logger.inner.enabled(level) {
        Ok(Some(level))
    } else {
        logger.inner.count_filtered();
        Ok(None)
    }
}

/// Logs one entry. `message` is required; every other string may be NULL for the protocol's
/// default: user_id and tenant_id null, request_id a fresh UUID v4, context `{}`, the time of
/// this call. `context_json` must be a JSON object; `client_log_datetime` RFC 3339.
/// All strings must be UTF-8 and are copied; nothing is kept after the call.
///
/// Threaded mode (default): validates, enqueues, returns; it never waits on the network or
/// the disk. With on_full=spill (the default) and durable=false, the checked strings are
/// copied as they are into the calling thread's lane (a queue of its own, up to
/// queue_capacity entries, then up to burst_memory_bytes more, for all lanes together, in a
/// burst; no lock, no allocation once warm) and a sender thread builds the JSON body (request
/// id, timestamp, escaping). When the lane is full, the call waits for
/// the spill thread to take the lane's next 512 entries to disk as they are (woken when they
/// are written; 0.15 ms at the median on a local disk, a few ms when the spill thread itself
/// waits for a CPU; refused after 1 s of a stalled disk); an entry larger than 64 KiB takes
/// the queue, then the spill overflow, and waits likewise for room there. With
/// on_full=block, at most block_timeout_ms. Blocking mode: posts and returns the outcome.
///
/// A FATAL entry (threaded mode, durable=false) returns only once it and every entry the
/// pipeline held in memory before it are safe from a crash: each gets a record in its
/// service's crash journal (a shared memory-mapped file, as with durable=true; the next
/// start recovers the records a dead process left unsettled), copies of the requests in
/// flight too. The entries stay in memory and are delivered as usual. It never waits on the
/// network; its cost is a copy of what is in memory (about 5 to 9 ms for 5,000 entries),
/// bounded by what the pipeline holds (queue_capacity and the lanes). A host that aborts right
/// after the call loses nothing of what led to it. Other levels keep the cost above.
///
/// An entry below the logger's level is counted as filtered and returns RARCH_OK before any
/// other check (its strings are not even read).
///
/// Returns RARCH_OK,
/// RARCH_ERR_NULL_ARGUMENT, RARCH_ERR_INVALID_LEVEL, RARCH_ERR_INVALID_UTF8,
/// RARCH_ERR_INVALID_JSON, RARCH_ERR_INVALID_TIMESTAMP, RARCH_ERR_INVALID_ARGUMENT (too
/// large), RARCH_ERR_QUEUE_FULL, RARCH_ERR_IO (durable mode), RARCH_ERR_TRANSPORT,
/// RARCH_ERR_AUTH, RARCH_ERR_REJECTED (blocking mode) or RARCH_ERR_PANIC. Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live pointer from `rarch_logger_new`/`rarch_logger_open`; every
/// string is NULL or NUL-terminated.
#[no_mangle]
#[link_section = ".text.hot.rarch_log"]
pub unsafe extern "C" fn rarch_log(
    logger: *mut rarch_logger,
    level: c_int,
    message: *const c_char,
    user_id: *const c_char,
    tenant_id: *const c_char,
    request_id: *const c_char,
    context_json: *const c_char,
    client_log_datetime: *const c_char,
) -> rarch_status {
    status(|| {
        let logger = non_null!(logger, "logger");
        let Some(level) = level_to_log(logger, level)? else {
            return Ok(());
        };
        // SAFETY: NUL-terminated strings (or NULL) by contract.
        let f = unsafe {
            Fields {
                message: req_cstr(message, "message")?,
                user_id: opt_cstr(user_id, "user_id")?,
                tenant_id: opt_cstr(tenant_id, "tenant_id")?,
                request_id: opt_cstr(request_id, "request_id")?,
                context_json: opt_cstr(context_json, "context_json")?,
                client_log_datetime: opt_cstr(client_log_datetime, "client_log_datetime")?,
                trace: None,
            }
        };
        logger.inner.log(level, &f)
    })
}

/// The same as `rarch_log`, with pointer+length strings (no NUL needed, no copy by the
/// caller): the call for bindings. `entry` and `entry->message.ptr` are required.
/// Returns the statuses of `rarch_log`. Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live logger; `entry` is NULL or points to a `rarch_entry` whose
/// strings each have `ptr == NULL` or `len` readable bytes at `ptr`.
#[no_mangle]
#[link_section = ".text.hot.rarch_log"]
pub unsafe extern "C" fn rarch_log_n(
    logger: *mut rarch_logger,
    level: c_int,
    entry: *const rarch_entry,
) -> rarch_status {
    // SAFETY: forwarded contract; no traceparent.
    unsafe { log_entry(logger, level, entry, std::ptr::null()) }
}

/// `rarch_log_n` with a trace context: `traceparent` is a W3C Trace Context value,
/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` (lowercase; a later version's extra
/// fields after the flags are ignored), or NULL for none (then the same as `rarch_log_n`).
/// With sink=otlp the record gets `traceId`, `spanId` and `flags`; with the rarch sink the
/// body gets top-level `trace_id`, `span_id` (lowercase hex) and `trace_flags` (an integer,
/// 1 when sampled), only when a trace is given. The disk buffer and the journal keep them, so
/// an entry replayed later, under either sink, carries them.
///
/// A malformed `traceparent` (wrong length or separators, not lowercase hex, version ff, an
/// all-zero trace or span id) returns RARCH_ERR_INVALID_ARGUMENT, its message starting with
/// "traceparent:", and nothing is queued. Otherwise returns the statuses of `rarch_log`.
/// An entry below the logger's level returns RARCH_OK before any check, as with `rarch_log`.
/// Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live logger; `entry` is NULL or points to a `rarch_entry` whose
/// strings each have `ptr == NULL` or `len` readable bytes at `ptr`; `traceparent` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn rarch_log_traced(
    logger: *mut rarch_logger,
    level: c_int,
    entry: *const rarch_entry,
    traceparent: *const c_char,
) -> rarch_status {
    // SAFETY: forwarded contract.
    unsafe { log_entry(logger, level, entry, traceparent) }
}

/// `rarch_log_n` and `rarch_log_traced`.
///
/// # Safety
/// As for `rarch_log_traced`.
#[inline(always)]
#[link_section = ".text.hot.rarch_log"]
unsafe fn log_entry(
    logger: *mut rarch_logger,
    level: c_int,
    entry: *const rarch_entry,
    traceparent: *const c_char,
) -> rarch_status {
    status(|| {
        let logger = non_null!(logger, "logger");
        let e = non_null!(entry, "entry");
        let Some(level) = level_to_log(logger, level)? else {
            return Ok(());
        };
        let trace = if traceparent.is_null() {
            None
        } else {
            // SAFETY: NUL-terminated by contract.
            let t = unsafe { req_cstr(traceparent, "traceparent") }?;
            Some(crate::trace::Trace::parse(t)?)
        };
        // SAFETY: readable pointer+length strings by contract.
        let f = unsafe { entry_fields(e, trace) }?;
        logger.inner.log(level, &f)
    })
}

/// Waits up to `timeout_ms` until every entry logged before the call is delivered and the
/// disk buffer is replayed. Logging goes on working during and after a flush.
///
/// Returns RARCH_OK, RARCH_ERR_TIMED_OUT (nothing is dropped; the message says what is
/// pending and the last failure), RARCH_ERR_NULL_ARGUMENT or RARCH_ERR_PANIC. Thread-safe;
/// several threads may flush at once.
///
/// # Safety
/// `logger` is NULL or a live logger.
#[no_mangle]
pub unsafe extern "C" fn rarch_flush(logger: *mut rarch_logger, timeout_ms: u32) -> rarch_status {
    status(|| {
        let logger = non_null!(logger, "logger");
        logger
            .inner
            .flush(Duration::from_millis(u64::from(timeout_ms)))
    })
}

/// `rarch_flush` with its message: on failure the message is also copied into `msg`
/// (NUL-terminated, truncated to `len` bytes at a character boundary), on success `msg` is
/// set to "". For a caller that runs the flush on one thread and reads the result on another
/// (a worker pool), where `rarch_last_error` would give the other thread's message. `msg` may
/// be NULL when `len` is 0. Returns the statuses of `rarch_flush`. Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live logger; `msg` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rarch_flush_msg(
    logger: *mut rarch_logger,
    timeout_ms: u32,
    msg: *mut c_char,
    len: usize,
) -> rarch_status {
    // SAFETY: forwarded contract.
    let st = unsafe { rarch_flush(logger, timeout_ms) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if st == rarch_status::RARCH_OK {
            // SAFETY: forwarded contract.
            unsafe { copy_out("", msg, len) }
        } else {
            // The message rarch_flush just left for this thread.
            // SAFETY: forwarded contract.
            LAST_ERROR.with(|l| unsafe { copy_out(&l.borrow(), msg, len) })
        }
    }));
    st
}

/// Frees a logger. NULL is fine. The last logger of a pipeline stops it: it delivers what it
/// can within `close_timeout_ms` (plus at most one request already in flight, bounded by
/// `timeout_ms`) and writes what is left to the buffer file, replayed by the next start.
/// Must be the last call on this logger; other loggers are unaffected.
///
/// # Safety
/// `logger` is NULL or a live logger, and no other call on it runs or follows.
#[no_mangle]
pub unsafe extern "C" fn rarch_logger_free(logger: *mut rarch_logger) {
    if logger.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a pointer from rarch_logger_new, freed once.
        drop(unsafe { Box::from_raw(logger) });
    }));
}

/// Sets the logger's level; entries below it are dropped before any work. Returns RARCH_OK,
/// RARCH_ERR_NULL_ARGUMENT or RARCH_ERR_INVALID_LEVEL. Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live logger.
#[no_mangle]
pub unsafe extern "C" fn rarch_set_level(logger: *mut rarch_logger, level: c_int) -> rarch_status {
    status(|| {
        let logger = non_null!(logger, "logger");
        logger.inner.set_level(Level::from_i32(level)?);
        Ok(())
    })
}

/// The logger's level. For NULL, RARCH_LEVEL_DEBUG (and a message in rarch_last_error).
///
/// # Safety
/// `logger` is NULL or a live logger.
#[no_mangle]
pub unsafe extern "C" fn rarch_get_level(logger: *const rarch_logger) -> rarch_level {
    value(rarch_level::RARCH_LEVEL_DEBUG, || {
        let logger = non_null!(logger, "logger");
        Ok(match logger.inner.level() {
            Level::Debug => rarch_level::RARCH_LEVEL_DEBUG,
            Level::Info => rarch_level::RARCH_LEVEL_INFO,
            Level::Warn => rarch_level::RARCH_LEVEL_WARN,
            Level::Error => rarch_level::RARCH_LEVEL_ERROR,
            Level::Fatal => rarch_level::RARCH_LEVEL_FATAL,
        })
    })
}

/// Copies the counters of the logger's pipeline into `out`; `out->size` must be set to
/// `sizeof(rarch_statistics)` (at least `sizeof(size_t)`). Returns RARCH_OK,
/// RARCH_ERR_NULL_ARGUMENT or RARCH_ERR_INVALID_ARGUMENT (size too small). Thread-safe.
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or points to at least `out->size`
/// writable bytes, `size` (its first field) set.
#[no_mangle]
pub unsafe extern "C" fn rarch_stats(
    logger: *const rarch_logger,
    out: *mut rarch_statistics,
) -> rarch_status {
    status(|| {
        let logger = non_null!(logger, "logger");
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: `out` points to at least `size` writable bytes, `size` being its first field.
        let size = unsafe { std::ptr::read_unaligned(out.cast::<usize>()) };
        if size < std::mem::size_of::<usize>() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "out->size must be set to sizeof(rarch_statistics)",
            ));
        }
        let s = logger.inner.stats()?;
        let conc = logger.inner.concurrency();
        let full = rarch_statistics {
            size: std::mem::size_of::<rarch_statistics>().min(size),
            logged: s.logged,
            filtered: s.filtered,
            delivered: s.delivered,
            failed_attempts: s.failed_attempts,
            retried: s.retried,
            buffered: s.buffered,
            replayed: s.replayed,
            rejected: s.rejected,
            corrupt: s.corrupt,
            auth_failures: s.auth_failures,
            dropped_queue_full: s.dropped_queue_full,
            dropped_buffer_cap: s.dropped_buffer_cap,
            dropped_io: s.dropped_io,
            queue_len: logger.inner.queue_len() as u64,
            poisoned: s.poisoned,
            concurrency_limit: conc.0 as u64,
            rtt_p50_us: conc.1.as_micros() as u64,
            sender_panics: s.sender_panics,
            dropped_rate_limit: s.dropped_rate_limit,
        };
        // SAFETY: copies `full.size` bytes, no more than either side holds.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&full as *const rarch_statistics).cast::<u8>(),
                out.cast::<u8>(),
                full.size,
            );
        }
        Ok(())
    })
}

/// The kinds of `rarch_event` (its `kind` field).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rarch_event_kind {
    /// An entry was delivered (2xx), fresh or from the disk buffer; with events=all only.
    /// `request_id` is the entry's.
    RARCH_EVENT_DELIVERED = 1,
    /// An entry was dead-lettered (buffer.rejected.jsonl): refused by the server with a 4xx
    /// (`status`), or poison (failed max_attempts times while others were delivered).
    /// `request_id` is the entry's, `message` the reason.
    RARCH_EVENT_DEAD_LETTERED = 2,
    /// `count` entries were dropped and counted in rarch_stats (queue full, buffer cap, disk).
    RARCH_EVENT_DROPPED = 3,
    /// The delivery policy declared the server down (`status` of the failure that did it,
    /// `message` the last error): entries go to disk, the replay thread probes.
    RARCH_EVENT_OUTAGE_STARTED = 4,
    /// The server answered again: the outage is over.
    RARCH_EVENT_OUTAGE_ENDED = 5,
    /// A buffer file could not be written (`count` entries affected; `message` says why).
    RARCH_EVENT_IO_ERROR = 6,
    /// A logger's rate_limit dropped `count` entries (one event per summary entry).
    RARCH_EVENT_RATE_LIMITED = 7,
    /// `count` events were not kept: events_capacity were waiting to be polled.
    RARCH_EVENT_EVENTS_LOST = 8,
}

/// One event, as `rarch_poll_events` writes it. Fields may be added at the end: the caller
/// passes its `sizeof(rarch_event)`.
#[repr(C)]
pub struct rarch_event {
    /// A `rarch_event_kind`.
    pub kind: c_int,
    /// The HTTP status, 0 when there is none.
    pub status: c_int,
    /// The entries the event is about (1 for a per-entry kind).
    pub count: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// The entry's request_id for a per-entry kind, "" otherwise (NUL-terminated, truncated).
    pub request_id: [c_char; 64],
    /// The reason, for a person (NUL-terminated, truncated; never the API key).
    pub message: [c_char; 256],
}

/// Copies `text` into `out` NUL-terminated, cut at a UTF-8 boundary to fit.
fn fill_text(out: &mut [c_char], text: &str) {
    let mut n = text.len().min(out.len().saturating_sub(1));
    while n > 0 && !text.is_char_boundary(n) {
        n -= 1;
    }
    for (o, b) in out.iter_mut().zip(text.as_bytes()[..n].iter()) {
        *o = *b as c_char;
    }
    if let Some(z) = out.get_mut(n) {
        *z = 0;
    }
}

/// Takes up to `max` events of the logger's pipeline (loggers made with the same options share
/// one pipeline, hence its events), oldest first, into `out`, and returns how many it wrote.
/// Never blocks. `event_size` is the caller's `sizeof(rarch_event)`: each event takes that many
/// bytes of `out`, so a program built against an older, shorter struct keeps working. Returns
/// 0 when there is none, with events=off (the default: no event is made), or on a NULL
/// argument or an `event_size` smaller than the fields up to `message` (then
/// `rarch_last_error` says why). Which events exist depends on the option `events`:
/// `problems` (every kind but DELIVERED) or `all`; at most `events_capacity` wait, past which
/// one RARCH_EVENT_EVENTS_LOST counts the rest. Thread-safe; meant for the application's own
/// thread (no callback ever runs on a library thread).
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or points to `max * event_size` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn rarch_poll_events(
    logger: *mut rarch_logger,
    out: *mut rarch_event,
    max: usize,
    event_size: usize,
) -> usize {
    value(0, || {
        let logger = non_null!(logger, "logger");
        if out.is_null() {
            return Err(null("out"));
        }
        let need = std::mem::size_of::<rarch_event>();
        if event_size < need {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("event_size must be sizeof(rarch_event) ({need}), got {event_size}"),
            ));
        }
        let events = logger.inner.poll_events(max)?;
        for (i, e) in events.iter().enumerate() {
            let mut ev = rarch_event {
                kind: e.kind as c_int,
                status: c_int::from(e.status),
                count: e.count,
                time_unix_ms: e.time_unix_ms,
                request_id: [0; 64],
                message: [0; 256],
            };
            fill_text(&mut ev.request_id, &e.request_id);
            fill_text(&mut ev.message, &e.message);
            // SAFETY: event i starts at i * event_size < max * event_size bytes into `out`,
            // which the caller provides; `need` <= event_size bytes are written, unaligned.
            unsafe {
                let at = out.cast::<u8>().add(i * event_size).cast::<rarch_event>();
                std::ptr::write_unaligned(at, ev);
            }
        }
        Ok(events.len())
    })
}

/// Copies this thread's last error message into `buf` (NUL-terminated, truncated to `len`),
/// snprintf-style: returns the message's length without the NUL, so a caller can size `buf`.
/// `buf` may be NULL when `len` is 0. Messages never contain the API key. Thread-safe (the
/// message is per thread; successful calls do not clear it).
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rarch_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded contract.
        LAST_ERROR.with(|l| unsafe { copy_out(&l.borrow(), buf, len) })
    }))
    .unwrap_or(0)
}

/// Copies `msg` into `buf`, NUL-terminated, cut at a character boundary to fit `len` bytes
/// (nothing when `buf` is NULL or `len` is 0); returns `msg`'s length.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
unsafe fn copy_out(msg: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let mut n = msg.len().min(len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `buf` holds `len` writable bytes by contract; n < len.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}

/// A static, NUL-terminated description of a status (any int: unknown values get
/// "unknown status"). Never free it.
#[no_mangle]
pub extern "C" fn rarch_status_str(status: c_int) -> *const c_char {
    rarch_status::ALL
        .iter()
        .find(|s| **s as c_int == status)
        .map_or(c"unknown status", |s| s.description())
        .as_ptr()
}

/// The library version, e.g. "0.1.0" (static; never free it). Same as RARCH_VERSION.
#[no_mangle]
pub extern "C" fn rarch_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_of_the_header_has_its_value_and_a_description() {
        let header = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/include/rarch_logging.h"
        ))
        .unwrap_or_default();
        let start = header.find("typedef enum rarch_status {").unwrap_or(0);
        let body = &header[start..];
        let body = &body[..body.find("} rarch_status;").unwrap_or(0)];
        let in_header: Vec<(String, c_int)> = body
            .lines()
            .filter_map(|l| {
                let (name, value) = l.trim().trim_end_matches(',').split_once(" = ")?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        let ours: Vec<(String, c_int)> = rarch_status::ALL
            .iter()
            .map(|s| (format!("{s:?}"), *s as c_int))
            .collect();
        assert_eq!(ours, in_header, "rarch_status::ALL against the header");
        let mut seen = Vec::new();
        for (i, s) in rarch_status::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            // SAFETY: rarch_status_str returns a static NUL-terminated string.
            let d = unsafe { CStr::from_ptr(rarch_status_str(i as c_int)) };
            assert!(d != c"unknown status" && !seen.contains(&d), "{s:?}");
            seen.push(d);
        }
        for v in [-1, rarch_status::ALL.len() as c_int, c_int::MAX] {
            // SAFETY: as above.
            let d = unsafe { CStr::from_ptr(rarch_status_str(v)) };
            assert_eq!(d, c"unknown status");
        }
    }

    #[test]
    fn text_takes_ascii_and_utf8_and_refuses_the_rest() {
        assert_eq!(
            text("f", b"plain ascii {}\x01\x7f").ok(),
            Some("plain ascii {}\u{1}\u{7f}")
        );
        assert_eq!(text("f", "é ✓ 😀".as_bytes()).ok(), Some("é ✓ 😀"));
        assert_eq!(text("f", b"").ok(), Some(""));
        for bad in [
            &b"a\xff"[..],
            b"\xc3",
            b"\xc0\x80",
            b"abcdefghijklmnopq\xed\xa0\x80",
        ] {
            let Err(e) = text("field", bad) else {
                panic!("{bad:?} taken as text");
            };
            assert_eq!(e.kind, ErrorKind::InvalidUtf8);
            assert!(
                e.message.starts_with("field: invalid UTF-8"),
                "{}",
                e.message
            );
        }
    }
}
