//! The event loop of a pipeline's sender: one `mio::Poll` (epoll) over every connection to the
//! server, so that the pipeline keeps as many requests in flight as its concurrency limit
//! allows on one thread, whatever the server's distance. The sender thread owns the
//! [`Reactor`]: it submits requests and, wherever it would wait (for entries, for a permit, for
//! a batch to fill), turns the loop instead, so answers are handled as they come, on that
//! thread. A request is a [`Job`]: one or more HTTP/1.1 requests written back to back on one
//! connection (pipelined when there are several), whose answers are read in order and handed
//! to the job's completion.
//!
//! - **Connections.** Non-blocking TCP (`mio::net::TcpStream`), `TCP_NODELAY`; `https://`
//!   through a `rustls::ClientConnection` driven by readiness (`write_tls`/`read_tls`/
//!   `process_new_packets`). Answers are framed by [`crate::http1::parse_answer`] (httparse). An
//!   answered connection is kept for the next job (up to `max_idle`), and closed when the
//!   server closes it.
//! - **Timeouts per phase,** as the blocking clients have: connecting (with the TLS handshake
//!   and the request's writing), then each answer, each within `timeout` and never past the
//!   job's deadline. A turn waits for the earliest at the most.
//! - **One wake.** The [`Reactor::waker`] (an eventfd) is what the callers' signal writes
//!   when the sender waits in a turn (see `pipeline::signal`): one write, only then.
//! - **A kept-alive connection the server had closed** fails a job with nothing read: the job
//!   goes once more on a new connection, as do the requests a server left unanswered when it
//!   closed a pipelined connection after an earlier answer.
//!
//! Resolution uses [`crate::net::Resolved`] (the system's resolver, cached for 10 s), on this
//! thread: a slow DNS answer delays the new connections of that moment, never a caller.
//!
//! Why not tokio with hyper: they would bring a runtime of their own (a thread pool by
//! default, or a current-thread runtime that would have to be driven from the sender's waits
//! as this reactor is) and their own connection pool beside the limiter's permits; their cost
//! in library size and CPU per request was not measured. mio is the event loop tokio itself is
//! built on; what is ours here is the request's state (`conn.rs`) and the framing, which is
//! http1.rs's.

mod conn;

use crate::http1::Answer;
use crate::net::Resolved;
use conn::{Conn, Step};
use mio::{Events, Poll, Token, Waker};
use std::io;
use std::sync::{Arc, Mutex};
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

/// Jobs from other threads for a reactor (the replay's), taken at each of its turns; None once
/// the reactor is gone.
#[derive(Default)]
pub(crate) struct Inbox {
    jobs: Mutex<Option<Vec<Job>>>,
}

impl Inbox {
    /// An inbox that takes jobs (until its reactor is dropped).
    pub(crate) fn open() -> Arc<Inbox> {
        Arc::new(Inbox {
            jobs: Mutex::new(Some(Vec::new())),
        })
    }

    /// Whether its reactor is there to take jobs.
    pub(crate) fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Gives the reactor a job and wakes it (`waker`); the job back when the reactor is gone.
    pub(crate) fn post(&self, job: Job, waker: &Waker) -> Result<(), Job> {
        match self.lock().as_mut() {
            Some(v) => v.push(job),
            None => return Err(job),
        }
        let _ = waker.wake();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Vec<Job> {
        self.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Request buffers given back by the jobs that were done with them, for the next requests:
/// a batch's request (about 200 KiB with `sink=otlp`) written into a fresh allocation took a
/// page fault for every 4 KiB of it, and its free gave the pages back (a burst's replay thread
/// spent about 8% of its time in those faults).
#[derive(Default)]
pub(crate) struct Buffers {
    kept: Mutex<Vec<Vec<u8>>>,
}

impl Buffers {
    /// At most this many are kept, and none larger than [`Buffers::LARGEST`].
    const KEPT: usize = 4;
    const LARGEST: usize = 4 << 20;

    /// An empty buffer, one given back if there is one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    fn give_back(&self, mut b: Vec<u8>) {
        if b.capacity() == 0 || b.capacity() > Buffers::LARGEST {
            return;
        }
        b.clear();
        let mut kept = self.lock();
        if kept.len() < Buffers::KEPT {
            kept.push(b);
        }
    }

    /// Lets go of the buffers kept (when there is nothing to send).
    pub(crate) fn clear(&self) {
        *self.lock() = Vec::new();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
    /// Where `bytes` go once the job is done.
    buffers: Option<Arc<Buffers>>,
}

impl Job {
    /// A job of the requests in `bytes`, each ending where `ends` says; `done` gets their
    /// answers (called on the loop's thread, once).
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
            buffers: None,
        }
    }

    /// The job, its bytes given back to `buffers` once it is done.
    pub(crate) fn giving_back_to(mut self, buffers: &Arc<Buffers>) -> Job {
        self.buffers = Some(buffers.clone());
        self
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

    /// Every request without an answer fails with `reason`; the completion runs (see the
    /// `Drop`).
    fn finish(mut self, reason: Option<&str>) {
        if let Some(r) = reason {
            let n = self.ends.len();
            self.answers.resize_with(n, || Err(r.to_string()));
        }
    }
}

impl Drop for Job {
    /// Runs the completion, once: a job dropped unfinished (its loop dropped) gets a reason for
    /// each request without an answer. A panic in it is caught (counted by
    /// [`crate::threads::caught`]): the loop goes on.
    fn drop(&mut self) {
        if let Some(b) = self.buffers.take() {
            b.give_back(std::mem::take(&mut self.bytes));
        }
        let Some(done) = self.done.take() else {
            return;
        };
        let n = self.ends.len();
        self.answers
            .resize_with(n, || Err("the event loop stopped".into()));
        let answers = std::mem::take(&mut self.answers);
        if let Err(p) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(answers)))
        {
            crate::threads::caught(p.as_ref());
        }
    }
}

