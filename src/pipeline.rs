//! The delivery pipeline shared by every logger with the same configuration: a bounded queue,
//! worker threads that sign and POST, a spill thread that writes overflow to disk, and a
//! replay thread that sends the disk buffer back once the server answers.
//!
//! Every entry taken in ends in exactly one counter of [`Stats`]: delivered, buffered (on
//! disk), rejected (dead-lettered) or dropped with a reason.

use crate::buffer::{self, DiskBuffer};
use crate::config::{Config, Mirror, Mode, OnFull};
use crate::error::{Error, ErrorKind, Result};
use crate::journal::{Journal, Ticket};
use crate::jwt::Tokens;
use crate::level::Level;
use crate::stats::Stats;
use crate::transport::{Outcome, Transport};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One entry on its way: its service (the JWT subject) and its JSON body.
pub struct Item {
    pub service: Arc<str>,
    pub body: Vec<u8>,
    /// Its record in the crash journal (`durable=true`), settled when the entry is safe.
    pub ticket: Option<Ticket>,
}

impl Item {
    pub fn new(service: Arc<str>, body: Vec<u8>) -> Item {
        Item {
            service,
            body,
            ticket: None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A condition to wait on with a deadline: a counter bumped by every `notify`. A `notify` with
/// nobody waiting costs one atomic add and one load, no lock and no system call (it is on the
/// senders' path once per entry, and on the callers' path).
#[derive(Default)]
struct Signal {
    seq: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Signal {
    fn notify(&self) {
        // SeqCst on both sides: either a waiter that registers later sees the new `seq`, or
        // this load sees the waiter and wakes it.
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            // Taken and let go so that a waiter between its check of `seq` and its sleep
            // (both under the lock) is asleep before the wake-up.
            drop(lock(&self.lock));
            self.cond.notify_all();
        }
    }
    /// Waits until notified (after `seen`) or `timeout` passes; returns the new sequence.
    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        self.wait_for(timeout, timeout, || self.seq.load(Ordering::SeqCst) != seen);
        self.current()
    }
    fn current(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }
    /// Waits until `ready()` is true (it is tried first, then after each wake-up) or `timeout`
    /// passes; returns whether it became true. The waiter is counted before `ready()` is first
    /// tried, so a notifier that changes the state and then checks [`Signal::has_waiters`]
    /// (after a SeqCst fence) either is seen by `ready()` or wakes it.
    /// `ready()` is also tried every `poll`, for changes that are not notified.
    fn wait_for(&self, timeout: Duration, poll: Duration, mut ready: impl FnMut() -> bool) -> bool {
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
    fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }
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
/// The size of the buffers made ahead: a typical entry (64-byte message, 200-byte context)
/// takes about 700 bytes; a larger one grows its buffer, which then comes back larger.
const POOL_FRESH_CAPACITY: usize = 1024;

struct Shared {
    cfg: Config,
    tx: Sender<Item>,
    rx: Receiver<Item>,
    pool_tx: Sender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
    /// A caller found the pool low and woke the spill thread to refill it.
    pool_low: AtomicBool,
    transport: Transport,
    tokens: Tokens,
    stats: Stats,
    buffers: Mutex<HashMap<Arc<str>, Arc<DiskBuffer>>>,
    overflow: Mutex<Vec<Item>>,
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
    /// The server is failing: workers write to disk, the replay thread probes.
    outage: AtomicBool,
    closing: AtomicBool,
    close_deadline: Mutex<Option<Instant>>,
    /// Wakes flush waiters (entries settled) and sleeping workers (closing).
    progress: Signal,
    /// Wakes callers waiting for room in the queue (`on_full=block`), once it is half empty:
    /// one wake-up per half a queue, not one per entry taken (they also look every 1 ms).
    room: Signal,
    spill_wake: Signal,
    replay_wake: Signal,
    last_error: Mutex<String>,
    /// Until when (ms since `born`) the disk is taken as failing after a failed write.
    disk_failing_until: AtomicU64,
    /// When (ms since `born`) the replay thread next looks for orphaned journals.
    next_recovery: AtomicU64,
    born: Instant,
}

const RECOVERY_EVERY_MS: u64 = 10_000;
/// The most bytes of entries a spill copies into one write.
const SPILL_RUN: usize = 1 << 20;

pub struct Pipeline {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: u64,
    key: Config,
    refs: AtomicUsize,
}

type Registry = Mutex<HashMap<Config, Arc<Pipeline>>>;

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());

fn registry() -> &'static Registry {
    let p = REGISTRY.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: registries are leaked boxes, never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(Registry::default()));
    match REGISTRY.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: as above; `fresh` is now the registry.
        Ok(_) => unsafe { &*fresh },
        Err(existing) => {
            // SAFETY: `fresh` was never shared; `existing` is a leaked registry.
            unsafe {
                drop(Box::from_raw(fresh));
                &*existing
            }
        }
    }
}

