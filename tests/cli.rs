//! The operator's command line (`rarch-logging`, the built binary) against the local receiver:
//! a backlog and dead letters made by the library, then `status`, `replay`, `dead-letters`,
//! `send` and `check` run as an operator would, with their exit codes.

mod common;

use common::*;
use rarch_logging::{Level, Logger};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The binary, with the key in its environment (never in argv) and no URL but `--url`.
fn cli(key: &str, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rarch-logging"));
    c.env("RARCH_LOGGING_API_KEY", key)
        .env_remove("RARCH_LOGGING_URL")
        .arg("--buffer-dir")
        .arg(dir);
    c
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run rarch-logging")
}

fn run_with_stdin(c: &mut Command, input: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rarch-logging");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `replay --service svc --timeout t --url url`, run to its end.
fn replay(key: &str, dir: &Path, svc: &str, timeout: u32, url: &str) -> Output {
    run(cli(key, dir)
        .args(["replay", "--service", svc, "--url", url, "--timeout"])
        .arg(timeout.to_string()))
}

/// `status --json --service svc`: the service's object.
fn status(key: &str, dir: &Path, svc: &str) -> Value {
    let o = run(cli(key, dir).args(["status", "--json", "--service", svc]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["services"].as_array().unwrap().len(), 1, "{v}");
    v["services"][0].clone()
}

/// The values of `keys` in `v`, as a JSON array.
fn pick(v: &Value, keys: &[&str]) -> Value {
    keys.iter().map(|k| v[*k].clone()).collect()
}

/// The entries the receiver accepted, by message: how many times each arrived.
fn by_message(r: &Receiver) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in r.entries() {
        *m.entry(e["message"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    m
}

/// Logs `messages` with the library while the receiver answers 503, and closes the logger:
/// every entry ends on disk.
fn backlog(r: &Receiver, dir: &Path, svc: &str, messages: &[String]) {
    backlog_with(r, dir, svc, messages, &[]);
}

fn backlog_with(r: &Receiver, dir: &Path, svc: &str, messages: &[String], extra: &[(&str, &str)]) {
    r.fault(r#"{"mode":"status","status":503}"#);
    let lg = Logger::new(svc, None, Some(&options(&r.url(), &r.key, dir, extra))).unwrap();
    for m in messages {
        lg.log(Level::Info, &msg(m)).unwrap();
    }
    drop(lg);
    assert_eq!(lines_on_disk(&dir.join(svc)), messages.len());
    assert_eq!(r.stat("accepted"), 0);
    r.fault(r#"{"mode":"none"}"#);
}

/// A receiver, and a buffer directory whose service `svc` has a backlog of `n` entries.
fn with_backlog(key: &str, svc: &str, n: usize) -> (Receiver, tempfile::TempDir, Vec<String>) {
    let r = Receiver::start(key);
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<String> = (0..n).map(|i| format!("backlog-{i}")).collect();
    backlog(&r, dir.path(), svc, &msgs);
    (r, dir, msgs)
}

#[test]
fn status_counts_a_backlog_exactly_and_replay_delivers_it_once() {
    let (r, dir, msgs) = with_backlog("k-cli-1", "svc-b", 120);

    // The expected counts, from the files the library wrote.
    let mut bytes = 0;
    let mut oldest: Option<String> = None;
    for e in std::fs::read_dir(dir.path().join("svc-b")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                bytes += l.len() as u64 + 1;
                let t = serde_json::from_str::<Value>(l).unwrap()["client_log_datetime"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if oldest.as_ref().is_none_or(|o| t < *o) {
                    oldest = Some(t);
                }
            }
        }
    }
    let s = status(&r.key, dir.path(), "svc-b");
    assert_eq!(s["service"], "svc-b");
    assert_eq!(s["backlog_entries"], 120, "{s}");
    assert_eq!(s["backlog_bytes"], bytes, "{s}");
    assert_eq!(s["oldest_entry"].as_str(), oldest.as_deref(), "{s}");
    assert_eq!(
        pick(&s, &["dead_letters", "corrupt"]),
        serde_json::json!([0, 0]),
        "{s}"
    );
    assert_eq!(s["live_pids"], serde_json::json!([]), "{s}");
    // The table names the service and its backlog.
    let o = run(cli(&r.key, dir.path()).arg("status"));
    assert_eq!(code(&o), 0);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("svc-b") && l.contains(" 120 ")),
        "{table}"
    );

    let o = replay(&r.key, dir.path(), "svc-b", 30, &r.url());
    assert_eq!(code(&o), 0, "{}", text(&o));
    let got = by_message(&r);
    assert_eq!(got.len(), 120);
    assert!(msgs.iter().all(|m| got.get(m) == Some(&1)), "{got:?}");
    assert_eq!(r.stat("duplicates"), 0);
    let s = status(&r.key, dir.path(), "svc-b");
    assert_eq!(
        pick(&s, &["backlog_entries", "backlog_bytes"]),
        serde_json::json!([0, 0]),
        "{s}"
    );
    assert_eq!(s["oldest_entry"], Value::Null);
}

#[test]
fn replay_keeps_the_backlog_when_the_server_is_down_or_refuses_the_key() {
    let (r, dir, _) = with_backlog("k-cli-2", "svc-k", 5);
    let url = format!("http://{}/log", dead_addr());
    let o = replay(&r.key, dir.path(), "svc-k", 1, &url);
    assert_eq!(code(&o), 75, "{}", text(&o));
    assert_eq!(status(&r.key, dir.path(), "svc-k")["backlog_entries"], 5);
    let o = replay("wrong", dir.path(), "svc-k", 20, &r.url());
    assert_eq!(code(&o), 77, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the key"),
        "{}",
        text(&o)
    );
    assert_eq!(status(&r.key, dir.path(), "svc-k")["backlog_entries"], 5);
    assert_eq!(r.stat("accepted"), 0);
    // A service with no directory: nothing to replay; status says there is none.
    let o = run(cli(&r.key, dir.path()).args(["replay", "--service", "nobody", "--url", &r.url()]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = run(cli(&r.key, dir.path()).args(["status", "--service", "nobody"]));
    assert_eq!(code(&o), 66, "{}", text(&o));
}

#[test]
fn a_dead_letter_is_listed_requeued_and_replayed() {
    let r = Receiver::start("k-cli-3");
    let dir = tempfile::tempdir().unwrap();
    r.fault(r#"{"mode":"status","status":400,"match":"poison-1"}"#);
    let lg = Logger::new(
        "svc-d",
        None,
        Some(&options(&r.url(), &r.key, dir.path(), &[])),
    )
    .unwrap();
    lg.log(Level::Error, &msg("poison-1")).unwrap();
    lg.log(Level::Info, &msg("fine-1")).unwrap();
    lg.flush(T).unwrap();
    drop(lg);
    r.fault(r#"{"mode":"none"}"#);
    assert_eq!(by_message(&r).get("fine-1"), Some(&1));
    let s = status(&r.key, dir.path(), "svc-d");
    assert_eq!(
        pick(&s, &["dead_letters", "backlog_entries"]),
        serde_json::json!([1, 0]),
        "{s}"
    );

    let o =
        run(cli(&r.key, dir.path()).args(["dead-letters", "list", "--service", "svc-d", "--json"]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let dl = v["dead_letters"].as_array().unwrap();
    assert_eq!(dl.len(), 1, "{v}");
    assert_eq!(dl[0]["status"], 400);
    assert_eq!(dl[0]["entry"]["message"], "poison-1");
    let o = run(cli(&r.key, dir.path()).args(["dead-letters", "list", "--service", "svc-d"]));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("400") && l.contains("poison-1")),
        "{table}"
    );
    // Another status chooses none; then the 400 is moved.
    let requeue = |status: &str| {
        let o = run(cli(&r.key, dir.path()).args([
            "dead-letters",
            "requeue",
            "--service",
            "svc-d",
            "--status",
            status,
            "--json",
        ]));
        assert_eq!(code(&o), 0, "{}", text(&o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["requeued"].clone()
    };
    assert_eq!(requeue("422"), 0);
    assert_eq!(requeue("400"), 1);
    let s = status(&r.key, dir.path(), "svc-d");
    assert_eq!(
        pick(&s, &["dead_letters", "backlog_entries"]),
        serde_json::json!([0, 1]),
        "{s}"
    );

    let o = replay(&r.key, dir.path(), "svc-d", 30, &r.url());
    assert_eq!(code(&o), 0, "{}", text(&o));
    let got = by_message(&r);
    assert_eq!(
        (got.get("poison-1"), got.get("fine-1"), got.len()),
        (Some(&1), Some(&1), 2),
        "{got:?}"
    );
    let s = status(&r.key, dir.path(), "svc-d");
    assert_eq!(
        pick(&s, &["dead_letters", "backlog_entries"]),
        serde_json::json!([0, 0]),
        "{s}"
    );
}

#[test]
fn send_delivers_entries_exactly_as_given() {
    let r = Receiver::start("k-cli-4");
    let dir = tempfile::tempdir().unwrap();
    let ctx = r#"{"disk":"sdb","tries":[1,{"é":"\n"}]}"#;
    let o = run(cli(&r.key, dir.path()).args([
        "send",
        "--service",
        "svc-s",
        "--logger",
        "backup",
        "--level",
        "WARN",
        "--user-id",
        "u-1",
        "--tenant-id",
        "t-1",
        "--request-id",
        "9b2f3c1e-0d4a-4f6b-8c7d-2e1f0a9b8c7d",
        "--context",
        ctx,
        "--time",
        "2026-01-02T03:04:05.123456Z",
        "--url",
        &r.url(),
        "backup \"failed\"",
    ]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let e = &r.entries()[0];
    assert_eq!(e["service"], "svc-s");
    assert_eq!(e["logger_name"], "backup");
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["message"], "backup \"failed\"");
    assert_eq!(e["user_id"], "u-1");
    assert_eq!(e["tenant_id"], "t-1");
    assert_eq!(e["request_id"], "9b2f3c1e-0d4a-4f6b-8c7d-2e1f0a9b8c7d");
    assert_eq!(e["context"], serde_json::from_str::<Value>(ctx).unwrap());
    assert_eq!(e["client_log_datetime"], "2026-01-02T03:04:05.123456Z");

    // One entry per line of standard input, the options' fields on each.
    let o = run_with_stdin(
        cli(&r.key, dir.path()).args([
            "send",
            "--service",
            "svc-s",
            "--level",
            "ERROR",
            "--url",
            &r.url(),
        ]),
        "line one\n\nline  two ünï\n",
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let es = r.entries();
    assert_eq!(es.len(), 3);
    let lines: Vec<&Value> = es[1..].iter().collect();
    let mut m: Vec<&str> = lines
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    m.sort();
    assert_eq!(m, ["line  two ünï", "line one"]);
    for e in &lines {
        assert_eq!(
            (&e["level"], &e["logger_name"], &e["user_id"]),
            (&Value::from("ERROR"), &Value::from("svc-s"), &Value::Null)
        );
        assert_eq!(e["context"], serde_json::json!({}));
    }

    // --jsonl: each line's fields, the options for what it lacks.
    let input = concat!(
        r#"{"message":"j1","level":"DEBUG","user_id":"u-9","context":{"k":[true,null]}}"#,
        "\n",
        r#"{"message":"j2","logger_name":"cron","tenant_id":null,"client_log_datetime":"2026-03-04T05:06:07+00:00"}"#,
        "\n",
    );
    let o = run_with_stdin(
        cli(&r.key, dir.path()).args([
            "send",
            "--service",
            "svc-s",
            "--jsonl",
            "--tenant-id",
            "t-2",
            "--url",
            &r.url(),
        ]),
        input,
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let es = r.entries();
    assert_eq!(es.len(), 5);
    let find = |m: &str| es.iter().find(|e| e["message"] == m).unwrap().clone();
    let j1 = find("j1");
    assert_eq!(
        pick(&j1, &["level", "user_id", "tenant_id"]),
        serde_json::json!(["DEBUG", "u-9", "t-2"])
    );
    assert_eq!(j1["context"], serde_json::json!({"k":[true,null]}));
    let j2 = find("j2");
    assert_eq!(
        pick(&j2, &["level", "logger_name", "tenant_id"]),
        serde_json::json!(["INFO", "cron", "t-2"])
    );
    assert_eq!(j2["client_log_datetime"], "2026-03-04T05:06:07+00:00");
    assert_eq!(r.stat("duplicates"), 0);
}

#[test]
fn bad_input_exits_65_and_sends_nothing() {
    let r = Receiver::start("k-cli-5");
    let dir = tempfile::tempdir().unwrap();
    let url = r.url();
    let send = |extra: &[&str]| {
        let mut c = cli(&r.key, dir.path());
        c.args(["send", "--service", "svc-x", "--url", &url])
            .args(extra);
        c
    };
    for (args, says) in [
        (&["--context", "[1,2]", "m"][..], "context"),
        (&["--context", "{\"a\":", "m"][..], "context"),
        (&["--level", "LOUD", "m"][..], "level"),
        (&["--time", "yesterday", "m"][..], "time"),
    ] {
        let o = run(&mut send(args));
        assert_eq!(code(&o), 65, "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{args:?}: {}",
            text(&o)
        );
    }
    // A bad line after good ones: none is sent.
    for (input, jsonl) in [
        (
            "{\"message\":\"ok\"}\n{\"message\":\"bad\",\"context\":3}\n",
            true,
        ),
        ("{\"message\":\"ok\"}\nnot json\n", true),
        ("{\"message\":\"ok\",\"colour\":\"red\"}\n", true),
        ("{\"level\":\"INFO\"}\n", true),
        ("", false),
    ] {
        let mut c = send(if jsonl { &["--jsonl"] } else { &[] });
        let o = run_with_stdin(&mut c, input);
        assert_eq!(code(&o), 65, "{input:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(if input.is_empty() {
                "no entry"
            } else {
                "line "
            }),
            "{}",
            text(&o)
        );
    }
    let mut raw = cli(&r.key, dir.path());
    raw.args(["send", "--service", "svc-x", "--url", &url]);
    let mut child = raw
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ok\n\xff\xfe\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 65, "{}", text(&o));
    // A usage error is 64.
    let o = run(cli(&r.key, dir.path()).args(["send", "--no-such-flag"]));
    assert_eq!(code(&o), 64, "{}", text(&o));
    assert_eq!(r.stat("accepted"), 0);
    assert!(!dir.path().join("svc-x").exists(), "nothing written either");
}

#[test]
fn check_reports_each_step_and_the_key() {
    let r = Receiver::start("k-cli-6");
    let dir = tempfile::tempdir().unwrap();
    let o = run(cli(&r.key, dir.path()).args(["check", "--url", &r.url()]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for step in ["URL", "DNS", "CONNECT", "HTTP     2xx"] {
        assert!(out.contains(step), "{step}: {out}");
    }
    assert!(!out.contains(&r.key) && !String::from_utf8_lossy(&o.stderr).contains(&r.key));
    let e = &r.entries()[0];
    assert_eq!(
        (&e["level"], &e["message"]),
        (
            &Value::from("DEBUG"),
            &Value::from("rarch-logging connectivity check")
        )
    );

    let o = run(cli("not-the-key", dir.path()).args(["check", "--url", &r.url()]));
    assert_eq!(code(&o), 77, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the key"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("not-the-key"));

    let url = format!("http://{}/log", dead_addr());
    let o = run(cli(&r.key, dir.path()).args(["check", "--url", &url]));
    assert_eq!(code(&o), 69, "{}", text(&o));
    assert_eq!(r.stat("accepted"), 1);
}

#[test]
fn replay_beside_a_live_logger_of_the_service_loses_and_doubles_nothing() {
    let r = Receiver::start("k-cli-7");
    let dir = tempfile::tempdir().unwrap();
    // A backlog in many small segments, so that the command and the live logger's own replay
    // claim them side by side.
    let small = [("buffer_max_file_bytes", "8192")];
    let mut sent: Vec<String> = (0..2000).map(|i| format!("backlog-{i}")).collect();
    backlog_with(&r, dir.path(), "svc-l", &sent, &small);
    let child = cli(&r.key, dir.path())
        .args([
            "replay",
            "--service",
            "svc-l",
            "--timeout",
            "60",
            "--url",
            &r.url(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lg = Logger::new(
        "svc-l",
        None,
        Some(&options(&r.url(), &r.key, dir.path(), &small)),
    )
    .unwrap();
    for i in 0..500 {
        let m = format!("live-{i}");
        lg.log(Level::Info, &msg(&m)).unwrap();
        sent.push(m);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    lg.flush(T).unwrap();
    r.wait_accepted(2500, T);
    let got = by_message(&r);
    assert_eq!(got.len(), 2500);
    assert!(
        sent.iter().all(|m| got.get(m) == Some(&1)),
        "lost or doubled"
    );
    assert_eq!(r.stat("duplicates"), 0);
    // The live logger holds the buffer: status names this process.
    let s = status(&r.key, dir.path(), "svc-l");
    assert_eq!(s["backlog_entries"], 0, "{s}");
    let me = Value::from(std::process::id());
    assert!(s["live_pids"].as_array().unwrap().contains(&me), "{s}");
    drop(lg);
}

#[test]
fn check_shows_the_servers_certificate_and_refuses_one_it_cannot_verify() {
    let pki = common::pki::Pki::new();
    let ca = pki.path("ca.pem");
    let dir = tempfile::tempdir().unwrap();
    for (leaf, want) in [("good", 0), ("expired", 69), ("self_signed", 69)] {
        let cert = pki.path(&format!("{leaf}.pem"));
        let key = pki.path(&format!("{leaf}.key"));
        let r = Receiver::start_with(
            "k-cli-tls",
            &[
                "-tls-cert",
                cert.to_str().unwrap(),
                "-tls-key",
                key.to_str().unwrap(),
            ],
        );
        let port = r.addr.rsplit(':').next().unwrap().to_owned();
        let url = format!("https://localhost:{port}/log");
        let o = run(cli(&r.key, dir.path())
            .args(["check", "--url", &url, "--ca-file"])
            .arg(&ca));
        assert_eq!(code(&o), want, "{leaf}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if want == 0 {
            assert!(out.contains("TLS      verified against"), "{out}");
            assert!(out.contains("subject CN=127.0.0.1"), "{out}");
            assert!(out.contains("issuer CN=rarch-logging test CA"), "{out}");
            assert!(out.contains("expires "), "{out}");
            assert!(out.contains("HTTP     2xx"), "{out}");
        } else {
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("TLS: the handshake"),
                "{}",
                text(&o)
            );
            assert!(!out.contains("HTTP"), "nothing is posted: {out}");
        }
    }
}
