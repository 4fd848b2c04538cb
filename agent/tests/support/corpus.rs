//! The request corpora under agent/tests/corpus/ (format: the comment at the top of each
//! file): `denied/<exchange>.toml`, fund-moving requests the agent must refuse, and
//! `trading/<exchange>.toml`, a trading session as ccxt sends it, which the default profile
//! must allow.
#![allow(dead_code)] // Each test binary uses a different subset.

use serde::Deserialize;
use tapsign_agent::credential::Exchange;

use super::oracle::Wire;

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub what: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub doc: String,
}

impl Entry {
    pub fn wire(&self) -> Wire {
        Wire::new(&self.method, &self.path, &self.query, &self.body)
    }
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default, rename = "request")]
    requests: Vec<Entry>,
}

/// The entries of `corpus/<kind>/<exchange>.toml` (none when the file does not exist).
pub fn load(kind: &str, exchange: Exchange) -> Vec<Entry> {
    let path = format!(
        "{}/tests/corpus/{kind}/{}.toml",
        env!("CARGO_MANIFEST_DIR"),
        exchange.as_str()
    );
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let f: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            f.requests
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// A concrete path for a deny rule's glob (`**withdraw**` → `/api/withdraw`).
pub fn example_path(glob: &str) -> String {
    let g = glob.strip_prefix("**").map_or(glob.to_string(), |rest| {
        if rest.starts_with('/') {
            format!("/api{rest}")
        } else {
            format!("/api/{rest}")
        }
    });
    let g = g.trim_end_matches("**").trim_end_matches('/');
    g.replace("**", "x").replace('*', "v1")
}

/// Overlaps no parameter list can close, each with why it is accepted (and documented in
/// docs/threat-model.md): (exchange, denied method and path, why). Where the exchange signs
/// neither path nor method, these denied requests share their parameters with a profile
/// entry, so a signature for that entry is good for them too.
pub const ACCEPTED: &[(&str, &str, &str)] = &[];

/// Whether the denied request `method path` of `exchange` is an accepted overlap.
pub fn accepted(exchange: Exchange, method: &str, path: &str) -> bool {
    let id = format!("{method} {path}");
    ACCEPTED
        .iter()
        .any(|(ex, what, _)| *ex == exchange.as_str() && *what == id)
}