/// Called in a forked child: the parent's registry (and its lock, which another thread of the
/// parent may have held) is abandoned, not touched.
pub(crate) fn reset_registry_in_child() {
    REGISTRY.store(std::ptr::null_mut(), Ordering::Release);
}

fn pipeline_key(cfg: &Config) -> Config {
    let mut k = cfg.clone();
    k.level = Level::Debug;
    k.mirror = Mirror::Off;
    k
}

/// Finds or makes the pipeline for `cfg` and registers `service` with it.
pub fn acquire(cfg: &Config, service: &Arc<str>) -> Result<Arc<Pipeline>> {
    crate::fork::install();
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
        let (tx, rx) = bounded(cfg.queue_capacity);
        let (pool_tx, pool_rx) = bounded(POOL);
        let shared = Arc::new(Shared {
            pool_tx,
            pool_rx,
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
            outage: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close_deadline: Mutex::new(None),
            progress: Signal::default(),
            room: Signal::default(),
            spill_wake: Signal::default(),
            replay_wake: Signal::default(),
            last_error: Mutex::default(),
            disk_failing_until: AtomicU64::new(0),
            next_recovery: AtomicU64::new(RECOVERY_EVERY_MS),
            born: Instant::now(),
            cfg: cfg.clone(),
        });
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")))
        };
        if cfg.mode == Mode::Threaded {
            for i in 0..cfg.connections {
                let s = shared.clone();
                threads.push(spawn(
                    format!("rarch-send-{i}"),
                    Box::new(move || s.worker()),
                )?);
            }
            let s = shared.clone();
            threads.push(spawn("rarch-spill".into(), Box::new(move || s.spiller()))?);
        }
        let s = shared.clone();
        // Joined at close like the others: once rarch_logger_free returns, no thread of the
        // pipeline touches the buffer directory (its requests are bounded by the close deadline).
        threads.push(spawn(
            "rarch-replay".into(),
            Box::new(move || s.replayer()),
        )?);
        Ok(Arc::new(Pipeline {
            shared,
            threads: Mutex::new(threads),
            generation: crate::fork::generation(),
            key: cfg,
            refs: AtomicUsize::new(0),
        }))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Entries in memory now (queue and overflow).
    pub fn queue_len(&self) -> usize {
        self.shared.rx.len() + self.shared.overflow_len.load(Ordering::Relaxed)
    }

    /// The last delivery failure, for a person.
    pub fn last_error(&self) -> String {
        lock(&self.shared.last_error).clone()
    }

    /// An empty buffer for an entry's body, reused when one is free.
    pub fn body_buffer(&self, capacity: usize) -> Vec<u8> {
        let s = &*self.shared;
        let got = s.pool_rx.try_recv();
        // Buffers are not coming back (the server is slow or down): once per refill, wake the
        // spill thread to make more before the pool runs dry.
        if s.pool_rx.len() < POOL_LOW / 4 && !s.pool_low.swap(true, Ordering::AcqRel) {
            s.spill_wake.notify();
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

    /// Takes one entry. Never waits on the network or the disk in threaded mode (but with
    /// `on_full=block`, up to `block_timeout_ms` for room).
    pub fn submit(&self, item: Item) -> Result<()> {
        let s = &*self.shared;
        if s.cfg.mode == Mode::Blocking {
            Stats::add(&s.stats.logged, 1);
            return s.send_now(item);
        }
        let mut item = item;
        if s.cfg.durable {
            if let Err(why) = s.journal(&mut item) {
                // No journal for this entry (too large, or no segment could be made): it is
                // written to the buffer file before the call returns.
                s.accepted.fetch_add(1, Ordering::AcqRel);
                Stats::add(&s.stats.logged, 1);
                let n = s.spill_with(vec![item], false);
                s.replay_wake.notify();
                return if n == 1 {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "durable: {why}, and the buffer file cannot be written: {}",
                            self.last_error()
                        ),
                    ))
                };
            }
        }
        s.accepted.fetch_add(1, Ordering::AcqRel);
        let item = match s.tx.try_send(item) {
            Ok(()) => {
                Stats::add(&s.stats.logged, 1);
                return Ok(());
            }
            Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item)) => item,
        };
        match s.cfg.on_full {
            OnFull::Spill => {
                let mut ov = lock(&s.overflow);
                if ov.len() < s.cfg.queue_capacity {
                    ov.push(item);
                    let n = ov.len();
                    s.overflow_len.store(n, Ordering::Relaxed);
                    drop(ov);
                    Stats::add(&s.stats.logged, 1);
                    if n == 1 || n % 1024 == 0 {
                        s.spill_wake.notify();
                    }
                    return Ok(());
                }
                // Memory is full and the spill thread is behind: this caller writes the
                // overflow (and its entry) to disk itself rather than lose anything, unless
                // the disk has just failed (then the entry is dropped and counted at once).
                if s.disk_failing() {
                    drop(ov);
                    discard(item);
                    Stats::add(&s.stats.logged, 1);
                    Stats::add(&s.stats.dropped_io, 1);
                    s.settle(1);
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "queue full and the buffer file cannot be written ({}): entry dropped (counted as dropped_io)",
                            self.last_error()
                        ),
                    ));
                }
                let mut batch = std::mem::take(&mut *ov);
                s.overflow_len.store(0, Ordering::Relaxed);
                drop(ov);
                batch.push(item);
                let n = batch.len() as u64;
                if s.spill(batch) == n {
                    Stats::add(&s.stats.logged, 1);
                    return Ok(());
                }
                Stats::add(&s.stats.logged, 1);
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "queue full and the buffer file cannot be written ({}); entries were dropped (counted as dropped_io)",
                        self.last_error()
                    ),
                ));
            }
            OnFull::Block => {
                let mut slot = Some(item);
                // Ends with the entry sent (`slot` empty), or at the timeout or the close. The
                // senders wake blocked callers once the queue is half empty; a caller also
                // looks every millisecond, so that a slow server, which frees a slot now and
                // then, does not keep it waiting for half a queue.
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
                match slot {
                    None => {
                        Stats::add(&s.stats.logged, 1);
                        return Ok(());
                    }
                    Some(item) => discard(item),
                }
            }
            OnFull::Drop => discard(item),
        }
        Stats::add(&s.stats.dropped_queue_full, 1);
        s.settle(1);
        Err(Error::new(
            ErrorKind::QueueFull,
            format!(
                "queue full ({} entries in memory): entry dropped (on_full={:?})",
                s.cfg.queue_capacity, s.cfg.on_full
            ),
        ))
    }

    /// Waits until every entry taken before the call is delivered (or has otherwise ended)
    /// and the disk buffer is drained, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let s = &*self.shared;
        let target = s.accepted.load(Ordering::Acquire);
        let deadline = Instant::now() + timeout;
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
        let s = &*self.shared;
        *lock(&s.close_deadline) = Some(Instant::now() + s.cfg.close_timeout);
        s.closing.store(true, Ordering::Release);
        s.progress.notify();
        s.room.notify();
        s.spill_wake.notify();
        s.replay_wake.notify();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        // Whatever is still in memory goes to disk.
        let mut rest: Vec<Item> = s.rx.try_iter().collect();
        rest.append(&mut lock(&s.overflow));
        s.spill(rest);
    }
}

