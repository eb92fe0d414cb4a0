//! The sender threads (started as the concurrency limit grows, up to `connections`): each
//! takes an entry (a parked one whose retry is due first, else the next in the queue), waits
//! for a permit of the [`concurrency`](super::concurrency) limiter, signs and POSTs it, and
//! hands the outcome to the [`policy`](super::policy) and the limiter. A failed entry is parked with its backoff and the sender goes on
//! with the entries behind it, so one failing entry never holds the others back. During an
//! outage (or past the close deadline) what is in memory goes to disk in batches instead.
//! Blocking mode's one POST on the caller's thread is here too.

use super::policy::Failure;
use super::{lock, Item, Shared};
use crate::buffer;
use crate::error::{Error, ErrorKind, Result};
use crate::stats::Stats;
use crate::transport::Outcome;
use crossbeam_channel::RecvTimeoutError;
use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An entry waiting for its retry. Ordered so that a max-heap's top is the earliest due (and,
/// at the same instant, the first parked).
pub(super) struct Parked {
    due: Instant,
    seq: u64,
    item: Item,
}

impl PartialEq for Parked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Parked {}
impl PartialOrd for Parked {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Parked {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .due
            .cmp(&self.due)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Whether an outcome tells the server to slow down: 429, 503, or no answer (a timeout, a
/// refused or reset connection).
pub(super) fn backpressure(o: &Outcome) -> bool {
    matches!(o, Outcome::Retry { status, .. } if matches!(status, 0 | 429 | 503))
}

/// Tells entries apart for the policy's "different entries" count: the address of the body,
/// which is the same for every attempt of one entry and different for entries alive at once.
pub(super) fn entry_key(body: &[u8]) -> u64 {
    body.as_ptr() as u64
}

impl Shared {
    /// A sender thread. While entries keep coming it polls the queue every millisecond and
    /// takes what has accumulated, so a caller never pays for waking it; after a quiet spell
    /// it blocks on the queue (the next caller's send wakes it once), or until the next
    /// parked entry is due.
    pub(super) fn worker(self: &Arc<Self>) {
        const POLL: Duration = Duration::from_millis(1);
        const QUIET: Duration = Duration::from_millis(200);
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.policy.outage() || self.past_deadline() {
                // Straight to disk, in batches: the replay thread sends them once the server
                // is back.
                let mut batch = self.take_parked(true);
                batch.extend(self.rx.try_iter().take(1024));
                if !batch.is_empty() {
                    self.made_room();
                    self.spill(batch);
                    idle_since = None;
                    continue;
                }
            }
            let item = match self.due_parked() {
                Some(i) => i,
                None => match self.rx.try_recv() {
                    Ok(i) => i,
                    Err(_) => {
                        let parked = self.retry_len.load(Ordering::Acquire) > 0;
                        if self.closing.load(Ordering::Acquire) && !parked {
                            return;
                        }
                        let since = *idle_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < QUIET {
                            std::thread::sleep(POLL);
                            continue;
                        }
                        let wait = self
                            .next_due()
                            .map_or(Duration::from_millis(100), |d| {
                                d.saturating_duration_since(Instant::now())
                            })
                            .clamp(POLL, Duration::from_millis(100));
                        match self.rx.recv_timeout(wait) {
                            Ok(i) => i,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                },
            };
            idle_since = None;
            self.made_room();
            if self.policy.outage() || self.past_deadline() {
                self.spill(vec![item]);
                continue;
            }
            // The limit has grown past the senders there are, and there is work: one more.
            let n = self.sender_count.load(Ordering::Acquire);
            if n < self.cfg.connections
                && self.limiter.limit() > n
                && (!self.rx.is_empty() || self.retry_len.load(Ordering::Acquire) > 0)
            {
                if let Err(e) = self.add_sender() {
                    self.note_error(&e.message);
                }
            }
            self.attempt(item);
        }
    }

    /// After entries are taken from the queue: wakes callers waiting for room once the queue is
    /// at most half full.
    fn made_room(&self) {
        // Pairs with the waiter's count-then-try (see `Signal::wait_for`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.room.has_waiters() && self.rx.len() <= self.cfg.queue_capacity / 2 {
            self.room.notify();
        }
    }

    /// One attempt to deliver `item`; what the policy says of a failure decides where it goes.
    fn attempt(&self, mut item: Item) {
        let Some(bearer) = self.bearer(&item.service) else {
            self.spill(vec![item]);
            return;
        };
        let Some(permit) = self
            .limiter
            .acquire(|| self.policy.outage() || self.past_deadline())
        else {
            self.spill(vec![item]);
            return;
        };
        item.tries += 1;
        let outcome = self.post(&item.body, &bearer);
        permit.answered(backpressure(&outcome));
        match outcome {
            Outcome::Delivered => {
                if self.policy.success(self.now_ms()) {
                    self.progress.notify();
                }
                Stats::add(&self.stats.delivered, 1);
                self.done(item);
                self.settle(1);
            }
            Outcome::Retry {
                status,
                reason,
                retry_after,
            } => self.failed(
                item,
                Failure::of_status(status),
                status,
                reason,
                retry_after,
            ),
            Outcome::Auth { status, reason } => {
                Stats::add(&self.stats.auth_failures, 1);
                self.tokens.invalidate(&item.service);
                let reason = format!("authentication refused: {reason}");
                self.failed(item, Failure::Auth, status, reason, None);
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.note_error(&format!("entry rejected: {reason}"));
                self.dead_letter(&item.service, &item.body, status, &reason, None);
                self.done(item);
                self.settle(1);
            }
        }
    }

    /// One POST. A panic in the transport (a bug, or one of a library it uses) does not take the
    /// sending thread down: it is counted (`sender_panics`), reported as the last error, and
    /// the attempt fails as a request with no answer, so the entry is retried like any other.
    pub(super) fn post(&self, body: &[u8], bearer: &str) -> Outcome {
        let deadline = self.deadline();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.transport.post(body, bearer, deadline)
        })) {
            Ok(o) => o,
            Err(p) => {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                Stats::add(&self.stats.sender_panics, 1);
                let reason = format!("transport: a sending thread panicked ({what}); retried");
                self.note_error(&reason);
                Outcome::Retry {
                    status: 0,
                    reason,
                    retry_after: None,
                }
            }
        }
    }

