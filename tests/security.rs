//! Security promises: the API key and the tokens are never written or printed;
//! tokens carry the right `iat`/`exp` and are re-signed before they expire; buffer files and
//! directories are owner-only; a service name cannot leave the buffer directory; symlinks
//! planted in the buffer's place are never followed.

mod common;

use common::*;
use rarch_logging::{ErrorKind, Level, Logger, Options};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(30);
const KEY: &str = "security-API-KEY-4d2f8b61a0-never-printed";

fn opts(url: &str, key: &str, dir: &Path, extra: &[(&str, &str)]) -> Options {
    let mut all = vec![("timeout_ms", "1000"), ("close_timeout_ms", "500")];
    all.extend_from_slice(extra);
    common::options(url, key, dir, &all)
}

fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(files_under(&e.path())),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The signatures of every token the client could have signed for `services` between `from`
/// and `to` (JWTs are deterministic: same claims, same key, same token).
fn possible_signatures(services: &[&str], from: u64, to: u64, lifetime: u64) -> Vec<String> {
    let key = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes());
    let mut v = Vec::new();
    for s in services {
        for iat in from.saturating_sub(1)..=to + 1 {
            let c = Claims {
                sub: s.to_string(),
                iat,
                exp: iat + lifetime,
            };
            let t = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &c,
                &key,
            )
            .unwrap();
            v.push(t.rsplit('.').next().unwrap().to_owned());
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The API key and the tokens are never written or printed.

/// The child: runs fault scenarios with the entries mirrored to stdout and stderr, and prints
/// every error message and every stats snapshot it sees, so the parent can search them all.
fn child_secret_scenarios() {
    let dir = PathBuf::from(std::env::var("SEC_DIR").unwrap());
    let r = Receiver::start("not-the-client-key");
    let report = |what: &str, lg: &Logger| {
        println!("{what}: stats {:?}", lg.stats().unwrap());
        println!("{what}: last failure {}", lg.last_delivery_error());
        if let Err(e) = lg.flush(Duration::from_millis(200)) {
            println!("{what}: flush {e}");
        }
    };
    let extra = [("mirror", "stdout")];
    // 1. Wrong key: 401s, entries kept.
    let lg = Logger::new(
        "svc-sec-auth",
        None,
        Some(&opts(&r.url(), KEY, &dir, &extra)),
    )
    .unwrap();
    for i in 0..20 {
        lg.log(Level::Info, &msg(&format!("auth {i}"))).unwrap();
    }
    wait_until(T, "auth failures", || {
        (lg.stats().unwrap().auth_failures > 0).then_some(())
    });
    report("auth", &lg);
    // 2. The key becomes right: replay (and the mirror on stderr).
    r.set_key(KEY);
    lg.flush(T).unwrap();
    report("auth fixed", &lg);
    drop(lg);
    let extra = [("mirror", "stderr")];
    // 3. Rejections (dead letters), 503 with Retry-After, resets, malformed answers.
    for (name, fault) in [
        ("rejected", r#"{"mode":"status","status":422,"count":3}"#),
        (
            "503",
            r#"{"mode":"status","status":503,"retry_after":1,"rate":0.5,"count":10}"#,
        ),
        ("reset", r#"{"mode":"reset","rate":0.5,"count":10}"#),
        ("malformed", r#"{"mode":"malformed","rate":0.5,"count":10}"#),
    ] {
        r.fault(fault);
        let lg = Logger::new(
            &format!("svc-sec-{name}"),
            None,
            Some(&opts(&r.url(), KEY, &dir, &extra)),
        )
        .unwrap();
        for i in 0..20 {
            lg.log(Level::Warn, &msg(&format!("{name} {i}"))).unwrap();
        }
        lg.flush(T).unwrap();
        report(name, &lg);
    }
    r.fault(r#"{"mode":"none"}"#);
    // 4. Server down, then blocking mode errors, then a close that writes to disk.
    let dead = format!("http://{}/log", dead_addr());
    let lg = Logger::new(
        "svc-sec-down",
        None,
        Some(&opts(&dead, KEY, &dir, &[("max_retries", "0")])),
    )
    .unwrap();
    for i in 0..10 {
        lg.log(Level::Error, &msg(&format!("down {i}"))).unwrap();
    }
    report("down", &lg);
    drop(lg);
    let lg = Logger::new(
        "svc-sec-blocking",
        None,
        Some(&opts(&dead, KEY, &dir, &[("mode", "blocking")])),
    )
    .unwrap();
    let e = lg.log(Level::Info, &msg("blocking")).unwrap_err();
    println!("blocking: {e}");
    r.set_key("another-wrong-key");
    let lg = Logger::new(
        "svc-sec-blocking",
        None,
        Some(&opts(&r.url(), KEY, &dir, &[("mode", "blocking")])),
    )
    .unwrap();
    let e = lg.log(Level::Info, &msg("blocking auth")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    println!("blocking auth: {e}");
    // 5. Bad options next to the key.
    let mut o = opts(&r.url(), KEY, &dir, &[]);
    for (k, v) in [("timeout_ms", "soon"), ("nope", KEY), ("level", "LOUD")] {
        if let Err(e) = o.set(k, v) {
            println!("option {k}: {e}");
        }
    }
    println!("options debug: {o:?}");
    println!("secret-child: done");
}

#[test]
fn the_api_key_and_tokens_never_appear_in_files_outputs_messages_or_stats() {
    if std::env::var("SEC_CHILD").is_ok() {
        child_secret_scenarios();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let from = unix_now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "the_api_key_and_tokens_never_appear_in_files_outputs_messages_or_stats",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SEC_CHILD", "1")
        .env("SEC_DIR", dir.path())
        .output()
        .unwrap();
    let to = unix_now();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("secret-child: done"),
        "{text}"
    );
    // The scenarios did produce what is searched: mirrored entries, errors, dead letters.
    assert!(
        text.contains("[WARN] svc-sec-rejected"),
        "no mirrored entry on stderr"
    );
    assert!(
        text.contains("[INFO] svc-sec-auth"),
        "no mirrored entry on stdout"
    );
    assert!(text.contains("authentication refused"), "{text}");
    let files = files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with("buffer.rejected.jsonl")));
    // The key (as written, and an exclusive slice of it), and every token the child could
    // have signed in that time, are nowhere.
    let services = [
        "svc-sec-auth",
        "svc-sec-rejected",
        "svc-sec-503",
        "svc-sec-reset",
        "svc-sec-malformed",
        "svc-sec-down",
        "svc-sec-blocking",
    ];
    let mut secrets: Vec<String> = vec![KEY.to_owned(), KEY[9..30].to_owned()];
    secrets.extend(possible_signatures(&services, from, to, 3600));
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret ({}) is in the output",
            &s[..8]
        );
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !contains(&bytes, s.as_bytes()),
                "a secret ({}) is in {}",
                &s[..8],
                f.display()
            );
        }
    }
    assert!(!text.contains("Bearer ey"), "a bearer token was printed");
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// A minimal HTTP server that answers 200 and records (Authorization header, unix time).
struct TokenServer {
    addr: String,
    seen: Arc<Mutex<Vec<(String, f64)>>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start() -> TokenServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (s3, st3) = (s2.clone(), st2.clone());
                std::thread::spawn(move || serve(c, s3, st3));
            }
        });
        TokenServer { addr, seen, stop }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut c: std::net::TcpStream, seen: Arc<Mutex<Vec<(String, f64)>>>, stop: Arc<AtomicBool>) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        // One request: headers, then Content-Length bytes.
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break Some(p + 4);
            }
            match c.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(_) => break None,
            }
        };
        let Some(head_end) = head_end else { return };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut len = 0;
        let mut auth = String::new();
        for line in head.lines() {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        while buf.len() < head_end + len {
            match c.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if !stop.load(Ordering::Relaxed) => continue,
                Err(_) => return,
            }
        }
        buf.drain(..head_end + len);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        seen.lock().unwrap().push((auth, now));
        if c.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
        )
        .is_err()
        {
            return;
        }
    }
}

