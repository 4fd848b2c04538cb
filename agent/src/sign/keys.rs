//! Asymmetric keys and the `key add` check.
//!
//! Exchanges issue three kinds of secret: an HMAC string (most), an Ed25519 private key
//! (Binance "Ed25519 keys", Coinbase CDP EdDSA keys) and an ECDSA P-256 key (Coinbase ES256).
//! The kind is read off the secret itself, so a credential needs no extra stored field:
//! a `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM holding Ed25519 or P-256, a
//! `-----BEGIN EC PRIVATE KEY-----` SEC1 PEM (P-256), or, for Coinbase only, base64 of an
//! Ed25519 seed (32 bytes) or seed‖public key (64 bytes) as the CDP portal shows it.
//!
//! Errors never quote the secret; they say what shape was expected.

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::credential::Exchange;

/// How a credential signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// An HMAC secret string.
    Hmac,
    /// An Ed25519 private key (EdDSA).
    Ed25519,
    /// An ECDSA P-256 private key (ES256).
    Es256,
}

/// Does `secret` look like a PEM block (as opposed to an HMAC string)?
pub fn is_pem(secret: &[u8]) -> bool {
    secret.trim_ascii_start().starts_with(b"-----BEGIN ")
}

/// The secret as text, for PEM parsing; a PEM is ASCII.
fn pem_text(secret: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(secret)
        .map(str::trim)
        .map_err(|_| "the PEM key has bytes that are not text; paste it again as exported".into())
}

/// An Ed25519 signing key from a PKCS#8 PEM, or (when `allow_base64`) from base64 of a
/// 32-byte seed or a 64-byte seed‖public key.
pub(crate) fn ed25519_key(
    secret: &[u8],
    allow_base64: bool,
) -> Result<ed25519_dalek::SigningKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    if is_pem(secret) {
        let pem = pem_text(secret)?;
        if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(
                "an Ed25519 key must be a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----); \
                        convert it with `openssl pkey -in key.pem`"
                    .into(),
            );
        }
        return ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|_| {
            "the PEM is not a valid PKCS#8 Ed25519 private key; check that all of its lines \
             were pasted, through -----END PRIVATE KEY-----"
                .into()
        });
    }
    if !allow_base64 {
        return Err("expected a PEM private key".into());
    }
    let text = pem_text(secret)?;
    let raw = Zeroizing::new(Base64::decode_vec(text).map_err(|_| {
        "the Ed25519 key is neither a PEM nor base64; paste the privateKey value as the \
         exchange showed it"
            .to_string()
    })?);
    match raw.len() {
        32 => {
            let seed = Zeroizing::new(<[u8; 32]>::try_from(&raw[..]).map_err(|_| "length")?);
            Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
        }
        64 => {
            let pair = Zeroizing::new(<[u8; 64]>::try_from(&raw[..]).map_err(|_| "length")?);
            ed25519_dalek::SigningKey::from_keypair_bytes(&pair).map_err(|_| {
                "the base64 Ed25519 key's public half does not match its seed; paste the key \
                 again"
                    .into()
            })
        }
        n => Err(format!(
            "the base64 Ed25519 key decodes to {n} bytes; expected 32 (seed) or 64 (seed and \
             public key)"
        )),
    }
}

/// An ECDSA P-256 signing key from a SEC1 (`EC PRIVATE KEY`) or PKCS#8 PEM.
pub(crate) fn es256_key(secret: &[u8]) -> Result<p256::ecdsa::SigningKey, String> {
    use p256::pkcs8::DecodePrivateKey;
    let pem = pem_text(secret)?;
    let key = if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        p256::SecretKey::from_sec1_pem(pem).ok()
    } else {
        p256::SecretKey::from_pkcs8_pem(pem).ok()
    };
    key.map(|k| p256::ecdsa::SigningKey::from(&k))
        .ok_or_else(|| {
            "the PEM is not a valid P-256 private key; check that all of its lines (and their \
         line breaks) were pasted, through the -----END ...----- line"
                .into()
        })
}

/// What kind of key `secret` is for `exchange`, or why it cannot sign there.
pub(crate) fn key_type(exchange: Exchange, secret: &[u8]) -> Result<KeyType, String> {
    match exchange {
        Exchange::Binance if is_pem(secret) => ed25519_key(secret, false)
            .map(|_| KeyType::Ed25519)
            .map_err(|e| format!("{e} (tapsign signs Binance with HMAC or Ed25519 keys, not RSA)")),
        Exchange::Coinbase => {
            let pem = is_pem(secret);
            if pem && es256_key(secret).is_ok() {
                Ok(KeyType::Es256)
            } else if ed25519_key(secret, true).is_ok() {
                Ok(KeyType::Ed25519)
            } else if pem {
                Err(
                    "the Coinbase key's PEM is neither a P-256 (EC) nor an Ed25519 private key; \
                     check that every line was pasted, through the -----END ...----- line"
                        .into(),
                )
            } else {
                ed25519_key(secret, true).map(|_| KeyType::Ed25519)
            }
        }
        Exchange::Kraken => {
            let text = std::str::from_utf8(secret).map_err(|_| "not text".to_string())?;
            let raw = Zeroizing::new(Base64::decode_vec(text.trim()).map_err(|_| {
                "the Kraken private key is not base64; copy the \"Private Key\" exactly as \
                 Kraken shows it (it ends in '=' or '==')"
                    .to_string()
            })?);
            if raw.is_empty() {
                return Err("the Kraken private key is empty".into());
            }
            Ok(KeyType::Hmac)
        }
        _ if is_pem(secret) => Err(format!(
            "{exchange} signs with an HMAC secret string, but this is a PEM key; paste the \
             secret key the exchange showed (RSA keys are not supported)"
        )),
        _ => Ok(KeyType::Hmac),
    }
}

/// The check `tapsign key add` runs before storing a credential: the fields are present and
/// of the right shape, and the secret is a key this exchange's scheme can use.
pub fn validate(
    exchange: Exchange,
    api_key: &str,
    secret: &[u8],
    passphrase: Option<&str>,
) -> Result<KeyType, String> {
    let key_name = exchange.fields()[0];
    if api_key.is_empty() || !api_key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "the {key_name} is empty or has spaces or non-ASCII characters; paste it again"
        ));
    }
    if secret.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "the {} is empty; paste it again",
            exchange.fields()[1]
        ));
    }
    let wants_passphrase = exchange.fields().len() > 2;
    match (wants_passphrase, passphrase) {
        (true, None) | (true, Some("")) => {
            return Err(format!(
                "{exchange} keys have a passphrase (chosen when the key was created); give it \
                 as the third field"
            ));
        }
        (false, Some(p)) if !p.is_empty() => {
            return Err(format!(
                "{exchange} keys have no passphrase; give only the {} and the {}",
                exchange.fields()[0],
                exchange.fields()[1]
            ));
        }
        _ => {}
    }
    if exchange == Exchange::Coinbase && is_pem(api_key.as_bytes()) {
        return Err(
            "the Coinbase key name comes first (organizations/.../apiKeys/... or a \
                    UUID), then the private key"
                .into(),
        );
    }
    key_type(exchange, secret)
}
