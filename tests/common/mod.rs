//! Test support: the local receiver (examples/receiver, a real HTTP server that verifies every
//! JWT) started on a free loopback port, and waits on observable state with a deadline.
#![allow(dead_code)]

pub mod pki;

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

// OTLP: the receiver's /v1/logs endpoint, and a real OpenTelemetry Collector in front of it.

impl Receiver {
    /// The receiver's OTLP/HTTP logs endpoint (OTLP/JSON).
    pub fn otlp_url(&self) -> String {
        format!("http://{}/v1/logs", self.addr)
    }

    /// The OTLP log records received, in arrival order, each flattened to
    /// `{"resource": ..., "scope": ..., "record": ...}` as the sender encoded them.
    pub fn otlp_records(&self) -> Vec<Value> {
        self.get("/v1/logs/records")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `{"requests", "records", "rejected", "gzip_requests", "unauthorized", "bad_requests",
    /// "faults", "headers"}`: counters of /v1/logs and the last request's headers (lowercased;
    /// an Authorization value shows as "<present>").
    pub fn otlp_stats(&self) -> Value {
        serde_json::from_str(&self.get("/otlp/stats")).unwrap()
    }
}

/// The Collector binary: $RARCH_OTELCOL, else target/otelcol/otelcol-rarch, which
/// tests/otelcol/build.sh (`make collector`) builds.
pub fn otelcol_bin() -> PathBuf {
    let bin = std::env::var_os("RARCH_OTELCOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/otelcol/otelcol-rarch"));
    assert!(
        bin.exists(),
        "no OpenTelemetry Collector at {}: run `make collector` (tests/otelcol/build.sh)",
        bin.display()
    );
    bin
}

/// A free loopback port (free a moment ago).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A real OpenTelemetry Collector (tests/otelcol): its otlp receiver (OTLP/HTTP only) on a free
/// loopback port, a batch processor, and an otlphttp exporter (OTLP/JSON, no compression) to a
/// receiver's /v1/logs, retrying with short intervals from an in-memory queue. It exposes no
/// metrics port, so Collectors run side by side.
pub struct Collector {
    child: Option<Child>,
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Collector {
    pub fn start(receiver: &Receiver) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("otelcol.yaml");
        std::fs::write(&config, Self::config_yaml(port, &receiver.otlp_url())).unwrap();
        let log = dir.path().join("otelcol.log");
        let mut c = Collector {
            child: None,
            port,
            config,
            log,
            dir,
        };
        c.start_again();
        c
    }

    /// The configuration the Collector runs with.
    pub fn config_yaml(port: u16, logs_endpoint: &str) -> String {
        format!(
            r#"receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
    timeout: 50ms
exporters:
  otlp_http:
    logs_endpoint: {logs_endpoint}
    encoding: json
    compression: none
    timeout: 10s
    retry_on_failure:
      enabled: true
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 120s
    sending_queue:
      enabled: true
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http]
"#
        )
    }

    /// The Collector's OTLP/HTTP logs endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/logs", self.port)
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts it (again, after `stop`) on the same port with the same configuration, and waits
    /// until its receiver answers an empty export with 200.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the Collector is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(otelcol_bin())
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the Collector");
        self.child = Some(child);
        let url = self.url();
        let log = self.log.clone();
        let child = self.child.as_mut().unwrap();
        wait_until(Duration::from_secs(30), "the Collector to listen", || {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("the Collector exited ({st}):\n{}", tail(&log, 60));
            }
            ureq::post(&url)
                .header("Content-Type", "application/json")
                .send(r#"{"resourceLogs":[]}"#)
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        });
    }

    /// SIGTERM, then waits for it to exit (it flushes its batch and its queue first); SIGKILL
    /// after 20 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the Collector did not stop on SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no flushing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last 60 lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 60)
    }
}

/// The last `n` lines of a text file ("" when it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines of the service's buffer files (not the dead-letter and corrupt files, not marks).
pub fn lines_on_disk(svc_dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(svc_dir) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".jsonl") && !n.contains("rejected") && !n.contains("corrupt")
        })
        .map(|e| {
            std::fs::read(e.path())
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        })
        .sum()
}
