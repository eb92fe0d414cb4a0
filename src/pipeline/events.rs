//! What happened to the entries, for the application to poll (`rarch_poll_events`): a
//! bounded queue of [`Event`]s, filled by the pipeline's threads where the counters of
//! [`Stats`](crate::stats::Stats) move, taken by the application's own thread. No callback
//! runs on a library thread (the bindings' runtimes do not want one).
//!
//! With `events=off` (the default) nothing is made: each place asks [`Events::wants`], one
//! load of a field. Past `events_capacity` events waiting, new ones are counted, and the
//! next poll reports them as one [`Kind::EventsLost`] with the count.

use crate::config;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The kinds of event; the values are the C ABI's `rarch_event_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Kind {
    /// An entry was delivered (2xx), fresh or from the disk buffer; `events=all` only.
    Delivered = 1,
    /// An entry was dead-lettered (`buffer.rejected.jsonl`): refused with a 4xx, or poison.
    DeadLettered = 2,
    /// Entries were dropped and counted (queue full, buffer cap, disk failure).
    Dropped = 3,
    /// The delivery policy declared the server down: entries go to disk.
    OutageStarted = 4,
    /// The server answered again: the outage is over.
    OutageEnded = 5,
    /// A buffer file could not be written.
    IoError = 6,
    /// A logger's `rate_limit` dropped entries (one per summary, with the count).
    RateLimited = 7,
    /// Events were not kept: the queue held `events_capacity`.
    EventsLost = 8,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// The HTTP status, 0 when there is none.
    pub status: u16,
    /// The entries it is about (1 for a per-entry kind).
    pub count: u64,
    pub time_unix_ms: u64,
    /// The entry's request id for a per-entry kind, "" otherwise.
    pub request_id: String,
    /// The reason, for a person.
    pub message: String,
}

/// The pipeline's event queue.
pub struct Events {
    level: config::Events,
    capacity: usize,
    queue: Mutex<VecDeque<Event>>,
    lost: AtomicU64,
}

impl Events {
    pub fn new(level: config::Events, capacity: usize) -> Events {
        Events {
            level,
            capacity: capacity.max(1),
            queue: Mutex::default(),
            lost: AtomicU64::new(0),
        }
    }

    /// Whether events of `kind` are reported.
    #[inline]
    pub fn wants(&self, kind: Kind) -> bool {
        match self.level {
            config::Events::Off => false,
            config::Events::Problems => kind != Kind::Delivered,
            config::Events::All => true,
        }
    }

    /// Queues an event of `kind` (if wanted).
    pub fn push(&self, kind: Kind, status: u16, count: u64, request_id: &str, message: &str) {
        if !self.wants(kind) || count == 0 {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= self.capacity {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push_back(Event {
            kind,
            status,
            count,
            time_unix_ms: now_unix_ms(),
            request_id: request_id.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Takes up to `max` events, oldest first; the count of those lost comes last, as one
    /// [`Kind::EventsLost`] (when there is room for it, else at the next poll).
    pub fn take(&self, max: usize) -> Vec<Event> {
        if self.level == config::Events::Off || max == 0 {
            return Vec::new();
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = q.len().min(max);
        let mut out: Vec<Event> = q.drain(..n).collect();
        drop(q);
        if out.len() < max {
            let lost = self.lost.swap(0, Ordering::Relaxed);
            if lost > 0 {
                out.push(Event {
                    kind: Kind::EventsLost,
                    status: 0,
                    count: lost,
                    time_unix_ms: now_unix_ms(),
                    request_id: String::new(),
                    message: format!(
                        "{lost} events were not kept: {} were waiting (events_capacity)",
                        self.capacity
                    ),
                });
            }
        }
        out
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `request_id` of an entry's JSON body (as this library writes it), "" if none.
pub fn request_id_of(body: &[u8]) -> &str {
    const KEY: &[u8] = b"\"request_id\":\"";
    let Some(at) = body.windows(KEY.len()).position(|w| w == KEY) else {
        return "";
    };
    let rest = &body[at + KEY.len()..];
    let mut end = 0;
    while end < rest.len() && rest[end] != b'"' {
        end += if rest[end] == b'\\' { 2 } else { 1 };
    }
    std::str::from_utf8(&rest[..end.min(rest.len())]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_filters_and_the_capacity_counts_what_is_lost() {
        let off = Events::new(config::Events::Off, 10);
        off.push(Kind::DeadLettered, 400, 1, "r", "m");
        assert!(off.take(10).is_empty());

        let p = Events::new(config::Events::Problems, 2);
        p.push(Kind::Delivered, 200, 1, "r1", "");
        p.push(Kind::DeadLettered, 400, 1, "r2", "bad");
        p.push(Kind::Dropped, 0, 5, "", "queue full");
        p.push(Kind::IoError, 0, 1, "", "disk");
        p.push(Kind::IoError, 0, 1, "", "disk");
        let got = p.take(1);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].kind, got[0].request_id.as_str()),
            (Kind::DeadLettered, "r2")
        );
        let got = p.take(10);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].kind, got[0].count), (Kind::Dropped, 5));
        assert_eq!((got[1].kind, got[1].count), (Kind::EventsLost, 2));
        assert!(p.take(10).is_empty());
    }

    #[test]
    fn the_request_id_is_read_from_a_body() {
        assert_eq!(
            request_id_of(br#"{"level":"INFO","request_id":"abc-1","context":{}}"#),
            "abc-1"
        );
        assert_eq!(request_id_of(br#"{"request_id":"a\"b"}"#), r#"a\"b"#);
        assert_eq!(request_id_of(b"{}"), "");
    }
}
