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
use tapsign_agent::sign::{self, SignError, SignOptions, Stamp, kraken};
use tapsign_proto::SignedRequest;

const SECRET: &str =
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
const NONCE: u64 = 1_616_492_376_594;

fn sign_with(nonce: Option<u64>, path: &str, body: &str) -> Result<SignedRequest, SignError> {
    let stamp = Stamp {
        unix_ms: NONCE,
        nonce: [0; 16],
        counter: nonce,
        session_ends_ms: None,
    };
    sign::sign(
        &cred(Kraken, "kraken-key", SECRET, None),
        &req("POST", path, "", body),
        &stamp,
        &SignOptions::default(),
    )
}

/// Kraken's API-Sign of `body` on `path` with nonce `nonce`, recomputed from its definition.
fn api_sign(path: &str, nonce: u64, body: &str) -> String {
    let mut msg = path.as_bytes().to_vec();
    msg.extend_from_slice(&Sha256::digest(format!("{nonce}{body}").as_bytes()));
    let key = Base64::decode_vec(SECRET).expect("b64");
    let mut mac = Hmac::<Sha512>::new_from_slice(&key).expect("key");
    mac.update(&msg);
    Base64::encode_string(&mac.finalize().into_bytes())
}

/// Kraken's vector signs an AddOrder body without a `deadline`, which the agent now adds to
/// every order request: the vector pins the scheme's function, and the signed request is the
/// vector's body with the agent's deadline after the nonce.
#[test]
fn official_add_order_vector() {
    let key = Base64::decode_vec(SECRET).expect("b64");
    let body = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
    assert_eq!(
        kraken::signature(&key, "/0/private/AddOrder", NONCE, body),
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    );
    assert_eq!(
        api_sign("/0/private/AddOrder", NONCE, body),
        kraken::signature(&key, "/0/private/AddOrder", NONCE, body)
    );
    let s = sign_with(
        Some(NONCE),
        "/0/private/AddOrder",
        "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
    )
    .expect("signs");
    assert_eq!(
        s.body,
        "nonce=1616492376594&deadline=2021-03-23T09%3A40%3A06Z&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    );
    assert_eq!(
        s.headers["API-Sign"],
        api_sign("/0/private/AddOrder", NONCE, &s.body)
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
    let key = Base64::decode_vec(SECRET).expect("b64");
    assert_eq!(
        kraken::signature(
            &key,
            "/0/private/AddOrder",
            NONCE,
            r#"{"nonce":"1616492376594","ordertype":"limit","pair":"XBTUSD","price":"37500","type":"buy","volume":"1.25"}"#
        ),
        "r/o+GpKxXjV/mls/r5CKLu5R+yzK5psqvQ4hXxMX1nzdxTBhV+ui82QGgPZMMitpFwCOAdPEZMmXgZxD2chJEg=="
    );
    let s = sign_with(Some(NONCE), "/0/private/AddOrder", json).expect("signs");
    assert_eq!(
        s.body,
        r#"{"nonce":"1616492376594","deadline":"2021-03-23T09:40:06Z","ordertype":"limit","pair":"XBTUSD","price":"37500","type":"buy","volume":"1.25"}"#
    );
    assert_eq!(
        s.headers["API-Sign"],
        api_sign("/0/private/AddOrder", NONCE, &s.body)
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

/// An order signature held back carried nothing that expires: a bot could send it days later,
/// whenever no newer nonce of the key had reached Kraken (red-team round 27). Every method that
/// places or changes an order now carries a deadline at most 30 s past the agent's clock.
#[test]
fn kraken_order_requests_carry_a_deadline_the_agent_stamps() {
    for path in kraken::ORDER_METHODS {
        let s = sign_with(Some(NONCE), path, "pair=XBTUSD&volume=1").expect("signs");
        assert_eq!(
            s.body, "nonce=1616492376594&deadline=2021-03-23T09%3A40%3A06Z&pair=XBTUSD&volume=1",
            "{path}"
        );
        assert_eq!(s.headers["API-Sign"], api_sign(path, NONCE, &s.body));
        for (json, want) in [
            (
                r#"{"txid":"O1"}"#,
                r#"{"nonce":"1616492376594","deadline":"2021-03-23T09:40:06Z","txid":"O1"}"#,
            ),
            (
                " { }",
                r#"{"nonce":"1616492376594","deadline":"2021-03-23T09:40:06Z"}"#,
            ),
        ] {
            let s = sign_with(Some(NONCE), path, json).expect("signs");
            assert_eq!(s.body, want, "{path}");
            let parsed: serde_json::Value = serde_json::from_str(&s.body).expect("JSON");
            assert_eq!(parsed["deadline"], "2021-03-23T09:40:06Z");
        }
        assert_eq!(
            sign_with(Some(NONCE), path, "").expect("signs").body,
            "nonce=1616492376594&deadline=2021-03-23T09%3A40%3A06Z"
        );
    }
    // AddOrderBatch, which the profile leaves out and a key's entry naming it signs, places
    // up to 15 orders: held back without a deadline, they stayed good at Kraken as long as
    // a lone AddOrder's did before.
    let s = sign_with(
        Some(NONCE),
        "/0/private/AddOrderBatch",
        r#"{"pair":"XBTUSD","orders":[{"ordertype":"market","type":"buy","volume":"1"}]}"#,
    )
    .expect("signs");
    assert!(
        s.body.starts_with(
            r#"{"nonce":"1616492376594","deadline":"2021-03-23T09:40:06Z","pair":"XBTUSD""#
        ),
        "{}",
        s.body
    );
    // Cancels and reads move nothing, and Kraken's reference gives them no deadline.
    for path in ["/0/private/CancelOrder", "/0/private/Balance"] {
        let s = sign_with(Some(NONCE), path, "txid=O1").expect("signs");
        assert_eq!(s.body, "nonce=1616492376594&txid=O1", "{path}");
    }
}

/// The agent's clock is NONCE (09:39:36.594 UTC), so its bound is 09:40:06.594: a bot's
/// deadline up to that instant stands, byte for byte; a later one, one in any other form, or
/// two, is refused with what to send instead.
#[test]
fn a_bots_deadline_stands_only_when_strict_and_within_the_bound() {
    for (path, body) in [
        (
            "/0/private/AddOrder",
            "pair=XBTUSD&deadline=2021-03-23T09:40:06Z",
        ),
        (
            "/0/private/AddOrder",
            "deadline=2021-03-23T09%3A40%3A00Z&pair=XBTUSD",
        ),
        (
            "/0/private/EditOrder",
            "%64eadline=2021-03-23T09:40:06.594Z",
        ),
        (
            "/0/private/AmendOrder",
            r#"{"txid":"O1","deadline":"2021-03-23T09:39:40Z"}"#,
        ),
        // Already past: Kraken refuses it, and the signature dies with it.
        ("/0/private/AddOrder", "deadline=2020-01-01T00:00:00Z"),
    ] {
        let s = sign_with(Some(NONCE), path, body).expect(body);
        let lead = if let Some(members) = body.strip_prefix('{') {
            format!("{{\"nonce\":\"{NONCE}\",{members}")
        } else {
            format!("nonce={NONCE}&{body}")
        };
        assert_eq!(s.body, lead, "{body}");
    }
    for (body, why) in [
        ("deadline=2021-03-23T09:40:07Z", "past the agent's clock"),
        (
            "deadline=2021-03-23T09:40:06.595Z",
            "past the agent's clock",
        ),
        ("deadline=2021-03-23T09:40:36Z", "59 s past"),
        ("deadline=2099-01-01T00:00:00Z", "more than the 30 s"),
        (
            r#"{"deadline":"2021-03-23T09:41:00Z"}"#,
            "past the agent's clock",
        ),
        (
            "deadline=2021-03-23T09:40:00+00:00",
            "not an RFC 3339 UTC time",
        ),
        (
            "deadline=2021-03-23T09%3A40%3A00%2B00%3A00",
            "not an RFC 3339 UTC time",
        ),
        ("deadline=2021-03-23 09:40:00Z", "not an RFC 3339 UTC time"),
        ("deadline=2021-03-23T09:40:00z", "not an RFC 3339 UTC time"),
        ("deadline=%2B30", "not an RFC 3339 UTC time"),
        ("deadline=1616492400", "not an RFC 3339 UTC time"),
        ("deadline=", "not an RFC 3339 UTC time"),
        (r#"{"deadline":1616492400}"#, "not a JSON string"),
        ("Deadline=2021-03-23T09:40:00Z", "does not read as deadline"),
        (
            "deadline=2021-03-23T09:40:00Z&deadline=2021-03-23T09:40:01Z",
            "more than one deadline",
        ),
    ] {
        for path in kraken::ORDER_METHODS {
            let got = sign_with(Some(NONCE), path, body);
            assert!(
                matches!(&got, Err(SignError::BadRequest(m))
                    if m.contains(why) && m.contains("leave deadline out")
                        && m.contains("2021-03-23T09:40:06Z")),
                "{path} {body}: {got:?}"
            );
        }
    }
}

#[test]
fn a_secret_that_is_not_base64_is_a_credential_error() {
    let stamp = Stamp {
        unix_ms: 1,
        nonce: [0; 16],
        counter: Some(1),
        session_ends_ms: None,
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
        prop_assume!(!kraken::ORDER_METHODS.contains(&path.as_str()));
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