/// An entry the caller is told was not taken: its journal record is settled (dropped).
fn discard(item: Item) {
    if let Some(t) = item.ticket {
        t.settle();
    }
}

impl Shared {
    /// Gives an entry's buffer back for reuse.
    /// Tops the buffer pool up to [`POOL_LOW`] with buffers whose pages are already touched
    /// (see [`POOL_LOW`]).
    fn refill_pool(&self) {
        self.pool_low.store(false, Ordering::Release);
        while self.pool_rx.len() < POOL_LOW {
            let mut v = vec![0u8; POOL_FRESH_CAPACITY];
            // `vec![0; n]` may get pages that are not touched yet (zeroed by the kernel):
            // write them, so that the fault is taken here.
            v.fill(1);
            v.clear();
            if self.pool_tx.try_send(v).is_err() {
                return;
            }
        }
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
        match b.recover_journals() {
            Ok(a) => {
                Stats::add(&self.stats.dropped_buffer_cap, a.dropped_for_cap);
                if let Some(e) = a.error {
                    self.note_error(&format!("journal recovery: {}: {e}", b.dir().display()));
                }
            }
            Err(e) => self.note_error(&format!("journal recovery: {}: {e}", b.dir().display())),
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

    /// Writes entries to their services' buffer files; returns how many are on disk.
    ///
    /// In threaded mode, entries whose file cannot be written stay in memory (the overflow,
    /// which the spill thread retries) while there is room, and are dropped and counted
    /// (`dropped_io`) after that, or when the pipeline is closing.
    fn spill(&self, items: Vec<Item>) -> u64 {
        self.spill_with(items, true)
    }

    /// [`Shared::spill`]; `keep` false drops (and counts) what cannot be written at once.
    fn spill_with(&self, items: Vec<Item>, keep: bool) -> u64 {
        if items.is_empty() {
            return 0;
        }
        let threaded = self.cfg.mode == Mode::Threaded;
        let mut groups: HashMap<Arc<str>, Vec<Item>> = HashMap::new();
        for it in items {
            groups.entry(it.service.clone()).or_default().push(it);
        }
        let (mut written, mut dropped) = (0u64, 0u64);
        for (service, mut group) in groups {
            // Written in runs of at most SPILL_RUN bytes, so that a large batch is not copied
            // whole into one more buffer (the peak memory while the server is down).
            let mut failure = None;
            match self.buffer_for(&service) {
                Err(e) => failure = Some(e.message),
                Ok(b) => {
                    let mut data = Vec::new();
                    while !group.is_empty() {
                        let (mut n, mut bytes) = (0, 0);
                        while n < group.len() && (n == 0 || bytes + group[n].body.len() < SPILL_RUN)
                        {
                            bytes += group[n].body.len() + 1;
                            n += 1;
                        }
                        data.clear();
                        data.reserve(bytes);
                        for it in &group[..n] {
                            data.extend_from_slice(&it.body);
                            data.push(b'\n');
                        }
                        let a = match b.append(&data, n as u64) {
                            Ok(a) => a,
                            Err(e) => {
                                failure = Some(format!("{}: {e}", b.dir().display()));
                                break;
                            }
                        };
                        Stats::add(&self.stats.dropped_buffer_cap, a.dropped_for_cap);
                        written += a.lines;
                        Stats::add(&self.stats.buffered, a.lines);
                        for it in group.drain(..a.lines as usize) {
                            self.done(it);
                        }
                        if let Some(e) = a.error {
                            failure = Some(format!("{}: {e}", b.dir().display()));
                            break;
                        }
                    }
                }
            }
            if let Some(e) = failure {
                self.note_error(&format!("cannot write the buffer file: {e}"));
                self.disk_failing_until
                    .store(self.now_ms() + 250, Ordering::Relaxed);
                // What is left in the group is not on disk.
                let rest: Vec<Item> = group;
                let n_rest = rest.len() as u64;
                let kept = if threaded && keep && !self.closing.load(Ordering::Acquire) {
                    self.keep_in_memory(rest)
                } else {
                    0
                };
                dropped += n_rest - kept;
            }
        }
        Stats::add(&self.stats.dropped_io, dropped);
        if threaded {
            self.settle(written + dropped);
        }
        written
    }

    /// Puts entries back in the overflow for the spill thread to retry; returns how many fit.
    fn keep_in_memory(&self, group: Vec<Item>) -> u64 {
        let mut ov = lock(&self.overflow);
        let room = self.cfg.queue_capacity.saturating_sub(ov.len());
        let n = group.len().min(room);
        ov.extend(group.into_iter().take(n));
        self.overflow_len.store(ov.len(), Ordering::Relaxed);
        n as u64
    }

    fn dead_letter(&self, service: &str, body: &[u8], status: u16, reason: &str) {
        Stats::add(&self.stats.rejected, 1);
        let entry: Box<serde_json::value::RawValue> =
            match serde_json::from_slice::<Box<serde_json::value::RawValue>>(body) {
                Ok(v) => v,
                Err(_) => return,
            };
        let rec = serde_json::json!({
            "status": status,
            "reason": reason,
            "rejected_at": String::from_utf8_lossy(&{
                let mut v = Vec::new();
                crate::entry::now(&mut v, std::time::SystemTime::now());
                v
            }),
            "entry": entry,
        });
        let line = rec.to_string();
        if let Ok(b) = self.buffer_for(service) {
            if let Err(e) = b.side(buffer::REJECTED, line.as_bytes()) {
                self.note_error(&format!("cannot write the dead-letter file: {e}"));
            }
        }
    }

    fn bearer(&self, service: &str) -> Option<Arc<str>> {
        match self.tokens.bearer(service) {
            Ok(b) => Some(b),
            Err(e) => {
                self.note_error(&e.message);
                None
            }
        }
    }

    /// Full-jitter exponential backoff for the `attempt`-th retry (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.cfg.backoff_max;
        let base = self
            .cfg
            .backoff_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(cap);
        let ms = base.as_millis().max(1) as u64;
        Duration::from_millis(crate::entry::with_rng(|r| {
            rand::Rng::random_range(r, 0..=ms)
        }))
    }

    fn start_outage(&self) {
        if !self.outage.swap(true, Ordering::AcqRel) {
            self.replay_wake.notify();
        }
    }

    /// A sender thread. While entries keep coming it polls the queue every millisecond and
    /// takes what has accumulated, so a caller never pays for waking it; after a quiet spell
    /// it blocks on the queue (the next caller's send wakes it once).
    fn worker(&self) {
        const POLL: Duration = Duration::from_millis(1);
        const QUIET: Duration = Duration::from_millis(200);
        let mut idle_since: Option<Instant> = None;
        loop {
            let item = match self.rx.try_recv() {
                Ok(i) => i,
                Err(_) => {
                    if self.closing.load(Ordering::Acquire) {
                        return;
                    }
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < QUIET {
                        std::thread::sleep(POLL);
                        continue;
                    }
                    match self.rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(i) => i,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            };
            idle_since = None;
            if self.outage.load(Ordering::Acquire) || self.past_deadline() {
                // Take a batch straight to disk: the replay thread sends it once the server
                // is back.
                let mut batch = vec![item];
                batch.extend(self.rx.try_iter().take(1023));
                self.made_room();
                self.spill(batch);
                continue;
            }
            self.made_room();
            self.deliver(item);
        }
    }

    /// After entries are taken from the queue: wakes callers waiting for room once the queue is
    /// at most half full.
    fn made_room(&self) {
        // Pairs with the waiter's count-then-try (see `Signal::wait_for`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.room.has_waiters() && self.rx.len() <= self.cfg.queue_capacity / 2 {
            self.room.notify();
        }
    }

    fn deliver(&self, item: Item) {
        let mut attempt = 0u32;
        loop {
            if self.outage.load(Ordering::Acquire) || self.past_deadline() {
                self.spill(vec![item]);
                return;
            }
            let Some(bearer) = self.bearer(&item.service) else {
                self.spill(vec![item]);
                return;
            };
            match self.transport.post(&item.body, &bearer, self.deadline()) {
                Outcome::Delivered => {
                    Stats::add(&self.stats.delivered, 1);
                    self.done(item);
                    self.settle(1);
                    return;
                }
                Outcome::Retry {
                    reason,
                    retry_after,
                } => {
                    Stats::add(&self.stats.failed_attempts, 1);
                    self.note_error(&reason);
                    if attempt >= self.cfg.max_retries {
                        self.start_outage();
                        self.spill(vec![item]);
                        return;
                    }
                    attempt += 1;
                    Stats::add(&self.stats.retried, 1);
                    let mut wait = self.backoff(attempt);
                    if let Some(ra) = retry_after {
                        wait = wait.max(ra.min(self.cfg.backoff_max));
                    }
                    self.sleep(wait);
                }
                Outcome::Auth { reason, .. } => {
                    Stats::add(&self.stats.failed_attempts, 1);
                    Stats::add(&self.stats.auth_failures, 1);
                    self.note_error(&format!("authentication refused: {reason}"));
                    self.tokens.invalidate(&item.service);
                    self.start_outage();
                    self.spill(vec![item]);
                    return;
                }
                Outcome::Rejected { status, reason } => {
                    Stats::add(&self.stats.failed_attempts, 1);
                    self.note_error(&format!("entry rejected: {reason}"));
                    self.dead_letter(&item.service, &item.body, status, &reason);
                    self.done(item);
                    self.settle(1);
                    return;
                }
            }
        }
    }

    /// Sleeps `d`, waking early when the pipeline closes.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.closing.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= end {
                return;
            }
            let seen = self.progress.current();
            self.progress.wait(seen, end - now);
        }
    }

    /// Blocking mode: one POST on the caller's thread; what is not delivered goes to disk.
    fn send_now(&self, item: Item) -> Result<()> {
        let bearer = self
            .tokens
            .bearer(&item.service)
            .map_err(|e| Error::new(ErrorKind::Config, e.message))?;
        match self.transport.post(&item.body, &bearer, None) {
            Outcome::Delivered => {
                Stats::add(&self.stats.delivered, 1);
                Ok(())
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.dead_letter(&item.service, &item.body, status, &reason);
                Err(Error::new(
                    ErrorKind::Rejected,
                    format!(
                        "the server rejected the entry ({reason}); written to {}",
                        buffer::REJECTED
                    ),
                ))
            }
            Outcome::Retry { reason, .. } | Outcome::Auth { reason, .. } => {
                let auth = reason.starts_with("HTTP 401") || reason.starts_with("HTTP 403");
                Stats::add(&self.stats.failed_attempts, 1);
                if auth {
                    Stats::add(&self.stats.auth_failures, 1);
                    self.tokens.invalidate(&item.service);
                }
                let kept = self.spill(vec![item]) == 1;
                self.replay_wake.notify();
                let where_ = if kept {
                    "kept in the buffer file for replay"
                } else {
                    "and the buffer file could not be written (counted as dropped_io)"
                };
                Err(Error::new(
                    if auth {
                        ErrorKind::Auth
                    } else {
                        ErrorKind::Transport
                    },
                    format!("not delivered ({reason}); {where_}"),
                ))
            }
        }
    }

    fn spiller(&self) {
        loop {
            let seen = self.spill_wake.current();
            self.prepare_journals();
            self.refill_pool();
            let batch = std::mem::take(&mut *lock(&self.overflow));
            self.overflow_len.store(0, Ordering::Relaxed);
            if !batch.is_empty() {
                let n = batch.len() as u64;
                let written = self.spill(batch);
                self.replay_wake.notify();
                if written < n && self.overflow_len.load(Ordering::Relaxed) > 0 {
                    // The disk failed: retry a little later, not in a hot loop.
                    self.spill_wake
                        .wait(self.spill_wake.current(), Duration::from_millis(250));
                }
                continue;
            }
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            self.spill_wake.wait(seen, Duration::from_millis(200));
        }
    }

    /// Makes the spare journal segments that writers asked for.
    fn prepare_journals(&self) {
        if !self.cfg.durable {
            return;
        }
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        for b in buffers {
            if let Some(j) = b.journal().filter(|j| j.spare_wanted()) {
                if let Err(e) = j.prepare() {
                    self.note_error(&format!("journal: {}: {e}", b.dir().display()));
                }
            }
        }
    }

    fn replayer(&self) {
        let mut probe_attempt = 0u32;
        let mut next_try = Instant::now();
        loop {
            let seen = self.replay_wake.current();
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            let outage = self.outage.load(Ordering::Acquire);
            if Instant::now() >= next_try {
                let ok = self.replay_all();
                if ok {
                    probe_attempt = 0;
                    if outage {
                        // Nothing failed this round: let the workers try again.
                        self.outage.store(false, Ordering::Release);
                    }
                    next_try = Instant::now();
                } else {
                    probe_attempt = probe_attempt.saturating_add(1);
                    next_try =
                        Instant::now() + self.backoff(probe_attempt).max(self.cfg.backoff_initial);
                }
                self.progress.notify();
            }
            let wait = if self.outage.load(Ordering::Acquire) || probe_attempt > 0 {
                next_try.saturating_duration_since(Instant::now())
            } else {
                Duration::from_millis(1000)
            };
            // While failing, only the backoff timer (or closing) wakes the probe.
            if probe_attempt > 0 {
                let end = Instant::now() + wait;
                while Instant::now() < end && !self.closing.load(Ordering::Acquire) {
                    let s = self.replay_wake.current();
                    self.replay_wake.wait(s, end - Instant::now());
                }
            } else {
                self.replay_wake.wait(seen, wait);
            }
        }
    }

    /// Replays every service's backlog. Returns false when the server failed (stop and back
    /// off), true when everything that was on disk went out (or there was nothing).
    fn replay_all(&self) -> bool {
        let buffers: Vec<Arc<DiskBuffer>> = lock(&self.buffers).values().cloned().collect();
        // Journals of processes that died since (a forked worker, a neighbour) are taken in
        // now and then, not only at start.
        let now = self.now_ms();
        if now >= self.next_recovery.load(Ordering::Relaxed) {
            self.next_recovery
                .store(now + RECOVERY_EVERY_MS, Ordering::Relaxed);
            for b in &buffers {
                self.recover(b);
            }
        }
        let mut replayed = false;
        for b in buffers {
            while b.maybe_backlog() {
                if self.closing.load(Ordering::Acquire) {
                    return true;
                }
                replayed = true;
                match self.replay_one(&b) {
                    Ok(true) => {}
                    Ok(false) => return false,
                    Err(e) => {
                        self.note_error(&format!("replay: {}: {e}", b.dir().display()));
                        return false;
                    }
                }
            }
        }
        if replayed {
            // A flush waiting for the disk to drain looks again now, not at its next tick.
            self.progress.notify();
        }
        true
    }

    /// Claims and sends one file, over as many connections as the pipeline has (a small file,
    /// such as an outage probe, over one). Ok(false) when the server failed.
    fn replay_one(&self, b: &DiskBuffer) -> std::io::Result<bool> {
        let Some(mut claimed) = b.claim()? else {
            return Ok(true);
        };
        let lines = match claimed.lines() {
            Ok(l) => l,
            Err(e) => {
                b.mark_backlog();
                return Err(e);
            }
        };
        // Lines are taken in order by as many threads as the pipeline has connections (one
        // for a small file, such as an outage probe); each checks its line is an entry (else
        // it goes to the corrupt file) and sends it. The first failure stops them all: what
        // failed, and every line not taken yet, stays on disk.
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failed_idx = Mutex::new(Vec::new());
        let work = || {
            while !stop.load(Ordering::Acquire) && !self.closing.load(Ordering::Acquire) {
                let i = next.fetch_add(1, Ordering::AcqRel);
                let Some(line) = lines.get(i) else {
                    return;
                };
                match parse_line(line) {
                    Some(service) => {
                        if !self.replay_line(&service, line) {
                            stop.store(true, Ordering::Release);
                            lock(&failed_idx).push(i);
                            return;
                        }
                    }
                    None => {
                        Stats::add(&self.stats.corrupt, 1);
                        let _ = b.side(buffer::CORRUPT, line);
                    }
                }
            }
        };
        let k = if lines.len() < 64 {
            1
        } else {
            self.cfg.connections.max(1)
        };
        std::thread::scope(|scope| {
            for _ in 1..k {
                scope.spawn(work);
            }
            work();
        });
        let mut unsent_idx = std::mem::take(&mut *lock(&failed_idx));
        unsent_idx.extend(next.load(Ordering::Acquire).min(lines.len())..lines.len());
        let failed = !unsent_idx.is_empty();
        unsent_idx.sort_unstable();
        let unsent: Vec<Vec<u8>> = unsent_idx.iter().map(|&i| lines[i].clone()).collect();
        b.release(claimed, &unsent)?;
        if failed {
            b.mark_backlog();
        }
        Ok(!failed)
    }

    /// Sends one buffer line. False when the server failed (the line stays on disk).
    fn replay_line(&self, service: &str, line: &[u8]) -> bool {
        let Some(bearer) = self.bearer(service) else {
            return false;
        };
        match self.transport.post(line, &bearer, self.deadline()) {
            Outcome::Delivered => {
                Stats::add(&self.stats.delivered, 1);
                Stats::add(&self.stats.replayed, 1);
                // Read first: a write on every line would bounce the cache line between the
                // replay threads.
                if self.outage.load(Ordering::Acquire) && self.outage.swap(false, Ordering::AcqRel)
                {
                    self.progress.notify();
                }
                true
            }
            Outcome::Rejected { status, reason } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.dead_letter(service, line, status, &reason);
                true
            }
            Outcome::Retry { reason, .. } => {
                Stats::add(&self.stats.failed_attempts, 1);
                self.note_error(&reason);
                self.start_outage();
                false
            }
            Outcome::Auth { reason, .. } => {
                Stats::add(&self.stats.failed_attempts, 1);
                Stats::add(&self.stats.auth_failures, 1);
                self.note_error(&format!("authentication refused: {reason}"));
                self.tokens.invalidate(service);
                self.start_outage();
                false
            }
        }
    }
}

/// The service of a buffer line, if the line is an entry object.
fn parse_line(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        service: String,
        #[allow(dead_code)]
        level: String,
        #[allow(dead_code)]
        message: String,
    }
    let h: Head = serde_json::from_slice(line).ok()?;
    (!h.service.is_empty()).then_some(h.service)
}
