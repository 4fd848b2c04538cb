//! Rotation: a new vault key pair, every credential re-sealed to it, a new keyslot for each
//! token kept, committed in one step (`layout`). `token remove` is a rotation without that
//! token's keyslot: the removed token, with any old copy of its keyslot, then opens only the
//! old vault key, which opens none of the current files.
//!
//! Kinds that wrap with a public key (PIV, soft) need nothing but their stub. A kind whose
//! wrap needs the token itself (FIDO2 hmac-secret: no public key, a touch per wrap) is asked
//! for through `present` before the writer lock is taken, so no lock is held across a touch.

use super::changes::credential_bytes;
use super::files::encode;
use super::format::VaultFile;
use super::layout::{Stage, sha256_hex, vault_tag};
use super::ledger::{Anchor, Ledger};
use super::manifest::{CredRecord, ManifestFile, Refusal, SlotRecord};
use super::seal::VaultKey;
use super::vault_ops::{Prepared, Reading, keyslot_bytes, next_generation, now_secs};
use super::{
    CREDENTIALS, KEYSLOTS, Keyslot, Keystore, KeystoreError, VAULT_FILE, credential_path,
    load_credential, open_file,
};
use crate::token::{Token, TokenStub};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The generation of the new manifest.
    pub generation: u64,
    /// The new vault key's tag (the live folder is `vault-<tag>`).
    pub vault: String,
    /// The token whose keyslot was left out, by id.
    pub removed: Option<String>,
    /// The tokens that received the new vault key, by id.
    pub keyslots: Vec<String>,
    /// The credentials re-sealed to the new vault key.
    pub carried: Vec<String>,
    /// Credentials not carried over (refused by the rollback check, or not decryptable).
    pub dropped: Vec<Refusal>,
    pub warnings: Vec<String>,
    /// What the trader is told of the credential changes since the keystore's last check, as
    /// an unlock's check tells them (`super::notes`): the new manifest folds them in, and the
    /// next check has nothing left to say of them (red-team round 21: a `key add --replace`
    /// made before a rotation, a `token remove` or a rebuild was never mentioned).
    pub changes: super::notes::ChangeNotes,
}

/// What a rotation does with credential files the check refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropping {
    /// Stop, changing nothing ([`KeystoreError::RefusedNotDropped`]).
    None,
    /// Leave them out of the new vault (they go with the old folder).
    Refused,
}

/// Among the keyslots a rotation keeps (all but `remove`), the tokens that must be present,
/// and touched, to receive the new vault key: kinds without a public key to wrap to.
pub fn present_tokens_needed(slots: &[Keyslot], remove: Option<&str>) -> Vec<TokenStub> {
    slots
        .iter()
        .filter(|s| Some(s.stub.id().as_str()) != remove && s.recorded)
        .filter(|s| !super::slot::seals_offline(&s.stub))
        .map(|s| s.stub.clone())
        .collect()
}

/// Hands out the tokens [`present_tokens_needed`] names (asking the human to insert each).
pub type Present<'a> = dyn FnMut(&TokenStub) -> Result<Box<dyn Token>, KeystoreError> + 'a;

impl Keystore {
    /// Replace the vault key. `vk` is the current one (from a touch on a token that stays);
    /// `remove` leaves that token's keyslot out. Credentials that fail the rollback check,
    /// or do not decrypt, stop it ([`KeystoreError::RefusedNotDropped`]) unless `drop`
    /// says to leave them out (they could never open again): `dropped` says which and why.
    pub fn rotate(
        &self,
        vk: &VaultKey,
        remove: Option<&str>,
        present: &mut Present<'_>,
        ledger: &mut dyn Ledger,
        drop: Dropping,
    ) -> Result<Rotated, KeystoreError> {
        self.rotate_in(None, vk, remove, present, ledger, drop)
    }

