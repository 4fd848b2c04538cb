//! The withdrawal wall's seven broken classes (issue: "the wall checks exactly what is
//! signed"), each reproduced as the attack was made, each now refused. Every test first shows
//! that the bytes the bot asked for are exactly what the exchange verifies for the fund-moving
//! request, recomputed from the exchange's documented string-to-sign, so a signature would be a
//! working withdrawal; then it shows the agent refuses to make it.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::{cred, req};
use tapsign_agent::credential::Credential;
use tapsign_agent::credential::Exchange::{self, Binance, Bitget, Bybit, Kraken, Kucoin, Okx};
use tapsign_agent::policy::{self, Endpoint, KeyPolicy};
use tapsign_agent::sign::{self, SignOptions};
use tapsign_proto::{SignRequest, SignedRequest};

const ED_PEM: &str = include_str!("vectors/rfc8032.pem");

/// Everything the agent does to a sign request before the signature leaves: the policy on the
/// credential's exchange, then the scheme on what the policy parsed.
fn attempt(c: &Credential, policy: &KeyPolicy, r: &SignRequest) -> Result<SignedRequest, String> {
    let checked =
        policy::check_request(c.exchange, "k", policy, r).map_err(|e| format!("{e:?}"))?;
    sign::sign(
        c,
        &checked.wire,
        &support::at(1_700_000_000_000),
        &SignOptions::default(),
    )
    .map_err(|e| e.to_string())
}

/// What the default policy signs for `r` (the test fails if it refuses).
fn signs(c: &Credential, r: &SignRequest) -> SignedRequest {
    attempt(c, &KeyPolicy::default(), r).unwrap_or_else(|e| panic!("refused {r:?}: {e}"))
}

fn refused(c: &Credential, r: &SignRequest) -> String {
    match attempt(c, &KeyPolicy::default(), r) {
        Ok(s) => panic!("signed {r:?}: {s:?}"),
        Err(e) => e,
    }
}

fn passphrase_cred(ex: Exchange) -> Credential {
    cred(ex, "key", "secret", Some("pass"))
}

/// OKX, KuCoin and Bitget sign `timestamp + METHOD + path + body`: the string the exchange
/// verifies for (method, path, body).
fn path_body_prehash(method: &str, path: &str, body: &str) -> String {
    format!("1700000000000{method}{path}{body}")
}

// Class 1: the path/body seam.

#[test]
fn class1_okx_withdrawal_split_between_path_and_body_is_refused() {
    let body = r#"{"ccy":"USDT","amt":"1000","dest":"4","toAddr":"0x3f5CE5FBFe3E9af3971dD833D26bA9b5C936f0bE","chain":"USDT-ERC20"}"#;
    let bot = req("POST", "/api/v5/asset/with", "", &format!("drawal{body}"));
    assert_eq!(
        path_body_prehash(&bot.method, &bot.path, &bot.body),
        path_body_prehash("POST", "/api/v5/asset/withdrawal", body),
        "the attack's bytes are a withdrawal's"
    );
    let e = refused(&passphrase_cred(Okx), &bot);
    assert!(e.contains("Malformed"), "{e}");
    // Widening the key to the short path changes nothing: the body is not JSON.
    let wide = KeyPolicy {
        allow: vec![Endpoint {
            method: "POST".into(),
            path: "/api/v5/asset/with".into(),
            doc: None,
            params: vec![],
            required: vec![],
            values: Default::default(),
            body: None,
        }],
        ..KeyPolicy::default()
    };
    assert!(attempt(&passphrase_cred(Okx), &wide, &bot).is_err());
}

#[test]
fn class1_okx_subaccount_api_key_smuggled_from_a_two_letter_path_is_refused() {
    let body = r#"{"subAcct":"bot7","label":"x","passphrase":"Pass1234!","perm":"read_only,trade,withdraw","ip":""}"#;
    let bot = req(
        "POST",
        "/api",
        "",
        &format!("/v5/users/subaccount/apikey{body}"),
    );
    assert_eq!(
        path_body_prehash(&bot.method, &bot.path, &bot.body),
        path_body_prehash("POST", "/api/v5/users/subaccount/apikey", body)
    );
    refused(&passphrase_cred(Okx), &bot);
}

#[test]
fn class1_kucoin_withdrawal_and_inner_transfer_across_the_seam_are_refused() {
    for (path, cut, body) in [
        (
            "/api/v1/withdrawals",
            11,
            r#"{"currency":"USDT","address":"TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE","amount":"1000","chain":"trx"}"#,
        ),
        (
            "/api/v2/accounts/inner-transfer",
            17,
            r#"{"clientOid":"a1","currency":"USDT","from":"trade","to":"main","amount":"1000"}"#,
        ),
    ] {
        let bot = req("POST", &path[..cut], "", &format!("{}{body}", &path[cut..]));
        assert_eq!(
            path_body_prehash(&bot.method, &bot.path, &bot.body),
            path_body_prehash("POST", path, body)
        );
        refused(&passphrase_cred(Kucoin), &bot);
    }
}

#[test]
fn class1_bitget_withdrawal_across_the_seam_is_refused() {
    let body = r#"{"coin":"USDT","transferType":"on_chain","address":"0x3f5CE5FBFe3E9af3971dD833D26bA9b5C936f0bE","chain":"erc20","size":"1000"}"#;
    let bot = req(
        "POST",
        "/api/v2/spot/wallet/with",
        "",
        &format!("drawal{body}"),
    );
    refused(&passphrase_cred(Bitget), &bot);
    // And with the query: path "/api/v2/spot/wallet/withdrawal" cannot be reached through "?".
    let bot = req("GET", "/api/v2/spot/wallet/withdrawal-records", "", "");
    refused(&passphrase_cred(Bitget), &bot);
}

// Class 2: the query/body seam of Binance (it signs query ‖ body with nothing between).

#[test]
fn class2_binance_address_split_between_query_and_body_is_refused() {
    let query = "coin=USDT&network=TRX&amount=1000&addr";
    let body = "ess=TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE";
    let withdrawal = "coin=USDT&network=TRX&amount=1000&address=TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE";
    assert_eq!(format!("{query}{body}"), withdrawal);
    refused(
        &cred(Binance, "key", "secret", None),
        &req("POST", "/api/v3/order", query, body),
    );
}

#[test]
fn class2_binance_recv_window_split_between_query_and_body_is_refused() {
    let bot = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&recv",
        "Window=60000",
    );
    refused(&cred(Binance, "key", "secret", None), &bot);
    // A name ending in a stamped one is refused even when each half parses.
    let bot = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
        "xrecvWindow=60000",
    );
    refused(&cred(Binance, "key", "secret", None), &bot);
}

#[test]
fn class2_a_binance_cut_inside_a_name_cannot_make_a_withdrawal_parameter() {
    // "xaddress=..." cut after "x" puts address=... in the body.
    let bot = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&xaddress=TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE",
        "",
    );
    let e = refused(&cred(Binance, "key", "secret", None), &bot);
    assert!(e.contains("Denied"), "{e}");
}

// Class 3: Bybit JSON in a GET query (the query is signed verbatim and never read as JSON).

#[test]
fn class3_bybit_withdrawal_json_sent_as_a_get_query_is_refused() {
    for body in [
        r#"{"coin":"USDT","chain":"TRX","address":"TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE","amount":"1000","accountType":"FUND"}"#,
        r#"{"transferId":"42c0cfb0-6bca-c242-bc76-4e6df6cbcb16","coin":"USDT","amount":"1000","fromMemberId":592334,"toMemberId":691355,"fromAccountType":"UNIFIED","toAccountType":"UNIFIED"}"#,
        r#"{"readOnly":0,"ips":"*","permissions":{"Wallet":["AccountTransfer","Withdraw"]}}"#,
    ] {
        for method in ["GET", "DELETE"] {
            refused(
                &cred(Bybit, "key", "secret", None),
                &req(method, "/v5/order/realtime", body, ""),
            );
        }
    }
}

// Class 4: a websocket login through REST.

#[test]
fn class4_binance_rest_payload_equal_to_session_logon_is_refused_with_ws_login_off() {
    let c = cred(
        Binance,
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        ED_PEM,
        None,
    );
    let bot = req(
        "GET",
        "/api/v3/account",
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "",
    );
    // The agent would append timestamp: the payload is exactly session.logon's.
    let logon = sign::binance::ws_payload(&[
        (
            "apiKey",
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        ),
        ("timestamp", "1700000000000"),
    ]);
    assert_eq!(format!("{}&timestamp=1700000000000", bot.query), logon);
    let e = refused(&c, &bot);
    assert!(e.contains("ApiKeyPayload"), "{e}");
    // Split across query and body, or spelled in another case, it is the same payload.
    let e = refused(
        &c,
        &req(
            "POST",
            "/api/v3/order",
            "api",
            "Key=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        ),
    );
    assert!(
        e.contains("Malformed") || e.contains("ApiKeyPayload"),
        "{e}"
    );
}

#[test]
fn class4_bitget_rest_get_of_the_login_path_counts_as_a_websocket_login() {
    let e = refused(
        &passphrase_cred(Bitget),
        &req("GET", "/user/verify", "", ""),
    );
    assert!(e.contains("LoginBait"), "{e}");
    // The path is to blame, not a value, which there is none of (red-team round 26, F7).
    for (ex, path) in [(Bitget, "/user/verify"), (Okx, "/users/self/verify")] {
        let said = policy::check_request(ex, "k", &KeyPolicy::default(), &req("GET", path, "", ""))
            .err()
            .unwrap()
            .to_string();
        assert!(
            said.contains("the path is the login's own") && !said.contains("value"),
            "{ex}: {said}"
        );
    }
}

/// Red-team round 10: Bitget's and OKX's logins sign `timestamp + "GET" + verify path`, with
/// the timestamp a string from the client: a REST prehash that merely ends that way is one
/// too, its timestamp the rest, for a server that reads a number off the front.
#[test]
fn class4_a_rest_prehash_ending_in_the_login_string_counts_as_a_websocket_login() {
    for (ex, path, query) in [
        (
            Bitget,
            "/api/v3/trade/order-info",
            "orderId=GET/user/verify",
        ),
        (
            Bitget,
            "/api/v2/spot/trade/orderInfo",
            "orderId=get/USER/verify",
        ),
        (
            Okx,
            "/api/v5/trade/order",
            "instId=BTC-USDT&ordId=GET/users/self/verify",
        ),
    ] {
        // Red-team round 16: refused as bait, without the advice to switch logins on that a
        // bot could otherwise have the trader read.
        let e = refused(&passphrase_cred(ex), &req("GET", path, query, ""));
        assert!(e.contains("LoginBait"), "{ex} {path}?{query}: {e}");
        let said =
            policy::check_request(ex, "k", &KeyPolicy::default(), &req("GET", path, query, ""))
                .err()
                .unwrap()
                .to_string();
        assert!(
            said.contains("send it without that value") && !said.contains("ws_login"),
            "{said}"
        );
    }
    // The same reads with an ordinary id, or the login string not at the end, are signed.
    for (ex, path, query) in [
        (Bitget, "/api/v3/trade/order-info", "orderId=123"),
        (
            Bitget,
            "/api/v3/trade/order-info",
            "orderId=GET/user/verifyx",
        ),
        (Okx, "/api/v5/trade/order", "instId=BTC-USDT&ordId=123"),
    ] {
        signs(&passphrase_cred(ex), &req("GET", path, query, ""));
    }
}

#[test]
fn class4_kraken_websocket_token_counts_as_a_websocket_login() {
    let c = cred(
        Exchange::Kraken,
        "key",
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
        None,
    );
    let e = refused(&c, &req("POST", "/0/private/GetWebSocketsToken", "", ""));
    assert!(e.contains("WebsocketLogin"), "{e}");
}

// Class 5: endpoints and parameters of families the tables missed.

#[test]
fn class5_bitget_v1_subaccount_and_virtual_api_key_endpoints_are_refused() {
    for path in [
        "/api/user/v1/sub/virtual-create",
        "/api/user/v1/sub/virtual-api-create",
        "/api/user/v1/sub/virtual-api-modify",
        "/api/spot/v1/wallet/withdrawal-v2",
        "/api/spot/v1/wallet/transfer-v2",
    ] {
        refused(
            &passphrase_cred(Bitget),
            &req("POST", path, "", r#"{"subName":"x"}"#),
        );
    }
}

#[test]
fn class5_binance_mining_broker_and_subaccount_parameters_are_refused_on_an_order_path() {
    for query in [
        // mining hashrate resale to another pool user
        "algo=sha256&userName=me&startDate=1&endDate=2&toPoolUser=thief&hashRate=100000000",
        // broker sub-account transfer
        "fromId=1&toId=2&clientTranId=x&asset=USDT&amount=1000",
        // sub-account transfer by email
        "fromEmail=a%40b.c&toEmail=thief%40x.y&asset=USDT&amount=1000",
        // universal transfer between the trader's own wallets
        "type=MAIN_UMFUTURE&asset=USDT&amount=1000",
    ] {
        refused(
            &cred(Binance, "key", "secret", None),
            &req("POST", "/api/v3/order", query, ""),
        );
    }
}

// Found by a review after the seven classes: a profile placeholder took any segment.

#[test]
fn a_profile_placeholder_takes_only_the_values_the_exchange_documents() {
    // KuCoin's unified-account paths carry the account mode, Gate's futures paths the settle
    // currency. Any other word there is an endpoint nobody reviewed: `/api/ua/v1/user/...`
    // shaped like a balance read, or a settle currency Gate may add with other rules.
    let kucoin = passphrase_cred(Kucoin);
    let ok = req("GET", "/api/ua/v1/unified/account/balance", "", "");
    attempt(&kucoin, &KeyPolicy::default(), &ok).unwrap();
    for mode in ["user", "sub", "Unified", "classic2"] {
        let path = format!("/api/ua/v1/{mode}/account/balance");
        let e = refused(&kucoin, &req("GET", &path, "", ""));
        // `Unified`: the profile's path in another case (PathCase).
        assert!(
            e.contains("Profile") || e.contains("BuiltIn") || e.contains("PathCase"),
            "{path}: {e}"
        );
    }
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let ok = req("GET", "/api/v4/futures/usdt/accounts", "", "");
    attempt(&gate, &KeyPolicy::default(), &ok).unwrap();
    for settle in ["usd", "eth", "Usdt", "user"] {
        let path = format!("/api/v4/futures/{settle}/accounts");
        let e = refused(&gate, &req("GET", &path, "", ""));
        assert!(
            e.contains("Profile") || e.contains("BuiltIn") || e.contains("PathCase"),
            "{path}: {e}"
        );
    }
}

#[test]
fn a_binance_order_type_is_one_an_order_takes() {
    // `POST /sapi/v1/margin/manual-liquidation` takes `type` (MARGIN or ISOLATED) and `symbol`;
    // Binance does not sign the path, so an order carrying `type=MARGIN` is, byte for byte, a
    // manual liquidation with an extra `side` (if /sapi does not refuse what it does not read).
    let c = cred(Binance, "key", "secret", None);
    for ty in ["MARGIN", "ISOLATED", "MAR%47IN", "limit", ""] {
        let q = format!("symbol=BTCUSDT&side=BUY&type={ty}&quantity=1");
        let e = refused(&c, &req("POST", "/api/v3/order", &q, ""));
        // `limit`: LIMIT in another case (ValueCase, no line: round 16).
        assert!(
            e.contains("UnlistedValue")
                || e.contains("ValueCase")
                || e.contains("Malformed")
                || e.contains("Missing")
                || e.contains("FundValue"),
            "{q}: {e}"
        );
    }
    // In the body too, and on the futures order endpoint.
    let e = refused(
        &c,
        &req(
            "POST",
            "/fapi/v1/order",
            "",
            "symbol=BTCUSDT&side=BUY&type=ISOLATED&quantity=1",
        ),
    );
    assert!(e.contains("FundValue"), "{e}");
    for ok in ["LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "L%49MIT"] {
        let q = format!("symbol=BTCUSDT&side=BUY&type={ok}&quantity=1&price=1&timeInForce=GTC");
        signs(&c, &req("POST", "/api/v3/order", &q, ""));
    }
}

#[test]
fn a_kraken_json_value_cannot_hold_a_form_separator() {
    // Kraken reads a form or JSON body by the Content-Type the bot chooses: as a form, this
    // JSON body carries `trading_agreement` and a `nonce`, parameters the profile never saw.
    let c = cred(
        Exchange::Kraken,
        "key",
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
        None,
    );
    let body = r#"{"ordertype":"limit","type":"buy","volume":"1","pair":"XBTUSD&trading_agreement=agree&nonce=1","price":"1"}"#;
    let e = refused(&c, &req("POST", "/0/private/AddOrder", "", body));
    assert!(e.contains("Malformed") && e.contains("'&'"), "{e}");
    // Nested too.
    let body = r#"{"ordertype":"limit","type":"buy","volume":"1","pair":"XBTUSD","price":"1","close":{"ordertype":"limit&x=1"}}"#;
    let e = refused(&c, &req("POST", "/0/private/AddOrder", "", body));
    assert!(e.contains("Malformed"), "{e}");
    // The same order without it passes, as JSON and as a form.
    let ok = r#"{"ordertype":"limit","type":"buy","volume":"1","pair":"XBTUSD","price":"1"}"#;
    let form = "ordertype=limit&type=buy&volume=1&pair=XBTUSD&price=1";
    for body in [ok, form] {
        let r = req("POST", "/0/private/AddOrder", "", body);
        policy::check_request(c.exchange, "k", &KeyPolicy::default(), &r).unwrap();
    }
}

// Found by the third red-team round (2026-12-02).

#[test]
fn a_binance_cut_right_after_the_last_query_equals_sign_is_read() {
    // Query "…&newClientOrderId=withdraw" and body "orderId=1" sign
    // "…&newClientOrderId=withdraworderId=1": sent as query "…&newClientOrderId=" and body
    // "withdraworderId=1", the exchange reads a parameter the bot spelled. Cuts inside the
    // value were read; the cut right after its '=' was not.
    let c = cred(Binance, "key", "secret", None);
    for (query, body) in [
        ("symbol=BTCUSDT&newClientOrderId=withdraw", "orderId=1"),
        (
            "symbol=BTCUSDT&newClientOrderId=transfer",
            "side=BUY&type=MARKET",
        ),
        (
            "symbol=BTCUSDT&side=BUY&newClientOrderId=fromAccount",
            "type=MARKET",
        ),
    ] {
        let method = if body == "orderId=1" {
            "DELETE"
        } else {
            "POST"
        };
        let e = refused(&c, &req(method, "/api/v3/order", query, body));
        assert!(e.contains("Denied"), "{query} | {body}: {e}");
    }
    // The same order with an id that makes no such name is signed, with every parameter on
    // one side; split between query and body it is refused whatever the id (SplitPayload).
    let split = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&newClientOrderId=bot1",
        "side=BUY&type=MARKET&quantity=1",
    );
    let e = attempt(&c, &KeyPolicy::default(), &split).unwrap_err();
    assert!(e.contains("SplitPayload"), "{e}");
    let all = "symbol=BTCUSDT&newClientOrderId=bot1&side=BUY&type=MARKET&quantity=1";
    for (query, body) in [(all, ""), ("", all)] {
        attempt(
            &c,
            &KeyPolicy::default(),
            &req("POST", "/api/v3/order", query, body),
        )
        .unwrap();
    }
}

#[test]
fn an_order_cannot_ask_to_borrow() {
    // Gate: `auto_borrow` on a margin or unified order borrows what the balance lacks; the
    // profile leaves margin borrowing out, so the flag is not a parameter an order may carry.
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let order = r#"{"currency_pair":"BTC_USDT","type":"market","account":"cross_margin","side":"buy","amount":"100000","auto_borrow":true,"time_in_force":"ioc"}"#;
    for (path, body) in [
        ("/api/v4/spot/orders", order.to_owned()),
        ("/api/v4/spot/batch_orders", format!("[{order}]")),
        (
            "/api/v4/spot/price_orders",
            r#"{"market":"BTC_USDT","trigger":{"price":"1","rule":">=","expiration":86400},"put":{"type":"market","side":"buy","price":"0","amount":"1","account":"margin","auto_borrow":true,"time_in_force":"ioc"}}"#.to_owned(),
        ),
    ] {
        let e = refused(&gate, &req("POST", path, "", &body));
        assert!(e.contains("Withheld"), "{path}: {e}");
    }
    let e = refused(
        &gate,
        &req(
            "POST",
            "/api/v4/spot/orders",
            "auto_borrow=true",
            r#"{"currency_pair":"BTC_USDT","side":"buy","amount":"1","account":"cross_margin"}"#,
        ),
    );
    assert!(e.contains("Withheld"), "{e}");
    // KuCoin's unified account: a MARGIN order borrows by itself; Bitget's unified account:
    // a MARGIN order is a spot margin order.
    let kucoin = passphrase_cred(Kucoin);
    let bitget = passphrase_cred(Bitget);
    for (c, path, margin, spot) in [
        (
            &kucoin,
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"MARGIN","clientOid":"x1","symbol":"BTC-USDT","side":"SELL","orderType":"MARKET","sizeUnit":"BASECCY","size":"10"}"#,
            r#"{"tradeType":"SPOT","clientOid":"x1","symbol":"BTC-USDT","side":"SELL","orderType":"MARKET","sizeUnit":"BASECCY","size":"10"}"#,
        ),
        (
            &bitget,
            "/api/v3/trade/place-order",
            r#"{"category":"MARGIN","symbol":"BTCUSDT","qty":"5","side":"sell","orderType":"market"}"#,
            r#"{"category":"SPOT","symbol":"BTCUSDT","qty":"5","side":"sell","orderType":"market"}"#,
        ),
        (
            &bitget,
            "/api/v3/trade/place-batch",
            r#"[{"category":"MARGIN","symbol":"BTCUSDT","qty":"5","side":"sell","orderType":"market"}]"#,
            r#"[{"category":"USDT-FUTURES","symbol":"BTCUSDT","qty":"5","side":"sell","orderType":"market"}]"#,
        ),
    ] {
        let e = refused(c, &req("POST", path, "", margin));
        assert!(e.contains("Withheld"), "{path}: {e}");
        // The reason given fits an exchange that signs the path.
        let shown = policy::check_request(
            c.exchange,
            "k",
            &KeyPolicy::default(),
            &req("POST", path, "", margin),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            shown.contains("borrows") && !shown.contains("does not sign the path"),
            "{shown}"
        );
        attempt(c, &KeyPolicy::default(), &req("POST", path, "", spot)).unwrap();
    }
}

