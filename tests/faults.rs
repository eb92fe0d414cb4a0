//! Reliability under faults: every fault of the server, of the process and of the disk
//! ends with no crash, no hang past its timeout, no entry lost, and counts in the stats. After
//! every scenario the API key is looked for (and must be absent) in the buffer directory and in
//! every error message the scenario produced.
//!
//! Some scenarios run in a child process (this test binary re-run with `FAULTS_CHILD_ROLE` set,
//! see `child_role`): a process that SIGKILLs itself, and the leak count of /proc/self. The disk
//! tests that mount a file system run again in a mount namespace of their own (see
//! `in_mount_namespace`).

mod common;

use common::*;
use rarch_logging::entry::Fields;
use rarch_logging::ffi::*;
use rarch_logging::{ErrorKind, Level, Logger, Options};
use std::collections::HashSet;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
/// The API key of every scenario: long and distinctive, so a search for it cannot match by chance.
const KEY: &str = "faults-API-KEY-5c1e9a7b3d-never-printed";
const ROLE: &str = "FAULTS_CHILD_ROLE";

fn opts(url: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    let mut all = vec![("timeout_ms", "1000")];
    all.extend_from_slice(extra);
    common::options(url, KEY, dir, &all)
}

fn with_id<'a>(m: &'a str, id: &'a str) -> Fields<'a> {
    Fields {
        message: m,
        request_id: Some(id),
        ..Default::default()
    }
}

