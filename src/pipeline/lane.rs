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
//! [`LANE_CHUNKS`] chunks; past that count it takes chunks of the pipeline's burst memory
//! (`burst_memory_bytes`, shared by all its lanes; [`ChunkPool::take_burst`]). In a burst that
//! outruns the senders (the queue half full), the spill thread takes the records of a lane
//! past half its capacity as they are and writes them to disk raw ([`Shared::spill_lanes`]),
//! about half as fast as one caller copies them: the burst memory lets the caller go on
//! meanwhile. A caller whose lane is full and finds the burst memory taken waits for the
//! spill thread's next step ([`Shared::push_lane_when_room`]), not for its own JSON and a disk
//! write. When a record is larger than a chunk, the thread is exiting, or that wait fails,
//! the caller takes the older path: it builds the body itself and sends it on the queue
//! (`Pipeline::submit`), where `on_full` applies.
//!
//! Written here rather than taken from a crate: crossbeam's channels and `ArrayQueue` are
//! multi-producer (a compare-and-swap per push on a line every caller shares) and hold values,
//! not variable-length records; that path (a pooled buffer, the body built, a channel send)
//! is the fallback above, and costs about 2x this one per call (docs/performance-history.md,
//! "The caller's path").
//! SPSC crates (rtrb, ringbuf) are rings of fixed-size elements that do not grow.

use super::{lock, Shared};
use crate::buffer::DiskBuffer;
use crate::entry::{self, Fields};
use crate::journal::Ticket;
use crate::level::Level;
use crate::record::{
    journal_body, parse_record, raw_spill_len, record_len, ticket_of, write_raw_spill, write_record,
};
use crossbeam_utils::CachePadded;
use std::cell::{RefCell, UnsafeCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The bytes of one chunk: about 200 typical records.
pub(super) const CHUNK: usize = 64 * 1024;
/// The most chunks one lane holds (16 MiB; the records' count, `queue_capacity`, is the bound
/// that counts: 8,192 typical records take about 2.7 MiB).
pub(super) const LANE_CHUNKS: usize = 256;
/// Chunks kept for reuse by the pipeline (the spill thread keeps a few of them made ahead).
pub(super) const CHUNK_POOL: usize = 32;

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

pub(super) struct Chunk {
    data: NonNull<u8>,
    /// Bytes the producer has published (whole records).
    len: AtomicUsize,
    /// The next chunk, set (after the final `len`) when the producer has moved on.
    next: AtomicPtr<Chunk>,
    /// Taken past the lane's count bound, from the pipeline's burst memory
    /// ([`ChunkPool::take_burst`]); set before the chunk is linked, given back when it is
    /// retired.
    burst: AtomicBool,
}

impl Chunk {
    /// A chunk; `touch`: its pages are written now, so that the page faults are taken by the
    /// thread that makes it (the spill thread, ahead of need) rather than by a caller.
    pub(super) fn new(touch: bool) -> Box<Chunk> {
        let mut v = vec![0u8; CHUNK].into_boxed_slice();
        if touch {
            v.fill(1);
        }
        let data = NonNull::new(Box::into_raw(v) as *mut u8).unwrap_or(NonNull::dangling());
        Box::new(Chunk {
            data,
            len: AtomicUsize::new(0),
            next: AtomicPtr::new(std::ptr::null_mut()),
            burst: AtomicBool::new(false),
        })
    }
}

impl Chunk {
    /// Made empty again, for another lane.
    pub(super) fn reset(&self) {
        self.len.store(0, Ordering::Relaxed);
        self.next.store(std::ptr::null_mut(), Ordering::Relaxed);
        self.burst.store(false, Ordering::Relaxed);
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: `data` came from a boxed slice of CHUNK bytes in `new`.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.data.as_ptr(),
                CHUNK,
            )));
        }
    }
}

// SAFETY: the bytes behind `data` are written by the producer only below `len` before it is
// published (Release) and read by the consumer only below the `len` it loaded (Acquire).
unsafe impl Send for Chunk {}
// SAFETY: as for Send.
unsafe impl Sync for Chunk {}