#[test]
fn an_empty_json_object_body_is_refused_with_a_reason_that_says_so() {
    // What some clients send for a POST without parameters. It was refused as a parameter
    // with an empty name, with a config line to allow `""`.
    for (ex, path) in [
        (Bybit, "/v5/order/cancel"),
        (Bitget, "/api/v2/spot/trade/cancel-order"),
    ] {
        let e = refused(&passphrase_cred(ex), &req("POST", path, "", "{}"));
        assert!(e.contains("empty JSON object"), "{ex}: {e}");
        assert!(!e.contains("params ="), "no config line to allow it: {e}");
    }
}

/// A key policy with config.toml's `allow` entries (`{ method = …, … }` each).
fn config_allow(lines: &[&str]) -> KeyPolicy {
    let allow = lines
        .iter()
        .map(|l| {
            let v: toml::Value = toml::from_str(&format!("e = {l}")).unwrap();
            v["e"].clone().try_into().unwrap()
        })
        .collect();
    KeyPolicy {
        allow,
        ..KeyPolicy::default()
    }
}

#[test]
fn a_config_entry_cannot_shed_the_profile_rules_where_the_path_is_not_signed() {
    // Red-team round 6: the profile's `required` and `values` were inherited only when the
    // path the bot named was a profile endpoint's. Where the exchange does not sign the path,
    // the bot names any path a placeholder admits, so the rules went with it.
    let bybit = cred(Bybit, "key", "secret", None);
    let ops = config_allow(&[
        r#"{ method = "POST", path = "/v5/order/{op}", params = ["category", "symbol", "side", "orderType", "qty", "price", "orderId", "orderLinkId", "isLeverage"] }"#,
    ]);
    // `{"orderId":X}` is the whole body of `POST /v5/p2p/order/finish` (a P2P release), and
    // Bybit signs only the body: the same bytes, the same signature. A parameter no profile
    // endpoint takes (`isLeverage`) does not hide it: an endpoint that ignores what it does
    // not take reads the same release.
    for release in [
        r#"{"orderId":"1898988806425264128"}"#,
        r#"{"orderId":"1898988806425264128","isLeverage":0}"#,
    ] {
        let e = attempt(&bybit, &ops, &req("POST", "/v5/order/cancelz", "", release)).unwrap_err();
        assert!(e.contains("ProfileShape"), "{release}: {e}");
    }
    // What the profile signs anyway stays signed through the entry.
    let cancel = r#"{"category":"linear","symbol":"BTCUSDT","orderId":"1898988806425264128"}"#;
    attempt(&bybit, &ops, &req("POST", "/v5/order/cancelz", "", cancel)).unwrap();
    // Bybit signs a GET's query and a POST's body apart: a GET entry is held to GET shapes.
    let check = config_allow(&[
        r#"{ method = "GET", path = "/v5/order/spot-borrow-check", params = ["category", "symbol", "side"] }"#,
    ]);
    let q = "category=spot&symbol=BTCUSDT&side=Buy";
    attempt(
        &bybit,
        &check,
        &req("GET", "/v5/order/spot-borrow-check", q, ""),
    )
    .unwrap();

    // `type=MARGIN` (or `ISOLATED`) is the whole of `POST /sapi/v1/margin/manual-liquidation`:
    // refused on every path and under every entry, with or without parameters beside it.
    let binance = cred(Binance, "key", "secret", None);
    let ops = config_allow(&[
        r#"{ method = "POST", path = "/api/v3/{op}", params = ["symbol", "side", "type", "quantity", "price", "timeInForce"], required = ["symbol", "side", "type"] }"#,
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity", "price", "timeInForce", "newClientOrderId", "isIsolated"] }"#,
        r#"{ method = "GET", path = "/fapi/v1/positionMargin/history", params = ["symbol", "type", "startTime", "endTime", "limit"], required = ["symbol"] }"#,
    ]);
    for (method, path, q) in [
        (
            "POST",
            "/api/v3/orderz",
            "symbol=BTCUSDT&side=BUY&type=ISOLATED",
        ),
        ("POST", "/sapi/v1/margin/order", "type=MARGIN"),
        (
            "POST",
            "/sapi/v1/margin/order",
            "symbol=BTCUSDT&side=BUY&type=MARGIN&isIsolated=FALSE",
        ),
        (
            "POST",
            "/sapi/v1/margin/order",
            "symbol=BTCUSDT&side=BUY&type=margin&quantity=1",
        ),
        (
            "GET",
            "/fapi/v1/positionMargin/history",
            "symbol=BTCUSDT&type=ISOLATED&limit=1",
        ),
    ] {
        let e = attempt(&binance, &ops, &req(method, path, q, "")).unwrap_err();
        assert!(e.contains("FundValue"), "{path}?{q}: {e}");
    }
    // Second look: the query ends where the body begins with no `&` in the signed bytes, and
    // Binance reads the two apart: `type=MARGIN` ending the query is `type=MARGIN`. And any
    // cut can end a value, so one that starts with MARGIN is MARGIN too.
    for (q, b) in [
        ("symbol=BTCUSDT&side=BUY&type=MARGIN", "quantity=1"),
        (
            "symbol=BTCUSDT&side=BUY&type=ISOLATED",
            "timestamp=1700000000000",
        ),
        ("symbol=BTCUSDT&side=BUY&type=MARGINx&quantity=1", ""),
        ("symbol=BTCUSDT&side=BUY&type=%20MARGIN&quantity=1", ""),
    ] {
        let e = attempt(&binance, &ops, &req("POST", "/sapi/v1/margin/order", q, b)).unwrap_err();
        assert!(e.contains("FundValue"), "{q} | {b}: {e}");
    }
    // A name that ends in `type` makes it too, by a cut (`x|type=MARGIN`), even on a default key.
    let cut = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timeInForce=GTC&newClientOrderId=xtype=MARGIN";
    assert!(
        attempt(
            &binance,
            &ops,
            &req("POST", "/sapi/v1/margin/order", cut, "")
        )
        .is_err()
    );
    // Ordinary requests through the same entries sign.
    let order = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timeInForce=GTC";
    attempt(
        &binance,
        &ops,
        &req("POST", "/sapi/v1/margin/order", "", order),
    )
    .unwrap();
    // The history read signs without its optional `type` filter; with a number for it, its
    // bytes are the legacy spot-futures transfer's `type` (red-team round 27, R2).
    let history = "symbol=BTCUSDT&startTime=1700000000000";
    attempt(
        &binance,
        &ops,
        &req("GET", "/fapi/v1/positionMargin/history", history, ""),
    )
    .unwrap();
    let filtered = "symbol=BTCUSDT&type=1";
    assert!(
        attempt(
            &binance,
            &ops,
            &req("GET", "/fapi/v1/positionMargin/history", filtered, ""),
        )
        .is_err()
    );
    // `marginType=ISOLATED` is another name (a futures setting), not `type`.
    let setting = "symbol=BTCUSD_PERP&marginType=ISOLATED";
    signs(&binance, &req("POST", "/dapi/v1/marginType", setting, ""));
    // A value the trader lists in the entry is the trader's choice, and stands.
    let twap = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity"], values = { type = ["TWAP"] } }"#,
    ]);
    let q = "symbol=BTCUSDT&side=BUY&type=TWAP&quantity=1";
    attempt(
        &binance,
        &twap,
        &req("POST", "/sapi/v1/margin/order", q, ""),
    )
    .unwrap();
}

#[test]
fn a_required_parameter_sent_empty_or_null_counts_as_missing() {
    // Red-team round 6: `required` is what keeps a cancel's bytes from being another
    // endpoint's, and many servers read `symbol=` or JSON `null` as not sent.
    let bybit = cred(Bybit, "key", "secret", None);
    for body in [
        r#"{"category":null,"symbol":null,"orderId":"123"}"#,
        r#"{"category":"","symbol":"","orderId":"123"}"#,
        r#"{"category":"linear","symbol":null,"orderId":"123"}"#,
        // Second look: blanks and a variable never set read as not sent as well.
        r#"{"category":"linear","symbol":" ","orderId":"123"}"#,
        r#"{"category":"linear","symbol":"\t","orderId":"123"}"#,
        r#"{"category":"undefined","symbol":"BTCUSDT","orderId":"123"}"#,
    ] {
        let e = refused(&bybit, &req("POST", "/v5/order/cancel", "", body));
        assert!(e.contains("MissingParameter"), "{body}: {e}");
    }
    let binance = cred(Binance, "key", "secret", None);
    for q in ["symbol=&orderId=123", "symbol=%20&orderId=123"] {
        let e = refused(&binance, &req("DELETE", "/api/v3/order", q, ""));
        assert!(e.contains("MissingParameter"), "{q}: {e}");
    }
    signs(
        &binance,
        &req("DELETE", "/api/v3/order", "symbol=BTCUSDT&orderId=123", ""),
    );
}

#[test]
fn a_bybit_json_value_cannot_hold_a_query_separator() {
    // Red-team round 6: Bybit signs a POST's JSON body as it signs a GET's query, and the
    // query reading of this order carries `coin` and `amount`, the whole of
    // `POST /v5/account/borrow`.
    let c = cred(Bybit, "key", "secret", None);
    let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","orderLinkId":"x&coin=USDT&amount=1000&z="}"#;
    let e = refused(&c, &req("POST", "/v5/order/create", "", body));
    assert!(e.contains("Malformed") && e.contains("'&'"), "{e}");
    // Red-team round 7: many query parsers split on `;` too (Netty's by default), and a form
    // reading of a path-signed exchange's body would still carry what a `values` line
    // narrows (OKX `tdMode = ["cash"]`).
    let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","orderLinkId":"x;coin=USDT;amount=1000;z="}"#;
    let e = refused(&c, &req("POST", "/v5/order/create", "", body));
    assert!(e.contains("Malformed") && e.contains("';'"), "{e}");
    let okx = cred(Okx, "key", "secret", Some("pass"));
    let body = r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1","clOrdId":"x&tdMode=cross"}"#;
    let e = refused(&okx, &req("POST", "/api/v5/trade/order", "", body));
    assert!(e.contains("Malformed"), "{e}");
    let kraken = cred(Kraken, "key", "c2VjcmV0", None);
    let body = r#"{"ordertype":"limit","type":"buy","volume":"1","pair":"XBTUSD","price":"1","cl_ord_id":"x;leverage=5"}"#;
    let e = refused(&kraken, &req("POST", "/0/private/AddOrder", "", body));
    assert!(e.contains("Malformed"), "{e}");
    let ok = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","orderLinkId":"x-coin_1"}"#;
    signs(&c, &req("POST", "/v5/order/create", "", ok));
}

#[test]
fn a_request_with_thousands_of_parameters_is_refused_at_once() {
    // Red-team round 6: the duplicate check compared every name with every earlier one, so
    // 9,900 names took a second of the agent's CPU per request (and `status` and `lock`
    // waited behind it). Now duplicates are found by sorting, and more than
    // policy::MAX_PARAMS parameters are refused.
    let c = cred(Binance, "key", "secret", None);
    let many: Vec<String> = (0..policy::MAX_PARAMS + 1)
        .map(|i| format!("p{i}=1"))
        .collect();
    let e = refused(&c, &req("GET", "/api/v3/account", &many.join("&"), ""));
    assert!(e.contains("at most"), "{e}");
    // Under the cap, a repeat among many names is still found, in any case.
    let mut some: Vec<String> = (0..200).map(|i| format!("p{i}=1")).collect();
    some.push("P17=2".into());
    let e = refused(&c, &req("GET", "/api/v3/account", &some.join("&"), ""));
    assert!(e.contains("more than once") && e.contains("P17"), "{e}");
    let e = refused(&c, &req("GET", "/api/v3/account", "a=1&b=2&A=3", ""));
    assert!(e.contains("more than once"), "{e}");
}

