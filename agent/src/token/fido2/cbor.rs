//! The CBOR subset CTAP2 speaks (RFC 8949; CTAP 2.1 §8 "Message Encoding"): unsigned and
//! negative integers, byte and text strings, arrays, maps, booleans and null, all with
//! definite lengths.
//!
//! Encoding is CTAP2 canonical by construction: integers and lengths in their shortest form,
//! and map keys sorted by major type, then by the length of their encoding, then bytewise
//! (CTAP 2.1 §8 "CTAP2 canonical CBOR encoding form"), so no caller can get the order wrong.
//!
//! Decoding reads what an authenticator may send and refuses the rest with an error, never a
//! panic: no floats, tags or indefinite lengths (CTAP forbids them), nesting at most
//! [`MAX_DEPTH`] deep, no length beyond the input, no duplicate map keys.

use std::fmt;

/// Deeper than any CTAP message (a COSE key inside an extension inside a response is 3).
pub const MAX_DEPTH: usize = 16;

/// A CBOR data item.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// Entries in the order given; [`encode`] sorts them canonically.
    Map(Vec<(Value, Value)>),
    Bool(bool),
    Null,
}

// Byte strings may hold key material in transit (encrypted, but still): show only lengths.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(n) => write!(f, "{n}"),
            Value::Negative(n) => write!(f, "-{}", u128::from(*n) + 1),
            Value::Bytes(b) => write!(f, "h'<{} bytes>'", b.len()),
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => write!(f, "null"),
        }
    }
}

impl Value {
    /// An integer key or value (CTAP uses small signed integers: map keys, COSE labels).
    pub fn int(n: i64) -> Value {
        if n >= 0 {
            Value::Unsigned(n.unsigned_abs())
        } else {
            Value::Negative(n.unsigned_abs() - 1)
        }
    }

    pub fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    pub fn bytes(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }

    /// A map with integer keys, the shape of every CTAP command and response.
    pub fn int_map(entries: Vec<(i64, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::int(k), v))
                .collect(),
        )
    }

    /// A map with text keys (options, extensions, entities).
    pub fn text_map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::text(k), v))
                .collect(),
        )
    }

    /// This value as a signed integer, if it is one that fits.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Unsigned(n) => i64::try_from(*n).ok(),
            Value::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under integer key `key`, for a map.
    pub fn get(&self, key: i64) -> Option<&Value> {
        self.get_key(&Value::int(key))
    }

    /// The value under text key `key`, for a map.
    pub fn get_text(&self, key: &str) -> Option<&Value> {
        self.get_key(&Value::text(key))
    }

    fn get_key(&self, key: &Value) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }
}

/// What is wrong with a CBOR input. Says where, never what the bytes were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("CBOR ends early (at byte {0})")]
    Truncated(usize),
    #[error("unsupported CBOR item (initial byte {byte:#04x} at byte {at})")]
    Unsupported { byte: u8, at: usize },
    #[error("CBOR nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("CBOR text is not UTF-8 (at byte {0})")]
    BadText(usize),
    #[error("CBOR map repeats a key (at byte {0})")]
    DuplicateKey(usize),
    #[error("{0} bytes after the CBOR item")]
    Trailing(usize),
}

/// Encode `value` in CTAP2 canonical form.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Unsigned(n) => head(0, *n, out),
        Value::Negative(n) => head(1, *n, out),
        Value::Bytes(b) => {
            head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            head(3, t.len() as u64, out);
            out.extend_from_slice(t.as_bytes());
        }
        Value::Array(items) => {
            head(4, items.len() as u64, out);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                entries.iter().map(|(k, v)| (encode(k), v)).collect();
            // Canonical order: lower major type first, then shorter encoding, then bytewise.
            encoded.sort_by_key(|(key, _)| (key.first().map(|b| b >> 5), key.len(), key.clone()));
            head(5, encoded.len() as u64, out);
            for (key, v) in encoded {
                out.extend_from_slice(&key);
                encode_into(v, out);
            }
        }
        Value::Bool(false) => out.push(0xF4),
        Value::Bool(true) => out.push(0xF5),
        Value::Null => out.push(0xF6),
    }
}

/// A major type and its argument, in the shortest form.
fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xFF => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xFFFF => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Decode exactly one item filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    let (value, used) = decode_prefix(input)?;
    match input.len() - used {
        0 => Ok(value),
        n => Err(CborError::Trailing(n)),
    }
}

/// Decode one item from the start of `input`; returns it and how many bytes it took (the
/// authenticator data packs a COSE key and an extensions map back to back).
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize), CborError> {
    let mut r = Reader { input, pos: 0 };
    let value = r.item(0)?;
    Ok((value, r.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or(CborError::Truncated(self.input.len()))?;
        let out = &self.input[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The argument of an item whose initial byte had `info` as its low 5 bits.
    fn argument(&mut self, info: u8, byte: u8, at: usize) -> Result<u64, CborError> {
        let be = |b: &[u8]| b.iter().fold(0u64, |n, &x| (n << 8) | u64::from(x));
        match info {
            0..=23 => Ok(u64::from(info)),
            24 => self.take(1).map(be),
            25 => self.take(2).map(be),
            26 => self.take(4).map(be),
            27 => self.take(8).map(be),
            // 28..30 reserved, 31 indefinite length: CTAP never uses them.
            _ => Err(CborError::Unsupported { byte, at }),
        }
    }

    /// A length that must fit in what is left (so a forged length allocates nothing).
    fn length(&mut self, n: u64, unit: usize) -> Result<usize, CborError> {
        let left = self.input.len() - self.pos;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(unit) <= left)
            .ok_or(CborError::Truncated(self.input.len()))
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let at = self.pos;
        let byte = *self.take(1)?.first().ok_or(CborError::Truncated(at))?;
        let (major, info) = (byte >> 5, byte & 0x1F);
        if major == 7 {
            return match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 => Ok(Value::Null),
                // undefined, other simple values, floats, break
                _ => Err(CborError::Unsupported { byte, at }),
            };
        }
        let n = self.argument(info, byte, at)?;
        match major {
            0 => Ok(Value::Unsigned(n)),
            1 => Ok(Value::Negative(n)),
            2 => {
                let len = self.length(n, 1)?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            3 => {
                let len = self.length(n, 1)?;
                let raw = self.take(len)?;
                let text = std::str::from_utf8(raw).map_err(|_| CborError::BadText(at))?;
                Ok(Value::Text(text.to_owned()))
            }
            4 => {
                // Every item takes at least one byte.
                let len = self.length(n, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let len = self.length(n, 2)?;
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(len);
                for _ in 0..len {
                    let key_at = self.pos;
                    let key = self.item(depth + 1)?;
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(CborError::DuplicateKey(key_at));
                    }
                    let value = self.item(depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
            // Major type 6: tags.
            _ => Err(CborError::Unsupported { byte, at }),
        }
    }
}

#[cfg(test)]
#[path = "cbor_tests.rs"]
mod tests;
