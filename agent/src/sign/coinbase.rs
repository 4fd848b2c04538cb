//! Coinbase Advanced Trade / CDP keys: a JWT per request, `Authorization: Bearer <jwt>`.
//!
//! Header `{"alg","kid","nonce","typ":"JWT"}`, claims `{"sub","iss":"cdp","nbf","exp","uri"}`
//! (docs/exchanges.md, "Coinbase"), compact JSON in that order, as coinbase-advanced-py writes
//! them. `kid` and `sub` are the key name; `nonce` is 64 hex characters from the stamp (the SDK
//! uses `secrets.token_hex()`); `nbf` is the agent's clock in seconds and `exp` = `nbf` + 120
//! (Coinbase: "Your JWT expires after 2 minutes", its maximum: its CDP SDK takes a shorter
//! `expires_in`), or the session's end when that is sooner: a token handed out near the end of
//! a session ran on for up to 120 s past it, any number of orders on its endpoint (red-team
//! round 27). `uri` is `"METHOD host/path"`, with the
//! host fixed to `api.coinbase.com` (Advanced Trade `/api/v3/...` and App `/v2/...` both live
//! there); the query and body are **not** covered, so the policy matters more here.
//!
//! An ECDSA P-256 key signs ES256 (JOSE raw `r‖s`, 64 bytes; randomized, so tests verify with
//! the public key); an Ed25519 key signs EdDSA. Coinbase App (`/v2`) refuses Ed25519 keys.
//!
//! Websocket: the same JWT without `uri`, in the `jwt` field of each `subscribe`.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tapsign_proto::{SignRequest, SignedRequest};

use super::keys::{KeyType, ed25519_key, es256_key, key_type};
use super::{SignError, SignOptions, Stamp};
use crate::credential::{Credential, Exchange};

/// The host in the `uri` claim.
pub const HOST: &str = "api.coinbase.com";
/// The longest a token is valid, in seconds (Coinbase's 2 minutes, its maximum).
pub const LIFETIME_SECS: u64 = 120;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    nonce: &'a str,
    typ: &'static str,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'static str,
    nbf: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<&'a str>,
}

/// Sign `req` for Coinbase: the request unchanged, plus the `Authorization` header.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    let v2 = req.path == "/v2" || req.path.starts_with("/v2/");
    if v2 && key_type(Exchange::Coinbase, cred.secret.expose()) == Ok(KeyType::Ed25519) {
        return Err(SignError::BadCredential(
            "Coinbase App (/v2) endpoints refuse Ed25519 keys; create an ECDSA (ES256) key in \
             the CDP portal for them and store it with `tapsign key add`"
                .into(),
        ));
    }
    let uri = format!("{} {HOST}{}", req.method, req.path);
    let token = jwt_for(cred, stamp, Some(&uri))?;
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [("Authorization".to_string(), format!("Bearer {token}"))].into(),
    })
}

/// The websocket token: `{"jwt":"..."}`, to merge into each `subscribe` message.
pub fn ws_jwt(cred: &Credential, stamp: &Stamp) -> Result<String, SignError> {
    let token = jwt_for(cred, stamp, None)?;
    Ok(serde_json::json!({ "jwt": token }).to_string())
}

fn jwt_for(cred: &Credential, stamp: &Stamp, uri: Option<&str>) -> Result<String, SignError> {
    super::common::check_key(cred, "Coinbase")?;
    let nonce = hex::encode(Sha256::digest(stamp.nonce));
    let nbf = stamp.unix_ms / 1000;
    jwt(
        cred.api_key.expose(),
        cred.secret.expose(),
        &nonce,
        nbf,
        expiry(nbf, stamp.session_ends_ms)?,
        uri,
    )
}

/// A token's `exp`: [`LIFETIME_SECS`] after `nbf`, or the session's end (whole seconds, rounded
/// down) when that is sooner. A session ending within the second leaves no time for a token.
fn expiry(nbf: u64, session_ends_ms: Option<u64>) -> Result<u64, SignError> {
    let exp = match session_ends_ms {
        Some(ms) => (nbf + LIFETIME_SECS).min(ms / 1000),
        None => nbf + LIFETIME_SECS,
    };
    if exp <= nbf {
        return Err(SignError::BadRequest(
            "the session ends within the second, too soon for a Coinbase token, which lives \
             no longer than the session: renew the session (`tapsign unlock --extend`) and ask \
             again"
                .into(),
        ));
    }
    Ok(exp)
}

/// The token for key `name` with private key `secret` (PEM or base64 Ed25519), valid from
/// `nbf` until `exp` (seconds); `uri` is left out for websocket tokens.
pub fn jwt(
    name: &str,
    secret: &[u8],
    nonce: &str,
    nbf: u64,
    exp: u64,
    uri: Option<&str>,
) -> Result<String, SignError> {
    let kind = key_type(Exchange::Coinbase, secret).map_err(SignError::BadCredential)?;
    let header = Header {
        alg: if kind == KeyType::Es256 {
            "ES256"
        } else {
            "EdDSA"
        },
        kid: name,
        nonce,
        typ: "JWT",
    };
    let claims = Claims {
        sub: name,
        iss: "cdp",
        nbf,
        exp,
        uri,
    };
    // Structs of strings and numbers always serialize.
    let mut token = Base64UrlUnpadded::encode_string(&serde_json::to_vec(&header).expect("header"));
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(
        &serde_json::to_vec(&claims).expect("claims"),
    ));
    let sig: Vec<u8> = if kind == KeyType::Es256 {
        use p256::ecdsa::signature::Signer;
        let key = es256_key(secret).map_err(SignError::BadCredential)?;
        let sig: p256::ecdsa::Signature = key.sign(token.as_bytes());
        sig.to_bytes().to_vec()
    } else {
        use ed25519_dalek::Signer;
        let key = ed25519_key(secret, true).map_err(SignError::BadCredential)?;
        key.sign(token.as_bytes()).to_bytes().to_vec()
    };
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&sig));
    Ok(token)
}
