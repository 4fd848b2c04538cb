//! Bithumb: the DERIVED JWT of docs/sources.md (no official secret is
//! published), the agent's timestamp claim, and a property test recomputing the token.

mod support;

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha512};
use support::{assert_unchanged, cred, req};
use tapsign_agent::credential::Exchange::Bithumb;
use tapsign_agent::sign::{self, SignOptions, Stamp};

const KEY: &str = "L7rVaYfBIc2BDsnlQGfkR93d6DoOAJCw7mJr5Eso";
const SECRET: &str = "test-secret-not-real";
const NONCE: &str = "6f5570df-d8bc-4daf-85b4-976733feb624";
const TS: u64 = 1_712_230_310_689;
const QUERY: &str = "market=KRW-BTC&side=bid&volume=0.001&price=84000000&order_type=limit";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoiTDdyVmFZZkJJYzJCRHNubFFHZmtSOTNkNkRvT0FKQ3c3bUpyNUVzbyIsIm5vbmNlIjoiNmY1NTcwZGYtZDhiYy00ZGFmLTg1YjQtOTc2NzMzZmViNjI0IiwidGltZXN0YW1wIjoxNzEyMjMwMzEwNjg5LCJxdWVyeV9oYXNoIjoiYWM1YmI4MWE2N2ZiMzkxMzUzNjc0NWU2ZGJlZmYyNDI4N2NmZmJhZjdiMGMwNTg1OGUwZDNmNzY0NTFhNmZhMjIyYTdlM2QzYWE1YjJiYjU2MWE1ZGVjMjUyZTY5MWExYzA0NWQzMGI4YzE5YTkwYjRhNDU1ZDMwZTU5MGRmOGYiLCJxdWVyeV9oYXNoX2FsZyI6IlNIQTUxMiJ9.BmrXO9i6902ZIsay8X-DeRNLnjV1TvK4LnkCX2UdTRU";

fn stamp() -> Stamp {
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(NONCE.replace('-', ""), &mut nonce).expect("hex");
    Stamp {
        unix_ms: TS,
        nonce,
        counter: None,
        session_ends_ms: None,
    }
}

#[test]
fn derived_jwt_for_a_query_and_for_the_same_post_body() {
    let c = cred(Bithumb, KEY, SECRET, None);
    let r = req("GET", "/v1/orders", QUERY, "");
    let s = sign::sign(&c, &r, &stamp(), &SignOptions::default()).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(s.headers["Authorization"], format!("Bearer {JWT}"));
    let body = r#"{"market":"KRW-BTC","side":"bid","volume":"0.001","price":"84000000","order_type":"limit"}"#;
    let s = sign::sign(
        &c,
        &req("POST", "/v1/orders", "", body),
        &stamp(),
        &SignOptions::default(),
    )
    .expect("signs");
    assert_eq!(s.headers["Authorization"], format!("Bearer {JWT}"));
    assert_eq!(
        hex::encode(Sha512::digest(QUERY)),
        "ac5bb81a67fb3913536745e6dbeff24287cffbaf7b0c05858e0d3f76451a6fa222a7e3d3aa5b2bb561a5dec252e691a1c045d30b8c19a90b4a455d30e590df8f"
    );
}

proptest! {
    #[test]
    fn token_is_hs256_over_the_documented_claims(query in support::params(), unix_ms in 0u64..4_000_000_000_000, nonce in any::<[u8; 16]>()) {
        let st = Stamp { unix_ms, nonce, counter: None, session_ends_ms: None };
        let s = sign::sign(&cred(Bithumb, KEY, SECRET, None), &req("GET", "/v1/orders", &query, ""), &st, &SignOptions::default()).expect("signs");
        let uuid = tapsign_agent::sign::upbit::uuid_v4(&nonce);
        let hash = if query.is_empty() { String::new() } else {
            format!(r#","query_hash":"{}","query_hash_alg":"SHA512""#, hex::encode(Sha512::digest(&query)))
        };
        let claims = format!(r#"{{"access_key":"{KEY}","nonce":"{uuid}","timestamp":{unix_ms}{hash}}}"#);
        let input = format!("{}.{}", Base64UrlUnpadded::encode_string(br#"{"alg":"HS256","typ":"JWT"}"#), Base64UrlUnpadded::encode_string(claims.as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(input.as_bytes());
        let jwt = format!("{input}.{}", Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes()));
        prop_assert_eq!(&s.headers["Authorization"], &format!("Bearer {jwt}"));
    }
}

#[test]
fn a_body_value_that_url_encoding_would_change_is_refused() {
    let c = cred(Bithumb, KEY, SECRET, None);
    let body = r#"{"market":"KRW-BTC","identifier":"my order/1"}"#;
    let got = sign::sign(
        &c,
        &req("POST", "/v1/orders", "", body),
        &stamp(),
        &SignOptions::default(),
    );
    assert!(matches!(got, Err(sign::SignError::BadRequest(m)) if m.contains("identifier")));
}
