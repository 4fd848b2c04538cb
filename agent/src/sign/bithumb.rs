//! Bithumb API 2.0 (`api.bithumb.com/v1/...`): a fresh JWT per request,
//! `Authorization: Bearer <jwt>`.
//!
//! The model is Upbit's (docs/exchanges.md, "Bithumb"), with two differences: the token is
//! HS256 (Bithumb: "서명 방식은 HS256 을 권장") and it carries a `timestamp` claim in
//! milliseconds, which the agent stamps. Claims, in this order: `access_key`, `nonce` (UUID v4
//! from the stamp), `timestamp`, and, when the request has parameters, `query_hash` (hex
//! SHA-512 of the parameter string) and `query_hash_alg` = `"SHA512"`. Which string is hashed
//! is exactly Upbit's rule ([`upbit::hashed_params`]): the query as sent for GET/DELETE, the
//! JSON body's pairs in body order for POST.
//!
//! The secret key is used as raw bytes. The bot cannot put a time into the token: the agent
//! writes `timestamp` itself, so nothing needs a skew check.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use tapsign_proto::{SignRequest, SignedRequest};

use super::common::{check_key, hmac_sha256};
use super::upbit::{hashed_params, query_hash, uuid_v4};
use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Serialize)]
struct Claims<'a> {
    access_key: &'a str,
    nonce: &'a str,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash_alg: Option<&'static str>,
}

/// Sign `req` for Bithumb: the request unchanged, plus the `Authorization` header.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_key(cred, "Bithumb")?;
    let params = hashed_params(req)?;
    if !req.body.is_empty() {
        check_body_values(params.as_deref().unwrap_or(""))?;
    }
    let nonce = uuid_v4(&stamp.nonce);
    let jwt = jwt(
        cred.api_key.expose(),
        &nonce,
        stamp.unix_ms,
        params.as_deref(),
        cred.secret.expose(),
    );
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        headers: [("Authorization".to_string(), format!("Bearer {jwt}"))].into(),
    })
}

/// Bithumb's samples hash `urlencode(body)`, Upbit's the unencoded pairs; the two agree only
/// while values need no escaping. A body value that would be escaped is refused rather than
/// signed one way and checked the other.
fn check_body_values(params: &str) -> Result<(), SignError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    for (name, value) in super::form::pairs(params) {
        if !value.chars().all(plain) {
            return Err(SignError::BadRequest(format!(
                "the Bithumb body's {name:?} has characters that URL-encoding would change; \
                 Bithumb's hash of such values is ambiguous, so send letters, digits, '-', \
                 '.', '_' and '~' only"
            )));
        }
    }
    Ok(())
}

/// The HS256 token for these claims; `params` is the string to hash, if any.
pub fn jwt(
    access_key: &str,
    nonce: &str,
    timestamp_ms: u64,
    params: Option<&str>,
    secret: &[u8],
) -> String {
    let claims = Claims {
        access_key,
        nonce,
        timestamp: timestamp_ms,
        query_hash: params.map(query_hash),
        query_hash_alg: params.map(|_| "SHA512"),
    };
    // Serializing a struct of strings and a number cannot fail.
    let payload = serde_json::to_vec(&claims).expect("claims serialize");
    let mut token = Base64UrlUnpadded::encode_string(HEADER.as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&payload));
    let sig = hmac_sha256(secret, token.as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&sig));
    token
}
