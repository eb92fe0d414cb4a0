//! An entry's context, a JSON text, written as the fields of a protobuf `AnyValue` as it is
//! read: one pass over the text, no tree, keys and strings copied from it (unescaped only when
//! they hold an escape). The mapping is [`super::any_value`]'s, value for value: objects as
//! `kvlist_value`, arrays as `array_value`, strings, booleans, integers within i64 as
//! `int_value`, other numbers as `double_value`, null as an empty value.
//!
//! Written by hand rather than through serde_json with a visitor (which wrote the same bytes):
//! in a burst with `sink=otlp` that visitor's parse was about 16% of the replay thread's CPU,
//! most of it serde's generic dispatch for each value and key; this is the part of the
//! encoder that is ours (the protobuf writing), over a grammar [`crate::json`] already checks.
//! It reads what serde_json reads, the same way (a differential test checks it): `-0` and
//! integers past i64 as doubles, a string with an unpaired surrogate escape refused (the
//! record then carries an empty context, as before), a 128th level of nesting refused.

use super::proto::wire;

/// Containers nested deeper are refused (serde_json's recursion limit).
const MAX_DEPTH: u32 = 127;

/// Writes the JSON value at the start of `text` as `AnyValue` fields into `out`. False, and
/// `out` as it was, when `text` does not start with a JSON value.
pub fn any_value(out: &mut Vec<u8>, text: &str) -> bool {
    let at = out.len();
    let mut p = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    if p.value(out, 0).is_some() {
        true
    } else {
        out.truncate(at);
        false
    }
}

