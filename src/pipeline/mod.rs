//! The delivery pipeline shared by every logger with the same configuration. Its parts, one
//! file each:
//! - this file: the registry of pipelines, the caller's side (`submit`, `flush`) and the
//!   shared state;
//! - [`lane`]: the per-thread lanes `rarch_log` copies its entries into, which the sender
//!   collects;
//! - [`sender`]: the sender thread, which signs and POSTs on its event loop
//!   ([`crate::evloop`]), and parks failed entries for a retry;
//! - [`spill`]: the spill thread and every write to the buffer files (overflow, outage,
//!   dead letters);
//! - [`replay`]: the replay thread, which sends the disk buffer back (its requests on the
//!   sender's event loop), and probes the server during an outage;
//! - [`policy`]: the delivery policy (outage, poison, backoff), pure logic on a clock;
//! - [`signal`]: the wait-with-deadline primitive the threads use to wake each other.
//!
//! Every entry taken in ends in exactly one counter of [`Stats`]: delivered, buffered (on
//! disk), rejected or poisoned (dead-lettered) or dropped with a reason.

mod concurrency;
pub mod events;
mod lane;
mod policy;
mod replay;
mod sender;
mod signal;
mod spill;

use concurrency::Limiter;
pub use lane::{source, Source};
use policy::Policy;
use signal::Signal;

use crate::buffer::DiskBuffer;
use crate::config::{Config, Mirror, Mode, OnFull};
use crate::error::{Error, ErrorKind, Result};
use crate::journal::{Journal, Ticket};
use crate::jwt::Tokens;
use crate::level::Level;
use crate::stats::Stats;
use crate::transport::Transport;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use crossbeam_utils::CachePadded;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One entry on its way: its service (the JWT subject) and its JSON body.
pub struct Item {
    pub service: Arc<str>,
    pub body: Vec<u8>,
    /// Its record in the crash journal (`durable=true`), settled when the entry is safe.
    pub ticket: Option<Ticket>,
    /// Failed attempts that count against it (see [`policy`]); written to disk with it.
    strikes: u32,
    /// Attempts made in memory (at most `max_retries` + 1 before it goes to disk).
    tries: u32,
    /// When `log` took it, in nanoseconds since the Unix epoch (sink=otlp: the record's
    /// `observedTimeUnixNano`); 0 when not known.
    pub observed_ns: u64,
}

