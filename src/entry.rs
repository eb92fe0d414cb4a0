//! Building one entry: validation of the caller's fields, the protocol's defaults, and the JSON
//! body (exactly what is posted and what a buffer line holds).

use crate::error::{Error, ErrorKind, Result};
use crate::level::Level;
use crate::trace::Trace;
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
    /// The trace context (`rarch_log_traced`): the body gets `trace_id`, `span_id` and
    /// `trace_flags` only when there is one.
    pub trace: Option<Trace>,
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
    let c = check(f)?;
    let at_ns = now_ns();
    assemble(out, prefix, &c.fields, c.context_multi_line, at_ns);
    check_size(out, max_bytes)
}

/// The fields of an entry once checked: the context trimmed of the whitespace around it.
pub struct Checked<'a> {
    pub fields: Fields<'a>,
    /// The context is written over several lines (the body gets it without the whitespace
    /// outside strings, since a buffer line must be one line).
    pub context_multi_line: bool,
}

/// What must be checked on the caller's thread, to report a status: the context is a JSON
/// object, the timestamp is RFC 3339 (UTF-8 is the C strings' conversion's, the size
/// [`max_len`]'s or [`check_size`]'s).
#[link_section = ".text.hot.rarch_log"]
pub fn check<'a>(f: &Fields<'a>) -> Result<Checked<'a>> {
    let mut fields = *f;
    let mut context_multi_line = false;
    if let Some(c) = f.context_json {
        let (text, multi) = context(c)?;
        fields.context_json = Some(text);
        context_multi_line = multi;
    }
    if let Some(t) = f.client_log_datetime {
        check_timestamp(t)?;
    }
    Ok(Checked {
        fields,
        context_multi_line,
    })
}

/// The most bytes the body of `f` can take with a prefix of `prefix_len` bytes, whatever its
/// strings' escapes (at most 6 bytes for one), its request id and its time.
pub fn max_len(prefix_len: usize, f: &Fields<'_>) -> usize {
    // The keys, quotes, nulls, a fresh UUID, a time and the braces: 152 bytes (unit-tested),
    // rounded up.
    const FIXED: usize = 160;
    let escaped = f.message.len()
        + f.user_id.map_or(0, str::len)
        + f.tenant_id.map_or(0, str::len)
        + f.request_id.map_or(0, str::len);
    prefix_len
        + FIXED
        + 6 * escaped
        + f.context_json.map_or(0, str::len)
        + f.client_log_datetime.map_or(0, |t| t.len().max(27))
        + f.trace.map_or(0, |_| TRACE_JSON)
}

/// The bytes of a trace in a body: `,"trace_id":"<32>","span_id":"<16>","trace_flags":255`.
const TRACE_JSON: usize = 96;

/// Refuses a body larger than `max_bytes` (and clears it).
pub fn check_size(out: &mut Vec<u8>, max_bytes: usize) -> Result<()> {
    if out.len() > max_bytes {
        let n = out.len();
        out.clear();
        return Err(too_large(n, max_bytes));
    }
    Ok(())
}

#[cold]
fn too_large(n: usize, max_bytes: usize) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("entry is {n} bytes of JSON, above max_entry_bytes ({max_bytes})"),
    )
}

/// The time now, in nanoseconds since the Unix epoch (0 before it).
///
/// clock_gettime directly: `SystemTime::now().duration_since(UNIX_EPOCH)` spent about 45 more
/// instructions of the caller's path on normalising a `Duration` (callgrind).
pub fn now_ns() -> u64 {
    now_ns_by(libc::clock_gettime)
}

/// `clock_gettime`'s type.
pub type ClockFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// [`now_ns`] with `clock` as `clock_gettime` (the pipeline keeps a pointer to it on the line
/// a call reads: see `Pipeline::now_ns`).
#[inline(always)]
pub fn now_ns_by(clock: ClockFn) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid place for the result; CLOCK_REALTIME always exists; `clock` is
    // libc's `clock_gettime`.
    if unsafe { clock(libc::CLOCK_REALTIME, &mut ts) } != 0 || ts.tv_sec < 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Writes the JSON body of checked fields (see [`check`]) into `out` (cleared first): the
/// prefix, the escaped strings, a fresh request id if there is none, the context, and the
/// timestamp (the caller's in UTC, or `at_ns`, the time of the call).
pub fn assemble(out: &mut Vec<u8>, prefix: &[u8], f: &Fields<'_>, multi_line: bool, at_ns: u64) {
    out.clear();
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
    match f.context_json {
        None => out.extend_from_slice(b"{}"),
        Some(c) if multi_line => minify(out, c),
        Some(c) => out.extend_from_slice(c.as_bytes()),
    }
    const TIME_KEY: &[u8; 24] = b",\"client_log_datetime\":\"";
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(at_ns);
    match f.client_log_datetime {
        Some(t) => {
            out.extend_from_slice(TIME_KEY);
            // Checked on the caller's thread (see `check`); were it not RFC 3339 after all,
            // the time of the call.
            if timestamp(out, t).is_err() {
                now(out, at);
            }
            out.extend_from_slice(b"\"}");
        }
        None => {
            // One copy for the key, the time and the end of the object.
            let mut piece = *b",\"client_log_datetime\":\"YYYY-MM-DDTHH:MM:SS.ffffffZ\"}";
            piece[TIME_KEY.len()..TIME_KEY.len() + 27].copy_from_slice(&now_text(at));
            out.extend_from_slice(&piece);
        }
    }
    if let Some(t) = &f.trace {
        trace_fields(out, t);
    }
}

