//! The record codec: an entry's checked fields as bytes, with no JSON.
//!
//! A lane holds entries as records ([`write_record`], read back by [`parse_record`]); a
//! durable entry's crash-journal record and a lane record spilled raw in a burst are the same
//! record behind the logger's name ([`write_journal`], [`write_raw_spill`]); the process that
//! reads a journal builds the JSON body from it ([`journal_body`]). Below the pipeline, the
//! buffer and the CLI's inspection, which all read these records.

use crate::entry::{self, Fields};
use crate::journal::Ticket;
use crate::level::Level;
use crate::trace::{Trace, TRACE_BYTES};

/// A record: the fixed part, the journal ticket's bytes if there is one, the trace's
/// ([`TRACE_BYTES`]) if there is one, then the fields' bytes in the order of `lens`.
/// `source` (8) `at_ns` (8) `level` (1) `flags` (1) pad (2) `lens` (6 x 4).
const FIXED: usize = 44;
const CONTEXT_MULTI_LINE: u8 = 1;
/// The record carries its entry's journal [`Ticket`] (durable=true), moved in by bytes.
const HAS_TICKET: u8 = 2;
const TICKET: usize = std::mem::size_of::<Ticket>();
/// The record carries a trace context (`rarch_log_traced`).
const HAS_TRACE: u8 = 4;
const NONE: u32 = u32::MAX;

/// One record, read back.
pub(crate) struct Record<'a> {
    pub source: u64,
    pub at_ns: u64,
    pub level: Level,
    pub fields: Fields<'a>,
    pub context_multi_line: bool,
    /// Where the ticket's bytes are, if there is one.
    ticket_at: Option<usize>,
}

fn field_len(s: Option<&str>) -> u32 {
    s.map_or(NONE, |s| s.len() as u32)
}

/// The size of `f`'s record.
pub(crate) fn record_len(f: &Fields<'_>, ticket: bool) -> usize {
    FIXED
        + if ticket { TICKET } else { 0 }
        + f.trace.map_or(0, |_| TRACE_BYTES)
        + f.message.len()
        + [
            f.user_id,
            f.tenant_id,
            f.request_id,
            f.context_json,
            f.client_log_datetime,
        ]
        .iter()
        .map(|s| s.map_or(0, str::len))
        .sum::<usize>()
}

/// Writes a record; the ticket in `ticket`, if any, is moved into it.
/// Inlined: called, it was reached through the GOT (one more line for a cold call).
#[inline(always)]
#[link_section = ".text.hot.rarch_log"]
pub(crate) fn write_record(
    out: &mut [u8],
    source: u64,
    at_ns: u64,
    level: Level,
    f: &Fields<'_>,
    multi: bool,
    ticket: &mut Option<Ticket>,
) {
    out[0..8].copy_from_slice(&source.to_le_bytes());
    out[8..16].copy_from_slice(&at_ns.to_le_bytes());
    out[16] = level as u8;
    out[17] = if multi { CONTEXT_MULTI_LINE } else { 0 };
    let mut at = FIXED;
    if let Some(t) = ticket.take() {
        out[17] |= HAS_TICKET;
        // SAFETY: TICKET bytes are there; the ticket is moved (read back once, by `ticket_of`).
        unsafe { std::ptr::write_unaligned(out[at..at + TICKET].as_mut_ptr().cast::<Ticket>(), t) };
        at += TICKET;
    }
    if let Some(t) = &f.trace {
        out[17] |= HAS_TRACE;
        out[at..at + TRACE_BYTES].copy_from_slice(&t.to_bytes());
        at += TRACE_BYTES;
    }
    let fields = [
        Some(f.message),
        f.user_id,
        f.tenant_id,
        f.request_id,
        f.context_json,
        f.client_log_datetime,
    ];
    for (i, s) in fields.iter().enumerate() {
        out[20 + 4 * i..24 + 4 * i].copy_from_slice(&field_len(*s).to_le_bytes());
        if let Some(s) = s {
            crate::mem::copy(&mut out[at..at + s.len()], s.as_bytes());
            at += s.len();
        }
    }
}

