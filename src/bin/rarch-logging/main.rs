//! `rarch-logging`: the operator's command line over the library's core (the same buffer,
//! replay, entry builder and transport a service uses; no second implementation of either).
//!
//! Exit codes follow sysexits(3): 0 done, 64 usage, 65 bad input, 66 no such service
//! directory, 69 server unreachable, 74 the buffer directory cannot be used, 75 kept on disk
//! for later, 77 the server refused the key.

mod check;
mod dead_letters;
mod send;
mod status;
mod tls;

use clap::{Args, Parser, Subcommand};
use rarch_logging::Options;
use std::path::PathBuf;
use std::process::ExitCode;

/// sysexits(3) codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOINPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const IOERR: u8 = 74;
    pub const TEMPFAIL: u8 = 75;
    pub const NOPERM: u8 = 77;
}

/// A failure for the operator: the message printed on standard error, and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

impl Fail {
    pub fn new(code: u8, msg: impl Into<String>) -> Fail {
        Fail {
            code,
            msg: msg.into(),
        }
    }
}

pub type Outcome = Result<u8, Fail>;

const ABOUT: &str = "The operator's tool for rarch-logging: what a service's disk buffer holds, \
sending it now, logging from a shell, dead letters, and a check that this host reaches the API.";

const AFTER: &str = "\
The API key is read only from RARCH_LOGGING_API_KEY (never from the command line); the URL \
from --url, else RARCH_LOGGING_URL, else http://localhost:8080/log.

Exit codes (sysexits): 0 done, 64 usage, 65 bad input, 66 no such service, 69 server \
unreachable, 74 buffer directory unusable, 75 kept on disk for later, 77 key refused.

Examples:
  rarch-logging status
  rarch-logging replay --service billing-service --timeout 120
  rarch-logging send --service backup --level ERROR 'nightly backup failed'
  rarch-logging dead-letters list --service billing-service
  RARCH_LOGGING_API_KEY=... rarch-logging check";

#[derive(Parser)]
#[command(name = "rarch-logging", version, about = ABOUT, after_help = AFTER)]
struct Cli {
    /// The buffer directory: a service's files are in DIR/<service>/ (the library's
    /// buffer_dir)
    #[arg(long, global = true, value_name = "DIR", default_value = "./var/log")]
    buffer_dir: PathBuf,

    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the API is.
#[derive(Args, Clone)]
pub struct Server {
    /// The API endpoint (default: RARCH_LOGGING_URL, else http://localhost:8080/log)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// PEM CA certificates to trust for https instead of the system's
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The backlog, oldest entry, dead letters, corrupt lines and live processes of each service
    #[command(after_help = "Examples:
  rarch-logging status
  rarch-logging status --service billing-service --json
  rarch-logging --buffer-dir /srv/app/var/log status

--json prints {\"services\":[{\"service\":..., \"backlog_entries\":N, \"backlog_bytes\":N, \
\"oldest_entry\":\"...\"|null, \"dead_letters\":N, \"corrupt\":N, \"live_pids\":[...]}]}.")]
    Status(status::StatusArgs),
    /// Send a service's backlog now (the library's replay), beside its live processes
    #[command(
        after_help = "Exit 0 once the backlog is empty, 75 if some is still on disk when \
the time runs out, 77 if the server refuses the key.

Example:
  RARCH_LOGGING_API_KEY=... rarch-logging replay --service billing-service --timeout 300"
    )]
    Replay(status::ReplayArgs),
    /// Log entries from the command line or standard input, and wait for their delivery
    #[command(
        after_help = "Without MESSAGE, each line of standard input is one entry (with \
--jsonl, a JSON object with the entry's fields: level, logger_name, message, user_id, tenant_id, \
request_id, context, client_log_datetime; those it lacks come from the options). Every entry is \
checked before any is sent: bad input exits 65 and sends nothing.

Exit 0 delivered, 75 kept on disk for a later replay, 65 bad input (or refused by the server: \
dead-lettered), 77 key refused.

Examples:
  rarch-logging send --service backup --level ERROR --context '{\"disk\":\"sdb\"}' 'backup failed'
  tail -n 20 /var/log/app.log | rarch-logging send --service app --logger tail
  rarch-logging send --service app --jsonl < entries.jsonl"
    )]
    Send(send::SendArgs),
    /// List the dead letters of a service, or put them back in its backlog
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(dead_letters::DeadCmd),
    /// Send one DEBUG entry and report each step: URL, DNS, connect, TLS, HTTP status, round trip
    #[command(
        after_help = "Exit 0 on a 2xx, 77 on 401/403 (the key was refused), 69 when the \
server cannot be reached or answers with another status.

Example:
  RARCH_LOGGING_API_KEY=... rarch-logging check --url https://logs.example.com/log"
    )]
    Check(check::CheckArgs),
}

/// Options for the library: the URL (and CA file) if given, the buffer directory, and the
/// rest from the environment and the defaults (the key from RARCH_LOGGING_API_KEY).
pub fn options(server: Option<&Server>, buffer_dir: &std::path::Path) -> Result<Options, Fail> {
    let mut o = Options::new();
    let usage = |e: rarch_logging::Error| Fail::new(exit::USAGE, e.message);
    let dir = buffer_dir
        .to_str()
        .ok_or_else(|| Fail::new(exit::USAGE, "--buffer-dir is not UTF-8"))?;
    o.set("buffer_dir", dir).map_err(usage)?;
    if let Some(s) = server {
        if let Some(u) = &s.url {
            o.set("url", u).map_err(usage)?;
        }
        if let Some(c) = &s.ca_file {
            let c = c
                .to_str()
                .ok_or_else(|| Fail::new(exit::USAGE, "--ca-file is not UTF-8"))?;
            o.set("ca_file", c).map_err(usage)?;
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let dir = cli.buffer_dir;
    let r = match cli.cmd {
        Cmd::Status(a) => status::status(&dir, a),
        Cmd::Replay(a) => status::replay(&dir, a),
        Cmd::Send(a) => send::send(&dir, a),
        Cmd::DeadLetters(c) => dead_letters::run(&dir, c),
        Cmd::Check(a) => check::check(&dir, a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("rarch-logging: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}
