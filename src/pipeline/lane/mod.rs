//! Lanes: the caller's side of a threaded pipeline.
//!
//! Each thread that logs into a pipeline gets a lane of its own: a single-producer,
//! single-consumer queue of records in chunks of [`CHUNK`] bytes. `rarch_log` checks the
//! fields, then copies them as they are into its thread's lane with the time of the call and
//! the logger's [`Source`]: no lock, no atomic read-modify-write, no allocation in the steady
//! state and no JSON. The sender threads collect the records ([`Shared::collect`]), build each
//! entry's JSON body (escaping, UUID, timestamp) on their side, and put the entries in the
//! queue, from where delivery goes on as for any entry.
//!
//! A lane holds `queue_capacity` records (checked when it takes a new chunk) in at most
//! [`LANE_CHUNKS`](queue::LANE_CHUNKS) chunks; past that count it takes chunks of the pipeline's burst memory
//! (`burst_memory_bytes`, shared by all its lanes; [`ChunkPool::take_burst`]). In a burst that
//! outruns the senders (the queue half full), the spill thread takes the records of a lane
//! past half its capacity as they are and writes them to disk raw ([`Shared::spill_lanes`]),
//! about half as fast as one caller copies them: the burst memory lets the caller go on
//! meanwhile. A caller whose lane is full and finds the burst memory taken waits for the
//! spill thread's next step ([`Shared::push_lane_when_room`]), not for its own JSON and a disk
//! write. When a record is larger than a chunk, the thread is exiting, or that wait fails,
//! the caller takes the queue's path: it builds the body itself and sends it on the queue
//! (`Pipeline::submit`), where `on_full` applies.
//!
//! Written here rather than taken from a crate: crossbeam's channels and `ArrayQueue` are
//! multi-producer (a compare-and-swap per push on a line every caller shares) and hold values,
//! not variable-length records; that path (a pooled buffer, the body built, a channel send)
//! is the fallback above, and costs about 2x this one per call (docs/performance-history.md,
//! "The caller's path").
//! SPSC crates (rtrb, ringbuf) are rings of fixed-size elements that do not grow.
//!
//! The parts: [`queue`] (a lane: the single-producer chunk queue, and the chunk pool), [`table`]
//! (which thread's lane is which), the record codec ([`crate::record`]); here, a pipeline's
//! side: pushing, collecting, and the wait for room. The spill thread's share of the lanes in
//! a burst is the spill's ([`super::spill`]).

use super::{lock, Shared};
use crate::entry::{self, Fields};
use crate::journal::Ticket;
use crate::level::Level;
use crate::record::{parse_record, record_len, ticket_of, write_record};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

mod queue;
mod table;

use queue::HEADER;
pub(super) use queue::{ChunkPool, Lane, CHUNK};
pub(super) use table::LaneTable;
use table::{thread_pointer, Handle};

/// The logger an entry comes from: its service and the start of its body at each level.
/// Interned for the life of the process, one per distinct (service, logger name) pair, so that
/// a record can point at it without a reference count and outlive its logger.
pub struct Source {
    pub service: Arc<str>,
    /// The logger's name, for a raw record written to disk (see `write_raw_spill`).
    pub name: Box<str>,
    prefixes: [Box<[u8]>; 5],
}

impl Source {
    pub fn prefix(&self, level: Level) -> &[u8] {
        &self.prefixes[level as usize % Level::ALL.len()]
    }
}

type Sources = Mutex<HashMap<(Box<str>, Box<str>), &'static Source>>;
static SOURCES: AtomicPtr<Sources> = AtomicPtr::new(std::ptr::null_mut());

/// The [`Source`] of `(service, logger_name)`, made on first use.
pub fn source(service: &str, logger_name: &str) -> &'static Source {
    let mut m = lock(super::leaked(&SOURCES));
    let key = (Box::<str>::from(service), Box::<str>::from(logger_name));
    if let Some(s) = m.get(&key) {
        return s;
    }
    let s: &'static Source = Box::leak(Box::new(Source {
        service: service.into(),
        name: logger_name.into(),
        prefixes: Level::ALL.map(|l| entry::prefix(l, service, logger_name).into_boxed_slice()),
    }));
    m.insert(key, s);
    s
}