    /// Before any touch, the tokens but `remove` the manifest records whose keyslot file is
    /// missing: for a rotation, [`KeystoreError::KeyslotMissing`]; for a removal, which revokes
    /// them too, their ids ([`left_out`]). The manifest is read unverified here; the rotation
    /// decides again with the one verified under its lock.
    pub fn keyslots_left_out(&self, remove: Option<&str>) -> Result<Vec<String>, KeystoreError> {
        let live = self.live_dir()?;
        // Missing, or there but not readable as a keyslot: either is left out (a review of
        // round 20).
        let readable: Vec<String> = self
            .keyslots()?
            .into_iter()
            .flatten()
            .map(|s| s.stub.id())
            .collect();
        if readable.is_empty() {
            // No token opens the keystore: the rotation's own refusal says what to do.
            return Ok(Vec::new());
        }
        let mut missing = Vec::new();
        for id in self.recorded_keyslot_ids()? {
            if Some(id.as_str()) != remove && !readable.contains(&id) {
                missing.push(id);
            }
        }
        left_out(remove, missing, &live)
    }

    /// The keyslots a rebuild would touch: those of the folder [`Keystore::rebuild_manifest`]
    /// works on, when `manifest.json` is damaged or does not verify.
    pub fn keyslots_for_rebuild(&self) -> Result<Vec<Keyslot>, KeystoreError> {
        let live = self.live_for_rebuild()?;
        let dir = self.existing_subdir(&live.dir, KEYSLOTS)?;
        Ok(super::files::list_json(&dir)?
            .into_iter()
            .flatten()
            .filter_map(|(path, stem)| super::load_keyslot(path, &stem).ok())
            .collect())
    }

    /// A rotation for a keystore whose `manifest.json` is lost, damaged or does not verify:
    /// every credential that opens with `vk` is carried over as it is now, unchecked (a
    /// rollback among them goes unnoticed), and a new manifest starts afresh. Only `touched`,
    /// the token whose touch gave `vk`, receives the new vault key: with no manifest to say
    /// which keyslots are the trader's, one planted beside them (sealed to anyone's public
    /// key, or a removed token's put back) would receive it too. The others are named, to be
    /// enrolled again.
    ///
    /// The files are checked against the ledger's record of credential changes, and a copy it
    /// shows put back stops the rebuild; where the record cannot be read at all, the rebuild
    /// is refused unless `unchecked` (the log lost for good, the files trusted).
    pub fn rebuild_manifest(
        &self,
        vk: &VaultKey,
        touched: &TokenStub,
        present: &mut Present<'_>,
        ledger: &mut dyn Ledger,
        unchecked: bool,
    ) -> Result<Rotated, KeystoreError> {
        let reading = match unchecked {
            false => Reading::Rebuild,
            true => Reading::RebuildUnchecked,
        };
        // A rebuild stops at a copy the record shows put back (`RebuildPutBack`); what is left
        // to refuse are files that do not decrypt, which the rebuild has always left out.
        self.rotate_in(
            Some((touched, reading)),
            vk,
            None,
            present,
            ledger,
            Dropping::Refused,
        )
    }

