//! OTLP/HTTP logs (`sink=otlp`): rarch entries, as they are queued and as buffer lines hold
//! them, encoded as one `ExportLogsServiceRequest` per batch, in protobuf
//! (`otlp_protocol=http/protobuf`, the default) or OTLP/JSON (`http/json`), and what an
//! answer's `partialSuccess` says in either. OTLP/JSON is the opentelemetry-proto JSON
//! mapping: lowerCamelCase keys, 64-bit integers as decimal strings, enums as integers, trace
//! and span ids as hex. The protobuf messages are in [`proto`].
//!
//! The mapping, so that every OTel backend sees the same entry:
//! - `resource.attributes`: `service.name` = the entry's service (one `resourceLogs` each),
//!   then `telemetry.sdk.name` = `rarch-logging`, `telemetry.sdk.language` = `rust`,
//!   `telemetry.sdk.version`, `host.name`, `process.pid`, and the configured attributes
//!   (`OTEL_RESOURCE_ATTRIBUTES`, `resource_attributes`), which replace a built-in one of the
//!   same key; `service.name` is always the service;
//! - one `scopeLogs` per logger: `scope.name` = `logger_name`;
//! - `timeUnixNano` = `client_log_datetime`; `observedTimeUnixNano` = when `rarch_log` took the
//!   entry (for an entry read back from the disk buffer, which does not keep it: its time);
//! - `severityNumber` DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; `severityText` = the level;
//! - `body.stringValue` = the message;
//! - `traceId`, `spanId` and `flags` from the entry's `trace_id`, `span_id` and `trace_flags`,
//!   when it has them;
//! - `attributes`: `user_id` and `tenant_id` (left out when null), `request_id`, and `context`
//!   as a `kvlistValue` mirroring the JSON object (strings, booleans, integers as `intValue`,
//!   other numbers as `doubleValue`, arrays as `arrayValue`, objects as nested `kvlistValue`,
//!   null as an empty value).
//!
//! Written by hand onto a byte buffer (JSON) or with prost's wire primitives (protobuf) rather
//! than through a tree of owned message structs: those need a `String` per key and value
//! before anything is written, where this writes each record once, in place, from the entry.
//! In protobuf the context is converted as its text is read ([`context`]), without a `Value`
//! tree; the JSON encoding goes through a `Value`.

pub mod context;
pub mod proto;

use crate::config::OtlpProtocol;
use crate::level::Level;
use crate::trace::{hex, unhex, Trace};
use proto::wire;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::io::Write;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An entry as its JSON body holds it (the rarch protocol's fields).
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    level: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow, default)]
    logger_name: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request_id: Option<Cow<'a, str>>,
    /// The context's JSON text, converted as it is read (protobuf) or through a `Value` (JSON).
    #[serde(borrow, default)]
    context: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    client_log_datetime: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    span_id: Option<Cow<'a, str>>,
    #[serde(default)]
    trace_flags: Option<Value>,
    /// A buffer line's strikes (read by [`Encoder::add_line`]).
    #[serde(default)]
    retry_count: Option<Value>,
}

impl Entry<'_> {
    /// The entry's trace, when it has a well-formed one (a buffer line may hold anything).
    fn trace(&self) -> Option<Trace> {
        let trace_id = unhex::<16>(self.trace_id.as_deref()?)?;
        let span_id = unhex::<8>(self.span_id.as_deref()?)?;
        let flags = self
            .trace_flags
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|f| u8::try_from(f).ok())
            .unwrap_or(0);
        Some(Trace {
            trace_id,
            span_id,
            flags,
        })
    }
}

/// An entry's JSON text read: checked as UTF-8 once, whole, rather than string by string as
/// serde_json does with bytes.
fn entry(body: &[u8]) -> Option<Entry<'_>> {
    serde_json::from_str(std::str::from_utf8(body).ok()?).ok()
}

/// The OTLP severity number of a level.
pub fn severity_number(level: Level) -> u8 {
    match level {
        Level::Debug => 5,
        Level::Info => 9,
        Level::Warn => 13,
        Level::Error => 17,
        Level::Fatal => 21,
    }
}

/// A logger's name and its records written so far, comma-separated.
type Scope = (String, Vec<u8>);