/// In a forked child: the parent's table (whose lock another thread may have held) is
/// abandoned; the sources it points to stay valid.
pub(super) fn reset_sources_in_child() {
    SOURCES.store(std::ptr::null_mut(), Ordering::Release);
}

/// Records a sender collects from a lane at a time (it holds the lane's consumer lock while it
/// builds their bodies).
const COLLECT_STEP: usize = 256;

/// With `on_full=spill`, the most entries the senders keep built in the queue ahead of their
/// requests (four batches of the default 512, a pipelined run many times over): the others
/// wait in their lanes as the callers wrote them, about half the memory of a built entry, and
/// the spill thread writes a lane's excess to disk raw in a burst. A queue filled to
/// `queue_capacity` would hold 8,192 built entries of about 640 bytes (5 MiB) on top of the
/// lanes.
const COLLECT_AHEAD: usize = 2048;

thread_local! {
    static LANES: RefCell<Vec<Handle>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    /// Copies an entry's checked fields into the calling thread's lane; false when it does not
    /// fit (the caller then takes the queue). `f.context_json` is the trimmed object text.
    #[inline]
    #[link_section = ".text.hot.rarch_log"]
    pub(super) fn push_lane(
        self: &Arc<Self>,
        source: &'static Source,
        level: Level,
        f: &Fields<'_>,
        context_multi_line: bool,
        at_ns: u64,
        ticket: &mut Option<Ticket>,
    ) -> bool {
        let n = record_len(f, ticket.is_some());
        let tp = thread_pointer();
        let lane = match self.lane_table.get(tp) {
            Some(lane) => lane,
            // Its slot is another thread's (or not taken yet): the thread-local's handle.
            None => match LANES.try_with(|lanes| {
                let lanes = lanes.try_borrow().ok()?;
                let h = lanes.first().filter(|h| h.pipeline == self.id)?;
                self.lane_table.claim(tp, &h.lane);
                Some(Arc::as_ptr(&h.lane))
            }) {
                // SAFETY: the handle that keeps the lane alive is in this thread's
                // thread-local, which only this thread changes, and not during the push.
                Ok(Some(lane)) => unsafe { &*lane },
                Ok(None) => {
                    return self.push_lane_cold(source, level, f, context_multi_line, at_ns, ticket)
                }
                Err(_) => return false,
            },
        };
        // SAFETY: the lane is this thread's (its slot, or its thread-local's handle), so this
        // thread is the lane's producer.
        let pushed = unsafe {
            lane.push(n, &self.chunks, |out| {
                let src = source as *const Source as u64;
                write_record(out, src, at_ns, level, f, context_multi_line, ticket)
            })
        };
        if pushed {
            self.pushed_to_lane();
        }
        pushed
    }

    /// After a record went into a lane: wakes one sleeping sender (it wakes another if there is
    /// more than it takes), and the spill thread once
    /// per time the pool runs low (the flag is set again by the next `take` that finds it low
    /// after the refill).
    #[inline(always)]
    fn pushed_to_lane(&self) {
        if self.work.has_waiters() {
            self.work.notify_one();
        }
        if self.chunks.low.load(Ordering::Relaxed) && self.chunks.low.swap(false, Ordering::Relaxed)
        {
            self.spill_wake.notify();
        }
    }

    /// [`Shared::push_lane`] when this thread's first lane is not this pipeline's: finds or
    /// makes it, moves it first, and tries again once.
    #[cold]
    #[inline(never)]
    fn push_lane_cold(
        self: &Arc<Self>,
        source: &'static Source,
        level: Level,
        f: &Fields<'_>,
        multi: bool,
        at_ns: u64,
        ticket: &mut Option<Ticket>,
    ) -> bool {
        let moved = LANES.try_with(|lanes| {
            let Ok(mut lanes) = lanes.try_borrow_mut() else {
                return false;
            };
            if lanes.first().is_some_and(|h| h.pipeline == self.id) {
                return false; // the lane is full
            }
            lanes.retain(|h| !h.lane.closed.load(Ordering::Acquire));
            match lanes.iter().position(|h| h.pipeline == self.id) {
                Some(i) => lanes[..=i].rotate_right(1),
                None => {
                    if self.closing.load(std::sync::atomic::Ordering::Acquire) {
                        return false;
                    }
                    let lane = Arc::new(Lane::new(
                        self.chunks.take(),
                        self.cfg.queue_capacity,
                        &self.chunks,
                    ));
                    lock(&self.lanes).push(lane.clone());
                    lanes.insert(
                        0,
                        Handle {
                            pipeline: self.id,
                            lane,
                            table: self.lane_table.clone(),
                        },
                    );
                }
            }
            // Taken while the pipeline is open: `close` clears the table after it has set
            // `closing` and closed the lanes, which the retain above drops.
            if !self.closing.load(Ordering::Acquire) {
                self.lane_table.claim(thread_pointer(), &lanes[0].lane);
            }
            true
        });
        moved == Ok(true) && self.push_lane(source, level, f, multi, at_ns, ticket)
    }

    /// With `on_full=spill`, a record that found its lane full waits for the spill thread to
    /// make room ([`Shared::spill_lanes`], a step of [`SPILL_LANE_STEP`](super::spill) records at a time,
    /// woken when each is written), then goes in: the caller neither builds the body nor
    /// writes to disk. False (the caller takes the queue's way) for a record larger than a
    /// chunk, without a lane, with `durable` or another `on_full`, while the disk fails or
    /// the pipeline closes, or after [`SPILL_WAIT_MAX`](super::SPILL_WAIT_MAX).
    #[cold]
    #[inline(never)]
    pub(super) fn push_lane_when_room(
        self: &Arc<Self>,
        source: &'static Source,
        level: Level,
        f: &crate::entry::Checked<'_>,
        at_ns: u64,
    ) -> bool {
        if !self.cfg.spills_lanes_raw() || HEADER + record_len(&f.fields, false) > CHUNK {
            return false;
        }
        let deadline = std::time::Instant::now() + super::SPILL_WAIT_MAX;
        loop {
            let seen = self.spilled.current();
            self.lane_full.store(true, Ordering::Release);
            self.spill_wake.notify();
            let mut none = None;
            if self.push_lane(
                source,
                level,
                &f.fields,
                f.context_multi_line,
                at_ns,
                &mut none,
            ) {
                return true;
            }
            if !self.own_lane_full()
                || self.closing.load(Ordering::Acquire)
                || self.disk_failing()
                || std::time::Instant::now() >= deadline
            {
                return false;
            }
            self.spilled.wait(seen, std::time::Duration::from_millis(1));
        }
    }

    /// Whether the calling thread's lane of this pipeline is there and full (a push failed
    /// for want of room, not for want of a lane).
    fn own_lane_full(&self) -> bool {
        if let Some(lane) = self.lane_table.get(thread_pointer()) {
            // SAFETY: the lane is this thread's (its slot), found as in `push_lane`.
            return unsafe { lane.full(&self.chunks) };
        }
        LANES
            .try_with(|lanes| {
                let lanes = lanes.try_borrow().ok()?;
                let h = lanes.first().filter(|h| h.pipeline == self.id)?;
                // SAFETY: the lane of this thread's own handle.
                Some(unsafe { h.lane.full(&self.chunks) })
            })
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Records waiting in the lanes.
    pub(super) fn lanes_pending(&self) -> u64 {
        lock(&self.lanes).iter().map(|l| l.pending()).sum()
    }

    /// The counters, with the records published to the lanes in `logged` (read under the
    /// lanes' lock, which a lane's count moves to `logged` under).
    pub(super) fn snapshot(&self) -> crate::stats::StatsSnapshot {
        let lanes = lock(&self.lanes);
        let mut snap = self.stats.snapshot();
        snap.logged += lanes.iter().map(|l| l.pushed()).sum::<u64>();
        snap
    }

    /// Entries taken by `log`, ever: the queue's and the lanes' (read under the lanes' lock,
    /// which a lane's count moves to `accepted` under).
    pub(super) fn taken_in(&self) -> u64 {
        let lanes = lock(&self.lanes);
        self.accepted.load(Ordering::Acquire) + lanes.iter().map(|l| l.pushed()).sum::<u64>()
    }

    /// The most entries the senders build ahead into the queue (see [`COLLECT_AHEAD`]).
    pub(super) fn collect_ahead(&self) -> usize {
        if self.cfg.spills_lanes_raw() {
            self.cfg
                .queue_capacity
                .min(COLLECT_AHEAD.max(self.cfg.batch_max_entries))
        } else {
            self.cfg.queue_capacity
        }
    }

    /// Moves records from the lanes into the queue, as much as it has room for, building each
    /// entry's body; returns how many. At close (`all`), every record, into `out` instead.
    pub(super) fn collect(&self, all: Option<&mut Vec<super::Item>>) -> usize {
        let mut total = 0;
        match all {
            Some(out) => {
                let Ok(lanes) = self.lanes.try_lock() else {
                    return 0;
                };
                self.lane_table.clear();
                for l in lanes.iter() {
                    l.closed.store(true, Ordering::Release);
                    total += l.collect(usize::MAX, &self.chunks, |rec| {
                        out.extend(self.entry_of(rec));
                    });
                }
            }
            None => {
                // Without the lanes' lock, and at most COLLECT_STEP records of a lane at a
                // time: building bodies takes about a microsecond each, and the spill thread
                // must not wait that long for either lock (`spill_lanes`).
                let Ok(list) = self.lanes.try_lock().map(|l| l.clone()) else {
                    return 0;
                };
                let mut room = self.collect_ahead().saturating_sub(self.rx.len());
                loop {
                    let before = total;
                    for l in &list {
                        if room == 0 {
                            break;
                        }
                        if l.pending() == 0 {
                            continue;
                        }
                        let n = l.collect(room.min(COLLECT_STEP), &self.chunks, |rec| {
                            let Some(item) = self.entry_of(rec) else {
                                return;
                            };
                            if let Err(e) = self.tx.try_send(item) {
                                // Only this collector fills the queue past `room`'s count... but
                                // a caller's fallback can take the last slots: keep it in memory.
                                self.hold(e.into_inner());
                            }
                        });
                        room = room.saturating_sub(n);
                        total += n;
                    }
                    if room == 0 || total == before {
                        break;
                    }
                }
            }
        }
        // A lane whose thread has exited goes once it is empty; its count goes on in
        // `accepted` (and `logged`).
        if let Ok(mut lanes) = self.lanes.try_lock() {
            lanes.retain(|l| {
                let done = l.gone.load(Ordering::Acquire) && l.pending() == 0;
                if done {
                    self.accepted.fetch_add(l.pushed(), Ordering::AcqRel);
                    crate::stats::Stats::add(&self.stats.logged, l.pushed());
                }
                !done
            });
        }
        total
    }

    /// The entry of a record: its JSON body built here, on the sender's side. None (counted
    /// as `corrupt` and settled: it cannot happen, and must not be silent) if the record does
    /// not parse.
    pub(super) fn entry_of(&self, rec: &[u8]) -> Option<super::Item> {
        let Some(r) = parse_record(rec) else {
            crate::stats::Stats::add(&self.stats.corrupt, 1);
            self.note_error("a lane record did not parse (counted as corrupt)");
            self.settle(1);
            return None;
        };
        let ticket = ticket_of(rec, &r);
        // SAFETY: the address of an interned (leaked, never freed) Source, written by
        // `push_lane` in this process (a forked child keeps the parent's memory, and its
        // pipelines have lanes of their own).
        let source = unsafe { &*(r.source as usize as *const Source) };
        let mut body = self.pool_buffer(r.fields.message.len() + 512);
        entry::assemble(
            &mut body,
            source.prefix(r.level),
            &r.fields,
            r.context_multi_line,
            r.at_ns,
        );
        let mut item = super::Item::new(source.service.clone(), body);
        item.ticket = ticket;
        if self.cfg.sink == crate::config::Sink::Otlp {
            item.observed_ns = r.at_ns;
        }
        Some(item)
    }
}
