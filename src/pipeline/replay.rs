//! The replay thread: sends the disk buffer back to the server, and probes it during an outage.
//!
//! - **Rounds.** While the server is up, a round claims each service's files in turn (oldest
//!   first, `buffer.jsonl` last) and sends their lines with up to `connections` requests in
//!   flight: rounds of requests on the sender's event loop, or (through a proxy, where there is
//!   none) as many threads. A line that fails goes on past: it is appended to `buffer.jsonl` at once,
//!   with its strikes as `retry_count`, and the lines behind it keep going. A round that had
//!   failures is followed by the next one at least `backoff_initial` after it began while
//!   rounds deliver, and after a growing backoff while they deliver nothing, so the failed lines are tried again
//!   later, not in a hot loop. A line that is poison (see
//!   [`policy`](super::policy)) is dead-lettered.
//! - **Windows.** A claimed file is read and sent [`WINDOW_BYTES`] of whole lines at a time:
//!   the replay holds a window, not the file. Once a window ends with lines not settled (a stop,
//!   a probe), the rest of the file goes back with them unread by the server.
//! - **Progress.** Every [`PROGRESS_EVERY`] lines, the index below which every line of the
//!   claimed file is settled is written beside it (`<claimed>.progress`, no fsync). A process
//!   that adopts a claimed file after a crash starts there, so a SIGKILL costs at most that
//!   many lines, plus those in flight (up to `connections`, twice: the ones the server had
//!   not answered yet, and the ones waiting for a permit), sent twice.
//! - **Overflow segments.** The raw records a burst spilled (sealed overflow segments, and
//!   any journal segment a dead process left) are sent as they are, a segment at a time after
//!   the service's files, each record marked settled in the segment as its entry settles:
//!   they are not written into `buffer.jsonl` and read back first. What a stop leaves in one
//!   stays there, for the next round or, in an outage, for `buffer.jsonl`.
//! - **Probes.** During an outage one line is sent per backoff step (full jitter, at most
//!   `backoff_max` apart). A failed probe line is moved to the end of the backlog, so the next
//!   probe sends another one: a poison line never keeps an outage going.

use super::policy::Failure;
use super::sender::backpressure;
use super::spill::with_retry_count;
use super::{lock, Shared, RECOVERY_EVERY_MS};
use crate::buffer::{self, Claimed, DiskBuffer};
use crate::config::OtlpProtocol;
use crate::journal::Taken;
use crate::otlp;
use crate::record;
use crate::stats::Stats;
use crate::transport::Outcome;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The JSON body a line stands for: itself, or the body built from a raw journal record of
/// `service` (empty if it were not one: [`otlp::Encoder::add_line`] took it, so it is).
fn body_of<'l>(line: &'l [u8], service: &str) -> Cow<'l, [u8]> {
    if record::is_raw(line) {
        Cow::Owned(record::journal_body(line, service).unwrap_or_default())
    } else {
        Cow::Borrowed(line)
    }
}

/// Lines between two progress marks of a claimed file.
const PROGRESS_EVERY: usize = 64;

/// A replay request's body: its bytes, or an OTLP batch not finished yet (its encoder), which
/// the event loop's path writes straight after the request's head.
enum Body<'a> {
    Bytes(Cow<'a, [u8]>),
    Otlp(otlp::Encoder),
}

/// A replay request made and not yet sent: its requests (body, `Authorization`), and what
/// their outcomes make of the lines, on the replay thread.
enum Pending<'a> {
    /// Nothing to send: what became of the lines already.
    Ready(Vec<Line>),
    Send {
        reqs: Vec<(Body<'a>, Arc<str>)>,
        then: Box<dyn FnOnce(Vec<Outcome>) -> Vec<Line> + 'a>,
    },
}

/// A replay request sent: what became of its lines, or the place its answers will be in.
enum Sent<'a> {
    Ready(Vec<Line>),
    Waiting {
        slot: Arc<Answers>,
        then: Box<dyn FnOnce(Vec<Outcome>) -> Vec<Line> + 'a>,
    },
}

/// The outcomes of a replay request on the event loop, put there by its completion.
#[derive(Default)]
struct Answers {
    outcomes: Mutex<Option<Vec<Outcome>>>,
    came: Condvar,
}

impl Sent<'_> {
    /// What became of the lines, once the answers have come (every job's completion runs, at
    /// the latest when its event loop is dropped).
    fn finish(self) -> Vec<Line> {
        match self {
            Sent::Ready(lines) => lines,
            Sent::Waiting { slot, then } => {
                let mut got = lock(&slot.outcomes);
                let outcomes = loop {
                    if let Some(o) = got.take() {
                        break o;
                    }
                    got = slot.came.wait(got).unwrap_or_else(|p| p.into_inner());
                };
                drop(got);
                then(outcomes)
            }
        }
    }
}

