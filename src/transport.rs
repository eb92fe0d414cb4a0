//! One HTTP POST of one entry, and what its answer means for the entry ([`Outcome`]). The
//! sender's event loop ([`crate::evloop`], planned by [`loop_plan`]) delivers a threaded
//! pipeline's requests without a proxy; the blocking clients here deliver the rest (blocking
//! mode, proxies, the command line). [`Post`] is what the pipeline needs of a blocking client;
//! [`Transport`] picks it for the URL: `http://` without a proxy goes through our own
//! keep-alive client (http1.rs), `https://` and proxies through ureq, with the TCP transport and
//! the resolver below.
//!
//! Measured on `https://` against the receiver on loopback (2 cores, a POST loop and a logger
//! with 2 connections; see docs/performance-history.md, "https transport"): this TCP transport
//! and resolver spend 59 to 65 µs of client CPU per POST where ureq's own spend 77
//! (`https://127.0.0.1`) to 120 (`https://localhost`), and deliver 10 to 35% more entries per
//! second at the median.

use crate::config::{Config, OtlpProtocol, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{self, Resolved};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Connector, NextTimeout, RustlsConnector};
use ureq::Agent;

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server has the entry.
    Delivered,
    /// Network error, timeout, 408, 429 or 5xx: try again later (`retry_after` from the server).
    /// `status` is 0 for a network error or timeout (no answer).
    Retry {
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 401 or 403: the key or the token is wrong; keep the entry, re-sign, try later.
    Auth { status: u16, reason: String },
    /// Any other answer: the server refuses this entry; it goes to the dead-letter file.
    Rejected { status: u16, reason: String },
    /// 2xx with an OTLP partial success: `rejected` records of the request were refused (never
    /// retried, OTLP says); the others are delivered.
    Partial { rejected: u64, reason: String },
}

/// An HTTP client as the pipeline sees it: one POST of one JSON body, and its [`Outcome`].
/// Called from several threads at once.
pub trait Post: Send + Sync {
    /// Posts `body` with `Authorization: <bearer>`. With a `deadline`, no phase of the request
    /// waits past it.
    fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome;

    /// Posts several bodies, each with its `Authorization`, and gives an outcome for each, in
    /// order. A client that can pipelines them on one connection (see
    /// [`Post::pipelines`]); the others post them one after the other.
    fn post_many(&self, reqs: &[(&[u8], &str)], deadline: Option<Instant>) -> Vec<Outcome> {
        reqs.iter()
            .map(|(body, bearer)| self.post(body, bearer, deadline))
            .collect()
    }

    /// Whether [`Post::post_many`] sends its requests together (HTTP/1.1 pipelining).
    fn pipelines(&self) -> bool {
        false
    }
}

/// The client for the configured URL (or any [`Post`], for tests).
pub struct Transport {
    client: Box<dyn Post>,
}

impl Transport {
    /// `http://` without a proxy: http1.rs; otherwise ureq (the proxy comes from the
    /// environment: `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, with `NO_PROXY`).
    pub fn new(cfg: &Config) -> Result<Transport> {
        let url = cfg
            .url
            .parse::<ureq::http::Uri>()
            .map_err(|e| Error::new(ErrorKind::Config, format!("url: {e}")))?;
        let config = agent_config(cfg)?;
        // The sender threads, as many replay threads, and a couple of callers in blocking mode.
        let slots = 2 * cfg.connections + 2;
        let RequestKind {
            proto,
            content_type,
            extra,
            ok_text,
        } = RequestKind::of(cfg);
        if config.proxy().is_none() {
            let head = extra_head(&extra);
            if let Some(plain) =
                crate::http1::Client::new(&url, cfg.timeout, slots, content_type, &head)
            {
                return Ok(Transport::with_client(Plain {
                    client: plain,
                    ok_text,
                    proto,
                }));
            }
        }
        let mut client = Ureq::new(config, url, slots, extra, ok_text);
        client.proto = proto;
        Ok(Transport::with_client(client))
    }

    /// A transport over any client: a fake one in tests.
    pub fn with_client(client: impl Post + 'static) -> Transport {
        Transport {
            client: Box::new(client),
        }
    }

    /// Posts one JSON body. With a `deadline`, no phase of the request waits past it.
    pub fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome {
        self.client.post(body, bearer, deadline)
    }
}