#[test]
fn binance_reads_the_liquidation_type_without_case_and_a_cut_name_only_with_its_whole_value() {
    // Binance matches parameter names without case (ccxt's `orderidlist` is `orderIdList`), so
    // `TYPE=MARGIN` is `type=MARGIN`: the whole of `POST /sapi/v1/margin/manual-liquidation`.
    let binance = cred(Binance, "key", "secret", None);
    // A key that may borrow (its side effects are margin orders': red-team round 24).
    let margin = KeyPolicy {
        margin: true,
        ..config_allow(&[
            r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "TYPE", "quantity", "sideEffectType"] }"#,
        ])
    };
    for q in [
        "symbol=BTCUSDT&side=BUY&TYPE=MARGIN&quantity=1",
        "symbol=BTCUSDT&side=BUY&TYPE=isolated&quantity=1",
        // A cut inside the name (`sideEffect|Type=MARGIN`): the value runs to the next `&`.
        "symbol=BTCUSDT&side=BUY&type=LIMIT&sideEffectType=MARGIN&quantity=1",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&sideEffectType=ISOLATED",
    ] {
        let e = attempt(
            &binance,
            &margin,
            &req("POST", "/sapi/v1/margin/order", q, ""),
        )
        .unwrap_err();
        assert!(e.contains("FundValue"), "{q}: {e}");
    }
    // A margin order's side effect is no liquidation: from the cut, its value is
    // `MARGIN_BUY`, and no cut can also end it there.
    for q in [
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&sideEffectType=MARGIN_BUY",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&sideEffectType=AUTO_BORROW_REPAY&quantity=1",
    ] {
        attempt(
            &binance,
            &margin,
            &req("POST", "/sapi/v1/margin/order", q, ""),
        )
        .unwrap();
    }
}

