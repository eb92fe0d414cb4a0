//! Building one entry: validation of the caller's fields, the protocol's defaults, and the JSON
//! body (exactly what is posted and what a buffer line holds).

use crate::error::{Error, ErrorKind, Result};
use crate::level::Level;
use std::io::Write;
use std::time::SystemTime;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The caller's fields of one entry, already known to be UTF-8. `None` means "use the
/// protocol's default".
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields<'a> {
    pub message: &'a str,
    pub user_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub context_json: Option<&'a str>,
    pub client_log_datetime: Option<&'a str>,
}

/// Checks `bytes` as UTF-8, naming the field in the error.
pub fn utf8<'a>(field: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUtf8,
            format!("{field}: invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })
}

/// Writes the JSON body of an entry into `out` (cleared first).
pub fn build(
    out: &mut Vec<u8>,
    level: Level,
    service: &str,
    logger_name: &str,
    f: &Fields<'_>,
    max_bytes: usize,
) -> Result<()> {
    build_with_prefix(out, &prefix(level, service, logger_name), f, max_bytes)
}

/// The start of every body of one logger at one level, the same for all its entries:
/// `{"level":"INFO","service":"...","logger_name":"...","message":`. A logger makes it once
/// per level (see [`build_with_prefix`]).
pub fn prefix(level: Level, service: &str, logger_name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"level\":\"");
    out.extend_from_slice(level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"service\":");
    string(&mut out, service);
    out.extend_from_slice(b",\"logger_name\":");
    string(&mut out, logger_name);
    out.extend_from_slice(b",\"message\":");
    out
}

/// [`build`] with the [`prefix`] made beforehand.
pub fn build_with_prefix(
    out: &mut Vec<u8>,
    prefix: &[u8],
    f: &Fields<'_>,
    max_bytes: usize,
) -> Result<()> {
    out.clear();
    let context = match f.context_json {
        None => None,
        Some(c) => Some(context(c)?),
    };
    out.extend_from_slice(prefix);
    string(out, f.message);
    out.extend_from_slice(b",\"user_id\":");
    opt_string(out, f.user_id);
    out.extend_from_slice(b",\"tenant_id\":");
    opt_string(out, f.tenant_id);
    match f.request_id {
        Some(r) => {
            out.extend_from_slice(b",\"request_id\":");
            string(out, r);
        }
        None => {
            // One copy for the key and the fresh id.
            const KEY: &[u8; 15] = b",\"request_id\":\"";
            let mut piece = [b'"'; KEY.len() + 37];
            piece[..KEY.len()].copy_from_slice(KEY);
            piece[KEY.len()..KEY.len() + 36].copy_from_slice(&uuid_v4_text());
            out.extend_from_slice(&piece);
        }
    }
    out.extend_from_slice(b",\"context\":");
    match context {
        None => out.extend_from_slice(b"{}"),
        Some(Context::Raw(raw)) => out.extend_from_slice(raw.as_bytes()),
        Some(Context::Compact(v)) => out.extend_from_slice(&v),
    }
    const TIME_KEY: &[u8; 24] = b",\"client_log_datetime\":\"";
    match f.client_log_datetime {
        Some(t) => {
            out.extend_from_slice(TIME_KEY);
            timestamp(out, t)?;
            out.extend_from_slice(b"\"}");
        }
        None => {
            // One copy for the key, the time and the end of the object.
            let mut piece = *b",\"client_log_datetime\":\"YYYY-MM-DDTHH:MM:SS.ffffffZ\"}";
            piece[TIME_KEY.len()..TIME_KEY.len() + 27]
                .copy_from_slice(&now_text(SystemTime::now()));
            out.extend_from_slice(&piece);
        }
    }
    if out.len() > max_bytes {
        let n = out.len();
        out.clear();
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("entry is {n} bytes of JSON, above max_entry_bytes ({max_bytes})"),
        ));
    }
    Ok(())
}

/// Runs `f` with a per-thread random generator seeded by the OS, and seeded again after a
/// fork: a forked child must never repeat its parent's request ids.
pub fn with_rng<T>(f: impl FnOnce(&mut rand::rngs::SmallRng) -> T) -> T {
    use rand::{rngs::SmallRng, SeedableRng};
    use std::cell::RefCell;
    thread_local! {
        static RNG: RefCell<Option<(u64, SmallRng)>> = const { RefCell::new(None) };
    }
    let generation = crate::fork::generation();
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        if !matches!(&*r, Some((g, _)) if *g == generation) {
            *r = Some((generation, SmallRng::from_os_rng()));
        }
        match &mut *r {
            Some((_, rng)) => f(rng),
            None => f(&mut SmallRng::from_os_rng()),
        }
    })
}