#[test]
fn tokens_have_the_right_claims_and_are_re_signed_before_expiry() {
    // Too short a lifetime is refused.
    for bad in ["0", "1"] {
        let e = Options::new().set("token_lifetime_s", bad).unwrap_err();
        assert!(e.message.contains("token_lifetime_s"));
    }
    let srv = TokenServer::start();
    // The real receiver verifies every token too (exp, iat, signature, sub).
    let r = Receiver::start(KEY);
    let dir = tempfile::tempdir().unwrap();
    let life = [("token_lifetime_s", "2")];
    let lg = Logger::new(
        "svc-tokens",
        None,
        Some(&opts(
            &format!("http://{}/log", srv.addr),
            KEY,
            dir.path(),
            &life,
        )),
    )
    .unwrap();
    let lg2 = Logger::new(
        "svc-tokens",
        None,
        Some(&opts(&r.url(), KEY, dir.path(), &life)),
    )
    .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    // One entry every 100 ms for 3.5 s: past the lifetime, so tokens must be renewed.
    while start.elapsed() < Duration::from_millis(3500) {
        lg.log(Level::Info, &msg("tok")).unwrap();
        lg2.log(Level::Info, &msg("tok")).unwrap();
        n += 1;
        let want = n;
        wait_until(T, "the request", || {
            (srv.seen.lock().unwrap().len() as u64 >= want).then_some(())
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    lg2.flush(T).unwrap();
    assert_eq!(r.stat("distinct"), n);
    assert_eq!(
        r.stat("unauthorized"),
        0,
        "the receiver saw an expired or bad token"
    );
    let seen = srv.seen.lock().unwrap().clone();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false; // checked below against the time each request arrived
    v.required_spec_claims = HashSet::new();
    let mut tokens = HashSet::new();
    for (auth, at) in &seen {
        let jwt = auth.strip_prefix("Bearer ").expect("a bearer token");
        let c = jsonwebtoken::decode::<Claims>(
            jwt,
            &jsonwebtoken::DecodingKey::from_secret(KEY.as_bytes()),
            &v,
        )
        .expect("signed with the API key")
        .claims;
        assert_eq!(c.sub, "svc-tokens");
        assert_eq!(c.exp, c.iat + 2, "exp = iat + token_lifetime_s");
        assert!(c.iat as f64 <= at + 0.001, "iat in the future");
        assert!(
            (*at as u64) < c.exp,
            "a token was sent at {at} after its expiry {}",
            c.exp
        );
        assert!(at - c.iat as f64 <= 2.0, "a token older than its lifetime");
        tokens.insert(jwt.to_owned());
    }
    assert!(
        tokens.len() >= 3,
        "tokens were not re-signed: {} distinct",
        tokens.len()
    );
    // Never written.
    for f in files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for t in &tokens {
            assert!(
                !contains(&bytes, t.as_bytes()),
                "a token is in {}",
                f.display()
            );
        }
    }
    let e = lg.last_delivery_error();
    assert!(tokens.iter().all(|t| !e.contains(t.as_str())));
}

// ---------------------------------------------------------------------------------------------
// Files and directories.

#[test]
fn buffer_files_and_directories_are_owner_only_whatever_the_umask() {
    // umask 0: the modes seen are the ones the library asks for.
    // SAFETY: umask is always safe to call.
    let old = unsafe { libc::umask(0) };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested/buffers");
    let r = Receiver::start(KEY);
    r.fault(r#"{"mode":"status","status":422,"count":2}"#);
    let lg = Logger::new(
        "svc-perm",
        None,
        Some(&opts(
            &r.url(),
            KEY,
            &dir,
            &[("buffer_max_file_bytes", "1024")],
        )),
    )
    .unwrap();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    for i in 0..2 {
        lg.log(Level::Info, &msg(&format!("dead letter {i}")))
            .unwrap();
    }
    lg.flush(T).unwrap();
    drop(lg);
    // Rotated segments and the active file while the server is down; a corrupt line too.
    // SAFETY: as above.
    let old = unsafe { libc::umask(0) };
    let lg = Logger::new(
        "svc-perm",
        None,
        Some(&opts(
            &format!("http://{}/log", dead_addr()),
            KEY,
            &dir,
            &[("buffer_max_file_bytes", "1024"), ("max_retries", "0")],
        )),
    )
    .unwrap();
    for i in 0..30 {
        lg.log(Level::Info, &msg(&format!("rotated {i}"))).unwrap();
    }
    wait_until(T, "entries on disk", || {
        (lg.stats().unwrap().buffered >= 30).then_some(())
    });
    drop(lg);
    let svc = dir.join("svc-perm");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(svc.join("buffer.jsonl"))
        .unwrap();
    f.write_all(b"not json\n").unwrap();
    let r2 = Receiver::start(KEY);
    let lg = Logger::new("svc-perm", None, Some(&opts(&r2.url(), KEY, &dir, &[]))).unwrap();
    lg.flush(T).unwrap();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    assert_eq!(lg.stats().unwrap().corrupt, 1);
    let mut names = HashSet::new();
    for d in [root.path().join("nested"), dir.clone(), svc.clone()] {
        let m = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o700, "{} is {m:o}", d.display());
    }
    for f in std::fs::read_dir(&svc).unwrap().flatten() {
        let m = f.metadata().unwrap().permissions().mode() & 0o777;
        let name = f.file_name().to_string_lossy().into_owned();
        assert_eq!(m, 0o600, "{name} is {m:o}");
        names.insert(name.split(['-', '.']).take(2).collect::<Vec<_>>().join("."));
    }
    for want in ["buffer.lock", "buffer.rejected", "buffer.corrupt"] {
        assert!(names.contains(want), "{want} was not made: {names:?}");
    }
}

#[test]
fn a_service_name_cannot_write_outside_the_buffer_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("buffers");
    std::fs::create_dir(&dir).unwrap();
    let url = format!("http://{}/log", dead_addr());
    let outside = root.path().to_str().unwrap().to_owned() + "/escaped";
    for bad in [
        "..",
        ".",
        "../escaped",
        "../../escaped",
        "a/../../escaped",
        "/tmp/escaped",
        &outside,
        "a\\..\\escaped",
        ".escaped",
        "x\ny",
        "x\u{0}y",
        "",
    ] {
        let e = Logger::new(bad, None, Some(&opts(&url, KEY, &dir, &[]))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad:?}");
        assert!(!e.message.contains(KEY));
    }
    let beside: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("buffers")]);
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "a refused name made a directory"
    );
    assert!(!Path::new("/tmp/escaped").exists());
}