impl Item {
    pub fn new(service: Arc<str>, body: Vec<u8>) -> Item {
        Item {
            service,
            body,
            ticket: None,
            strikes: 0,
            tries: 0,
            observed_ns: 0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Entry buffers kept for reuse, so that in a steady state the caller's path allocates nothing
/// (a buffer freed by a sender thread and allocated again by a caller costs allocator locks
/// and page faults, seen at the 99th percentile).
const POOL: usize = 1024;
const POOL_MAX_CAPACITY: usize = 16 * 1024;
/// The spill thread keeps at least this many buffers in the pool, made and touched ahead of
/// need: while the server is slow or down, entries wait in the queue and their buffers do not
/// come back, and a caller that allocated a fresh one took a page fault about once in six
/// calls (p99 of 15 µs measured with `rbench caller` against a slow server).
const POOL_LOW: usize = POOL / 2;
/// The size of the buffers made ahead: a typical entry (64-byte message, 230-byte context,
/// the benchmarks' `typical_entry.h`) takes about 510 bytes; a larger one grows its buffer,
/// which then comes back larger. Every built entry in the queue holds one.
const POOL_FRESH_CAPACITY: usize = 640;

/// `repr(C)`: the fields a call reads on the lane path (`id`, `lane_table`, `work`'s waiters,
/// `chunks.low`) come first, on one cache line (the struct is aligned to 128 bytes by its
/// `CachePadded` counters).
/// The sender threads and their slots (a slot is a sender's index, its in-flight copy's place).
#[derive(Default)]
struct SenderThreads {
    handles: Vec<JoinHandle<()>>,
    /// Slots given back by senders that retired, taken again first.
    free: Vec<usize>,
    /// The next slot never used.
    next: usize,
}

#[repr(C)]
struct Shared {
    /// This pipeline among all of the process's, ever (the key of a thread's lanes).
    id: u64,
    /// The lanes by thread (see [`lane::LaneTable`]).
    lane_table: Arc<lane::LaneTable>,
    /// Wakes senders waiting for work after a quiet spell (a record in a lane, an entry in the
    /// queue).
    work: Signal,
    /// Lane chunks kept for reuse.
    chunks: lane::ChunkPool,
    cfg: Config,
    tx: Sender<Item>,
    rx: Receiver<Item>,
    pool_tx: Sender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
    /// A caller found the pool low and woke the spill thread to refill it.
    pool_low: AtomicBool,
    /// The lanes of the threads that log into this pipeline (see [`lane`]).
    lanes: Mutex<Vec<Arc<lane::Lane>>>,
    transport: Transport,
    tokens: Tokens,
    stats: Stats,
    buffers: Mutex<HashMap<Arc<str>, Arc<DiskBuffer>>>,
    overflow: Mutex<VecDeque<Item>>,
    overflow_len: AtomicUsize,
    /// Entries taken into memory (queue or overflow), and those of them that have ended:
    /// the first counted by callers, the second by the sender threads, each on a cache line
    /// of its own (see [`Stats`]).
    accepted: CachePadded<AtomicU64>,
    settled: CachePadded<AtomicU64>,
    /// The lowest `settled` count a `flush` waits for (`u64::MAX`: none). `settle` wakes the
    /// flushers only once it is reached, not once per entry (that was one futex call and one
    /// context switch per delivered entry while a flush waited).
    flush_want: AtomicU64,
    /// The delivery policy: whether the server is in an outage (workers write to disk, the
    /// replay thread probes), which entries are poison, and the backoffs.
    policy: Policy,
    /// Entries that failed, parked until their retry is due (earliest first).
    retry: Mutex<BinaryHeap<sender::Parked>>,
    retry_len: AtomicUsize,
    /// Requests in flight: a permit per request, the limit adaptive (see [`concurrency`]).
    limiter: Limiter,
    /// How many rarch requests a sender pipelines in one exchange (see `sender::pipelined`).
    pipeline_depth: AtomicUsize,
    /// The sender threads, started as the limit grows (joined at close); one past the first
    /// exits after an idle spell ([`sender::IDLE_EXIT`]) and gives its slot back.
    senders: Mutex<SenderThreads>,
    sender_count: AtomicUsize,
    closing: AtomicBool,
    close_deadline: Mutex<Option<Instant>>,
    /// Wakes flush waiters (entries settled) and sleeping workers (closing).
    progress: Signal,
    /// Wakes callers waiting for room in the queue (`on_full=block`), once it is half empty:
    /// one wake-up per half a queue, not one per entry taken (they also look every 1 ms).
    room: Signal,
    spill_wake: Signal,
    /// Notified by the spill thread each time it takes the overflow (callers waiting for room).
    spilled: Signal,
    replay_wake: Signal,
    last_error: Mutex<String>,
    /// Until when (ms since `born`) the disk is taken as failing after a failed write.
    disk_failing_until: AtomicU64,
    /// When (ms since `born`) the replay thread next looks for orphaned journals.
    next_recovery: AtomicU64,
    /// When (ms since `born`) the spill thread last took raw records from the lanes (see
    /// `lane::Shared::spill_lanes`).
    last_raw_ms: AtomicU64,
    /// Records written to disk raw by `spill_lanes`, ever.
    raw_spilled: AtomicU64,
    /// A caller waits for room in its lane (`lane::Shared::push_lane_when_room`).
    lane_full: AtomicBool,
    /// A flush asks the spill thread to seal (or move) the overflow's segments now.
    settle_raw_now: AtomicBool,
    /// The replay's buffer for a taken segment's lines, kept from one segment to the next.
    segment_lines: Mutex<Vec<u8>>,
    /// The replay's OTLP encoders, kept from one request to the next while it has work.
    replay_encoders: Mutex<Vec<crate::otlp::Encoder>>,
    /// Until when (ms since `born`) no sender thread is started (see `add_sender`).
    spawn_retry_ms: AtomicU64,
    /// Set once the close has taken what was in memory: an entry submitted after it goes to
    /// disk on the caller's thread (see [`Pipeline::submit`]).
    closed: AtomicBool,
    /// Held (shared) by a thread while it moves entries between the places a FATAL entry's
    /// persist looks in (lanes, queue, overflow, parked, in flight), and by that persist
    /// (exclusive) while it takes them: no entry is between two places when it looks.
    moving: RwLock<()>,
    /// Copies of the entries each sender has in flight (see [`InFlight`]). With the event
    /// loop, slot 0 is the sender's batch being made and the others the requests in flight.
    inflight: Box<[Mutex<InFlight>]>,
    /// The sender's event loop, which delivers its requests and the replay's (threaded mode,
    /// no proxy; see [`crate::evloop`]); None: each sender thread posts its own, blocking.
    evloop: Option<Evloop>,
    /// What the application polls (see [`events`]).
    events: events::Events,
    born: Instant,
}

/// The event loop of a pipeline, and what its requests need.
struct Evloop {
    /// Taken by the sender thread when it starts.
    reactor: Mutex<Option<crate::evloop::Reactor>>,
    /// The fixed head of every request.
    head: Vec<u8>,
    /// Answers are OTLP protobuf.
    proto: bool,
    /// The in-flight slots not in use (1 to `connections`).
    free_slots: Mutex<Vec<usize>>,
    /// Requests submitted (by the sender and the replay) and not yet answered.
    jobs: Arc<AtomicUsize>,
    /// The replay's requests for the sender's event loop.
    inbox: Arc<crate::evloop::Inbox>,
    /// The reactor's eventfd, written by `work`'s notifies while the sender waits in a turn.
    waker: Arc<mio::Waker>,
    /// The requests' buffers, given back by the jobs done with them.
    buffers: Arc<crate::evloop::Buffers>,
}

/// The bodies of the entries a sender has taken and not yet settled, copied for a FATAL
/// entry's persist (see [`Pipeline::persist_memory`]), which writes them to the service's
/// crash journal: if the process dies before their request is answered, the next start
/// recovers them; once it is answered (the entries delivered, on disk or parked in memory
/// again), the sender settles their records.
#[derive(Default)]
struct InFlight {
    /// The bodies, each followed by a newline.
    bytes: Vec<u8>,
    /// Each body's service and its end in `bytes`.
    ends: Vec<(Arc<str>, usize)>,
    /// The journal records a persist made of them.
    tickets: Vec<Ticket>,
}

const RECOVERY_EVERY_MS: u64 = 10_000;
/// With `on_full=spill`, the longest a caller waits for the spill thread to make room in
/// memory (it takes [`SPILL_STEP`] entries of the overflow at a time; writing them takes a
/// fraction of a millisecond on a local disk). Past it the entry is dropped and counted: the
/// disk has stalled.
pub(super) const SPILL_WAIT_MAX: Duration = Duration::from_secs(1);
/// The entries the spill thread takes from the overflow at a time: room for a waiting caller
/// comes back in steps of this many, each one write of about 200 KiB.
const SPILL_STEP: usize = 256;
/// The concurrency limit an adaptive pipeline starts with (the old fixed default).
const INITIAL_CONCURRENCY: usize = 2;
/// After a sender thread could not be started, how long before another is tried.
const SPAWN_RETRY: Duration = Duration::from_secs(1);
/// The most bytes of entries a spill copies into one write.
const SPILL_RUN: usize = 1 << 20;

/// `repr(C)`, aligned to a cache line: what a call reads (`shared`, `generation`,
/// `fork_counter`, `lanes`, `durable`, `clock`) is the first line of the pipeline.
#[repr(C, align(64))]
pub struct Pipeline {
    shared: Arc<Shared>,
    generation: u64,
    /// `fork::counter()`, which `generation` is checked against on every call.
    fork_counter: &'static AtomicU64,
    /// Whether calls copy entries into their thread's lane; cleared at the process's exit
    /// (see [`at_exit`]), after which a call's entry takes the queue's way, which writes it to
    /// disk once the pipeline has closed.
    lanes: AtomicBool,
    /// `key.durable`, for the line above.
    durable: bool,
    /// libc's `clock_gettime`, called through this pointer on the line above rather than
    /// through the library's GOT, whose entry would be one more page for a cold call.
    clock: crate::entry::ClockFn,
    threads: Mutex<Vec<JoinHandle<()>>>,
    key: Config,
    refs: AtomicUsize,
}

type Registry = Mutex<HashMap<Config, Arc<Pipeline>>>;

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());

fn registry() -> &'static Registry {
    leaked(&REGISTRY)
}

/// The value behind `slot`, made (and leaked: never freed) on first use. A forked child sets
/// `slot` back to null and gets a fresh one, leaving the parent's, whose lock another thread
/// may have held, untouched.
fn leaked<T: Default>(slot: &'static AtomicPtr<T>) -> &'static T {
    let p = slot.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: the values are leaked boxes, never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::<T>::default());
    match slot.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: as above; `fresh` is now the value.
        Ok(_) => unsafe { &*fresh },
        Err(existing) => {
            // SAFETY: `fresh` was never shared; `existing` is a leaked value.
            unsafe {
                drop(Box::from_raw(fresh));
                &*existing
            }
        }
    }
}