/// Chunks kept for reuse by a pipeline's lanes. `repr(C)`: `low`, read on every call, first.
#[repr(C)]
pub(super) struct ChunkPool {
    /// A lane found the pool low: the spill thread refills it ([`ChunkPool::refill`]).
    pub(super) low: AtomicBool,
    tx: crossbeam_channel::Sender<Box<Chunk>>,
    rx: crossbeam_channel::Receiver<Box<Chunk>>,
    /// Burst chunks in the lanes now (shared with each lane, which gives its own back when it
    /// is dropped).
    burst: Arc<AtomicUsize>,
    /// The most burst chunks: 0 where nothing spills the lanes raw (`durable`, another
    /// `on_full`), so that a lane never holds more than its count bound there.
    burst_max: usize,
}

impl ChunkPool {
    /// A pool whose lanes may hold `burst_bytes` more than their count bound, together.
    pub(super) fn new(burst_bytes: usize) -> ChunkPool {
        let (tx, rx) = crossbeam_channel::bounded(CHUNK_POOL);
        ChunkPool {
            tx,
            rx,
            low: AtomicBool::new(false),
            burst: Arc::new(AtomicUsize::new(0)),
            burst_max: burst_bytes / CHUNK,
        }
    }

    /// Whether a lane past its count bound may take one more chunk.
    fn burst_room(&self) -> bool {
        self.burst_max > 0 && self.burst.load(Ordering::Relaxed) < self.burst_max
    }

