//! `cargo bench --bench https`: one `https://` POST of a typical entry, through the library's
//! transport (ureq over our TCP transport and address cache, `src/transport.rs`) and through a
//! plain ureq agent with the same settings (ureq's own connector and resolver), against the
//! receiver over TLS on loopback (certificates made with rcgen). The two are interleaved round
//! by round; each round is THREADS threads posting N entries in all, one after the other on
//! kept-alive connections (a warm-up first makes the connections and the TLS sessions).
//!
//! Printed per client and thread count: POSTs per second (best and median round), and the
//! median client CPU and receiver CPU per POST (getrusage of this process; /proc of the
//! receiver). Environment: RARCH_RECEIVER (default examples/receiver/receiver), N (3000),
//! ROUNDS (9), HOST (localhost; 127.0.0.1 takes the resolver out of it).

use rarch_logging::config::Config;
use rarch_logging::entry::{self, Fields};
use rarch_logging::jwt::Tokens;
use rarch_logging::transport::{Outcome, Transport};
use rarch_logging::{Level, Options};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

const KEY: &str = "bench-https-key-0123456789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn cpu_self() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a process, from /proc/<pid>/stat.
fn cpu_of(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = &s[s.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(f.iter().sum::<u64>() * 1_000_000 / hz)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A plain ureq agent per thread slot, configured as the library configures its own.
struct StockUreq {
    agents: Vec<ureq::Agent>,
    url: String,
}

impl StockUreq {
    fn new(url: &str, ca_pem: &[u8], timeout: Duration, slots: usize) -> StockUreq {
        let certs: Vec<_> = ureq::tls::parse_pem(ca_pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let t = Some(timeout);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_recv_body(t)
            .max_redirects(0)
            .input_buffer_size(16 * 1024)
            .output_buffer_size(16 * 1024)
            .max_idle_connections(2)
            .max_idle_connections_per_host(2)
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::Specific(Arc::new(certs)))
                    .build(),
            )
            .build();
        StockUreq {
            agents: (0..slots)
                .map(|_| ureq::Agent::new_with_config(config.clone()))
                .collect(),
            url: url.to_owned(),
        }
    }

    fn post(&self, slot: usize, body: &[u8], bearer: &str) -> Outcome {
        let sent = self.agents[slot]
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Authorization", bearer)
            .send(body);
        match sent {
            Ok(mut r) if r.status().is_success() => {
                let _ = r.body_mut().read_to_vec();
                Outcome::Delivered
            }
            Ok(r) => Outcome::Rejected {
                status: r.status().as_u16(),
                reason: String::new(),
            },
            Err(e) => Outcome::Retry {
                status: 0,
                reason: e.to_string(),
                retry_after: None,
            },
        }
    }
}

fn main() {
    let n: usize = env_or("N", 3000);
    let rounds: usize = env_or("ROUNDS", 9);
    let host: String = env_or("HOST", "localhost".to_owned());
    let dir = tempfile::tempdir().unwrap();

    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("leaf.key"), key.serialize_pem()).unwrap();

    let receiver = std::env::var("RARCH_RECEIVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/receiver/receiver").to_owned()
    });
    let addr_file = dir.path().join("addr");
    let mut child = Command::new(&receiver)
        .args(["-key", KEY, "-quiet", "-keep=false", "-addr-file"])
        .arg(&addr_file)
        .arg("-tls-cert")
        .arg(dir.path().join("leaf.pem"))
        .arg("-tls-key")
        .arg(dir.path().join("leaf.key"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{receiver}: {e} (make receiver, or set RARCH_RECEIVER)"));
    let addr = loop {
        match std::fs::read_to_string(&addr_file) {
            Ok(s) if !s.is_empty() => break s,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("https://{host}:{port}/log");

    let mut opts = Options::new();
    for (k, v) in [
        ("url", url.as_str()),
        ("api_key", KEY),
        ("ca_file", ca_pem.to_str().unwrap()),
    ] {
        opts.set(k, v).unwrap();
    }
    let cfg = Config::resolve(Some(&opts)).unwrap();
    let mut body = Vec::new();
    entry::build(
        &mut body,
        Level::Info,
        "bench",
        "https",
        &Fields {
            message: "order placed",
            user_id: Some("user_123"),
            tenant_id: Some("tenant_abc"),
            request_id: Some("req_456"),
            context_json: Some(r#"{"orderId":42,"path":"/checkout","ok":true}"#),
            client_log_datetime: None,
            trace: None,
        },
        1 << 20,
    )
    .unwrap();
    let bearer = Tokens::new(KEY, Duration::from_secs(3600))
        .bearer("bench")
        .unwrap();
    let ours = Transport::new(&cfg).unwrap();
    let stock = StockUreq::new(&url, &std::fs::read(&ca_pem).unwrap(), cfg.timeout, 2);
    let clients = ["library transport", "plain ureq"];
    let post = |c: usize, slot: usize| match c {
        0 => ours.post(&body, &bearer, None),
        _ => stock.post(slot, &body, &bearer),
    };

    println!(
        "https POST of a {}-byte entry to {url}; {rounds} rounds of {n} POSTs per client",
        body.len()
    );
    for threads in [1usize, 2] {
        for c in 0..clients.len() {
            for slot in 0..threads {
                for _ in 0..100 {
                    assert_eq!(post(c, slot), Outcome::Delivered);
                }
            }
        }
        let mut rate = vec![Vec::new(); clients.len()];
        let mut cpu = vec![Vec::new(); clients.len()];
        let mut srv = vec![Vec::new(); clients.len()];
        for r in 0..rounds {
            for k in 0..clients.len() {
                let c = (k + r) % clients.len();
                let (c0, s0, t0) = (cpu_self(), cpu_of(child.id()), Instant::now());
                std::thread::scope(|s| {
                    for slot in 0..threads {
                        let post = &post;
                        s.spawn(move || {
                            for _ in 0..n / threads {
                                assert_eq!(post(c, slot), Outcome::Delivered);
                            }
                        });
                    }
                });
                let posts = (n / threads * threads) as f64;
                rate[c].push(posts / t0.elapsed().as_secs_f64());
                cpu[c].push((cpu_self() - c0).as_secs_f64() * 1e6 / posts);
                srv[c].push((cpu_of(child.id()) - s0).as_secs_f64() * 1e6 / posts);
            }
        }
        for (c, name) in clients.iter().enumerate() {
            let best = rate[c].iter().cloned().fold(0.0, f64::max);
            println!(
                "  {threads} thread(s), {name:17}: best {best:6.0}/s, median {:6.0}/s; client CPU {:5.1} µs/POST, receiver {:5.1}",
                median(&mut rate[c]),
                median(&mut cpu[c]),
                median(&mut srv[c])
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
