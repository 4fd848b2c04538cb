//! Upbit: a fresh JWT per request, `Authorization: Bearer <jwt>`.
//!
//! The token is HMAC-signed (HS512, which Upbit recommends; HS256 is also accepted) with the
//! secret key as raw bytes (Upbit: "do not base64-decode it"). Its claims, in this order:
//! `access_key`, `nonce` (a UUID v4, new for every request; Upbit has no timestamp claim, so the
//! nonce is the only replay protection), and, when the request has parameters, `query_hash` =
//! hex SHA-512 of the parameter string and `query_hash_alg` = `"SHA512"`.
//!
//! Which string is hashed (docs/exchanges.md, "Upbit"):
//! - GET / DELETE: the query exactly as sent. Upbit hashes the *unencoded* query
//!   (`states[]=wait`, not `states%5B%5D=wait`), so the bot must send it unencoded too.
//! - POST / PUT / PATCH with a JSON body: the top-level object turned into `k=v&...` in body
//!   order, arrays as repeated `key[]=v`. A body *and* a query is refused: Upbit (and ccxt)
//!   put every parameter of a body request in the body, and which of the two the server would
//!   hash is not documented, so signing one of them could only produce a rejected request.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use sha2::{Digest, Sha512};
use tapsign_proto::{SignRequest, SignedRequest};

use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

/// The JWT algorithm. [`sign`] uses HS512, which Upbit recommends; HS256 is still accepted
/// (Upbit's own WebSocket samples and ccxt sign HS256), and [`sign_with_alg`] offers it for a
/// key or region that turns out to need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alg {
    #[default]
    Hs512,
    Hs256,
}

impl Alg {
    /// The JWT header, byte for byte as Upbit's samples (and PyJWT) write it.
    fn header(self) -> &'static str {
        match self {
            Alg::Hs512 => r#"{"alg":"HS512","typ":"JWT"}"#,
            Alg::Hs256 => r#"{"alg":"HS256","typ":"JWT"}"#,
        }
    }

    fn mac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match self {
            Alg::Hs512 => super::common::hmac_sha512(key, msg),
            Alg::Hs256 => super::common::hmac_sha256(key, msg),
        }
    }
}

/// The payload claims, in the order Upbit's docs list them.
#[derive(Serialize)]
struct Claims<'a> {
    access_key: &'a str,
    nonce: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash_alg: Option<&'static str>,
}

/// Sign `req` for Upbit: the request is returned unchanged, plus the `Authorization` header.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    sign_with_alg(cred, req, stamp, opts, Alg::Hs512)
}

/// [`sign`] with a chosen JWT algorithm (HS512 or HS256).
pub fn sign_with_alg(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    _opts: &SignOptions,
    alg: Alg,
) -> Result<SignedRequest, SignError> {
    let access_key = cred.api_key.expose();
    if access_key.is_empty() || !access_key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SignError::BadCredential(
            "the Upbit access key is empty or has characters other than visible ASCII; \
             store it again with `tapsign key add`"
                .into(),
        ));
    }
    if cred.secret.is_empty() {
        return Err(SignError::BadCredential(
            "the Upbit secret key is empty; store it again with `tapsign key add`".into(),
        ));
    }
    let params = hashed_params(req)?;
    let nonce = uuid_v4(&stamp.nonce);
    let jwt = jwt(
        alg,
        access_key,
        &nonce,
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

/// The parameter string whose hash goes in the token, or `None` when the request has none.
pub fn hashed_params(req: &SignRequest) -> Result<Option<String>, SignError> {
    let body_method = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
    if !body_method && !req.body.is_empty() {
        return Err(SignError::BadRequest(format!(
            "Upbit {} requests carry their parameters in the query; move the body into \"query\"",
            req.method
        )));
    }
    if !req.body.is_empty() {
        if !req.query.is_empty() {
            return Err(SignError::BadRequest(
                "Upbit signs either the query or the JSON body, not both; put every parameter \
                 of a POST in the JSON body"
                    .into(),
            ));
        }
        let params = body_to_query(&req.body)?;
        return Ok((!params.is_empty()).then_some(params));
    }
    Ok((!req.query.is_empty()).then(|| req.query.clone()))
}

/// Hex SHA-512 of `params`: the `query_hash` claim.
pub fn query_hash(params: &str) -> String {
    hex::encode(Sha512::digest(params.as_bytes()))
}

/// The HS512 token for these claims. `params` is the string to hash (see [`hashed_params`]);
/// `nonce` is passed in as text so tests can use the fixed UUIDs of published examples.
pub fn jwt_hs512(access_key: &str, nonce: &str, params: Option<&str>, secret: &[u8]) -> String {
    jwt(Alg::Hs512, access_key, nonce, params, secret)
}

fn jwt(alg: Alg, access_key: &str, nonce: &str, params: Option<&str>, secret: &[u8]) -> String {
    let claims = Claims {
        access_key,
        nonce,
        query_hash: params.map(query_hash),
        query_hash_alg: params.map(|_| "SHA512"),
    };
    // Serializing a struct of strings cannot fail.
    let payload = serde_json::to_vec(&claims).expect("claims serialize");
    let mut token = Base64UrlUnpadded::encode_string(alg.header().as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&payload));
    let sig = alg.mac(secret, token.as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&sig));
    token
}

