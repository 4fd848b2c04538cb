//! The keystore: a folder holding a vault key pair, one keyslot per enrolled token, and one
//! sealed file per credential. The format is specified in docs/keystore-format.md.
//!
//! ```text
//! <dir>/                      0700
//!   vault.json                vault public key, in clear
//!   keyslots/<token id>.json  VK sealed to that token (unwrap = one touch)
//!   credentials/<name>.json   API key + secret sealed to the vault PUBLIC key
//! ```
//!
//! Like LUKS keyslots and age recipients: the vault private key (VK) exists on disk only
//! inside keyslots, so opening anything takes a token; adding a credential needs only the
//! public key, so it takes no touch.
//!
//! The API, in the order a user meets it:
//! - [`Keystore::new`], [`Keystore::is_initialized`];
//! - [`Keystore::create`] (first token: makes the vault key pair),
//!   [`Keystore::add_keyslot`] (further tokens: needs VK), [`Keystore::keyslots`],
//!   [`Keystore::remove_keyslot`] (refuses the last one); a FIDO2 token has no public key to
//!   seal to, so it is enrolled with the token present: [`Keystore::create_with`],
//!   [`Keystore::add_keyslot_with`], and re-sealed (VK rotation) with
//!   [`Keystore::rewrap_keyslot`] (see [`slot`]);
//! - [`Keystore::unwrap_vault`]: a token's touch turns a [`Keyslot`] into a [`VaultKey`];
//! - [`Keystore::add_credential`], [`Keystore::list_credentials`],
//!   [`Keystore::remove_credential`], [`Keystore::open_credential`] (needs VK).
//!
//! A whole life cycle (the soft token stands in for a YubiKey here):
//!
//! ```no_run
//! use std::path::Path;
//! use tapsign_agent::credential::{Credential, Exchange};
//! use tapsign_agent::keystore::Keystore;
//! use tapsign_agent::secret::{SecretBytes, SecretString};
//! use tapsign_agent::token::{Token, soft::SoftToken};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ks = Keystore::new("/home/me/.tapsign/keystore".into());
//! let mut token = SoftToken::open(&SoftToken::dir_beside(ks.dir()))?;
//! if !ks.is_initialized()? {
//!     ks.create(token.stub())?; // `token add` on a fresh keystore
//! }
//! let cred = Credential {
//!     name: "upbit-main".into(),
//!     exchange: Exchange::Upbit,
//!     api_key: SecretString::new("access key".into()),
//!     secret: SecretBytes::from_slice(b"secret key"),
//!     passphrase: None,
//! };
//! ks.add_credential(&cred, false)?; // `key add`: no touch
//! // `unlock`: the keyslot of the token present, then one touch.
//! let slot = ks.keyslots()?.into_iter().flatten().find(|s| &s.stub == token.stub());
//! let vk = ks.unwrap_vault(&slot.ok_or("this token is not enrolled")?, &mut token)?;
//! for info in ks.list_credentials()? {
//!     match info {
//!         Ok(info) => drop(ks.open_credential(&vk, &info.name)?), // into the session
//!         Err(e) => eprintln!("skipped: {e}"), // serve what we can
//!     }
//! }
//! drop(vk); // zeroized: the session keeps only the credentials
//! # Ok(()) }
//! ```
//!
//! Robustness: every write is atomic (see `files::write_atomic`); any changed, missing or
//! extra byte in a file is a [`KeystoreError`] naming that file, caught by its checksum on
//! every read and by the AEAD tag at unlock. Listings return one `Result` per file, so one
//! damaged credential does not hide the others.

mod error;
mod files;
mod format;
mod seal;
pub mod slot;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fido2;
#[cfg(test)]
mod tests_tamper;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use p256::PublicKey;

pub use error::KeystoreError;
pub use files::FORMAT_VERSION;
pub use seal::VaultKey;

