//! sink=otlp against real servers: through a real OpenTelemetry Collector (tests/otelcol,
//! `make collector`) into the receiver's /v1/logs, which records every record as the Collector
//! re-encoded it; and straight to the receiver's /v1/logs for the answers a Collector does not
//! pass on (it answers its sender 200 once its batch processor has the records): a 503 with
//! Retry-After, a partial success, a 400, gzip, headers and the JWT.

mod common;

use common::*;
use rarch_logging::entry::Fields;
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

/// A logger straight to the receiver's /v1/logs with one sender and a long linger, so that the
/// entries logged at once make one batch.
fn one_batch_logger(service: &str, r: &Receiver, dir: &Path) -> Logger {
    let extra = [("batch_linger_ms", "200"), ("connections", "1")];
    Logger::new(service, None, Some(&opts(&r.otlp_url(), dir, &extra))).unwrap()
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
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "otlp-svc",
        Some("api.handler"),
        Some(&opts(&c.url(), dir.path(), &[])),
    )
    .unwrap();
    let other = Logger::new(
        "otlp-svc",
        Some("db"),
        Some(&opts(&c.url(), dir.path(), &[])),
    )
    .unwrap();
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
        },
    )
    .unwrap();
    other
        .log(
            Level::Fatal,
            &Fields {
                message: "second",
                tenant_id: Some("t-9"),
                ..Default::default()
            },
        )
        .unwrap();
    lg.flush(Duration::from_secs(30)).unwrap();
    let recs = wait_until(
        Duration::from_secs(30),
        "2 records past the Collector",
        || {
            let v = r.otlp_records();
            (v.len() >= 2).then_some(v)
        },
    );
    assert_eq!(recs.len(), 2, "{recs:?}");
    let first = recs.iter().find(|v| body(v).starts_with("héllo")).unwrap();
    let second = recs.iter().find(|v| body(v) == "second").unwrap();
    for v in [first, second] {
        assert_eq!(
            v["resource"]["attributes"],
            json!([{"key":"service.name","value":{"stringValue":"otlp-svc"}}])
        );
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
        (json!(21), json!("FATAL"))
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
        let o = opts(&r.otlp_url(), dir.path(), &[("backoff_max_ms", "5000")]);
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
        Some(&opts(
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
    let mut o = opts(&r.otlp_url(), dir.path(), &[]);
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
            lg.log(Level::Error, &msg(&format!("old {i}"))).unwrap();
        }
    }
    let on_disk = std::fs::read_to_string(dir.path().join("otlp-backlog/buffer.jsonl")).unwrap();
    assert_eq!(on_disk.lines().count(), 300);
    let lg = Logger::new(
        "otlp-backlog",
        None,
        Some(&opts(&r.otlp_url(), dir.path(), &[])),
    )
    .unwrap();
    lg.flush(Duration::from_secs(60)).unwrap();
    let recs = r.otlp_records();
    let distinct: HashSet<&str> = recs.iter().map(body).collect();
    assert_eq!(distinct.len(), 300);
    assert!(recs.iter().all(|v| v["record"]["severityText"] == "ERROR"));
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
        Some(&opts(&r.otlp_url(), dir.path(), &[("mode", "blocking")])),
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
