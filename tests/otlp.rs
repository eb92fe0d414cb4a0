//! sink=otlp against real servers: through a real OpenTelemetry Collector (tests/otelcol,
//! `make collector`) into the receiver's /v1/logs, which records every record as the Collector
//! re-encoded it; and straight to the receiver's /v1/logs for the answers a Collector does not
//! pass on (it answers its sender 200 once its batch processor has the records): a 503 with
//! Retry-After, a partial success, a 400, gzip, headers and the JWT. The receiver takes
//! OTLP/JSON only, so the tests straight to it set otlp_protocol=http/json; the Collector takes
//! the default, http/protobuf, and both (the round trip compares them). The trace context
//! (`rarch_log_traced`) is checked here too, with the rarch sink as well.

mod common;

use common::*;
use rarch_logging::entry::Fields;
use rarch_logging::ffi;
use rarch_logging::trace::Trace;
use rarch_logging::{Level, Logger, Options};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "otlp-API-KEY-3b9e-never-printed";

fn opts(url: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    let mut all = vec![("sink", "otlp"), ("timeout_ms", "2000")];
    all.extend_from_slice(extra);
    options(url, "", dir, &all)
}

/// [`opts`] in OTLP/JSON, for the receiver's /v1/logs.
fn json_opts(url: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    let mut all = vec![("otlp_protocol", "http/json")];
    all.extend_from_slice(extra);
    opts(url, dir, &all)
}

