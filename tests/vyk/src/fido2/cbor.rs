//! The CBOR subset CTAP2 uses (RFC 8949, CTAP 2.1 §8 "Message Encoding"): unsigned and
//! negative integers, byte and text strings, arrays, maps, booleans and null, all with
//! definite lengths. Answers are encoded in CTAP2 canonical form (shortest lengths, map keys
//! sorted by their encoding, shorter first). Requests are read leniently about key order but
//! strictly about everything else: indefinite lengths, tags, floats, duplicate keys, trailing
//! bytes and nesting deeper than [`MAX_DEPTH`] are refused.

use std::fmt;

/// Deepest nesting accepted in a request (CTAP maps nest at most four levels).
pub const MAX_DEPTH: usize = 8;

/// One CBOR data item.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Major types 0 and 1: -2^64 ..= 2^64-1 fits in an i128.
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// Pairs in the order they were read (or built); encoding sorts them.
    Map(Vec<(Value, Value)>),
    Bool(bool),
    Null,
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bytes(b) => write!(f, "h'{}'", hex(b)),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Array(items) => f.debug_list().entries(items).finish(),
            Value::Map(pairs) => f
                .debug_map()
                .entries(pairs.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => write!(f, "null"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a request is not CBOR this decoder accepts (CTAP answers `CTAP2_ERR_INVALID_CBOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    TrailingBytes,
    /// Indefinite length, a tag, a float or a simple value other than false/true/null.
    Unsupported,
    TooDeep,
    DuplicateKey,
    InvalidUtf8,
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(i128::from(n))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(i128::from(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<Value>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value under `key` in a map (`None` for a missing key or a non-map).
    pub fn get(&self, key: &Value) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under integer key `key`.
    pub fn get_int(&self, key: i64) -> Option<&Value> {
        self.get(&Value::from(key))
    }

    /// The value under text key `key`.
    pub fn get_text(&self, key: &str) -> Option<&Value> {
        self.get(&Value::from(key))
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(n) => Some(*n),
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
            Value::Text(s) => Some(s),
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
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// Canonical CTAP2 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) if *n >= 0 => head(out, 0, u64::try_from(*n).unwrap_or(u64::MAX)),
            Value::Int(n) => head(out, 1, u64::try_from(-1 - *n).unwrap_or(u64::MAX)),
            Value::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Text(s) => {
                head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                head(out, 4, items.len() as u64);
                for item in items {
                    item.encode_into(out);
                }
            }
            Value::Map(pairs) => {
                let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = pairs
                    .iter()
                    .map(|(k, v)| (k.encode(), v.encode()))
                    .collect();
                // CTAP2 canonical order: shorter encoded keys first, then bytewise.
                encoded.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
                head(out, 5, encoded.len() as u64);
                for (k, v) in encoded {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            }
            Value::Bool(false) => out.push(0xF4),
            Value::Bool(true) => out.push(0xF5),
            Value::Null => out.push(0xF6),
        }
    }
}

/// A major type and argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
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

/// Decodes exactly one item; anything after it is an error.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader { input, pos: 0 };
    let value = reader.item(0)?;
    if reader.pos != input.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(value)
}

/// Decodes the first item and says how many bytes it took (authenticator data holds a COSE
/// key followed by more CBOR).
pub fn decode_first(input: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut reader = Reader { input, pos: 0 };
    let value = reader.item(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Major type and argument.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1F);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_be_bytes(a)
            }
            // 28..=30 reserved, 31 indefinite length.
            _ => return Err(DecodeError::Unsupported),
        };
        Ok((major, arg))
    }

    /// A length that must fit in what is left of the input (checked before allocating).
    fn len(&self, n: u64) -> Result<usize, DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        if n > self.input.len() - self.pos {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let (major, arg) = self.head()?;
        Ok(match major {
            0 => Value::Int(i128::from(arg)),
            1 => Value::Int(-1 - i128::from(arg)),
            2 => {
                let n = self.len(arg)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.len(arg)?;
                let text =
                    std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::InvalidUtf8)?;
                Value::Text(text.to_owned())
            }
            4 => {
                // Every item takes at least one byte: a bound before allocating.
                let n = self.len(arg)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.len(arg.saturating_mul(2))? / 2;
                let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.item(depth + 1)?;
                    if pairs.iter().any(|(k, _)| *k == key) {
                        return Err(DecodeError::DuplicateKey);
                    }
                    let value = self.item(depth + 1)?;
                    pairs.push((key, value));
                }
                Value::Map(pairs)
            }
            7 => match arg {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                _ => return Err(DecodeError::Unsupported),
            },
            // 6: tags, which CTAP2 messages never carry.
            _ => return Err(DecodeError::Unsupported),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn integers_use_the_shortest_head_rfc8949_appendix_a() {
        for (n, enc) in [
            (0i128, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65536, "1a00010000"),
            (4294967296, "1b0000000100000000"),
            (-1, "20"),
            (-25, "3818"),
            (-7, "26"),
            (-257, "390100"),
        ] {
            assert_eq!(Value::Int(n).encode(), h(enc), "{n}");
            assert_eq!(decode(&h(enc)).unwrap(), Value::Int(n));
        }
        let max_negative = Value::Int(-1 - i128::from(u64::MAX));
        assert_eq!(decode(&max_negative.encode()).unwrap(), max_negative);
    }

    #[test]
    fn strings_arrays_and_simple_values_round_trip() {
        let v = Value::Array(vec![
            Value::from(&b"\x01\x02"[..]),
            Value::from("FIDO_2_1"),
            Value::Bool(true),
            Value::Bool(false),
            Value::Null,
            Value::Array(vec![]),
        ]);
        let enc = v.encode();
        assert_eq!(enc, h("86420102684649444f5f325f31f5f4f680"));
        assert_eq!(decode(&enc).unwrap(), v);
    }

    #[test]
    fn map_keys_are_sorted_canonically_on_encode() {
        // CTAP 2.1 §8: length first, then bytewise: 3 < -1 < "rk" < "up" < "clientPin".
        let v = Value::map([
            (Value::from("clientPin"), Value::Bool(true)),
            (Value::from("up"), Value::Bool(true)),
            (Value::from(-1i64), Value::Null),
            (Value::from("rk"), Value::Bool(false)),
            (Value::from(3i64), Value::Null),
        ]);
        let enc = v.encode();
        assert_eq!(
            enc,
            h("a503f620f662726bf4627570f569636c69656e7450696ef5"),
            "{v:?}"
        );
    }

    #[test]
    fn lookups_by_int_and_text_key() {
        let v = decode(&h("a2016161626964a1627570f5")).unwrap();
        assert_eq!(v.get_int(1).and_then(Value::as_text), Some("a"));
        let inner = v.get_text("id").unwrap();
        assert_eq!(inner.get_text("up").and_then(Value::as_bool), Some(true));
        assert_eq!(v.get_int(2), None);
    }

    #[test]
    fn malformed_input_is_refused_not_panicked_on() {
        let cases = [
            ("", DecodeError::Truncated),
            ("18", DecodeError::Truncated),
            ("43 0102", DecodeError::Truncated),
            ("5bffffffffffffffff", DecodeError::Truncated),
            ("9bffffffffffffffff", DecodeError::Truncated),
            ("bbffffffffffffffff", DecodeError::Truncated),
            ("0000", DecodeError::TrailingBytes),
            ("5f4100ff", DecodeError::Unsupported),
            ("c240", DecodeError::Unsupported),
            ("f93c00", DecodeError::Unsupported),
            ("f7", DecodeError::Unsupported),
            ("1c", DecodeError::Unsupported),
            ("a2 01 00 01 00", DecodeError::DuplicateKey),
            ("62 c328", DecodeError::InvalidUtf8),
        ];
        for (input, want) in cases {
            let bytes = h(&input.replace(' ', ""));
            assert_eq!(decode(&bytes), Err(want), "{input}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = vec![0x81u8; MAX_DEPTH + 1];
        deep.push(0x00);
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let mut ok = vec![0x81u8; MAX_DEPTH];
        ok.push(0x00);
        assert!(decode(&ok).is_ok());
    }
}