/// Called in a forked child: the parent's registries (and their locks, which another thread of
/// the parent may have held) are abandoned, not touched.
fn reset_in_child() {
    REGISTRY.store(std::ptr::null_mut(), Ordering::Release);
    lane::reset_sources_in_child();
}

fn pipeline_key(cfg: &Config) -> Config {
    let mut k = cfg.clone();
    k.level = Level::Debug;
    k.mirror = Mirror::Off;
    // A logger's own: loggers that differ only in these share a pipeline.
    k.redact_keys = Vec::new();
    k.rate_limit = 0;
    k.rate_limit_burst = 0;
    k
}

/// Finds or makes the pipeline for `cfg` and registers `service` with it.
pub fn acquire(cfg: &Config, service: &Arc<str>) -> Result<Arc<Pipeline>> {
    crate::fork::install(reset_in_child);
    register_at_exit();
    let key = pipeline_key(cfg);
    let mut reg = lock(registry());
    let p = match reg.get(&key) {
        Some(p) => p.clone(),
        None => {
            let p = Pipeline::start(key.clone())?;
            reg.insert(key, p.clone());
            p
        }
    };
    p.shared.buffer_for(service)?;
    p.refs.fetch_add(1, Ordering::AcqRel);
    Ok(p)
}

/// Gives back one reference; the last one stops the pipeline (delivering what it can within
/// `close_timeout_ms`, writing the rest to disk).
pub fn release(p: Arc<Pipeline>) {
    if p.generation != crate::fork::generation() {
        // The parent's pipeline in a forked child: its threads do not exist here. Leave it.
        std::mem::forget(p);
        return;
    }
    let last = {
        let mut reg = lock(registry());
        let last = p.refs.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            reg.remove(&p.key);
        }
        last
    };
    if last {
        p.close();
    }
}

impl Pipeline {
    fn start(cfg: Config) -> Result<Arc<Pipeline>> {
        let transport = Transport::new(&cfg)?;
        let evloop = match cfg.mode {
            Mode::Threaded => match crate::transport::loop_plan(&cfg)? {
                Some(plan) => {
                    let inbox = crate::evloop::Inbox::open();
                    let reactor =
                        crate::evloop::Reactor::new(plan.target, inbox.clone()).map_err(|e| {
                            Error::new(ErrorKind::Io, format!("cannot make the event loop: {e}"))
                        })?;
                    Some(Evloop {
                        waker: reactor.waker(),
                        buffers: Arc::default(),
                        reactor: Mutex::new(Some(reactor)),
                        head: plan.head,
                        proto: plan.proto,
                        free_slots: Mutex::new((1..=cfg.connections.max(1)).rev().collect()),
                        jobs: Arc::default(),
                        inbox,
                    })
                }
                None => None,
            },
            Mode::Blocking => None,
        };
        let (tx, rx) = bounded(cfg.queue_capacity);
        let (pool_tx, pool_rx) = bounded(POOL);
        static IDS: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(Shared {
            pool_tx,
            pool_rx,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            lanes: Mutex::default(),
            lane_table: lane::LaneTable::new(),
            chunks: lane::ChunkPool::new(if cfg.spills_lanes_raw() {
                cfg.burst_memory_bytes
            } else {
                0
            }),
            work: Signal::default(),
            pool_low: AtomicBool::new(false),
            tokens: Tokens::new(&cfg.api_key, cfg.token_lifetime),
            transport,
            tx,
            rx,
            stats: Stats::default(),
            buffers: Mutex::default(),
            overflow: Mutex::default(),
            overflow_len: AtomicUsize::new(0),
            accepted: CachePadded::new(AtomicU64::new(0)),
            settled: CachePadded::new(AtomicU64::new(0)),
            flush_want: AtomicU64::new(u64::MAX),
            policy: Policy::new(policy::Settings {
                backoff_initial: cfg.backoff_initial,
                backoff_max: cfg.backoff_max,
                max_attempts: cfg.max_attempts,
            }),
            retry: Mutex::default(),
            retry_len: AtomicUsize::new(0),
            limiter: Limiter::new(cfg.adaptive, INITIAL_CONCURRENCY, cfg.connections),
            pipeline_depth: AtomicUsize::new(sender::PIPELINE_DEPTH / 4),
            senders: Mutex::default(),
            sender_count: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close_deadline: Mutex::new(None),
            progress: Signal::default(),
            room: Signal::default(),
            spill_wake: Signal::default(),
            spilled: Signal::default(),
            replay_wake: Signal::default(),
            last_error: Mutex::default(),
            disk_failing_until: AtomicU64::new(0),
            next_recovery: AtomicU64::new(RECOVERY_EVERY_MS),
            last_raw_ms: AtomicU64::new(0),
            settle_raw_now: AtomicBool::new(false),
            segment_lines: Mutex::new(Vec::new()),
            replay_encoders: Mutex::new(Vec::new()),
            lane_full: AtomicBool::new(false),
            raw_spilled: AtomicU64::new(0),
            spawn_retry_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            moving: RwLock::new(()),
            events: events::Events::new(cfg.events, cfg.events_capacity),
            inflight: (0..cfg.connections.max(1) + 1)
                .map(|_| Mutex::default())
                .collect(),
            evloop,
            born: Instant::now(),
            cfg: cfg.clone(),
        });
        if let Some(l) = &shared.evloop {
            shared.work.set_waker(l.waker.clone());
        }
        let p = Arc::new(Pipeline {
            lanes: AtomicBool::new(cfg.mode == Mode::Threaded && cfg.on_full == OnFull::Spill),
            durable: cfg.durable,
            clock: libc::clock_gettime,
            shared,
            threads: Mutex::default(),
            generation: crate::fork::generation(),
            fork_counter: crate::fork::counter(),
            key: cfg,
            refs: AtomicUsize::new(0),
        });
        if let Err(e) = p.start_threads() {
            // What did start is stopped and joined: nothing of this pipeline runs on.
            p.close();
            return Err(e);
        }
        Ok(p)
    }