fn random16() -> [u8; 16] {
    use rand::RngCore;
    // Two 64-bit draws (generating a [u8; 16] draws once per byte).
    let (a, b) = with_rng(|r| (r.next_u64(), r.next_u64()));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes
}

/// A random (version 4) UUID as text, lower-case and hyphenated (the uuid crate's encoder).
fn uuid_v4_text() -> [u8; 36] {
    let mut out = [0u8; 36];
    uuid::Builder::from_random_bytes(random16())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut out);
    out
}

/// Writes `s` as a JSON string: runs of plain bytes are copied whole; `"`, `\` and control
/// characters are escaped as serde_json does.
fn string(out: &mut Vec<u8>, s: &str) {
    json_string(out, s)
}

/// [`string`] for the other encoders of the crate (OTLP).
pub(crate) fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    while let Some(i) = crate::json::first_special(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

enum Context<'a> {
    /// Valid, single-line JSON object text: embedded as it is.
    Raw(&'a str),
    /// A valid object written over several lines: the same text without the whitespace
    /// outside strings, since a buffer line must be one line.
    Compact(Vec<u8>),
}

fn context(c: &str) -> Result<Context<'_>> {
    let multi_line = crate::json::check_object(c.as_bytes()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidJson,
            format!(
                "context_json: not a JSON object: {} at byte {}",
                e.what, e.offset
            ),
        )
    })?;
    // A valid object starts with `{` and ends with `}` but for whitespace around it.
    let text = match (c.as_bytes().first(), c.as_bytes().last()) {
        (Some(b'{'), Some(b'}')) => c,
        _ => c.trim_matches([' ', '\t', '\n', '\r']),
    };
    if multi_line {
        return Ok(Context::Compact(minify(text)));
    }
    Ok(Context::Raw(text))
}

/// Drops the whitespace outside strings of valid JSON text (numbers, escapes and depth stay
/// exactly as written).
fn minify(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
    out
}

/// Checks a caller's timestamp (RFC 3339). A UTC one is kept as written; one with another offset
/// is converted to UTC.
fn timestamp(out: &mut Vec<u8>, t: &str) -> Result<()> {
    let parsed = OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
        Error::new(
            ErrorKind::InvalidTimestamp,
            format!(
                "client_log_datetime: not an RFC 3339 timestamp ({e}); expected e.g. 2026-11-23T22:30:00.123456Z"
            ),
        )
    })?;
    if parsed.offset() == UtcOffset::UTC {
        // RFC 3339 text has no character that needs escaping in JSON.
        out.extend_from_slice(t.as_bytes());
    } else {
        let utc = parsed.to_offset(UtcOffset::UTC);
        write_utc(out, utc, utc.microsecond());
    }
    Ok(())
}