#[test]
fn binance_takes_a_batch_as_raw_compact_json_and_nothing_looser() {
    // ccxt writes `batchOrders` raw (`[{"symbol":...}]`) in the form body; Binance reads the
    // same bytes as the percent-encoded value, so the two are one request.
    let c = cred(Binance, "key", "secret", None);
    let batch = r#"[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.01","price":"50000","timeInForce":"GTC"}]"#;
    let body = format!("batchOrders={batch}");
    let signed = signs(&c, &req("POST", "/fapi/v1/batchOrders", "", &body));
    assert!(signed.body.starts_with(&body), "{signed:?}");
    for (q, b) in [
        // Spaces, a '+' (a space to a form reader), an escape, a repeated key, a '=' or '&'
        // inside, or the query: each reads one way here and another at the exchange.
        ("", r#"batchOrders=[{"symbol": "BTCUSDT"}]"#),
        ("", r#"batchOrders=[{"symbol":"BTC+USDT"}]"#),
        ("", r#"batchOrders=[{"symbol":"BTC\u0026USDT"}]"#),
        (
            "",
            r#"batchOrders=[{"symbol":"BTCUSDT","symbol":"ETHUSDT"}]"#,
        ),
        ("", r#"batchOrders=[{"symbol":"BTCUSDT","x":"a=b"}]"#),
        ("", r#"batchOrders=[{"symbol":"BTC%26USDT"}]"#),
        ("", r#"batchOrders=[{"symbol":"BTCUSDT"}"#),
        (r#"batchOrders=[{"symbol":"BTCUSDT"}]"#, ""),
    ] {
        let e = refused(&c, &req("POST", "/fapi/v1/batchOrders", q, b));
        assert!(e.contains("Malformed"), "{q} | {b}: {e}");
    }
}

#[test]
fn binance_futures_isolated_margin_setting_is_spared_only_as_documented() {
    // `marginType=ISOLATED` reads as `Type=ISOLATED` after a cut (`margin|Type`): spared, the
    // setting bots make at start (docs/policy.md). Spelled so that the cut reads `type` as
    // sent, it is refused.
    let binance = cred(Binance, "key", "secret", None);
    let q = "symbol=BTCUSDT&marginType=ISOLATED";
    signs(&binance, &req("POST", "/fapi/v1/marginType", q, ""));
    let lower = config_allow(&[
        r#"{ method = "POST", path = "/fapi/v1/marginType", params = ["symbol", "margintype"] }"#,
    ]);
    let q = "symbol=BTCUSDT&margintype=ISOLATED";
    let e = attempt(&binance, &lower, &req("POST", "/fapi/v1/marginType", q, "")).unwrap_err();
    assert!(e.contains("FundValue"), "{e}");
    // A trader who never sets isolated margin can hold the setting to cross margin.
    let crossed = config_allow(&[
        r#"{ method = "POST", path = "/fapi/v1/marginType", params = ["symbol", "marginType"], required = ["symbol", "marginType"], values = { marginType = ["CROSSED"] } }"#,
    ]);
    let q = "symbol=BTCUSDT&marginType=ISOLATED";
    let e = attempt(
        &binance,
        &crossed,
        &req("POST", "/fapi/v1/marginType", q, ""),
    )
    .unwrap_err();
    assert!(e.contains("marginType"), "{e}");
}

#[test]
fn kucoin_earn_convert_loans_and_copy_trading_are_denied_under_any_prefix() {
    // Red-team round 7: the deny rules named `/api/*/earn/**` and the like, one segment after
    // `/api`, so the unified account's `/api/ua/v1/...` and OTC loans fell to the profile
    // alone, which an `allow` entry widens. The deny list holds whatever config.toml says.
    let c = cred(Kucoin, "key", "secret", Some("pass"));
    for path in [
        "/api/ua/v1/earn/orders",
        "/api/ua/v1/struct-earn/orders",
        "/api/ua/v1/convert/order",
        "/api/v3/otc-loan/loan",
        "/api/ua/v1/copy-trade/futures/orders",
    ] {
        let allow = config_allow(&[&format!(
            r#"{{ method = "POST", path = "{path}", params = ["a"] }}"#
        )]);
        let e = attempt(&c, &allow, &req("POST", path, "", r#"{"a":"1"}"#)).unwrap_err();
        assert!(e.contains("BuiltIn"), "{path}: {e}");
    }
}

#[test]
fn binance_liquidation_values_are_read_as_a_server_folds_them() {
    // Red-team round 7, second wave. Letters that only fold to ASCII (`ı` is `I` to Java's
    // `toUpperCase`, `ſ` is `S`), a value ended by `;`, and `marginType=MARGIN` (never a
    // futures margin type) each carried `type=MARGIN` or `type=ISOLATED` past the check.
    let binance = cred(Binance, "key", "secret", None);
    let margin = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity"] }"#,
    ]);
    for q in [
        "symbol=BTCUSDT&side=BUY&type=%C4%B1SOLATED&quantity=1",
        "symbol=BTCUSDT&side=BUY&type=MARG%C4%B1N&quantity=1",
        "symbol=BTCUSDT&side=BUY&type=%C4%B1%C5%BFOLATED&quantity=1",
        "symbol=BTCUSDT&side=BUY&type=%C2%A0MARGIN&quantity=1",
    ] {
        let e = attempt(
            &binance,
            &margin,
            &req("POST", "/sapi/v1/margin/order", q, ""),
        )
        .unwrap_err();
        // Third wave: Binance values are printable ASCII once decoded, so these are refused
        // as malformed before the fold is needed.
        assert!(
            e.contains("FundValue") || e.contains("printable ASCII"),
            "{q}: {e}"
        );
    }
    let default = KeyPolicy::default();
    for (method, path, q) in [
        (
            "GET",
            "/fapi/v1/income",
            "symbol=BTCUSDT&incomeType=MARG%C4%B1N",
        ),
        (
            "GET",
            "/fapi/v1/income",
            "symbol=BTCUSDT&incomeType=MARGIN;x",
        ),
        (
            "POST",
            "/fapi/v1/marginType",
            "symbol=BTCUSDT&marginType=MARGIN",
        ),
        (
            "POST",
            "/dapi/v1/marginType",
            "symbol=BTCUSD_PERP&marginType=margin",
        ),
    ] {
        let e = attempt(&binance, &default, &req(method, path, q, "")).unwrap_err();
        assert!(
            e.contains("FundValue")
                || e.contains("marginType")
                || e.contains("printable ASCII")
                || e.contains("';' is %3B"),
            "{path}?{q}: {e}"
        );
    }
    // Fund-moving names spelled with letters that fold to ASCII are read as such too: the
    // query's last value and the body's first name join (`wıthdraw` + `orderId`).
    for (method, path, q, b) in [
        (
            "DELETE",
            "/api/v3/order",
            "symbol=BTCUSDT&newClientOrderId=w%C4%B1thdraw",
            "orderId=1",
        ),
        (
            "POST",
            "/api/v3/order",
            "symbol=BTCUSDT&type=MARKET&quantity=1&newClientOrderId=tran%C5%BFfer",
            "side=BUY",
        ),
    ] {
        let e = attempt(&binance, &default, &req(method, path, q, b)).unwrap_err();
        assert!(
            e.contains("BuiltIn") || e.contains("FundParameter") || e.contains("printable ASCII"),
            "{q}: {e}"
        );
    }
    // Raw JSON is ccxt's `batchOrders` list, and nothing else.
    for (q, b) in [
        (
            "",
            r#"symbol=BTCUSDT&newClientOrderId={"symbol":"BTCUSDT","type":"MARGIN"}"#,
        ),
        ("", r#"batchOrders={"symbol":"BTCUSDT","type":"ISOLATED"}"#),
    ] {
        let e = refused(&binance, &req("POST", "/fapi/v1/batchOrders", q, b));
        assert!(e.contains("Malformed"), "{b}: {e}");
    }
}

/// Red-team round 10: Gate verifies the query percent-decoded (its SDK and ccxt sign it
/// unquoted), so an escape in a value would be signed as sent and verified decoded: refused,
/// and the unencoded value signed as it is.
#[test]
fn gate_queries_are_signed_unencoded_as_gate_verifies_them() {
    let gate = cred(Exchange::Gate, "key", "secret", None);
    for q in [
        "currency_pair=BTC%5FUSDT&status=open",
        "currency_pair=BTC_USDT%26side%3Dbuy&status=open",
    ] {
        let e = refused(&gate, &req("GET", "/api/v4/spot/orders", q, ""));
        assert!(e.contains("is signed and sent unencoded"), "{q}: {e}");
    }
    let q = "currency_pair=BTC_USDT&status=open";
    let signed = signs(&gate, &req("GET", "/api/v4/spot/orders", q, ""));
    assert_eq!(signed.query, q);
}

/// Red-team round 22: Bitget verifies the query percent-decoded, as ccxt and Bitget's SDKs
/// sign it (docs/exchanges.md, Bitget), and the agent signed a Bitget query's escapes as sent:
/// `idLessThan=a%2Ab` was signed over other bytes than Bitget hashes, `idLessThan=a*b`, and
/// refused by Bitget. Escapes are refused now, as for Gate, and the unencoded value is signed
/// as Bitget hashes it.
#[test]
fn bitget_queries_are_signed_unencoded_as_bitget_verifies_them() {
    let bitget = passphrase_cred(Bitget);
    let path = "/api/v2/spot/trade/unfilled-orders";
    for q in [
        "idLessThan=a%2Ab&symbol=BTCUSDT",
        "idLessThan=a%20b&symbol=BTCUSDT",
        "idLessThan=%C3%BC&symbol=BTCUSDT",
        "symbol=BTCUSDT%26orderId%3D1",
    ] {
        let e = refused(&bitget, &req("GET", path, q, ""));
        assert!(e.contains("is signed and sent unencoded"), "{q}: {e}");
    }
    // An apostrophe: fetch and browsers send it as %27, so the adapters refuse it before
    // asking, and the agent refuses it too, with a message that no longer lists it among the
    // characters a value may hold (red-team round 23).
    let e = refused(
        &bitget,
        &req("GET", path, "idLessThan=a'b&symbol=BTCUSDT", ""),
    );
    assert!(
        e.contains("other than letters, digits and -._~,:!*()@$/:"),
        "{e}"
    );
    assert!(e.contains("an apostrophe goes out as %27"), "{e}");
    let q = "idLessThan=a*b~!()&symbol=BTCUSDT";
    let signed = signs(&bitget, &req("GET", path, q, ""));
    assert_eq!(signed.query, q);
    // ccxt's ACCESS-SIGN for {"idLessThan": "a*b~!()", "symbol": "BTCUSDT"} at that time
    // (ccxt 4.5.90's `bitget.sign`, which sends `idLessThan=a%2Ab~%21%28%29`): the base64
    // HMAC-SHA256 of `1700000000000GET{path}?{q}`, the decoded query.
    assert_eq!(
        signed.headers["ACCESS-SIGN"],
        "kLeXPRzzAYTRoqPgsm+4l8LGHX7GBbZc3UjuV6Eq8r4="
    );
}

#[test]
fn binance_values_are_printable_ascii_and_a_semicolon_starts_a_whole_name() {
    // Red-team round 7, third wave: a server that normalises (NFKC, accents stripped, Java 8's
    // old whitespace, a combining dot after I) reads these as MARGIN; and a `;` where query
    // and body meet starts a whole `type` name for a parser that splits on it, whose value a
    // cut can shorten (`quantity=1;` | `type=ISOLATEDx`).
    let binance = cred(Binance, "key", "secret", None);
    for q in [
        "symbol=BTCUSDT&incomeType=%E1%A0%8EMARGIN",
        "symbol=BTCUSDT&incomeType=MARGI%CC%87N",
        "symbol=BTCUSDT&incomeType=%EF%BC%AD%EF%BC%A1%EF%BC%B2%EF%BC%A7%EF%BC%A9%EF%BC%AE",
        "symbol=BTCUSDT&incomeType=M%C3%81RGIN",
        "symbol=BTCUSDT&incomeType=MARGIN%00x",
        "symbol=BTCUSDT&incomeType=%FF",
        // Round 10: letters with case mappings or NFKC forms into ASCII (dotless i, long s,
        // the Kelvin sign, a full-width letter) next to CJK ones stay refused.
        "symbol=%E5%B8%81BTCUSDT&incomeType=MARG%C4%B1N",
        "symbol=%E5%B8%81USDT&incomeType=%C5%BFPOT",
        "symbol=%E5%B8%81USDT&incomeType=MAR%E2%84%AAIN",
        "symbol=%E5%B8%81USDT%EF%BC%AD",
    ] {
        let e = refused(&binance, &req("GET", "/fapi/v1/income", q, ""));
        assert!(e.contains("printable ASCII"), "{q}: {e}");
    }
    // Round 10: Binance lists symbols in CJK letters (币安人生USDT), percent-encoded as UTF-8
    // as its signing example shows; they have no case and no ASCII form, and are signed.
    for q in [
        "symbol=%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT",
        "symbol=%E3%81%82%E3%82%A2%EA%B0%80USDT",
    ] {
        signs(&binance, &req("GET", "/fapi/v1/income", q, ""));
    }
    let margin = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity"] }"#,
    ]);
    for (q, b) in [
        ("symbol=BTCUSDT&side=BUY&quantity=1;", "type=ISOLATEDx"),
        ("side=BUY&quantity=1;", "type=MARGIN_&symbol=BTCUSDT"),
    ] {
        let e = attempt(
            &binance,
            &margin,
            &req("POST", "/sapi/v1/margin/order", q, b),
        )
        .unwrap_err();
        // Round 9: a raw `;` is no longer a value character at all.
        assert!(e.contains("';' is %3B"), "{q} | {b}: {e}");
    }
    // Ordinary values sign.
    signs(
        &binance,
        &req(
            "GET",
            "/fapi/v1/income",
            "symbol=BTCUSDT&incomeType=REALIZED_PNL",
            "",
        ),
    );
}

/// `batchOrders` percent-encoded, as a form writer sends it.
fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn binance_batch_orders_are_each_held_to_the_single_order_rules() {
    // Red-team round 8: the orders inside `batchOrders` were never read. The raw form was
    // checked for shape only, and the percent-encoded form not at all: `type=MARGIN`, names no
    // order takes, repeated keys and `notjson` were all signed. Binance reads each as an order
    // of its own, so each is now held to the names, required names and values of the single
    // order's entry.
    let c = cred(Binance, "key", "secret", None);
    // ccxt 4.5's `create_orders` on USDⓈ-M futures, as it writes the body.
    let ccxt = r#"[{"symbol":"BTCUSDT","side":"BUY","newClientOrderId":"abc","newOrderRespType":"RESULT","type":"LIMIT","quantity":"0.01","price":"50000","timeInForce":"GTC","reduceOnly":true},{"symbol":"BTCUSDT","side":"SELL","newClientOrderId":"x-1","newOrderRespType":"RESULT","type":"MARKET","quantity":"0.01","positionSide":"LONG"}]"#;
    for body in [
        format!("batchOrders={ccxt}"),
        format!("batchOrders={}", form_encoded(ccxt)),
    ] {
        let signed = signs(&c, &req("POST", "/fapi/v1/batchOrders", "", &body));
        assert!(signed.body.starts_with(&body), "{signed:?}");
    }
    let edit =
        r#"[{"symbol":"BTCUSDT","side":"BUY","orderId":"1","quantity":"0.01","price":"50000"}]"#;
    let body = format!("batchOrders={edit}");
    signs(&c, &req("PUT", "/fapi/v1/batchOrders", "", &body));
    let order =
        |extra: &str| format!(r#"[{{"symbol":"BTCUSD_PERP","side":"BUY","quantity":"1"{extra}}}]"#);
    for (batch, why) in [
        (order(r#","type":"MARGIN""#), "UnlistedValue"),
        (
            order(r#","type":"LIMIT","sideEffectType":"MARGIN_BUY""#),
            "Withheld",
        ),
        (order(r#","type":"LIMIT","address":"x""#), "FundParameter"),
        (order(r#","type":"LIMIT","type":"MARKET""#), "Malformed"),
        (order(r#","type":"LIMIT","price":"1&a=b""#), "Malformed"),
        (order(r#","type":"LIMIT","price":["1"]"#), "Malformed"),
        ("notjson".to_string(), "Malformed"),
        ("{}".to_string(), "Malformed"),
        ("[]".to_string(), "Malformed"),
    ] {
        for body in [
            format!("batchOrders={batch}"),
            format!("batchOrders={}", form_encoded(&batch)),
        ] {
            let e = refused(&c, &req("POST", "/dapi/v1/batchOrders", "", &body));
            assert!(e.contains(why), "{body}: {e}");
        }
    }
    // A member holds what a single order's value may hold: CJK letters (the listed 币安人生USDT)
    // sign, in the JSON as such or as `\u` escapes; letters that fold into ASCII (dotless i,
    // the Kelvin sign) are refused however they are written.
    for symbol in [
        "\u{5e01}\u{5b89}\u{4eba}\u{751f}USDT",
        r"\u5e01\u5b89\u4eba\u751fUSDT",
    ] {
        let batch =
            format!(r#"[{{"symbol":"{symbol}","side":"BUY","type":"MARKET","quantity":"1"}}]"#);
        let body = format!("batchOrders={}", form_encoded(&batch));
        signs(&c, &req("POST", "/fapi/v1/batchOrders", "", &body));
    }
    for symbol in [
        "BTCUSD\u{131}",
        r"BTCUSD\u0131",
        r"BTC\u212aUSDT",
        "BTC\u{212a}USDT",
    ] {
        let batch =
            format!(r#"[{{"symbol":"{symbol}","side":"BUY","type":"MARKET","quantity":"1"}}]"#);
        let body = format!("batchOrders={}", form_encoded(&batch));
        let e = refused(&c, &req("POST", "/fapi/v1/batchOrders", "", &body));
        assert!(e.contains("CJK, kana or Hangul"), "{symbol}: {e}");
    }
    // In the query too (Binance reads both).
    let q = format!(
        "batchOrders={}",
        form_encoded(&order(r#","type":"MARGIN""#))
    );
    let e = refused(&c, &req("POST", "/dapi/v1/batchOrders", &q, ""));
    assert!(e.contains("UnlistedValue"), "{e}");
    // Under any case of the name (Binance reads names without case): a config entry for the
    // options batch that takes the list but names none of an order's members signs no order.
    let upper = config_allow(&[
        r#"{ method = "POST", path = "/eapi/v1/batchOrders", params = ["BATCHORDERS"] }"#,
    ]);
    let body = format!("BATCHORDERS={}", form_encoded(&order(r#","type":"LIMIT""#)));
    let e = attempt(&c, &upper, &req("POST", "/eapi/v1/batchOrders", "", &body)).unwrap_err();
    assert!(e.contains("CaseVariant"), "{e}");
}

#[test]
fn binance_no_cut_makes_a_name_that_alone_is_a_fund_moving_request() {
    // Red-team round 8: the coin-M position read took `marginAsset`. Cut after `margin`, the
    // signed bytes `marginAsset=ADA&timestamp=…` are the query `margin` and the body
    // `Asset=ADA&timestamp=…`: to Binance, which reads names without case, `asset=ADA` alone,
    // the whole of `POST /sapi/v1/asset/dust` (the balance converted to BNB) and of the
    // portfolio-margin asset collection. The profile no longer takes the name, and no cut may
    // make it, whatever config.toml allows.
    let c = cred(Binance, "key", "secret", None);
    let asked = "marginAsset=ADA";
    assert_eq!(format!("{}{}", "margin", "Asset=ADA"), asked);
    let e = refused(&c, &req("GET", "/dapi/v1/positionRisk", asked, ""));
    assert!(e.contains("UnknownParameter"), "{e}");
    let wide = config_allow(&[
        r#"{ method = "GET", path = "/dapi/v1/positionRisk", params = ["marginAsset", "MARGINASSET", "pair"] }"#,
    ]);
    for q in [
        asked,
        "pair=BTCUSD&marginAsset=ADA",
        "pair=BTCUSD&MARGINASSET=ADA",
    ] {
        let e = attempt(&c, &wide, &req("GET", "/dapi/v1/positionRisk", q, "")).unwrap_err();
        assert!(e.contains("MadeName"), "{q}: {e}");
    }
    // Where a query value meets the body's first name: `symbol=XMAX` ‖ `leverage=3` is, cut
    // after `X`, `maxLeverage=3` alone (`POST /sapi/v1/margin/max-leverage`).
    let e = refused(
        &c,
        &req("POST", "/fapi/v1/leverage", "symbol=xmax", "leverage=3"),
    );
    assert!(e.contains("MadeName"), "{e}");
    signs(
        &c,
        &req("POST", "/fapi/v1/leverage", "", "symbol=BTCUSDT&leverage=3"),
    );
}

#[test]
fn binance_refuses_a_request_split_between_query_and_body() {
    // Red-team round 9: a query value ending in `order` met a body starting with
    // `type=MARKET`, and the signed bytes `symbol=TSLA&side=SELL&quantity=10&
    // newClientOrderId=ordertype=MARKET&timestamp=…`, cut after `newClientOrderId=`, are the
    // query `…&newClientOrderId=` and the body `ordertype=MARKET&…`: to Binance, reading names
    // without case, a market sale of stock (`POST /sapi/v1/equity/order/place`), settled to
    // the Card wallet. Where the query meets the body a cut makes names neither holds, so a
    // request with parameters on both sides is refused; and `orderType` is a name no cut may
    // make, should a split request ever be signed.
    let c = cred(Binance, "key", "secret", None);
    let query = "symbol=TSLA&side=SELL&quantity=10&newClientOrderId=order";
    for path in ["/api/v3/order/test", "/api/v3/order", "/fapi/v1/order"] {
        let e = refused(&c, &req("POST", path, query, "type=MARKET"));
        assert!(e.contains("MadeName"), "{path}: {e}");
        assert!(e.contains("ordertype"), "{path}: {e}");
        // Any split is refused, whatever it makes; sent on one side, the order signs.
        let e = refused(
            &c,
            &req(
                "POST",
                path,
                "symbol=TSLA&side=SELL",
                "type=MARKET&quantity=10",
            ),
        );
        assert!(e.contains("SplitPayload"), "{path}: {e}");
        let one = "symbol=TSLA&side=SELL&type=MARKET&quantity=10";
        signs(&c, &req("POST", path, one, ""));
        signs(&c, &req("POST", path, "", one));
    }
    // The stock order itself is denied by path.
    let e = refused(
        &c,
        &req(
            "POST",
            "/sapi/v1/equity/order/place",
            "symbol=TSLA&side=SELL&orderType=MARKET&quantity=10",
            "",
        ),
    );
    assert!(e.contains("BuiltIn"), "{e}");
}

#[test]
fn a_config_batch_entry_keeps_the_profile_body_shape() {
    // Red-team round 8: policy.md's recipe for a cash-only OKX key, an `allow` line for the
    // batch endpoint with `values = { "[].tdMode" = ["cash"] }`, was written without
    // `body = "array"`, and refused every batch ("takes a JSON object body"): ccxt sends every
    // order there. An entry standing in for a profile endpoint keeps its body shape.
    let c = passphrase_cred(Okx);
    let cash = config_allow(&[
        r#"{ method = "POST", path = "/api/v5/trade/batch-orders", params = ["[].instId", "[].tdMode", "[].side", "[].ordType", "[].sz", "[].px"], values = { "[].tdMode" = ["cash"] } }"#,
    ]);
    let order = |td: &str| {
        format!(
            r#"[{{"instId":"BTC-USDT","tdMode":"{td}","side":"buy","ordType":"limit","sz":"1","px":"1"}}]"#
        )
    };
    let path = "/api/v5/trade/batch-orders";
    attempt(&c, &cash, &req("POST", path, "", &order("cash"))).unwrap();
    // A value the profile takes that this entry narrowed out: refused with no line (round 16).
    let e = attempt(&c, &cash, &req("POST", path, "", &order("cross"))).unwrap_err();
    assert!(e.contains("Narrowed"), "{e}");
    let object =
        r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1"}"#;
    let e = attempt(&c, &cash, &req("POST", path, "", object)).unwrap_err();
    assert!(e.contains("Malformed"), "{e}");
}

#[test]
fn unified_account_orders_must_name_the_account_type_their_values_narrow() {
    // Red-team round 8: Bitget's `category` and KuCoin's `tradeType` are what their `values`
    // hold away from MARGIN, and a request that left them out was signed. Both exchanges
    // document them as mandatory; a server that defaulted or inferred them would have escaped
    // the values list.
    let bitget = passphrase_cred(Bitget);
    for (path, body) in [
        (
            "/api/v3/trade/place-order",
            r#"{"symbol":"BTCUSDT","qty":"1","side":"buy","orderType":"market"}"#,
        ),
        (
            "/api/v3/trade/place-batch",
            r#"[{"symbol":"BTCUSDT","qty":"1","side":"buy","orderType":"market"}]"#,
        ),
        (
            "/api/v3/trade/place-strategy-order",
            r#"{"symbol":"BTCUSDT","qty":"1","side":"buy","tpslMode":"full"}"#,
        ),
    ] {
        let e = refused(&bitget, &req("POST", path, "", body));
        assert!(e.contains("MissingParameter"), "{path}: {e}");
    }
    let kucoin = passphrase_cred(Kucoin);
    let body = r#"{"clientOid":"a","symbol":"BTC-USDT","side":"buy","orderType":"limit","size":"1","price":"1"}"#;
    let e = refused(
        &kucoin,
        &req("POST", "/api/ua/v1/unified/order/place", "", body),
    );
    assert!(e.contains("MissingParameter"), "{e}");
    let body = r#"{"tradeType":"SPOT","clientOid":"a","symbol":"BTC-USDT","side":"buy","orderType":"limit","size":"1","price":"1"}"#;
    signs(
        &kucoin,
        &req("POST", "/api/ua/v1/unified/order/place", "", body),
    );
}

#[test]
fn a_name_in_both_the_query_and_a_json_body_must_say_the_same_in_both() {
    // Red-team round 8: Gate signs the query and the body, and a spot amend carried
    // `account=spot` in the query and `"account":"unified"` in the body: which copy Gate reads
    // is not documented, so the agent could not know what it signed.
    let c = passphrase_cred(Exchange::Gate);
    let path = "/api/v4/spot/orders/123";
    let body = r#"{"currency_pair":"ETH_USDT","account":"unified","amount":"1"}"#;
    for query in [
        "currency_pair=BTC_USDT&account=spot",
        "ACCOUNT=spot",
        "currency_pair=BTC_USDT",
    ] {
        let e = refused(&c, &req("PATCH", path, query, body));
        assert!(e.contains("both the query and the body"), "{query}: {e}");
    }
    signs(&c, &req("PATCH", path, "currency_pair=ETH_USDT", body));
}

#[test]
fn every_order_of_a_batch_carries_the_required_names() {
    // Red-team round 8, second wave: a required `[].name` was met by any one order of a
    // batch, so a Bitget batch whose first order named `category` signed a second without it,
    // which the `[].category` values never saw. Each order must carry it.
    let bitget = passphrase_cred(Bitget);
    let order = |category: &str| {
        format!(r#"{{{category}"symbol":"BTCUSDT","qty":"1","side":"buy","orderType":"market"}}"#)
    };
    let path = "/api/v3/trade/place-batch";
    let both = format!(r#"[{},{}]"#, order(r#""category":"SPOT","#), order(""));
    let e = refused(&bitget, &req("POST", path, "", &both));
    assert!(e.contains("MissingParameter"), "{e}");
    let good = format!(
        r#"[{},{}]"#,
        order(r#""category":"SPOT","#),
        order(r#""category":"USDT-FUTURES","#)
    );
    signs(&bitget, &req("POST", path, "", &good));
    // Binance's batchOrders, and Bybit's `request` list, the same way.
    let binance = cred(Binance, "key", "secret", None);
    let body = r#"batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"1","price":"1"},{"quantity":"1","reduceOnly":"true"}]"#;
    let e = refused(&binance, &req("POST", "/fapi/v1/batchOrders", "", body));
    assert!(e.contains("MissingParameter"), "{e}");
    let bybit = cred(Bybit, "key", "secret", None);
    let body = r#"{"category":"linear","request":[{"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"1"},{"side":"Buy","orderType":"Limit","qty":"1","price":"1"}]}"#;
    let e = refused(&bybit, &req("POST", "/v5/order/create-batch", "", body));
    assert!(e.contains("MissingParameter"), "{e}");
}

#[test]
fn binance_batch_members_are_printable_ascii_once_unescaped() {
    // Red-team round 8, second wave: Binance values must be printable ASCII once decoded; a
    // JSON escape inside a batch order (`\u0000`, `\t`) got a control character past that.
    let c = cred(Binance, "key", "secret", None);
    for member in [r#""BUY\u0000""#, r#""BUY\t""#, r#""BUY\u001f""#] {
        let batch = format!(
            r#"[{{"symbol":"BTCUSDT","side":{member},"type":"LIMIT","quantity":"1","price":"1"}}]"#
        );
        let body = format!("batchOrders={}", form_encoded(&batch));
        let e = refused(&c, &req("POST", "/fapi/v1/batchOrders", "", &body));
        assert!(e.contains("Malformed"), "{member}: {e}");
    }
}

#[test]
fn the_profile_shape_check_reads_every_element_of_a_list() {
    // Red-team round 8, third wave: a config entry under another Bybit path signed a batch
    // amend whose second element had no `symbol`, bytes the profile's `amend-batch` never
    // signs (it requires `request[].symbol` of every element), because the shape check asked
    // only whether some element had it.
    let c = cred(Bybit, "key", "secret", None);
    let amendz = config_allow(&[
        r#"{ method = "POST", path = "/v5/order/amendz", params = ["category", "request[].symbol", "request[].orderId", "request[].qty", "request[].price"], required = ["category"] }"#,
    ]);
    let body = r#"{"category":"linear","request":[{"symbol":"BTCUSDT","orderId":"1","qty":"2"},{"orderId":"2","qty":"3"}]}"#;
    let e = attempt(&c, &amendz, &req("POST", "/v5/order/amendz", "", body)).unwrap_err();
    assert!(e.contains("ProfileShape"), "{e}");
    // A required name in a list inside a list's elements cannot be held to every element: an
    // entry that asks for one is not taken.
    let nested: Endpoint = toml::from_str(
        r#"method = "POST"
path = "/api/v5/trade/amend-batch-orders"
params = ["[].instId", "[].attachAlgoOrds[].newTpTriggerPx"]
required = ["[].attachAlgoOrds[].newTpTriggerPx"]"#,
    )
    .unwrap();
    let e = nested.check().unwrap_err();
    assert!(e.contains("a list inside a list"), "{e}");
}

#[test]
fn binance_signs_no_self_trade_transfer_and_no_switch_into_multi_assets_mode() {
    // Red-team round 8, fourth wave: every spot order entry took `selfTradePreventionMode`
    // freely, and TRANSFER moves a prevented trade's value to another account of the trade
    // group (Binance's STP FAQ); and `multiAssetsMargin=true` switches USDⓈ-M futures into a
    // mode where an asset goes negative against other collateral, which Binance converts.
    let c = cred(Binance, "key", "secret", None);
    for (path, q) in [
        (
            "/api/v3/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=1000",
        ),
        (
            "/api/v3/sor/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
        ),
    ] {
        let transfer = format!("{q}&selfTradePreventionMode=TRANSFER");
        let e = refused(&c, &req("POST", path, &transfer, ""));
        assert!(e.contains("Withheld"), "{path}: {e}");
        signs(
            &c,
            &req(
                "POST",
                path,
                &format!("{q}&selfTradePreventionMode=EXPIRE_MAKER"),
                "",
            ),
        );
    }
    let e = refused(
        &c,
        &req(
            "POST",
            "/fapi/v1/multiAssetsMargin",
            "",
            "multiAssetsMargin=true",
        ),
    );
    assert!(e.contains("Withheld"), "{e}");
    signs(
        &c,
        &req(
            "POST",
            "/fapi/v1/multiAssetsMargin",
            "",
            "multiAssetsMargin=false",
        ),
    );
    // A trader who wants the mode says so in config.toml.
    let on = config_allow(&[
        r#"{ method = "POST", path = "/fapi/v1/multiAssetsMargin", params = ["multiAssetsMargin"], required = ["multiAssetsMargin"], values = { multiAssetsMargin = ["true", "false"] } }"#,
    ]);
    attempt(
        &c,
        &on,
        &req(
            "POST",
            "/fapi/v1/multiAssetsMargin",
            "",
            "multiAssetsMargin=true",
        ),
    )
    .unwrap();
}

#[test]
fn okx_and_bitget_order_modes_are_the_listed_ones_in_the_cases_the_exchanges_write() {
    // Red-team round 8, fourth wave: OKX's `tdMode` took any value, `spot_isolated` (spot lead
    // trading, which the profile leaves out with copy trading) included; Bitget's own examples
    // write `category` in lower case, which the values list refused.
    let okx = passphrase_cred(Okx);
    let order = |td: &str| {
        format!(
            r#"{{"instId":"BTC-USDT","tdMode":"{td}","side":"buy","ordType":"market","sz":"1"}}"#
        )
    };
    let e = refused(
        &okx,
        &req("POST", "/api/v5/trade/order", "", &order("spot_isolated")),
    );
    assert!(e.contains("Withheld"), "{e}");
    signs(
        &okx,
        &req("POST", "/api/v5/trade/order", "", &order("cash")),
    );
    // On a spot pair `cross` and `isolated` borrow: signed for a key that may (round 22).
    let may_borrow = KeyPolicy {
        margin: true,
        ..KeyPolicy::default()
    };
    for td in ["cross", "isolated"] {
        let r = req("POST", "/api/v5/trade/order", "", &order(td));
        assert!(refused(&okx, &r).contains("Margin"), "{td}");
        attempt(&okx, &may_borrow, &r).unwrap();
    }
    let bitget = passphrase_cred(Bitget);
    let body = r#"{"category":"usdt-futures","symbol":"BTCUSDT","qty":"1","side":"buy","orderType":"market"}"#;
    signs(&bitget, &req("POST", "/api/v3/trade/place-order", "", body));
    for margin in ["margin", "Margin", "MARGIN"] {
        let body = format!(
            r#"{{"category":"{margin}","symbol":"BTCUSDT","qty":"1","side":"buy","orderType":"market"}}"#
        );
        let e = refused(
            &bitget,
            &req("POST", "/api/v3/trade/place-order", "", &body),
        );
        assert!(e.contains("Withheld"), "{margin}: {e}");
    }
}

#[test]
fn a_semicolon_cannot_smuggle_a_name_into_a_value() {
    // Red-team round 9: `;` was a value character on every exchange, and only Binance read the
    // names after it. To a server that splits parameters on `;` (Python before 3.9.2, Go
    // before 1.17, Netty by default), Upbit's `uuid=X;net_type` carries `net_type`, refused on
    // every path, and Kraken's `userref=1;leverage` a `leverage` a key's `only` may have left
    // out. A raw `;` is refused in every query and form value; `%3B`, decoded after the split,
    // stays part of its value where escapes are taken.
    let upbit = cred(Exchange::Upbit, "key", "secret", None);
    let bithumb = cred(Exchange::Bithumb, "key", "secret", None);
    let kraken = cred(
        Exchange::Kraken,
        "key",
        "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        None,
    );
    let binance = cred(Binance, "key", "secret", None);
    let uuid = "9f432943-54e0-40b7-825f-b6fec8b42b79";
    let order = "ordertype=limit&type=buy&volume=1&pair=XBTUSD&price=1&userref=1";
    let cases: [(&Credential, SignRequest); 5] = [
        (
            &upbit,
            req("DELETE", "/v1/order", &format!("uuid={uuid};net_type"), ""),
        ),
        (
            &bithumb,
            req("GET", "/v1/orders", "market=KRW-BTC;address", ""),
        ),
        (
            &kraken,
            req(
                "POST",
                "/0/private/AddOrder",
                "",
                &format!("{order};leverage"),
            ),
        ),
        (
            &kraken,
            req("POST", "/0/private/CancelOrder", "", "txid=O1;asset"),
        ),
        (
            &binance,
            req("GET", "/api/v3/openOrders", "symbol=BTCUSDT;address", ""),
        ),
    ];
    for (c, r) in cases {
        let e = attempt(c, &KeyPolicy::default(), &r).unwrap_err();
        assert!(e.contains("Malformed") && e.contains("';'"), "{r:?}: {e}");
    }
    // The same requests without the smuggled name sign.
    signs(
        &upbit,
        &req("DELETE", "/v1/order", &format!("uuid={uuid}"), ""),
    );
    signs(&bithumb, &req("GET", "/v1/orders", "market=KRW-BTC", ""));
    // (Kraken's signing needs the agent's nonce store: its policy check stands for it.)
    let kraken_order = req("POST", "/0/private/AddOrder", "", order);
    policy::check_request(Exchange::Kraken, "k", &KeyPolicy::default(), &kraken_order).unwrap();
    // Escaped, it is part of the value to every server.
    signs(
        &binance,
        &req("GET", "/api/v3/openOrders", "symbol=BTC%3BUSDT", ""),
    );
}

#[test]
fn bitget_batch_modify_takes_category_held_off_margin_and_okx_algo_orders_take_no_grid_fields() {
    // Red-team round 9: Bitget's unified-account batch modify will require `symbol` and
    // `category` (as its single modify does) and refused both; now it takes them, with
    // `category` held off MARGIN as on the single modify. OKX's algo-order entry listed the
    // grid bot's `triggerParams`, which the algo order does not take.
    let bitget = passphrase_cred(Exchange::Bitget);
    let path = "/api/v3/trade/batch-modify-order";
    let edit = |category: &str| {
        format!(r#"[{{"orderId":"1","qty":"2","symbol":"BTCUSDT","category":"{category}"}}]"#)
    };
    signs(&bitget, &req("POST", path, "", &edit("SPOT")));
    let e = refused(&bitget, &req("POST", path, "", &edit("MARGIN")));
    assert!(e.contains("Withheld"), "{e}");
    let okx = passphrase_cred(Okx);
    let algo = r#"{"instId":"BTC-USDT","side":"buy","tdMode":"cash","ordType":"conditional","sz":"1","triggerParams":[{"triggerAction":"start"}]}"#;
    let e = refused(&okx, &req("POST", "/api/v5/trade/order-algo", "", algo));
    assert!(e.contains("UnknownParameter"), "{e}");
}

#[test]
fn kucoin_reads_a_delete_from_its_query_but_for_the_batch_cancel() {
    // Red-team round 9: KuCoin signs a DELETE's body but reads a cancel's parameters from the
    // query (ccxt sends them there). A cancel-all with `symbol` in the body was checked by the
    // agent, a key's `values` on `symbol` included, and read by KuCoin with no symbol: every
    // symbol's orders cancelled.
    let c = passphrase_cred(Exchange::Kucoin);
    for path in [
        "/api/v1/orders",
        "/api/v1/stop-order/cancel",
        "/api/v1/stopOrders",
        "/api/v3/orders",
        "/api/v3/oco/orders",
    ] {
        let e = refused(
            &c,
            &req(
                "DELETE",
                path,
                "",
                r#"{"symbol":"BTC-USDT","tradeType":"TRADE"}"#,
            ),
        );
        assert!(
            e.contains("Malformed") && e.contains("from the query"),
            "{path}: {e}"
        );
    }
    signs(
        &c,
        &req(
            "DELETE",
            "/api/v1/orders",
            "symbol=BTC-USDT&tradeType=TRADE",
            "",
        ),
    );
    // The batch cancel is the one DELETE KuCoin reads a body for.
    signs(
        &c,
        &req(
            "DELETE",
            "/api/v1/orders/multi-cancel",
            "",
            r#"{"orderIdsList":["1","2"]}"#,
        ),
    );
}

/// Red-team round 10: Upbit's and Bithumb's tokens cover the parameters only, so an order
/// request must carry what makes it an order (market, side and type, as their references
/// require): `{"identifier":"X"}` alone was signed as an order and is also a cancel of order
/// X, which a key narrowed with `only` to placing orders must not get.
#[test]
fn upbit_and_bithumb_orders_require_what_makes_them_orders() {
    let upbit = cred(Exchange::Upbit, "key", "secret", None);
    let bithumb = cred(Exchange::Bithumb, "key", "secret", None);
    for (c, path, body) in [
        (&upbit, "/v1/orders", r#"{"identifier":"X"}"#),
        (&upbit, "/v1/orders", r#"{"market":"KRW-BTC"}"#),
        (&upbit, "/v1/orders/test", r#"{"identifier":"X"}"#),
        (
            &upbit,
            "/v1/orders/cancel_and_new",
            r#"{"prev_order_uuid":"X"}"#,
        ),
        (&bithumb, "/v2/orders", r#"{"client_order_id":"X"}"#),
        (
            &bithumb,
            "/v1/orders",
            r#"{"market":"KRW-BTC","side":"bid"}"#,
        ),
    ] {
        let e = refused(c, &req("POST", path, "", body));
        assert!(
            e.contains("Missing") || e.contains("required"),
            "{path} {body}: {e}"
        );
    }
    signs(
        &upbit,
        &req(
            "POST",
            "/v1/orders",
            "",
            r#"{"market":"KRW-BTC","side":"bid","ord_type":"limit","price":"100","volume":"1","identifier":"X"}"#,
        ),
    );
    signs(
        &bithumb,
        &req(
            "POST",
            "/v2/orders",
            "",
            r#"{"market":"KRW-BTC","side":"bid","order_type":"limit","price":"100","volume":"1"}"#,
        ),
    );
}

/// Red-team round 10: Bybit signs a GET's query and a POST's body alike, so a request
/// without parameters signs an empty payload that is also `POST /v5/account/repay` with an
/// empty body (every liability repaid, other assets sold), `delete-api` and
/// `upgrade-to-uta`. Refused unless the key's config says `parameterless = true`.
#[test]
fn bybit_requests_without_parameters_need_the_keys_parameterless() {
    let bybit = cred(Bybit, "key", "secret", None);
    let accepting = KeyPolicy {
        parameterless: true,
        ..KeyPolicy::default()
    };
    for path in [
        "/v5/account/info",
        "/v5/asset/coin/query-info",
        "/v5/account/transaction-log",
    ] {
        let r = req("GET", path, "", "");
        let e = refused(&bybit, &r);
        assert!(e.contains("Parameterless"), "{path}: {e}");
        let said = policy::check_request(Bybit, "k", &KeyPolicy::default(), &r)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // Red-team round 20: no switch suggested (a bot sends such a request at will, as a
        // login's bait), only where the docs say what it gives away.
        assert!(
            !said.contains("parameterless = true") && said.contains("Requests without parameters"),
            "{said}"
        );
        let signed = attempt(&bybit, &accepting, &r).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            signed.query.is_empty() && signed.body.is_empty(),
            "{signed:?}"
        );
    }
    // With a parameter, the payload is not empty, and no POST's JSON body is a query.
    signs(
        &bybit,
        &req(
            "GET",
            "/v5/account/transaction-log",
            "currency=USDT&limit=50",
            "",
        ),
    );
}

/// Red-team round 10, third wave: Bitget's unified-account leverage with the MARGIN category
/// (and a coin) sets how much cross margin may borrow; Binance's max-leverage is denied for
/// the same reason. Only the futures categories are signed.
#[test]
fn bitget_unified_leverage_is_futures_only() {
    let bitget = passphrase_cred(Bitget);
    for body in [
        r#"{"category":"MARGIN","symbol":"BTCUSDT","leverage":"10","coin":"USDT","marginMode":"crossed"}"#,
        r#"{"category":"margin","leverage":"10","coin":"USDT"}"#,
        r#"{"leverage":"10","coin":"USDT"}"#,
    ] {
        refused(
            &bitget,
            &req("POST", "/api/v3/account/set-leverage", "", body),
        );
    }
    signs(
        &bitget,
        &req(
            "POST",
            "/api/v3/account/set-leverage",
            "",
            r#"{"category":"USDT-FUTURES","symbol":"BTCUSDT","leverage":"10"}"#,
        ),
    );
}

#[test]
fn bybit_orders_are_spot_linear_or_inverse_and_margin_never_portfolio() {
    // Red-team round 11: `category` had no values on the order entries, so an option order,
    // a naked short call included, was signed by a profile that trades spot and futures.
    let bybit = cred(Bybit, "key", "secret", None);
    let option = r#"{"category":"option","symbol":"BTC-27DEC24-80000-C","side":"Sell","orderType":"Limit","qty":"1","price":"100","orderLinkId":"a"}"#;
    for path in ["/v5/order/create", "/v5/order/pre-check"] {
        let e = refused(&bybit, &req("POST", path, "", option));
        assert!(e.contains("Withheld"), "{path}: {e}");
    }
    let batch = r#"{"category":"option","request":[{"symbol":"BTC-27DEC24-80000-C","side":"Sell","orderType":"Limit","qty":"1","price":"100"}]}"#;
    let e = refused(&bybit, &req("POST", "/v5/order/create-batch", "", batch));
    assert!(e.contains("Withheld"), "{e}");
    // Nor an amend of one (placed elsewhere), which could enlarge it.
    let amend = r#"{"category":"option","symbol":"BTC-27DEC24-80000-C","orderId":"1","qty":"5"}"#;
    let e = refused(&bybit, &req("POST", "/v5/order/amend", "", amend));
    assert!(e.contains("Withheld"), "{e}");
    for category in ["spot", "linear", "inverse"] {
        let body = format!(
            r#"{{"category":"{category}","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}}"#
        );
        signs(&bybit, &req("POST", "/v5/order/create", "", &body));
    }
    // Second wave: portfolio margin counts option premiums and futures losses against every
    // collateral coin and borrows what goes negative; isolated and cross (ccxt's) sign.
    let mode = |m: &str| {
        req(
            "POST",
            "/v5/account/set-margin-mode",
            "",
            &format!(r#"{{"setMarginMode":"{m}"}}"#),
        )
    };
    let e = refused(&bybit, &mode("PORTFOLIO_MARGIN"));
    assert!(e.contains("Withheld"), "{e}");
    for m in ["ISOLATED_MARGIN", "REGULAR_MARGIN"] {
        signs(&bybit, &mode(m));
    }
}

#[test]
fn kucoin_unified_orders_take_self_trade_prevention_and_good_till_time() {
    // Red-team round 11: ccxt documents `stp`, `cancelAfter` (with GTT) and `tags` for the
    // unified account's orders, which the entry refused; `stp` takes the cancel modes only.
    let kucoin = passphrase_cred(Kucoin);
    for (path, body) in [
        (
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"SPOT","clientOid":"a","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"1","stp":"CN"}"#,
        ),
        (
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"SPOT","clientOid":"a","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"1","timeInForce":"GTT","cancelAfter":60,"tags":"t"}"#,
        ),
        (
            "/api/ua/v1/classic/order/place",
            r#"{"tradeType":"FUTURES","clientOid":"a","symbol":"XBTUSDTM","side":"BUY","orderType":"LIMIT","size":"1","price":"1","stp":"CO"}"#,
        ),
    ] {
        signs(&kucoin, &req("POST", path, "", body));
    }
    let e = refused(
        &kucoin,
        &req(
            "POST",
            "/api/ua/v1/unified/order/place",
            "",
            r#"{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"1","stp":"TRANSFER"}"#,
        ),
    );
    assert!(e.contains("UnlistedValue"), "{e}");
}

#[test]
fn an_entry_for_a_path_outside_the_profile_is_held_to_the_profiles_values() {
    // Red-team round 11, third wave: where the path is not signed, the profile's `values` held
    // only on the profile's own path. An entry for a sibling path (a legacy Bybit v3 endpoint,
    // a Binance margin order; the line a refusal suggests lists no values) signed the value
    // the profile leaves out, and the bytes were the profile endpoint's request with it.
    let bybit = cred(Bybit, "key", "secret", None);
    let binance = cred(Binance, "key", "secret", None);
    let legacy = config_allow(&[
        r#"{ method = "POST", path = "/unified/v3/private/account/setMarginMode", params = ["setMarginMode"] }"#,
        r#"{ method = "POST", path = "/unified/v3/private/order/create", params = ["category", "symbol", "side", "orderType", "qty", "price", "timeInForce", "orderLinkId"] }"#,
    ]);
    let portfolio = r#"{"setMarginMode":"PORTFOLIO_MARGIN"}"#;
    let option = r#"{"category":"option","symbol":"BTC-27MAR26-150000-C","side":"Sell","orderType":"Limit","qty":"5","price":"5"}"#;
    for (path, body) in [
        ("/unified/v3/private/account/setMarginMode", portfolio),
        ("/unified/v3/private/order/create", option),
    ] {
        // Values the profile withholds: the refusal says why, and asks for no `values` line.
        let e = attempt(&bybit, &legacy, &req("POST", path, "", body)).unwrap_err();
        assert!(e.contains("Withheld"), "{path}: {e}");
    }
    let margin = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity", "price", "timeInForce", "selfTradePreventionMode"] }"#,
    ]);
    let transfer = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timeInForce=GTC&selfTradePreventionMode=TRANSFER";
    let e = attempt(
        &binance,
        &margin,
        &req("POST", "/sapi/v1/margin/order", "", transfer),
    )
    .unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    // What the profile takes still signs through those entries, and a value the entry lists
    // itself is the trader's choice.
    let expire = transfer.replace("TRANSFER", "EXPIRE_TAKER");
    attempt(
        &binance,
        &margin,
        &req("POST", "/sapi/v1/margin/order", "", &expire),
    )
    .unwrap();
    attempt(
        &bybit,
        &legacy,
        &req(
            "POST",
            "/unified/v3/private/account/setMarginMode",
            "",
            r#"{"setMarginMode":"ISOLATED_MARGIN"}"#,
        ),
    )
    .unwrap();
    let chosen = config_allow(&[
        r#"{ method = "POST", path = "/unified/v3/private/account/setMarginMode", params = ["setMarginMode"], values = { setMarginMode = ["PORTFOLIO_MARGIN"] } }"#,
    ]);
    attempt(
        &bybit,
        &chosen,
        &req(
            "POST",
            "/unified/v3/private/account/setMarginMode",
            "",
            portfolio,
        ),
    )
    .unwrap();
}

#[test]
fn suggested_lines_cannot_be_chained_into_what_the_profile_leaves_out() {
    // Red-team round 11, fourth wave. Each chain used only lines the agent suggested.
    let binance = cred(Binance, "key", "secret", None);
    let bybit = cred(Bybit, "key", "secret", None);
    let order = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timeInForce=GTC";
    let none = KeyPolicy::default();
    // A case variant of a profile name (Binance reads names without case) was unknown, so the
    // suggested line took it without the profile's values.
    let pasted = config_allow(&[
        r#"{ method = "POST", path = "/api/v3/order", params = ["symbol", "side", "type", "quantity", "price", "timeInForce", "SelfTradePreventionMode"], required = ["symbol", "side", "type"] }"#,
    ]);
    // A name another profile endpoint takes hid a profile endpoint's shape from the values
    // check of an entry for a sibling path.
    let margin = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity", "price", "timeInForce", "selfTradePreventionMode", "omitZeroBalances"] }"#,
    ]);
    let legacy = config_allow(&[
        r#"{ method = "POST", path = "/unified/v3/private/order/create", params = ["category", "symbol", "side", "orderType", "qty", "price", "mode"] }"#,
    ]);
    // Fifth wave: an entry that lists the first value the profile endpoint leaves out hid a
    // second one.
    let twap = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity", "selfTradePreventionMode"], values = { type = ["TWAP"] } }"#,
    ]);
    let spot = r#""category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"1""#;
    let cases = [
        // Refused as such, by the profile and through any entry that lists it.
        (&binance, &none, "POST", "/api/v3/order", format!("{order}&SelfTradePreventionMode=NONE"), "CaseVariant"),
        (&binance, &pasted, "POST", "/api/v3/order", format!("{order}&SelfTradePreventionMode=TRANSFER"), "CaseVariant"),
        (&bybit, &none, "POST", "/v5/order/create", format!(r#"{{{spot},"Category":"option"}}"#), "CaseVariant"),
        // A name with a withheld value, unknown to the endpoint and sent with a harmless
        // value, got a line that took it without values; it gets none.
        (&binance, &none, "PUT", "/api/v3/order/amend/keepPriority", "symbol=BTCUSDT&newQty=1&selfTradePreventionMode=NONE".to_owned(), "Withheld"),
        // Withheld however the name is wrapped.
        (&bybit, &none, "POST", "/v5/order/create", format!(r#"{{{spot},"isLeverage":[1]}}"#), "Withheld"),
        (&binance, &margin, "POST", "/sapi/v1/margin/order", format!("{order}&selfTradePreventionMode=TRANSFER&omitZeroBalances=false"), "Withheld"),
        (&binance, &twap, "POST", "/sapi/v1/margin/order", "symbol=BTCUSDT&side=BUY&type=TWAP&quantity=1&selfTradePreventionMode=TRANSFER".to_owned(), "Withheld"),
        (&bybit, &legacy, "POST", "/unified/v3/private/order/create", r#"{"category":"option","symbol":"BTC-27MAR26-150000-C","side":"Sell","orderType":"Limit","qty":"5","price":"5","mode":0}"#.to_owned(), "Withheld"),
    ];
    for (c, policy, method, path, payload, why) in cases {
        let body = if payload.starts_with('{') {
            payload.clone()
        } else {
            String::new()
        };
        let query = if body.is_empty() {
            payload.clone()
        } else {
            String::new()
        };
        let e = attempt(c, policy, &req(method, path, &query, &body)).unwrap_err();
        assert!(e.contains(why), "{path} {payload}: {e}");
    }
    // What the profile takes still signs through the margin entry.
    attempt(
        &binance,
        &margin,
        &req(
            "POST",
            "/sapi/v1/margin/order",
            "",
            &format!("{order}&selfTradePreventionMode=NONE&omitZeroBalances=false"),
        ),
    )
    .unwrap();
    // Withheld since: OKX's quickMgnType and spot lead trading, KuCoin's unified CROSS.
    let okx = passphrase_cred(Okx);
    let kucoin = passphrase_cred(Kucoin);
    for (c, path, body) in [
        (
            &okx,
            "/api/v5/trade/order",
            r#"{"instId":"BTC-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"1","quickMgnType":"auto_borrow"}"#,
        ),
        (
            &okx,
            "/api/v5/trade/order",
            r#"{"instId":"BTC-USDT","tdMode":"spot_isolated","side":"buy","ordType":"market","sz":"1"}"#,
        ),
        (
            &kucoin,
            "/api/ua/v1/classic/order/place",
            r#"{"tradeType":"CROSS","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1"}"#,
        ),
    ] {
        let e = refused(c, &req("POST", path, "", body));
        assert!(e.contains("Withheld"), "{path} {body}: {e}");
    }
}

#[test]
fn okx_event_contract_orders_are_withheld() {
    // Red-team round 12: OKX's order entries listed `outcome`, the field that makes an order an
    // event-contract bet (a share paying 1 or 0 on an event, bought at 0.01 to 0.99), and took
    // `tdMode=isolated`, all such an order needs. Neither spot nor the profile's derivatives.
    let okx = passphrase_cred(Okx);
    let single = r#"{"instId":"BTC-ABOVE-DAILY-260224-1600-120000","tdMode":"isolated","side":"buy","outcome":"yes","ordType":"market","sz":"1000","speedBump":"1"}"#;
    let batch = r#"[{"instId":"BTC-UPDOWN-15MIN-260224-1600-1615","tdMode":"isolated","side":"buy","outcome":"no","ordType":"limit","px":"0.99","sz":"1000","speedBump":"1"}]"#;
    for (path, body) in [
        ("/api/v5/trade/order", single),
        ("/api/v5/trade/batch-orders", batch),
    ] {
        let e = refused(&okx, &req("POST", path, "", body));
        assert!(e.contains("Withheld"), "{path}: {e}");
        assert!(e.contains("event contracts"), "{path}: {e}");
    }
    // The same orders without `outcome` are ordinary ones.
    let plain = r#"{"instId":"BTC-USDT-SWAP","tdMode":"isolated","side":"buy","ordType":"market","sz":"1","speedBump":"1"}"#;
    signs(&okx, &req("POST", "/api/v5/trade/order", "", plain));
}

#[test]
fn bitget_margin_orders_auto_borrow_gets_no_suggested_line() {
    // Bitget's margin orders (`/api/v2/margin/{crossed,isolated}/place-order` and their
    // batches) borrow by `loanType` (autoLoan, autoLoanAndRepay), as KuCoin's by `autoBorrow`.
    // The endpoint is the trader's to allow; the line the refusal suggested for it (params
    // "...") was followed by one that took `loanType` with any value, so an order sent with
    // `normal` had the trader paste the line that then signed `autoLoan`.
    let bitget = passphrase_cred(Bitget);
    let path = "/api/v2/margin/crossed/place-order";
    let order = |loan: &str| {
        format!(
            r#"{{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"60000","baseSize":"10","loanType":"{loan}"}}"#
        )
    };
    let suggested = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["..."] }}"#
    )]);
    let e = attempt(
        &bitget,
        &suggested,
        &req("POST", path, "", &order("normal")),
    )
    .unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    assert!(!e.contains("params ="), "no line that takes loanType: {e}");
    let batch = format!(
        r#"{{"symbol":"BTCUSDT","orderList":[{}]}}"#,
        order("autoLoanAndRepay")
    );
    let e = attempt(
        &bitget,
        &config_allow(&[
            r#"{ method = "POST", path = "/api/v2/margin/isolated/batch-place-order", params = ["..."] }"#,
        ]),
        &req("POST", "/api/v2/margin/isolated/batch-place-order", "", &batch),
    )
    .unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    // A line written by hand that lists it is the trader's choice.
    let by_hand = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["symbol", "side", "orderType", "force", "price", "baseSize", "loanType"], values = {{ loanType = ["normal"] }} }}"#
    )]);
    attempt(&bitget, &by_hand, &req("POST", path, "", &order("normal"))).unwrap();
}

#[test]
fn okx_margin_balance_borrow_flags_get_no_suggested_line() {
    // `POST /api/v5/account/position/margin-balance` changes a position's margin; it is the
    // trader's to allow. Its `auto` transfers borrowed coins out of an isolated margin
    // position, and `loanTrans` lets borrowed coins be transferred out: a refusal suggested a
    // line that took either with any value.
    let okx = passphrase_cred(Okx);
    let path = "/api/v5/account/position/margin-balance";
    let suggested = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["..."] }}"#
    )]);
    for flag in ["auto", "loanTrans"] {
        let body = format!(
            r#"{{"instId":"BTC-USDT","posSide":"net","type":"reduce","amt":"1","{flag}":false}}"#
        );
        let e = attempt(&okx, &suggested, &req("POST", path, "", &body)).unwrap_err();
        assert!(e.contains("Withheld"), "{flag}: {e}");
        assert!(!e.contains("params ="), "no line that takes {flag}: {e}");
    }
    // Without them, no line either: the endpoint is left out on purpose, and no refusal on it
    // widens an entry (red-team round 27, F1; the line for its own parameters was suggested).
    let plain = r#"{"instId":"BTC-USDT","posSide":"net","type":"add","amt":"1"}"#;
    let e = attempt(&okx, &suggested, &req("POST", path, "", plain)).unwrap_err();
    assert!(
        e.contains("WithheldEntry") && !e.contains("params ="),
        "{e}"
    );
}

#[test]
fn okx_auto_borrow_leverage_is_withheld() {
    // `POST /api/v5/account/set-leverage` with `ccy` sets that currency's leverage "in auto
    // borrow" (OKX: cross MARGIN of spot, multi-currency and portfolio margin modes), how much
    // margin may borrow: Binance's max leverage and KuCoin's cross-margin leverage, its twins,
    // are denied. The profile signed it; ccxt's setLeverage and setMarginMode never send it.
    let okx = passphrase_cred(Okx);
    let path = "/api/v5/account/set-leverage";
    let borrow = r#"{"ccy":"USDT","lever":"10","mgnMode":"cross"}"#;
    let e = refused(&okx, &req("POST", path, "", borrow));
    assert!(e.contains("Withheld"), "{e}");
    assert!(!e.contains("params ="), "no line that takes ccy: {e}");
    // An order's `ccy` (its margin currency) is the profile's still.
    let order = r#"{"instId":"BTC-USDT-SWAP","tdMode":"cross","ccy":"USDT","side":"buy","ordType":"limit","px":"1","sz":"1"}"#;
    signs(&okx, &req("POST", "/api/v5/trade/order", "", order));
    // What ccxt sends: an instrument's leverage, which is also its margin mode.
    for body in [
        r#"{"lever":5,"mgnMode":"cross","instId":"BTC-USDT-SWAP"}"#,
        r#"{"lever":5,"mgnMode":"isolated","instId":"BTC-USDT-SWAP","posSide":"net"}"#,
    ] {
        signs(&okx, &req("POST", path, "", body));
    }
    // A line written by hand that lists it is the trader's choice.
    let by_hand = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["instId", "ccy", "lever", "mgnMode", "posSide"] }}"#
    )]);
    attempt(&okx, &by_hand, &req("POST", path, "", borrow)).unwrap();
}

#[test]
fn bitget_multi_asset_mode_gets_no_suggested_line() {
    // `POST /api/v2/mix/account/set-asset-mode` with `union` puts USDT-M futures in
    // multi-asset mode: USDT that profits, fees and funding push below zero is a debt that
    // bears interest, backed by the other coins (Binance's multi-assets mode, whose `true` the
    // profile withholds). The endpoint is the trader's to allow; a bot that sent `single`
    // had the agent suggest a line (params "..."), then one taking `assetMode` with any value,
    // which signed `union`.
    let bitget = passphrase_cred(Bitget);
    let path = "/api/v2/mix/account/set-asset-mode";
    let mode = |m: &str| format!(r#"{{"productType":"USDT-FUTURES","assetMode":"{m}"}}"#);
    let suggested = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["..."] }}"#
    )]);
    let e = attempt(&bitget, &suggested, &req("POST", path, "", &mode("single"))).unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    assert!(!e.contains("params ="), "no line that takes assetMode: {e}");
    // An entry written by hand that lists `single` only still gets no line for `union`.
    let single = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["productType", "assetMode"], values = {{ assetMode = ["single"] }} }}"#
    )]);
    attempt(&bitget, &single, &req("POST", path, "", &mode("single"))).unwrap();
    let e = attempt(&bitget, &single, &req("POST", path, "", &mode("union"))).unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    // A line written by hand that takes it is the trader's choice.
    let by_hand = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["productType", "assetMode"] }}"#
    )]);
    attempt(&bitget, &by_hand, &req("POST", path, "", &mode("union"))).unwrap();
}

