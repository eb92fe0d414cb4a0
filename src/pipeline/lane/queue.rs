//! A lane: a single-producer, single-consumer queue of variable-length records in chunks of
//! [`CHUNK`] bytes, and the pool of chunks its pipeline's lanes share (with the burst memory).
//! The producer is the thread the lane belongs to; the consumer, whoever holds the lane's
//! consumer lock (a sender collecting, the spill thread, a FATAL's persist).

use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The bytes of one chunk: about 200 typical records.
pub(in crate::pipeline) const CHUNK: usize = 64 * 1024;
/// The most chunks one lane holds (16 MiB; the records' count, `queue_capacity`, is the bound
/// that counts: 8,192 typical records take about 2.7 MiB).
pub(in crate::pipeline) const LANE_CHUNKS: usize = 256;
/// Chunks kept for reuse by the pipeline (the spill thread keeps a few of them made ahead).
pub(in crate::pipeline) const CHUNK_POOL: usize = 32;

pub(in crate::pipeline) struct Chunk {
    data: NonNull<u8>,
    /// The next chunk, set (after an [`END`] mark where there is room for one) when the
    /// producer has moved on.
    next: AtomicPtr<Chunk>,
    /// Taken past the lane's count bound, from the pipeline's burst memory
    /// ([`ChunkPool::take_burst`]); set before the chunk is linked, given back when it is
    /// retired.
    burst: AtomicBool,
}

impl Chunk {
    /// A chunk; `touch`: its pages are written now, so that the page faults are taken by the
    /// thread that makes it (the spill thread, ahead of need) rather than by a caller.
    pub(in crate::pipeline) fn new(touch: bool) -> Box<Chunk> {
        let mut v = vec![0u8; CHUNK].into_boxed_slice();
        if touch {
            v.fill(1);
        }
        let data = NonNull::new(Box::into_raw(v) as *mut u8).unwrap_or(NonNull::dangling());
        Box::new(Chunk {
            data,
            next: AtomicPtr::new(std::ptr::null_mut()),
            burst: AtomicBool::new(false),
        })
    }
}