impl Post for Transport {
    fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome {
        self.client.post(body, bearer, deadline)
    }

    fn post_many(&self, reqs: &[(&[u8], &str)], deadline: Option<Instant>) -> Vec<Outcome> {
        self.client.post_many(reqs, deadline)
    }

    fn pipelines(&self) -> bool {
        self.client.pipelines()
    }
}

/// What the requests of a configuration carry beyond the body.
struct RequestKind {
    /// Requests and answers are OTLP protobuf.
    proto: bool,
    content_type: &'static str,
    /// More headers (sink=otlp: the configured ones, and the body's encoding).
    extra: Vec<(String, String)>,
    /// How much of a 2xx answer is read (OTLP's partial success).
    ok_text: usize,
}

impl RequestKind {
    fn of(cfg: &Config) -> RequestKind {
        let proto = cfg.sink == Sink::Otlp && cfg.otlp_protocol == OtlpProtocol::Protobuf;
        let content_type = if proto {
            "application/x-protobuf"
        } else {
            "application/json"
        };
        let (extra, ok_text) = match cfg.sink {
            Sink::Rarch => (Vec::new(), 0),
            Sink::Otlp => {
                let mut extra = cfg.headers.clone();
                if cfg.gzip {
                    extra.push(("content-encoding".into(), "gzip".into()));
                }
                (extra, MAX_REASON as usize)
            }
        };
        RequestKind {
            proto,
            content_type,
            extra,
            ok_text,
        }
    }
}

/// Header lines, each ending in CRLF.
fn extra_head(extra: &[(String, String)]) -> Vec<u8> {
    let mut head = Vec::new();
    for (k, v) in extra {
        head.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    head
}

/// How the event loop posts for a configuration: where it connects, the requests' fixed head
/// (see [`crate::http1::write_request`]), and whether answers are protobuf.
pub(crate) struct LoopPlan {
    pub target: crate::evloop::Target,
    pub head: Vec<u8>,
    pub proto: bool,
}

/// The event loop's plan for `cfg`: `http://` and `https://` without a proxy. None with a
/// proxy (from the environment, as [`Transport::new`] finds it): the blocking clients, which
/// know proxies, deliver then.
pub(crate) fn loop_plan(cfg: &Config) -> Result<Option<LoopPlan>> {
    let url = cfg
        .url
        .parse::<ureq::http::Uri>()
        .map_err(|e| Error::new(ErrorKind::Config, format!("url: {e}")))?;
    if agent_config(cfg)?.proxy().is_some() {
        return Ok(None);
    }
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Ok(None),
    };
    let Some(authority) = url.authority() else {
        return Ok(None);
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tls = if https {
        let config = crate::tls::client_config(cfg.ca_file.as_deref())
            .map_err(|e| Error::new(ErrorKind::Config, e))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| Error::new(ErrorKind::Config, format!("url: {host}: {e}")))?;
        Some((config, name))
    } else {
        None
    };
    let kind = RequestKind::of(cfg);
    let Some(head) = crate::http1::request_head(&url, kind.content_type, &extra_head(&kind.extra))
    else {
        return Ok(None);
    };
    Ok(Some(LoopPlan {
        target: crate::evloop::Target {
            addrs: Arc::new(Resolved::new(host, port)),
            tls,
            timeout: cfg.timeout,
            max_text: (MAX_REASON as usize, kind.ok_text),
            max_idle: cfg.connections,
        },
        head,
        proto: kind.proto,
    }))
}

/// The outcome of an answer (or of the reason none came).
pub(crate) fn outcome_of(
    answer: std::result::Result<crate::http1::Answer, String>,
    proto: bool,
) -> Outcome {
    match answer {
        Ok(a) => answer_outcome(a.status, a.retry_after, &a.raw, proto),
        Err(e) => transport_error(e),
    }
}

/// This thread's slot: the lowest one free the first time the thread posts, given back when the
/// thread ends (the replay starts threads for each file it sends). A client keeps its idle
/// connections per slot, so sender threads do not meet on a lock.
fn slot() -> usize {
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    struct Slot(usize);
    impl Drop for Slot {
        fn drop(&mut self) {
            let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
            free.push(self.0);
            free.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
    thread_local! {
        static SLOT: Slot = Slot(
            FREE.lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed)),
        );
    }
    SLOT.try_with(|s| s.0).unwrap_or(0)
}