#[test]
fn bybit_risk_settings_ccxt_never_calls_are_not_signed_by_default() {
    // Auto-add-margin has Bybit move balance into an isolated position about to be liquidated
    // (it can then lose more than its margin); spot hedging lowers portfolio margin's
    // requirements, so the account may carry more. Trading needs neither, and ccxt's unified
    // methods call neither: the default profile signed both.
    let bybit = cred(Bybit, "key", "secret", None);
    for (path, body) in [
        (
            "/v5/position/set-auto-add-margin",
            r#"{"category":"linear","symbol":"BTCUSDT","autoAddMargin":1}"#,
        ),
        ("/v5/account/set-hedging-mode", r#"{"setHedgingMode":"ON"}"#),
    ] {
        let e = attempt(&bybit, &KeyPolicy::default(), &req("POST", path, "", body)).unwrap_err();
        // Left out on purpose: refused with why, and no line (red-team round 17).
        assert!(e.contains("WithheldEndpoint"), "{path}: {e}");
    }
}

#[test]
fn gate_stock_account_transfer_is_denied() {
    // `POST /api/v4/stock/transactions` moves USDT into the stock account (`type` `deposit`)
    // or out of it (`withdraw`), as `/api/v4/tradfi/transactions` does for TradFi, which is
    // denied. It was on no deny rule: a refusal suggested an `allow` line for it, and the line
    // filled in signed the transfer.
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let path = "/api/v4/stock/transactions";
    let body = r#"{"asset":"USDT","change":"25000","type":"withdraw","ref_id":"r20261205a"}"#;
    let e = attempt(&gate, &KeyPolicy::default(), &req("POST", path, "", body)).unwrap_err();
    assert!(e.contains("BuiltIn"), "{e}");
    let filled_in = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["asset", "change", "type", "ref_id"] }}"#
    )]);
    let e = attempt(&gate, &filled_in, &req("POST", path, "", body)).unwrap_err();
    assert!(e.contains("BuiltIn"), "{e}");
}

