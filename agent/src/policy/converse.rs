//! The converse question: which requests could the exchange read out of the bytes the agent
//! signs? The policy checked the request the bot *claimed*; an attacker holding the signature
//! sends whatever request the exchange will verify it for.
//!
//! - Binance signs `query ‖ body` and nothing else. The exchange verifies any request whose
//!   query and body concatenate to those bytes, on any path and method, so the bytes may be cut
//!   anywhere into a new query and body. A cut inside `name=value` turns a *suffix* of the name
//!   into a parameter with the same value (`xaddress=0x…` cut after `x` gives `address=0x…`),
//!   and a cut at the seam of query and body can join pieces. Every such reading is listed.
//! - Bybit signs the query of a GET or the body of a POST, not the path or the method: the same
//!   bytes are a GET query on any path, or a POST body. A JSON body read as a form yields
//!   whatever `name=` pieces its strings hold.
//! - Upbit and Bithumb sign a hash of the parameter string (the query, or the JSON body turned
//!   into `k=v&...`): any path and method with the same parameters verifies.
//! - The others sign the path. Their strict grammar (no `?`, `{` or `[` in a path, a body that
//!   is empty or starts with `{` or `[`) leaves one other reading: a shorter path with the rest
//!   of the path pushed into the body. Each such prefix must not be a denied endpoint.
//!
//! [`param_readings`] lists the parameter names each reading yields; the policy refuses when any of
//! them is a fund-moving parameter or one the agent owns.

use super::parse::{Body, Parsed};
use crate::credential::Exchange;
use crate::sign::form::{decoded_cow, pairs};
use tapsign_proto::SignRequest;

/// Whether the exchange's signature covers the path.
pub fn signs_path(exchange: Exchange) -> bool {
    !matches!(
        exchange,
        Exchange::Binance | Exchange::Bybit | Exchange::Upbit | Exchange::Bithumb
    )
}

/// A parameter name some reading of the signed bytes yields, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The name, percent-decoded.
    pub name: String,
    /// How the exchange would come to read it.
    pub how: &'static str,
}

/// The longest name a reading is checked for: every fund-moving or stamped parameter name,
/// even with each byte percent-encoded and a `[]` added (a test pins it), is shorter, and
/// keeping to this bound keeps the work linear in the request's size.
const LONGEST_NAME: usize = 96;

/// Every parameter name the exchange could read out of the signed bytes of `parsed`, beyond
/// the names the request itself has (those the profile has checked already), that `keep`
/// selects (the policy keeps the fund-moving and stamped ones; names longer than
/// [`LONGEST_NAME`] are never kept). `payload` is `parsed.signed_payload()` for Binance (and
/// unused for the others).
pub fn param_readings(
    exchange: Exchange,
    parsed: &Parsed,
    payload: &str,
    keep: impl Fn(&str) -> bool,
) -> Vec<Reading> {
    let mut out = Vec::new();
    let mut push = |name: &str, how: &'static str| {
        let name = decoded_cow(name);
        if keep(&name) {
            out.push(Reading {
                name: name.into_owned(),
                how,
            });
        }
    };
    match exchange {
        Exchange::Binance => cuts(payload, &mut push),
        Exchange::Bybit => {
            if let Body::Json(..) = parsed.body {
                for (name, _) in pairs(&parsed.body_text()) {
                    push(name, "the JSON body read as a GET query");
                }
            }
        }
        _ => {}
    }
    out
}

/// The names a cut of `signed` into query and body can make, other than its own pieces'
/// (only those up to [`LONGEST_NAME`] bytes, so this stays linear in the length of `signed`).
fn cuts(signed: &str, push: &mut impl FnMut(&str, &'static str)) {
    for piece in signed.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        // A cut inside the name: its suffix becomes a name holding the same value.
        let from = name.len().saturating_sub(LONGEST_NAME);
        for (i, _) in name.char_indices().skip(1).filter(|(i, _)| *i >= from) {
            push(
                &name[i..],
                "cutting a parameter name between the query and the body",
            );
        }
        // A cut inside the value: its tail becomes a piece of its own; it names something
        // only when it holds '=' (a value joined with the next piece at the seam), and the
        // name is a suffix of the text before that '='. The whole first segment counts too:
        // a cut right after the piece's own '=' leaves the query's last value empty and
        // makes the bot's value and the body's first name one name ("withdraw" + "orderId").
        let mut segments: Vec<&str> = value.split('=').collect();
        segments.pop(); // the text after the last '=' names nothing
        for seg in segments {
            let from = seg.len().saturating_sub(LONGEST_NAME);
            for (i, _) in seg.char_indices().filter(|(i, _)| *i >= from) {
                push(&seg[i..], "cutting a value between the query and the body");
            }
        }
    }
}

