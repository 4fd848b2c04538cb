//! A strict JSON reader for request bodies.
//!
//! The agent must read a body exactly as the exchange will, so it accepts only JSON that every
//! conforming parser reads the same way (RFC 8259), and refuses what parsers disagree on:
//! duplicate keys (first or last wins?), lone UTF-16 surrogates, raw control characters,
//! leading or trailing bytes, a byte-order mark, and nesting deeper than any trading body
//! needs. Numbers keep their text (`"0.10"` stays `0.10`, never a float), so nothing is
//! rounded on the way through.
//!
//! [`Json::write`] writes a value back in one of the two layouts bots send
//! ([`Layout::Compact`], as `JSON.stringify` and `json.dumps(separators=(',', ':'))` do, and
//! [`Layout::Spaced`], Python's default `json.dumps`), and in the same two with every
//! character beyond ASCII (and DEL) written as a `\u` escape, as `json.dumps` does by default
//! (`ensure_ascii`). A body is accepted only when one of them gives back its bytes exactly, so
//! the bytes signed are the re-serialized request.

use std::collections::HashSet;
use std::fmt;

/// How deep objects and arrays may nest.
pub const MAX_DEPTH: usize = 8;

/// How many keys of an object are compared one by one for a repeat; past them, a set.
const FEW_KEYS: usize = 16;

#[cfg(test)]
thread_local! {
    /// Test hook: the key comparisons (or set lookups) made for repeats on this thread.
    static KEYS_COMPARED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A JSON value, with objects as ordered `(key, value)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text, checked against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// The separators a body is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"a":1,"b":[1,2]}`
    Compact,
    /// `{"a": 1, "b": [1, 2]}`
    Spaced,
    /// `{"s":"\u5e01"}`: compact, with every character beyond ASCII (and DEL) escaped
    /// (lower-case hex, UTF-16 pairs beyond the BMP), as `json.dumps(separators=(',', ':'))`
    /// writes it.
    CompactAscii,
    /// `{"s": "\u5e01"}`: Python's default `json.dumps`.
    SpacedAscii,
}

impl Layout {
    fn ascii(self) -> bool {
        matches!(self, Layout::CompactAscii | Layout::SpacedAscii)
    }
}

/// Why a body is not strict JSON. Never echoes the body (it may hold anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct JsonError {
    pub what: &'static str,
    pub at: usize,
}

impl Json {
    /// Parse `text` strictly: one value, nothing before or after it.
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut r = Reader {
            s: text.as_bytes(),
            i: 0,
        };
        let v = r.value(0)?;
        if r.i != r.s.len() {
            return Err(r.err("bytes after the JSON value"));
        }
        Ok(v)
    }

    /// Parse `text` and accept it only if it is written exactly as one of the [`Layout`]s
    /// would write the value back.
    pub fn parse_canonical(text: &str) -> Result<(Json, Layout), JsonError> {
        let v = Json::parse(text)?;
        for layout in [Layout::Compact, Layout::Spaced] {
            if v.to_text(layout) == text {
                return Ok((v, layout));
            }
        }
        // The escaped layouts differ from those only where a string holds a character beyond
        // ASCII, which the text then holds as an escape.
        if text.is_ascii() && text.contains("\\u") {
            for layout in [Layout::CompactAscii, Layout::SpacedAscii] {
                if v.to_text(layout) == text {
                    return Ok((v, layout));
                }
            }
        }
        Err(JsonError {
            what: "JSON laid out other than compact or with one space after ',' and ':' \
                   (or with escapes that are not needed)",
            at: 0,
        })
    }

    /// The value as text in `layout`. Strings escape only `"`, `\` and control characters,
    /// and in the escaped layouts every character beyond ASCII.
    pub fn to_text(&self, layout: Layout) -> String {
        let mut out = String::new();
        self.write(&mut out, layout);
        out
    }

    pub fn write(&self, out: &mut String, layout: Layout) {
        let (comma, colon) = match layout {
            Layout::Compact | Layout::CompactAscii => (",", ":"),
            Layout::Spaced | Layout::SpacedAscii => (", ", ": "),
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(out, s, layout.ascii()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    item.write(out, layout);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    write_string(out, k, layout.ascii());
                    out.push_str(colon);
                    v.write(out, layout);
                }
                out.push('}');
            }
        }
    }

    /// A scalar as the text a `k=v` form would carry: strings as they are, numbers as
    /// written, booleans and null as their JSON words. `None` for arrays and objects.
    pub fn scalar_text(&self) -> Option<&str> {
        match self {
            Json::String(s) | Json::Number(s) => Some(s),
            Json::Bool(true) => Some("true"),
            Json::Bool(false) => Some("false"),
            Json::Null => Some("null"),
            Json::Array(_) | Json::Object(_) => None,
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text(Layout::Compact))
    }
}