    /// Takes one chunk of the burst memory, if there is one left.
    fn take_burst(&self) -> bool {
        if self.burst_max == 0 {
            return false;
        }
        if self.burst.fetch_add(1, Ordering::AcqRel) < self.burst_max {
            return true;
        }
        self.burst.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Burst chunks held by the lanes now.
    #[cfg(test)]
    fn burst_in_use(&self) -> usize {
        self.burst.load(Ordering::Relaxed)
    }

    /// A reused chunk, or a fresh one (its pages touched as records are written).
    fn take(&self) -> Box<Chunk> {
        let c = self.rx.try_recv().unwrap_or_else(|_| Chunk::new(false));
        if self.rx.len() < CHUNK_POOL / 4 {
            self.low.store(true, Ordering::Relaxed);
        }
        c
    }

    fn give(&self, c: Box<Chunk>) {
        c.reset();
        let _ = self.tx.try_send(c);
    }

    /// Makes chunks ahead of need, up to half the pool.
    pub(super) fn refill(&self) {
        while self.rx.len() < CHUNK_POOL / 2 {
            if self.tx.try_send(Chunk::new(true)).is_err() {
                break;
            }
        }
    }
}

/// The producer's state: touched by the owner thread only.
struct Prod {
    chunk: *mut Chunk,
    /// `chunk`'s bytes: a record is written without reading the chunk's line first.
    data: *mut u8,
    pos: usize,
    /// Chunks this lane has taken, ever (against `retired`: the ones it holds).
    chunks: usize,
    pushed: u64,
}

struct Cons {
    chunk: *mut Chunk,
    pos: usize,
}

pub(super) struct Lane {
    prod: UnsafeCell<Prod>,
    /// Records published, ever: written by the producer only.
    pushed: CachePadded<AtomicU64>,
    cons: Mutex<Cons>,
    /// Records collected, ever.
    taken: CachePadded<AtomicU64>,
    retired: AtomicUsize,
    /// The most records it holds, past which it takes chunks of the burst memory only.
    max_records: u64,
    /// The pool's count of burst chunks (see `ChunkPool::burst`).
    burst: Arc<AtomicUsize>,
    /// The owner thread has exited: once empty, the lane is dropped.
    gone: AtomicBool,
    /// The pipeline has closed: the owner's thread-local forgets the lane.
    closed: AtomicBool,
}

// SAFETY: `prod` is used only by the thread that owns the lane (through its thread-local
// handle); `cons` is behind a mutex; the chunks are shared as described on `Chunk`.
unsafe impl Send for Lane {}
// SAFETY: as for Send.
unsafe impl Sync for Lane {}

impl Lane {
    fn new(first: Box<Chunk>, max_records: usize, pool: &ChunkPool) -> Lane {
        let first = Box::into_raw(first);
        Lane {
            prod: UnsafeCell::new(Prod {
                chunk: first,
                // SAFETY: `first` came from Box::into_raw just above.
                data: unsafe { (*first).data.as_ptr() },
                pos: 0,
                chunks: 1,
                pushed: 0,
            }),
            pushed: CachePadded::new(AtomicU64::new(0)),
            cons: Mutex::new(Cons {
                chunk: first,
                pos: 0,
            }),
            taken: CachePadded::new(AtomicU64::new(0)),
            retired: AtomicUsize::new(0),
            max_records: max_records as u64,
            burst: pool.burst.clone(),
            gone: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Records in the lane now.
    pub(super) fn pending(&self) -> u64 {
        self.pushed
            .load(Ordering::Acquire)
            .saturating_sub(self.taken.load(Ordering::Acquire))
    }

    pub(super) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
    }

    /// Whether a record that fits in a chunk is refused for want of room (see `next_chunk`).
    ///
    /// # Safety
    /// Called only by the lane's owner thread.
    unsafe fn full(&self, pool: &ChunkPool) -> bool {
        // SAFETY: only the owner thread touches `prod` (the caller's contract).
        let p = unsafe { &*self.prod.get() };
        p.chunks - self.retired.load(Ordering::Acquire) >= LANE_CHUNKS
            || (p.pushed - self.taken.load(Ordering::Acquire) >= self.max_records
                && !pool.burst_room())
    }

    /// Copies a record of `n` bytes (written by `write` into the slice it is given) into the
    /// lane. False when it does not fit: the lane is full, or the record is larger than a chunk.
    ///
    /// # Safety
    /// Called only by the lane's owner thread.
    #[inline]
    unsafe fn push(&self, n: usize, pool: &ChunkPool, write: impl FnOnce(&mut [u8])) -> bool {
        // SAFETY: only the owner thread touches `prod` (the caller's contract).
        let p = unsafe { &mut *self.prod.get() };
        let need = (HEADER + n + 7) & !7;
        if p.pos + need > CHUNK && !self.next_chunk(p, need, pool) {
            return false;
        }
        // SAFETY: [pos, pos + need) is inside the chunk (`data` is its bytes) and not yet
        // published, so the consumer does not read it.
        let rec = unsafe { std::slice::from_raw_parts_mut(p.data.add(p.pos), HEADER + n) };
        rec[..HEADER].copy_from_slice(&(n as u64).to_le_bytes());
        write(&mut rec[HEADER..]);
        p.pos += need;
        // SAFETY: `p.chunk` is a live chunk of this lane (freed only by the consumer once it
        // has moved past it, which it does only after `next` is set, and `next` is set here).
        unsafe { &*p.chunk }.len.store(p.pos, Ordering::Release);
        p.pushed += 1;
        // SeqCst: pairs with a sender's count-then-look before it sleeps (`Signal::wait_for`),
        // so the caller's look at the waiters below either sees it or is seen.
        self.pushed.store(p.pushed, Ordering::SeqCst);
        true
    }

    #[cold]
    fn next_chunk(&self, p: &mut Prod, need: usize, pool: &ChunkPool) -> bool {
        if need > CHUNK || p.chunks - self.retired.load(Ordering::Acquire) >= LANE_CHUNKS {
            return false;
        }
        let pending = p.pushed - self.taken.load(Ordering::Acquire);
        // Past the count bound, a chunk of the burst memory: the caller goes on at the pace of
        // a copy while the spill thread writes the excess out, and waits only once the burst
        // memory is taken.
        let burst = pending >= self.max_records;
        if burst && !pool.take_burst() {
            return false;
        }
        let fresh = pool.take();
        if burst {
            fresh.burst.store(true, Ordering::Relaxed);
        }
        let fresh = Box::into_raw(fresh);
        if pending >= self.max_records / 2 {
            // Past half full: the spill thread looks (`Shared::spill_lanes`), woken as for a
            // low pool.
            pool.low.store(true, Ordering::Relaxed);
        }
        p.chunks += 1;
        // SAFETY: as in `push`; the consumer moves to `next` only once it is set.
        unsafe { &*p.chunk }.next.store(fresh, Ordering::Release);
        p.chunk = fresh;
        // SAFETY: `fresh` came from Box::into_raw just above.
        p.data = unsafe { (*fresh).data.as_ptr() };
        p.pos = 0;
        true
    }

    /// Hands the records in the lane, at most `max`, to `f`, in order. Returns how many.
    /// Another collector at the lane at the same time gets 0.
    fn collect(&self, max: usize, pool: &ChunkPool, f: impl FnMut(&[u8])) -> usize {
        let Ok(mut c) = self.cons.try_lock() else {
            return 0;
        };
        self.collect_from(&mut c, max, pool, f)
    }

    /// [`Lane::collect`], waiting for another collector at the lane to finish first.
    pub(super) fn collect_wait(&self, max: usize, pool: &ChunkPool, f: impl FnMut(&[u8])) -> usize {
        let mut c = self.cons.lock().unwrap_or_else(|p| p.into_inner());
        self.collect_from(&mut c, max, pool, f)
    }

    fn collect_from(
        &self,
        c: &mut Cons,
        max: usize,
        pool: &ChunkPool,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let mut n = 0;
        while n < max {
            // SAFETY: `c.chunk` is live until this consumer retires it below.
            let chunk = unsafe { &*c.chunk };
            let len = chunk.len.load(Ordering::Acquire);
            if c.pos < len {
                // SAFETY: below `len`, published whole records (see `push`).
                let at = unsafe { chunk.data.as_ptr().add(c.pos) };
                let mut h = [0u8; HEADER];
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(at, h.as_mut_ptr(), HEADER) };
                let size = u64::from_le_bytes(h) as usize;
                // SAFETY: as above.
                f(unsafe { std::slice::from_raw_parts(at.add(HEADER), size) });
                c.pos += (HEADER + size + 7) & !7;
                n += 1;
                continue;
            }
            let next = chunk.next.load(Ordering::Acquire);
            if next.is_null() {
                break;
            }
            if c.pos < chunk.len.load(Ordering::Acquire) {
                continue; // the last records before the producer moved on
            }
            // The producer has moved on and everything here is read: retire the chunk.
            let old = std::mem::replace(&mut c.chunk, next);
            c.pos = 0;
            // SAFETY: `old` came from Box::into_raw; the producer no longer touches it.
            let old = unsafe { Box::from_raw(old) };
            if old.burst.load(Ordering::Relaxed) {
                self.burst.fetch_sub(1, Ordering::AcqRel);
            }
            pool.give(old);
            self.retired.fetch_add(1, Ordering::AcqRel);
        }
        if n > 0 {
            self.taken.fetch_add(n as u64, Ordering::AcqRel);
        }
        n
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let c = self.cons.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut at = c.chunk;
        while !at.is_null() {
            // SAFETY: every chunk from the consumer's on is owned by the lane alone now.
            let chunk = unsafe { Box::from_raw(at) };
            if chunk.burst.load(Ordering::Relaxed) {
                self.burst.fetch_sub(1, Ordering::AcqRel);
            }
            at = chunk.next.load(Ordering::Acquire);
        }
    }
}

const HEADER: usize = 8;

/// Records a sender collects from a lane at a time (it holds the lane's consumer lock while it
/// builds their bodies).
const COLLECT_STEP: usize = 256;
/// Records one raw spill step takes from a lane at most (about 150 KiB).
const SPILL_LANE_STEP: u64 = 512;
/// Raw records are moved into `buffer.jsonl` once none has been spilled for this long.
pub(super) const RAW_SETTLE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// A thread's handle on one of its lanes; marks the lane gone when the thread exits, and
/// gives back the thread's slot in the pipeline's [`LaneTable`].
struct Handle {
    pipeline: u64,
    lane: Arc<Lane>,
    table: Arc<LaneTable>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // On the owner thread (a thread-local's handles are dropped by their thread), before
        // the lane can go: a slot never names a lane that is not alive.
        self.table.release(thread_pointer(), &self.lane);
        self.lane.gone.store(true, Ordering::Release);
    }
}

