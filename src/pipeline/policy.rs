//! The delivery policy: what a failed attempt means, and what to do next. It takes outcomes and
//! a clock (milliseconds, given by the caller, so that tests drive it with a manual clock) and
//! answers three questions, for live sends and replays alike:
//!
//! 1. **Is the server failing, or one request?** An outage is declared only on a run of
//!    consecutive failures, across at least [`OUTAGE_ENTRIES`] different entries, that the
//!    recent success rate makes unlikely by chance (below [`OUTAGE_CHANCE`]): after a healthy
//!    spell that is about six failures, while half the requests fail it takes 20 or more. This is
//!    Envoy's outlier detection (consecutive failures) made to scale with the error rate the
//!    server has shown, so that a server answering 10%, 30% or even 50% of requests with 503
//!    is never taken as down, and one entry that keeps failing alone never makes an outage.
//!    During an outage entries go to disk and the replay thread probes, one entry per backoff
//!    step (full jitter, at most `backoff_max` apart); the first success ends it.
//! 2. **Is this entry poison?** A failed attempt is a *strike* against its entry only when the
//!    server answered it with an error of its own (a 500, or another 5xx but 502, 503 and 504,
//!    which are a gateway's or an overloaded server's words, not the entry's; no answer at all
//!    says nothing of the entry either), and only while the server is delivering others (no
//!    outage, and a success within `max_attempts` + 2 backoff steps of `backoff_max`, so that a
//!    poison entry left alone after the others went still reaches `max_attempts`). Strikes travel with the entry (in memory, and on disk as the
//!    `retry_count` field of its line, which the Python client writes too), so they add up
//!    across live sends, replays and restarts. The entry is dead-lettered when it has at least
//!    `max_attempts` strikes *and* that many failures in a row would happen to a good entry
//!    with probability under [`POISON_CHANCE`] at the recent success rate: with a healthy server that
//!    is `max_attempts`; with half the requests failing at random, about 30. So an outage of
//!    days counts nothing, and random 503s never dead-letter a good entry in practice.
//! 3. **When to try again?** Full-jitter exponential backoff per entry (Retry-After honoured
//!    up to `backoff_max`); the caller parks the entry (in memory or on disk) and sends the
//!    ones behind it meanwhile.
//!
//! A 401/403 is different: the key or the token is wrong for every entry, so it starts an
//! outage at once and is never a strike.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The fewest consecutive failures that make an outage.
pub(crate) const MIN_RUN: u32 = 5;
/// The most consecutive failures asked for, whatever the error rate.
pub(crate) const MAX_RUN: u32 = 64;
/// Different entries among the consecutive failures before they make an outage.
pub(crate) const OUTAGE_ENTRIES: usize = 3;
/// "Unlikely by chance" for an outage: a false one costs a few entries a trip through the disk
/// and one probe.
pub(crate) const OUTAGE_CHANCE: f64 = 1e-6;
/// "Unlikely by chance" for a poison entry: a false one dead-letters a good entry.
pub(crate) const POISON_CHANCE: f64 = 1e-9;
/// Weight of one attempt in the success rate (an exponential moving average over about the
/// last 64 attempts).
const EWMA_WEIGHT: f64 = 1.0 / 64.0;

/// What kind of failure an attempt had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer (connection refused or reset, timeout), or 408, 429, 502, 503, 504: the
    /// server (or a gateway before it) cannot take requests now. Never a strike.
    Unavailable,
    /// The server answered with an error of its own (500, another 5xx): may be the entry's.
    Failed,
    /// 401/403: the key or token is refused; every entry would fail.
    Auth,
}

impl Failure {
    /// The kind of a retryable answer's status (0: no answer).
    pub fn of_status(status: u16) -> Failure {
        match status {
            500 | 501 | 505..=599 => Failure::Failed,
            _ => Failure::Unavailable,
        }
    }
}

/// The policy's answer to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The entry's strikes after this attempt.
    pub strikes: u32,
    /// Dead-letter it: it keeps failing while others are delivered.
    pub poisoned: bool,
    /// The server is in an outage (now): park the entry on disk.
    pub outage: bool,
    /// This failure began the outage.
    pub began: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub max_attempts: u32,
}

