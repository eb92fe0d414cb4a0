//! Which lane is the calling thread's: a table of slots by thread pointer, read on the
//! caller's path without a lock, and the thread's handles on its lanes (one per pipeline),
//! which give the slot back and mark the lane gone when the thread exits.

use super::queue::Lane;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

/// A thread's handle on one of its lanes; marks the lane gone when the thread exits, and
/// gives back the thread's slot in the pipeline's [`LaneTable`].
pub(in crate::pipeline) struct Handle {
    pub(in crate::pipeline) pipeline: u64,
    pub(in crate::pipeline) lane: Arc<Lane>,
    pub(in crate::pipeline) table: Arc<LaneTable>,
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
pub(in crate::pipeline) fn thread_pointer() -> usize {
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
pub(in crate::pipeline) struct LaneTable {
    slots: [Slot; SLOTS],
}

#[derive(Default)]
#[repr(align(16))]
struct Slot {
    tp: AtomicUsize,
    lane: AtomicPtr<Lane>,
}

impl LaneTable {
    pub(in crate::pipeline) fn new() -> Arc<LaneTable> {
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
    pub(in crate::pipeline) fn get(&self, tp: usize) -> Option<&Lane> {
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
    pub(in crate::pipeline) fn claim(&self, tp: usize, lane: &Arc<Lane>) {
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
    pub(in crate::pipeline) fn release(&self, tp: usize, lane: &Arc<Lane>) {
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
    pub(in crate::pipeline) fn clear(&self) {
        for s in &self.slots {
            s.tp.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::ChunkPool;
    use super::*;

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
}
