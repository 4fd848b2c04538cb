//! Credential changes made without VK: `key add` (also `--replace`) and `key remove`.
//!
//! They cannot update the authenticated manifest, so each is recorded in the [`Ledger`] under
//! the writer lock, right after the file changed; if the record cannot be written the change
//! is undone, so no credential changes off the record. A crash between the two leaves a newer
//! file without a record, which the next check accepts with a warning (see `manifest::fold`).

use std::path::Path;

use super::files::{Overwrite, encode, read_private, remove_private, write_atomic};
use super::format::VaultFile;
use super::format::{CredentialFile, credential_aad};
use super::layout::{Live, key_tag, sha256_hex, vault_tag};
use super::ledger::{Anchor, Evidence, KeyAction, KeyChange, Ledger, LedgerEntry};
use super::manifest::{CredRecord, Folded, fold};
use super::seal::{self, INFO_CREDENTIAL, compressed};
use super::vault_ops::now_secs;
use super::{
    CREDENTIALS, Keystore, KeystoreError, VAULT_FILE, credential_from, credential_path,
    load_credential, not_found,
};
use crate::credential::Credential;

/// What `add_credential` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The creation time sealed into the file.
    pub created: u64,
    /// An existing credential was replaced.
    pub replaced: bool,
    /// The vault key it was sealed to, as a short tag (`vault-<tag>` is the live folder).
    pub vault: String,
    pub warnings: Vec<String>,
}

/// `vault.json` (`file`, at `path`, vault `now`) is not `pin`, the vault the running agent verified at its
/// last unlock. A vault that descends from the pin by its signed lineage was made by a rotation
/// since (only a holder of the pinned key signs its successor): the agent has yet to check it,
/// and an unlock does. Any other was replaced. A lineage that cannot be read is taken as no
/// descent: the refusal stands either way, only its advice differs.
fn not_pinned_by_agent(
    file: &VaultFile,
    path: std::path::PathBuf,
    now: String,
    pin: &str,
) -> KeystoreError {
    match key_tag(pin) {
        Some(pinned)
            if super::vault_ops::is_or_descends_from(file, &path, &pinned).unwrap_or(false) =>
        {
            KeystoreError::VaultNotYetChecked {
                vault: path,
                now,
                pinned,
            }
        }
        _ => KeystoreError::VaultNotPinned {
            vault: path,
            pinned_by: "the running agent, which verified it at its last unlock".into(),
        },
    }
}

/// A credential file sealed to `vault`, as written to `path`.
pub(crate) fn credential_bytes(
    path: &std::path::Path,
    vault: &p256::PublicKey,
    cred: &Credential,
    created: u64,
) -> Result<Vec<u8>, KeystoreError> {
    let plain = seal::encode_secrets(&cred.api_key, &cred.secret, cred.passphrase.as_ref());
    let sealed = seal::seal(vault, INFO_CREDENTIAL, &plain, |epk| {
        credential_aad(&cred.name, cred.exchange, created, &hex::encode(epk))
    })?;
    let file = CredentialFile {
        format: <CredentialFile as super::files::Envelope>::FORMAT.into(),
        version: super::FORMAT_VERSION,
        name: cred.name.clone(),
        exchange: cred.exchange,
        created,
        ephemeral_key: hex::encode(&sealed.ephemeral_key),
        nonce: hex::encode(sealed.nonce),
        ciphertext: hex::encode(&sealed.ciphertext),
        checksum: String::new(),
    };
    encode(path, file)
}