/// Paths a path-signing exchange could read out of the signed bytes instead of `parsed`'s:
/// every shorter prefix ending at a segment, with the rest of the path pushed into the body.
pub fn shorter_paths(exchange: Exchange, parsed: &Parsed) -> Vec<String> {
    if !signs_path(exchange) || exchange == Exchange::Gate || exchange == Exchange::Kraken {
        // Gate separates the path with '\n', Kraken follows it with a fixed-size digest:
        // neither can be read with another path.
        return Vec::new();
    }
    (1..parsed.segments.len())
        .map(|n| format!("/{}", parsed.segments[..n].join("/")))
        .collect()
}

/// When signing `parsed` (sent as `wire`) as a REST request would also give a websocket login
/// (which keeps a connection trading after the session ends), what it amounts to.
pub fn websocket_login(
    exchange: Exchange,
    parsed: &Parsed,
    wire: &SignRequest,
    payload: &str,
) -> Option<&'static str> {
    let path = parsed.path();
    match exchange {
        // The websocket API signs its params sorted and unencoded: a REST payload holding
        // `apiKey` (never a REST parameter) is a `session.logon` or websocket request payload.
        Exchange::Binance => (may_spell_apikey(payload) && names_apikey(payload)).then_some(
            "a Binance websocket API payload (it carries apiKey, as session.logon signs it)",
        ),
        // Bitget's websocket login signs `timestamp + "GET" + "/user/verify"`, the same string
        // as a REST GET of that path; and the timestamp is the client's string, so any REST
        // prehash that ends that way (`…?orderId=GET/user/verify`) is a login whose timestamp
        // is the rest, should Bitget read a number off its front (red-team round 10). OKX's
        // login signs `timestamp + "GET" + "/users/self/verify"` the same way.
        Exchange::Bitget if prehash_ends_with(wire, login_suffix(exchange)?) => {
            Some("Bitget's websocket login (timestamp + GET + /user/verify)")
        }
        Exchange::Okx if prehash_ends_with(wire, login_suffix(exchange)?) => {
            Some("OKX's websocket login (timestamp + GET + /users/self/verify)")
        }
        // The token from GetWebSocketsToken logs a websocket in for trading.
        // With a file extension too, which a server matching paths with any extension drops.
        Exchange::Kraken
            if super::without_extension(&path)
                .unwrap_or(&path)
                .eq_ignore_ascii_case("/0/private/GetWebSocketsToken") =>
        {
            Some("a Kraken websocket token (GetWebSocketsToken)")
        }
        _ => None,
    }
}

/// Where a REST request is a websocket login only by how its signed bytes end: the string
/// that ends them (OKX's and Bitget's login prehash).
pub fn login_suffix(exchange: Exchange) -> Option<&'static str> {
    match exchange {
        Exchange::Bitget => Some("GET/user/verify"),
        Exchange::Okx => Some("GET/users/self/verify"),
        _ => None,
    }
}

/// Whether `METHOD + path + ?query + body`, the end of what OKX and Bitget sign after the
/// timestamp, ends in `suffix` (without ASCII case).
fn prehash_ends_with(wire: &SignRequest, suffix: &str) -> bool {
    let query = if wire.query.is_empty() { "" } else { "?" };
    let pieces = [
        wire.method.as_str(),
        wire.path.as_str(),
        query,
        wire.query.as_str(),
        wire.body.as_str(),
    ];
    // Walk back from the end over the pieces, comparing byte by byte.
    let mut want = suffix.as_bytes().iter().rev();
    for piece in pieces.iter().rev() {
        for b in piece.as_bytes().iter().rev() {
            match want.next() {
                None => return true,
                Some(w) if w.eq_ignore_ascii_case(b) => {}
                Some(_) => return false,
            }
        }
    }
    want.next().is_none()
}

/// Whether a piece of `signed`, or a name a cut makes of it, reads `apiKey` (percent-decoded,
/// without ASCII case).
fn names_apikey(signed: &str) -> bool {
    let apikey = |n: &str| decoded_cow(n).eq_ignore_ascii_case("apikey");
    let mut found = pairs(signed).any(|(n, _)| apikey(n));
    cuts(signed, &mut |n, _| found |= apikey(n));
    found
}