/// The calling thread's pointer (its thread control block, where `fs:0` or `tpidr_el0`
/// points): unique among the process's live threads, read with one instruction and no memory
/// a call would not touch anyway. 0 where it is not read (other architectures): no slots.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let tp: usize;
        // SAFETY: on x86_64 Linux (glibc and musl), fs:0 holds the thread's own TCB address.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
                options(nostack, readonly, preserves_flags));
        }
        tp
    }
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    {
        let tp: usize;
        // SAFETY: reads the thread register; no memory access.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        tp
    }
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_os = "linux"
    )))]
    {
        0
    }
}

const SLOTS: usize = 64;

/// A pipeline's lanes by thread, in front of the thread-local list of handles (`LANES`): a
/// direct-mapped table from a thread's pointer to its lane. A call that finds its thread's
/// slot reads one line here instead of the thread-local, which in a shared library goes
/// through `__tls_get_addr` (the dynamic linker's code, its thread vector and the TLS block:
/// 3 to 4 pages and 6 lines for a call after a pause; docs/performance-history.md, "Lines and
/// pages of a cold call").
///
/// A slot is claimed (0 to the thread's pointer) and given back by its thread only, or
/// cleared by the pipeline's close; its lane is written and read by that thread only, while
/// the thread's [`Handle`] keeps the lane alive. Another thread that hashes to a taken slot
/// takes the thread-local's path. A thread's pointer is reused only by a thread started after
/// it ended, by which time its handles (thread-local destructors) have given its slots back.
pub(super) struct LaneTable {
    slots: [Slot; SLOTS],
}

