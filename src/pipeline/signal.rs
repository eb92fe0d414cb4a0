//! [`Signal`]: a condition to wait on with a deadline, cheap to notify when nobody waits.

use super::lock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A condition to wait on with a deadline: a counter bumped by every `notify`. A `notify` with
/// nobody waiting costs one atomic add and one load, no lock and no system call (it is on the
/// senders' path once per entry, and on the callers' path).
#[derive(Default)]
pub(super) struct Signal {
    seq: AtomicU64,
    waiters: AtomicUsize,
    /// Of the waiters, those in [`Signal::waiting`] (an event loop's turns).
    loop_waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
    /// Also written by a notify with waiters: the eventfd of an event loop whose thread waits
    /// in `epoll_wait` rather than on `cond` (see [`Signal::waiting`]).
    waker: OnceLock<Arc<mio::Waker>>,
}

impl Signal {
    pub(super) fn notify(&self) {
        // SeqCst on both sides: either a waiter that registers later sees the new `seq`, or
        // this load sees the waiter and wakes it.
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_waiters(true);
        }
    }
    /// Like [`Signal::notify`], but wakes one waiter at most: a caller's wake costs one
    /// thread's wake-up, not every waiter's. For waiters that pass the wake on when there is
    /// more work than they take (the senders, [`Shared::worker`](super::Shared)).
    pub(super) fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_waiters(false);
        }
    }
    /// Waits until notified (after `seen`) or `timeout` passes; returns the new sequence.
    pub(super) fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        self.wait_for(timeout, timeout, || self.seq.load(Ordering::SeqCst) != seen);
        self.current()
    }
    pub(super) fn current(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }
    /// Waits until `ready()` is true (it is tried first, then after each wake-up) or `timeout`
    /// passes; returns whether it became true. The waiter is counted before `ready()` is first
    /// tried, so a notifier that changes the state and then checks [`Signal::has_waiters`]
    /// (after a SeqCst fence) either is seen by `ready()` or wakes it.
    /// `ready()` is also tried every `poll`, for changes that are not notified.
    pub(super) fn wait_for(
        &self,
        timeout: Duration,
        poll: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let end = Instant::now() + timeout;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the notifier's fence (see `Shared::made_room`).
        std::sync::atomic::fence(Ordering::SeqCst);
        let ok = loop {
            let seen = self.seq.load(Ordering::SeqCst);
            if ready() {
                break true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            let g = lock(&self.lock);
            if self.seq.load(Ordering::SeqCst) == seen {
                drop(
                    self.cond
                        .wait_timeout(g, left.min(poll))
                        .unwrap_or_else(|p| p.into_inner()),
                );
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        ok
    }
    /// Makes `waker` part of every notify that finds a waiter.
    pub(super) fn set_waker(&self, waker: Arc<mio::Waker>) {
        let _ = self.waker.set(waker);
    }

    /// Wakes the waiters: the event loop's by its eventfd (one write), the others by the
    /// condition variable (not touched when the loop's waiter is the only one: that would be
    /// one more system call on a caller's path).
    fn wake_waiters(&self, all: bool) {
        let in_loop = self.loop_waiters.load(Ordering::SeqCst);
        if in_loop > 0 {
            if let Some(w) = self.waker.get() {
                let _ = w.wake();
            }
        }
        if self.waiters.load(Ordering::SeqCst) > in_loop {
            // Taken and let go so that a waiter between its check of `seq` and its sleep
            // (both under the lock) is asleep before the wake-up.
            drop(lock(&self.lock));
            if all {
                self.cond.notify_all();
            } else {
                self.cond.notify_one();
            }
        }
    }

    /// [`Signal::wait_for`] for a thread that waits in its event loop: `turn(left)` waits up to
    /// `left` for the loop's events or the waker (which a notify writes while this waiter is
    /// counted). Returns whether `ready()` became true.
    pub(super) fn waiting(
        &self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
        mut turn: impl FnMut(Duration),
    ) -> bool {
        let end = Instant::now() + timeout;
        self.loop_waiters.fetch_add(1, Ordering::SeqCst);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let ok = loop {
            if ready() {
                break true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            turn(left);
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        self.loop_waiters.fetch_sub(1, Ordering::SeqCst);
        ok
    }

    pub(super) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }
}