/// The event loop: its connections, and the jobs on them. Owned by one thread.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    target: Target,
    /// Connections by token (index + 1); None: a free place.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Answered connections, the last kept first out.
    idle: Vec<usize>,
    /// Connections with a job.
    busy: usize,
    /// The tokens of a turn's events.
    ready: Vec<usize>,
    inbox: Arc<Inbox>,
}

impl Reactor {
    /// A loop with no connection yet: an epoll instance and its eventfd; it takes the jobs
    /// of `inbox` at each turn.
    pub(crate) fn new(target: Target, inbox: Arc<Inbox>) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        Ok(Reactor {
            poll,
            events: Events::with_capacity(256),
            waker,
            target,
            conns: Vec::new(),
            free: Vec::new(),
            idle: Vec::new(),
            busy: 0,
            ready: Vec::new(),
            inbox,
        })
    }

    /// What ends a turn early from another thread.
    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Jobs on connections, not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.busy
    }

    /// Puts a job on a connection (a kept one if there is one) and writes what the socket
    /// takes of it now.
    pub(crate) fn submit(&mut self, job: Job) {
        self.start(job, true);
    }

    /// One turn: waits up to `wait` (less if a phase runs out sooner) for readiness or the
    /// waker, moves every ready connection on (answered jobs' completions run here), and
    /// fails the jobs whose phase ran out.
    pub(crate) fn turn(&mut self, wait: Duration) {
        for job in self.inbox.take() {
            self.start(job, true);
        }
        let mut timeout = wait;
        if let Some(end) = self.earliest() {
            // Rounded up to the millisecond epoll counts in, so the wake is never early.
            let left = end.saturating_duration_since(Instant::now());
            timeout = timeout.min(Duration::from_millis(left.as_micros().div_ceil(1000) as u64));
        }
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Not expected of epoll_wait with valid arguments: what is in flight fails,
                // and the caller goes on after a pause rather than spinning.
                self.fail_all(&format!("poll: {e}"));
                std::thread::sleep(timeout.min(Duration::from_millis(10)));
            }
            return;
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(
            self.events
                .iter()
                .filter(|ev| ev.token() != WAKE)
                .map(|ev| ev.token().0 - 1),
        );
        for &i in &ready {
            self.ready(i);
        }
        self.ready = ready;
        for job in self.inbox.take() {
            self.start(job, true);
        }
        self.expire();
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

impl Drop for Reactor {
    /// The jobs still on connections fail, their completions called.
    fn drop(&mut self) {
        let left = self.inbox.lock().take();
        drop(left);
        self.fail_all("the event loop stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job done gives its bytes back (emptied, their capacity kept) after its completion
    /// ran; at most `KEPT` are kept, none past `LARGEST`, and none after `clear`.
    #[test]
    fn a_done_job_gives_its_buffer_back() {
        let buffers = Arc::new(Buffers::default());
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let job = Job::new(vec![7; 1000], vec![1000], None, move |answers| {
            assert_eq!(answers.len(), 1);
            r.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .giving_back_to(&buffers);
        drop(job);
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        let b = buffers.take();
        assert!(b.is_empty() && b.capacity() >= 1000);
        assert_eq!(buffers.take().capacity(), 0);
        for n in [10, 10, 10, 10, 10, Buffers::LARGEST + 1] {
            drop(Job::new(vec![0; n], vec![n], None, |_| {}).giving_back_to(&buffers));
        }
        assert_eq!(buffers.lock().len(), Buffers::KEPT);
        assert!(buffers
            .lock()
            .iter()
            .all(|b| b.capacity() < Buffers::LARGEST));
        buffers.clear();
        assert_eq!(buffers.take().capacity(), 0);
        drop(Job::new(vec![0; 10], vec![10], None, |_| {}));
        assert_eq!(buffers.take().capacity(), 0);
    }
}
