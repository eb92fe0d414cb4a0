//! The POST of one entry to an `http://` URL (no proxy), on a kept-alive connection of the
//! sending thread: the request goes out in one `send` and the answer usually comes back in one
//! `recv`. Answers are parsed with httparse (status line, headers, chunk sizes); `https://`
//! URLs and proxies go through ureq (see transport.rs).
//!
//! Why not ureq here too: on a 2-core machine the client's CPU is taken from the server it
//! sends to, and ureq spends about 37,700 instructions per POST; with it the library
//! delivered 80–90% of `wrk`'s rate with the same connection count. This path spends
//! a few thousand.
//!
//! Timeouts are per phase, as with ureq and the Python client: connecting, sending the
//! request, receiving the answer's head, receiving its body, each within `timeout` (and never
//! past the caller's deadline).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How late a timeout may fire because the socket's timeout was left in place (it is set again
/// only when the wanted one differs by more than 1/32, or this). Also used by transport.rs.
pub(crate) const SLACK: Duration = Duration::from_millis(5);
/// The largest answer head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Idle connections kept per slot.
const IDLE_PER_SLOT: usize = 2;
/// How long a resolved address list is used.
const RESOLVE_TTL: Duration = Duration::from_secs(10);

/// An answer: its status, `Retry-After` if given, and the kept part of its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The answer's body, as far as it was kept (an answer in protobuf is not text).
    pub raw: Vec<u8>,
}

impl Answer {
    /// The body as text.
    #[cfg(test)]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

pub struct Client {
    host: String,
    port: u16,
    /// The request line and the fixed headers, each ending in CRLF.
    head: Vec<u8>,
    timeout: Duration,
    addrs: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
    /// Idle connections, one small stack per slot (see `transport::slot`).
    idle: Vec<Mutex<Vec<Conn>>>,
}

struct Conn {
    stream: TcpStream,
    /// What `read` fills (zeroed once, when the connection is made: a fresh zeroed buffer per
    /// read cost more than the rest of the exchange), and the answer's bytes, kept for reuse.
    scratch: Box<[u8]>,
    answer: Vec<u8>,
    /// What `SO_RCVTIMEO` / `SO_SNDTIMEO` are set to.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// Why an exchange failed, and whether the server may have seen the request: a kept-alive
/// connection that the server had closed fails with nothing read, and is retried once on a
/// new connection.
struct Failed {
    reason: String,
    nothing_read: bool,
}

/// How a pipelined exchange ended.
enum Pipelined {
    /// Every request answered; the connection can carry more.
    Kept,
    /// The server closed the connection after an answer, before the others.
    Closed,
    /// No more answers: why. (After the last answer: the connection is not reused.)
    Failed(Failed),
}

fn failed(reason: impl Into<String>, nothing_read: bool) -> Failed {
    Failed {
        reason: reason.into(),
        nothing_read,
    }
}

impl Client {
    /// A client for `uri` if it is `http://`; `None` for any other scheme. `extra_head` is
    /// more header lines (each ending in CRLF) sent with every request.
    /// `content_type` is the bodies'.
    pub fn new(
        uri: &ureq::http::Uri,
        timeout: Duration,
        slots: usize,
        content_type: &str,
        extra_head: &[u8],
    ) -> Option<Client> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let authority = uri.authority()?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        Some(Client {
            host: host.to_owned(),
            port,
            head: request_head(uri, content_type, extra_head)?,
            timeout,
            addrs: Mutex::new(None),
            idle: (0..slots.max(1)).map(|_| Mutex::new(Vec::new())).collect(),
        })
    }

    /// Appends one request to `out` (see [`write_request`]).
    fn request(&self, out: &mut Vec<u8>, body: &[u8], bearer: &str) {
        write_request(out, &self.head, body, bearer);
    }

    /// Posts one JSON body with `Authorization: <bearer>` (none when `bearer` is empty). The
    /// answer's text is kept up to `max_text` bytes (`max_ok_text` for a 2xx answer).
    /// Err: the reason no answer came.
    pub fn post(
        &self,
        slot: usize,
        body: &[u8],
        bearer: &str,
        deadline: Option<Instant>,
        max_text: (usize, usize),
    ) -> Result<Answer, String> {
        thread_local! {
            static REQUEST: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        REQUEST.with(|r| {
            // Re-entered only if a panic left it borrowed: then a fresh buffer.
            let mut fresh = Vec::new();
            let mut guard = r.try_borrow_mut();
            let req = match guard.as_deref_mut() {
                Ok(v) => v,
                Err(_) => &mut fresh,
            };
            req.clear();
            self.request(req, body, bearer);
            if req.capacity() > 1 << 20 && body.len() < 1 << 16 {
                req.shrink_to(1 << 16);
            }
            self.send(slot, req, deadline, max_text)
        })
    }

    fn send(
        &self,
        slot: usize,
        req: &[u8],
        deadline: Option<Instant>,
        max_text: (usize, usize),
    ) -> Result<Answer, String> {
        let idle = &self.idle[slot % self.idle.len()];
        let mut retried = false;
        loop {
            let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => self.connect(deadline)?,
            };
            match self.exchange(&mut conn, req, deadline, max_text) {
                Ok((answer, keep)) => {
                    if keep {
                        let mut v = idle.lock().unwrap_or_else(|e| e.into_inner());
                        if v.len() < IDLE_PER_SLOT {
                            v.push(conn);
                        }
                    }
                    return Ok(answer);
                }
                // A kept-alive connection the server had closed meanwhile: once more, on a new
                // connection.
                Err(f) if reused && f.nothing_read && !retried => retried = true,
                Err(f) => return Err(f.reason),
            }
        }
    }

