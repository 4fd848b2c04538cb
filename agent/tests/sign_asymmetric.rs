//! Ed25519 and ES256: Binance Ed25519 keys and Coinbase CDP JWTs. The DERIVED vectors
//! (docs/sources.md: RFC 8032 TEST 1 key for Binance, the Coinbase SDK's published
//! test keys) pass byte for byte; ES256 is randomized, so its tokens are verified with the
//! public key, as Coinbase's SDK tests do. The doc-bug Binance "Ed25519" example (an RSA
//! signature: docs/sources.md, mistake 1) is not used.

mod support;

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use proptest::prelude::*;
use support::{assert_unchanged, at, cred, req, sign_at};
use tapsign_agent::credential::Exchange::{Binance, Coinbase};
use tapsign_agent::sign::{self, SignError, SignOptions, binance, coinbase};

const RFC8032_PEM: &str = include_str!("vectors/rfc8032.pem");
const CB_ED_PEM: &str = include_str!("vectors/cb_ed.pem");
const WS_KEY: &str = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO";

fn rfc_key() -> ed25519_dalek::SigningKey {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_pem(RFC8032_PEM).expect("pem")
}

#[test]
fn rfc8032_test1_signs_the_empty_message() {
    let sig = binance::ed25519_signature(&rfc_key(), "");
    assert_eq!(
        hex::encode(Base64::decode_vec(&sig).expect("b64")),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
}

#[test]
fn binance_ed25519_rest_vector_is_percent_encoded_into_the_query() {
    let c = cred(Binance, "ed-key", RFC8032_PEM, None);
    let q = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&timestamp=1668481559918&recvWindow=5000";
    let s = sign_at(&c, &req("POST", "/api/v3/order", q, ""), 1_668_481_559_918).expect("signs");
    let want =
        "XtZirsmmi0noRzUfkqktvkVfxpkq/WtbLg2UOL3QGYdUBZVlqOBEMuEVw8zioY93N54NcKj9UuAXQEa9zgTDBg==";
    assert_eq!(
        s.query,
        format!("{q}&signature={}", binance::percent_encode_b64(want))
    );
    assert!(
        s.query
            .ends_with("%2FWtbLg2UOL3QGYdUBZVlqOBEMuEVw8zioY93N54NcKj9UuAXQEa9zgTDBg%3D%3D")
    );
    assert_eq!(s.headers["X-MBX-APIKEY"], "ed-key");
}

#[test]
fn binance_ed25519_ws_payload_and_session_logon_vectors() {
    let ws = format!(
        "apiKey={WS_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    );
    assert_eq!(
        binance::ed25519_signature(&rfc_key(), &ws),
        "Ws+5m/CMnpkko0uBFxGTZ2+fjqqBXsUjRiaz173fPhXTkhoDBYNZ6wcYNeWItdrGn1pvG7vkwx2fhmJdAZ3KDQ=="
    );
    let s = sign_at(
        &cred(Binance, WS_KEY, RFC8032_PEM, None),
        &support::ws("/ws-api/v3"),
        1_649_729_878_532,
    )
    .expect("logon");
    assert_eq!(
        s.body,
        format!(
            r#"{{"method":"session.logon","params":{{"apiKey":"{WS_KEY}","signature":"NBJq5sX1RkU7ta3XDctruMgnrhyBcouMvvPIxxQSCUbVWxhp3ai6W7a0Iip/3nOwmJxkVIv6n20cekYCOa5qAg==","timestamp":1649729878532}}}}"#
        )
    );
}

/// Under a `recv_window_cap_ms` below Binance's default of 5000 ms the logon carries
/// `recvWindow=<cap>`, signed, as a REST request does: without it a logon a bot keeps back
/// opens a trading socket for 5000 ms, past the cap and past a lock in that time.
#[test]
fn binance_session_logon_carries_a_cap_below_the_default() {
    let opts = SignOptions {
        recv_window_cap_ms: 1_000,
        ..SignOptions::default()
    };
    let s = sign::sign(
        &cred(Binance, WS_KEY, RFC8032_PEM, None),
        &support::ws("/ws-api/v3"),
        &at(1_649_729_878_532),
        &opts,
    )
    .expect("logon");
    let payload = format!("apiKey={WS_KEY}&recvWindow=1000&timestamp=1649729878532");
    assert_eq!(
        s.body,
        format!(
            r#"{{"method":"session.logon","params":{{"apiKey":"{WS_KEY}","signature":"{}","timestamp":1649729878532,"recvWindow":1000}}}}"#,
            binance::ed25519_signature(&rfc_key(), &payload)
        )
    );
}

#[test]
fn binance_logon_with_an_hmac_key_is_refused() {
    let got = sign_at(
        &cred(Binance, "k", "hmac-secret", None),
        &support::ws("/ws-api/v3"),
        1,
    );
    assert!(matches!(got, Err(SignError::BadRequest(m)) if m.contains("Ed25519")));
}

#[test]
fn binance_rsa_pem_is_a_credential_error() {
    let rsa = include_str!("vectors/bsig_rsa.pem");
    let got = sign_at(
        &cred(Binance, "k", rsa, None),
        &req("GET", "/api/v3/account", "", ""),
        1,
    );
    assert!(matches!(got, Err(SignError::BadCredential(_))), "{got:?}");
}

const CB_NAME: &str = "organizations/test-organization/apiKeys/test-api-key";
const CB_NONCE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CB_JWT: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJub25jZSI6IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiJvcmdhbml6YXRpb25zL3Rlc3Qtb3JnYW5pemF0aW9uL2FwaUtleXMvdGVzdC1hcGkta2V5IiwiaXNzIjoiY2RwIiwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxMjAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ.RzZebH9iN8S0ccWOhVKDotLXyQqh90xXV-acF80Sw79eWouXRiuCom7kSyaaGEZ-yeOh1Jz69ahQIWD7BHwvCg";
const CB_ED_B64: &str =
    "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA==";
const CB_EC_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";

#[test]
fn coinbase_eddsa_derived_jwt_from_every_key_spelling() {
    let uri = Some("GET api.coinbase.com/api/v3/brokerage/accounts");
    for secret in [
        CB_ED_B64,
        CB_ED_PEM,
        "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputA=",
    ] {
        let jwt = coinbase::jwt(
            CB_NAME,
            secret.as_bytes(),
            CB_NONCE,
            1_700_000_000,
            1_700_000_120,
            uri,
        )
        .expect("signs");
        assert_eq!(jwt, CB_JWT);
    }
}

fn claims_of(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("claims");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).expect("b64")).expect("json")
}