use crate::credential::{Credential, Exchange, check_name};
use crate::token::{Token, TokenError, TokenStub};
use files::{Overwrite, decode, encode, ensure_private_dir, list_json, private_dir_exists};
use files::{read_private, remove_private, write_atomic};
use format::{CredentialFile, KeyslotFile, VaultFile, credential_aad};
use seal::INFO_CREDENTIAL;

const VAULT_FILE: &str = "vault.json";
const KEYSLOTS: &str = "keyslots";
const CREDENTIALS: &str = "credentials";

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

    fn vault_path(&self) -> PathBuf {
        self.dir.join(VAULT_FILE)
    }

    fn keyslot_path(&self, token_id: &str) -> Result<PathBuf, KeystoreError> {
        check_name(token_id).map_err(KeystoreError::InvalidName)?;
        Ok(self.dir.join(KEYSLOTS).join(format!("{token_id}.json")))
    }

    fn credential_path(&self, name: &str) -> Result<PathBuf, KeystoreError> {
        check_name(name).map_err(KeystoreError::InvalidName)?;
        Ok(self.dir.join(CREDENTIALS).join(format!("{name}.json")))
    }

    /// Has a token been enrolled here? Errs if the folder is open to others, or if
    /// vault.json is gone while keyslots or credentials remain.
    pub fn is_initialized(&self) -> Result<bool, KeystoreError> {
        if !private_dir_exists(&self.dir)? {
            return Ok(false);
        }
        let vault = self.vault_path();
        let exists = vault
            .try_exists()
            .map_err(|e| KeystoreError::io("inspect", &vault, e))?;
        if exists {
            return Ok(true);
        }
        for sub in [KEYSLOTS, CREDENTIALS] {
            let dir = self.dir.join(sub);
            if private_dir_exists(&dir)? && !list_json(&dir)?.is_empty() {
                return Err(KeystoreError::damaged(
                    vault,
                    format!("it is missing, but {} still has files", dir.display()),
                ));
            }
        }
        Ok(false)
    }

    /// The vault public key, from vault.json.
    fn vault_key(&self) -> Result<PublicKey, KeystoreError> {
        let path = self.vault_path();
        match read_private(&path)? {
            Some(bytes) => decode::<VaultFile>(&path, &bytes)?.public_key(&path),
            None => match self.is_initialized()? {
                // Raced with a create, or the folder is unreadable: name the file either way.
                true => Err(KeystoreError::damaged(path, "it could not be read")),
                false => Err(KeystoreError::NotInitialized {
                    dir: self.dir.clone(),
                }),
            },
        }
    }

    /// First token: make the vault key pair, write this token's keyslot, then vault.json.
    /// For tokens sealed to a public key (PIV, soft); see [`Keystore::create_with`].
    pub fn create(&self, stub: &TokenStub) -> Result<(), KeystoreError> {
        self.create_inner(stub, None)
    }

    fn create_inner(
        &self,
        stub: &TokenStub,
        token: Option<&mut dyn Token>,
    ) -> Result<(), KeystoreError> {
        if self.is_initialized()? {
            return Err(KeystoreError::AlreadyInitialized {
                dir: self.dir.clone(),
            });
        }
        for dir in [
            self.dir.clone(),
            self.dir.join(KEYSLOTS),
            self.dir.join(CREDENTIALS),
        ] {
            ensure_private_dir(&dir)?;
        }
        let vk = VaultKey::generate()?;
        let slot = self.write_keyslot(&vk, stub, token, false)?;
        // vault.json last: it is what makes the keystore exist. If it was not written, take
        // the keyslot back so a retry starts clean (but never once vault.json is in place,
        // e.g. when only the final folder fsync failed: VK would be lost).
        let path = self.vault_path();
        let written = encode(&path, VaultFile::new(&vk.public_key())).and_then(|bytes| {
            let refuse = Overwrite::Refuse {
                what: "vault",
                name: VAULT_FILE,
            };
            write_atomic(&path, &bytes, refuse)
        });
        if written.is_err() && !path.exists() {
            let _ = remove_private(&slot);
        }
        written
    }

    /// Enroll a further token. `vk` comes from [`Keystore::unwrap_vault`] with a token
    /// already enrolled. For tokens sealed to a public key; see [`Keystore::add_keyslot_with`].
    pub fn add_keyslot(&self, vk: &VaultKey, stub: &TokenStub) -> Result<(), KeystoreError> {
        self.add_keyslot_inner(vk, stub, None)
    }

    fn add_keyslot_inner(
        &self,
        vk: &VaultKey,
        stub: &TokenStub,
        token: Option<&mut dyn Token>,
    ) -> Result<(), KeystoreError> {
        let vault = self.vault_key()?;
        if vk.public_key() != vault {
            return Err(KeystoreError::VaultMismatch {
                from: "given".into(),
                vault: self.vault_path(),
            });
        }
        ensure_private_dir(&self.dir.join(KEYSLOTS))?;
        self.write_keyslot(vk, stub, token, false).map(drop)
    }

    /// Seal VK for `stub` (see [`slot`]); refuses to overwrite an existing keyslot unless
    /// `replace`.
    fn write_keyslot(
        &self,
        vk: &VaultKey,
        stub: &TokenStub,
        token: Option<&mut dyn Token>,
        replace: bool,
    ) -> Result<PathBuf, KeystoreError> {
        let id = stub.id();
        let path = self.keyslot_path(&id)?;
        let file = slot::seal_vk(vk, stub, token)?;
        let bytes = encode(&path, file)?;
        let overwrite = match replace {
            true => Overwrite::Replace,
            false => Overwrite::Refuse {
                what: "keyslot",
                name: &id,
            },
        };
        write_atomic(&path, &bytes, overwrite)?;
        Ok(path)
    }

    /// Every keyslot, one result per file (a damaged one does not hide the others).
    pub fn keyslots(&self) -> Result<Vec<Result<Keyslot, KeystoreError>>, KeystoreError> {
        let dir = self.existing_subdir(KEYSLOTS)?;
        Ok(list_json(&dir)?
            .into_iter()
            .map(|entry| entry.and_then(|(path, stem)| load_keyslot(path, &stem)))
            .collect())
    }

    /// Remove a token's keyslot (`token_id` as [`TokenStub::id`] gives it). Refuses the last
    /// working keyslot.
    pub fn remove_keyslot(&self, token_id: &str) -> Result<(), KeystoreError> {
        let path = self.keyslot_path(token_id)?;
        let slots = self.keyslots()?;
        if !path.exists() {
            return Err(KeystoreError::NotFound {
                what: "keyslot for token",
                name: token_id.into(),
                path,
            });
        }
        let others = slots.iter().flatten().filter(|s| s.path != path).count();
        if others == 0 {
            return Err(KeystoreError::LastKeyslot {
                token: token_id.into(),
            });
        }
        remove_private(&path)
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
        let vault = self.vault_key()?;
        slot::check(&slot.file, &slot.path)?;
        let plain = slot::open_vk(&slot.file, &slot.path, token)?.ok_or_else(|| {
            KeystoreError::KeyslotLocked {
                path: slot.path.clone(),
                token: slot.stub.describe(),
            }
        })?;
        let vk = VaultKey::from_bytes(&plain)
            .ok_or_else(|| KeystoreError::damaged(&slot.path, "it holds no valid vault key"))?;
        if vk.public_key() != vault {
            return Err(KeystoreError::VaultMismatch {
                from: format!("in {}", slot.path.display()),
                vault: self.vault_path(),
            });
        }
        Ok(vk)
    }

    /// Seal a credential to the vault public key (no token needed). Refuses an existing
    /// name unless `replace`.
    pub fn add_credential(&self, cred: &Credential, replace: bool) -> Result<(), KeystoreError> {
        let path = self.credential_path(&cred.name)?;
        let vault = self.vault_key()?;
        ensure_private_dir(&self.dir.join(CREDENTIALS))?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let plain = seal::encode_secrets(&cred.api_key, &cred.secret, cred.passphrase.as_ref());
        let sealed = seal::seal(&vault, INFO_CREDENTIAL, &plain, |epk| {
            credential_aad(&cred.name, cred.exchange, created, &hex::encode(epk))
        })?;
        let file = CredentialFile {
            format: <CredentialFile as files::Envelope>::FORMAT.into(),
            version: FORMAT_VERSION,
            name: cred.name.clone(),
            exchange: cred.exchange,
            created,
            ephemeral_key: hex::encode(&sealed.ephemeral_key),
            nonce: hex::encode(sealed.nonce),
            ciphertext: hex::encode(&sealed.ciphertext),
            checksum: String::new(),
        };
        let bytes = encode(&path, file)?;
        let overwrite = match replace {
            true => Overwrite::Replace,
            false => Overwrite::Refuse {
                what: "credential",
                name: &cred.name,
            },
        };
        write_atomic(&path, &bytes, overwrite)
    }

    /// Every credential's metadata, one result per file.
    pub fn list_credentials(
        &self,
    ) -> Result<Vec<Result<CredentialInfo, KeystoreError>>, KeystoreError> {
        let dir = self.existing_subdir(CREDENTIALS)?;
        Ok(list_json(&dir)?
            .into_iter()
            .map(|entry| {
                let (path, stem) = entry?;
                let file = load_credential(&path, &stem)?;
                Ok(CredentialInfo {
                    name: file.name,
                    exchange: file.exchange,
                    created: file.created,
                    path,
                })
            })
            .collect())
    }

    pub fn remove_credential(&self, name: &str) -> Result<(), KeystoreError> {
        let path = self.credential_path(name)?;
        self.existing_subdir(CREDENTIALS)?;
        if !path.exists() {
            return Err(not_found(name, path));
        }
        remove_private(&path)
    }

    /// Decrypt one credential with VK.
    pub fn open_credential(&self, vk: &VaultKey, name: &str) -> Result<Credential, KeystoreError> {
        let path = self.credential_path(name)?;
        self.existing_subdir(CREDENTIALS)?;
        let file = load_credential(&path, name)?;
        let b = file.boxed(&path)?;
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
        .ok_or_else(|| KeystoreError::CredentialLocked { path: path.clone() })?;
        let (api_key, secret, passphrase) = seal::decode_secrets(&plain).ok_or_else(|| {
            KeystoreError::damaged(&path, "it decrypted, but its contents are malformed")
        })?;
        Ok(Credential {
            name: file.name,
            exchange: file.exchange,
            api_key,
            secret,
            passphrase,
        })
    }

    /// A subfolder of an initialized keystore; its absence is damage, not emptiness.
    fn existing_subdir(&self, sub: &str) -> Result<PathBuf, KeystoreError> {
        if !self.is_initialized()? {
            return Err(KeystoreError::NotInitialized {
                dir: self.dir.clone(),
            });
        }
        let dir = self.dir.join(sub);
        if !private_dir_exists(&dir)? {
            return Err(KeystoreError::damaged(
                dir,
                "the folder is missing (if it was empty, `mkdir -m 700` it)",
            ));
        }
        Ok(dir)
    }
}

fn load_keyslot(path: PathBuf, stem: &str) -> Result<Keyslot, KeystoreError> {
    let bytes = read_private(&path)?.ok_or_else(|| KeystoreError::NotFound {
        what: "keyslot for token",
        name: stem.into(),
        path: path.clone(),
    })?;
    let file: KeyslotFile = decode(&path, &bytes)?;
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
        file,
    })
}

fn load_credential(path: &Path, stem: &str) -> Result<CredentialFile, KeystoreError> {
    let bytes = read_private(path)?.ok_or_else(|| not_found(stem, path.to_owned()))?;
    let file: CredentialFile = decode(path, &bytes)?;
    if file.name != stem {
        return Err(KeystoreError::damaged(
            path,
            format!("it holds credential {:?}, but is named {stem:?}", file.name),
        ));
    }
    file.boxed(path)?;
    Ok(file)
}

fn not_found(name: &str, path: PathBuf) -> KeystoreError {
    KeystoreError::NotFound {
        what: "credential",
        name: name.into(),
        path,
    }
}