/// Reads a record written by [`write_record`]; None if it is not one (bounds and UTF-8 are
/// checked: a journal's records come from a file).
pub(crate) fn parse_record(rec: &[u8]) -> Option<Record<'_>> {
    let word =
        |i: usize| -> Option<u64> { Some(u64::from_le_bytes(rec.get(i..i + 8)?.try_into().ok()?)) };
    let flags = *rec.get(17)?;
    let mut at = FIXED;
    let ticket_at = (flags & HAS_TICKET != 0).then_some(at);
    if ticket_at.is_some() {
        at += TICKET;
    }
    let mut trace = None;
    if flags & HAS_TRACE != 0 {
        let bytes = rec.get(at..at + TRACE_BYTES)?.try_into().ok()?;
        trace = Some(Trace::from_bytes(bytes));
        at += TRACE_BYTES;
    }
    // The fields' bytes follow one another: checked as UTF-8 once, whole, and each cut at a
    // character boundary (so that each is UTF-8 too), rather than field by field.
    let mut ends: [Option<(usize, usize)>; 6] = [None; 6];
    let start = at;
    for (i, slot) in ends.iter_mut().enumerate() {
        let n = u32::from_le_bytes(rec.get(20 + 4 * i..24 + 4 * i)?.try_into().ok()?);
        if n == NONE {
            continue;
        }
        let end = at.checked_add(n as usize)?;
        *slot = Some((at - start, end - start));
        at = end;
    }
    let text = std::str::from_utf8(rec.get(start..at)?).ok()?;
    let mut fields: [Option<&str>; 6] = [None; 6];
    for (slot, span) in fields.iter_mut().zip(ends) {
        if let Some((a, b)) = span {
            *slot = Some(text.get(a..b)?);
        }
    }
    Some(Record {
        source: word(0)?,
        at_ns: word(8)?,
        level: Level::ALL[*rec.get(16)? as usize % Level::ALL.len()],
        fields: Fields {
            message: fields[0].unwrap_or(""),
            user_id: fields[1],
            tenant_id: fields[2],
            request_id: fields[3],
            context_json: fields[4],
            client_log_datetime: fields[5],
            trace,
        },
        context_multi_line: flags & CONTEXT_MULTI_LINE != 0,
        ticket_at,
    })
}

/// The ticket a lane record carries. Called once per record.
pub(crate) fn ticket_of(rec: &[u8], r: &Record<'_>) -> Option<Ticket> {
    let at = r.ticket_at?;
    // SAFETY: moved in by `write_record`, read back once, here.
    Some(unsafe { std::ptr::read_unaligned(rec[at..at + TICKET].as_ptr().cast::<Ticket>()) })
}

/// A durable entry's journal record: a 0 byte (a JSON body starts with `{`), the logger's name
/// (length, bytes), then the entry as a lane record (without a source or a ticket). The
/// process that recovers the journal builds the body from it ([`journal_body`]).
const JOURNAL_RAW: u8 = 0;

pub(crate) fn journal_len(name: &str, f: &Fields<'_>) -> usize {
    5 + name.len() + record_len(f, false)
}

#[link_section = ".text.hot.rarch_log"]
pub(crate) fn write_journal(
    out: &mut [u8],
    name: &str,
    at_ns: u64,
    level: Level,
    f: &Fields<'_>,
    multi: bool,
) {
    out[0] = JOURNAL_RAW;
    out[1..5].copy_from_slice(&(name.len() as u32).to_le_bytes());
    out[5..5 + name.len()].copy_from_slice(name.as_bytes());
    write_record(
        &mut out[5 + name.len()..],
        0,
        at_ns,
        level,
        f,
        multi,
        &mut None,
    );
}

/// Whether journal record `rec` is a raw record (else it is a JSON body, or not ours).
pub(crate) fn is_raw(rec: &[u8]) -> bool {
    rec.first() == Some(&JOURNAL_RAW)
}