#[test]
fn binance_leaving_margin_special_key_mode_is_denied() {
    // `POST /sapi/v1/margin/exit-special-key-mode` deletes every margin special key and bars new
    // ones for 24 hours. It was on no rule: a refusal suggested an `allow` line for it. (Its
    // bytes, `timestamp` alone, remain what any parameterless Binance signature is: see
    // "Parameterless requests" in docs/policy.md.)
    let binance = cred(Binance, "key", "secret", None);
    let path = "/sapi/v1/margin/exit-special-key-mode";
    let q = "recvWindow=5000&timestamp=1700000000000";
    let e = attempt(&binance, &KeyPolicy::default(), &req("POST", path, q, "")).unwrap_err();
    assert!(e.contains("BuiltIn"), "{e}");
    let filled_in = config_allow(&[&format!(
        r#"{{ method = "POST", path = "{path}", params = ["recvWindow"] }}"#
    )]);
    let e = attempt(&binance, &filled_in, &req("POST", path, q, "")).unwrap_err();
    assert!(e.contains("BuiltIn"), "{e}");
}

#[test]
fn a_profile_shape_refusal_does_not_ask_for_a_withheld_value() {
    // Where the path is not signed, an entry written for another path that admits a profile
    // endpoint's request with a value the profile leaves out is refused, and the refusal said
    // to list the value in that entry's `values`. For a value the profile withholds (STP
    // `TRANSFER`, which moves a prevented trade's value to another account; Bybit's `option`
    // category) that is the line a refusal must not suggest: the bot picks the value, and the
    // entry then signs the profile endpoint's request with it, whatever path the bot names.
    let binance = cred(Binance, "key", "secret", None);
    let margin = config_allow(&[
        r#"{ method = "POST", path = "/sapi/v1/margin/order", params = ["symbol", "side", "type", "quantity", "price", "timeInForce", "selfTradePreventionMode"] }"#,
    ]);
    let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timeInForce=GTC\
             &selfTradePreventionMode=TRANSFER";
    let e = attempt(
        &binance,
        &margin,
        &req("POST", "/sapi/v1/margin/order", q, ""),
    )
    .unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    assert!(
        !e.contains("ProfileValue"),
        "no advice to list TRANSFER: {e}"
    );
    let bybit = cred(Bybit, "key", "secret", None);
    let other = config_allow(&[
        r#"{ method = "POST", path = "/v5/order/create-x", params = ["category", "symbol", "side", "orderType", "qty", "price"] }"#,
    ]);
    let body = r#"{"category":"option","symbol":"BTC-30DEC26-100000-C","side":"Sell","orderType":"Limit","qty":"1","price":"100"}"#;
    let e = attempt(&bybit, &other, &req("POST", "/v5/order/create-x", "", body)).unwrap_err();
    assert!(e.contains("Withheld"), "{e}");
    // A value withheld from no one still gets the advice.
    let body = body.replace("option", "spot_x");
    let e = attempt(
        &bybit,
        &other,
        &req("POST", "/v5/order/create-x", "", &body),
    )
    .unwrap_err();
    assert!(e.contains("ProfileValue"), "{e}");
}

#[test]
fn bybit_copy_trading_writes_get_no_suggested_line() {
    // OKX's, Bitget's and KuCoin's copy-trading writes are denied; Bybit's legacy v3 ones were
    // on no rule (only their wallet transfer was), so a refusal suggested an allow line.
    let bybit = cred(Bybit, "key", "secret", None);
    for path in [
        "/contract/v3/private/copytrading/order/create",
        "/contract/v3/private/copytrading/position/close",
    ] {
        let body = r#"{"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#;
        let e = attempt(&bybit, &KeyPolicy::default(), &req("POST", path, "", body)).unwrap_err();
        assert!(
            e.contains("copytrading/**") && e.contains("Transfer"),
            "{path}: {e}"
        );
    }
}

