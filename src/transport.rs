//! One HTTP POST of one entry, over a shared pool of keep-alive connections (ureq), and what
//! its answer means for the entry.

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server has the entry.
    Delivered,
    /// Network error, timeout, 408, 429 or 5xx: try again later (`retry_after` from the server).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 401 or 403: the key or the token is wrong; keep the entry, re-sign, try later.
    Auth { status: u16, reason: String },
    /// Any other answer: the server refuses this entry; it goes to the dead-letter file.
    Rejected { status: u16, reason: String },
}

pub struct Transport {
    agent: Agent,
    url: ureq::http::Uri,
}

const MAX_REASON: u64 = 4096;

impl Transport {
    pub fn new(cfg: &Config) -> Result<Transport> {
        let roots = match &cfg.ca_file {
            None => RootCerts::PlatformVerifier,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::new(
                        ErrorKind::Config,
                        format!("ca_file {}: {e}", path.display()),
                    )
                })?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("ca_file {}: no PEM certificate in it", path.display()),
                    ));
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let t = Some(cfg.timeout);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_recv_body(t)
            .max_redirects(0)
            // Entries are small and answers tiny: 128 KiB buffers per connection only cost
            // copies. Larger bodies still go through, in pieces.
            .input_buffer_size(16 * 1024)
            .output_buffer_size(16 * 1024)
            .max_idle_connections(cfg.connections + 2)
            .max_idle_connections_per_host(cfg.connections + 2)
            .user_agent(concat!("rarch-logging/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        let url = cfg
            .url
            .parse::<ureq::http::Uri>()
            .map_err(|e| Error::new(ErrorKind::Config, format!("url: {e}")))?;
        let resolver = CachingResolver {
            inner: DefaultResolver::default(),
            cached: Mutex::new(None),
        };
        Ok(Transport {
            agent: Agent::with_parts(config, DefaultConnector::new(), resolver),
            url,
        })
    }

    /// Posts one JSON body. With a `deadline`, no phase of the request waits past it.
    pub fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome {
        let mut req = self.agent.post(self.url.clone());
        if let Some(d) = deadline {
            let left = Some(
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            );
            req = req
                .config()
                .timeout_connect(left)
                .timeout_send_body(left)
                .timeout_recv_response(left)
                .timeout_recv_body(left)
                .build();
        }
        let sent = req
            .header("Content-Type", "application/json")
            .header("Authorization", bearer)
            .send(body);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("transport: {e}"),
                    retry_after: None,
                }
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read the body so the connection goes back to the pool; keep it only as a reason.
        let text = if (200..300).contains(&status) {
            // A small buffer: io::copy zero-fills 8 KiB of stack on every call, which cost more
            // than the rest of reading the answer.
            let mut reader = resp.body_mut().as_reader();
            let mut buf = [0u8; 512];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            String::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(MAX_REASON)
                .read_to_string()
                .unwrap_or_default()
        };
        let reason = || {
            let t = text.trim();
            if t.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {t}")
            }
        };
        match status {
            200..=299 => Outcome::Delivered,
            401 | 403 => Outcome::Auth {
                status,
                reason: reason(),
            },
            408 | 429 | 500..=599 => Outcome::Retry {
                reason: reason(),
                retry_after,
            },
            _ => Outcome::Rejected {
                status,
                reason: reason(),
            },
        }
    }
}

/// Resolves the URL's host once and keeps the answer for [`RESOLVE_TTL`]. ureq resolves before it
/// looks for a pooled connection, so without this every POST to `localhost` read `/etc/hosts`
/// (8 system calls), and every POST to a DNS name made a DNS query.
struct CachingResolver {
    inner: DefaultResolver,
    cached: Mutex<Option<(ureq::http::Uri, Instant, ResolvedSocketAddrs)>>,
}

const RESOLVE_TTL: Duration = Duration::from_secs(10);

impl std::fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingResolver")
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some((u, at, addrs)) = &*self.cached.lock().unwrap_or_else(|e| e.into_inner()) {
            if u == uri && at.elapsed() < RESOLVE_TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((uri.clone(), Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}