/// A file outside the buffer directory that an attacker wants the library to write, read or
/// delete through a symlink.
fn victim(root: &Path) -> (PathBuf, Vec<u8>) {
    let p = root.join("victim.txt");
    let content = b"{\"level\":\"INFO\",\"service\":\"svc-link\",\"logger_name\":\"x\",\"message\":\"victim\",\"user_id\":null,\"tenant_id\":null,\"request_id\":\"victim-1\",\"context\":{},\"client_log_datetime\":\"2024-01-01T00:00:00Z\"}\n".to_vec();
    std::fs::write(&p, &content).unwrap();
    (p, content)
}

#[test]
fn a_symlink_planted_at_the_service_directory_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("buffers");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("svc-link")).unwrap();
    let url = format!("http://{}/log", dead_addr());
    let e = Logger::new("svc-link", None, Some(&opts(&url, KEY, &dir, &[]))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("symlink"), "{}", e.message);
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}

/// Plants a symlink at `name` in the service directory (before the logger starts, or while it
/// runs), logs with the server down, then up: the victim is never written, read or deleted, and
/// every entry is delivered or counted.
fn planted(name: &str, while_running: bool) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("buffers");
    let svc = dir.join("svc-link");
    let (victim, content) = victim(root.path());
    let addr = dead_addr();
    let url = format!("http://{addr}/log");
    let plant = || {
        let p = svc.join(name);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&victim, &p).unwrap();
    };
    if !while_running {
        std::fs::create_dir_all(&svc).unwrap();
        std::fs::set_permissions(&svc, std::fs::Permissions::from_mode(0o700)).unwrap();
        plant();
    }
    let lg = Logger::new(
        "svc-link",
        None,
        Some(&opts(
            &url,
            KEY,
            &dir,
            &[("max_retries", "0"), ("queue_capacity", "100")],
        )),
    )
    .unwrap();
    lg.log(Level::Info, &msg("first")).unwrap();
    wait_until(T, "the first entry handled", || {
        let s = lg.stats().unwrap();
        (s.buffered + s.dropped_io + lg.queue_len() as u64 >= 1).then_some(())
    });
    if while_running {
        plant();
    }
    for i in 0..20 {
        let _ = lg.log(Level::Info, &msg(&format!("linked {i}")));
    }
    wait_until(T, "every entry accounted for", || {
        let s = lg.stats().unwrap();
        (s.buffered + s.dropped_io + s.dropped_queue_full + lg.queue_len() as u64 >= s.logged)
            .then_some(())
    });
    let r = Receiver::start_at(KEY, &addr);
    if name == "buffer.rejected.jsonl" {
        r.fault(r#"{"mode":"status","status":422,"count":1}"#);
        lg.log(Level::Info, &msg("refused")).unwrap();
    }
    let _ = lg.flush(Duration::from_secs(5));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        content,
        "{name}: the victim was written"
    );
    assert!(
        !r.entries().iter().any(|e| e["message"] == "victim"),
        "{name}: the victim was read and sent"
    );
    let s = lg.stats().unwrap();
    assert!(
        r.stat("distinct")
            + s.dropped_io
            + s.dropped_queue_full
            + s.rejected
            + lg.queue_len() as u64
            >= s.logged,
        "{name}: entries lost without a count: {s:?}"
    );
    drop(lg);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        content,
        "{name}: the victim was written at close"
    );
}

#[test]
fn a_symlink_planted_at_buffer_jsonl_is_not_followed() {
    planted("buffer.jsonl", false);
}

#[test]
fn a_symlink_swapped_in_at_buffer_jsonl_while_running_is_not_followed() {
    planted("buffer.jsonl", true);
}

#[test]
fn symlinks_at_the_lock_dead_letter_and_rotated_files_are_not_followed() {
    planted("buffer.lock", false);
    planted("buffer.rejected.jsonl", false);
    planted("buffer.rotated-20240101T000000.000000Z.jsonl", false);
    planted("buffer.sending-20240101T000000.000000Z-rarch1.jsonl", false);
}
