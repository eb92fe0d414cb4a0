//! Delivery over real HTTP to the local receiver (which verifies every JWT): round trips,
//! defaults, filtering, auth failures, rejections, outages, replay and close.

mod common;

use common::*;
use rarch_logging::entry::Fields;
use rarch_logging::{ErrorKind, Level, Logger, Options};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn opts(url: &str, key: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    options(url, key, dir, extra)
}

#[test]
fn every_field_round_trips() {
    let r = Receiver::start("k-round");
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-round",
        Some("lg"),
        Some(&opts(&r.url(), "k-round", dir.path(), &[])),
    )
    .unwrap();
    let ctx = r#"{"a":{"b":[1,2.5,"ü ✓",null,true]},"emoji":"😀","esc":"q\"\\\n"}"#;
    lg.log(
        Level::Error,
        &Fields {
            message: "héllo \"world\"\n\t😀",
            user_id: Some("user-ü"),
            tenant_id: Some("tenant-1"),
            request_id: Some("req-1"),
            context_json: Some(ctx),
            client_log_datetime: Some("2024-05-22T22:30:00Z"),
            trace: None,
        },
    )
    .unwrap();
    lg.log(Level::Debug, &msg("defaults")).unwrap();
    lg.flush(T).unwrap();
    let e = r.entries();
    assert_eq!(e.len(), 2);
    let a = e.iter().find(|x| x["request_id"] == "req-1").unwrap();
    assert_eq!(a["level"], "ERROR");
    assert_eq!(a["service"], "svc-round");
    assert_eq!(a["logger_name"], "lg");
    assert_eq!(a["message"], "héllo \"world\"\n\t😀");
    assert_eq!(a["user_id"], "user-ü");
    assert_eq!(a["tenant_id"], "tenant-1");
    assert_eq!(
        a["context"],
        serde_json::from_str::<serde_json::Value>(ctx).unwrap()
    );
    assert_eq!(a["client_log_datetime"], "2024-05-22T22:30:00Z");
    let d = e.iter().find(|x| x["message"] == "defaults").unwrap();
    assert!(d["user_id"].is_null() && d["tenant_id"].is_null());
    assert_eq!(d["context"], serde_json::json!({}));
    assert_eq!(
        uuid::Uuid::parse_str(d["request_id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        4
    );
    let s = lg.stats().unwrap();
    assert_eq!((s.logged, s.delivered, s.buffered), (2, 2, 0));
}

#[test]
fn logger_name_defaults_to_service_and_levels_filter() {
    let r = Receiver::start("k-filter");
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-filter",
        None,
        Some(&opts(
            &r.url(),
            "k-filter",
            dir.path(),
            &[("level", "warn")],
        )),
    )
    .unwrap();
    assert_eq!(lg.level(), Level::Warn);
    for l in Level::ALL {
        lg.log(l, &msg(l.as_str())).unwrap();
    }
    lg.set_level(Level::Debug);
    lg.log(Level::Debug, &msg("after")).unwrap();
    lg.flush(T).unwrap();
    let mut got: Vec<String> = r
        .entries()
        .iter()
        .map(|e| {
            assert_eq!(e["logger_name"], "svc-filter");
            e["message"].as_str().unwrap().to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["ERROR", "FATAL", "WARN", "after"]);
    assert_eq!(lg.stats().unwrap().filtered, 2);
}

#[test]
fn wrong_key_is_kept_and_delivered_once_the_key_is_right() {
    let r = Receiver::start("right-key");
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-auth",
        None,
        Some(&opts(&r.url(), "wrong-key-secret", dir.path(), &[])),
    )
    .unwrap();
    for i in 0..20 {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    wait_until(T, "an auth failure in the stats", || {
        (lg.stats().unwrap().auth_failures > 0).then_some(())
    });
    assert!(r.stat("unauthorized") > 0);
    assert_eq!(
        lg.flush(Duration::from_millis(300)).unwrap_err().kind,
        ErrorKind::TimedOut
    );
    // The server now takes the key the client has: everything arrives, nothing was dropped.
    r.set_key("wrong-key-secret");
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 20);
    let s = lg.stats().unwrap();
    assert_eq!(
        s.dropped_io + s.dropped_queue_full + s.dropped_buffer_cap,
        0
    );
    for f in std::fs::read_dir(dir.path().join("svc-auth")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        assert!(
            !text.contains("wrong-key-secret"),
            "the API key reached a buffer file"
        );
    }
}