/// Red-team round 24: a parameter withheld for one value, sent as a list holding a harmless
/// one, was refused with the withheld value's reason (options, lead trading, borrowing). It
/// gets the wrapped name's refusal other parameters get: send it as a plain value.
#[test]
fn a_list_of_a_name_withheld_for_a_value_is_told_to_send_it_plain() {
    for (c, path, body) in [
        (
            cred(Bybit, "key", "secret", None),
            "/v5/order/create",
            r#"{"category":["linear"],"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#,
        ),
        (
            passphrase_cred(Okx),
            "/api/v5/trade/order",
            r#"{"instId":"BTC-USDT-SWAP","tdMode":["cash"],"side":"buy","ordType":"market","sz":"1"}"#,
        ),
        (
            passphrase_cred(Okx),
            "/api/v5/trade/batch-orders",
            r#"[{"instId":"BTC-USDT-SWAP","tdMode":["cash"],"side":"buy","ordType":"market","sz":"1"}]"#,
        ),
        (
            passphrase_cred(Bitget),
            "/api/v3/trade/place-order",
            r#"{"category":["SPOT"],"symbol":"BTCUSDT","side":"buy","orderType":"market","qty":"1"}"#,
        ),
        (
            passphrase_cred(Kucoin),
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":["SPOT"],"symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1"}"#,
        ),
    ] {
        let e = refused(&c, &req("POST", path, "", body));
        assert!(e.starts_with("Denied(Wrapped"), "{path} {body}: {e}");
        let msg = policy::check_request(
            c.exchange,
            "k",
            &KeyPolicy::default(),
            &req("POST", path, "", body),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("as a plain value"), "{msg}");
        for word in ["options", "lead trading", "borrows", "allow = ["] {
            assert!(!msg.contains(word), "{word:?} in {msg}");
        }
    }
}

