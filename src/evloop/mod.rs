//! The I/O thread of a pipeline: one `mio::Poll` (epoll) over every connection to the server,
//! so that the pipeline keeps as many requests in flight as its concurrency limit allows on one
//! thread, whatever the server's distance. A request is a [`Job`]: one or more HTTP/1.1
//! requests written back to back on one connection (pipelined when there are several), whose
//! answers are read in order and handed to the job's completion, on this thread.
//!
//! - **Connections.** Non-blocking TCP (`mio::net::TcpStream`), `TCP_NODELAY`; `https://`
//!   through a `rustls::ClientConnection` driven by readiness (`write_tls`/`read_tls`/
//!   `process_new_packets`). Answers are framed by [`crate::http1::parse_answer`] (httparse). An
//!   answered connection is kept for the next job (up to `max_idle`), and closed when the
//!   server closes it.
//! - **Timeouts per phase,** as the blocking clients have: connecting (with the TLS handshake
//!   and the request's writing), then each answer, each within `timeout` and never past the
//!   job's deadline. The loop waits for the earliest; with no request in flight it waits
//!   without a timeout: an idle pipeline's I/O thread never wakes.
//! - **One wake.** [`Loop::submit`] queues a job and writes the eventfd (`mio::Waker`) only
//!   when the loop is asleep in `poll` or about to be.
//! - **A kept-alive connection the server had closed** fails a job with nothing read: the job
//!   goes once more on a new connection, as do the requests a server left unanswered when it
//!   closed a pipelined connection after an earlier answer.
//!
//! Resolution uses [`crate::net::Resolved`] (the system's resolver, cached for 10 s), on this
//! thread: a slow DNS answer delays the new connections of that moment, never a caller.
//!
//! Why not tokio with hyper: they would bring a runtime of their own (a thread pool by
//! default, or a current-thread runtime driven here), about 1.5 MB more of library and several
//! times the code on a request's path; mio is the event loop tokio itself is built on, and
//! what is ours here is the request's state (about 400 lines).

mod conn;

use crate::http1::Answer;
use crate::net::Resolved;
use conn::{Conn, Step};
use mio::{Events, Poll, Token, Waker};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The waker's token; a connection's is its index plus one.
const WAKE: Token = Token(0);

/// Where the loop's connections go, and how.
pub(crate) struct Target {
    pub addrs: Arc<Resolved>,
    /// `https://`: the client configuration and the server's name.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// Each phase's limit.
    pub timeout: Duration,
    /// How much of an answer's body is kept: any answer, a 2xx one.
    pub max_text: (usize, usize),
    /// Answered connections kept open for the next jobs.
    pub max_idle: usize,
}

/// What a job's completion receives: an answer for each request, in order, or why none came.
pub(crate) type Answers = Vec<Result<Answer, String>>;

/// One or more requests for one connection, and what to do with their answers.
pub(crate) struct Job {
    /// The requests, back to back.
    bytes: Vec<u8>,
    /// Where each request ends in `bytes`.
    ends: Vec<usize>,
    answers: Answers,
    deadline: Option<Instant>,
    done: Option<Box<dyn FnOnce(Answers) + Send>>,
    /// Sent again on a new connection already.
    retried: bool,
}

impl Job {
    /// A job of the requests in `bytes`, each ending where `ends` says; `done` gets their
    /// answers (called on the I/O thread, once).
    pub(crate) fn new(
        bytes: Vec<u8>,
        ends: Vec<usize>,
        deadline: Option<Instant>,
        done: impl FnOnce(Answers) + Send + 'static,
    ) -> Job {
        Job {
            bytes,
            answers: Vec::with_capacity(ends.len()),
            ends,
            deadline,
            done: Some(Box::new(done)),
            retried: false,
        }
    }

    /// Where the first request without an answer starts.
    fn unanswered_from(&self) -> usize {
        match self.answers.len() {
            0 => 0,
            k => self.ends[k - 1],
        }
    }

    fn all_answered(&self) -> bool {
        self.answers.len() >= self.ends.len()
    }

