//! Configuration: a key/value [`Options`] object (what C sets with `rarch_options_set`) and the
//! resolved [`Config`] a logger runs with. Unset keys fall back to the environment variables of
//! the protocol, then to the defaults below.

use crate::error::{Error, ErrorKind, Result};
use crate::level::Level;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where `rarch_log` goes when the in-memory queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnFull {
    /// Hand the entry to the spill thread, which writes it to the buffer file (the default).
    Spill,
    /// Wait up to `block_timeout_ms` for room, then return `RARCH_ERR_QUEUE_FULL`.
    Block,
    /// Drop the entry, count it, and return `RARCH_ERR_QUEUE_FULL`.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `rarch_log` enqueues and returns; worker threads deliver.
    Threaded,
    /// `rarch_log` posts on the caller's thread and returns the outcome.
    Blocking,
}

/// The wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sink {
    /// The rarch logging API: one entry per POST, signed with a JWT (../shared/protocol.md).
    Rarch,
    /// OTLP/HTTP logs (protobuf or JSON, see [`OtlpProtocol`]): many entries per POST, to an
    /// OpenTelemetry Collector or any OTLP backend; the JWT only when `api_key` is set.
    Otlp,
}

/// What `rarch_poll_events` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Events {
    /// Nothing (the default): no event is made.
    Off,
    /// Every kind but DELIVERED.
    Problems,
    /// Every kind.
    All,
}

/// The encoding of OTLP/HTTP requests (sink=otlp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtlpProtocol {
    /// `http/protobuf`: `Content-Type: application/x-protobuf` (the default).
    Protobuf,
    /// `http/json`: OTLP/JSON, `Content-Type: application/json`.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mirror {
    Off,
    Stdout,
    Stderr,
}

