//! A logger: a service, a logger name and a level, over a shared [`Pipeline`].

use crate::buffer::check_service_name;
use crate::config::{Config, Mirror, Options};
use crate::entry::{self, Fields};
use crate::error::Result;
use crate::level::Level;
use crate::pipeline::{self, Item, Pipeline, Source};
use crate::ratelimit::RateLimit;
use crate::stats::{Stats, StatsSnapshot};
use std::io::Write;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `repr(C)` and aligned to a cache line so that what [`Logger::log`] reads on every call (the
/// fields up to `extras`, 64 bytes) is one line: a call after a pause finds it cold, and each
/// line it touches then costs a miss (docs/performance-history.md, "Lines and pages of a
/// cold call"). The rest is read on colder paths.
#[repr(C, align(64))]
pub struct Logger {
    /// An `Arc<Pipeline>` turned into a raw pointer. Replaced (and the old one leaked) only in
    /// a forked child, so a pointer read here stays valid while the logger lives.
    pipeline: AtomicPtr<Pipeline>,
    /// The service and the start of the body at each level (see [`entry::prefix`]), made once
    /// per process for each (service, logger name).
    source: &'static Source,
    name: Box<str>,
    /// `cfg.max_entry_bytes`, `cfg.durable`, whether `cfg.mirror` is on, and the length of
    /// `source`'s prefix at each level: copies, for the line above.
    max_entry_bytes: usize,
    prefix_lens: [u32; 5],
    level: AtomicU8,
    durable: bool,
    mirror_on: bool,
    /// `rate_limit` or `redact_keys` is set: calls take [`Logger::log_extras`].
    extras: bool,
    service: Arc<str>,
    rate: Option<RateLimit>,
    cfg: Config,
}

impl Logger {
    /// Makes a logger. `logger_name` empty or `None` means the service name.
    pub fn new(service: &str, logger_name: Option<&str>, opts: Option<&Options>) -> Result<Logger> {
        check_service_name(service)?;
        let cfg = Config::resolve(opts)?;
        let service: Arc<str> = service.into();
        let name: Box<str> = match logger_name {
            Some(n) if !n.is_empty() => n,
            _ => &service,
        }
        .into();
        let p = pipeline::acquire(&cfg, &service)?;
        let source = pipeline::source(&service, &name);
        Ok(Logger {
            pipeline: AtomicPtr::new(Arc::into_raw(p) as *mut Pipeline),
            source,
            name,
            max_entry_bytes: cfg.max_entry_bytes,
            prefix_lens: Level::ALL.map(|l| source.prefix(l).len().try_into().unwrap_or(u32::MAX)),
            level: AtomicU8::new(cfg.level as u8),
            durable: cfg.durable,
            mirror_on: cfg.mirror != Mirror::Off,
            extras: cfg.rate_limit > 0 || !cfg.redact_keys.is_empty(),
            service,
            rate: (cfg.rate_limit > 0)
                .then(|| RateLimit::new(cfg.rate_limit, cfg.rate_limit_burst, Instant::now())),
            cfg,
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn level(&self) -> Level {
        Level::ALL[self.level.load(Ordering::Relaxed) as usize % Level::ALL.len()]
    }

    pub fn set_level(&self, level: Level) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    /// The pipeline of this process: after a fork, the child's own.
    #[link_section = ".text.hot.rarch_log"]
    fn pipeline(&self) -> Result<&Pipeline> {
        let p = self.pipeline.load(Ordering::Acquire);
        // SAFETY: `p` came from Arc::into_raw and is released only in Drop.
        let cur = unsafe { &*p };
        if cur.is_current() {
            return Ok(cur);
        }
        let fresh = Arc::into_raw(pipeline::acquire(&self.cfg, &self.service)?) as *mut Pipeline;
        match self
            .pipeline
            .compare_exchange(p, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // The parent's pipeline is leaked in the child on purpose (see fork.rs).
            // SAFETY: `fresh` is a live Arc we own.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(other) => {
                // Another thread rebound first: give our pipeline back.
                // SAFETY: `fresh` came from Arc::into_raw above and was never shared.
                pipeline::release(unsafe { Arc::from_raw(fresh) });
                // SAFETY: as for `p`.
                Ok(unsafe { &*other })
            }
        }
    }

    /// Whether an entry at `level` would be sent. If not, call [`Logger::count_filtered`] and
    /// skip all other work.
    #[inline]
    pub fn enabled(&self, level: Level) -> bool {
        level as u8 >= self.level.load(Ordering::Relaxed)
    }

    /// Counts one entry dropped by the level filter.
    pub fn count_filtered(&self) {
        if let Ok(p) = self.pipeline() {
            Stats::add(&p.stats().filtered, 1);
        }
    }

    /// Logs one entry. Below the logger's level it returns at once (counted as filtered).
    ///
    /// In threaded mode the checked fields are copied into the thread's lane, and a sender
    /// thread builds the body (see `pipeline::lane`); when the lane has no room, or the entry
    /// may be near `max_entry_bytes`, or in durable or blocking mode, the body is built here.
    /// A FATAL entry returns once it and every entry logged before it are on disk or
    /// delivered (see `Pipeline::persist_memory`).
    #[inline]
    #[link_section = ".text.hot.rarch_log"]
    pub fn log(&self, level: Level, f: &Fields<'_>) -> Result<()> {
        if !self.enabled(level) {
            self.count_filtered();
            return Ok(());
        }
        if self.extras {
            return self.log_extras(level, f);
        }
        self.log_taken(level, f)
    }

    /// [`Logger::log`] for a logger with `rate_limit` or `redact_keys`: the entry may be
    /// dropped (counted, and summarised), and its context redacted before anything copies it.
    #[cold]
    #[inline(never)]
    fn log_extras(&self, level: Level, f: &Fields<'_>) -> Result<()> {
        if let Some(rl) = &self.rate {
            let now = Instant::now();
            let taken = rl.admit(level, now);
            if !taken {
                Stats::add(&self.pipeline()?.stats().dropped_rate_limit, 1);
            }
            // A summary that is due goes before the entry.
            self.summarise(now, false);
            if !taken {
                return Ok(());
            }
        }
        let redacted;
        let mut g = *f;
        if let Some(ctx) = f.context_json {
            if let Some(r) = crate::redact::redact(ctx, &self.cfg.redact_keys) {
                redacted = r;
                g.context_json = Some(&redacted);
            }
        }
        self.log_taken(level, &g)
    }

    /// Logs the summary of the entries `rate_limit` dropped, when one is due (or `force`: at
    /// flush and close), at WARN whatever the logger's level.
    fn summarise(&self, now: Instant, force: bool) {
        let Some(rl) = &self.rate else {
            return;
        };
        let Some(sum) = rl.summary(now, force) else {
            return;
        };
        let message = sum.message(self.cfg.rate_limit);
        let context = sum.context();
        let fields = Fields {
            message: &message,
            context_json: Some(&context),
            ..Fields::default()
        };
        let _ = self.log_taken(Level::Warn, &fields);
        if let Ok(p) = self.pipeline() {
            p.rate_limited(sum.total, &message);
        }
    }

    /// [`Logger::log`] once the entry is taken.
    #[inline(always)]
    fn log_taken(&self, level: Level, f: &Fields<'_>) -> Result<()> {
        let p = self.pipeline()?;
        let mut checked = entry::check(f)?;
        let at_ns = p.now_ns();
        let id;
        if self.durable && checked.fields.request_id.is_none() {
            // Made here, so that an entry sent before a crash and sent again from the journal
            // after it carries the same id (the server's duplicate check).
            id = entry::uuid_v4_text();
            checked.fields.request_id = std::str::from_utf8(&id).ok();
        }
        let prefix_len = self.prefix_lens[level as usize % Level::ALL.len()] as usize;
        // The ticket exists only on the way to `build_and_submit`: the lane's path has no
        // `Option<Ticket>` to drop (its drop glue is an out-of-line call on a page of its own).
        let ticket =
            if p.lanes() && entry::max_len(prefix_len, &checked.fields) <= self.max_entry_bytes {
                match p.push(self.source, &self.name, level, &checked, at_ns) {
                    Ok(()) => {
                        self.mirror(level, f);
                        if level == Level::Fatal {
                            fatal(p);
                        }
                        return Ok(());
                    }
                    Err(t) => t,
                }
            } else {
                None
            };
        self.build_and_submit(p, level, f, &checked, at_ns, ticket)?;
        if level == Level::Fatal {
            fatal(p);
        }
        Ok(())
    }

    /// [`Logger::log`] with the body built on the caller's thread.
    #[inline(never)]
    fn build_and_submit(
        &self,
        p: &Pipeline,
        level: Level,
        raw: &Fields<'_>,
        c: &entry::Checked<'_>,
        at_ns: u64,
        ticket: Option<crate::journal::Ticket>,
    ) -> Result<()> {
        let f = &c.fields;
        let approx = 320
            + f.message.len()
            + f.context_json.map_or(2, str::len)
            + f.user_id.map_or(0, str::len)
            + f.tenant_id.map_or(0, str::len)
            + f.request_id.map_or(36, str::len)
            + self.service.len()
            + self.name.len();
        let mut body = p.body_buffer(approx.min(self.max_entry_bytes + 64));
        entry::assemble(
            &mut body,
            self.source.prefix(level),
            f,
            c.context_multi_line,
            at_ns,
        );
        if let Err(e) = entry::check_size(&mut body, self.max_entry_bytes) {
            if let Some(t) = ticket {
                t.settle(); // journaled, then refused: nothing to recover
            }
            return Err(e);
        }
        self.mirror(level, raw);
        let mut item = Item::new(self.service.clone(), body);
        item.ticket = ticket;
        if self.cfg.sink == crate::config::Sink::Otlp {
            // The record's observedTimeUnixNano.
            item.observed_ns = at_ns;
        }
        p.submit(item)
    }

    /// With `mirror` set, prints the entry as one line (once it is taken).
    fn mirror(&self, level: Level, f: &Fields<'_>) {
        if !self.mirror_on {
            return;
        }
        self.mirror_line(level, f);
    }

    #[cold]
    fn mirror_line(&self, level: Level, f: &Fields<'_>) {
        let mut line = format!(
            "[{}] {}/{}: {}",
            level.as_str(),
            self.service,
            self.name,
            f.message
        );
        for (k, v) in [
            ("user_id", f.user_id),
            ("tenant_id", f.tenant_id),
            ("request_id", f.request_id),
            ("context", f.context_json),
            ("time", f.client_log_datetime),
        ] {
            if let Some(v) = v {
                line += &format!(" {k}={v}");
            }
        }
        line.retain(|c| c != '\n' && c != '\r');
        line.push('\n');
        let _ = match self.cfg.mirror {
            Mirror::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Mirror::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Mirror::Off => Ok(()),
        };
    }

    /// Waits until everything logged before the call is delivered, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.summarise(Instant::now(), true);
        self.pipeline()?.flush(timeout)
    }

    /// Takes up to `max` events of this logger's pipeline (see `pipeline::events`).
    pub fn poll_events(&self, max: usize) -> Result<Vec<crate::pipeline::events::Event>> {
        Ok(self.pipeline()?.poll_events(max))
    }

    /// The counters of this logger's pipeline.
    pub fn stats(&self) -> Result<StatsSnapshot> {
        Ok(self.pipeline()?.stats_snapshot())
    }

    /// Entries the spill thread has written to disk raw from the lanes, ever (counted in
    /// `buffered` too; see `Shared::spill_lanes`). For tests and benchmarks.
    #[doc(hidden)]
    pub fn raw_spilled(&self) -> u64 {
        self.pipeline().map(|p| p.raw_spilled()).unwrap_or(0)
    }

    /// Entries in memory now.
    pub fn queue_len(&self) -> usize {
        self.pipeline().map(|p| p.queue_len()).unwrap_or(0)
    }

    /// The pipeline's concurrency limit now, and the median round-trip time of its last 256
    /// requests.
    pub fn concurrency(&self) -> (usize, Duration) {
        self.pipeline()
            .map(|p| (p.concurrency_limit(), p.rtt_p50()))
            .unwrap_or_default()
    }

    /// The last delivery failure of the pipeline, if any.
    pub fn last_delivery_error(&self) -> String {
        self.pipeline().map(|p| p.last_error()).unwrap_or_default()
    }
}

/// A FATAL entry has been taken: before its call returns, it and every entry the process
/// logged before it are on disk (or delivered), so that a host that aborts right after loses
/// none of them (see [`Pipeline::persist_memory`]).
#[cold]
#[inline(never)]
fn fatal(p: &Pipeline) {
    if p.persists_fatal() {
        p.persist_memory();
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        self.summarise(Instant::now(), true);
        let p = self.pipeline.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: `p` came from Arc::into_raw; nobody uses the logger any more.
            pipeline::release(unsafe { Arc::from_raw(p) });
        }
    }
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("service", &self.service)
            .field("name", &self.name)
            .field("level", &self.level())
            .finish()
    }
}
