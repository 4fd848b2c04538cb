//! Upbit: the DERIVED vectors (docs/sources.md), the request shapes the agent
//! refuses, and a property test that recomputes every token from the scheme's definition.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::sign::{self, SignError, SignOptions, Stamp, upbit};
use tapsign_proto::SignRequest;

const ACCESS: &str = "a7Xd92LmQW3vBtRzYpMj5CxNKeT1HuVs0fFgJcAw";
const SECRET: &str = "test-secret-not-real";
const NONCE: &str = "b2f1e3f8-2dc1-4d6f-a838-c74c49b0e39a";
const QS: &str = "market=KRW-BTC&states[]=wait&states[]=watch&limit=10";
const QS_HASH: &str = "e3cfc649139c595e1c26a8aa2b3c8504f4b15011fc2b819081451e5e845172bd5dbbb5110ec5d7a3d1d32ff71f46a78323a040e8bedf8672021fd2206190a3a8";
const POST_BODY: &str =
    r#"{"market":"KRW-BTC","side":"bid","volume":"0.01","price":"100.0","ord_type":"limit"}"#;
const POST_QS: &str = "market=KRW-BTC&side=bid&volume=0.01&price=100.0&ord_type=limit";
const POST_HASH: &str = "1db802a392c559d55c99662a20c6911ba9ea31a9f58bf92156af243ca1462b004c6e6b27c934afefbde5ca15d28deb67e90cd619b466c9a3c2fe020ad2bbdd24";
const UPBIT_JWT: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoiYTdYZDkyTG1RVzN2QnRSellwTWo1Q3hOS2VUMUh1VnMwZkZnSmNBdyIsIm5vbmNlIjoiYjJmMWUzZjgtMmRjMS00ZDZmLWE4MzgtYzc0YzQ5YjBlMzlhIiwicXVlcnlfaGFzaCI6ImUzY2ZjNjQ5MTM5YzU5NWUxYzI2YThhYTJiM2M4NTA0ZjRiMTUwMTFmYzJiODE5MDgxNDUxZTVlODQ1MTcyYmQ1ZGJiYjUxMTBlYzVkN2EzZDFkMzJmZjcxZjQ2YTc4MzIzYTA0MGU4YmVkZjg2NzIwMjFmZDIyMDYxOTBhM2E4IiwicXVlcnlfaGFzaF9hbGciOiJTSEE1MTIifQ.BRxYwI73BuEI8Up6f73d8d5IJlwoCv3Rq1GGVuFMnmdk8a76BNJ7wwSiPwYpxoMffGL183Q369W_NosUoRIByA";
const UPBIT_JWT_NOQ: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoiYTdYZDkyTG1RVzN2QnRSellwTWo1Q3hOS2VUMUh1VnMwZkZnSmNBdyIsIm5vbmNlIjoiYjJmMWUzZjgtMmRjMS00ZDZmLWE4MzgtYzc0YzQ5YjBlMzlhIn0.TV4SNEdlm8Fg-Lf-jdr6p68gO5JTwd09I9Zn4yNzngNnVtxJkCmB8bDy6DIPdu0XI9ZkRXgjqfN_giH0wPTFTA";

fn cred() -> Credential {
    Credential {
        name: "upbit-test".into(),
        exchange: Exchange::Upbit,
        api_key: SecretString::new(ACCESS.into()),
        secret: SecretBytes::new(SECRET.as_bytes().to_vec()),
        passphrase: None,
    }
}

/// The stamp whose nonce bytes are the derived vectors' UUID (already a valid v4).
fn vector_stamp() -> Stamp {
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(NONCE.replace('-', ""), &mut nonce).expect("hex");
    Stamp {
        unix_ms: 1_700_000_000_000,
        nonce,
        counter: None,
        session_ends_ms: None,
    }
}