/// Every key `rarch_options_set` accepts, with its environment variable and its default.
/// `(key, environment variable, default, description)`; the table of `docs/options.md` is this
/// one (`tests/tables.rs`).
pub const KEYS: &[(&str, Option<&str>, &str, &str)] = &[
    (
        "sink",
        None,
        "rarch",
        "the wire protocol: rarch (the logging API) or otlp (OTLP/HTTP logs, batched)",
    ),
    (
        "url",
        Some("RARCH_LOGGING_URL"),
        "http://localhost:8080/log",
        "the endpoint (http or https); with sink=otlp: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs, then http://localhost:4318/v1/logs",
    ),
    (
        "api_key",
        Some("RARCH_LOGGING_API_KEY"),
        "",
        "HMAC secret of the HS256 JWT",
    ),
    (
        "level",
        Some("RARCH_LOGGING_DEFAULT_LEVEL"),
        "DEBUG",
        "lowest level sent: DEBUG, INFO, WARN, ERROR or FATAL",
    ),
    ("mode", None, "threaded", "threaded or blocking"),
    (
        "buffer_dir",
        None,
        "./var/log",
        "directory of the per-service disk buffers",
    ),
    (
        "timeout_ms",
        None,
        "2000",
        "per-request timeout (connect, send, receive)",
    ),
    (
        "queue_capacity",
        None,
        "8192",
        "entries held in memory before on_full applies",
    ),
    (
        "burst_memory_bytes",
        None,
        "8388608",
        "with on_full=spill: memory the lanes may take past queue_capacity in a burst, while the spill thread writes the excess to disk",
    ),
    (
        "connections",
        None,
        "64",
        "the most requests in flight at once (with concurrency=fixed: always this many)",
    ),
    (
        "concurrency",
        None,
        "adaptive",
        "adaptive (find the requests in flight the server sustains, up to connections) or fixed",
    ),
    (
        "close_timeout_ms",
        None,
        "5000",
        "how long rarch_logger_free may deliver before it writes the rest to disk",
    ),
    (
        "mirror",
        None,
        "off",
        "off, stdout or stderr: also print each entry as one line",
    ),
    (
        "max_retries",
        None,
        "5",
        "in-memory retries of one entry before it goes to disk",
    ),
    (
        "max_attempts",
        None,
        "10",
        "failed attempts of one entry, while the server delivers others, before it is dead-lettered",
    ),
    (
        "backoff_initial_ms",
        None,
        "100",
        "first retry delay (full jitter)",
    ),
    (
        "backoff_max_ms",
        None,
        "30000",
        "largest retry delay, also the slowest outage probe",
    ),
    ("on_full", None, "spill", "spill, block or drop"),
    (
        "block_timeout_ms",
        None,
        "100",
        "with on_full=block: how long rarch_log may wait",
    ),
    (
        "max_entry_bytes",
        None,
        "1048576",
        "largest entry accepted (bytes of JSON)",
    ),
    (
        "buffer_max_file_bytes",
        None,
        "5242880",
        "rotate buffer.jsonl at this size",
    ),
    (
        "buffer_max_total_bytes",
        None,
        "268435456",
        "cap of all buffer segments of a service",
    ),
    (
        "durable",
        None,
        "false",
        "true: an accepted entry is copied into a crash journal (memory-mapped, no fsync) before rarch_log returns",
    ),
    (
        "ca_file",
        None,
        "",
        "PEM file of CA certificates to trust instead of the system roots",
    ),
    (
        "token_lifetime_s",
        None,
        "3600",
        "JWT lifetime (exp - iat); re-signed at half of it",
    ),
    (
        "headers",
        Some("OTEL_EXPORTER_OTLP_LOGS_HEADERS"),
        "",
        "with sink=otlp: request headers, k1=v1,k2=v2 (values percent-decoded; then OTEL_EXPORTER_OTLP_HEADERS); secret like api_key",
    ),
    (
        "compression",
        None,
        "none",
        "with sink=otlp: none or gzip (the request body)",
    ),
    (
        "batch_max_entries",
        None,
        "512",
        "with sink=otlp: the most entries in one request",
    ),
    (
        "batch_max_bytes",
        None,
        "1048576",
        "with sink=otlp: the most bytes of entries in one request (before encoding)",
    ),
    (
        "batch_linger_ms",
        None,
        "20",
        "with sink=otlp: how long a batch that is not full waits for more (a flush sends at once)",
    ),
    (
        "events",
        None,
        "off",
        "off, problems or all: what rarch_poll_events reports (problems: every kind but DELIVERED)",
    ),
    (
        "events_capacity",
        None,
        "10000",
        "the most events held for rarch_poll_events; past it one EVENTS_LOST counts the rest",
    ),
    (
        "redact_keys",
        None,
        "",
        "context keys whose values become \"[REDACTED]\" at any depth, comma-separated, any case",
    ),
    (
        "rate_limit",
        None,
        "0",
        "entries a second a logger takes below ERROR (0: no limit); the rest are dropped, counted and summarised",
    ),
    (
        "rate_limit_burst",
        None,
        "0",
        "entries a logger may take at once above rate_limit (0: a second's worth)",
    ),
    (
        "otlp_protocol",
        Some("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"),
        "http/protobuf",
        "with sink=otlp: http/protobuf or http/json (then OTEL_EXPORTER_OTLP_PROTOCOL); grpc is refused (use http/protobuf on port 4318)",
    ),
    (
        "resource_attributes",
        Some("OTEL_RESOURCE_ATTRIBUTES"),
        "",
        "with sink=otlp: resource attributes, k1=v1,k2=v2 (values percent-decoded), added to OTEL_RESOURCE_ATTRIBUTES's and winning key by key; service.name is always the logger's service",
    ),
];

/// Keys whose values are secrets: never shown in an error, a debug print or a log line.
fn secret(key: &str) -> bool {
    matches!(key, "api_key" | "headers")
}

