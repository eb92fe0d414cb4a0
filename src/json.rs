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

const MAX_DEPTH: usize = 128;

/// Checks that `s` is one JSON object, with nothing but whitespace around it. Returns whether
/// the text has a line break (which valid JSON can only have as whitespace between tokens).
pub fn check_object(s: &[u8]) -> Result<bool, Invalid> {
    let mut p = Parser {
        s,
        i: 0,
        newline: false,
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err("expected a JSON object ({...})"));
    }
    p.value()?;
    p.ws();
    if p.i != s.len() {
        return Err(p.err("trailing characters after the object"));
    }
    Ok(p.newline)
}

/// The position of the first byte of `s` that a JSON string cannot hold as it is: `"`, `\`
/// or a control character. Eight bytes at a time.
#[inline]
pub fn first_special(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let v = u64::from_le_bytes(w);
        let quote = v ^ (LO * u64::from(b'"'));
        let slash = v ^ (LO * u64::from(b'\\'));
        let hit = (quote.wrapping_sub(LO) & !quote)
            | (slash.wrapping_sub(LO) & !slash)
            | (v.wrapping_sub(LO * 0x20) & !v);
        if hit & HI != 0 {
            break;
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|n| i + n)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    newline: bool,
}

impl Parser<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> Invalid {
        Invalid {
            offset: self.i,
            what,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.newline = true,
                _ => return,
            }
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), Invalid> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// One value of any kind; containers are walked with an explicit stack.
    fn value(&mut self) -> Result<(), Invalid> {
        // Open containers: true for an object, false for an array.
        let mut stack = [false; MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            // At the start of a value.
            self.ws();
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    let obj = self.peek() == Some(b'{');
                    if depth == MAX_DEPTH {
                        return Err(self.err("nested more than 128 levels"));
                    }
                    stack[depth] = obj;
                    depth += 1;
                    self.i += 1;
                    self.ws();
                    let close = if obj { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if obj {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.err("expected a value")),
            }
            // After a value: close containers or go on with the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let obj = stack[depth - 1];
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if obj {
                            self.ws();
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if obj => {
                        self.i += 1;
                        depth -= 1;
                    }
                    Some(b']') if !obj => {
                        self.i += 1;
                        depth -= 1;
                    }
                    _ => return Err(self.err("expected ',' or the end of the container")),
                }
            }
        }
    }

    /// `"key" :` inside an object.
    fn key(&mut self) -> Result<(), Invalid> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string key"));
        }
        self.string()?;
        self.ws();
        self.expect(b':', "expected ':' after a key")
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Invalid> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn string(&mut self) -> Result<(), Invalid> {
        self.i += 1; // the opening quote
        loop {
            // Skip the plain run quickly.
            let n =
                first_special(&self.s[self.i..]).ok_or_else(|| self.err("unterminated string"))?;
            self.i += n;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            self.unicode_escape()?;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ => return Err(self.err("control character in a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<(), Invalid> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.err("invalid \\u escape"));
        }
        self.i += 4;
        Ok(())
    }

    /// After `\u`: four hex digits. Surrogates are not paired up: serde_json does not check
    /// them either when it validates, and the server's decoders accept them.
    fn unicode_escape(&mut self) -> Result<(), Invalid> {
        self.hex4().map(|_| ())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), Invalid> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }
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
