//! `send`: entries from the command line or standard input, each checked by the library's
//! entry builder before any is sent, then logged and waited for with the library's flush.

use crate::{exit, options, Fail, Outcome, Server};
use clap::Args;
use rarch_logging::entry::{self, Fields};
use rarch_logging::{Config, ErrorKind, Level, Logger};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct SendArgs {
    /// The service the entries belong to
    #[arg(long, value_name = "NAME")]
    service: String,
    /// The logger name (default: the service)
    #[arg(long, value_name = "NAME")]
    logger: Option<String>,
    /// DEBUG, INFO, WARN, ERROR or FATAL
    #[arg(long, value_name = "LEVEL", default_value = "INFO")]
    level: String,
    #[arg(long, value_name = "ID")]
    user_id: Option<String>,
    #[arg(long, value_name = "ID")]
    tenant_id: Option<String>,
    /// The request id (default: a fresh UUID v4 for each entry)
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// The entry's context: a JSON object
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// The entry's client_log_datetime, RFC 3339 (default: now)
    #[arg(long, value_name = "RFC3339")]
    time: Option<String>,
    /// Standard input holds one JSON object per line, with the entries' fields
    #[arg(long, conflicts_with = "message")]
    jsonl: bool,
    /// Wait this long for delivery; what is not delivered by then stays on disk (exit 75)
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    #[command(flatten)]
    server: Server,
    /// The message; without it, each line of standard input is one entry
    message: Option<String>,
}

/// One entry, owned, before it is checked.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    level: Option<String>,
    service: Option<String>,
    logger_name: Option<String>,
    message: Option<String>,
    user_id: Option<String>,
    tenant_id: Option<String>,
    request_id: Option<String>,
    context: Option<Box<RawValue>>,
    client_log_datetime: Option<String>,
}

/// One entry, checked.
struct Entry {
    level: Level,
    logger: String,
    message: String,
    user_id: Option<String>,
    tenant_id: Option<String>,
    request_id: Option<String>,
    context: Option<String>,
    time: Option<String>,
}

impl Entry {
    fn fields(&self) -> Fields<'_> {
        Fields {
            message: &self.message,
            user_id: self.user_id.as_deref(),
            tenant_id: self.tenant_id.as_deref(),
            request_id: self.request_id.as_deref(),
            context_json: self.context.as_deref(),
            client_log_datetime: self.time.as_deref(),
            trace: None,
        }
    }
}

