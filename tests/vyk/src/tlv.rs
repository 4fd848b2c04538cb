//! The BER-TLV subset PIV uses: one-byte tags (plus the two-byte `7F49`/`5Fxx` ones, which
//! the applet only writes) and definite lengths up to 65535.

/// Appends `tag len value` with the shortest definite length form.
pub fn put(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    let n = value.len();
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        _ => {
            out.push(0x82);
            out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

/// Builds one TLV.
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + tag.len() + 3);
    put(&mut out, tag, value);
    out
}

/// Splits one TLV with a one-byte tag off the front of `input`:
/// `(tag, value, rest)`, or `None` if it is truncated or malformed.
pub fn take(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7F => (usize::from(first), rest),
        0x81 => {
            let (&n, rest) = rest.split_first()?;
            (usize::from(n), rest)
        }
        0x82 => {
            let (n, rest) = rest.split_at_checked(2)?;
            (usize::from(u16::from_be_bytes([n[0], n[1]])), rest)
        }
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// Parses a sequence of one-byte-tag TLVs; `None` if anything is left over or malformed.
pub fn parse_all(mut input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        let (tag, value, rest) = take(input)?;
        items.push((tag, value));
        input = rest;
    }
    Some(items)
}

/// The value of the first TLV with `tag`, if any.
pub fn find<'a>(items: &[(u8, &'a [u8])], tag: u8) -> Option<&'a [u8]> {
    items.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 5, 0x7F, 0x80, 0xFF, 0x100, 1500] {
            let v = vec![9u8; n];
            let enc = tlv(&[0x53], &v);
            let (tag, value, rest) = take(&enc).unwrap();
            assert_eq!((tag, value.len(), rest.len()), (0x53, n, 0));
        }
    }

    #[test]
    fn truncated_is_rejected() {
        assert_eq!(take(&[0x53, 0x81]), None);
        assert_eq!(parse_all(&[0x80, 2, 1]), None);
    }
}
