//! What the application sees and controls, against the local receiver: delivery events
//! (`events`), redaction (`redact_keys`) and log-storm limits (`rate_limit`).

mod common;

use common::{dead_addr, options, wait_until, Receiver};
use rarch_logging::entry::Fields;
use rarch_logging::pipeline::events::{Event, Kind};
use rarch_logging::{Level, Logger};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn logger(r_url: &str, key: &str, dir: &Path, service: &str, extra: &[(&str, &str)]) -> Logger {
    Logger::new(service, None, Some(&options(r_url, key, dir, extra))).unwrap()
}

fn with_id<'a>(m: &'a str, id: &'a str) -> Fields<'a> {
    Fields {
        message: m,
        request_id: Some(id),
        ..Default::default()
    }
}

/// Polls until `want` says the events gathered so far are enough.
fn events_until(lg: &Logger, what: &str, want: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let mut all = Vec::new();
    wait_until(T, what, || {
        all.extend(lg.poll_events(1000).unwrap());
        want(&all).then_some(())
    });
    all
}

#[test]
fn events_all_reports_each_delivered_entry_with_its_request_id() {
    let r = Receiver::start("k-ev-all");
    let dir = tempfile::tempdir().unwrap();
    let lg = logger(
        &r.url(),
        "k-ev-all",
        dir.path(),
        "svc-ev",
        &[("events", "all")],
    );
    let ids: Vec<String> = (0..500).map(|i| format!("req-{i:04}")).collect();
    for id in &ids {
        lg.log(Level::Info, &with_id("hello", id)).unwrap();
    }
    lg.flush(T).unwrap();
    let evs = events_until(&lg, "500 DELIVERED events", |e| {
        e.iter().filter(|e| e.kind == Kind::Delivered).count() >= 500
    });
    let got: HashSet<&str> = evs
        .iter()
        .filter(|e| e.kind == Kind::Delivered)
        .map(|e| e.request_id.as_str())
        .collect();
    assert_eq!(got.len(), 500);
    for id in &ids {
        assert!(got.contains(id.as_str()), "no DELIVERED event for {id}");
    }
    assert!(evs
        .iter()
        .all(|e| e.kind == Kind::Delivered && e.count == 1));
}

