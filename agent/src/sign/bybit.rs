//! Bybit v5: lowercase hex HMAC-SHA256 in `X-BAPI-SIGN`.
//!
//! String to sign (docs/exchanges.md, "Bybit"): `timestamp + apiKey + recvWindow +
//! payload`, where the payload is the query string as sent (GET/DELETE) or the exact JSON body
//! (POST). The agent stamps `X-BAPI-TIMESTAMP` (ms) and sets `X-BAPI-RECV-WINDOW` to the
//! agent's cap (`recv_window_cap_ms`, Bybit's default 5000), so a bot can neither date a
//! signature ahead nor widen the window. Bybit checks
//! `server_time − recv_window ≤ timestamp < server_time + 1000`.
//!
//! The signature does not cover the path, so the policy also refuses fund-moving parameters
//! on every path (see `policy`).
//!
//! Websocket `auth`: `{"op":"auth","args":[apiKey, expires, hex(HMAC("GET/realtime" +
//! expires))]}` with `expires` in ms; the agent sets it to now + the recv-window cap.

use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{check_key, hmac_sha256};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// The string Bybit signs.
pub fn prehash(ts_ms: u64, api_key: &str, recv_window_ms: u64, payload: &str) -> String {
    format!("{ts_ms}{api_key}{recv_window_ms}{payload}")
}

/// Sign `req` for Bybit: the request unchanged, plus the four `X-BAPI-*` headers.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "Bybit")?;
    let payload = match req.method.as_str() {
        "GET" | "DELETE" if req.body.is_empty() => &req.query,
        "POST" | "PUT" if req.query.is_empty() => &req.body,
        _ => {
            return Err(SignError::BadRequest(
                "Bybit signs the query of a GET and the JSON body of a POST, never both; send \
                 GET parameters in \"query\" and POST parameters in \"body\""
                    .into(),
            ));
        }
    };
    let api_key = cred.api_key.expose();
    let recv = opts.recv_window_cap_ms;
    let text = prehash(stamp.unix_ms, api_key, recv, payload);
    let sig = hex::encode(hmac_sha256(cred.secret.expose(), text.as_bytes()));
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [
            ("X-BAPI-API-KEY".to_string(), api_key.to_string()),
            ("X-BAPI-TIMESTAMP".to_string(), stamp.unix_ms.to_string()),
            ("X-BAPI-RECV-WINDOW".to_string(), recv.to_string()),
            ("X-BAPI-SIGN".to_string(), sig),
        ]
        .into(),
    })
}

/// The method and path a websocket `auth` signs, whatever websocket path the bot connects to.
pub const WS_SIGNED: (&str, &str) = ("GET", "/realtime");

/// Hex HMAC-SHA256 of `"GET/realtime" + expires`: the websocket auth signature.
pub fn ws_signature(secret: &[u8], expires_ms: u64) -> String {
    let (method, path) = WS_SIGNED;
    hex::encode(hmac_sha256(
        secret,
        format!("{method}{path}{expires_ms}").as_bytes(),
    ))
}

/// The websocket `auth` message, valid until now + the recv-window cap.
pub fn ws_auth(cred: &Credential, stamp: &Stamp, opts: &SignOptions) -> Result<String, SignError> {
    check_key(cred, "Bybit")?;
    let expires = stamp.unix_ms + opts.recv_window_cap_ms;
    let sig = ws_signature(cred.secret.expose(), expires);
    let msg = serde_json::json!({"op": "auth", "args": [cred.api_key.expose(), expires, sig]});
    Ok(msg.to_string())
}
