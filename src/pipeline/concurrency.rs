//! How many requests may be in flight: Adaptive Request Concurrency (Vector's ARC, an AIMD on
//! round-trip times), shared by the sender threads and the replay threads of one pipeline.
//!
//! Every request holds a permit from [`Limiter::acquire`] until its answer; the limit moves
//! once per window (one round-trip time, at least [`MIN_WINDOW`]):
//! - back-pressure in the window (a 429 or 503, or no answer in time), or a mean round-trip
//!   time over [`RTT_RISE`] times the base one (the lowest window mean seen; it drifts up while
//!   the limit is at its lowest, so that a server that moved further away is followed): the
//!   limit is multiplied by
//!   [`DECREASE`], down to [`MIN_LIMIT`];
//! - otherwise, if the limit was used to the full during the window: it grows, doubling at
//!   first (slow start, until the first decrease) and by one after that.
//!
//! So a distant server (the round-trip time stays flat however many requests wait on it) gets
//! up to `connections` requests at once, and a near one that is bound by its CPU, whose answers
//! slow down as requests queue, gets about as many as keep it busy. `concurrency=fixed` keeps
//! the limit at `connections`.
//!
//! The pure logic ([`State`]) takes times from the caller, so tests drive it with a manual
//! clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The shortest adjustment window.
pub(crate) const MIN_WINDOW: Duration = Duration::from_millis(5);
/// Multiplicative decrease.
pub(crate) const DECREASE: f64 = 0.9;
/// Weight of a window's mean round-trip time in the usual one (the window's length).
const EWMA_ALPHA: f64 = 0.4;
/// A window's mean round-trip time is "rising" above this many times the base one. Requests
/// that queue at the server (or for its CPU, on loopback) show at once as a longer round trip;
/// a distant server's stays flat.
pub(crate) const RTT_RISE: f64 = 2.0;
/// How fast the base round-trip time follows window means above it, per window, while the
/// limit is at its lowest (the round trip without load has grown: the server moved away).
const BASE_DRIFT: f64 = 0.1;
/// The lowest limit: two requests in flight, the old fixed default.
pub(crate) const MIN_LIMIT: usize = 2;
/// Round-trip times kept for the p50 in the stats.
const SAMPLES: usize = 256;

/// The limiter's state and rules, without locks or clocks.
#[derive(Debug, Clone)]
pub(crate) struct State {
    adaptive: bool,
    max: usize,
    pub(crate) limit: usize,
    in_flight: usize,
    /// Threads waiting in `acquire` (a permit given back wakes one only if there is one:
    /// `Condvar::notify_one` is a system call even when nobody waits).
    waiting: usize,
    /// The most permits out at once during this window.
    busy_max: usize,
    slow_start: bool,
    /// The usual round-trip time (µs, the windows' length) and the base one (the lowest).
    past_rtt: Option<f64>,
    base_rtt: Option<f64>,
    win_start_us: u64,
    win_sum_us: f64,
    win_n: u32,
    win_backpressure: bool,
    samples: Vec<u32>,
    next_sample: usize,
}

impl State {
    pub(crate) fn new(adaptive: bool, initial: usize, max: usize) -> State {
        let max = max.max(1);
        State {
            adaptive,
            max,
            limit: if adaptive { initial.clamp(1, max) } else { max },
            in_flight: 0,
            waiting: 0,
            busy_max: 0,
            slow_start: true,
            past_rtt: None,
            base_rtt: None,
            win_start_us: 0,
            win_sum_us: 0.0,
            win_n: 0,
            win_backpressure: false,
            samples: Vec::with_capacity(SAMPLES),
            next_sample: 0,
        }
    }

    fn try_take(&mut self) -> bool {
        if self.in_flight >= self.limit {
            return false;
        }
        self.in_flight += 1;
        self.busy_max = self.busy_max.max(self.in_flight);
        true
    }

    /// A request's answer (or its failure) came after `rtt`, at `now_us`.
    pub(crate) fn done(&mut self, now_us: u64, rtt: Duration, backpressure: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let us = rtt.as_micros().min(u32::MAX as u128) as u32;
        if self.samples.len() < SAMPLES {
            self.samples.push(us);
        } else {
            self.samples[self.next_sample] = us;
        }
        self.next_sample = (self.next_sample + 1) % SAMPLES;
        if !self.adaptive {
            return;
        }
        if self.win_start_us == 0 {
            // The first window began when its first request was sent; each later one where
            // the one before it ended.
            self.win_start_us = now_us.saturating_sub(us as u64).max(1);
        }
        if backpressure {
            self.win_backpressure = true;
        } else {
            self.win_sum_us += us as f64;
            self.win_n += 1;
        }
        let window = self
            .past_rtt
            .unwrap_or(0.0)
            .max(MIN_WINDOW.as_micros() as f64);
        if (now_us.saturating_sub(self.win_start_us) as f64) < window {
            return;
        }
        self.adjust();
        self.win_start_us = now_us;
        self.win_sum_us = 0.0;
        self.win_n = 0;
        self.win_backpressure = false;
        self.busy_max = self.in_flight;
    }

