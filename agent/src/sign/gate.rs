//! Gate.io APIv4: hex HMAC-SHA512 in `SIGN`.
//!
//! String to sign (docs/exchanges.md, "Gate"):
//! `METHOD\npath\nquery\nhex(SHA-512(body))\ntimestamp`, where the path includes the
//! `/api/v4` prefix, the query is as sent (Gate signs it without URL-encoding, in URL order;
//! empty when none) and the timestamp is Unix seconds, stamped by the agent and sent in the
//! `Timestamp` header (Gate allows 60 s). Gate signs the path.

use sha2::{Digest, Sha512};
use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{check_key, hmac_sha512};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// The string Gate signs.
pub fn prehash(method: &str, path: &str, query: &str, body: &str, ts_secs: u64) -> String {
    let body_hash = hex::encode(Sha512::digest(body.as_bytes()));
    format!("{method}\n{path}\n{query}\n{body_hash}\n{ts_secs}")
}

/// Sign `req` for Gate: the request unchanged, plus `KEY`, `Timestamp` and `SIGN`.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "Gate")?;
    if !req.path.starts_with("/api/v4/") {
        return Err(SignError::BadRequest(
            "Gate signs the full path; send it with the /api/v4 prefix (/api/v4/spot/orders)"
                .into(),
        ));
    }
    let ts = stamp.unix_ms / 1000;
    let text = prehash(&req.method, &req.path, &req.query, &req.body, ts);
    let sig = hex::encode(hmac_sha512(cred.secret.expose(), text.as_bytes()));
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [
            ("KEY".to_string(), cred.api_key.expose().to_string()),
            ("Timestamp".to_string(), ts.to_string()),
            ("SIGN".to_string(), sig),
        ]
        .into(),
    })
}