#[test]
fn a_rejected_entry_is_dead_lettered_with_its_reason() {
    let r = Receiver::start("k-rej");
    r.fault(r#"{"mode":"status","status":422,"count":1}"#);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-rej",
        None,
        Some(&opts(&r.url(), "k-rej", dir.path(), &[])),
    )
    .unwrap();
    lg.log(Level::Info, &msg("refused")).unwrap();
    lg.flush(T).unwrap();
    lg.log(Level::Info, &msg("accepted")).unwrap();
    lg.flush(T).unwrap();
    let dead = read_lines(&dir.path().join("svc-rej/buffer.rejected.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["status"], 422);
    assert!(dead[0]["reason"]
        .as_str()
        .unwrap()
        .contains("injected fault"));
    assert_eq!(dead[0]["entry"]["message"], "refused");
    assert_eq!(lg.stats().unwrap().rejected, 1);
    assert_eq!(r.entries().len(), 1);
}

#[test]
fn server_down_then_up_replays_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = dead_addr();
    let lg = Logger::new(
        "svc-outage",
        None,
        Some(&opts(
            &format!("http://{addr}/log"),
            "k-out",
            dir.path(),
            &[("max_retries", "2")],
        )),
    )
    .unwrap();
    for i in 0..200 {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    wait_until(T, "all entries on disk", || {
        (lg.stats().unwrap().buffered == 200).then_some(())
    });
    let r = Receiver::start_at("k-out", &addr);
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 200);
    assert_eq!(r.stat("duplicates"), 0);
    assert_eq!(lg.stats().unwrap().replayed, 200);
    // Logging goes on after a flush.
    lg.log(Level::Info, &msg("after")).unwrap();
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 201);
}

