//! The trading profiles (agent/profiles/*.toml) against the corpora: a trading session as ccxt
//! sends it passes and signs byte for byte as the request was sent; no profile entry is on the
//! deny list or takes a fund-moving parameter; and where the path is not signed, no denied
//! request's parameters fit any profile entry (else its signature could be had by asking for
//! that entry instead).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::corpus;
use support::keys::test_credential;
use support::oracle::Wire;
use tapsign_agent::credential::Exchange;
use tapsign_agent::policy::{self, KeyPolicy, converse::signs_path, profile};
use tapsign_agent::sign::{self, SignOptions};
use tapsign_proto::{SignKind, SignRequest};

fn request(w: &Wire) -> SignRequest {
    SignRequest {
        key: "k".into(),
        method: w.method.clone(),
        path: w.path.clone(),
        query: w.query.clone(),
        body: w.body.clone(),
        kind: SignKind::Rest,
    }
}

/// Red-team round 22: the default profiles signed spot margin orders on OKX (`tdMode` `cross`
/// or `isolated` on a spot pair) and Kraken (`leverage`), the only orders of any exchange
/// that borrow through their own fields it signed. Each is refused by default, as a margin
/// order with no line, and signed for a key whose config says `margin = true`.
#[test]
fn margin_orders_are_signed_only_for_a_key_that_may_borrow() {
    use tapsign_agent::policy::{Denial, Refusal};
    let may_borrow = KeyPolicy {
        margin: true,
        ..KeyPolicy::default()
    };
    let mut n = 0;
    for &exchange in Exchange::ALL {
        for e in corpus::load("margin", exchange) {
            n += 1;
            let r = request(&e.wire());
            let id = format!("{exchange} {} {} {}", e.what, e.method, e.body);
            let err = policy::check_request(exchange, "k", &KeyPolicy::default(), &r)
                .err()
                .unwrap_or_else(|| panic!("{id}: signed by default"));
            let msg = err.to_string();
            assert!(
                matches!(err, Refusal::Denied(Denial::Margin { .. }))
                    && msg.contains("margin = true")
                    && !msg.contains("allow = ["),
                "{id}: {msg}"
            );
            policy::check_request(exchange, "k", &may_borrow, &r)
                .unwrap_or_else(|e| panic!("{id}: with margin = true: {e}"));
        }
    }
    assert!(n >= 6, "only {n} margin requests");
}