    /// Every request without an answer fails with `reason`; the completion runs. A panic in
    /// it is caught (counted by [`crate::threads::caught`]): the loop goes on.
    fn finish(mut self, reason: Option<&str>) {
        if let Some(r) = reason {
            let n = self.ends.len();
            self.answers.resize_with(n, || Err(r.to_string()));
        }
        if let Some(done) = self.done.take() {
            let answers = std::mem::take(&mut self.answers);
            if let Err(p) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(answers)))
            {
                crate::threads::caught(p.as_ref());
            }
        }
    }
}

impl Drop for Job {
    /// A job dropped unfinished (the loop's thread ended) still reaches its completion.
    fn drop(&mut self) {
        if self.done.is_some() {
            let n = self.ends.len();
            self.answers
                .resize_with(n, || Err("the I/O thread stopped".into()));
            if let Some(done) = self.done.take() {
                let answers = std::mem::take(&mut self.answers);
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(answers)));
            }
        }
    }
}

struct Inner {
    queue: Mutex<Vec<Job>>,
    /// The loop is in `poll`, or about to be: a submit must wake it.
    asleep: AtomicBool,
    stop: AtomicBool,
    waker: Waker,
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Vec<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The I/O thread and the way to give it jobs.
pub(crate) struct Loop {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Loop {
    /// Starts the I/O thread (`name`), with the asynchronous signals blocked; the error says
    /// why it could not be.
    pub(crate) fn start(target: Target, name: &str) -> io::Result<Loop> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let inner = Arc::new(Inner {
            queue: Mutex::default(),
            asleep: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            waker,
        });
        let i = inner.clone();
        let t = crate::threads::spawn(name, move || Reactor::new(poll, target).run(&i))?;
        Ok(Loop {
            inner,
            thread: Mutex::new(Some(t)),
        })
    }

    /// Gives the loop a job; wakes it only if it sleeps.
    pub(crate) fn submit(&self, job: Job) {
        self.inner.queue().push(job);
        // Pairs with the loop's store of `asleep` before its last look at the queue.
        if self.inner.asleep.swap(false, Ordering::SeqCst) {
            let _ = self.inner.waker.wake();
        }
    }