    /// The end of a phase that starts now.
    fn phase_end(&self, deadline: Option<Instant>) -> Instant {
        let end = Instant::now() + self.timeout;
        deadline.map_or(end, |d| d.min(end))
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        if let Some((at, addrs)) = &*self.addrs.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < RESOLVE_TTL {
                return Ok(addrs.clone());
            }
        }
        // Resolved without the lock held: a slow DNS answer does not stall the other threads'
        // pooled connections, only the threads that need a new one.
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolve {}: {e}", self.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("resolve {}: no address", self.host));
        }
        *self.addrs.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), addrs.clone()));
        Ok(addrs)
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Conn, String> {
        let addrs = self.resolve()?;
        let end = self.phase_end(deadline);
        let mut last = String::from("no address");
        for (i, addr) in addrs.iter().enumerate() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("connect {addr}: timed out"));
            }
            // All but the last address get half of what is left.
            let share = if i + 1 < addrs.len() {
                (left / 2).max(Duration::from_millis(10)).min(left)
            } else {
                left
            };
            match TcpStream::connect_timeout(addr, share) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn {
                        stream,
                        scratch: vec![0u8; 4096].into_boxed_slice(),
                        answer: Vec::with_capacity(1024),
                        read_timeout: None,
                        write_timeout: None,
                    });
                }
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(last)
    }

    /// Sends `req` and reads one answer. Ok: the answer, and whether the connection can carry
    /// the next request.
    fn exchange(
        &self,
        c: &mut Conn,
        req: &[u8],
        deadline: Option<Instant>,
        max_text: (usize, usize),
    ) -> Result<(Answer, bool), Failed> {
        // Send.
        let end = self.phase_end(deadline);
        let mut at = 0;
        while at < req.len() {
            let left = left_until(end).ok_or_else(|| failed("timed out sending", false))?;
            c.set_write_timeout(left)
                .map_err(|e| failed(format!("send: {e}"), true))?;
            match (&c.stream).write(&req[at..]) {
                Ok(0) => return Err(failed("send: connection closed", true)),
                Ok(n) => at += n,
                Err(e) if timed_out(&e) => {}
                Err(e) => return Err(failed(format!("send: {e}"), true)),
            }
        }

        // The head (1xx answers are skipped).
        let end = self.phase_end(deadline);
        let mut buf = std::mem::take(&mut c.answer);
        buf.clear();
        // Bytes past the answer: the connection is out of step.
        let result = self
            .answer(c, &mut buf, end, deadline, max_text)
            .map(|(a, keep)| (a, keep && buf.is_empty()));
        if buf.capacity() <= 64 * 1024 {
            c.answer = buf;
        }
        result
    }

    /// Posts several bodies on one connection, pipelined (RFC 9112, 9.3): every request leaves
    /// in one `send`, and the answers, which the server sends in order, are read together
    /// (usually in one `recv`). One result per request, in order. Requests the server did not
    /// answer because it closed the connection after an earlier answer are sent again on a
    /// new connection; those that met a failure (a reset, a timeout) get its reason.
    pub fn post_many(
        &self,
        slot: usize,
        reqs: &[(&[u8], &str)],
        deadline: Option<Instant>,
        max_text: (usize, usize),
    ) -> Vec<Result<Answer, String>> {
        let mut buf = Vec::new();
        let mut ends = Vec::with_capacity(reqs.len());
        for (body, bearer) in reqs {
            self.request(&mut buf, body, bearer);
            ends.push(buf.len());
        }
        let idle = &self.idle[slot % self.idle.len()];
        let mut results: Vec<Result<Answer, String>> = Vec::with_capacity(reqs.len());
        let mut retried = false;
        while results.len() < reqs.len() {
            let done = results.len();
            let from = if done == 0 { 0 } else { ends[done - 1] };
            let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => match self.connect(deadline) {
                    Ok(c) => c,
                    Err(e) => {
                        results.resize_with(reqs.len(), || Err(e.clone()));
                        break;
                    }
                },
            };
            let (answers, end) = self.exchange_many(
                &mut conn,
                &buf[from..],
                reqs.len() - done,
                deadline,
                max_text,
            );
            let got = answers.len();
            results.extend(answers.into_iter().map(Ok));
            match end {
                Pipelined::Kept => {
                    let mut v = idle.lock().unwrap_or_else(|e| e.into_inner());
                    if v.len() < IDLE_PER_SLOT {
                        v.push(conn);
                    }
                }
                // The server answered some and closed: the rest again, on a new connection.
                Pipelined::Closed => {}
                // A kept-alive connection the server had closed meanwhile: once more.
                Pipelined::Failed(f) if got == 0 && reused && f.nothing_read && !retried => {
                    retried = true;
                }
                Pipelined::Failed(f) => {
                    results.resize_with(reqs.len(), || Err(f.reason.clone()));
                }
            }
        }
        results
    }

    /// Sends `n` requests (`req`, one after the other) and reads their answers, in order.
    fn exchange_many(
        &self,
        c: &mut Conn,
        req: &[u8],
        n: usize,
        deadline: Option<Instant>,
        max_text: (usize, usize),
    ) -> (Vec<Answer>, Pipelined) {
        let mut answers = Vec::with_capacity(n);
        let end = self.phase_end(deadline);
        let mut at = 0;
        while at < req.len() {
            let Some(left) = left_until(end) else {
                return (
                    answers,
                    Pipelined::Failed(failed("timed out sending", false)),
                );
            };
            if let Err(e) = c.set_write_timeout(left) {
                return (
                    answers,
                    Pipelined::Failed(failed(format!("send: {e}"), true)),
                );
            }
            match (&c.stream).write(&req[at..]) {
                Ok(0) => {
                    return (
                        answers,
                        Pipelined::Failed(failed("send: connection closed", true)),
                    )
                }
                Ok(k) => at += k,
                Err(e) if timed_out(&e) => {}
                Err(e) => {
                    return (
                        answers,
                        Pipelined::Failed(failed(format!("send: {e}"), true)),
                    )
                }
            }
        }
        let mut buf = std::mem::take(&mut c.answer);
        buf.clear();
        let mut end_state = Pipelined::Kept;
        while answers.len() < n {
            let end = self.phase_end(deadline);
            match self.answer(c, &mut buf, end, deadline, max_text) {
                Ok((a, keep)) => {
                    answers.push(a);
                    if !keep {
                        end_state = if answers.len() < n {
                            Pipelined::Closed
                        } else {
                            Pipelined::Failed(failed("closed by the server", false))
                        };
                        break;
                    }
                }
                Err(f) => {
                    end_state = Pipelined::Failed(f);
                    break;
                }
            }
        }
        if matches!(end_state, Pipelined::Kept) && !buf.is_empty() {
            // Bytes past the last answer: the connection is out of step.
            end_state = Pipelined::Failed(failed("bytes past the last answer", false));
        }
        if buf.capacity() <= 64 * 1024 {
            c.answer = buf;
        }
        (answers, end_state)
    }

    /// Reads the answer to the request just sent, into `buf`; what follows it stays in `buf`
    /// (the next answer of a pipeline). Ok: the answer, and whether the server keeps the
    /// connection open after it.
    fn answer(
        &self,
        c: &mut Conn,
        buf: &mut Vec<u8>,
        end: Instant,
        deadline: Option<Instant>,
        (max_text, max_ok_text): (usize, usize),
    ) -> Result<(Answer, bool), Failed> {
        let AnswerHead {
            status,
            len: head_len,
            framing,
            keep,
            retry_after,
        } = loop {
            match parse_head(buf) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => return Err(failed(e, false)),
            }
            let nothing_read = buf.is_empty();
            match c.fill(buf, end) {
                Ok(0) => return Err(failed("connection closed before the answer", nothing_read)),
                Ok(_) => {}
                // A server that is slow to answer may be working on the request: no retry.
                Err(e) => {
                    let retry = nothing_read && e.kind() != io::ErrorKind::TimedOut;
                    return Err(failed(format!("receive: {e}"), retry));
                }
            }
        };

        // The body: kept up to `max_text` (`max_ok_text` for a 2xx answer).
        let end = self.phase_end(deadline);
        let keep_text = if (200..300).contains(&status) {
            max_ok_text
        } else {
            max_text
        };
        let mut text = Vec::new();
        buf.drain(..head_len);
        let mut reusable = keep;
        match framing {
            Framing::Length(n) => {
                body_bytes(c, buf, end, n, &mut text, keep_text)?;
            }
            Framing::Chunked => {
                read_chunked(c, buf, end, &mut text, keep_text)?;
            }
            Framing::UntilClose => {
                reusable = false;
                loop {
                    keep_some(&mut text, buf, keep_text);
                    buf.clear();
                    match c.fill(buf, end) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(failed(format!("receive: {e}"), false)),
                    }
                }
            }
        }
        let answer = Answer {
            status,
            retry_after,
            raw: text,
        };
        Ok((answer, reusable))
    }
}

