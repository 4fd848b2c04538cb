//! What the next unlock's check would say, as far as can be told without a token: `key list`
//! marks the credentials it would refuse, so a file put back does not look like a key.

use super::ledger::Ledger;
use super::manifest::{Refusal, fold};
use super::{Keystore, KeystoreError};

/// The verdicts of [`Keystore::preview`].
#[derive(Debug, Default)]
pub struct Preview {
    /// The credential files the check would refuse, and why.
    pub refused: Vec<Refusal>,
    /// Why the check would open nothing at all (an older copy of the keystore, a broken
    /// record), if it would not.
    pub whole: Option<String>,
    /// What the check would warn about without refusing (the record since the last check
    /// could not be read back).
    pub warnings: Vec<String>,
    /// Credentials the record holds as present whose file is missing (moved aside?): a file
    /// put back opens, unless `key remove` records the removal.
    pub missing: Vec<String>,
    /// The credential changes since the last check the next check (or any command that writes
    /// the next manifest) will tell of (`super::notes`), from the manifest as it is: said
    /// before the touch of a command that moves the record on (red-team round 21).
    pub changes: super::notes::ChangeNotes,
}

impl Keystore {
    /// The check an unlock runs (`vault_ops::prepare_in`), on what can be read without the
    /// vault key: the credential files against the manifest as it is (its MAC, which needs
    /// the vault key, unchecked) and the audit log's record since its anchor. A file that does
    /// not decrypt is found only by the unlock.
    pub fn preview(&self, ledger: &mut dyn Ledger) -> Result<Preview, KeystoreError> {
        let live = self.live()?;
        let Some(m) = &live.manifest else {
            return Ok(Preview::default());
        };
        let (observed, unreadable, _) = self.observe_credentials(&live.dir, None)?;
        let mut evidence = match &m.audit {
            Some(anchor) => ledger.since(anchor).above(m.generation),
            None => {
                ledger.unanchored("the manifest was written while the audit log could not be read")
            }
        };
        // Where the log does not hold the anchor, the manifest held to its last signed check
        // as the unlock holds it (`super::follows`): another copy's manifest copied in was
        // listed with a warning that blamed the log (red-team round 24).
        let path = live.dir.join(super::VAULT_FILE);
        let vault = self.vault_file_in(&live.dir);
        let anothers = (vault.as_ref().ok())
            .and_then(|v| self.not_anothers_log(v, &path, Some(m), &evidence).err());
        let followed = (vault.as_ref().ok())
            .map(|v| self.follow_last_check(m, (v, &path), &mut evidence, ledger));
        let (gap_warning, not_following) = match followed {
            Some(Ok((warning, _))) => (warning, None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let whole = anothers.or(not_following).or_else(|| {
            self.against_log(Some(m), &evidence)
                .and_then(|()| self.chained(&vault?, &path, &evidence))
                .err()
        });
        let mut warnings: Vec<String> = match &whole {
            None => gap_warning.into_iter().collect(),
            Some(_) => Vec::new(),
        };
        warnings.extend(super::vault_ops::unlinked_warning(
            &evidence.unlinked,
            &evidence.checks,
        ));
        // Every manifest's own `keystore` line follows its anchor. None there: the command
        // that wrote it stopped before its line (killed, a power cut, a full disk).
        if whole.is_none()
            && evidence.gap.is_none()
            && evidence.unreadable.is_none()
            && evidence
                .highest_generation()
                .is_none_or(|g| g < m.generation)
        {
            warnings.push(unrecorded_warning(m.generation));
        }
        let folded = fold(m, &observed, &unreadable, &evidence);
        let changes = super::notes::change_notes(
            Some(m),
            &evidence.change_lines,
            &super::vault_ops::judged(&folded),
        );
        Ok(Preview {
            changes,
            refused: folded.refused,
            whole: whole.map(|e| e.to_string()),
            warnings,
            missing: folded.missing,
        })
    }
}

impl Keystore {
    /// What a rebuild (`keystore rotate --rebuild-manifest`) will tell of credential changes
    /// where no manifest verifies, said before its touch: the files against the audit log's
    /// last check (`super::notes::since_logged_check`). A rebuild is when manifest.json is gone
    /// or does not verify, so a preview from it said nothing, or read a forged record's word
    /// (red-team round 21). Read with no vault key; the rebuild says it again after its touch.
    ///
    /// A log that holds no `keystore` line the vault key signed cannot vouch for the files
    /// ([`KeystoreError::RebuildUnsigned`]): refused here, before the touch, unless `unchecked`.
    /// A later vault it records that no signed link reaches is said here, before the touch
    /// (`vault_ops::older_vault_warning`).
    pub fn rebuild_preview(
        &self,
        ledger: &mut dyn Ledger,
        unchecked: bool,
    ) -> Result<super::notes::ChangeNotes, KeystoreError> {
        let live = self.live_for_rebuild()?;
        let (observed, _, _) = self.observe_credentials(&live.dir, None)?;
        let files = (observed.into_iter()).map(|o| (o.name, o.sha256)).collect();
        let ev = ledger.since(&super::ledger::Anchor::genesis());
        if let Some(e) = super::vault_ops::unsigned_rebuild(&ev).filter(|_| !unchecked) {
            return Err(e);
        }
        // The vault it would start from, read without the token (the rebuild reads it again
        // after the touch, and decides it then too).
        let path = live.dir.join(super::VAULT_FILE);
        let ancestry = (self.vault_file_in(&live.dir).ok())
            .and_then(|v| super::lineage::ancestry(&v, &path).ok());
        let mut notes = super::notes::since_logged_check(&ev, &files).unwrap_or_default();
        if let Some(why) = ancestry.and_then(|a| super::vault_ops::later_unlinked_vault(&ev, &a)) {
            let warning = super::vault_ops::older_vault_warning(&why);
            notes.loud.push((String::new(), warning));
        }
        Ok(notes)
    }
}

/// The keystore's manifest is not on record: what that leaves open, and how to close it.
pub(crate) fn unrecorded_warning(generation: u64) -> String {
    format!(
        "the audit log has no record of the keystore's manifest (generation {generation}): the command that wrote it stopped before it could record it (killed, a power cut, a full disk). Until a later one is recorded, a copy of the keystore from before it (a removed token's keyslot back, say) is not caught: check that `tapsign token list` shows only the tokens you keep (remove again, with `tapsign token remove`, any you had removed), then run `tapsign keystore rotate`, which records a new one"
    )
}
