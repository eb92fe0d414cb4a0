//! The C and C++ consumer side: compiles the programs of tests/c (and examples/*.c, *.cpp)
//! with gcc/g++ `-Wall -Wextra -Werror -pedantic` against include/ and target/release, runs
//! them against the local receiver (natively, under valgrind with definite leaks as errors,
//! and built with AddressSanitizer + UndefinedBehaviorSanitizer), and checks here what the
//! receiver accepted. Also: the exported symbols, the version macros, static linking with the
//! libraries of packaging/rarch-logging.pc.in, and `make install` consumed from a scratch
//! project with pkg-config and with CMake.
//!
//! `make test-c` runs this file alone (`cargo test --release --test c_programs`).
//!
//! `make test-cross` (packaging/check-cross.sh) runs the `*_native` scenarios again for each
//! platform of the release, against its tarball: RARCH_LOGGING_LIB names the tarball's
//! library, RARCH_TEST_INCLUDE its include directory, RARCH_TEST_CC and RARCH_TEST_CXX the
//! platform's compilers and RARCH_TEST_RUNNER what runs its programs (qemu-user for aarch64);
//! each is a command with its arguments, split on spaces.

mod common;

use common::{repo, Receiver};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const WARN: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];
const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
    "-g",
];
/// Longest any one program may run (the 160,000-entry run takes ~20 s on 2 busy cores).
const RUN_LIMIT: Duration = Duration::from_secs(170);

// ------------------------------------------------------------------------------------------
// Building and running

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum How {
    Native,
    Valgrind,
    Sanitized,
}

/// The three tests of one scenario: the program run natively, under valgrind, and built with
/// ASan/UBSan.
macro_rules! three_ways {
    ($scenario:ident: $native:ident, $valgrind:ident, $sanitized:ident) => {
        #[test]
        fn $native() {
            $scenario(How::Native);
        }
        #[test]
        fn $valgrind() {
            $scenario(How::Valgrind);
        }
        #[test]
        fn $sanitized() {
            $scenario(How::Sanitized);
        }
    };
}

/// target/release, where `make lib` put librarch_logging.so and .a.
fn lib_dir() -> PathBuf {
    let so = std::env::var("RARCH_LOGGING_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/release/librarch_logging.so"));
    assert!(
        so.exists(),
        "{} is missing: run `make lib` first",
        so.display()
    );
    so.parent().unwrap().to_path_buf()
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_programs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A command from the environment (split on spaces), or `default`.
fn env_command(var: &str, default: &str) -> Vec<String> {
    let v = std::env::var(var).unwrap_or_default();
    let v = if v.trim().is_empty() { default } else { &v };
    v.split_whitespace().map(str::to_owned).collect()
}

/// The compiler command of `src` ($RARCH_TEST_CXX or g++, $RARCH_TEST_CC or gcc) and its
/// language standard.
fn compiler(src: &Path) -> (Vec<String>, &'static str) {
    if src.extension().is_some_and(|e| e == "cpp") {
        (env_command("RARCH_TEST_CXX", "g++"), "-std=c++17")
    } else {
        (env_command("RARCH_TEST_CC", "gcc"), "-std=c11")
    }
}

/// The directories of the headers: $RARCH_TEST_INCLUDE (an installed prefix's include/, which
/// holds them all), else the repo's include/ and bindings/c.
fn include_dirs() -> Vec<PathBuf> {
    match std::env::var_os("RARCH_TEST_INCLUDE") {
        Some(d) if !d.is_empty() => vec![PathBuf::from(d)],
        _ => vec![repo().join("include"), repo().join("bindings/c")],
    }
}