/// The request line and the fixed headers of every POST to `uri` (each line ending in CRLF):
/// `Host`, `User-Agent`, `Accept`, `Content-Type` and `extra_head` (more header lines, each
/// ending in CRLF). None for a URI without an authority.
pub(crate) fn request_head(
    uri: &ureq::http::Uri,
    content_type: &str,
    extra_head: &[u8],
) -> Option<Vec<u8>> {
    let authority = uri.authority()?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.is_empty() { "/" } else { path };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    // host[:port] (never the user information an authority may carry).
    head.extend_from_slice(authority.host().as_bytes());
    if let Some(p) = authority.port() {
        head.extend_from_slice(format!(":{}", p.as_str()).as_bytes());
    }
    head.extend_from_slice(
        concat!(
            "\r\nUser-Agent: rarch-logging/",
            env!("CARGO_PKG_VERSION"),
            "\r\nAccept: */*\r\nContent-Type: "
        )
        .as_bytes(),
    );
    head.extend_from_slice(content_type.as_bytes());
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(extra_head);
    Some(head)
}

/// Appends one request to `out`: the fixed `head`, `Authorization` (none when `bearer` is
/// empty), the length and the body.
pub(crate) fn write_request(out: &mut Vec<u8>, head: &[u8], body: &[u8], bearer: &str) {
    write_request_head(out, head, body.len(), bearer);
    out.extend_from_slice(body);
}

