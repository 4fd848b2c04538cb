//! The withdrawal wall under a fuzzer: any request a bot can send, for any exchange, either is
//! refused or signs bytes that no denied request shares. The oracle is written from the
//! exchanges' docs (agent/tests/support/oracle.rs), not from the agent's code; the denied
//! requests are agent/tests/corpus/denied/. Also: never a panic.
//!
//! Input: byte 0 picks the exchange, byte 1 the method, the kind and whether the key may sign
//! websocket logins; the rest is path, query and body separated by '\n'.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tapsign_agent::credential::Exchange;
use tapsign_agent::policy::{self, KeyPolicy, converse::signs_path};
use tapsign_agent::sign::{self, SignOptions, Stamp};
use tapsign_proto::{SignKind, SignRequest};

#[path = "../../agent/tests/support/oracle.rs"]
mod oracle;
#[path = "../../agent/tests/support/keys.rs"]
mod keys;
#[path = "../../agent/tests/support/corpus.rs"]
mod corpus;

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
                if (signs_path(ex) || !parameterless) && !corpus::accepted(ex, &e.method, &e.path)
                {
                    out.push((ex, verified(ex, &w)));
                }
            }
        }
        out
    })
}

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "post"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let exchange = Exchange::ALL[data[0] as usize % Exchange::ALL.len()];
    let method = METHODS[(data[1] & 7) as usize % METHODS.len()];
    let kind = if data[1] & 8 != 0 {
        SignKind::WsLogin
    } else {
        SignKind::Rest
    };
    let policy = KeyPolicy {
        ws_login: data[1] & 16 != 0,
        ..KeyPolicy::default()
    };
    let text = String::from_utf8_lossy(&data[2..]);
    let mut fields = text.splitn(3, '\n');
    let (path, query, body) = (
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
    );
    let req = SignRequest {
        key: "k".into(),
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.into(),
        kind,
    };
    let Ok(checked) = policy::check_request(exchange, "k", &policy, &req) else {
        return;
    };
    let stamp = Stamp {
        unix_ms: 1_700_000_000_000,
        nonce: [7; 16],
        counter: Some(1_700_000_000_000),
    };
    let cred = keys::test_credential(exchange);
    let Ok(signed) = sign::sign(&cred, &checked.wire, &stamp, &SignOptions::default()) else {
        return;
    };
    if kind == SignKind::WsLogin {
        return; // the agent's own login message: nothing of the bot's is signed
    }
    let mine = verified(exchange, &Wire::new(method, path, query, body));
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
