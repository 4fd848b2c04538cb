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
    Bithumb,
    Bybit,
    Okx,
    Coinbase,
    Kraken,
    Gate,
    Kucoin,
    Bitget,
}

impl Exchange {
    pub const ALL: &'static [Exchange] = &[
        Exchange::Upbit,
        Exchange::Binance,
        Exchange::Bithumb,
        Exchange::Bybit,
        Exchange::Okx,
        Exchange::Coinbase,
        Exchange::Kraken,
        Exchange::Gate,
        Exchange::Kucoin,
        Exchange::Bitget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Upbit => "upbit",
            Exchange::Binance => "binance",
            Exchange::Bithumb => "bithumb",
            Exchange::Bybit => "bybit",
            Exchange::Okx => "okx",
            Exchange::Coinbase => "coinbase",
            Exchange::Kraken => "kraken",
            Exchange::Gate => "gate",
            Exchange::Kucoin => "kucoin",
            Exchange::Bitget => "bitget",
        }
    }

    /// The fields `key add` asks for, in order. The first is the API key, the second the
    /// secret; a third lands in [`Credential::passphrase`]. Read them with
    /// [`Exchange::read_fields`], which knows that a PEM secret spans several lines.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Exchange::Upbit | Exchange::Bithumb => &["access key", "secret key"],
            Exchange::Binance => &["API key", "secret key (HMAC string or Ed25519 PEM)"],
            Exchange::Bybit | Exchange::Gate => &["API key", "secret key"],
            Exchange::Kraken => &["API key", "private key (base64)"],
            Exchange::Okx | Exchange::Kucoin | Exchange::Bitget => {
                &["API key", "secret key", "passphrase"]
            }
            Exchange::Coinbase => &["API key name", "private key (PEM or base64 Ed25519)"],
        }
    }

    /// Read [`Exchange::fields`] from `input`, one field per line, as `key add` does with
    /// stdin. A field whose first line starts with `-----BEGIN ` is a PEM block: its lines are
    /// read up to and including the `-----END ...-----` line and kept with their newlines
    /// (Coinbase and Binance Ed25519 keys). A one-line PEM with literal `\n` escapes, as in
    /// Coinbase's downloaded JSON key file, is unescaped. Trailing `\r` and spaces are
    /// stripped from one-line fields. The caller zeroizes nothing: every field comes back as
    /// a [`SecretString`].
    pub fn read_fields(
        self,
        input: &mut dyn std::io::BufRead,
    ) -> Result<Vec<SecretString>, String> {
        // Sized up front and never grown: a reallocation would leave a copy of the secret
        // in freed memory. No exchange issues a key or secret near these sizes; longer input
        // is refused rather than read without end.
        const LINE: usize = 4096;
        const PEM: usize = 16 * 1024;
        let mut out = Vec::new();
        for name in self.fields() {
            let mut line = zeroize::Zeroizing::new(String::with_capacity(LINE + 1));
            read_line(input, &mut line, name, LINE)?;
            let first = line.trim_end_matches(['\r', '\n']).trim();
            if !first.starts_with("-----BEGIN ") {
                out.push(SecretString::from_str_copy(first));
                continue;
            }
            let mut pem = zeroize::Zeroizing::new(String::with_capacity(PEM));
            if first.contains("\\n") {
                for (i, part) in first.split("\\n").enumerate() {
                    if i > 0 {
                        pem.push('\n');
                    }
                    pem.push_str(part);
                }
                if !pem.ends_with('\n') {
                    pem.push('\n');
                }
                out.push(SecretString::from_str_copy(&pem));
                continue;
            }
            pem.push_str(first);
            pem.push('\n');
            loop {
                line.clear();
                read_line(input, &mut line, name, LINE)?;
                let l = line.trim_end_matches(['\r', '\n']).trim();
                if pem.len() + l.len() + 1 > PEM {
                    return Err(format!(
                        "the {name} is longer than {PEM} bytes, or its -----END ...----- line is missing"
                    ));
                }
                pem.push_str(l);
                pem.push('\n');
                if l.starts_with("-----END ") {
                    break;
                }
            }
            out.push(SecretString::from_str_copy(&pem));
        }
        Ok(out)
    }
}

/// One line of `input`, at most `max` bytes, into `line`; the end of input, and a longer
/// line, are errors naming the field.
fn read_line(
    input: &mut dyn std::io::BufRead,
    line: &mut String,
    name: &str,
    max: usize,
) -> Result<(), String> {
    use std::io::{BufRead, Read};
    let read = input.take(max as u64 + 1).read_line(line);
    if line.len() > max && !line.ends_with('\n') {
        return Err(format!(
            "a line of the {name} is longer than {max} bytes; no exchange issues one that long"
        ));
    }
    match read {
        Ok(0) => Err(format!(
            // How to give the fields is the reader's to say (on a terminal or from stdin): said
            // here too, it came twice (red-team round 24).
            "the input ended before the {name} was complete; a PEM key needs all its lines, \
             through -----END ...-----"
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("could not read the {name}: {e}")),
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

impl Credential {
    /// Whether `other` is the same credential: name, exchange, API key, secret and
    /// passphrase. What an extend holds the session's keys to against the keystore's (a
    /// replaced credential is another one, whatever its name). Compared in full, not
    /// stopping at the first byte that differs, though only the agent sees either.
    pub fn same_as(&self, other: &Credential) -> bool {
        fn same(a: &[u8], b: &[u8]) -> bool {
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
        }
        fn phrase(c: &Credential) -> Option<&[u8]> {
            c.passphrase.as_ref().map(|p| p.expose().as_bytes())
        }
        let phrases = match (phrase(self), phrase(other)) {
            (Some(a), Some(b)) => same(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        // Each compared, whatever the others gave.
        let parts = [
            self.name == other.name,
            self.exchange == other.exchange,
            same(
                self.api_key.expose().as_bytes(),
                other.api_key.expose().as_bytes(),
            ),
            same(self.secret.expose(), other.secret.expose()),
            phrases,
        ];
        parts.iter().all(|p| *p)
    }

    /// Whether every secret of it is in locked pages (never swapped out).
    pub fn in_locked_memory(&self) -> bool {
        self.api_key.is_locked()
            && self.secret.is_locked()
            && self.passphrase.as_ref().is_none_or(SecretString::is_locked)
    }
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

/// The `key add` check and the key kinds it tells apart live with the schemes that use them.
pub use crate::sign::keys::{KeyType, validate};