#[derive(Debug)]
struct State {
    /// Success rate of recent attempts (1.0: all delivered).
    ewma: f64,
    /// The same, from successes and first failures only (see `failure`): what poison is
    /// judged by.
    ewma_fresh: f64,
    last_success_ms: Option<u64>,
    /// Consecutive failures since the last success, and some of the entries they came from.
    run: u32,
    run_entries: [u64; OUTAGE_ENTRIES],
    run_distinct: usize,
    /// Failed probes in the current outage (the backoff step of the next one).
    probe_step: u32,
}

/// The shared policy state of one pipeline (a small mutex, taken once per attempt's outcome;
/// the outage flag is also an atomic, read without it on every entry).
#[derive(Debug)]
pub struct Policy {
    cfg: Settings,
    outage: AtomicBool,
    state: Mutex<State>,
}

impl Policy {
    pub fn new(cfg: Settings) -> Policy {
        Policy {
            cfg,
            outage: AtomicBool::new(false),
            state: Mutex::new(State {
                ewma: 1.0,
                ewma_fresh: 1.0,
                last_success_ms: None,
                run: 0,
                run_entries: [0; OUTAGE_ENTRIES],
                run_distinct: 0,
                probe_step: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the server is taken as down (entries go to disk, the replay thread probes).
    pub fn outage(&self) -> bool {
        self.outage.load(Ordering::Acquire)
    }

    /// A delivered attempt. Returns true when it ended an outage.
    pub fn success(&self, now_ms: u64) -> bool {
        let mut s = self.state();
        s.ewma += (1.0 - s.ewma) * EWMA_WEIGHT;
        s.ewma_fresh += (1.0 - s.ewma_fresh) * EWMA_WEIGHT;
        s.last_success_ms = Some(now_ms);
        s.run = 0;
        s.run_distinct = 0;
        s.probe_step = 0;
        drop(s);
        // Read first: a write on every success would bounce the cache line between senders.
        self.outage.load(Ordering::Acquire) && self.outage.swap(false, Ordering::AcqRel)
    }

    /// A failed attempt of the entry `key` (any value that tells entries apart), which had
    /// `strikes` before it.
    pub fn failure(&self, now_ms: u64, key: u64, strikes: u32, kind: Failure) -> Verdict {
        let mut s = self.state();
        s.ewma -= s.ewma * EWMA_WEIGHT;
        // The rate a poison entry is judged by leaves out another failure of an entry that
        // failed before (strikes > 0) when nothing was delivered since the last failure: an
        // entry retried alone (the rest delivered) would otherwise drag it down until no
        // number of strikes could make the entry poison. Retries among deliveries (random
        // failures) still count.
        if !(kind == Failure::Failed && strikes > 0 && s.run > 0) {
            s.ewma_fresh -= s.ewma_fresh * EWMA_WEIGHT;
        }
        s.run = s.run.saturating_add(1);
        let n = s.run_distinct;
        if n < OUTAGE_ENTRIES && !s.run_entries[..n].contains(&key) {
            s.run_entries[n] = key;
            s.run_distinct += 1;
        }
        let was_outage = self.outage();
        let outage = was_outage
            || kind == Failure::Auth
            || (s.run_distinct >= OUTAGE_ENTRIES && s.run >= run_needed(s.ewma));
        if outage && !was_outage {
            s.probe_step = 0;
            self.outage.store(true, Ordering::Release);
        }
        let window = self.cfg.backoff_max.as_millis() as u64 * (self.cfg.max_attempts as u64 + 2);
        let others_delivered = s
            .last_success_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= window);
        let strike = !outage && kind == Failure::Failed && others_delivered;
        let strikes = strikes.saturating_add(strike as u32);
        let poisoned = strike
            && strikes >= self.cfg.max_attempts
            && (1.0 - s.ewma_fresh).powi(strikes as i32) < POISON_CHANCE;
        Verdict {
            strikes,
            poisoned,
            outage,
            began: outage && !was_outage,
        }
    }

    /// How long before the next outage probe; each call is one more failed step.
    pub fn next_probe(&self, jitter: impl FnOnce(Duration) -> Duration) -> Duration {
        let mut s = self.state();
        s.probe_step = s.probe_step.saturating_add(1);
        let base = self.backoff_base(s.probe_step);
        jitter(base).max(self.cfg.backoff_initial)
    }

    /// The backoff before the `attempt`-th retry (1-based), before jitter: `backoff_initial`
    /// doubled each time, at most `backoff_max`.
    pub fn backoff_base(&self, attempt: u32) -> Duration {
        self.cfg
            .backoff_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cfg.backoff_max)
    }

    /// The delay before retrying an entry: full jitter over [`Policy::backoff_base`], and at
    /// least the server's Retry-After (capped by `backoff_max`).
    pub fn retry_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: impl FnOnce(Duration) -> Duration,
    ) -> Duration {
        let d = jitter(self.backoff_base(attempt));
        match retry_after {
            Some(ra) => d.max(ra.min(self.cfg.backoff_max)),
            None => d,
        }
    }
}

/// Consecutive failures that a good server with success rate `ewma` shows with probability
/// under [`OUTAGE_CHANCE`]: the smallest n with (1 - ewma)^n < OUTAGE_CHANCE, within
/// [MIN_RUN, MAX_RUN].
fn run_needed(ewma: f64) -> u32 {
    let fail = 1.0 - ewma;
    if fail <= 0.0 {
        return MIN_RUN;
    }
    if fail >= 1.0 {
        return MAX_RUN;
    }
    let n = (OUTAGE_CHANCE.ln() / fail.ln()).ceil();
    (n as u32).clamp(MIN_RUN, MAX_RUN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32) -> Policy {
        Policy::new(Settings {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(30_000),
            max_attempts,
        })
    }

    /// Random failures from a fixed seed (xorshift64*): true with probability `rate`.
    struct Coin(u64);
    impl Coin {
        fn fails(&mut self, rate: f64) -> bool {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            (r as f64) < rate * (1u64 << 53) as f64
        }
    }

    #[test]
    fn run_needed_scales_with_the_error_rate() {
        assert_eq!(run_needed(1.0), MIN_RUN);
        assert_eq!(run_needed(0.99), MIN_RUN);
        assert_eq!(run_needed(0.5), 20);
        assert_eq!(run_needed(0.7), 12);
        assert_eq!(run_needed(0.0), MAX_RUN);
    }

    #[test]
    fn a_healthy_server_that_goes_down_is_an_outage_after_a_short_run() {
        let p = policy(10);
        let mut now = 0;
        for _ in 0..1000 {
            now += 1;
            p.success(now);
        }
        let mut n = 0;
        while !p.outage() {
            now += 1;
            let v = p.failure(now, n, 0, Failure::Failed);
            n += 1;
            assert!(!v.poisoned);
            assert!(n < 20, "no outage after {n} failures");
        }
        assert!(
            (MIN_RUN as u64..=8).contains(&n),
            "outage after {n} failures"
        );
        // The first success ends it.
        assert!(p.success(now + 1));
        assert!(!p.outage());
    }

    #[test]
    fn one_entry_failing_alone_is_never_an_outage_but_is_poison() {
        let p = policy(10);
        let mut now = 0;
        for _ in 0..200 {
            now += 1;
            p.success(now);
        }
        let mut strikes = 0;
        let mut attempts = 0;
        loop {
            now += 100;
            let v = p.failure(now, 42, strikes, Failure::Failed);
            attempts += 1;
            assert!(!v.outage, "one entry made an outage");
            assert_eq!(v.strikes, strikes + 1);
            strikes = v.strikes;
            if v.poisoned {
                break;
            }
            assert!(attempts < 30);
        }
        assert_eq!(attempts, 10);
    }

    #[test]
    fn a_poison_entry_left_alone_after_a_short_spell_of_deliveries_is_still_poison() {
        // A failing spell (an outage: the rate falls), a few deliveries, then one entry failing
        // alone: its own retries do not lower the rate it is judged by.
        let p = policy(10);
        let mut now = 0;
        for k in 0..40 {
            now += 1;
            p.failure(now, k, 0, Failure::Unavailable);
        }
        for _ in 0..400 {
            now += 1;
            p.success(now);
        }
        let mut strikes = 0;
        for attempt in 1..=10 {
            now += 500;
            let v = p.failure(now, 7, strikes, Failure::Failed);
            strikes = v.strikes;
            assert_eq!(v.poisoned, attempt == 10, "attempt {attempt}");
        }
    }

    #[test]
    fn poison_among_deliveries_is_dead_lettered_at_max_attempts() {
        let p = policy(10);
        let mut now = 0;
        let mut strikes = 0;
        for attempt in 1..=10 {
            for _ in 0..50 {
                now += 1;
                p.success(now);
            }
            let v = p.failure(now, 7, strikes, Failure::Failed);
            strikes = v.strikes;
            assert_eq!(v.poisoned, attempt == 10, "attempt {attempt}");
        }
    }

    #[test]
    fn random_failures_up_to_half_make_no_outage_and_no_poison() {
        let mut coin = Coin(0x9E37_79B9_7F4A_7C15);
        for rate in [0.1, 0.3, 0.5] {
            let p = policy(10);
            let mut now = 0;
            // Each entry is tried until it is delivered; entries interleave.
            let mut strikes = vec![0u32; 64];
            for i in 0..200_000u64 {
                now += 1;
                let e = (i % 64) as usize;
                if coin.fails(rate) {
                    let v = p.failure(now, e as u64, strikes[e], Failure::Failed);
                    assert!(!v.outage, "outage at {rate}% (attempt {i})");
                    assert!(!v.poisoned, "poison at {rate}% (attempt {i})");
                    strikes[e] = v.strikes;
                } else {
                    p.success(now);
                    strikes[e] = 0;
                }
            }
        }
    }

    #[test]
    fn an_outage_of_days_counts_no_strike() {
        let p = policy(3);
        let mut now = 0;
        p.success(now);
        // Down: every entry fails; the outage starts within a few failures.
        let mut strikes = [0u32; 8];
        for i in 0..100_000u64 {
            now += 5_000; // 100,000 probes 5 s apart: about 6 days
            let e = (i % 8) as usize;
            let v = p.failure(now, e as u64, strikes[e], Failure::Failed);
            assert!(!v.poisoned);
            strikes[e] = v.strikes;
        }
        assert!(p.outage());
        // At most the failures before the outage was declared counted.
        assert!(strikes.iter().sum::<u32>() <= MIN_RUN, "{strikes:?}");
    }

    #[test]
    fn no_strike_without_a_recent_delivery() {
        let p = policy(1);
        // Nothing was ever delivered: a lone entry failing is no evidence against it.
        let v = p.failure(1_000, 1, 0, Failure::Failed);
        assert_eq!((v.strikes, v.poisoned, v.outage), (0, false, false));
        p.success(2_000);
        let v = p.failure(3_000, 1, 0, Failure::Failed);
        assert_eq!(v.strikes, 1);
        // Long after the last delivery (over max_attempts + 2 backoff_max): no strike.
        let v = p.failure(2_000 + 3 * 30_000 + 1, 1, 1, Failure::Failed);
        assert_eq!(v.strikes, 1);
        // No answer, or an overloaded server's 503: never a strike.
        let v = p.failure(3_001, 1, 1, Failure::Unavailable);
        assert_eq!(v.strikes, 1);
    }

    #[test]
    fn auth_failures_start_an_outage_at_once_and_never_strike() {
        let p = policy(1);
        p.success(0);
        let v = p.failure(1, 1, 0, Failure::Auth);
        assert_eq!((v.strikes, v.poisoned, v.outage), (0, false, true));
    }

    #[test]
    fn probes_back_off_to_backoff_max_and_reset_on_success() {
        let p = policy(10);
        p.success(0);
        for e in 0..10 {
            p.failure(1, e, 0, Failure::Failed);
        }
        assert!(p.outage());
        let steps: Vec<u128> = (0..12).map(|_| p.next_probe(|d| d).as_millis()).collect();
        assert_eq!(&steps[..4], &[100, 200, 400, 800]);
        assert!(steps.iter().all(|&s| s <= 30_000));
        assert_eq!(*steps.last().unwrap(), 30_000);
        // Full jitter may draw 0: a probe still waits backoff_initial.
        assert_eq!(p.next_probe(|_| Duration::ZERO).as_millis(), 100);
        p.success(2);
        assert_eq!(p.next_probe(|d| d).as_millis(), 100);
    }

    #[test]
    fn retry_after_is_honoured_up_to_backoff_max() {
        let p = policy(10);
        let ra = Some(Duration::from_secs(120));
        assert_eq!(p.retry_delay(1, ra, |d| d), Duration::from_millis(30_000));
        let ra = Some(Duration::from_secs(2));
        assert_eq!(p.retry_delay(1, ra, |d| d), Duration::from_secs(2));
        assert_eq!(p.retry_delay(3, None, |d| d), Duration::from_millis(400));
    }
}