/// A raw journal record read back: the logger's name and the record; None if it is not one.
pub(crate) fn parse_journal(rec: &[u8]) -> Option<(&str, Record<'_>)> {
    if !is_raw(rec) {
        return None;
    }
    let n = u32::from_le_bytes(rec.get(1..5)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(rec.get(5..5usize.checked_add(n)?)?).ok()?;
    Some((name, parse_record(&rec[5 + n..])?))
}

/// Appends raw journal record `rec` to `out` with a request id: as it is when it has one,
/// else with a fresh one (as its body would get), so that every way it is sent or kept
/// carries the same. False, and nothing appended, when it is not a raw record.
pub(crate) fn push_with_request_id(out: &mut Vec<u8>, rec: &[u8]) -> bool {
    // Its request id's length, read without a parse (the record is read whole when it is
    // encoded).
    let has_id = is_raw(rec)
        && rec
            .get(1..5)
            .and_then(|n| n.try_into().ok())
            .map(|n| 5 + u32::from_le_bytes(n) as usize + 20 + 4 * 3)
            .and_then(|at| rec.get(at..at + 4))
            .is_some_and(|n| n != NONE.to_le_bytes());
    if has_id {
        out.extend_from_slice(rec);
        return true;
    }
    is_raw(rec) && splice_request_id(out, rec, &entry::uuid_v4_text())
}

/// Appends raw journal record `rec`, which has no request id, with `id` as its request id:
/// its bytes copied around the id, its lengths' word for the id set, and nothing else read
/// (the encoder reads the record whole, UTF-8 included, next). False, and nothing appended,
/// when its lengths do not fit in it.
fn splice_request_id(out: &mut Vec<u8>, rec: &[u8], id: &[u8]) -> bool {
    let len_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(rec.get(at..at + 4)?.try_into().ok()?))
    };
    let splice = || -> Option<(usize, usize)> {
        let base = 5usize.checked_add(len_at(1)? as usize)?;
        let flags = *rec.get(base + 17)?;
        let mut at = base + FIXED;
        if flags & HAS_TICKET != 0 {
            at += TICKET;
        }
        if flags & HAS_TRACE != 0 {
            at += TRACE_BYTES;
        }
        // The request id's bytes go after those of the message, the user and the tenant.
        for i in 0..3 {
            match len_at(base + 20 + 4 * i)? {
                NONE => {}
                n => at = at.checked_add(n as usize)?,
            }
        }
        (len_at(base + 20 + 4 * 3)? == NONE && at <= rec.len()).then_some((base, at))
    };
    let Some((base, at)) = splice() else {
        return false;
    };
    let start = out.len();
    out.reserve(rec.len() + id.len());
    out.extend_from_slice(&rec[..at]);
    out.extend_from_slice(id);
    out.extend_from_slice(&rec[at..]);
    let word = start + base + 20 + 4 * 3;
    out[word..word + 4].copy_from_slice(&(id.len() as u32).to_le_bytes());
    true
}

/// The JSON body of a journal record of `service`: the record as it is when it is a body, the
/// body built from it when it is a durable entry's raw record; None when it is neither.
pub fn journal_body(rec: &[u8], service: &str) -> Option<Vec<u8>> {
    BodyMaker::default().body(rec, service).map(<[u8]>::to_vec)
}

/// [`journal_body`] for many records: the body is built in a buffer of its own, reused, and
/// the last logger's prefix is kept (a segment's records mostly come from one logger).
#[derive(Default)]
pub struct BodyMaker {
    /// The level, service and logger name `prefix` was made for.
    key: Option<(Level, String, String)>,
    prefix: Vec<u8>,
    body: Vec<u8>,
}

impl BodyMaker {
    /// The body of journal record `rec` (see [`journal_body`]), valid until the next call.
    pub fn body<'a>(&'a mut self, rec: &'a [u8], service: &str) -> Option<&'a [u8]> {
        if !is_raw(rec) {
            // A body is one line; anything else is not ours.
            return (!rec.contains(&b'\n')).then_some(rec);
        }
        let (name, r) = parse_journal(rec)?;
        let same = self
            .key
            .as_ref()
            .is_some_and(|(l, s, k)| *l == r.level && s == service && k == name);
        if !same {
            self.prefix = entry::prefix(r.level, service, name);
            self.key = Some((r.level, service.to_owned(), name.to_owned()));
        }
        entry::assemble(
            &mut self.body,
            &self.prefix,
            &r.fields,
            r.context_multi_line,
            r.at_ns,
        );
        Some(&self.body)
    }
}

/// The size of a lane record `rec` of logger `name` as an overflow journal record.
pub(crate) fn raw_spill_len(name: &str, rec: &[u8]) -> usize {
    5 + name.len() + rec.len()
}

