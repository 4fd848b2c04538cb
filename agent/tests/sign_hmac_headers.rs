//! Bybit, OKX, Gate, KuCoin and Bitget: every OFFICIAL and DERIVED vector
//! (docs/sources.md), the agent's own stamping, and property
//! tests recomputing each signature from the exchange's definition with independent code.

mod support;

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha512};
use support::{assert_unchanged, cred, params, req, sign_at};
use tapsign_agent::credential::Exchange::{Bitget, Bybit, Gate, Kucoin, Okx};
use tapsign_agent::sign::{SignError, bybit, kucoin, okx};

fn mac256(key: &str, msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn mac512(key: &str, msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("key");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

// ---- Bybit (DERIVED; the printed official values have no secret) ----

#[test]
fn bybit_derived_get_and_post_vectors() {
    let c = cred(Bybit, "XXXXXXXXXX", "test-secret", None);
    let r = req(
        "GET",
        "/v5/order/realtime",
        "category=option&symbol=BTC-29JUL22-25000-C",
        "",
    );
    let s = sign_at(&c, &r, 1_658_384_314_791).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(
        s.headers["X-BAPI-SIGN"],
        "236d8f7132d3e4c8bad803010e296f3d07211356e54c01455b26c8229a682297"
    );
    assert_eq!(s.headers["X-BAPI-TIMESTAMP"], "1658384314791");
    assert_eq!(s.headers["X-BAPI-RECV-WINDOW"], "5000");
    assert_eq!(s.headers["X-BAPI-API-KEY"], "XXXXXXXXXX");
    // The body is signed as sent, space after the colon included.
    let r = req("POST", "/v5/order/create", "", r#"{"category": "option"}"#);
    let s = sign_at(&c, &r, 1_658_385_579_423).expect("signs");
    assert_eq!(
        s.headers["X-BAPI-SIGN"],
        "17a6bfe3e7a2aa41dffd3f16bfa0febb8b18ff79bb33de625705dc86876feffe"
    );
}

#[test]
fn bybit_ws_auth_derived_vector() {
    assert_eq!(
        bybit::ws_signature(b"test-secret", 1_662_350_400_000),
        "f072aab6fa18cd774da998325df6cfc87c3ccf10d5722e6b43b570c5feaf6172"
    );
}

#[test]
fn bybit_refuses_a_query_and_a_body_together() {
    let c = cred(Bybit, "k", "s", None);
    let got = sign_at(&c, &req("POST", "/v5/order/create", "a=1", "{}"), 1);
    assert!(matches!(got, Err(SignError::BadRequest(_))), "{got:?}");
}

// ---- OKX (DERIVED with the docs' sample secret) ----

const OKX_SECRET: &str = "22582BD0CFF14C41EDBF1AB98506286D";
const OKX_TS: u64 = 1_607_418_537_715; // 2020-12-08T09:08:57.715Z

#[test]
fn okx_derived_vectors() {
    let c = cred(Okx, "okx-key", OKX_SECRET, Some("pass phrase"));
    let r = req("GET", "/api/v5/account/balance", "ccy=BTC", "");
    let s = sign_at(&c, &r, OKX_TS).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(
        s.headers["OK-ACCESS-SIGN"],
        "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="
    );
    assert_eq!(s.headers["OK-ACCESS-TIMESTAMP"], "2020-12-08T09:08:57.715Z");
    assert_eq!(s.headers["OK-ACCESS-PASSPHRASE"], "pass phrase");
    assert_eq!(s.headers["OK-ACCESS-KEY"], "okx-key");
    let body = r#"{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}"#;
    let s = sign_at(
        &c,
        &req("POST", "/api/v5/account/set-leverage", "", body),
        OKX_TS,
    )
    .expect("signs");
    assert_eq!(
        s.headers["OK-ACCESS-SIGN"],
        "eCnnCgWLjlQ9XnpUkrcny3qNq3WW/81KNrDr/XR6Xv8="
    );
}

#[test]
fn okx_without_passphrase_is_a_credential_error() {
    let c = cred(Okx, "k", OKX_SECRET, None);
    let got = sign_at(&c, &req("GET", "/api/v5/account/balance", "", ""), OKX_TS);
    assert!(matches!(got, Err(SignError::BadCredential(m)) if m.contains("passphrase")));
}

// ---- Gate (OFFICIAL) ----

#[test]
fn gate_official_get_and_post_vectors() {
    let c = cred(Gate, "key", "secret", None);
    let r = req(
        "GET",
        "/api/v4/futures/orders",
        "contract=BTC_USD&status=finished&limit=50",
        "",
    );
    let s = sign_at(&c, &r, 1_541_993_715_000).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(
        s.headers["SIGN"],
        "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
    );
    assert_eq!(s.headers["Timestamp"], "1541993715");
    assert_eq!(s.headers["KEY"], "key");
    let body =
        r#"{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}"#;
    let s = sign_at(
        &c,
        &req("POST", "/api/v4/futures/orders", "", body),
        1_541_993_715_999,
    )
    .expect("signs");
    assert_eq!(
        s.headers["SIGN"],
        "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
    );
}

#[test]
fn gate_wants_the_api_v4_prefix() {
    let got = sign_at(
        &cred(Gate, "k", "s", None),
        &req("GET", "/spot/orders", "", ""),
        1,
    );
    assert!(matches!(got, Err(SignError::BadRequest(m)) if m.contains("/api/v4")));
}

// ---- KuCoin (KC-API-SIGN OFFICIAL; GET and passphrase DERIVED) ----

const KC_SECRET: &str = "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3";

#[test]
fn kucoin_official_sign_and_derived_get_and_passphrase() {
    let c = cred(
        Kucoin,
        "5c2db93503aa674c74a31734",
        KC_SECRET,
        Some("Ab12345678)(*&^%$#@"),
    );
    let r = req(
        "POST",
        "/api/v1/deposit-addresses",
        "",
        r#"{"currency":"BTC"}"#,
    );
    let s = sign_at(&c, &r, 1_547_015_186_532).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(
        s.headers["KC-API-SIGN"],
        "7QP/oM0ykidMdrfNEUmng8eZjg/ZvPafjIqmxiVfYu4="
    );
    assert_eq!(s.headers["KC-API-TIMESTAMP"], "1547015186532");
    assert_eq!(s.headers["KC-API-KEY-VERSION"], "2");
    assert_eq!(s.headers["KC-API-KEY"], "5c2db93503aa674c74a31734");
    // The official example's passphrase is plain base64 (docs/sources.md, mistake 4); v2 signs it.
    assert_eq!(
        s.headers["KC-API-PASSPHRASE"],
        "F2p2bNS1bBehHvC/Z4YkB7l1Wd0Pq2iV/oLHM/DyE+I="
    );
    assert_eq!(
        kucoin::signed_passphrase(KC_SECRET.as_bytes(), "Abc123456"),
        "BKrtDi9RgDYbLigltBjNLvwvVf6/iCxWK6slmjr8DF8="
    );
    let r = req("GET", "/api/v1/deposit-addresses", "currency=BTC", "");
    let s = sign_at(&c, &r, 1_547_015_186_532).expect("signs");
    assert_eq!(
        s.headers["KC-API-SIGN"],
        "GKdSzdaVmIFJ5J9U/xC+kslcN+EuDSuUg9DOS3l4gp4="
    );
}

// ---- Bitget (DERIVED; official examples carry no signature) ----

#[test]
fn bitget_derived_vectors() {
    let c = cred(Bitget, "bg-key", "test-secret", Some("pp"));
    let ts = 16_273_667_805_456; // the docs' 14-digit sample timestamp, as printed
    let r = req(
        "GET",
        "/api/mix/v2/market/depth",
        "limit=20&symbol=BTCUSDT",
        "",
    );
    let s = sign_at(&c, &r, ts).expect("signs");
    assert_unchanged(&s, &r);
    assert_eq!(
        s.headers["ACCESS-SIGN"],
        "To/xSqZkg77MdhtM0EAKhSNw+cZhrkIFETqbTFYIYg0="
    );
    assert_eq!(s.headers["ACCESS-TIMESTAMP"], "16273667805456");
    assert_eq!(s.headers["ACCESS-PASSPHRASE"], "pp");
    let body = r##"{"productType":"usdt-futures","symbol":"BTCUSDT","size":"8","marginMode":"crossed","side":"buy","orderType":"limit","clientOid":"channel#123456"}"##;
    let s = sign_at(
        &c,
        &req("POST", "/api/v2/mix/order/place-order", "", body),
        ts,
    )
    .expect("signs");
    assert_eq!(
        s.headers["ACCESS-SIGN"],
        "ZAUpvHG6S9IfE+kSdR9bv9Hmf/7EfK3aHX+Fk12+bAg="
    );
    let r = req(
        "GET",
        "/api/v3/account/fee-rate",
        "category=SPOT&symbol=BTCUSDT",
        "",
    );
    assert_eq!(
        sign_at(&c, &r, ts).expect("signs").headers["ACCESS-SIGN"],
        "TdABQQ9ijAseDaXVnIRMSNNiP8a2N3JfNvKnXjSB3EE="
    );
    assert_eq!(
        okx::signature(b"test-secret", "1700000000GET/user/verify"),
        "QKXMEacdjBcrVZaxWVJypn62KNrQGzBErbiQtYn6KO8="
    );
}

#[test]
fn bitget_refuses_an_unsorted_query() {
    let c = cred(Bitget, "k", "s", Some("p"));
    let got = sign_at(
        &c,
        &req(
            "GET",
            "/api/v2/spot/market/orderbook",
            "symbol=BTCUSDT&limit=20",
            "",
        ),
        1,
    );
    assert!(matches!(got, Err(SignError::BadRequest(m)) if m.contains("sorted")));
}

proptest! {
    #[test]
    fn every_scheme_signs_its_documented_string(
        path in "(/[a-z0-9]{1,8}){1,4}",
        query in params(),
        body in params(),
        post in any::<bool>(),
        unix_ms in 1_000_000_000_000u64..4_000_000_000_000,
    ) {
        let (method, query, body) = if post { ("POST", String::new(), body) } else { ("GET", query, String::new()) };
        let r = req(method, &path, &query, &body);
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };

        let s = sign_at(&cred(Bybit, "key", "sec", None), &r, unix_ms).expect("bybit");
        let payload = if post { &body } else { &query };
        prop_assert_eq!(&s.headers["X-BAPI-SIGN"], &hex::encode(mac256("sec", &format!("{unix_ms}key5000{payload}"))));

        let s = sign_at(&cred(Okx, "key", "sec", Some("p")), &r, unix_ms).expect("okx");
        let ts = &s.headers["OK-ACCESS-TIMESTAMP"];
        prop_assert_eq!(&s.headers["OK-ACCESS-SIGN"], &Base64::encode_string(&mac256("sec", &format!("{ts}{method}{path}{q}{body}"))));

        let s = sign_at(&cred(Kucoin, "key", "sec", Some("p")), &r, unix_ms).expect("kucoin");
        prop_assert_eq!(&s.headers["KC-API-SIGN"], &Base64::encode_string(&mac256("sec", &format!("{unix_ms}{method}{path}{q}{body}"))));
        prop_assert_eq!(&s.headers["KC-API-PASSPHRASE"], &Base64::encode_string(&mac256("sec", "p")));

        let gpath = format!("/api/v4{path}");
        let s = sign_at(&cred(Gate, "key", "sec", None), &req(method, &gpath, &query, &body), unix_ms).expect("gate");
        let text = format!("{method}\n{gpath}\n{query}\n{}\n{}", hex::encode(Sha512::digest(body.as_bytes())), unix_ms / 1000);
        prop_assert_eq!(&s.headers["SIGN"], &hex::encode(mac512("sec", &text)));

        let mut names: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        names.sort_by_key(|p| p.split('=').next().unwrap_or("").to_string());
        let sorted = names.join("&");
        let sq = if sorted.is_empty() { String::new() } else { format!("?{sorted}") };
        let s = sign_at(&cred(Bitget, "key", "sec", Some("p")), &req(method, &path, &sorted, &body), unix_ms).expect("bitget");
        prop_assert_eq!(&s.headers["ACCESS-SIGN"], &Base64::encode_string(&mac256("sec", &format!("{unix_ms}{method}{path}{sq}{body}"))));
    }
}
