//! Binance REST (spot, SAPI, USDⓈ-M, COIN-M, options share one scheme).
//!
//! The signed payload is the query string followed directly by the form body, with no `&`
//! between them (`symbol=X&side=BUYquantity=1&...`). An HMAC key signs it as lowercase hex
//! HMAC-SHA256; the result travels as the `signature` parameter, which must come last, and the
//! API key as the `X-MBX-APIKEY` header.
//!
//! The agent stamps `timestamp` itself so a bot cannot collect signatures dated in the future.
//! It appends `timestamp` (and then `signature`) to the body when there is one, else to the
//! query. Binance lets a query parameter win over the same one in the body, so a bot-supplied
//! `timestamp` anywhere is looked at, never shadowed: it is kept when it is within
//! `max_skew_ms` of the agent's clock and refused otherwise. A `recvWindow` above the
//! configured cap is refused rather than rewritten (the agent never edits the bot's bytes);
//! when the cap is below Binance's default of 5000 ms and the bot sends none, the agent appends
//! `recvWindow=<cap>` so the default cannot widen the window.

use tapsign_proto::{SignRequest, SignedRequest};

use super::form::{decoded, pairs, push_pair};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// Binance's `recvWindow` when a request carries none.
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;

/// A timestamp at or above this is in microseconds (spot accepts both); ms stay below it until
/// the year 33658.
const MICROS_FROM: u64 = 1_000_000_000_000_000;

/// How a key signs, read off the secret: a PKCS#8 Ed25519 PEM is an Ed25519 key (Binance
/// recommends them), anything else an HMAC secret string. Ed25519 signatures are base64 and
/// are percent-encoded before they go into the query or body (`+`, `/`, `=`). RSA keys are
/// refused at `key add` (see [`super::keys::validate`]).
enum KeyKind {
    Hmac,
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl KeyKind {
    fn of(cred: &Credential) -> Result<KeyKind, SignError> {
        if super::keys::is_pem(cred.secret.expose()) {
            let key = super::keys::ed25519_key(cred.secret.expose(), false)
                .map_err(SignError::BadCredential)?;
            return Ok(KeyKind::Ed25519(Box::new(key)));
        }
        Ok(KeyKind::Hmac)
    }

    /// The value of the `signature` parameter, ready to append (percent-encoded).
    fn signature(&self, secret: &[u8], payload: &str) -> String {
        match self {
            KeyKind::Hmac => hmac_payload_signature(secret, payload),
            KeyKind::Ed25519(key) => percent_encode_b64(&ed25519_signature(key, payload)),
        }
    }
}

/// Standard base64 of the Ed25519 signature of `payload` (not yet percent-encoded).
pub fn ed25519_signature(key: &ed25519_dalek::SigningKey, payload: &str) -> String {
    use ed25519_dalek::Signer;
    super::common::b64(&key.sign(payload.as_bytes()).to_bytes())
}

/// Percent-encode the three base64 characters that mean something in a query or form body.
pub fn percent_encode_b64(b64: &str) -> String {
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn not_ed25519() -> SignError {
    SignError::BadRequest(
        "Binance session.logon works only with Ed25519 keys, whether or not the key has \
         `ws_login = true`; this key is an HMAC key: create an Ed25519 API key and store it \
         with `tapsign key add` if a bot must log a websocket in"
            .into(),
    )
}

/// Why `cred` can make no `session.logon`, if it cannot (an HMAC key): asked before the key's
/// `ws_login` switch, so that such a key is never told to turn on a login it cannot make
/// (red-team round 25: the refusal advised `ws_login = true`, after which the same request was
/// refused as HMAC).
pub(crate) fn logon_refused(cred: &Credential) -> Option<SignError> {
    match KeyKind::of(cred) {
        Ok(KeyKind::Ed25519(_)) => None,
        Ok(KeyKind::Hmac) => Some(not_ed25519()),
        Err(e) => Some(e),
    }
}

/// The websocket API `session.logon` message: `{"method":"session.logon","params":{apiKey,
/// signature, timestamp}}`. Binance supports logon only for Ed25519 keys; the signed payload is
/// the params but `signature`, sorted by name and not percent-encoded
/// (`apiKey=...&timestamp=...`), and the signature goes in raw base64. The agent stamps
/// `timestamp`, and under a `recv_window_cap_ms` below Binance's default of 5000 ms also
/// `recvWindow=<cap>`, as it does for REST: without it a logon kept back by a bot opens a
/// trading socket for 5000 ms, past the cap (and past a lock in that time). Add your own
/// `"id"` before sending.
pub fn ws_logon(cred: &Credential, stamp: &Stamp, opts: &SignOptions) -> Result<String, SignError> {
    check_key(cred)?;
    let KeyKind::Ed25519(key) = KeyKind::of(cred)? else {
        return Err(not_ed25519());
    };
    let api_key = cred.api_key.expose();
    let ts = stamp.unix_ms.to_string();
    let window = opts.recv_window_cap_ms.to_string();
    let mut signed = vec![("timestamp", ts.as_str()), ("apiKey", api_key)];
    let capped = opts.recv_window_cap_ms < DEFAULT_RECV_WINDOW_MS;
    if capped {
        signed.push(("recvWindow", &window));
    }
    let payload = ws_payload(&signed);
    let mut msg = serde_json::json!({"method": "session.logon", "params": {
        "apiKey": api_key, "signature": ed25519_signature(&key, &payload),
        "timestamp": stamp.unix_ms,
    }});
    if capped {
        msg["params"]["recvWindow"] = opts.recv_window_cap_ms.into();
    }
    Ok(msg.to_string())
}

/// The string Binance's websocket API signs: every parameter but `signature`, sorted by name,
/// `name=value` joined with `&`, raw UTF-8 and **not** percent-encoded (unlike REST).
pub fn ws_payload(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| *k != "signature").collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut out = String::new();
    for (k, v) in sorted {
        push_pair(&mut out, k, v);
    }
    out
}

fn check_key(cred: &Credential) -> Result<(), SignError> {
    super::common::check_key(cred, "Binance")
}

/// Lowercase hex HMAC-SHA256 of `payload` under `secret` (raw bytes of the secret key string).
pub fn hmac_payload_signature(secret: &[u8], payload: &str) -> String {
    hex::encode(super::common::hmac_sha256(secret, payload.as_bytes()))
}

/// Sign `req` for Binance. The returned query or body is the bot's, with the agent's
/// parameters appended; `signature` is always the last parameter of the payload.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred)?;
    let api_key = cred.api_key.expose();
    let kind = KeyKind::of(cred)?;
    check_shape(req)?;
    let found = Found::scan(req)?;
    if let Some(value) = &found.recv_window {
        check_recv_window(value, opts.recv_window_cap_ms)?;
    }
    if let Some(value) = &found.timestamp {
        check_timestamp(value, stamp, opts.max_skew_ms)?;
        // A recvWindow after the bot's timestamp, the bot's or the one the agent would append,
        // is cut off with everything after it (see `Found::scan`), which leaves Binance's
        // default of 5000 ms: harmless under a cap at or above it, a widened window under one
        // below it (red-team round 10).
        let before = found.recv_window.is_some() && !found.recv_window_last;
        if opts.recv_window_cap_ms < DEFAULT_RECV_WINDOW_MS && !before {
            return Err(SignError::BadRequest(format!(
                "with recv_window_cap_ms below Binance's default of {DEFAULT_RECV_WINDOW_MS} ms, \
                 a request that carries its own timestamp sends recvWindow={} (or less) before \
                 it, timestamp last; or leave timestamp out and the agent stamps both",
                opts.recv_window_cap_ms
            )));
        }
    }