/// [`write_request`] without the body, which the caller appends (`body_len` bytes): a body
/// written straight after its head is not copied once more.
pub(crate) fn write_request_head(out: &mut Vec<u8>, head: &[u8], body_len: usize, bearer: &str) {
    out.extend_from_slice(head);
    if !bearer.is_empty() {
        out.extend_from_slice(b"Authorization: ");
        out.extend_from_slice(bearer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// What the head of an answer says.
struct AnswerHead {
    status: u16,
    /// Its bytes, with those of the 1xx answers before it.
    len: usize,
    framing: Framing,
    keep: bool,
    retry_after: Option<Duration>,
}

/// The head of the first answer in `buf` that is not a 1xx one: `Ok(None)` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<AnswerHead>, String> {
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                at += n;
                if (100..200).contains(&status) && status != 101 {
                    continue;
                }
                let h = Head::of(&resp);
                return Ok(Some(AnswerHead {
                    status,
                    len: at,
                    framing: h.framing(status),
                    keep: h.keep(resp.version),
                    retry_after: h.retry_after,
                }));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() - at > MAX_HEAD {
                    return Err("answer head too large".into());
                }
                return Ok(None);
            }
            Err(e) => return Err(format!("bad answer: {e}")),
        }
    }
}

/// An answer found whole at the start of a buffer: the answer, the bytes it took, and
/// whether the server keeps the connection open after it.
pub(crate) struct Parsed {
    pub answer: Answer,
    pub used: usize,
    pub keep: bool,
}

/// The first answer in `buf` (1xx answers skipped), for a reader that cannot wait on its
/// socket (the event loop): `Ok(None)` while it is incomplete; `eof`: the server has closed
/// its side, which ends a body delimited by the close and makes a partial answer an error.
/// The body is kept up to `max_text` (`max_ok_text` for a 2xx answer).
pub(crate) fn parse_answer(
    buf: &[u8],
    eof: bool,
    (max_text, max_ok_text): (usize, usize),
) -> Result<Option<Parsed>, String> {
    let incomplete = |what: &str| {
        if eof {
            Err(format!("connection closed {what}"))
        } else {
            Ok(None)
        }
    };
    let Some(AnswerHead {
        status,
        len: mut at,
        framing,
        keep,
        retry_after,
    }) = parse_head(buf)?
    else {
        return incomplete("before the answer");
    };
    let keep_text = if (200..300).contains(&status) {
        max_ok_text
    } else {
        max_text
    };
    let mut text = Vec::new();
    let mut keep = keep;
    match framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).map_err(|_| "answer body too large".to_string())?;
            if buf.len() - at < n {
                return incomplete("in the answer's body");
            }
            keep_some(&mut text, &buf[at..at + n], keep_text);
            at += n;
        }
        Framing::Chunked => loop {
            let (skip, size) = match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete(v)) => v,
                Ok(httparse::Status::Partial) => return incomplete("in the answer's body"),
                Err(_) => return Err("bad chunk size".into()),
            };
            at += skip;
            if size == 0 {
                // Trailers: header lines up to an empty line.
                loop {
                    let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                        return incomplete("in the answer's trailers");
                    };
                    at += i + 2;
                    if i == 0 {
                        break;
                    }
                }
                break;
            }
            let size = usize::try_from(size).map_err(|_| "bad chunk size".to_string())?;
            if buf.len() - at < size + 2 {
                return incomplete("in the answer's body");
            }
            keep_some(&mut text, &buf[at..at + size], keep_text);
            at += size;
            if &buf[at..at + 2] != b"\r\n" {
                return Err("bad chunk end".into());
            }
            at += 2;
        },
        Framing::UntilClose => {
            if !eof {
                return Ok(None);
            }
            keep_some(&mut text, &buf[at..], keep_text);
            at = buf.len();
            keep = false;
        }
    }
    Ok(Some(Parsed {
        answer: Answer {
            status,
            retry_after,
            raw: text,
        },
        used: at,
        keep,
    }))
}

