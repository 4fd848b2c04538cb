//! Bitget (v2 classic, v3 UTA): base64 HMAC-SHA256 in `ACCESS-SIGN`, with the passphrase.
//!
//! String to sign (docs/exchanges.md, "Bitget"): `timestamp + METHOD + requestPath +
//! ("?" + queryString) + body`, timestamp in ms (stamped by the agent). Bitget wants the query
//! sorted by key in ascending order; the agent refuses an unsorted query rather than sign
//! something Bitget would reject, and never reorders it itself (it signs the bytes as sent).
//! The passphrase goes in `ACCESS-PASSPHRASE` as it is (not signed). Bitget signs the path.

use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{check_key, no_body_on_get, passphrase};
use super::form::{decoded, pairs};
use super::okx::{prehash, signature};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// Sign `req` for Bitget: the request unchanged, plus the `ACCESS-*` headers.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "Bitget")?;
    let pass = passphrase(cred, "Bitget")?;
    no_body_on_get(req, "Bitget")?;
    let names: Vec<String> = pairs(&req.query).map(|(n, _)| decoded(n)).collect();
    if names.windows(2).any(|w| w[0] > w[1]) {
        return Err(SignError::BadRequest(
            "Bitget wants the query sorted by parameter name (ascending); sort it before \
             asking for a signature and send it in that order"
                .into(),
        ));
    }
    let ts = stamp.unix_ms.to_string();
    // Bitget's string to sign has the same shape as OKX's, with a ms timestamp.
    let text = prehash(&ts, &req.method, &req.path, &req.query, &req.body);
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [
            ("ACCESS-KEY".to_string(), cred.api_key.expose().to_string()),
            (
                "ACCESS-SIGN".to_string(),
                signature(cred.secret.expose(), &text),
            ),
            ("ACCESS-TIMESTAMP".to_string(), ts),
            ("ACCESS-PASSPHRASE".to_string(), pass.to_string()),
        ]
        .into(),
    })
}