impl Keystore {
    /// Seal a credential to the vault public key (no token needed) and record it. Refuses an
    /// existing name unless `replace`. Refuses a vault.json whose key is not the one the
    /// manifest pins, or not `pinned` (the key a running agent verified at its last unlock).
    pub fn add_credential(
        &self,
        cred: &Credential,
        replace: bool,
        pinned: Option<&str>,
        ledger: &mut dyn Ledger,
    ) -> Result<Added, KeystoreError> {
        let lock = self.lock()?;
        let live = self.live()?;
        let path = credential_path(&live.dir, &cred.name)?;
        let vault_path = live.dir.join(VAULT_FILE);
        // Read once: what is sealed to is what the checks below judged (the manifest's key,
        // the agent's pin, the lineage), never a file swapped in between two reads.
        let vault_file = self.vault_file_in(&live.dir)?;
        let vault = vault_file.public_key(&vault_path)?;
        crate::disk::interleave("key add: vault.json read, before the record");
        let vault_hex = hex::encode(compressed(&vault));
        let mut warnings = Vec::new();
        match &live.manifest {
            Some(m) if m.vault_key != vault_hex => {
                return Err(KeystoreError::VaultNotPinned {
                    vault: vault_path,
                    pinned_by: "the keystore's manifest".into(),
                });
            }
            Some(_) => {}
            None => warnings.push(
                "this keystore has no manifest yet (it was made by an older tapsign), so the vault key could not be checked; the next unlock writes one".into(),
            ),
        }
        if let Some(pin) = pinned.filter(|p| *p != vault_hex) {
            return Err(not_pinned_by_agent(
                &vault_file,
                vault_path,
                vault_tag(&vault),
                pin,
            ));
        }
        // The audit log's record of the manifests since the one on disk: a keystore put back
        // to an older state (its manifest, vault.json and keyslots restored together) is
        // refused here too, before anything is sealed to a vault key that a token removed since
        // may open. The record is read from the manifest's anchor, which a forger of the
        // manifest also chooses: this catches a restored copy; a forgery, the agent's pin.
        let evidence = match &live.manifest {
            Some(m) => match &m.audit {
                Some(a) => ledger.since(a).above(m.generation),
                None => ledger
                    .unanchored("the manifest was written while the audit log could not be read"),
            },
            None => ledger.since(&Anchor::genesis()),
        };
        // Read short of the running agent's head (the log cut in place meanwhile): the record
        // read is older than the agent's, and nothing is sealed on it, pin or not (red-team
        // round 26).
        if let Some(why) = &evidence.cut {
            return Err(KeystoreError::LogCut {
                what: "adding a key".into(),
                why: why.clone(),
            });
        }
        self.not_anothers_log(&vault_file, &vault_path, live.manifest.as_ref(), &evidence)?;
        self.against_log(live.manifest.as_ref(), &evidence)?;
        // A vault of someone else's making (vault.json, keyslots wrapped to the trader's tokens
        // and a manifest it verifies, all replaced together) is refused before anything is
        // sealed to it: it descends from none of the vaults the record names.
        self.chained(&vault_file, &vault_path, &evidence)?;
        warnings.extend(super::vault_ops::unlinked_warning(
            &evidence.unlinked,
            &evidence.checks,
        ));
        // A gap in the record (the anchor's line changed, the log cut or gone) hides any
        // rotation after the manifest on disk, unless its generation is still in the file.
        // Sealing then waits for an unlock's check, or the running agent's pin from one.
        if let (Some(_), Some(why), None) = (&live.manifest, &evidence.gap, pinned) {
            return Err(KeystoreError::Unvouched {
                path: self.manifest_path(),
                why: why.clone(),
            });
        }
        if let Some(tag) = evidence.latest_vault.as_ref()
            && !super::vault_ops::is_or_descends_from(&vault_file, &vault_path, tag)?
        {
            return Err(KeystoreError::VaultNotPinned {
                vault: vault_path,
                pinned_by: format!(
                    "the audit log, whose last record of the keystore names vault-{tag}"
                ),
            });
        }
        self.existing_subdir(&live.dir, CREDENTIALS)?;
        let old = read_private(&path)?;
        if old.is_some() && !replace {
            return Err(KeystoreError::Exists {
                what: "credential",
                name: cred.name.clone(),
                path,
            });
        }
        if old.is_none() {
            self.room_for_one_more(&live.dir.join(CREDENTIALS))?;
        }
        let created = next_created(&live, &cred.name, old.as_deref(), &path, &evidence)?;
        let bytes = credential_bytes(&path, &vault, cred, created)?;
        let overwrite = match replace {
            true => Overwrite::Replace,
            false => Overwrite::Refuse {
                what: "credential",
                name: &cred.name,
            },
        };
        write_atomic(&path, &bytes, overwrite)?;
        let change = KeyChange {
            action: if old.is_some() {
                KeyAction::Replace
            } else {
                KeyAction::Add
            },
            name: cred.name.clone(),
            created,
            sha256: sha256_hex(&bytes),
        };
        if let Err(reason) = ledger.record(&LedgerEntry::Key(change)) {
            // Off the record, the change does not stand: put the old file back. An undo that
            // fails too says so, not as a bare I/O error that reads as "nothing was written"
            // (red-team round 18).
            let undone = match &old {
                Some(before) => write_atomic(&path, before, Overwrite::Replace),
                None => remove_private(&path),
            };
            return Err(match undone {
                Ok(()) => KeystoreError::NotRecorded {
                    what: format!("credential {:?}", cred.name),
                    reason,
                },
                Err(u) => KeystoreError::CredentialNotUndone {
                    name: cred.name.clone(),
                    reason,
                    undo: u.to_string(),
                },
            });
        }
        drop(lock);
        Ok(Added {
            created,
            replaced: old.is_some(),
            vault: vault_tag(&vault),
            warnings,
        })
    }

