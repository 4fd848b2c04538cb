//! What each exchange verifies a signature over, written from its documentation
//! (docs/exchanges.md; sources: docs/sources.md), independently of the agent's code: two
//! requests with the same [`verified`] bytes are interchangeable to the exchange. The agent's
//! own stamps (timestamps, nonces) are left out: they are the same for both.
#![allow(dead_code)] // Each test binary uses a different subset.

use sha2::{Digest, Sha512};
use tapsign_agent::credential::Exchange;

/// A request as a bot could send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

impl Wire {
    pub fn new(method: &str, path: &str, query: &str, body: &str) -> Wire {
        Wire {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: body.into(),
        }
    }
}

/// The bytes `exchange`'s signature covers for `w`, besides the agent's stamps.
pub fn verified(exchange: Exchange, w: &Wire) -> Vec<u8> {
    let q = if w.query.is_empty() { "" } else { "?" };
    match exchange {
        // timestamp + METHOD + requestPath(+?query) + body
        Exchange::Okx | Exchange::Kucoin | Exchange::Bitget => {
            format!("{}{}{q}{}{}", w.method, w.path, w.query, w.body).into_bytes()
        }
        // METHOD \n path \n query \n hex(SHA-512(body)) \n timestamp
        Exchange::Gate => format!(
            "{}\n{}\n{}\n{}",
            w.method,
            w.path,
            w.query,
            hex::encode(Sha512::digest(w.body.as_bytes()))
        )
        .into_bytes(),
        // path ‖ SHA-256(nonce + postData): the path and the body
        Exchange::Kraken => {
            let mut v = w.path.clone().into_bytes();
            v.push(0);
            v.extend_from_slice(w.body.as_bytes());
            v
        }
        // JWT uri "METHOD host/path"
        Exchange::Coinbase => format!("{} api.coinbase.com{}", w.method, w.path).into_bytes(),
        // queryString ‖ requestBody
        Exchange::Binance => format!("{}{}", w.query, w.body).into_bytes(),
        // timestamp + apiKey + recvWindow + (query | body)
        Exchange::Bybit => format!("{}{}", w.query, w.body).into_bytes(),
        // SHA-512 of the query, or of the JSON body as k=v&...
        Exchange::Upbit | Exchange::Bithumb => upbit_params(w).into_bytes(),
    }
}

/// The string Upbit and Bithumb hash: the query as sent, or a JSON body's pairs in body
/// order with arrays as `key[]=v` (unescaped). An unreadable body hashes as itself.
pub fn upbit_params(w: &Wire) -> String {
    if w.body.is_empty() {
        return w.query.clone();
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&w.body) else {
        return w.body.clone();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            serde_json::Value::Array(items) => {
                let name = if k.ends_with("[]") {
                    k
                } else {
                    format!("{k}[]")
                };
                for i in items {
                    out.push(format!("{name}={}", scalar(&i)));
                }
            }
            other => out.push(format!("{k}={}", scalar(&other))),
        }
    }
    out.join("&")
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON object whose Upbit parameter string is `params` (`k=v&...`), when there is one.
pub fn upbit_body_for(params: &str) -> Option<String> {
    let mut map = serde_json::Map::new();
    for piece in params.split('&') {
        let (k, v) = piece.split_once('=')?;
        if let Some(base) = k.strip_suffix("[]") {
            let entry = map
                .entry(base.to_string())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            entry
                .as_array_mut()?
                .push(serde_json::Value::String(v.into()));
        } else if map
            .insert(k.into(), serde_json::Value::String(v.into()))
            .is_some()
        {
            return None;
        }
    }
    Some(serde_json::Value::Object(map).to_string())
}

/// Every request a bot could send whose [`verified`] bytes equal `r`'s: the bytes spread over
/// path, query and body in every way the exchange's string-to-sign allows, and, where the
/// method or path is not signed, on the other methods and `decoys` paths too.
pub fn distributions(exchange: Exchange, r: &Wire, decoys: &[&str]) -> Vec<Wire> {
    let mut out = vec![r.clone()];
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let mut paths: Vec<&str> = decoys.to_vec();
    paths.push(&r.path);
    match exchange {
        Exchange::Okx | Exchange::Kucoin | Exchange::Bitget => {
            let q = if r.query.is_empty() { "" } else { "?" };
            let tail = format!("{}{q}{}{}", r.path, r.query, r.body);
            for (i, _) in tail.char_indices().skip(1) {
                let (path, rest) = tail.split_at(i);
                if let Some(rest) = rest.strip_prefix('?') {
                    for (j, _) in rest.char_indices() {
                        let (query, body) = rest.split_at(j);
                        out.push(Wire::new(&r.method, path, query, body));
                    }
                    out.push(Wire::new(&r.method, path, rest, ""));
                } else {
                    out.push(Wire::new(&r.method, path, "", rest));
                }
            }
        }
        Exchange::Binance => {
            // Every cut of query ‖ body, each on a method and path taken in turn (every cut
            // on every method and path would be quadratic for nothing: the grammar does not
            // depend on the path, and only GET refuses a body).
            let signed = format!("{}{}", r.query, r.body);
            let cuts = signed.char_indices().map(|(k, _)| k).chain([signed.len()]);
            for (n, k) in cuts.enumerate() {
                let (query, body) = signed.split_at(k);
                let m = methods[n % methods.len()];
                let p = paths[n % paths.len()];
                out.push(Wire::new(m, p, query, body));
                out.push(Wire::new("POST", p, query, body));
            }
        }
        Exchange::Bybit => {
            let payload = format!("{}{}", r.query, r.body);
            for p in &paths {
                for m in ["GET", "DELETE"] {
                    out.push(Wire::new(m, p, &payload, ""));
                }
                for m in ["POST", "PUT"] {
                    out.push(Wire::new(m, p, "", &payload));
                }
            }
        }
        Exchange::Upbit | Exchange::Bithumb => {
            let params = upbit_params(r);
            for p in &paths {
                for m in ["GET", "DELETE"] {
                    out.push(Wire::new(m, p, &params, ""));
                }
                if let Some(body) = upbit_body_for(&params) {
                    for m in ["POST", "PUT", "PATCH"] {
                        out.push(Wire::new(m, p, "", &body));
                    }
                }
            }
        }
        Exchange::Gate | Exchange::Kraken | Exchange::Coinbase => {
            // Their separators (newlines, a fixed-size digest, a claim) leave one reading;
            // a Coinbase body and query are not signed at all, so any may go with the path.
            if exchange == Exchange::Coinbase {
                out.push(Wire::new(&r.method, &r.path, "", ""));
                out.push(Wire::new(&r.method, &r.path, "a=b", r#"{"a":"b"}"#));
            }
        }
    }
    out.retain(|w| verified(exchange, w) == verified(exchange, r));
    out.dedup();
    out
}
