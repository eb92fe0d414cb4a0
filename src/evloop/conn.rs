//! One connection of the event loop and the job on it: a state machine moved on by readiness.
//! `Connecting` until the socket is connected (or the next address is tried), then the job's
//! bytes are written (through rustls for `https://`, whose handshake runs first) while the
//! answers are read and framed, in order.

use super::{Job, Target};
use crate::http1::parse_answer;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ClientConnection;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// What a step left.
pub(super) enum Step {
    /// The socket has nothing more for now.
    Wait,
    /// Every request answered; `keep`: the connection can carry the next job.
    Answered { keep: bool },
    /// The server closed the connection after an answer, with requests of the job left.
    Closed,
    /// No more answers on this connection. `nothing_read`: nothing came back for the job, so
    /// the server may not have seen it (a kept connection it had closed).
    Failed { reason: String, nothing_read: bool },
}

pub(super) struct Conn {
    sock: TcpStream,
    tls: Option<ClientConnection>,
    connecting: bool,
    /// The addresses to try, and the one tried now.
    addrs: Vec<SocketAddr>,
    at_addr: usize,
    pub(super) job: Option<Job>,
    /// The job's bytes written (or handed to rustls) so far.
    sent: usize,
    /// The answers' bytes not yet framed.
    inb: Vec<u8>,
    eof: bool,
    /// When the current phase runs out.
    pub(super) phase_end: Instant,
    /// The job came to a kept connection.
    pub(super) reused: bool,
    /// Bytes of an answer came for the current job.
    read_any: bool,
}

fn failed(reason: impl Into<String>, nothing_read: bool) -> Step {
    Step::Failed {
        reason: reason.into(),
        nothing_read,
    }
}

