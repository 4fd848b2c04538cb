//! The withdrawal wall under a fuzzer: any request a bot can send, for any exchange, either is
//! refused or signs bytes that no denied request shares. The oracle is written from the
//! exchanges' docs (agent/tests/support/oracle.rs), not from the agent's code; the denied
//! requests are agent/tests/corpus/denied/. Also: never a panic.
//!
//! Input: as `input.rs` says (byte 1 also picks the kind and whether the key may sign websocket
//! logins).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tapsign_agent::credential::Exchange;
use tapsign_agent::policy::{self, KeyPolicy, converse::signs_path};
use tapsign_agent::sign::{self, SignOptions, Stamp};
use tapsign_proto::SignKind;

#[path = "../../agent/tests/support/corpus.rs"]
mod corpus;
mod input;
#[path = "../../agent/tests/support/keys.rs"]
mod keys;
#[path = "../../agent/tests/support/oracle.rs"]
mod oracle;

use oracle::{Wire, upbit_params, verified};

#[derive(serde::Deserialize)]
struct Entry {
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    body: String,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    request: Vec<Entry>,
}

/// The denied corpus, per exchange, as the bytes each exchange verifies.
fn denied() -> &'static Vec<(Exchange, Vec<u8>)> {
    static ALL: OnceLock<Vec<(Exchange, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = Vec::new();
        for &ex in Exchange::ALL {
            let path = format!(
                "{}/../agent/tests/corpus/denied/{}.toml",
                env!("CARGO_MANIFEST_DIR"),
                ex.as_str()
            );
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let f: File = toml::from_str(&text).expect("the denied corpus parses");
            for e in f.request {
                let w = Wire::new(&e.method, &e.path, &e.query, &e.body);
                let parameterless = match ex {
                    Exchange::Upbit | Exchange::Bithumb => upbit_params(&w).is_empty(),
                    _ => w.query.is_empty() && w.body.is_empty(),
                };
                // Documented: without the path signed, a parameterless signature fits every
                // parameterless endpoint; and the accepted overlaps (corpus::ACCEPTED).
                if (signs_path(ex) || !parameterless)
                    && corpus::accepted(ex, &e.method, &e.path).is_none()
                {
                    out.push((ex, verified(ex, &w)));
                }
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((exchange, mut req)) = input::request(data) else {
        return;
    };
    if data[1] & 8 != 0 {
        req.kind = SignKind::WsLogin;
    }
    let policy = KeyPolicy {
        ws_login: data[1] & 16 != 0,
        parameterless: data[1] & 32 != 0,
        ..KeyPolicy::default()
    };
    let Ok(checked) = policy::check_request(exchange, "k", &policy, &req) else {
        return;
    };
    let stamp = Stamp {
        unix_ms: 1_700_000_000_000,
        nonce: [7; 16],
        counter: Some(1_700_000_000_000),
        session_ends_ms: None,
    };
    let cred = keys::test_credential(exchange);
    let Ok(signed) = sign::sign(&cred, &checked.wire, &stamp, &SignOptions::default()) else {
        return;
    };
    if req.kind == SignKind::WsLogin {
        return; // the agent's own login message: nothing of the bot's is signed
    }
    let mine = verified(
        exchange,
        &Wire::new(&req.method, &req.path, &req.query, &req.body),
    );
    for (ex, bytes) in denied() {
        assert!(
            !(*ex == exchange && *bytes == mine),
            "{exchange}: signed the bytes of a denied request: {req:?}"
        );
    }
    if !signs_path(exchange) {
        assert!(
            policy::check_params(exchange, &signed.query, &signed.body).is_ok(),
            "{exchange}: the signed request carries a fund-moving parameter: {signed:?}"
        );
    }
});