    /// `rebuild`: the token touched for a rebuild, the only one to receive the new key, and
    /// how the files are read (unchecked or not where the ledger cannot be read).
    fn rotate_in(
        &self,
        rebuild: Option<(&TokenStub, Reading)>,
        vk: &VaultKey,
        remove: Option<&str>,
        present: &mut Present<'_>,
        ledger: &mut dyn Ledger,
        dropping: Dropping,
    ) -> Result<Rotated, KeystoreError> {
        // A rotation off the record does not hold: a copy of the keystore from before it, put
        // back, opens with the token it removed, and nothing refuses it (red-team round 17: a
        // `chmod 400` on the log during `token remove` left it reported done). The log must open
        // for appending now, before the touches this rotation asks for, and be the file the
        // command checked before its first one; the record goes to that file, or the commit
        // is undone (`commit_recorded`).
        if let Err(reason) = ledger.ready() {
            return Err(KeystoreError::CannotRecord {
                what: what_rotates(remove, rebuild.is_some()),
                reason,
            });
        }
        let slots: Vec<Keyslot> = match rebuild {
            Some(_) => self.keyslots_for_rebuild()?,
            None => self.keyslots()?.into_iter().flatten().collect(),
        };
        let mut warnings = Vec::new();
        // The tokens a rebuild leaves without the new vault key: said once the log is read.
        let mut left_behind: Vec<TokenStub> = Vec::new();
        // A token the manifest records is removed even when its keyslot file is missing: the
        // new vault key is wrapped only for the tokens that stay, so the removed one's file is
        // not needed. Refused as unknown, a keyslot hidden for the moment (a dot name, which
        // listings skip) came back afterwards, recorded, and opened everything again (red-team
        // round 20). The manifest read here is not verified yet: under the lock, the verified
        // one must record the id (`removed_off_disk`), and nothing is added either way.
        let off_disk = match remove {
            Some(id) if !slots.iter().any(|s| s.stub.id() == id) => {
                if rebuild.is_some() || !self.recorded_keyslot_ids()?.iter().any(|r| r == id) {
                    return Err(KeystoreError::NotFound {
                        what: "keyslot for token",
                        name: id.into(),
                        path: super::keyslot_path(&self.live_dir()?, id)?,
                    });
                }
                Some(id)
            }
            _ => None,
        };
        let keep: Vec<&Keyslot> = slots
            .iter()
            .filter(|s| Some(s.stub.id().as_str()) != remove)
            .filter(|s| {
                if !s.recorded {
                    warnings.push(format!(
                        "keyslot {} is not the one the manifest records, so it is not carried over",
                        s.stub.id()
                    ));
                }
                if let Some((touched, _)) = rebuild
                    && s.stub != *touched
                {
                    left_behind.push(s.stub.clone());
                    return false;
                }
                s.recorded
            })
            .collect();
        if keep.is_empty() {
            return Err(KeystoreError::LastKeyslot {
                token: remove.unwrap_or("?").into(),
            });
        }
        let new_vk = VaultKey::generate()?;
        // Every new keyslot before the lock: some kinds need a touch to receive the key.
        let mut wrapped = Vec::new();
        for s in &keep {
            let id = s.stub.id();
            let rel = format!("{KEYSLOTS}/{id}.json");
            let mut token = match super::slot::seals_offline(&s.stub) {
                true => None,
                false => Some(present(&s.stub)?),
            };
            let bytes = keyslot_bytes(
                std::path::Path::new(&rel),
                &new_vk,
                &s.stub,
                token.as_mut().map(|t| &mut **t as &mut dyn Token),
            )?;
            wrapped.push((id, rel, bytes));
        }

        crate::disk::interleave("rotate: keyslots wrapped, before the lock");
        let lock = self.lock()?;
        let mut p = match rebuild {
            Some((_, reading)) => {
                self.prepare_in(self.live_for_rebuild()?, reading, vk, ledger, &lock)?
            }
            None => self.prepare(vk, ledger, &lock)?,
        };
        super::vault_ops::refuse_unread(&p.evidence, what_rotates(remove, rebuild.is_some()))?;
        let changes = match rebuild {
            Some(_) => self.changes_since_manifest(vk, ledger, &p),
            None => p.changes(ledger),
        };
        for stub in &left_behind {
            warnings.push(left_behind_warning(stub, &p.evidence.checks));
        }
        let mut planned: Vec<&str> = slots
            .iter()
            .map(|s| s.path.as_path())
            .filter_map(stem)
            .collect();
        let mut found: Vec<&str> = p.keyslots.iter().map(|s| s.id.as_str()).collect();
        planned.sort_unstable();
        found.sort_unstable();
        if planned != found {
            return Err(KeystoreError::Changed {
                dir: self.dir.clone(),
            });
        }
        if let Some(id) = off_disk {
            removed_off_disk(&p, id, &self.live_dir()?, &mut warnings)?;
        }
        if rebuild.is_none() {
            recorded_left_out(&p, remove, &mut warnings)?;
        }
        // The keyslots wrapped above were read, and judged recorded against a manifest not
        // yet verified, before the lock. Each must be the file found under the lock, and
        // recorded by the manifest verified under it: else a keyslot planted with a forged
        // manifest, the genuine one put back in time, would receive the new vault key.
        for s in &keep {
            let id = s.stub.id();
            let unchanged = p
                .keyslots
                .iter()
                .any(|r| r.id == id && r.sha256 == s.sha256);
            let recorded = p
                .manifest
                .as_ref()
                .is_none_or(|m| m.keyslot(&id).is_some_and(|r| r.sha256 == s.sha256));
            if !unchanged || !recorded {
                return Err(KeystoreError::Swapped {
                    path: s.path.clone(),
                    why: if unchanged {
                        "the keyslot read before the lock is not one the verified manifest records"
                    } else {
                        "the keyslot file is not the one read before the lock"
                    },
                });
            }
        }
        // A file that cannot be read would be neither carried over nor named, and go with the
        // old folder (red-team round 17: one `chmod 644` during a `token remove` lost a
        // credential without a word).
        if !p.damaged.is_empty() {
            return Err(KeystoreError::CredentialsUnreadable {
                dir: p.live.join(CREDENTIALS),
                names: p.damaged.join(", "),
            });
        }
        // A recorded credential whose file is missing is forgotten by the new vault: not the
        // check's advice (a backup, or a rotation), which no longer holds once it is done, since
        // a backup of the file is sealed to the old vault key and will not open (said below).
        let missing = std::mem::take(&mut p.folded.missing);
        warnings.append(&mut p.folded.warnings);
        let dropped: Vec<Refusal> = std::mem::take(&mut p.folded.refused);
        // A refused file goes with the old folder, and a backup of it is sealed to the old
        // vault key: one line appended by hand (a `key_change` naming a later version) made a
        // genuine, current credential refused, and a rotation deleted its only copy while
        // saying it succeeded (red-team round 19). The trader says to drop them.
        if !dropped.is_empty() && dropping == Dropping::None {
            return Err(KeystoreError::RefusedNotDropped {
                dir: p.live.join(CREDENTIALS),
                refused: dropped
                    .iter()
                    .map(|r| format!("{} ({})", r.name, r.verdict))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }

        crate::disk::interleave("rotate: checked under the lock, before the stage");
        // The new vault key, signed by the one it replaces, after the lineage the check judged
        // (read once, under the lock): the lineage every later check of the record follows.
        let new_vault = super::lineage::succeeding(&p.vault, vk, &new_vk.public_key());
        // Its record carries the link from the old vault: the log believes no vault it
        // recorded without one (`ledger::Vaults`).
        let links = super::lineage::links_for(&new_vault, &p.evidence.believed_vaults());
        let stage = self.stage(&lock)?;
        let filled = fill_stage(&stage, &new_vk, new_vault, &wrapped, &p, vk);
        let (slot_records, records) = match filled {
            Ok(r) => r,
            Err(e) => {
                stage.discard();
                return Err(e);
            }
        };
        let generation = next_generation(&p, 0)?;
        // Old files cannot open under the new vault key, so no removal needs remembering.
        let manifest = ManifestFile::new(
            &new_vk,
            generation,
            now_secs(),
            slot_records,
            records,
            vec![],
            ledger.head(),
        )?;
        let reason = match (remove, rebuild) {
            (Some(id), _) => super::ledger::token_removed(id),
            (None, Some(_)) => "rotated: manifest rebuilt from the files as they were".into(),
            (None, None) => "rotated".into(),
        };
        // Recorded before the old folder goes, or undone: off the record, a copy of the
        // keystore from before it put back opens with the token it removed, and nothing
        // refuses it (red-team round 17).
        self.commit_recorded(stage, &manifest, &p.live, &lock, &mut warnings, || {
            self.record_manifest(ledger, (&new_vk, &manifest), links, &reason)
                .map_err(|reason| KeystoreError::NotRecorded {
                    what: match remove {
                        Some(id) => format!("the keystore (removing token {id})"),
                        None => "the keystore (a new vault key)".into(),
                    },
                    reason,
                })
        })?;
        drop(lock);
        self.note_refusals(ledger, &dropped, &mut warnings);
        warnings.extend(missing.iter().map(|name| {
            format!(
                "credential {name:?} was recorded, but its file was missing, so the new vault key does not carry it: a backup of that file was sealed to the old vault key and no longer opens; store the key again with `tapsign key add {name}`"
            )
        }));
        Ok(Rotated {
            generation,
            vault: vault_tag(&new_vk.public_key()),
            removed: remove.map(str::to_owned),
            keyslots: wrapped.into_iter().map(|(id, _, _)| id).collect(),
            carried: manifest
                .credentials
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            dropped,
            warnings,
            changes,
        })
    }

    /// A rebuild's notes: the credential changes since the manifest on disk, where it still
    /// verifies under `vk` (a rebuild the check forced, such as one line appended to the log
    /// naming a later generation, red-team round 21), against the files as the rebuild takes
    /// them. None where no manifest verifies: there is no record to compare with.
    fn changes_since_manifest(
        &self,
        vk: &VaultKey,
        ledger: &mut dyn Ledger,
        p: &Prepared,
    ) -> super::notes::ChangeNotes {
        let files = super::vault_ops::judged(&p.folded);
        // No manifest that verifies (gone, edited): the audit log's last check is the record.
        let from_log = |ledger: &mut dyn Ledger| {
            super::notes::since_logged_check(&ledger.since(&Anchor::genesis()), &files)
                .unwrap_or_default()
        };
        let Ok(Some(m)) = self.read_manifest() else {
            return from_log(ledger);
        };
        if m.verify(vk, &self.manifest_path()).is_err() {
            return from_log(ledger);
        }
        let lines = match &m.audit {
            Some(anchor) => ledger.since(anchor).change_lines,
            None => Vec::new(),
        };
        super::notes::change_notes(Some(&m), &lines, &files)
    }
}

/// Write the new live folder's files into `stage`: `new_vault` (vault.json), the keyslots
/// wrapped already, and each credential that passed the check, re-sealed to the new vault key
/// (creation times kept). A credential that does not open goes to `dropped`.
fn fill_stage(
    stage: &Stage,
    new_vk: &VaultKey,
    new_vault: VaultFile,
    wrapped: &[(String, String, Vec<u8>)],
    p: &Prepared,
    vk: &VaultKey,
) -> Result<(Vec<SlotRecord>, Vec<CredRecord>), KeystoreError> {
    let vault_bytes = encode(&stage.dir().join(VAULT_FILE), new_vault)?;
    stage.put(VAULT_FILE, &vault_bytes)?;
    let mut slot_records = Vec::new();
    for (id, rel, bytes) in wrapped {
        stage.put(rel, bytes)?;
        slot_records.push(SlotRecord {
            id: id.clone(),
            sha256: sha256_hex(bytes),
        });
    }
    let new_pub = new_vk.public_key();
    let mut records = Vec::new();
    for name in &p.folded.accepted {
        let path = credential_path(&p.live, name)?;
        let record = p.folded.credentials.iter().find(|r| &r.name == name);
        // Re-read under the same lock, the file must be the one the check judged: another
        // program could have put an older copy, sealed to the same vault key, in its place.
        let opened = load_credential(&path, name).and_then(|(f, sha256)| {
            if record.is_none_or(|r| r.sha256 != sha256) {
                return Err(KeystoreError::Swapped {
                    path: path.clone(),
                    why: "the credential file re-read is not the one the check accepted",
                });
            }
            open_file(vk, &f, &path)
        });
        // A file the check accepted and that no longer reads (a `chmod 644`, one byte changed,
        // after the check) stops the rotation, as it would have at the check: dropped, it would
        // go with the old folder, its only copy (red-team round 18).
        let cred = match opened {
            Err(e @ KeystoreError::Swapped { .. }) => return Err(e),
            Ok(c) => c,
            Err(e) => {
                return Err(KeystoreError::CredentialsUnreadable {
                    dir: p.live.join(CREDENTIALS),
                    names: format!("{name} ({e})"),
                });
            }
        };
        let created = record.map_or_else(now_secs, |r| r.created);
        let rel = format!("{CREDENTIALS}/{name}.json");
        let bytes = credential_bytes(&stage.dir().join(&rel), &new_pub, &cred, created)?;
        stage.put(&rel, &bytes)?;
        records.push(CredRecord {
            name: name.clone(),
            created,
            sha256: sha256_hex(&bytes),
        });
    }
    Ok((slot_records, records))
}

/// `token remove ID` where no readable keyslot file has the id: the manifest verified under the
/// lock must record the token, else there is nothing to remove. Its file is missing (moved
/// aside, hidden under a dot name, deleted) or damaged: the rotation revokes the token all the
/// same, and says so.
fn removed_off_disk(
    p: &Prepared,
    id: &str,
    live: &std::path::Path,
    warnings: &mut Vec<String>,
) -> Result<(), KeystoreError> {
    if p.manifest.as_ref().is_none_or(|m| m.keyslot(id).is_none()) {
        return Err(KeystoreError::NotFound {
            what: "keyslot for token",
            name: id.into(),
            path: super::keyslot_path(live, id)?,
        });
    }
    warnings.push(format!(
        "the keyslot file of token {id} was missing or could not be read (moved aside or deleted?); the token is revoked all the same: a copy of that file put back opens nothing current"
    ));
    Ok(())
}

/// The tokens the manifest verified under the lock records that would not receive the new
/// vault key: neither the one removed nor among the readable keyslot files found. A rotation
/// wrapped it only for the files it found, and its new manifest forgot the rest without a word:
/// a backup token whose file was hidden for the moment (a dot name, which listings skip) opened
/// nothing afterwards, and `token list` no longer named it (red-team round 20). A file that
/// cannot be read counts as missing.
fn recorded_left_out(
    p: &Prepared,
    remove: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<(), KeystoreError> {
    let Some(manifest) = &p.manifest else {
        return Ok(());
    };
    let mut missing = Vec::new();
    for r in &manifest.keyslots {
        if Some(r.id.as_str()) == remove || p.keyslots.iter().any(|s| s.id == r.id) {
            continue;
        }
        // A file that cannot be read is as good as missing: a newline appended to a backup
        // token's keyslot (or its mode set to 000) left it out with a warning only after the
        // touch (a review of round 20).
        missing.push(r.id.clone());
    }
    let removed = remove.unwrap_or("the token removed");
    warnings.extend(left_out(remove, missing, &p.live)?.iter().map(|id| format!(
        "token {id} is revoked too, with {removed}: the keystore's manifest records it, but its keyslot file is missing (moved aside, hidden under a dot name, or deleted?), so it did not receive the new vault key and opens nothing now, even with that file put back. If you still hold it, enroll it again with `tapsign token add`; if you did not move its file, another program did"
    )));
    Ok(())
}

/// Recorded tokens whose keyslot file is `missing` stop a rotation, changing nothing: it is
/// the only moment their loss can be stopped, and the way on is the file put back or the token
/// revoked first (`token remove` needs no file). A removal goes ahead and revokes them too,
/// each named in a warning: it is how a lost token is cut off, and must not wait on files
/// another program can hide, two of which would otherwise block each other's removal for good.
fn left_out(
    remove: Option<&str>,
    missing: Vec<String>,
    live: &std::path::Path,
) -> Result<Vec<String>, KeystoreError> {
    match remove {
        None if !missing.is_empty() => Err(KeystoreError::KeyslotMissing {
            tokens: missing,
            dir: live.join(KEYSLOTS),
        }),
        _ => Ok(missing),
    }
}

/// What a rotation's refusal calls it.
fn what_rotates(remove: Option<&str>, rebuild: bool) -> String {
    match (remove, rebuild) {
        (Some(id), _) => format!("the removal of token {id}"),
        (None, true) => "the rebuilt manifest".into(),
        (None, false) => "the rotation".into(),
    }
}

fn stem(path: &std::path::Path) -> Option<&str> {
    path.file_stem().and_then(|s| s.to_str())
}

/// What a rebuild says of a token it gave no new vault key: with no manifest to vouch for its
/// keyslot, it cannot be told from one put there by someone else, and is to be enrolled again
/// if it is the trader's. Unless the log's last word on it, in any `keystore` line read along
/// its chain (`checks`), signed or linked or not, is its removal: an older vault put back after
/// `token remove`, beside a log whose `lineage` was taken out, had the rebuild tell the trader
/// to enroll again, by name, the very token they had revoked (red-team round 24).
fn left_behind_warning(stub: &TokenStub, checks: &[super::ledger::CheckLine]) -> String {
    let id = stub.id();
    let (removed, added) = (
        super::ledger::token_removed(&id),
        super::ledger::token_added(&id),
    );
    let last = checks
        .iter()
        .rev()
        .find(|c| c.reason == removed || c.reason == added);
    match last {
        Some(c) if c.reason == removed => format!(
            "{} did not receive the new vault key, and audit line {} records that it was removed from this keystore (`{removed}`): this vault is from before that removal, put back. Do not enroll it again unless you still hold it and mean to; if you removed it as lost or stolen, leave it out, and replace at the exchanges the API keys this older copy holds",
            stub.describe(),
            c.seq
        ),
        _ => format!(
            "{} did not receive the new vault key: with no manifest to vouch for its keyslot, a rebuild cannot tell it from one put there by someone else (sealing to a token needs only its public key); if it is yours, enroll it again with `tapsign token add`",
            stub.describe()
        ),
    }
}