/// Builds one request from entries, grouped by service and logger in the order they first
/// appear. Reuse one encoder: its buffers are kept.
pub struct Encoder {
    protocol: OtlpProtocol,
    /// The resource's attributes after `service.name`, encoded once: OTLP/JSON `KeyValue`s,
    /// each preceded by a comma, or protobuf `Resource.attributes` fields.
    resource: Vec<u8>,
    /// Each service's loggers, in order of appearance.
    groups: Vec<(String, Vec<Scope>)>,
    /// Groups emptied by `finish`, kept for their buffers.
    spare: Vec<Vec<u8>>,
    entries: usize,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

/// The resource attributes the library sets, before the configured ones.
fn builtin_resource() -> Vec<(&'static str, Attr)> {
    vec![
        ("telemetry.sdk.name", Attr::Str("rarch-logging".into())),
        ("telemetry.sdk.language", Attr::Str("rust".into())),
        (
            "telemetry.sdk.version",
            Attr::Str(env!("CARGO_PKG_VERSION").into()),
        ),
        ("host.name", Attr::Str(host_name())),
        ("process.pid", Attr::Int(i64::from(std::process::id()))),
    ]
}

enum Attr {
    Str(String),
    Int(i64),
}

/// The host's name (`gethostname`), "" when it has none.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` holds `buf.len()` writable bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl Encoder {
    /// An OTLP/JSON encoder with the built-in resource attributes only.
    pub fn new() -> Encoder {
        Encoder::with(OtlpProtocol::Json, &[])
    }

    /// An encoder of `protocol` whose resources carry `attributes` (see `Config`'s
    /// `resource_attributes`) besides the built-in ones.
    pub fn with(protocol: OtlpProtocol, attributes: &[(String, String)]) -> Encoder {
        let mut attrs: Vec<(String, Attr)> = builtin_resource()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in attributes {
            if k == "service.name" {
                continue;
            }
            match attrs.iter_mut().find(|(have, _)| have == k) {
                Some(slot) => slot.1 = Attr::Str(v.clone()),
                None => attrs.push((k.clone(), Attr::Str(v.clone()))),
            }
        }
        let mut resource = Vec::new();
        for (k, v) in &attrs {
            match protocol {
                OtlpProtocol::Json => {
                    resource.extend_from_slice(b",{\"key\":");
                    string(&mut resource, k);
                    match v {
                        Attr::Str(s) => {
                            resource.extend_from_slice(b",\"value\":{\"stringValue\":");
                            string(&mut resource, s);
                            resource.extend_from_slice(b"}}");
                        }
                        Attr::Int(i) => {
                            let _ = write!(resource, ",\"value\":{{\"intValue\":\"{i}\"}}}}");
                        }
                    }
                }
                OtlpProtocol::Protobuf => wire::message(&mut resource, 1, |o| {
                    wire::bytes(o, 1, k.as_bytes());
                    wire::message(o, 2, |o| match v {
                        Attr::Str(s) => wire::bytes(o, 1, s.as_bytes()),
                        Attr::Int(i) => wire::varint(o, 3, *i as u64),
                    });
                }),
            }
        }
        Encoder {
            protocol,
            resource,
            groups: Vec::new(),
            spare: Vec::new(),
            entries: 0,
        }
    }

    /// The encoder for a configuration's protocol and resource attributes.
    pub fn for_config(cfg: &crate::config::Config) -> Encoder {
        Encoder::with(cfg.otlp_protocol, &cfg.resource_attributes)
    }

