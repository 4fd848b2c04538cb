//! OKX v5: base64 HMAC-SHA256 in `OK-ACCESS-SIGN`, with the passphrase header.
//!
//! String to sign (docs/exchanges.md, "OKX"): `timestamp + METHOD + requestPath + body`,
//! where `timestamp` is ISO-8601 UTC with milliseconds (`2020-12-08T09:08:57.715Z`), identical
//! to the `OK-ACCESS-TIMESTAMP` header; `requestPath` includes `?query` when there is one; the
//! body is the exact JSON string (empty for GET). The agent stamps the timestamp. OKX signs the
//! path, so a signature cannot be moved to another endpoint.
//!
//! Websocket `login`: `{"op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}`
//! with `timestamp` in Unix **seconds** and `sign = base64(HMAC(ts + "GET" +
//! "/users/self/verify"))`; OKX lets it live 30 s.

use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{b64, check_key, hmac_sha256, no_body_on_get, passphrase};
use super::{SignError, SignOptions, Stamp};
use crate::clock::utc_ms;
use crate::credential::Credential;

/// `base64(HMAC-SHA256(secret, prehash))`, the signature of every OKX (and Bitget) request.
pub fn signature(secret: &[u8], prehash: &str) -> String {
    b64(&hmac_sha256(secret, prehash.as_bytes()))
}

/// The string OKX signs for a REST request.
pub fn prehash(timestamp: &str, method: &str, path: &str, query: &str, body: &str) -> String {
    let q = if query.is_empty() { "" } else { "?" };
    format!("{timestamp}{method}{path}{q}{query}{body}")
}

/// Sign `req` for OKX: the request unchanged, plus the four `OK-ACCESS-*` headers.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "OKX")?;
    let pass = passphrase(cred, "OKX")?;
    no_body_on_get(req, "OKX")?;
    let ts = utc_ms(stamp.unix_ms);
    let text = prehash(&ts, &req.method, &req.path, &req.query, &req.body);
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [
            (
                "OK-ACCESS-KEY".to_string(),
                cred.api_key.expose().to_string(),
            ),
            (
                "OK-ACCESS-SIGN".to_string(),
                signature(cred.secret.expose(), &text),
            ),
            ("OK-ACCESS-TIMESTAMP".to_string(), ts),
            ("OK-ACCESS-PASSPHRASE".to_string(), pass.to_string()),
        ]
        .into(),
    })
}

/// The method and path a websocket `login` signs, whatever websocket path the bot connects to.
pub const WS_SIGNED: (&str, &str) = ("GET", "/users/self/verify");

/// The websocket `login` message, stamped with the agent's clock in seconds.
pub fn ws_login(cred: &Credential, stamp: &Stamp) -> Result<String, SignError> {
    check_key(cred, "OKX")?;
    let pass = passphrase(cred, "OKX")?;
    let ts = (stamp.unix_ms / 1000).to_string();
    let (method, path) = WS_SIGNED;
    let sign = signature(cred.secret.expose(), &format!("{ts}{method}{path}"));
    let msg = serde_json::json!({"op": "login", "args": [{
        "apiKey": cred.api_key.expose(), "passphrase": pass, "timestamp": ts, "sign": sign,
    }]});
    Ok(msg.to_string())
}
