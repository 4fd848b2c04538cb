//! The keystore: a folder holding a vault key pair, one keyslot per enrolled token, one sealed
//! file per credential, and an authenticated manifest of them all. The format is specified
//! in docs/keystore-format.md.
//!
//! ```text
//! <dir>/                                0700
//!   manifest.json                       what the keystore holds, MACed under a key from VK
//!   vault-<tag>/                        the live folder (see `layout`)
//!     vault.json                        vault public key, in clear
//!     keyslots/<token id>.json          VK sealed to that token's key (unwrap = one touch)
//!     credentials/<name>.json           API key + secret sealed to the vault PUBLIC key
//! ```
//!
//! Like LUKS keyslots and age recipients: the vault private key (VK) exists on disk only
//! inside keyslots, so opening anything takes a token; adding a credential needs only the
//! public key, so it takes no touch. Nothing goes backwards: every operation that holds VK
//! first checks the files against the manifest and the [`Ledger`]'s record of changes since
//! (`manifest::fold`), then writes the next manifest; removing a token rotates VK.
//!
//! The API, in the order a user meets it:
//! - [`Keystore::new`], [`Keystore::is_initialized`];
//! - [`Keystore::create`] (first token: makes the vault key pair), [`Keystore::keyslots`]; a
//!   FIDO2 token has no public key to seal to, so it is enrolled with the token present:
//!   [`Keystore::create_with`], [`Keystore::add_keyslot_with`] (see [`slot`]);
//! - [`Keystore::unwrap_vault`]: a token's touch turns a [`Keyslot`] into a [`VaultKey`];
//! - with VK: [`Keystore::check`] (an unlock), [`Keystore::add_keyslot`] (further tokens),
//!   [`Keystore::rotate`] (a new VK, optionally without one token; a FIDO2 token that stays
//!   must be present to receive it);
//! - without: [`Keystore::add_credential`], [`Keystore::remove_credential`] (recorded in the
//!   ledger), [`Keystore::list_credentials`]; [`Keystore::open_credential`] needs VK.
//!
//! A whole life cycle (the soft token stands in for a YubiKey here):
//!
//! ```no_run
//! use tapsign_agent::audit::ledger::AuditLedger;
//! use tapsign_agent::credential::{Credential, Exchange};
//! use tapsign_agent::keystore::Keystore;
//! use tapsign_agent::secret::{SecretBytes, SecretString};
//! use tapsign_agent::token::{Token, soft::SoftToken};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ks = Keystore::new("/home/me/.tapsign/keystore".into());
//! let mut ledger = AuditLedger::new("/home/me/.tapsign/audit.log".as_ref());
//! let mut token = SoftToken::open(&SoftToken::dir_beside(ks.dir()))?;
//! if !ks.is_initialized()? {
//!     ks.create(token.stub(), &mut ledger)?; // `token add` on a fresh keystore
//! }
//! let cred = Credential {
//!     name: "upbit-main".into(),
//!     exchange: Exchange::Upbit,
//!     api_key: SecretString::new("access key".into()),
//!     secret: SecretBytes::from_slice(b"secret key"),
//!     passphrase: None,
//! };
//! ks.add_credential(&cred, false, None, &mut ledger)?; // `key add`: no touch
//! // `unlock`: the keyslot of the token present, then one touch.
//! let slot = ks.keyslots()?.into_iter().flatten().find(|s| &s.stub == token.stub());
//! let slot = slot.ok_or("this token is not enrolled")?;
//! let vk = ks.unwrap_vault(&slot, &mut token)?;
//! let checked = ks.check(&vk, &slot, 0, &mut ledger)?; // rollback check, next manifest
//! for name in &checked.accepted {
//!     drop(ks.open_checked(&vk, name, &checked)?); // into the session: the file judged
//! }
//! drop(vk); // zeroized: the session keeps only the credentials
//! # Ok(()) }
//! ```
//!
//! Robustness: every write is atomic (see `files::write_atomic`), and a change of many files
//! commits with one rename (`layout`); any changed, missing or extra byte in a file is a
//! [`KeystoreError`] naming that file, caught by its checksum on every read and by the AEAD
//! tag or the manifest's MAC at unlock. Listings return one `Result` per file, so one damaged
//! credential does not hide the others.

