//! The sender: one thread that takes an entry (a parked one whose retry is due first, else the
//! next in the queue) once a permit of the [`concurrency`](super::concurrency) limiter is free,
//! signs it and hands its request to its event loop ([`crate::evloop`]), and goes on with the
//! next while the answers come; wherever it would wait (for entries, a permit, a batch's
//! linger) it turns the loop, and each answer's outcome goes to the [`policy`](super::policy)
//! and the limiter there (see [`Shared::completed`]). A failed entry is parked with its backoff
//! and the entries behind it go on, so one failing entry never holds the others back. During
//! an outage (or past the close deadline) what is in memory goes to disk in batches instead.
//!
//! Through a proxy there is no event loop: sender threads are started as the limit grows (up to
//! `connections`), each posting its request and waiting for the answer (ureq). Blocking mode's
//! one POST on the caller's thread is here too.

use super::policy::Failure;
use super::{lock, InFlight, Item, Shared};
use crate::buffer;
use crate::config::Sink;
use crate::error::{Error, ErrorKind, Result};
use crate::otlp;
use crate::stats::Stats;
use crate::transport::{Outcome, Post};
use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLockReadGuard};
use std::time::{Duration, Instant};

/// How often a sender looks at the queue while entries keep coming (at the most), and while a
/// batch lingers.
const POLL: Duration = Duration::from_millis(1);
/// The longest a sender sleeps between two looks at the queue while entries keep coming. The
/// interval doubles after each look that finds the queue empty and halves after one that finds
/// a backlog (two entries or more), so that the wake-ups follow the rate: about one look per
/// entry or two at a low rate, one per millisecond at a high one.
const POLL_MAX: Duration = Duration::from_millis(16);
/// How often a sender waiting for a permit looks at the outage and the close deadline (it
/// waits in its event loop's turns, which an answer ends).
const POLL_LIMIT: Duration = Duration::from_millis(10);
/// The longest an idle sender sleeps without a deadline to wake for.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// A sender other than the first exits after this long without work (and no parked entry):
/// a burst's senders do not outlive it.
pub(super) const IDLE_EXIT: Duration = Duration::from_secs(1);
/// The most rarch requests pipelined in one exchange, and their most bytes.
pub(super) const PIPELINE_DEPTH: usize = 16;
const PIPELINE_BYTES: usize = 64 * 1024;
/// A server whose median round trip is under this is near (see [`Shared::pipelining`]).
const PIPELINE_NEAR: Duration = Duration::from_millis(5);

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

