//! Bad input over the C API: property tests that call the `extern "C"` functions
//! with random bytes as every string, random levels, NULLs, invalid UTF-8 and JSON, bad
//! timestamps, unknown option keys and bad values, plus fixed cases for huge messages and deep
//! nesting. Every call returns a status; after every failure `rarch_last_error` holds a fresh,
//! non-empty message; nothing crashes; what is accepted is a well-formed entry.
//!
//! The number of cases is bounded (see `CASES_*`) so that `make test` stays fast; set
//! PROPTEST_CASES to run more by hand.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rarch_logging::ffi::rarch_status::*;
use rarch_logging::ffi::*;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr::null;

const CASES_LOG: u32 = 3000;
const CASES_OPTIONS: u32 = 600;
const CASES_SERVICE: u32 = 200;
const CASES_LOGGER_OPTIONS: u32 = 40;
const KEY: &str = "fuzz-API-KEY-0b7e41d2c9-never-echoed";

fn cases(n: u32) -> Config {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    Config {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    }
}

fn last_error() -> String {
    // SAFETY: NULL with length 0 is allowed; then a buffer of the returned size + 1.
    let n = unsafe { rarch_last_error(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    // SAFETY: `buf` holds n + 1 bytes.
    let m = unsafe { rarch_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(m, n);
    assert_eq!(buf[n], 0, "not NUL-terminated");
    buf.truncate(n);
    String::from_utf8(buf).expect("the error message is UTF-8")
}

/// Sets this thread's last error to a known message ("service is NULL"), so a failure that
/// sets none is caught. (No fuzzed call passes a NULL service.)
fn prime_error() -> String {
    // SAFETY: a NULL service is a documented error.
    let l = unsafe { rarch_logger_new(null(), null(), std::ptr::null()) };
    assert!(l.is_null());
    last_error()
}

/// A failure must come with a fresh, non-empty message, without the API key.
fn check_failure(st: rarch_status, primed: &str, what: &str) -> Result<(), TestCaseError> {
    let code = st as i32;
    prop_assert!((0..=15).contains(&code), "{what}: status {code}");
    if st != RARCH_OK {
        let m = last_error();
        prop_assert!(!m.is_empty(), "{what}: {st:?} with an empty message");
        prop_assert!(m != primed, "{what}: {st:?} left a stale message: {m}");
        prop_assert!(!m.contains(KEY), "{what}: the API key is in {m}");
    }
    Ok(())
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Bytes as a C string: cut at the first NUL, as C would see them.
fn cstr(b: &[u8]) -> CString {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Text that is sometimes valid UTF-8 and sometimes not.
fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => any::<String>().prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (any::<String>(), prop::sample::select(vec![
            &b"\xff"[..], b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
        ]), any::<prop::sample::Index>())
            .prop_map(|(s, bad, at)| {
                let mut v = s.into_bytes();
                let i = if v.is_empty() { 0 } else { at.index(v.len() + 1) };
                // Keep `i` on a char boundary of the valid part.
                let i = (0..=i).rev().find(|&j| j == v.len() || (v[j] & 0xC0) != 0x80).unwrap_or(0);
                v.splice(i..i, bad.iter().copied());
                v
            }),
        1 => Just(b"line\nbreak\r\n\t\"quote\\ \x01\x1f".to_vec()),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![1 => Just(None), 3 => text().prop_map(Some)]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn context() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        // Valid objects, on one line or pretty-printed over several.
        3 => (proptest::collection::btree_map(any::<String>(), json_value(), 0..5), any::<bool>())
            .prop_map(|(m, pretty)| {
                let v = serde_json::Value::Object(m.into_iter().collect());
                Some(if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.unwrap())
            }),
        // Valid JSON that is not an object.
        1 => json_value().prop_map(|v| Some(serde_json::to_vec(&v).unwrap())),
        // Nesting from shallow to far past any recursion limit.
        1 => (1usize..3000, any::<bool>()).prop_map(|(d, arr)| {
            let (o, cl) = if arr { ("[", "]") } else { ("{\"a\":", "}") };
            Some(format!("{{\"n\":{}1{}}}", o.repeat(d), cl.repeat(d)).into_bytes())
        }),
        1 => prop::sample::select(vec![
            "{", "}", "{}x", "{} {}", "{\"a\":NaN}", "{\"a\":1,}", "{'a':1}", "{\"a\"}", "",
            " ", "null", "{\"\\ud800\":1}", "{\"a\":\"\\u00\"}", "{\"a\":1e999999}",
        ]).prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => text().prop_map(Some),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        2 => prop::sample::select(vec![
            "2024-05-22T22:30:00Z", "2024-05-22T22:30:00.123456Z", "2026-11-23T22:30:00+05:30",
            "2024-02-29T00:00:00-12:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
            "0000-01-01T00:00:00Z", "2024-12-31T23:59:60Z", "2024-05-22t22:30:00z",
            "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-22 22:30:00Z",
            "2024-05-22T22:30:00", "2024-05-22", "22:30:00Z", "yesterday", "", "2024-05-22T25:00:00Z",
            "+2024-05-22T22:30:00Z", "2024-05-22T22:30:00+24:00", "2024-05-22T22:30:00.Z",
        ]).prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => text().prop_map(Some),
    ]
}

fn level() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..5i32, 1 => any::<i32>(), 1 => prop::sample::select(vec![-1, 5, i32::MIN, i32::MAX])]
}

#[derive(Debug, Clone)]
struct LogCase {
    level: i32,
    message: Option<Vec<u8>>,
    user_id: Option<Vec<u8>>,
    tenant_id: Option<Vec<u8>>,
    request_id: Option<Vec<u8>>,
    context: Option<Vec<u8>>,
    time: Option<Vec<u8>>,
    /// rarch_log_n (pointer + length) instead of rarch_log (NUL-terminated).
    counted: bool,
    null_logger: bool,
}

fn log_case() -> impl Strategy<Value = LogCase> {
    (
        level(),
        prop_oneof![1 => Just(None), 8 => text().prop_map(Some)],
        (opt_text(), opt_text(), opt_text()),
        context(),
        timestamp(),
        any::<bool>(),
        prop::bool::weighted(0.03),
    )
        .prop_map(
            |(
                level,
                message,
                (user_id, tenant_id, request_id),
                context,
                time,
                counted,
                null_logger,
            )| {
                LogCase {
                    level,
                    message,
                    user_id,
                    tenant_id,
                    request_id,
                    context,
                    time,
                    counted,
                    null_logger,
                }
            },
        )
}

/// Whether the core must accept the case (as the C caller sees the strings), by the contract;
/// None where the contract leaves it open (a context nested deeper than 128 levels, see
/// `deep_context_is_judged_the_same_on_one_line_and_over_several`).
fn must_accept(k: &LogCase) -> Option<bool> {
    let seen = |b: &Option<Vec<u8>>| -> Option<Vec<u8>> {
        b.as_ref().map(|v| {
            if k.counted {
                v.clone()
            } else {
                cstr(v).into_bytes()
            }
        })
    };
    let utf8 = |b: &Option<Vec<u8>>| seen(b).is_none_or(|v| std::str::from_utf8(&v).is_ok());
    if k.null_logger || k.message.is_none() || !(0..5).contains(&k.level) {
        return Some(false);
    }
    if ![
        &k.message,
        &k.user_id,
        &k.tenant_id,
        &k.request_id,
        &k.context,
        &k.time,
    ]
    .iter()
    .all(|f| utf8(f))
    {
        return Some(false);
    }
    if let Some(t) = seen(&k.time) {
        let t = String::from_utf8(t).unwrap();
        if time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_err()
        {
            return Some(false);
        }
    }
    if let Some(ctx) = seen(&k.context) {
        match serde_json::from_slice::<serde_json::Value>(&ctx) {
            Ok(serde_json::Value::Object(_)) => {}
            // Open: what JSON's grammar allows but serde_json's Value refuses (nesting past 128
            // levels, numbers past f64, lone surrogate escapes).
            Err(_) if serde_json::from_slice::<&serde_json::value::RawValue>(&ctx).is_ok() => {
                return None
            }
            _ => return Some(false),
        }
    }
    Some(true)
}

/// The lines of every buffer file of a service directory (active, rotated, claimed), once the
/// replay thread of a freed logger has put back what it had claimed.
fn buffer_text(svc: &Path) -> String {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(svc)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    while std::time::Instant::now() < end
        && files()
            .iter()
            .any(|p| p.to_string_lossy().contains("buffer.sending-"))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut text = String::new();
    for p in files() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".jsonl") && !name.contains("rejected") && !name.contains("corrupt") {
            text += &std::fs::read_to_string(&p).unwrap();
        }
    }
    text
}

