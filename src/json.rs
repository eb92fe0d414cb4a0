//! A validator for the one JSON text on the caller's hot path: the entry's context, which must
//! be a JSON object (RFC 8259). It checks without building anything, a few instructions a
//! byte, where a general parser spent about 40% of `rarch_log`. It accepts exactly what
//! serde_json accepts (a differential test checks it), except nesting deeper than 128 levels,
//! which it refuses: serde_json (and most decoders) refuse to parse deeper values.

/// Why a text is not a JSON object, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub offset: usize,
    pub what: &'static str,
}

const MAX_DEPTH: u32 = 128;

/// Checks that `s` is one JSON object, with nothing but whitespace around it. Returns whether
/// the text has a line break (which valid JSON can only have as whitespace between tokens).
///
/// One pass, no allocation: containers are tracked in a 128-bit stack (a set bit is an
/// object), strings are scanned 8 bytes at a time.
pub fn check_object(s: &[u8]) -> Result<bool, Invalid> {
    let mut nl = false;
    let mut i = ws(s, 0, &mut nl);
    if at(s, i) != b'{' {
        return Err(err(i, "expected a JSON object ({...})"));
    }
    // The open containers, innermost in bit 0: a set bit is an object.
    let mut stack: u128 = 0;
    let mut depth: u32 = 0;
    'value: loop {
        // At the start of a value.
        i = ws(s, i, &mut nl);
        match at(s, i) {
            b @ (b'{' | b'[') => {
                if depth == MAX_DEPTH {
                    return Err(err(i, "nested more than 128 levels"));
                }
                let obj = b == b'{';
                i = ws(s, i + 1, &mut nl);
                if at(s, i) == b + 2 {
                    // `{}` or `[]` (`}` is `{` + 2, `]` is `[` + 2).
                    i += 1;
                } else {
                    stack = (stack << 1) | u128::from(obj);
                    depth += 1;
                    if obj {
                        i = key(s, i, &mut nl)?;
                    }
                    continue 'value;
                }
            }
            b'"' => i = string(s, i + 1)?,
            b'-' | b'0'..=b'9' => i = number(s, i)?,
            b't' => i = literal(s, i, b"true")?,
            b'f' => i = literal(s, i, b"false")?,
            b'n' => i = literal(s, i, b"null")?,
            _ => return Err(err(i, "expected a value")),
        }
        // After a value: close containers or go on with the next element.
        loop {
            if depth == 0 {
                break 'value;
            }
            i = ws(s, i, &mut nl);
            let obj = stack & 1 != 0;
            match at(s, i) {
                b',' => {
                    i += 1;
                    if obj {
                        i = ws(s, i, &mut nl);
                        i = key(s, i, &mut nl)?;
                    }
                    continue 'value;
                }
                b'}' if obj => {
                    i += 1;
                    stack >>= 1;
                    depth -= 1;
                }
                b']' if !obj => {
                    i += 1;
                    stack >>= 1;
                    depth -= 1;
                }
                _ => return Err(err(i, "expected ',' or the end of the container")),
            }
        }
    }
    i = ws(s, i, &mut nl);
    if i != s.len() {
        return Err(err(i, "trailing characters after the object"));
    }
    Ok(nl)
}