/// Appends the trace's fields to a body (before its closing brace).
#[cold]
fn trace_fields(out: &mut Vec<u8>, t: &Trace) {
    out.pop();
    out.extend_from_slice(b",\"trace_id\":\"");
    crate::trace::hex(out, &t.trace_id);
    out.extend_from_slice(b"\",\"span_id\":\"");
    crate::trace::hex(out, &t.span_id);
    // A byte written into a Vec cannot fail.
    let _ = write!(out, "\",\"trace_flags\":{}}}", t.flags);
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
pub(crate) fn uuid_v4_text() -> [u8; 36] {
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

/// Checks a context: a JSON object. Returns its text without the whitespace around it, and
/// whether it is written over several lines.
#[link_section = ".text.hot.rarch_log"]
fn context(c: &str) -> Result<(&str, bool)> {
    let multi_line = crate::json::check_object(c.as_bytes()).map_err(|e| invalid_context(&e))?;
    // A valid object starts with `{` and ends with `}` but for whitespace around it.
    let text = match (c.as_bytes().first(), c.as_bytes().last()) {
        (Some(b'{'), Some(b'}')) => c,
        _ => c.trim_matches([' ', '\t', '\n', '\r']),
    };
    Ok((text, multi_line))
}

#[cold]
fn invalid_context(e: &crate::json::Invalid) -> Error {
    Error::new(
        ErrorKind::InvalidJson,
        format!(
            "context_json: not a JSON object: {} at byte {}",
            e.what, e.offset
        ),
    )
}

/// Drops the whitespace outside strings of valid JSON text (numbers, escapes and depth stay
/// exactly as written).
fn minify(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len());
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
}

/// Checks a caller's timestamp (RFC 3339).
fn check_timestamp(t: &str) -> Result<()> {
    OffsetDateTime::parse(t, &Rfc3339)
        .map(|_| ())
        .map_err(invalid_timestamp)
}

#[cold]
fn invalid_timestamp(e: time::error::Parse) -> Error {
    Error::new(
        ErrorKind::InvalidTimestamp,
        format!(
            "client_log_datetime: not an RFC 3339 timestamp ({e}); expected e.g. 2026-11-23T22:30:00.123456Z"
        ),
    )
}

/// Writes a caller's timestamp (RFC 3339): a UTC one as written, one with another offset
/// converted to UTC.
fn timestamp(out: &mut Vec<u8>, t: &str) -> Result<()> {
    let parsed = OffsetDateTime::parse(t, &Rfc3339).map_err(invalid_timestamp)?;
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

    #[test]
    fn now_ns_is_the_system_clock() {
        let std_ns = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let before = std_ns(SystemTime::now());
        let ours = u128::from(now_ns());
        let after = std_ns(SystemTime::now());
        // The same clock, read between the two; a second of slack for a step of the clock.
        let slack = 1_000_000_000;
        assert!(
            before - slack <= ours && ours <= after + slack,
            "{before} {ours} {after}"
        );
    }

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
    fn a_trace_adds_three_fields_and_only_then() {
        let plain = Fields {
            message: "m",
            request_id: Some("r"),
            client_log_datetime: Some("2026-01-02T03:04:05Z"),
            ..Default::default()
        };
        let t = Trace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03").unwrap();
        let traced = Fields {
            trace: Some(t),
            ..plain
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        build(&mut a, Level::Info, "s", "l", &plain, 1 << 20).unwrap();
        build(&mut b, Level::Info, "s", "l", &traced, 1 << 20).unwrap();
        let (a, b) = (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        assert!(!a.contains("trace"), "{a}");
        assert_eq!(
            b,
            format!(
                "{},\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\",\"trace_flags\":3}}",
                &a[..a.len() - 1]
            )
        );
        // The bound on the body's size holds with a trace of the largest flags.
        let most = Fields {
            trace: Some(Trace { flags: 255, ..t }),
            ..plain
        };
        let mut c = Vec::new();
        build(&mut c, Level::Info, "s", "l", &most, 1 << 20).unwrap();
        assert!(c.len() <= max_len(prefix(Level::Info, "s", "l").len(), &most));
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
            trace: None,
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
            trace: None,
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

    /// `max_len` bounds the body whatever the escapes, ids and times.
    #[test]
    fn max_len_bounds_the_body() {
        let worst: String = "\u{1}".repeat(50);
        let cases = [
            Fields::default(),
            Fields {
                message: &worst,
                user_id: Some(&worst),
                tenant_id: Some(&worst),
                request_id: Some(&worst),
                context_json: Some("{ \"a\" : [1, 2] }"),
                client_log_datetime: Some("2026-01-02T03:04:05+02:00"),
                trace: None,
            },
            Fields {
                message: "m",
                user_id: None,
                tenant_id: None,
                request_id: None,
                context_json: None,
                client_log_datetime: Some("2026-01-02T03:04:05.123456789Z"),
                trace: None,
            },
        ];
        for f in cases {
            for prefix_of in [("s", "l"), ("s\"\u{2}", "x".repeat(100).as_str())] {
                let p = prefix(Level::Debug, prefix_of.0, prefix_of.1);
                let c = check(&f).unwrap();
                let mut out = Vec::new();
                assemble(&mut out, &p, &c.fields, c.context_multi_line, now_ns());
                assert!(out.len() <= max_len(p.len(), &c.fields), "{}", out.len());
            }
        }
        // The fixed part, with no field, a fresh id and the time: 152 bytes past the prefix.
        let mut out = Vec::new();
        assemble(&mut out, b"", &Fields::default(), false, 0);
        assert_eq!(
            out.len(),
            2 + 11 + 4 + 13 + 4 + 15 + 37 + 11 + 2 + 24 + 27 + 2
        );
        assert!(out.len() <= 160);
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