    /// A failed attempt: dead-lettered if it is poison, to disk during an outage or after
    /// `max_retries` in memory, else parked for a retry after its backoff.
    fn failed(
        &self,
        mut item: Item,
        kind: Failure,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        Stats::add(&self.stats.failed_attempts, 1);
        self.note_error(&reason);
        let v = self
            .policy
            .failure(self.now_ms(), entry_key(&item.body), item.strikes, kind);
        item.strikes = v.strikes;
        if v.poisoned {
            self.dead_letter(&item.service, &item.body, status, &reason, Some(v.strikes));
            self.done(item);
            self.settle(1);
            return;
        }
        if v.outage || item.tries > self.cfg.max_retries {
            self.spill(vec![item]);
            self.replay_wake.notify();
            return;
        }
        Stats::add(&self.stats.retried, 1);
        let delay = self
            .policy
            .retry_delay(item.tries, retry_after, Shared::jitter);
        self.park(item, Instant::now() + delay);
    }

    /// Parks an entry until `due` (while closing, at most `backoff_initial` from now, so that
    /// `rarch_logger_free` is not held by a long backoff); to disk instead when a queue's worth
    /// is parked already.
    fn park(&self, item: Item, mut due: Instant) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        if self.closing.load(Ordering::Acquire) {
            due = due.min(Instant::now() + self.cfg.backoff_initial);
        }
        let mut heap = lock(&self.retry);
        if heap.len() >= self.cfg.queue_capacity {
            drop(heap);
            self.spill(vec![item]);
            return;
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        heap.push(Parked { due, seq, item });
        self.retry_len.store(heap.len(), Ordering::Release);
    }

    /// A parked entry whose retry is due, if any.
    fn due_parked(&self) -> Option<Item> {
        if self.retry_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut heap = lock(&self.retry);
        if heap.peek()?.due > Instant::now() {
            return None;
        }
        let p = heap.pop()?;
        self.retry_len.store(heap.len(), Ordering::Release);
        Some(p.item)
    }

    fn next_due(&self) -> Option<Instant> {
        if self.retry_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        lock(&self.retry).peek().map(|p| p.due)
    }

    /// Takes the parked entries out (`all`), e.g. to write them to disk.
    pub(super) fn take_parked(&self, all: bool) -> Vec<Item> {
        if !all || self.retry_len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut heap = lock(&self.retry);
        let v: Vec<Item> = std::mem::take(&mut *heap)
            .into_iter()
            .map(|p| p.item)
            .collect();
        self.retry_len.store(0, Ordering::Release);
        v
    }

    /// Blocking mode: one POST on the caller's thread; what is not delivered goes to disk.
    pub(super) fn send_now(&self, mut item: Item) -> Result<()> {
        let bearer = self
            .tokens
            .bearer(&item.service)
            .map_err(|e| Error::new(ErrorKind::Config, e.message))?;
        match self.transport.post(&item.body, &bearer, None) {
            Outcome::Delivered => {
                self.policy.success(self.now_ms());
                Stats::add(&self.stats.delivered, 1);
                Ok(())
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.dead_letter(&item.service, &item.body, status, &reason, None);
                Err(Error::new(
                    ErrorKind::Rejected,
                    format!(
                        "the server rejected the entry ({reason}); written to {}",
                        buffer::REJECTED
                    ),
                ))
            }
            o @ (Outcome::Retry { .. } | Outcome::Auth { .. }) => {
                let (auth, status, reason) = match o {
                    Outcome::Auth { status, reason } => (true, status, reason),
                    Outcome::Retry { status, reason, .. } => (false, status, reason),
                    _ => (false, 0, String::new()),
                };
                Stats::add(&self.stats.failed_attempts, 1);
                if auth {
                    Stats::add(&self.stats.auth_failures, 1);
                    self.tokens.invalidate(&item.service);
                }
                // The replay thread retries it; the policy knows the server failed.
                let kind = if auth {
                    Failure::Auth
                } else {
                    Failure::of_status(status)
                };
                let v = self
                    .policy
                    .failure(self.now_ms(), entry_key(&item.body), 0, kind);
                item.strikes = v.strikes;
                let kept = self.spill(vec![item]) == 1;
                self.replay_wake.notify();
                let where_ = if kept {
                    "kept in the buffer file for replay"
                } else {
                    "and the buffer file could not be written (counted as dropped_io)"
                };
                Err(Error::new(
                    if auth {
                        ErrorKind::Auth
                    } else {
                        ErrorKind::Transport
                    },
                    format!("not delivered ({reason}); {where_}"),
                ))
            }
        }
    }
}