/// Red-team round 24: a refusal for a margin order endpoint outside the profile (KuCoin's
/// unified-account v2 `order/place` and `amend`, v1 `place-batch`, KuCoin's and Bitget's margin
/// orders) handed the generic line when the bait left the borrow switch out; filled in with
/// the names the exchange documents, it signed `tradeType=MARGIN`, `autoBorrow=true` and
/// `loanType=autoLoan` for a key without `margin = true`, while the same entry refused
/// KuCoin's other spelling of a margin order (`SPOT` with `marginMode`). A borrow switch is
/// now a margin order's on every entry: refused as one unless the key may borrow.
#[test]
fn borrow_switches_under_an_allow_entry_are_margin_orders() {
    let kucoin = passphrase_cred(Kucoin);
    let bitget = passphrase_cred(Bitget);
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let entries = [
        r#"{ method = "POST", path = "/api/ua/v2/unified/order/place", params = ["tradeType", "symbol", "side", "orderType", "size", "sizeUnit", "price", "clientOid", "timeInForce", "postOnly", "reduceOnly", "stp", "cancelAfter"] }"#,
        r#"{ method = "POST", path = "/api/ua/v1/unified/order/place-batch", params = ["tradeType", "orderList[].tradeType", "orderList[].clientOid", "orderList[].symbol", "orderList[].side", "orderList[].orderType", "orderList[].size", "orderList[].price"] }"#,
        r#"{ method = "POST", path = "/api/v3/hf/margin/order", params = ["clientOid", "side", "symbol", "type", "price", "size", "isIsolated", "autoBorrow", "autoRepay"] }"#,
        r#"{ method = "POST", path = "/api/v1/margin/order", params = ["clientOid", "side", "symbol", "type", "size", "marginModel", "autoBorrow"] }"#,
        r#"{ method = "POST", path = "/api/v2/margin/crossed/place-order", params = ["symbol", "side", "orderType", "price", "baseSize", "quoteSize", "loanType", "force", "clientOid", "stpMode"], required = ["symbol", "side", "orderType", "loanType"] }"#,
        r#"{ method = "POST", path = "/api/v4/spot/pov_orders", params = ["currency_pair", "side", "amount", "account", "auto_borrow"] }"#,
        r#"{ method = "POST", path = "/api/v3/trade/place-reality-order", params = ["category", "symbol", "side", "orderType", "qty", "price", "clientOid"] }"#,
    ];
    let mut allowed = config_allow(&entries);
    let borrowing = [
        (
            &kucoin,
            "/api/ua/v2/unified/order/place",
            r#"{"tradeType":"MARGIN","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1000","sizeUnit":"QUOTECCY"}"#,
        ),
        (
            &kucoin,
            "/api/ua/v2/unified/order/place",
            r#"{"tradeType":"margin_isolated_trade","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1"}"#,
        ),
        (
            &kucoin,
            "/api/ua/v1/unified/order/place-batch",
            r#"{"tradeType":"MARGIN","orderList":[{"symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"100000"}]}"#,
        ),
        (
            &kucoin,
            "/api/ua/v1/unified/order/place-batch",
            r#"{"orderList":[{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"1"},{"tradeType":"CROSS","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","size":"1","price":"1"}]}"#,
        ),
        (
            &kucoin,
            "/api/v3/hf/margin/order",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","autoBorrow":true}"#,
        ),
        (
            &kucoin,
            "/api/v3/hf/margin/order",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","autoRepay":"true"}"#,
        ),
        (
            &kucoin,
            "/api/v1/margin/order",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","autoBorrow":null}"#,
        ),
        (
            &bitget,
            "/api/v2/margin/crossed/place-order",
            r#"{"symbol":"BTCUSDT","side":"buy","orderType":"market","quoteSize":"1000","loanType":"autoLoan"}"#,
        ),
        (
            &bitget,
            "/api/v2/margin/crossed/place-order",
            r#"{"symbol":"BTCUSDT","side":"buy","orderType":"market","quoteSize":"1000","loanType":"AUTOLOANANDREPAY"}"#,
        ),
        (
            &gate,
            "/api/v4/spot/pov_orders",
            r#"{"currency_pair":"BTC_USDT","side":"buy","amount":"1000","account":"unified","auto_borrow":true}"#,
        ),
        // Red-team round 25: Bitget's `category` in spellings a server's case folding may
        // read as `MARGIN` (Java's `equalsIgnoreCase` takes `İ` for `I`): full Unicode upper
        // case left `MARGİN` as it was, and the order was signed.
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            "{\"category\":\"MARG\u{130}N\",\"symbol\":\"AAPLUSDT\",\"side\":\"buy\",\"orderType\":\"market\",\"qty\":\"1000\"}",
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            r#"{"category":"MARG\u0130N","symbol":"AAPLUSDT","side":"buy","orderType":"market","qty":"1000"}"#,
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            "{\"category\":\"marg\u{130}n\",\"symbol\":\"AAPLUSDT\",\"side\":\"buy\",\"orderType\":\"market\",\"qty\":\"1\"}",
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            "{\"category\":\"MARG\u{131}N\",\"symbol\":\"AAPLUSDT\",\"side\":\"buy\",\"orderType\":\"market\",\"qty\":\"1\"}",
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            "{\"category\":\"\u{ff2d}\u{ff21}\u{ff32}\u{ff27}\u{ff29}\u{ff2e}\",\"symbol\":\"AAPLUSDT\",\"side\":\"buy\",\"orderType\":\"market\",\"qty\":\"1\"}",
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            r#"{"category":"Margin","symbol":"AAPLUSDT","side":"buy","orderType":"market","qty":"1"}"#,
        ),
        // Its recheck: a control character at an end, which Java's `String.trim` strips.
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            r#"{"category":"MARGIN\u0000","symbol":"AAPLUSDT","side":"buy","orderType":"market","qty":"1"}"#,
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            r#"{"category":"\u001cMARGIN","symbol":"AAPLUSDT","side":"buy","orderType":"market","qty":"1"}"#,
        ),
        (
            &bitget,
            "/api/v3/trade/place-reality-order",
            r#"{"category":"margin\u0001","symbol":"AAPLUSDT","side":"buy","orderType":"market","qty":"1"}"#,
        ),
        // A value that is a plain one only in full Unicode case (`ſ` is `S` there) is not
        // taken as plain: the check compares those in ASCII case only.
        (
            &kucoin,
            "/api/ua/v2/unified/order/place",
            r#"{"tradeType":"\u017fPOT","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1"}"#,
        ),
        (
            &kucoin,
            "/api/v3/hf/margin/order",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","autoBorrow":"fal\u017fe"}"#,
        ),
    ];
    for (c, path, body) in borrowing {
        let r = req("POST", path, "", body);
        let e = attempt(c, &allowed, &r).unwrap_err();
        let msg = policy::check_request(c.exchange, "k", &allowed, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Denied(Margin")
                && msg.contains("margin = true")
                && !msg.contains("allow = ["),
            "{path} {body}: {msg}"
        );
    }
    // What does not borrow is signed under the same entries.
    for (c, path, body) in [
        (
            &kucoin,
            "/api/ua/v2/unified/order/place",
            r#"{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"10","sizeUnit":"QUOTECCY"}"#,
        ),
        (
            &kucoin,
            "/api/v3/hf/margin/order",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","autoBorrow":false}"#,
        ),
        (
            &bitget,
            "/api/v2/margin/crossed/place-order",
            r#"{"symbol":"BTCUSDT","side":"buy","orderType":"market","quoteSize":"1000","loanType":"normal"}"#,
        ),
    ] {
        attempt(c, &allowed, &req("POST", path, "", body))
            .unwrap_or_else(|e| panic!("{path} {body}: {e}"));
    }
    // A key whose config says it may borrow signs them all.
    allowed.margin = true;
    for (c, path, body) in borrowing {
        attempt(c, &allowed, &req("POST", path, "", body))
            .unwrap_or_else(|e| panic!("{path} {body} with margin = true: {e}"));
    }
    // A cancel or a read that names a margin trade type only takes risk off or looks: signed
    // by the profile as before.
    for (method, path, query, body) in [
        ("GET", "/api/v1/orders", "tradeType=MARGIN_TRADE", ""),
        ("DELETE", "/api/v1/orders", "tradeType=MARGIN_TRADE", ""),
        (
            "POST",
            "/api/ua/v1/unified/order/cancel",
            "",
            r#"{"tradeType":"MARGIN","symbol":"BTC-USDT","orderId":"1"}"#,
        ),
    ] {
        attempt(
            &kucoin,
            &KeyPolicy::default(),
            &req(method, path, query, body),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    }
}

/// Red-team round 24 (hardening): KuCoin signed a unified-account SPOT order with
/// `reduceOnly` and `positionSide`, fields it documents for futures only, and a classic spot
/// order on the path spot and futures share (`/api/v1/orders`) with the futures order's
/// `marginMode` and `leverage`. Both are read as margin orders; futures orders keep them.
#[test]
fn kucoin_spot_orders_with_futures_only_fields_are_margin_orders() {
    let kucoin = passphrase_cred(Kucoin);
    let may_borrow = KeyPolicy {
        margin: true,
        ..KeyPolicy::default()
    };
    for (path, body) in [
        (
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1","reduceOnly":true}"#,
        ),
        (
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","size":"1","positionSide":"SHORT"}"#,
        ),
        (
            "/api/v1/orders",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","tradeType":"TRADE","marginMode":"CROSS","leverage":"5"}"#,
        ),
        (
            "/api/v1/orders",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","leverage":"5"}"#,
        ),
        (
            "/api/v1/orders/test",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","tradeType":"TRADE","marginMode":"ISOLATED"}"#,
        ),
    ] {
        let r = req("POST", path, "", body);
        let e = refused(&kucoin, &r);
        assert!(e.starts_with("Denied(Margin"), "{path} {body}: {e}");
        attempt(&kucoin, &may_borrow, &r)
            .unwrap_or_else(|e| panic!("{path} {body} with margin = true: {e}"));
    }
    for (path, body) in [
        (
            "/api/ua/v1/unified/order/place",
            r#"{"tradeType":"FUTURES","symbol":"XBTUSDTM","side":"BUY","orderType":"MARKET","size":"1","sizeUnit":"UNIT","reduceOnly":true,"positionSide":"SHORT"}"#,
        ),
        (
            "/api/v1/orders",
            r#"{"clientOid":"a","side":"buy","symbol":"XBTUSDTM","type":"market","size":"1","marginMode":"CROSS","leverage":"5","reduceOnly":true,"positionSide":"LONG"}"#,
        ),
        (
            "/api/v1/orders",
            r#"{"clientOid":"a","side":"buy","symbol":"BTC-USDT","type":"market","size":"1","tradeType":"TRADE"}"#,
        ),
    ] {
        signs(&kucoin, &req("POST", path, "", body));
    }
}

/// Red-team round 24, recheck (R1): OKX reads `instIdCode` before `instId`, and the margin
/// check read the instrument from `instId` alone: under a trader's entries that take
/// `instIdCode`, a swap's `instId` beside a spot pair's code was signed `cross`, a spot margin
/// order that borrows. An order naming a code with a `tdMode` other than `cash` is read as a
/// spot pair's, in a batch's member and an algo order too.
#[test]
fn an_okx_instrument_code_beside_a_margin_mode_is_a_margin_order() {
    let okx = passphrase_cred(Okx);
    let mut allowed = config_allow(&[
        r#"{ method = "POST", path = "/api/v5/trade/order", params = ["instId", "tdMode", "ccy", "clOrdId", "tag", "side", "posSide", "ordType", "sz", "px", "reduceOnly", "tgtCcy", "banAmend", "quickMgnType", "stpMode", "instIdCode"] }"#,
        r#"{ method = "POST", path = "/api/v5/trade/batch-orders", body = "array", params = ["[].instId", "[].instIdCode", "[].tdMode", "[].side", "[].ordType", "[].sz", "[].px", "[].ccy"] }"#,
        r#"{ method = "POST", path = "/api/v5/trade/order-algo", params = ["instId", "instIdCode", "tdMode", "side", "ordType", "sz", "slTriggerPx", "slOrdPx", "ccy"] }"#,
    ]);
    let by_code = [
        (
            "/api/v5/trade/order",
            r#"{"side":"buy","ordType":"market","sz":"1","instId":"BTC-USDT-SWAP","instIdCode":"10459","tdMode":"cross"}"#,
        ),
        (
            "/api/v5/trade/batch-orders",
            r#"[{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","sz":"1","px":"1"},{"instId":"BTC-USDT-SWAP","instIdCode":10459,"tdMode":"isolated","side":"buy","ordType":"limit","sz":"1","px":"1"}]"#,
        ),
        (
            "/api/v5/trade/order-algo",
            r#"{"instId":"BTC-USDT-SWAP","instIdCode":"10459","tdMode":"cross","side":"buy","ordType":"conditional","sz":"1","slTriggerPx":"1","slOrdPx":"-1"}"#,
        ),
    ];
    for (path, body) in by_code {
        let r = req("POST", path, "", body);
        let e = attempt(&okx, &allowed, &r).unwrap_err();
        let msg = policy::check_request(Okx, "k", &allowed, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Denied(Margin")
                && msg.contains("instIdCode")
                && msg.contains("margin = true")
                && !msg.contains("allow = ["),
            "{path} {body}: {msg}"
        );
    }
    // A swap's `cross` without a code, and a code with `cash`, are signed as before.
    for (path, body) in [
        (
            "/api/v5/trade/order",
            r#"{"side":"buy","ordType":"market","sz":"1","instId":"BTC-USDT-SWAP","tdMode":"cross"}"#,
        ),
        (
            "/api/v5/trade/order",
            r#"{"side":"buy","ordType":"market","sz":"1","instId":"BTC-USDT","instIdCode":"10459","tdMode":"cash"}"#,
        ),
    ] {
        attempt(&okx, &allowed, &req("POST", path, "", body))
            .unwrap_or_else(|e| panic!("{path} {body}: {e}"));
    }
    // The default profile withholds the name, and its reason names the borrowing too.
    let msg = policy::check_request(
        Okx,
        "k",
        &KeyPolicy::default(),
        &req("POST", by_code[0].0, "", by_code[0].1),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("instIdCode") && msg.contains("spot pair") && msg.contains("margin = true"),
        "{msg}"
    );
    allowed.margin = true;
    for (path, body) in by_code {
        attempt(&okx, &allowed, &req("POST", path, "", body))
            .unwrap_or_else(|e| panic!("{path} {body} with margin = true: {e}"));
    }
}

/// Red-team round 24, recheck (R2): the borrow switches were skipped for a path holding
/// `cancel` or `close-position` as sent, so a placeholder's value turned them off: Gate's
/// amend entry `/api/v4/spot/orders/{order_id}` signed `auto_borrow: true` sent to
/// `/api/v4/spot/orders/cancel`. A cancel or a close is told by the entry's literal segments.
#[test]
fn a_placeholder_valued_cancel_does_not_turn_the_borrow_switches_off() {
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let mut allowed = config_allow(&[
        r#"{ method = "PATCH", path = "/api/v4/spot/orders/{order_id}", params = ["currency_pair", "account", "amount", "price", "amend_text", "auto_borrow"] }"#,
    ]);
    let body = r#"{"currency_pair":"BTC_USDT","amount":"2","auto_borrow":true}"#;
    for path in [
        "/api/v4/spot/orders/cancel",
        "/api/v4/spot/orders/close-position",
        "/api/v4/spot/orders/123",
    ] {
        let r = req("PATCH", path, "", body);
        let e = attempt(&gate, &allowed, &r).unwrap_err();
        assert!(e.starts_with("Denied(Margin"), "{path}: {e}");
    }
    allowed.margin = true;
    attempt(
        &gate,
        &allowed,
        &req("PATCH", "/api/v4/spot/orders/cancel", "", body),
    )
    .unwrap_or_else(|e| panic!("with margin = true: {e}"));
}

/// Red-team round 24, recheck (R3): the classic spot test on `/api/v1/orders` read only an
/// ASCII `-` in `symbol`, so a spot pair spelled with a look-alike (`BTC－USDT`, U+FF0D, which
/// NFKC folds to `-`) or with none was read as a futures contract and signed with `leverage`.
/// Only a symbol spelled as a contract's (ASCII capitals and digits) is read as futures.
#[test]
fn a_kucoin_symbol_not_spelled_as_a_contract_is_a_spot_order() {
    let kucoin = passphrase_cred(Kucoin);
    let may_borrow = KeyPolicy {
        margin: true,
        ..KeyPolicy::default()
    };
    for symbol in [
        r#""symbol":"BTC－USDT","#,
        r#""symbol":"BTC\uff0dUSDT","#,
        r#""symbol":"BTC\ufe63USDT","#,
        r#""symbol":"BTC−USDT","#,
        r#""symbol":"BTC\u00adUSDT","#,
        r#""symbol":"BTC_USDT","#,
        r#""symbol":"xbtusdtm","#,
        "",
    ] {
        let body = format!(
            r#"{{"clientOid":"a","side":"buy",{symbol}"type":"market","size":"1","leverage":"5"}}"#
        );
        let r = req("POST", "/api/v1/orders", "", &body);
        let e = refused(&kucoin, &r);
        assert!(e.starts_with("Denied(Margin"), "{body}: {e}");
        attempt(&kucoin, &may_borrow, &r)
            .unwrap_or_else(|e| panic!("{body} with margin = true: {e}"));
    }
    for symbol in ["XBTUSDTM", "XBTUSDM", "XBTMZ25", "1000PEPEUSDTM"] {
        let body = format!(
            r#"{{"clientOid":"a","side":"buy","symbol":"{symbol}","type":"market","size":"1","leverage":"5","marginMode":"CROSS"}}"#
        );
        signs(&kucoin, &req("POST", "/api/v1/orders", "", &body));
    }
}

/// Red-team round 25: a Gate futures order carrying ccxt's `stopLoss.triggerPrice` was told
/// "send it as stop_loss.trigger_price", a name only the spot order entries take, which the
/// futures entry refuses too. The other spelling is refused as before wherever it is sent;
/// only the advice follows the endpoint asked for.
#[test]
fn a_name_spelled_as_another_endpoints_is_not_told_to_take_that_spelling() {
    let gate = cred(Exchange::Gate, "key", "secret", None);
    let explain = |policy: &KeyPolicy, r: &SignRequest| {
        policy::check_request(Exchange::Gate, "k", policy, r)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("signed {r:?}"))
    };
    let futures = |extra: &str| {
        req(
            "POST",
            "/api/v4/futures/usdt/orders",
            "",
            &format!(r#"{{"contract":"BTC_USDT","size":1,"price":"50000",{extra}}}"#),
        )
    };
    let spot = |extra: &str| {
        req(
            "POST",
            "/api/v4/spot/orders",
            "",
            &format!(
                r#"{{"currency_pair":"BTC_USDT","side":"buy","amount":"1","price":"50000",{extra}}}"#
            ),
        )
    };
    let said = explain(
        &KeyPolicy::default(),
        &futures(r#""stopLoss":{"triggerPrice":45000}"#),
    );
    let profile_spelling = explain(
        &KeyPolicy::default(),
        &futures(r#""stop_loss":{"trigger_price":"45000"}"#),
    );
    assert!(!said.contains("send it as"), "{said}");
    assert!(
        said.contains("asks for a trigger, stop or trailing order")
            && said.contains("suggests no line")
            && profile_spelling.contains("asks for a trigger, stop or trailing order"),
        "{said}\n{profile_spelling}"
    );
    // Where the endpoint takes the profile's spelling, the advice stands.
    let said = explain(
        &KeyPolicy::default(),
        &spot(r#""stopLoss":{"triggerPrice":"45000"}"#),
    );
    assert!(
        said.contains("send it as stop_loss.trigger_price"),
        "{said}"
    );
    signs(&gate, &spot(r#""stop_loss":{"trigger_price":"45000"}"#));
    // A look-alike of another endpoint's name that is no trigger gets no line either: an
    // entry taking it signs nothing.
    let said = explain(&KeyPolicy::default(), &futures(r#""Account":"spot""#));
    assert!(
        !said.contains("send it as")
            && !said.contains("allow = [")
            && said.contains("leave it out"),
        "{said}"
    );
    // Still refused under an entry that takes the other spelling: told to leave it out.
    let pasted = config_allow(&[
        r#"{ method = "POST", path = "/api/v4/futures/{settle}/orders", params = ["contract", "size", "price", "Account", "stopLoss.triggerPrice"] }"#,
    ]);
    for extra in [
        r#""Account":"spot""#,
        r#""stopLoss":{"triggerPrice":45000}"#,
    ] {
        let e = attempt(&gate, &pasted, &futures(extra)).unwrap_err();
        assert!(e.contains("CaseVariant"), "{extra}: {e}");
        let said = explain(&pasted, &futures(extra));
        assert!(
            !said.contains("send it as") && said.contains("leave it out"),
            "{extra}: {said}"
        );
    }
    attempt(
        &gate,
        &pasted,
        &req(
            "POST",
            "/api/v4/futures/usdt/orders",
            "",
            r#"{"contract":"BTC_USDT","size":1,"price":"50000"}"#,
        ),
    )
    .unwrap();
}

/// Red-team round 25: every Bybit request without parameters was told to "send a parameter the
/// endpoint takes", with an aside on ccxt's coin list, also where the endpoint takes none
/// (ccxt's `fetchMarginMode` reads `GET /v5/account/info`): the advice follows the entry.
#[test]
fn bybit_parameterless_refusal_says_what_the_endpoint_takes() {
    let said = |path: &str| {
        policy::check_request(Bybit, "k", &KeyPolicy::default(), &req("GET", path, "", ""))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("signed {path}"))
    };
    let info = said("/v5/account/info");
    assert!(
        info.contains("GET /v5/account/info takes no parameter")
            && info.contains("`parameterless`")
            && !info.contains("send a parameter")
            && !info.contains("fetchCurrencies"),
        "{info}"
    );
    // Still no line to paste (round 20): the docs section is named, not the switch's line.
    assert!(
        !info.contains("parameterless = true") && info.contains("Requests without parameters"),
        "{info}"
    );
    let coins = said("/v5/asset/coin/query-info");
    assert!(
        coins.contains("takes no parameter") && coins.contains("fetchCurrencies: false"),
        "{coins}"
    );
    let fees = said("/v5/account/fee-rate");
    assert!(fees.contains("send category, which"), "{fees}");
    let log = said("/v5/account/transaction-log");
    assert!(
        log.contains("send a parameter GET /v5/account/transaction-log takes")
            && !log.contains("fetchCurrencies"),
        "{log}"
    );
}

/// Red-team round 25: a Kraken body carrying `nonce` was refused as an unknown name with a
/// line adding `nonce` to the entry, and with that line pasted signing refused the body ("the
/// body already has a nonce"): the nonce is the agent's, refused as such, with no line.
#[test]
fn a_kraken_nonce_from_the_bot_gets_no_line() {
    let order = "ordertype=market&type=buy&volume=1&pair=XBTUSD";
    let pasted = config_allow(&[
        r#"{ method = "POST", path = "/0/private/AddOrder", params = ["ordertype", "type", "volume", "pair", "nonce"] }"#,
    ]);
    for (path, body) in [
        (
            "/0/private/AddOrder",
            format!("nonce=99999999999999&{order}"),
        ),
        ("/0/private/AddOrder", format!("{order}&NONCE=1")),
        (
            "/0/private/AddOrder",
            r#"{"nonce":"1","ordertype":"market","type":"buy","volume":"1","pair":"XBTUSD"}"#
                .to_owned(),
        ),
        ("/0/private/Balance", "nonce=1".to_owned()),
        ("/0/private/NotAnEndpoint", format!("nonce=1&{order}")),
        // Its recheck: spellings a server may fold into `nonce`.
        ("/0/private/AddOrder", format!("{order}&nonce%5B%5D=1")),
        ("/0/private/NotAnEndpoint", format!("nonce[]=1&{order}")),
        ("/0/private/NotAnEndpoint", format!("non_ce=1&{order}")),
        ("/0/private/NotAnEndpoint", format!("Nonce[0]=1&{order}")),
    ] {
        for policy in [&KeyPolicy::default(), &pasted] {
            let said = policy::check_request(Kraken, "k", policy, &req("POST", path, "", &body))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| panic!("signed {path} {body}"));
            assert!(
                said.contains("kraken's nonce is the agent's") && !said.contains("allow = ["),
                "{path} {body}: {said}"
            );
        }
    }
    // Without it the order passes (the signer adds the nonce: sign_kraken.rs).
    for policy in [&KeyPolicy::default(), &pasted] {
        policy::check_request(
            Kraken,
            "k",
            policy,
            &req("POST", "/0/private/AddOrder", "", order),
        )
        .unwrap();
    }
}

/// Red-team round 26: the margin check read OKX's `tdMode` on the body's top object or its
/// top list's members only, narrower than docs/policy.md's "on any order endpoint an entry
/// admits": an entry for an endpoint that nests its orders (an RFQ's legs each carry their own
/// `instId` and `tdMode`) signed a spot pair's `cross` leg. Every object of the body counts.
#[test]
fn an_okx_order_nested_in_the_body_is_read_for_its_margin_mode() {
    let okx = passphrase_cred(Okx);
    let allowed = config_allow(&[
        r#"{ method = "POST", path = "/api/v5/trade/legs-order", params = ["clOrdId", "legs[].instId", "legs[].tdMode", "legs[].side", "legs[].sz"] }"#,
    ]);
    let leg = |inst: &str, td: &str| {
        format!(r#"{{"instId":"{inst}","tdMode":"{td}","side":"buy","sz":"1"}}"#)
    };
    let body = |legs: &[String]| format!(r#"{{"clOrdId":"a","legs":[{}]}}"#, legs.join(","));
    let spot = body(&[leg("BTC-USDT-SWAP", "cross"), leg("BTC-USDT", "cross")]);
    let r = req("POST", "/api/v5/trade/legs-order", "", &spot);
    let e = attempt(&okx, &allowed, &r).unwrap_err();
    assert!(e.starts_with("Denied(Margin"), "{e}");
    let msg = policy::check_request(Okx, "k", &allowed, &r)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(r#"on the spot pair instId="BTC-USDT""#),
        "{msg}"
    );
    // A swap's leg, and a spot pair's `cash` leg, are signed.
    let plain = body(&[leg("BTC-USDT-SWAP", "cross"), leg("BTC-USDT", "cash")]);
    attempt(
        &okx,
        &allowed,
        &req("POST", "/api/v5/trade/legs-order", "", &plain),
    )
    .unwrap_or_else(|e| panic!("{plain}: {e}"));
}

/// Red-team round 26's recheck: the margin check read OKX's `tdMode`, `instId` and
/// `instIdCode` at any depth but by their exact names, and the look-alike check matched whole
/// names of the profile's only. A leg's `TdMode` or `td_mode` (`cross` on a spot pair) signed
/// under the entry the refusal's own line led to (`values = { "legs[].TdMode" = ["cross"] }`),
/// with no `margin = true`; so did `order.TdMode`. Such a spelling, at any depth, is refused
/// whatever entry lists it, and no refusal offers a line for it.
#[test]
fn an_okx_order_field_spelled_otherwise_is_refused_at_any_depth_with_no_line() {
    let okx = passphrase_cred(Okx);
    let no_line = |policy: &KeyPolicy, r: &SignRequest, respelled: &str| {
        let msg = policy::check_request(Okx, "k", policy, r)
            .unwrap_err()
            .to_string();
        assert!(
            !msg.contains("allow = [") && msg.contains(&format!("must send it as {respelled}")),
            "{msg}"
        );
    };
    for td in ["TdMode", "td_mode", "isTdMode"] {
        let path = "/api/v5/trade/legs-order";
        let body =
            format!(r#"{{"legs":[{{"instId":"BTC-USDT","{td}":"cross","sz":"1","side":"buy"}}]}}"#);
        let r = req("POST", path, "", &body);
        // The entry the line led to, and the one written without `values`.
        for values in [
            format!(r#", values = {{ "legs[].{td}" = ["cross"] }}"#),
            String::new(),
        ] {
            let allowed = config_allow(&[&format!(
                r#"{{ method = "POST", path = "{path}", params = ["legs[].instId", "legs[].{td}", "legs[].sz", "legs[].side"]{values} }}"#
            )]);
            let e = attempt(&okx, &allowed, &r).unwrap_err();
            assert!(e.starts_with("Denied(OrderFieldSpelling"), "{td}: {e}");
        }
        no_line(&KeyPolicy::default(), &r, "legs[].tdMode");
        // The same order in an object.
        let body = format!(
            r#"{{"order":{{"instId":"BTC-USDT","{td}":"isolated","sz":"1","side":"buy"}}}}"#
        );
        let r = req("POST", "/api/v5/trade/one-order", "", &body);
        let allowed = config_allow(&[&format!(
            r#"{{ method = "POST", path = "/api/v5/trade/one-order", params = ["order.instId", "order.{td}", "order.sz", "order.side"] }}"#
        )]);
        let e = attempt(&okx, &allowed, &r).unwrap_err();
        assert!(e.starts_with("Denied(OrderFieldSpelling"), "{td}: {e}");
        no_line(&KeyPolicy::default(), &r, "order.tdMode");
    }
    // The instrument, which tells a swap's `cross` from a spot pair's, spelled otherwise: a
    // swap's `inst_id` beside a spot pair's `instId` in another leg.
    let body = r#"{"legs":[{"inst_id":"BTC-USDT-SWAP","tdMode":"cross","sz":"1","side":"buy"}]}"#;
    let r = req("POST", "/api/v5/trade/legs-order", "", body);
    let allowed = config_allow(&[
        r#"{ method = "POST", path = "/api/v5/trade/legs-order", params = ["legs[].inst_id", "legs[].tdMode", "legs[].sz", "legs[].side"] }"#,
    ]);
    let e = attempt(&okx, &allowed, &r).unwrap_err();
    assert!(e.starts_with("Denied(OrderFieldSpelling"), "{e}");
    no_line(&KeyPolicy::default(), &r, "legs[].instId");
    // At the top, on the profile's own order endpoint, too (a line was offered there on an
    // endpoint outside the profile: `values = { TdMode = ["cross"] }`).
    let top = r#"{"instId":"BTC-USDT","TdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#;
    no_line(
        &KeyPolicy::default(),
        &req("POST", "/api/v5/trade/order", "", top),
        "tdMode",
    );
    no_line(
        &KeyPolicy::default(),
        &req("POST", "/api/v5/trade/flat-order", "", top),
        "tdMode",
    );
    // As spelled, a swap's leg still signs.
    let swap = r#"{"legs":[{"instId":"BTC-USDT-SWAP","tdMode":"cross","sz":"1","side":"buy"}]}"#;
    let allowed = config_allow(&[
        r#"{ method = "POST", path = "/api/v5/trade/legs-order", params = ["legs[].instId", "legs[].tdMode", "legs[].sz", "legs[].side"] }"#,
    ]);
    attempt(
        &okx,
        &allowed,
        &req("POST", "/api/v5/trade/legs-order", "", swap),
    )
    .unwrap();
}

/// Upbit hashes a JSON body as the `k=v&...` query it flattens to, the same string a query's
/// `k=v&...` is. The query's values were held to unencoded characters, a body's were not:
/// `"identifier":"x%26currency%3DBTC..."` was signed, and a server that decodes the whole
/// string before it splits reads a withdrawal's fields there (red-team round 27). A body value
/// now takes the query's rule, with the query's kind of refusal; plain ids still sign.
#[test]
fn upbit_body_values_are_held_to_the_query_values_characters() {
    let c = cred(Exchange::Upbit, "ak", "sk", None);
    let order = |identifier: &str| {
        format!(
            r#"{{"market":"KRW-BTC","side":"bid","ord_type":"price","price":"5000","identifier":"{identifier}"}}"#
        )
    };
    for identifier in [
        "x%26currency%3DBTC%26net_type%3DBTC%26amount%3D1%26address%3Dbc1qxyz",
        "x%26a%3D1",
        "x+net_type",
        "x#y?z",
        "a b",
        "it's",
        "x%",
    ] {
        let e = refused(&c, &req("POST", "/v1/orders", "", &order(identifier)));
        assert!(
            e.contains("identifier") && e.contains("hashes the body as the query"),
            "{identifier}: {e}"
        );
        // The same value in a query is refused the same way.
        let query = format!("uuid=x&identifier={}", identifier.replace(' ', "%20"));
        let e = refused(&c, &req("GET", "/v1/order", &query, ""));
        assert!(e.contains("query value"), "{identifier}: {e}");
    }
    for identifier in ["bot-20260101-0001", "grid_1.buy:2", "a~b,c!(d)@e$f/g*h"] {
        signs(&c, &req("POST", "/v1/orders", "", &order(identifier)));
    }
}
