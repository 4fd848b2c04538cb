//! The three file types, as they sit on disk (docs/keystore-format.md has examples), and the
//! associated data each binds to its ciphertext.

use std::path::Path;

use p256::PublicKey;
use serde::{Deserialize, Serialize};

use super::KeystoreError;
use super::files::{Envelope, FORMAT_VERSION, parse_hex};
use super::seal::{NONCE_LEN, compressed};
use crate::credential::Exchange;
use crate::token::TokenStub;

/// `vault.json`: the vault public key, in clear, and the rotations that led to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultFile {
    pub format: String,
    pub version: u64,
    /// SEC1 compressed, lowercase hex.
    pub public_key: String,
    /// Every rotation since the keystore was made, oldest first: each signed by the vault key
    /// it replaced (`super::lineage`). Absent for a keystore never rotated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Succession>,
    pub checksum: String,
}

/// One rotation: vault key `from` made way for `to`, signed by `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Succession {
    /// The replaced vault public key, SEC1 compressed, lowercase hex.
    pub from: String,
    /// The vault public key that replaced it.
    pub to: String,
    /// ECDSA P-256 with SHA-256 under `from`, of `super::lineage::statement`; r || s, hex.
    pub signature: String,
}

/// The `version` of a `vault.json` with a `lineage` (one without stays version 1, so an older
/// tapsign reads it, and one with says "upgrade tapsign" there instead of "damaged").
pub(crate) const VAULT_LINEAGE_VERSION: u64 = 2;

impl Envelope for VaultFile {
    const FORMAT: &'static str = "tapsign-vault";
    const MAX_VERSION: u64 = VAULT_LINEAGE_VERSION;
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
    fn fits_version(&self) -> bool {
        match self.version {
            VAULT_LINEAGE_VERSION => !self.lineage.is_empty(),
            _ => self.lineage.is_empty(),
        }
    }
}

impl VaultFile {
    pub fn new(public_key: &PublicKey) -> Self {
        VaultFile {
            format: Self::FORMAT.into(),
            version: FORMAT_VERSION,
            public_key: hex::encode(compressed(public_key)),
            lineage: Vec::new(),
            checksum: String::new(),
        }
    }

    pub fn public_key(&self, path: &Path) -> Result<PublicKey, KeystoreError> {
        point(path, "public_key", &self.public_key)
    }
}

/// `keyslots/<token id>.json`: VK sealed to one token (see `super::slot`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyslotFile {
    pub format: String,
    pub version: u64,
    pub token: TokenStub,
    /// P-256 tokens only; absent for FIDO2, whose keyslot key comes from hmac-secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_key: Option<String>,
    pub nonce: String,
    /// VK (32-byte scalar) + 16-byte tag.
    pub wrapped_key: String,
    pub checksum: String,
}

impl Envelope for KeyslotFile {
    const FORMAT: &'static str = "tapsign-keyslot";
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// The AAD of a keyslot: compact JSON of these fields, in this order (no `ephemeral_key` for
/// FIDO2 keyslots).
#[derive(Serialize)]
struct KeyslotHeader<'a> {
    format: &'a str,
    version: u64,
    token: &'a TokenStub,
    #[serde(skip_serializing_if = "Option::is_none")]
    ephemeral_key: Option<&'a str>,
}

pub(crate) fn keyslot_aad(
    token: &TokenStub,
    ephemeral_key: Option<&str>,
) -> Result<Vec<u8>, KeystoreError> {
    json(&KeyslotHeader {
        format: KeyslotFile::FORMAT,
        version: FORMAT_VERSION,
        token,
        ephemeral_key,
    })
}

/// A sealed box's parts, decoded and checked.
pub(crate) struct Boxed {
    pub ephemeral_key: Vec<u8>,
    pub ephemeral_point: PublicKey,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

fn boxed(
    path: &Path,
    epk: &str,
    nonce: &str,
    ct: &str,
    ct_field: &str,
) -> Result<Boxed, KeystoreError> {
    let ephemeral_point = point(path, "ephemeral_key", epk)?;
    let nonce: [u8; NONCE_LEN] = parse_hex(path, "nonce", nonce)?.try_into().map_err(|_| {
        KeystoreError::damaged(path, format!("field \"nonce\" is not {NONCE_LEN} bytes"))
    })?;
    Ok(Boxed {
        ephemeral_key: compressed(&ephemeral_point),
        ephemeral_point,
        nonce,
        ciphertext: parse_hex(path, ct_field, ct)?,
    })
}

impl KeyslotFile {
    /// The sealed box of a P-256 keyslot.
    pub fn boxed(&self, path: &Path) -> Result<Boxed, KeystoreError> {
        let epk = self
            .ephemeral_key
            .as_deref()
            .ok_or_else(|| KeystoreError::damaged(path, "field \"ephemeral_key\" is missing"))?;
        let b = boxed(path, epk, &self.nonce, &self.wrapped_key, "wrapped_key")?;
        check_wrapped_len(path, &b.ciphertext)?;
        Ok(b)
    }