#[test]
fn retryable_failures_are_retried_and_nothing_is_lost() {
    let r = Receiver::start("k-flap");
    r.fault(r#"{"mode":"status","status":503,"rate":0.5}"#);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-flap",
        None,
        Some(&opts(&r.url(), "k-flap", dir.path(), &[])),
    )
    .unwrap();
    for i in 0..300 {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    // Some 503s are answered before the fault changes (a dropped connection alone may be
    // retried at once on a new one inside the transport, and not count as a failed attempt).
    wait_until(T, "some injected 503s", || {
        (r.stat("faults") > 0).then_some(())
    });
    // Drop connections too, then heal.
    r.fault(r#"{"mode":"drop","rate":0.3}"#);
    for i in 300..400 {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    wait_until(T, "some injected faults", || {
        (r.stat("faults") > 0).then_some(())
    });
    r.fault(r#"{"mode":"none"}"#);
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 400);
    let s = lg.stats().unwrap();
    assert!(s.failed_attempts > 0);
    assert_eq!(
        s.dropped_io + s.dropped_queue_full + s.dropped_buffer_cap,
        0
    );
}

#[test]
fn free_writes_what_is_undelivered_and_the_next_start_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let addr = dead_addr();
    let url = format!("http://{addr}/log");
    {
        let lg = Logger::new(
            "svc-close",
            None,
            Some(&opts(
                &url,
                "k-close",
                dir.path(),
                &[("close_timeout_ms", "100")],
            )),
        )
        .unwrap();
        for i in 0..50 {
            lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
        }
        let t = std::time::Instant::now();
        drop(lg);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "close took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(
        read_lines(&dir.path().join("svc-close/buffer.jsonl")).len(),
        50
    );
    let r = Receiver::start_at("k-close", &addr);
    let lg = Logger::new(
        "svc-close",
        None,
        Some(&opts(&url, "k-close", dir.path(), &[])),
    )
    .unwrap();
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 50);
}

#[test]
fn python_client_buffer_replays() {
    let r = Receiver::start("k-py");
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join("billing-service");
    std::fs::create_dir_all(&svc).unwrap();
    let vector = repo().join("../shared/vectors/python-client-buffer.jsonl");
    let vector = if vector.exists() {
        vector
    } else {
        repo().join("tests/vectors/python-client-buffer.jsonl")
    };
    let mut text = std::fs::read_to_string(&vector).unwrap();
    text.push_str(
        "{\"torn\": tr\nnot json at all\n{\"level\":\"INFO\",\"service\":\"billing-service\"",
    ); // garbage + a torn last line
    std::fs::write(svc.join("buffer.jsonl"), text).unwrap();
    let lg = Logger::new(
        "billing-service",
        None,
        Some(&opts(&r.url(), "k-py", dir.path(), &[])),
    )
    .unwrap();
    lg.flush(T).unwrap();
    let e = r.entries();
    assert_eq!(e.len(), 4);
    assert!(e.iter().any(|x| x["context"]["tags"][1] == "ünïcødé ✓"));
    assert_eq!(lg.stats().unwrap().corrupt, 3);
    assert_eq!(
        std::fs::read_to_string(svc.join("buffer.corrupt.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn blocking_mode_returns_the_outcome() {
    let r = Receiver::start("k-block");
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-block",
        None,
        Some(&opts(
            &r.url(),
            "k-block",
            dir.path(),
            &[("mode", "blocking")],
        )),
    )
    .unwrap();
    lg.log(Level::Info, &msg("sync")).unwrap();
    assert_eq!(r.stat("accepted"), 1);
    r.fault(r#"{"mode":"status","status":503,"count":1}"#);
    let e = lg.log(Level::Info, &msg("kept")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transport);
    // Written to the buffer file before the call returned (the replay may already have
    // claimed the file since).
    assert_eq!(lg.stats().unwrap().buffered, 1);
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 2);
}

#[test]
fn buffer_files_are_private_and_names_cannot_escape() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/log", dead_addr());
    for bad in ["../x", "a/b", ".hidden", "", "..", "x\0y"] {
        let e = Logger::new(bad, None, Some(&opts(&url, "k", dir.path(), &[]))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad:?}");
    }
    // A symlink planted where the service directory goes is refused, not followed.
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("svc-link")).unwrap();
    assert!(Logger::new("svc-link", None, Some(&opts(&url, "k", dir.path(), &[]))).is_err());
    let lg = Logger::new(
        "svc-perm",
        None,
        Some(&opts(&url, "k", dir.path(), &[("close_timeout_ms", "0")])),
    )
    .unwrap();
    lg.log(Level::Info, &msg("x")).unwrap();
    drop(lg);
    let d = dir.path().join("svc-perm");
    assert_eq!(
        std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let f = std::fs::metadata(d.join("buffer.jsonl")).unwrap();
    assert_eq!(f.permissions().mode() & 0o777, 0o600);
}

/// `on_full=block`: a caller that finds the queue full waits for room (the senders wake it once
/// the queue has drained to half), and one that finds none within `block_timeout_ms` gets
/// QUEUE_FULL, counted as `dropped_queue_full`; everything else arrives.
#[test]
fn on_full_block_waits_for_room_then_times_out_with_a_count() {
    let r = Receiver::start("k-block");
    let dir = tempfile::tempdir().unwrap();
    let logger = |block_ms: &str| {
        let o = opts(
            &r.url(),
            "k-block",
            dir.path(),
            &[
                ("on_full", "block"),
                ("queue_capacity", "4"),
                ("connections", "1"),
                ("timeout_ms", "10000"),
                ("block_timeout_ms", block_ms),
            ],
        );
        Logger::new("svc-block", None, Some(&o)).unwrap()
    };
    // One entry in flight (held by the slow server), four in the queue: it is full.
    let fill = |lg: &Logger, tag: &str| {
        lg.log(Level::Info, &msg(&format!("{tag}-0"))).unwrap();
        wait_until(T, "the sender to take the first entry", || {
            (lg.queue_len() == 0).then_some(())
        });
        for i in 1..5 {
            lg.log(Level::Info, &msg(&format!("{tag}-{i}"))).unwrap();
        }
        assert_eq!(lg.queue_len(), 4);
    };

    // Room comes (each answer takes 200 ms): the sixth call waits, then is taken.
    r.fault(r#"{"mode":"delay","delay_ms":200,"rate":1}"#);
    let lg = logger("30000");
    fill(&lg, "a");
    lg.log(Level::Info, &msg("a-5")).unwrap();
    assert_eq!(lg.stats().unwrap().dropped_queue_full, 0);

    // No room comes within 100 ms (each answer takes 5 s): QUEUE_FULL, counted.
    let lg2 = logger("100");
    lg.flush(T).unwrap();
    r.fault(r#"{"mode":"delay","delay_ms":5000,"rate":1}"#);
    fill(&lg2, "b");
    let e = lg2.log(Level::Info, &msg("b-5")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::QueueFull, "{e}");
    assert_eq!(lg2.stats().unwrap().dropped_queue_full, 1);

    r.fault(r#"{"mode":"none"}"#);
    lg2.flush(T).unwrap();
    let got: std::collections::HashSet<String> = r
        .entries()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let want: std::collections::HashSet<String> = (0..6)
        .map(|i| format!("a-{i}"))
        .chain((0..5).map(|i| format!("b-{i}")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn threads_that_come_and_go_lose_nothing_and_send_nothing_twice() {
    // 160 threads in waves of 8: more than the 64 slots of a pipeline's lane table, so slots
    // collide; and a wave's threads start after the last wave's have ended, so they are
    // given its thread pointers again (glibc reuses a joined thread's stack and descriptor).
    let r = Receiver::start("k-waves");
    let dir = tempfile::tempdir().unwrap();
    let lg = std::sync::Arc::new(
        Logger::new(
            "svc-waves",
            None,
            Some(&opts(&r.url(), "k-waves", dir.path(), &[])),
        )
        .unwrap(),
    );
    for wave in 0..20 {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let lg = lg.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        lg.log(Level::Info, &msg(&format!("w{wave} t{t} e{i}")))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
    lg.flush(T).unwrap();
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for e in r.entries() {
        *seen
            .entry(e["message"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 20 * 8 * 50);
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(lg.stats().unwrap().delivered, 20 * 8 * 50);
}