    /// Refuse a new name where the keystore holds [`super::MAX_CREDENTIALS`] credential files
    /// already (`dir`, its credentials folder).
    fn room_for_one_more(&self, dir: &Path) -> Result<(), KeystoreError> {
        let io = |e| KeystoreError::io("list", dir, e);
        let mut held = 0;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            held += usize::from(name.ends_with(".json") && !name.starts_with('.'));
        }
        match held >= super::MAX_CREDENTIALS {
            true => Err(KeystoreError::TooManyCredentials {
                dir: dir.to_owned(),
                held,
                max: super::MAX_CREDENTIALS,
            }),
            false => Ok(()),
        }
    }

    /// Delete a credential's file and record it. A name the record holds as present (the
    /// manifest, and the changes since it) whose file is missing has its removal recorded all
    /// the same, naming the recorded version: else a file hidden for the moment (a dot name,
    /// which listings skip) came back after the trader's `key remove` and opened at the next
    /// unlock, nothing on record refusing it (red-team round 20).
    pub fn remove_credential(
        &self,
        name: &str,
        ledger: &mut dyn Ledger,
    ) -> Result<Removed, KeystoreError> {
        let lock = self.lock()?;
        let live = self.live()?;
        let path = credential_path(&live.dir, name)?;
        self.existing_subdir(&live.dir, CREDENTIALS)?;
        let Some(bytes) = read_private(&path)? else {
            let Some(recorded) = recorded_present(&live, name, ledger) else {
                return Err(not_found(name, path));
            };
            record_removal(ledger, name, recorded.created, recorded.sha256)?;
            drop(lock);
            return Ok(Removed { file_missing: true });
        };
        // A damaged file can be removed too; its creation time then comes from the record.
        // The line names the newest version the record knows of, not only the file's
        // ([`newest_known`]).
        let created = match load_credential(&path, name) {
            Ok((file, _)) => file.created,
            Err(_) => 0,
        }
        .max(newest_known(&live, name, ledger));
        // The line first, then the file: a removal stopped between the two (a kill, a power
        // cut) leaves the file with its removal on record, which the next unlock refuses and
        // `key remove` finishes; the other order left the file gone and nothing on record, so
        // the retry found nothing to remove and a copy put back opened unrefused.
        record_removal(ledger, name, created, sha256_hex(&bytes))?;
        crate::disk::crash_point("key remove: recorded, before the file goes");
        remove_private(&path)?;
        drop(lock);
        Ok(Removed {
            file_missing: false,
        })
    }
}

/// What `remove_credential` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// The file was not there (moved aside?): only the removal was recorded, which refuses a
    /// copy put back.
    pub file_missing: bool,
}

