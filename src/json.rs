//! A validator for the one JSON text on the caller's hot path: the entry's context, which must
//! be a JSON object (RFC 8259). It checks without building anything, a few instructions a
//! byte (less than one on the AVX2 path), where a general parser spent about 40% of
//! `rarch_log`. It accepts exactly what
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
/// No allocation. A compact text (the usual context) is checked 64 bytes at a time with AVX2
/// where the CPU has it (`avx2::compact`); anything else, and every invalid text, by
/// [`check_scalar`], which says where and why.
#[link_section = ".text.hot.rarch_log"]
pub fn check_object(s: &[u8]) -> Result<bool, Invalid> {
    #[cfg(target_arch = "x86_64")]
    if let Some(nl) = avx2::check(s) {
        return Ok(nl);
    }
    check_scalar(s)
}

/// [`check_object`] one token at a time: the reference, the fallback of the fast path, and
/// the one that reports where and why a text is invalid. One pass: containers are tracked in
/// a 128-bit stack (a set bit is an object), strings are scanned 8 bytes at a time. Not
/// inlined: its 3.6 KiB of code would sit between the hot path's functions.
#[inline(never)]
fn check_scalar(s: &[u8]) -> Result<bool, Invalid> {
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
/// last eight bytes of `s`, with the bytes already seen masked off. (SSE2, 16 bytes at a
/// time, took fewer instructions but made `rarch_log` 20-30% slower: see
/// docs/performance-history.md, "What changed, and by how much".)
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

fn number(s: &[u8], i: usize) -> Result<usize, Invalid> {
    number_end(s, i).map_err(|at| err(at, "invalid number"))
}

/// The end of the number (RFC 8259's grammar) that starts at `i`, or where it goes wrong.
/// Inlined into both validators (the fast one only needs the end).
#[inline(always)]
fn number_end(s: &[u8], mut i: usize) -> Result<usize, usize> {
    if at(s, i) == b'-' {
        i += 1;
    }
    match at(s, i) {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(s, i + 1),
        _ => return Err(i),
    }
    if at(s, i) == b'.' {
        let j = digits(s, i + 1);
        if j == i + 1 {
            return Err(j);
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
            return Err(j);
        }
        i = j;
    }
    Ok(i)
}

/// The fast path of [`check_object`] for compact texts (no whitespace outside strings, no
/// backslash, no control character: what a program that serialises its context writes).
///
/// simdjson's first stage classifies each 64-byte block with AVX2 into bit masks (quotes,
/// structural characters, what lies inside strings). Here the grammar is then checked on the
/// masks too, a block at a time, instead of token by token: in a compact text every token is
/// next to the one before it, so "after `:` comes a value" is `(colons << 1) & !value_starts
/// == 0`. Only what needs a stack goes one by one: the brackets (matching, and which commas
/// are an object's), and the numbers and literals (their own grammar).
///
/// It answers only for texts it can vouch for: `true` for a valid object; `false` for
/// anything else, including valid texts it does not handle (whitespace between tokens, a
/// backslash, nesting deeper than 64, a CPU without AVX2 or PCLMULQDQ), which
/// [`check_scalar`] then decides and explains.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::number_end;
    use core::arch::x86_64::*;

    /// Some(false) (no line break: a compact text has none) or None (ask the scalar check).
    #[link_section = ".text.hot.rarch_log"]
    pub(super) fn check(s: &[u8]) -> Option<bool> {
        if !usable() {
            return None;
        }
        // SAFETY: the CPU has AVX2, PCLMULQDQ, BMI1 and BMI2 (`usable`), the only
        // requirements of `compact`.
        unsafe { compact(s) }.then_some(false)
    }

    /// Whether the CPU has what `compact` is compiled for: asked once, then one load.
    #[inline]
    fn usable() -> bool {
        use std::sync::atomic::{AtomicU8, Ordering};
        static STATE: AtomicU8 = AtomicU8::new(0);
        #[cold]
        fn detect() -> bool {
            let ok = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("pclmulqdq")
                && std::is_x86_feature_detected!("bmi1")
                && std::is_x86_feature_detected!("bmi2");
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
        match STATE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => detect(),
        }
    }

    /// One block's bytes classified: bit i is byte i.
    struct Raw {
        quote: u64,
        /// `{ } [ ] : ,` (and the control characters 0x0C and 0x1A, see `classify32`).
        structural: u64,
        space: u64,
        /// Bytes below 0x20, and backslashes: what the fast path leaves to the scalar check.
        control: u64,
        /// Bits 6, 5 and 1 of each byte, which tell the structural characters apart.
        b6: u64,
        b5: u64,
        b1: u64,
    }

    impl Raw {
        fn shifted(self, by: u32) -> Raw {
            Raw {
                quote: self.quote >> by,
                structural: self.structural >> by,
                space: self.space >> by,
                control: self.control >> by,
                b6: self.b6 >> by,
                b5: self.b5 >> by,
                b1: self.b1 >> by,
            }
        }
    }

    /// The vectors `classify32` compares bytes with: as bytes in [`CONSTS`] (`T` = `[u8; 32]`),
    /// loaded into registers by [`consts`] (`T` = `__m256i`).
    #[repr(C, align(32))]
    #[derive(Clone, Copy)]
    struct Consts<T> {
        /// The structural characters with bit 5 set, by low nibble: ':' 0x3A, '{' 0x7B (and
        /// '[' 0x5B), ',' 0x2C, '}' 0x7D (and ']' 0x5D). The control characters 0x1A and
        /// 0x0C match too; any control character sends the text to the scalar check.
        table: T,
        x20: T,
        quote: T,
        space: T,
        x1f: T,
        backslash: T,
    }

    type K = Consts<__m256i>;

    const fn lanes(half: [u8; 16]) -> [u8; 32] {
        let mut v = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            v[i] = half[i % 16];
            i += 1;
        }
        v
    }

    /// In the hot code's section, beside the code that reads it, and read with volatile
    /// loads so that the compiler does not copy the values into a constant pool of
    /// `.rodata`: there they were two more pages for a call after a pause (the table and the
    /// bytes broadcast, in two places).
    #[link_section = ".text.hot.rarch_log.json"]
    static CONSTS: Consts<[u8; 32]> = Consts {
        table: lanes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3A, 0x7B, 0x2C, 0x7D, 0, 0]),
        x20: [0x20; 32],
        quote: [b'"'; 32],
        space: [b' '; 32],
        x1f: [0x1F; 32],
        backslash: [b'\\'; 32],
    };

    /// [`CONSTS`] loaded, once per text.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn consts() -> K {
        let c = &CONSTS;
        // SAFETY: each field is 32 bytes at a 32-byte aligned address (`repr(C, align(32))`,
        // fields of 32 bytes).
        let ld = |v: &[u8; 32]| unsafe { std::ptr::read_volatile(v.as_ptr().cast::<__m256i>()) };
        K {
            table: ld(&c.table),
            x20: ld(&c.x20),
            quote: ld(&c.quote),
            space: ld(&c.space),
            x1f: ld(&c.x1f),
            backslash: ld(&c.backslash),
        }
    }

    /// Classifies 32 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn classify32(v: __m256i, k: &K) -> [u32; 7] {
        let lower = _mm256_or_si256(v, k.x20);
        let structural = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(k.table, lower), lower);
        let quote = _mm256_cmpeq_epi8(v, k.quote);
        let space = _mm256_cmpeq_epi8(v, k.space);
        let control = _mm256_or_si256(
            _mm256_cmpeq_epi8(_mm256_min_epu8(v, k.x1f), v),
            _mm256_cmpeq_epi8(v, k.backslash),
        );
        let mask = |m: __m256i| _mm256_movemask_epi8(m) as u32;
        [
            mask(quote),
            mask(structural),
            mask(space),
            mask(control),
            // Bit k of each byte moved up to bit 7 (a 16-bit shift moves no bit across the
            // high bit of either byte for k >= 1).
            mask(_mm256_slli_epi16::<1>(v)),
            mask(_mm256_slli_epi16::<2>(v)),
            mask(_mm256_slli_epi16::<6>(v)),
        ]
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn classify(block: &[u8; 64], k: &K) -> Raw {
        // SAFETY: both loads read 32 bytes inside the 64 of `block` (unaligned loads).
        let (lo, hi) = unsafe {
            let p = block.as_ptr();
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        let a = classify32(lo, k);
        let b = classify32(hi, k);
        let w = |k: usize| u64::from(a[k]) | (u64::from(b[k]) << 32);
        Raw {
            quote: w(0),
            structural: w(1),
            space: w(2),
            control: w(3),
            b6: w(4),
            b5: w(5),
            b1: w(6),
        }
    }

    /// Bit i set when bits 0..=i of `x` hold an odd number of ones: a carry-less multiply
    /// by all ones.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn prefix_xor(x: u64) -> u64 {
        let product = _mm_clmulepi64_si128::<0>(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1));
        _mm_cvtsi128_si64(product) as u64
    }

    /// Masks of the previous block, for "the byte before" at bit 0.
    #[derive(Default)]
    struct Before {
        open_brace: u64,
        open_bracket: u64,
        colon: u64,
        comma_array: u64,
        comma_object: u64,
        close_quote: u64,
        close: u64,
        scalar: u64,
        key_end: u64,
    }

    /// Whether the first `run` (1 to 8) bytes of `x` (little-endian) are an integer without a
    /// sign or a leading zero: the usual number, checked at once (anything else is left to
    /// `number_end`). Each byte minus '0' must be below 10: adding 0x76 sets its high bit
    /// from 10 up, and a byte from 0x80 up has it already (a carry out of a byte comes only
    /// from such a byte, so it cannot hide one).
    #[inline]
    pub(super) fn short_integer(x: u64, run: usize) -> bool {
        let keep = u64::MAX >> (64 - 8 * run as u32);
        let t = (x ^ 0x3030_3030_3030_3030) & keep;
        let high = (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080 & keep;
        high == 0 && (run == 1 || x as u8 != b'0')
    }

    #[target_feature(enable = "avx2,pclmulqdq,bmi1,bmi2")]
    #[link_section = ".text.hot.rarch_log"]
    fn compact(s: &[u8]) -> bool {
        let n = s.len();
        if s.first() != Some(&b'{') {
            return false;
        }
        let mut in_string = 0u64; // all ones if the previous block ended inside a string
        let mut key_carry = 0u64; // the carry out of the previous block's key addition
        let mut before = Before::default();
        // The open containers, innermost in bit 0 (set: an object).
        let mut stack = 0u64;
        let mut depth = 0u32;
        // All ones if the innermost container at the end of the previous block is an object.
        let mut object_carry = 0u64;
        let mut base = 0;
        let k = consts();
        // A text shorter than a block, padded with spaces (made only for such a text).
        let mut padded: [u8; 64];
        while base < n {
            let rest = n - base;
            // The block and how many of its first bytes were seen already; one call of
            // `classify` for the three cases (each call is inlined: a copy of its code).
            let (block, seen, valid) = match s[base..].first_chunk::<64>() {
                Some(block) => (block, 0, !0u64),
                None => {
                    let valid = (1u64 << rest) - 1;
                    match s.last_chunk::<64>() {
                        // The last 64 bytes, with those already seen shifted out.
                        Some(block) => (block, 64 - rest as u32, valid),
                        None => {
                            padded = [b' '; 64];
                            crate::mem::copy(&mut padded[..rest], &s[base..]);
                            (&padded, 0, valid)
                        }
                    }
                }
            };
            let raw = classify(block, &k).shifted(seen);
            // A control character or a backslash anywhere (line breaks and tabs included), or
            // a space outside strings: not compact, or not valid. The scalar check decides.
            let inside = prefix_xor(raw.quote) ^ in_string;
            in_string = ((inside as i64) >> 63) as u64;
            let outside = !inside & valid;
            if (raw.control & valid) | (raw.space & outside) != 0 {
                return false;
            }
            let open_quote = raw.quote & inside;
            let close_quote = raw.quote & !inside;
            let st = raw.structural & outside;
            let brackets = st & raw.b6; // { } [ ]
            let open_brace = brackets & raw.b5 & raw.b1;
            let open_bracket = brackets & !raw.b5 & raw.b1;
            let close = brackets & !raw.b1;
            let colon = st & !raw.b6 & raw.b1;
            let comma = st & !raw.b6 & !raw.b1;
            let scalar = outside & !(st | raw.quote);

            // The brackets, one by one: they must match, and the text must end with the one
            // that closes the first. Where the innermost container changes between object
            // and array, a toggle bit: the commas between toggles belong to one kind.
            let mut toggles = 0u64;
            let mut rest_brackets = brackets;
            while rest_brackets != 0 {
                let bit = rest_brackets & rest_brackets.wrapping_neg();
                rest_brackets ^= bit;
                let was_object = stack & 1;
                if close & bit == 0 {
                    if depth == 64 {
                        return false;
                    }
                    stack = (stack << 1) | u64::from(open_brace & bit != 0);
                    depth += 1;
                } else {
                    if depth == 0 || (raw.b5 & bit != 0) != (was_object != 0) {
                        return false;
                    }
                    stack >>= 1;
                    depth -= 1;
                    if depth == 0 && base + bit.trailing_zeros() as usize != n - 1 {
                        return false;
                    }
                }
                if stack & 1 != was_object {
                    toggles |= bit;
                }
            }
            let in_object = prefix_xor(toggles) ^ object_carry;
            object_carry = 0u64.wrapping_sub(stack & 1);
            let comma_object = comma & in_object;
            let comma_array = comma & !comma_object;

            // Keys: strings opened right after `{` or an object's `,`. Adding the opening
            // quote's bit to the run of `inside` bits it starts carries to the bit after
            // the run, which is the closing quote.
            let after = |x: u64, prev: u64| (x << 1) | (prev >> 63);
            let key_open = open_quote
                & (after(open_brace, before.open_brace) | after(comma_object, before.comma_object));
            let (sum, c1) = inside.overflowing_add(key_open);
            let (sum, c2) = sum.overflowing_add(key_carry);
            key_carry = u64::from(c1 | c2);
            let key_end = sum & close_quote;

            let scalar_start = scalar & !after(scalar, before.scalar);
            let value_start = open_quote | open_brace | open_bracket | scalar_start;
            // What may follow what: each line is "the bytes after X that are not allowed".
            let bad = (after(open_brace, before.open_brace) & !(key_open | close))
                | (after(open_bracket, before.open_bracket) & !(value_start | close))
                | (after(colon, before.colon) & !value_start)
                | (after(comma_array, before.comma_array) & !value_start)
                | (after(comma_object, before.comma_object) & !key_open)
                | (after(close_quote, before.close_quote) & !(colon | comma | close))
                | (after(close, before.close) & !(comma | close))
                | (after(scalar, before.scalar) & !(scalar | comma | close))
                // A colon exactly after each key, and nowhere else.
                | (colon ^ after(key_end, before.key_end));
            if bad & valid != 0 {
                return false;
            }

            // Numbers and literals, each by its own grammar, ending where the run ends.
            let mut starts = scalar_start;
            while starts != 0 {
                let pos = starts.trailing_zeros();
                let i = base + pos as usize;
                starts &= starts - 1;
                // The run's length up to the first byte that is not a scalar's.
                let run = (!(scalar >> pos)).trailing_zeros() as usize;
                if pos as usize + run < 64 && run <= 8 {
                    if let Some(eight) = s.get(i..i + 8).and_then(|b| b.first_chunk::<8>()) {
                        if short_integer(u64::from_le_bytes(*eight), run) {
                            if !matches!(s.get(i + run), Some(b',' | b'}' | b']')) {
                                return false;
                            }
                            continue;
                        }
                    }
                }
                let end = match s[i] {
                    b'-' | b'0'..=b'9' => match number_end(s, i) {
                        Ok(end) => end,
                        Err(_) => return false,
                    },
                    b => {
                        let word: &[u8] = match b {
                            b't' => b"true",
                            b'f' => b"false",
                            b'n' => b"null",
                            _ => return false,
                        };
                        if s.get(i..i + word.len()) != Some(word) {
                            return false;
                        }
                        i + word.len()
                    }
                };
                if !matches!(s.get(end), Some(b',' | b'}' | b']')) {
                    return false;
                }
            }

            before = Before {
                open_brace,
                open_bracket,
                colon,
                comma_array,
                comma_object,
                close_quote,
                close,
                scalar,
                key_end,
            };
            base += 64;
        }
        depth == 0 && in_string == 0
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
        let avx2 = avx2_here();
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
            #[cfg(target_arch = "x86_64")]
            if avx2 && compact(text.as_bytes()) {
                assert!(fast_agrees(text.as_bytes()).is_some(), "declined {text:?}");
            }
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
                    #[cfg(target_arch = "x86_64")]
                    if avx2 {
                        fast_agrees(s.as_bytes());
                    }
                }
            }
        }
        assert!(
            invalid > 5000,
            "the edits should make many invalid texts: {invalid}"
        );
    }

    /// The fast path either agrees with the scalar validator or declines (None).
    #[cfg(target_arch = "x86_64")]
    fn fast_agrees(s: &[u8]) -> Option<bool> {
        let fast = avx2::check(s);
        if let Some(nl) = fast {
            assert_eq!(
                check_scalar(s),
                Ok(nl),
                "fast path accepted {:?}",
                String::from_utf8_lossy(s)
            );
        }
        fast
    }

    /// What the fast path must take when it is valid: no backslash, no control character,
    /// no space outside strings.
    fn compact(s: &[u8]) -> bool {
        let mut inside = false;
        s.iter().all(|&b| {
            inside ^= b == b'"';
            b != b'\\' && b >= 0x20 && (inside || b != b' ')
        })
    }

    fn avx2_here() -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return true;
        }
        eprintln!("no AVX2 here: only the scalar validator runs");
        false
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn short_integers_are_exactly_the_unsigned_ones_without_a_leading_zero() {
        // Every run of 1 to 8 bytes over an alphabet around the digits, with bytes after it
        // that must not matter: the fast answer is RFC 8259's for an unsigned integer.
        let alphabet = [
            b'0', b'1', b'9', b'/', b':', b'-', b'.', b'e', 0x80, 0xB9, 0xFF,
        ];
        let mut g = Gen(7);
        for run in 1..=8usize {
            for _ in 0..20_000 {
                let mut b = [0u8; 8];
                for x in b.iter_mut() {
                    *x = alphabet[g.below(alphabet.len() as u64) as usize];
                }
                let text = &b[..run];
                let want = text.iter().all(u8::is_ascii_digit) && (run == 1 || text[0] != b'0');
                assert_eq!(
                    avx2::short_integer(u64::from_le_bytes(b), run),
                    want,
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn fast_path_agrees_and_takes_what_it_should() {
        if !avx2_here() {
            return;
        }
        // The benchmark's typical context, and texts around every block boundary.
        let typical = br#"{"order":{"id":829145,"items":3,"total":{"amount":129.90,"currency":"EUR"}},"http":{"method":"POST","path":"/api/v2/checkout","status":201},"client":{"ip":"10.1.2.3","app":"web-74"},"flags":["a","b"]}"#;
        assert_eq!(fast_agrees(typical), Some(false));
        for pad in 0..200 {
            let deep = pad % 63; // with the root and the innermost array: up to 64 deep
            for v in [
                format!("{{\"k\":\"{}\"}}", "x ".repeat(pad)),
                format!("{{\"k\":{}}}", "1".repeat(pad + 1)),
                format!(
                    "{{\"k\":{}[true,false,null]{}}}",
                    "[".repeat(deep),
                    "]".repeat(deep)
                ),
                format!("{{\"k\":[{}0]}}", "0,".repeat(pad)),
                format!(
                    "{{\"k\":[{}1]}}",
                    "10,-7,12345678,0.5,123456789,".repeat(pad / 8)
                ),
                format!("{{\"{}\":{{}}}}", "é".repeat(pad)),
                format!(
                    "{{{}\"z\":-1.5e-3}}",
                    "\"a\":{\"b\":[],\"c\":{}},".repeat(pad / 8)
                ),
            ] {
                assert_eq!(fast_agrees(v.as_bytes()), Some(false), "{v:?}");
            }
            // Declined: valid but a backslash, a line break or a space between tokens.
            for v in [
                format!("{{\"k\":\"{}\\n\"}}", "x".repeat(pad)),
                format!("{{\"k\":\"{}\"}}\n", "x".repeat(pad)),
                format!("{{\"k\": \"{}\"}}", "x".repeat(pad)),
            ] {
                assert_eq!(fast_agrees(v.as_bytes()), None, "{v:?}");
                assert!(check_object(v.as_bytes()).is_ok(), "{v:?}");
            }
            // Cut anywhere: never valid.
            let v = format!("{{\"k\":\"{}\",\"j\":[1,{{\"a\":null}}]}}", "x".repeat(pad));
            for cut in 0..v.len() {
                assert_eq!(fast_agrees(&v.as_bytes()[..cut]), None, "{cut} {v:?}");
            }
        }
        // Every one-byte deletion, substitution and insertion of a compact sample, and of
        // one across a block boundary.
        let short = r#"{"a":[1,-2.5e3,true,false,null,"x é",{}],"b":{"c":{},"d":[[]]},"e":"0123456789abcdef"}"#;
        let long = format!(
            r#"{{"pad":"{}","a":{{"b":[0,{{"c":"d"}}],"e":1}}}}"#,
            "p".repeat(40)
        );
        let alphabet = b"{}[]:,\"\\-+.0123456789eEtrufalsn \t\n\r\x01\x0c\x1a\x00Z";
        let mut taken = 0;
        for base in [short, long.as_str()] {
            let bytes = base.as_bytes();
            for i in 0..=bytes.len() {
                let mut edits = vec![];
                if i < bytes.len() {
                    let mut del = bytes.to_vec();
                    del.remove(i);
                    edits.push(del);
                }
                for &c in alphabet {
                    if i < bytes.len() {
                        let mut sub = bytes.to_vec();
                        sub[i] = c;
                        edits.push(sub);
                    }
                    let mut ins = bytes.to_vec();
                    ins.insert(i, c);
                    edits.push(ins);
                }
                for e in edits {
                    if let Ok(s) = std::str::from_utf8(&e) {
                        let ok = serde_ok(s);
                        assert_eq!(check_object(s.as_bytes()).is_ok(), ok, "{s:?}");
                        let fast = fast_agrees(s.as_bytes());
                        taken += usize::from(fast.is_some());
                        if ok && compact(s.as_bytes()) {
                            assert!(fast.is_some(), "valid and compact, declined: {s:?}");
                        }
                    }
                }
            }
        }
        assert!(taken > 1000, "{taken}");
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
