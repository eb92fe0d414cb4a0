//! Proxies, named by the environment as curl reads it (`ALL_PROXY`, `HTTPS_PROXY`,
//! `HTTP_PROXY`, and `NO_PROXY`): entries go through an HTTP proxy's `CONNECT` tunnel, and
//! reach a host listed in `NO_PROXY` directly.
//!
//! The environment is read when a pipeline starts, and changing it inside this process would
//! reach every test running beside it. So each case runs the logging part in a child process
//! (this test binary again, with only the ignored test `child_logs_entries` selected and the
//! variables set), while the parent runs the receiver and the proxy and checks both sides.

mod common;

use common::{msg, options, Receiver};
use rarch_logging::{Level, Logger};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const KEY: &str = "proxy-API-KEY-5d1e0b77c3-never-printed";
const N: u64 = 20;

/// An HTTP proxy on loopback that does `CONNECT` only: it answers 200 and relays bytes both
/// ways. It keeps the target of every tunnel it opened.
struct Proxy {
    addr: String,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(client, &seen));
            }
        });
        Proxy { addr, targets }
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn tunnel(mut client: TcpStream, seen: &Mutex<Vec<String>>) {
    // The request head, a byte at a time: nothing after it may be read here.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let Some(target) = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
    else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    seen.lock().unwrap().push(target.to_owned());
    let Ok(server) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let (mut from_client, mut to_server) = (client, server);
    let _ = std::io::copy(&mut from_client, &mut to_server);
    let _ = to_server.shutdown(Shutdown::Write);
}

/// Runs `child_logs_entries` in a child process against `r`, with no proxy variable but
/// those in `env`.
fn run_child(r: &Receiver, env: &[(&str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_logs_entries",
        "--include-ignored",
        "--test-threads=1",
    ]);
    for v in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("RARCH_PROXY_TEST_URL", r.url())
        .env("RARCH_PROXY_TEST_DIR", dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child failed, or did not run the test:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
}

#[test]
#[ignore = "the child process of the tests below, run by them with the proxy variables set"]
fn child_logs_entries() {
    let (Ok(url), Ok(dir)) = (
        std::env::var("RARCH_PROXY_TEST_URL"),
        std::env::var("RARCH_PROXY_TEST_DIR"),
    ) else {
        panic!("run by the other tests of this file, not alone");
    };
    let lg = Logger::new(
        "svc-proxy",
        None,
        Some(&options(&url, KEY, Path::new(&dir), &[])),
    )
    .unwrap();
    for i in 0..N {
        lg.log(Level::Info, &msg(&format!("through the proxy {i}")))
            .unwrap();
    }
    lg.flush(T).unwrap();
    let s = lg.stats().unwrap();
    assert_eq!((s.delivered, s.failed_attempts), (N, 0), "{s:?}");
}

/// Starts a receiver and a proxy, runs the child with `var` naming the proxy (and `extra` set
/// too), and checks that every entry arrived. Returns the receiver's address and the targets
/// of the proxy's tunnels.
fn log_with_proxy(var: &str, extra: &[(&str, &str)]) -> (String, Vec<String>) {
    let r = Receiver::start(KEY);
    let p = Proxy::start();
    let mut env = vec![(var, format!("http://{}", p.addr))];
    env.extend(extra.iter().map(|&(k, v)| (k, v.to_owned())));
    run_child(&r, &env);
    assert_eq!(r.stat("distinct"), N);
    (r.addr.clone(), p.targets())
}

#[test]
fn entries_go_through_the_proxy_named_by_http_proxy() {
    let (receiver, targets) = log_with_proxy("HTTP_PROXY", &[]);
    assert!(
        !targets.is_empty() && targets.iter().all(|t| *t == receiver),
        "tunnels: {targets:?}, receiver at {receiver}"
    );
}

#[test]
fn all_proxy_is_read_too() {
    let (_, targets) = log_with_proxy("ALL_PROXY", &[]);
    assert!(!targets.is_empty());
}

#[test]
fn a_host_in_no_proxy_is_reached_directly() {
    let (_, targets) = log_with_proxy("HTTP_PROXY", &[("NO_PROXY", "localhost,127.0.0.1")]);
    assert_eq!(targets, Vec::<String>::new());
}