    /// The `Content-Type` of the requests it makes.
    pub fn content_type(protocol: OtlpProtocol) -> &'static str {
        match protocol {
            OtlpProtocol::Protobuf => "application/x-protobuf",
            OtlpProtocol::Json => "application/json",
        }
    }

    /// Entries added since the last `finish`.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Adds one entry (its rarch JSON `body`; `observed_ns` 0 when unknown). False, and
    /// nothing added, when the body is not an entry.
    pub fn add(&mut self, body: &[u8], observed_ns: u64) -> bool {
        let Some(e) = entry(body) else {
            return false;
        };
        self.add_entry(&e, observed_ns)
    }

    /// Adds a buffer line, read once for both: its service and its strikes (`retry_count`:
    /// any number, else 0), or `None`, and nothing added, when the line is not an entry (or
    /// its service is empty). A raw journal record of `raw_service` is a line too (see
    /// [`Encoder::add_raw`]), with no strikes.
    pub fn add_line<'l>(
        &mut self,
        line: &'l [u8],
        raw_service: &'l str,
    ) -> Option<(Cow<'l, str>, u32)> {
        if crate::record::is_raw(line) {
            return self
                .add_raw(line, raw_service)
                .then_some((Cow::Borrowed(raw_service), 0));
        }
        let e = entry(line)?;
        if e.service.is_empty() || !self.add_entry(&e, 0) {
            return None;
        }
        let strikes = e
            .retry_count
            .as_ref()
            .and_then(Value::as_u64)
            .map_or(0, |n| n.min(u32::MAX as u64) as u32);
        Some((e.service, strikes))
    }

    /// Adds a raw journal record of `service` (a lane record spilled in a burst): in protobuf
    /// straight from its fields, with no JSON body made and read back; its observed time is
    /// when `rarch_log` took it. False, and nothing added, when it is not a raw record.
    pub fn add_raw(&mut self, rec: &[u8], service: &str) -> bool {
        if self.protocol == OtlpProtocol::Json {
            let Some(body) = crate::record::journal_body(rec, service) else {
                return false;
            };
            let at_ns = crate::record::parse_journal(rec).map_or(0, |(_, r)| r.at_ns);
            return self.add(&body, at_ns);
        }
        let Some((name, r)) = crate::record::parse_journal(rec) else {
            return false;
        };
        let f = &r.fields;
        // The time its body would say: the caller's, else the call's to the microsecond.
        let time_ns = f
            .client_log_datetime
            .map(unix_nanos)
            .filter(|&t| t != 0)
            .unwrap_or(r.at_ns / 1000 * 1000);
        let rec = Rec {
            message: f.message,
            user_id: f.user_id,
            tenant_id: f.tenant_id,
            request_id: f.request_id,
            context: f.context_json,
            time_ns,
            trace: f.trace,
        };
        let out = self.scope(service, name);
        wire::message_large(out, 2, |o| record_pb(o, r.level, &rec, r.at_ns));
        self.entries += 1;
        true
    }

    fn add_entry(&mut self, e: &Entry<'_>, observed_ns: u64) -> bool {
        let Some(level) = Level::parse(&e.level) else {
            return false;
        };
        let protocol = self.protocol;
        let out = self.scope(&e.service, &e.logger_name);
        match protocol {
            OtlpProtocol::Json => {
                if !out.is_empty() {
                    out.push(b',');
                }
                record(out, level, e, observed_ns);
            }
            // ScopeLogs.log_records (2), one after another.
            OtlpProtocol::Protobuf => {
                wire::message_large(out, 2, |o| {
                    record_pb(o, level, &Rec::of_entry(e), observed_ns)
                });
            }
        }
        self.entries += 1;
        true
    }

    /// The records written so far for `service`'s logger `logger` (its scope), made empty
    /// when it is the first.
    fn scope(&mut self, service: &str, logger: &str) -> &mut Vec<u8> {
        let gi = match self.groups.iter().position(|g| g.0 == service) {
            Some(i) => i,
            None => {
                self.groups.push((service.to_string(), Vec::new()));
                self.groups.len() - 1
            }
        };
        let loggers = &mut self.groups[gi].1;
        let li = match loggers.iter().position(|l| l.0 == logger) {
            Some(i) => i,
            None => {
                let buf = self.spare.pop().unwrap_or_default();
                loggers.push((logger.to_string(), buf));
                loggers.len() - 1
            }
        };
        &mut loggers[li].1
    }

    /// Writes the request of every entry added into `out` (cleared first), and starts over.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.clear();
        self.finish_append(out);
    }

    /// The length of the protobuf request [`Encoder::finish_append`] would write now (None
    /// with OTLP/JSON): what an HTTP head says before the body is written after it.
    pub fn protobuf_len(&self) -> Option<usize> {
        (self.protocol == OtlpProtocol::Protobuf).then(|| self.pb_len())
    }

    /// [`Encoder::finish`] onto the end of `out`.
    pub fn finish_append(&mut self, out: &mut Vec<u8>) {
        let groups = std::mem::take(&mut self.groups);
        match self.protocol {
            OtlpProtocol::Json => self.finish_json(out, groups),
            OtlpProtocol::Protobuf => self.finish_pb(out, groups),
        }
        self.entries = 0;
    }

    /// Keeps a scope's emptied buffer for the next request.
    fn give_back(&mut self, mut records: Vec<u8>) {
        records.clear();
        if self.spare.len() < 16 {
            self.spare.push(records);
        }
    }

    fn finish_json(&mut self, out: &mut Vec<u8>, groups: Vec<(String, Vec<Scope>)>) {
        out.extend_from_slice(b"{\"resourceLogs\":[");
        for (gi, (service, loggers)) in groups.into_iter().enumerate() {
            if gi > 0 {
                out.push(b',');
            }
            out.extend_from_slice(
                b"{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":",
            );
            string(out, &service);
            out.extend_from_slice(b"}}");
            out.extend_from_slice(&self.resource);
            out.extend_from_slice(b"]},\"scopeLogs\":[");
            for (li, (logger, records)) in loggers.into_iter().enumerate() {
                if li > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"scope\":{\"name\":");
                string(out, &logger);
                out.extend_from_slice(b"},\"logRecords\":[");
                out.extend_from_slice(&records);
                out.extend_from_slice(b"]}");
                self.give_back(records);
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
    }

    /// ResourceLogs.resource (1) of `service`: Resource.attributes (1), service.name first.
    fn resource_field(&self, out: &mut Vec<u8>, service: &str) {
        wire::message(out, 1, |o| {
            wire::message(o, 1, |o| {
                wire::bytes(o, 1, b"service.name");
                wire::message(o, 2, |o| wire::bytes(o, 1, service.as_bytes()));
            });
            o.extend_from_slice(&self.resource);
        });
    }

    /// ScopeLogs.scope (1) of `logger`: InstrumentationScope.name (1).
    fn scope_field(out: &mut Vec<u8>, logger: &str) {
        wire::message(out, 1, |o| wire::bytes(o, 1, logger.as_bytes()));
    }

    /// The length of a scope's ScopeLogs content: its scope field and its records.
    fn scope_len(logger: &str, records: &[u8]) -> usize {
        wire::field_len(wire::field_len(logger.len())) + records.len()
    }

    /// The length of a group's ResourceLogs content, its resource field written in `scratch`.
    fn group_len(&self, scratch: &mut Vec<u8>, service: &str, loggers: &[Scope]) -> usize {
        scratch.clear();
        self.resource_field(scratch, service);
        scratch.len()
            + loggers
                .iter()
                .map(|(l, r)| wire::field_len(Encoder::scope_len(l, r)))
                .sum::<usize>()
    }

    /// The length of the protobuf request `finish` would write now.
    fn pb_len(&self) -> usize {
        let mut scratch = Vec::new();
        self.groups
            .iter()
            .map(|(service, loggers)| {
                wire::field_len(self.group_len(&mut scratch, service, loggers))
            })
            .sum()
    }

    /// Each group as ExportLogsServiceRequest.resource_logs (1): its resource, then each
    /// logger's ScopeLogs (2), the scope then its records. The lengths are worked out before
    /// each field is written, so the records are copied once, into `out`.
    fn finish_pb(&mut self, out: &mut Vec<u8>, groups: Vec<(String, Vec<Scope>)>) {
        let mut resource = Vec::new();
        for (service, loggers) in groups {
            let len = self.group_len(&mut resource, &service, &loggers);
            wire::head(out, 1, len);
            out.extend_from_slice(&resource);
            for (logger, records) in loggers {
                wire::head(out, 2, Encoder::scope_len(&logger, &records));
                Encoder::scope_field(out, &logger);
                out.extend_from_slice(&records);
                self.give_back(records);
            }
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    crate::entry::json_string(out, s);
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time (0 when it is not one, or before 1970:
/// OTLP's "unknown").
fn unix_nanos(t: &str) -> u64 {
    OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok())
        .unwrap_or(0)
}

fn record(out: &mut Vec<u8>, level: Level, e: &Entry<'_>, observed_ns: u64) {
    let time = e.client_log_datetime.as_deref().map_or(0, unix_nanos);
    let observed = if observed_ns == 0 { time } else { observed_ns };
    // Integers written into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"timeUnixNano\":\"{time}\",\"observedTimeUnixNano\":\"{observed}\",\"severityNumber\":{},\"severityText\":\"{}\",\"body\":{{\"stringValue\":",
        severity_number(level),
        level.as_str()
    );
    string(out, &e.message);
    out.push(b'}');
    if let Some(t) = e.trace() {
        out.extend_from_slice(b",\"traceId\":\"");
        hex(out, &t.trace_id);
        out.extend_from_slice(b"\",\"spanId\":\"");
        hex(out, &t.span_id);
        let _ = write!(out, "\",\"flags\":{}", t.flags);
    }
    out.extend_from_slice(b",\"attributes\":[");
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"key\":\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\",\"value\":");
    };
    for (k, v) in [
        ("user_id", &e.user_id),
        ("tenant_id", &e.tenant_id),
        ("request_id", &e.request_id),
    ] {
        if let Some(v) = v {
            key(out, k);
            out.extend_from_slice(b"{\"stringValue\":");
            string(out, v);
            out.extend_from_slice(b"}}");
        }
    }
    key(out, "context");
    let context = e
        .context
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    match &context {
        // The protocol's context is an object; anything else is kept as it is.
        Some(v) => any_value(out, v),
        None => out.extend_from_slice(b"{\"kvlistValue\":{}}"),
    }
    out.extend_from_slice(b"}]}");
}

