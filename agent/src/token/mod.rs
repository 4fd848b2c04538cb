//! Hardware tokens (and the test-only soft token) behind one trait.
//!
//! A token does exactly one secret operation: [`Token::agree`], which turns a keyslot's
//! challenge into 32 bytes of key material and asks the human for a touch. For P-256 tokens
//! (PIV, soft) the challenge is an ephemeral public key and the answer the ECDH shared X
//! coordinate; wrapping needs only the token's public key. The keystore turns that material
//! into a key-encryption key (HKDF) and opens the keyslot (AEAD).

pub mod piv;
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
    /// A P-256 key in a retired PIV slot of a YubiKey.
    Piv {
        serial: u32,
        /// The slot as the card numbers it (0x82 = R1 .. 0x95 = R20).
        slot: u8,
        /// Hex of the first 4 bytes of SHA-256 of the compressed public key.
        tag: String,
        /// The slot's P-256 public key, SEC1 compressed, hex.
        public_key: String,
        /// PIN policy the key was generated with: never, once, always (or default).
        pin_policy: String,
        /// Touch policy: always, cached, never (or default).
        touch_policy: String,
    },
}

impl TokenStub {
    /// A short id for `token list` / `token remove`.
    pub fn id(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => format!("soft-{id}"),
            TokenStub::Piv {
                serial, slot, tag, ..
            } => format!("piv-{serial}-r{}-{tag}", slot.wrapping_sub(0x81)),
        }
    }

    /// The kind, as `status` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenStub::Soft { .. } => "soft",
            TokenStub::Piv { .. } => "piv",
        }
    }

    /// How to name this token to a human ("insert YubiKey 12345678").
    pub fn describe(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => {
                format!("soft token {id} (INSECURE: for tests only, the key is in a file)")
            }
            TokenStub::Piv { serial, slot, .. } => {
                format!("YubiKey {serial} (PIV slot R{})", slot.wrapping_sub(0x81))
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
            TokenStub::Soft { public_key, .. } | TokenStub::Piv { public_key, .. } => {
                hex::decode(public_key).ok()
            }
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
    #[error("the token refused the PIN ({tries_left} tries left before it blocks)")]
    PinInvalid { tries_left: u32 },
    #[error(
        "the PIN of YubiKey {serial} is blocked: unblock it with the PUK (`ykman piv access unblock-pin`), then try again"
    )]
    PinBlocked { serial: u32 },
    #[error(
        "YubiKey {serial} has one PIN try left, and tapsign will not spend it (a wrong PIN would block the card): verify the PIN once with `yubico-piv-tool -a verify-pin` to reset the count, then unlock again"
    )]
    PinLastTry { serial: u32 },
    #[error("YubiKey {serial} needs its PIN for this key: `tapsign unlock` asks for it")]
    PinNeeded { serial: u32 },
    #[error("no token can be reached: {hint}")]
    Unavailable { hint: String },
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

    /// The PC/SC reader the token sat in for its last `agree`, so the agent can lock when it
    /// goes away. `None` for tokens not on PC/SC.
    fn reader(&self) -> Option<String> {
        None
    }
}

/// Where tokens are looked for, and what the human already gave.
pub struct Search<'a> {
    /// The soft token's folder.
    pub soft_dir: &'a std::path::Path,
    /// `TAPSIGN_INSECURE_SOFT_TOKEN=1` was given.
    pub soft_allowed: bool,
    /// The PIN, for tokens whose policy wants one.
    pub pin: Option<&'a crate::secret::SecretString>,
}

/// Find a present token that answers for one of `stubs`, without asking for a touch.
/// Returns the index of the stub and the token.
pub fn locate(
    stubs: &[&TokenStub],
    search: &Search<'_>,
) -> Result<(usize, Box<dyn Token>), TokenError> {
    let expected = || {
        stubs
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let piv: Vec<(usize, &TokenStub)> = stubs
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, s)| matches!(s, TokenStub::Piv { .. }))
        .collect();
    let mut first_err = None;
    if !piv.is_empty() {
        let only: Vec<&TokenStub> = piv.iter().map(|(_, s)| *s).collect();
        match piv::PivToken::locate(&only, search.pin) {
            Ok((i, t)) => return Ok((piv[i].0, Box::new(t))),
            Err(e) => first_err = Some(e),
        }
    }
    let soft: Vec<usize> = (0..stubs.len())
        .filter(|&i| matches!(stubs[i], TokenStub::Soft { .. }))
        .collect();
    if !soft.is_empty() {
        if !search.soft_allowed {
            return Err(first_err.unwrap_or(TokenError::SoftRefused));
        }
        match soft::SoftToken::open(search.soft_dir) {
            Ok(t) => match soft.iter().find(|&&i| *stubs[i] == *t.stub()) {
                Some(&i) => return Ok((i, Box::new(t))),
                None => {
                    first_err.get_or_insert(TokenError::WrongToken {
                        found: t.stub().describe(),
                        expected: expected(),
                    });
                }
            },
            Err(TokenError::Absent { .. }) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| TokenError::Absent {
        hint: format!("insert {}", expected()),
    }))
}
