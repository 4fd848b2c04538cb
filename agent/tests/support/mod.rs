//! Builders the per-exchange signing tests share.
#![allow(dead_code)] // Each test binary uses a different subset.

use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::sign::{self, SignError, SignOptions, Stamp};
use tapsign_proto::{SignKind, SignRequest, SignedRequest};

pub fn cred(exchange: Exchange, key: &str, secret: &str, passphrase: Option<&str>) -> Credential {
    Credential {
        name: format!("{exchange}-test"),
        exchange,
        api_key: SecretString::new(key.into()),
        secret: SecretBytes::new(secret.as_bytes().to_vec()),
        passphrase: passphrase.map(|p| SecretString::new(p.into())),
    }
}

pub fn req(method: &str, path: &str, query: &str, body: &str) -> SignRequest {
    SignRequest {
        key: "k".into(),
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.into(),
        kind: SignKind::Rest,
    }
}

pub fn ws(path: &str) -> SignRequest {
    SignRequest {
        kind: SignKind::WsLogin,
        ..req("GET", path, "", "")
    }
}

pub fn at(unix_ms: u64) -> Stamp {
    Stamp {
        unix_ms,
        nonce: [7; 16],
        counter: None,
    }
}

pub fn sign_at(c: &Credential, r: &SignRequest, unix_ms: u64) -> Result<SignedRequest, SignError> {
    sign::sign(c, r, &at(unix_ms), &SignOptions::default())
}

/// The signed request must carry the bot's method, path, query and body unchanged.
pub fn assert_unchanged(signed: &SignedRequest, r: &SignRequest) {
    assert_eq!(
        (&signed.method, &signed.path, &signed.query, &signed.body),
        (&r.method, &r.path, &r.query, &r.body)
    );
}

/// Query strings and bodies without characters that need escaping.
pub fn params() -> impl proptest::strategy::Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-zA-Z]{1,8}=[a-zA-Z0-9.]{0,8}(&[a-zA-Z]{1,8}=[a-zA-Z0-9.]{0,8}){0,4})?",
    )
    .expect("regex")
}