/// What became of one line.
enum Line {
    /// Delivered, dead-lettered, set aside as corrupt, or failed and appended again to the
    /// buffer: nothing of it is left in the claimed file.
    Settled { delivered: bool, failed: bool },
    /// Not sent or not stored again: it stays in the claimed file, and the pass stops (the
    /// server is down, or the buffer cannot be written).
    Kept,
}

/// The most bytes of a claimed file the replay holds at a time: its lines are read and sent a
/// window at a time (about 2,000 typical lines: four OTLP batches of 512, many pipelined runs),
/// not the whole file (up to `buffer_max_file_bytes`, 5 MiB by default) at once.
const WINDOW_BYTES: usize = 1 << 20;

/// Where a window's settled lines are written down (see [`Shared::replay_window`]).
enum Marks<'a> {
    /// A claimed file's progress mark, every [`PROGRESS_EVERY`] lines.
    File(&'a Claimed),
    /// A taken segment: each line's record (at the offset of the same index), marked settled
    /// as the line settles.
    Segment(&'a Taken, &'a [usize]),
}

/// What became of a window's lines (see [`Shared::replay_window`]).
struct WindowDone {
    delivered: usize,
    failed: usize,
    stopped: bool,
    /// Its lines not settled.
    unsent: Vec<Vec<u8>>,
}

/// What a round or a pass found.
#[derive(Default)]
struct Round {
    delivered: usize,
    failed: usize,
    /// Ended early: an outage began, the pipeline is closing, or the disk failed.
    stopped: bool,
}

impl Shared {
    pub(super) fn replayer(&self) {
        let mut failing_rounds = 0u32;
        let mut next_round = Instant::now();
        let mut next_probe: Option<Instant> = None;
        loop {
            let seen = self.replay_wake.current();
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            if self.policy.outage() {
                // The first probe waits one backoff step after the outage began.
                let at = *next_probe
                    .get_or_insert_with(|| Instant::now() + self.policy.next_probe(Shared::jitter));
                if Instant::now() >= at {
                    let up = self.probe();
                    next_probe =
                        (!up).then(|| Instant::now() + self.policy.next_probe(Shared::jitter));
                    self.progress.notify();
                    continue;
                }
                // While failing, only the backoff timer (or closing) wakes the probe: the
                // senders' spills notify on every batch.
                while Instant::now() < at && !self.closing.load(Ordering::Acquire) {
                    let s = self.replay_wake.current();
                    self.replay_wake.wait(s, at - Instant::now());
                }
                continue;
            }
            next_probe = None;
            if Instant::now() >= next_round {
                let round_start = Instant::now();
                let r = self.replay_all();
                // Failed lines come back after a short wait while rounds make progress, and
                // after a growing backoff while they deliver nothing (a poison line alone).
                if r.failed > 0 && r.delivered == 0 {
                    failing_rounds = failing_rounds.saturating_add(1);
                    let wait = Shared::jitter(self.policy.backoff_base(failing_rounds))
                        .max(self.cfg.backoff_initial);
                    next_round = Instant::now() + wait;
                } else if r.failed > 0 {
                    // Each failed line waits at least backoff_initial before its next try:
                    // a round that took longer than that has spaced them already.
                    failing_rounds = 0;
                    next_round = round_start + self.cfg.backoff_initial;
                } else {
                    failing_rounds = 0;
                    next_round = Instant::now();
                }
                self.progress.notify();
                if r.delivered > 0 && r.failed == 0 && !r.stopped {
                    continue; // more may have come meanwhile
                }
            }
            let wait = if self.backlog() && next_round > Instant::now() {
                next_round - Instant::now()
            } else {
                Duration::from_millis(1000)
            };
            self.replay_wake.wait(seen, wait);
        }
    }

