//! Trace context on an entry: a W3C Trace Context `traceparent` value
//! (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`), checked and kept as bytes.
//! The rarch body carries it as `trace_id`, `span_id` (lowercase hex) and `trace_flags` (an
//! integer); OTLP as the record's `traceId`, `spanId` and `flags`.

use crate::error::{Error, ErrorKind, Result};

/// A trace id, a span id and the trace flags, as a `traceparent` gives them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trace {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

/// The bytes of a trace in a lane record: the trace id, the span id, the flags.
pub(crate) const TRACE_BYTES: usize = 25;

impl Trace {
    /// Parses a `traceparent` (W3C Trace Context, level 1): version `00` is exactly
    /// `00-<trace id>-<span id>-<flags>`; a later version may add `-...` after the flags,
    /// which is ignored; version `ff`, uppercase hex, and an all-zero trace or span id are
    /// refused (RARCH_ERR_INVALID_ARGUMENT naming the field).
    pub fn parse(s: &str) -> Result<Trace> {
        let b = s.as_bytes();
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "traceparent: {why}; expected 00-<32 lowercase hex trace id>-<16 hex span id>-<2 hex flags>, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                ),
            )
        };
        if b.len() < 55 {
            return Err(invalid("too short"));
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(invalid("a '-' missing"));
        }
        let version = hex_byte(&b[0..2])
            .ok_or_else(|| invalid("the version is not 2 lowercase hex digits"))?;
        if version == 0xff {
            return Err(invalid("version ff is invalid"));
        }
        if b.len() > 55 && (version == 0 || b[55] != b'-') {
            return Err(invalid("unexpected characters after the flags"));
        }
        let mut t = Trace::default();
        for (i, out) in t.trace_id.iter_mut().enumerate() {
            *out = hex_byte(&b[3 + 2 * i..5 + 2 * i])
                .ok_or_else(|| invalid("the trace id is not 32 lowercase hex digits"))?;
        }
        for (i, out) in t.span_id.iter_mut().enumerate() {
            *out = hex_byte(&b[36 + 2 * i..38 + 2 * i])
                .ok_or_else(|| invalid("the span id is not 16 lowercase hex digits"))?;
        }
        t.flags = hex_byte(&b[53..55])
            .ok_or_else(|| invalid("the flags are not 2 lowercase hex digits"))?;
        if t.trace_id == [0; 16] {
            return Err(invalid("the trace id is all zeros"));
        }
        if t.span_id == [0; 8] {
            return Err(invalid("the span id is all zeros"));
        }
        Ok(t)
    }

    /// The trace as its lane record's bytes.
    pub fn to_bytes(&self) -> [u8; TRACE_BYTES] {
        let mut out = [0; TRACE_BYTES];
        out[..16].copy_from_slice(&self.trace_id);
        out[16..24].copy_from_slice(&self.span_id);
        out[24] = self.flags;
        out
    }

    pub fn from_bytes(b: &[u8; TRACE_BYTES]) -> Trace {
        let mut t = Trace::default();
        t.trace_id.copy_from_slice(&b[..16]);
        t.span_id.copy_from_slice(&b[16..24]);
        t.flags = b[24];
        t
    }
}

/// Writes `bytes` as lowercase hex.
pub fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// Two lowercase hex digits as a byte.
fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

/// Lowercase (or uppercase) hex text of exactly `N` bytes, as a buffer line holds an id.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let lower = [
            b[2 * i].to_ascii_lowercase(),
            b[2 * i + 1].to_ascii_lowercase(),
        ];
        *o = hex_byte(&lower)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_is_parsed() {
        let t = Trace::parse(GOOD).unwrap();
        let mut text = Vec::new();
        hex(&mut text, &t.trace_id);
        assert_eq!(text, b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(t.flags, 1);
        assert_eq!(Trace::from_bytes(&t.to_bytes()), t);
        assert_eq!(
            unhex::<16>("4BF92F3577B34DA6A3CE929D0E0E4736"),
            Some(t.trace_id)
        );
        assert_eq!(unhex::<8>("00f067aa0ba902b"), None);
        // A later version may carry more after the flags.
        assert_eq!(
            Trace::parse(&format!("cc{}-what-ever", &GOOD[2..])).unwrap(),
            t
        );
    }

    #[test]
    fn a_bad_traceparent_is_refused_naming_the_field() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
        ] {
            let e = Trace::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message.starts_with("traceparent: "), "{}", e.message);
        }
    }
}