    /// Stops the loop and joins its thread: the jobs it still has fail ("the I/O thread
    /// stopped"), their completions called.
    pub(crate) fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        let _ = self.inner.waker.wake();
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Never joined from its own thread (a completion that dropped the last owner).
        if let Some(t) = t.filter(|t| t.thread().id() != std::thread::current().id()) {
            let _ = t.join();
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The loop's own state, on its thread.
struct Reactor {
    poll: Poll,
    target: Target,
    /// Connections by token (index + 1); None: a free place.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Answered connections, the last kept first out.
    idle: Vec<usize>,
    /// Connections with a job.
    busy: usize,
}

impl Reactor {
    fn new(poll: Poll, target: Target) -> Reactor {
        Reactor {
            poll,
            target,
            conns: Vec::new(),
            free: Vec::new(),
            idle: Vec::new(),
            busy: 0,
        }
    }

    fn run(mut self, inner: &Inner) {
        let mut events = Events::with_capacity(256);
        loop {
            let jobs = std::mem::take(&mut *inner.queue());
            for job in jobs {
                self.start(job, true);
            }
            if inner.stop.load(Ordering::SeqCst) {
                break;
            }
            let timeout = self.earliest().map(|end| {
                // Rounded up to the millisecond epoll counts in, so the wake is never early.
                let left = end.saturating_duration_since(Instant::now());
                Duration::from_millis(left.as_micros().div_ceil(1000) as u64)
            });
            inner.asleep.store(true, Ordering::SeqCst);
            let timeout = if inner.queue().is_empty() && !inner.stop.load(Ordering::SeqCst) {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            let polled = self.poll.poll(&mut events, timeout);
            inner.asleep.store(false, Ordering::SeqCst);
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Not expected of epoll_wait with valid arguments: what is in flight
                    // fails, and the loop goes on after a pause rather than spinning.
                    self.fail_all(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == WAKE {
                    continue;
                }
                self.ready(ev.token().0 - 1);
            }
            self.expire();
        }
        self.fail_all("the I/O thread stopped");
    }

    /// The earliest phase end of a connection with a job.
    fn earliest(&self) -> Option<Instant> {
        if self.busy == 0 {
            return None;
        }
        self.conns
            .iter()
            .flatten()
            .filter(|c| c.job.is_some())
            .map(|c| c.phase_end)
            .min()
    }

    /// Puts a job on a connection: a kept one if `reuse` and there is one, else a new one.
    fn start(&mut self, job: Job, reuse: bool) {
        let now = Instant::now();
        if job.deadline.is_some_and(|d| d <= now) {
            job.finish(Some("timed out (the close deadline passed)"));
            return;
        }
        if reuse {
            if let Some(i) = self.idle.pop() {
                if let Some(c) = self.conns[i].as_mut() {
                    c.assign(job, &self.target, true);
                    self.busy += 1;
                    self.drive(i);
                    return;
                }
            }
        }
        let addrs = match self.target.addrs.addrs() {
            Ok(a) => a,
            Err(e) => {
                job.finish(Some(&e.to_string()));
                return;
            }
        };
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        match Conn::connect(addrs, &self.target, self.poll.registry(), Token(i + 1)) {
            Ok(mut c) => {
                c.assign(job, &self.target, false);
                self.conns[i] = Some(c);
                self.busy += 1;
                self.drive(i);
            }
            Err(e) => {
                self.free.push(i);
                job.finish(Some(&e.to_string()));
            }
        }
    }

    /// A readiness event for connection `i`.
    fn ready(&mut self, i: usize) {
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return;
        };
        if c.job.is_some() {
            self.drive(i);
        } else if !c.idle_ok() {
            // The server closed a kept connection (or sent what it should not have).
            self.idle.retain(|&j| j != i);
            self.close(i);
        }
    }

    /// Moves connection `i`'s job on as far as the socket allows, and deals with its end.
    fn drive(&mut self, i: usize) {
        let registry = self.poll.registry();
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return;
        };
        let step = c.step(&self.target, registry, Token(i + 1));
        self.after(i, step);
    }

    fn after(&mut self, i: usize, step: Step) {
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return;
        };
        match step {
            Step::Wait => {}
            Step::Answered { keep } => {
                let job = c.job.take();
                self.busy -= 1;
                if keep && self.idle.len() < self.target.max_idle {
                    self.idle.push(i);
                } else {
                    self.close(i);
                }
                if let Some(job) = job {
                    job.finish(None);
                }
            }
            Step::Closed => {
                // The server closed after some answers: the rest go once more, on a new
                // connection.
                let job = c.job.take();
                self.busy -= 1;
                self.close(i);
                if let Some(mut job) = job {
                    if job.retried {
                        job.finish(Some("the server closed the connection before answering"));
                    } else {
                        job.retried = true;
                        self.start(job, false);
                    }
                }
            }
            Step::Failed {
                reason,
                nothing_read,
            } => {
                let reused = c.reused;
                let job = c.job.take();
                self.busy -= 1;
                self.close(i);
                if let Some(mut job) = job {
                    if reused && nothing_read && !job.retried {
                        job.retried = true;
                        self.start(job, false);
                    } else {
                        job.finish(Some(&reason));
                    }
                }
            }
        }
    }

    /// Fails the jobs whose phase has run out.
    fn expire(&mut self) {
        if self.busy == 0 {
            return;
        }
        let now = Instant::now();
        for i in 0..self.conns.len() {
            let late = match &self.conns[i] {
                Some(c) => c.job.is_some() && c.phase_end <= now,
                None => false,
            };
            if late {
                let reason = self.conns[i]
                    .as_ref()
                    .map_or_else(String::new, |c| c.timeout_reason());
                self.after(
                    i,
                    Step::Failed {
                        reason,
                        nothing_read: false,
                    },
                );
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut c) = self.conns[i].take() {
            c.deregister(self.poll.registry());
            self.free.push(i);
        }
    }

    fn fail_all(&mut self, reason: &str) {
        for i in 0..self.conns.len() {
            let job = self.conns[i].as_mut().and_then(|c| c.job.take());
            if let Some(job) = job {
                self.busy -= 1;
                self.close(i);
                job.finish(Some(reason));
            }
        }
    }
}
