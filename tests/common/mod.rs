//! Test support: the local receiver (examples/receiver, a real HTTP server that verifies every
//! JWT) started on a free loopback port, and waits on observable state with a deadline.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The receiver binary: $RARCH_RECEIVER, else examples/receiver/receiver (built if missing).
pub fn receiver_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RARCH_RECEIVER") {
        return PathBuf::from(p);
    }
    let dir = repo().join("examples/receiver");
    let bin = dir.join("receiver");
    if !bin.exists() {
        let st = Command::new("go")
            .args(["build", "-o", "receiver", "."])
            .current_dir(&dir)
            .status()
            .expect("go is needed to build the receiver");
        assert!(st.success(), "building the receiver failed");
    }
    bin
}

pub struct Receiver {
    child: Child,
    pub addr: String,
    pub key: String,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start(key: &str) -> Receiver {
        Self::start_with(key, &[])
    }

    pub fn start_with(key: &str, extra: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let addr_file = dir.path().join("addr");
        let child = Command::new(receiver_bin())
            .arg("-key")
            .arg(key)
            .arg("-addr-file")
            .arg(&addr_file)
            .arg("-quiet")
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        let addr = wait_until(Duration::from_secs(20), "the receiver to listen", || {
            std::fs::read_to_string(&addr_file)
                .ok()
                .filter(|s| !s.is_empty())
        });
        Receiver {
            child,
            addr,
            key: key.to_owned(),
            _dir: dir,
        }
    }

    /// Starts a receiver on a given address (to bring a "down" server back up).
    pub fn start_at(key: &str, addr: &str) -> Receiver {
        Self::start_with(key, &["-addr", addr])
    }

    pub fn url(&self) -> String {
        format!("http://{}/log", self.addr)
    }

    fn get(&self, path: &str) -> String {
        ureq::get(&format!("http://{}{}", self.addr, path))
            .call()
            .expect("receiver answers")
            .body_mut()
            .read_to_string()
            .expect("body")
    }

    fn post(&self, path: &str, body: &str) {
        ureq::post(&format!("http://{}{}", self.addr, path))
            .send(body)
            .expect("receiver admin call");
    }

    pub fn stats(&self) -> Value {
        serde_json::from_str(&self.get("/stats")).unwrap()
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().unwrap_or(0)
    }

    /// The accepted entries, in arrival order.
    pub fn entries(&self) -> Vec<Value> {
        self.get("/entries")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `{"mode": "status", "status": 503, "rate": 1.0, ...}`; `{"mode": "none"}` heals.
    pub fn fault(&self, json: &str) {
        self.post("/admin/fault", json);
    }

    pub fn set_key(&self, key: &str) {
        self.post("/admin/key", key);
    }

    /// Waits until the receiver has accepted at least `n` entries.
    pub fn wait_accepted(&self, n: u64, timeout: Duration) {
        wait_until(timeout, &format!("{n} accepted entries"), || {
            (self.stat("accepted") >= n).then_some(())
        });
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns Some, or panics after `timeout` naming what it waited for.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback address where nothing listens (a port that was free a moment ago).
pub fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Options for a logger that talks to `url` with `key` and buffers under `dir`, with short
/// backoffs for tests; `extra` is set last.
pub fn options(url: &str, key: &str, dir: &Path, extra: &[(&str, &str)]) -> rarch_logging::Options {
    let mut o = rarch_logging::Options::new();
    o.set("url", url).unwrap();
    o.set("api_key", key).unwrap();
    o.set("buffer_dir", dir.to_str().unwrap()).unwrap();
    o.set("backoff_initial_ms", "10").unwrap();
    o.set("backoff_max_ms", "200").unwrap();
    o.set("close_timeout_ms", "2000").unwrap();
    for (k, v) in extra {
        o.set(k, v).unwrap();
    }
    o
}

/// An entry with only a message.
pub fn msg(m: &str) -> rarch_logging::entry::Fields<'_> {
    rarch_logging::entry::Fields {
        message: m,
        ..Default::default()
    }
}

pub fn read_lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
