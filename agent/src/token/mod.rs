//! Hardware tokens (and the test-only soft token) behind one trait.
//!
//! A token does exactly one secret operation: [`Token::agree`], which turns a keyslot's
//! challenge into 32 bytes of key material and asks the human for a touch. For P-256 tokens
//! (PIV, soft) the challenge is an ephemeral public key and the answer the ECDH shared X
//! coordinate; wrapping needs only the token's public key. The keystore turns that material
//! into a key-encryption key (HKDF) and opens the keyslot (AEAD).

pub mod soft;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What a keyslot records about its token: enough to name it and to recognise it before
/// asking for a touch. Never secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenStub {
    /// The software token: NO SECURITY, TESTS ONLY. Its private key sits in a file.
    Soft {
        /// The soft token's id (hex of the first 4 bytes of SHA-256 of its public key).
        id: String,
        /// Its P-256 public key, SEC1 compressed, hex.
        public_key: String,
    },
}

impl TokenStub {
    /// A short id for `token list` / `token remove`.
    pub fn id(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => format!("soft-{id}"),
        }
    }

    /// The kind, as `status` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenStub::Soft { .. } => "soft",
        }
    }

    /// How to name this token to a human ("insert YubiKey 12345678").
    pub fn describe(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => {
                format!("soft token {id} (INSECURE: for tests only, the key is in a file)")
            }
        }
    }

    /// True for tokens that give no protection (the soft token).
    pub fn is_insecure(&self) -> bool {
        matches!(self, TokenStub::Soft { .. })
    }

    /// The P-256 public key (SEC1 bytes) wrapping encrypts to, for ECDH tokens.
    pub fn ecdh_public_key(&self) -> Option<Vec<u8>> {
        match self {
            TokenStub::Soft { public_key, .. } => hex::decode(public_key).ok(),
        }
    }
}

/// What can go wrong with a token. Messages say what to do; they never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no enrolled token is present: {hint}")]
    Absent { hint: String },
    #[error("the token present ({found}) is not enrolled in this keystore; insert {expected}")]
    WrongToken { found: String, expected: String },
    #[error(
        "no touch within {secs} s (or the touch was refused); run the command again and touch the token when it blinks"
    )]
    TouchTimeout { secs: u64 },
    #[error("the token refused the PIN ({tries_left} tries left)")]
    PinInvalid { tries_left: u32 },
    #[error(
        "the soft token is for tests only and gives no protection; set TAPSIGN_INSECURE_SOFT_TOKEN=1 to use it anyway"
    )]
    SoftRefused,
    #[error("token error: {0}")]
    Other(String),
}

/// A token that is present and can be asked for its one secret operation.
pub trait Token: Send {
    /// The stub of the keyslot this token answers for.
    fn stub(&self) -> &TokenStub;

    /// Turn a keyslot's challenge into 32 bytes of key material. Asks for a touch.
    fn agree(&mut self, challenge: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError>;
}
