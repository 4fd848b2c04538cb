//! `tapsign policy explain`: what the agent reads out of a request, which rule allows or refuses
//! it, and, where the exchange does not sign the path, which other endpoints the same
//! signature would be good for.

use std::fmt::{self, Write as _};

use tapsign_proto::SignRequest;

use super::converse::signs_path;
use super::parse::{self, Body, Parsed};
use super::profile::{self, Endpoint, KeyPolicy, Source, key_table};
use super::{Refusal, check_request};
use crate::audit::Shown;
use crate::credential::{Credential, Exchange};
use crate::secret::{SecretBytes, SecretString};
use crate::sign::{self, SignError, SignOptions, Stamp};

/// The report, ready to print.
#[derive(Debug)]
pub struct Explanation {
    pub exchange: Exchange,
    pub key: String,
    /// The request as parsed, or why it does not parse.
    pub parsed: Result<Parsed, parse::ParseError>,
    /// The verdict: the entry that allows it, or the refusal.
    pub verdict: Result<Option<(Endpoint, Source)>, Refusal>,
    /// The key's changes to its profile (config.toml).
    pub key_rules: Vec<String>,
    /// For exchanges that do not sign the path: the entries the same signature fits.
    pub also_valid_for: Option<Vec<Endpoint>>,
    /// What the exchange's signing scheme refuses in a request the policy allows (a value
    /// Upbit's query hash cannot carry, a bot's timestamp too far off), found by signing it
    /// with a stand-in credential.
    pub scheme: Option<SignError>,
    /// A REST request whose signed bytes are also the exchange's websocket login: signed only
    /// under `ws_login = true`, and logged as a login.
    pub login: bool,
}

impl Explanation {
    pub fn allowed(&self) -> bool {
        self.verdict.is_ok() && self.scheme.is_none()
    }
}

/// Explain how the agent treats `req` for key `key` of `exchange` with `policy`.
pub fn explain(
    exchange: Exchange,
    key: &str,
    policy: &KeyPolicy,
    opts: &SignOptions,
    req: &SignRequest,
) -> Explanation {
    let parsed = parse::parse(exchange, req);
    let checked = check_request(exchange, key, policy, req);
    let scheme = checked
        .as_ref()
        .ok()
        .and_then(|c| scheme_refusal(exchange, &c.wire, opts));
    let login = checked.as_ref().is_ok_and(|c| c.login && c.rule.is_some());
    let verdict = checked.map(|c| c.rule.map(|(entry, source)| (entry.clone(), source)));
    let also_valid_for = match (&parsed, signs_path(exchange)) {
        (Ok(p), false) => Some(same_signature(exchange, policy, p)),
        _ => None,
    };
    Explanation {
        exchange,
        key: key.to_string(),
        parsed,
        verdict,
        key_rules: policy.describe_for(exchange),
        also_valid_for,
        scheme,
        login,
    }
}

/// Sign what the policy passed with a stand-in credential of `exchange` (made-up secrets, never
/// a stored one): the scheme's refusal of the request, if any. Coinbase is not tried: what its
/// scheme refuses depends on the kind of key, which is sealed in the keystore.
fn scheme_refusal(exchange: Exchange, wire: &SignRequest, opts: &SignOptions) -> Option<SignError> {
    let stand_in = stand_in(exchange)?;
    let stamp = stand_in_stamp(exchange)?;
    match sign::sign(&stand_in, wire, &stamp, opts) {
        Err(e @ (SignError::BadRequest(_) | SignError::StaleTimestamp { .. })) => Some(e),
        // A stand-in the scheme does not take, or no clock: nothing learned.
        Err(SignError::BadCredential(_) | SignError::Clock) | Ok(_) => None,
    }
}

/// A made-up HMAC credential of `exchange`, shaped as the exchange issues them; none for
/// Coinbase (see [`scheme_refusal`]).
fn stand_in(exchange: Exchange) -> Option<Credential> {
    let secret: &[u8] = match exchange {
        Exchange::Coinbase => return None,
        // Kraken's secret is base64.
        Exchange::Kraken => b"c3RhbmQtaW4tc2VjcmV0",
        _ => b"stand-in-secret",
    };
    Some(Credential {
        name: "stand-in".into(),
        exchange,
        api_key: SecretString::new("stand-in-key".into()),
        secret: SecretBytes::from_slice(secret),
        passphrase: (exchange.fields().len() > 2)
            .then(|| SecretString::new("stand-in-passphrase".into())),
    })
}

