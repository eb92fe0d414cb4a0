//! Every write to the buffer files: the spill thread (which writes the callers' overflow to
//! disk and keeps the buffer pool and the journal segments ready), `spill` (entries to their
//! services' `buffer.jsonl`, with their strikes as `retry_count`), and the dead-letter file.

use super::lane::{Lane, Source};
use super::{lock, Item, Shared, POOL_FRESH_CAPACITY, POOL_LOW, SPILL_RUN, SPILL_STEP};
use crate::buffer::{self, DiskBuffer};
use crate::config::Mode;
use crate::record::{journal_body, raw_spill_len, write_raw_spill};
use crate::stats::Stats;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Shared {
    /// Tops the buffer pool up to [`POOL_LOW`] with buffers whose pages are already touched
    /// (see [`POOL_LOW`]).
    pub(super) fn refill_pool(&self) {
        // Lane chunks, touched when made (see `Chunk::new`), while there are lanes.
        if !lock(&self.lanes).is_empty() {
            self.chunks.refill();
        }
        self.pool_low.store(false, Ordering::Release);
        while self.pool_rx.len() < POOL_LOW {
            let mut v = vec![0u8; POOL_FRESH_CAPACITY];
            // `vec![0; n]` may get pages that are not touched yet (zeroed by the kernel):
            // write them, so that the fault is taken here.
            v.fill(1);
            v.clear();
            if self.pool_tx.try_send(v).is_err() {
                return;
            }
        }
    }

    /// Writes entries to their services' buffer files; returns how many are on disk.
    ///
    /// In threaded mode, entries whose file cannot be written stay in memory (the overflow,
    /// which the spill thread retries) while there is room, and are dropped and counted
    /// (`dropped_io`) after that, or when the pipeline is closing.
    pub(super) fn spill(&self, items: Vec<Item>) -> u64 {
        self.spill_with(items, true)
    }

    /// [`Shared::spill`]; `keep` false drops (and counts) what cannot be written at once.
    pub(super) fn spill_with(&self, items: Vec<Item>, keep: bool) -> u64 {
        if items.is_empty() {
            return 0;
        }
        let threaded = self.cfg.mode == Mode::Threaded;
        let mut groups: HashMap<Arc<str>, Vec<Item>> = HashMap::new();
        for it in items {
            groups.entry(it.service.clone()).or_default().push(it);
        }
        let (mut written, mut dropped) = (0u64, 0u64);
        for (service, mut group) in groups {
            // Written in runs of at most SPILL_RUN bytes, so that a large batch is not copied
            // whole into one more buffer (the peak memory while the server is down).
            let mut failure = None;
            match self.buffer_for(&service) {
                Err(e) => failure = Some(e.message),
                Ok(b) => {
                    let mut data = Vec::new();
                    while !group.is_empty() {
                        let (mut n, mut bytes) = (0, 0);
                        while n < group.len() && (n == 0 || bytes + group[n].body.len() < SPILL_RUN)
                        {
                            bytes += group[n].body.len() + 1;
                            n += 1;
                        }
                        data.clear();
                        data.reserve(bytes);
                        for it in &group[..n] {
                            if it.strikes > 0 {
                                data.extend_from_slice(&with_retry_count(&it.body, it.strikes));
                            } else {
                                data.extend_from_slice(&it.body);
                            }
                            data.push(b'\n');
                        }
                        let a = match b.append(&data, n as u64) {
                            Ok(a) => a,
                            Err(e) => {
                                failure = Some(format!("{}: {e}", b.dir().display()));
                                break;
                            }
                        };
                        self.dropped(
                            &self.stats.dropped_buffer_cap,
                            a.dropped_for_cap,
                            "the buffer reached buffer_max_total_bytes (oldest segment deleted)",
                        );
                        written += a.lines;
                        Stats::add(&self.stats.buffered, a.lines);
                        for it in group.drain(..a.lines as usize) {
                            self.done(it);
                        }
                        if let Some(e) = a.error {
                            failure = Some(format!("{}: {e}", b.dir().display()));
                            break;
                        }
                    }
                }
            }
            if let Some(e) = failure {
                let msg = format!("cannot write the buffer file: {e}");
                self.events.push(
                    super::events::Kind::IoError,
                    0,
                    group.len() as u64,
                    "",
                    &msg,
                );
                self.note_error(&msg);
                self.disk_failing_until
                    .store(self.now_ms() + 250, Ordering::Relaxed);
                // What is left in the group is not on disk.
                let rest: Vec<Item> = group;
                let n_rest = rest.len() as u64;
                let kept = if threaded && keep && !self.closing.load(Ordering::Acquire) {
                    self.keep_in_memory(rest)
                } else {
                    0
                };
                dropped += n_rest - kept;
            }
        }
        self.dropped(
            &self.stats.dropped_io,
            dropped,
            "the buffer file could not be written",
        );
        if threaded {
            self.settle(written + dropped);
        }
        written
    }

    /// Puts entries back in the overflow for the spill thread to retry; returns how many fit.
    fn keep_in_memory(&self, group: Vec<Item>) -> u64 {
        let mut ov = lock(&self.overflow);
        let room = self.cfg.queue_capacity.saturating_sub(ov.len());
        let n = group.len().min(room);
        ov.extend(group.into_iter().take(n));
        self.overflow_len.store(ov.len(), Ordering::Relaxed);
        n as u64
    }

    /// Writes an entry to `buffer.rejected.jsonl` with its last status (0: no answer) and
    /// reason: refused by the server (`poisoned_after` None, counted as rejected), or poison
    /// after that many strikes (counted as poisoned).
    pub(super) fn dead_letter(
        &self,
        service: &str,
        body: &[u8],
        status: u16,
        reason: &str,
        poisoned_after: Option<u32>,
    ) {
        let reason = match poisoned_after {
            Some(n) => {
                Stats::add(&self.stats.poisoned, 1);
                format!(
                    "failed {n} attempts while the server delivered other entries (max_attempts); last: {reason}"
                )
            }
            None => {
                Stats::add(&self.stats.rejected, 1);
                reason.to_owned()
            }
        };
        let entry: Box<serde_json::value::RawValue> =
            match serde_json::from_slice::<Box<serde_json::value::RawValue>>(body) {
                Ok(v) => v,
                Err(_) => return,
            };
        let rec = serde_json::json!({
            "status": status,
            "reason": reason,
            "attempts": poisoned_after,
            "rejected_at": String::from_utf8_lossy(&{
                let mut v = Vec::new();
                crate::entry::now(&mut v, std::time::SystemTime::now());
                v
            }),
            "entry": entry,
        });
        let line = rec.to_string();
        self.events.push(
            super::events::Kind::DeadLettered,
            status,
            1,
            super::events::request_id_of(body),
            &reason,
        );
        if let Ok(b) = self.buffer_for(service) {
            if let Err(e) = b.side(buffer::REJECTED, line.as_bytes()) {
                self.note_error(&format!("cannot write the dead-letter file: {e}"));
            }
        }
    }

    pub(super) fn spiller(&self) {
        loop {
            let seen = self.spill_wake.current();
            self.prepare_journals();
            // Buffers and chunks made ahead while there is no overflow to write: during a
            // burst the steps come first (a caller may be waiting for one).
            if self.overflow_len.load(Ordering::Relaxed) == 0 {
                self.refill_pool();
            }
            // Held while entries move from memory to disk (see `Shared::moving`).
            let moving = self.moving.read().unwrap_or_else(|p| p.into_inner());
            let batch: Vec<Item> = {
                let mut ov = lock(&self.overflow);
                let n = ov.len().min(SPILL_STEP);
                let batch = ov.drain(..n).collect();
                self.overflow_len.store(ov.len(), Ordering::Relaxed);
                batch
            };
            // Callers waiting for room in memory look again now.
            self.spilled.notify();
            let raw = self.spill_lanes();
            if raw > 0 {
                self.spilled.notify();
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                let written = self.spill(batch);
                drop(moving);
                self.replay_wake.notify();
                if written < n && self.overflow_len.load(Ordering::Relaxed) > 0 {
                    // The disk failed: retry a little later, not in a hot loop.
                    self.spill_wake
                        .wait(self.spill_wake.current(), Duration::from_millis(250));
                }
                continue;
            }
            drop(moving);
            if raw > 0 {
                continue;
            }
            let closing = self.closing.load(Ordering::Acquire);
            let asked = self.settle_raw_now.swap(false, Ordering::AcqRel);
            self.settle_raw(closing || asked);
            if closing {
                return;
            }
            let raw_waiting = lock(&self.buffers).values().any(|b| b.raw_pending());
            // Idle: one look a second (the callers and senders wake it for their work).
            let wait = if raw_waiting {
                RAW_SETTLE_AFTER
            } else {
                Duration::from_secs(1)
            };
            self.spill_wake.wait(seen, wait);
        }
    }

    /// Makes the spare journal segments that writers asked for.
    fn prepare_journals(&self) {
        if !self.cfg.durable {
            return;
        }
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        for b in buffers {
            if let Some(j) = b.journal().filter(|j| j.spare_wanted()) {
                if let Err(e) = j.prepare() {
                    self.note_error(&format!("journal: {}: {e}", b.dir().display()));
                }
            }
        }
    }
}