fn req(method: &str, path: &str, query: &str, body: &str) -> SignRequest {
    SignRequest {
        key: "upbit-test".into(),
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn sign(r: &SignRequest) -> Result<tapsign_proto::SignedRequest, SignError> {
    sign::sign(&cred(), r, &vector_stamp(), &SignOptions::default())
}

fn bearer(r: &SignRequest) -> String {
    let signed = sign(r).expect("signs");
    signed.headers["Authorization"]
        .strip_prefix("Bearer ")
        .expect("Bearer")
        .to_string()
}

#[test]
fn query_hashes_match_derived_vectors() {
    assert_eq!(upbit::query_hash(QS), QS_HASH);
    assert_eq!(upbit::query_hash(POST_QS), POST_HASH);
}

#[test]
fn jwt_builder_matches_derived_vectors() {
    assert_eq!(
        upbit::jwt_hs512(ACCESS, NONCE, Some(QS), SECRET.as_bytes()),
        UPBIT_JWT
    );
    assert_eq!(
        upbit::jwt_hs512(ACCESS, NONCE, None, SECRET.as_bytes()),
        UPBIT_JWT_NOQ
    );
}

#[test]
fn get_with_query_signs_the_derived_vector() {
    let r = req("GET", "/v1/orders/open", QS, "");
    let signed = sign(&r).expect("signs");
    assert_eq!(
        signed.headers["Authorization"],
        format!("Bearer {UPBIT_JWT}")
    );
    assert_eq!(signed.headers.len(), 1);
    assert_eq!(
        (signed.method, signed.path, signed.query, signed.body),
        (r.method, r.path, r.query, r.body)
    );
}

#[test]
fn request_without_parameters_has_no_query_hash() {
    assert_eq!(bearer(&req("GET", "/v1/accounts", "", "")), UPBIT_JWT_NOQ);
    // An empty JSON object has no parameters either (ccxt omits the hash too).
    assert_eq!(bearer(&req("POST", "/v1/orders", "", "{}")), UPBIT_JWT_NOQ);
}

#[test]
fn post_body_is_hashed_as_a_query_string_in_body_order() {
    assert_eq!(upbit::body_to_query(POST_BODY).expect("converts"), POST_QS);
    let jwt = bearer(&req("POST", "/v1/orders", "", POST_BODY));
    assert_eq!(
        jwt,
        upbit::jwt_hs512(ACCESS, NONCE, Some(POST_QS), SECRET.as_bytes())
    );
    // Whitespace in the body changes nothing: the parameters are what is hashed.
    let spaced = POST_BODY.replace(',', ", ").replace(':', ": ");
    assert_eq!(bearer(&req("POST", "/v1/orders", "", &spaced)), jwt);
}

#[test]
fn body_arrays_repeat_the_key_with_brackets() {
    let got = upbit::body_to_query(
        r#"{"market":"KRW-BTC","states":["wait","watch"],"uuids[]":["a",7],"limit":10}"#,
    )
    .expect("converts");
    assert_eq!(
        got,
        "market=KRW-BTC&states[]=wait&states[]=watch&uuids[]=a&uuids[]=7&limit=10"
    );
}

#[test]
fn uuid_v4_sets_version_and_variant_bits() {
    assert_eq!(
        upbit::uuid_v4(&[0xff; 16]),
        "ffffffff-ffff-4fff-bfff-ffffffffffff"
    );
    assert_eq!(
        upbit::uuid_v4(&[0; 16]),
        "00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(upbit::uuid_v4(&vector_stamp().nonce), NONCE);
}

#[test]
fn each_request_gets_its_own_nonce() {
    let r = req("GET", "/v1/accounts", "", "");
    let a = sign::sign(
        &cred(),
        &r,
        &Stamp {
            unix_ms: 1,
            nonce: [1; 16],
            counter: None,
            session_ends_ms: None,
        },
        &SignOptions::default(),
    );
    let b = sign::sign(
        &cred(),
        &r,
        &Stamp {
            unix_ms: 1,
            nonce: [2; 16],
            counter: None,
            session_ends_ms: None,
        },
        &SignOptions::default(),
    );
    assert_ne!(a.expect("signs").headers, b.expect("signs").headers);
}

fn bad_request(r: &SignRequest) -> String {
    match sign(r) {
        Err(SignError::BadRequest(msg)) => {
            assert!(!msg.contains(SECRET), "message leaks the secret: {msg}");
            msg
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[test]
fn refuses_bodies_it_cannot_hash_as_upbit_does() {
    for body in ["[1,2]", "\"x\"", "not json", "{\"a\":1", "{\"a\":\"1\"} x"] {
        assert!(
            bad_request(&req("POST", "/v1/orders", "", body)).contains("JSON object"),
            "{body}"
        );
    }
    for body in [
        r#"{"volume":0.01}"#,
        r#"{"a":true}"#,
        r#"{"a":null}"#,
        r#"{"a":{"b":"c"}}"#,
        r#"{"a":[[1]]}"#,
    ] {
        assert!(
            bad_request(&req("POST", "/v1/orders", "", body)).contains("as a string"),
            "{body}"
        );
    }
    let dup = bad_request(&req(
        "POST",
        "/v1/orders",
        "",
        r#"{"side":"bid","side":"ask"}"#,
    ));
    assert!(dup.contains("twice"), "{dup}");
}

#[test]
fn refuses_a_query_and_a_body_together() {
    let msg = bad_request(&req("POST", "/v1/orders", "market=KRW-BTC", POST_BODY));
    assert!(msg.contains("not both"), "{msg}");
}

#[test]
fn refuses_a_body_on_get_and_delete() {
    for method in ["GET", "DELETE"] {
        let msg = bad_request(&req(method, "/v1/order", "", r#"{"uuid":"x"}"#));
        assert!(msg.contains("query"), "{msg}");
    }
}

#[test]
fn post_without_body_hashes_its_query() {
    let jwt = bearer(&req("POST", "/v1/orders", POST_QS, ""));
    assert_eq!(
        jwt,
        upbit::jwt_hs512(ACCESS, NONCE, Some(POST_QS), SECRET.as_bytes())
    );
}

// ---- property test: recompute the token from the definition -------------------------------

fn b64url(s: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(s).expect("base64url without padding")
}

fn pair() -> impl Strategy<Value = (String, String)> {
    ("[a-z_]{1,8}(\\[\\])?", "[A-Za-z0-9.\\-]{0,10}")
}

proptest! {
    #[test]
    fn token_is_hs512_over_the_documented_claims(
        method in prop::sample::select(vec!["GET", "POST", "DELETE"]),
        path in "(/[a-z_]{1,8}){1,4}",
        params in prop::collection::vec(pair(), 0..6),
        nonce in any::<[u8; 16]>(),
    ) {
        // Upbit parameters are unique; keep the first of each name.
        let mut seen = std::collections::HashSet::new();
        let params: Vec<_> = params.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
        let joined = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let (query, body) = if method == "POST" && !params.is_empty() {
            let obj: serde_json::Map<_, _> =
                params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            (String::new(), serde_json::Value::Object(obj).to_string())
        } else {
            (joined.clone(), String::new())
        };
        let r = req(method, &path, &query, &body);
        let stamp = Stamp { unix_ms: 0, nonce , counter: None, session_ends_ms: None };
        let signed = sign::sign(&cred(), &r, &stamp, &SignOptions::default()).expect("signs");
        prop_assert_eq!((&signed.query, &signed.body, &signed.path), (&query, &body, &path));

        let jwt = signed.headers["Authorization"].strip_prefix("Bearer ").expect("Bearer");
        let parts: Vec<&str> = jwt.split('.').collect();
        prop_assert_eq!(parts.len(), 3);
        prop_assert_eq!(b64url(parts[0]), br#"{"alg":"HS512","typ":"JWT"}"#.to_vec());
        let mut mac = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        prop_assert_eq!(b64url(parts[2]), mac.finalize().into_bytes().to_vec());

        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&b64url(parts[1])).expect("claims are JSON");
        let keys: Vec<&str> = claims.keys().map(String::as_str).collect();
        let nonce_claim = claims["nonce"].as_str().expect("nonce");
        let raw = hex::encode(nonce);
        prop_assert_eq!(nonce_claim.len(), 36);
        prop_assert_eq!(&nonce_claim[14..15], "4");
        prop_assert!(matches!(&nonce_claim[19..20], "8" | "9" | "a" | "b"));
        prop_assert_eq!(&nonce_claim[..8], &raw[..8]);
        prop_assert_eq!(&claims["access_key"], ACCESS);
        if params.is_empty() {
            prop_assert_eq!(keys, ["access_key", "nonce"]);
        } else {
            prop_assert_eq!(keys, ["access_key", "nonce", "query_hash", "query_hash_alg"]);
            prop_assert_eq!(&claims["query_hash"], &hex::encode(Sha512::digest(joined.as_bytes())));
            prop_assert_eq!(&claims["query_hash_alg"], "SHA512");
        }
    }
}

#[test]
fn an_empty_secret_or_unusable_access_key_is_a_credential_error() {
    let r = req("GET", "/v1/accounts", "", "");
    let mut c = cred();
    c.secret = SecretBytes::new(Vec::new());
    let err = sign::sign(&c, &r, &vector_stamp(), &SignOptions::default());
    assert!(matches!(err, Err(SignError::BadCredential(_))), "{err:?}");
    let mut c = cred();
    c.api_key = SecretString::new("key with space".into());
    let err = sign::sign(&c, &r, &vector_stamp(), &SignOptions::default());
    assert!(matches!(err, Err(SignError::BadCredential(_))), "{err:?}");
}

/// The HS256 option signs the same claims under HS256 (value from Python's hmac, as the
/// unit test in upbit.rs pins it).
#[test]
fn hs256_option_signs_the_same_claims() {
    let r = req("GET", "/v1/accounts", "", "");
    let signed = upbit::sign_with_alg(
        &cred(),
        &r,
        &vector_stamp(),
        &SignOptions::default(),
        upbit::Alg::Hs256,
    )
    .expect("signs");
    assert_eq!(
        signed.headers["Authorization"],
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3Nfa2V5IjoiYTdYZDkyTG1RVzN2QnRSellwTWo1Q3hOS2VUMUh1VnMwZkZnSmNBdyIsIm5vbmNlIjoiYjJmMWUzZjgtMmRjMS00ZDZmLWE4MzgtYzc0YzQ5YjBlMzlhIn0.Q61liDKQEWsybV444Y0JwqFqEBlpg3hQOvnWI4uFJNw"
    );
}