impl Chunk {
    /// Made empty again, for another lane.
    pub(in crate::pipeline) fn reset(&self) {
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

// SAFETY: the bytes behind `data` are written by the producer only before the count that
// publishes them (Release), and read by the consumer only up to the count it loaded (Acquire).
unsafe impl Send for Chunk {}
// SAFETY: as for Send.
unsafe impl Sync for Chunk {}

/// Chunks kept for reuse by a pipeline's lanes. `repr(C)`: `low`, read on every call, first.
#[repr(C)]
pub(in crate::pipeline) struct ChunkPool {
    /// A lane found the pool low: the spill thread refills it ([`ChunkPool::refill`]).
    pub(in crate::pipeline) low: AtomicBool,
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
    pub(in crate::pipeline) fn new(burst_bytes: usize) -> ChunkPool {
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
    pub(in crate::pipeline) fn take(&self) -> Box<Chunk> {
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
    pub(in crate::pipeline) fn refill(&self) {
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

pub(in crate::pipeline) struct Lane {
    prod: UnsafeCell<Prod>,
    /// Records published, ever: written by the producer only.
    pushed: CachePadded<AtomicU64>,
    cons: Mutex<Cons>,
    /// Records collected, ever.
    taken: CachePadded<AtomicU64>,
    retired: AtomicUsize,
    /// The most records it holds, past which it takes chunks of the burst memory only.
    pub(in crate::pipeline) max_records: u64,
    /// The pool's count of burst chunks (see `ChunkPool::burst`).
    burst: Arc<AtomicUsize>,
    /// The owner thread has exited: once empty, the lane is dropped.
    pub(in crate::pipeline) gone: AtomicBool,
    /// The pipeline has closed: the owner's thread-local forgets the lane.
    pub(in crate::pipeline) closed: AtomicBool,
}

// SAFETY: `prod` is used only by the thread that owns the lane (through its thread-local
// handle); `cons` is behind a mutex; the chunks are shared as described on `Chunk`.
unsafe impl Send for Lane {}
// SAFETY: as for Send.
unsafe impl Sync for Lane {}

impl Lane {
    pub(in crate::pipeline) fn new(
        first: Box<Chunk>,
        max_records: usize,
        pool: &ChunkPool,
    ) -> Lane {
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
    pub(in crate::pipeline) fn pending(&self) -> u64 {
        self.pushed
            .load(Ordering::Acquire)
            .saturating_sub(self.taken.load(Ordering::Acquire))
    }

    pub(in crate::pipeline) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
    }

    /// Whether a record that fits in a chunk is refused for want of room (see `next_chunk`).
    ///
    /// # Safety
    /// Called only by the lane's owner thread.
    pub(in crate::pipeline) unsafe fn full(&self, pool: &ChunkPool) -> bool {
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
    pub(in crate::pipeline) unsafe fn push(
        &self,
        n: usize,
        pool: &ChunkPool,
        write: impl FnOnce(&mut [u8]),
    ) -> bool {
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
        p.pushed += 1;
        // The count publishes the record (the consumer reads as many records as the count
        // says): the chunk's own line is not touched, a page fewer for a call after a pause.
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
        if p.pos + HEADER <= CHUNK {
            // SAFETY: [pos, pos + HEADER) is inside the chunk and past every record.
            unsafe { std::ptr::write_unaligned(p.data.add(p.pos).cast::<u64>(), END.to_le()) };
        }
        // SAFETY: `p.chunk` is a live chunk of this lane (freed only by the consumer once it
        // has moved past it, which it does only after `next` is set, here); the mark and
        // `next` are published with the next record's count.
        unsafe { &*p.chunk }.next.store(fresh, Ordering::Release);
        p.chunk = fresh;
        // SAFETY: `fresh` came from Box::into_raw just above.
        p.data = unsafe { (*fresh).data.as_ptr() };
        p.pos = 0;
        true
    }

    /// Hands the records in the lane, at most `max`, to `f`, in order. Returns how many.
    /// Another collector at the lane at the same time gets 0.
    pub(in crate::pipeline) fn collect(
        &self,
        max: usize,
        pool: &ChunkPool,
        f: impl FnMut(&[u8]),
    ) -> usize {
        let Ok(mut c) = self.cons.try_lock() else {
            return 0;
        };
        self.collect_from(&mut c, max, pool, f)
    }

    /// [`Lane::collect`], waiting for another collector at the lane to finish first.
    pub(in crate::pipeline) fn collect_wait(
        &self,
        max: usize,
        pool: &ChunkPool,
        f: impl FnMut(&[u8]),
    ) -> usize {
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
        // The records published and not yet taken (`taken` changes only under `cons`, held).
        let ready = self.pushed.load(Ordering::Acquire) - self.taken.load(Ordering::Relaxed);
        let max = max.min(usize::try_from(ready).unwrap_or(usize::MAX));
        let mut n = 0;
        while n < max {
            // SAFETY: `c.chunk` is live until this consumer retires it below.
            let chunk = unsafe { &*c.chunk };
            if c.pos + HEADER <= CHUNK {
                // SAFETY: a record is published at `c.pos`, or the producer's END mark (the
                // count said there is one more record, here or in a next chunk).
                let at = unsafe { chunk.data.as_ptr().add(c.pos) };
                // SAFETY: as above.
                let size = u64::from_le(unsafe { std::ptr::read_unaligned(at.cast::<u64>()) });
                if size != END {
                    let size = size as usize;
                    // SAFETY: as above: the whole record was written before its count.
                    f(unsafe { std::slice::from_raw_parts(at.add(HEADER), size) });
                    c.pos += (HEADER + size + 7) & !7;
                    n += 1;
                    continue;
                }
            }
            let next = chunk.next.load(Ordering::Acquire);
            if next.is_null() {
                break;
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

pub(in crate::pipeline) const HEADER: usize = 8;
/// In place of a record's header: the producer moved on to the next chunk from here.
const END: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::super::{source, Source};
    use super::*;
    use crate::entry::Fields;
    use crate::level::Level;
    use crate::record::{parse_record, record_len, write_record};

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
