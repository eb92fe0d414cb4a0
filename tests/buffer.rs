//! The disk buffer under pressure: rotation and the cap, two processes of one service draining
//! at once, and fork().

mod common;

use common::*;
use rarch_logging::entry::Fields;
use rarch_logging::{Level, Logger, Options};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const ROLE: &str = "RARCH_TEST_ROLE";

fn opts(url: &str, key: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    let mut all = vec![("max_retries", "2")];
    all.extend_from_slice(extra);
    options(url, key, dir, &all)
}

fn log(lg: &Logger, m: &str) {
    lg.log(
        Level::Info,
        &Fields {
            message: m,
            context_json: Some(r#"{"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#),
            ..Default::default()
        },
    )
    .unwrap();
}

/// Runs this test binary again in a child role (see `child_roles`).
fn child(role: &str, envs: &[(&str, String)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "child_roles",
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role);
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Not a test on its own: the body of the child processes the tests below start.
#[test]
#[ignore = "the child processes of the tests below, run by them with RARCH_TEST_ROLE set"]
fn child_roles() {
    let Ok(role) = std::env::var(ROLE) else {
        panic!("run by the other tests of this file, not alone");
    };
    let env = |k: &str| std::env::var(k).unwrap();
    let dir = std::path::PathBuf::from(env("DIR"));
    match role.as_str() {
        "drain" => {
            let lg = Logger::new(
                "svc-two",
                None,
                Some(&opts(&env("URL"), "k-two", &dir, &[])),
            )
            .unwrap();
            for i in 0..1000 {
                log(&lg, &format!("{}-{i}", env("TAG")));
            }
            lg.flush(T).unwrap();
        }
        "fork" => fork_role(&env("URL"), &dir, &env("DURABLE")),
        "raw-crash" => {
            // No burst memory: the caller waits for the spill thread, so that some records
            // are on disk raw when it dies.
            let lg = raw_logger(&env("URL"), &dir, "0");
            for i in 0..BURST {
                log(&lg, &format!("crash-{i}"));
            }
            let raw = lg.raw_spilled();
            // The segment the spill thread writes to is still this process's (it is sealed
            // only after a quiet spell): the next process must recover it from a dead one.
            let live = std::fs::read_dir(dir.join("svc-raw"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("buffer.journal-") && !n.contains("-left-"))
                .count();
            println!("RAW {raw} LIVE {live}");
            // SAFETY: a crash: no flush, no free, no destructors.
            unsafe { libc::_exit(0) };
        }
        other => panic!("unknown role {other}"),
    }
}

const BURST: usize = 5000;

/// A logger whose lanes fill in a burst: a small queue, one connection to a slow server;
/// `burst` is its `burst_memory_bytes`.
fn raw_logger(url: &str, dir: &Path, burst: &str) -> Logger {
    Logger::new(
        "svc-raw",
        None,
        Some(&opts(
            url,
            "k-raw",
            dir,
            &[
                ("queue_capacity", "256"),
                ("connections", "1"),
                ("concurrency", "fixed"),
                ("burst_memory_bytes", burst),
            ],
        )),
    )
    .unwrap()
}

/// A receiver that answers every request after 200 ms: the senders fall behind a burst.
fn slow_receiver() -> Receiver {
    let r = Receiver::start("k-raw");
    r.fault(r#"{"mode":"delay","delay_ms":200,"rate":1}"#);
    r
}

fn journal_files(svc: &Path) -> Vec<String> {
    std::fs::read_dir(svc)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("buffer.journal-"))
        .collect()
}

/// Every message `prefix-0` to `prefix-{BURST-1}` arrived exactly once, whole.
fn assert_burst_arrived(r: &Receiver, prefix: &str, at_least: usize) {
    let mut seen = std::collections::HashSet::new();
    for e in r.entries() {
        let m = e["message"].as_str().unwrap().to_owned();
        assert!(m.starts_with(prefix), "{e}");
        assert_eq!(
            e["context"]["padding"].as_str().map(str::len),
            Some(48),
            "{e}"
        );
        assert!(
            e["request_id"].as_str().is_some_and(|id| id.len() == 36),
            "{e}"
        );
        assert!(seen.insert(m), "twice: {e}");
    }
    assert!(
        seen.len() >= at_least,
        "{} of at least {at_least}",
        seen.len()
    );
    assert_eq!(r.stat("duplicates"), 0);
}

/// With the default burst memory (the whole burst fits: the lane goes past its count while
/// the spill thread writes the excess) and without it (the caller waits for each step).
#[test]
fn a_burst_past_the_queue_is_spilled_raw_and_every_entry_arrives_once() {
    for burst in ["8388608", "0"] {
        burst_past_the_queue(burst);
    }
}

fn burst_past_the_queue(burst: &str) {
    let r = slow_receiver();
    let dir = tempfile::tempdir().unwrap();
    let lg = raw_logger(&r.url(), dir.path(), burst);
    for i in 0..BURST {
        log(&lg, &format!("burst-{i}"));
    }
    // The spill thread takes records from the lane as they are (the caller builds no body):
    // while the caller waits for it without burst memory, after the loop with it.
    let raw = wait_until(T, "records spilled raw", || {
        Some(lg.raw_spilled()).filter(|&n| n > 0)
    });
    r.fault(r#"{"mode":"none"}"#);
    lg.flush(T).unwrap();
    let s = lg.stats().unwrap();
    assert_eq!(s.delivered, BURST as u64, "{s:?}");
    assert!(s.buffered >= raw, "{s:?}, {raw} raw");
    assert_eq!(s.dropped_io + s.dropped_queue_full + s.corrupt, 0, "{s:?}");
    assert_burst_arrived(&r, "burst-", BURST);
    // The overflow's segments were moved into buffer.jsonl and deleted.
    let left = journal_files(&dir.path().join("svc-raw"));
    assert!(left.is_empty(), "{left:?}");
}

/// Large entries fill a lane by its chunks (16 MiB: 256 entries of over 32 KiB, one a chunk)
/// before its count (queue_capacity, 600 here): a caller that waits for room gets it from the
/// spill thread all the same, once the queue is full too.
#[test]
fn a_lane_full_of_large_entries_is_spilled_raw_too() {
    let r = slow_receiver();
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-raw",
        None,
        Some(&opts(
            &r.url(),
            "k-raw",
            dir.path(),
            &[("connections", "1"), ("queue_capacity", "600")],
        )),
    )
    .unwrap();
    const N: usize = 1200;
    let pad = "x".repeat(33 * 1024);
    for i in 0..N {
        lg.log(
            Level::Info,
            &Fields {
                message: &format!("large-{i} {pad}"),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let raw = lg.raw_spilled();
    assert!(raw > 0, "nothing spilled raw: {:?}", lg.stats().unwrap());
    r.fault(r#"{"mode":"none"}"#);
    lg.flush(T).unwrap();
    let s = lg.stats().unwrap();
    assert_eq!(s.delivered, N as u64, "{s:?}");
    assert_eq!(r.stat("distinct"), N as u64);
    assert_eq!(r.stat("duplicates"), 0);
}

#[test]
fn raw_records_of_a_process_that_crashed_are_recovered_by_the_next() {
    let r = slow_receiver();
    let dir = tempfile::tempdir().unwrap();
    let out = child(
        "raw-crash",
        &[
            ("URL", r.url()),
            ("DIR", dir.path().to_str().unwrap().to_owned()),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // After the harness's "test child_roles ... " on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("RAW ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no RAW line: {out:?}"));
    let v: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (raw, live) = (v[0], v[1]);
    assert!(raw > 0 && live > 0, "{line}");
    r.fault(r#"{"mode":"none"}"#);
    // The next process of the service takes the dead one's segment in at start.
    let lg = raw_logger(&r.url(), dir.path(), "8388608");
    lg.flush(T).unwrap();
    // What was in memory died with the child (durable=false); what was spilled raw did not.
    assert_burst_arrived(&r, "crash-", raw);
    let left = journal_files(&dir.path().join("svc-raw"));
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn rotation_and_the_cap_count_every_loss() {
    let dir = tempfile::tempdir().unwrap();
    let addr = dead_addr();
    let url = format!("http://{addr}/log");
    let lg = Logger::new(
        "svc-cap",
        None,
        Some(&opts(
            &url,
            "k-cap",
            dir.path(),
            &[
                ("buffer_max_file_bytes", "4096"),
                ("buffer_max_total_bytes", "16384"),
                ("connections", "1"),
            ],
        )),
    )
    .unwrap();
    for i in 0..300 {
        log(&lg, &format!("m{i}"));
    }
    wait_until(T, "all entries settled on disk", || {
        let s = lg.stats().unwrap();
        (s.buffered == 300).then_some(())
    });
    let s = lg.stats().unwrap();
    assert!(s.dropped_buffer_cap > 0, "the cap never applied: {s:?}");
    let svc = dir.path().join("svc-cap");
    let files: Vec<_> = std::fs::read_dir(&svc)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("buffer.rotated-")),
        "{files:?}"
    );
    let total: u64 = std::fs::read_dir(&svc)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("buffer.")
                && e.file_name().to_string_lossy().ends_with(".jsonl")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= 16384 + 4096, "buffer is {total} bytes");
    let r = Receiver::start_at("k-cap", &addr);
    lg.flush(T).unwrap();
    let s = lg.stats().unwrap();
    // Every entry is delivered or counted as dropped by the cap; none twice.
    assert_eq!(r.stat("distinct") + s.dropped_buffer_cap, 300);
    assert_eq!(r.stat("duplicates"), 0);
}

#[test]
fn two_processes_of_one_service_drain_without_loss_or_duplicates() {
    let r = Receiver::start("k-two");
    let dir = tempfile::tempdir().unwrap();
    // A backlog both processes will try to claim at start.
    let svc = dir.path().join("svc-two");
    std::fs::create_dir_all(&svc).unwrap();
    let mut backlog = String::new();
    for i in 0..3000 {
        backlog += &format!(
            "{{\"level\":\"INFO\",\"service\":\"svc-two\",\"logger_name\":\"svc-two\",\"message\":\"old-{i}\",\"user_id\":null,\"tenant_id\":null,\"request_id\":\"old-{i}\",\"context\":{{}},\"client_log_datetime\":\"2026-11-23T22:30:00Z\"}}\n"
        );
    }
    std::fs::write(svc.join("buffer.jsonl"), backlog).unwrap();
    // Failures make both processes write to and drain the same buffer at the same time.
    r.fault(r#"{"mode":"status","status":503,"rate":0.3}"#);
    let envs = |tag: &str| {
        vec![
            ("URL", r.url()),
            ("DIR", dir.path().to_str().unwrap().to_owned()),
            ("TAG", tag.to_owned()),
        ]
    };
    let mut a = child("drain", &envs("a")).spawn().unwrap();
    let mut b = child("drain", &envs("b")).spawn().unwrap();
    wait_until(T, "some injected faults", || {
        (r.stat("faults") > 50).then_some(())
    });
    r.fault(r#"{"mode":"none"}"#);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    // Anything a child left on disk is sent by the next logger of the service.
    let lg = Logger::new(
        "svc-two",
        None,
        Some(&opts(&r.url(), "k-two", dir.path(), &[])),
    )
    .unwrap();
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 3000 + 2000);
    assert_eq!(r.stat("duplicates"), 0);
    assert_eq!(lg.stats().unwrap().corrupt, 0, "a torn or interleaved line");
}

fn fork_role(url: &str, dir: &Path, durable: &str) {
    let lg = Logger::new(
        "svc-fork",
        None,
        Some(&opts(
            url,
            "k-fork",
            dir,
            &[("connections", "1"), ("durable", durable)],
        )),
    )
    .unwrap();
    // The server is slow: most parent entries are still queued when the process forks.
    for i in 0..40 {
        log(&lg, &format!("parent-{i}"));
    }
    // SAFETY: the child only logs through the library and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut ok = true;
        for i in 0..10 {
            ok &= lg
                .log(
                    Level::Info,
                    &Fields {
                        message: &format!("child-{i}"),
                        ..Default::default()
                    },
                )
                .is_ok();
        }
        ok &= lg.flush(T).is_ok();
        drop(lg);
        // SAFETY: leaving the child without running the parent's atexit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 3 }) };
    }
    // The parent logs on too: its request ids must not repeat the child's.
    for i in 0..10 {
        log(&lg, &format!("parent-after-{i}"));
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    lg.flush(T).unwrap();
}

#[test]
fn a_forked_child_logs_on_its_own_and_never_resends_the_parents_entries() {
    forked_child("false");
}

/// The same in durable mode: the child never takes the parent's (live) journal, and neither
/// leaves one behind.
#[test]
fn a_forked_child_in_durable_mode_leaves_the_parents_journal_alone() {
    let dir = forked_child("true");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("svc-fork"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("buffer.journal-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn forked_child(durable: &str) -> tempfile::TempDir {
    let r = Receiver::start("k-fork");
    r.fault(r#"{"mode":"delay","delay_ms":50,"rate":1}"#);
    let dir = tempfile::tempdir().unwrap();
    let st = child(
        "fork",
        &[
            ("URL", r.url()),
            ("DIR", dir.path().to_str().unwrap().to_owned()),
            ("DURABLE", durable.to_owned()),
        ],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let e = r.entries();
    let children = e
        .iter()
        .filter(|x| x["message"].as_str().unwrap().starts_with("child-"))
        .count();
    assert_eq!(children, 10);
    assert_eq!(r.stat("distinct"), 60);
    assert_eq!(r.stat("duplicates"), 0);
    dir
}

/// A journal segment as durable mode writes it (see src/journal.rs): a magic, then records of
/// `len: u32 LE | state: u8 | 3 bytes | body | padding to 8`; state 1 is committed, 2 settled.
fn journal_segment(records: &[(u8, String)]) -> Vec<u8> {
    let mut d = b"RARCHJ01".to_vec();
    for (state, body) in records {
        d.extend_from_slice(&(body.len() as u32).to_le_bytes());
        d.extend_from_slice(&[*state, 0, 0, 0]);
        d.extend_from_slice(body.as_bytes());
        while d.len() % 8 != 0 {
            d.push(0);
        }
    }
    d.resize(64 * 1024, 0);
    d
}

#[test]
fn a_live_processs_journal_is_left_alone_and_a_dead_ones_is_recovered() {
    let r = Receiver::start("k-journal");
    let dir = tempfile::tempdir().unwrap();
    let svc = "svc-journal";
    let svc_dir = dir.path().join(svc);
    std::fs::create_dir_all(&svc_dir).unwrap();
    let body = |id: &str| {
        serde_json::json!({
            "level": "INFO", "service": svc, "logger_name": svc, "message": "from the journal",
            "user_id": null, "tenant_id": null, "request_id": id, "context": {},
            "client_log_datetime": "2026-11-24T01:00:00.000000Z"
        })
        .to_string()
    };
    let seg = svc_dir.join("buffer.journal-1-00000000000000ab-00000000.bin");
    let data = journal_segment(&[
        (1, body("journal-a")),
        (2, body("journal-settled")),
        (1, body("journal-c")),
    ]);
    std::fs::write(&seg, data).unwrap();
    // Another process owns the segment: it holds a POSIX lock on it, as a live writer does.
    let mut owner = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\nsys.stdin.read()",
            seg.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(owner.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let ids = |r: &Receiver| -> Vec<String> {
        r.entries()
            .iter()
            .filter_map(|e| e["request_id"].as_str().map(str::to_owned))
            .filter(|id| id.starts_with("journal-"))
            .collect()
    };
    {
        let lg = Logger::new(
            svc,
            None,
            Some(&opts(&r.url(), "k-journal", dir.path(), &[])),
        )
        .unwrap();
        log(&lg, "a fresh entry");
        lg.flush(T).unwrap();
        assert!(
            ids(&r).is_empty(),
            "a live owner's journal was taken: {:?}",
            ids(&r)
        );
        assert!(seg.exists());
    }
    // The owner dies: its segment is recovered by the next logger, once and without the
    // settled record.
    drop(owner.stdin.take());
    assert!(owner.wait().unwrap().success());
    let lg = Logger::new(
        svc,
        None,
        Some(&opts(
            &r.url(),
            "k-journal",
            dir.path(),
            &[("timeout_ms", "1500")],
        )),
    )
    .unwrap();
    lg.flush(T).unwrap();
    let mut got = ids(&r);
    got.sort();
    assert_eq!(got, ["journal-a", "journal-c"]);
    assert!(!seg.exists(), "the recovered segment is still there");
}

#[test]
fn durable_mode_delivers_and_leaves_no_journal_behind() {
    let r = Receiver::start("k-durable");
    let dir = tempfile::tempdir().unwrap();
    let svc = "svc-durable-clean";
    {
        let lg = Logger::new(
            svc,
            None,
            Some(&opts(
                &r.url(),
                "k-durable",
                dir.path(),
                &[("durable", "true")],
            )),
        )
        .unwrap();
        for i in 0..2000 {
            log(&lg, &format!("durable {i}"));
        }
        lg.flush(T).unwrap();
        assert_eq!(r.stat("accepted"), 2000);
        let s = lg.stats().unwrap();
        assert_eq!(s.delivered, 2000, "{s:?}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join(svc))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("buffer.journal-"))
        .collect();
    assert!(
        left.is_empty(),
        "journal files after a clean close: {left:?}"
    );
}