/// Appends to `text` what fits of `bytes` under `max`.
fn keep_some(text: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(text.len());
    text.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn read_chunked(
    c: &mut Conn,
    buf: &mut Vec<u8>,
    end: Instant,
    text: &mut Vec<u8>,
    keep_text: usize,
) -> Result<(), Failed> {
    loop {
        let (skip, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(failed("bad chunk size line", false));
                }
                c.more(buf, end)?;
                continue;
            }
            Err(_) => return Err(failed("bad chunk size", false)),
        };
        buf.drain(..skip);
        if size == 0 {
            // Trailers: header lines up to an empty line.
            loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    buf.drain(..i + 2);
                    if i == 0 {
                        return Ok(());
                    }
                } else {
                    if buf.len() > MAX_HEAD {
                        return Err(failed("trailers too large", false));
                    }
                    c.more(buf, end)?;
                }
            }
        }
        // The chunk's data, then CRLF.
        body_bytes(c, buf, end, size, text, keep_text)?;
        while buf.len() < 2 {
            c.more(buf, end)?;
        }
        if &buf[..2] != b"\r\n" {
            return Err(failed("bad chunk end", false));
        }
        buf.drain(..2);
    }
}

/// Takes the next `n` bytes of the body (what `buf` holds, then more from the connection),
/// keeping what fits in `text` under `keep_text`.
fn body_bytes(
    c: &mut Conn,
    buf: &mut Vec<u8>,
    end: Instant,
    mut n: u64,
    text: &mut Vec<u8>,
    keep_text: usize,
) -> Result<(), Failed> {
    loop {
        let take = (buf.len() as u64).min(n) as usize;
        keep_some(text, &buf[..take], keep_text);
        buf.drain(..take);
        n -= take as u64;
        if n == 0 {
            return Ok(());
        }
        c.more(buf, end)?;
    }
}

/// How the answer's body is delimited.
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the answer's headers say about framing and the connection.
#[derive(Default)]
struct Head {
    length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    bad_length: bool,
    retry_after: Option<Duration>,
}

impl Head {
    fn of(resp: &httparse::Response<'_, '_>) -> Head {
        let mut h = Head::default();
        for hd in resp.headers.iter() {
            let value = || std::str::from_utf8(hd.value).unwrap_or("").trim();
            if hd.name.eq_ignore_ascii_case("content-length") {
                let value = value();
                match value.parse::<u64>() {
                    Ok(n) if h.length.is_none_or(|m| m == n) => h.length = Some(n),
                    _ => h.bad_length = true,
                }
            } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
                let value = value();
                h.chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
            } else if hd.name.eq_ignore_ascii_case("connection") {
                for t in value().split(',') {
                    let t = t.trim();
                    h.close |= t.eq_ignore_ascii_case("close");
                    h.keep_alive |= t.eq_ignore_ascii_case("keep-alive");
                }
            } else if hd.name.eq_ignore_ascii_case("retry-after") {
                h.retry_after = crate::net::retry_after(value());
            }
        }
        h
    }

    fn framing(&self, status: u16) -> Framing {
        if status == 204 || status == 304 {
            Framing::Length(0)
        } else if self.chunked {
            Framing::Chunked
        } else if let (Some(n), false) = (self.length, self.bad_length) {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        }
    }

    /// Whether the connection stays open after this answer (`version`: 0 for HTTP/1.0).
    fn keep(&self, version: Option<u8>) -> bool {
        !self.close && !self.bad_length && (version == Some(1) || self.keep_alive)
    }
}