#[derive(Default)]
#[repr(align(16))]
struct Slot {
    tp: AtomicUsize,
    lane: AtomicPtr<Lane>,
}

impl LaneTable {
    pub(super) fn new() -> Arc<LaneTable> {
        Arc::new(LaneTable {
            slots: std::array::from_fn(|_| Slot::default()),
        })
    }

    #[inline(always)]
    fn slot(&self, tp: usize) -> &Slot {
        &self.slots[(tp.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % SLOTS]
    }

    /// The calling thread's lane, if it holds its slot. `tp` is [`thread_pointer`].
    #[inline(always)]
    fn get(&self, tp: usize) -> Option<&Lane> {
        let s = self.slot(tp);
        if tp == 0 || s.tp.load(Ordering::Acquire) != tp {
            return None;
        }
        // SAFETY: the slot is the calling thread's (only it stores its own pointer there), so
        // `lane` was stored by this thread, and its handle keeps the lane alive until it gives
        // the slot back.
        unsafe { s.lane.load(Ordering::Relaxed).as_ref() }
    }

    /// Takes the calling thread's slot for `lane` if it is free.
    fn claim(&self, tp: usize, lane: &Arc<Lane>) {
        let s = self.slot(tp);
        // A look before the compare-and-swap: a thread whose slot another holds tries on
        // every call, and a read leaves the holder's line shared.
        if tp != 0
            && s.tp.load(Ordering::Relaxed) == 0
            && s.tp
                .compare_exchange(0, tp, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            s.lane
                .store(Arc::as_ptr(lane) as *mut Lane, Ordering::Relaxed);
        }
    }

    /// Gives back the calling thread's slot if it holds it for `lane`.
    fn release(&self, tp: usize, lane: &Arc<Lane>) {
        let s = self.slot(tp);
        if tp != 0
            && s.tp.load(Ordering::Acquire) == tp
            && std::ptr::eq(s.lane.load(Ordering::Relaxed), Arc::as_ptr(lane))
        {
            s.lane.store(std::ptr::null_mut(), Ordering::Relaxed);
            s.tp.store(0, Ordering::Release);
        }
    }

    /// Empties every slot (the pipeline is closing: its lanes are closed).
    fn clear(&self) {
        for s in &self.slots {
            s.tp.store(0, Ordering::Release);
        }
    }
}

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

