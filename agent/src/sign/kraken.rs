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

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};
use tapsign_proto::{SignRequest, SignedRequest};
use zeroize::Zeroizing;

use super::common::{b64, check_key, hmac_sha512};
use super::form::{decoded, pairs};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

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
    let body = with_nonce(&req.body, nonce)?;
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

/// The body with the agent's nonce first. A JSON object gets `"nonce":"<n>"` as its first
/// member; anything else is a form body and gets `nonce=<n>` as its first pair.
fn with_nonce(body: &str, nonce: u64) -> Result<String, SignError> {
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
        return Ok(format!("{{\"nonce\":\"{nonce}\"{sep}{rest}"));
    }
    if pairs(body).any(|(n, _)| decoded(n).eq_ignore_ascii_case("nonce")) {
        return Err(taken());
    }
    let sep = if body.is_empty() { "" } else { "&" };
    Ok(format!("nonce={nonce}{sep}{body}"))
}
