//! Counters of a pipeline. Every entry a logger accepts ends in exactly one of: delivered,
//! buffered (on disk, later replayed), rejected (dead-lettered) or one of the dropped counters.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters, updated with relaxed atomics. Each on a cache line of its own: the
        /// callers count `logged` while the sender threads count `delivered`, and sharing a
        /// line they took it from each other on every call (2% of `rarch_log`'s p50,
        /// measured side by side with `bench/ab.sh`).
        #[derive(Debug, Default)]
        pub struct Stats { $($(#[$doc])* pub $name: CachePadded<AtomicU64>,)* }

        /// A copy of the counters at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct StatsSnapshot { $($(#[$doc])* pub $name: u64,)* }

        impl StatsSnapshot {
            /// The counters' names, in order (each is also a field of `rarch_statistics`).
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
        }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Entries taken by `log` (after the level filter; not those refused with QUEUE_FULL).
    logged,
    /// Entries below the logger's level, dropped before any work.
    filtered,
    /// Entries the server accepted (2xx), fresh or replayed.
    delivered,
    /// Requests that did not deliver (network error, timeout, non-2xx).
    failed_attempts,
    /// In-memory retries.
    retried,
    /// Entries written to the buffer file.
    buffered,
    /// Entries delivered from the buffer file.
    replayed,
    /// Entries the server refused with a 4xx other than 401/403/408/429: dead-lettered.
    rejected,
    /// Entries dead-lettered (buffer.rejected.jsonl) after `max_attempts` failed attempts
    /// while the server delivered other entries: a "poison" entry.
    poisoned,
    /// Panics caught in a sending thread's request (the entry was retried; the thread goes on).
    sender_panics,
    /// Buffer lines that did not parse: moved to buffer.corrupt.jsonl.
    corrupt,
    /// 401/403 answers: the key or token is wrong; the entries are kept.
    auth_failures,
    /// Dropped because the queue was full (on_full=drop or block, or the overflow was full).
    dropped_queue_full,
    /// Dropped from disk because the buffer reached buffer_max_total_bytes.
    dropped_buffer_cap,
    /// Dropped because the buffer file could not be written.
    dropped_io,
    /// Dropped by a logger's `rate_limit` (each reported in a summary entry).
    dropped_rate_limit,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}