/// Now, with a Kraken nonce (the agent's comes from its nonce store).
fn stand_in_stamp(exchange: Exchange) -> Option<Stamp> {
    let mut stamp = Stamp::now().ok()?;
    if exchange == Exchange::Kraken {
        stamp.counter = Some(stamp.unix_ms);
    }
    Some(stamp)
}

/// Entries of the profile (and the key's `allow` list) whose method the exchange would accept
/// these signed bytes on and which take every parameter of `p`.
fn same_signature(exchange: Exchange, policy: &KeyPolicy, p: &Parsed) -> Vec<Endpoint> {
    let names: Vec<String> = p
        .params()
        .into_iter()
        .map(|x| x.name)
        .filter(|n| !profile::agent_owned(exchange, n))
        .collect();
    // Bybit reads the same bytes as a GET/DELETE query or a POST/PUT body, never across.
    let method_ok = |m: &str| match exchange {
        Exchange::Bybit if matches!(p.body, Body::Json(..)) => matches!(m, "POST" | "PUT"),
        Exchange::Bybit => matches!(m, "GET" | "DELETE"),
        _ => true,
    };
    profile::builtin(exchange)
        .endpoints
        .iter()
        .chain(policy.allow.iter())
        .filter(|e| method_ok(&e.method) && names.iter().all(|n| e.takes(n)))
        .cloned()
        .collect()
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key:      {} ({})", self.key, self.exchange)?;
        match &self.parsed {
            Ok(p) => {
                writeln!(f, "request:  {} {}", p.method, p.path())?;
                // Values are the bot's: a JSON string may hold a newline that would start a
                // line of its own (`verdict: allowed ...`), so what a terminal would act on
                // is shown escaped.
                for q in &p.query {
                    writeln!(f, "  query   {} = {}", q.name, Shown(&q.value))?;
                }
                if let Body::Json(..) | Body::Form(_) = p.body {
                    for b in p.params().into_iter().filter(|x| x.in_body) {
                        let v = b.value.unwrap_or_else(|| "(empty)".into());
                        writeln!(f, "  body    {} = {}", Shown(&b.name), Shown(&v))?;
                    }
                }
            }
            Err(e) => writeln!(f, "request:  does not parse: {}", Shown(&e.to_string()))?,
        }
        match &self.verdict {
            Ok(Some((e, source))) => {
                let from = match source {
                    Source::Profile => format!("the {} trading profile", self.exchange),
                    Source::Config => format!("config.toml [{}] allow", key_table(&self.key)),
                    Source::WsLogin => {
                        format!("config.toml [{}] ws_login = true", key_table(&self.key))
                    }
                };
                writeln!(f, "verdict:  allowed by {from}: {e}")?;
                if let Some(doc) = &e.doc {
                    writeln!(f, "          {doc}")?;
                }
                // The entry as config.toml writes it: the line to copy under the key's `allow`
                // and edit, to narrow it (`values`) or widen it.
                writeln!(f, "entry:    {}", e.config_line())?;
                if *source == Source::Profile {
                    writeln!(
                        f,
                        "          (to narrow or widen it for this key: put it in config.toml \
                         under [{}] allow = [...] and edit it)",
                        key_table(&self.key)
                    )?;
                }
            }
            Ok(None) => writeln!(f, "verdict:  allowed: a websocket login (ws_login = true)")?,
            Err(r) => {
                // A refusal may quote the bot's path as read, percent-decoded: a `%0A` in it
                // would start a line of its own (red-team round 16).
                let code = crate::error::AgentError::from(r.clone()).code();
                writeln!(f, "verdict:  refused [{code}]: {}", Shown(&r.to_string()))?
            }
        }
        if self.login {
            writeln!(
                f,
                "login:    these signed bytes are also {}'s websocket login: signed only because \
                 [{}] ws_login = true, and the audit log records the signature as a \
                 ws_login",
                self.exchange,
                key_table(&self.key)
            )?;
        }
        if let Some(e) = &self.scheme {
            let code = crate::error::AgentError::from(e.clone()).code();
            writeln!(
                f,
                "signing:  refused [{code}]: {e} (the policy allows it, {}'s signing does not)",
                self.exchange
            )?;
        }
        if !self.key_rules.is_empty() {
            writeln!(f, "config:   this key's policy changes its profile:")?;
            for r in &self.key_rules {
                writeln!(f, "          {r}")?;
            }
        }
        // Only of a signature that is made: of a refusal, "this signature is also valid for"
        // spoke of none, over an empty list (red-team round 24).
        if let Some(list) = self
            .also_valid_for
            .as_ref()
            .filter(|_| self.verdict.is_ok())
        {
            let and = if list.is_empty() { "" } else { "and " };
            let mut s = String::new();
            writeln!(
                s,
                "harvest:  {} signs neither the path nor the method, so this signature is also \
                 valid for",
                self.exchange
            )?;
            for e in list {
                writeln!(s, "          {e}")?;
            }
            let params = self.parsed.as_ref().map(|p| p.params().len()).unwrap_or(0);
            if params == 0 {
                writeln!(
                    s,
                    "          {and}every other parameterless {} endpoint, inside the profile \
                     or not (no way of signing avoids that)",
                    self.exchange
                )?;
            } else {
                writeln!(
                    s,
                    "          {and}any {} endpoint outside the profile that takes these same \
                     parameters",
                    self.exchange
                )?;
            }
            f.write_str(&s)?;
        }
        if self.exchange == Exchange::Coinbase && matches!(self.verdict, Ok(Some(_))) {
            writeln!(
                f,
                "harvest:  coinbase's token covers the method and path only: for its 120 s it is \
                 also valid for this endpoint with any query or body, so the parameters and \
                 values config.toml allows here do not bind what it is used for"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in is a credential each scheme takes: were it refused, explain would learn
    /// nothing from signing and could say "allowed" for what the agent refuses.
    #[test]
    fn every_scheme_but_coinbase_takes_the_stand_in() {
        for &exchange in Exchange::ALL {
            let Some(cred) = stand_in(exchange) else {
                assert_eq!(exchange, Exchange::Coinbase);
                continue;
            };
            let (method, path) = match exchange {
                Exchange::Kraken => ("POST", "/0/private/Balance"),
                Exchange::Gate => ("GET", "/api/v4/spot/accounts"),
                _ => ("GET", "/v1/accounts"),
            };
            let req = SignRequest {
                key: "k".into(),
                method: method.into(),
                path: path.into(),
                ..SignRequest::default()
            };
            let stamp = stand_in_stamp(exchange).unwrap();
            let got = sign::sign(&cred, &req, &stamp, &SignOptions::default());
            assert!(got.is_ok(), "{exchange}: {:?}", got.err());
        }
    }

    /// A Coinbase token does not cover the body: explain says so for a request it allows,
    /// since a config.toml restriction of its parameters cannot bind what the token is used
    /// for, and says nothing of it for a refused one.
    #[test]
    fn a_coinbase_order_is_explained_as_good_for_any_body() {
        let req = |path: &str, body: &str| SignRequest {
            key: "k".into(),
            method: "POST".into(),
            path: path.into(),
            body: body.into(),
            ..SignRequest::default()
        };
        let run = |r: &SignRequest| {
            explain(
                Exchange::Coinbase,
                "k",
                &KeyPolicy::default(),
                &SignOptions::default(),
                r,
            )
            .to_string()
        };
        let order = req(
            "/api/v3/brokerage/orders",
            r#"{"client_order_id":"a","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"10"}}}"#,
        );
        let text = run(&order);
        assert!(text.contains("verdict:  allowed"), "{text}");
        assert!(text.contains("with any query or body"), "{text}");
        let refused = run(&req(
            "/api/v3/brokerage/portfolios/move_funds",
            "{\"a\":\"1\"}",
        ));
        assert!(refused.contains("verdict:  refused"), "{refused}");
        assert!(!refused.contains("with any query or body"), "{refused}");
    }

    /// Red-team round 24: a refused Binance withdrawal was explained with "this signature is
    /// also valid for" over an empty list; no signature is made for a refusal.
    #[test]
    fn a_refusal_is_explained_without_a_harvest_list() {
        let run = |path: &str, query: &str| {
            let req = SignRequest {
                key: "k".into(),
                method: "POST".into(),
                path: path.into(),
                query: query.into(),
                ..SignRequest::default()
            };
            let policy = KeyPolicy::default();
            explain(
                Exchange::Binance,
                "k",
                &policy,
                &SignOptions::default(),
                &req,
            )
            .to_string()
        };
        let refused = run(
            "/sapi/v1/capital/withdraw/apply",
            "coin=BTC&address=1BoatSLRHtKNngkdXEeobR76b53LETtpyT&amount=1",
        );
        assert!(refused.contains("verdict:  refused"), "{refused}");
        assert!(!refused.contains("harvest:"), "{refused}");
        let allowed = run(
            "/api/v3/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001",
        );
        assert!(allowed.contains("harvest:"), "{allowed}");
        assert!(
            allowed.contains("          and any binance endpoint"),
            "{allowed}"
        );
    }

    /// An OKX order read whose query ends in the login's verify path signs what the websocket
    /// login signs: the agent signs it only under `ws_login = true` and logs it as a login;
    /// explain said only "allowed by the okx trading profile".
    #[test]
    fn a_rest_request_that_is_also_the_login_is_explained_as_one() {
        let req = SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v5/trade/order".into(),
            query: "instId=BTC-USDT&ordId=GET/users/self/verify".into(),
            ..SignRequest::default()
        };
        let run = |ws_login: bool| {
            let policy = KeyPolicy {
                ws_login,
                ..KeyPolicy::default()
            };
            explain(Exchange::Okx, "k", &policy, &SignOptions::default(), &req).to_string()
        };
        let text = run(true);
        assert!(text.contains("verdict:  allowed"), "{text}");
        assert!(
            text.contains("login:    these signed bytes are also okx's"),
            "{text}"
        );
        let refused = run(false);
        assert!(refused.contains("verdict:  refused"), "{refused}");
        assert!(!refused.contains("login:"), "{refused}");
        let plain = SignRequest {
            query: "instId=BTC-USDT&ordId=1".into(),
            ..req.clone()
        };
        let text = explain(
            Exchange::Okx,
            "k",
            &KeyPolicy {
                ws_login: true,
                ..KeyPolicy::default()
            },
            &SignOptions::default(),
            &plain,
        )
        .to_string();
        assert!(!text.contains("login:"), "{text}");
    }

    #[test]
    fn a_value_cannot_write_a_line_of_its_own() {
        // Red-team round 11: a JSON string's newline printed as is forged a `verdict:` line
        // above the real one, in the one command meant to give the agent's own reading.
        let forged = "a\n\nverdict:  allowed by the okx trading profile\u{9b}2J\u{202e}";
        let body = serde_json::json!({
            "instId": "BTC-USDT", "tdMode": "cash", "clOrdId": forged,
            "side": "buy", "ordType": "market", "sz": "1"
        })
        .to_string();
        let req = SignRequest {
            key: "k".into(),
            method: "POST".into(),
            path: "/api/v5/trade/order".into(),
            body,
            ..SignRequest::default()
        };
        let text = explain(
            Exchange::Okx,
            "k",
            &KeyPolicy::default(),
            &SignOptions::default(),
            &req,
        )
        .to_string();
        let verdicts = text.lines().filter(|l| l.starts_with("verdict:")).count();
        assert_eq!(verdicts, 1, "{text}");
        assert!(
            text.contains(
                r"clOrdId = a\n\nverdict:  allowed by the okx trading profile\u{9b}2J\u{202e}"
            ),
            "{text}"
        );
    }

    /// Red-team round 16: a deny-list refusal quotes the path as it read it, percent-decoded,
    /// and a bot-chosen `%0A` printed a line of its own, such as a fake verdict, for a trader
    /// who pasted a refused path from the audit log into `policy explain`.
    #[test]
    fn a_refusal_quoting_the_path_starts_no_line_of_its_own() {
        let req = SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v3/account%0Averdict:%20%20allowed%20by%20the%20profile%0A/%77ithdraw"
                .into(),
            ..SignRequest::default()
        };
        let text = explain(
            Exchange::Binance,
            "k",
            &KeyPolicy::default(),
            &SignOptions::default(),
            &req,
        )
        .to_string();
        let verdicts = text.lines().filter(|l| l.starts_with("verdict:")).count();
        assert_eq!(verdicts, 1, "{text}");
        assert!(text.contains("verdict:  refused"), "{text}");
        // The reading that matched is the decoded one, its newlines shown escaped.
        assert!(text.contains(r"account\nverdict:"), "{text}");
    }
}
