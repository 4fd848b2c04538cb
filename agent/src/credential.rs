//! An exchange credential: what `tapsign key add` stores and a session holds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::secret::{SecretBytes, SecretString};

/// The exchanges tapsign signs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    Upbit,
    Binance,
}

impl Exchange {
    pub const ALL: &'static [Exchange] = &[Exchange::Upbit, Exchange::Binance];

    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Upbit => "upbit",
            Exchange::Binance => "binance",
        }
    }

    /// The fields `key add` asks for, in order (one line each on stdin). The first is the API
    /// key, the second the secret; any further ones land in [`Credential::passphrase`].
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Exchange::Upbit => &["access key", "secret key"],
            Exchange::Binance => &["API key", "secret key"],
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Exchange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        Exchange::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = Exchange::ALL.iter().map(|e| e.as_str()).collect();
                format!(
                    "unknown exchange {s:?}; tapsign signs for: {}",
                    names.join(", ")
                )
            })
    }
}

/// A decrypted credential. Lives only inside an open session (or briefly in `key add`).
pub struct Credential {
    /// The name the trader gave it (`upbit-main`).
    pub name: String,
    pub exchange: Exchange,
    /// The exchange's API key (access key). Not as secret as `secret`, but never in clear on disk.
    pub api_key: SecretString,
    /// The signing secret, as the exchange issued it (raw bytes of the string for HMAC schemes).
    pub secret: SecretBytes,
    /// A passphrase, for exchanges that have one.
    pub passphrase: Option<SecretString>,
}

/// Is `name` acceptable as a credential name? Names become file names and appear in logs.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        ))
    }
}