/// The most of a non-2xx answer's body kept as the reason.
const MAX_REASON: u64 = 4096;

fn transport_error(e: impl std::fmt::Display) -> Outcome {
    Outcome::Retry {
        status: 0,
        reason: format!("transport: {e}"),
        retry_after: None,
    }
}

/// The `http://` client, and how much of a 2xx answer it reads (OTLP's partial success).
struct Plain {
    client: crate::http1::Client,
    ok_text: usize,
    /// Requests and answers are OTLP protobuf.
    proto: bool,
}

impl Post for Plain {
    fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome {
        let max = (MAX_REASON as usize, self.ok_text);
        match self.client.post(slot(), body, bearer, deadline, max) {
            Ok(a) => answer_outcome(a.status, a.retry_after, &a.raw, self.proto),
            Err(e) => transport_error(e),
        }
    }

    fn post_many(&self, reqs: &[(&[u8], &str)], deadline: Option<Instant>) -> Vec<Outcome> {
        let max = (MAX_REASON as usize, self.ok_text);
        self.client
            .post_many(slot(), reqs, deadline, max)
            .into_iter()
            .map(|r| match r {
                Ok(a) => answer_outcome(a.status, a.retry_after, &a.raw, self.proto),
                Err(e) => transport_error(e),
            })
            .collect()
    }

    fn pipelines(&self) -> bool {
        true
    }
}