    /// One round over every service's backlog (see the module comment).
    fn replay_all(&self) -> Round {
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        // Journals of processes that died since (a forked worker, a neighbour) are taken in
        // now and then, not only at start.
        let now = self.now_ms();
        if now >= self.next_recovery.load(Ordering::Relaxed) {
            self.next_recovery
                .store(now + RECOVERY_EVERY_MS, Ordering::Relaxed);
            for b in &buffers {
                self.recover(b);
            }
        }
        let mut round = Round::default();
        for b in buffers {
            while b.maybe_backlog() {
                if self.closing.load(Ordering::Acquire) || self.policy.outage() {
                    round.stopped = true;
                    return round;
                }
                let claimed = match b.claim() {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                        round.stopped = true;
                        return round;
                    }
                };
                // Failed lines go to buffer.jsonl: once it is claimed, the round ends for this
                // service, and they wait for the next one.
                let last = claimed.from_active();
                match self.replay_file(&b, claimed, None) {
                    Ok(p) => {
                        round.delivered += p.delivered;
                        round.failed += p.failed;
                        if p.stopped {
                            round.stopped = true;
                            return round;
                        }
                    }
                    Err(e) => {
                        self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                        round.stopped = true;
                        return round;
                    }
                }
                if last {
                    break;
                }
            }
            // Only while raw records are pending (a dead process's segments are taken in by the
            // recovery): an idle round looks at no file.
            while b.raw_pending() {
                if self.closing.load(Ordering::Acquire) || self.policy.outage() {
                    round.stopped = true;
                    return round;
                }
                let taken = match b.take_segment() {
                    Ok(Some(t)) => t,
                    Ok(None) => break,
                    Err(e) => {
                        self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                        round.stopped = true;
                        return round;
                    }
                };
                let p = self.replay_segment(&b, taken);
                round.delivered += p.delivered;
                round.failed += p.failed;
                if p.stopped {
                    round.stopped = true;
                    return round;
                }
            }
        }
        // No segment waits: the lines' buffer, the encoders and the requests' buffers are not
        // kept while idle.
        *lock(&self.segment_lines) = Vec::new();
        lock(&self.replay_encoders).clear();
        if let Some(l) = &self.evloop {
            l.buffers.clear();
        }
        round
    }

    /// Sends the records of a taken segment (see the module comment) as one window, and
    /// finishes it: deleted once every record is settled, else left for a later round.
    fn replay_segment(&self, b: &DiskBuffer, taken: Taken) -> Round {
        let records = taken.records();
        let mut data = std::mem::take(&mut *lock(&self.segment_lines));
        data.clear();
        data.reserve(taken.len() / 2 * 3);
        let mut spans = Vec::with_capacity(records.len());
        let mut offsets = Vec::with_capacity(records.len());
        let mut maker = record::BodyMaker::default();
        // In OTLP protobuf a raw record is encoded as it is (with a request id, which its body
        // would have had); a body is made only if it goes back to the disk.
        let raw = self.batching() && self.cfg.otlp_protocol == OtlpProtocol::Protobuf;
        for (off, rec) in records {
            let start = data.len();
            if raw && record::push_with_request_id(&mut data, rec) {
                spans.push((start, data.len()));
                offsets.push(off);
                continue;
            }
            match maker.body(rec, b.service()) {
                Some(body) if !body.iter().all(u8::is_ascii_whitespace) => {
                    data.extend_from_slice(body);
                    spans.push((start, data.len()));
                    offsets.push(off);
                }
                // Not an entry of ours: left out, as a recovery leaves it out.
                _ => taken.settle(off),
            }
        }
        let lines = buffer::Lines::from_spans(data, spans);
        let w = self.replay_window(
            b,
            &Marks::Segment(&taken, &offsets),
            &lines,
            0,
            &|_| false,
            &AtomicUsize::new(usize::MAX),
            false,
        );
        b.finish_segment(taken);
        *lock(&self.segment_lines) = lines.into_data();
        if w.delivered > 0 {
            self.progress.notify();
        }
        Round {
            delivered: w.delivered,
            failed: w.failed,
            stopped: w.stopped,
        }
    }

    /// One outage probe: sends the first line of the backlog. True when the server took it
    /// (the outage is over).
    fn probe(&self) -> bool {
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        for b in buffers {
            if !b.maybe_backlog() {
                continue;
            }
            let claimed = match b.claim() {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                    return false;
                }
            };
            return match self.replay_file(&b, claimed, Some(1)) {
                Ok(p) => p.delivered > 0 || !self.policy.outage(),
                Err(e) => {
                    self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                    false
                }
            };
        }
        false
    }

    /// Sends the lines of a claimed file (at most `limit` sent, for a probe), from its progress
    /// mark on, a window of [`WINDOW_BYTES`] at a time, and releases it: what was not taken
    /// goes back where it came from.
    fn replay_file(
        &self,
        b: &DiskBuffer,
        claimed: Claimed,
        limit: Option<usize>,
    ) -> std::io::Result<Round> {
        // What an earlier drain of this file settled: every line before `start`, and those
        // marked in the bitmap of the lines after it.
        let (start, bits) = claimed.progress();
        let settled_before = |i: usize| {
            let j = i.wrapping_sub(start);
            i < start || (j < buffer::PROGRESS_BITS && bits[j / 64] >> (j % 64) & 1 == 1)
        };
        let budget = AtomicUsize::new(limit.unwrap_or(usize::MAX));
        let mut round = Round::default();
        let mut unsent: Vec<Vec<u8>> = Vec::new();
        // Once a window ends with lines not settled (a stop, a probe's budget spent), the
        // following windows' lines are not sent: they go back with them.
        let mut complete = true;
        let mut base = 0;
        let read = claimed.windows(WINDOW_BYTES).and_then(|mut windows| {
            while let Some(lines) = windows.next_window()? {
                let len = lines.len();
                if !complete {
                    unsent.extend((0..len).map(|i| lines[i].to_vec()));
                } else if (base..base + len).any(|i| !settled_before(i)) {
                    let w = self.replay_window(
                        b,
                        &Marks::File(&claimed),
                        &lines,
                        base,
                        &settled_before,
                        &budget,
                        limit.is_some(),
                    );
                    round.delivered += w.delivered;
                    round.failed += w.failed;
                    round.stopped |= w.stopped;
                    complete = w.unsent.is_empty();
                    unsent.extend(w.unsent);
                }
                base += len;
            }
            Ok(())
        });
        if let Err(e) = read {
            b.mark_backlog();
            return Err(e);
        }
        b.release(claimed, &unsent)?;
        if !unsent.is_empty() || round.failed > 0 {
            b.mark_backlog();
        }
        if round.delivered > 0 {
            // A flush waiting for the disk to drain looks again now, not at its next tick.
            self.progress.notify();
        }
        Ok(round)
    }

    /// Sends the lines of one window of a claimed file (its first line is the file's `base`),
    /// those an earlier drain did not settle; every [`PROGRESS_EVERY`] lines and at the end,
    /// the file's mark says which are settled. What was not settled comes back in `unsent`.
    #[allow(clippy::too_many_arguments)]
    fn replay_window(
        &self,
        b: &DiskBuffer,
        marks: &Marks<'_>,
        lines: &buffer::Lines,
        base: usize,
        settled_before: &dyn Fn(usize) -> bool,
        budget: &AtomicUsize,
        probe: bool,
    ) -> WindowDone {
        let len = lines.len();
        let done: Vec<AtomicBool> = (0..len)
            .map(|i| AtomicBool::new(settled_before(base + i)))
            .collect();
        // The windows before this one are settled: the mark starts at its first line.
        let marked = Mutex::new(0);
        // The first unsettled line and a bitmap of the settled ones after it, written in place.
        let write_mark = || {
            let Marks::File(claimed) = marks else {
                return;
            };
            let mut low = lock(&marked);
            while *low < len && done[*low].load(Ordering::Acquire) {
                *low += 1;
            }
            let mut bits = [0u64; buffer::PROGRESS_BITS / 64];
            for (j, d) in done[*low..].iter().take(buffer::PROGRESS_BITS).enumerate() {
                if d.load(Ordering::Acquire) {
                    bits[j / 64] |= 1 << (j % 64);
                }
            }
            claimed.set_progress(base + *low, &bits);
        };
        // Made now, while there may be room on the disk; later marks overwrite it in place,
        // so even when the release fails (a full disk) the mark tells the next drain which
        // lines are settled.
        write_mark();
        let to_send = (0..len)
            .filter(|&i| !done[i].load(Ordering::Relaxed))
            .count();
        // With sink=otlp a request carries up to a batch of lines (a probe: one).
        let batching = self.batching();
        // With the rarch sink to a near server, a run of lines is pipelined.
        let chunk = if probe {
            1
        } else if batching {
            self.cfg.batch_max_entries
        } else if self.pipelining() {
            self.pipeline_depth.load(Ordering::Relaxed).max(1)
        } else {
            1
        };
        // As many threads as requests may be in flight (the limiter, which may grow during the
        // file, decides how many send at once; the others wait for a permit). To a near
        // server, whose answers come fast, only the limit's worth and one more: threads
        // waiting on the limiter there cost a wake-up and futex calls per answer, and the
        // limit stays low (it is bound by the server's CPU).
        let threads = if self.pipelining() {
            self.limiter.limit() + 1
        } else {
            self.cfg.connections
        };
        let k = if to_send < 64 || probe {
            1
        } else {
            threads
                .min(self.cfg.connections)
                .min(to_send.div_ceil(chunk))
                .max(1)
        };
        // Lines are taken in order by `k` threads, a run of up to `chunk` at a time; `done[i]`
        // is set once line i is settled, so a mark never covers a line in flight, and a slow
        // request holds back only its own lines.
        let next = Mutex::new(0);
        let take = || -> Vec<usize> {
            let mut at = lock(&next);
            let mut run = Vec::new();
            let mut bytes = 0usize;
            while *at < len && run.len() < chunk {
                if !done[*at].load(Ordering::Acquire) {
                    let n = lines[*at].len();
                    if !run.is_empty() && bytes + n > self.cfg.batch_max_bytes {
                        break;
                    }
                    bytes += n;
                    run.push(*at);
                }
                *at += 1;
            }
            run
        };
        let settled_n = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let totals = Mutex::new(Round::default());
        // With the sender's event loop, this one thread keeps up to `k` requests in flight: a
        // round's runs go together (each as soon as it is made) and their answers are dealt
        // with in order once all have come. Without it, `k` threads send a run at a time.
        let looped = self.evloop.as_ref().is_some_and(|l| l.inbox.is_open());
        let per_round = if looped { k } else { 1 };
        let work = || {
            let (mut delivered, mut failed) = (0, 0);
            let mut last = false;
            while !last {
                if stop.load(Ordering::Acquire)
                    || self.closing.load(Ordering::Acquire)
                    || (!probe && self.policy.outage())
                {
                    stop.store(true, Ordering::Release);
                    break;
                }
                let mut round = Vec::new();
                while round.len() < per_round {
                    // Past the first, a run goes only with a permit free now (the answers
                    // that free them are dealt with after the round).
                    if !round.is_empty() && !self.limiter.has_room() {
                        break;
                    }
                    let run = take();
                    if run.is_empty() {
                        last = true;
                        break;
                    }
                    if budget
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                            b.checked_sub(run.len())
                        })
                        .is_err()
                    {
                        last = true;
                        break;
                    }
                    let batch: Vec<&[u8]> = run.iter().map(|&i| &lines[i][..]).collect();
                    let wait = round.is_empty();
                    let pending = if batching {
                        self.replay_batch(b, batch, probe, wait)
                    } else {
                        self.replay_lines(b, batch, probe, wait)
                    };
                    round.push((run, self.send_pending(pending)));
                }
                if round.is_empty() {
                    break;
                }
                for (run, sent) in round {
                    let results = sent.finish();
                    let mut settled = 0;
                    for (&i, r) in run.iter().zip(results) {
                        match r {
                            Line::Settled {
                                delivered: d,
                                failed: f,
                            } => {
                                delivered += d as usize;
                                failed += f as usize;
                                settled += 1;
                                if let Marks::Segment(taken, offsets) = marks {
                                    taken.settle(offsets[i]);
                                }
                                done[i].store(true, Ordering::Release);
                            }
                            Line::Kept => stop.store(true, Ordering::Release),
                        }
                    }
                    let before = settled_n.fetch_add(settled, Ordering::AcqRel);
                    if (before + settled) / PROGRESS_EVERY != before / PROGRESS_EVERY {
                        write_mark();
                    }
                }
            }
            let mut tot = lock(&totals);
            tot.delivered += delivered;
            tot.failed += failed;
        };
        // Helpers that cannot be started (a thread limit) leave their share to the others and
        // to this thread.
        std::thread::scope(|scope| {
            for _ in 1..(if looped { 1 } else { k }) {
                if crate::threads::spawn_scoped(scope, "rarch-replay-w", work).is_err() {
                    break;
                }
            }
            work();
        });
        let unsent: Vec<Vec<u8>> = (0..len)
            .filter(|&i| !done[i].load(Ordering::Acquire))
            .map(|i| lines[i].to_vec())
            .collect();
        let totals = std::mem::take(&mut *lock(&totals));
        write_mark();
        WindowDone {
            delivered: totals.delivered,
            failed: totals.failed,
            stopped: stop.load(Ordering::Acquire),
            unsent,
        }
    }

    /// Sends buffer lines of the rarch sink, each its own request: one, or several pipelined on
    /// one connection ([`Shared::pipelining`]); a [`Line`] for each, in order. Lines left
    /// without an answer by one failure (a reset, a timeout) count as one failed request for
    /// the policy.
    fn replay_lines<'a>(
        &'a self,
        b: &'a DiskBuffer,
        lines: Vec<&'a [u8]>,
        probe: bool,
        wait: bool,
    ) -> Pending<'a> {
        let settled = |delivered, failed| Line::Settled { delivered, failed };
        let mut results: Vec<Option<Line>> = (0..lines.len()).map(|_| None).collect();
        // (index, service, strikes, bearer) of the lines sent.
        let mut sent: Vec<(usize, String, u32, Arc<str>)> = Vec::new();
        for (j, line) in lines.iter().enumerate() {
            let Some((service, strikes)) = parse_line(line) else {
                Stats::add(&self.stats.corrupt, 1);
                let _ = b.side(buffer::CORRUPT, line);
                results[j] = Some(settled(false, false));
                continue;
            };
            let Some(bearer) = self.bearer(&service) else {
                results[j] = Some(Line::Kept);
                continue;
            };
            sent.push((j, service, strikes, bearer));
        }
        let finish = |results: Vec<Option<Line>>| -> Vec<Line> {
            results
                .into_iter()
                .map(|r| r.unwrap_or(Line::Kept))
                .collect()
        };
        if sent.is_empty() {
            return Pending::Ready(finish(results));
        }
        // A probe is sent during an outage; other lines stop with it.
        let Some(permit) = self.permit(probe, wait) else {
            return Pending::Ready(finish(results));
        };
        let reqs = sent
            .iter()
            .map(|s| (Body::Bytes(Cow::Borrowed(lines[s.0])), s.3.clone()))
            .collect();
        let then = move |outcomes: Vec<Outcome>| {
            if outcomes.len() > 1 {
                self.pipelined(&outcomes);
            }
            permit.answered_many(outcomes.iter().any(backpressure), sent.len());
            // The lines left without an answer, and the failure that left them so.
            let mut unanswered: Vec<(usize, &str, u32)> = Vec::new();
            let mut no_answer = None;
            for ((j, service, strikes, _), outcome) in sent.iter().zip(outcomes) {
                let line = lines[*j];
                let (kind, status, reason) = match outcome {
                    Outcome::Delivered => {
                        self.succeeded();
                        Stats::add(&self.stats.delivered, 1);
                        Stats::add(&self.stats.replayed, 1);
                        results[*j] = Some(settled(true, false));
                        continue;
                    }
                    Outcome::Rejected { status, reason } => {
                        // The server is up: it read the entry and refused it.
                        self.succeeded();
                        Stats::add(&self.stats.failed_attempts, 1);
                        self.dead_letter(service, line, status, &reason, None);
                        results[*j] = Some(settled(false, false));
                        continue;
                    }
                    // Only an OTLP answer has one (and OTLP lines go through `replay_batch`).
                    Outcome::Partial { reason, .. } => {
                        self.succeeded();
                        self.note_error(&reason);
                        Stats::add(&self.stats.rejected, 1);
                        results[*j] = Some(settled(false, false));
                        continue;
                    }
                    Outcome::Retry { status: 0, .. } if sent.len() > 1 => {
                        unanswered.push((*j, service, *strikes));
                        no_answer.get_or_insert(outcome);
                        continue;
                    }
                    Outcome::Retry { status, reason, .. } => {
                        (Failure::of_status(status), status, reason)
                    }
                    Outcome::Auth { status, reason } => {
                        Stats::add(&self.stats.auth_failures, 1);
                        self.tokens.invalidate(service);
                        (
                            Failure::Auth,
                            status,
                            format!("authentication refused: {reason}"),
                        )
                    }
                };
                let r =
                    self.lines_failed(b, &lines, &[(*j, service, *strikes)], kind, status, &reason);
                results[*j] = r.into_iter().next();
            }
            if let Some(Outcome::Retry { status, reason, .. }) = no_answer {
                let kind = Failure::of_status(status);
                let r = self.lines_failed(b, &lines, &unanswered, kind, status, &reason);
                for ((j, _, _), r) in unanswered.iter().zip(r) {
                    results[*j] = Some(r);
                }
            }
            finish(results)
        };
        Pending::Send {
            reqs,
            then: Box::new(then),
        }
    }

    /// Lines whose request failed (one request, or lines left without an answer together):
    /// the policy hears of one failure; they are dead-lettered if poison, else appended to
    /// the end of the backlog with their strikes, to be tried again in a later round.
    fn lines_failed(
        &self,
        b: &DiskBuffer,
        lines: &[&[u8]],
        failed: &[(usize, &str, u32)],
        kind: Failure,
        status: u16,
        reason: &str,
    ) -> Vec<Line> {
        Stats::add(&self.stats.failed_attempts, 1);
        self.note_error(reason);
        let strikes = failed.iter().map(|f| f.2).max().unwrap_or(0);
        let v = self
            .policy
            .failure(self.now_ms(), line_key(lines[failed[0].0]), strikes, kind);
        if v.poisoned {
            for (j, service, _) in failed {
                self.dead_letter(service, lines[*j], status, reason, Some(v.strikes));
            }
            return failed
                .iter()
                .map(|_| Line::Settled {
                    delivered: false,
                    failed: false,
                })
                .collect();
        }
        let struck = v.strikes.saturating_sub(strikes);
        let mut data = Vec::new();
        for (j, _, s) in failed {
            if struck > 0 {
                data.extend_from_slice(&with_retry_count(lines[*j], s.saturating_add(struck)));
            } else {
                data.extend_from_slice(lines[*j]);
            }
            data.push(b'\n');
        }
        let stored = match b.append(&data, failed.len() as u64) {
            Ok(a) => {
                self.dropped(
                    &self.stats.dropped_buffer_cap,
                    a.dropped_for_cap,
                    "the buffer reached buffer_max_total_bytes (oldest segment deleted)",
                );
                a.lines as usize
            }
            Err(_) => 0,
        };
        (0..failed.len())
            .map(|n| {
                if n < stored {
                    Line::Settled {
                        delivered: false,
                        failed: true,
                    }
                } else {
                    Line::Kept
                }
            })
            .collect()
    }

    /// Sends buffer lines as one OTLP request (sink=otlp); a [`Line`] for each, in order.
    /// What the answer means is what it means for a batch of the senders
    /// (see [`sender`](super::sender)); lines that fail go to the end of the backlog together.
    fn replay_batch<'a>(
        &'a self,
        b: &'a DiskBuffer,
        lines: Vec<&'a [u8]>,
        probe: bool,
        wait: bool,
    ) -> Pending<'a> {
        let settled = |delivered, failed| Line::Settled { delivered, failed };
        let mut results: Vec<Option<Line>> = (0..lines.len()).map(|_| None).collect();
        let mut enc = self.replay_encoder();
        // (index, service, strikes) of the lines in the request.
        let mut sent: Vec<(usize, Cow<'a, str>, u32)> = Vec::new();
        for (j, line) in lines.iter().enumerate() {
            match enc.add_line(line, b.service()) {
                Some((service, strikes)) => sent.push((j, service, strikes)),
                _ => {
                    Stats::add(&self.stats.corrupt, 1);
                    if !record::is_raw(line) {
                        let _ = b.side(buffer::CORRUPT, line);
                    }
                    results[j] = Some(settled(false, false));
                }
            }
        }
        let finish = |results: Vec<Option<Line>>, rest: &dyn Fn() -> Line| -> Vec<Line> {
            results
                .into_iter()
                .map(|r| r.unwrap_or_else(rest))
                .collect()
        };
        if sent.is_empty() {
            self.keep_encoder(enc);
            return Pending::Ready(finish(results, &|| settled(false, false)));
        }
        let m = sent.len() as u64;
        let Some(bearer) = self.bearer(&sent[0].1) else {
            return Pending::Ready(finish(results, &|| Line::Kept));
        };
        let body = if self.cfg.gzip {
            let (mut body, mut z) = (Vec::new(), Vec::new());
            enc.finish(&mut body);
            self.keep_encoder(enc);
            otlp::gzip(&body, &mut z);
            Body::Bytes(Cow::Owned(z))
        } else {
            Body::Otlp(enc)
        };
        let Some(permit) = self.permit(probe, wait) else {
            return Pending::Ready(finish(results, &|| Line::Kept));
        };
        let then = move |outcomes: Vec<Outcome>| {
            let outcome = outcomes
                .into_iter()
                .next()
                .unwrap_or_else(|| Outcome::Retry {
                    status: 0,
                    reason: "transport: no answer".into(),
                    retry_after: None,
                });
            permit.answered(backpressure(&outcome));
            // Raw records (a taken segment's) are kept and dead-lettered as their bodies.
            let bodies: Vec<Cow<'_, [u8]>> = match outcome {
                Outcome::Delivered => Vec::new(),
                _ => lines.iter().map(|l| body_of(l, b.service())).collect(),
            };
            let lines: Vec<&[u8]> = bodies.iter().map(|l| &l[..]).collect();
            let dead_letter_all = |status: u16, reason: &str, after: Option<u32>| {
                for (j, service, _) in &sent {
                    self.dead_letter(service, lines[*j], status, reason, after);
                }
            };
            let (kind, status, reason) = match outcome {
                Outcome::Delivered => {
                    self.succeeded();
                    Stats::add(&self.stats.delivered, m);
                    Stats::add(&self.stats.replayed, m);
                    return finish(results, &|| settled(true, false));
                }
                Outcome::Partial { rejected, reason } => {
                    self.succeeded();
                    self.note_error(&reason);
                    let k = rejected.min(m);
                    if k == m {
                        dead_letter_all(200, &reason, None);
                        return finish(results, &|| settled(false, false));
                    }
                    Stats::add(&self.stats.rejected, k);
                    Stats::add(&self.stats.delivered, m - k);
                    Stats::add(&self.stats.replayed, m - k);
                    return finish(results, &|| settled(true, false));
                }
                Outcome::Rejected { status, reason } => {
                    self.succeeded();
                    Stats::add(&self.stats.failed_attempts, 1);
                    dead_letter_all(status, &reason, None);
                    return finish(results, &|| settled(false, false));
                }
                Outcome::Retry { status, reason, .. } => {
                    (Failure::of_status(status), status, reason)
                }
                Outcome::Auth { status, reason } => {
                    Stats::add(&self.stats.auth_failures, 1);
                    self.tokens.invalidate(&sent[0].1);
                    (
                        Failure::Auth,
                        status,
                        format!("authentication refused: {reason}"),
                    )
                }
            };
            let failed: Vec<(usize, &str, u32)> = sent
                .iter()
                .map(|(j, svc, st)| (*j, &svc[..], *st))
                .collect();
            let r = self.lines_failed(b, &lines, &failed, kind, status, &reason);
            for ((j, _, _), r) in failed.iter().zip(r) {
                results[*j] = Some(r);
            }
            finish(results, &|| Line::Kept)
        };
        Pending::Send {
            reqs: vec![(body, bearer)],
            then: Box::new(then),
        }
    }

    /// The replay's OTLP encoder: one kept from an earlier request (its buffers grown to a
    /// batch's size), else a new one.
    fn replay_encoder(&self) -> otlp::Encoder {
        lock(&self.replay_encoders)
            .pop()
            .unwrap_or_else(|| otlp::Encoder::for_config(&self.cfg))
    }

    /// Keeps a finished (empty) encoder for the next request.
    fn keep_encoder(&self, enc: otlp::Encoder) {
        let mut kept = lock(&self.replay_encoders);
        if kept.len() < 4 && enc.is_empty() {
            kept.push(enc);
        }
    }

    /// A request body's bytes (an encoder is finished, and kept).
    fn body_bytes<'a>(&self, body: Body<'a>) -> Cow<'a, [u8]> {
        match body {
            Body::Bytes(b) => b,
            Body::Otlp(mut enc) => {
                let mut v = Vec::new();
                enc.finish(&mut v);
                self.keep_encoder(enc);
                Cow::Owned(v)
            }
        }
    }

    /// A permit for a replay request: waited for (`wait`; not past the close, nor an
    /// outage's start unless `probe`), else one free now.
    fn permit(&self, probe: bool, wait: bool) -> Option<super::concurrency::Permit<'_>> {
        if wait {
            self.limiter.acquire(|| {
                self.closing.load(Ordering::Acquire) || (!probe && self.policy.outage())
            })
        } else {
            self.limiter.try_acquire()
        }
    }

    /// Sends a replay request: on the sender's event loop when there is one (the answers come
    /// later, see [`Sent::finish`]), else now, on this thread.
    fn send_pending<'a>(&self, p: Pending<'a>) -> Sent<'a> {
        let (reqs, then) = match p {
            Pending::Ready(lines) => return Sent::Ready(lines),
            Pending::Send { reqs, then } => (reqs, then),
        };
        if let Some(l) = self.evloop.as_ref().filter(|l| l.inbox.is_open()) {
            let mut bytes = l.buffers.take();
            let mut ends = Vec::with_capacity(reqs.len());
            for (body, bearer) in reqs {
                let protobuf = match &body {
                    Body::Otlp(enc) => enc.protobuf_len(),
                    Body::Bytes(_) => None,
                };
                match (body, protobuf) {
                    (Body::Otlp(mut enc), Some(n)) => {
                        bytes.reserve(l.head.len() + bearer.len() + 64 + n);
                        crate::http1::write_request_head(&mut bytes, &l.head, n, &bearer);
                        enc.finish_append(&mut bytes);
                        self.keep_encoder(enc);
                    }
                    (body, _) => {
                        let body = self.body_bytes(body);
                        crate::http1::write_request(&mut bytes, &l.head, &body, &bearer);
                    }
                }
                ends.push(bytes.len());
            }
            let slot = Arc::new(Answers::default());
            let (to, jobs, proto) = (slot.clone(), l.jobs.clone(), l.proto);
            jobs.fetch_add(1, Ordering::AcqRel);
            let job = crate::evloop::Job::new(bytes, ends, self.deadline(), move |answers| {
                let outcomes = answers
                    .into_iter()
                    .map(|a| crate::transport::outcome_of(a, proto))
                    .collect();
                *lock(&to.outcomes) = Some(outcomes);
                to.came.notify_all();
                jobs.fetch_sub(1, Ordering::AcqRel);
            })
            .giving_back_to(&l.buffers);
            // A reactor gone meanwhile: the job's completion has run with the reason.
            let _ = l.inbox.post(job, &l.waker);
            return Sent::Waiting { slot, then };
        }
        let reqs: Vec<(Cow<'_, [u8]>, Arc<str>)> = reqs
            .into_iter()
            .map(|(body, bearer)| (self.body_bytes(body), bearer))
            .collect();
        let outcomes = if reqs.len() == 1 {
            vec![self.post(&reqs[0].0, &reqs[0].1)]
        } else {
            let r: Vec<(&[u8], &str)> = reqs.iter().map(|(b, t)| (&b[..], &t[..])).collect();
            self.post_many(&r)
        };
        Sent::Ready(then(outcomes))
    }
}