    /// After a record went into a lane: wakes a sleeping sender, and the spill thread once
    /// per time the pool runs low (the flag is set again by the next `take` that finds it low
    /// after the refill).
    #[inline(always)]
    fn pushed_to_lane(&self) {
        if self.work.has_waiters() {
            self.work.notify();
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

    /// The spill thread's share of the lanes in a burst (the queue half full, a lane three
    /// quarters full, or a caller waiting for room): the records of a lane past half its
    /// capacity, down to a quarter, are copied as they are (a raw record, no JSON) into their
    /// service's overflow segment ([`DiskBuffer::overflow`]), which is moved into
    /// `buffer.jsonl` once the burst is over ([`Shared::settle_raw`]). A caller
    /// then finds room in its lane at the pace of a copy, instead of building bodies itself
    /// and waiting for their write. Not with `durable` (the records carry journal tickets;
    /// the entries are on disk already). Returns how many records it took.
    pub(super) fn spill_lanes(&self) -> usize {
        if !self.cfg.spills_lanes_raw() {
            return 0;
        }
        // While the queue has room the senders take the lanes' records, unless a lane is
        // three quarters full or a caller waits for room in one.
        let queue_full = self.rx.len() >= self.cfg.queue_capacity / 2;
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

    /// Moves the overflow journals' raw records into `buffer.jsonl` (see
    /// [`Shared::spill_lanes`]) once no record has been spilled raw for a while, or when
    /// `now` (a flush or the close). Returns whether it did.
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
        for b in buffers.iter().filter(|b| b.raw_pending()) {
            did = true;
            match b.settle_raw(go) {
                Ok(a) => {
                    self.dropped(
                        &self.stats.dropped_buffer_cap,
                        a.dropped_for_cap,
                        "the buffer reached buffer_max_total_bytes (oldest segment deleted)",
                    );
                    if let Some(e) = a.error {
                        self.note_error(&format!("overflow: {}: {e}", b.dir().display()));
                    }
                }
                Err(e) => self.note_error(&format!("overflow: {}: {e}", b.dir().display())),
            }
        }
        if did {
            self.replay_wake.notify();
        }
        did
    }

    /// With `on_full=spill`, a record that found its lane full waits for the spill thread to
    /// make room ([`Shared::spill_lanes`], a step of [`SPILL_LANE_STEP`] records at a time,
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
                let mut room = self.cfg.queue_capacity.saturating_sub(self.rx.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(i: usize, text: &str) -> Fields<'_> {
        Fields {
            message: text,
            user_id: (i % 3 == 0).then_some("u"),
            tenant_id: None,
            request_id: (i % 2 == 0).then_some(text),
            context_json: Some("{\"a\":1}"),
            client_log_datetime: None,
            trace: None,
        }
    }

    /// One producer and one consumer thread: every record comes out once, in order, whole,
    /// across many chunk boundaries (records of varying sizes), with chunks going back to the
    /// pool and coming out again.
    #[test]
    fn records_come_out_in_order_across_chunks() {
        let pool = Arc::new(ChunkPool::new(0));
        let lane = Arc::new(Lane::new(pool.take(), usize::MAX, &pool));
        let src = source("svc-lane", "lg");
        const N: usize = 100_000;
        let (l2, p2) = (lane.clone(), pool.clone());
        let consumer = std::thread::spawn(move || {
            let mut seen = 0usize;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen < N {
                assert!(std::time::Instant::now() < deadline, "stuck at {seen}");
                l2.collect(usize::MAX, &p2, |rec| {
                    let r = parse_record(rec).unwrap();
                    let want = format!("{seen}-{}", "x".repeat(seen % 700));
                    assert_eq!(r.fields.message, want);
                    assert_eq!(r.at_ns, seen as u64);
                    assert_eq!(r.level, Level::ALL[seen % 5]);
                    assert_eq!(r.fields.request_id, (seen % 2 == 0).then_some(&want[..]));
                    assert_eq!(r.fields.user_id, (seen % 3 == 0).then_some("u"));
                    assert_eq!(r.fields.context_json, Some("{\"a\":1}"));
                    assert_eq!(r.source, src as *const Source as u64);
                    seen += 1;
                });
                std::thread::yield_now();
            }
            seen
        });
        for i in 0..N {
            let text = format!("{i}-{}", "x".repeat(i % 700));
            let f = fields(i, &text);
            // SAFETY: this thread is the only producer.
            while !unsafe {
                lane.push(record_len(&f, false), &pool, |out| {
                    write_record(
                        out,
                        src as *const Source as u64,
                        i as u64,
                        Level::ALL[i % 5],
                        &f,
                        false,
                        &mut None,
                    )
                })
            } {
                std::thread::yield_now(); // full: the consumer makes room
            }
        }
        assert_eq!(consumer.join().unwrap(), N);
        assert_eq!(lane.pending(), 0);
        assert_eq!(lane.pushed(), N as u64);
    }

    #[test]
    fn a_lane_table_slot_is_its_threads_alone_until_given_back() {
        let pool = ChunkPool::new(0);
        let (a, b) = (
            Arc::new(Lane::new(pool.take(), 16, &pool)),
            Arc::new(Lane::new(pool.take(), 16, &pool)),
        );
        let t = LaneTable::new();
        let same_slot = |x: usize, y: usize| std::ptr::eq(t.slot(x), t.slot(y));
        let tp = 0x7f12_3456_7640;
        // Another thread pointer that lands on the same slot, and one that does not.
        let rival = (1..)
            .map(|k| tp + k * 0x80_0000)
            .find(|&o| same_slot(o, tp))
            .unwrap();
        let apart = (1..)
            .map(|k| tp + k * 0x80_0000)
            .find(|&o| !same_slot(o, tp))
            .unwrap();
        assert!(t.get(tp).is_none() && t.get(0).is_none());
        t.claim(0, &a);
        assert!(t.get(0).is_none(), "no slot for an unknown thread pointer");
        t.claim(tp, &a);
        assert!(std::ptr::eq(t.get(tp).unwrap(), &*a));
        // A rival neither finds the lane nor takes the slot; a thread elsewhere has its own.
        assert!(t.get(rival).is_none());
        t.claim(rival, &b);
        assert!(t.get(rival).is_none());
        assert!(std::ptr::eq(t.get(tp).unwrap(), &*a));
        t.claim(apart, &b);
        assert!(std::ptr::eq(t.get(apart).unwrap(), &*b));
        // Given back only by its holder, for its lane.
        t.release(rival, &b);
        t.release(tp, &b);
        assert!(std::ptr::eq(t.get(tp).unwrap(), &*a));
        t.release(tp, &a);
        assert!(t.get(tp).is_none());
        t.claim(rival, &b);
        assert!(std::ptr::eq(t.get(rival).unwrap(), &*b));
        // The pipeline's close empties every slot.
        t.clear();
        assert!(t.get(rival).is_none() && t.get(apart).is_none());
    }

    #[test]
    fn the_thread_pointer_tells_live_threads_apart() {
        let here = thread_pointer();
        if cfg!(all(
            any(target_arch = "x86_64", target_arch = "aarch64"),
            target_os = "linux"
        )) {
            assert_ne!(here, 0);
        }
        assert_eq!(thread_pointer(), here);
        let (tx, rx) = std::sync::mpsc::channel();
        let all_seen = Arc::new(std::sync::Barrier::new(5));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (tx, all_seen) = (tx.clone(), all_seen.clone());
                std::thread::spawn(move || {
                    tx.send(thread_pointer()).unwrap();
                    all_seen.wait(); // alive until every pointer is in
                })
            })
            .collect();
        // All four alive at once, and this one: five distinct pointers.
        let mut seen: Vec<usize> = (0..4).map(|_| rx.recv().unwrap()).collect();
        all_seen.wait();
        seen.push(here);
        seen.sort_unstable();
        seen.dedup();
        if here != 0 {
            assert_eq!(seen.len(), 5, "{seen:x?}");
        }
        for h in hs {
            h.join().unwrap();
        }
    }