    /// The nonce and wrapped key of a FIDO2 keyslot (which has no ephemeral key).
    pub fn symmetric(&self, path: &Path) -> Result<([u8; NONCE_LEN], Vec<u8>), KeystoreError> {
        if self.ephemeral_key.is_some() {
            return Err(KeystoreError::damaged(
                path,
                "a FIDO2 keyslot has an \"ephemeral_key\" field",
            ));
        }
        let nonce: [u8; NONCE_LEN] =
            parse_hex(path, "nonce", &self.nonce)?
                .try_into()
                .map_err(|_| {
                    KeystoreError::damaged(
                        path,
                        format!("field \"nonce\" is not {NONCE_LEN} bytes"),
                    )
                })?;
        let wrapped = parse_hex(path, "wrapped_key", &self.wrapped_key)?;
        check_wrapped_len(path, &wrapped)?;
        Ok((nonce, wrapped))
    }

    pub fn aad(&self) -> Result<Vec<u8>, KeystoreError> {
        keyslot_aad(&self.token, self.ephemeral_key.as_deref())
    }
}

/// VK (32-byte scalar) + 16-byte tag.
fn check_wrapped_len(path: &Path, wrapped: &[u8]) -> Result<(), KeystoreError> {
    if wrapped.len() != 32 + 16 {
        return Err(KeystoreError::damaged(
            path,
            "field \"wrapped_key\" has the wrong length",
        ));
    }
    Ok(())
}

/// `credentials/<name>.json`: one credential sealed to the vault public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialFile {
    pub format: String,
    pub version: u64,
    pub name: String,
    pub exchange: Exchange,
    /// When it was added, seconds since the Unix epoch (UTC).
    pub created: u64,
    pub ephemeral_key: String,
    pub nonce: String,
    /// The encoded secrets (see `seal::encode_secrets`) + 16-byte tag.
    pub ciphertext: String,
    pub checksum: String,
}

impl Envelope for CredentialFile {
    const FORMAT: &'static str = "tapsign-credential";
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// The AAD of a credential: compact JSON of these fields, in this order.
#[derive(Serialize)]
struct CredentialHeader<'a> {
    format: &'a str,
    version: u64,
    name: &'a str,
    exchange: Exchange,
    created: u64,
    ephemeral_key: &'a str,
}

pub(crate) fn credential_aad(
    name: &str,
    exchange: Exchange,
    created: u64,
    ephemeral_key: &str,
) -> Result<Vec<u8>, KeystoreError> {
    json(&CredentialHeader {
        format: CredentialFile::FORMAT,
        version: FORMAT_VERSION,
        name,
        exchange,
        created,
        ephemeral_key,
    })
}

impl CredentialFile {
    pub fn boxed(&self, path: &Path) -> Result<Boxed, KeystoreError> {
        let b = boxed(
            path,
            &self.ephemeral_key,
            &self.nonce,
            &self.ciphertext,
            "ciphertext",
        )?;
        if b.ciphertext.len() < 16 {
            return Err(KeystoreError::damaged(
                path,
                "field \"ciphertext\" is too short",
            ));
        }
        Ok(b)
    }

    pub fn aad(&self) -> Result<Vec<u8>, KeystoreError> {
        credential_aad(&self.name, self.exchange, self.created, &self.ephemeral_key)
    }
}

/// A P-256 point as tapsign writes it: compressed SEC1, lowercase hex.
pub(crate) fn point(path: &Path, field: &str, s: &str) -> Result<PublicKey, KeystoreError> {
    let bytes = parse_hex(path, field, s)?;
    match PublicKey::from_sec1_bytes(&bytes) {
        Ok(key) if compressed(&key) == bytes => Ok(key),
        _ => Err(KeystoreError::damaged(
            path,
            format!("field {field:?} is not a compressed P-256 point"),
        )),
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, KeystoreError> {
    serde_json::to_vec(value)
        .map_err(|e| KeystoreError::Internal(format!("cannot encode a header ({e})")))
}