/// False only when [`names_apikey`] is false, found in one pass: every name it reads is a
/// piece of `signed`, and decoding changes only a `%`; without one, a name reading `apiKey`
/// is spelled out in `signed`. Most payloads are answered here, without reading every cut.
fn may_spell_apikey(signed: &str) -> bool {
    signed.contains('%')
        || signed
            .as_bytes()
            .windows("apikey".len())
            .any(|w| w.eq_ignore_ascii_case(b"apikey"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::parse;
    use tapsign_proto::SignRequest;

    /// The bound on the names a cut is checked for must cover every name the policy looks
    /// for, written the longest way a value may carry it: each byte percent-encoded, with a
    /// `[]` the guard also strips.
    #[test]
    fn the_longest_name_checked_covers_every_fund_name_fully_encoded() {
        for &ex in Exchange::ALL {
            for (name, _) in crate::policy::rules::fund_params(ex) {
                let longest = 3 * (name.len() + "[]".len());
                assert!(
                    longest <= LONGEST_NAME,
                    "{ex}: {name} ({longest} bytes encoded)"
                );
            }
        }
        // And a value carrying one, encoded, is read where the body's first name ends it.
        let encoded: String = "addres".bytes().map(|b| format!("%{b:02X}")).collect();
        let query = format!("symbol=x&newClientOrderId=a{encoded}");
        let got = names(Exchange::Binance, &query, "s=1");
        assert!(got.iter().any(|n| n == "address"), "{got:?}");
    }

    fn names(ex: Exchange, query: &str, body: &str) -> Vec<String> {
        let r = SignRequest {
            method: "POST".into(),
            path: "/api/v3/order".into(),
            query: query.into(),
            body: body.into(),
            ..Default::default()
        };
        let p = parse(ex, &r).unwrap();
        param_readings(ex, &p, &p.signed_payload(), |_| true)
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    /// The one-pass test never answers for a payload the full reading finds `apiKey` in.
    #[test]
    fn the_apikey_shortcut_never_skips_a_payload_that_names_it() {
        let mut payloads = vec![String::new(), "symbol=X".into(), "apikey".into()];
        for spelling in [
            "apiKey", "APIKEY", "xapikey", "%61piKey", "api%4Bey", "apike%79",
        ] {
            for (before, after) in [("", "=1"), ("symbol=X&", "=1"), ("a=1", "=2&b=3")] {
                let p = format!("{before}{spelling}{after}");
                for cut in 0..=p.len() {
                    if p.is_char_boundary(cut) {
                        payloads.push(p[cut..].to_string());
                        payloads.push(p[..cut].to_string());
                    }
                }
            }
        }
        let mut named = 0;
        for p in &payloads {
            let full = names_apikey(p);
            assert!(
                !full || may_spell_apikey(p),
                "{p:?} names apiKey but was skipped"
            );
            named += usize::from(full);
        }
        assert!(
            named > 20,
            "few payloads named apiKey: the test checks little"
        );
        assert!(!may_spell_apikey("symbol=BTCUSDT&side=BUY&type=LIMIT"));
    }

    #[test]
    fn a_cut_inside_a_binance_name_reads_its_suffixes() {
        let n = names(Exchange::Binance, "symbol=X&xaddress=0xabc", "");
        assert!(n.contains(&"address".to_string()), "{n:?}");
        assert!(n.contains(&"ymbol".to_string()));
        // A value holds no '=' on its own, so its tails name nothing.
        let n = names(Exchange::Binance, "symbol=addr", "");
        assert!(!n.iter().any(|n| n == "addr" || n == "dr"), "{n:?}");
    }

    #[test]
    fn the_seam_of_binance_query_and_body_is_read_too() {
        // query "a=1" + body "b=2" signs "a=1b=2": a cut inside "1b" gives the piece "b=2".
        let n = names(Exchange::Binance, "a=1", "recvWindow=2");
        assert!(n.contains(&"recvWindow".to_string()), "{n:?}");
    }

    #[test]
    fn a_cut_right_after_the_last_query_values_equals_sign_is_read_too() {
        // query "a=withdraw" + body "orderId=1" signs "a=withdraworderId=1": sent as query
        // "a=" and body "withdraworderId=1", the exchange reads a name the bot spelled.
        let n = names(Exchange::Binance, "a=withdraw", "orderId=1");
        assert!(n.contains(&"withdraworderId".to_string()), "{n:?}");
        let n = names(Exchange::Binance, "a=1&b=transfer", "side=BUY");
        assert!(n.contains(&"transferside".to_string()), "{n:?}");
    }
}