/// A JSON value as an OTLP `AnyValue`.
fn any_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"{}"),
        Value::Bool(b) => {
            out.extend_from_slice(if *b {
                b"{\"boolValue\":true}"
            } else {
                b"{\"boolValue\":false}"
            });
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{{\"intValue\":\"{i}\"}}");
            } else {
                // Above i64's range, or not an integer. A JSON number is always finite.
                let f = n.as_f64().unwrap_or(0.0);
                out.extend_from_slice(b"{\"doubleValue\":");
                // serde_json writes the shortest text that reads back as the same f64.
                let _ = serde_json::to_writer(&mut *out, &f);
                out.push(b'}');
            }
        }
        Value::String(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            string(out, s);
            out.push(b'}');
        }
        Value::Array(items) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                any_value(out, item);
            }
            out.extend_from_slice(b"]}}");
        }
        Value::Object(map) => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":[");
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"key\":");
                string(out, k);
                out.extend_from_slice(b",\"value\":");
                any_value(out, item);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}}");
        }
    }
}

/// A record's fields as [`record_pb`] writes them, from a JSON body or from a raw record.
struct Rec<'a> {
    message: &'a str,
    user_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    request_id: Option<&'a str>,
    /// The context's JSON text.
    context: Option<&'a str>,
    time_ns: u64,
    trace: Option<Trace>,
}