/// `body` (a JSON object) with its `retry_count` set to `n`: the entry's strikes, kept on disk
/// with it (the Python client writes the same field; the server ignores it). Our own bodies
/// have no such field and end in `}`: the field is added before it, without a parse.
pub(super) fn with_retry_count(body: &[u8], n: u32) -> Vec<u8> {
    const KEY: &[u8] = b"\"retry_count\"";
    let has_key = body.windows(KEY.len()).any(|w| w == KEY);
    if !has_key {
        if let Some(end) = body.iter().rposition(|&b| b == b'}') {
            let mut v = Vec::with_capacity(body.len() + 24);
            v.extend_from_slice(&body[..end]);
            let empty = body[..end]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'{');
            if !empty {
                v.push(b',');
            }
            v.extend_from_slice(format!("\"retry_count\":{n}").as_bytes());
            v.extend_from_slice(&body[end..]);
            return v;
        }
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut m) => {
            m.insert("retry_count".into(), n.into());
            serde_json::to_vec(&m).unwrap_or_else(|_| body.to_vec())
        }
        // Not an object: left as it is (replay sets it aside as corrupt).
        Err(_) => body.to_vec(),
    }
}

/// Records one raw spill step takes from a lane at most (about 150 KiB).
const SPILL_LANE_STEP: u64 = 512;
/// The overflow's segment is sealed for the replay (or, in an outage, its records moved into
/// `buffer.jsonl`) once no record has been spilled for this long.
const RAW_SETTLE_AFTER: Duration = Duration::from_millis(100);