    fn adjust(&mut self) {
        let mean = (self.win_n > 0).then(|| self.win_sum_us / self.win_n as f64);
        let rising = match (mean, self.base_rtt) {
            (Some(m), Some(b)) => m > b * RTT_RISE,
            _ => false,
        };
        let at_floor = self.limit <= MIN_LIMIT;
        if self.win_backpressure || rising {
            self.limit = ((self.limit as f64 * DECREASE) as usize).max(MIN_LIMIT.min(self.max));
            self.slow_start = false;
        } else if self.busy_max >= self.limit {
            self.limit = if self.slow_start {
                self.limit * 2
            } else {
                self.limit + 1
            }
            .min(self.max);
        }
        if let Some(m) = mean {
            self.past_rtt = Some(self.past_rtt.map_or(m, |p| p + (m - p) * EWMA_ALPHA));
            self.base_rtt = Some(match self.base_rtt {
                Some(b) if m >= b && at_floor && rising => b + (m - b) * BASE_DRIFT,
                Some(b) if m >= b => b,
                _ => m,
            });
        }
    }

    pub(crate) fn rtt_p50(&self) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.samples.clone();
        let mid = v.len() / 2;
        let (_, m, _) = v.select_nth_unstable(mid);
        Duration::from_micros(*m as u64)
    }
}

/// The shared limiter of one pipeline.
pub(crate) struct Limiter {
    state: Mutex<State>,
    freed: Condvar,
    born: std::time::Instant,
    /// Answers so far, and the median round trip (µs) as of the last of every 64th, for
    /// readers that must not take the lock (a sender deciding to pipeline, once per request).
    answers: AtomicU64,
    recent_p50_us: AtomicU64,
}

impl Limiter {
    pub(crate) fn new(adaptive: bool, initial: usize, max: usize) -> Limiter {
        Limiter {
            state: Mutex::new(State::new(adaptive, initial, max)),
            freed: Condvar::new(),
            born: std::time::Instant::now(),
            answers: AtomicU64::new(0),
            recent_p50_us: AtomicU64::new(u64::MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a permit; None once `give_up()` is true (checked every 10 ms).
    pub(crate) fn acquire(&self, give_up: impl Fn() -> bool) -> Option<Permit<'_>> {
        self.take(give_up).map(|start| Permit {
            limiter: self,
            start,
            done: false,
        })
    }

    /// A permit if one is free now.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_take().map(|start| Permit {
            limiter: self,
            start,
            done: false,
        })
    }

    /// [`Limiter::acquire`] for a request answered on another thread: the permit is the
    /// instant it was taken, given back by [`Limiter::finish`] (or [`Limiter::cancel`]).
    pub(crate) fn take(&self, give_up: impl Fn() -> bool) -> Option<std::time::Instant> {
        let mut s = self.lock();
        loop {
            if s.try_take() {
                return Some(std::time::Instant::now());
            }
            if give_up() {
                return None;
            }
            s.waiting += 1;
            s = self
                .freed
                .wait_timeout(s, Duration::from_millis(10))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            s.waiting -= 1;
        }
    }

    /// Whether a permit is free now.
    pub(crate) fn has_room(&self) -> bool {
        let s = self.lock();
        s.in_flight < s.limit
    }

    /// A permit if one is free now (see [`Limiter::take`]).
    pub(crate) fn try_take(&self) -> Option<std::time::Instant> {
        self.lock().try_take().then(std::time::Instant::now)
    }

    pub(crate) fn limit(&self) -> usize {
        self.lock().limit
    }

    pub(crate) fn rtt_p50(&self) -> Duration {
        self.lock().rtt_p50()
    }

    /// [`Limiter::rtt_p50`] as of up to 64 answers ago, without the lock (`Duration::MAX`,
    /// unknown, before the first 64).
    pub(crate) fn recent_rtt_p50(&self) -> Duration {
        match self.recent_p50_us.load(Ordering::Relaxed) {
            u64::MAX => Duration::MAX,
            us => Duration::from_micros(us),
        }
    }
}

/// The right to have one request in flight, given back with its outcome (or, dropped without
/// one, as if it had not been sent).
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    start: std::time::Instant,
    done: bool,
}

impl Permit<'_> {
    /// The request was answered (`backpressure`: 429/503 or no answer in time).
    pub(crate) fn answered(self, backpressure: bool) {
        self.answered_many(backpressure, 1);
    }

    /// `n` requests pipelined under this permit were answered (see [`Limiter::finish`]).
    pub(crate) fn answered_many(mut self, backpressure: bool, n: usize) {
        self.done = true;
        self.limiter.finish(self.start, backpressure, n);
    }
}