/// Writes `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, as the Python client).
pub fn now(out: &mut Vec<u8>, at: SystemTime) {
    out.extend_from_slice(&now_text(at));
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The date and time of the current second are
/// formatted once per second per thread.
fn now_text(at: SystemTime) -> [u8; 27] {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        let t =
            OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut v = Vec::with_capacity(32);
        write_utc(&mut v, t, 0);
        prefix.copy_from_slice(&v[..19]);
        SECOND.set((secs, prefix));
    }
    let mut text = *b"YYYY-MM-DDTHH:MM:SS.000000Z";
    text[..19].copy_from_slice(&prefix);
    let mut micros = d.subsec_micros();
    for i in (20..26).rev() {
        text[i] = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    text
}

fn write_utc(out: &mut Vec<u8>, t: OffsetDateTime, micros: u32) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(f: &Fields<'_>) -> Result<serde_json::Value> {
        let mut out = Vec::new();
        build(&mut out, Level::Warn, "svc", "lg", f, 1 << 20)?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn defaults() {
        let v = body(&Fields {
            message: "hi \"there\"\n",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["service"], "svc");
        assert_eq!(v["logger_name"], "lg");
        assert_eq!(v["message"], "hi \"there\"\n");
        assert!(v["user_id"].is_null() && v["tenant_id"].is_null());
        assert_eq!(
            uuid::Uuid::parse_str(v["request_id"].as_str().unwrap())
                .unwrap()
                .get_version_num(),
            4
        );
        assert_eq!(v["context"], serde_json::json!({}));
        let ts = v["client_log_datetime"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
        OffsetDateTime::parse(ts, &Rfc3339).unwrap();
    }

    #[test]
    fn given_fields() {
        let v = body(&Fields {
            message: "m",
            user_id: Some("ü"),
            tenant_id: Some(""),
            request_id: Some("r-1"),
            context_json: Some("{\n \"a\": [1, {\"b\": null}]\n}"),
            client_log_datetime: Some("2026-01-02T03:04:05+02:00"),
        })
        .unwrap();
        assert_eq!(v["user_id"], "ü");
        assert_eq!(v["tenant_id"], "");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["context"], serde_json::json!({"a": [1, {"b": null}]}));
        assert_eq!(v["client_log_datetime"], "2026-01-02T01:04:05.000000Z");
    }

    #[test]
    fn bad_input() {
        let k = |f: Fields<'_>| body(&f).unwrap_err().kind;
        let m = "m";
        let f = |c: &'static str| Fields {
            message: m,
            context_json: Some(c),
            ..Default::default()
        };
        assert_eq!(k(f("[1]")), ErrorKind::InvalidJson);
        assert_eq!(k(f("{")), ErrorKind::InvalidJson);
        assert_eq!(k(f("{} x")), ErrorKind::InvalidJson);
        let deep = "[".repeat(10_000);
        assert_eq!(
            k(Fields {
                message: m,
                context_json: Some(&deep),
                ..Default::default()
            }),
            ErrorKind::InvalidJson
        );
        assert_eq!(
            k(Fields {
                message: m,
                client_log_datetime: Some("yesterday"),
                ..Default::default()
            }),
            ErrorKind::InvalidTimestamp
        );
        assert_eq!(
            utf8("message", b"a\xffb").unwrap_err().kind,
            ErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn now_matches_the_calendar() {
        for secs in [0u64, 951_782_400, 1_795_473_000, 4_102_444_799] {
            let at =
                SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(secs * 1_000_000 + 7);
            let mut out = Vec::new();
            now(&mut out, at);
            now(&mut out, at);
            let s = String::from_utf8(out).unwrap();
            let (a, b) = s.split_at(27);
            assert_eq!(a, b);
            let t = OffsetDateTime::parse(a, &Rfc3339).unwrap();
            assert_eq!(t.unix_timestamp() as u64, secs);
            assert!(a.ends_with(".000007Z"), "{a}");
        }
    }

    #[test]
    fn multi_line_contexts_keep_their_text() {
        // 1e400 is kept as written (serde_json::Value would refuse it).
        let mut out = Vec::new();
        build(
            &mut out,
            Level::Info,
            "s",
            "s",
            &Fields {
                message: "m",
                context_json: Some("{\n \"a b\" : \"x\\\" \\n y\",\r\n \"n\": 1e400 }"),
                ..Default::default()
            },
            1 << 20,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\n'));
        assert!(
            text.contains(r#""context":{"a b":"x\" \n y","n":1e400}"#),
            "{text}"
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all += "ü ✓ 😀 \u{2028}\"\\ end";
        for s in [all.as_str(), "", "plain", "\"", "a\\b", "x\u{7f}y"] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn uuid_text_is_a_version_4_uuid() {
        let t = uuid_v4_text();
        let u = uuid::Uuid::parse_str(std::str::from_utf8(&t).unwrap()).unwrap();
        assert_eq!(u.get_version_num(), 4);
    }

    #[test]
    fn build_with_prefix_is_build() {
        let f = Fields {
            message: "m \"q\"",
            user_id: Some("u"),
            tenant_id: None,
            request_id: Some("r-1"),
            context_json: Some("{\"a\":1}"),
            client_log_datetime: Some("2026-01-02T03:04:05Z"),
        };
        for level in Level::ALL {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            build(&mut a, level, "s\"v", "n\\m", &f, 1 << 20).unwrap();
            build_with_prefix(&mut b, &prefix(level, "s\"v", "n\\m"), &f, 1 << 20).unwrap();
            assert_eq!(a, b);
            let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
            assert_eq!(v["level"], level.as_str());
            assert_eq!(v["service"], "s\"v");
            assert_eq!(v["logger_name"], "n\\m");
            assert_eq!(v["message"], "m \"q\"");
            assert_eq!(v["client_log_datetime"], "2026-01-02T03:04:05Z");
            assert_eq!(
                v.as_object().unwrap().keys().collect::<Vec<_>>(),
                [
                    "level",
                    "service",
                    "logger_name",
                    "message",
                    "user_id",
                    "tenant_id",
                    "request_id",
                    "context",
                    "client_log_datetime"
                ]
            );
        }
    }

    #[test]
    fn too_large() {
        let big = "x".repeat(2000);
        let mut out = Vec::new();
        let e = build(
            &mut out,
            Level::Info,
            "s",
            "s",
            &Fields {
                message: &big,
                ..Default::default()
            },
            1000,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }
}