/// Red-team round 22 (recheck): ccxt 4.5 writes its margin mode (`cross` by default) into a
/// spot stop-loss or take-profit (an algo order, `ordType` `conditional` or `oco`), and the
/// refusal said ccxt sends `cash` for spot. The refusal now says what ccxt writes there, that
/// tapsign's ccxt adapters send `cash` (which is signed), and the ccxt option for a bot
/// without them; an order that asked for margin (ccxt's `ccy`) is refused as before.
#[test]
fn ccxts_spot_stop_loss_on_okx_is_refused_with_the_way_to_send_it_as_cash() {
    let order = |mode: &str, ccy: &str| SignRequest {
        key: "k".into(),
        method: "POST".into(),
        path: "/api/v5/trade/order-algo".into(),
        query: String::new(),
        body: format!(
            r#"{{"instId":"BTC-USDT","side":"sell","ordType":"conditional","sz":"1",{ccy}"tdMode":"{mode}","slTriggerPx":"55000","slOrdPx":"-1","slTriggerPxType":"last","clOrdId":"6b9ad766b55dBCDE3c07bf4874df87bf","tag":"6b9ad766b55dBCDE"}}"#
        ),
        kind: SignKind::Rest,
    };
    let default = KeyPolicy::default();
    let check = |r: &SignRequest| policy::check_request(Exchange::Okx, "k", &default, r);
    // As ccxt writes it: refused, saying why and what sends it as cash.
    let msg = check(&order("cross", "")).err().unwrap().to_string();
    for said in [
        "margin = true",
        "ccxt writes its margin mode",
        "tapsign's ccxt adapters send as \"cash\"",
        "defaultMarginMode to \"cash\" on an instance that trades spot only",
    ] {
        assert!(msg.contains(said), "{said:?} not in: {msg}");
    }
    assert!(!msg.contains("ccxt's default for spot"), "{msg}");
    // As the adapters send it: signed.
    check(&order("cash", "")).unwrap();
    // Margin asked for (`marginMode` puts `ccy` in; the adapters leave it): refused.
    assert!(check(&order("cross", r#""ccy":"BTC","#)).is_err());
}

#[test]
fn every_trading_request_passes_and_signs_what_was_sent() {
    let mut n = 0;
    let mut failures = Vec::new();
    for &exchange in Exchange::ALL {
        for e in corpus::load("trading", exchange) {
            n += 1;
            let r = request(&e.wire());
            match policy::check_request(exchange, "k", &KeyPolicy::default(), &r) {
                Ok(checked) => {
                    // The parsed request, written back, is the request: same signature.
                    let mut stamp = support::at(1_700_000_000_000);
                    stamp.counter = Some(1_700_000_000_000);
                    let cred = test_credential(exchange);
                    let opts = SignOptions::default();
                    let a = sign::sign(&cred, &checked.wire, &stamp, &opts);
                    let b = sign::sign(&cred, &r, &stamp, &opts);
                    if exchange == Exchange::Coinbase {
                        // ES256 is randomized: compare what is deterministic.
                        assert_eq!(a.is_ok(), b.is_ok());
                    } else if a != b {
                        failures.push(format!("{exchange} {}: {a:?} != {b:?}", e.what));
                    }
                    if let Err(err) = a {
                        failures.push(format!(
                            "{exchange} {} {} {}: not signed: {err}",
                            e.what, e.method, e.path
                        ));
                    }
                }
                Err(err) => failures.push(format!(
                    "{exchange} {} {} {} ?{} {}: {err}",
                    e.what, e.method, e.path, e.query, e.body
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_profile_entry_is_on_the_deny_list_or_takes_a_fund_moving_parameter() {
    for &exchange in Exchange::ALL {
        for e in &profile::builtin(exchange).endpoints {
            let path = e.path.replace(['{', '}'], "");
            assert_eq!(
                policy::check(exchange, &e.method, &path),
                Ok(()),
                "{exchange} profile entry {e} is denied"
            );
            for p in &e.params {
                let leaf = p.rsplit(['.', ']']).next().unwrap_or(p);
                let bare = leaf.trim_end_matches("[]");
                assert!(
                    policy::check_params(exchange, &format!("{bare}=x"), "").is_ok(),
                    "{exchange} {e} takes the fund-moving parameter {p}"
                );
            }
        }
    }
}

/// A denied request of an exchange that does not sign the path, with its parameters as the
/// profile spells them and whether its body is JSON.
struct Unsigned {
    exchange: Exchange,
    denied: corpus::Entry,
    params: Vec<policy::parse::Param>,
    json: bool,
    /// A Bybit POST with no parameters (no body, or `{}`): no request the agent signs is one
    /// (seams.rs), but if Bybit ignores the fields an endpoint does not read, every signed
    /// POST body makes it.
    parameterless: bool,
}

impl Unsigned {
    fn id(&self) -> String {
        let d = &self.denied;
        format!("{} {} {}", self.exchange.as_str(), d.method, d.path)
    }

    fn takes_all(&self, e: &profile::Endpoint) -> bool {
        let owned = |n: &str| profile::agent_owned(self.exchange, n);
        self.params
            .iter()
            .all(|p| e.takes(&p.name) || owned(&p.name))
    }
}

/// The denied requests, with parameters, of the exchanges that do not sign the path; those
/// that do not parse are refused before any profile is read. The parameterless ones are the
/// documented case (seams.rs: no signed request is one), but for Bybit's POSTs, which any
/// signed POST body makes if Bybit ignores the fields they do not read (red-team round 23:
/// the leniency test skipped them, and the docs said the refusal of empty payloads kept them
/// out), kept with no parameters and marked.
fn unsigned_denied() -> Vec<Unsigned> {
    let mut out = Vec::new();
    for &exchange in Exchange::ALL.iter().filter(|e| !signs_path(**e)) {
        for denied in corpus::load("denied", exchange) {
            let Ok(parsed) = policy::parse::parse(exchange, &request(&denied.wire())) else {
                continue;
            };
            let json = matches!(parsed.body, policy::parse::Body::Json(..));
            // `{}` reads as one parameter without a name.
            let params: Vec<_> = parsed
                .params()
                .into_iter()
                .filter(|p| !p.name.is_empty())
                .collect();
            let parameterless = params.is_empty();
            if !parameterless || (exchange == Exchange::Bybit && denied.method == "POST") {
                out.push(Unsigned {
                    exchange,
                    denied,
                    params,
                    json,
                    parameterless,
                });
            }
        }
    }
    out
}

/// Whether a signature for `entry`'s method can be sent as `denied`'s: Bybit signs a GET's
/// query and a POST's JSON body, and reads neither as the other; the others sign their
/// parameters the same way whatever the method.
fn same_payload_kind(exchange: Exchange, denied: &str, entry: &str) -> bool {
    exchange != Exchange::Bybit || (denied == "GET") == (entry == "GET")
}

/// If an exchange ignores the parameters an endpoint does not take (nothing says Bybit's v5 or
/// Binance's /sapi refuse them), an allowed request's bytes also make every denied request
/// whose parameters they all carry, the entry's required ones and others besides. Each such
/// case in the corpora is listed, in `ACCEPTED` or `LENIENT`, with why it is accepted, so a
/// profile change that adds one fails here until it is looked at (docs/threat-model.md).
#[test]
fn where_the_path_is_unsigned_every_denied_request_a_larger_one_makes_is_listed() {
    let mut unlisted = Vec::new();
    let mut live = Vec::new();
    for u in unsigned_denied() {
        let d = &u.denied;
        let known = corpus::accepted(u.exchange, &d.method, &d.path).is_some()
            || corpus::lenient(u.exchange, &d.method, &d.path).is_some();
        for e in &profile::builtin(u.exchange).endpoints {
            let carries = u.takes_all(e)
                && e.unlisted(&u.params, u.json).is_none()
                && same_payload_kind(u.exchange, &d.method, &e.method);
            if carries && known {
                live.push(u.id());
            } else if carries {
                unlisted.push(format!(
                    "{}: {} is made by {e} with more parameters",
                    d.what,
                    u.id()
                ));
            }
        }
    }
    unlisted.sort();
    unlisted.dedup();
    assert!(unlisted.is_empty(), "{}", unlisted.join("\n"));
    for (exchange, what, _) in corpus::LENIENT {
        assert!(
            live.contains(&format!("{exchange} {what}")),
            "{exchange} {what} is in LENIENT but no profile entry makes it: take it off the list"
        );
    }
}

#[test]
fn where_the_path_is_unsigned_no_denied_request_fits_a_profile_entry() {
    let mut holes = Vec::new();
    // The accepted overlaps that are still overlaps: one that no longer is comes off the list.
    let mut live = Vec::new();
    // A parameterless request is refused whatever its path (seams.rs), so none fits.
    for u in unsigned_denied().into_iter().filter(|u| !u.parameterless) {
        let d = &u.denied;
        let accepted = corpus::accepted(u.exchange, &d.method, &d.path).is_some();
        for e in &profile::builtin(u.exchange).endpoints {
            let fits = u.takes_all(e)
                && e.required
                    .iter()
                    .all(|r| u.params.iter().any(|p| p.name == *r));
            if fits && accepted {
                live.push(u.id());
            } else if fits {
                holes.push(format!("{}: {} fits {e}", d.what, u.id()));
            }
        }
    }
    assert!(holes.is_empty(), "{}", holes.join("\n"));
    for (exchange, what, _) in corpus::ACCEPTED {
        assert!(
            live.contains(&format!("{exchange} {what}")),
            "{exchange} {what} is in ACCEPTED but fits no profile entry (or is not in the \
             denied corpus): take it off the list"
        );
    }
}

/// Binance: a cut of the signed bytes makes a name out of the end of another (`margin|Asset`)
/// or out of a query value's tail and the body's first name (`symbol=X|MAX` ‖ `leverage`),
/// under Binance's reading of names without case. A denied request whose one parameter such a
/// name is, or whose names but one are the profile's and the one is such a name, would be made
/// by the profile's bytes, so each is listed with what holds it.
const MADE_BY_A_CUT: &[(&str, &str)] = &[
    (
        "type",
        "the values that make it a liquidation, MARGIN and ISOLATED, are refused wherever a cut \
         makes them (FundValue)",
    ),
    (
        "orderId",
        "alone, a convert limit order's cancel (LENIENT): it cancels, and moves nothing",
    ),
    (
        "accountType",
        "POST /sapi/v1/asset/dust-btc lists what could be converted to BNB, and converts \
         nothing",
    ),
    (
        "maxLeverage",
        "no cut may make it (MadeName): alone it raises what cross margin may borrow",
    ),
    (
        "orderType",
        "no cut may make it (MadeName), and a query and body that meet are refused \
         (SplitPayload): with a spot order's names it is a stock sale, settled to the Card wallet",
    ),
];

#[test]
fn where_binance_cuts_make_a_denied_request_whole_the_name_is_listed() {
    let profile_names: Vec<&str> = profile::builtin(Exchange::Binance)
        .endpoints
        .iter()
        .flat_map(|e| e.params.iter().map(String::as_str))
        .filter(|p| !p.contains('['))
        .collect();
    let mut unlisted = Vec::new();
    let mut live = Vec::new();
    for u in unsigned_denied()
        .into_iter()
        .filter(|u| u.exchange == Exchange::Binance)
    {
        let mut names: Vec<&str> = u
            .params
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| !profile::agent_owned(Exchange::Binance, n))
            .collect();
        names.dedup();
        // A cut leaves the names on either side of it whole: the request it makes holds the
        // bot's own names and one made name. So a denied request counts when it is one name,
        // or when all of its names but one are profile names.
        let outside: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !profile_names.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .collect();
        let name = match (&names[..], &outside[..]) {
            ([one], _) | (_, [one]) => *one,
            _ => continue,
        };
        let n = name.to_ascii_lowercase();
        for p in &profile_names {
            let p_low = p.to_ascii_lowercase();
            let cut = p_low.len() > n.len() && p_low.ends_with(&n);
            let seam = n.len() > p_low.len() && n.ends_with(&p_low);
            if !(cut || seam) {
                continue;
            }
            if MADE_BY_A_CUT.iter().any(|(m, _)| *m == name) {
                live.push(name.to_string());
            } else {
                unlisted.push(format!(
                    "{} {} ({name}, alone or with profile names) is made by a cut of {p}",
                    u.denied.method, u.denied.path
                ));
            }
        }
    }
    unlisted.sort();
    unlisted.dedup();
    assert!(unlisted.is_empty(), "{}", unlisted.join("\n"));
    for (name, _) in MADE_BY_A_CUT {
        assert!(
            live.iter().any(|l| l == name),
            "{name} is in MADE_BY_A_CUT but no cut of a profile name makes it: take it off"
        );
    }
}

#[test]
fn the_corpora_are_there_for_every_exchange() {
    for &exchange in Exchange::ALL {
        assert!(
            !corpus::load("trading", exchange).is_empty(),
            "{exchange}: no trading corpus"
        );
        assert!(
            !corpus::load("denied", exchange).is_empty(),
            "{exchange}: no denied corpus"
        );
    }
}

/// Denied requests that the profile, not the deny list, keeps out where the path is signed: a
/// trader may widen a key to them in config.toml. (exchange, method and path, why.)
const PROFILE_ONLY: &[(&str, &str, &str)] = &[
    (
        "gate",
        "POST /api/v4/spot/orders",
        "an order with auto_borrow: margin trading, which a trader may allow on purpose (on a key \
         with `margin = true`)",
    ),
    (
        "gate",
        "POST /api/v4/spot/batch_orders",
        "orders with auto_borrow: margin trading, which a trader may allow on purpose (on a key \
         with `margin = true`)",
    ),
    (
        "gate",
        "POST /api/v4/futures/usdt/positions/BTC_USDT/margin",
        "moves margin between a position and the futures account it belongs to",
    ),
    (
        "bitget",
        "POST /api/mix/v1/account/setMargin",
        "moves margin between a position and the futures account it belongs to",
    ),
];

/// Where the path is signed, the deny list, not the profile, refuses every denied request's
/// path: an `allow` entry for exactly that request must not reach it (docs/policy.md: "nothing
/// in config.toml reaches past it"), but for the few in [`PROFILE_ONLY`].
#[test]
fn where_the_path_is_signed_no_allow_entry_reaches_a_denied_request() {
    let mut reached = Vec::new();
    let mut live = Vec::new();
    for &exchange in Exchange::ALL.iter().filter(|e| signs_path(**e)) {
        for denied in corpus::load("denied", exchange) {
            let wire = denied.wire();
            let Ok(parsed) = policy::parse::parse(exchange, &request(&wire)) else {
                continue;
            };
            let names: Vec<String> = parsed.params().into_iter().map(|p| p.name).collect();
            let allow = profile::Endpoint {
                method: wire.method.clone(),
                path: wire.path.clone(),
                doc: None,
                params: names,
                required: Vec::new(),
                values: Default::default(),
                body: parsed.body_is_array().then(|| "array".to_string()),
            };
            // A key that may borrow, the widest a config makes one: the deny list holds all
            // the same.
            let policy = KeyPolicy {
                allow: vec![allow],
                margin: true,
                ..KeyPolicy::default()
            };
            let what = format!("{} {}", wire.method, wire.path);
            let listed = PROFILE_ONLY
                .iter()
                .any(|(e, w, _)| *e == exchange.as_str() && *w == what);
            let ok = policy::check_request(exchange, "k", &policy, &request(&wire)).is_ok();
            if ok && listed {
                live.push(format!("{exchange} {what}"));
            } else if ok {
                reached.push(format!("{exchange} {}: {what}", denied.what));
            }
        }
    }
    assert!(reached.is_empty(), "{}", reached.join("\n"));
    for (exchange, what, _) in PROFILE_ONLY {
        assert!(
            live.contains(&format!("{exchange} {what}")),
            "{exchange} {what} is in PROFILE_ONLY but an allow entry no longer reaches it: take \
             it off"
        );
    }
}

/// A key's config that widens one profile endpoint changes nothing else: with a copy of each
/// profile entry that takes one more parameter, every trading request of the corpus still
/// passes (red-team round 16: a widened Binance futures order entry refused spot post-only
/// orders, the futures entry's `type` list read as the key's narrowing of the spot bytes).
#[test]
fn widening_one_endpoint_refuses_no_trading_request() {
    let mut failures = Vec::new();
    for &exchange in Exchange::ALL {
        let requests: Vec<SignRequest> = corpus::load("trading", exchange)
            .iter()
            .map(|e| request(&e.wire()))
            .collect();
        for e in &profile::builtin(exchange).endpoints {
            let mut wider = e.clone();
            wider.params.push("tapsignWiderTest".into());
            let policy = KeyPolicy {
                allow: vec![wider],
                ..KeyPolicy::default()
            };
            for r in &requests {
                if let Err(err) = policy::check_request(exchange, "k", &policy, r) {
                    failures.push(format!(
                        "{exchange} with {e} widened: {} {} ?{} {}: {err}",
                        r.method, r.path, r.query, r.body
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
