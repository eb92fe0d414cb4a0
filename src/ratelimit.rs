//! `rate_limit`: a logger's token bucket for entries below ERROR, and the counts of what it
//! dropped, which the logger reports in summary entries (at most one a second, and a last one
//! at flush or close), so that the summaries add up to `dropped_rate_limit` exactly. Pure logic
//! on a clock the caller passes (tests use a manual one).

use crate::level::Level;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two summaries.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(1);

pub struct RateLimit {
    /// Entries a second, and the most taken at once.
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    last: Instant,
    /// Dropped since the last summary, by level (DEBUG, INFO, WARN).
    dropped: [u64; 3],
    last_summary: Instant,
}

/// What a summary reports: the entries dropped since the last one, by level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub total: u64,
    pub by_level: [u64; 3],
}

impl Summary {
    /// The summary entry's message.
    pub fn message(&self, rate: u64) -> String {
        format!("suppressed {} entries (rate_limit {rate}/s)", self.total)
    }

    /// The summary entry's context.
    pub fn context(&self) -> String {
        let [d, i, w] = self.by_level;
        format!(
            r#"{{"suppressed":{},"by_level":{{"DEBUG":{d},"INFO":{i},"WARN":{w}}}}}"#,
            self.total
        )
    }
}

impl RateLimit {
    /// `rate` entries a second (> 0), `burst` at once (0: a second's worth).
    pub fn new(rate: u64, burst: u64, now: Instant) -> RateLimit {
        let burst = if burst == 0 { rate } else { burst } as f64;
        RateLimit {
            rate: rate as f64,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: now,
                dropped: [0; 3],
                last_summary: now,
            }),
        }
    }

    /// Whether an entry at `level` is taken. ERROR and FATAL always are and cost no token;
    /// a dropped one is counted for the next summary.
    pub fn admit(&self, level: Level, now: Instant) -> bool {
        if level >= Level::Error {
            return true;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let dt = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + dt * self.rate).min(self.burst);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            return true;
        }
        s.dropped[(level as usize).min(2)] += 1;
        false
    }

    /// The summary due now (entries dropped, and a second since the last one, or `force`),
    /// its counts taken; None otherwise.
    pub fn summary(&self, now: Instant, force: bool) -> Option<Summary> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = s.dropped.iter().sum();
        if total == 0 || (!force && now.saturating_duration_since(s.last_summary) < SUMMARY_EVERY) {
            return None;
        }
        let by_level = std::mem::take(&mut s.dropped);
        s.last_summary = now;
        Some(Summary { total, by_level })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_takes_a_seconds_worth_then_the_rate_and_errors_always() {
        let t0 = Instant::now();
        let rl = RateLimit::new(100, 0, t0);
        let taken = (0..1000).filter(|_| rl.admit(Level::Debug, t0)).count();
        assert_eq!(taken, 100);
        assert!(rl.admit(Level::Error, t0) && rl.admit(Level::Fatal, t0));
        // Half a second later: 50 more.
        let t1 = t0 + Duration::from_millis(500);
        let taken = (0..1000).filter(|_| rl.admit(Level::Info, t1)).count();
        assert_eq!(taken, 50);
        // Not a second since the start: no summary unless forced.
        assert_eq!(rl.summary(t1, false), None);
        let s = rl.summary(t1, true).unwrap();
        assert_eq!(s.total, 900 + 950);
        assert_eq!(s.by_level, [900, 950, 0]);
        assert_eq!(rl.summary(t1, true), None);
        assert_eq!(
            s.context(),
            r#"{"suppressed":1850,"by_level":{"DEBUG":900,"INFO":950,"WARN":0}}"#
        );
        assert_eq!(s.message(100), "suppressed 1850 entries (rate_limit 100/s)");
    }

    #[test]
    fn summaries_come_at_most_once_a_second() {
        let t0 = Instant::now();
        let rl = RateLimit::new(1, 1, t0);
        assert!(rl.admit(Level::Warn, t0));
        assert!(!rl.admit(Level::Warn, t0));
        assert_eq!(rl.summary(t0 + Duration::from_millis(999), false), None);
        let s = rl.summary(t0 + SUMMARY_EVERY, false).unwrap();
        assert_eq!(s.by_level, [0, 0, 1]);
    }
}
