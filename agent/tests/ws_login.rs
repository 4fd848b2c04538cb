//! Websocket logins (`kind: "ws_login"`): what a bot gets back for each exchange, the DERIVED
//! vectors of Bybit and OKX (docs/sources.md), and refusals for exchanges without one.
//! Binance `session.logon` and Coinbase's token are in sign_asymmetric.rs.

mod support;

use support::{cred, req, sign_at, ws};
use tapsign_agent::credential::Exchange::{
    Bitget, Bithumb, Bybit, Gate, Kraken, Kucoin, Okx, Upbit,
};
use tapsign_agent::sign::SignError;
use tapsign_proto::{Request, SignKind};

#[test]
fn bybit_auth_message_expires_one_recv_window_ahead() {
    let c = cred(Bybit, "XXXXXXXXXX", "test-secret", None);
    // expires = now + the 5000 ms cap = the derived vector's 1662350400000.
    let s = sign_at(&c, &ws("/v5/private"), 1_662_350_395_000).expect("signs");
    assert_eq!(
        s.body,
        r#"{"op":"auth","args":["XXXXXXXXXX",1662350400000,"f072aab6fa18cd774da998325df6cfc87c3ccf10d5722e6b43b570c5feaf6172"]}"#
    );
    assert!(s.headers.is_empty() && s.query.is_empty());
}

#[test]
fn okx_login_message_uses_seconds_and_the_verify_path() {
    let c = cred(
        Okx,
        "okx-key",
        "22582BD0CFF14C41EDBF1AB98506286D",
        Some("pp"),
    );
    let s = sign_at(&c, &ws("/ws/v5/private"), 1_538_054_050_123).expect("signs");
    assert_eq!(
        s.body,
        r#"{"op":"login","args":[{"apiKey":"okx-key","passphrase":"pp","timestamp":"1538054050","sign":"+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="}]}"#
    );
}

/// Gate's refusal said its websocket "takes a token from a signed REST call": Gate signs each
/// private subscription instead. Each exchange's refusal says how its own websocket logs in.
#[test]
fn exchanges_without_a_signed_login_say_how_they_log_in() {
    for (ex, pass, says) in [
        (Kraken, None, "GetWebSocketsToken"),
        (Gate, None, "signs each private channel subscription"),
        (Kucoin, Some("pp"), "bullet-private"),
        (Bitget, Some("pp"), "not offered yet"),
        (Upbit, None, "parameterless REST request"),
        (Bithumb, None, "parameterless REST request"),
    ] {
        let got = sign_at(&cred(ex, "k", "c2VjcmV0", pass), &ws("/"), 1);
        assert!(
            matches!(&got, Err(SignError::BadRequest(m)) if m.contains(says)),
            "{ex}: {got:?}"
        );
    }
}

/// Red-team round 19: the `ws_login` kind for such an exchange was refused with advice to set
/// `ws_login = true`, which signs no login there and, for Bitget, only makes the bait readings
/// of its REST requests signable. The policy says what the signer says, with the switch off or
/// on.
#[test]
fn a_login_for_an_exchange_without_one_gets_no_advice_to_switch_logins_on() {
    use tapsign_agent::policy::{self, KeyPolicy};
    for ex in [Kraken, Gate, Kucoin, Bitget, Upbit, Bithumb] {
        for ws_login in [false, true] {
            let p = KeyPolicy {
                ws_login,
                ..KeyPolicy::default()
            };
            let e = policy::check_request(ex, "k", &p, &ws("/")).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("has no websocket login the agent signs")
                    && !msg.contains("allow them with"),
                "{ex}: {msg}"
            );
        }
    }
}

