//! KuCoin: base64 HMAC-SHA256 in `KC-API-SIGN`, with a signed passphrase (key version 2).
//!
//! String to sign (docs/exchanges.md, "KuCoin"): `timestamp + METHOD + endpoint + body`,
//! where the endpoint includes `?query` for GET/DELETE and the body is the exact JSON string.
//! The timestamp is ms, stamped by the agent (KuCoin allows ±5 s). For v2 (and v3) keys the
//! passphrase header is `base64(HMAC-SHA256(secret, passphrase))`, so it is secret-derived
//! too. The agent sends `KC-API-KEY-VERSION: 2`, as the docs say; the current SDK's `3` uses
//! the same passphrase handling. KuCoin signs the path.

use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{check_key, passphrase};
use super::okx::{prehash, signature};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// The `KC-API-KEY-VERSION` the agent sends.
pub const KEY_VERSION: &str = "2";

/// `base64(HMAC-SHA256(secret, passphrase))`: the v2 `KC-API-PASSPHRASE` header.
pub fn signed_passphrase(secret: &[u8], passphrase: &str) -> String {
    signature(secret, passphrase)
}

/// Sign `req` for KuCoin: the request unchanged, plus the `KC-API-*` headers.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "KuCoin")?;
    let pass = passphrase(cred, "KuCoin")?;
    // KuCoin signs `timestamp + METHOD + endpoint + body` for every method, so a DELETE body
    // (its batch cancel) is signed like a POST one; a GET body it would ignore.
    if req.method == "GET" && !req.body.is_empty() {
        return Err(SignError::BadRequest(
            "KuCoin GET requests carry their parameters in the query; move the body into \"query\""
                .into(),
        ));
    }
    let ts = stamp.unix_ms.to_string();
    // Same shape as OKX's string to sign, with a ms timestamp.
    let text = prehash(&ts, &req.method, &req.path, &req.query, &req.body);
    let secret = cred.secret.expose();
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [
            ("KC-API-KEY".to_string(), cred.api_key.expose().to_string()),
            ("KC-API-SIGN".to_string(), signature(secret, &text)),
            ("KC-API-TIMESTAMP".to_string(), ts),
            (
                "KC-API-PASSPHRASE".to_string(),
                signed_passphrase(secret, pass),
            ),
            ("KC-API-KEY-VERSION".to_string(), KEY_VERSION.to_string()),
        ]
        .into(),
    })
}
