//! A nested object or a batch's member sent as JSON text inside a string (red-team round 26):
//! `"put":"{…auto_borrow:true…}"` on Gate's price orders, a string member of Gate's spot batch,
//! `"orderList":"[…autoBorrow:true…]"` on KuCoin's HF batch. A server whose JSON binder reads
//! a string as the object or list it spells places a borrowing order, while the agent's rules
//! (the borrow switches, `values`, the margin checks) read names and never looked inside the
//! string. The refusal used to hand a line taking the head name (`put`, `"[]"`, `orderList`)
//! as a plain parameter, which, pasted, signed the string.

use tapsign_proto::{SignKind, SignRequest};

use super::{Denial, Endpoint, KeyPolicy, Refusal, check_request};
use crate::credential::Exchange::{self, Binance, Coinbase, Gate, Kraken, Kucoin, Upbit};

fn post(path: &str, body: &str) -> SignRequest {
    SignRequest {
        key: "k".into(),
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        body: body.into(),
        kind: SignKind::Rest,
    }
}

const PRICE_ORDERS: &str = "/api/v4/spot/price_orders";
const SPOT_BATCH: &str = "/api/v4/spot/batch_orders";
const HF_MULTI: &str = "/api/v1/hf/orders/multi";

/// The three reproductions: exchange, path, the head name the old refusal's line added, and
/// the body with the borrowing order as a string.
fn reproductions() -> [(Exchange, &'static str, &'static str, &'static str); 3] {
    [
        (
            Gate,
            PRICE_ORDERS,
            "put",
            r#"{"market":"BTC_USDT","trigger":{"price":"1","rule":">=","expiration":3600},"put":"{\"type\":\"market\",\"side\":\"buy\",\"amount\":\"1000\",\"account\":\"margin\",\"auto_borrow\":true}"}"#,
        ),
        (
            Gate,
            SPOT_BATCH,
            "[]",
            r#"[{"currency_pair":"BTC_USDT","side":"buy","amount":"1","text":"t-a"},"{\"currency_pair\":\"BTC_USDT\",\"side\":\"buy\",\"amount\":\"1000\",\"account\":\"margin\",\"auto_borrow\":true}"]"#,
        ),
        (
            Kucoin,
            HF_MULTI,
            "orderList",
            r#"{"orderList":"[{\"clientOid\":\"a\",\"symbol\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"size\":\"1\",\"autoBorrow\":true}]"}"#,
        ),
    ]
}

/// The line the refusal used to print, pasted: the profile's entry with the head name added.
fn pasted(exchange: Exchange, path: &str, head: &str) -> KeyPolicy {
    let mut entry: Endpoint = super::profile::builtin(exchange)
        .endpoints
        .iter()
        .find(|e| e.method == "POST" && e.path == path)
        .cloned()
        .unwrap_or_else(|| panic!("{exchange} profile has POST {path}"));
    entry.params.push(head.to_owned());
    KeyPolicy {
        allow: vec![entry],
        ..KeyPolicy::default()
    }
}

fn refusal(exchange: Exchange, policy: &KeyPolicy, r: &SignRequest) -> Refusal {
    match check_request(exchange, "k", policy, r) {
        Ok(c) => panic!("signed {}: {:?}", r.body, c.wire),
        Err(e) => e,
    }
}

#[test]
fn a_nested_object_sent_as_json_text_is_refused_with_no_line() {
    for (exchange, path, head, body) in reproductions() {
        let e = refusal(exchange, &KeyPolicy::default(), &post(path, body)).to_string();
        assert!(!e.contains("allow = ["), "{head}: {e}");
        assert!(e.contains(head), "{head}: {e}");
    }
}

#[test]
fn the_line_once_offered_for_json_text_signs_nothing() {
    for (exchange, path, head, body) in reproductions() {
        let policy = pasted(exchange, path, head);
        let e = refusal(exchange, &policy, &post(path, body)).to_string();
        assert!(!e.contains("allow = ["), "{head}: {e}");
    }
}

/// The head name sent as any single value, not JSON text: no line either, and none signed
/// through a pasted one (a server may still bind it, and nothing the entry holds reads it).
#[test]
fn a_head_name_sent_as_one_value_gets_no_line_and_no_entry_signs_it() {
    let cases = [
        (
            Gate,
            PRICE_ORDERS,
            "put",
            r#"{"market":"BTC_USDT","trigger":{"price":"1","rule":">=","expiration":3600},"put":"x"}"#,
        ),
        (
            Gate,
            SPOT_BATCH,
            "[]",
            r#"[{"currency_pair":"BTC_USDT","side":"buy","amount":"1","text":"t-a"},"x"]"#,
        ),
        (Kucoin, HF_MULTI, "orderList", r#"{"orderList":"x"}"#),
        (Kucoin, HF_MULTI, "orderList", r#"{"orderList":{}}"#),
    ];
    for (exchange, path, head, body) in cases {
        let r = post(path, body);
        let e = refusal(exchange, &KeyPolicy::default(), &r);
        assert!(
            matches!(e, Refusal::Denied(Denial::Flattened { .. })),
            "{head}: {e}"
        );
        let e = refusal(exchange, &pasted(exchange, path, head), &r);
        assert!(
            matches!(e, Refusal::Denied(Denial::Flattened { .. })),
            "{head}: {e}"
        );
    }
}

/// JSON text in a string is refused where no entry has members for its name too: an entry
/// written by hand for an endpoint outside the profile, taking `put` as a plain name.
#[test]
fn json_text_in_any_string_is_refused_whatever_the_entry_takes() {
    let own = KeyPolicy {
        allow: vec![Endpoint {
            method: "POST".into(),
            path: "/api/v4/spot/own_orders".into(),
            doc: None,
            params: vec!["market".into(), "put".into(), "note".into()],
            required: vec![],
            values: Default::default(),
            body: None,
        }],
        ..KeyPolicy::default()
    };
    for put in [
        r#""{\"auto_borrow\":true}""#,
        r#"" [{\"auto_borrow\":true}]""#,
        r#""\t{auto_borrow:true}""#,
        r#""/**/{\"auto_borrow\":true}""#,
        r#""\ufeff{\"auto_borrow\":true}""#,
    ] {
        let body = format!(r#"{{"market":"BTC_USDT","put":{put}}}"#);
        let e = refusal(Gate, &own, &post("/api/v4/spot/own_orders", &body));
        assert!(
            matches!(e, Refusal::Denied(Denial::JsonText { .. })),
            "{put}: {e}"
        );
        assert!(!e.to_string().contains("allow = ["), "{e}");
    }
    // A plain value still signs there.
    let plain = post(
        "/api/v4/spot/own_orders",
        r#"{"market":"BTC_USDT","put":"x"}"#,
    );
    check_request(Gate, "k", &own, &plain).unwrap_or_else(|e| panic!("{e}"));
}

/// The object-encoded twin is still a margin order under the pasted line (the control case).
#[test]
fn the_object_twin_is_still_a_margin_order_under_the_pasted_line() {
    let body = r#"{"market":"BTC_USDT","trigger":{"price":"1","rule":">=","expiration":3600},"put":{"type":"market","side":"buy","amount":"1000","account":"margin","auto_borrow":true}}"#;
    let e = refusal(
        Gate,
        &pasted(Gate, PRICE_ORDERS, "put"),
        &post(PRICE_ORDERS, body),
    );
    assert!(e.to_string().contains("auto_borrow"), "{e}");
}

/// Where the exchange reads JSON text on purpose, it still signs: Binance's `batchOrders`
/// (which the agent reads as the exchange does, order by order) and the id lists of its futures
/// batch cancel. An order in the batch holding JSON text, or an id list holding an object, is
/// refused.
#[test]
fn binance_lists_read_as_json_on_purpose_still_sign() {
    let none = KeyPolicy::default();
    let form = |method: &str, query: &str, body: &str| SignRequest {
        method: method.into(),
        query: query.into(),
        ..post("/fapi/v1/batchOrders", body)
    };
    let raw = r#"batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1"}]"#;
    let encoded = "batchOrders=%5B%7B%22symbol%22%3A%22BTCUSDT%22%2C%22side%22%3A%22BUY%22%2C%22type%22%3A%22MARKET%22%2C%22quantity%22%3A%221%22%7D%5D";
    for (method, query, body) in [
        ("POST", "", raw),
        ("POST", encoded, ""),
        ("DELETE", "symbol=BTCUSDT&orderIdList=%5B1%2C2%5D", ""),
        (
            "DELETE",
            "symbol=BTCUSDT&origClientOrderIdList=%5B%22a%22%2C%22b%22%5D",
            "",
        ),
        ("DELETE", "symbol=BTCUSDT&orderidlist=%5B1%2C2%5D", ""),
    ] {
        let r = form(method, query, body);
        check_request(Binance, "k", &none, &r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
    for (method, query, body) in [
        (
            "POST",
            "",
            r#"batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","newClientOrderId":"{a:1}"}]"#,
        ),
        (
            "DELETE",
            "symbol=BTCUSDT&orderIdList=%5B%7B%22sideEffectType%22%3A%22MARGIN_BUY%22%7D%5D",
            "",
        ),
    ] {
        let e = refusal(Binance, &none, &form(method, query, body));
        assert!(matches!(e, Refusal::Denied(Denial::JsonText { .. })), "{e}");
    }
}

/// Red-team round 26's recheck, R3: free-text client ids holding `[` or `{`, which their
/// exchanges take (Kraken's `cl_ord_id`, "free text"; Coinbase's `client_order_id`; Upbit's
/// `identifier`; KuCoin's `remark`), are refused as JSON text, and the refusal said so in terms
/// of objects and lists only. It says that every such value is refused, an id included, and
/// that the bot should use one without them; the same request with such an id signs.
#[test]
fn a_free_text_id_holding_a_bracket_is_refused_and_told_to_use_an_id_without_one() {
    let none = KeyPolicy::default();
    // Exchange, path, the body with the id at `@`, and the id.
    let cases = [
        (
            Kraken,
            "/0/private/AddOrder",
            "ordertype=market&type=buy&volume=1&pair=XBTUSD&cl_ord_id=@",
            "grid%5B1%5D",
        ),
        (
            Coinbase,
            "/api/v3/brokerage/orders",
            r#"{"client_order_id":"@","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"10"}}}"#,
            "{8f1a}",
        ),
        (
            Kucoin,
            "/api/v1/hf/orders",
            r#"{"clientOid":"a","symbol":"BTC-USDT","side":"buy","type":"market","size":"1","remark":"@"}"#,
            "grid[1]",
        ),
    ];
    for (exchange, path, body, id) in cases {
        let request = |id: &str| post(path, &body.replace('@', id));
        let e = refusal(exchange, &none, &request(id));
        let msg = e.to_string();
        assert!(
            matches!(e, Refusal::Denied(Denial::JsonText { .. })),
            "{msg}"
        );
        assert!(
            msg.contains("refuses every value that holds a '{' or a '['")
                && msg.contains("a client order id or another free-text field included")
                && msg.contains("the bot should give an id or a text without '{' and '['")
                && !msg.contains("allow = ["),
            "{exchange}: {msg}"
        );
        check_request(exchange, "k", &none, &request("grid-1"))
            .unwrap_or_else(|e| panic!("{exchange}: {e}"));
    }
    // Upbit's `identifier` is held closer still since round 27: to an Upbit query value's
    // characters, which leave out `{` and `[` too. Its refusal is that rule's, which names
    // the characters an id may hold and gives one.
    let order = |id: &str| {
        post(
            "/v1/orders",
            &format!(
                r#"{{"market":"KRW-BTC","side":"bid","ord_type":"price","price":"10000","identifier":"{id}"}}"#
            ),
        )
    };
    let msg = refusal(Upbit, &none, &order("{bot}-1")).to_string();
    assert!(
        msg.contains("hashes the body as the query")
            && msg.contains("a free-text id such as identifier too")
            && msg.contains("bot-20260101-0001")
            && !msg.contains("allow = ["),
        "{msg}"
    );
    check_request(Upbit, "k", &none, &order("grid-1")).unwrap();
}

/// Red-team round 26's recheck, R4: a head switched between a list and an object one level in
/// (`"put":[{…}]` where Gate's price order takes `put.type`, `"orderList":{…}` where KuCoin's
/// batch takes `orderList[].side`, a Gate batch of batches `[[{…}]]`, `"put":["x"]`) got a line
/// taking the names so spelled, which a lenient binder reads as the entry's while its `values`
/// and `required` read them only as spelled. Refused with no line, and under the line once
/// offered too; the shape the exchange documents still signs.
#[test]
fn a_head_switched_between_list_and_object_gets_no_line() {
    let trigger = r#""market":"BTC_USDT","trigger":{"price":"1","rule":">=","expiration":3600}"#;
    let put = r#"{"type":"market","side":"buy","amount":"1","account":"normal"}"#;
    let order = r#"{"clientOid":"a","symbol":"BTC-USDT","side":"buy","type":"market","size":"1"}"#;
    let gate = r#"{"currency_pair":"BTC_USDT","side":"buy","amount":"1","text":"t-a"}"#;
    let cases = [
        (
            Gate,
            PRICE_ORDERS,
            format!(r#"{{{trigger},"put":[{put}]}}"#),
            format!(r#"{{{trigger},"put":{put}}}"#),
            &["put[].type", "put[].side", "put[].amount", "put[].account"][..],
        ),
        (
            Gate,
            PRICE_ORDERS,
            format!(r#"{{{trigger},"put":["x"]}}"#),
            format!(r#"{{{trigger},"put":{put}}}"#),
            &["put[]"][..],
        ),
        (
            Kucoin,
            HF_MULTI,
            format!(r#"{{"orderList":{order}}}"#),
            format!(r#"{{"orderList":[{order}]}}"#),
            &[
                "orderList.clientOid",
                "orderList.symbol",
                "orderList.side",
                "orderList.type",
                "orderList.size",
            ][..],
        ),
        (
            Gate,
            SPOT_BATCH,
            format!("[[{gate}]]"),
            format!("[{gate}]"),
            &[
                "[][].currency_pair",
                "[][].side",
                "[][].amount",
                "[][].text",
            ][..],
        ),
    ];
    for (exchange, path, reshaped, documented, names) in cases {
        let e = refusal(exchange, &KeyPolicy::default(), &post(path, &reshaped));
        let msg = e.to_string();
        assert!(
            matches!(e, Refusal::Denied(Denial::Reshaped { .. })) && !msg.contains("allow = ["),
            "{reshaped}: {msg}"
        );
        // The line once offered: the profile's entry with the names so spelled.
        let mut policy = pasted(exchange, path, names[0]);
        policy.allow[0]
            .params
            .extend(names[1..].iter().map(|n| (*n).to_owned()));
        let e = refusal(exchange, &policy, &post(path, &reshaped));
        assert!(
            matches!(e, Refusal::Denied(Denial::Reshaped { .. })),
            "{reshaped} under {names:?}: {e}"
        );
        check_request(
            exchange,
            "k",
            &KeyPolicy::default(),
            &post(path, &documented),
        )
        .unwrap_or_else(|e| panic!("{documented}: {e}"));
    }
}

/// The scan reads a value's `{` and `[` without decoding it, as it would read them decoded
/// (`profile::read_value`): escapes in either case, a `%` that starts no escape, an escape
/// spelling a `%`, bytes that are no UTF-8; and a JSON body's values as they are.
#[test]
fn json_text_reads_a_value_as_it_would_decoded() {
    use super::parse::Param;
    let values = [
        "",
        "plain",
        "{",
        "[",
        "a%7Bb",
        "a%7bb",
        "%5B",
        "%5b1%5D",
        "%%7B",
        "%%5b",
        "%7",
        "%5",
        "%",
        "a%",
        "%25%37B",
        "%257B",
        "%255B",
        "%7%7B",
        "%C1%BB",
        "%F0%7B",
        "%ff%5b",
        "%E2%82%AC",
        "%7B%",
        "x%7G",
        "%zz[",
    ];
    for value in values {
        for (in_body, json_body) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = Param {
                name: "note".into(),
                value: Some(value.into()),
                in_body,
            };
            let read = super::profile::read_value(&p, json_body);
            let found = super::nested::json_text(Gate, std::slice::from_ref(&p), json_body);
            assert_eq!(
                found.is_some(),
                read.contains(['{', '[']),
                "{value:?} (in body {in_body}, JSON body {json_body})"
            );
            if let Some((_, shown)) = found {
                assert_eq!(shown, read, "{value:?}");
            }
            // A Binance id list may hold a list, not an object, however the `{` is spelled.
            let list = Param {
                name: "orderIdList".into(),
                ..p.clone()
            };
            assert_eq!(
                super::nested::json_text(Binance, std::slice::from_ref(&list), json_body).is_some(),
                read.contains('{'),
                "orderIdList={value:?} (in body {in_body}, JSON body {json_body})"
            );
        }
    }
}
