//! The policy: which requests the agent signs.
//!
//! Three checks, in this order; [`check_request`] runs them all and is what the agent calls.
//! 1. The built-in deny list ([`deny_rules`]): every exchange's withdrawal, transfer,
//!    sub-account, API-key and gift-card endpoints. It applies to every key and cannot be
//!    switched off; read endpoints of those families are refused too, because a trading bot
//!    needs none of them and a rule that refuses a whole family cannot miss a new endpoint.
//! 2. A key's optional allow list ([`AllowRule`], `"METHOD /path/glob"`): when a key has rules,
//!    anything no rule matches is refused.
//! 3. Fund-moving *parameters* ([`check_params`]). Binance and Upbit do not sign the path
//!    (Binance signs query+body, Upbit a hash of the parameters), so a bot could ask for
//!    `POST /api/v3/order` and send the signed bytes to the withdrawal endpoint instead. The
//!    parameters a withdrawal needs (`address`, `toEmail`, ...) are refused on every path.
//!
//! Paths are matched after normalizing every way a server might read them, and a deny rule
//! refuses when *any* reading matches while an allow rule admits only when *every* reading
//! matches: case, repeated and trailing slashes, percent-encoding (also encoded slashes and
//! double encoding), `\` for `/`, dot segments, `;matrix` parameters and a `?query` or
//! `#fragment` glued onto the path all change nothing. Deny rules also match any tail of the
//! path, so a prefix (`//host/...`, `/x/../`) cannot hide one.
//!
//! Globs: `*` matches within one path segment, `**` across segments.

use std::fmt;
use std::str::FromStr;

use tapsign_proto::SignRequest;

use crate::credential::Exchange;
use crate::sign::form::{decoded, pairs};

/// Why a family of endpoints is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Withdrawal,
    Transfer,
    SubAccount,
    ApiKeys,
    GiftCard,
    Fiat,
    Deposit,
    TravelRule,
    Web3Wallet,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Withdrawal => "withdrawal",
            Category::Transfer => "transfer",
            Category::SubAccount => "sub-account management",
            Category::ApiKeys => "API-key management",
            Category::GiftCard => "gift card",
            Category::Fiat => "fiat deposit or withdrawal",
            Category::Deposit => "deposit request",
            Category::TravelRule => "travel-rule verification",
            Category::Web3Wallet => "web3 wallet",
        })
    }
}

/// A built-in deny rule: a method (`*` for any) and a lower-case path glob.
#[derive(Debug, PartialEq, Eq)]
pub struct DenyRule {
    pub method: &'static str,
    pub glob: &'static str,
    pub category: Category,
}

impl fmt::Display for DenyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.glob)
    }
}

mod rules;

pub use rules::deny_rules;
use rules::fund_params;