#[test]
fn coinbase_es256_jwt_verifies_with_the_public_key_and_carries_the_claims() {
    use p256::ecdsa::signature::Verifier;
    let c = cred(Coinbase, CB_NAME, CB_EC_PEM, None);
    let r = req(
        "POST",
        "/api/v3/brokerage/orders",
        "",
        r#"{"product_id":"BTC-USD"}"#,
    );
    let s = sign_at(&c, &r, 1_700_000_000_999).expect("signs");
    assert_unchanged(&s, &r);
    let jwt = s.headers["Authorization"]
        .strip_prefix("Bearer ")
        .expect("bearer");
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[0]).expect("b64"))
            .expect("json");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], CB_NAME);
    assert_eq!(header["nonce"].as_str().expect("nonce").len(), 64);
    let claims = claims_of(jwt);
    assert_eq!(
        claims,
        serde_json::json!({"sub": CB_NAME, "iss": "cdp", "nbf": 1_700_000_000u64, "exp": 1_700_000_120u64, "uri": "POST api.coinbase.com/api/v3/brokerage/orders"})
    );
    let sig_bytes = Base64UrlUnpadded::decode_vec(parts[2]).expect("b64");
    assert_eq!(sig_bytes.len(), 64, "JOSE raw r||s, not DER");
    let key = p256::SecretKey::from_sec1_pem(CB_EC_PEM).expect("pem");
    let vk = *p256::ecdsa::SigningKey::from(&key).verifying_key();
    let sig = p256::ecdsa::Signature::from_slice(&sig_bytes).expect("sig");
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("verifies");
}

#[test]
fn coinbase_ws_token_has_no_uri() {
    let s = sign_at(
        &cred(Coinbase, CB_NAME, CB_ED_B64, None),
        &support::ws("/"),
        1_700_000_000_000,
    )
    .expect("signs");
    let v: serde_json::Value = serde_json::from_str(&s.body).expect("json");
    let claims = claims_of(v["jwt"].as_str().expect("jwt"));
    assert!(claims.get("uri").is_none());
    assert_eq!(claims["exp"], 1_700_000_120u64);
}

/// A Coinbase token at `unix_ms` in a session ending at `ends_ms`: its claims, or the refusal.
fn coinbase_in_session(
    r: &tapsign_proto::SignRequest,
    unix_ms: u64,
    ends_ms: u64,
) -> Result<serde_json::Value, SignError> {
    let mut stamp = at(unix_ms);
    stamp.session_ends_ms = Some(ends_ms);
    let s = sign::sign(
        &cred(Coinbase, CB_NAME, CB_ED_B64, None),
        r,
        &stamp,
        &SignOptions::default(),
    )?;
    let jwt = match s.headers.get("Authorization") {
        Some(auth) => auth.strip_prefix("Bearer ").expect("bearer").to_string(),
        None => {
            let v: serde_json::Value = serde_json::from_str(&s.body).expect("json");
            v["jwt"].as_str().expect("jwt").to_string()
        }
    };
    Ok(claims_of(&jwt))
}