impl<'a> Rec<'a> {
    fn of_entry(e: &'a Entry<'a>) -> Rec<'a> {
        Rec {
            message: &e.message,
            user_id: e.user_id.as_deref(),
            tenant_id: e.tenant_id.as_deref(),
            request_id: e.request_id.as_deref(),
            context: e.context.map(serde_json::value::RawValue::get),
            time_ns: e.client_log_datetime.as_deref().map_or(0, unix_nanos),
            trace: e.trace(),
        }
    }
}

/// A record as a protobuf `LogRecord`'s fields.
fn record_pb(out: &mut Vec<u8>, level: Level, e: &Rec<'_>, observed_ns: u64) {
    let time = e.time_ns;
    let observed = if observed_ns == 0 { time } else { observed_ns };
    wire::fixed64(out, 1, time);
    wire::varint(out, 2, u64::from(severity_number(level)));
    wire::bytes(out, 3, level.as_str().as_bytes());
    wire::message(out, 5, |o| wire::bytes(o, 1, e.message.as_bytes()));
    for (k, v) in [
        ("user_id", e.user_id),
        ("tenant_id", e.tenant_id),
        ("request_id", e.request_id),
    ] {
        if let Some(v) = v {
            wire::message(out, 6, |o| {
                wire::bytes(o, 1, k.as_bytes());
                wire::message(o, 2, |o| wire::bytes(o, 1, v.as_bytes()));
            });
        }
    }
    wire::message_large(out, 6, |o| {
        wire::bytes(o, 1, b"context");
        wire::message_large(o, 2, |o| {
            let at = o.len();
            let done = e.context.is_some_and(|text| context::any_value(o, text));
            if !done {
                // None, or (it cannot be: a body's context is checked JSON) not JSON: an
                // empty kvlist_value (6).
                o.truncate(at);
                wire::bytes(o, 6, b"");
            }
        });
    });
    if let Some(t) = &e.trace {
        wire::fixed32(out, 8, u32::from(t.flags));
        wire::bytes(out, 9, &t.trace_id);
        wire::bytes(out, 10, &t.span_id);
    }
    wire::fixed64(out, 11, observed);
}

/// What a 2xx answer's `partialSuccess` says: the records refused, and why, when any were.
pub fn partial_success(text: &str) -> Option<(u64, String)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        partial_success: Option<Partial>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Partial {
        #[serde(default)]
        rejected_log_records: Option<Value>,
        #[serde(default)]
        error_message: Option<String>,
    }
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let p = serde_json::from_str::<Answer>(text).ok()?.partial_success?;
    // int64 in OTLP/JSON is a decimal string; a number is taken too.
    let n = match p.rejected_log_records? {
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    (n > 0).then(|| (n, p.error_message.unwrap_or_default()))
}

/// What a 2xx answer in protobuf (an `ExportLogsServiceResponse`) says of a partial success.
pub fn partial_success_pb(body: &[u8]) -> Option<(u64, String)> {
    use prost::Message;
    let p = proto::ExportLogsServiceResponse::decode(body)
        .ok()?
        .partial_success?;
    let n = u64::try_from(p.rejected_log_records).ok()?;
    (n > 0).then_some((n, p.error_message))
}

/// The message of a failure answer in protobuf (a `google.rpc.Status`), when it is one.
pub fn status_message_pb(body: &[u8]) -> Option<String> {
    use prost::Message;
    let s = proto::Status::decode(body).ok()?;
    (!s.message.is_empty()).then_some(s.message)
}