/// The `remove` line of credential `name`, version `created`, file `sha256`.
fn record_removal(
    ledger: &mut dyn Ledger,
    name: &str,
    created: u64,
    sha256: String,
) -> Result<(), KeystoreError> {
    let change = KeyChange {
        action: KeyAction::Remove,
        name: name.to_owned(),
        created,
        sha256,
    };
    ledger
        .record(&LedgerEntry::Key(change))
        .map_err(|reason| KeystoreError::NotRecorded {
            what: format!("credential {name:?}"),
            reason,
        })
}

/// The version of `name` the record holds as present, if it does: the manifest's record
/// with the changes since its anchor folded on (`manifest::fold`, as the next unlock reads
/// them). The manifest is not verified here (no vault key): a forged one could only have a
/// removal recorded, which anyone who can write the log can append anyway, and the unlock
/// folds a removal as the later of its version and the one expected, so naming an older one
/// hides nothing.
fn recorded_present(live: &Live, name: &str, ledger: &mut dyn Ledger) -> Option<CredRecord> {
    folded_record(live.manifest.as_ref()?, ledger)
        .credentials
        .into_iter()
        .find(|c| c.name == name)
}

/// The newest version of `name` the record knows of, present or removed (0: none), read as
/// [`recorded_present`] reads it. A removal names at least that: over an older copy put in
/// place of the file, the line named a version behind the replacement a running agent saw
/// recorded, and the agent refused every unlock as if the log had been edited (red-team round
/// 20). Both the check and the agent now fold a removal as of the later version anyway; the
/// line says what the keystore knew.
fn newest_known(live: &Live, name: &str, ledger: &mut dyn Ledger) -> u64 {
    let Some(m) = live.manifest.as_ref() else {
        return 0;
    };
    let folded = folded_record(m, ledger);
    let present = folded.credentials.iter().filter(|c| c.name == name);
    let removed = folded.removed.iter().filter(|r| r.name == name);
    (present.map(|c| c.created))
        .chain(removed.map(|r| r.created))
        .max()
        .unwrap_or(0)
}

/// The manifest's records with the changes since its anchor folded on, as the next unlock
/// reads them (no files observed).
fn folded_record(m: &super::manifest::ManifestFile, ledger: &mut dyn Ledger) -> Folded {
    let evidence = match &m.audit {
        Some(a) => ledger.since(a).above(m.generation),
        None => ledger.unanchored("the manifest was written while the audit log could not be read"),
    };
    fold(m, &[], &[], &evidence)
}

/// The `created` to seal a new version of `name` with: now, but always later than every version
/// of the name the keystore knows of (the file replaced, the manifest's record, the changes
/// recorded since), and never older than the manifest. The check at unlock accepts a version
/// only if it is later than the one expected (`manifest::fold`), so two versions made within
/// the same second, or under a clock set back, would otherwise refuse the newer one. After a
/// version at `u64::MAX` (a line anyone can append, or a file sealed by hand) none is later:
/// refused, rather than stored for the unlock to refuse as an old copy.
fn next_created(
    live: &Live,
    name: &str,
    old: Option<&[u8]>,
    path: &Path,
    evidence: &Evidence,
) -> Result<u64, KeystoreError> {
    let replaced = old.and_then(|bytes| credential_from(path, name, bytes).ok());
    let manifest = live.manifest.as_ref();
    let recorded = manifest.into_iter().flat_map(|m| {
        let present = m.credentials.iter().filter(|c| c.name == name);
        let removed = m.removed.iter().filter(|r| r.name == name);
        present.map(|c| c.created).chain(removed.map(|r| r.created))
    });
    let changed = evidence.changes.iter().filter(|c| c.name == name);
    let floor = (replaced.map(|(file, _)| file.created).into_iter())
        .chain(recorded)
        .chain(changed.map(|c| c.created))
        .max();
    let now = now_secs().max(manifest.map_or(0, |m| m.written));
    match floor {
        Some(f) if f >= now => f.checked_add(1).ok_or(KeystoreError::NoLaterVersion {
            name: name.to_owned(),
        }),
        _ => Ok(now),
    }
}