/// A lane record as a journal record of the raw kind ([`write_journal`]'s layout): the
/// logger's name, then the record with its source's address zeroed (it means nothing in
/// another process, and an address is not written to disk).
pub(crate) fn write_raw_spill(out: &mut [u8], name: &str, rec: &[u8]) {
    out[0] = JOURNAL_RAW;
    out[1..5].copy_from_slice(&(name.len() as u32).to_le_bytes());
    out[5..5 + name.len()].copy_from_slice(name.as_bytes());
    let r = &mut out[5 + name.len()..];
    r.copy_from_slice(rec);
    r[..8].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record without a request id gets one spliced in: the record `write_journal` writes
    /// with that id, with or without a trace, user, tenant, context or time; one with an id is
    /// copied as it is; one whose lengths run past its end is refused.
    #[test]
    fn a_request_id_is_spliced_into_a_raw_record() {
        let trace = Trace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").ok();
        for (user, tenant, ctx, time, trace) in [
            (
                Some("ü"),
                Some("t"),
                Some("{\"a\":1}"),
                Some("2026-12-07T00:00:00Z"),
                None,
            ),
            (None, None, None, None, trace),
            (Some("u"), None, Some("[]"), None, trace),
        ] {
            let f = Fields {
                message: "m",
                user_id: user,
                tenant_id: tenant,
                request_id: None,
                context_json: ctx,
                client_log_datetime: time,
                trace,
            };
            let mut rec = vec![0u8; journal_len("lg", &f)];
            write_journal(&mut rec, "lg", 7, Level::Info, &f, false);
            let id = entry::uuid_v4_text();
            let with = Fields {
                request_id: std::str::from_utf8(&id).ok(),
                ..f
            };
            let mut want = vec![0u8; journal_len("lg", &with)];
            write_journal(&mut want, "lg", 7, Level::Info, &with, false);
            let mut got = b"x".to_vec();
            assert!(splice_request_id(&mut got, &rec, &id));
            assert_eq!(&got[1..], &want[..]);
            let mut copied = Vec::new();
            assert!(push_with_request_id(&mut copied, &want));
            assert_eq!(copied, want);
            let mut fresh = Vec::new();
            assert!(push_with_request_id(&mut fresh, &rec));
            let (_, r) = parse_journal(&fresh).unwrap();
            assert_eq!(r.fields.request_id.map(str::len), Some(36));
            assert_eq!(r.fields.context_json, ctx);
            // Cut before the message's byte: the lengths run past the end.
            let bare = Fields {
                message: "",
                user_id: None,
                tenant_id: None,
                context_json: None,
                client_log_datetime: None,
                ..f
            };
            let cut = &rec[..journal_len("lg", &bare)];
            assert!(!splice_request_id(&mut Vec::new(), cut, &id));
        }
        assert!(!push_with_request_id(
            &mut Vec::new(),
            b"{\"level\":\"INFO\"}"
        ));
    }

    /// A durable entry's raw journal record becomes the body the sender would have built; a
    /// body stays as it is; anything else (truncated, not UTF-8, two lines) is left out.
    #[test]
    fn journal_records_become_bodies() {
        let f = Fields {
            message: "m \"q\"\n",
            user_id: Some("ü"),
            tenant_id: None,
            request_id: Some("r-1"),
            context_json: Some("{\n \"a\": 1\n}"),
            client_log_datetime: None,
            trace: None,
        };
        let at = 1_795_473_000_123_456_000;
        let mut rec = vec![0u8; journal_len("lg", &f)];
        write_journal(&mut rec, "lg", at, Level::Warn, &f, true);
        let body = journal_body(&rec, "svc").unwrap();
        let mut want = Vec::new();
        entry::assemble(
            &mut want,
            &entry::prefix(Level::Warn, "svc", "lg"),
            &f,
            true,
            at,
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            String::from_utf8(want).unwrap()
        );
        // A trace goes through the journal's record (and a lane's: the same layout).
        let t = Trace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let traced = Fields {
            trace: Some(t),
            ..f
        };
        let mut rec2 = vec![0u8; journal_len("lg", &traced)];
        write_journal(&mut rec2, "lg", at, Level::Warn, &traced, true);
        let body = String::from_utf8(journal_body(&rec2, "svc").unwrap()).unwrap();
        assert!(
            body.ends_with(r#""trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":1}"#),
            "{body}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["user_id"], "ü");
        let json = br#"{"level":"INFO","message":"m"}"#;
        assert_eq!(journal_body(json, "svc").unwrap(), json);
        assert!(journal_body(b"{\"a\":\n1}", "svc").is_none());
        for cut in [1, 5, 20, rec.len() - 1] {
            assert!(journal_body(&rec[..cut], "svc").is_none(), "{cut}");
        }
        let mut bad = rec.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert!(journal_body(&bad, "svc").is_none());
    }
}