#[derive(Clone, Copy)]
struct Lg(*mut rarch_logger);

/// A logger whose server is down: what it accepts ends in its buffer file, checked afterwards.
fn logger(dir: &Path, service: &str, extra: &[(&str, &str)]) -> Lg {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let url = format!("http://{dead}/log");
    let mut kv = vec![
        ("url", url.as_str()),
        ("api_key", KEY),
        ("buffer_dir", dir.to_str().unwrap()),
        ("close_timeout_ms", "0"),
        ("max_retries", "0"),
        ("backoff_initial_ms", "50"),
        ("backoff_max_ms", "1000"),
        ("queue_capacity", "100000"),
        ("timeout_ms", "500"),
    ];
    kv.extend_from_slice(extra);
    // SAFETY: plain calls of the C API with valid arguments.
    unsafe {
        let o = rarch_options_new();
        assert!(!o.is_null());
        for (k, v) in &kv {
            assert_eq!(
                rarch_options_set(o, c(k).as_ptr(), c(v).as_ptr()),
                RARCH_OK,
                "{k}"
            );
        }
        let l = rarch_logger_new(c(service).as_ptr(), null(), o);
        rarch_options_free(o);
        assert!(!l.is_null(), "{}", last_error());
        Lg(l)
    }
}

fn stats(l: Lg) -> rarch_statistics {
    let mut s = rarch_statistics {
        size: std::mem::size_of::<rarch_statistics>(),
        ..Default::default()
    };
    // SAFETY: a live logger.
    assert_eq!(unsafe { rarch_stats(l.0, &mut s) }, RARCH_OK);
    s
}