/// `body` compressed with gzip into `out` (cleared first), at the fastest level: the request
/// shrinks about as much as at the default level for a few times less CPU on log text.
pub fn gzip(body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut enc = flate2::write::GzEncoder::new(std::mem::take(out), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    *out = enc.finish().unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ctx: &str) -> Vec<u8> {
        format!(
            r#"{{"level":"WARN","service":"svc","logger_name":"api","message":"héllo \"x\"","user_id":"u1","tenant_id":null,"request_id":"r-1","context":{ctx},"client_log_datetime":"2026-11-23T22:30:00.123456Z"}}"#
        )
        .into_bytes()
    }

    fn encode(bodies: &[Vec<u8>]) -> Value {
        let mut e = Encoder::new();
        for b in bodies {
            assert!(e.add(b, 7));
        }
        let mut out = Vec::new();
        e.finish(&mut out);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn an_entry_maps_field_by_field() {
        let v = encode(&[entry(
            r#"{"s":"ü","b":true,"i":-3,"big":18446744073709551615,"f":1.5,"n":null,"a":[1,"x"],"o":{"k":{}}}"#,
        )]);
        let rl = &v["resourceLogs"][0];
        assert_eq!(
            rl["resource"]["attributes"][0],
            serde_json::json!({"key":"service.name","value":{"stringValue":"svc"}})
        );
        let sl = &rl["scopeLogs"][0];
        assert_eq!(sl["scope"]["name"], "api");
        let r = &sl["logRecords"][0];
        assert_eq!(r["timeUnixNano"], "1795473000123456000");
        assert_eq!(r["observedTimeUnixNano"], "7");
        assert_eq!(r["severityNumber"], 13);
        assert_eq!(r["severityText"], "WARN");
        assert_eq!(r["body"]["stringValue"], "héllo \"x\"");
        let attrs = r["attributes"].as_array().unwrap();
        let keys: Vec<&str> = attrs.iter().map(|a| a["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["user_id", "request_id", "context"]);
        assert_eq!(attrs[0]["value"]["stringValue"], "u1");
        let ctx = serde_json::json!({"kvlistValue":{"values":[
            {"key":"s","value":{"stringValue":"ü"}},
            {"key":"b","value":{"boolValue":true}},
            {"key":"i","value":{"intValue":"-3"}},
            {"key":"big","value":{"doubleValue":18446744073709551615.0}},
            {"key":"f","value":{"doubleValue":1.5}},
            {"key":"n","value":{}},
            {"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"}]}}},
            {"key":"o","value":{"kvlistValue":{"values":[{"key":"k","value":{"kvlistValue":{"values":[]}}}]}}}
        ]}});
        assert_eq!(attrs[2]["value"], ctx);
    }

    #[test]
    fn entries_are_grouped_by_service_then_logger() {
        let a = entry("{}");
        let b = String::from_utf8(entry("{}"))
            .unwrap()
            .replace("\"api\"", "\"db\"")
            .into_bytes();
        let c = String::from_utf8(entry("{}"))
            .unwrap()
            .replace("\"svc\"", "\"other\"")
            .into_bytes();
        let v = encode(&[a.clone(), b, a, c]);
        let rls = v["resourceLogs"].as_array().unwrap();
        assert_eq!(rls.len(), 2);
        let scopes = rls[0]["scopeLogs"].as_array().unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0]["scope"]["name"], "api");
        assert_eq!(scopes[0]["logRecords"].as_array().unwrap().len(), 2);
        assert_eq!(scopes[1]["scope"]["name"], "db");
        assert_eq!(
            rls[1]["resource"]["attributes"][0]["value"]["stringValue"],
            "other"
        );
        // The encoder starts over after finish.
        let v = encode(&[entry("{}")]);
        assert_eq!(v["resourceLogs"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn what_is_not_an_entry_is_refused() {
        let mut e = Encoder::new();
        assert!(!e.add(b"not json", 0));
        assert!(!e.add(br#"{"level":"LOUD","service":"s","message":"m"}"#, 0));
        assert!(e.is_empty());
        // A missing time is OTLP's "unknown" (0), and observed falls back to it.
        assert!(e.add(br#"{"level":"INFO","service":"s","message":"m"}"#, 0));
        let mut out = Vec::new();
        e.finish(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let r = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(r["timeUnixNano"], "0");
        assert_eq!(r["observedTimeUnixNano"], "0");
    }

    #[test]
    fn partial_success_is_read() {
        assert_eq!(partial_success(""), None);
        assert_eq!(partial_success("{}"), None);
        assert_eq!(partial_success(r#"{"partialSuccess":{}}"#), None);
        assert_eq!(
            partial_success(r#"{"partialSuccess":{"rejectedLogRecords":"0","errorMessage":"w"}}"#),
            None
        );
        assert_eq!(
            partial_success(
                r#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad"}}"#
            ),
            Some((2, "bad".into()))
        );
        assert_eq!(
            partial_success(r#"{"partialSuccess":{"rejectedLogRecords":3}}"#),
            Some((3, String::new()))
        );
        assert_eq!(partial_success("ok"), None);
    }

    /// A protobuf request as the OTLP/JSON mapping writes it (for comparing the encodings).
    fn pb_as_json(body: &[u8]) -> Value {
        use prost::Message;
        use serde_json::json;
        fn any(v: &proto::AnyValue) -> Value {
            match &v.value {
                None => json!({}),
                Some(proto::Value::StringValue(s)) => json!({"stringValue": s}),
                Some(proto::Value::BoolValue(b)) => json!({"boolValue": b}),
                Some(proto::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
                Some(proto::Value::DoubleValue(f)) => json!({"doubleValue": f}),
                Some(proto::Value::ArrayValue(a)) => {
                    json!({"arrayValue": {"values": a.values.iter().map(any).collect::<Vec<_>>()}})
                }
                Some(proto::Value::KvlistValue(l)) => {
                    json!({"kvlistValue": {"values": kvs(&l.values)}})
                }
                Some(proto::Value::BytesValue(_)) => panic!("bytes are never sent"),
            }
        }
        fn kvs(l: &[proto::KeyValue]) -> Vec<Value> {
            l.iter()
                .map(|kv| json!({"key": kv.key, "value": kv.value.as_ref().map_or(json!({}), any)}))
                .collect()
        }
        let hex_of = |b: &[u8]| {
            let mut out = Vec::new();
            hex(&mut out, b);
            String::from_utf8(out).unwrap()
        };
        let req = proto::ExportLogsServiceRequest::decode(body).unwrap();
        let rls: Vec<Value> = req
            .resource_logs
            .iter()
            .map(|rl| {
                let scopes: Vec<Value> = rl
                    .scope_logs
                    .iter()
                    .map(|sl| {
                        let recs: Vec<Value> = sl
                            .log_records
                            .iter()
                            .map(|r| {
                                let mut v = json!({
                                    "timeUnixNano": r.time_unix_nano.to_string(),
                                    "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
                                    "severityNumber": r.severity_number,
                                    "severityText": r.severity_text,
                                    "body": any(r.body.as_ref().unwrap()),
                                    "attributes": kvs(&r.attributes),
                                });
                                if !r.trace_id.is_empty() {
                                    v["traceId"] = json!(hex_of(&r.trace_id));
                                    v["spanId"] = json!(hex_of(&r.span_id));
                                    v["flags"] = json!(r.flags);
                                }
                                v
                            })
                            .collect();
                        json!({"scope": {"name": sl.scope.as_ref().unwrap().name}, "logRecords": recs})
                    })
                    .collect();
                json!({"resource": {"attributes": kvs(&rl.resource.as_ref().unwrap().attributes)}, "scopeLogs": scopes})
            })
            .collect();
        json!({ "resourceLogs": rls })
    }

    /// A raw journal record (a burst's overflow) is encoded as its body would be, with the
    /// time of the call as its observed time; and a request id is given to one without.
    #[test]
    fn a_raw_record_encodes_as_its_body() {
        use crate::entry::Fields;
        use crate::record;
        use crate::trace::Trace;
        let t = Trace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let at = 1_795_473_000_123_456_789;
        let cases = [
            Fields {
                message: "m \"q\"\nü",
                user_id: Some("u"),
                tenant_id: None,
                request_id: Some("r-1"),
                context_json: Some(
                    "{\n \"a\": [1, 2.5, {\"x\": null}],\n \"big\": 18446744073709551615\n}",
                ),
                client_log_datetime: None,
                trace: Some(t),
            },
            Fields {
                message: "plain",
                user_id: None,
                tenant_id: Some("t"),
                request_id: None,
                context_json: None,
                client_log_datetime: Some("2026-12-07T10:00:00.5+01:00"),
                trace: None,
            },
        ];
        for f in cases {
            let mut rec = vec![0u8; record::journal_len("lg", &f)];
            record::write_journal(&mut rec, "lg", at, Level::Warn, &f, true);
            let mut with_id = Vec::new();
            assert!(record::push_with_request_id(&mut with_id, &rec));
            let body = record::journal_body(&with_id, "svc").unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["request_id"].as_str().is_some_and(|r| !r.is_empty()));
            if f.request_id.is_some() {
                assert_eq!(with_id, rec);
            }
            let mut raw_enc = Encoder::with(OtlpProtocol::Protobuf, &[]);
            let mut body_enc = Encoder::with(OtlpProtocol::Protobuf, &[]);
            assert_eq!(raw_enc.add_line(&with_id, "svc"), Some(("svc".into(), 0)));
            assert!(body_enc.add(&body, at));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            raw_enc.finish(&mut a);
            body_enc.finish(&mut b);
            assert_eq!(pb_as_json(&a), pb_as_json(&b));
        }
        assert!(!Encoder::new().add_raw(b"{\"level\":\"INFO\"}", "svc"));
    }

    #[test]
    fn protobuf_carries_what_json_carries() {
        let traced = String::from_utf8(entry(r#"{"k":[1,2.5,{"x":null}],"big":"ü","t":true}"#))
            .unwrap()
            .trim_end_matches('}')
            .to_owned()
            + r#","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":1}"#;
        let other = String::from_utf8(entry(
            r#"{"s":"ü","b":false,"i":-3,"big":18446744073709551615,"f":1.5,"n":null,"a":[1,"x",[]],"o":{"k":{}},"k\"ey":"a\"b\u00e9"}"#,
        ))
            .unwrap()
            .replace("\"svc\"", "\"other\"")
            .replace("\"api\"", "\"db\"");
        // A body too long for one byte of length, so that lengths of two bytes are written.
        let long =
            String::from_utf8(entry(&format!(r#"{{"long":"{}"}}"#, "x".repeat(300)))).unwrap();
        let attrs = [
            (
                "deployment.environment".to_string(),
                "prod, eu=1".to_string(),
            ),
            ("host.name".to_string(), "set-by-the-user".to_string()),
            ("service.name".to_string(), "never".to_string()),
        ];
        let bodies = [traced.into_bytes(), other.into_bytes(), long.into_bytes()];
        let mut out = Vec::new();
        let mut json_enc = Encoder::with(OtlpProtocol::Json, &attrs);
        let mut pb_enc = Encoder::with(OtlpProtocol::Protobuf, &attrs);
        for b in &bodies {
            assert!(json_enc.add(b, 7) && pb_enc.add(b, 7));
        }
        json_enc.finish(&mut out);
        let from_json: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json_enc.protobuf_len(), None);
        let len = pb_enc.protobuf_len().unwrap();
        pb_enc.finish(&mut out);
        assert_eq!(out.len(), len);
        assert_eq!(pb_as_json(&out), from_json);
        // What both carry.
        let rl = &from_json["resourceLogs"][0];
        let attrs: Vec<(String, Value)> = rl["resource"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
            .collect();
        let keys: Vec<&str> = attrs.iter().map(|a| a.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "service.name",
                "telemetry.sdk.name",
                "telemetry.sdk.language",
                "telemetry.sdk.version",
                "host.name",
                "process.pid",
                "deployment.environment"
            ]
        );
        assert_eq!(attrs[0].1["stringValue"], "svc");
        assert_eq!(attrs[1].1["stringValue"], "rarch-logging");
        assert_eq!(attrs[4].1["stringValue"], "set-by-the-user");
        assert_eq!(attrs[5].1["intValue"], std::process::id().to_string());
        assert_eq!(attrs[6].1["stringValue"], "prod, eu=1");
        let r = &rl["scopeLogs"][0]["logRecords"][0];
        assert_eq!(r["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(r["spanId"], "00f067aa0ba902b7");
        assert_eq!(r["flags"], 1);
        assert!(rl["scopeLogs"][0]["logRecords"][1].get("traceId").is_none());
        // An encoder starts over after finish, in protobuf too.
        assert!(pb_enc.add(&bodies[1], 0));
        pb_enc.finish(&mut out);
        assert_eq!(
            pb_as_json(&out)["resourceLogs"].as_array().unwrap().len(),
            1
        );
        // Scopes and groups past 16 KiB (lengths of three bytes), appended after a prefix.
        for _ in 0..100 {
            assert!(pb_enc.add(&bodies[2], 0) && pb_enc.add(&bodies[1], 0));
        }
        let len = pb_enc.protobuf_len().unwrap();
        let mut appended = b"head".to_vec();
        pb_enc.finish_append(&mut appended);
        assert_eq!((&appended[..4], appended.len()), (&b"head"[..], 4 + len));
        let got = pb_as_json(&appended[4..]);
        for (g, n) in got["resourceLogs"]
            .as_array()
            .unwrap()
            .iter()
            .zip([100, 100])
        {
            let records = g["scopeLogs"][0]["logRecords"].as_array().unwrap();
            assert_eq!(records.len(), n);
        }
    }

    #[test]
    fn answers_in_protobuf_are_read() {
        use prost::Message;
        let answer = |n: i64, m: &str| {
            proto::ExportLogsServiceResponse {
                partial_success: Some(proto::ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: m.into(),
                }),
            }
            .encode_to_vec()
        };
        assert_eq!(
            partial_success_pb(&answer(2, "bad")),
            Some((2, "bad".into()))
        );
        assert_eq!(partial_success_pb(&answer(0, "warning")), None);
        assert_eq!(partial_success_pb(b""), None);
        assert_eq!(partial_success_pb(b"\xff\xff"), None);
        let status = proto::Status {
            code: 3,
            message: "invalid body".into(),
        }
        .encode_to_vec();
        assert_eq!(status_message_pb(&status).as_deref(), Some("invalid body"));
        assert_eq!(status_message_pb(b"plain text"), None);
    }

    #[test]
    fn gzip_round_trips() {
        let body = entry("{}").repeat(50);
        let mut out = vec![1, 2, 3];
        gzip(&body, &mut out);
        assert!(out.len() < body.len() / 5);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&out[..]), &mut back).unwrap();
        assert_eq!(back, body);
    }
}