/// A UUID v4 string from 16 random bytes: the version and variant bits are set, so Upbit sees
/// the same kind of nonce its samples make with `uuid.uuid4()`.
pub fn uuid_v4(bytes: &[u8; 16]) -> String {
    let mut b = *bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Turn a JSON body's top-level object into the `k=v&...` string Upbit hashes, in body order.
/// Values are written unencoded, as Upbit's samples do (`unquote(urlencode(body, doseq=True))`).
/// Strings and integers are taken as they are; an array repeats its key as `key[]=v` (a key
/// that already ends in `[]` is kept). Anything else is refused, because how Upbit prints a
/// float, a boolean or `null` inside its hash is undocumented; its docs send numbers as strings.
pub fn body_to_query(body: &str) -> Result<String, SignError> {
    let Pairs(pairs) = serde_json::from_str(body).map_err(|e| {
        SignError::BadRequest(format!(
            "the Upbit body must be one JSON object ({e}); send parameters as {{\"market\":\"KRW-BTC\",...}}"
        ))
    })?;
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &pairs {
        // Upbit hashes `k=v&...` without escaping: a key or value holding `&`, `=`, `#` or
        // `%` (or brackets other than a key's trailing `[]`) would hash like other
        // parameters than the ones the body holds.
        let bare_key = key.strip_suffix("[]").unwrap_or(key);
        if !plain(bare_key) {
            return Err(SignError::BadRequest(format!(
                "the Upbit body's key {key:?} holds a character tapsign refuses in hashed parameters (& = # % [ ])"
            )));
        }
        if !seen.insert(key.as_str()) {
            return Err(SignError::BadRequest(format!(
                "the Upbit body has the key {key:?} twice; send each parameter once"
            )));
        }
        match value {
            // An empty list would be hashed as nothing at all (the policy refuses it first).
            serde_json::Value::Array(items) if items.is_empty() => {
                return Err(SignError::BadRequest(format!(
                    "the Upbit body's key {key:?} holds an empty list, which the hash leaves out; leave the key out"
                )));
            }
            serde_json::Value::Array(items) => {
                let name = if key.ends_with("[]") {
                    key.clone()
                } else {
                    format!("{key}[]")
                };
                for item in items {
                    super::form::push_pair(&mut out, &name, &scalar(key, item)?);
                }
            }
            other => super::form::push_pair(&mut out, key, &scalar(key, other)?),
        }
    }
    Ok(out)
}

/// Free of the characters that would change how `k=v&...` splits.
pub(crate) fn plain(s: &str) -> bool {
    !s.contains(['&', '=', '#', '%', '[', ']'])
}

/// A string or an integer, as text; anything else is refused with the key that holds it.
fn scalar(key: &str, value: &serde_json::Value) -> Result<String, SignError> {
    match value {
        serde_json::Value::String(s) if !plain(s) => Err(SignError::BadRequest(format!(
            "the Upbit body's {key:?} holds a character tapsign refuses in hashed parameters (& = # % [ ])"
        ))),
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(SignError::BadRequest(format!(
            "the Upbit body's {key:?} holds {value}, which tapsign cannot hash the way Upbit \
             does; send it as a string (\"{key}\": \"...\"), as Upbit's docs do"
        ))),
    }
}

/// A JSON object read as `(key, value)` pairs in body order, duplicates included, so a repeated
/// key is noticed instead of silently keeping one of the values.
struct Pairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HS256 is not used yet; this keeps it correct for when a key needs it. Value computed
    /// with Python's hmac, like the DERIVED vectors (docs/sources.md).
    #[test]
    fn hs256_token_matches_an_independent_implementation() {
        let jwt = jwt(
            Alg::Hs256,
            "a7Xd92LmQW3vBtRzYpMj5CxNKeT1HuVs0fFgJcAw",
            "b2f1e3f8-2dc1-4d6f-a838-c74c49b0e39a",
            None,
            b"test-secret-not-real",
        );
        assert_eq!(
            jwt,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoiYTdYZDkyTG1RVzN2QnRSellwTWo1Q3hOS2VUMUh1VnMwZkZnSmNBdyIsIm5vbmNlIjoiYjJmMWUzZjgtMmRjMS00ZDZmLWE4MzgtYzc0YzQ5YjBlMzlhIn0.Q61liDKQEWsybV444Y0JwqFqEBlpg3hQOvnWI4uFJNw"
        );
    }
}