fn write_string(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            // Python escapes everything outside ' '..='~' (DEL too).
            c if ascii && (c as u32) >= 0x7f => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { what, at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Spaces between tokens (tabs and newlines are refused: no bot needs them).
    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("a character that starts no JSON value")),
            None => Err(self.err("the end of the body where a value was expected")),
        }
    }

    fn word(&mut self, word: &'static str, v: Json) -> Result<Json, JsonError> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("a misspelt true, false or null"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("objects and arrays nested too deep"));
        }
        self.i += 1;
        self.spaces();
        let mut members: Vec<(String, Json)> = Vec::new();
        // Past a handful of keys, the keys seen are kept in a set: comparing each with every
        // earlier one cost time quadratic in their number (a 64 KiB body of five thousand keys
        // held an agent worker for a tenth of a second before any check could refuse it).
        let mut seen: Option<HashSet<String>> = None;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("an object key that is not a string"));
            }
            let at = self.i;
            let key = self.string()?;
            #[cfg(test)]
            KEYS_COMPARED.with(|n| n.set(n.get() + seen.as_ref().map_or(members.len(), |_| 1)));
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(key.clone()),
                None => members.iter().any(|(k, _)| *k == key),
            };
            if repeated {
                return Err(JsonError {
                    what: "a key that appears twice in one object",
                    at,
                });
            }
            self.spaces();
            self.expect(b':', "a missing ':' after an object key")?;
            self.spaces();
            let v = self.value(depth)?;
            members.push((key, v));
            if seen.is_none() && members.len() == FEW_KEYS {
                seen = Some(members.iter().map(|(k, _)| k.clone()).collect());
            }
            self.spaces();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.spaces();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err("a missing ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("objects and arrays nested too deep"));
        }
        self.i += 1;
        self.spaces();
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.spaces();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.spaces();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("a missing ',' or ']' in an array")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.i;
        let digits = |r: &mut Self| {
            let from = r.i;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.i += 1;
            }
            r.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err("a number without digits")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("a number with no digits after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("a number with no digits in its exponent"));
            }
        }
        // The grammar above admits only ASCII, so this slice is valid UTF-8.
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        // Parsers that read numbers as doubles (serde_json, JavaScript, most servers) refuse
        // or turn into infinity what a double cannot hold (`1e400`): no order needs one.
        if !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(JsonError {
                what: "a number too large for a double",
                at: start,
            });
        }
        Ok(Json::Number(text))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("a string that never ends"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.escape()?);
                }
                0..=0x1f => return Err(self.err("a raw control character in a string")),
                _ => {
                    // Copy one UTF-8 character; the input is a &str, so it is well formed.
                    let len = utf8_len(b);
                    let end = (self.i + len).min(self.s.len());
                    out.push_str(&String::from_utf8_lossy(&self.s[self.i..end]));
                    self.i = end;
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.err("a string that ends inside an escape"));
        };
        self.i += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xDC00..0xE000).contains(&hi) {
                    return Err(self.err("a lone low surrogate escape"));
                }
                if (0xD800..0xDC00).contains(&hi) {
                    if !self.s[self.i..].starts_with(b"\\u") {
                        return Err(self.err("a lone high surrogate escape"));
                    }
                    self.i += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.err("a high surrogate not followed by a low one"));
                    }
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(c).ok_or_else(|| self.err("an invalid surrogate pair"))?
                } else {
                    char::from_u32(hi).ok_or_else(|| self.err("an invalid \\u escape"))?
                }
            }
            _ => return Err(self.err("an unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("a \\u escape with fewer than 4 hex digits"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("a \\u escape with a non-hex digit"))?;
            v = v * 16 + n;
        }
        self.i += 4;
        Ok(v)
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_json_reads_what_every_parser_reads() {
        let v = Json::parse(r#"{"a":"x","b":[1,-2.50e+3,true,null],"c":{"d":"é\n"}}"#).unwrap();
        let Json::Object(m) = &v else { panic!() };
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1].1,
            Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-2.50e+3".into()),
                Json::Bool(true),
                Json::Null
            ])
        );
    }

    #[test]
    fn what_parsers_disagree_on_is_refused() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            "{\"a\":\"\u{1}\"}",
            "\u{feff}{}",
            " {}",
            "{} ",
            "{}x",
            "{\n\"a\":1}",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":+1}",
            "{\"a\":NaN}",
            "{'a':1}",
            "{\"a\":tru}",
            "",
            r#"{"a":"\x"}"#,
            "[[[[[[[[[1]]]]]]]]]",
            // Beyond a double: serde_json refuses it, JavaScript reads Infinity (red-team
            // round 8: a Kraken order passed the policy with it and failed at signing).
            "{\"a\":1e400}",
            "{\"a\":-1e309}",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn canonical_layouts_round_trip_and_others_do_not() {
        for ok in [
            r#"{"instId":"BTC-USDT","sz":"0.10","px":100,"l":[1,2]}"#,
            r#"{"instId": "BTC-USDT", "sz": "0.10", "l": [1, 2]}"#,
            r#"[{"a":"b"},{"c":"d"}]"#,
            "{}",
            r#"{"s":"a\"b\\c/é"}"#,
        ] {
            let (v, layout) = Json::parse_canonical(ok).unwrap();
            assert_eq!(v.to_text(layout), ok);
            assert!(matches!(layout, Layout::Compact | Layout::Spaced), "{ok}");
        }
        // Python's json.dumps escapes every character beyond ASCII by default: the same value,
        // read back from its escapes and written back in the same escaped layout.
        for (escaped, plain) in [
            (
                r#"{"s":"\u5e01USDT","n":1}"#,
                "{\"s\":\"\u{5e01}USDT\",\"n\":1}",
            ),
            (
                r#"{"s": "\u00e9", "l": [1, 2]}"#,
                "{\"s\": \"\u{e9}\", \"l\": [1, 2]}",
            ),
            (r#"["\ud83d\ude00"]"#, "[\"\u{1f600}\"]"),
            (r#"{"s":"\u007f\u00e9"}"#, "{\"s\":\"\u{7f}\u{e9}\"}"),
        ] {
            let (v, layout) = Json::parse_canonical(escaped).unwrap();
            assert_eq!(v.to_text(layout), escaped);
            assert!(matches!(layout, Layout::CompactAscii | Layout::SpacedAscii));
            assert_eq!(v, Json::parse_canonical(plain).unwrap().0);
        }
        for odd in [
            r#"{"a":"\/"}"#,
            r#"{"a":"\u0041"}"#,
            // Escapes are all or nothing, in lower-case hex as json.dumps writes them.
            r#"{"a":"\u5E01"}"#,
            "{\"a\":\"\\u5e01\",\"b\":\"\u{e9}\"}",
            r#"{"a":"\u0041\u5e01"}"#,
            r#"{"a" : 1}"#,
            r#"{"a":1, "b":2}"#,
            r#"{  "a":1}"#,
        ] {
            assert!(Json::parse(odd).is_ok(), "{odd}");
            assert!(Json::parse_canonical(odd).is_err(), "{odd} was canonical");
        }
    }

    /// A body of thousands of keys: each was compared with every earlier one, a tenth of a
    /// second of an agent worker for one 64 KiB request.
    #[test]
    fn repeated_keys_are_found_without_comparing_every_pair() {
        let keys: Vec<String> = (0..5000).map(|i| format!("\"{i:05}\":1")).collect();
        let body = format!("{{{}}}", keys.join(","));
        super::KEYS_COMPARED.with(|n| n.set(0));
        assert!(Json::parse(&body).is_ok());
        let compared = super::KEYS_COMPARED.with(|n| n.get());
        assert!(
            compared <= 2 * keys.len(),
            "{compared} comparisons for {} keys",
            keys.len()
        );
        // A repeat is still found, among few keys and among many, where it is.
        for n in [3, 16, 17, 5000] {
            let mut keys = keys[..n].to_vec();
            keys.push(keys[n / 2].clone());
            let body = format!("{{{}}}", keys.join(","));
            let e = Json::parse(&body).unwrap_err();
            assert_eq!(e.what, "a key that appears twice in one object", "{n}");
            assert_eq!(e.at, body.rfind('"').unwrap() - 6, "{n}");
        }
    }
}
