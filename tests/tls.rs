//! https: the receiver serves TLS on loopback with certificates made at test time
//! (rcgen: a CA and leaves for 127.0.0.1/localhost). A good chain is accepted, with the CA given
//! by `ca_file` or found among the system roots; a certificate the client cannot verify
//! (self-signed, another name, expired) is refused: nothing is sent, the entries are kept.
//! Certificate checks cannot be turned off by any option.

mod common;

use common::pki::Pki;
use common::{lines_on_disk, msg, options, wait_until, Receiver};
use rarch_logging::{ErrorKind, Level, Logger, Options};
use rcgen::KeyPair;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const KEY: &str = "tls-API-KEY-93f0c2a8e1-never-printed";

/// The receiver over https with one of the Pki's leaves.
struct TlsReceiver {
    inner: Receiver,
    agent: ureq::Agent,
}

impl TlsReceiver {
    fn start(pki: &Pki, leaf: &str) -> TlsReceiver {
        let cert = pki.path(&format!("{leaf}.pem"));
        let key = pki.path(&format!("{leaf}.key"));
        let inner = Receiver::start_with(
            KEY,
            &[
                "-tls-cert",
                cert.to_str().unwrap(),
                "-tls-key",
                key.to_str().unwrap(),
            ],
        );
        // The test reads the stats without checking the certificate (it only reads counters).
        let agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .build()
            .new_agent();
        TlsReceiver { inner, agent }
    }

    fn url(&self, host: &str) -> String {
        let port = self.inner.addr.rsplit(':').next().unwrap();
        format!("https://{host}:{port}/log")
    }

    fn stat(&self, name: &str) -> u64 {
        let body = self
            .agent
            .get(format!("https://{}/stats", self.inner.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()[name]
            .as_u64()
            .unwrap_or(0)
    }
}

fn opts(url: &str, dir: &Path, ca_file: Option<&Path>) -> Options {
    let mut extra = vec![("max_retries", "0"), ("close_timeout_ms", "500")];
    if let Some(ca) = ca_file {
        extra.push(("ca_file", ca.to_str().unwrap()));
    }
    options(url, KEY, dir, &extra)
}

#[test]
fn a_good_chain_is_accepted_with_ca_file() {
    let pki = Pki::new();
    let r = TlsReceiver::start(&pki, "good");
    for host in ["127.0.0.1", "localhost"] {
        let dir = tempfile::tempdir().unwrap();
        let lg = Logger::new(
            "svc-tls",
            None,
            Some(&opts(&r.url(host), dir.path(), Some(&pki.path("ca.pem")))),
        )
        .unwrap();
        for i in 0..10 {
            lg.log(Level::Info, &msg(&format!("tls {i}"))).unwrap();
        }
        lg.flush(T).unwrap_or_else(|e| panic!("{host}: {e}"));
        let s = lg.stats().unwrap();
        assert_eq!((s.delivered, s.failed_attempts), (10, 0), "{host}: {s:?}");
    }
    assert_eq!(r.stat("distinct"), 20);
}

/// A certificate the client cannot verify: the request is never sent (the receiver counts no
/// request), the entries stay in the buffer file, and the failure says why.
fn refused(leaf: &str, host: &str, ca_file: bool) {
    let pki = Pki::new();
    let r = TlsReceiver::start(&pki, leaf);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.pem");
    let lg = Logger::new(
        "svc-tls-bad",
        None,
        Some(&opts(
            &r.url(host),
            dir.path(),
            ca_file.then_some(ca.as_path()),
        )),
    )
    .unwrap();
    for i in 0..5 {
        lg.log(Level::Info, &msg(&format!("kept {i}"))).unwrap();
    }
    wait_until(T, "the entries kept on disk", || {
        (lg.stats().unwrap().buffered == 5).then_some(())
    });
    let e = lg.flush(Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TimedOut);
    let why = lg.last_delivery_error().to_lowercase();
    assert!(
        why.contains("certificate") || why.contains("tls") || why.contains("unknownissuer"),
        "{leaf}: {why}"
    );
    let s = lg.stats().unwrap();
    assert_eq!(s.delivered, 0, "{leaf}: {s:?}");
    assert!(s.failed_attempts > 0);
    assert_eq!(
        r.stat("requests"),
        0,
        "{leaf}: an entry went to an unverified server"
    );
    // In buffer.jsonl, or in the file the replay thread has claimed to send. A retry writes
    // its failed lines back to buffer.jsonl before it releases the claimed file, so for a
    // moment a line is in both (and a claimed file may be renamed while it is read): the
    // count must come to 5, none lost and none kept twice.
    wait_until(T, &format!("{leaf}: the 5 entries kept on disk"), || {
        (lines_on_disk(&dir.path().join("svc-tls-bad")) == 5).then_some(())
    });
    assert!(!why.contains(KEY) && !e.message.contains(KEY));
}

#[test]
fn a_self_signed_certificate_not_in_the_ca_file_is_refused() {
    refused("self_signed", "127.0.0.1", true);
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    refused("wrong_name", "127.0.0.1", true);
}

#[test]
fn an_expired_certificate_is_refused() {
    refused("expired", "127.0.0.1", true);
}

#[test]
fn the_system_roots_do_not_trust_a_private_ca() {
    // No ca_file: the system roots, which do not hold the test CA.
    refused("good", "127.0.0.1", false);
}

/// With no ca_file the client trusts the system roots: a child process whose SSL_CERT_FILE
/// (the system roots as rustls-platform-verifier finds them on Linux) holds the test CA
/// delivers over https.
#[test]
fn system_roots_are_used_without_ca_file() {
    if let Ok(url) = std::env::var("TLS_CHILD_URL") {
        let dir = tempfile::tempdir().unwrap();
        let lg = Logger::new("svc-tls-sys", None, Some(&opts(&url, dir.path(), None))).unwrap();
        lg.log(Level::Info, &msg("via the system roots")).unwrap();
        lg.flush(T).unwrap();
        println!("tls-child: delivered");
        return;
    }
    let pki = Pki::new();
    let r = TlsReceiver::start(&pki, "good");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "system_roots_are_used_without_ca_file",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TLS_CHILD_URL", r.url("localhost"))
        .env("SSL_CERT_FILE", pki.path("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("tls-child: delivered"),
        "{text}"
    );
    assert_eq!(r.stat("distinct"), 1);
    assert!(!text.contains(KEY));
}

#[test]
fn certificate_checks_cannot_be_turned_off() {
    // No option turns verification off: every such key is refused, by name.
    for k in [
        "insecure",
        "tls_verify",
        "verify_tls",
        "ssl_verify",
        "danger_accept_invalid_certs",
        "tls_insecure_skip_verify",
        "no_verify",
    ] {
        for v in ["true", "false", "0", "1"] {
            let e = Options::new().set(k, v).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.contains(k));
        }
    }
    assert!(!rarch_logging::config::KEYS
        .iter()
        .any(|k| k.0.contains("verify") || k.0.contains("insecure")));
    // A ca_file that cannot be used is an error at creation, never a silent fallback to no
    // verification (or to the system roots).
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    for bad in [
        empty,
        garbage,
        key_only,
        dir.path().join("missing.pem"),
        dir.path().to_owned(),
    ] {
        let e = Logger::new(
            "svc-tls-cfg",
            None,
            Some(&opts("https://127.0.0.1:9/log", dir.path(), Some(&bad))),
        )
        .unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Config,
            "{}: {}",
            bad.display(),
            e.message
        );
        assert!(e.message.contains("ca_file"), "{}", e.message);
    }
}