fn run_log(l: Lg, k: &LogCase) -> rarch_status {
    let lg = if k.null_logger {
        std::ptr::null_mut()
    } else {
        l.0
    };
    if k.counted {
        let s = |b: &Option<Vec<u8>>| match b {
            None => rarch_str {
                ptr: null(),
                len: 0,
            },
            Some(v) => rarch_str {
                // A non-NULL pointer even for an empty string.
                ptr: if v.is_empty() {
                    c"".as_ptr()
                } else {
                    v.as_ptr().cast::<c_char>()
                },
                len: v.len(),
            },
        };
        let e = rarch_entry {
            message: s(&k.message),
            user_id: s(&k.user_id),
            tenant_id: s(&k.tenant_id),
            request_id: s(&k.request_id),
            context_json: s(&k.context),
            client_log_datetime: s(&k.time),
        };
        // SAFETY: every pointer is NULL or `len` readable bytes, alive for the call.
        unsafe { rarch_log_n(lg, k.level, &e) }
    } else {
        let cs = |b: &Option<Vec<u8>>| b.as_ref().map(|v| cstr(v));
        let (m, u, t, r, x, d) = (
            cs(&k.message),
            cs(&k.user_id),
            cs(&k.tenant_id),
            cs(&k.request_id),
            cs(&k.context),
            cs(&k.time),
        );
        let p = |o: &Option<CString>| o.as_ref().map_or(null(), |s| s.as_ptr());
        // SAFETY: NULL or NUL-terminated strings alive for the call.
        unsafe { rarch_log(lg, k.level, p(&m), p(&u), p(&t), p(&r), p(&x), p(&d)) }
    }
}

#[test]
fn rarch_log_never_crashes_and_accepts_only_valid_entries() {
    let dir = tempfile::tempdir().unwrap();
    let l = logger(dir.path(), "svc-fuzz-log", &[]);
    let ok = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(cases(CASES_LOG));
    let r = runner.run(&log_case(), |k| {
        let primed = prime_error();
        let st = run_log(l, &k);
        check_failure(st, &primed, "rarch_log")?;
        let expect = must_accept(&k);
        prop_assert!(
            expect.is_none_or(|e| e == (st == RARCH_OK)),
            "{:?} where {:?} was expected: {}",
            expect,
            st,
            if st == RARCH_OK {
                String::new()
            } else {
                last_error()
            }
        );
        if st == RARCH_OK {
            ok.set(ok.get() + 1);
        } else if k.null_logger {
            prop_assert_eq!(st, RARCH_ERR_NULL_ARGUMENT);
        }
        Ok(())
    });
    r.unwrap();
    let s = stats(l);
    let ok = ok.get();
    assert_eq!(s.logged, ok);
    // SAFETY: last call on the logger: it writes what it holds to the buffer file.
    unsafe { rarch_logger_free(l.0) };
    // Everything accepted is a well-formed entry line, exactly once.
    let text = buffer_text(&dir.path().join("svc-fuzz-log"));
    let mut lines = 0;
    for line in text.lines() {
        // Raw values: the context may be nested deeper than serde_json's Value allows.
        let o: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for f in [
            "level",
            "service",
            "logger_name",
            "message",
            "user_id",
            "tenant_id",
            "request_id",
            "context",
            "client_log_datetime",
        ] {
            assert!(o.contains_key(f), "{f} missing in {line}");
        }
        assert!(o["context"].get().starts_with('{'));
        lines += 1;
    }
    assert_eq!(lines, ok, "accepted entries and buffer lines differ");
    assert!(!text.contains(KEY));
}

