//! A key's own table in config.toml as the trader writes it (red-team round 27): where the
//! advice tells them to write, which of the key's entries takes a request, what an entry with a
//! placeholder reaches.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::req;
use tapsign_agent::config::Config;
use tapsign_agent::credential::Exchange::{self, Okx};
use tapsign_agent::policy::{self, KeyPolicy};
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