    // Binance wants `signature` last, so the agent's parameters go where the payload ends.
    let (mut query, mut body) = (req.query.clone(), req.body.clone());
    let into_body = !body.is_empty();
    let mut additions = String::new();
    if found.recv_window.is_none() && opts.recv_window_cap_ms < DEFAULT_RECV_WINDOW_MS {
        push_pair(
            &mut additions,
            "recvWindow",
            &opts.recv_window_cap_ms.to_string(),
        );
    }
    if found.timestamp.is_none() {
        push_pair(&mut additions, "timestamp", &stamp.unix_ms.to_string());
    }
    let target = if into_body { &mut body } else { &mut query };
    if !additions.is_empty() {
        if !target.is_empty() {
            target.push('&');
        }
        target.push_str(&additions);
    }
    let signature = kind.signature(cred.secret.expose(), &format!("{query}{body}"));
    push_pair(
        if into_body { &mut body } else { &mut query },
        "signature",
        &signature,
    );

    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query,
        body,
        headers: [("X-MBX-APIKEY".to_string(), api_key.to_string())].into(),
    })
}

/// Requests Binance would read differently from what gets signed.
fn check_shape(req: &SignRequest) -> Result<(), SignError> {
    if req.method == "GET" && !req.body.is_empty() {
        return Err(SignError::BadRequest(
            "Binance reads GET parameters from the query only; move the body into \"query\"".into(),
        ));
    }
    // Binance signs the bytes on the wire; an HTTP client would percent-encode these first.
    for (part, s) in [("query", &req.query), ("body", &req.body)] {
        if s.chars().any(|c| !c.is_ascii() || c.is_ascii_whitespace()) {
            return Err(SignError::BadRequest(format!(
                "the {part} has spaces or non-ASCII characters; percent-encode them (UTF-8) \
                 before asking for a signature, as Binance requires"
            )));
        }
    }
    Ok(())
}