/// `exp` was `nbf` + 120 whatever the session, so a token handed out 10 s before the session's
/// end stayed good for 110 s after it (red-team round 27): it now ends with the session, REST
/// and websocket tokens alike, and keeps Coinbase's 120 s when the session outlasts them.
#[test]
fn a_coinbase_token_ends_no_later_than_the_session() {
    let rest = req(
        "POST",
        "/api/v3/brokerage/orders",
        "",
        r#"{"product_id":"BTC-USD"}"#,
    );
    let ws = support::ws("/");
    for r in [&rest, &ws] {
        let at = 1_700_000_000_400;
        let c = coinbase_in_session(r, at, at + 10_000).expect("signs");
        assert_eq!(
            (c["nbf"].as_u64(), c["exp"].as_u64()),
            (Some(1_700_000_000), Some(1_700_000_010))
        );
        // The end is rounded down: the token never outlives the session.
        let c = coinbase_in_session(r, at, at + 10_599).expect("signs");
        assert_eq!(c["exp"], 1_700_000_010u64);
        let c = coinbase_in_session(r, at, at + 3_600_000).expect("signs");
        assert_eq!(c["exp"], 1_700_000_120u64);
        let c = coinbase_in_session(r, at, at + 120_600).expect("signs");
        assert_eq!(c["exp"], 1_700_000_120u64);
        // A session ending within the second leaves no token worth handing out.
        let got = coinbase_in_session(r, at, at + 500);
        assert!(
            matches!(&got, Err(SignError::BadRequest(m)) if m.contains("unlock --extend")),
            "{got:?}"
        );
    }
}

#[test]
fn a_truncated_pem_is_a_credential_error_that_quotes_nothing_secret() {
    let cut = &CB_EC_PEM[..90];
    let got = sign_at(
        &cred(Coinbase, CB_NAME, cut, None),
        &req("GET", "/api/v3/brokerage/accounts", "", ""),
        1,
    );
    let Err(SignError::BadCredential(m)) = got else {
        panic!("{got:?}")
    };
    assert!(!m.contains("MHcCAQEE"), "{m}");
}

/// Any path but a Coinbase App one (`/v2`, which refuses Ed25519 keys: tested on its own below).
fn advanced_trade_path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_]{1,8}){1,4}".prop_filter("a Coinbase App (/v2) path", |p| {
        p != "/v2" && !p.starts_with("/v2/")
    })
}

proptest! {
    #[test]
    fn binance_ed25519_signature_verifies_over_query_then_body(query in support::params(), unix_ms in 1_000_000_000_000u64..4_000_000_000_000) {
        use ed25519_dalek::Verifier;
        let s = sign_at(&cred(Binance, "k", RFC8032_PEM, None), &req("GET", "/api/v3/order", &query, ""), unix_ms).expect("signs");
        let (payload, sig) = s.query.rsplit_once("&signature=").expect("signature last");
        let want = if query.is_empty() { format!("timestamp={unix_ms}") } else { format!("{query}&timestamp={unix_ms}") };
        prop_assert_eq!(payload, want.as_str());
        let raw = sig.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
        let sig = ed25519_dalek::Signature::from_slice(&Base64::decode_vec(&raw).expect("b64")).expect("sig");
        prop_assert!(rfc_key().verifying_key().verify(payload.as_bytes(), &sig).is_ok());
    }

    #[test]
    fn coinbase_eddsa_token_verifies_for_any_request(path in advanced_trade_path(), post in any::<bool>(), unix_ms in 1_000_000_000_000u64..4_000_000_000_000) {
        use ed25519_dalek::Verifier;
        let method = if post { "POST" } else { "GET" };
        let s = sign_at(&cred(Coinbase, CB_NAME, CB_ED_B64, None), &req(method, &path, "", ""), unix_ms).expect("signs");
        let jwt = s.headers["Authorization"].strip_prefix("Bearer ").expect("bearer").to_string();
        let (input, sig) = jwt.rsplit_once('.').expect("three parts");
        let claims = claims_of(&jwt);
        let uri = format!("{method} api.coinbase.com{path}");
        prop_assert_eq!(claims["uri"].as_str(), Some(uri.as_str()));
        prop_assert_eq!(claims["exp"].as_u64(), Some(unix_ms / 1000 + 120));
        let seed: [u8; 32] = Base64::decode_vec(CB_ED_B64).expect("b64")[..32].try_into().expect("32");
        let sig = ed25519_dalek::Signature::from_slice(&Base64UrlUnpadded::decode_vec(sig).expect("b64")).expect("sig");
        prop_assert!(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().verify(input.as_bytes(), &sig).is_ok());
    }
}

#[test]
fn coinbase_app_v2_paths_refuse_ed25519_keys_with_a_fix() {
    let got = sign_at(
        &cred(Coinbase, CB_NAME, CB_ED_B64, None),
        &req("GET", "/v2/accounts", "", ""),
        1,
    );
    assert!(matches!(got, Err(SignError::BadCredential(m)) if m.contains("ECDSA")));
    assert!(
        sign_at(
            &cred(Coinbase, CB_NAME, CB_EC_PEM, None),
            &req("GET", "/v2/accounts", "", ""),
            1
        )
        .is_ok()
    );
}
