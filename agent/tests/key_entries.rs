//! A key's own table in config.toml as the trader writes it (red-team round 27): where the
//! advice tells them to write, which of the key's entries takes a request, what an entry with a
//! placeholder reaches.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::req;
use tapsign_agent::config::Config;
use tapsign_agent::credential::Exchange::{self, Okx};
use tapsign_agent::policy::{self, Endpoint, KeyPolicy};
use tapsign_proto::SignRequest;

/// The refusal of `r` for the key `key` with `policy`, as the bot and the trader read it.
fn refusal(exchange: Exchange, key: &str, policy: &KeyPolicy, r: &SignRequest) -> String {
    match policy::check_request(exchange, key, policy, r) {
        Ok(c) => panic!("signed {r:?} under {:?}", c.rule),
        Err(e) => e.to_string(),
    }
}

/// The text after `from` in `advice`, up to `to`.
fn between<'a>(advice: &'a str, from: &str, to: &str) -> &'a str {
    let start = advice
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in {advice}"))
        + from.len();
    let len = advice[start..]
        .find(to)
        .unwrap_or_else(|| panic!("no {to:?} in {advice}"));
    &advice[start..start + len]
}

/// Red-team round 27, F2: `key add` takes `okx.spot`, and the advice said `[keys.okx.spot]`,
/// which TOML reads as the table `spot` in a table `okx`: pasted, config.toml no longer
/// loaded. Every piece of advice that names the key's table quotes the name, and what it says
/// to paste applies to that key.
#[test]
fn advice_for_a_dotted_key_name_is_a_table_that_applies_to_that_key() {
    let key = "okx.spot";
    let policy = KeyPolicy::default();
    // An unknown parameter: the line to paste under the table.
    let unknown = req(
        "POST",
        "/api/v5/trade/order",
        "",
        r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1","zz":"1"}"#,
    );
    let advice = refusal(Okx, key, &policy, &unknown);
    assert!(
        advice.contains(r#"under [keys."okx.spot"]: allow = ["#),
        "{advice}"
    );
    let table = between(&advice, "under [", "]: ");
    // The line is the advice's last words.
    let line = &advice[advice.find("allow = [").unwrap()..];
    let config = Config::parse(&format!("[{table}]\n{line}\n"))
        .unwrap_or_else(|e| panic!("[{table}] {line}: {e}"));
    let pasted = config.key_policy(key);
    assert_eq!(pasted.allow.len(), 1, "{config:?}");
    assert!(pasted.allow[0].params.iter().any(|p| p == "zz"));
    policy::check_request(Okx, key, pasted, &unknown).unwrap();
    // A margin order: the switch to set under the table.
    let margin = req(
        "POST",
        "/api/v5/trade/order",
        "",
        r#"{"instId":"BTC-USDT","tdMode":"cross","side":"buy","ordType":"limit","sz":"1","px":"1"}"#,
    );
    let advice = refusal(Okx, key, &policy, &margin);
    assert!(
        advice.contains(r#"`margin = true` under [keys."okx.spot"]"#),
        "{advice}"
    );
    let table = between(&advice, "`margin = true` under [", "]");
    let config = Config::parse(&format!("[{table}]\nmargin = true\n")).unwrap();
    assert!(config.key_policy(key).margin, "{config:?}");
    // Beside a key named `okx`, whose table the unquoted one reached into.
    let both = Config::parse(&format!(
        "[keys.okx]\nws_login = true\n[{table}]\nmargin = true\n"
    ))
    .unwrap();
    assert!(both.key_policy("okx").ws_login && !both.key_policy("okx").margin);
    // A config error names the entry's place as TOML writes it too.
    let err = Config::parse("[keys.\"okx.spot\"]\nallow = [{ method = \"FLY\", path = \"/x\" }]\n")
        .unwrap_err();
    assert!(err.contains(r#"keys."okx.spot".allow[0]"#), "{err}");
}

/// `template` with each placeholder filled in as a request would: a settle currency, a
/// contract, an id, an API version, an account mode.
fn filled(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg.strip_prefix('{') {
            None => seg,
            Some(name) => match name.trim_end_matches('}') {
                "settle" => "usdt",
                "contract" => "BTC_USDT",
                "version" => "v1",
                "accountMode" => "unified",
                _ => "123",
            },
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request by `method` to `path` carrying `params` (`a=1&zz=2`), where the exchange reads
/// it: Binance's query, Kraken's form, the others' JSON body.
fn carrying(exchange: Exchange, method: &str, path: &str, params: &str) -> SignRequest {
    match exchange {
        Exchange::Binance => req(method, path, params, ""),
        Exchange::Kraken => req(method, path, "", params),
        _ => {
            let members: Vec<String> = params
                .split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    format!("\"{k}\":\"{v}\"")
                })
                .collect();
            req(method, path, "", &format!("{{{}}}", members.join(",")))
        }
    }
}

fn entry(method: &str, path: &str, values: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        method: method.into(),
        path: path.into(),
        doc: None,
        params: vec!["a".into()],
        required: Vec::new(),
        values: values
            .iter()
            .map(|(n, v)| (n.to_string(), vec![v.to_string()]))
            .collect(),
        body: None,
    }
}

/// Red-team round 27, F1: a key's entry with a placeholder where a withheld endpoint's path has
/// a word (`/api/v5/account/{setting}` for `activate-option`) signed it, and the refusal of a
/// name the entry lacked offered the line adding it. For every withheld endpoint and every
/// literal segment of its path in turn taken by `{x}`: config.toml refuses the entry, naming
/// the endpoint; a policy holding it anyway signs nothing there, and hands no line. An entry
/// naming the path word for word signs it, and its refusals hand no line either.
#[test]
fn no_placeholder_entry_reaches_a_withheld_endpoint_and_no_refusal_there_hands_a_line() {
    let mut rows = 0;
    for (exchange, method, template) in policy::withheld_endpoints() {
        rows += 1;
        let path = filled(template);
        let bare = carrying(exchange, method, &path, "a=1");
        let wider = carrying(exchange, method, &path, "a=1&zz=2");
        let no_line = |policy: &KeyPolicy, r: &SignRequest, what: &str| {
            let e = refusal(exchange, "k", policy, r);
            assert!(
                e.contains("on purpose") && !e.contains("allow = ["),
                "{exchange} {method} {template} under {what}, {r:?}: {e}"
            );
        };
        let segments: Vec<&str> = template.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() || seg.starts_with('{') {
                continue;
            }
            let mut own = segments.clone();
            own[i] = "{x}";
            let own = own.join("/");
            let err = Config::parse(&format!(
                "[keys.k]\nallow = [{{ method = \"{method}\", path = \"{own}\", params = [\"a\"] }}]\n"
            ))
            .unwrap_err();
            // It names the endpoint, or another it takes too (Binance's two positionMargin).
            assert!(
                err.contains(&format!("takes {exchange}'s "))
                    && err.contains("on purpose")
                    && err.contains("word for word"),
                "{own}: {err}"
            );
            let held = KeyPolicy {
                allow: vec![entry(method, &own, &[])],
                ..KeyPolicy::default()
            };
            no_line(&held, &bare, &own);
            no_line(&held, &wider, &own);
        }
        // Named word for word (placeholders where the endpoint's own are), it is the trader's.
        let named = KeyPolicy {
            allow: vec![entry(method, template, &[])],
            ..KeyPolicy::default()
        };
        Config::parse(&format!(
            "[keys.k]\nallow = [{{ method = \"{method}\", path = \"{template}\", params = [\"a\"] }}]\n"
        ))
        .unwrap_or_else(|e| panic!("{template}: {e}"));
        if let Err(e) = policy::check_request(exchange, "k", &named, &bare) {
            panic!("{exchange} {method} {template}: {e}");
        }
        no_line(&named, &wider, template);
        // Red-team round 27, R3: left out by the key's `only`, it got the line adding it back.
        let left_out = KeyPolicy {
            allow: vec![entry(method, template, &[])],
            only: vec![("GET".into(), "/nothing/else".into())],
            ..KeyPolicy::default()
        };
        for r in [&bare, &wider] {
            let e = refusal(exchange, "k", &left_out, r);
            assert!(
                e.contains("on purpose") && !e.contains("to `only`") && !e.contains("allow = ["),
                "{exchange} {method} {template} left out by only, {r:?}: {e}"
            );
        }
        let narrowed = KeyPolicy {
            allow: vec![entry(method, template, &[("a", "2")])],
            ..KeyPolicy::default()
        };
        no_line(&narrowed, &bare, template);
    }
    assert!(
        rows > 30,
        "{rows} withheld endpoints: the list was not read"
    );
}

/// No profile endpoint takes an endpoint left out on purpose through a placeholder, which is
/// why the signing check of F1 looks at a key's own entries only: each, written as a key's
/// entry, loads (and would not, were it such an entry).
#[test]
fn no_profile_endpoint_takes_a_withheld_endpoint_through_a_placeholder() {
    for &exchange in Exchange::ALL.iter() {
        for e in &policy::profile::builtin(exchange).endpoints {
            let line = format!(
                "{{ method = \"{}\", path = \"{}\", params = [\"a\"] }}",
                e.method, e.path
            );
            Config::parse(&format!("[keys.k]\nallow = [{line}]\n"))
                .unwrap_or_else(|err| panic!("{exchange} {line}: {err}"));
        }
    }
}

/// Red-team round 27, F3: with a placeholder entry before a literal one that takes the same
/// request, the first signed what the second narrowed (`greeksType=BS` where the literal entry
/// listed `PA` only); swapped, the same request was refused. Such a pair is refused when
/// config.toml is read, in either order, naming both. A pair a profile keeps apart (KuCoin's
/// cancel by id and `cancelAll`) loads, and each entry takes its own requests, in either
/// order.
#[test]
fn overlapping_entries_are_refused_and_entries_kept_apart_each_apply() {
    let broad = r#"{ method = "POST", path = "/api/v5/{section}/set-greeks", params = ["greeksType", "feeType", "settleCcy"] }"#;
    let narrow = r#"{ method = "POST", path = "/api/v5/account/set-greeks", params = ["greeksType"], values = { greeksType = ["PA"] } }"#;
    for (first, second) in [(broad, narrow), (narrow, broad)] {
        let err = Config::parse(&format!(
            "[keys.okx-main]\nallow = [\n  {first},\n  {second},\n]\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("keys.okx-main.allow[1]")
                && err.contains("keys.okx-main.allow[0]")
                && err.contains("/api/v5/{section}/set-greeks")
                && err.contains("/api/v5/account/set-greeks"),
            "{err}"
        );
    }
    let by_id = r#"{ method = "DELETE", path = "/api/v1/hf/orders/{orderId}", params = ["symbol"], values = { symbol = ["BTC-USDT"] } }"#;
    let all = r#"{ method = "DELETE", path = "/api/v1/hf/orders/cancelAll", params = [] }"#;
    for (first, second) in [(by_id, all), (all, by_id)] {
        let config = Config::parse(&format!("[keys.kc]\nallow = [{first}, {second}]\n")).unwrap();
        let policy = config.key_policy("kc");
        let kucoin = Exchange::Kucoin;
        let rule = |r: &SignRequest| {
            let checked = policy::check_request(kucoin, "kc", policy, r)
                .unwrap_or_else(|e| panic!("{r:?}: {e}"));
            checked.rule.unwrap().0.path.clone()
        };
        let cancel_all = req("DELETE", "/api/v1/hf/orders/cancelAll", "", "");
        assert_eq!(rule(&cancel_all), "/api/v1/hf/orders/cancelAll");
        let one = req("DELETE", "/api/v1/hf/orders/123", "symbol=BTC-USDT", "");
        assert_eq!(rule(&one), "/api/v1/hf/orders/{orderId}");
        let other = req("DELETE", "/api/v1/hf/orders/123", "symbol=ETH-USDT", "");
        let e = refusal(kucoin, "kc", policy, &other);
        assert!(
            e.contains("{orderId} in config.toml leaves out symbol"),
            "{e}"
        );
    }
}

/// Red-team round 27, F4: Binance does not sign the path, and an entry written by hand whose
/// names include `type`, `asset` and `amount` signed the corpus's universal transfers byte for
/// byte (`type=MAIN_UMFUTURE&asset=USDT&amount=100`). The transfer's `type` values are refused
/// on every path, whatever an entry takes, in any case; the refusal of such a value on a
/// profile order offers no line listing it.
#[test]
fn binance_universal_transfer_types_are_refused_whatever_an_entry_takes() {
    let binance = Exchange::Binance;
    let mut transfers = 0;
    for denied in support::corpus::load("denied", binance) {
        if !denied.path.ends_with("/asset/transfer")
            || !denied.query.contains("type=") && !denied.body.contains("type=")
        {
            continue;
        }
        transfers += 1;
        let sent = if denied.query.is_empty() {
            &denied.body
        } else {
            &denied.query
        };
        let names: Vec<String> = sent
            .split('&')
            .map(|kv| kv.split('=').next().unwrap().to_string())
            .collect();
        let policy = KeyPolicy {
            allow: vec![Endpoint {
                method: denied.method.clone(),
                path: "/sapi/v1/foo/bar".into(),
                doc: None,
                params: names,
                required: Vec::new(),
                values: Default::default(),
                body: None,
            }],
            ..KeyPolicy::default()
        };
        // The value in lower case: Binance reads enum values without case.
        let (at, value) = sent.split_once("type=").unwrap();
        let lower = format!("{at}type={}", value.to_lowercase());
        for sent in [sent.as_str(), lower.as_str()] {
            let r = if denied.query.is_empty() {
                req(&denied.method, "/sapi/v1/foo/bar", "", sent)
            } else {
                req(&denied.method, "/sapi/v1/foo/bar", sent, "")
            };
            let e = match policy::check_request(binance, "k", &policy, &r) {
                Ok(_) => panic!("signed {r:?}: the universal transfer {}", denied.what),
                Err(e) => format!("{e:?}"),
            };
            assert!(
                e.contains("FundValue") && e.contains("/sapi/v1/asset/transfer"),
                "{sent}: {e}"
            );
        }
    }
    assert!(
        transfers >= 6,
        "{transfers} transfers: the corpus was not read"
    );
    // On a profile order: refused as a transfer, with no line taking the value.
    let order = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=MAIN_UMFUTURE&quantity=1&timestamp=1700000000000",
        "",
    );
    let e = refusal(binance, "k", &KeyPolicy::default(), &order);
    assert!(
        e.contains("POST /sapi/v1/asset/transfer") && !e.contains("allow = ["),
        "{e}"
    );
}

/// Red-team round 27, R2: F4's own entry (`type`, `asset`, `amount`, at a path Binance does
/// not sign) still signed a cross-margin loan (`type=BORROW`, `isIsolated` too when listed),
/// its repayment, and the legacy spot-futures and spot-margin transfers (`type=1`), byte for
/// byte the denied corpus's; and names only a transfer takes (`transFrom`, `transTo`,
/// `transferType`, `futuresType`) were signed where `transferSide` was refused. Every such
/// denied-corpus request, through an entry listing exactly its names, is refused as a fund
/// value or a fund parameter; an order carrying `type=BORROW` is refused with no line.
#[test]
fn binance_loans_numeric_transfer_types_and_transfer_names_are_refused_whatever_an_entry_takes() {
    let binance = Exchange::Binance;
    let marks = |sent: &str| {
        sent.split('&').any(|kv| {
            let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
            ["transFrom", "transTo", "transferType", "futuresType"].contains(&name)
                || name == "type"
                    && (["BORROW", "REPAY"].contains(&value)
                        || value.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let through_entry = |method: &str, query: &str, body: &str| {
        let sent = if query.is_empty() { body } else { query };
        let names: Vec<String> = sent
            .split('&')
            .map(|kv| kv.split('=').next().unwrap().to_string())
            .collect();
        let policy = KeyPolicy {
            allow: vec![Endpoint {
                method: method.to_string(),
                path: "/sapi/v1/foo/bar".into(),
                doc: None,
                params: names,
                required: Vec::new(),
                values: Default::default(),
                body: None,
            }],
            ..KeyPolicy::default()
        };
        let r = req(method, "/sapi/v1/foo/bar", query, body);
        match policy::check_request(binance, "k", &policy, &r) {
            Ok(_) => panic!("signed {r:?}"),
            Err(e) => format!("{e:?}"),
        }
    };
    let mut marked = 0;
    for denied in support::corpus::load("denied", binance) {
        let sent = if denied.query.is_empty() {
            &denied.body
        } else {
            &denied.query
        };
        if !marks(sent) {
            continue;
        }
        marked += 1;
        let e = through_entry(&denied.method, &denied.query, &denied.body);
        assert!(
            e.contains("FundValue") || e.contains("FundParameter"),
            "{} {sent}: {e}",
            denied.what
        );
    }
    assert!(marked >= 9, "{marked} requests: the corpus was not read");
    // The finding's own requests, in any case, and the loan without isIsolated.
    for body in [
        "type=BORROW&asset=USDT&amount=1000",
        "type=repay&asset=USDT&amount=1000",
        "asset=USDT&isIsolated=TRUE&symbol=BTCUSDT&amount=1000&type=Borrow",
        "asset=USDT&amount=500&type=1",
        "asset=USDT&amount=500&type=4",
        "asset=USDT&amount=500&type=12",
    ] {
        let e = through_entry("POST", "", body);
        assert!(e.contains("FundValue"), "{body}: {e}");
    }
    let e = through_entry("POST", "", "type=BORROW&asset=USDT&amount=1000");
    assert!(e.contains("/sapi/v1/margin/borrow-repay"), "{e}");
    // On a profile order: refused as a loan, with no line listing the value.
    let order = req(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=BORROW&quantity=1&timestamp=1700000000000",
        "",
    );
    let e = refusal(binance, "k", &KeyPolicy::default(), &order);
    assert!(
        e.contains("borrow-repay") && !e.contains("allow = ["),
        "{e}"
    );
}
