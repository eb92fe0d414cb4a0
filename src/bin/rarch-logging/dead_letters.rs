//! `dead-letters list|requeue`: the records of `buffer.rejected.jsonl`, and the library's
//! requeue of the chosen ones into the backlog ([`DiskBuffer::requeue_dead_letters`]).

use crate::{exit, options, status, Fail, Outcome};
use clap::{Args, Subcommand};
use rarch_logging::buffer::{self, DiskBuffer};
use rarch_logging::Config;
use serde_json::Value;
use std::path::Path;

#[derive(Subcommand)]
pub enum DeadCmd {
    /// Each dead letter's status, reason, attempts, time and message
    #[command(after_help = "Examples:
  rarch-logging dead-letters list --service billing-service
  rarch-logging dead-letters list --service billing-service --status 400 --json")]
    List(Pick),
    /// Move the chosen dead letters back into the backlog (attempts reset), then `replay`
    #[command(
        after_help = "The move is atomic: a crash in the middle neither loses nor doubles \
an entry. The entries are sent by the next replay: `rarch-logging replay` or any live process of \
the service.

Example:
  rarch-logging dead-letters requeue --service billing-service --status 422
  rarch-logging replay --service billing-service"
    )]
    Requeue(Pick),
}

#[derive(Args)]
pub struct Pick {
    /// The service
    #[arg(long, value_name = "NAME")]
    service: String,
    /// Only the dead letters with this HTTP status (0: no answer, poison entries)
    #[arg(long, value_name = "CODE")]
    status: Option<u16>,
    /// Print JSON (list: {"service":..., "dead_letters":[records as stored]})
    #[arg(long)]
    json: bool,
}

impl Pick {
    fn chooses(&self, rec: &Value) -> bool {
        self.status
            .is_none_or(|s| rec.get("status").and_then(Value::as_u64) == Some(s.into()))
    }
}

pub fn run(dir: &Path, c: DeadCmd) -> Outcome {
    match c {
        DeadCmd::List(p) => list(dir, p),
        DeadCmd::Requeue(p) => requeue(dir, p),
    }
}

fn list(dir: &Path, p: Pick) -> Outcome {
    status::one(dir, &p.service)?;
    let path = dir.join(&p.service).join(buffer::REJECTED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Fail::new(exit::IOERR, format!("{}: {e}", path.display()))),
    };
    let recs: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_owned())))
        .filter(|r| p.chooses(r))
        .collect();
    if p.json {
        println!(
            "{}",
            serde_json::json!({"service": p.service, "dead_letters": recs})
        );
        return Ok(exit::OK);
    }
    if recs.is_empty() {
        println!("no dead letters for {:?}", p.service);
        return Ok(exit::OK);
    }
    println!(
        "{:>6} {:>8} {:<28} {:<40} MESSAGE",
        "STATUS", "ATTEMPTS", "TIME", "REASON"
    );
    let s = |v: &Value, k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(x) => x.to_string(),
    };
    for r in &recs {
        let entry = r.get("entry").cloned().unwrap_or(Value::Null);
        let one_line = |t: String| t.replace(['\n', '\r'], " ");
        println!(
            "{:>6} {:>8} {:<28} {:<40} {}",
            s(r, "status"),
            s(r, "attempts"),
            s(r, "rejected_at"),
            one_line(s(r, "reason")),
            one_line(s(&entry, "message"))
        );
    }
    Ok(exit::OK)
}

fn requeue(dir: &Path, p: Pick) -> Outcome {
    status::one(dir, &p.service)?;
    let opts = options(None, dir)?;
    let cfg = Config::resolve(Some(&opts)).map_err(|e| Fail::new(exit::USAGE, e.message))?;
    let b = DiskBuffer::open(
        dir,
        &p.service,
        cfg.buffer_max_file_bytes,
        cfg.buffer_max_total_bytes,
        false,
    )
    .map_err(|e| Fail::new(exit::IOERR, e.message))?;
    let n = b
        .requeue_dead_letters(|r| p.chooses(r))
        .map_err(|e| Fail::new(exit::IOERR, format!("{}: {e}", b.dir().display())))?;
    if p.json {
        println!(
            "{}",
            serde_json::json!({"service": p.service, "requeued": n})
        );
    } else {
        println!(
            "requeued {n} dead letters of {:?} into its backlog; send them now with: \
             rarch-logging replay --service {}",
            p.service, p.service
        );
    }
    Ok(exit::OK)
}
