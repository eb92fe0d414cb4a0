//! `check`: one DEBUG entry, "rarch-logging connectivity check", built, signed and posted by
//! the library's entry builder, JWT signer and transport, with each step before it reported:
//! the URL, DNS, TCP connect, TLS for https (the certificate, see [`crate::tls`]), then the HTTP
//! answer and the round trip.

use crate::{exit, options, Fail, Outcome, Server};
use clap::Args;
use rarch_logging::entry::{self, Fields};
use rarch_logging::jwt::Tokens;
use rarch_logging::transport::{Outcome as Answer, Transport};
use rarch_logging::{Config, Level};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Instant;

#[derive(Args)]
pub struct CheckArgs {
    /// The service the entry is signed for (the JWT's subject)
    #[arg(long, value_name = "NAME", default_value = "rarch-logging")]
    service: String,
    #[command(flatten)]
    server: Server,
}

fn ms(t: Instant) -> String {
    format!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0)
}

pub fn check(dir: &Path, a: CheckArgs) -> Outcome {
    rarch_logging::buffer::check_service_name(&a.service)
        .map_err(|e| Fail::new(exit::DATAERR, e.message))?;
    let opts = options(Some(&a.server), dir)?;
    let cfg = Config::resolve(Some(&opts)).map_err(|e| Fail::new(exit::USAGE, e.message))?;
    println!("URL      {}", cfg.url);
    let uri = cfg
        .url
        .parse::<ureq::http::Uri>()
        .map_err(|e| Fail::new(exit::USAGE, format!("url: {e}")))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| Fail::new(exit::USAGE, "url: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    if cfg.api_key.is_empty() {
        println!("KEY      none (RARCH_LOGGING_API_KEY is not set): the token is signed with an empty key");
    } else {
        println!(
            "KEY      from RARCH_LOGGING_API_KEY ({} bytes)",
            cfg.api_key.len()
        );
    }
    let proxied = [
        "ALL_PROXY",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "all_proxy",
        "https_proxy",
        "http_proxy",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
    if proxied {
        println!(
            "PROXY    a proxy variable is set: DNS and connect below are to the server itself"
        );
    }

    let t = Instant::now();
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| {
            Fail::new(
                exit::UNAVAILABLE,
                format!("DNS: cannot resolve {host}: {e}"),
            )
        })?
        .collect();
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    println!("DNS      {host} -> {} ({})", list.join(", "), ms(t));

    let t = Instant::now();
    let mut connected = None;
    let mut last_err = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, cfg.timeout) {
            Ok(s) => {
                connected = Some((*addr, s));
                break;
            }
            Err(e) => last_err = Some(format!("{addr}: {e}")),
        }
    }
    let Some((addr, stream)) = connected else {
        return Err(Fail::new(
            exit::UNAVAILABLE,
            format!(
                "connect: cannot connect to {host}:{port}: {}",
                last_err.unwrap_or_else(|| "no address".into())
            ),
        ));
    };
    println!("CONNECT  {addr} ({})", ms(t));
    if https {
        let ca = cfg
            .ca_file
            .as_ref()
            .map_or("the system's roots".to_owned(), |p| p.display().to_string());
        let t = Instant::now();
        match crate::tls::handshake(stream, &host, cfg.ca_file.as_deref(), cfg.timeout) {
            Ok(lines) => {
                println!("TLS      verified against {ca} ({})", ms(t));
                for l in lines {
                    println!("         {l}");
                }
            }
            Err((lines, e)) => {
                for l in lines {
                    println!("TLS      {l}");
                }
                return Err(Fail::new(
                    exit::UNAVAILABLE,
                    format!("TLS: the handshake with {host} failed (roots: {ca}): {e}"),
                ));
            }
        }
    } else {
        drop(stream);
    }

    let mut body = Vec::new();
    entry::build(
        &mut body,
        Level::Debug,
        &a.service,
        &a.service,
        &Fields {
            message: "rarch-logging connectivity check",
            ..Default::default()
        },
        cfg.max_entry_bytes,
    )
    .map_err(|e| Fail::new(exit::USAGE, e.message))?;
    let bearer = Tokens::new(&cfg.api_key, cfg.token_lifetime)
        .bearer(&a.service)
        .map_err(|e| Fail::new(exit::USAGE, e.message))?;
    let transport = Transport::new(&cfg).map_err(|e| Fail::new(exit::USAGE, e.message))?;
    let t = Instant::now();
    let answer = transport.post(&body, &bearer, Some(Instant::now() + cfg.timeout * 3));
    let rtt = ms(t);
    match answer {
        Answer::Delivered | Answer::Partial { .. } => {
            println!("HTTP     2xx: the entry was accepted (round trip {rtt})");
            Ok(exit::OK)
        }
        Answer::Auth { status, reason } => {
            println!("HTTP     {status} (round trip {rtt})");
            Err(Fail::new(
                exit::NOPERM,
                format!(
                    "the server refused the key (RARCH_LOGGING_API_KEY) for service {:?}: \
                     {status} {reason}",
                    a.service
                ),
            ))
        }
        Answer::Retry {
            status: 0, reason, ..
        } => Err(Fail::new(
            exit::UNAVAILABLE,
            format!("HTTP: no answer after {rtt}: {reason}"),
        )),
        Answer::Retry { status, reason, .. } | Answer::Rejected { status, reason } => {
            println!("HTTP     {status} (round trip {rtt})");
            Err(Fail::new(
                exit::UNAVAILABLE,
                format!("the server answered {status}: {reason}"),
            ))
        }
    }
}