mod attest;
mod changes;
mod error;
mod files;
mod follows;
mod format;
mod inspect;
mod layout;
pub mod ledger;
mod lineage;
mod manifest;
mod notes;
mod preview;
mod rotate;
mod seal;
pub mod slot;
mod tried;
mod vault_ops;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_at_rest;
#[cfg(test)]
mod tests_check_lines;
#[cfg(test)]
mod tests_fido2;
#[cfg(test)]
mod tests_follows;
#[cfg(test)]
mod tests_lineage;
#[cfg(test)]
mod tests_manifest;
#[cfg(test)]
mod tests_rotate;
#[cfg(test)]
mod tests_tamper;
#[cfg(test)]
mod tests_vault_record;
#[cfg(test)]
mod tests_witness;

use std::path::{Path, PathBuf};

use p256::PublicKey;

pub use changes::{Added, Removed};
pub use error::KeystoreError;
pub use files::FORMAT_VERSION;
pub use format::Succession;
pub use inspect::{FileKind, check_file};
pub use layout::key_tag;
pub use ledger::{Anchor, Evidence, KeyAction, KeyChange, Ledger, LedgerEntry};
#[cfg(test)]
pub(crate) use lineage::numbered as numbered_vault;
pub use manifest::{CredRecord, Refusal};
pub use notes::{ChangeNotes, LOUD_NOTED, folded_by_commands};
pub use preview::Preview;
pub use rotate::{Dropping, Rotated, present_tokens_needed};
pub use seal::VaultKey;
pub use tried::{Tried, unrecorded_keyslot};
pub use vault_ops::Checked;

use crate::credential::{Credential, Exchange, check_name};
use crate::token::{Token, TokenError, TokenStub};
use files::{decode, list_json, private_dir_exists, read_private};
use format::{CredentialFile, KeyslotFile, VaultFile};
use layout::sha256_hex;
use seal::INFO_CREDENTIAL;

const VAULT_FILE: &str = "vault.json";
const KEYSLOTS: &str = "keyslots";
const CREDENTIALS: &str = "credentials";

/// Most credentials a keystore holds: `key add` refuses a new name past it. Every check's,
/// rotation's and `token` command's line in the audit log records each credential (about 170
/// bytes for a 64-character name), and a running agent takes in at most
/// [`crate::audit::MAX_FOREIGN_BYTES`] that other processes appended since its last line: a
/// rotation of 6,000 such credentials wrote a line past it, and the agent withheld every
/// signature until restarted (red-team round 23). At this many, the line is a third of that.
pub const MAX_CREDENTIALS: usize = 2_000;

/// A keystore folder. Holds only its path: every call reads the disk afresh.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

/// An enrolled token's keyslot, as read from disk (no secrets: VK is still sealed).
#[derive(Debug, Clone)]
pub struct Keyslot {
    /// The token this keyslot opens with.
    pub stub: TokenStub,
    /// Its file.
    pub path: PathBuf,
    /// The manifest lists this file (or there is no manifest yet). Not authenticated: an
    /// unlock checks it again once VK has verified the manifest.
    pub recorded: bool,
    sha256: String,
    file: KeyslotFile,
}

/// What `key list` shows about a credential: no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub name: String,
    pub exchange: Exchange,
    /// When it was added, seconds since the Unix epoch (UTC).
    pub created: u64,
    pub path: PathBuf,
}