/// Why the policy refused a request. Shown to the bot and written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error(
        "refused by built-in rule \"{exchange}: {rule}\" ({category}, path read as {path}); \
         tapsign never signs fund-moving requests: do this on the exchange's website",
        category = rule.category
    )]
    BuiltIn {
        exchange: Exchange,
        rule: &'static DenyRule,
        path: String,
    },
    #[error(
        "refused: {method} {path} matches none of this key's {count} allow rule(s); if the bot \
         needs it, add a rule such as \"{method} {path}\" to the key's policy"
    )]
    NotAllowed {
        method: String,
        path: String,
        count: usize,
    },
    #[error(
        "refused by built-in rule \"{exchange}: parameter {name}\" ({category}): {exchange} does \
         not sign the path, so a request carrying {name} is refused on every path; do this on \
         the exchange's website"
    )]
    FundParameter {
        exchange: Exchange,
        name: String,
        category: Category,
    },
    #[error("refused: the path cannot be checked: {0}; send the path as the exchange documents it")]
    Unreadable(&'static str),
    #[error("refused: the body cannot be checked: {0}; send it as the exchange documents it")]
    UnreadableBody(&'static str),
}

/// Paths longer than this are refused unread.
pub const MAX_PATH: usize = 2048;

/// How many layers of percent-encoding are peeled off before a path is refused as unreadable.
const MAX_DECODE: usize = 4;

/// Refuse `method path` when a built-in deny rule matches any reading of the path.
pub fn check(exchange: Exchange, method: &str, path: &str) -> Result<(), Denial> {
    let method = method.to_ascii_uppercase();
    for reading in readings(path)? {
        // A rule matches any tail of the path that starts at a '/': a leading `**` does that
        // in one pass, where trying every tail would cost quadratic time on a hostile path.
        let hit = deny_rules(exchange).iter().find(|r| {
            (r.method == "*" || r.method == method)
                && glob_match(&format!("**{}", r.glob), &reading)
        });
        if let Some(rule) = hit {
            return Err(Denial::BuiltIn {
                exchange,
                rule,
                path: reading,
            });
        }
    }
    Ok(())
}

/// [`check`], then, when the key has allow rules, refuse what they do not all admit.
pub fn check_with_allow(
    exchange: Exchange,
    allow: &[AllowRule],
    method: &str,
    path: &str,
) -> Result<(), Denial> {
    check(exchange, method, path)?;
    if allow.is_empty() {
        return Ok(());
    }
    let method = method.to_ascii_uppercase();
    let readings = readings(path)?;
    for reading in &readings {
        if !allow.iter().any(|rule| rule.admits(&method, reading)) {
            return Err(Denial::NotAllowed {
                method,
                path: reading.clone(),
                count: allow.len(),
            });
        }
    }
    Ok(())
}

/// Refuse a request whose query or body carries a parameter only fund-moving endpoints take.
/// Names are compared percent-decoded, without case and without a trailing `[]`; an Upbit
/// JSON body's top-level keys count as parameters.
pub fn check_params(exchange: Exchange, query: &str, body: &str) -> Result<(), Denial> {
    // Read the body every way a server (or a hash that flattens it) might: as a form, and as
    // JSON, including the `k=v&...` strings a JSON key or value could smuggle in (Upbit and
    // Bithumb hash a JSON body as `k=v&...` without escaping, so `{"a":"1&address=X"}` hashes
    // like a body that has an `address`).
    let mut names: Vec<String> = pairs(query).map(|(name, _)| decoded(name)).collect();
    names.extend(pairs(body).map(|(name, _)| decoded(name)));
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => json_names(&value, &mut names),
        // Bybit takes JSON bodies and does not sign the path: a body tapsign cannot read as
        // one JSON object might still be read as one by a lenient server, parameters and all.
        Err(_) if exchange == Exchange::Bybit && !body.trim().is_empty() => {
            return Err(Denial::UnreadableBody(
                "a Bybit body must be one JSON object",
            ));
        }
        Err(_) => {}
    }
    for name in names {
        let lower = name.to_lowercase();
        let bare = lower
            .trim()
            .trim_start_matches(['{', '"'])
            .trim_end_matches("[]");
        if let Some((_, category)) = fund_params(exchange).iter().find(|(p, _)| *p == bare) {
            return Err(Denial::FundParameter {
                exchange,
                name,
                category: *category,
            });
        }
    }
    Ok(())
}

/// Every key of a JSON value (nested too), and the parameter names inside any key or string
/// that reads as a `k=v&...` form.
fn json_names(value: &serde_json::Value, out: &mut Vec<String>) {
    let from_text = |text: &str, out: &mut Vec<String>| {
        if text.contains('=') {
            out.extend(pairs(text).map(|(name, _)| decoded(name)));
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                out.push(key.clone());
                from_text(key, out);
                json_names(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_names(v, out)),
        serde_json::Value::String(text) => from_text(text, out),
        _ => {}
    }
}

/// Everything the policy checks before a request is signed.
pub fn check_request(
    exchange: Exchange,
    allow: &[AllowRule],
    req: &SignRequest,
) -> Result<(), Denial> {
    check_with_allow(exchange, allow, &req.method, &req.path)?;
    check_params(exchange, &req.query, &req.body)
}

/// A per-key allow rule, `"METHOD /path/glob"`: `METHOD` is GET, POST, PUT, DELETE, PATCH or
/// `*`; the glob starts with `/` and uses `*` (one segment) and `**` (any depth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    method: String,
    glob: String,
    text: String,
}

/// An allow rule that does not parse; the message names it and says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid allow rule {rule:?}: {why}; write rules as \"METHOD /path/glob\", e.g. \"POST /api/v3/order\" or \"GET /v1/orders/*\""
)]
pub struct RuleError {
    pub rule: String,
    pub why: String,
}

