//! Reading `name=value&name=value` strings (query strings, form bodies) without changing them.
//!
//! Schemes only *look* at parameters here (to find a bot's `timestamp`, say); what they sign is
//! always the bot's bytes. Names are percent-decoded before they are compared, because the
//! exchange decodes them too: `%74imestamp` is `timestamp` to Binance.

/// The `(name, value)` pairs of `s`, still percent-encoded, in order. Empty pieces (`a=1&&b=2`)
/// are skipped, as servers skip them; a piece without `=` has an empty value.
pub(crate) fn pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Percent-decode `s` once. A `%` not followed by two hex digits is kept as it is: a server
/// either rejects it or reads it literally, and a caller comparing names must not guess more.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// [`percent_decode`], as text (invalid UTF-8 becomes U+FFFD, which matches no name we look for).
pub(crate) fn decoded(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s)).into_owned()
}

/// [`decoded`], without a copy when there is nothing to decode (no `%`): the policy reads
/// every suffix of every name this way, once per request.
pub(crate) fn decoded_cow(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('%') {
        std::borrow::Cow::Owned(decoded(s))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Append `name=value` to `s`, with a `&` only when `s` already holds something.
pub(crate) fn push_pair(s: &mut String, name: &str, value: &str) {
    if !s.is_empty() {
        s.push('&');
    }
    s.push_str(name);
    s.push('=');
    s.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_cow_is_decoded() {
        for s in [
            "",
            "plain",
            "%74imestamp",
            "a%",
            "%zz",
            "%E2%82%AC",
            "%ff",
            "a+b",
            "%2541",
        ] {
            assert_eq!(decoded_cow(s), decoded(s), "{s}");
        }
        assert!(matches!(
            decoded_cow("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn pairs_keep_order_and_encoding() {
        let got: Vec<_> = pairs("a=1&&b=%41&c&d=x=y").collect();
        assert_eq!(got, [("a", "1"), ("b", "%41"), ("c", ""), ("d", "x=y")]);
    }

    #[test]
    fn percent_decode_keeps_broken_escapes() {
        assert_eq!(percent_decode("%74ime%2Fx%zz%4"), b"time/x%zz%4");
        assert_eq!(decoded("%EF%BC%91"), "１");
    }

    #[test]
    fn push_pair_joins_with_ampersand_only_when_needed() {
        let mut s = String::new();
        push_pair(&mut s, "a", "1");
        push_pair(&mut s, "b", "2");
        assert_eq!(s, "a=1&b=2");
    }
}