#[test]
fn huge_messages_and_deep_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let l = logger(dir.path(), "svc-fuzz-huge", &[]);
    let big = "m".repeat(10 << 20);
    let cbig = c(&big);
    let n = null();
    // SAFETY: a live logger and NUL-terminated strings.
    unsafe {
        let primed = prime_error();
        let st = rarch_log(l.0, 1, cbig.as_ptr(), n, n, n, n, n);
        assert_eq!(st, RARCH_ERR_INVALID_ARGUMENT);
        let m = last_error();
        assert!(m.contains("max_entry_bytes") && m != primed, "{m}");
        // The same through rarch_log_n, with invalid UTF-8 at the very end.
        let mut bad = big.clone().into_bytes();
        bad.push(0xff);
        let e = rarch_entry {
            message: rarch_str {
                ptr: bad.as_ptr().cast(),
                len: bad.len(),
            },
            user_id: rarch_str { ptr: n, len: 0 },
            tenant_id: rarch_str { ptr: n, len: 0 },
            request_id: rarch_str { ptr: n, len: 0 },
            context_json: rarch_str { ptr: n, len: 0 },
            client_log_datetime: rarch_str { ptr: n, len: 0 },
        };
        assert_eq!(rarch_log_n(l.0, 1, &e), RARCH_ERR_INVALID_UTF8);
        assert!(last_error().contains("10485760"), "{}", last_error());
        // Nesting a million deep: refused as invalid JSON, not a stack overflow.
        for (o, cl) in [("{\"a\":", "}"), ("[", "]")] {
            let deep = c(&format!(
                "{{\"x\":{}1{}}}",
                o.repeat(1_000_000),
                cl.repeat(1_000_000)
            ));
            let st = rarch_log(l.0, 1, c"deep".as_ptr(), n, n, n, deep.as_ptr(), n);
            // Refused: as invalid JSON, or as above max_entry_bytes (6 MB of JSON).
            assert!(
                matches!(st, RARCH_ERR_INVALID_JSON | RARCH_ERR_INVALID_ARGUMENT),
                "{st:?}: {}",
                last_error()
            );
        }
        // 100 deep is fine.
        let ok = c(&format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100)));
        assert_eq!(
            rarch_log(l.0, 1, c"deep ok".as_ptr(), n, n, n, ok.as_ptr(), n),
            RARCH_OK,
            "{}",
            last_error()
        );
        rarch_logger_free(l.0);
    }
    // A 10 MiB message is fine when max_entry_bytes allows it.
    let l = logger(
        dir.path(),
        "svc-fuzz-huge2",
        &[("max_entry_bytes", "16777216")],
    );
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            rarch_log(l.0, 1, cbig.as_ptr(), n, n, n, n, n),
            RARCH_OK,
            "{}",
            last_error()
        );
        rarch_logger_free(l.0);
    }
    let text = std::fs::read_to_string(dir.path().join("svc-fuzz-huge2/buffer.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["message"].as_str().unwrap().len(), 10 << 20);
}

fn known_keys() -> Vec<&'static str> {
    rarch_logging::config::KEYS.iter().map(|k| k.0).collect()
}

fn option_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        3 => text().prop_map(Some),
        3 => prop::sample::select(vec![
            "", " ", "0", "1", "2", "-1", "+5", "1e3", "0x10", "18446744073709551616", "99999999999999999999",
            "4294967296", "true", "TRUE", "yes", "off", "maybe", "DEBUG", "info", "Warn", "trace", "threaded",
            "blocking", "spill", "block", "drop", "stdout", "stderr", "off", "http://", "https://x",
            "ftp://x", "http://127.0.0.1:1/log", "/nonexistent/ca.pem", " 100 ", "1.5", "١٢", "NaN",
        ]).prop_map(|s| Some(s.as_bytes().to_vec())),
    ]
}