    /// Pushes `f` into `lane`; false when it does not fit. The tests that call it are the
    /// lane's only producer.
    fn push_one(lane: &Lane, pool: &ChunkPool, src: &'static Source, f: &Fields<'_>) -> bool {
        // SAFETY: the calling test's thread is the lane's only producer.
        unsafe {
            lane.push(record_len(f, false), pool, |out| {
                write_record(
                    out,
                    src as *const Source as u64,
                    0,
                    Level::Info,
                    f,
                    false,
                    &mut None,
                )
            })
        }
    }

    /// Pushes `f` until the lane refuses it; how many went in.
    fn fill(lane: &Lane, pool: &ChunkPool, src: &'static Source, f: &Fields<'_>) -> usize {
        let mut n = 0;
        while push_one(lane, pool, src, f) {
            n += 1;
        }
        n
    }

    #[test]
    fn a_full_lane_refuses_until_collected_and_a_huge_record_never_fits() {
        let pool = ChunkPool::new(0);
        let lane = Lane::new(pool.take(), usize::MAX, &pool);
        let src = source("svc-lane", "lg");
        let text = "y".repeat(1000);
        let f = fields(1, &text);
        let n = fill(&lane, &pool, src, &f);
        // About LANE_CHUNKS chunks of records of about 1 KiB.
        assert!(n >= (LANE_CHUNKS - 1) * CHUNK / 1100, "{n}");
        assert!(n <= LANE_CHUNKS * CHUNK / 1000, "{n}");
        assert_eq!(lane.collect(usize::MAX, &pool, |_| ()), n);
        assert!(push_one(&lane, &pool, src, &f));
        let huge = "z".repeat(CHUNK);
        assert!(!push_one(&lane, &pool, src, &fields(1, &huge)));
        assert_eq!(lane.collect(usize::MAX, &pool, |_| ()), 1);
        // A bound in records, checked at the change of chunk.
        let small = Lane::new(pool.take(), 100, &pool);
        let n = fill(&small, &pool, src, &f);
        assert!((100..100 + CHUNK / 1000).contains(&n), "{n}");
    }