/// A logger straight to the receiver's /v1/logs with one sender and a long linger, so that the
/// entries logged at once make one batch.
fn one_batch_logger(service: &str, r: &Receiver, dir: &Path) -> Logger {
    let extra = [("batch_linger_ms", "200"), ("connections", "1")];
    Logger::new(service, None, Some(&json_opts(&r.otlp_url(), dir, &extra))).unwrap()
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A resource's attributes as `key -> value`.
fn resource(v: &Value) -> std::collections::BTreeMap<String, Value> {
    v["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
        .collect()
}

/// A record's attribute by key.
fn attr<'a>(rec: &'a Value, key: &str) -> Option<&'a Value> {
    rec["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn body(r: &Value) -> &str {
    r["record"]["body"]["stringValue"].as_str().unwrap_or("")
}

#[test]
fn every_field_round_trips_through_a_collector() {
    let r = Receiver::start(KEY);
    let c = Collector::start(&r);
    // The same entries over protobuf (the default) and over JSON, as the Collector passes
    // them on: the same records.
    let proto = round_trip(&r, &c, "http/protobuf");
    let json = round_trip(&r, &c, "http/json");
    let same = |mut v: Value| {
        v["record"]["observedTimeUnixNano"] = json!(0);
        v["resource"]["attributes"] = json!(resource(&v)
            .into_iter()
            .filter(|(k, _)| k != "service.name")
            .collect::<Vec<_>>());
        let rid = attr(&v["record"], "request_id").unwrap()["stringValue"].clone();
        if rid.as_str().is_some_and(|r| r.len() == 36) {
            // A fresh request id, and the time of the call, differ.
            v["record"]["attributes"] = json!(null);
            v["record"]["timeUnixNano"] = json!(null);
        }
        v
    };
    assert_eq!(same(proto[0].clone()), same(json[0].clone()));
    assert_eq!(same(proto[1].clone()), same(json[1].clone()));
}

/// Logs two entries through the Collector with `protocol`, checks every field, and returns
/// the two records.
fn round_trip(r: &Receiver, c: &Collector, protocol: &str) -> Vec<Value> {
    let service = format!("otlp-svc-{}", &protocol[5..]);
    let dir = tempfile::tempdir().unwrap();
    let o = opts(
        &c.url(),
        dir.path(),
        &[
            ("otlp_protocol", protocol),
            (
                "resource_attributes",
                "deployment.environment=prod%2Ceu, team = a%3Db ,service.name=not-this",
            ),
        ],
    );
    let lg = Logger::new(&service, Some("api.handler"), Some(&o)).unwrap();
    let other = Logger::new(&service, Some("db"), Some(&o)).unwrap();
    let ctx = r#"{"s":"çödé ☃ 日本","b":false,"i":-9007199254740993,"f":0.25,"e":1e3,"n":null,"a":[1,"zwei",{"x":[]}],"o":{"ünï":{"deep":true}}}"#;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    lg.log(
        Level::Warn,
        &Fields {
            message: "héllo \"wörld\"\n\t\\ ☃",
            user_id: Some("ü-1"),
            tenant_id: None,
            request_id: Some("req-1"),
            context_json: Some(ctx),
            client_log_datetime: Some("2026-11-23T22:30:00.123456Z"),
            trace: Some(Trace::parse(TRACEPARENT).unwrap()),
        },
    )
    .unwrap();
    // ERROR, not FATAL: a FATAL entry writes what is in memory to disk before it returns, and
    // a replay does not know when rarch_log took an entry (observedTimeUnixNano).
    other
        .log(
            Level::Error,
            &Fields {
                message: "second",
                tenant_id: Some("t-9"),
                ..Default::default()
            },
        )
        .unwrap();
    lg.flush(Duration::from_secs(30)).unwrap();
    let ours = || -> Vec<Value> {
        r.otlp_records()
            .into_iter()
            .filter(|v| resource(v)["service.name"]["stringValue"] == service.as_str())
            .collect()
    };
    let recs = wait_until(
        Duration::from_secs(30),
        "2 records past the Collector",
        || {
            let v = ours();
            (v.len() >= 2).then_some(v)
        },
    );
    assert_eq!(recs.len(), 2, "{recs:?}");
    let first = recs.iter().find(|v| body(v).starts_with("héllo")).unwrap();
    let second = recs.iter().find(|v| body(v) == "second").unwrap();
    for v in [first, second] {
        let res = resource(v);
        let s = |k: &str| res[k]["stringValue"].as_str().unwrap_or("").to_owned();
        assert_eq!(s("service.name"), service, "the service wins: {res:?}");
        assert_eq!(s("deployment.environment"), "prod,eu", "percent-decoded");
        assert_eq!(s("team"), "a=b");
        assert_eq!(s("telemetry.sdk.name"), "rarch-logging");
        assert_eq!(s("telemetry.sdk.language"), "rust");
        assert_eq!(s("telemetry.sdk.version"), env!("CARGO_PKG_VERSION"));
        assert!(!s("host.name").is_empty(), "{res:?}");
        assert_eq!(
            res["process.pid"]["intValue"],
            std::process::id().to_string()
        );
        assert_eq!(res.len(), 8, "{res:?}");
    }
    // The trace context on the first, none on the second.
    let rec = &first["record"];
    assert_eq!(rec["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736", "{rec}");
    assert_eq!(rec["spanId"], "00f067aa0ba902b7");
    assert_eq!(rec["flags"], 1);
    for k in ["traceId", "spanId", "flags"] {
        assert!(second["record"].get(k).is_none(), "{k}: {second}");
    }
    assert_eq!(first["scope"]["name"], "api.handler");
    assert_eq!(second["scope"]["name"], "db");
    let rec = &first["record"];
    assert_eq!(rec["timeUnixNano"], "1795473000123456000");
    let observed: u64 = rec["observedTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        observed >= before,
        "observed {observed} is when rarch_log took it"
    );
    assert_eq!(rec["severityNumber"], 13);
    assert_eq!(rec["severityText"], "WARN");
    assert_eq!(rec["body"]["stringValue"], "héllo \"wörld\"\n\t\\ ☃");
    assert_eq!(attr(rec, "user_id"), Some(&json!({"stringValue":"ü-1"})));
    assert_eq!(attr(rec, "tenant_id"), None, "a null tenant is left out");
    assert_eq!(
        attr(rec, "request_id"),
        Some(&json!({"stringValue":"req-1"}))
    );
    let expected = json!({"kvlistValue":{"values":[
        {"key":"s","value":{"stringValue":"çödé ☃ 日本"}},
        {"key":"b","value":{"boolValue":false}},
        {"key":"i","value":{"intValue":"-9007199254740993"}},
        {"key":"f","value":{"doubleValue":0.25}},
        {"key":"e","value":{"doubleValue":1000}},
        {"key":"n","value":{}},
        {"key":"a","value":{"arrayValue":{"values":[
            {"intValue":"1"},{"stringValue":"zwei"},
            {"kvlistValue":{"values":[{"key":"x","value":{"arrayValue":{}}}]}}
        ]}}},
        {"key":"o","value":{"kvlistValue":{"values":[
            {"key":"ünï","value":{"kvlistValue":{"values":[{"key":"deep","value":{"boolValue":true}}]}}}
        ]}}}
    ]}});
    // (1e3 leaves the library as the double 1000.0; the Collector writes it as 1000.)
    assert_eq!(attr(rec, "context"), Some(&expected), "{rec}");
    let rec = &second["record"];
    assert_eq!(
        (rec["severityNumber"].clone(), rec["severityText"].clone()),
        (json!(17), json!("ERROR"))
    );
    assert_eq!(attr(rec, "user_id"), None);
    assert_eq!(attr(rec, "tenant_id"), Some(&json!({"stringValue":"t-9"})));
    // A fresh request id, and the time of the call.
    assert_eq!(
        attr(rec, "request_id").unwrap()["stringValue"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    assert_ne!(rec["timeUnixNano"], "0");
    let s = lg.stats().unwrap();
    assert_eq!(
        (s.delivered, s.failed_attempts, s.buffered),
        (2, 0, 0),
        "{s:?}"
    );
    vec![first.clone(), second.clone()]
}

#[test]
fn a_collector_stopped_mid_run_loses_nothing() {
    const N: usize = 3000;
    let r = Receiver::start(KEY);
    let mut c = Collector::start(&r);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "otlp-restart",
        None,
        Some(&opts(&c.url(), dir.path(), &[("batch_max_entries", "100")])),
    )
    .unwrap();
    for i in 0..N / 3 {
        lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
    }
    lg.flush(Duration::from_secs(30)).unwrap();
    c.stop();
    for i in N / 3..N {
        lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
        if i == N / 2 {
            // Some requests have failed; the rest of the run goes on while it is down.
            wait_until(Duration::from_secs(20), "a failed request", || {
                (lg.stats().unwrap().failed_attempts > 0).then_some(())
            });
        }
    }
    c.start_again();
    lg.flush(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("flush: {e}; {:?}; {}", lg.stats().unwrap(), c.log_tail()));
    let recs = wait_until(
        Duration::from_secs(60),
        "every record past the Collector",
        || {
            let v = r.otlp_records();
            let distinct: HashSet<String> = v.iter().map(|v| body(v).to_owned()).collect();
            (distinct.len() >= N).then_some(v)
        },
    );
    let distinct: HashSet<&str> = recs.iter().map(body).collect();
    for i in 0..N {
        assert!(
            distinct.contains(format!("entry {i}").as_str()),
            "entry {i} is missing"
        );
    }
    let s = lg.stats().unwrap();
    assert!(s.failed_attempts > 0, "{s:?}");
    assert_eq!(s.delivered, N as u64, "{s:?}");
    assert_eq!(
        s.rejected + s.poisoned + s.dropped_io + s.dropped_queue_full,
        0,
        "{s:?}"
    );
}

#[test]
fn a_503_with_retry_after_is_retried_when_it_says() {
    for date in [false, true] {
        let r = Receiver::start(KEY);
        r.fault(&format!(
            r#"{{"mode":"status","status":503,"retry_after":2,"retry_after_date":{date},"count":1}}"#
        ));
        let dir = tempfile::tempdir().unwrap();
        // backoff_max (which caps a Retry-After) above the server's 2 s.
        let o = json_opts(&r.otlp_url(), dir.path(), &[("backoff_max_ms", "5000")]);
        let lg = Logger::new("otlp-503", None, Some(&o)).unwrap();
        let t = Instant::now();
        for i in 0..10 {
            lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
        }
        lg.flush(Duration::from_secs(30)).unwrap();
        let s = lg.stats().unwrap();
        assert_eq!(
            (s.delivered, s.failed_attempts),
            (10, 1),
            "date={date}: {s:?}"
        );
        assert_eq!(r.otlp_records().len(), 10);
        // The retry waited for the server's Retry-After (2 s; an HTTP date has whole seconds,
        // so it says 1 to 2 s), not the 10 ms backoff of these options.
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "date={date}: {waited:?}"
        );
    }
}

#[test]
fn a_partial_success_is_counted_and_never_retried() {
    let r = Receiver::start(KEY);
    r.fault(r#"{"mode":"partial","match":"refuse-me"}"#);
    let dir = tempfile::tempdir().unwrap();
    let lg = one_batch_logger("otlp-partial", &r, dir.path());
    for m in ["keep 1", "refuse-me 1", "keep 2", "refuse-me 2", "keep 3"] {
        lg.log(Level::Info, &msg(m)).unwrap();
    }
    lg.flush(Duration::from_secs(30)).unwrap();
    let s = lg.stats().unwrap();
    assert_eq!((s.delivered, s.rejected), (3, 2), "{s:?}");
    assert_eq!(
        (s.failed_attempts, s.retried, s.buffered),
        (0, 0, 0),
        "{s:?}"
    );
    assert!(
        lg.last_delivery_error()
            .contains("partial success: 2 rejected"),
        "{}",
        lg.last_delivery_error()
    );
    let kept: Vec<String> = r
        .otlp_records()
        .iter()
        .map(|v| body(v).to_owned())
        .collect();
    assert_eq!(kept, ["keep 1", "keep 2", "keep 3"]);
    assert_eq!(r.otlp_stats()["requests"], 1, "one batch");
}

#[test]
fn a_400_dead_letters_the_batch_with_its_reason() {
    let r = Receiver::start(KEY);
    r.fault(r#"{"mode":"status","status":400,"count":1}"#);
    let dir = tempfile::tempdir().unwrap();
    let lg = one_batch_logger("otlp-400", &r, dir.path());
    for i in 0..4 {
        lg.log(Level::Info, &msg(&format!("bad {i}"))).unwrap();
    }
    lg.flush(Duration::from_secs(30)).unwrap();
    let s = lg.stats().unwrap();
    assert_eq!((s.rejected, s.delivered, s.retried), (4, 0, 0), "{s:?}");
    let dead = read_lines(&dir.path().join("otlp-400/buffer.rejected.jsonl"));
    assert_eq!(dead.len(), 4);
    for d in &dead {
        assert_eq!(d["status"], 400);
        assert!(d["reason"].as_str().unwrap().starts_with("HTTP 400"), "{d}");
        // The rarch entry, as the buffer keeps it.
        assert!(d["entry"]["message"].as_str().unwrap().starts_with("bad "));
    }
    // Later batches go through.
    lg.log(Level::Info, &msg("good")).unwrap();
    lg.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(r.otlp_records().len(), 1);
}

#[test]
fn gzip_headers_and_the_jwt_are_sent_as_configured() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    // No api_key: no Authorization header; the configured headers instead.
    let lg = Logger::new(
        "otlp-gz",
        None,
        Some(&json_opts(
            &r.otlp_url(),
            dir.path(),
            &[
                ("compression", "gzip"),
                ("headers", "X-Scope-OrgID=team%2Dа,x-extra = two"),
            ],
        )),
    )
    .unwrap();
    for i in 0..50 {
        lg.log(
            Level::Info,
            &msg(&format!("zipped {i} {}", "x".repeat(200))),
        )
        .unwrap();
    }
    lg.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(r.otlp_records().len(), 50);
    let st = r.otlp_stats();
    assert_eq!(st["gzip_requests"], st["requests"], "{st}");
    let h = &st["headers"];
    assert_eq!(h["x-scope-orgid"], "team-а", "{st}");
    assert_eq!(h["x-extra"], "two", "{st}");
    assert!(h.get("authorization").is_none(), "{st}");
    // With api_key: the JWT, which the receiver verifies (a wrong key would be a 401).
    let mut o = json_opts(&r.otlp_url(), dir.path(), &[]);
    o.set("api_key", KEY).unwrap();
    let lg = Logger::new("otlp-jwt", None, Some(&o)).unwrap();
    lg.log(Level::Info, &msg("signed")).unwrap();
    lg.flush(Duration::from_secs(30)).unwrap();
    let st = r.otlp_stats();
    assert_eq!(st["headers"]["authorization"], "<present>", "{st}");
    assert_eq!(st["unauthorized"], 0, "{st}");
    assert_eq!(r.otlp_records().len(), 51);
}

#[test]
fn a_backlog_written_by_the_rarch_sink_is_replayed_as_otlp() {
    // Entries that the rarch sink could not deliver (its server down) are on disk as rarch
    // JSONL; a logger with sink=otlp on the same buffer directory sends them as OTLP.
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    {
        let o = options(
            &format!("http://{}/log", dead_addr()),
            KEY,
            dir.path(),
            &[("close_timeout_ms", "0")],
        );
        let lg = Logger::new("otlp-backlog", None, Some(&o)).unwrap();
        for i in 0..300 {
            let m = format!("old {i}");
            let trace = (i == 7).then(|| Trace::parse(TRACEPARENT).unwrap());
            lg.log(Level::Error, &Fields { trace, ..msg(&m) }).unwrap();
        }
    }
    let on_disk = std::fs::read_to_string(dir.path().join("otlp-backlog/buffer.jsonl")).unwrap();
    assert_eq!(on_disk.lines().count(), 300);
    let lg = Logger::new(
        "otlp-backlog",
        None,
        Some(&json_opts(&r.otlp_url(), dir.path(), &[])),
    )
    .unwrap();
    lg.flush(Duration::from_secs(60)).unwrap();
    let recs = r.otlp_records();
    let distinct: HashSet<&str> = recs.iter().map(body).collect();
    assert_eq!(distinct.len(), 300);
    assert!(recs.iter().all(|v| v["record"]["severityText"] == "ERROR"));
    // The trace the buffer line kept.
    let traced: Vec<&Value> = recs
        .iter()
        .filter(|v| v["record"].get("traceId").is_some())
        .collect();
    assert_eq!(traced.len(), 1);
    assert_eq!(body(traced[0]), "old 7");
    assert_eq!(traced[0]["record"]["spanId"], "00f067aa0ba902b7");
    let s = lg.stats().unwrap();
    assert_eq!((s.replayed, s.delivered), (300, 300), "{s:?}");
    // Batches, not one request per line.
    let requests = r.otlp_stats()["requests"].as_u64().unwrap();
    assert!(requests <= 10, "{requests} requests for 300 lines");
}

#[test]
fn blocking_mode_posts_one_entry_as_one_otlp_request() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "otlp-blocking",
        None,
        Some(&json_opts(
            &r.otlp_url(),
            dir.path(),
            &[("mode", "blocking")],
        )),
    )
    .unwrap();
    lg.log(Level::Info, &msg("at once")).unwrap();
    // Delivered before the call returned.
    assert_eq!(r.otlp_records().len(), 1);
    r.fault(r#"{"mode":"partial","match":"refused"}"#);
    let e = lg.log(Level::Info, &msg("refused")).unwrap_err();
    assert_eq!(e.kind, rarch_logging::ErrorKind::Rejected, "{e}");
    r.fault(r#"{"mode":"status","status":503,"count":1}"#);
    let e = lg.log(Level::Info, &msg("later")).unwrap_err();
    assert_eq!(e.kind, rarch_logging::ErrorKind::Transport, "{e}");
    // On disk, and replayed as OTLP once the server answers.
    lg.flush(Duration::from_secs(30)).unwrap();
    let bodies: Vec<String> = r
        .otlp_records()
        .iter()
        .map(|v| body(v).to_owned())
        .collect();
    assert_eq!(bodies, ["at once", "later"]);
    let s = lg.stats().unwrap();
    assert_eq!((s.delivered, s.rejected, s.replayed), (2, 1, 1), "{s:?}");
    let dead = read_lines(&dir.path().join("otlp-blocking/buffer.rejected.jsonl"));
    assert_eq!(dead.len(), 1);
    assert!(dead[0]["reason"]
        .as_str()
        .unwrap()
        .contains("partial success"));
}

/// `rarch_log_traced` through the C ABI with the rarch sink: the body gets `trace_id`,
/// `span_id` and `trace_flags` only when a trace is given, live and after a replay from the
/// disk buffer; a bad traceparent is refused, naming it, with nothing queued.
#[test]
fn the_rarch_sink_carries_the_trace_live_and_after_a_replay() {
    use std::ffi::{c_char, CString};
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let set = |o: *mut ffi::rarch_options, k: &str, v: &str| {
        let (k, v) = (CString::new(k).unwrap(), CString::new(v).unwrap());
        // SAFETY: a live options object and NUL-terminated strings.
        let st = unsafe { ffi::rarch_options_set(o, k.as_ptr(), v.as_ptr()) };
        assert_eq!(st, ffi::rarch_status::RARCH_OK, "{}", k.to_str().unwrap());
    };
    let logger = |url: &str, extra: &[(&str, &str)]| {
        let o = ffi::rarch_options_new();
        set(o, "url", url);
        set(o, "api_key", KEY);
        set(o, "buffer_dir", dir.path().to_str().unwrap());
        set(o, "backoff_initial_ms", "10");
        for (k, v) in extra {
            set(o, k, v);
        }
        let svc = CString::new("traced").unwrap();
        // SAFETY: NUL-terminated strings, live options (freed once).
        let lg = unsafe { ffi::rarch_logger_new(svc.as_ptr(), std::ptr::null(), o) };
        // SAFETY: as above.
        unsafe { ffi::rarch_options_free(o) };
        assert!(!lg.is_null());
        lg
    };
    let log = |lg: *mut ffi::rarch_logger, m: &str, tp: Option<&str>| {
        let e = ffi::rarch_entry {
            message: ffi::rarch_str {
                ptr: m.as_ptr().cast::<c_char>(),
                len: m.len(),
            },
            user_id: ffi::rarch_str {
                ptr: std::ptr::null(),
                len: 0,
            },
            tenant_id: ffi::rarch_str {
                ptr: std::ptr::null(),
                len: 0,
            },
            request_id: ffi::rarch_str {
                ptr: std::ptr::null(),
                len: 0,
            },
            context_json: ffi::rarch_str {
                ptr: std::ptr::null(),
                len: 0,
            },
            client_log_datetime: ffi::rarch_str {
                ptr: std::ptr::null(),
                len: 0,
            },
        };
        let tp = tp.map(|t| CString::new(t).unwrap());
        let tp_ptr = tp.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: a live logger, an entry of live strings, a NUL-terminated traceparent.
        unsafe { ffi::rarch_log_traced(lg, 1, &e, tp_ptr) }
    };
    let stats = |lg: *mut ffi::rarch_logger| {
        let mut s = ffi::rarch_statistics {
            size: std::mem::size_of::<ffi::rarch_statistics>(),
            ..Default::default()
        };
        // SAFETY: a live logger and a sized struct.
        let st = unsafe { ffi::rarch_stats(lg, &mut s) };
        assert_eq!(st, ffi::rarch_status::RARCH_OK);
        s
    };

    // Live.
    let lg = logger(&r.url(), &[]);
    assert_eq!(
        log(lg, "traced live", Some(TRACEPARENT)),
        ffi::rarch_status::RARCH_OK
    );
    assert_eq!(log(lg, "plain live", None), ffi::rarch_status::RARCH_OK);
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    ] {
        assert_eq!(
            log(lg, "never sent", Some(bad)),
            ffi::rarch_status::RARCH_ERR_INVALID_ARGUMENT
        );
        let mut buf = [0 as c_char; 256];
        // SAFETY: 256 writable bytes.
        unsafe { ffi::rarch_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by rarch_last_error.
        let m = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
        assert!(m.starts_with("traceparent: "), "{m}");
    }
    // SAFETY: a live logger.
    let st = unsafe { ffi::rarch_flush(lg, 30_000) };
    assert_eq!(st, ffi::rarch_status::RARCH_OK);
    assert_eq!(
        stats(lg).logged,
        2,
        "nothing of the refused calls was taken"
    );
    // SAFETY: its last call.
    unsafe { ffi::rarch_logger_free(lg) };
    let got = r.entries();
    assert_eq!(got.len(), 2, "{got:?}");
    let traced = got.iter().find(|e| e["message"] == "traced live").unwrap();
    assert_eq!(traced["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(traced["span_id"], "00f067aa0ba902b7");
    assert_eq!(traced["trace_flags"], 1);
    let plain = got.iter().find(|e| e["message"] == "plain live").unwrap();
    for k in ["trace_id", "span_id", "trace_flags"] {
        assert!(plain.get(k).is_none(), "{k}: {plain}");
    }

    // To disk while the server is away, then replayed by the next logger.
    let lg = logger(
        &format!("http://{}/log", dead_addr()),
        &[("close_timeout_ms", "0")],
    );
    assert_eq!(
        log(lg, "traced later", Some(TRACEPARENT)),
        ffi::rarch_status::RARCH_OK
    );
    // SAFETY: its last call.
    unsafe { ffi::rarch_logger_free(lg) };
    let lg = logger(&r.url(), &[]);
    // SAFETY: a live logger.
    let st = unsafe { ffi::rarch_flush(lg, 30_000) };
    assert_eq!(st, ffi::rarch_status::RARCH_OK);
    assert_eq!(stats(lg).replayed, 1);
    // SAFETY: its last call.
    unsafe { ffi::rarch_logger_free(lg) };
    let got = r.entries();
    let later = got.iter().find(|e| e["message"] == "traced later").unwrap();
    assert_eq!(later["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(later["span_id"], "00f067aa0ba902b7");
    assert_eq!(later["trace_flags"], 1);
}