/// The parameters the agent owns, as the bot sent them (percent-decoded values).
struct Found {
    timestamp: Option<String>,
    recv_window: Option<String>,
    /// `recvWindow` came after `timestamp`.
    recv_window_last: bool,
}

impl Found {
    fn scan(req: &SignRequest) -> Result<Found, SignError> {
        let mut found = Found {
            timestamp: None,
            recv_window: None,
            recv_window_last: false,
        };
        for (name, value) in pairs(&req.query).chain(pairs(&req.body)) {
            let name = decoded(name);
            // Compared without case: the agent refuses rather than guess how Binance does.
            let slot = if name.eq_ignore_ascii_case("timestamp") {
                &mut found.timestamp
            } else if name.eq_ignore_ascii_case("recvWindow") {
                found.recv_window_last = found.timestamp.is_some();
                &mut found.recv_window
            } else if name.eq_ignore_ascii_case("signature") {
                return Err(SignError::BadRequest(
                    "the request already has a signature parameter; leave it out, the agent \
                     adds it"
                        .into(),
                ));
            } else {
                if found.timestamp.is_some() {
                    // Binance's signature covers query ‖ body whatever the body's Content-Type,
                    // and reads the body's parameters only from a form: the signed bytes cut
                    // after the timestamp, the rest sent as a body of another type, are a
                    // request without what follows. So a bot's timestamp comes last (or before
                    // recvWindow only, as in Binance's own examples), where the agent puts its
                    // own: every part that holds it then holds the whole request.
                    return Err(SignError::BadRequest(format!(
                        "{name} follows timestamp; send timestamp as the last parameter (only \
                         recvWindow may follow it), or leave it out and the agent stamps it there"
                    )));
                }
                continue;
            };
            if slot.replace(decoded(value)).is_some() {
                return Err(SignError::BadRequest(format!(
                    "{name} appears more than once in the query and body; send it once"
                )));
            }
        }
        Ok(found)
    }
}

/// A bot-supplied `timestamp` must be a plain number close to the agent's clock.
fn check_timestamp(value: &str, stamp: &Stamp, max_skew_ms: u64) -> Result<(), SignError> {
    let ts: u64 = parse_digits(value).ok_or_else(|| {
        SignError::BadRequest(format!(
            "timestamp={value:?} is not a number of milliseconds; leave it out and the agent \
             stamps it"
        ))
    })?;
    let ms = if ts >= MICROS_FROM { ts / 1000 } else { ts };
    let skew_ms = ms.abs_diff(stamp.unix_ms);
    if skew_ms > max_skew_ms {
        return Err(SignError::StaleTimestamp {
            param: "timestamp",
            value: value.to_string(),
            skew_ms,
            limit_ms: max_skew_ms,
        });
    }
    Ok(())
}

/// `recvWindow` is milliseconds with up to three decimals (Binance); below 1 ms, or above the
/// cap, is refused.
fn check_recv_window(value: &str, cap_ms: u64) -> Result<(), SignError> {
    let (int, frac) = match value.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (value, None),
    };
    let frac_ok =
        frac.is_none_or(|f| (1..=3).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()));
    let (Some(ms), true) = (parse_digits(int), frac_ok) else {
        return Err(SignError::BadRequest(format!(
            "recvWindow={value:?} is not a number of milliseconds (up to 3 decimals); fix it or \
             leave it out"
        )));
    };
    let frac = frac.unwrap_or("");
    // Red-team round 11: Binance documents no meaning for a window of nothing; a service that
    // took 0 for "unset" would use its default of 5000 ms, past a lower cap. Below 1 ms too:
    // outside spot, recvWindow is a whole number, which a service may read `0.5` as.
    if ms == 0 {
        return Err(SignError::BadRequest(format!(
            "recvWindow={value} is less than 1 ms (Binance documents no meaning for 0, and \
             outside spot takes whole milliseconds); send at least 1, or leave it out"
        )));
    }
    let above = ms > cap_ms || (ms == cap_ms && frac.bytes().any(|b| b != b'0'));
    if above {
        return Err(SignError::BadRequest(format!(
            "recvWindow={value} is above the agent's cap of {cap_ms} ms (recv_window_cap_ms in \
             the agent config); send recvWindow={cap_ms} or less, or leave it out"
        )));
    }
    Ok(())
}

/// 1 to 19 ASCII digits, as a number (no sign, no spaces, nothing else).
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
