//! OTLP/HTTP logs (`sink=otlp`): rarch entries, as they are queued and as buffer lines hold
//! them, encoded as one OTLP/JSON `ExportLogsServiceRequest` per batch, and what an answer's
//! `partialSuccess` says. The encoding is the opentelemetry-proto JSON mapping: lowerCamelCase
//! keys, 64-bit integers as decimal strings, enums as integers.
//!
//! The mapping, so that every OTel backend sees the same entry:
//! - `resource.attributes`: `service.name` = the entry's service (one `resourceLogs` each);
//! - one `scopeLogs` per logger: `scope.name` = `logger_name`;
//! - `timeUnixNano` = `client_log_datetime`; `observedTimeUnixNano` = when `rarch_log` took the
//!   entry (for an entry read back from the disk buffer, which does not keep it: its time);
//! - `severityNumber` DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; `severityText` = the level;
//! - `body.stringValue` = the message;
//! - `attributes`: `user_id` and `tenant_id` (left out when null), `request_id`, and `context`
//!   as a `kvlistValue` mirroring the JSON object (strings, booleans, integers as `intValue`,
//!   other numbers as `doubleValue`, arrays as `arrayValue`, objects as nested `kvlistValue`,
//!   null as an empty value).
//!
//! Written by hand onto a byte buffer rather than through the opentelemetry-proto crate's
//! serde types: those need the whole request as a tree of owned structs (a `String` per key
//! and value) before serde_json writes it, where this writes each record once, in place.

use crate::level::Level;
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
    #[serde(default)]
    context: Option<Value>,
    #[serde(borrow, default)]
    client_log_datetime: Option<Cow<'a, str>>,
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
#[derive(Default)]
pub struct Encoder {
    /// Each service's loggers, in order of appearance.
    groups: Vec<(String, Vec<Scope>)>,
    /// Groups emptied by `finish`, kept for their buffers.
    spare: Vec<Vec<u8>>,
    entries: usize,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
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
        let Ok(e) = serde_json::from_slice::<Entry<'_>>(body) else {
            return false;
        };
        let Some(level) = Level::parse(&e.level) else {
            return false;
        };
        let gi = match self.groups.iter().position(|g| g.0 == e.service) {
            Some(i) => i,
            None => {
                self.groups.push((e.service.to_string(), Vec::new()));
                self.groups.len() - 1
            }
        };
        let loggers = &mut self.groups[gi].1;
        let li = match loggers.iter().position(|l| l.0 == e.logger_name) {
            Some(i) => i,
            None => {
                let buf = self.spare.pop().unwrap_or_default();
                loggers.push((e.logger_name.to_string(), buf));
                loggers.len() - 1
            }
        };
        let out = &mut loggers[li].1;
        if !out.is_empty() {
            out.push(b',');
        }
        record(out, level, &e, observed_ns);
        self.entries += 1;
        true
    }

    /// Writes the request of every entry added into `out` (cleared first), and starts over.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(b"{\"resourceLogs\":[");
        for (gi, (service, loggers)) in self.groups.drain(..).enumerate() {
            if gi > 0 {
                out.push(b',');
            }
            out.extend_from_slice(
                b"{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":",
            );
            string(out, &service);
            out.extend_from_slice(b"}}]},\"scopeLogs\":[");
            for (li, (logger, mut records)) in loggers.into_iter().enumerate() {
                if li > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"scope\":{\"name\":");
                string(out, &logger);
                out.extend_from_slice(b"},\"logRecords\":[");
                out.extend_from_slice(&records);
                out.extend_from_slice(b"]}");
                records.clear();
                if self.spare.len() < 16 {
                    self.spare.push(records);
                }
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        self.entries = 0;
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
    out.extend_from_slice(b"},\"attributes\":[");
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
    match &e.context {
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
