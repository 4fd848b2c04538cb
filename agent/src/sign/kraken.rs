//! Kraken spot REST (`/0/private/*`): base64 HMAC-SHA512 in `API-Sign`.
//!
//! `API-Sign = base64(HMAC-SHA512(base64decode(secret), path ‖ SHA-256(nonce + postData)))`
//! (docs/exchanges.md, "Kraken"): the path bytes followed by the *raw* 32-byte digest, with
//! the only secret here that must be base64-decoded. `postData` is the exact body, which
//! includes the nonce: the agent puts `nonce=<n>` first in a form body (or `"nonce":"<n>"`
//! first in a JSON object), the way Kraken's example does.
//!
//! The nonce must grow strictly, across agent restarts too, or Kraken refuses the request
//! (and a lower one would let an older harvested signature through first). The scheme takes it
//! from [`Stamp::counter`], which the agent fills from its [`crate::nonces::KrakenNonces`]
//! (reserved on disk in blocks); a bot may not send one.
//!
//! A growing nonce voids older signatures only once a newer request reaches Kraken, and a bot
//! that holds back a run of order signatures sends nothing that would. So a request that places
//! or changes an order ([`ORDER_METHODS`]) also carries Kraken's `deadline`, after which the
//! matching engine rejects it: the agent stamps its clock + [`DEADLINE_SECS`] after the nonce
//! when the bot sent none, and keeps the bot's own only when it is a strict RFC 3339 UTC time no
//! later than that (red-team round 27).

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};
use tapsign_proto::{SignRequest, SignedRequest};
use zeroize::Zeroizing;

use super::common::{b64, check_key, hmac_sha512};
use super::form::{decoded, pairs};
use super::{SignError, SignOptions, Stamp};
use crate::clock::{parse_utc, utc_whole_secs};
use crate::credential::Credential;

/// The methods that place or change an order, each of which takes `deadline` (Kraken's REST
/// reference: "RFC3339 timestamp (e.g. 2021-04-01T00:18:45Z) after which the matching engine
/// should reject the new order request", at least now + 2 s and at most now + 60 s). These are
/// the profile's order methods and AddOrderBatch, which the profile leaves out but a key's
/// entry naming it word for word signs; cancels and reads move nothing and carry no deadline.
pub const ORDER_METHODS: [&str; 4] = [
    "/0/private/AddOrder",
    "/0/private/AddOrderBatch",
    "/0/private/AmendOrder",
    "/0/private/EditOrder",
];

/// How far past the agent's clock an order request's `deadline` may be, in seconds: the
/// longest a held-back order signature stays usable. Half Kraken's 60 s ceiling, which leaves a
/// slow link or a clock a few seconds off room, and far above its 2 s floor.
pub const DEADLINE_SECS: u64 = 30;

/// `base64(HMAC-SHA512(key, path ‖ SHA-256(nonce + post_data)))`.
pub fn signature(key: &[u8], path: &str, nonce: u64, post_data: &str) -> String {
    let digest = Sha256::digest(format!("{nonce}{post_data}").as_bytes());
    let mut msg = path.as_bytes().to_vec();
    msg.extend_from_slice(&digest);
    b64(&hmac_sha512(key, &msg))
}

/// Sign `req` for Kraken: the body with the nonce put first, plus `API-Key` and `API-Sign`.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "Kraken")?;
    let nonce = stamp.counter.ok_or_else(|| {
        SignError::BadRequest(
            "the agent has no Kraken nonce for this request (its nonce store is not wired); \
             this is an agent bug, please report it"
                .into(),
        )
    })?;
    if req.method != "POST" || !req.query.is_empty() {
        return Err(SignError::BadRequest(
            "Kraken private endpoints are POST with every parameter in the body; move the \
             query into the body"
                .into(),
        ));
    }
    let deadline = match ORDER_METHODS.contains(&req.path.as_str()) {
        true => deadline_to_stamp(&req.body, stamp.unix_ms)?,
        false => None,
    };
    let body = with_stamps(&req.body, nonce, deadline.as_deref())?;
    let key = Zeroizing::new(
        Base64::decode_vec(
            std::str::from_utf8(cred.secret.expose())
                .unwrap_or("!")
                .trim(),
        )
        .map_err(|_| {
            SignError::BadCredential(
                "the Kraken private key is not base64; store it again with `tapsign key add`"
                    .into(),
            )
        })?,
    );
    let sig = signature(&key, &req.path, nonce, &body);
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: String::new(),
        body,
        headers: [
            ("API-Key".to_string(), cred.api_key.expose().to_string()),
            ("API-Sign".to_string(), sig),
        ]
        .into(),
    })
}

