//! `status` (the library's [`inspect`] of each service directory) and `replay` (a logger of the
//! service, whose pipeline replays the backlog, waited on with the library's flush).

use crate::{exit, options, Fail, Outcome, Server};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rarch_logging::buffer::DiskBuffer;
use rarch_logging::inspect::{self, ServiceState};
use rarch_logging::{Config, ErrorKind, Logger, StatsSnapshot};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct StatusArgs {
    /// Only this service (default: every service under the buffer directory)
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The service whose backlog to send
    #[arg(long, value_name = "NAME")]
    service: String,
    /// Give up (exit 75, the rest kept on disk) after this long
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    timeout: f64,
    #[command(flatten)]
    server: Server,
}

/// The state of one service; a missing directory is exit 66, a bad name 65.
pub fn one(dir: &Path, service: &str) -> Result<ServiceState, Fail> {
    rarch_logging::buffer::check_service_name(service)
        .map_err(|e| Fail::new(exit::DATAERR, e.message))?;
    let svc = dir.join(service);
    if !svc.is_dir() {
        return Err(Fail::new(
            exit::NOINPUT,
            format!(
                "no buffer directory for service {service:?}: {}",
                svc.display()
            ),
        ));
    }
    inspect::inspect(dir, service).map_err(|e| Fail::new(exit::IOERR, e.message))
}

pub fn status(dir: &Path, a: StatusArgs) -> Outcome {
    let states = match &a.service {
        Some(s) => vec![one(dir, s)?],
        None => {
            let names = match inspect::services(dir) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Fail::new(exit::IOERR, format!("{}: {e}", dir.display()))),
            };
            names
                .iter()
                .map(|s| one(dir, s))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    if a.json {
        let v = serde_json::json!({ "services": states });
        println!("{v}");
        return Ok(exit::OK);
    }
    if states.is_empty() {
        println!("no service buffers under {}", dir.display());
        return Ok(exit::OK);
    }
    println!(
        "{:<24} {:>9} {:>12} {:<32} {:>6} {:>7}  LIVE PIDS",
        "SERVICE", "BACKLOG", "BYTES", "OLDEST ENTRY", "DEAD", "CORRUPT"
    );
    for s in &states {
        let pids: Vec<String> = s.live_pids.iter().map(u32::to_string).collect();
        println!(
            "{:<24} {:>9} {:>12} {:<32} {:>6} {:>7}  {}",
            s.service,
            s.backlog_entries,
            s.backlog_bytes,
            s.oldest_entry.as_deref().unwrap_or("-"),
            s.dead_letters,
            s.corrupt,
            if pids.is_empty() {
                "-".to_owned()
            } else {
                pids.join(",")
            }
        );
    }
    Ok(exit::OK)
}

/// A progress bar on standard error, drawn only on a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if std::io::stderr().is_terminal() {
        b.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(st) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        {
            b.set_style(st.progress_chars("=> "));
        }
        b.set_message(what.to_owned());
    }
    b
}

pub fn replay(dir: &Path, a: ReplayArgs) -> Outcome {
    if !(a.timeout.is_finite() && a.timeout >= 0.0) {
        return Err(Fail::new(
            exit::USAGE,
            "--timeout must be a number of seconds",
        ));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout.min(1e9));
    rarch_logging::buffer::check_service_name(&a.service)
        .map_err(|e| Fail::new(exit::DATAERR, e.message))?;
    if !dir.join(&a.service).is_dir() {
        eprintln!("nothing to replay: no buffer directory for {:?}", a.service);
        return Ok(exit::OK);
    }
    let before = one(dir, &a.service)?;
    let mut opts = options(Some(&a.server), dir)?;
    let usage = |e: rarch_logging::Error| Fail::new(exit::USAGE, e.message);
    // What is not delivered when the time runs out stays on disk at once.
    opts.set("close_timeout_ms", "0").map_err(usage)?;
    let cfg = Config::resolve(Some(&opts)).map_err(usage)?;
    // A requeue of dead letters stopped half-way is finished first (its entries join the
    // backlog, or stay dead letters).
    DiskBuffer::open(
        dir,
        &a.service,
        cfg.buffer_max_file_bytes,
        cfg.buffer_max_total_bytes,
        false,
    )
    .map_err(|e| Fail::new(exit::IOERR, e.message))?
    .finish_requeue()
    .map_err(|e| Fail::new(exit::IOERR, format!("{}: {e}", dir.display())))?;

    let open = || {
        Logger::new(&a.service, None, Some(&opts)).map_err(|e| match e.kind {
            ErrorKind::Config | ErrorKind::InvalidArgument => usage(e),
            _ => Fail::new(exit::IOERR, e.message),
        })
    };
    let mut lg = open()?;
    let pb = bar(before.backlog_entries, &format!("replay {}", a.service));
    // The counters of the pipelines closed so far (see below), and those of the live one.
    let mut done = StatsSnapshot::default();
    let total = |done: &StatsSnapshot, lg: &Logger| {
        let s = lg.stats().unwrap_or_default();
        StatsSnapshot {
            replayed: done.replayed + s.replayed,
            rejected: done.rejected + s.rejected,
            poisoned: done.poisoned + s.poisoned,
            corrupt: done.corrupt + s.corrupt,
            ..StatsSnapshot::default()
        }
    };
    let mut last_state = before;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let step = left.min(Duration::from_millis(200));
        let flushed = lg.flush(step);
        let t = total(&done, &lg);
        let settled = t.replayed + t.rejected + t.poisoned + t.corrupt;
        pb.set_position(settled.min(pb.length().unwrap_or(0)));
        if lg.stats().map(|s| s.auth_failures).unwrap_or(0) > 0 && flushed.is_err() {
            pb.abandon();
            drop(lg);
            return Err(Fail::new(
                exit::NOPERM,
                format!(
                    "the server refused the key (RARCH_LOGGING_API_KEY) of service {:?}: \
                     the backlog stays on disk",
                    a.service
                ),
            ));
        }
        if flushed.is_ok() {
            // Our pipeline found nothing more to claim. Done when the directory shows no
            // backlog; else another process is sending a file it claimed, or appended lines
            // since our pipeline looked (a pipeline replays other processes' lines only at its
            // start): a moment later, a fresh pipeline looks again.
            last_state = one(dir, &a.service)?;
            if last_state.backlog_entries == 0 {
                done = total(&done, &lg);
                break;
            }
            if !left.is_zero() {
                std::thread::sleep(left.min(Duration::from_millis(100)));
                done = total(&done, &lg);
                drop(lg);
                lg = open()?;
                continue;
            }
        }
        if left.is_zero() {
            if flushed.is_err() {
                last_state = one(dir, &a.service)?;
            }
            pb.abandon();
            let err = lg.last_delivery_error();
            drop(lg);
            let after = one(dir, &a.service).unwrap_or(last_state);
            let mut msg = format!(
                "time ran out: {} entries of {:?} still on disk for a later replay",
                after.backlog_entries, a.service
            );
            if !after.live_pids.is_empty() {
                msg += &format!(" (processes holding the buffer: {:?})", after.live_pids);
            }
            if !err.is_empty() {
                msg += &format!("; last failure: {err}");
            }
            return Err(Fail::new(exit::TEMPFAIL, msg));
        }
    }
    pb.finish();
    drop(lg);
    eprintln!(
        "replayed {} entries of {:?}; dead-lettered {}, corrupt {}; backlog now 0",
        done.replayed,
        a.service,
        done.rejected + done.poisoned,
        done.corrupt
    );
    Ok(exit::OK)
}