/// Red-team round 20: a Coinbase login was refused with the line `ws_login = true`, saying only
/// that a logged-in socket keeps trading; its token names no method or path, and whether
/// Coinbase's REST side refuses one is not documented. The refusal says so, and hands no line.
#[test]
fn a_coinbase_login_is_refused_with_what_its_token_reaches_and_no_line() {
    use tapsign_agent::credential::Exchange::Coinbase;
    use tapsign_agent::policy::{self, KeyPolicy};
    let p = KeyPolicy::default();
    let msg = policy::check_request(Coinbase, "cb", &p, &ws("/ws"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("without a `uri` claim"), "{msg}");
    assert!(msg.contains("sends and withdrawals included"), "{msg}");
    assert!(!msg.contains("ws_login = true"), "{msg}");
    // The other exchanges' logins still say how to switch them on, after what it gives away.
    let msg = policy::check_request(Bybit, "b", &p, &ws("/v5/private"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("keeps trading after the session ends"),
        "{msg}"
    );
    assert!(msg.contains("ws_login = true"), "{msg}");
}

#[test]
fn a_login_request_with_a_body_or_query_is_refused() {
    let c = cred(Bybit, "k", "s", None);
    let mut r = ws("/v5/private");
    r.body = "{}".into();
    assert!(matches!(sign_at(&c, &r, 1), Err(SignError::BadRequest(_))));
    let r = tapsign_proto::SignRequest {
        kind: SignKind::WsLogin,
        ..req("POST", "/v5/private", "", "")
    };
    assert!(matches!(sign_at(&c, &r, 1), Err(SignError::BadRequest(_))));
}

#[test]
fn rest_frames_stay_byte_identical_and_ws_login_is_spelled_out() {
    let rest = Request::Sign(req("GET", "/v1/accounts", "", ""));
    let text = serde_json::to_string(&rest).expect("encodes");
    assert_eq!(
        text,
        r#"{"type":"sign","key":"k","method":"GET","path":"/v1/accounts","query":"","body":""}"#
    );
    assert_eq!(
        serde_json::from_str::<Request>(&text).expect("decodes"),
        rest
    );
    let login = Request::Sign(ws("/ws-api/v3"));
    let text = serde_json::to_string(&login).expect("encodes");
    assert!(text.ends_with(r#","kind":"ws_login"}"#), "{text}");
    assert_eq!(
        serde_json::from_str::<Request>(&text).expect("decodes"),
        login
    );
    let bad = r#"{"type":"sign","key":"k","method":"GET","path":"/","kind":"login"}"#;
    assert!(serde_json::from_str::<Request>(bad).is_err());
}

/// Kraken's websocket login is the REST call `GetWebSocketsToken`. The refusal and the docs
/// said `ws_login = true` was enough, but the key also needed a hand-written `allow` entry:
/// now `ws_login = true` admits it, with no parameters, and nothing else does.
#[test]
fn kraken_ws_login_admits_the_websocket_token_call() {
    use tapsign_agent::policy::{self, KeyPolicy};
    let token = req("POST", "/0/private/GetWebSocketsToken", "", "");
    let default = KeyPolicy::default();
    let off = policy::check_request(Kraken, "k", &default, &token).is_err();
    assert!(off, "signed without ws_login");
    let on = KeyPolicy {
        ws_login: true,
        ..KeyPolicy::default()
    };
    let checked = policy::check_request(Kraken, "k", &on, &token).unwrap();
    // Said as what admitted it (`policy explain`): ws_login, not an allow entry.
    assert_eq!(
        checked.rule.map(|(_, source)| source),
        Some(policy::profile::Source::WsLogin)
    );
    // Narrowing the key with `only` leaves its websocket login, as it does on other exchanges.
    let narrowed = KeyPolicy {
        only: vec![("POST".into(), "/0/private/AddOrder".into())],
        ..on.clone()
    };
    policy::check_request(Kraken, "k", &narrowed, &token).unwrap();
    // Still the call alone: no parameters ride on it.
    let extra = req("POST", "/0/private/GetWebSocketsToken", "", "asset=XBT");
    assert!(policy::check_request(Kraken, "k", &on, &extra).is_err());
    // And only that call.
    let other = req("POST", "/0/private/GetWebSocketsTokens", "", "");
    assert!(policy::check_request(Kraken, "k", &on, &other).is_err());
}