#[test]
fn events_off_makes_none_and_problems_reports_a_dead_letter_without_deliveries() {
    let r = Receiver::start("k-ev-dl");
    let dir = tempfile::tempdir().unwrap();
    let off = logger(&r.url(), "k-ev-dl", dir.path(), "svc-off", &[]);
    off.log(Level::Info, &with_id("fine", "off-1")).unwrap();
    off.flush(T).unwrap();
    assert!(off.poll_events(100).unwrap().is_empty());

    let lg = logger(
        &r.url(),
        "k-ev-dl",
        dir.path(),
        "svc-dl",
        &[("events", "problems")],
    );
    r.fault(r#"{"mode":"status","status":400,"count":1}"#);
    lg.log(Level::Info, &with_id("refused", "bad-1")).unwrap();
    lg.flush(T).unwrap();
    lg.log(Level::Info, &with_id("accepted", "good-1")).unwrap();
    lg.flush(T).unwrap();
    let evs = events_until(&lg, "a DEAD_LETTERED event", |e| {
        e.iter().any(|e| e.kind == Kind::DeadLettered)
    });
    let dl: Vec<&Event> = evs
        .iter()
        .filter(|e| e.kind == Kind::DeadLettered)
        .collect();
    assert_eq!(dl.len(), 1, "{evs:?}");
    assert_eq!((dl[0].status, dl[0].request_id.as_str()), (400, "bad-1"));
    assert!(!dl[0].message.is_empty());
    assert!(
        !evs.iter().any(|e| e.kind == Kind::Delivered),
        "DELIVERED with events=problems: {evs:?}"
    );
}

#[test]
fn an_outage_starts_and_ends_and_every_entry_is_delivered() {
    let r = Receiver::start("k-ev-out");
    let dir = tempfile::tempdir().unwrap();
    let lg = logger(
        &r.url(),
        "k-ev-out",
        dir.path(),
        "svc-out",
        &[("events", "problems")],
    );
    r.fault(r#"{"mode":"status","status":503,"rate":1.0}"#);
    for i in 0..200 {
        lg.log(Level::Info, &with_id("during", &format!("o-{i}")))
            .unwrap();
    }
    let mut evs = events_until(&lg, "OUTAGE_STARTED", |e| {
        e.iter().any(|e| e.kind == Kind::OutageStarted)
    });
    r.fault(r#"{"mode":"none"}"#);
    lg.flush(T).unwrap();
    evs.extend(events_until(&lg, "OUTAGE_ENDED", |e| {
        e.iter().any(|e| e.kind == Kind::OutageEnded)
    }));
    let started = evs.iter().position(|e| e.kind == Kind::OutageStarted);
    let ended = evs.iter().position(|e| e.kind == Kind::OutageEnded);
    assert!(started < ended, "{evs:?}");
    assert_eq!(evs[started.unwrap()].status, 503);
    assert_eq!(r.stat("distinct"), 200);
}

const SECRET_CTX: &str = r#"{"password":"s3cr3t-one","user":{"name":"ann","Api_Key":"s3cr3t-two","deeper":{"PASSWORD":["s3cr3t-three"]}},"items":[{"token":"s3cr3t-four"},{"ok":1}],"n":7}"#;

fn secret_entry() -> Fields<'static> {
    Fields {
        message: "login",
        context_json: Some(SECRET_CTX),
        ..Default::default()
    }
}

const REDACT: (&str, &str) = ("redact_keys", "password, api_key,TOKEN");

#[test]
fn redacted_values_never_reach_the_wire() {
    let r = Receiver::start("k-red");
    let dir = tempfile::tempdir().unwrap();
    let lg = logger(&r.url(), "k-red", dir.path(), "svc-red", &[REDACT]);
    lg.log(Level::Info, &secret_entry()).unwrap();
    lg.flush(T).unwrap();
    let e = &r.entries()[0];
    let ctx = &e["context"];
    assert_eq!(ctx["password"], "[REDACTED]");
    assert_eq!(ctx["user"]["Api_Key"], "[REDACTED]");
    assert_eq!(ctx["user"]["name"], "ann");
    assert_eq!(ctx["user"]["deeper"]["PASSWORD"], "[REDACTED]");
    assert_eq!(ctx["items"][0]["token"], "[REDACTED]");
    assert_eq!(ctx["items"][1]["ok"], 1);
    assert_eq!(ctx["n"], 7);
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

/// Every byte of every file under `dir`.
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push((
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
}

#[test]
fn redacted_values_never_reach_a_file_with_the_server_down() {
    for durable in ["false", "true"] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://{}/log", dead_addr());
        let lg = logger(
            &url,
            "k",
            dir.path(),
            "svc-red-down",
            &[REDACT, ("durable", durable), ("queue_capacity", "64")],
        );
        for _ in 0..300 {
            lg.log(Level::Info, &secret_entry()).unwrap();
        }
        let mut files = Vec::new();
        files_under(dir.path(), &mut files);
        drop(lg);
        files_under(dir.path(), &mut files);
        let on_disk: usize = files
            .iter()
            .map(|(_, b)| b.windows(10).filter(|w| w == b"[REDACTED]").count())
            .sum();
        assert!(on_disk > 0, "durable={durable}: nothing on disk to check");
        for (name, bytes) in &files {
            assert!(
                !bytes.windows(6).any(|w| w == b"s3cr3t"),
                "durable={durable}: a secret in {name}"
            );
        }
    }
}

#[test]
fn a_log_storm_is_limited_summarised_and_counted_exactly() {
    let r = Receiver::start("k-rl");
    let dir = tempfile::tempdir().unwrap();
    let lg = logger(
        &r.url(),
        "k-rl",
        dir.path(),
        "svc-rl",
        &[("rate_limit", "1000"), ("events", "problems")],
    );
    let n = 20_000u64;
    for i in 0..n {
        lg.log(Level::Debug, &with_id("storm", &format!("s-{i}")))
            .unwrap();
    }
    lg.log(Level::Error, &with_id("the error", "err-1"))
        .unwrap();
    lg.flush(T).unwrap();
    let entries = r.entries();
    let storm = entries.iter().filter(|e| e["message"] == "storm").count() as u64;
    let summaries: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("suppressed "))
        })
        .collect();
    let suppressed: u64 = summaries
        .iter()
        .map(|e| e["context"]["suppressed"].as_u64().unwrap())
        .sum();
    let by_debug: u64 = summaries
        .iter()
        .map(|e| e["context"]["by_level"]["DEBUG"].as_u64().unwrap())
        .sum();
    assert!(entries.iter().any(|e| e["message"] == "the error"));
    assert!(
        (1000..=1500).contains(&storm),
        "{storm} storm entries delivered: about a second's worth expected"
    );
    assert!(!summaries.is_empty());
    assert!(summaries.iter().all(|e| e["level"] == "WARN"));
    assert_eq!(suppressed + storm, n);
    assert_eq!(by_debug, suppressed);
    let st = lg.stats().unwrap();
    assert_eq!(st.dropped_rate_limit, suppressed);
    let events: u64 = lg
        .poll_events(1000)
        .unwrap()
        .iter()
        .filter(|e| e.kind == Kind::RateLimited)
        .map(|e| e.count)
        .sum();
    assert_eq!(events, suppressed);
}