/// Whether an I/O error means "not now".
fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Conn {
    /// Starts connecting to the first of `addrs` (registered for reading and writing, edge
    /// triggered: every step reads and writes until the socket would block).
    pub(super) fn connect(
        addrs: Vec<SocketAddr>,
        target: &Target,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for (k, addr) in addrs.iter().enumerate() {
            match Self::open(*addr, registry, token) {
                Ok(sock) => {
                    let tls = match &target.tls {
                        Some((config, name)) => {
                            let mut c = ClientConnection::new(config.clone(), name.clone())
                                .map_err(io::Error::other)?;
                            c.set_buffer_limit(None);
                            Some(c)
                        }
                        None => None,
                    };
                    return Ok(Conn {
                        sock,
                        tls,
                        connecting: true,
                        addrs,
                        at_addr: k,
                        job: None,
                        sent: 0,
                        inb: Vec::new(),
                        eof: false,
                        phase_end: Instant::now() + target.timeout,
                        reused: false,
                        read_any: false,
                    });
                }
                Err(e) => last = io::Error::new(e.kind(), format!("connect {addr}: {e}")),
            }
        }
        Err(last)
    }

    fn open(addr: SocketAddr, registry: &Registry, token: Token) -> io::Result<TcpStream> {
        let mut sock = TcpStream::connect(addr)?;
        let _ = sock.set_nodelay(true);
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(sock)
    }

    /// Gives the connection a job; its first phase starts now.
    pub(super) fn assign(&mut self, job: Job, target: &Target, reused: bool) {
        self.sent = job.unanswered_from();
        self.phase_end = phase_end(target, job.deadline);
        self.job = Some(job);
        self.reused = reused;
        self.read_any = false;
    }

    pub(super) fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.sock);
    }

    /// Why the current phase ran out.
    pub(super) fn timeout_reason(&self) -> String {
        if self.connecting {
            match self.addrs.get(self.at_addr) {
                Some(a) => format!("connect {a}: timed out"),
                None => "connect: timed out".into(),
            }
        } else if self.job.as_ref().is_some_and(|j| self.sent < j.bytes.len()) {
            "timed out sending".into()
        } else {
            "receive: timed out".into()
        }
    }

    /// A kept connection without a job had an event: whether it is still good (nothing came,
    /// or only TLS records such as session tickets).
    pub(super) fn idle_ok(&mut self) -> bool {
        match self.read() {
            Ok(()) => !self.eof && self.inb.is_empty(),
            Err(_) => false,
        }
    }

    /// Moves the job on: connects, writes, reads, frames answers.
    pub(super) fn step(&mut self, target: &Target, registry: &Registry, token: Token) -> Step {
        if self.connecting {
            match self.connected() {
                Ok(true) => {
                    self.connecting = false;
                    self.phase_end = phase_end(target, self.job.as_ref().and_then(|j| j.deadline));
                }
                Ok(false) => return Step::Wait,
                Err(e) => {
                    // The next address, if any.
                    let addr = self.addrs[self.at_addr];
                    while self.at_addr + 1 < self.addrs.len() {
                        self.at_addr += 1;
                        let next = self.addrs[self.at_addr];
                        let _ = registry.deregister(&mut self.sock);
                        if let Ok(sock) = Self::open(next, registry, token) {
                            self.sock = sock;
                            return Step::Wait;
                        }
                    }
                    return failed(format!("connect {addr}: {e}"), false);
                }
            }
        }
        let before = self.sent;
        if let Err(e) = self.write() {
            // A kept connection the server had closed fails here with nothing read.
            return failed(format!("send: {e}"), !self.read_any);
        }
        let written = self
            .job
            .as_ref()
            .is_some_and(|j| self.sent >= j.bytes.len());
        if written && before < self.sent {
            // Sending done: the answer's phase starts.
            self.phase_end = phase_end(target, self.job.as_ref().and_then(|j| j.deadline));
        }
        if let Err(e) = self.read() {
            return failed(
                format!("receive: {e}"),
                !self.read_any && self.inb.is_empty(),
            );
        }
        // The TLS handshake may have more to write after what was read.
        if let Err(e) = self.write() {
            return failed(format!("send: {e}"), !self.read_any);
        }
        self.frame(target)
    }

    /// Whether the non-blocking connect has completed (an error: it failed).
    fn connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.sock.take_error()? {
            return Err(e);
        }
        match self.sock.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes what the socket takes of the job's bytes (and of rustls' records).
    fn write(&mut self) -> io::Result<()> {
        let Some(job) = &self.job else {
            return Ok(());
        };
        match &mut self.tls {
            None => {
                while self.sent < job.bytes.len() {
                    match self.sock.write(&job.bytes[self.sent..]) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::WriteZero,
                                "connection closed",
                            ))
                        }
                        Ok(n) => self.sent += n,
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Some(tls) => {
                if self.sent < job.bytes.len() {
                    // Buffered by rustls (no limit) until the handshake is done.
                    self.sent += tls.writer().write(&job.bytes[self.sent..])?;
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut self.sock) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::WriteZero,
                                "connection closed",
                            ))
                        }
                        Ok(_) => {}
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads what the socket has into `inb` (decrypted for TLS); the server's close sets `eof`.
    fn read(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match &mut self.tls {
            None => loop {
                match self.sock.read(&mut chunk) {
                    Ok(0) => {
                        self.eof = true;
                        return Ok(());
                    }
                    Ok(n) => self.inb.extend_from_slice(&chunk[..n]),
                    Err(e) if would_block(&e) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
            Some(tls) => {
                loop {
                    match tls.read_tls(&mut self.sock) {
                        Ok(0) => {
                            self.eof = true;
                            break;
                        }
                        Ok(_) => {
                            tls.process_new_packets()
                                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                loop {
                    match tls.reader().read(&mut chunk) {
                        // A close_notify: the server's side is closed.
                        Ok(0) => {
                            self.eof = true;
                            return Ok(());
                        }
                        Ok(n) => self.inb.extend_from_slice(&chunk[..n]),
                        Err(e) if would_block(&e) => return Ok(()),
                        // Closed without close_notify: the answer's framing decides.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            self.eof = true;
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Takes the whole answers out of `inb`, in order.
    fn frame(&mut self, target: &Target) -> Step {
        let Some(job) = self.job.as_mut() else {
            return Step::Wait;
        };
        while !job.all_answered() {
            match parse_answer(&self.inb, self.eof, target.max_text) {
                Ok(Some(p)) => {
                    self.inb.drain(..p.used);
                    job.answers.push(Ok(p.answer));
                    self.read_any = true;
                    self.phase_end = phase_end(target, job.deadline);
                    if !p.keep {
                        return if job.all_answered() {
                            Step::Answered { keep: false }
                        } else {
                            Step::Closed
                        };
                    }
                }
                Ok(None) => return Step::Wait,
                Err(e) => {
                    let nothing = !self.read_any && self.inb.is_empty();
                    return failed(e, nothing);
                }
            }
        }
        // Bytes past the last answer: the connection is out of step.
        let keep = !self.eof && self.inb.is_empty();
        self.inb.clear();
        Step::Answered { keep }
    }
}

/// The end of a phase that starts now.
fn phase_end(target: &Target, deadline: Option<Instant>) -> Instant {
    let end = Instant::now() + target.timeout;
    deadline.map_or(end, |d| d.min(end))
}