/// Puts copies of a sender's entries in its in-flight slot (see `Shared::moving`), in place
/// of the last: one lock and one copy of the bodies per batch.
///
/// `answered`: the last batch's request has been dealt with, so a persist's journal records of
/// it are settled.
fn publish(slot: &Mutex<InFlight>, batch: &[Item], carry: Option<&Item>, answered: bool) {
    let mut f = lock(slot);
    let InFlight {
        bytes,
        ends,
        tickets,
    } = &mut *f;
    if answered {
        for t in tickets.drain(..) {
            t.settle();
        }
    }
    bytes.clear();
    ends.clear();
    for it in batch.iter().chain(carry) {
        bytes.extend_from_slice(&it.body);
        bytes.push(b'\n');
        ends.push((it.service.clone(), bytes.len()));
    }
    if bytes.capacity() > 4 * PIPELINE_BYTES {
        bytes.shrink_to(PIPELINE_BYTES);
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

/// A sender's buffers for building a request: the OTLP encoder, the encoded body and its
/// compressed form (sink=otlp; unused for one rarch entry, which is posted as it is).
#[derive(Default)]
pub(super) struct Scratch {
    enc: otlp::Encoder,
    body: Vec<u8>,
    zipped: Vec<u8>,
}

impl Scratch {
    pub(super) fn new(cfg: &crate::config::Config) -> Scratch {
        Scratch {
            enc: otlp::Encoder::for_config(cfg),
            ..Scratch::default()
        }
    }
}

impl Shared {
    /// Whether requests carry a batch of entries (OTLP) rather than one (the rarch API).
    pub(super) fn batching(&self) -> bool {
        self.cfg.sink == Sink::Otlp
    }

    /// A sender thread's body: [`Shared::worker`], started again after a panic (counted in
    /// `sender_panics`, the message kept as the last error), so that a bug met once does not
    /// leave the pipeline without its sender. After a panic the event loop is gone (its
    /// requests failed and dealt with as failures): the sender goes on with blocking requests.
    pub(super) fn sender(self: &Arc<Self>, slot_index: usize) {
        loop {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.worker(slot_index)))
            {
                Ok(()) => return,
                Err(p) => {
                    let what = crate::threads::caught(p.as_ref());
                    Stats::add(&self.stats.sender_panics, 1);
                    self.note_error(&format!("sender: a panic ({what}); started again"));
                    // A panic that comes back at once does not spin.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// A sender thread. While entries keep coming it polls the queue (every 1 to 16 ms, see
    /// [`POLL_MAX`]) and takes what has accumulated, so a caller never pays for waking it;
    /// after a quiet spell it blocks on the queue (the next caller's entry wakes one sender,
    /// which wakes one more when it finds a backlog), or until the next parked entry is due.
    /// A sender past the first exits after [`IDLE_EXIT`] without work. With sink=otlp it then
    /// fills a batch (see [`Shared::fill`]).
    pub(super) fn worker(self: &Arc<Self>, slot_index: usize) {
        const QUIET: Duration = Duration::from_millis(200);
        let mut idle_since: Option<Instant> = None;
        let mut poll = POLL;
        let mut batch: Vec<Item> = Vec::new();
        // An entry that did not fit in the last batch: the first of the next.
        let mut carry: Option<Item> = None;
        let mut scratch = Scratch::new(&self.cfg);
        let slot = &self.inflight[slot_index % self.inflight.len()];
        // The event loop, owned by this thread from now on (see `Shared::pause`).
        let mut reactor = self.evloop.as_ref().and_then(|l| lock(&l.reactor).take());
        loop {
            // With the event loop, entries are taken only when a request can go: the others
            // wait in the queue, where `on_full` sees them. Answers free permits meanwhile.
            if let Some(r) = reactor.as_mut() {
                while !self.limiter.has_room() && !self.policy.outage() && !self.past_deadline() {
                    r.turn(POLL_LIMIT);
                }
            }
            // Held while entries move from the shared places into this thread's batch, until
            // the batch's copy is in `slot` (see `Shared::moving`).
            let moving = self.moving.read().unwrap_or_else(|p| p.into_inner());
            // The callers' entries, from their lanes into the queue.
            self.collect(None);
            if self.policy.outage() || self.past_deadline() {
                // Straight to disk, in batches: the replay thread sends them once the server
                // is back.
                let mut batch = self.take_parked();
                batch.extend(carry.take());
                batch.extend(self.rx.try_iter().take(1024));
                if !batch.is_empty() {
                    self.made_room();
                    self.spill(batch);
                    idle_since = None;
                    continue;
                }
            }
            let item = match carry.take().or_else(|| self.due_parked()) {
                Some(i) => i,
                None => match self.rx.try_recv() {
                    Ok(i) => {
                        if !self.rx.is_empty() {
                            poll = (poll / 2).max(POLL);
                            // More than this sender takes: the wake goes on to one more.
                            if self.work.has_waiters() {
                                self.work.notify_one();
                            }
                        }
                        i
                    }
                    Err(_) => {
                        drop(moving);
                        let parked = self.retry_len.load(Ordering::Acquire) > 0;
                        let answering = self.jobs_in_flight() > 0;
                        if self.closing.load(Ordering::Acquire) && !parked && !answering {
                            return;
                        }
                        let since = *idle_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < QUIET {
                            self.pause(&mut reactor, poll);
                            poll = (poll * 2).min(POLL_MAX);
                            continue;
                        }
                        poll = POLL;
                        // Asleep until work comes (a caller wakes one sender), a parked entry
                        // is due, or the pipeline closes; at most IDLE_WAIT, a look that costs
                        // one wake-up a second.
                        let wait = self
                            .next_due()
                            .map_or(IDLE_WAIT, |d| d.saturating_duration_since(Instant::now()))
                            .clamp(POLL, IDLE_WAIT);
                        // While closing, it waits for the answers still due (with the event
                        // loop, they come during its turns).
                        let ready = || {
                            !self.rx.is_empty()
                                || self.lanes_pending() > 0
                                || (self.closing.load(Ordering::Acquire)
                                    && self.jobs_in_flight() == 0)
                        };
                        let woke = match reactor.as_mut() {
                            Some(r) => self.work.waiting(
                                wait,
                                || ready() || self.next_due().is_some_and(|d| d <= Instant::now()),
                                |left| r.turn(left),
                            ),
                            None => self.work.wait_for(wait, wait, ready),
                        };
                        if !woke
                            && !parked
                            && since.elapsed() >= IDLE_EXIT
                            && self.retire(slot_index)
                        {
                            return;
                        }
                        continue;
                    }
                },
            };
            idle_since = None;
            batch.push(item);
            let pipelined = !self.batching() && self.pipelining();
            let moving = if self.batching() {
                self.fill(&mut batch, &mut carry, slot, moving, &mut reactor)
            } else {
                if pipelined {
                    self.fill_pipeline(&mut batch);
                }
                moving
            };
            self.made_room();
            if self.policy.outage() || self.past_deadline() {
                self.spill(std::mem::take(&mut batch));
                continue;
            }
            publish(slot, &batch, carry.as_ref(), false);
            drop(moving);
            if let Some(r) = reactor.as_mut() {
                self.dispatch(r, &mut batch, &mut scratch, slot, carry.as_ref());
                publish(slot, &[], carry.as_ref(), true);
                // Answers that came meanwhile, without waiting.
                if r.in_flight() > 0 {
                    r.turn(Duration::ZERO);
                }
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
            if pipelined && batch.len() > 1 {
                self.attempt_many(&mut batch);
            } else {
                self.attempt(&mut batch, &mut scratch);
            }
            // Every entry of the batch has settled, or is parked or in `carry`.
            publish(slot, &[], carry.as_ref(), true);
        }
    }

    /// Whether to pipeline rarch requests: the client can (`http://`), and the server is
    /// near (a median round trip under [`PIPELINE_NEAR`]). A near server is bound by its CPU,
    /// and pipelining spends fewer system calls per entry on both sides; a distant one (or a
    /// slow one: a Go server answers a connection's requests one after the other) gets more
    /// requests in flight from the concurrency limit instead, one per connection.
    pub(super) fn pipelining(&self) -> bool {
        self.transport.pipelines() && self.limiter.recent_rtt_p50() < PIPELINE_NEAR
    }

    /// After a pipelined exchange: the depth grows by one after an exchange answered in full,
    /// and halves after one that a failure (a reset, a timeout) cut short, which costs the
    /// requests behind the failed one their answers.
    pub(super) fn pipelined(&self, outcomes: &[Outcome]) {
        let cut = outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Retry { status: 0, .. }));
        let _ = self
            .pipeline_depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(if cut {
                    (d / 2).max(1)
                } else {
                    (d + 1).min(PIPELINE_DEPTH)
                })
            });
    }

    /// Adds to a batch of rarch entries what is waiting now (due parked entries, then the
    /// queue's), up to the pipeline's depth (at most [`PIPELINE_DEPTH`]) and
    /// [`PIPELINE_BYTES`]; it never waits.
    fn fill_pipeline(&self, batch: &mut Vec<Item>) {
        let mut bytes: usize = batch.iter().map(|i| i.body.len()).sum();
        let depth = self.pipeline_depth.load(Ordering::Relaxed).max(1);
        while batch.len() < depth && bytes < PIPELINE_BYTES {
            let Some(i) = self.due_parked().or_else(|| self.rx.try_recv().ok()) else {
                return;
            };
            bytes += i.body.len();
            batch.push(i);
        }
    }

    /// Adds entries to a batch (parked ones that are due first, then the queue's) until it
    /// holds `batch_max_entries` or `batch_max_bytes` of entries, or `batch_linger_ms` has
    /// passed since it was begun. It goes at once when a flush waits, or the pipeline closes.
    /// An entry that would take the batch past `batch_max_bytes` is left in `carry`.
    /// While it lingers, `moving` is let go, the batch's copy in `slot` (see
    /// `Shared::moving`); it returns the guard, held again.
    fn fill<'a>(
        &'a self,
        batch: &mut Vec<Item>,
        carry: &mut Option<Item>,
        slot: &Mutex<InFlight>,
        mut moving: RwLockReadGuard<'a, ()>,
        reactor: &mut Option<crate::evloop::Reactor>,
    ) -> RwLockReadGuard<'a, ()> {
        let (max_n, max_bytes) = (self.cfg.batch_max_entries, self.cfg.batch_max_bytes);
        let mut bytes: usize = batch.iter().map(|i| i.body.len()).sum();
        let linger_end = Instant::now() + self.cfg.batch_linger;
        loop {
            self.collect(None);
            while batch.len() < max_n && bytes < max_bytes {
                let Some(i) = self.due_parked().or_else(|| self.rx.try_recv().ok()) else {
                    break;
                };
                if bytes + i.body.len() > max_bytes {
                    *carry = Some(i);
                    return moving;
                }
                bytes += i.body.len();
                batch.push(i);
            }
            if batch.len() >= max_n
                || bytes >= max_bytes
                || self.closing.load(Ordering::Acquire)
                || self.flush_want.load(Ordering::Acquire) != u64::MAX
                || self.policy.outage()
            {
                return moving;
            }
            let now = Instant::now();
            if now >= linger_end {
                return moving;
            }
            publish(slot, batch, carry.as_ref(), false);
            drop(moving);
            // Polled, like the idle queue: a caller's send never wakes a lingering sender.
            self.pause(reactor, POLL.min(linger_end - now));
            moving = self.moving.read().unwrap_or_else(|p| p.into_inner());
        }
    }

    /// After entries are taken from the queue: wakes callers waiting for room once the queue is
    /// at most half full.
    pub(super) fn made_room(&self) {
        // Pairs with the waiter's count-then-try (see `Signal::wait_for`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.room.has_waiters() && self.rx.len() <= self.cfg.queue_capacity / 2 {
            self.room.notify();
        }
    }

    /// The request body of `batch`: one rarch entry as it is, or the OTLP request of them all
    /// (compressed with compression=gzip). Entries that are not entries (never made by this
    /// library) are dead-lettered and taken out of the batch.
    pub(super) fn encode(&self, batch: &mut Vec<Item>, sc: &mut Scratch) {
        if !self.batching() {
            return;
        }
        let mut bad = Vec::new();
        for (i, item) in batch.iter().enumerate() {
            if !sc.enc.add(&item.body, item.observed_ns) {
                bad.push(i);
            }
        }
        for i in bad.into_iter().rev() {
            let item = batch.remove(i);
            self.dead_letter(
                &item.service,
                &item.body,
                0,
                "not an entry of the protocol",
                None,
            );
            self.done(item);
            self.settle(1);
        }
        sc.enc.finish(&mut sc.body);
        if self.cfg.gzip {
            otlp::gzip(&sc.body, &mut sc.zipped);
        }
    }

    /// The body [`Shared::encode`] made for `batch`.
    fn body<'a>(&self, batch: &'a [Item], sc: &'a Scratch) -> &'a [u8] {
        match (self.batching(), self.cfg.gzip) {
            (false, _) => &batch[0].body,
            (true, false) => &sc.body,
            (true, true) => &sc.zipped,
        }
    }

    /// One attempt to deliver a batch (one entry with the rarch API); what the policy says of
    /// a failure decides where its entries go. The batch is empty afterwards.
    fn attempt(&self, batch: &mut Vec<Item>, sc: &mut Scratch) {
        let Some(bearer) = self.bearer(&batch[0].service) else {
            self.spill(std::mem::take(batch));
            return;
        };
        self.encode(batch, sc);
        if batch.is_empty() {
            return;
        }
        let Some(permit) = self.permit_for(batch) else {
            return;
        };
        let outcome = self.post(self.body(batch, sc), &bearer);
        permit.answered(backpressure(&outcome));
        self.answered(batch, outcome);
    }

    /// A permit for the batch's request, its entries' attempts counted; None (the batch
    /// written to disk) once an outage begins or the close deadline passes while waiting.
    fn permit_for(&self, batch: &mut Vec<Item>) -> Option<super::concurrency::Permit<'_>> {
        let Some(permit) = self
            .limiter
            .acquire(|| self.policy.outage() || self.past_deadline())
        else {
            self.spill(std::mem::take(batch));
            return None;
        };
        for item in batch.iter_mut() {
            item.tries += 1;
        }
        Some(permit)
    }

    /// Where a batch's entries go after the answer to their request.
    fn answered(&self, batch: &mut Vec<Item>, outcome: Outcome) {
        let n = batch.len() as u64;
        match outcome {
            Outcome::Delivered => {
                self.succeeded();
                Stats::add(&self.stats.delivered, n);
                self.delivered(batch.iter().map(|i| &i.body[..]));
                self.done_all(batch);
            }
            Outcome::Partial { rejected, reason } => {
                self.succeeded();
                self.note_error(&reason);
                self.partly_delivered(batch, rejected, &reason);
            }
            Outcome::Retry {
                status,
                reason,
                retry_after,
            } => self.failed(
                batch,
                Failure::of_status(status),
                status,
                reason,
                retry_after,
            ),
            Outcome::Auth { status, reason } => {
                Stats::add(&self.stats.auth_failures, 1);
                self.tokens.invalidate(&batch[0].service);
                let reason = format!("authentication refused: {reason}");
                self.failed(batch, Failure::Auth, status, reason, None);
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.note_error(&format!("entry rejected: {reason}"));
                for item in batch.iter() {
                    self.dead_letter(&item.service, &item.body, status, &reason, None);
                }
                self.done_all(batch);
            }
        }
    }

    /// Several rarch entries at once, each its own request, pipelined on one connection (see
    /// [`Shared::fill_pipeline`]): one permit for the exchange, and each entry's answer
    /// handled as if it had come alone, except the entries left without an answer by one
    /// failure (a reset, a timeout), which the policy hears of once, as one request.
    fn attempt_many(&self, batch: &mut Vec<Item>) {
        let mut bearers = Vec::with_capacity(batch.len());
        for item in batch.iter() {
            let Some(b) = self.bearer(&item.service) else {
                self.spill(std::mem::take(batch));
                return;
            };
            bearers.push(b);
        }
        let Some(permit) = self.permit_for(batch) else {
            return;
        };
        let reqs: Vec<(&[u8], &str)> = batch
            .iter()
            .zip(&bearers)
            .map(|(i, b)| (&i.body[..], &b[..]))
            .collect();
        let outcomes = self.post_many(&reqs);
        permit.answered_many(outcomes.iter().any(backpressure), reqs.len());
        self.pipelined(&outcomes);
        self.answered_each(batch, outcomes);
    }

    /// The answers to pipelined requests, one per entry of `batch`, in order: each handled as
    /// if it had come alone, except the entries left without an answer by one failure (a
    /// reset, a timeout), which the policy hears of once, as one request.
    fn answered_each(&self, batch: &mut Vec<Item>, outcomes: Vec<Outcome>) {
        let mut one = Vec::with_capacity(1);
        let mut unanswered = Vec::new();
        let mut no_answer = None;
        for (item, outcome) in batch.drain(..).zip(outcomes) {
            if matches!(outcome, Outcome::Retry { status: 0, .. }) {
                unanswered.push(item);
                no_answer.get_or_insert(outcome);
                continue;
            }
            one.push(item);
            self.answered(&mut one, outcome);
        }
        if let Some(o) = no_answer {
            self.answered(&mut unanswered, o);
        }
    }

    /// Requests on the event loop not yet answered.
    fn jobs_in_flight(&self) -> usize {
        self.evloop
            .as_ref()
            .map_or(0, |l| l.jobs.load(Ordering::Acquire))
    }

    /// Sends a batch: its request (one OTLP request, or one rarch request
    /// per entry, pipelined when there are several) goes to the event loop, under a permit of
    /// the limiter, and the batch's copy moves from the sender's slot `staging` to a slot of
    /// its own until the answer (see [`Shared::completed`]). Returns at once, the batch empty;
    /// waits only for a permit while the limit's requests are all in flight.
    fn dispatch(
        self: &Arc<Self>,
        reactor: &mut crate::evloop::Reactor,
        batch: &mut Vec<Item>,
        sc: &mut Scratch,
        staging: &Mutex<InFlight>,
        carry: Option<&Item>,
    ) {
        let Some(l) = &self.evloop else {
            return;
        };
        let signed = if self.batching() { 1 } else { batch.len() };
        let mut bearers = Vec::with_capacity(signed);
        for item in batch.iter().take(signed) {
            let Some(b) = self.bearer(&item.service) else {
                self.spill(std::mem::take(batch));
                return;
            };
            bearers.push(b);
        }
        self.encode(batch, sc);
        if batch.is_empty() {
            return;
        }
        // A permit: answers (during the turns) or the replay give them back.
        let start = loop {
            if let Some(start) = self.limiter.try_take() {
                break start;
            }
            if self.policy.outage() || self.past_deadline() {
                self.spill(std::mem::take(batch));
                return;
            }
            reactor.turn(POLL_LIMIT);
        };
        let Some(k) = lock(&l.free_slots).pop() else {
            // Not expected: the limit never exceeds `connections`, the slots' number.
            self.limiter.cancel();
            self.note_error("transport: no in-flight slot free; the batch went to disk");
            self.spill(std::mem::take(batch));
            return;
        };
        for item in batch.iter_mut() {
            item.tries += 1;
        }
        let mut bytes = l.buffers.take();
        let mut ends = Vec::with_capacity(signed);
        if self.batching() {
            crate::http1::write_request(&mut bytes, &l.head, self.body(batch, sc), &bearers[0]);
            ends.push(bytes.len());
        } else {
            for (item, bearer) in batch.iter().zip(&bearers) {
                crate::http1::write_request(&mut bytes, &l.head, &item.body, bearer);
                ends.push(bytes.len());
            }
        }
        {
            // The copy moves with its journal records, with no persist in between.
            let _moving = self.moving.read().unwrap_or_else(|p| p.into_inner());
            let slot = &self.inflight[k];
            let mut staged = lock(staging);
            if carry.is_none() && staged.ends.len() == batch.len() {
                // The sender's copy is the batch's, no more: it moves as it is (not copied
                // again), and the slot's emptied buffers serve the next batch.
                std::mem::swap(&mut *staged, &mut *lock(slot));
            } else {
                let tickets = std::mem::take(&mut staged.tickets);
                drop(staged);
                publish(slot, batch, None, false);
                lock(slot).tickets = tickets;
                publish(staging, &[], carry, false);
            }
        }
        let batch = std::mem::take(batch);
        l.jobs.fetch_add(1, Ordering::AcqRel);
        let sh = self.clone();
        reactor.submit(
            crate::evloop::Job::new(bytes, ends, self.deadline(), move |answers| {
                sh.completed(batch, answers, start, k)
            })
            .giving_back_to(&l.buffers),
        );
    }

    /// During a turn of the sender's event loop, the answers to a batch's request (see
    /// [`Shared::dispatch`]): the permit goes back, the entries go where the outcomes say, and
    /// the slot `k` is settled and freed.
    fn completed(
        &self,
        mut batch: Vec<Item>,
        answers: crate::evloop::Answers,
        start: Instant,
        k: usize,
    ) {
        let Some(l) = &self.evloop else {
            return;
        };
        let outcomes: Vec<Outcome> = answers
            .into_iter()
            .map(|a| crate::transport::outcome_of(a, l.proto))
            .collect();
        let n = outcomes.len();
        self.limiter
            .finish(start, outcomes.iter().any(backpressure), n);
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if n > 1 {
                self.pipelined(&outcomes);
                self.answered_each(&mut batch, outcomes);
            } else if let Some(o) = outcomes.into_iter().next() {
                self.answered(&mut batch, o);
            }
        }));
        if let Err(p) = handled {
            let what = crate::threads::caught(p.as_ref());
            Stats::add(&self.stats.sender_panics, 1);
            self.note_error(&format!(
                "transport: dealing with an answer panicked ({what})"
            ));
            // What the panic left in the batch is not lost: to disk.
            self.spill(batch);
        }
        publish(&self.inflight[k], &[], None, true);
        lock(&l.free_slots).push(k);
        l.jobs.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits `d`: in the event loop's turns when there is one (answers are handled
    /// meanwhile), else asleep.
    fn pause(&self, reactor: &mut Option<crate::evloop::Reactor>, d: Duration) {
        match reactor.as_mut() {
            Some(r) => r.turn(d),
            None => std::thread::sleep(d),
        }
    }

    /// Every entry of the batch is safe.
    fn done_all(&self, batch: &mut Vec<Item>) {
        let n = batch.len() as u64;
        for item in batch.drain(..) {
            self.done(item);
        }
        self.settle(n);
    }

    /// An OTLP partial success: `rejected` of the batch's records were refused, and OTLP does
    /// not say which. All refused: each is dead-lettered with the reason. Some: they are
    /// counted as rejected (the reason is the last error) and the rest as delivered.
    pub(super) fn partly_delivered(&self, batch: &mut Vec<Item>, rejected: u64, reason: &str) {
        let n = batch.len() as u64;
        let k = rejected.min(n);
        if k == n {
            for item in batch.iter() {
                self.dead_letter(&item.service, &item.body, 200, reason, None);
            }
        } else {
            Stats::add(&self.stats.rejected, k);
            Stats::add(&self.stats.delivered, n - k);
        }
        self.done_all(batch);
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
                let what = crate::threads::caught(p.as_ref());
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

    /// [`Shared::post`] for several requests, pipelined.
    pub(super) fn post_many(&self, reqs: &[(&[u8], &str)]) -> Vec<Outcome> {
        let deadline = self.deadline();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.transport.post_many(reqs, deadline)
        })) {
            Ok(o) if o.len() == reqs.len() => o,
            _ => {
                Stats::add(&self.stats.sender_panics, 1);
                let reason = "transport: a sending thread panicked; retried".to_string();
                self.note_error(&reason);
                reqs.iter()
                    .map(|_| Outcome::Retry {
                        status: 0,
                        reason: reason.clone(),
                        retry_after: None,
                    })
                    .collect()
            }
        }
    }

    /// A failed attempt: its entries are dead-lettered if they are poison, go to disk during
    /// an outage or after `max_retries` in memory, else are parked for a retry after the
    /// backoff. The policy hears of one failure per request, whatever the batch's size.
    fn failed(
        &self,
        batch: &mut Vec<Item>,
        kind: Failure,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        Stats::add(&self.stats.failed_attempts, 1);
        self.note_error(&reason);
        let strikes = batch.iter().map(|i| i.strikes).max().unwrap_or(0);
        let tries = batch.iter().map(|i| i.tries).max().unwrap_or(0);
        let v = self
            .policy
            .failure(self.now_ms(), entry_key(&batch[0].body), strikes, kind);
        if v.began {
            self.events.push(
                super::events::Kind::OutageStarted,
                status,
                batch.len() as u64,
                "",
                &reason,
            );
        }
        if v.poisoned {
            for item in batch.iter() {
                self.dead_letter(&item.service, &item.body, status, &reason, Some(v.strikes));
            }
            self.done_all(batch);
            return;
        }
        let struck = v.strikes.saturating_sub(strikes);
        for item in batch.iter_mut() {
            item.strikes = item.strikes.saturating_add(struck);
        }
        if v.outage || tries > self.cfg.max_retries {
            self.spill(std::mem::take(batch));
            self.replay_wake.notify();
            return;
        }
        Stats::add(&self.stats.retried, batch.len() as u64);
        let delay = self.policy.retry_delay(tries, retry_after, Shared::jitter);
        let due = Instant::now() + delay;
        for item in batch.drain(..) {
            self.park(item, due);
        }
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

    /// Calls `f` on every parked entry, in place.
    pub(super) fn each_parked(&self, mut f: impl FnMut(&mut Item)) {
        let mut heap = lock(&self.retry);
        let mut v = std::mem::take(&mut *heap).into_vec();
        for p in &mut v {
            f(&mut p.item);
        }
        *heap = std::collections::BinaryHeap::from(v);
    }

    /// Takes every parked entry out, e.g. to write them to disk.
    pub(super) fn take_parked(&self) -> Vec<Item> {
        if self.retry_len.load(Ordering::Acquire) == 0 {
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
    pub(super) fn send_now(&self, item: Item) -> Result<()> {
        let bearer = self
            .try_bearer(&item.service)
            .map_err(|e| Error::new(ErrorKind::Config, e.message))?;
        let mut batch = vec![item];
        let mut sc = Scratch::new(&self.cfg);
        self.encode(&mut batch, &mut sc);
        if batch.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "not an entry of the protocol",
            ));
        }
        match self.transport.post(self.body(&batch, &sc), &bearer, None) {
            Outcome::Delivered => {
                self.succeeded();
                Stats::add(&self.stats.delivered, 1);
                self.done_all(&mut batch);
                Ok(())
            }
            Outcome::Partial { reason, .. } => {
                self.succeeded();
                self.partly_delivered(&mut batch, 1, &reason);
                Err(Error::new(
                    ErrorKind::Rejected,
                    format!(
                        "the server rejected the entry ({reason}); written to {}",
                        buffer::REJECTED
                    ),
                ))
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                for item in &batch {
                    self.dead_letter(&item.service, &item.body, status, &reason, None);
                }
                self.done_all(&mut batch);
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
                    self.tokens.invalidate(&batch[0].service);
                }
                // The replay thread retries it; the policy knows the server failed.
                let kind = if auth {
                    Failure::Auth
                } else {
                    Failure::of_status(status)
                };
                let v = self
                    .policy
                    .failure(self.now_ms(), entry_key(&batch[0].body), 0, kind);
                for item in batch.iter_mut() {
                    item.strikes = v.strikes;
                }
                let kept = self.spill(batch) == 1;
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