/// Tells buffer lines apart for the policy's "different entries" count: the same for every
/// read of one line (each round reads the file anew, so the bytes' address changes, and the
/// line's strikes change its text): its request id, hashed; the whole line if it has none.
/// An address would make one poison line, failing alone round after round, look like many
/// failing entries: an outage, in which strikes do not count, and which its failing probes
/// kept going.
fn line_key(line: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow, default)]
        request_id: Option<std::borrow::Cow<'a, str>>,
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match serde_json::from_slice::<Id<'_>>(line)
        .ok()
        .and_then(|i| i.request_id)
    {
        Some(id) => id.hash(&mut h),
        None => line.hash(&mut h),
    }
    h.finish()
}

/// The service and the strikes (`retry_count`) of a buffer line, if the line is an entry.
fn parse_line(line: &[u8]) -> Option<(String, u32)> {
    #[derive(serde::Deserialize)]
    struct Head {
        service: String,
        #[allow(dead_code)]
        level: String,
        #[allow(dead_code)]
        message: String,
        #[serde(default)]
        retry_count: Option<serde_json::Value>,
    }
    let h: Head = serde_json::from_slice(line).ok()?;
    // Any number the Python client or we wrote; anything else counts as none.
    let strikes = h
        .retry_count
        .and_then(|v| v.as_u64())
        .map_or(0, |n| n.min(u32::MAX as u64) as u32);
    (!h.service.is_empty()).then_some((h.service, strikes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_its_key_whatever_its_strikes_and_wherever_it_is_read() {
        let line =
            br#"{"level":"INFO","service":"s","message":"m","request_id":"r-1","context":{}}"#;
        let copy = line.to_vec();
        assert_eq!(line_key(line), line_key(&copy));
        assert_eq!(line_key(line), line_key(&with_retry_count(line, 3)));
        let other =
            br#"{"level":"INFO","service":"s","message":"m","request_id":"r-2","context":{}}"#;
        assert_ne!(line_key(line), line_key(other));
        // No request id: the line itself.
        assert_ne!(line_key(b"{}"), line_key(b"{ }"));
    }
}