    /// Starts the pipeline's threads: in threaded mode a sender and the spill thread, then the
    /// replay thread; those three are needed, and the pipeline is not made without them. The
    /// other first senders are started if the process can have them (a pids or thread limit):
    /// the pipeline works with the threads it has.
    fn start_threads(&self) -> Result<()> {
        let s = &self.shared;
        let cfg = &s.cfg;
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            crate::threads::spawn(name, f).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
        };
        if cfg.mode == Mode::Threaded {
            s.add_sender()?;
            let sh = s.clone();
            let t = spawn("rarch-spill", Box::new(move || sh.spiller()))?;
            lock(&self.threads).push(t);
        }
        let sh = s.clone();
        // Joined at close like the others: once rarch_logger_free returns, no thread of the
        // pipeline touches the buffer directory (its requests are bounded by the close deadline).
        let t = spawn("rarch-replay", Box::new(move || sh.replayer()))?;
        lock(&self.threads).push(t);
        if cfg.mode == Mode::Threaded && s.evloop.is_none() {
            let first = if cfg.adaptive {
                INITIAL_CONCURRENCY.min(cfg.connections)
            } else {
                cfg.connections
            };
            for _ in 1..first {
                if let Err(e) = s.add_sender() {
                    s.note_error(&e.message);
                    break;
                }
            }
        }
        Ok(())
    }

    /// The time now, as [`crate::entry::now_ns`], through the pipeline's pointer to the clock.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        crate::entry::now_ns_by(self.clock)
    }

    /// Whether this pipeline belongs to this process (not to the parent of a fork).
    #[inline]
    pub fn is_current(&self) -> bool {
        self.generation == self.fork_counter.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The concurrency limit now (requests in flight allowed).
    pub fn concurrency_limit(&self) -> usize {
        self.shared.limiter.limit()
    }

    /// The median round-trip time of the last 256 requests.
    pub fn rtt_p50(&self) -> Duration {
        self.shared.limiter.rtt_p50()
    }

    /// Entries in memory now (queue, overflow and those parked for a retry).
    pub fn queue_len(&self) -> usize {
        let s = &*self.shared;
        s.rx.len()
            + s.overflow_len.load(Ordering::Relaxed)
            + s.retry_len.load(Ordering::Relaxed)
            + s.lanes_pending() as usize
    }

    /// See [`crate::Logger::raw_spilled`].
    pub fn raw_spilled(&self) -> u64 {
        self.shared.raw_spilled.load(Ordering::Relaxed)
    }

    /// The counters: `logged` counts the entries in the lanes too.
    pub fn stats_snapshot(&self) -> crate::stats::StatsSnapshot {
        self.shared.snapshot()
    }

    /// Whether `log` copies entries into its thread's lane ([`Pipeline::push`]): in threaded
    /// mode with `on_full=spill` (the default). `on_full=block` and `drop` bound the entries in
    /// memory by `queue_capacity` exactly, which the queue counts.
    #[inline]
    pub fn lanes(&self) -> bool {
        self.lanes.load(Ordering::Relaxed)
    }

    /// Copies checked fields into the calling thread's lane (see [`lane`]). With `durable`, the
    /// entry is first copied into its service's journal, raw too (the process that recovers
    /// the journal builds the body), and its ticket goes in the lane with it.
    /// `Err(ticket)` when the lane has no room (or the journal cannot take the entry: then no
    /// ticket): build the body and [`Pipeline::submit`] it, with the ticket if there is one.
    #[inline]
    #[link_section = ".text.hot.rarch_log"]
    pub fn push(
        &self,
        source: &'static Source,
        logger_name: &str,
        level: Level,
        f: &crate::entry::Checked<'_>,
        at_ns: u64,
    ) -> std::result::Result<(), Option<Ticket>> {
        let s = &self.shared;
        let mut ticket = None;
        if self.durable {
            ticket = s.journal_raw(source, logger_name, level, f, at_ns);
            if ticket.is_none() {
                return Err(None);
            }
        }
        if s.push_lane(
            source,
            level,
            &f.fields,
            f.context_multi_line,
            at_ns,
            &mut ticket,
        ) || (ticket.is_none() && s.push_lane_when_room(source, level, f, at_ns))
        {
            Ok(())
        } else {
            Err(ticket)
        }
    }

    /// Takes up to `max` of the pipeline's events (see [`events`]).
    pub fn poll_events(&self, max: usize) -> Vec<events::Event> {
        self.shared.events.take(max)
    }

    /// Reports a logger's `rate_limit` summary (`n` entries dropped) as an event.
    pub fn rate_limited(&self, n: u64, message: &str) {
        self.shared
            .events
            .push(events::Kind::RateLimited, 0, n, "", message);
    }

    /// The last delivery failure, for a person.
    pub fn last_error(&self) -> String {
        lock(&self.shared.last_error).clone()
    }

    /// An empty buffer for an entry's body, reused when one is free.
    pub fn body_buffer(&self, capacity: usize) -> Vec<u8> {
        self.shared.pool_buffer(capacity)
    }

    /// Takes one entry. Never waits on the network or the disk in threaded mode (but with
    /// `on_full=block`, up to `block_timeout_ms` for room).
    pub fn submit(&self, item: Item) -> Result<()> {
        let s = &*self.shared;
        if s.cfg.mode == Mode::Blocking {
            Stats::add(&s.stats.logged, 1);
            return s.send_now(item);
        }
        let mut item = item;
        if s.cfg.durable && item.ticket.is_none() {
            if let Err(why) = s.journal(&mut item) {
                // No journal for this entry (too large, or no segment could be made): it is
                // written to the buffer file before the call returns.
                s.accepted.fetch_add(1, Ordering::AcqRel);
                let r = self.to_disk_now(item, || format!("durable: {why}"));
                s.replay_wake.notify();
                return r;
            }
        }
        s.accepted.fetch_add(1, Ordering::AcqRel);
        if s.closed.load(Ordering::SeqCst) {
            // After the close (the process is exiting): no thread takes the queue any more.
            return self.to_disk_now(item, || "the pipeline has closed".to_string());
        }
        let item = match s.tx.try_send(item) {
            Ok(()) => {
                Stats::add(&s.stats.logged, 1);
                if s.work.has_waiters() {
                    s.work.notify_one();
                }
                return Ok(());
            }
            Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item)) => item,
        };
        match s.cfg.on_full {
            OnFull::Spill => return self.overflow_or_drop(item),
            OnFull::Block => match self.wait_for_room(item) {
                None => {
                    Stats::add(&s.stats.logged, 1);
                    return Ok(());
                }
                Some(item) => discard(item),
            },
            OnFull::Drop => discard(item),
        }
        s.dropped(&s.stats.dropped_queue_full, 1, "queue full");
        s.settle(1);
        Err(Error::new(
            ErrorKind::QueueFull,
            format!(
                "queue full ({} entries in memory): entry dropped (on_full={:?})",
                s.cfg.queue_capacity, s.cfg.on_full
            ),
        ))
    }

    /// An entry written to the buffer file on the caller's thread (counted as logged); the
    /// error, when it cannot be, starts with `why()`.
    fn to_disk_now(&self, item: Item, why: impl FnOnce() -> String) -> Result<()> {
        let s = &*self.shared;
        Stats::add(&s.stats.logged, 1);
        if s.spill_with(vec![item], false) == 1 {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Io,
            format!(
                "{}, and the buffer file cannot be written: {}",
                why(),
                self.last_error()
            ),
        ))
    }

    /// `on_full=spill` with the queue full: into the overflow, which the spill thread takes
    /// [`SPILL_STEP`] entries at a time and writes to disk. When it is full the caller waits
    /// for the spill thread to take the next step (woken when it does, or after 1 ms): never a
    /// disk write on the caller's thread. Dropped (counted, with the reason) when the disk
    /// fails, the pipeline closes, or no room came within [`SPILL_WAIT_MAX`].
    fn overflow_or_drop(&self, item: Item) -> Result<()> {
        let s = &*self.shared;
        let mut slot = Some(item);
        let deadline = Instant::now() + SPILL_WAIT_MAX;
        loop {
            let seen = s.spilled.current();
            if s.push_overflow(&mut slot) {
                Stats::add(&s.stats.logged, 1);
                return Ok(());
            }
            let failing = s.disk_failing();
            if failing || s.closing.load(Ordering::Acquire) || Instant::now() >= deadline {
                let Some(item) = slot.take() else {
                    return Ok(());
                };
                discard(item);
                Stats::add(&s.stats.logged, 1);
                if failing {
                    s.dropped(&s.stats.dropped_io, 1, "the buffer file cannot be written");
                    s.settle(1);
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "queue full and the buffer file cannot be written ({}): entry dropped (counted as dropped_io)",
                            self.last_error()
                        ),
                    ));
                }
                s.dropped(&s.stats.dropped_queue_full, 1, "queue and overflow full");
                s.settle(1);
                return Err(Error::new(
                    ErrorKind::QueueFull,
                    format!(
                        "queue and overflow full ({} entries each) and the spill thread did not make room within {} ms: entry dropped (counted as dropped_queue_full)",
                        s.cfg.queue_capacity,
                        SPILL_WAIT_MAX.as_millis()
                    ),
                ));
            }
            s.spill_wake.notify();
            s.spilled.wait(seen, Duration::from_millis(1));
        }
    }

    /// `on_full=block` with the queue full: waits for room until `block_timeout` or the
    /// close; None once the entry is in the queue, else the entry back. The senders wake
    /// blocked callers once the queue is half empty; a caller also looks every millisecond,
    /// so that a slow server, which frees a slot now and then, does not keep it waiting for
    /// half a queue.
    fn wait_for_room(&self, item: Item) -> Option<Item> {
        let s = &*self.shared;
        let mut slot = Some(item);
        s.room
            .wait_for(s.cfg.block_timeout, Duration::from_millis(1), || {
                let Some(item) = slot.take() else {
                    return true;
                };
                match s.tx.try_send(item) {
                    Ok(()) => true,
                    Err(TrySendError::Full(i)) | Err(TrySendError::Disconnected(i)) => {
                        slot = Some(i);
                        s.closing.load(Ordering::Acquire)
                    }
                }
            });
        slot
    }

    /// Waits until every entry taken before the call is delivered (or has otherwise ended)
    /// and the disk buffer is drained, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let s = &*self.shared;
        let target = s.taken_in();
        let deadline = Instant::now() + timeout;
        // Senders asleep after a quiet spell collect the lanes now.
        s.work.notify();
        loop {
            // Registered before `settled` is read (both SeqCst): either `settle` sees this
            // target, or this reads its count.
            s.flush_want.fetch_min(target, Ordering::SeqCst);
            let seen = s.progress.current();
            let in_memory = target.saturating_sub(s.settled.load(Ordering::SeqCst));
            let on_disk = s.backlog();
            if in_memory == 0 && !on_disk {
                return Ok(());
            }
            if on_disk {
                s.settle_raw_now.store(true, Ordering::Release);
                s.spill_wake.notify();
                s.replay_wake.notify();
            }
            let now = Instant::now();
            if now >= deadline {
                let mut msg = format!("flush timed out after {} ms:", timeout.as_millis());
                if in_memory > 0 {
                    msg += &format!(" {in_memory} entries not yet delivered;");
                }
                if on_disk {
                    msg += " the disk buffer is not yet replayed;";
                }
                let last = self.last_error();
                if !last.is_empty() {
                    msg += &format!(" last failure: {last}");
                }
                return Err(Error::new(ErrorKind::TimedOut, msg));
            }
            s.progress
                .wait(seen, (deadline - now).min(Duration::from_millis(50)));
        }
    }

    fn close(&self) {
        self.begin_close();
        self.finish_close();
    }

    /// Tells every thread of the pipeline to deliver what it can by the close deadline
    /// (`close_timeout_ms` from now) and stop. Calls from now on take the queue's way.
    fn begin_close(&self) {
        let s = &*self.shared;
        self.lanes.store(false, Ordering::Relaxed);
        *lock(&s.close_deadline) = Some(Instant::now() + s.cfg.close_timeout);
        s.closing.store(true, Ordering::Release);
        s.progress.notify();
        s.room.notify();
        s.work.notify();
        s.spill_wake.notify();
        s.replay_wake.notify();
    }

    /// Joins the pipeline's threads and writes to disk what is still in memory. A second
    /// call (a logger freed after the process's exit closed its pipeline) writes what came
    /// since.
    fn finish_close(&self) {
        let s = &*self.shared;
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        // Senders may have started more senders until they saw `closing` (under this lock).
        loop {
            let senders = std::mem::take(&mut lock(&s.senders).handles);
            if senders.is_empty() {
                break;
            }
            for t in senders {
                let _ = t.join();
            }
        }
        for slot in s.inflight.iter() {
            for t in lock(slot).tickets.drain(..) {
                t.settle();
            }
        }
        s.closed.store(true, Ordering::SeqCst);
        // Overflow segments the replay gave back after the spill thread's last look.
        s.settle_raw(true);
        // Whatever is still in memory goes to disk.
        let mut rest: Vec<Item> = s.rx.try_iter().collect();
        s.collect(Some(&mut rest));
        rest.extend(lock(&s.overflow).drain(..));
        rest.extend(s.take_parked());
        s.spill(rest);
    }

    /// Whether a FATAL entry makes everything in memory durable before its call returns
    /// (threaded mode without `durable`; the journal already holds a durable pipeline's
    /// entries, and blocking mode sends on the caller's thread).
    #[inline]
    pub fn persists_fatal(&self) -> bool {
        !self.durable && self.shared.cfg.mode == Mode::Threaded
    }

    /// Makes every entry this pipeline holds in memory durable, on the caller's thread: each
    /// entry of the callers' lanes, the queue, the overflow and the retries gets a record in
    /// its service's crash journal (a shared memory-mapped file, as with `durable=true`), and
    /// so do copies of the requests in flight (see [`InFlight`]). The entries stay in memory
    /// and are delivered as usual, their records settled as they are; if the process dies
    /// first, the next start recovers what was not settled. An entry too large for the
    /// journal is written to the buffer file instead. Never waits on the network; the sender
    /// and spill threads wait for it at their next step. Returns how many entries it made
    /// durable.
    pub fn persist_memory(&self) -> u64 {
        let s = &*self.shared;
        let _quiet = s.moving.write().unwrap_or_else(|p| p.into_inner());
        let mut n = 0u64;
        // Entries that cannot have a journal record (too large, or no segment) go to the
        // buffer file instead.
        let mut unjournaled: Vec<Item> = Vec::new();
        // The lanes' records become entries, and with the queue's, go back to the queue
        // with their records.
        let mut items: Vec<Item> = Vec::new();
        let lanes: Vec<Arc<lane::Lane>> = lock(&s.lanes).clone();
        for l in lanes {
            l.collect_wait(usize::MAX, &s.chunks, |rec| items.extend(s.entry_of(rec)));
        }
        items.extend(s.rx.try_iter());
        for mut it in items {
            if s.journal_copy(&mut it) {
                n += 1;
                if let Err(e) = s.tx.try_send(it) {
                    s.hold(e.into_inner());
                }
            } else {
                unjournaled.push(it);
            }
        }
        {
            let mut ov = lock(&s.overflow);
            let all: Vec<Item> = ov.drain(..).collect();
            for mut it in all {
                if s.journal_copy(&mut it) {
                    n += 1;
                    ov.push_back(it);
                } else {
                    unjournaled.push(it);
                }
            }
            s.overflow_len.store(ov.len(), Ordering::Relaxed);
        }
        s.each_parked(|it| {
            if s.journal_copy(it) {
                n += 1;
            }
        });
        n += s.spill_with(unjournaled, false);
        for slot in s.inflight.iter() {
            let mut f = lock(slot);
            let InFlight {
                bytes,
                ends,
                tickets,
            } = &mut *f;
            let mut from = 0;
            for (service, end) in ends.iter() {
                // The body without its newline.
                let body = &bytes[from..end.saturating_sub(1)];
                from = *end;
                if !Journal::fits(body.len()) {
                    continue;
                }
                if let Ok(b) = s.buffer_for(service) {
                    if let Ok((t, _)) = b.fatal_journal().write(body) {
                        tickets.push(t);
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

impl Shared {
    /// Gives an entry a record in its service's crash journal (the one a FATAL entry's
    /// persist writes to), settled when the entry is (see [`Shared::done`]); true when it has
    /// one.
    fn journal_copy(&self, item: &mut Item) -> bool {
        if item.ticket.is_some() {
            return true;
        }
        if !Journal::fits(item.body.len()) {
            return false;
        }
        let Ok(b) = self.buffer_for(&item.service) else {
            return false;
        };
        match b.fatal_journal().write(&item.body) {
            Ok((t, _)) => {
                item.ticket = Some(t);
                true
            }
            Err(e) => {
                self.note_error(&format!(
                    "cannot write the journal in {}: {e}",
                    b.dir().display()
                ));
                false
            }
        }
    }
}

/// Registered with `atexit` when the first pipeline starts: at a normal exit (`exit()`, a
/// return from `main`) with loggers still open, every pipeline of this process delivers what
/// it can within its `close_timeout_ms` and writes the rest to disk, all of them at once.
/// A forked child closes only its own pipelines (the registry it inherited was reset).
/// `_exit` and fatal signals do not run it (`durable=true` covers those). In a library that
/// is unloaded with `dlclose`, the C library runs it then, before the code goes.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if REGISTRY.load(Ordering::Acquire).is_null() {
            return;
        }
        let open: Vec<Arc<Pipeline>> = lock(registry())
            .values()
            .filter(|p| p.is_current())
            .cloned()
            .collect();
        for p in &open {
            p.begin_close();
        }
        for p in &open {
            p.finish_close();
        }
    });
}

fn register_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain extern "C" function that takes no argument.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// An entry the caller is told was not taken: its journal record is settled (dropped).
fn discard(item: Item) {
    if let Some(t) = item.ticket {
        t.settle();
    }
}

impl Shared {
    /// An empty buffer for an entry's body, reused when one is free.
    fn pool_buffer(&self, capacity: usize) -> Vec<u8> {
        let got = self.pool_rx.try_recv();
        // Buffers are not coming back (the server is slow or down): once per refill, wake the
        // spill thread to make more before the pool runs dry.
        if self.pool_rx.len() < POOL_LOW / 4 && !self.pool_low.swap(true, Ordering::AcqRel) {
            self.spill_wake.notify();
        }
        match got {
            Ok(mut v) => {
                v.clear();
                v.reserve(capacity);
                v
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// An entry collected from a lane that found the queue full after all (a caller's entry
    /// took the last room), or one the spill thread could not write raw: into the overflow,
    /// which the spill thread writes to disk.
    fn hold(&self, item: Item) {
        let mut ov = lock(&self.overflow);
        ov.push_back(item);
        self.overflow_len.store(ov.len(), Ordering::Relaxed);
        drop(ov);
        self.spill_wake.notify();
    }

    fn recycle(&self, body: Vec<u8>) {
        if body.capacity() <= POOL_MAX_CAPACITY {
            let _ = self.pool_tx.try_send(body);
        }
    }

    /// An entry that is safe (delivered, dead-lettered or in the buffer file): its journal
    /// record is settled and its buffer reused.
    fn done(&self, item: Item) {
        if let Some(t) = item.ticket {
            t.settle();
        }
        self.recycle(item.body);
    }

    /// Copies a durable entry's checked fields into its service's journal, raw (see
    /// `record::journal_body`); None when it cannot (too large, no segment): the caller then
    /// takes the queue's path (`Pipeline::submit`), which says why.
    #[link_section = ".text.hot.rarch_log"]
    fn journal_raw(
        &self,
        source: &'static Source,
        logger_name: &str,
        level: Level,
        f: &crate::entry::Checked<'_>,
        at_ns: u64,
    ) -> Option<Ticket> {
        let n = crate::record::journal_len(logger_name, &f.fields);
        if !Journal::fits(n) {
            return None;
        }
        let b = self.durable_buffer(source)?;
        let j = b.journal()?;
        let (t, want_spare) = j
            .write_with(n, |out| {
                crate::record::write_journal(
                    out,
                    logger_name,
                    at_ns,
                    level,
                    &f.fields,
                    f.context_multi_line,
                )
            })
            .ok()?;
        if want_spare {
            self.spill_wake.notify();
        }
        Some(t)
    }

    /// The buffer of `source`'s service, remembered per thread for the last source (a lookup
    /// in `buffers` takes a mutex and a hash of the name, about a tenth of a durable call).
    #[link_section = ".text.hot.rarch_log"]
    fn durable_buffer(&self, source: &'static Source) -> Option<&DiskBuffer> {
        use std::cell::Cell;
        thread_local! {
            /// (pipeline id, source, buffer) of this thread's last durable entry.
            static LAST: Cell<(u64, usize, usize)> = const { Cell::new((0, 0, 0)) };
        }
        let src = source as *const Source as usize;
        let hit = LAST
            .try_with(|l| {
                let (id, s, b) = l.get();
                (id == self.id && s == src).then_some(b)
            })
            .ok()
            .flatten();
        if let Some(b) = hit {
            // SAFETY: a buffer of this pipeline's `buffers`, which never lets one go while the
            // pipeline lives (it does: `self` is it); pipeline ids are never reused.
            return Some(unsafe { &*(b as *const DiskBuffer) });
        }
        let arc = self.buffer_for(&source.service).ok()?;
        let b = Arc::as_ptr(&arc);
        let _ = LAST.try_with(|l| l.set((self.id, src, b as usize)));
        // SAFETY: as above: `buffers` keeps its own reference.
        Some(unsafe { &*b })
    }

    /// Copies the entry into its service's journal. Errors (with why) when it cannot.
    fn journal(&self, item: &mut Item) -> std::result::Result<(), String> {
        if !Journal::fits(item.body.len()) {
            return Err("the entry is too large for the journal".into());
        }
        let b = self.buffer_for(&item.service).map_err(|e| e.message)?;
        let j = b.journal().ok_or("no journal")?;
        match j.write(&item.body) {
            Ok((t, want_spare)) => {
                item.ticket = Some(t);
                if want_spare {
                    self.spill_wake.notify();
                }
                Ok(())
            }
            Err(e) => {
                let msg = format!("cannot write the journal in {}: {e}", b.dir().display());
                self.note_error(&msg);
                Err(msg)
            }
        }
    }

    /// Counts `n` dropped entries in `counter`, and reports them as an event.
    fn dropped(&self, counter: &std::sync::atomic::AtomicU64, n: u64, why: &str) {
        if n == 0 {
            return;
        }
        Stats::add(counter, n);
        self.events.push(events::Kind::Dropped, 0, n, "", why);
    }

    /// A delivered request (the policy hears of it); an outage it ends is an event.
    fn succeeded(&self) {
        if self.policy.success(self.now_ms()) {
            self.progress.notify();
            self.events.push(
                events::Kind::OutageEnded,
                0,
                1,
                "",
                "the server answered again: delivery resumes",
            );
        }
    }

    /// Entries delivered: each one an event with `events=all`.
    fn delivered<'a>(&self, bodies: impl Iterator<Item = &'a [u8]>) {
        if self.events.wants(events::Kind::Delivered) {
            for b in bodies {
                self.events.push(
                    events::Kind::Delivered,
                    200,
                    1,
                    events::request_id_of(b),
                    "delivered",
                );
            }
        }
    }

    fn settle(&self, n: u64) {
        let now = self.settled.fetch_add(n, Ordering::SeqCst) + n;
        let want = self.flush_want.load(Ordering::SeqCst);
        if now >= want {
            // One wake-up for the flushers; each one that still waits registers again.
            let _ = self.flush_want.compare_exchange(
                want,
                u64::MAX,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            self.progress.notify();
        }
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Whether a buffer write failed in the last 250 ms.
    fn disk_failing(&self) -> bool {
        self.now_ms() < self.disk_failing_until.load(Ordering::Relaxed)
    }

    fn note_error(&self, msg: &str) {
        *lock(&self.last_error) = msg.to_owned();
    }

    fn buffer_for(&self, service: &str) -> Result<Arc<DiskBuffer>> {
        let mut b = lock(&self.buffers);
        if let Some(d) = b.get(service) {
            return Ok(d.clone());
        }
        let d = Arc::new(DiskBuffer::open(
            &self.cfg.buffer_dir,
            service,
            self.cfg.buffer_max_file_bytes,
            self.cfg.buffer_max_total_bytes,
            self.cfg.durable,
        )?);
        b.insert(service.into(), d.clone());
        drop(b);
        self.recover(&d);
        self.replay_wake.notify();
        if d.journal().is_some() {
            self.spill_wake.notify(); // makes its first segment
        }
        Ok(d)
    }

    /// Moves what dead processes left in their journals into the buffer file.
    fn recover(&self, b: &DiskBuffer) {
        self.moved_into_buffer("journal recovery", b, b.recover_journals());
    }

    /// After records were moved into `b`'s buffer file (a journal's, an overflow's): what the
    /// buffer's cap dropped is counted, and an error noted as `what: directory: error`.
    fn moved_into_buffer(
        &self,
        what: &str,
        b: &DiskBuffer,
        r: std::io::Result<crate::buffer::Appended>,
    ) {
        let error = match r {
            Ok(a) => {
                self.dropped(
                    &self.stats.dropped_buffer_cap,
                    a.dropped_for_cap,
                    "the buffer reached buffer_max_total_bytes (oldest segment deleted)",
                );
                a.error
            }
            Err(e) => Some(e),
        };
        if let Some(e) = error {
            self.note_error(&format!("{what}: {}: {e}", b.dir().display()));
        }
    }

    fn backlog(&self) -> bool {
        lock(&self.buffers).values().any(|b| b.maybe_backlog())
    }

    fn past_deadline(&self) -> bool {
        self.closing.load(Ordering::Acquire)
            && lock(&self.close_deadline).is_some_and(|d| Instant::now() >= d)
    }

    fn deadline(&self) -> Option<Instant> {
        if self.closing.load(Ordering::Acquire) {
            *lock(&self.close_deadline)
        } else {
            None
        }
    }

    /// Puts the entry in `slot` into the overflow if there is room (and wakes the spill thread
    /// for its first entry and every 1,024). True when it is in.
    fn push_overflow(&self, slot: &mut Option<Item>) -> bool {
        let mut ov = lock(&self.overflow);
        if ov.len() >= self.cfg.queue_capacity {
            return false;
        }
        let Some(item) = slot.take() else {
            return true;
        };
        ov.push_back(item);
        let n = ov.len();
        self.overflow_len.store(n, Ordering::Relaxed);
        drop(ov);
        if n == 1 || n % 1024 == 0 {
            self.spill_wake.notify();
        }
        true
    }

    /// Starts one more sender thread (none once the pipeline is closing: `close` joins every
    /// thread in `senders`, and the check is made under its lock).
    ///
    /// After a thread that could not be started (a thread limit), no other is tried for
    /// [`SPAWN_RETRY`]: the senders there are go on with the work.
    fn add_sender(self: &Arc<Self>) -> Result<()> {
        let mut senders = lock(&self.senders);
        if self.closing.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.now_ms() < self.spawn_retry_ms.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Io,
                "no more sending threads for now: the last one could not be started",
            ));
        }
        // Threads that retired are joined (at once: they have returned) and forgotten.
        let (done, alive): (Vec<_>, Vec<_>) =
            senders.handles.drain(..).partition(|t| t.is_finished());
        senders.handles = alive;
        for t in done {
            let _ = t.join();
        }
        let i = match senders.free.pop() {
            Some(i) => i,
            None => {
                senders.next += 1;
                senders.next - 1
            }
        };
        self.sender_count.fetch_add(1, Ordering::AcqRel);
        let s = self.clone();
        let t = crate::threads::spawn(&format!("rarch-send-{i}"), move || s.sender(i)).map_err(
            |e| {
                self.sender_count.fetch_sub(1, Ordering::AcqRel);
                senders.free.push(i);
                self.spawn_retry_ms.store(
                    self.now_ms() + SPAWN_RETRY.as_millis() as u64,
                    Ordering::Relaxed,
                );
                Error::new(ErrorKind::Io, e.to_string())
            },
        )?;
        senders.handles.push(t);
        Ok(())
    }

    /// A sender in `slot` (not the first) that has been idle for [`sender::IDLE_EXIT`]: gives
    /// its slot back; true when it may exit (not while the pipeline closes: the close waits
    /// for the senders' own end).
    pub(super) fn retire(&self, slot: usize) -> bool {
        let mut senders = lock(&self.senders);
        if slot == 0 || self.closing.load(Ordering::Acquire) {
            return false;
        }
        self.sender_count.fetch_sub(1, Ordering::AcqRel);
        senders.free.push(slot);
        true
    }

    /// Full jitter: a random duration from 0 to `d`.
    fn jitter(d: Duration) -> Duration {
        let ms = d.as_millis().max(1) as u64;
        Duration::from_millis(crate::entry::with_rng(|r| {
            rand::Rng::random_range(r, 0..=ms)
        }))
    }

    /// The `Authorization` value for `service`'s requests: its JWT, or none ("") for an OTLP
    /// sink without `api_key`. None (with the reason noted) when it cannot be signed.
    fn bearer(&self, service: &str) -> Option<Arc<str>> {
        self.try_bearer(service)
            .map_err(|e| self.note_error(&e.message))
            .ok()
    }

    /// The `Authorization` value for `service`'s requests, or why it cannot be signed.
    fn try_bearer(&self, service: &str) -> Result<Arc<str>> {
        if self.batching() && self.cfg.api_key.is_empty() {
            return Ok(Arc::from(""));
        }
        self.tokens.bearer(service)
    }
}