    /// Past its count bound a lane takes chunks of the pool's burst memory, shared by every
    /// lane, and gives each back when it is collected past it, or when the lane is dropped.
    #[test]
    fn burst_memory_is_shared_bounded_and_given_back() {
        let pool = ChunkPool::new(3 * CHUNK);
        let src = source("svc-burst", "lg");
        let text = "b".repeat(1000);
        let f = fields(1, &text);
        let per_chunk = CHUNK / ((HEADER + record_len(&f, false) + 7) & !7);
        let a = Lane::new(pool.take(), 10, &pool);
        // The first chunk (its count of 10 reached inside it), then the 3 burst chunks.
        let n = fill(&a, &pool, src, &f);
        assert_eq!(n, 4 * per_chunk, "{n}");
        assert_eq!(pool.burst_in_use(), 3);
        // SAFETY: this thread is the lane's producer.
        assert!(unsafe { a.full(&pool) });
        // Another lane has its count but no burst memory left.
        let b = Lane::new(pool.take(), 10, &pool);
        assert_eq!(fill(&b, &pool, src, &f), per_chunk);
        // Collected: the burst chunks passed are given back (the one the producer is in stays
        // taken).
        assert_eq!(a.collect(usize::MAX, &pool, |_| ()), n);
        assert_eq!(pool.burst_in_use(), 1);
        // SAFETY: as above.
        assert!(!unsafe { b.full(&pool) });
        assert_eq!(fill(&b, &pool, src, &f), 2 * per_chunk);
        assert_eq!(pool.burst_in_use(), 3);
        drop(a);
        drop(b);
        assert_eq!(pool.burst_in_use(), 0);
        // None where the pipeline has no burst memory: the count is the bound.
        let none = ChunkPool::new(0);
        let c = Lane::new(none.take(), 10, &none);
        assert_eq!(fill(&c, &none, src, &f), per_chunk);
        assert_eq!(none.burst_in_use(), 0);
    }
}