/// The spill thread's share of the lanes in a burst.
impl Shared {
    /// The spill thread's share of the lanes in a burst (the queue half full, a lane three
    /// quarters full, or a caller waiting for room): the records of a lane past half its
    /// capacity, down to a quarter, are copied as they are (a raw record, no JSON) into their
    /// service's overflow segment ([`DiskBuffer::overflow`]), which the replay sends once it
    /// is sealed (see [`Shared::settle_raw`]). A caller
    /// then finds room in its lane at the pace of a copy, instead of building bodies itself
    /// and waiting for their write. Not with `durable` (the records carry journal tickets;
    /// the entries are on disk already). Returns how many records it took.
    pub(super) fn spill_lanes(&self) -> usize {
        if !self.cfg.spills_lanes_raw() {
            return 0;
        }
        // While the queue has room the senders take the lanes' records, unless a lane is
        // three quarters full or a caller waits for room in one. The queue counts as full at
        // half of what the senders build ahead into it: they are behind.
        let queue_full = self.rx.len() >= self.collect_ahead() / 2;
        let waiting = self.lane_full.swap(false, Ordering::AcqRel);
        let lanes: Vec<Arc<Lane>> = lock(&self.lanes).clone();
        let mut total = 0;
        let mut last: Option<(*const Source, Arc<DiskBuffer>)> = None;
        for l in lanes {
            let (pending, max) = (l.pending(), l.max_records);
            let want = if pending >= max * 3 / 4 || ((queue_full || waiting) && pending >= max / 2)
            {
                pending - max / 4
            } else if waiting && pending > 0 {
                // A lane full by its bytes (large records) before its count: half of it.
                pending.div_ceil(2)
            } else {
                continue;
            };
            let want = want.min(SPILL_LANE_STEP) as usize;
            // The records go, grouped by service, into each service's appender; one write
            // per service at the end of the step.
            let mut touched: Vec<(Arc<DiskBuffer>, Arc<str>)> = Vec::new();
            let mut held = Vec::new();
            let n = l.collect(want, &self.chunks, |rec| {
                let src = match rec.first_chunk::<8>() {
                    Some(w) => u64::from_le_bytes(*w) as usize as *const Source,
                    None => std::ptr::null(),
                };
                let buffer = match &last {
                    Some((p, b)) if *p == src => Some(b.clone()),
                    _ if src.is_null() => None,
                    _ => {
                        // SAFETY: an interned Source written by `push_lane` (see `entry_of`).
                        let service = unsafe { &(*src).service };
                        let b = self.buffer_for(service).ok();
                        if let Some(b) = &b {
                            last = Some((src, b.clone()));
                        }
                        b
                    }
                };
                match buffer {
                    Some(b) => {
                        // SAFETY: as above (`buffer` is Some only for a non-null source).
                        let name = unsafe { &(*src).name };
                        b.overflow().push(raw_spill_len(name, rec), |out| {
                            write_raw_spill(out, name, rec)
                        });
                        if !touched.iter().any(|t| Arc::ptr_eq(&t.0, &b)) {
                            // SAFETY: as above.
                            touched.push((b, unsafe { (*src).service.clone() }));
                        }
                    }
                    // Cannot happen (a record whose source is null, or a service whose
                    // directory cannot be opened): the overflow's way, which counts it.
                    None => held.extend(self.entry_of(rec)),
                }
            });
            total += n;
            let mut written = 0u64;
            for (b, service) in touched {
                b.mark_raw();
                let mut ov = b.overflow();
                let k = ov.count() as u64;
                match ov.write_out() {
                    Ok(()) => written += k,
                    Err(e) => {
                        // Not on disk: built into bodies and put in the overflow, whose write
                        // counts what fails (`dropped_io`).
                        self.note_error(&format!("overflow: {}: {e}", b.dir().display()));
                        for rec in ov.pending() {
                            if let Some(body) = journal_body(rec, &service) {
                                held.push(super::Item::new(service.clone(), body));
                            }
                        }
                        ov.clear();
                    }
                }
            }
            if written > 0 {
                self.raw_spilled.fetch_add(written, Ordering::Relaxed);
                crate::stats::Stats::add(&self.stats.buffered, written);
                self.settle(written);
            }
            for item in held {
                self.hold(item);
            }
        }
        if total > 0 {
            self.last_raw_ms.store(self.now_ms(), Ordering::Relaxed);
        }
        total
    }