/// The position of the first byte of `s` that a JSON string cannot hold as it is: `"`, `\`
/// or a control character.
#[inline]
pub fn first_special(s: &[u8]) -> Option<usize> {
    let i = next_special(s, 0);
    (i < s.len()).then_some(i)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `v` (little-endian) that is `"`, `\` or below 0x20, exact for
/// the lowest such byte (a borrow can only mark bytes above a true hit).
#[inline(always)]
fn specials(v: u64) -> u64 {
    let quote = v ^ (LO * u64::from(b'"'));
    let slash = v ^ (LO * u64::from(b'\\'));
    ((quote.wrapping_sub(LO) & !quote)
        | (slash.wrapping_sub(LO) & !slash)
        | (v.wrapping_sub(LO * 0x20) & !v))
        & HI
}

/// The position of the first special byte (see [`first_special`]) at or after `i`, or
/// `s.len()` if there is none. Eight bytes at a time; the last (partial) word is read as the
/// last eight bytes of `s`, with the bytes already seen masked off.
#[inline(always)]
fn next_special(s: &[u8], mut i: usize) -> usize {
    let n = s.len();
    while i + 8 <= n {
        let w: [u8; 8] = match s[i..i + 8].try_into() {
            Ok(w) => w,
            Err(_) => break,
        };
        let hit = specials(u64::from_le_bytes(w));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i >= n {
        return n;
    }
    if let Some(w) = s.last_chunk::<8>() {
        // 0 < n - i < 8 here, so `seen` is in 1..=7. The bytes already seen are set to 0xFF
        // (not special) rather than masked off afterwards: a special among them would borrow
        // into the next byte and make it look special.
        let seen = 8 - (n - i);
        let hit = specials(u64::from_le_bytes(*w) | (!0u64 >> (8 * (8 - seen))));
        return if hit != 0 {
            n - 8 + (hit.trailing_zeros() / 8) as usize
        } else {
            n
        };
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map_or(n, |k| i + k)
}

fn err(offset: usize, what: &'static str) -> Invalid {
    Invalid { offset, what }
}

/// The byte at `i`, or 0 past the end (0 is never valid outside a string, and inside one it
/// is told apart from the end by the position).
#[inline(always)]
fn at(s: &[u8], i: usize) -> u8 {
    match s.get(i) {
        Some(&b) => b,
        None => 0,
    }
}

/// Skips whitespace from `i`, noting line breaks.
#[inline(always)]
fn ws(s: &[u8], mut i: usize, nl: &mut bool) -> usize {
    // Compact JSON has none: one comparison.
    if at(s, i) > b' ' {
        return i;
    }
    loop {
        match at(s, i) {
            b' ' | b'\t' => {}
            b'\n' | b'\r' => *nl = true,
            _ => return i,
        }
        i += 1;
    }
}

/// `"key" :` inside an object, from its opening quote; returns the position after the colon.
#[inline(always)]
fn key(s: &[u8], i: usize, nl: &mut bool) -> Result<usize, Invalid> {
    if at(s, i) != b'"' {
        return Err(err(i, "expected a string key"));
    }
    let i = ws(s, string(s, i + 1)?, nl);
    if at(s, i) != b':' {
        return Err(err(i, "expected ':' after a key"));
    }
    Ok(i + 1)
}

/// A string from just after its opening quote; returns the position after the closing one.
#[inline(always)]
fn string(s: &[u8], mut i: usize) -> Result<usize, Invalid> {
    loop {
        i = next_special(s, i);
        match at(s, i) {
            b'"' => return Ok(i + 1),
            b'\\' => {
                i += 1;
                match at(s, i) {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    // Four hex digits. Surrogates are not paired up: serde_json does not
                    // check them either when it validates, and the server's decoders accept
                    // them.
                    b'u' => match s.get(i + 1..i + 5) {
                        Some(h) if h.iter().all(u8::is_ascii_hexdigit) => i += 5,
                        Some(_) => return Err(err(i + 1, "invalid \\u escape")),
                        None => return Err(err(i + 1, "truncated \\u escape")),
                    },
                    _ => return Err(err(i, "invalid escape")),
                }
            }
            _ if i >= s.len() => return Err(err(i, "unterminated string")),
            _ => return Err(err(i, "control character in a string")),
        }
    }
}

#[inline(always)]
fn literal(s: &[u8], i: usize, word: &'static [u8]) -> Result<usize, Invalid> {
    if s.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(err(i, "invalid literal"))
    }
}

#[inline(always)]
fn digits(s: &[u8], mut i: usize) -> usize {
    while at(s, i).is_ascii_digit() {
        i += 1;
    }
    i
}

fn number(s: &[u8], mut i: usize) -> Result<usize, Invalid> {
    if at(s, i) == b'-' {
        i += 1;
    }
    match at(s, i) {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(s, i + 1),
        _ => return Err(err(i, "invalid number")),
    }
    if at(s, i) == b'.' {
        let j = digits(s, i + 1);
        if j == i + 1 {
            return Err(err(j, "invalid number"));
        }
        i = j;
    }
    if let b'e' | b'E' = at(s, i) {
        i += 1;
        if let b'+' | b'-' = at(s, i) {
            i += 1;
        }
        let j = digits(s, i);
        if j == i {
            return Err(err(j, "invalid number"));
        }
        i = j;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_ok(s: &str) -> bool {
        serde_json::from_str::<&serde_json::value::RawValue>(s)
            .map(|r| r.get().starts_with('{'))
            .unwrap_or(false)
    }

    #[test]
    fn first_special_finds_every_kind_at_every_offset() {
        for len in 0..40 {
            assert_eq!(first_special(&vec![b'a'; len]), None);
            assert_eq!(first_special(&vec![0xC3; len]), None);
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1F, b'\n'] {
                    let mut v = vec![b'~'; len];
                    v[at] = special;
                    assert_eq!(first_special(&v), Some(at), "{len} {at} {special}");
                }
            }
        }
    }

    #[test]
    fn next_special_from_every_start() {
        // Two specials at any places, searched from every start: the masked last word must
        // neither miss a special after the start nor report one before it.
        // The fillers include bytes just above the specials: a borrow from a special turns
        // them into false hits unless handled.
        for (len, filler) in (0..30).flat_map(|l| {
            [b'x', b'#', b']', b'!', b' ', 0x20 + 1, 0x7F, 0x80, 0xFF].map(|f| (l, f))
        }) {
            for a in 0..=len {
                for b in a..=len {
                    let mut v = vec![filler; len];
                    if a < len {
                        v[a] = b'"';
                    }
                    if b < len {
                        v[b] = 0x1F;
                    }
                    for start in 0..=len {
                        let want = (start..len)
                            .find(|&k| v[k] == b'"' || v[k] < 0x20)
                            .unwrap_or(len);
                        assert_eq!(
                            next_special(&v, start),
                            want,
                            "{len} {a} {b} {start} {filler}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn next_special_on_random_bytes() {
        // Bytes drawn from the specials and their neighbours, searched from every start.
        let alphabet = [
            0u8, 1, 0x1F, 0x20, 0x21, b'"', b'#', b'\\', b']', b'[', b'a', 0x80, 0xFF,
        ];
        let mut g = Gen(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let len = g.below(40) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[g.below(alphabet.len() as u64) as usize])
                .collect();
            for start in 0..=len {
                let want = (start..len)
                    .find(|&k| v[k] == b'"' || v[k] == b'\\' || v[k] < 0x20)
                    .unwrap_or(len);
                assert_eq!(next_special(&v, start), want, "{v:?} {start}");
            }
        }
    }

    /// A small deterministic generator (xorshift), so that failures reproduce.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn string(&mut self) -> String {
            const PARTS: &[&str] = &[
                "#",
                "!",
                "]",
                "#]!#]!#]!",
                "a",
                "key",
                "é",
                "😀",
                "\"",
                "\\",
                "\n",
                "\t",
                "\u{1}",
                "\u{1f}",
                "/",
                " ",
                "0123456789abcdef",
                "\u{7f}",
                "\u{2028}",
            ];
            let n = self.below(12);
            (0..n)
                .map(|_| PARTS[self.below(PARTS.len() as u64) as usize])
                .collect()
        }
        fn value(&mut self, depth: u32) -> serde_json::Value {
            use serde_json::Value;
            match self.below(if depth > 5 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => Value::from(self.next() as i64 >> self.below(64)),
                3 => Value::from((self.next() as i64 as f64) / 1e3),
                4 => Value::String(self.string()),
                5 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
                _ => self.object(depth + 1),
            }
        }
        fn object(&mut self, depth: u32) -> serde_json::Value {
            let mut m = serde_json::Map::new();
            for _ in 0..self.below(6) {
                let k = self.string();
                m.insert(k, self.value(depth));
            }
            serde_json::Value::Object(m)
        }
    }

    #[test]
    fn agrees_with_serde_json_on_generated_texts() {
        // Valid objects (compact and pretty, so with line breaks), then random edits of them.
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let edits = b"{}[]:,\"\\-+.0eEtrufalsn \t\n\r\x01a#!";
        let mut invalid = 0;
        for round in 0..3000 {
            let v = g.object(0);
            let text = if round % 2 == 0 {
                serde_json::to_string(&v).unwrap()
            } else {
                serde_json::to_string_pretty(&v).unwrap()
            };
            assert_eq!(
                check_object(text.as_bytes()),
                Ok(text.contains('\n')),
                "{text:?}"
            );
            for _ in 0..8 {
                let mut b = text.clone().into_bytes();
                for _ in 0..=g.below(3) {
                    let at = g.below(b.len() as u64 + 1) as usize;
                    let c = edits[g.below(edits.len() as u64) as usize];
                    match g.below(3) {
                        0 if at < b.len() => {
                            b.remove(at);
                        }
                        1 if at < b.len() => b[at] = c,
                        _ => b.insert(at, c),
                    }
                }
                if let Ok(s) = std::str::from_utf8(&b) {
                    let ok = serde_ok(s);
                    invalid += usize::from(!ok);
                    assert_eq!(check_object(s.as_bytes()).is_ok(), ok, "{s:?}");
                }
            }
        }
        assert!(
            invalid > 5000,
            "the edits should make many invalid texts: {invalid}"
        );
    }

    #[test]
    fn line_breaks_are_reported() {
        assert_eq!(check_object(b"{\"a\":1}"), Ok(false));
        assert_eq!(check_object(b"{\n\"a\":1}"), Ok(true));
        assert_eq!(check_object(b"{\"a\":\"\\n\"}\r"), Ok(true));
    }

    #[test]
    fn agrees_with_serde_json_on_samples() {
        let samples = [
            "{}",
            " { } ",
            "{\"a\":1}",
            "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\n\\u00e9\"}",
            "{\"a\":-0.5e+10}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":true,}",
            "{,}",
            "{\"a\"}",
            "{\"a\":1 \"b\":2}",
            "[1]",
            "\"x\"",
            "1",
            "{} {}",
            "{\"a\":\"\\ud83d\\ude00\"}",
            "{\"a\":\"\\ud83d\"}",
            "{\"a\":\"\\ude00\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":[}",
            "{\"a\":]}",
            "{\"a\":{\"b\":[[[]]]}}",
            "{\"a\":1e400}",
            "{\"é\":\"ü\"}",
            "",
            "{",
            "{\"a\":1",
            "{\"a\":\"\\u12\"}",
            "{\"a\":-01}",
            "{\"a\":2E-3}",
            "{\"a\":[1,]}",
            "{\t\"a\"\n:\r1}",
            "{\"a\":\"\\u00\"}",
            "{\"a\":\"\\u",
            "{\"a\":\"\\",
            "{\"a\":\"abc",
            "{\"a\":\"abcdefghijklmnop",
            "{\"abcdefghijklmnop\":\"abcdefghijklmnop\"}",
            "{\"a\":[[],{},[{}],{\"b\":[]}]}",
            "{\"a\":[}]}",
            "{\"a\":{]}",
            "{\"a\":nul}",
            "{\"a\":nulll}",
            "{\"a\":-0}",
            "{\"a\":0.0e0}",
            "{\"a\":1E+}",
            "{\"a\":1.e5}",
            "{\"a\":\u{0}}",
            "{} \u{0}",
            "{}\n",
            " \r\n{}",
            "{\"\":\"#\"}",
            "{\"ab\":\"#\"}",
            "{\"a\":\"\\\\#\"}",
        ];
        for s in samples {
            assert_eq!(check_object(s.as_bytes()).is_ok(), serde_ok(s), "{s:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(127), "]".repeat(127));
        assert_eq!(check_object(deep.as_bytes()).is_ok(), serde_ok(&deep));
        let deeper = format!("{{\"a\":{}{}}}", "[".repeat(128), "]".repeat(128));
        assert_eq!(
            check_object(deeper.as_bytes()).unwrap_err().what,
            "nested more than 128 levels"
        );
    }

    #[test]
    fn agrees_with_serde_json_on_mutations() {
        // Every one-byte deletion and substitution of a rich sample.
        let base = r#"{"a":[1,-2.5e3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{"c":{}},"d":[]}"#;
        let alphabet = b"{}[]:,\"\\-+.0123456789eEtrufalsn \tu";
        let bytes = base.as_bytes();
        for i in 0..bytes.len() {
            let mut del = bytes.to_vec();
            del.remove(i);
            if let Ok(s) = std::str::from_utf8(&del) {
                assert_eq!(check_object(s.as_bytes()).is_ok(), serde_ok(s), "{s:?}");
            }
            for &c in alphabet {
                let mut sub = bytes.to_vec();
                sub[i] = c;
                if let Ok(s) = std::str::from_utf8(&sub) {
                    assert_eq!(check_object(s.as_bytes()).is_ok(), serde_ok(s), "{s:?}");
                }
            }
        }
    }
}