/// The body with the agent's nonce first, then the agent's `deadline` when there is one. A JSON
/// object gets `"nonce":"<n>"` (and `"deadline":"<t>"`) as its first members; anything else is
/// a form body and gets `nonce=<n>` (and `deadline=<t>`, its colons percent-encoded as form
/// encoders write them) as its first pairs.
fn with_stamps(body: &str, nonce: u64, deadline: Option<&str>) -> Result<String, SignError> {
    let taken = || {
        SignError::BadRequest(
            "the body already has a nonce; leave it out, the agent adds a strictly increasing \
             one"
            .into(),
        )
    };
    if body.trim_start().starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
            .map_err(|e| SignError::BadRequest(format!("the JSON body is not an object: {e}")))?;
        if map.keys().any(|k| k.eq_ignore_ascii_case("nonce")) {
            return Err(taken());
        }
        let rest = body.trim_start()[1..].trim_start();
        let sep = if map.is_empty() { "" } else { "," };
        let deadline = deadline
            .map(|t| format!(",\"deadline\":\"{t}\""))
            .unwrap_or_default();
        return Ok(format!("{{\"nonce\":\"{nonce}\"{deadline}{sep}{rest}"));
    }
    if pairs(body).any(|(n, _)| decoded(n).eq_ignore_ascii_case("nonce")) {
        return Err(taken());
    }
    let mut out = format!("nonce={nonce}");
    if let Some(t) = deadline {
        out.push_str("&deadline=");
        out.push_str(&t.replace(':', "%3A"));
    }
    if !body.is_empty() {
        out.push('&');
        out.push_str(body);
    }
    Ok(out)
}

/// The `deadline` the agent stamps on an order request (the agent's clock `unix_ms` +
/// [`DEADLINE_SECS`], whole seconds), or `None` when the bot sent one of its own that may stand.
/// A bot's deadline that is not a strict RFC 3339 UTC time, or that is later than the agent's
/// own would be, is refused: rewriting it would change what the bot asked for, and leaving it
/// would let the signature live up to Kraken's 60 s, or forever if Kraken reads it otherwise.
fn deadline_to_stamp(body: &str, unix_ms: u64) -> Result<Option<String>, SignError> {
    let bound_ms = unix_ms.saturating_add(DEADLINE_SECS * 1000);
    let fix = format!(
        "leave deadline out and the agent stamps one {DEADLINE_SECS} s ahead, or send an RFC \
         3339 UTC time no later than that, such as {}",
        utc_whole_secs(bound_ms / 1000)
    );
    let found: Vec<(String, Option<String>)> = if body.trim_start().starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
            .map_err(|e| SignError::BadRequest(format!("the JSON body is not an object: {e}")))?;
        map.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("deadline"))
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
            .collect()
    } else {
        pairs(body)
            .map(|(n, v)| (decoded(n), v))
            .filter(|(n, _)| n.eq_ignore_ascii_case("deadline"))
            .map(|(n, v)| (n, Some(decoded(v))))
            .collect()
    };
    let (name, value) = match found.as_slice() {
        [] => return Ok(Some(utc_whole_secs(bound_ms / 1000))),
        [one] => one,
        _ => {
            return Err(SignError::BadRequest(format!(
                "the body has more than one deadline; {fix}"
            )));
        }
    };
    if name != "deadline" {
        return Err(SignError::BadRequest(format!(
            "the body has {name:?}, which Kraken does not read as deadline; {fix}"
        )));
    }
    let Some(value) = value else {
        return Err(SignError::BadRequest(format!(
            "deadline is not a JSON string; {fix}"
        )));
    };
    // The bot's own text, cut: it is said back, not trusted.
    let said: String = value.chars().take(40).collect();
    let Some(at_ns) = parse_utc(value) else {
        return Err(SignError::BadRequest(format!(
            "deadline {said:?} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ, ending in Z); \
             {fix}"
        )));
    };
    if at_ns > u128::from(bound_ms) * 1_000_000 {
        let ahead_s = (at_ns / 1_000_000).saturating_sub(u128::from(unix_ms)) / 1000;
        return Err(SignError::BadRequest(format!(
            "deadline {said} is {ahead_s} s past the agent's clock, more than the \
             {DEADLINE_SECS} s an order signature may stay usable; {fix}"
        )));
    }
    Ok(None)
}