impl Limiter {
    /// Gives back the permit taken at `start` after its `n` requests were answered: the round
    /// trip counted is the exchange's over `n` (a server answers pipelined requests one after
    /// the other), so that it reads the same whatever the depth.
    pub(crate) fn finish(&self, start: std::time::Instant, backpressure: bool, n: usize) {
        let now = self.born.elapsed().as_micros() as u64;
        let rtt = start.elapsed() / n.max(1) as u32;
        let mut s = self.lock();
        s.done(now, rtt, backpressure);
        if (self.answers.fetch_add(1, Ordering::Relaxed) + 1) % 64 == 0 {
            let p = s.rtt_p50().as_micros() as u64;
            self.recent_p50_us.store(p, Ordering::Relaxed);
        }
        let wake = s.waiting > 0;
        drop(s);
        if wake {
            self.freed.notify_one();
        }
    }

    /// Gives back a permit whose request was not sent.
    pub(crate) fn cancel(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let wake = s.waiting > 0;
        drop(s);
        if wake {
            self.freed.notify_one();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `windows` windows of `per_window` requests, each taking `rtt(limit)` µs, as many in
    /// flight as the limit allows; returns the limits seen.
    fn drive(
        s: &mut State,
        windows: usize,
        mut rtt: impl FnMut(usize) -> u64,
        mut bp: impl FnMut(usize) -> bool,
    ) -> Vec<usize> {
        // The manual clock goes on from where the last window ended.
        let mut now = s.win_start_us.max(1_000_000);
        let mut seen = Vec::new();
        for w in 0..windows {
            let l = s.limit;
            let r = rtt(l);
            // `l` requests in flight at once, all answered after r.
            for _ in 0..l {
                assert!(s.try_take());
            }
            now += r.max(MIN_WINDOW.as_micros() as u64) + 1;
            for _ in 0..l {
                s.done(now, Duration::from_micros(r), bp(w));
            }
            seen.push(s.limit);
        }
        seen
    }

    #[test]
    fn a_distant_server_gets_the_most_concurrency() {
        let mut s = State::new(true, 2, 64);
        let seen = drive(&mut s, 20, |_| 50_000, |_| false);
        // Slow start: 2, 4, 8, 16, 32, 64.
        assert_eq!(&seen[..5], &[4, 8, 16, 32, 64]);
        assert_eq!(s.limit, 64);
    }

    #[test]
    fn a_server_that_slows_under_load_holds_the_limit_near_its_knee() {
        // Answers take 100 µs up to 4 in flight, then grow with the queue (CPU-bound).
        let mut s = State::new(true, 2, 64);
        let seen = drive(&mut s, 200, |l| 100 * (l.max(4) as u64) / 4, |_| false);
        let tail = &seen[100..];
        assert!(tail.iter().all(|&l| l <= 9), "{tail:?}");
        assert!(tail.iter().any(|&l| l >= 4), "{tail:?}");
    }

    #[test]
    fn back_pressure_cuts_the_limit() {
        let mut s = State::new(true, 2, 64);
        drive(&mut s, 10, |_| 50_000, |_| false);
        assert_eq!(s.limit, 64);
        let seen = drive(&mut s, 10, |_| 50_000, |_| true);
        assert!(seen.windows(2).all(|w| w[1] <= w[0]), "{seen:?}");
        assert!(s.limit <= 64 * 35 / 100, "{seen:?}");
        let seen = drive(&mut s, 30, |_| 50_000, |_| true);
        assert_eq!(*seen.last().unwrap(), MIN_LIMIT, "{seen:?}");
        // Healthy again: additive increase, one per window.
        let before = s.limit;
        drive(&mut s, 5, |_| 50_000, |_| false);
        assert!(
            (before + 4..=before + 5).contains(&s.limit),
            "{before} -> {}",
            s.limit
        );
    }

    #[test]
    fn a_server_that_moved_further_away_is_followed() {
        let mut s = State::new(true, 2, 64);
        drive(&mut s, 10, |_| 1_000, |_| false);
        assert_eq!(s.limit, 64);
        // Ten times further, whatever the load: first taken as queueing, then as the new base.
        let seen = drive(&mut s, 80, |_| 10_000, |_| false);
        assert!(seen.contains(&MIN_LIMIT), "{seen:?}");
        assert!(*seen.last().unwrap() > 16, "{seen:?}");
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut s = State::new(true, 2, 64);
        let mut now = 1_000_000;
        for _ in 0..100 {
            assert!(s.try_take());
            now += 10_000;
            s.done(now, Duration::from_micros(100), false);
        }
        assert_eq!(s.limit, 2);
    }

    #[test]
    fn fixed_is_the_maximum_always() {
        let mut s = State::new(false, 2, 8);
        assert_eq!(s.limit, 8);
        drive(&mut s, 10, |_| 50_000, |_| true);
        assert_eq!(s.limit, 8);
        assert_eq!(s.rtt_p50(), Duration::from_micros(50_000));
    }
}