/// The API key must be in no file under `dir` (buffer, dead letters, corrupt lines, locks,
/// rotated and claimed segments) and in none of `texts` (error messages, outputs).
fn assert_no_secret(dir: &Path, texts: &[String]) {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&path, out),
                    Ok(t) if t.is_file() => out.push(path),
                    _ => {}
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !contains(&bytes, KEY.as_bytes()),
            "the API key is in {}",
            f.display()
        );
    }
    for t in texts {
        assert!(!t.contains(KEY), "the API key is in a message: {t}");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The messages a logger can show a person: the last delivery failure and a flush timeout.
fn messages(lg: &Logger) -> Vec<String> {
    let mut v = vec![lg.last_delivery_error()];
    if let Err(e) = lg.flush(Duration::from_millis(1)) {
        v.push(e.message);
    }
    v
}

fn no_drops(lg: &Logger) {
    let s = lg.stats().unwrap();
    assert_eq!(
        (s.dropped_io, s.dropped_queue_full, s.dropped_buffer_cap),
        (0, 0, 0),
        "{s:?}"
    );
}

fn request_ids(r: &Receiver) -> HashSet<String> {
    r.entries()
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Logs `n` entries while the receiver injects `fault`; everything must arrive with no drop,
/// every duplicate must come from a failed attempt, and the flush must end in time.
fn survive(name: &str, fault: &str, n: usize, extra: &[(&str, &str)]) {
    let r = Receiver::start(KEY);
    r.fault(fault);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(name, None, Some(&opts(&r.url(), dir.path(), extra))).unwrap();
    for i in 0..n {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    wait_until(T, "the fault to be injected", || {
        (r.stat("faults") > 0).then_some(())
    });
    lg.flush(T).unwrap_or_else(|e| panic!("{name}: {e}"));
    let s = lg.stats().unwrap();
    assert_eq!(r.stat("distinct"), n as u64, "{name}: {s:?}");
    assert_eq!(
        (s.logged, s.delivered),
        (n as u64, n as u64),
        "{name}: {s:?}"
    );
    assert!(s.failed_attempts >= 1, "{name}: {s:?}");
    let dups = r.stat("duplicates");
    assert!(
        dups <= s.failed_attempts,
        "{name}: {dups} duplicates for {} failed attempts",
        s.failed_attempts
    );
    assert_eq!(r.stat("accepted"), n as u64 + dups);
    no_drops(&lg);
    assert_no_secret(dir.path(), &messages(&lg));
}

#[test]
fn connection_reset_mid_request() {
    survive(
        "svc-reset",
        r#"{"mode":"reset","rate":0.5,"count":25}"#,
        60,
        &[],
    );
}

#[test]
fn connection_closed_without_an_answer() {
    survive(
        "svc-drop",
        r#"{"mode":"drop","rate":0.5,"count":25}"#,
        60,
        &[],
    );
}

#[test]
fn malformed_response() {
    survive(
        "svc-malformed",
        r#"{"mode":"malformed","rate":0.5,"count":25}"#,
        60,
        &[],
    );
}

#[test]
fn http_500_503_429_without_retry_after() {
    for st in [500, 503, 429] {
        survive(
            &format!("svc-{st}"),
            &format!(r#"{{"mode":"status","status":{st},"rate":0.5,"count":25}}"#),
            40,
            &[],
        );
    }
}

#[test]
fn http_503_429_with_retry_after() {
    for st in [503, 429] {
        survive(
            &format!("svc-ra-{st}"),
            &format!(r#"{{"mode":"status","status":{st},"rate":0.5,"retry_after":1,"count":10}}"#),
            40,
            &[],
        );
    }
}

#[test]
fn slow_answers_past_the_timeout() {
    // The server answers after 1.5 s; the client gives up after 300 ms and tries again. The
    // late answers were accepted by the server: those are the (bounded) duplicates.
    survive(
        "svc-slow",
        r#"{"mode":"delay","delay_ms":1500,"rate":0.3,"count":6}"#,
        30,
        &[("timeout_ms", "300")],
    );
}

#[test]
fn refused_connections_then_the_server_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let addr = dead_addr();
    let lg = Logger::new(
        "svc-refused",
        None,
        Some(&opts(
            &format!("http://{addr}/log"),
            dir.path(),
            &[("max_retries", "1")],
        )),
    )
    .unwrap();
    for i in 0..100 {
        lg.log(Level::Info, &msg(&format!("m{i}"))).unwrap();
    }
    wait_until(T, "every entry on disk", || {
        (lg.stats().unwrap().buffered == 100).then_some(())
    });
    let s = lg.stats().unwrap();
    assert!(s.failed_attempts >= 1, "{s:?}");
    let e = lg.flush(Duration::from_millis(300)).unwrap_err();
    assert!(e.message.contains("not yet"), "{}", e.message);
    let r = Receiver::start_at(KEY, &addr);
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 100);
    assert_eq!(lg.stats().unwrap().replayed, 100);
    no_drops(&lg);
    assert_no_secret(dir.path(), &[e.message, lg.last_delivery_error()]);
}

#[test]
fn retry_after_is_honoured_and_capped_by_backoff_max() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-ra",
        None,
        Some(&opts(
            &r.url(),
            dir.path(),
            &[("backoff_max_ms", "5000"), ("max_retries", "3")],
        )),
    )
    .unwrap();
    // Retry-After: 1 -> the retry waits about a second.
    r.fault(r#"{"mode":"status","status":503,"retry_after":1,"count":1}"#);
    let t = Instant::now();
    lg.log(Level::Info, &msg("after retry-after")).unwrap();
    r.wait_accepted(1, T);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
    // No Retry-After -> the first backoff (at most backoff_initial_ms = 10 ms, jittered).
    r.fault(r#"{"mode":"status","status":429,"count":1}"#);
    lg.log(Level::Info, &msg("no retry-after")).unwrap();
    r.wait_accepted(2, T);
    drop(lg);
    // Retry-After: 3600 is capped by backoff_max_ms (300 ms here): delivered within T (30 s).
    let lg = Logger::new(
        "svc-ra",
        None,
        Some(&opts(
            &r.url(),
            dir.path(),
            &[("backoff_max_ms", "300"), ("max_retries", "3")],
        )),
    )
    .unwrap();
    r.fault(r#"{"mode":"status","status":503,"retry_after":3600,"count":1}"#);
    lg.log(Level::Info, &msg("capped")).unwrap();
    r.wait_accepted(3, T);
    lg.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), 3);
    no_drops(&lg);
    assert_no_secret(dir.path(), &messages(&lg));
}

/// A minimal HTTP/1.1 server that answers 200 to every request and then closes the connection
/// without saying so (no `Connection: close`): the client's pooled keep-alive connection is
/// dead when it is next used. Records each request's body.
struct ClosingServer {
    addr: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ClosingServer {
    fn start() -> ClosingServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        if let Some(body) = read_request(&mut c) {
                            // Recorded before the answer: once the client has its answer (and
                            // its flush returns), the test must find the body here.
                            b.lock().unwrap().push(body);
                            let _ = c.write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                            );
                        }
                        // Closed here, with keep-alive implied by HTTP/1.1.
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ClosingServer { addr, bodies, stop }
    }
}

impl Drop for ClosingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request (headers and a Content-Length body); returns the body.
fn read_request(c: &mut std::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned())
}