/// Runs a command to completion, panicking with its output if it fails.
fn must(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{cmd:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Compiles `src` (relative to the repo) linked to the shared library, once per process and
/// build kind (sanitized or not).
fn build(src: &str, sanitized: bool) -> PathBuf {
    static CACHE: Mutex<Option<HashMap<(String, bool), PathBuf>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(&(src.to_owned(), sanitized)) {
        return p.clone();
    }
    let path = repo().join(src);
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let exe = out_dir().join(if sanitized {
        format!("{stem}-asan")
    } else {
        stem
    });
    let (cc, std) = compiler(&path);
    let lib = lib_dir();
    let mut cmd = Command::new(&cc[0]);
    cmd.args(&cc[1..]).arg(std).args(WARN);
    if sanitized {
        cmd.args(SANITIZE);
    }
    for d in include_dirs() {
        cmd.arg("-I").arg(d);
    }
    cmd.arg(&path)
        .arg("-pthread")
        .arg("-L")
        .arg(&lib)
        .arg("-lrarch_logging")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe);
    must(&mut cmd, &format!("compiling {src}"));
    cache.insert((src.to_owned(), sanitized), exe.clone());
    exe
}

/// Waits for a command with a deadline; stdout and stderr go to files in `dir`. Returns
/// (success, stdout, stderr).
fn run_with_limit(mut cmd: Command, dir: &Path, tag: &str) -> (bool, String, String) {
    let out_p = dir.join(format!("{tag}.stdout"));
    let err_p = dir.join(format!("{tag}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let end = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_p).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_p).unwrap_or_default();
    match status {
        Some(st) => (st.success(), stdout, stderr),
        None => panic!(
            "{tag} did not finish within {RUN_LIMIT:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    }
}

/// Runs a test program in `dir` (its disk buffer is dir/var/log) against `url` with `key`,
/// natively, under valgrind or (built) with the sanitizers. Panics unless it exits 0.
fn run(src: &str, how: How, args: &[&str], url: &str, key: &str, dir: &Path) -> String {
    let exe = build(src, how == How::Sanitized);
    let mut cmd = match how {
        How::Valgrind => {
            let mut c = Command::new("valgrind");
            c.args([
                "--quiet",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                "--error-exitcode=99",
                "--fair-sched=yes",
            ])
            .arg(&exe);
            c
        }
        _ => {
            // $RARCH_TEST_RUNNER: an emulator for another architecture's programs.
            let runner = env_command("RARCH_TEST_RUNNER", "");
            let mut c = Command::new(runner.first().map_or(exe.as_os_str(), |r| r.as_ref()));
            c.args(runner.iter().skip(1));
            if !runner.is_empty() {
                c.arg(&exe);
            }
            c
        }
    };
    cmd.args(args)
        .current_dir(dir)
        .env("RARCH_LOGGING_URL", url)
        .env("RARCH_LOGGING_API_KEY", key)
        .env_remove("RARCH_LOGGING_DEFAULT_LEVEL")
        // cargo test puts target/release on LD_LIBRARY_PATH, which would win over the
        // program's rpath (another platform's tarball, in make test-cross).
        .env_remove("LD_LIBRARY_PATH")
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=98",
        )
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    let tag = format!(
        "{}-{how:?}",
        Path::new(src).file_stem().unwrap().to_string_lossy()
    );
    let (ok, stdout, stderr) = run_with_limit(cmd, dir, &tag);
    assert!(
        ok,
        "{src} {args:?} ({how:?}) failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // A sanitizer that reports without changing the exit status must still fail the test.
    assert!(
        !stderr.contains("ERROR: AddressSanitizer")
            && !stderr.contains("runtime error:")
            && !stderr.contains("ERROR: LeakSanitizer"),
        "{src} ({how:?}): sanitizer report\n{stderr}"
    );
    stdout
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ------------------------------------------------------------------------------------------
// Checks on what arrived

const FIELDS: [&str; 9] = [
    "level",
    "service",
    "logger_name",
    "message",
    "user_id",
    "tenant_id",
    "request_id",
    "context",
    "client_log_datetime",
];

/// Entries by message; every message at most once, every protocol field present.
fn by_message(entries: &[Value]) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    for e in entries {
        for f in FIELDS {
            assert!(e.get(f).is_some(), "field {f} missing in {e}");
        }
        let msg = e["message"].as_str().unwrap().to_owned();
        assert!(
            m.insert(msg.clone(), e.clone()).is_none(),
            "duplicate: {msg}"
        );
    }
    m
}

fn assert_uuid_v4(s: &str) {
    let u = uuid::Uuid::parse_str(s).unwrap_or_else(|e| panic!("request_id {s:?}: {e}"));
    assert_eq!(u.get_version_num(), 4, "request_id {s} is not a v4 UUID");
    assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "request_id {s}");
    assert_eq!(
        u.hyphenated().to_string(),
        s,
        "request_id {s} not canonical"
    );
}

fn parse_time(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("timestamp {s:?}: {e}"))
}

/// An RFC 3339 UTC ("Z") timestamp within `from`..now (plus a little clock slack).
fn assert_now_utc(s: &str, from: OffsetDateTime) {
    assert!(s.ends_with('Z'), "timestamp {s} is not UTC (Z)");
    let t = parse_time(s);
    let slack = time::Duration::seconds(2);
    let now = OffsetDateTime::now_utc();
    assert!(
        t >= from - slack && t <= now + slack,
        "timestamp {s} not near now ({from} .. {now})"
    );
}

// ------------------------------------------------------------------------------------------
// roundtrip.c: every field exactly, the defaults, filtering

fn roundtrip(how: How) {
    let rx = Receiver::start("roundtrip-key");
    let dir = tempdir();
    let t0 = OffsetDateTime::now_utc();
    run(
        "tests/c/roundtrip.c",
        how,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let entries = rx.entries();
    let m = by_message(&entries);
    let full = "full ü€😀日本 \"quoted\" back\\slash\nnewline\ttab \u{1} ctl";
    let expected: HashSet<&str> = [
        full,
        "nul\0inside",
        "defaults-1",
        "defaults-2",
        "level-DEBUG",
        "level-INFO",
        "level-WARN",
        "level-ERROR",
        "level-FATAL",
        "kept-after-set-level",
        "kept-level-option",
    ]
    .into_iter()
    .collect();
    let got: HashSet<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(got, expected, "messages at the receiver");
    assert_eq!(entries.len(), expected.len());

    // Every field given: the whole body, exactly.
    assert_eq!(
        m[full],
        json!({
            "level": "INFO",
            "service": "c-roundtrip",
            "logger_name": "rt",
            "message": full,
            "user_id": "user-ü€😀日本",
            "tenant_id": "tenant-😀",
            "request_id": "req-explicit-1",
            "context": {
                "a": {"b": [1, 2.5, -30000000000i64, null, true, false, "x\u{0}y"], "c": null},
                "emoji": "😀",
                "esc": "ü😀\"",
                "empty": {},
                "arr": [],
                "deep": {"l1": {"l2": {"l3": {"l4": "bottom"}}}}
            },
            "client_log_datetime": "2026-11-23T22:30:00.123456Z"
        })
    );

    // rarch_log_n: slices, embedded NUL, empty-but-present user_id, offset converted to UTC.
    let n = &m["nul\0inside"];
    assert_eq!(n["level"], "WARN");
    assert_eq!(n["user_id"], "");
    assert_eq!(n["tenant_id"], Value::Null);
    assert_eq!(n["request_id"], "req-n-2");
    assert_eq!(n["context"], json!({"k": [1, {"z": null}]}));
    let ts = n["client_log_datetime"].as_str().unwrap();
    assert!(ts.ends_with('Z'), "{ts} not converted to UTC");
    assert_eq!(
        parse_time(ts),
        parse_time("2026-11-23T22:30:00.5Z"),
        "offset conversion of {ts}"
    );

    // Defaults.
    let mut ids = HashSet::new();
    for msg in ["defaults-1", "defaults-2"] {
        let d = &m[msg];
        assert_eq!(d["level"], "DEBUG");
        assert_eq!(d["service"], "c-roundtrip");
        assert_eq!(
            d["logger_name"], "c-roundtrip",
            "logger_name defaults to service"
        );
        assert_eq!(d["user_id"], Value::Null);
        assert_eq!(d["tenant_id"], Value::Null);
        assert_eq!(d["context"], json!({}));
        let rid = d["request_id"].as_str().unwrap();
        assert_uuid_v4(rid);
        assert!(ids.insert(rid.to_owned()), "request_id reused");
        assert_now_utc(d["client_log_datetime"].as_str().unwrap(), t0);
    }
    for lv in ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
        let e = &m[&format!("level-{lv}")];
        assert_eq!(e["level"], lv);
        assert_eq!(e["logger_name"], "rt");
        assert_uuid_v4(e["request_id"].as_str().unwrap());
    }
    assert_eq!(m["kept-level-option"]["logger_name"], "opt-level");
    assert_eq!(rx.stat("bad_entries"), 0);
    assert_eq!(rx.stat("unauthorized"), 0);
}

three_ways!(roundtrip: roundtrip_native, roundtrip_valgrind, roundtrip_sanitized);

// ------------------------------------------------------------------------------------------
// bad_input.c: every bad input has its status; only the one good entry arrives

fn bad_input(how: How) {
    let rx = Receiver::start("bad-input-key");
    let dir = tempdir();
    let out = run(
        "tests/c/bad_input.c",
        how,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.contains(&format!("header-version={version}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("library-version={version}\n")),
        "{out}"
    );
    let entries = rx.entries();
    assert_eq!(entries.len(), 1, "only the good entry: {entries:?}");
    assert_eq!(entries[0]["message"], "bad-input-survivor");
    assert_eq!(rx.stat("bad_entries"), 0);
}

three_ways!(bad_input: bad_input_native, bad_input_valgrind, bad_input_sanitized);

// ------------------------------------------------------------------------------------------
// auth.c: a wrong key is a 401, counted, and the entries are kept (then replayed)

fn buffer_lines(dir: &Path) -> Vec<Value> {
    let d = dir.join("var/log/c-auth");
    let mut lines = Vec::new();
    for f in std::fs::read_dir(&d).into_iter().flatten().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        // buffer.jsonl, its rotations and a draining buffer.sending-*.jsonl; not the
        // rejected or corrupt files.
        if name.starts_with("buffer")
            && name.ends_with(".jsonl")
            && !name.contains("rejected")
            && !name.contains("corrupt")
        {
            lines.extend(common::read_lines(&f.path()));
        }
    }
    lines
}

fn auth(how: How) {
    const N: usize = 20;
    let rx = Receiver::start("the-right-key");
    let dir = tempdir();
    let out = run(
        "tests/c/auth.c",
        how,
        &["fail", &N.to_string()],
        &rx.url(),
        "a-wrong-key",
        dir.path(),
    );
    assert!(out.contains("flush: "), "{out}");
    assert!(rx.stat("unauthorized") > 0, "the receiver saw no 401");
    assert_eq!(rx.stat("accepted"), 0);
    let kept = buffer_lines(dir.path());
    let msgs: HashSet<String> = kept
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = (0..N).map(|i| format!("auth-{i:03}")).collect();
    assert_eq!(msgs, expected, "the refused entries are in the buffer");
    assert_eq!(kept.len(), N);

    // The right key: the next start replays them all.
    run(
        "tests/c/auth.c",
        how,
        &["replay", &N.to_string()],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let got: HashSet<String> = rx
        .entries()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected, "replayed with the right key");
    assert_eq!(rx.stat("distinct"), N as u64);
    assert!(
        buffer_lines(dir.path()).is_empty(),
        "buffer left after replay"
    );
}

three_ways!(auth: auth_failure_native, auth_failure_valgrind, auth_failure_sanitized);

// ------------------------------------------------------------------------------------------
// threads.c: many threads, one logger, everything arrives

fn thread_messages(entries: &[Value]) -> HashSet<String> {
    entries
        .iter()
        .map(|e| {
            assert_eq!(e["service"], "c-threads");
            let m = e["message"].as_str().unwrap();
            // "tTT-SSSSSS" with context {"thread":T,"seq":S}
            let (t, s) = m[1..].split_once('-').unwrap();
            assert_eq!(
                e["context"],
                json!({"thread": t.parse::<u64>().unwrap(), "seq": s.parse::<u64>().unwrap()}),
                "{m}"
            );
            m.to_owned()
        })
        .collect()
}

/// A receiver that also appends what it accepts to dir/accepted.jsonl: GET /entries is
/// capped at 10 MiB by the test client, too little for 160,000 entries.
fn big_receiver(dir: &Path) -> (Receiver, PathBuf) {
    let out = dir.join("accepted.jsonl");
    let rx = Receiver::start_with("threads-key", &["-out", out.to_str().unwrap()]);
    (rx, out)
}

fn threads_all_arrive(how: How, threads: usize, per_thread: usize) {
    let dir = tempdir();
    let (rx, accepted) = big_receiver(dir.path());
    let out = run(
        "tests/c/threads.c",
        how,
        &[&threads.to_string(), &per_thread.to_string(), "block"],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let total = threads * per_thread;
    assert!(
        out.contains(&format!("accepted={total} queue_full=0")),
        "{out}"
    );
    let entries = common::read_lines(&accepted);
    let got = thread_messages(&entries);
    let expected: HashSet<String> = (0..threads)
        .flat_map(|t| (0..per_thread).map(move |i| format!("t{t:02}-{i:06}")))
        .collect();
    assert_eq!(got.len(), total, "distinct entries at the receiver");
    assert_eq!(got, expected);
    assert_eq!(rx.stat("distinct"), total as u64);
    if entries.len() > total {
        eprintln!(
            "note: {} duplicate deliveries (at-least-once)",
            entries.len() - total
        );
    }
}

/// 16 threads x 10,000 entries: all 160,000 arrive (on_full=block: back-pressure, no drop).
#[test]
fn threads_160k_all_arrive_native() {
    threads_all_arrive(How::Native, 16, 10_000);
}
/// 4 threads x 2,000 entries: the same under an emulator (make test-cross), in seconds.
#[test]
fn threads_8k_all_arrive_native() {
    threads_all_arrive(How::Native, 4, 2_000);
}
#[test]
fn threads_sanitized() {
    threads_all_arrive(How::Sanitized, 16, 1_000);
}
#[test]
fn threads_valgrind() {
    threads_all_arrive(How::Valgrind, 16, 100);
}

/// The default on_full=spill never blocks: a burst can overrun the queue and its overflow.
/// Then every refusal must have been reported (RARCH_ERR_QUEUE_FULL, dropped_queue_full) and
/// every accepted entry must arrive: no silent loss.
#[test]
fn threads_160k_default_spill_accounts_for_every_entry() {
    let dir = tempdir();
    let (rx, accepted_file) = big_receiver(dir.path());
    let out = run(
        "tests/c/threads.c",
        How::Native,
        &["16", "10000"],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let accepted: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("accepted="))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no accepted= line in {out}"));
    let got = thread_messages(&common::read_lines(&accepted_file));
    assert_eq!(got.len(), accepted, "accepted entries at the receiver");
    assert_eq!(rx.stat("distinct"), accepted as u64);
    if accepted < 160_000 {
        eprintln!(
            "note: default on_full=spill refused {} of 160000 entries under a 16-thread burst",
            160_000 - accepted
        );
    }
}

// ------------------------------------------------------------------------------------------
// cpp_wrapper.cpp: the C++ wrapper

fn cpp_wrapper(how: How) {
    let rx = Receiver::start("cpp-key");
    let dir = tempdir();
    run(
        "tests/c/cpp_wrapper.cpp",
        how,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let entries = rx.entries();
    let m = by_message(&entries);
    let expected: HashSet<&str> = [
        "cpp-context",
        "message a\0b",
        "cpp-debug",
        "cpp-error",
        "cpp-fatal",
        "cpp-ec-ok",
        "cpp-from-a",
        "cpp-from-b",
        "cpp-traced",
    ]
    .into_iter()
    .collect();
    let got: HashSet<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(got, expected);
    let c = &m["cpp-context"];
    assert_eq!(c["level"], "INFO");
    assert_eq!(c["logger_name"], "cpp");
    assert_eq!(c["user_id"], "user-cpp");
    assert_eq!(c["tenant_id"], "tenant-cpp");
    assert_eq!(c["request_id"], "req-cpp-1");
    assert_eq!(
        c["context"],
        json!({
            "order": 42,
            "negative": -7,
            "big": 18446744073709551615u64,
            "ratio": 0.25,
            "ok": true,
            "no": false,
            "nothing": null,
            "null_cstr": null,
            "quote": "say \"hi\"",
            "backslash": "C:\\path\\file",
            "controls": "nl\ncr\rtab\tbs\u{8}ff\u{c}nul\u{0}\u{1f}\u{7f}",
            "unicode": "ü€😀",
            "k\"ey": "view",
            "opt_set": 5,
            "opt_empty": null,
            "list": [1, "two", 3.5, null, {"in": "array"}],
            "nested": {"level2": {"level3": [true]}},
            "raw": {"pre": "built"}
        })
    );
    let w = &m["message a\0b"];
    assert_eq!(w["level"], "WARN");
    assert_eq!(w["client_log_datetime"], "2026-11-23T22:30:00.123456Z");
    assert_eq!(w["user_id"], Value::Null);
    let e = &m["cpp-error"];
    assert_eq!(
        (e["level"].as_str(), &e["user_id"]),
        (Some("ERROR"), &json!(""))
    );
    assert_eq!(e["context"], json!({"code": 500}));
    assert_eq!(m["cpp-debug"]["level"], "DEBUG");
    assert_eq!(m["cpp-fatal"]["level"], "FATAL");
    assert_eq!(m["cpp-from-a"]["logger_name"], "a");
    assert_eq!(m["cpp-from-b"]["logger_name"], "b");
    let t = &m["cpp-traced"];
    assert_eq!(t["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(t["span_id"], "00f067aa0ba902b7");
    assert_eq!(t["trace_flags"], 1);
    assert!(m["cpp-context"].get("trace_id").is_none());
}

three_ways!(cpp_wrapper: cpp_wrapper_native, cpp_wrapper_valgrind, cpp_wrapper_sanitized);

// ------------------------------------------------------------------------------------------
// The shared library's interface

#[test]
fn shared_library_exports_only_rarch_symbols() {
    let so = lib_dir().join("librarch_logging.so");
    let out = must(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&so),
        "nm -D",
    );
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(names.len() >= 14, "too few exports: {names:?}");
    let foreign: Vec<&&str> = names.iter().filter(|n| !n.starts_with("rarch_")).collect();
    assert!(
        foreign.is_empty(),
        "exports other than rarch_*: {foreign:?}"
    );
    // The functions the header declares (outside its comments) and the exports are the same.
    let header = std::fs::read_to_string(repo().join("include/rarch_logging.h")).unwrap();
    let declared: Vec<&str> = header
        .lines()
        .filter(|l| !l.trim_start().starts_with(['*', '/', '#']))
        .filter_map(|l| {
            // `<type> <name>(...`: the word just before the first parenthesis.
            let name = l[..l.find('(')?].rsplit([' ', '*']).next()?;
            name.starts_with("rarch_").then_some(name)
        })
        .collect();
    assert!(declared.contains(&"rarch_flush_msg"), "{declared:?}");
    for f in &declared {
        assert!(names.contains(f), "{f} is in the header, not exported");
    }
    for f in &names {
        assert!(declared.contains(f), "{f} is exported, not in the header");
    }
    let dynamic = must(Command::new("readelf").arg("-d").arg(&so), "readelf -d");
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    assert!(
        dynamic.contains(&format!("Library soname: [librarch_logging.so.{major}]")),
        "{dynamic}"
    );
}

#[test]
fn header_version_matches_cargo_toml() {
    let header = std::fs::read_to_string(repo().join("include/rarch_logging.h")).unwrap();
    let define = |name: &str| -> String {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("no {name} in the header"))
            .trim()
            .to_owned()
    };
    assert_eq!(
        define("RARCH_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define("RARCH_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define("RARCH_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        define("RARCH_VERSION"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
    // rarch_version() against the header: bad_input.c prints both (see bad_input_*).
}

// ------------------------------------------------------------------------------------------
// Examples

#[test]
fn examples_build_and_deliver() {
    let rx = Receiver::start("examples-key");
    let dir = tempdir();
    let out = run(
        "examples/minimal.c",
        How::Native,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    assert!(out.is_empty(), "{out}");
    let out = run(
        "examples/threaded.c",
        How::Native,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    assert!(out.contains("logged 101, delivered 101"), "{out}");
    let out = run(
        "examples/cpp_example.cpp",
        How::Native,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    assert!(out.contains("delivered 3 entries"), "{out}");
    // events.c prints the event of each entry: one of its three is refused.
    rx.fault(r#"{"mode":"status","status":400,"count":1}"#);
    let out = run(
        "examples/events.c",
        How::Native,
        &[],
        &rx.url(),
        &rx.key,
        dir.path(),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let dead = lines
        .iter()
        .filter(|l| l.starts_with("DEAD_LETTERED status=400 count=1 request_id=order-"))
        .count();
    let delivered = lines
        .iter()
        .filter(|l| l.starts_with("DELIVERED status=2") && l.contains(" request_id=order-"))
        .count();
    assert_eq!((dead, delivered), (1, 2), "{out}");
    for id in ["order-1", "order-2", "order-3"] {
        assert!(out.contains(&format!("request_id={id} ")), "{id}: {out}");
    }
    let mut per_service: HashMap<String, usize> = HashMap::new();
    for e in rx.entries() {
        *per_service
            .entry(e["service"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_service.get("minimal-example"), Some(&1));
    assert_eq!(per_service.get("threaded-example"), Some(&101));
    assert_eq!(per_service.get("cpp-example"), Some(&3));
    assert_eq!(per_service.get("events-example"), Some(&2));
    // demo.c (make demo) compiles with the same flags.
    build("examples/demo.c", false);
}

// ------------------------------------------------------------------------------------------
// Static linking

/// The Libs.private line of packaging/rarch-logging.pc.in.
fn libs_private() -> Vec<String> {
    let pc = std::fs::read_to_string(repo().join("packaging/rarch-logging.pc.in")).unwrap();
    pc.lines()
        .find_map(|l| l.strip_prefix("Libs.private:"))
        .expect("Libs.private in rarch-logging.pc.in")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn needed(exe: &Path) -> String {
    must(Command::new("readelf").arg("-d").arg(exe), "readelf -d")
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn static_archive_links_with_libs_private_and_delivers() {
    let rx = Receiver::start("static-key");
    let dir = tempdir();
    let exe = dir.path().join("minimal-static");
    let mut cmd = Command::new("gcc");
    cmd.arg("-std=c11")
        .args(WARN)
        .arg("-I")
        .arg(repo().join("include"))
        .arg(repo().join("examples/minimal.c"))
        .arg(lib_dir().join("librarch_logging.a"))
        .args(libs_private())
        .arg("-o")
        .arg(&exe);
    must(&mut cmd, "static link");
    let needed = needed(&exe);
    assert!(!needed.contains("rarch"), "linked to the .so:\n{needed}");
    let mut cmd = Command::new(&exe);
    cmd.current_dir(dir.path())
        .env("RARCH_LOGGING_URL", rx.url())
        .env("RARCH_LOGGING_API_KEY", &rx.key)
        .env_remove("LD_LIBRARY_PATH");
    let (ok, out, err) = run_with_limit(cmd, dir.path(), "minimal-static");
    assert!(ok, "{out}\n{err}");
    let entries = rx.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["message"], "hello from C");
}

// ------------------------------------------------------------------------------------------
// `make install` consumed from a scratch project: pkg-config and CMake

const CONSUMER_C: &str = r#"#include <stdio.h>
#include <rarch_logging.h>
#include <rarch_logging_macros.h>
int main(int argc, char **argv) {
    const char *service = argc > 1 ? argv[1] : "consumer";
    rarch_logger *log = rarch_logger_new(service, NULL, NULL);
    if (!log) return 2;
    rarch_status s = RARCH_INFO_CTX(log, "from the installed package", "{\"v\":\"" RARCH_VERSION "\"}");
    if (s == RARCH_OK) s = rarch_flush(log, 30000);
    rarch_logger_free(log);
    printf("%s: %s\n", service, rarch_status_str(s));
    return s == RARCH_OK ? 0 : 1;
}
"#;

const CONSUMER_CPP: &str = r#"#include <rarch_logging.hpp>
#include <iostream>
int main() {
    rarch::Logger log("cmake-cxx");
    log.info("from the installed package", rarch::Fields().context(rarch::Context().add("lang", "c++")));
    log.flush(std::chrono::seconds(30));
    std::cout << "cmake-cxx: ok\n";
}
"#;

const CMAKELISTS: &str = r#"cmake_minimum_required(VERSION 3.16)
project(rarch_consumer C CXX)
find_package(rarch_logging 0.1 REQUIRED)
add_compile_options(-Wall -Wextra -Werror -pedantic)
add_executable(c_consumer main.c)
target_link_libraries(c_consumer PRIVATE rarch_logging::rarch_logging)
add_executable(static_consumer main.c)
target_link_libraries(static_consumer PRIVATE rarch_logging::rarch_logging_static)
add_executable(cxx_consumer main.cpp)
target_link_libraries(cxx_consumer PRIVATE rarch_logging::cxx)
"#;

fn run_consumer(exe: &Path, args: &[&str], rx: &Receiver, dir: &Path) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(dir)
        .env("RARCH_LOGGING_URL", rx.url())
        .env("RARCH_LOGGING_API_KEY", &rx.key)
        .env_remove("LD_LIBRARY_PATH");
    let tag = exe.file_name().unwrap().to_string_lossy().into_owned();
    let (ok, out, err) = run_with_limit(cmd, dir, &tag);
    assert!(ok, "{} failed\n{out}\n{err}", exe.display());
    out
}

#[test]
fn installed_package_works_with_pkg_config_and_cmake() {
    let tmp = tempdir();
    let prefix = tmp.path().join("prefix");
    let proj = tmp.path().join("project");
    std::fs::create_dir_all(&proj).unwrap();
    // `-o lib`: the library is built already (make test builds it first); do not run cargo.
    must(
        Command::new("make")
            .current_dir(repo())
            .args(["-s", "-o", "lib", "install"])
            .arg(format!("PREFIX={}", prefix.display())),
        "make install",
    );
    let libdir = prefix.join("lib");
    for f in [
        "lib/librarch_logging.so",
        "lib/librarch_logging.so.0",
        "lib/librarch_logging.a",
        "include/rarch_logging.h",
        "include/rarch_logging.hpp",
        "include/rarch_logging_macros.h",
        "lib/pkgconfig/rarch-logging.pc",
        "lib/cmake/rarch_logging/rarch_loggingConfig.cmake",
        "lib/cmake/rarch_logging/rarch_loggingConfigVersion.cmake",
    ] {
        assert!(prefix.join(f).exists(), "make install did not install {f}");
    }
    std::fs::write(proj.join("main.c"), CONSUMER_C).unwrap();
    std::fs::write(proj.join("main.cpp"), CONSUMER_CPP).unwrap();
    std::fs::write(proj.join("CMakeLists.txt"), CMAKELISTS).unwrap();
    let rx = Receiver::start("install-key");

    // pkg-config
    let pkg = |args: &[&str]| -> Vec<String> {
        must(
            Command::new("pkg-config")
                .env("PKG_CONFIG_PATH", libdir.join("pkgconfig"))
                .args(args)
                .arg("rarch-logging"),
            "pkg-config",
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect()
    };
    assert_eq!(pkg(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let static_libs = pkg(&["--static", "--libs"]);
    for l in libs_private() {
        assert!(
            static_libs.contains(&l),
            "{l} not in pkg-config --static: {static_libs:?}"
        );
    }
    let dynamic = proj.join("pc-dynamic");
    must(
        Command::new("gcc")
            .current_dir(&proj)
            .arg("-std=c11")
            .args(WARN)
            .arg("main.c")
            .args(pkg(&["--cflags", "--libs"]))
            .arg(format!("-Wl,-rpath,{}", pkg(&["--variable=libdir"])[0]))
            .arg("-o")
            .arg(&dynamic),
        "pkg-config build",
    );
    assert!(needed(&dynamic).contains("librarch_logging.so.0"));
    run_consumer(&dynamic, &["pc-dynamic"], &rx, &proj);

    // pkg-config, static: the archive itself, then what `pkg-config --static` lists
    // (--as-needed keeps its -lrarch_logging from adding the .so).
    let stat = proj.join("pc-static");
    must(
        Command::new("gcc")
            .current_dir(&proj)
            .arg("-std=c11")
            .args(WARN)
            .arg("main.c")
            .args(pkg(&["--cflags"]))
            .arg(libdir.join("librarch_logging.a"))
            .arg("-Wl,--as-needed")
            .args(&static_libs)
            .arg("-o")
            .arg(&stat),
        "pkg-config static build",
    );
    assert!(!needed(&stat).contains("rarch"), "{}", needed(&stat));
    run_consumer(&stat, &["pc-static"], &rx, &proj);

    // CMake
    let bdir = tmp.path().join("build");
    must(
        Command::new("cmake")
            .arg("-S")
            .arg(&proj)
            .arg("-B")
            .arg(&bdir)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg("-DCMAKE_BUILD_TYPE=Release"),
        "cmake configure",
    );
    must(
        Command::new("cmake")
            .arg("--build")
            .arg(&bdir)
            .args(["-j", "2"]),
        "cmake build",
    );
    assert!(needed(&bdir.join("c_consumer")).contains("librarch_logging.so.0"));
    assert!(!needed(&bdir.join("static_consumer")).contains("rarch"));
    run_consumer(&bdir.join("c_consumer"), &["cmake-c"], &rx, &proj);
    run_consumer(&bdir.join("static_consumer"), &["cmake-static"], &rx, &proj);
    run_consumer(&bdir.join("cxx_consumer"), &[], &rx, &proj);

    let services: HashSet<String> = rx
        .entries()
        .iter()
        .map(|e| {
            assert_eq!(e["message"], "from the installed package");
            e["service"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: HashSet<String> = [
        "pc-dynamic",
        "pc-static",
        "cmake-c",
        "cmake-static",
        "cmake-cxx",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(services, expected);
    assert_eq!(rx.stat("accepted"), 5);

    // A version the package does not satisfy is refused.
    let bad = tmp.path().join("badver");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(rarch_logging 1.0 REQUIRED)\n",
    )
    .unwrap();
    let st = Command::new("cmake")
        .arg("-S")
        .arg(&bad)
        .arg("-B")
        .arg(bad.join("b"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .output()
        .unwrap();
    assert!(
        !st.status.success(),
        "find_package(rarch_logging 1.0) accepted 0.x"
    );

    must(
        Command::new("make")
            .current_dir(repo())
            .args(["-s", "-o", "lib", "uninstall"])
            .arg(format!("PREFIX={}", prefix.display())),
        "make uninstall",
    );
    for f in [
        "lib/librarch_logging.so",
        "lib/librarch_logging.a",
        "include/rarch_logging.h",
        "include/rarch_logging.hpp",
        "lib/pkgconfig/rarch-logging.pc",
        "lib/cmake/rarch_logging",
    ] {
        assert!(!prefix.join(f).exists(), "make uninstall left {f}");
    }
}