/// A set of options. Values are checked when they are set, so a bad value is reported with its
/// key at `rarch_options_set`, not later.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Options {
    values: BTreeMap<&'static str, String>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.values {
            if secret(k) {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` after checking both.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let (k, _, _, _) = KEYS.iter().find(|(k, ..)| *k == key).ok_or_else(|| {
            let known: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
            Error::new(
                ErrorKind::Config,
                format!("unknown option '{key}' (known: {})", known.join(", ")),
            )
        })?;
        let mut probe = Config::default();
        apply(&mut probe, k, value)?;
        self.values.insert(k, value.to_owned());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The resolved configuration of a logger.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Config {
    pub url: String,
    pub api_key: String,
    pub level: Level,
    pub mode: Mode,
    pub buffer_dir: PathBuf,
    pub timeout: Duration,
    pub queue_capacity: usize,
    /// Bytes the lanes of a pipeline may hold, together, past their count bound (see
    /// `pipeline::lane`).
    pub burst_memory_bytes: usize,
    pub connections: usize,
    pub adaptive: bool,
    pub close_timeout: Duration,
    pub mirror: Mirror,
    pub max_retries: u32,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub on_full: OnFull,
    pub block_timeout: Duration,
    pub max_entry_bytes: usize,
    pub buffer_max_file_bytes: u64,
    pub buffer_max_total_bytes: u64,
    pub durable: bool,
    pub ca_file: Option<PathBuf>,
    pub token_lifetime: Duration,
    pub sink: Sink,
    /// Extra request headers (sink=otlp), names lowercased, values percent-decoded.
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    pub batch_max_entries: usize,
    pub batch_max_bytes: usize,
    pub batch_linger: Duration,
    pub events: Events,
    pub events_capacity: usize,
    /// Lowercased context keys whose values are redacted.
    pub redact_keys: Vec<String>,
    /// Entries a second below ERROR (0: off), and the burst above it (0: a second's worth).
    pub rate_limit: u64,
    pub rate_limit_burst: u64,
    pub otlp_protocol: OtlpProtocol,
    /// Resource attributes (sink=otlp) beside `service.name`: OTEL_RESOURCE_ATTRIBUTES's, then
    /// the `resource_attributes` option's (winning key by key); never `service.name`.
    pub resource_attributes: Vec<(String, String)>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("level", &self.level)
            .field("mode", &self.mode)
            .field("buffer_dir", &self.buffer_dir)
            .field("sink", &self.sink)
            .field(
                "headers",
                &format_args!("<{} redacted>", self.headers.len()),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Whether the spill thread takes full lanes' records to disk raw (`on_full=spill`, not
    /// durable): the lanes' burst memory and a caller's wait for a spill step exist only then.
    pub fn spills_lanes_raw(&self) -> bool {
        !self.durable && self.on_full == OnFull::Spill
    }
}

impl Default for Config {
    /// The built-in defaults, without the environment.
    fn default() -> Self {
        let mut c = Config {
            url: String::new(),
            api_key: String::new(),
            level: Level::Debug,
            mode: Mode::Threaded,
            buffer_dir: PathBuf::new(),
            timeout: Duration::ZERO,
            queue_capacity: 0,
            burst_memory_bytes: 0,
            connections: 0,
            adaptive: true,
            close_timeout: Duration::ZERO,
            mirror: Mirror::Off,
            max_retries: 0,
            max_attempts: 0,
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            on_full: OnFull::Spill,
            block_timeout: Duration::ZERO,
            max_entry_bytes: 0,
            buffer_max_file_bytes: 0,
            buffer_max_total_bytes: 0,
            durable: false,
            ca_file: None,
            token_lifetime: Duration::ZERO,
            sink: Sink::Rarch,
            headers: Vec::new(),
            gzip: false,
            batch_max_entries: 0,
            batch_max_bytes: 0,
            batch_linger: Duration::ZERO,
            events: Events::Off,
            events_capacity: 0,
            redact_keys: Vec::new(),
            rate_limit: 0,
            rate_limit_burst: 0,
            otlp_protocol: OtlpProtocol::Protobuf,
            resource_attributes: Vec::new(),
        };
        for (k, _, default, _) in KEYS {
            // The defaults in KEYS are valid by construction (a unit test checks it).
            let _ = apply(&mut c, k, default);
        }
        c
    }
}

impl Config {
    /// Resolves options: a set key wins, then its environment variable, then the default.
    pub fn resolve(opts: Option<&Options>) -> Result<Config> {
        let mut c = Config::default();
        let sink = opts.and_then(|o| o.get("sink")).unwrap_or("rarch");
        apply(&mut c, "sink", sink)?;
        for (k, env, _, _) in KEYS {
            // With sink=otlp the endpoint and the headers fall back to OpenTelemetry's
            // environment variables (the exporter specification's), not to the rarch ones.
            let env = match (*k, c.sink) {
                ("url", Sink::Otlp) | ("headers" | "otlp_protocol" | "resource_attributes", _) => {
                    None
                }
                _ => *env,
            };
            if *k == "resource_attributes" {
                continue;
            }
            if let Some(v) = opts.and_then(|o| o.get(k)) {
                apply(&mut c, k, v)?;
            } else if let Some(v) = otlp_env(k, c.sink) {
                apply(&mut c, k, &v).map_err(|e| {
                    Error::new(
                        e.kind,
                        format!("environment ({}): {}", otlp_env_names(k), e.message),
                    )
                })?;
            } else if let Some(v) = env.and_then(|e| std::env::var(e).ok()) {
                apply(&mut c, k, &v).map_err(|e| {
                    Error::new(
                        e.kind,
                        format!("environment variable {}: {}", env.unwrap_or(k), e.message),
                    )
                })?;
            }
        }
        c.resource_attributes =
            resource_attributes(opts.and_then(|o| o.get("resource_attributes")), c.sink)?;
        if c.backoff_initial > c.backoff_max {
            return Err(Error::new(
                ErrorKind::Config,
                "backoff_initial_ms must not exceed backoff_max_ms",
            ));
        }
        Ok(c)
    }
}

/// The OpenTelemetry environment fallbacks of `url` and `headers` (sink=otlp).
fn otlp_env(key: &str, sink: Sink) -> Option<String> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    match (key, sink) {
        ("url", Sink::Otlp) => var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .or_else(|| {
                var("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .map(|b| format!("{}/v1/logs", b.trim().trim_end_matches('/')))
            })
            .or_else(|| Some(OTLP_DEFAULT_URL.to_owned())),
        ("headers", Sink::Otlp) => {
            var("OTEL_EXPORTER_OTLP_LOGS_HEADERS").or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
        }
        ("otlp_protocol", Sink::Otlp) => {
            var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        }
        _ => None,
    }
}

/// The variables `otlp_env` reads for `key`, for an error message.
fn otlp_env_names(key: &str) -> &'static str {
    match key {
        "url" => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT",
        "headers" => "OTEL_EXPORTER_OTLP_LOGS_HEADERS or OTEL_EXPORTER_OTLP_HEADERS",
        "otlp_protocol" => "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL",
        _ => "OpenTelemetry's variables",
    }
}

/// The resource attributes of sink=otlp: OTEL_RESOURCE_ATTRIBUTES's, then the option's over
/// them key by key, in the order first seen; `service.name` left out (the logger's service is
/// the resource's). None with the rarch sink.
fn resource_attributes(option: Option<&str>, sink: Sink) -> Result<Vec<(String, String)>> {
    if sink != Sink::Otlp {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let env = std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok();
    for (text, from_env) in [(env.as_deref(), true), (option, false)] {
        let Some(text) = text else { continue };
        let pairs = parse_attributes(text).ok_or_else(|| {
            let e = bad("resource_attributes", text, ATTRIBUTES_EXPECTED);
            if from_env {
                Error::new(
                    e.kind,
                    format!(
                        "environment variable OTEL_RESOURCE_ATTRIBUTES: {}",
                        e.message
                    ),
                )
            } else {
                e
            }
        })?;
        for (k, v) in pairs {
            if k == "service.name" {
                continue;
            }
            match out.iter_mut().find(|(have, _)| *have == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
    }
    Ok(out)
}

const ATTRIBUTES_EXPECTED: &str =
    "k1=v1,k2=v2 (non-empty keys, values percent-encoded where they hold ',', '=' or '%')";

/// `k1=v1,k2=v2` (the OpenTelemetry resource SDK's format: keys and values trimmed, values
/// percent-decoded, a later key replacing an earlier one). None when a pair is malformed.
fn parse_attributes(value: &str) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in value.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=')?;
        let (k, v) = (k.trim(), percent_decode(v.trim())?);
        if k.is_empty() || k.contains('%') {
            return None;
        }
        match out.iter_mut().find(|(have, _)| have == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k.to_owned(), v)),
        }
    }
    Some(out)
}

/// The OTLP/HTTP logs endpoint of a Collector on this host.
const OTLP_DEFAULT_URL: &str = "http://localhost:4318/v1/logs";

/// `k1=v1,k2=v2` (the OTLP exporter's format: values percent-decoded, blanks around names and
/// values trimmed of spaces and tabs) into header pairs; names lowercased. None when a pair is malformed.
fn parse_headers(value: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in value.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=')?;
        let blank = |c: char| c == ' ' || c == '\t';
        let k = k.trim_matches(blank).to_ascii_lowercase();
        let v = percent_decode(v.trim_matches(blank))?;
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty()
            || !k.chars().all(token)
            || v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
            || matches!(
                k.as_str(),
                "content-type"
                    | "content-length"
                    | "content-encoding"
                    | "host"
                    | "transfer-encoding"
                    | "connection"
            )
        {
            return None;
        }
        out.push((k, v));
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn bad(key: &str, value: &str, expected: &str) -> Error {
    // Secret values are never echoed.
    let shown = if secret(key) { "<redacted>" } else { value };
    Error::new(
        ErrorKind::Config,
        format!("option '{key}': invalid value '{shown}': expected {expected}"),
    )
}

fn num(key: &str, value: &str, min: u64, max: u64) -> Result<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| bad(key, value, &format!("an integer from {min} to {max}")))
}

fn ms(key: &str, value: &str, min: u64, max: u64) -> Result<Duration> {
    num(key, value, min, max).map(Duration::from_millis)
}

fn apply(c: &mut Config, key: &str, value: &str) -> Result<()> {
    const DAY_MS: u64 = 86_400_000;
    match key {
        "url" => {
            let v = value.trim();
            let lower = v.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://"))
                || v.len() <= "http://".len()
            {
                return Err(bad(key, value, "an http:// or https:// URL"));
            }
            c.url = v.to_owned();
        }
        "api_key" => c.api_key = value.to_owned(),
        "level" => {
            c.level = Level::parse(value)
                .ok_or_else(|| bad(key, value, "DEBUG, INFO, WARN, ERROR or FATAL"))?
        }
        "mode" => {
            c.mode = match value.trim().to_ascii_lowercase().as_str() {
                "threaded" => Mode::Threaded,
                "blocking" => Mode::Blocking,
                _ => return Err(bad(key, value, "threaded or blocking")),
            }
        }
        "buffer_dir" => {
            if value.is_empty() {
                return Err(bad(key, value, "a directory path"));
            }
            c.buffer_dir = PathBuf::from(value)
        }
        "timeout_ms" => c.timeout = ms(key, value, 1, DAY_MS)?,
        "queue_capacity" => c.queue_capacity = num(key, value, 1, 1 << 24)? as usize,
        "burst_memory_bytes" => c.burst_memory_bytes = num(key, value, 0, 1 << 30)? as usize,
        "connections" => c.connections = num(key, value, 1, 256)? as usize,
        "concurrency" => {
            c.adaptive = match value.trim().to_ascii_lowercase().as_str() {
                "adaptive" => true,
                "fixed" => false,
                _ => return Err(bad(key, value, "adaptive or fixed")),
            }
        }
        "close_timeout_ms" => c.close_timeout = ms(key, value, 0, DAY_MS)?,
        "mirror" => {
            c.mirror = match value.trim().to_ascii_lowercase().as_str() {
                "off" | "" => Mirror::Off,
                "stdout" => Mirror::Stdout,
                "stderr" => Mirror::Stderr,
                _ => return Err(bad(key, value, "off, stdout or stderr")),
            }
        }
        "max_retries" => c.max_retries = num(key, value, 0, 100)? as u32,
        "max_attempts" => c.max_attempts = num(key, value, 1, 1_000_000)? as u32,
        "backoff_initial_ms" => c.backoff_initial = ms(key, value, 1, DAY_MS)?,
        "backoff_max_ms" => c.backoff_max = ms(key, value, 1, DAY_MS)?,
        "on_full" => {
            c.on_full = match value.trim().to_ascii_lowercase().as_str() {
                "spill" => OnFull::Spill,
                "block" => OnFull::Block,
                "drop" => OnFull::Drop,
                _ => return Err(bad(key, value, "spill, block or drop")),
            }
        }
        "block_timeout_ms" => c.block_timeout = ms(key, value, 0, DAY_MS)?,
        "max_entry_bytes" => c.max_entry_bytes = num(key, value, 256, 1 << 30)? as usize,
        "buffer_max_file_bytes" => c.buffer_max_file_bytes = num(key, value, 1024, 1 << 40)?,
        "buffer_max_total_bytes" => c.buffer_max_total_bytes = num(key, value, 1024, 1 << 50)?,
        "durable" => {
            c.durable = match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(bad(key, value, "true or false")),
            }
        }
        "ca_file" => c.ca_file = (!value.is_empty()).then(|| PathBuf::from(value)),
        "token_lifetime_s" => {
            c.token_lifetime = Duration::from_secs(num(key, value, 2, 30 * 86_400)?)
        }
        "sink" => {
            let otlp = match value.trim().to_ascii_lowercase().as_str() {
                "rarch" => false,
                "otlp" => true,
                _ => return Err(bad(key, value, "rarch or otlp")),
            };
            c.sink = if otlp { Sink::Otlp } else { Sink::Rarch };
            // The endpoint's default follows the sink (an explicit url comes after: `sink`
            // is applied first).
            c.url = if otlp { OTLP_DEFAULT_URL } else { "http://localhost:8080/log" }.to_owned();
        }
        "headers" => {
            c.headers = parse_headers(value).ok_or_else(|| {
                bad(key, value, "k1=v1,k2=v2 (header names, percent-encoded values, no content-type, content-length, content-encoding or host)")
            })?
        }
        "compression" => {
            c.gzip = match value.trim().to_ascii_lowercase().as_str() {
                "none" | "" => false,
                "gzip" => true,
                _ => return Err(bad(key, value, "none or gzip")),
            }
        }
        "batch_max_entries" => c.batch_max_entries = num(key, value, 1, 65_536)? as usize,
        "batch_max_bytes" => c.batch_max_bytes = num(key, value, 1024, 64 << 20)? as usize,
        "batch_linger_ms" => c.batch_linger = ms(key, value, 0, 60_000)?,
        "events" => {
            c.events = match value.trim().to_ascii_lowercase().as_str() {
                "off" | "" => Events::Off,
                "problems" => Events::Problems,
                "all" => Events::All,
                _ => return Err(bad(key, value, "off, problems or all")),
            }
        }
        "events_capacity" => c.events_capacity = num(key, value, 1, 1 << 24)? as usize,
        "redact_keys" => {
            let keys: Vec<String> = value
                .split(',')
                .map(|k| k.trim().to_lowercase())
                .filter(|k| !k.is_empty())
                .collect();
            if keys.iter().any(|k| k.chars().any(char::is_control)) {
                return Err(bad(key, value, "comma-separated context keys"));
            }
            c.redact_keys = keys;
        }
        "rate_limit" => c.rate_limit = num(key, value, 0, 100_000_000)?,
        "rate_limit_burst" => c.rate_limit_burst = num(key, value, 0, 100_000_000)?,
        "otlp_protocol" => {
            c.otlp_protocol = match value.trim().to_ascii_lowercase().as_str() {
                "http/protobuf" => OtlpProtocol::Protobuf,
                "http/json" => OtlpProtocol::Json,
                "grpc" => {
                    return Err(bad(
                        key,
                        value,
                        "http/protobuf or http/json: grpc is not supported (it needs HTTP/2); use http/protobuf, which every Collector takes on its OTLP/HTTP port, 4318 (url http://<collector>:4318/v1/logs)",
                    ))
                }
                _ => return Err(bad(key, value, "http/protobuf or http/json")),
            }
        }
        "resource_attributes" => {
            parse_attributes(value).ok_or_else(|| bad(key, value, ATTRIBUTES_EXPECTED))?;
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("unknown option '{key}'"),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for (k, _, d, _) in KEYS {
            let mut o = Options::new();
            o.set(k, d).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        let c = Config::default();
        assert_eq!(c.url, "http://localhost:8080/log");
        assert_eq!(c.timeout, Duration::from_millis(2000));
        assert_eq!(c.queue_capacity, 8192);
        assert_eq!(c.burst_memory_bytes, 8 << 20);
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut o = Options::new();
        let e = o.set("timeout_ms", "soon").unwrap_err();
        assert!(e.message.contains("timeout_ms"), "{e}");
        let e = o.set("nope", "1").unwrap_err();
        assert!(e.message.contains("'nope'"), "{e}");
        assert!(o.set("url", "ftp://x").is_err());
        assert!(o.set("mode", "blocking").is_ok());
    }

    #[test]
    fn api_key_is_never_shown() {
        let mut o = Options::new();
        o.set("api_key", "s3cret-key").unwrap();
        assert!(!format!("{o:?}").contains("s3cret"));
        let c = Config::resolve(Some(&o)).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    const OTEL_VARS: [&str; 7] = [
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_RESOURCE_ATTRIBUTES",
    ];

    #[test]
    fn the_otlp_sink_has_its_own_endpoint_and_headers() {
        let resolve = |pairs: &[(&str, &str)]| {
            let mut o = Options::new();
            for (k, v) in pairs {
                o.set(k, v).unwrap();
            }
            Config::resolve(Some(&o)).unwrap()
        };
        // The environment is the process's: this is the only test that sets these variables.
        for v in OTEL_VARS {
            std::env::remove_var(v);
        }
        let c = resolve(&[("sink", "otlp")]);
        assert_eq!((c.sink, c.url.as_str()), (Sink::Otlp, OTLP_DEFAULT_URL));
        assert_eq!(
            (c.batch_max_entries, c.batch_max_bytes, c.batch_linger),
            (512, 1 << 20, Duration::from_millis(20))
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/");
        std::env::set_var("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1");
        let c = resolve(&[("sink", "otlp")]);
        assert_eq!(c.url, "http://collector:4318/v1/logs");
        assert_eq!(c.headers, [("x-a".to_string(), "1".to_string())]);
        std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:1/in");
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
            "Api-Key=s%3Dcret , X-B = two",
        );
        let c = resolve(&[("sink", "otlp")]);
        assert_eq!(c.url, "http://logs:1/in");
        assert_eq!(
            c.headers,
            [
                ("api-key".to_string(), "s=cret".to_string()),
                ("x-b".to_string(), "two".to_string())
            ]
        );
        assert!(!format!("{c:?}").contains("cret"));
        // An option wins over the environment; the rarch sink ignores OpenTelemetry's.
        let c = resolve(&[
            ("sink", "otlp"),
            ("url", "https://x/v1/logs"),
            ("headers", ""),
        ]);
        assert_eq!((c.url.as_str(), c.headers.len()), ("https://x/v1/logs", 0));
        let c = resolve(&[]);
        assert_eq!((c.sink, c.headers.len()), (Sink::Rarch, 0));
        assert_eq!(c.url, "http://localhost:8080/log");

        // The protocol: protobuf by default, then OTEL_EXPORTER_OTLP_PROTOCOL, then the
        // logs' own variable, then the option.
        assert_eq!(
            resolve(&[("sink", "otlp")]).otlp_protocol,
            OtlpProtocol::Protobuf
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
        assert_eq!(
            resolve(&[("sink", "otlp")]).otlp_protocol,
            OtlpProtocol::Json
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf");
        assert_eq!(
            resolve(&[("sink", "otlp")]).otlp_protocol,
            OtlpProtocol::Protobuf
        );
        let c = resolve(&[("sink", "otlp"), ("otlp_protocol", "HTTP/JSON")]);
        assert_eq!(c.otlp_protocol, OtlpProtocol::Json);
        // grpc from the environment: refused, naming the variables.
        std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc");
        let mut o = Options::new();
        o.set("sink", "otlp").unwrap();
        let e = Config::resolve(Some(&o)).unwrap_err();
        assert!(
            e.message.contains("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") && e.message.contains("4318"),
            "{e}"
        );
        // ... but not with the rarch sink, which has no use for it.
        assert!(Config::resolve(None).is_ok());
        std::env::remove_var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL");

        // Resource attributes: the variable's, then the option's over them key by key;
        // service.name never (the logger's service is the resource's).
        std::env::set_var(
            "OTEL_RESOURCE_ATTRIBUTES",
            " service.name=env-svc, team = a%2Cb%3Dc ,region=eu,k8s.pod.name=p%C3%BC",
        );
        let c = resolve(&[
            ("sink", "otlp"),
            ("otlp_protocol", "http/protobuf"),
            (
                "resource_attributes",
                "region=us,deployment.environment=prod",
            ),
        ]);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            c.resource_attributes,
            pairs(&[
                ("team", "a,b=c"),
                ("region", "us"),
                ("k8s.pod.name", "pü"),
                ("deployment.environment", "prod"),
            ])
        );
        assert!(resolve(&[("resource_attributes", "a=1")])
            .resource_attributes
            .is_empty());
        std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", "novalue");
        let e = Config::resolve(Some(&o)).unwrap_err();
        assert!(e.message.contains("OTEL_RESOURCE_ATTRIBUTES"), "{e}");
        for v in OTEL_VARS {
            std::env::remove_var(v);
        }
    }

    #[test]
    fn grpc_is_refused_with_the_way_out() {
        let mut o = Options::new();
        let e = o.set("otlp_protocol", "grpc").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(
            e.message.contains("'otlp_protocol'")
                && e.message.contains("http/protobuf")
                && e.message.contains("4318"),
            "{e}"
        );
        assert!(o.set("otlp_protocol", "http/xml").is_err());
        assert!(o.set("resource_attributes", "a=%zz").is_err());
        assert!(o.set("resource_attributes", "=v").is_err());
        o.set("resource_attributes", "a=1,,b=").unwrap();
        o.set("otlp_protocol", "http/json").unwrap();
    }

    #[test]
    fn bad_headers_are_refused_without_their_values() {
        let mut o = Options::new();
        for bad in [
            "novalue",
            "a b=1",
            "x=1%",
            "x=\r\nEvil: 1",
            "content-type=text/plain",
        ] {
            let e = o.set("headers", &format!("{bad},k=s3cret")).unwrap_err();
            assert!(e.message.contains("'headers'"), "{e}");
            assert!(!e.message.contains("s3cret"), "{e}");
        }
        assert!(o.set("compression", "zstd").is_err());
        assert!(o.set("sink", "kafka").is_err());
        assert!(o.set("batch_max_entries", "0").is_err());
        o.set("compression", "gzip").unwrap();
        assert!(Config::resolve(Some(&o)).unwrap().gzip);
    }
}