pub fn send(dir: &Path, a: SendArgs) -> Outcome {
    if !(a.timeout.is_finite() && a.timeout >= 0.0) {
        return Err(Fail::new(
            exit::USAGE,
            "--timeout must be a number of seconds",
        ));
    }
    let bad = |m: String| Fail::new(exit::DATAERR, m);
    rarch_logging::buffer::check_service_name(&a.service).map_err(|e| bad(e.message))?;
    let mut opts = options(Some(&a.server), dir)?;
    let usage = |e: rarch_logging::Error| Fail::new(exit::USAGE, e.message);
    opts.set("close_timeout_ms", "0").map_err(usage)?;
    let cfg = Config::resolve(Some(&opts)).map_err(usage)?;

    // Every entry is read and checked first: bad input sends nothing.
    let inputs: Vec<(String, Input)> = match &a.message {
        Some(m) => vec![(
            "the message".to_owned(),
            Input {
                message: Some(m.clone()),
                ..Default::default()
            },
        )],
        None => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| Fail::new(exit::IOERR, format!("standard input: {e}")))?;
            let text = String::from_utf8(data).map_err(|e| {
                bad(format!(
                    "standard input: invalid UTF-8 at byte {}",
                    e.utf8_error().valid_up_to()
                ))
            })?;
            let mut v = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let input = if a.jsonl {
                    serde_json::from_str::<Input>(line)
                        .map_err(|e| bad(format!("line {}: {e}", i + 1)))?
                } else {
                    Input {
                        message: Some(line.to_owned()),
                        ..Default::default()
                    }
                };
                v.push((format!("line {}", i + 1), input));
            }
            v
        }
    };
    if inputs.is_empty() {
        return Err(bad("no entry to send (standard input was empty)".into()));
    }
    let mut entries = Vec::with_capacity(inputs.len());
    let mut body = Vec::new();
    for (where_, input) in inputs {
        let e = checked(&a, input).map_err(|m| bad(format!("{where_}: {m}")))?;
        // The body the library would send, built and size-checked by its own builder.
        entry::build(
            &mut body,
            e.level,
            &a.service,
            &e.logger,
            &e.fields(),
            cfg.max_entry_bytes,
        )
        .map_err(|err| bad(format!("{where_}: {}", err.message)))?;
        entries.push(e);
    }

    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout.min(1e9));
    let mut loggers: HashMap<String, Logger> = HashMap::new();
    for e in &entries {
        if !loggers.contains_key(&e.logger) {
            let lg =
                Logger::new(&a.service, Some(&e.logger), Some(&opts)).map_err(|err| {
                    match err.kind {
                        ErrorKind::Config => usage(err),
                        _ => Fail::new(exit::IOERR, err.message),
                    }
                })?;
            loggers.insert(e.logger.clone(), lg);
        }
        let lg = &loggers[&e.logger];
        lg.log(e.level, &e.fields())
            .map_err(|err| Fail::new(exit::IOERR, err.message))?;
    }
    // One pipeline serves every logger of these options: one flush waits for all of them.
    let Some(lg) = loggers.values().next() else {
        return Ok(exit::OK);
    };
    let flushed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = lg.flush(left.min(Duration::from_millis(100)));
        let auth = lg.stats().map(|s| s.auth_failures).unwrap_or(0) > 0;
        if r.is_ok() || left.is_zero() || auth {
            break r;
        }
    };
    let stats = lg.stats().unwrap_or_default();
    let last = lg.last_delivery_error();
    drop(loggers);
    let n = entries.len();
    if flushed.is_ok() {
        let refused = stats.rejected + stats.poisoned;
        if refused > 0 {
            return Err(bad(format!(
                "the server refused {refused} of {n} entries: dead-lettered \
                 (rarch-logging dead-letters list --service {})",
                a.service
            )));
        }
        eprintln!("delivered {n} entries");
        return Ok(exit::OK);
    }
    let mut msg = format!(
        "not delivered within {} s: kept on disk under {} for a later replay \
         (rarch-logging replay --service {})",
        a.timeout,
        dir.join(&a.service).display(),
        a.service
    );
    if !last.is_empty() {
        msg += &format!("; last failure: {last}");
    }
    if stats.auth_failures > 0 {
        return Err(Fail::new(
            exit::NOPERM,
            format!("the server refused the key (RARCH_LOGGING_API_KEY); {msg}"),
        ));
    }
    Err(Fail::new(exit::TEMPFAIL, msg))
}

/// The entry of `input`, the options filling what it lacks; an error says what is wrong.
fn checked(a: &SendArgs, i: Input) -> Result<Entry, String> {
    if let Some(s) = &i.service {
        if *s != a.service {
            return Err(format!("service {s:?} is not --service {:?}", a.service));
        }
    }
    let level_text = i.level.as_deref().unwrap_or(&a.level);
    let level = Level::parse(level_text).ok_or_else(|| {
        format!("level {level_text:?} is not one of DEBUG, INFO, WARN, ERROR, FATAL")
    })?;
    let message = i.message.ok_or("no message")?;
    let context = match i.context {
        Some(c) => Some(c.get().to_owned()),
        None => a.context.clone(),
    };
    let e = Entry {
        level,
        logger: i
            .logger_name
            .or_else(|| a.logger.clone())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| a.service.clone()),
        message,
        user_id: i.user_id.or_else(|| a.user_id.clone()),
        tenant_id: i.tenant_id.or_else(|| a.tenant_id.clone()),
        request_id: i.request_id.or_else(|| a.request_id.clone()),
        context,
        time: i.client_log_datetime.or_else(|| a.time.clone()),
    };
    entry::check(&e.fields()).map_err(|err| match err.kind {
        ErrorKind::InvalidJson => format!("--context / context: {}", err.message),
        ErrorKind::InvalidTimestamp => format!("--time / client_log_datetime: {}", err.message),
        _ => err.message,
    })?;
    Ok(e)
}