    /// Once no record has been spilled raw for a while, or when `now` (a flush or the close):
    /// seals the overflow's segment for the replay, or moves the overflow journals' raw
    /// records into `buffer.jsonl` (see [`Shared::spill_lanes`]). Returns whether it did.
    pub(super) fn settle_raw(&self, now: bool) -> bool {
        let quiet = self.now_ms()
            >= self.last_raw_ms.load(Ordering::Relaxed) + RAW_SETTLE_AFTER.as_millis() as u64;
        if !now && !quiet {
            return false;
        }
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        let mut did = false;
        // A segment at a time, and not while a caller needs the spill thread for room (but
        // all of them at the close).
        let closing = self.closing.load(Ordering::Acquire);
        let go = || {
            closing
                || (!self.lane_full.load(Ordering::Acquire)
                    && lock(&self.lanes)
                        .iter()
                        .all(|l| l.pending() < l.max_records / 2))
        };
        // While the server answers, the replay sends the sealed segments as they are
        // (`Shared::replay_segment`); in an outage, whose probes read `buffer.jsonl`, and at
        // the close, they are moved there.
        let direct = !closing && !self.policy.outage();
        for b in buffers.iter().filter(|b| b.raw_pending()) {
            did = true;
            if direct {
                if let Err(e) = b.seal_raw() {
                    self.note_error(&format!("overflow: {}: {e}", b.dir().display()));
                }
            } else {
                self.moved_into_buffer("overflow", b, b.settle_raw(go));
            }
        }
        if did {
            self.replay_wake.notify();
        }
        did
    }
}

#[cfg(test)]
mod tests {
    use super::with_retry_count;

    #[test]
    fn retry_count_is_added_or_replaced() {
        let v = with_retry_count(br#"{"level":"INFO","message":"m"}"#, 3);
        assert_eq!(v, br#"{"level":"INFO","message":"m","retry_count":3}"#);
        let v = with_retry_count(&v, 4);
        assert_eq!(v, br#"{"level":"INFO","message":"m","retry_count":4}"#);
        // The Python client's layout (", " separators, the field in the middle).
        let py = br#"{"level": "INFO", "retry_count": 2, "message": "m"}"#;
        let v: serde_json::Value = serde_json::from_slice(&with_retry_count(py, 7)).unwrap();
        assert_eq!(v["retry_count"], 7);
        assert_eq!(v["message"], "m");
        assert_eq!(with_retry_count(b"{}", 1), br#"{"retry_count":1}"#);
        // A message that mentions the field is not the field.
        let tricky = br#"{"message":"\"retry_count\":9"}"#;
        let v: serde_json::Value = serde_json::from_slice(&with_retry_count(tricky, 2)).unwrap();
        assert_eq!(v["retry_count"], 2);
        assert_eq!(v["message"], "\"retry_count\":9");
    }
}
