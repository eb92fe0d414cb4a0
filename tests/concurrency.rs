//! Adaptive request concurrency (issue 16) against the real receiver over loopback: a distant
//! server (every answer delayed, without CPU) gets many requests in flight with the default
//! options, a server that starts answering 503 gets fewer, and `concurrency=fixed` keeps
//! `connections`. Each waits on observable state (the library's stats, the receiver's counters)
//! with a deadline.

mod common;

use common::*;
use rarch_logging::{Level, Logger};
use std::time::Duration;

const KEY: &str = "concurrency-API-KEY-3b8d1e-never-printed";
const T: Duration = Duration::from_secs(60);

#[test]
fn a_distant_server_gets_everything_with_the_default_options() {
    let r = Receiver::start(KEY);
    r.fault(r#"{"latency_ms":50}"#);
    let dir = tempfile::tempdir().unwrap();
    // The defaults, but for the test backoffs of `options`.
    let lg = Logger::new(
        "far-svc",
        None,
        Some(&options(&r.url(), KEY, dir.path(), &[])),
    )
    .unwrap();
    for i in 0..3_000 {
        lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
    }
    lg.flush(T)
        .unwrap_or_else(|e| panic!("flush: {e}; {:?}", lg.stats().unwrap()));
    assert_eq!(r.stat("distinct"), 3_000);
    let (limit, rtt) = lg.concurrency();
    // 2 in flight (the old default) would take 75 s for 3,000 entries at 50 ms each.
    assert!(limit > 16, "the limit stayed at {limit}");
    assert!(rtt >= Duration::from_millis(50), "{rtt:?}");
}

#[test]
fn concurrency_falls_when_the_server_answers_503() {
    let r = Receiver::start(KEY);
    r.fault(r#"{"latency_ms":50}"#);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "shed-svc",
        None,
        Some(&options(&r.url(), KEY, dir.path(), &[])),
    )
    .unwrap();
    for i in 0..20_000 {
        lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
    }
    let peak = wait_until(T, "the limit to grow", || {
        let (l, _) = lg.concurrency();
        (l >= 32).then_some(l)
    });
    // Overloaded: half the requests are shed with 503.
    r.fault(r#"{"mode":"status","status":503,"rate":0.5,"latency_ms":50}"#);
    wait_until(T, "the limit to fall", || {
        let (l, _) = lg.concurrency();
        (l <= peak / 2).then_some(())
    });
    r.fault(r#"{"latency_ms":1}"#);
    lg.flush(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("flush: {e}; {:?}", lg.stats().unwrap()));
    assert_eq!(r.stat("distinct"), 20_000);
}

#[test]
fn fixed_concurrency_keeps_connections() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "fixed-svc",
        None,
        Some(&options(
            &r.url(),
            KEY,
            dir.path(),
            &[("concurrency", "fixed"), ("connections", "3")],
        )),
    )
    .unwrap();
    for i in 0..500 {
        lg.log(Level::Info, &msg(&format!("entry {i}"))).unwrap();
    }
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 500);
    assert_eq!(lg.concurrency().0, 3);
}
