//! The socket work both HTTP clients share (http1.rs for `http://`, ureq's TCP transport in
//! transport.rs for `https://`): the resolved addresses of the server, the connect loop over
//! them, and the `Retry-After` header.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a resolved address list is used.
pub(crate) const RESOLVE_TTL: Duration = Duration::from_secs(10);

/// The addresses of one `host:port`, resolved at most once per [`RESOLVE_TTL`]: a client looks
/// them up for every new connection, and without the cache a POST to `localhost` read
/// `/etc/hosts` (8 system calls) and a POST to a DNS name made a DNS query.
pub(crate) struct Resolved {
    host: String,
    port: u16,
    cached: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
}

impl Resolved {
    /// `host` without the brackets of an IPv6 literal.
    pub(crate) fn new(host: &str, port: u16) -> Resolved {
        Resolved {
            host: host.to_owned(),
            port,
            cached: Mutex::new(None),
        }
    }

    /// The addresses (at least one). The error's message names the host.
    pub(crate) fn addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Some((at, addrs)) = &*self.cached.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < RESOLVE_TTL {
                return Ok(addrs.clone());
            }
        }
        // Resolved without the lock held: a slow DNS answer does not stall the other threads'
        // pooled connections, only the threads that need a new one.
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("resolve {}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("resolve {}: no address", self.host),
            ));
        }
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// Why no connection was made: the last address tried and its error.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub addr: Option<SocketAddr>,
    pub error: io::Error,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) => write!(f, "connect {a}: {}", self.error),
            None => write!(f, "connect: {}", self.error),
        }
    }
}

/// Connects to the first of `addrs` that answers, by `end` at the latest (`None`: no limit).
/// All but the last address get half of the time left (at least 10 ms), so one address that
/// does not answer leaves time for the next. The stream has `TCP_NODELAY` set.
pub(crate) fn connect_first(
    addrs: &[SocketAddr],
    end: Option<Instant>,
) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError {
        addr: None,
        error: io::Error::new(io::ErrorKind::NotFound, "no address"),
    };
    for (i, addr) in addrs.iter().enumerate() {
        let stream = match end {
            None => TcpStream::connect(addr),
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ConnectError {
                        addr: Some(*addr),
                        error: io::Error::new(io::ErrorKind::TimedOut, "timed out"),
                    });
                }
                let share = if i + 1 < addrs.len() {
                    (left / 2).max(Duration::from_millis(10)).min(left)
                } else {
                    left
                };
                TcpStream::connect_timeout(addr, share)
            }
        };
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => {
                last = ConnectError {
                    addr: Some(*addr),
                    error,
                }
            }
        }
    }
    Err(last)
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110; a date in the past is zero).
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(retry_after("tomorrow"), None);
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after(""), None);
    }

    #[test]
    fn the_first_address_that_answers_is_used() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let live = l.local_addr().unwrap();
        let dead = {
            let d = TcpListener::bind("127.0.0.1:0").unwrap();
            d.local_addr().unwrap()
        };
        let s =
            connect_first(&[dead, live], Some(Instant::now() + Duration::from_secs(5))).unwrap();
        assert_eq!(s.peer_addr().unwrap(), live);
        assert!(s.nodelay().unwrap());
        let e = connect_first(&[dead], None).unwrap_err();
        assert_eq!(e.addr, Some(dead));
        assert!(
            e.to_string().starts_with(&format!("connect {dead}: ")),
            "{e}"
        );
        let e = connect_first(&[live], Some(Instant::now())).unwrap_err();
        assert_eq!(e.error.kind(), io::ErrorKind::TimedOut);
        let e = connect_first(&[], None).unwrap_err();
        assert_eq!(e.to_string(), "connect: no address");
    }

    #[test]
    fn addresses_are_resolved_once_per_ttl() {
        let r = Resolved::new("localhost", 8080);
        let a = r.addrs().unwrap();
        assert!(a.iter().all(|s| s.port() == 8080 && s.ip().is_loopback()));
        let at = r.cached.lock().unwrap().as_ref().unwrap().0;
        assert_eq!(r.addrs().unwrap(), a);
        assert_eq!(
            r.cached.lock().unwrap().as_ref().unwrap().0,
            at,
            "not resolved again"
        );
    }
}