/// ureq's agent configuration: timeouts, buffers, the roots to trust (`ca_file` or the
/// platform's verifier), and the proxy from the environment.
fn agent_config(cfg: &Config) -> Result<ureq::config::Config> {
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
    Ok(Agent::config_builder()
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
        .max_idle_connections(2)
        .max_idle_connections_per_host(2)
        .user_agent(concat!("rarch-logging/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build())
}

/// The ureq client: `https://`, and any URL through a proxy.
struct Ureq {
    /// One agent, so one pool and one pool lock, per slot ([`slot`]): with one shared agent,
    /// `strace -f` counted about 1.5 futex calls per POST, all from ureq's pool lock (taken
    /// when a connection is checked out and again when it is put back).
    agents: Vec<Agent>,
    url: ureq::http::Uri,
    /// More request headers (sink=otlp), and how much of a 2xx answer is read.
    extra: Vec<(String, String)>,
    ok_text: usize,
    /// Requests and answers are OTLP protobuf.
    proto: bool,
}

impl Ureq {
    fn new(
        config: ureq::config::Config,
        url: ureq::http::Uri,
        slots: usize,
        extra: Vec<(String, String)>,
        ok_text: usize,
    ) -> Ureq {
        // One address cache for every agent (ureq resolves before it looks for a pooled
        // connection, so each POST asks for the addresses).
        let addrs = url.authority().map(|a| {
            let host = a.host().trim_start_matches('[').trim_end_matches(']');
            let port = a.port_u16().unwrap_or(if url.scheme_str() == Some("http") {
                80
            } else {
                443
            });
            Arc::new(Resolved::new(host, port))
        });
        let agent = || match (&addrs, config.proxy()) {
            // No proxy: our TCP transport and resolver.
            (Some(addrs), None) => {
                let connector = ().chain(tcp::TcpConnector).chain(RustlsConnector::default());
                let resolver = CachingResolver {
                    url: url.clone(),
                    addrs: addrs.clone(),
                };
                Agent::with_parts(config.clone(), connector, resolver)
            }
            // Through a proxy: ureq's own connectors, which know proxies.
            _ => Agent::new_with_config(config.clone()),
        };
        Ureq {
            agents: (0..slots.max(1)).map(|_| agent()).collect(),
            url,
            extra,
            ok_text,
            proto: false,
        }
    }
}

impl Post for Ureq {
    fn post(&self, body: &[u8], bearer: &str, deadline: Option<Instant>) -> Outcome {
        let mut req = self.agents[slot() % self.agents.len()].post(self.url.clone());
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
        req = req.header(
            "Content-Type",
            if self.proto {
                "application/x-protobuf"
            } else {
                "application/json"
            },
        );
        if !bearer.is_empty() {
            req = req.header("Authorization", bearer);
        }
        for (k, v) in &self.extra {
            req = req.header(k.as_str(), v.as_str());
        }
        let sent = req.send(body);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return transport_error(e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(net::retry_after);
        // Read the body so the connection goes back to the pool; keep it only as a reason.
        let text = if (200..300).contains(&status) && self.ok_text > 0 {
            let raw = resp
                .body_mut()
                .with_config()
                .limit(self.ok_text as u64)
                .read_to_vec()
                .unwrap_or_default();
            return answer_outcome(status, retry_after, &raw, self.proto);
        } else if (200..300).contains(&status) {
            // A small buffer: io::copy zero-fills 8 KiB of stack on every call, which cost more
            // than the rest of reading the answer.
            let mut reader = resp.body_mut().as_reader();
            let mut buf = [0u8; 512];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            String::new()
        } else {
            let raw = resp
                .body_mut()
                .with_config()
                .limit(MAX_REASON)
                .read_to_vec()
                .unwrap_or_default();
            return answer_outcome(status, retry_after, &raw, self.proto);
        };
        outcome(status, retry_after, &text)
    }
}

/// [`outcome`] of an answer's bytes. With OTLP protobuf (`proto`), a 2xx answer is an
/// `ExportLogsServiceResponse` and a failure's body a `google.rpc.Status` (its message is the
/// reason), unless the server answered text (a JSON object, or a plain reason).
fn answer_outcome(status: u16, retry_after: Option<Duration>, raw: &[u8], proto: bool) -> Outcome {
    let text = String::from_utf8_lossy(raw);
    let is_text = std::str::from_utf8(raw).is_ok_and(|t| {
        !t.bytes()
            .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    });
    if !proto || raw.is_empty() || raw.trim_ascii_start().starts_with(b"{") {
        return outcome(status, retry_after, &text);
    }
    if (200..300).contains(&status) {
        return match crate::otlp::partial_success_pb(raw) {
            Some((rejected, message)) => Outcome::Partial {
                rejected,
                reason: format!("HTTP {status}: partial success: {rejected} rejected: {message}"),
            },
            None => Outcome::Delivered,
        };
    }
    match crate::otlp::status_message_pb(raw).filter(|_| !is_text) {
        Some(message) => outcome(status, retry_after, &message),
        None => outcome(status, retry_after, &text),
    }
}

/// What an answer means for the entry.
fn outcome(status: u16, retry_after: Option<Duration>, text: &str) -> Outcome {
    let reason = || {
        let t = text.trim();
        if t.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {t}")
        }
    };
    match status {
        200..=299 => match crate::otlp::partial_success(text) {
            Some((rejected, message)) => Outcome::Partial {
                rejected,
                reason: format!("HTTP {status}: partial success: {rejected} rejected: {message}"),
            },
            None => Outcome::Delivered,
        },
        401 | 403 => Outcome::Auth {
            status,
            reason: reason(),
        },
        408 | 429 | 500..=599 => Outcome::Retry {
            status,
            reason: reason(),
            retry_after,
        },
        _ => Outcome::Rejected {
            status,
            reason: reason(),
        },
    }
}

/// A TCP transport for ureq that spends fewer system calls per request than ureq's own
/// (`strace -f` of a keep-alive POST with ureq's `TcpConnector`: two `setsockopt` for the send
/// timeout and one for the receive timeout, one `send` for the head and one for the body, and
/// twice a liveness probe of three calls, `ioctl(FIONBIO)`, `recv`, `ioctl(FIONBIO)`: 12 in
/// all). Here:
/// - the request head is held back until the body follows, and both leave in one `send`
///   (whatever is held back is sent before any read, so TLS handshakes and
///   `Expect: 100-continue` still work);
/// - `SO_SNDTIMEO`/`SO_RCVTIMEO` are set again only when the wanted timeout differs from the
///   one in place by more than 1/32 of it (at most `http1::SLACK`, 5 ms); a read or write
///   that times out early is retried with the exact time left, so a timeout fires at most
///   that late;
/// - the liveness probe is one `recv(MSG_PEEK | MSG_DONTWAIT)`, and it is made once per
///   request: ureq probes when it puts a connection back in its pool, straight after reading
///   the answer, and again when it takes the connection out for the next request. The first
///   probe is answered without a system call when the last read has just returned data; the
///   second, which is what finds a connection that the server closed while it sat in the
///   pool, always looks at the socket.
mod tcp {
    use std::fmt;
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Weak};
    use std::time::{Duration, Instant};
    use ureq::unversioned::transport::{
        Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
        Transport,
    };
    use ureq::{Error, Timeout};

    use crate::http1::{close_enough, timed_out};
    use crate::net::connect_first;
    /// Held-back output is sent once it reaches this size.
    const FLUSH_AT: usize = 16 * 1024;

    #[derive(Debug, Default)]
    pub struct TcpConnector;

    impl<In: Transport> Connector<In> for TcpConnector {
        type Out = Either<In, Tcp>;

        fn connect(
            &self,
            details: &ConnectionDetails,
            chained: Option<In>,
        ) -> Result<Option<Self::Out>, Error> {
            if chained.is_some() {
                return Ok(chained.map(Either::A));
            }
            let stream = match connect_first(&details.addrs, deadline_of(&details.timeout)) {
                Ok(s) => s,
                Err(e) if e.addr.is_none() => return Err(Error::ConnectionFailed),
                Err(e) if e.error.kind() == io::ErrorKind::TimedOut => {
                    return Err(Error::Timeout(Timeout::Connect))
                }
                Err(e) => return Err(Error::Io(e.error)),
            };
            let config = details.config;
            let stream = Arc::new(stream);
            let handle: Weak<dyn ShutdownHandle> = Arc::downgrade(&stream) as Weak<TcpStream>;
            (details.register_shutdown)(handle)?;
            Ok(Some(Either::B(Tcp {
                stream,
                buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
                held: Vec::new(),
                held_deadline: None,
                held_reason: Timeout::SendRequest,
                read_timeout: None,
                write_timeout: None,
                just_read: false,
            })))
        }
    }

    pub struct Tcp {
        stream: Arc<TcpStream>,
        buffers: LazyBuffers,
        /// Output handed over by ureq and not sent yet.
        held: Vec<u8>,
        held_deadline: Option<Instant>,
        held_reason: Timeout,
        /// What `SO_RCVTIMEO` / `SO_SNDTIMEO` are set to.
        read_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
        /// The last I/O was a read that returned data, and no probe has been made since.
        just_read: bool,
    }

    impl fmt::Debug for Tcp {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Tcp")
                .field("peer", &self.stream.peer_addr().ok())
                .finish()
        }
    }

    /// When a ureq timeout runs out; `None`: never.
    fn deadline_of(t: &NextTimeout) -> Option<Instant> {
        if t.after.is_not_happening() {
            None
        } else {
            Instant::now().checked_add(*t.after)
        }
    }

    /// The time left until `deadline`, or the timeout error once it has passed.
    fn left_until(deadline: Option<Instant>, reason: Timeout) -> Result<Option<Duration>, Error> {
        match deadline {
            None => Ok(None),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(Error::Timeout(reason))
                } else {
                    Ok(Some(left))
                }
            }
        }
    }

    impl Tcp {
        fn flush(&mut self) -> Result<(), Error> {
            let mut at = 0;
            while at < self.held.len() {
                let want = left_until(self.held_deadline, self.held_reason)?;
                if !close_enough(self.write_timeout, want) {
                    self.stream.set_write_timeout(want)?;
                    self.write_timeout = want;
                }
                match (&*self.stream).write(&self.held[at..]) {
                    Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                    Ok(n) => at += n,
                    // Timed out early (the socket's timeout was a little short): go round.
                    Err(e) if timed_out(&e) => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            self.held.clear();
            Ok(())
        }
    }

    impl Transport for Tcp {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
            self.just_read = false;
            let timeout = timeout.for_write();
            if timeout.after.is_zero() {
                return Err(Error::Timeout(timeout.reason));
            }
            self.held
                .extend_from_slice(&self.buffers.output()[..amount]);
            self.held_deadline = deadline_of(&timeout);
            self.held_reason = timeout.reason;
            if self.held.len() >= FLUSH_AT {
                self.flush()?;
            }
            Ok(())
        }

        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
            if !self.held.is_empty() {
                self.flush()?;
            }
            let timeout = timeout.for_read();
            if timeout.after.is_zero() {
                return Err(Error::Timeout(timeout.reason));
            }
            let deadline = deadline_of(&timeout);
            loop {
                let want = left_until(deadline, timeout.reason)?;
                if !close_enough(self.read_timeout, want) {
                    self.stream.set_read_timeout(want)?;
                    self.read_timeout = want;
                }
                match (&*self.stream).read(self.buffers.input_append_buf()) {
                    Ok(n) => {
                        self.buffers.input_appended(n);
                        self.just_read = n > 0;
                        return Ok(n > 0);
                    }
                    Err(e) if timed_out(&e) => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
        }

        fn is_open(&mut self) -> bool {
            if !self.held.is_empty() {
                return false;
            }
            if std::mem::take(&mut self.just_read) {
                return true;
            }
            let mut b = 0u8;
            // SAFETY: a one-byte read into `b`, which outlives the call.
            let r = unsafe {
                libc::recv(
                    self.stream.as_raw_fd(),
                    (&mut b as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            // Open means nothing to read yet: no stray bytes, no end of stream, no error.
            r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
        }
    }
}

/// ureq's resolver for the one URL a [`Ureq`] client posts to: its addresses from the
/// client's [`Resolved`] cache. Any other URL (none is expected: redirects are off) goes to
/// ureq's own.
struct CachingResolver {
    url: ureq::http::Uri,
    addrs: Arc<Resolved>,
}

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
        if uri.scheme() != self.url.scheme() || uri.authority() != self.url.authority() {
            return DefaultResolver::default().resolve(uri, config, timeout);
        }
        let mut out = self.empty();
        for a in self.addrs.addrs().map_err(ureq::Error::Io)? {
            if out.try_push(a).is_err() {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_means_what_the_protocol_says() {
        let s = |n: u16| Duration::from_secs(u64::from(n));
        assert_eq!(outcome(200, None, "ignored"), Outcome::Delivered);
        assert_eq!(outcome(204, None, ""), Outcome::Delivered);
        for status in [408, 429, 500, 503, 599] {
            assert_eq!(
                outcome(status, Some(s(3)), " busy \n"),
                Outcome::Retry {
                    status,
                    reason: format!("HTTP {status}: busy"),
                    retry_after: Some(s(3)),
                }
            );
        }
        for status in [401, 403] {
            assert_eq!(
                outcome(status, None, ""),
                Outcome::Auth {
                    status,
                    reason: format!("HTTP {status}"),
                }
            );
        }
        for status in [301, 400, 404, 413, 422] {
            assert!(
                matches!(outcome(status, None, "no"), Outcome::Rejected { status: s, .. } if s == status)
            );
        }
    }

    /// A client that answers 503 to its first request and 2xx to the others.
    struct Fake(AtomicUsize);

    impl Post for Fake {
        fn post(&self, body: &[u8], bearer: &str, _: Option<Instant>) -> Outcome {
            assert_eq!((body, bearer), (&b"{}"[..], "Bearer x"));
            match self.0.fetch_add(1, Ordering::Relaxed) {
                0 => outcome(503, Some(Duration::from_secs(1)), ""),
                _ => Outcome::Delivered,
            }
        }
    }

    #[test]
    fn a_transport_can_carry_any_client() {
        let t = Transport::with_client(Fake(AtomicUsize::new(0)));
        assert!(matches!(
            t.post(b"{}", "Bearer x", Some(Instant::now())),
            Outcome::Retry { status: 503, .. }
        ));
        let p: &dyn Post = &t;
        assert_eq!(p.post(b"{}", "Bearer x", None), Outcome::Delivered);
    }

    #[test]
    fn the_url_picks_the_client() {
        let mut cfg = Config {
            url: "not a url".into(),
            ..Config::default()
        };
        let e = Transport::new(&cfg).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Config);
        // A server that is not there: either client says so as a retry with no status.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        for scheme in ["http", "https"] {
            cfg.url = format!("{scheme}://{dead}/log");
            let t = Transport::new(&cfg).unwrap();
            match t.post(b"{}", "Bearer x", None) {
                Outcome::Retry {
                    status: 0, reason, ..
                } => assert!(reason.starts_with("transport: "), "{scheme}: {reason}"),
                o => panic!("{scheme}: {o:?}"),
            }
        }
    }
}