/// A message field (see [`wire::message`]) whose content may fail; the caller drops `out`'s
/// tail then.
fn message(
    out: &mut Vec<u8>,
    tag: u32,
    large: bool,
    f: impl FnOnce(&mut Vec<u8>) -> Option<()>,
) -> Option<()> {
    let mut r = None;
    if large {
        wire::message_large(out, tag, |o| r = f(o));
    } else {
        wire::message(out, tag, |o| r = f(o));
    }
    r
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Takes byte `b` (after whitespace), or fails.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' if depth < MAX_DEPTH => {
                self.i += 1;
                self.object(out, depth + 1)
            }
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                self.array(out, depth + 1)
            }
            // AnyValue.string_value (1).
            b'"' => {
                self.i += 1;
                self.string(out, 1)
            }
            // AnyValue.bool_value (2).
            b't' => {
                self.literal(b"true")?;
                wire::varint(out, 2, 1);
                Some(())
            }
            b'f' => {
                self.literal(b"false")?;
                wire::varint(out, 2, 0);
                Some(())
            }
            // Null: an empty value.
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.s.get(self.i..self.i + word.len())? == word).then(|| self.i += word.len())
    }

    /// After `{`: AnyValue.kvlist_value (6), its values (1) one KeyValue each: key (1),
    /// value (2).
    fn object(&mut self, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        message(out, 6, true, |o| {
            let mut more = !self.closes(b'}')?;
            while more {
                self.expect(b'"')?;
                message(o, 1, false, |o| {
                    self.string(o, 1)?;
                    self.expect(b':')?;
                    message(o, 2, false, |o| self.value(o, depth))
                })?;
                more = self.next(b'}')?;
            }
            Some(())
        })
    }

    /// After `[`: AnyValue.array_value (5), its values (1) one AnyValue each.
    fn array(&mut self, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        message(out, 5, false, |o| {
            let mut more = !self.closes(b']')?;
            while more {
                message(o, 1, false, |o| self.value(o, depth))?;
                more = self.next(b']')?;
            }
            Some(())
        })
    }

    /// Just after a container's opening: whether `close` follows at once (taken if so).
    fn closes(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let empty = self.peek()? == close;
        if empty {
            self.i += 1;
        }
        Some(empty)
    }

    /// After a container's element: true for `,` (another follows), false for `close`, each
    /// taken; anything else fails.
    fn next(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        self.i += 1;
        match b {
            b',' => Some(true),
            _ if b == close => Some(false),
            _ => None,
        }
    }

    /// After `"`: the string, unescaped, as field `tag`.
    fn string(&mut self, out: &mut Vec<u8>, tag: u32) -> Option<()> {
        let start = self.i;
        let rest = &self.s[start..];
        let k = crate::json::first_special(rest)?;
        if rest[k] == b'"' {
            wire::bytes(out, tag, &rest[..k]);
            self.i = start + k + 1;
            return Some(());
        }
        // An escape (or a control character, which fails below): unescaped into a copy.
        let mut buf = rest[..k].to_vec();
        self.i = start + k;
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => {
                    wire::bytes(out, tag, &buf);
                    return Some(());
                }
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let c = match e {
                        b'"' | b'\\' | b'/' => e,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            buf.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    buf.push(c);
                }
                0..=0x1f => return None,
                _ => buf.push(b),
            }
        }
    }

    /// After `\u`: four hex digits, and a second escape for a surrogate pair.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                self.literal(b"\\u")?;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return None;
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return None,
            c => c,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let mut v = 0;
        for &b in h {
            v = v * 16 + char::from(b).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// A number: an integer within i64 as AnyValue.int_value (3), anything else as
    /// double_value (4), as serde_json reads it (`-0` is a double; so is an integer past
    /// i64's range, rounded).
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        let neg = self.peek()? == b'-';
        if neg {
            self.i += 1;
        }
        // The integer's value as it is read (None past u64).
        let mut int = Some(0u64);
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    int = int
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(d - b'0')));
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
            float = true;
        }
        if !float {
            if let Some(u) = int {
                match (neg, u) {
                    (false, u) if u <= i64::MAX as u64 => wire::varint(out, 3, u),
                    (true, u) if u != 0 && u <= 1 << 63 => {
                        wire::varint(out, 3, (u as i64).wrapping_neg() as u64)
                    }
                    (false, u) => wire::fixed64(out, 4, (u as f64).to_bits()),
                    (true, u) => wire::fixed64(out, 4, (-(u as f64)).to_bits()),
                }
                return Some(());
            }
        }
        // ASCII only: a `str`.
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        let f: f64 = text.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        wire::fixed64(out, 4, f.to_bits());
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    /// One digit or more.
    fn some_digits(&mut self) -> Option<()> {
        let at = self.i;
        self.digits();
        (self.i > at).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{self, AnyValue, ArrayValue, KeyValue, KeyValueList};
    use super::any_value;
    use proptest::prelude::*;
    use prost::Message;
    use serde_json::Value;

    /// The mapping, from serde_json's reading of the text, through prost's messages.
    fn reference(v: &Value) -> AnyValue {
        use proto::Value as V;
        let value = match v {
            Value::Null => None,
            Value::Bool(b) => Some(V::BoolValue(*b)),
            Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => V::IntValue(i),
                (None, Some(u), _) => V::DoubleValue(u as f64),
                (_, _, f) => V::DoubleValue(f.unwrap_or(f64::NAN)),
            }),
            Value::String(s) => Some(V::StringValue(s.clone())),
            Value::Array(a) => Some(V::ArrayValue(ArrayValue {
                values: a.iter().map(reference).collect(),
            })),
            Value::Object(m) => Some(V::KvlistValue(KeyValueList {
                values: m
                    .iter()
                    .map(|(k, v)| KeyValue {
                        key: k.clone(),
                        value: Some(reference(v)),
                    })
                    .collect(),
            })),
        };
        AnyValue { value }
    }

    /// What we wrote, read back by prost (which also checks it is well-formed protobuf).
    fn ours(text: &str) -> Option<AnyValue> {
        let mut out = vec![7];
        if !any_value(&mut out, text) {
            assert_eq!(out, [7], "{text}: a failure leaves the output as it was");
            return None;
        }
        let v = AnyValue::decode(&out[1..]).unwrap_or_else(|e| panic!("{text}: {e}"));
        Some(v)
    }

    /// Doubles to 12 significant digits: serde_json (without its `float_roundtrip` feature)
    /// reads some decimals one unit in the last place off; this reads them exactly.
    fn rounded(v: &mut AnyValue) {
        use proto::Value as V;
        match &mut v.value {
            Some(V::DoubleValue(f)) => *f = format!("{f:.11e}").parse().unwrap_or(*f),
            Some(V::ArrayValue(a)) => a.values.iter_mut().for_each(rounded),
            Some(V::KvlistValue(l)) => l
                .values
                .iter_mut()
                .flat_map(|kv| &mut kv.value)
                .for_each(rounded),
            _ => {}
        }
    }

    fn check(text: &str) {
        let mut want = serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| reference(&v));
        let mut got = ours(text);
        want.iter_mut().chain(got.iter_mut()).for_each(rounded);
        assert_eq!(got, want, "{text}");
    }

    #[test]
    fn values_are_written_as_serde_json_reads_them() {
        for text in [
            r#"{}"#,
            r#"{"a":1,"b":[true,false,null,"x",[],{}],"c":{"d":-2.5e3}}"#,
            r#" { "s" : "a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00" } "#,
            r#"["ü",-0,0,-1,9223372036854775807,9223372036854775808,-9223372036854775808]"#,
            r#"[-9223372036854775809,18446744073709551615,18446744073709551616,1e400,1E-2,0.5]"#,
            r#""plain""#,
            r#"{"k":"\ud800"}"#,
            r#"{"k":"\udc00"}"#,
            r#"{"k":"\ud800\u0041"}"#,
            r#"{"k":"a\u00"}"#,
            r#"{"k":"tab	in"}"#,
            r#"{"k":1,}"#,
            r#"[1,]"#,
            r#"[01]"#,
            r#"[1.]"#,
            r#"[.5]"#,
            r#"[1e]"#,
            r#"[-]"#,
            r#"{"k" 1}"#,
            r#"{"k":tru}"#,
            r#"{"k":"unterminated"#,
            r#"{1:2}"#,
            "",
        ] {
            check(text);
        }
        // Decimals are read exactly (correctly rounded).
        for (text, f) in [
            ("0.1", 0.1),
            ("-362991.23634205037", -362991.23634205037),
            ("1e-7", 1e-7),
        ] {
            let got = ours(text).and_then(|v| v.value);
            assert_eq!(got, Some(proto::Value::DoubleValue(f)), "{text}");
        }
        // Nesting: 127 levels are read, 128 are refused, as serde_json does (prost decodes
        // 100 at most: the result is not read back).
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        for (n, ok) in [(127, true), (128, false)] {
            assert_eq!(serde_json::from_str::<Value>(&deep(n)).is_ok(), ok);
            assert_eq!(any_value(&mut Vec::new(), &deep(n)), ok);
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_text_is_read_as_serde_json_reads_it(v in json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            check(&text);
        }
    }
}