impl Keystore {
    pub fn new(dir: PathBuf) -> Self {
        Keystore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Has a token been enrolled here? Errs if the folder is open to others, or if the file
    /// that makes the rest a keystore (vault.json, manifest.json) is gone while others remain.
    pub fn is_initialized(&self) -> Result<bool, KeystoreError> {
        match self.live() {
            Ok(live) => {
                let vault = live.dir.join(VAULT_FILE);
                match vault.try_exists() {
                    Ok(true) => Ok(true),
                    Ok(false) => Err(KeystoreError::damaged(
                        vault,
                        "it is missing, but the manifest names its folder",
                    )),
                    Err(e) => Err(KeystoreError::io("inspect", &vault, e)),
                }
            }
            Err(KeystoreError::NotInitialized { .. }) => {
                if private_dir_exists(&self.dir)? {
                    self.check_uninitialized()?;
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The manifest's generation, unauthenticated (`None` for a keystore without one yet).
    pub fn generation(&self) -> Result<Option<u64>, KeystoreError> {
        Ok(self.read_manifest()?.map(|m| m.generation))
    }

    /// The vault public key, from vault.json in `live`.
    fn vault_key_in(&self, live: &Path) -> Result<PublicKey, KeystoreError> {
        let path = live.join(VAULT_FILE);
        match read_private(&path)? {
            Some(bytes) => decode::<VaultFile>(&path, &bytes)?.public_key(&path),
            None => match self.is_initialized()? {
                // Raced with a rotation, or the folder is unreadable: name the file either way.
                true => Err(KeystoreError::damaged(path, "it could not be read")),
                false => Err(self.not_initialized()),
            },
        }
    }

    /// Whether the live vault.json can be read: `key list` reports it, as it reports a
    /// damaged credential (nothing can be added or opened without it).
    pub fn check_vault_file(&self) -> Result<(), KeystoreError> {
        self.vault_key_in(&self.live_dir()?).map(|_| ())
    }

    /// Every keyslot, one result per file (a damaged one does not hide the others).
    pub fn keyslots(&self) -> Result<Vec<Result<Keyslot, KeystoreError>>, KeystoreError> {
        let live = self.live()?;
        let dir = self.existing_subdir(&live.dir, KEYSLOTS)?;
        Ok(list_json(&dir)?
            .into_iter()
            .map(|entry| {
                let (path, stem) = entry?;
                let mut slot = load_keyslot(path, &stem)?;
                slot.recorded = live
                    .manifest
                    .as_ref()
                    .is_none_or(|m| m.keyslot(&stem).is_some_and(|r| r.sha256 == slot.sha256));
                Ok(slot)
            })
            .collect())
    }

    /// Open `slot` with `token` (one touch) and check the result against vault.json.
    pub fn unwrap_vault(
        &self,
        slot: &Keyslot,
        token: &mut dyn Token,
    ) -> Result<VaultKey, KeystoreError> {
        // Refuse the wrong token before asking the human for a touch.
        if token.stub() != &slot.stub {
            return Err(TokenError::WrongToken {
                found: token.stub().describe(),
                expected: slot.stub.describe(),
            }
            .into());
        }
        // Read vault.json before the touch too: a damaged one would waste it.
        let live = slot.path.parent().and_then(Path::parent).ok_or_else(|| {
            KeystoreError::Internal(format!(
                "{} is not in a keyslots folder",
                slot.path.display()
            ))
        })?;
        let vault = self.vault_key_in(live)?;
        let vk = vault_ops::unwrap_keyslot(slot, token)?;
        if vk.public_key() != vault {
            return Err(KeystoreError::VaultMismatch {
                from: format!("in {}", slot.path.display()),
                vault: live.join(VAULT_FILE),
            });
        }
        Ok(vk)
    }

    /// Every credential's metadata, one result per file.
    pub fn list_credentials(
        &self,
    ) -> Result<Vec<Result<CredentialInfo, KeystoreError>>, KeystoreError> {
        let live = self.live_dir()?;
        let dir = self.existing_subdir(&live, CREDENTIALS)?;
        Ok(list_json(&dir)?
            .into_iter()
            .map(|entry| {
                let (path, stem) = entry?;
                let (file, _) = load_credential(&path, &stem)?;
                Ok(CredentialInfo {
                    name: file.name,
                    exchange: file.exchange,
                    created: file.created,
                    path,
                })
            })
            .collect())
    }

    /// The exchange credential `name`'s file says, unverified (no vault key is needed to read
    /// it); `None` when there is no such file or it cannot be read. For warnings only.
    pub fn credential_exchange(&self, name: &str) -> Option<Exchange> {
        let path = credential_path(&self.live_dir().ok()?, name).ok()?;
        load_credential(&path, name)
            .ok()
            .map(|(file, _)| file.exchange)
    }

    /// Decrypt one credential with VK, whatever file is there: only its AEAD tag is checked,
    /// so an older copy sealed to the same vault key opens too. Tests and inspection only; an
    /// unlock opens what its check judged, with [`Keystore::open_checked`].
    pub fn open_credential(&self, vk: &VaultKey, name: &str) -> Result<Credential, KeystoreError> {
        let live = self.live_dir()?;
        let path = credential_path(&live, name)?;
        self.existing_subdir(&live, CREDENTIALS)?;
        let (file, _) = load_credential(&path, name)?;
        open_file(vk, &file, &path)
    }

    /// Open credential `name` as [`Keystore::check`] accepted it: the file read now must be
    /// the one the check judged (`checked.judged`), byte for byte. Between the check, which
    /// lets the writer lock go, and this read, another program could put an older copy sealed
    /// to the same vault key in its place, which its AEAD tag alone would let through.
    pub fn open_checked(
        &self,
        vk: &VaultKey,
        name: &str,
        checked: &Checked,
    ) -> Result<Credential, KeystoreError> {
        // The folder the check read, when it kept one: the file must be the one judged, byte
        // for byte, wherever it is read, and reading the manifest again for each credential
        // made an unlock of N credentials quadratic (2,000 took 6.8 s).
        let live = match &checked.live {
            Some(live) => live.clone(),
            None => self.live_dir()?,
        };
        let path = credential_path(&live, name)?;
        self.existing_subdir(&live, CREDENTIALS)?;
        let (file, sha256) = load_credential(&path, name)?;
        if checked.judged.get(name) != Some(&sha256) {
            return Err(KeystoreError::Swapped {
                path,
                why: "the credential file opened is not the one the check accepted",
            });
        }
        open_file(vk, &file, &path)
    }

    /// A subfolder of the live folder; its absence is damage, not emptiness.
    fn existing_subdir(&self, live: &Path, sub: &str) -> Result<PathBuf, KeystoreError> {
        let dir = live.join(sub);
        if !private_dir_exists(&dir)? {
            return Err(KeystoreError::damaged(
                dir,
                "the folder is missing (if it was empty, `mkdir -m 700` it)",
            ));
        }
        Ok(dir)
    }
}

fn keyslot_path(live: &Path, token_id: &str) -> Result<PathBuf, KeystoreError> {
    check_name(token_id).map_err(KeystoreError::InvalidName)?;
    Ok(live.join(KEYSLOTS).join(format!("{token_id}.json")))
}

fn credential_path(live: &Path, name: &str) -> Result<PathBuf, KeystoreError> {
    check_name(name).map_err(KeystoreError::InvalidName)?;
    Ok(live.join(CREDENTIALS).join(format!("{name}.json")))
}

/// Decrypt a parsed credential file with VK.
fn open_file(
    vk: &VaultKey,
    file: &CredentialFile,
    path: &Path,
) -> Result<Credential, KeystoreError> {
    let b = file.boxed(path)?;
    let shared = vk.agree(&b.ephemeral_point);
    let aad = file.aad()?;
    let vault = vk.public_key();
    let plain = seal::open(
        &*shared,
        &b.ephemeral_key,
        &vault,
        INFO_CREDENTIAL,
        &aad,
        &b.nonce,
        &b.ciphertext,
    )
    .ok_or_else(|| KeystoreError::CredentialLocked {
        path: path.to_owned(),
    })?;
    let (api_key, secret, passphrase) = seal::decode_secrets(&plain).ok_or_else(|| {
        KeystoreError::damaged(path, "it decrypted, but its contents are malformed")
    })?;
    Ok(Credential {
        name: file.name.clone(),
        exchange: file.exchange,
        api_key,
        secret,
        passphrase,
    })
}

/// The most a keyslot file may hold: a token's description and a sealed vault key are a few
/// hundred bytes.
const MAX_KEYSLOT_BYTES: u64 = 64 * 1024;

fn load_keyslot(path: PathBuf, stem: &str) -> Result<Keyslot, KeystoreError> {
    let bytes = files::read_private_within(&path, MAX_KEYSLOT_BYTES)?.ok_or_else(|| {
        KeystoreError::NotFound {
            what: "keyslot for token",
            name: stem.into(),
            path: path.clone(),
        }
    })?;
    keyslot_from(path, stem, &bytes)
}

/// A keyslot file's bytes, parsed and checked against its name (`stem`, the token's id).
fn keyslot_from(path: PathBuf, stem: &str, bytes: &[u8]) -> Result<Keyslot, KeystoreError> {
    let file: KeyslotFile = decode(&path, bytes)?;
    if file.token.id() != stem {
        return Err(KeystoreError::damaged(
            &path,
            format!("it is for token {}, but is named {stem}", file.token.id()),
        ));
    }
    slot::check(&file, &path)?;
    Ok(Keyslot {
        stub: file.token.clone(),
        path,
        recorded: true,
        sha256: sha256_hex(bytes),
        file,
    })
}

/// A credential file, parsed and checked against its name, with the SHA-256 of its bytes.
fn load_credential(path: &Path, stem: &str) -> Result<(CredentialFile, String), KeystoreError> {
    let bytes = read_private(path)?.ok_or_else(|| not_found(stem, path.to_owned()))?;
    credential_from(path, stem, &bytes)
}

/// A credential file's bytes, parsed and checked against its name.
fn credential_from(
    path: &Path,
    stem: &str,
    bytes: &[u8],
) -> Result<(CredentialFile, String), KeystoreError> {
    let file: CredentialFile = decode(path, bytes)?;
    if file.name != stem {
        return Err(KeystoreError::damaged(
            path,
            format!("it holds credential {:?}, but is named {stem:?}", file.name),
        ));
    }
    file.boxed(path)?;
    Ok((file, sha256_hex(bytes)))
}

fn not_found(name: &str, path: PathBuf) -> KeystoreError {
    KeystoreError::NotFound {
        what: "credential",
        name: name.into(),
        path,
    }
}