#[test]
fn rarch_options_set_never_crashes_and_names_the_key() {
    let keys = known_keys();
    let key = prop_oneof![
        3 => prop::sample::select(keys.clone()).prop_map(|k| Some(k.as_bytes().to_vec())),
        1 => Just(None),
        2 => text().prop_map(Some),
        1 => prop::sample::select(keys).prop_map(|k| Some(k.to_uppercase().into_bytes())),
    ];
    let mut runner = TestRunner::new(cases(CASES_OPTIONS));
    runner
        .run(
            &(key, option_value(), prop::bool::weighted(0.05)),
            |(k, v, null_opts)| {
                // SAFETY: plain calls with NULL or NUL-terminated strings.
                unsafe {
                    let o = if null_opts {
                        std::ptr::null_mut()
                    } else {
                        rarch_options_new()
                    };
                    let (kc, vc) = (k.as_deref().map(cstr), v.as_deref().map(cstr));
                    let primed = prime_error();
                    let st = rarch_options_set(
                        o,
                        kc.as_ref().map_or(null(), |s| s.as_ptr()),
                        vc.as_ref().map_or(null(), |s| s.as_ptr()),
                    );
                    rarch_options_free(o);
                    check_failure(st, &primed, "rarch_options_set")?;
                    prop_assert!(
                        matches!(
                            st,
                            RARCH_OK
                                | RARCH_ERR_NULL_ARGUMENT
                                | RARCH_ERR_INVALID_UTF8
                                | RARCH_ERR_CONFIG
                        ),
                        "{:?}",
                        st
                    );
                    if st == RARCH_ERR_CONFIG {
                        let key = kc.unwrap().into_string().unwrap();
                        let m = last_error();
                        prop_assert!(
                            m.contains(&format!("'{key}'")),
                            "the message does not name {}: {}",
                            key,
                            m
                        );
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn rarch_logger_new_with_random_service_names_stays_inside_the_buffer_dir() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("buffers");
    // An anchor logger keeps the pipeline up, so each case only adds a service to it.
    let anchor = logger(&dir, "svc-anchor", &[]);
    let names = prop_oneof![
        3 => text(),
        2 => prop::sample::select(vec![
            "..", ".", "../x", "../../etc", "a/b", "/abs", "a\\b", ".hidden", "x\u{0}y", "x\ny", "\u{7f}",
            "ok-name", "a..b", "ünï", "\u{2215}slash", "con", "nul", " ", "a\u{200b}", "-", "~",
        ]).prop_map(|s| s.as_bytes().to_vec()),
        1 => (201usize..400).prop_map(|n| vec![b'a'; n]),
    ];
    let mut runner = TestRunner::new(cases(CASES_SERVICE));
    runner
        .run(&(names, opt_text()), |(name, lname)| {
            let sc = cstr(&name);
            let lc = lname.as_deref().map(cstr);
            let url = c(&stats_url());
            // SAFETY: NUL-terminated strings and a live options object.
            unsafe {
                let o = rarch_options_new();
                for (k, v) in same_options(&dir, &url) {
                    assert_eq!(rarch_options_set(o, k.as_ptr(), v.as_ptr()), RARCH_OK);
                }
                let primed = prime_error();
                let l =
                    rarch_logger_new(sc.as_ptr(), lc.as_ref().map_or(null(), |s| s.as_ptr()), o);
                rarch_options_free(o);
                let accepted = !l.is_null();
                let valid = std::str::from_utf8(sc.as_bytes())
                    .is_ok_and(|s| rarch_logging::buffer::check_service_name(s).is_ok())
                    && lc
                        .as_ref()
                        .is_none_or(|s| std::str::from_utf8(s.as_bytes()).is_ok());
                prop_assert_eq!(accepted, valid, "{:?}", sc);
                if accepted {
                    let svc = std::str::from_utf8(sc.as_bytes()).unwrap();
                    let made = dir.join(svc).canonicalize().unwrap();
                    let want = dir.canonicalize().unwrap();
                    prop_assert_eq!(made.parent().unwrap(), want.as_path());
                    rarch_logger_free(l);
                } else {
                    check_failure(RARCH_ERR_INVALID_ARGUMENT, &primed, "rarch_logger_new")?;
                }
            }
            // Nothing was made beside the buffer directory.
            let beside: Vec<_> = std::fs::read_dir(root.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            prop_assert_eq!(beside.len(), 1, "{:?}", beside);
            Ok(())
        })
        .unwrap();
    // SAFETY: last call on the anchor.
    unsafe { rarch_logger_free(anchor.0) };
}

/// The URL of the anchor logger's options (a port where nothing listens), fixed per process.
fn stats_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/log", l.local_addr().unwrap())
    })
    .clone()
}

fn same_options(dir: &Path, url: &CString) -> Vec<(CString, CString)> {
    vec![
        (c("url"), url.clone()),
        (c("api_key"), c(KEY)),
        (c("buffer_dir"), c(dir.to_str().unwrap())),
        (c("close_timeout_ms"), c("0")),
    ]
}

#[test]
fn rarch_logger_new_with_random_options_never_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let paths = vec![
        garbage.to_str().unwrap().to_owned(),
        empty.to_str().unwrap().to_owned(),
        dir.path().to_str().unwrap().to_owned(), // a directory
        "/nonexistent/ca.pem".to_owned(),
    ];
    let pair = prop_oneof![
        (
            prop::sample::select(vec![
                "level",
                "mode",
                "timeout_ms",
                "connections",
                "max_retries",
                "backoff_initial_ms",
                "backoff_max_ms",
                "on_full",
                "block_timeout_ms",
                "max_entry_bytes",
                "buffer_max_file_bytes",
                "buffer_max_total_bytes",
                "durable",
                "token_lifetime_s",
                "mirror",
                "verify_tls",
                "insecure",
                "",
            ]),
            option_value()
        )
            .prop_map(|(k, v)| (k.to_owned(), v)),
        (
            Just("queue_capacity".to_owned()),
            (1u32..5000).prop_map(|n| Some(n.to_string().into_bytes()))
        ),
        (
            Just("ca_file".to_owned()),
            prop::sample::select(paths).prop_map(|p| Some(p.into_bytes()))
        ),
        (
            Just("close_timeout_ms".to_owned()),
            (0u32..100).prop_map(|n| Some(n.to_string().into_bytes()))
        ),
    ];
    let mut runner = TestRunner::new(cases(CASES_LOGGER_OPTIONS));
    let url = c(&stats_url());
    runner
        .run(&proptest::collection::vec(pair, 0..6), |pairs| {
            // SAFETY: plain calls with valid pointers.
            unsafe {
                let o = rarch_options_new();
                for (k, v) in same_options(dir.path(), &url) {
                    assert_eq!(rarch_options_set(o, k.as_ptr(), v.as_ptr()), RARCH_OK);
                }
                for (k, v) in &pairs {
                    // `mirror` to stdout/stderr would only add noise to the test output.
                    if k == "mirror" {
                        continue;
                    }
                    let (kc, vc) = (c(k), v.as_deref().map(cstr));
                    let primed = prime_error();
                    let st = rarch_options_set(
                        o,
                        kc.as_ptr(),
                        vc.as_ref().map_or(null(), |s| s.as_ptr()),
                    );
                    check_failure(st, &primed, "rarch_options_set")?;
                }
                let primed = prime_error();
                let l = rarch_logger_new(c"svc-fuzz-opts".as_ptr(), null(), o);
                rarch_options_free(o);
                if l.is_null() {
                    check_failure(RARCH_ERR_CONFIG, &primed, "rarch_logger_new")?;
                } else {
                    let n = null();
                    let st = rarch_log(l, 2, c"with random options".as_ptr(), n, n, n, n, n);
                    prop_assert!((st as i32) <= 15);
                    let f = rarch_flush(l, 10);
                    prop_assert!(matches!(f, RARCH_OK | RARCH_ERR_TIMED_OUT), "{:?}", f);
                    rarch_logger_free(l);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_function_takes_null_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let l = logger(dir.path(), "svc-fuzz-null", &[]);
    let n = null();
    // SAFETY: the documented NULL and range cases of every function.
    unsafe {
        assert_eq!(
            rarch_options_set(std::ptr::null_mut(), n, n),
            RARCH_ERR_NULL_ARGUMENT
        );
        let p = last_error();
        assert!(rarch_logger_new(n, n, std::ptr::null()).is_null());
        assert!(last_error() != p && last_error().contains("service"));
        let p = prime_error();
        assert_eq!(
            rarch_log(std::ptr::null_mut(), 1, c"m".as_ptr(), n, n, n, n, n),
            RARCH_ERR_NULL_ARGUMENT
        );
        assert!(last_error().contains("logger"), "{} / {p}", last_error());
        assert_eq!(rarch_log(l.0, 1, n, n, n, n, n, n), RARCH_ERR_NULL_ARGUMENT);
        assert!(last_error().contains("message"));
        assert_eq!(
            rarch_log_n(l.0, 1, std::ptr::null()),
            RARCH_ERR_NULL_ARGUMENT
        );
        assert!(last_error().contains("entry"));
        assert_eq!(
            rarch_flush(std::ptr::null_mut(), 0),
            RARCH_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            rarch_set_level(std::ptr::null_mut(), 1),
            RARCH_ERR_NULL_ARGUMENT
        );
        for bad in [-1, 5, 1000, i32::MIN, i32::MAX] {
            prime_error();
            assert_eq!(rarch_set_level(l.0, bad), RARCH_ERR_INVALID_LEVEL);
            assert!(last_error().contains(&bad.to_string()) || !last_error().is_empty());
        }
        prime_error();
        assert_eq!(
            rarch_get_level(std::ptr::null()),
            rarch_level::RARCH_LEVEL_DEBUG
        );
        assert!(last_error().contains("logger"));
        // Stats: NULLs, a size too small, a size larger than the struct (no overrun).
        assert_eq!(
            rarch_stats(std::ptr::null(), std::ptr::null_mut()),
            RARCH_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            rarch_stats(l.0, std::ptr::null_mut()),
            RARCH_ERR_NULL_ARGUMENT
        );
        for small in [0usize, 1, 7] {
            let mut s = rarch_statistics {
                size: small,
                ..Default::default()
            };
            assert_eq!(rarch_stats(l.0, &mut s), RARCH_ERR_INVALID_ARGUMENT);
        }
        #[repr(C, align(8))]
        struct Big([u8; 1024]);
        let mut big = Big([0xAA; 1024]);
        big.0[..8].copy_from_slice(&1024usize.to_ne_bytes());
        assert_eq!(rarch_stats(l.0, big.0.as_mut_ptr().cast()), RARCH_OK);
        let sz = std::mem::size_of::<rarch_statistics>();
        assert_eq!(usize::from_ne_bytes(big.0[..8].try_into().unwrap()), sz);
        assert!(
            big.0[sz..].iter().all(|&b| b == 0xAA),
            "rarch_stats wrote past its struct"
        );
        let mut head = Big([0xAA; 1024]);
        head.0[..8].copy_from_slice(&8usize.to_ne_bytes());
        assert_eq!(rarch_stats(l.0, head.0.as_mut_ptr().cast()), RARCH_OK);
        assert!(
            head.0[8..].iter().all(|&b| b == 0xAA),
            "rarch_stats ignored size"
        );
        // rarch_last_error: snprintf-style truncation.
        prime_error();
        let full = last_error();
        let mut one = [0x55u8; 4];
        assert_eq!(rarch_last_error(one.as_mut_ptr().cast(), 1), full.len());
        assert_eq!(one, [0, 0x55, 0x55, 0x55]);
        assert_eq!(rarch_last_error(std::ptr::null_mut(), 0), full.len());
        // Any status value has a static description.
        for st in [-1, 0, 7, 15, 16, i32::MIN, i32::MAX] {
            let s = CStr::from_ptr(rarch_status_str(st));
            assert!(!s.to_bytes().is_empty());
        }
        assert_eq!(
            CStr::from_ptr(rarch_version()).to_str().unwrap(),
            env!("CARGO_PKG_VERSION")
        );
        rarch_options_free(std::ptr::null_mut());
        rarch_logger_free(std::ptr::null_mut());
        rarch_logger_free(l.0);
    }
}

/// rarch_flush_msg gives the message with the status, also when the flush ran on another
/// thread than the one that reads it (what a worker pool does).
#[test]
fn flush_msg_gives_the_message_with_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let l = logger(dir.path(), "svc-fuzz-flush-msg", &[]);
    struct Send(Lg);
    // SAFETY: a rarch_logger may be used from any thread (the C API's contract).
    unsafe impl std::marker::Send for Send {}
    let on_worker = Send(l);
    let n = null();
    // SAFETY: a live logger and a NUL-terminated message.
    let st = unsafe { rarch_log(l.0, 1, c"kept".as_ptr(), n, n, n, n, n) };
    assert_eq!(st, RARCH_OK);
    let (st, msg) = std::thread::spawn(move || {
        let w = on_worker;
        let mut buf = [0x55u8; 512];
        // SAFETY: a live logger and a buffer of the given length.
        let st = unsafe { rarch_flush_msg(w.0 .0, 50, buf.as_mut_ptr().cast(), buf.len()) };
        (st, buf)
    })
    .join()
    .unwrap();
    assert_eq!(st, RARCH_ERR_TIMED_OUT);
    let text = CStr::from_bytes_until_nul(&msg).unwrap().to_str().unwrap();
    assert!(text.starts_with("flush timed out after 50 ms"), "{text}");
    // SAFETY: the documented NULL and truncation cases.
    unsafe {
        prime_error();
        let mut buf = [0x55u8; 8];
        assert_eq!(
            rarch_flush_msg(std::ptr::null_mut(), 0, buf.as_mut_ptr().cast(), buf.len()),
            RARCH_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            &buf, b"logger \0",
            "truncated to the buffer, NUL-terminated"
        );
        assert!(
            last_error().contains("logger is NULL"),
            "the thread's message too"
        );
        assert_eq!(
            rarch_flush_msg(l.0, 0, std::ptr::null_mut(), 0),
            RARCH_ERR_TIMED_OUT
        );
        // Nothing pending: RARCH_OK and an empty message.
        let idle = logger(dir.path(), "svc-fuzz-flush-idle", &[]);
        let mut buf = [0x55u8; 4];
        assert_eq!(
            rarch_flush_msg(idle.0, 1000, buf.as_mut_ptr().cast(), 4),
            RARCH_OK
        );
        assert_eq!(buf, [0, 0x55, 0x55, 0x55]);
        rarch_logger_free(idle.0);
        rarch_logger_free(l.0);
    }
}

/// Bad values in the environment variables are reported like bad options (in a child process,
/// so this process's environment is never changed).
#[test]
fn bad_environment_variables_are_reported() {
    if let Ok(var) = std::env::var("FUZZ_CHILD_ENV") {
        let n = null();
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: plain calls of the C API.
        unsafe {
            let o = rarch_options_new();
            rarch_options_set(
                o,
                c"buffer_dir".as_ptr(),
                c(dir.path().to_str().unwrap()).as_ptr(),
            );
            let l = rarch_logger_new(c"svc-env".as_ptr(), n, o);
            rarch_options_free(o);
            assert!(l.is_null(), "{var}: a bad value was taken");
            let m = last_error();
            assert!(m.contains(&var), "{var}: {m}");
            assert!(!m.contains(KEY));
        }
        println!("env-child: ok");
        return;
    }
    for (var, val) in [
        ("RARCH_LOGGING_DEFAULT_LEVEL", "verbose"),
        ("RARCH_LOGGING_URL", "ftp://example.invalid/log"),
        ("RARCH_LOGGING_URL", "not a url"),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "bad_environment_variables_are_reported",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FUZZ_CHILD_ENV", var)
            .env(var, val)
            .env("RARCH_LOGGING_API_KEY", KEY)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("env-child: ok"),
            "{var}={val}:\n{text}"
        );
        assert!(!text.contains(KEY));
    }
}

mod common;

/// A context nested deeper than serde_json's default limit (128), written on one line, is
/// accepted by rarch_log; written over several lines, the same object is refused. What is
/// accepted must also survive the disk buffer: replayed and delivered, not moved aside as corrupt.
#[test]
fn deep_context_is_judged_the_same_on_one_line_and_over_several() {
    let dir = tempfile::tempdir().unwrap();
    let addr = common::dead_addr();
    let url = format!("http://{addr}/log");
    let one_line = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    let pretty = format!("{}1{}", "{\n\"a\":".repeat(200), "}".repeat(200));
    let (o, p) = (c(&one_line), c(&pretty));
    let n = null();
    // SAFETY: plain calls of the C API with valid arguments.
    unsafe {
        let opts = rarch_options_new();
        for (k, v) in [
            ("url", url.as_str()),
            ("api_key", KEY),
            ("buffer_dir", dir.path().to_str().unwrap()),
            ("max_retries", "0"),
            ("backoff_initial_ms", "10"),
            ("backoff_max_ms", "100"),
        ] {
            assert_eq!(
                rarch_options_set(opts, c(k).as_ptr(), c(v).as_ptr()),
                RARCH_OK
            );
        }
        let l = rarch_logger_new(c"svc-deep".as_ptr(), n, opts);
        rarch_options_free(opts);
        let a = rarch_log(l, 1, c"one line".as_ptr(), n, n, n, o.as_ptr(), n);
        let b = rarch_log(l, 1, c"pretty".as_ptr(), n, n, n, p.as_ptr(), n);
        let same = a == b;
        if a == RARCH_OK {
            let r = common::Receiver::start_at(KEY, &addr);
            assert_eq!(rarch_flush(l, 30_000), RARCH_OK, "{}", last_error());
            let s = stats(Lg(l));
            let want = if b == RARCH_OK { 2 } else { 1 };
            assert_eq!(
                (s.corrupt, r.stat("distinct")),
                (0, want),
                "accepted but not replayed: {s:?}"
            );
        }
        rarch_logger_free(l);
        assert!(
            same,
            "the same object judged differently by its layout: {a:?} / {b:?}"
        );
    }
}
