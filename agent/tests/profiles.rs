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

/// The names of a denied request's parameters, as the profile spells them.
fn names(exchange: Exchange, w: &Wire) -> Option<Vec<String>> {
    let r = request(w);
    let parsed = policy::parse::parse(exchange, &r).ok()?;
    Some(parsed.params().into_iter().map(|p| p.name).collect())
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
    for &exchange in Exchange::ALL.iter().filter(|e| !signs_path(**e)) {
        for d in corpus::load("denied", exchange) {
            let r = request(&d.wire());
            let Ok(parsed) = policy::parse::parse(exchange, &r) else {
                continue;
            };
            let params = parsed.params();
            if params.is_empty() {
                continue; // the documented parameterless case (seams.rs)
            }
            let json = matches!(parsed.body, policy::parse::Body::Json(..));
            let known = corpus::accepted(exchange, &d.method, &d.path).is_some()
                || corpus::lenient(exchange, &d.method, &d.path).is_some();
            for e in &profile::builtin(exchange).endpoints {
                let carries = params
                    .iter()
                    .all(|p| e.takes(&p.name) || profile::agent_owned(exchange, &p.name))
                    && e.unlisted(&params, json).is_none()
                    && same_payload_kind(exchange, &d.method, &e.method);
                if carries && known {
                    live.push(format!("{} {} {}", exchange.as_str(), d.method, d.path));
                } else if carries {
                    unlisted.push(format!(
                        "{exchange}: {} {} {} is made by {e} with more parameters",
                        d.what, d.method, d.path
                    ));
                }
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
    for &exchange in Exchange::ALL.iter().filter(|e| !signs_path(**e)) {
        for d in corpus::load("denied", exchange) {
            let Some(names) = names(exchange, &d.wire()) else {
                continue; // does not even parse: refused before any profile is read
            };
            if names.is_empty() {
                continue; // the documented parameterless case (seams.rs)
            }
            let accepted = corpus::accepted(exchange, &d.method, &d.path).is_some();
            for e in &profile::builtin(exchange).endpoints {
                let fits = names
                    .iter()
                    .all(|n| e.takes(n) || profile::agent_owned(exchange, n))
                    && e.required.iter().all(|r| names.contains(r));
                if fits && accepted {
                    live.push(format!("{} {} {}", exchange.as_str(), d.method, d.path));
                } else if fits {
                    holes.push(format!(
                        "{exchange}: {} {} {} fits {e}",
                        d.what, d.method, d.path
                    ));
                }
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