impl AllowRule {
    /// Does this rule admit `method` (upper case) on the normalized `path`?
    fn admits(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method == method) && glob_match(&self.glob, path)
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for AllowRule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        let fail = |why: &str| RuleError {
            rule: s.to_string(),
            why: why.to_string(),
        };
        let mut parts = s.split(' ');
        let (Some(method), Some(glob), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(fail("it must be a method, one space, and a path glob"));
        };
        if !matches!(method, "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "*") {
            return Err(fail(
                "the method must be GET, POST, PUT, DELETE, PATCH or * (upper case)",
            ));
        }
        if !glob.starts_with('/') || glob.len() > 256 {
            return Err(fail(
                "the path glob must start with '/' and be at most 256 characters",
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "/-_.~*".contains(c);
        if !glob.chars().all(allowed) {
            return Err(fail(
                "the path glob may hold only letters, digits, '/', '-', '_', '.', '~' and '*' \
                 (no query, fragment or percent-encoding: paths are matched decoded)",
            ));
        }
        if glob.contains("***") {
            return Err(fail(
                "use '*' for one segment or '**' for any depth, not '***'",
            ));
        }
        if glob.len() > 1 && (glob.ends_with('/') || glob.contains("//")) {
            return Err(fail(
                "paths are matched without empty segments or a trailing '/'",
            ));
        }
        if glob.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(fail(
                "paths are matched with '.' and '..' resolved; spell the path out",
            ));
        }
        Ok(AllowRule {
            method: method.to_string(),
            glob: glob.to_ascii_lowercase(),
            text: s.into(),
        })
    }
}

/// Every way a server might read `path`, normalized: lower case, no empty or `.` segments.
/// Variants: cut at `?`/`#` or not; percent-decoded 0..n times; `;params` kept or stripped;
/// `..` resolved or kept.
pub fn readings(path: &str) -> Result<Vec<String>, Denial> {
    if path.len() > MAX_PATH {
        return Err(Denial::Unreadable("it is longer than 2048 bytes"));
    }
    let cut = |s: &str| s.split(['?', '#']).next().unwrap_or("").to_string();
    // Decode again until nothing changes (double encoding), up to a bound no server goes near.
    let mut layers = vec![path.to_string(), cut(path)];
    let mut current = path.to_string();
    for depth in 0.. {
        let next = decoded(&current);
        if next == current {
            break;
        }
        if depth == MAX_DECODE {
            return Err(Denial::Unreadable(
                "it is percent-encoded too many times over",
            ));
        }
        layers.push(cut(&next));
        layers.push(next.clone());
        current = next;
    }
    let mut out: Vec<String> = Vec::new();
    for layer in &layers {
        for strip_params in [false, true] {
            for resolve_dots in [false, true] {
                let reading = canonical(layer, strip_params, resolve_dots);
                if !out.contains(&reading) {
                    out.push(reading);
                }
            }
        }
    }
    Ok(out)
}

fn canonical(path: &str, strip_params: bool, resolve_dots: bool) -> String {
    let lower = path.replace('\\', "/").to_lowercase();
    let mut segs: Vec<&str> = Vec::new();
    for seg in lower.split('/') {
        let seg = if strip_params {
            seg.split(';').next().unwrap_or("")
        } else {
            seg
        };
        let seg = seg.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        match seg {
            "" | "." => {}
            ".." if resolve_dots => {
                segs.pop();
            }
            _ => segs.push(seg),
        }
    }
    format!("/{}", segs.join("/"))
}

/// Does `glob` match all of `text`? `*` matches within a segment, `**` across segments.
/// Dynamic programming over text positions: no backtracking blow-up on hostile paths.
fn glob_match(glob: &str, text: &str) -> bool {
    let text = text.as_bytes();
    // ok[j]: the glob read so far matches text[..j].
    let mut ok = vec![false; text.len() + 1];
    ok[0] = true;
    let mut g = glob.as_bytes();
    while let Some((&c, rest)) = g.split_first() {
        let mut next = vec![false; text.len() + 1];
        if c == b'*' {
            let deep = rest.first() == Some(&b'*');
            g = if deep { &rest[1..] } else { rest };
            for j in 0..=text.len() {
                next[j] = ok[j] || (j > 0 && next[j - 1] && (deep || text[j - 1] != b'/'));
            }
        } else {
            g = rest;
            for j in 0..text.len() {
                next[j + 1] = ok[j] && text[j] == c;
            }
        }
        ok = next;
    }
    ok[text.len()]
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn single_star_stays_in_its_segment_and_double_star_does_not() {
        assert!(glob_match("/v1/*", "/v1/orders"));
        assert!(!glob_match("/v1/*", "/v1/orders/open"));
        assert!(glob_match("/v1/**", "/v1/orders/open"));
        assert!(glob_match(
            "**withdraw**",
            "/sapi/v1/capital/withdraw/apply"
        ));
        assert!(glob_match(
            "/sapi/*/capital/withdraw**",
            "/sapi/v1/capital/withdraw"
        ));
        assert!(!glob_match("/api/v3/order", "/api/v3/orders"));
        assert!(glob_match("/a*b*c", "/axxbyyc"));
        assert!(!glob_match("/a*b", "/a/b"));
    }
}