/// The time left until `end`, or None once it has passed.
fn left_until(end: Instant) -> Option<Duration> {
    let left = end.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// Whether a socket timeout of `set` may stand in for `want` (`None`: no timeout).
pub(crate) fn close_enough(set: Option<Duration>, want: Option<Duration>) -> bool {
    match (set, want) {
        (None, None) => true,
        (Some(s), Some(w)) => s.abs_diff(w) <= (w / 32).min(SLACK),
        _ => false,
    }
}

/// Whether a socket read or write ended by its timeout (or a signal): go round.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl Conn {
    fn set_write_timeout(&mut self, want: Duration) -> io::Result<()> {
        if !close_enough(self.write_timeout, Some(want)) {
            self.stream.set_write_timeout(Some(want))?;
            self.write_timeout = Some(want);
        }
        Ok(())
    }

    /// More of the answer's body onto `buf`; its end here is an error.
    fn more(&mut self, buf: &mut Vec<u8>, end: Instant) -> Result<(), Failed> {
        match self.fill(buf, end) {
            Ok(0) => Err(failed("connection closed in the answer's body", false)),
            Ok(_) => Ok(()),
            Err(e) => Err(failed(format!("receive: {e}"), false)),
        }
    }

    /// Reads what has arrived (at least one byte, or 0 at the end of the stream) onto `buf`,
    /// waiting until `end` at most.
    fn fill(&mut self, buf: &mut Vec<u8>, end: Instant) -> io::Result<usize> {
        loop {
            let left = left_until(end)
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?;
            if !close_enough(self.read_timeout, Some(left)) {
                self.stream.set_read_timeout(Some(left))?;
                self.read_timeout = Some(left);
            }
            match (&self.stream).read(&mut self.scratch) {
                Ok(n) => {
                    buf.extend_from_slice(&self.scratch[..n]);
                    return Ok(n);
                }
                // Timed out early (the socket's timeout was a little short): go round.
                Err(e) if timed_out(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    const MAX: (usize, usize) = (8, 4);

    /// `parse_answer` on `bytes`; an answer it finds is not found in any shorter prefix (a
    /// cut answer is incomplete, never wrong).
    fn parsed(bytes: &[u8], eof: bool) -> Result<Option<Parsed>, String> {
        let whole = parse_answer(bytes, eof, MAX);
        if let Ok(Some(p)) = &whole {
            for cut in 0..p.used {
                assert!(
                    matches!(parse_answer(&bytes[..cut], false, MAX), Ok(None)),
                    "an answer found in the first {cut} bytes"
                );
            }
        }
        whole
    }

    #[test]
    fn answers_are_framed_without_waiting_on_a_socket() {
        let p = parsed(
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 6\r\n\r\nabcdefNEXT",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.answer.status, p.used, p.keep), (202, 50, true));
        // A 2xx answer's body kept up to its own limit.
        assert_eq!(p.answer.raw, b"abcd");

        let chunked = b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n\
            3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n";
        let p = parsed(chunked, false).unwrap().unwrap();
        assert_eq!(p.answer.status, 503);
        assert_eq!(p.answer.raw, b"abcdefg");
        assert_eq!(p.answer.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(p.used, chunked.len());

        // 1xx answers are skipped; a close-delimited body ends at the close.
        let close = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 400 Bad\r\n\r\nwhy";
        assert!(parse_answer(close, false, MAX).unwrap().is_none());
        let p = parse_answer(close, true, MAX).unwrap().unwrap();
        assert_eq!(
            (p.answer.status, p.keep, p.answer.raw.as_slice()),
            (400, false, &b"why"[..])
        );

        // Cut short by the close: an error; garbage: an error.
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(parse_answer(cut, true, MAX).is_err());
        assert!(parse_answer(b"SMTP ready\r\n\r\n", false, MAX).is_err());
        // `Connection: close` ends the connection after the answer.
        let p = parse_answer(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
            MAX,
        )
        .unwrap()
        .unwrap();
        assert!(!p.keep);
    }

    /// A one-off server: for each accepted connection, reads one request head+body and
    /// writes the scripted answers (one per request), then closes if `close` is set.
    fn server(
        answers: Vec<&'static [u8]>,
        close_after_each: bool,
    ) -> (String, thread::JoinHandle<Vec<Vec<u8>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/log", l.local_addr().unwrap());
        let h = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut answers = answers.into_iter().peekable();
            'conns: while answers.peek().is_some() {
                let (mut s, _) = l.accept().unwrap();
                loop {
                    let Some(a) = answers.next() else {
                        break 'conns;
                    };
                    let mut req = Vec::new();
                    let mut b = [0u8; 4096];
                    // Read until the head is in and the body (Content-Length) has arrived.
                    loop {
                        let n = s.read(&mut b).unwrap();
                        if n == 0 {
                            continue 'conns;
                        }
                        req.extend_from_slice(&b[..n]);
                        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&req[..i]).to_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .unwrap()
                                .parse()
                                .unwrap();
                            if req.len() >= i + 4 + len {
                                break;
                            }
                        }
                    }
                    seen.push(req);
                    s.write_all(a).unwrap();
                    if close_after_each {
                        continue 'conns;
                    }
                }
            }
            seen
        });
        (url, h)
    }

    fn client(url: &str) -> Client {
        client_t(url, Duration::from_secs(5))
    }

    /// A JSON client of one slot with this timeout.
    fn client_t(url: &str, timeout: Duration) -> Client {
        Client::new(&url.parse().unwrap(), timeout, 1, "application/json", b"").unwrap()
    }

    #[test]
    fn the_request_is_one_well_formed_post() {
        let (url, h) = server(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            false,
        );
        let c = client(&url);
        let a = c
            .post(0, br#"{"a":1}"#, "Bearer t0k", None, (100, 0))
            .unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.text(), "", "a 2xx body is not kept");
        drop(c);
        let seen = h.join().unwrap();
        let req = String::from_utf8(seen[0].clone()).unwrap();
        assert!(
            req.starts_with("POST /log HTTP/1.1\r\nHost: 127.0.0.1:"),
            "{req}"
        );
        assert!(req.contains("\r\nAuthorization: Bearer t0k\r\n"), "{req}");
        assert!(
            req.contains("\r\nContent-Type: application/json\r\n"),
            "{req}"
        );
        assert!(
            req.ends_with("\r\nContent-Length: 7\r\n\r\n{\"a\":1}"),
            "{req}"
        );
    }

    #[test]
    fn chunked_and_close_delimited_bodies_are_read() {
        let (url, h) = server(
            vec![
                b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nno d\r\n6;x=y\r\natabas\r\n1\r\ne\r\n0\r\nX-T: 1\r\n\r\n",
                b"HTTP/1.1 429 Slow\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nwait",
                b"HTTP/1.0 503 Later\r\n\r\nuntil close",
            ],
            false,
        );
        let c = client(&url);
        let a = c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap();
        assert_eq!((a.status, a.text().as_str()), (500, "no database"));
        let a = c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap();
        assert_eq!((a.status, a.text().as_str()), (429, "wait"));
        assert_eq!(a.retry_after, Some(Duration::from_secs(7)));
        // The server closes after the HTTP/1.0 answer (the handler thread ends).
        let done = thread::spawn(move || h.join().unwrap());
        let a = c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap();
        assert_eq!((a.status, a.text().as_str()), (503, "until close"));
        assert_eq!(done.join().unwrap().len(), 3, "all three on one connection");
    }

    #[test]
    fn the_kept_text_is_capped() {
        let (url, _h) = server(
            vec![b"HTTP/1.1 400 Bad\r\nContent-Length: 10\r\n\r\n0123456789"],
            false,
        );
        let a = client(&url)
            .post(0, b"{}", "Bearer x", None, (4, 0))
            .unwrap();
        assert_eq!((a.status, a.text().as_str()), (400, "0123"));
    }

    #[test]
    fn a_connection_the_server_closed_is_replaced_once() {
        // The server answers one request per connection and closes it, without saying so: the
        // kept connection fails with nothing read, and the request goes again on a new one.
        let (url, h) = server(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            ],
            true,
        );
        let c = client(&url);
        assert_eq!(
            c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap().status,
            200
        );
        assert_eq!(
            c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap().status,
            201
        );
        assert_eq!(h.join().unwrap().len(), 2);
    }

    #[test]
    fn no_answer_in_time_is_an_error_not_a_hang() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/log", l.local_addr().unwrap());
        // Accepts (by the backlog) and never answers.
        let c = client_t(&url, Duration::from_millis(200));
        let e = c.post(0, b"{}", "Bearer x", None, (100, 0)).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        // A deadline shorter than the timeout wins.
        let c = client(&url);
        let t = Instant::now();
        let e = c
            .post(
                0,
                b"{}",
                "Bearer x",
                Some(Instant::now() + Duration::from_millis(100)),
                (100, 0),
            )
            .unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the 5 s timeout was not used"
        );
        drop(l);
    }

    #[test]
    fn garbage_is_an_error() {
        let (url, _h) = server(vec![b"SMTP ready\r\n\r\n"], false);
        let e = client(&url)
            .post(0, b"{}", "Bearer x", None, (100, 0))
            .unwrap_err();
        assert!(e.starts_with("bad answer"), "{e}");
    }

    #[test]
    fn only_http_urls_are_taken() {
        let t = Duration::from_secs(1);
        assert!(Client::new(
            &"https://x/log".parse().unwrap(),
            t,
            1,
            "application/json",
            b""
        )
        .is_none());
        let c = Client::new(
            &"http://example.com/a?b=c".parse().unwrap(),
            t,
            1,
            "application/json",
            b"",
        )
        .unwrap();
        let head = String::from_utf8(c.head.clone()).unwrap();
        assert!(
            head.starts_with("POST /a?b=c HTTP/1.1\r\nHost: example.com\r\n"),
            "{head}"
        );
        assert_eq!(c.port, 80);
        // No user information in Host; an IPv6 literal keeps its brackets there only.
        let c = Client::new(
            &"http://u:p@[::1]:8080/log".parse().unwrap(),
            t,
            1,
            "application/json",
            b"",
        )
        .unwrap();
        let head = String::from_utf8(c.head.clone()).unwrap();
        assert!(
            head.starts_with("POST /log HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{head}"
        );
        assert_eq!((c.host.as_str(), c.port), ("::1", 8080));
    }

    /// A server that reads requests as a stream (pipelined or not) and answers each in turn
    /// with `200` and its body's text; on connection `c`, after `close_after[c]` answers it
    /// closes (with `Connection: close` on the last one, or, when `reset`, by a bare close).
    /// Returns how many requests each connection carried in how many reads.
    fn pipeline_server(
        close_after: Vec<usize>,
        reset: bool,
    ) -> (String, thread::JoinHandle<Vec<(usize, usize)>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/log", l.local_addr().unwrap());
        let h = thread::spawn(move || {
            let mut per_conn = Vec::new();
            for limit in close_after {
                let (mut s, _) = l.accept().unwrap();
                let (mut buf, mut b) = (Vec::new(), [0u8; 65536]);
                let (mut answered, mut reads) = (0, 0);
                'conn: loop {
                    // Every whole request in the buffer.
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .unwrap()
                            .parse()
                            .unwrap();
                        if buf.len() < i + 4 + len {
                            break;
                        }
                        let body = buf[i + 4..i + 4 + len].to_vec();
                        buf.drain(..i + 4 + len);
                        answered += 1;
                        if reset && answered == limit {
                            break 'conn;
                        }
                        let last = answered == limit;
                        let a = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n",
                            body.len(),
                            if last { "Connection: close\r\n" } else { "" }
                        );
                        s.write_all(a.as_bytes()).unwrap();
                        s.write_all(&body).unwrap();
                        if last {
                            break 'conn;
                        }
                    }
                    let n = s.read(&mut b).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    reads += 1;
                    buf.extend_from_slice(&b[..n]);
                }
                per_conn.push((answered, reads));
            }
            per_conn
        });
        (url, h)
    }

    #[test]
    fn pipelined_requests_leave_together_and_are_answered_in_order() {
        let (url, h) = pipeline_server(vec![usize::MAX], false);
        let c = client(&url);
        let bodies: Vec<String> = (0..10).map(|i| format!("body {i}")).collect();
        let reqs: Vec<(&[u8], &str)> = bodies.iter().map(|b| (b.as_bytes(), "Bearer x")).collect();
        let got = c.post_many(0, &reqs, None, (100, 100));
        let texts: Vec<String> = got.into_iter().map(|a| a.unwrap().text()).collect();
        assert_eq!(texts, bodies);
        drop(c);
        let conns = h.join().unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].0, 10);
        // All ten requests in one send: the server read them in a read or two.
        assert!(conns[0].1 <= 2, "{conns:?}");
    }

    #[test]
    fn what_a_closing_server_left_unanswered_goes_again_on_a_new_connection() {
        let (url, h) = pipeline_server(vec![3, 2, usize::MAX], false);
        let c = client(&url);
        let bodies: Vec<String> = (0..8).map(|i| format!("b{i}")).collect();
        let reqs: Vec<(&[u8], &str)> = bodies.iter().map(|b| (b.as_bytes(), "")).collect();
        let got = c.post_many(0, &reqs, None, (100, 100));
        let texts: Vec<String> = got.into_iter().map(|a| a.unwrap().text()).collect();
        assert_eq!(texts, bodies);
        drop(c);
        let answered: Vec<usize> = h.join().unwrap().iter().map(|c| c.0).collect();
        assert_eq!(answered, [3, 2, 3]);
    }

    #[test]
    fn a_reset_fails_only_the_requests_it_left_unanswered() {
        // The third request meets a closed connection with no answer.
        let (url, h) = pipeline_server(vec![3], true);
        let c = client(&url);
        let bodies: Vec<String> = (0..5).map(|i| format!("b{i}")).collect();
        let reqs: Vec<(&[u8], &str)> = bodies.iter().map(|b| (b.as_bytes(), "")).collect();
        let got = c.post_many(0, &reqs, None, (100, 100));
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].as_ref().unwrap().text(), "b0");
        assert_eq!(got[1].as_ref().unwrap().text(), "b1");
        for r in &got[2..] {
            let e = r.as_ref().unwrap_err();
            assert!(e.contains("closed") || e.contains("reset"), "{e}");
        }
        h.join().unwrap();
    }
}
