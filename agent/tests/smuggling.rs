//! Parameters smuggled past the withdrawal wall, found in review. Each must be refused.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::policy::{Denial, check_params};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::sign::{self, SignOptions, Stamp};
use tapsign_proto::SignRequest;

fn cred(exchange: Exchange) -> Credential {
    Credential {
        name: "k".into(),
        exchange,
        api_key: SecretString::new("access".into()),
        secret: SecretBytes::from_slice(b"secret"),
        passphrase: None,
    }
}

fn post(path: &str, body: &str) -> SignRequest {
    SignRequest {
        key: "k".into(),
        method: "POST".into(),
        path: path.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn stamp() -> Stamp {
    Stamp {
        unix_ms: 1_700_000_000_000,
        nonce: [1; 16],
        counter: None,
        session_ends_ms: None,
    }
}

#[test]
fn upbit_withdrawal_parameters_hidden_in_a_json_value_are_refused() {
    // Upbit hashes {"currency":"USDT&amount=100&address=X&net_type=TRX"} exactly like a real
    // withdrawal body, and does not sign the path.
    let body = r#"{"currency":"USDT&amount=100&address=X&net_type=TRX"}"#;
    assert!(matches!(
        check_params(Exchange::Upbit, "", body),
        Err(Denial::FundParameter { .. })
    ));
    let r = sign::sign(
        &cred(Exchange::Upbit),
        &post("/v1/orders", body),
        &stamp(),
        &SignOptions::default(),
    );
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn bithumb_withdrawal_parameters_hidden_in_a_json_key_are_refused() {
    let body = r#"{"currency=USDT&amount=100&address=X&net_type":"TRX"}"#;
    assert!(matches!(
        check_params(Exchange::Bithumb, "", body),
        Err(Denial::FundParameter { .. })
    ));
    let r = sign::sign(
        &cred(Exchange::Bithumb),
        &post("/v1/orders", body),
        &stamp(),
        &SignOptions::default(),
    );
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn binance_form_parameters_inside_a_json_looking_body_are_refused() {
    // JSON to serde, a form to Binance, which would read `address` out of it.
    let body = r#"{"x&address=TXYZ&y":1}"#;
    assert!(matches!(
        check_params(Exchange::Binance, "", body),
        Err(Denial::FundParameter { .. })
    ));
}

#[test]
fn a_bybit_body_that_is_not_one_json_object_is_refused() {
    for body in [
        r#"{"category":"spot","address":"x"} trailing"#,
        r#"{"category":"spot",}"#,
        "category=spot&address=x",
    ] {
        let r = check_params(Exchange::Bybit, "", body);
        assert!(r.is_err(), "{body}: {r:?}");
    }
    assert!(
        check_params(
            Exchange::Bybit,
            "",
            r#"{"category":"spot","symbol":"BTCUSDT"}"#
        )
        .is_ok()
    );
}

#[test]
fn ordinary_order_bodies_still_pass() {
    assert!(check_params(Exchange::Upbit, "", r#"{"market":"KRW-BTC","side":"bid","volume":"0.01","price":"100.0","ord_type":"limit"}"#).is_ok());
    assert!(check_params(Exchange::Binance, "symbol=BTCUSDT", "side=BUY&quantity=1").is_ok());
    let r = sign::sign(
        &cred(Exchange::Upbit),
        &post(
            "/v1/orders",
            r#"{"market":"KRW-BTC","side":"bid","volume":"0.01","price":"100.0","ord_type":"limit"}"#,
        ),
        &stamp(),
        &SignOptions::default(),
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn bybit_api_key_creation_is_refused_on_any_path() {
    // Bybit does not sign the path: /v5/user/create-sub-api is caught by its parameters.
    let body = r#"{"subuid":53888000,"readOnly":0,"permissions":{"Spot":["SpotTrade"]},"ips":"*"}"#;
    assert!(matches!(
        check_params(Exchange::Bybit, "", body),
        Err(Denial::FundParameter { .. })
    ));
    let order = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"30000","timeInForce":"GTC","orderLinkId":"x1"}"#;
    assert!(check_params(Exchange::Bybit, "", order).is_ok());
}
