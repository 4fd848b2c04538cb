//! Kraken: the OFFICIAL vector and the DERIVED ones (docs/sources.md), the
//! nonce the agent puts first in the body, the persistent nonce store, and a property test
//! recomputing API-Sign from Kraken's definition.

mod support;

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha512};
use support::{cred, req};
use tapsign_agent::credential::Exchange::Kraken;
use tapsign_agent::sign::{self, SignError, SignOptions, Stamp};
use tapsign_proto::SignedRequest;

const SECRET: &str =
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
const NONCE: u64 = 1_616_492_376_594;

fn sign_with(nonce: Option<u64>, path: &str, body: &str) -> Result<SignedRequest, SignError> {
    let stamp = Stamp {
        unix_ms: NONCE,
        nonce: [0; 16],
        counter: nonce,
    };
    sign::sign(
        &cred(Kraken, "kraken-key", SECRET, None),
        &req("POST", path, "", body),
        &stamp,
        &SignOptions::default(),
    )
}

#[test]
fn official_add_order_vector() {
    let s = sign_with(
        Some(NONCE),
        "/0/private/AddOrder",
        "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
    )
    .expect("signs");
    assert_eq!(
        s.body,
        "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    );
    assert_eq!(
        s.headers["API-Sign"],
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    );
    assert_eq!(s.headers["API-Key"], "kraken-key");
}

#[test]
fn derived_empty_body_and_json_body_vectors() {
    let s = sign_with(Some(NONCE), "/0/private/GetWebSocketsToken", "").expect("signs");
    assert_eq!(s.body, "nonce=1616492376594");
    assert_eq!(
        s.headers["API-Sign"],
        "+mRDmY9Ks0Moc1zjv/BjfvYa98buO0x1yHChZR5onlfAzAUbfIYlLggUZzdQ0RsmXm4Sh+Q8iAIZdo2wSeHeiA=="
    );
    let json =
        r#"{"ordertype":"limit","pair":"XBTUSD","price":"37500","type":"buy","volume":"1.25"}"#;
    let s = sign_with(Some(NONCE), "/0/private/AddOrder", json).expect("signs");
    assert_eq!(
        s.body,
        r#"{"nonce":"1616492376594","ordertype":"limit","pair":"XBTUSD","price":"37500","type":"buy","volume":"1.25"}"#
    );
    assert_eq!(
        s.headers["API-Sign"],
        "r/o+GpKxXjV/mls/r5CKLu5R+yzK5psqvQ4hXxMX1nzdxTBhV+ui82QGgPZMMitpFwCOAdPEZMmXgZxD2chJEg=="
    );
    assert_eq!(
        sign_with(Some(5), "/0/private/Balance", "{}")
            .expect("signs")
            .body,
        r#"{"nonce":"5"}"#
    );
}

#[test]
fn a_bot_supplied_nonce_or_a_missing_agent_nonce_is_refused() {
    for body in ["nonce=1&pair=XBTUSD", "%6Eonce=1", r#"{"nonce":"1"}"#] {
        let got = sign_with(Some(NONCE), "/0/private/AddOrder", body);
        assert!(
            matches!(got, Err(SignError::BadRequest(m)) if m.contains("nonce")),
            "{body}"
        );
    }
    assert!(matches!(
        sign_with(None, "/0/private/Balance", ""),
        Err(SignError::BadRequest(_))
    ));
}

#[test]
fn a_secret_that_is_not_base64_is_a_credential_error() {
    let stamp = Stamp {
        unix_ms: 1,
        nonce: [0; 16],
        counter: Some(1),
    };
    let got = sign::sign(
        &cred(Kraken, "k", "not base64!", None),
        &req("POST", "/0/private/Balance", "", ""),
        &stamp,
        &SignOptions::default(),
    );
    assert!(matches!(got, Err(SignError::BadCredential(m)) if m.contains("base64")));
}

proptest! {
    #[test]
    fn api_sign_is_hmac_sha512_over_path_and_sha256_of_nonce_and_body(
        method in "[A-Z][a-zA-Z]{2,12}",
        body in support::params(),
        nonce in 1u64..u64::MAX / 2,
    ) {
        let path = format!("/0/private/{method}");
        let s = sign_with(Some(nonce), &path, &body).expect("signs");
        let post = if body.is_empty() { format!("nonce={nonce}") } else { format!("nonce={nonce}&{body}") };
        prop_assert_eq!(&s.body, &post);
        let mut msg = path.into_bytes();
        msg.extend_from_slice(&Sha256::digest(format!("{nonce}{post}").as_bytes()));
        let key = Base64::decode_vec(SECRET).expect("b64");
        let mut mac = Hmac::<Sha512>::new_from_slice(&key).expect("key");
        mac.update(&msg);
        prop_assert_eq!(&s.headers["API-Sign"], &Base64::encode_string(&mac.finalize().into_bytes()));
    }
}