#[test]
fn keep_alive_connections_closed_early_by_the_server() {
    let srv = ClosingServer::start();
    let dir = tempfile::tempdir().unwrap();
    let lg = Logger::new(
        "svc-keepalive",
        None,
        Some(&opts(
            &format!("http://{}/log", srv.addr),
            dir.path(),
            &[("connections", "1")],
        )),
    )
    .unwrap();
    // One at a time, so every request after the first finds a pooled connection the server
    // has already closed.
    for i in 0..20 {
        lg.log(Level::Info, &with_id("ka", &format!("ka-{i}")))
            .unwrap();
        lg.flush(T).unwrap();
    }
    let got: HashSet<String> = srv
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["request_id"].to_string())
        .collect();
    assert_eq!(got.len(), 20);
    assert_eq!(lg.stats().unwrap().delivered, 20);
    no_drops(&lg);
    assert_no_secret(dir.path(), &messages(&lg));
}

#[test]
fn flapping_between_faults_and_health() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let lg = Arc::new(
        Logger::new(
            "svc-flapping",
            None,
            Some(&opts(
                &r.url(),
                dir.path(),
                &[("timeout_ms", "300"), ("max_retries", "2")],
            )),
        )
        .unwrap(),
    );
    const THREADS: usize = 4;
    const PER: usize = 250;
    let loggers: Vec<_> = (0..THREADS)
        .map(|t| {
            let lg = lg.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    lg.log(Level::Info, &with_id("flap", &format!("f{t}-{i}")))
                        .unwrap();
                    // Pace the load over the flapping window.
                    std::thread::sleep(Duration::from_millis(8));
                }
            })
        })
        .collect();
    let phases = [
        r#"{"mode":"status","status":503,"rate":0.5}"#,
        r#"{"mode":"none"}"#,
        r#"{"mode":"reset","rate":0.3}"#,
        r#"{"mode":"status","status":429,"retry_after":1,"rate":0.3}"#,
        r#"{"mode":"none"}"#,
        r#"{"mode":"drop","rate":0.3}"#,
        r#"{"mode":"malformed","rate":0.3}"#,
        r#"{"mode":"delay","delay_ms":500,"rate":0.2}"#,
        r#"{"mode":"status","status":500,"rate":1.0}"#,
        r#"{"mode":"none"}"#,
    ];
    let mut k = 0;
    for h in loggers {
        while !h.is_finished() {
            r.fault(phases[k % phases.len()]);
            k += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        h.join().unwrap();
    }
    r.fault(r#"{"mode":"none"}"#);
    assert!(r.stat("faults") > 0);
    lg.flush(Duration::from_secs(45))
        .unwrap_or_else(|e| panic!("{e}; {:?}", lg.stats()));
    let n = (THREADS * PER) as u64;
    let s = lg.stats().unwrap();
    assert_eq!(r.stat("distinct"), n, "{s:?}");
    assert_eq!(s.logged, n);
    assert_eq!(s.delivered, n, "{s:?}");
    let dups = r.stat("duplicates");
    assert!(dups <= s.failed_attempts, "{dups} duplicates, {s:?}");
    assert_eq!(r.stat("accepted"), n + dups);
    no_drops(&lg);
    assert_no_secret(dir.path(), &messages(&lg));
}

// ---------------------------------------------------------------------------------------------
// kill -9 under load, in a child process.

/// Runs this test binary again as a child with `role`; returns (status, stdout+stderr).
fn run_child(
    role: &str,
    env: &[(&str, String)],
    timeout: Duration,
) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_role",
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let re = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {role} ran past {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = ro.join().unwrap() + &re.join().unwrap();
    (status, text)
}

/// Request ids of the complete entry lines in the service's buffer files (active, rotated and
/// claimed; not the dead-letter and corrupt files).
fn ids_on_disk(svc_dir: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    for e in std::fs::read_dir(svc_dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(rarch_logging::journal::PREFIX) {
            // The crash journal of durable mode: its committed, unsettled records.
            let data = std::fs::read(e.path()).unwrap();
            let service = svc_dir.file_name().unwrap().to_string_lossy().into_owned();
            for rec in rarch_logging::journal::records(&data) {
                // A body, or a durable entry's raw fields (the body is built from them).
                let body = rarch_logging::record::journal_body(rec, &service).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                ids.insert(v["request_id"].as_str().unwrap().to_owned());
            }
            continue;
        }
        if !name.ends_with(".jsonl") || name.contains("rejected") || name.contains("corrupt") {
            continue;
        }
        let data = std::fs::read(e.path()).unwrap();
        // Only lines ending in '\n' reached the file whole.
        let complete = match data.iter().rposition(|&b| b == b'\n') {
            Some(p) => &data[..=p],
            None => continue,
        };
        for line in complete.split(|&b| b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                ids.insert(v["request_id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

fn kill9_then_restart(durable: bool) {
    let svc = if durable {
        "svc-kill-durable"
    } else {
        "svc-kill-default"
    };
    let r = Receiver::start(KEY);
    // Under load against a failing server: some entries are delivered, some retried, some on
    // disk, some being replayed when the process dies.
    r.fault(r#"{"mode":"status","status":503,"rate":0.5}"#);
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.txt");
    let (status, out) = run_child(
        if durable {
            "kill-durable"
        } else {
            "kill-default"
        },
        &[
            ("FT_URL", r.url()),
            ("FT_DIR", dir.path().to_str().unwrap().to_owned()),
            ("FT_ACKS", acks.to_str().unwrap().to_owned()),
            ("FT_SERVICE", svc.to_owned()),
        ],
        Duration::from_secs(60),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "child: {status:?}\n{out}"
    );
    assert!(!out.contains(KEY), "the API key is in the child's output");
    let on_disk = ids_on_disk(&dir.path().join(svc));
    let segments = || -> Vec<String> {
        std::fs::read_dir(dir.path().join(svc))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(rarch_logging::journal::PREFIX))
            .collect()
    };
    let journals = || segments().len();
    // The crash journal's segments in durable mode; in both modes the segments of the raw
    // overflow the spill thread was writing (named `...-o<n>.bin`), in the journal's format,
    // and those the replay had taken to send (`...-t<n>.bin`: in default mode, overflow
    // segments).
    let overflow = |n: &String| {
        n.rsplit('-')
            .next()
            .is_some_and(|last| last.starts_with('o') || last.starts_with('t'))
    };
    if durable {
        assert!(
            segments().iter().any(|n| !overflow(n)),
            "no journal segment left by the kill: {:?}",
            segments()
        );
    } else {
        let others: Vec<String> = segments().into_iter().filter(|n| !overflow(n)).collect();
        assert!(
            others.is_empty(),
            "journal segments without durable: {others:?}"
        );
    }
    let must_arrive: HashSet<String> = if durable {
        // Every id whose rarch_log returned OK (written after the call returned).
        let text = std::fs::read_to_string(&acks).unwrap();
        let complete = &text[..text.rfind('\n').map_or(0, |p| p + 1)];
        complete.lines().map(str::to_owned).collect()
    } else {
        on_disk.clone()
    };
    assert!(
        must_arrive.len() >= 100,
        "only {} entries to check; child said:\n{out}",
        must_arrive.len()
    );
    if durable {
        let delivered_before = request_ids(&r);
        let lost: Vec<_> = must_arrive
            .iter()
            .filter(|id| !on_disk.contains(*id) && !delivered_before.contains(*id))
            .take(5)
            .collect();
        assert!(
            lost.is_empty(),
            "accepted but neither on disk nor delivered: {lost:?}"
        );
    }
    // Restart: a fresh logger on the same buffer directory replays.
    r.fault(r#"{"mode":"none"}"#);
    let dirp = dir.path().to_owned();
    let lg = Logger::new(
        svc,
        None,
        Some(&opts(
            &r.url(),
            &dirp,
            &[("durable", if durable { "true" } else { "false" })],
        )),
    )
    .unwrap();
    lg.flush(T).unwrap();
    let got = request_ids(&r);
    let missing: Vec<_> = must_arrive
        .iter()
        .filter(|id| !got.contains(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "lost after kill -9: {missing:?} (on disk before the restart: {:?}; in files now: {:?}; stats {:?})",
        missing
            .iter()
            .map(|id| on_disk.contains(*id))
            .collect::<Vec<_>>(),
        std::fs::read_dir(dirp.join(svc))
            .unwrap()
            .flatten()
            .filter(|e| {
                let d = std::fs::read(e.path()).unwrap_or_default();
                missing.iter().any(|id| contains(&d, id.as_bytes()))
            })
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        lg.stats().unwrap()
    );
    assert!(
        ids_on_disk(&dirp.join(svc)).is_empty(),
        "buffer not drained"
    );
    // The dead process's segments were recovered and deleted; only the restarted logger's
    // own (live) journal segment may remain.
    assert!(
        journals() <= usize::from(durable),
        "journal segments: {:?}",
        segments()
    );
    no_drops(&lg);
    assert_no_secret(&dirp, &messages(&lg));
}

#[test]
fn kill9_default_mode_loses_nothing_that_reached_the_buffer_file() {
    kill9_then_restart(false);
}

#[test]
fn kill9_durable_mode_loses_nothing_that_was_accepted() {
    kill9_then_restart(true);
}

fn child_kill(durable: bool) {
    let url = std::env::var("FT_URL").unwrap();
    let dir = PathBuf::from(std::env::var("FT_DIR").unwrap());
    let svc = std::env::var("FT_SERVICE").unwrap();
    let acks = std::env::var("FT_ACKS").unwrap();
    let lg = Arc::new(
        Logger::new(
            &svc,
            None,
            Some(&opts(
                &url,
                &dir,
                &[
                    ("durable", if durable { "true" } else { "false" }),
                    ("queue_capacity", "64"),
                    ("max_retries", "1"),
                    ("buffer_max_file_bytes", "16384"),
                ],
            )),
        )
        .unwrap(),
    );
    let acked = Arc::new(AtomicU64::new(0));
    for t in 0..2 {
        let (lg, acked, acks) = (lg.clone(), acked.clone(), acks.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&acks)
                .unwrap();
            for i in 0..200_000 {
                let id = format!("kill-{t}-{i}");
                if lg.log(Level::Info, &with_id("load", &id)).is_ok() {
                    // One write(2) per id, after rarch_log returned.
                    f.write_all(format!("{id}\n").as_bytes()).unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    wait_until(Duration::from_secs(20), "load on disk", || {
        let s = lg.stats().unwrap();
        (s.buffered >= 300 && acked.load(Ordering::Relaxed) >= 300).then_some(())
    });
    eprintln!(
        "child: killing itself under load: {:?}",
        lg.stats().unwrap()
    );
    // SAFETY: signalling our own process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!();
}

// ---------------------------------------------------------------------------------------------
// Disk faults.

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) -> Mount {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("mount(8)");
    assert!(
        out.status.success(),
        "mount {args:?} {}: {}",
        target.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Mount(target.to_owned())
}

/// The variable that marks the copy of a test run inside its own mount namespace.
const MOUNT_NS: &str = "FAULTS_IN_MOUNT_NAMESPACE";

/// The tests that mount file systems run in a mount namespace of their own, so nothing they
/// mount is seen outside (or left behind by a crash): `test` is run again under `unshare
/// --mount` (with `--user --map-root-user` when not root, which needs unprivileged user
/// namespaces). Returns true in that copy, which runs the test's body; false in the test
/// itself, once the copy passed. Where neither works the test fails, saying why and how to
/// leave it out; it never passes without having run.
fn in_mount_namespace(test: &str) -> bool {
    if std::env::var_os(MOUNT_NS).is_some() {
        return true;
    }
    let mut cmd = Command::new("unshare");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cmd.args(["--user", "--map-root-user"]);
    }
    let out = cmd
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MOUNT_NS, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{test} needs unshare(1) (util-linux): {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test} in a mount namespace of its own (root, or unprivileged user namespaces, are \
         needed; `--skip {test}` leaves it out):\n{text}"
    );
    false
}

fn log_or_counted_drop(lg: &Logger, f: &Fields<'_>) {
    let drops = || {
        let s = lg.stats().unwrap();
        s.dropped_queue_full + s.dropped_io
    };
    let before = drops();
    match lg.log(Level::Info, f) {
        Ok(()) => {}
        // Over the in-memory cap: refused, and counted (as queue-full or as an I/O drop).
        Err(e) if matches!(e.kind, ErrorKind::QueueFull | ErrorKind::Io) => {
            assert!(drops() > before, "an uncounted drop: {e}");
        }
        Err(e) => panic!("logging stopped: {e}"),
    }
}

/// Every entry logged is delivered, on disk, in memory, or dropped and counted.
fn accounted(lg: &Logger) -> bool {
    let s = lg.stats().unwrap();
    s.delivered + s.buffered + s.dropped_io + s.dropped_queue_full + lg.queue_len() as u64
        >= s.logged
}

#[test]
fn disk_full_keeps_logging_counts_drops_and_recovers() {
    if in_mount_namespace("disk_full_keeps_logging_counts_drops_and_recovers") {
        disk_full(false);
    }
}

#[test]
fn disk_full_leaves_no_torn_line_and_no_duplicate() {
    if in_mount_namespace("disk_full_leaves_no_torn_line_and_no_duplicate") {
        disk_full(true);
    }
}

fn disk_full(strict: bool) {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _m = mount(&["-t", "tmpfs", "-o", "size=256k", "tmpfs"], &mnt);
    // Fill the file system but for a few KiB.
    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len.saturating_sub(8192))
        .unwrap();
    let addr = dead_addr();
    let lg = Logger::new(
        "svc-full",
        None,
        Some(&opts(
            &format!("http://{addr}/log"),
            &mnt,
            &[("queue_capacity", "50"), ("max_retries", "0")],
        )),
    )
    .unwrap();
    let pad = "p".repeat(400);
    const N: u64 = 300;
    for i in 0..N {
        // Logging goes on: an entry is taken, or refused as over the in-memory cap (counted).
        log_or_counted_drop(&lg, &with_id(&pad, &format!("full-{i}")));
    }
    // The callers' lanes are collected into the queue, whose entries the disk cannot take: past
    // the cap in memory (the queue's and the overflow's), they are dropped and counted.
    wait_until(T, "every entry accounted for, and drops counted", || {
        let s = lg.stats().unwrap();
        (accounted(&lg) && s.dropped_io + s.dropped_queue_full > 0 && lg.queue_len() <= 2 * 50)
            .then_some(())
    });
    // Space is back: what was kept in memory goes to disk, then to the server.
    std::fs::remove_file(&filler).unwrap();
    let r = Receiver::start_at(KEY, &addr);
    lg.flush(T)
        .unwrap_or_else(|e| panic!("{e}: {:?}", lg.stats()));
    let s = lg.stats().unwrap();
    assert_eq!(s.logged, N);
    assert_eq!(
        r.stat("distinct") + s.dropped_io + s.dropped_queue_full,
        N,
        "entries lost without being counted: {s:?}"
    );
    if strict {
        assert_eq!(s.corrupt, 0, "a partial write left a torn line: {s:?}");
        assert_eq!(
            s.delivered,
            r.stat("distinct"),
            "lines written twice: {s:?}"
        );
        assert_eq!(r.stat("duplicates"), 0);
    }
    assert_no_secret(&mnt, &messages(&lg));
    // The logger still works.
    lg.log(Level::Info, &msg("after")).unwrap();
    lg.flush(T).unwrap();
}

/// Logs `n` entries while the service directory is unusable (server down), checks they are kept
/// or counted, then `restore`s and checks that what was kept is delivered once the server is up.
/// `drops`: whether some entries must be dropped (and counted) meanwhile, none may be, or
/// either (`None`).
fn unusable_dir(
    name: &str,
    destroys_files: bool,
    drops: Option<bool>,
    break_it: impl FnOnce(&Path),
    restore: impl FnOnce(&Path),
) {
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join(name);
    let addr = dead_addr();
    let lg = Logger::new(
        name,
        None,
        Some(&opts(
            &format!("http://{addr}/log"),
            dir.path(),
            &[("queue_capacity", "40"), ("max_retries", "0")],
        )),
    )
    .unwrap();
    lg.log(Level::Info, &msg("before")).unwrap();
    wait_until(T, "the first entry on disk", || {
        (lg.stats().unwrap().buffered == 1).then_some(())
    });
    break_it(&svc);
    const N: u64 = 100;
    for i in 0..N {
        log_or_counted_drop(&lg, &msg(&format!("while broken {i}")));
    }
    // With drops expected: once the lanes are collected into the queue past the cap in memory.
    wait_until(T, "every entry accounted for", || {
        let s = lg.stats().unwrap();
        let dropped = s.dropped_io + s.dropped_queue_full > 0;
        (accounted(&lg) && (drops != Some(true) || dropped)).then_some(())
    });
    let s = lg.stats().unwrap();
    match drops {
        Some(true) => assert!(s.dropped_io + s.dropped_queue_full > 0, "{name}: {s:?}"),
        Some(false) => assert_eq!(s.dropped_io + s.dropped_queue_full, 0, "{name}: {s:?}"),
        None => {}
    }
    restore(&svc);
    let r = Receiver::start_at(KEY, &addr);
    lg.flush(T)
        .unwrap_or_else(|e| panic!("{name}: {e}: {:?}", lg.stats()));
    let s = lg.stats().unwrap();
    assert_eq!(s.logged, N + 1);
    // The entry on disk before the directory was destroyed went with it (the test's doing).
    let expected = if destroys_files { N } else { N + 1 };
    assert_eq!(
        r.stat("distinct") + s.dropped_io + s.dropped_queue_full,
        expected,
        "{name}: {s:?}"
    );
    assert!(
        r.stat("distinct") >= 40,
        "{name}: less than the in-memory cap was kept"
    );
    lg.log(Level::Info, &msg("after")).unwrap();
    lg.flush(T).unwrap();
    assert_no_secret(dir.path(), &messages(&lg));
}

#[test]
fn buffer_dir_replaced_by_a_file_then_restored() {
    unusable_dir(
        "svc-notadir",
        true,
        Some(true),
        |svc| {
            std::fs::remove_dir_all(svc).unwrap();
            std::fs::write(svc, b"not a directory").unwrap();
        },
        |svc| {
            std::fs::remove_file(svc).unwrap();
            // The library may make the directory again first (its spill thread retries).
            if let Err(e) = std::fs::create_dir(svc) {
                assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
            }
        },
    );
}

#[test]
fn buffer_dir_read_only_mount_then_writable() {
    if !in_mount_namespace("buffer_dir_read_only_mount_then_writable") {
        return;
    }
    let mounted = Arc::new(Mutex::new(None::<Mount>));
    let m2 = mounted.clone();
    unusable_dir(
        "svc-readonly",
        false,
        // The buffer file opened before the mount stays writable (a bind mount's read-only
        // flag is the mount's, not the open file's): entries may still be written.
        None,
        move |svc| {
            // A read-only view of the directory over itself.
            let m = mount(&["--bind", "-o", "ro", svc.to_str().unwrap()], svc);
            *m2.lock().unwrap() = Some(m);
        },
        move |_| {
            drop(mounted.lock().unwrap().take());
        },
    );
}

#[test]
fn buffer_dir_disappears_and_is_recreated() {
    // Nobody restores the directory: the core must make it again.
    unusable_dir(
        "svc-vanished",
        true,
        // Made again at once: nothing is even dropped.
        Some(false),
        |svc| std::fs::remove_dir_all(svc).unwrap(),
        |_| {},
    );
}

// ---------------------------------------------------------------------------------------------
// Many loggers, many threads: no leak; free and flush racing with logging.

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: a buffer of the given length.
    let n = unsafe { rarch_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(n.min(4095));
    String::from_utf8_lossy(&buf).into_owned()
}

#[derive(Clone, Copy)]
struct Lg(*mut rarch_logger);
// SAFETY: a rarch_logger may be used from any number of threads at once (the C API's contract).
unsafe impl Send for Lg {}
// SAFETY: as for Send.
unsafe impl Sync for Lg {}

impl Lg {
    /// The pointer (a method, so closures capture the whole `Lg`, which is Send).
    fn p(self) -> *mut rarch_logger {
        self.0
    }
}

fn ffi_logger(service: &str, kv: &[(&str, &str)]) -> Lg {
    // SAFETY: plain calls of the C API with valid arguments.
    unsafe {
        let o = rarch_options_new();
        for (k, v) in kv {
            assert_eq!(
                rarch_options_set(o, c(k).as_ptr(), c(v).as_ptr()),
                rarch_status::RARCH_OK,
                "{k}"
            );
        }
        let l = rarch_logger_new(c(service).as_ptr(), std::ptr::null(), o);
        rarch_options_free(o);
        assert!(!l.is_null(), "{}", last_error());
        Lg(l)
    }
}

fn ffi_log(l: Lg, m: &str) -> rarch_status {
    let m = c(m);
    let n = std::ptr::null();
    // SAFETY: a live logger and NUL-terminated strings.
    unsafe { rarch_log(l.p(), 1, m.as_ptr(), n, n, n, n, n) }
}

fn ffi_stats(l: Lg) -> rarch_statistics {
    let mut s = rarch_statistics {
        size: std::mem::size_of::<rarch_statistics>(),
        ..Default::default()
    };
    // SAFETY: a live logger and a stats struct with its size set.
    let st = unsafe { rarch_stats(l.p(), &mut s) };
    assert_eq!(st, rarch_status::RARCH_OK);
    s
}

fn proc_count(what: &str) -> usize {
    std::fs::read_dir(format!("/proc/self/{what}"))
        .unwrap()
        .count()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn many_loggers_created_and_freed_in_many_threads_leak_nothing() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let (status, out) = run_child(
        "leaks",
        &[
            ("FT_URL", r.url()),
            ("FT_DIR", dir.path().to_str().unwrap().to_owned()),
        ],
        Duration::from_secs(90),
    );
    assert!(status.success(), "leak child failed:\n{out}");
    assert!(out.contains("leaks: ok"), "{out}");
    assert!(!out.contains(KEY));
    assert_no_secret(dir.path(), &[]);
}

fn child_leaks() {
    let url: &'static str = std::env::var("FT_URL").unwrap().leak();
    let dir: &'static str = std::env::var("FT_DIR").unwrap().leak();
    // Each (thread, round) has its own options, so its logger starts and stops a pipeline of
    // its own (threads, connections, queue); a second logger shares it for a while.
    let cycle = move |t: usize, round: usize| {
        let timeout = (1000 + t * 100 + round % 7).to_string();
        let kv = [
            ("url", url),
            ("api_key", KEY),
            ("buffer_dir", dir),
            ("timeout_ms", timeout.as_str()),
            ("close_timeout_ms", "1000"),
        ];
        let a = ffi_logger(&format!("svc-leak-{t}"), &kv);
        let b = ffi_logger(&format!("svc-leak-{t}-b"), &kv);
        for i in 0..3 {
            assert_eq!(ffi_log(a, &format!("a{i}")), rarch_status::RARCH_OK);
            assert_eq!(ffi_log(b, &format!("b{i}")), rarch_status::RARCH_OK);
        }
        // SAFETY: live loggers, each freed once, last call on each.
        unsafe {
            rarch_logger_free(b.0);
            assert_eq!(
                rarch_flush(a.0, 20_000),
                rarch_status::RARCH_OK,
                "{}",
                last_error()
            );
            rarch_logger_free(a.0);
        }
    };
    let run = move |rounds: usize| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..rounds {
                        cycle(t, round);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    };
    // Warm up the lazy one-time state (registry, TLS roots, thread locals).
    run(2);
    let (threads0, fds0) = (proc_count("task"), proc_count("fd"));
    let settle = |what: &str| {
        wait_until(Duration::from_secs(15), what, || {
            (proc_count("task") <= threads0 && proc_count("fd") <= fds0).then_some(())
        })
    };
    settle("threads and descriptors back after the warm-up");
    let rss0 = rss_kib();
    run(40); // 160 pipelines started and stopped, 320 loggers
    settle("threads and descriptors back to their count before");
    let rss1 = rss_kib();
    eprintln!(
        "leaks: threads {threads0}, fds {fds0}, rss {rss0} -> {rss1} KiB after 160 pipelines"
    );
    // A leaked pipeline holds its queue (16384 slots, ~0.75 MiB): 160 of them would be >100 MiB.
    assert!(
        rss1 < rss0 + 24 * 1024,
        "memory grew from {rss0} to {rss1} KiB"
    );
    println!("leaks: ok");
}

#[test]
fn free_and_flush_race_with_logging_on_the_same_pipeline() {
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let url = r.url();
    let kv = [
        ("url", url.as_str()),
        ("api_key", KEY),
        ("buffer_dir", dir.path().to_str().unwrap()),
        ("close_timeout_ms", "1000"),
    ];
    let a = ffi_logger("svc-race", &kv);
    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for t in 0..3 {
        let (stop, oks) = (stop.clone(), oks.clone());
        hs.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                let st = ffi_log(a, &format!("race {t} {i}"));
                assert_eq!(st, rarch_status::RARCH_OK, "{}", last_error());
                oks.fetch_add(1, Ordering::Relaxed);
                i += 1;
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        }));
    }
    // Several threads flush at once, again and again.
    for _ in 0..3 {
        let stop = stop.clone();
        hs.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: a live logger.
                let st = unsafe { rarch_flush(a.p(), 2000) };
                assert!(
                    matches!(
                        st,
                        rarch_status::RARCH_OK | rarch_status::RARCH_ERR_TIMED_OUT
                    ),
                    "{st:?}"
                );
                if st != rarch_status::RARCH_OK {
                    assert!(!last_error().is_empty());
                }
            }
        }));
    }
    // Meanwhile loggers of the same pipeline come and go.
    let mut b_oks = 0;
    for i in 0..60 {
        let b = ffi_logger(if i % 2 == 0 { "svc-race" } else { "svc-race-b" }, &kv);
        assert_eq!(ffi_log(b, &format!("b {i}")), rarch_status::RARCH_OK);
        b_oks += 1;
        // SAFETY: last call on b.
        unsafe { rarch_logger_free(b.0) };
    }
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
    // SAFETY: a live logger, then its last call.
    unsafe {
        assert_eq!(
            rarch_flush(a.0, 30_000),
            rarch_status::RARCH_OK,
            "{}",
            last_error()
        );
    }
    let total = oks.load(Ordering::Relaxed) + b_oks;
    assert_eq!(r.stat("distinct"), total);
    let s = ffi_stats(a);
    assert_eq!(s.logged, total);
    assert_eq!(
        s.dropped_io + s.dropped_queue_full + s.dropped_buffer_cap,
        0
    );
    // SAFETY: last call on a.
    unsafe { rarch_logger_free(a.0) };
    assert_no_secret(dir.path(), &[last_error()]);
}

/// Not a test by itself: the entry point of the child processes above.
#[test]
#[ignore = "the child process of the kill -9 and leak tests, run by them with FAULTS_CHILD_ROLE set"]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        panic!("run by the other tests of this file, not alone");
    };
    match role.as_str() {
        "kill-default" => child_kill(false),
        "kill-durable" => child_kill(true),
        "leaks" => child_leaks(),
        other => panic!("unknown role {other}"),
    }
}
