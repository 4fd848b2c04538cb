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
        session_ends_ms: None,
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

pub fn encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Every spelling of `path` a server might still route to the same endpoint.
pub fn spellings(path: &str) -> Vec<String> {
    let (head, last) = path.rsplit_once('/').expect("a path");
    let first_letter = path
        .find(|c: char| c.is_ascii_alphabetic())
        .expect("a letter");
    vec![
        path.to_string(),
        path.to_uppercase(),
        path.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
        path.replace('/', "//"),
        format!("{path}/"),
        format!("{path}///"),
        format!("/{path}"),
        path.replace('/', "/./"),
        format!("{head}/x/../{last}"),
        format!("/api/v3/order/../../..{path}"),
        format!("/v1/orders/../..{path}"),
        path.replace('/', "%2F"),
        path.replace('/', "%2f"),
        path.replace('/', "%252F"),
        path.replace('/', "\\"),
        encode_all(path),
        encode_all(&encode_all(path)),
        format!(
            "{}%{:02X}{}",
            &path[..first_letter],
            path.as_bytes()[first_letter],
            &path[first_letter + 1..]
        ),
        format!("{head}/%2e/{last}"),
        format!("{head}/%2e%2e/{}", path.trim_start_matches('/')),
        format!("{path}?timestamp=1"),
        format!("{path}#frag"),
        format!("{path}%3Fx=1"),
        format!("{path};jsessionid=1"),
        format!("{head};v=1/{last}"),
        format!("{path}%20"),
        format!("//api.binance.com{path}"),
    ]
}

/// Ordinary trading endpoints pass the policy, also with a trailing or doubled slash.
pub fn assert_allowed(table: &[(Exchange, &str, &str)]) {
    for &(exchange, method, path) in table {
        for spelled in [
            path.to_string(),
            format!("{path}/"),
            path.replace('/', "//"),
        ] {
            assert_eq!(
                tapsign_agent::policy::check(exchange, method, &spelled),
                Ok(()),
                "{exchange} {method} {spelled}"
            );
        }
    }
}

pub mod corpus;
pub mod keys;
pub mod oracle;
