//! Sealing VK into a keyslot and opening it again, per kind of token:
//! - P-256 tokens (PIV, soft): sealed to the token's public key ([`seal::seal`]); sealing
//!   needs no token, opening is one on-token ECDH (a touch).
//! - FIDO2 tokens: sealed under HKDF-SHA256(salt = the keyslot's hmac-secret salt, ikm = the
//!   credential's hmac-secret output for that salt, info = [`INFO_KEYSLOT_FIDO2`]); sealing
//!   and opening both ask the token for the output (a touch each), as there is no public key.

use std::path::Path;

use p256::PublicKey;
use zeroize::Zeroizing;

use super::files::{Envelope, FORMAT_VERSION};
use super::format::{KeyslotFile, keyslot_aad};
use super::seal::{self, INFO_KEYSLOT, INFO_KEYSLOT_FIDO2, VaultKey};
use super::{Checked, Keystore, KeystoreError, Ledger};
use crate::token::fido2::Credential;
use crate::token::{Token, TokenError, TokenStub};

/// The keystore operations that take the token itself: what a FIDO2 token needs to be sealed
/// to, as it has no public key. (A rotation asks for such tokens through its `present`
/// callback: [`Keystore::rotate`].)
impl Keystore {
    /// [`Keystore::create`] with the token present: what a FIDO2 token needs (one touch).
    pub fn create_with(
        &self,
        token: &mut dyn Token,
        ledger: &mut dyn Ledger,
    ) -> Result<Checked, KeystoreError> {
        let stub = token.stub().clone();
        self.create_inner(&stub, Some(token), ledger)
    }

    /// [`Keystore::add_keyslot`] with the token present: what a FIDO2 token needs (one touch).
    pub fn add_keyslot_with(
        &self,
        vk: &VaultKey,
        token: &mut dyn Token,
        ledger: &mut dyn Ledger,
    ) -> Result<Checked, KeystoreError> {
        let stub = token.stub().clone();
        self.add_keyslot_inner(vk, &stub, Some(token), ledger)
    }
}

/// Seal `vk` for `stub`. A FIDO2 stub needs `token`, the present token it names (one touch).
pub(crate) fn seal_vk(
    vk: &VaultKey,
    stub: &TokenStub,
    token: Option<&mut dyn Token>,
) -> Result<KeyslotFile, KeystoreError> {
    let secret = vk.to_bytes();
    let (ephemeral_key, nonce, wrapped) = match stub {
        TokenStub::Fido2 { .. } => {
            let Some(token) = token else {
                return Err(KeystoreError::UnsupportedToken {
                    token: stub.describe(),
                    detail: "sealing to a FIDO2 key needs the key present, for a touch".into(),
                });
            };
            let ikm = fido2_secret(stub, token)?;
            let salt = fido2_salt(stub)?;
            let aad = keyslot_aad(stub, None)?;
            let (nonce, ct) = seal::seal_with(&*ikm, &salt, INFO_KEYSLOT_FIDO2, &secret, &aad)?;
            (None, nonce, ct)
        }
        _ => {
            let token_key = token_point(stub)?;
            let sealed = seal::seal(&token_key, INFO_KEYSLOT, &secret, |epk| {
                keyslot_aad(stub, Some(&hex::encode(epk)))
            })?;
            (
                Some(hex::encode(&sealed.ephemeral_key)),
                sealed.nonce,
                sealed.ciphertext,
            )
        }
    };
    Ok(KeyslotFile {
        format: <KeyslotFile as Envelope>::FORMAT.into(),
        version: FORMAT_VERSION,
        token: stub.clone(),
        ephemeral_key,
        nonce: hex::encode(nonce),
        wrapped_key: hex::encode(&wrapped),
        checksum: String::new(),
    })
}

/// Open `file` with `token` (one touch). `None` if the AEAD tag does not verify.
pub(crate) fn open_vk(
    file: &KeyslotFile,
    path: &Path,
    token: &mut dyn Token,
) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
    let aad = file.aad()?;
    match &file.token {
        TokenStub::Fido2 { .. } => {
            let (nonce, wrapped) = file.symmetric(path)?;
            let salt = fido2_salt(&file.token)?;
            let ikm = fido2_secret(&file.token, token)?;
            Ok(seal::open_with(
                &*ikm,
                &salt,
                INFO_KEYSLOT_FIDO2,
                &aad,
                &nonce,
                &wrapped,
            ))
        }
        _ => {
            let token_key = token_point(&file.token)?;
            let b = file.boxed(path)?;
            let shared = token.agree(&b.ephemeral_key)?;
            Ok(seal::open(
                &*shared,
                &b.ephemeral_key,
                &token_key,
                INFO_KEYSLOT,
                &aad,
                &b.nonce,
                &b.ciphertext,
            ))
        }
    }
}

/// Everything about a keyslot that can be checked without the token.
pub(crate) fn check(file: &KeyslotFile, path: &Path) -> Result<(), KeystoreError> {
    match &file.token {
        TokenStub::Fido2 { .. } => {
            Credential::from_stub(&file.token)
                .map_err(|e| KeystoreError::damaged(path, format!("its token is invalid ({e})")))?;
            file.symmetric(path).map(drop)
        }
        _ => {
            file.boxed(path)?;
            if !file.token.id_matches_key() {
                return Err(KeystoreError::damaged(
                    path,
                    "its token id is not the one its public key gives (a key named as another token)",
                ));
            }
            token_point(&file.token).map(drop)
        }
    }
}

/// Whether a keyslot for `stub` can be sealed without the token (to its public key).
pub fn seals_offline(stub: &TokenStub) -> bool {
    !matches!(stub, TokenStub::Fido2 { .. })
}

fn fido2_salt(stub: &TokenStub) -> Result<[u8; 32], KeystoreError> {
    Ok(Credential::from_stub(stub)?.salt)
}

/// The hmac-secret output for the stub's salt, from the token it names.
fn fido2_secret(
    stub: &TokenStub,
    token: &mut dyn Token,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if token.stub() != stub {
        return Err(TokenError::WrongToken {
            found: token.stub().describe(),
            expected: stub.describe(),
        }
        .into());
    }
    Ok(token.agree(&fido2_salt(stub)?)?)
}

/// The P-256 key a keyslot for `stub` is sealed to.
pub(crate) fn token_point(stub: &TokenStub) -> Result<PublicKey, KeystoreError> {
    stub.ecdh_public_key()
        .and_then(|bytes| PublicKey::from_sec1_bytes(&bytes).ok())
        .ok_or_else(|| KeystoreError::UnsupportedToken {
            token: stub.describe(),
            detail: "it has no valid P-256 public key to seal the vault key to".into(),
        })
}
