//! The keystore's record of its own changes, kept outside the keystore folder: the audit log
//! (`crate::audit::ledger` implements [`Ledger`] over it).
//!
//! Adding, replacing or removing a credential needs no token, so it cannot update the
//! authenticated manifest. Each such change is recorded instead (name, creation time and file
//! hash), and the next operation that holds the vault key (an unlock) reads back what was
//! recorded since the manifest's [`Anchor`] and checks the files against it. A file put back
//! to what the manifest saw, after a recorded change, is caught that way. The record is no
//! stronger than the audit log it lives in: docs/keystore-format.md says what that leaves.

use serde::{Deserialize, Serialize};

use super::Succession;

/// Where the record stood when a manifest was written: the last line's `seq` and hash, and the
/// byte offset just past it, so reading back starts there instead of at the top of a long log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub seq: u64,
    /// Lowercase hex SHA-256 of the line's bytes (64 zeros for an empty log).
    pub hash: String,
    pub offset: u64,
}

impl Anchor {
    /// Before the first line: reading from here reads the whole record.
    pub fn genesis() -> Anchor {
        Anchor {
            seq: 0,
            hash: "0".repeat(64),
            offset: 0,
        }
    }
}

/// What was done to a credential without the vault key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    Add,
    Replace,
    Remove,
}

impl std::fmt::Display for KeyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyAction::Add => "add",
            KeyAction::Replace => "replace",
            KeyAction::Remove => "remove",
        })
    }
}

/// One recorded credential change. For a removal, `created` and `sha256` are those of the
/// file that was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub action: KeyAction,
    pub name: String,
    pub created: u64,
    pub sha256: String,
}

/// Where a name stands once `change` is recorded after `seen` (the last change of that name
/// taken, if any), as the check folds it (`manifest::fold`): an `add` or `replace` moves it
/// only to a later version (`None`: the line points back and is ignored); a removal always
/// moves it, to removed as of the later of its version and the one seen, so a copy of either
/// put back is refused. A removal naming an older version than the one seen is what the
/// trader's own `key remove` writes over an older copy put in place of the file, and what a
/// line anyone appends can say: the running agent took it for an edited log and refused every
/// unlock, where the check it advised against (a restart) refused only that credential
/// (red-team round 20).
pub fn forward(seen: Option<&KeyChange>, change: KeyChange) -> Option<KeyChange> {
    match (change.action, seen) {
        (KeyAction::Remove, Some(seen)) => Some(KeyChange {
            created: change.created.max(seen.created),
            ..change
        }),
        (KeyAction::Remove, None) => Some(change),
        (_, Some(seen)) if change.created <= seen.created => None,
        _ => Some(change),
    }
}

impl KeyChange {
    /// How far a name stands after this change, in the order the check folds changes by
    /// ([`forward`]): its version, and for the same version, removed after present.
    pub fn rank(&self) -> (u64, bool) {
        (self.created, self.action == KeyAction::Remove)
    }
}

/// A credential change as its line in the ledger records it: where, when and by which program
/// (as the line says: whoever writes the log chooses these too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    /// The line's `seq`.
    pub seq: u64,
    /// When it was written (UTC, as the line has it).
    pub time: String,
    pub change: KeyChange,
    pub pid: u32,
    pub exe: String,
}

/// The reason of the `keystore` line an unlock's check writes.
pub const UNLOCK_REASON: &str = "unlock";

/// Something the keystore asks its ledger to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEntry {
    /// A credential was added, replaced or removed.
    Key(KeyChange),
    /// An authenticated manifest was written (`vault` is the vault folder's tag, `vault_key`
    /// the vault public key, compressed, hex). `links`: where the record believes no such
    /// vault yet (a rotation's new one), the signed links that lead to it from one it does
    /// ([`Vaults`]); empty otherwise.
    Manifest {
        generation: u64,
        vault: String,
        vault_key: String,
        links: Vec<Succession>,
        reason: String,
        /// The credential records the manifest holds, and the signature of the line by the
        /// vault key (`super::attest`): what makes the line a check the notes judge against.
        records: Vec<super::manifest::CredRecord>,
        signature: String,
    },
    /// A credential file failed the rollback check and was refused.
    Refused { name: String, reason: String },
}

/// The most a manifest's generation may be above the highest one recorded before it. A
/// keystore counts one per manifest it writes (an unlock, a key change), each recorded, so its
/// generations go up one by one; a line further above was written by hand, and is left out of
/// every record read back (with a warning). Taken as the floor of the next generation, one such
/// line near `u64::MAX` let a rebuild write the last generation there is, after which no
/// manifest could follow, and every way out the commands gave led to an unchecked rebuild that
/// sealed an old copy of a secret again (red-team round 18); a fixed limit only moved the
/// brick below itself (its recheck). Now each forged line can raise the floor by this much at
/// most: reaching the end would take 2^32 of them.
pub const GENERATION_STEP: u64 = 1 << 32;

/// Whether a record of `generation` is believable after `highest`, the highest believed before
/// it in the order the record is read ([`GENERATION_STEP`]).
pub fn plausible(generation: u64, highest: Option<u64>) -> bool {
    generation <= highest.unwrap_or(0).saturating_add(GENERATION_STEP)
}

/// Manifests' records, read in order, judged from `from` (the highest generation believed
/// before the first of them): the highest generation believed, the last believed record's
/// vault tag, and the highest generation left out as not [`plausible`].
pub fn judge(
    records: &[(u64, String)],
    from: Option<u64>,
) -> (Option<u64>, Option<String>, Option<u64>) {
    let (mut highest, mut latest, mut vault, mut implausible) = (from, None, None, None);
    for (g, tag) in records {
        if plausible(*g, highest) {
            highest = highest.max(Some(*g));
            latest = latest.max(Some(*g));
            if !tag.is_empty() {
                vault = Some(tag.clone());
            }
        } else {
            implausible = implausible.max(Some(*g));
        }
    }
    (latest, vault, implausible)
}

/// The vault tag a manifest's record names, as far as it is vouched for: the tag of its
/// `vault_key` (`vault-<tag>` is that key's folder), a vault the record believes ([`Vaults`]);
/// empty otherwise, which names no vault. One chained line naming any tag, with no key or one
/// left out, made every unlock and `key add` refuse as if `vault.json` had been replaced
/// (round 19's recheck).
pub fn vouched_tag(tag: &str, vault_key: &str, believed: &[String]) -> String {
    let ours = !vault_key.is_empty()
        && believed.iter().any(|b| b == vault_key)
        && super::layout::key_tag(vault_key).as_deref() == Some(tag);
    match ours {
        true => tag.to_owned(),
        false => String::new(),
    }
}

/// What the ledger holds after an anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Credential changes, oldest first.
    pub changes: Vec<KeyChange>,
    /// The lines of those read along the chain after the anchor, oldest first (none for a
    /// change only the running agent saw): what the unlock tells the trader changed.
    pub change_lines: Vec<ChangeLine>,
    /// The highest manifest generation recorded, if any.
    pub latest_generation: Option<u64>,
    /// The vault tag of the last manifest recorded, if any (`vault-<tag>` is its live folder).
    pub latest_vault: Option<String>,
    /// Every vault public key a manifest's record names, anywhere in the ledger (not only
    /// after the anchor, which a forger of the manifest chooses), in order, that the record
    /// believes ([`Vaults`]): the vault on disk must be each of them or descend from it
    /// (`super::lineage`).
    pub recorded_vaults: Vec<String>,
    /// The records left out of that ([`Vaults::unlinked`]), and of what the running agent saw.
    pub unlinked: Vec<Unlinked>,
    /// Why that record of the vaults cannot be trusted: the log's chain breaks before any
    /// vault is recorded (a `keystore` line taken out there would hide the keystore's first
    /// vault), so nothing is opened or sealed on it.
    pub vaults_broken: Option<String>,
    /// Why the record could not be read back whole (the anchor line is gone, the chain breaks
    /// after it, the log cannot be read). Changes since the last check then go unchecked.
    pub gap: Option<String>,
    /// The ledger could not be read at all (opening or reading it failed), though it may
    /// still take records: the running agent appends through the descriptor it holds, which
    /// a log made unreadable (`chmod 000`) for one unlock does not close. A manifest written
    /// on such a check is not anchored and its check is not recorded ([`Evidence::anchor`]),
    /// so that the next check holds it to the whole record (`super::follows`) rather than
    /// finding it anchored: anchored at its own check line, a manifest put back for that one
    /// unlock stood from then on, the record of the change it went back on still in the log
    /// (red-team round 25).
    pub unread: bool,
    /// Why a read came to the end of the ledger before the running agent's head, which a
    /// command's reads are held to (`AuditLedger::held_to`): the log cut in place while the
    /// command read it. [`Evidence::unread`] is set too; the commands refuse such evidence
    /// before they change anything ([`super::KeystoreError::LogCut`]).
    pub cut: Option<String>,
    /// A record of a manifest the ledger holds but cannot read (a damaged `keystore` line): it
    /// may name a newer generation than any readable one, so nothing is opened on its word.
    pub unreadable: Option<String>,
    /// Why the record after the anchor cannot be trusted: the anchor's line is there, but a
    /// later line does not continue the chain (edited in place, inserted, deleted). Unlike a
    /// [`Evidence::gap`] from a log started afresh, nothing is opened or sealed on such a record.
    pub broken: Option<String>,
    /// What a running agent saw recorded while it held the ledger open; the record read back
    /// must agree with it ([`Witness`]).
    pub witnessed: Witness,
    /// Where the record cannot be followed ([`Evidence::gap`]) but the ledger can be read:
    /// every credential change it holds, chained or not (a line anyone appended can only move
    /// a name forward, so these can only refuse more). `None`: nothing could be read.
    pub all_changes: Option<Vec<KeyChange>>,
    /// A line that is a credential change but cannot be read, where [`Evidence::all_changes`]
    /// was read.
    pub changes_unreadable: Option<String>,
    /// The highest generation a `keystore` line names that is not [`plausible`]: a line made by
    /// hand, left out of this record.
    pub implausible: Option<u64>,
    /// Each manifest's record read along the chain after the anchor, in order: its generation
    /// and vault tag, as [`Evidence::above`] judges them again.
    pub after_anchor: Vec<(u64, String)>,
    /// Each of those manifests' lines (each check's, rotation's or rebuild's), in order:
    /// where a rebuild with no manifest that verifies finds the last check to judge the
    /// files against (`super::notes::since_logged_check`), and an unlock what commands folded
    /// in since the one before (`super::notes::folded_by_commands`).
    pub checks: Vec<CheckLine>,
}

/// A `keystore` line as the notes read it: a check, if the vault key signed it
/// (`super::attest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckLine {
    /// The line's `seq`.
    pub seq: u64,
    /// Whether an unlock's check wrote it (reason [`UNLOCK_REASON`]).
    pub unlock: bool,
    pub generation: u64,
    /// The vault public key it names (empty where it names none).
    pub vault_key: String,
    pub reason: String,
    /// The credential records it carries; `None` for a line with none (from before lines
    /// carried them).
    pub records: Option<Vec<super::manifest::CredRecord>>,
    /// Its signature by the vault key, hex (empty where it has none).
    pub signature: String,
}

impl Evidence {
    /// The record after a manifest's anchor judged from that manifest's `generation`, the
    /// highest known before the first line read: a reading that starts at the anchor knows
    /// nothing of the lines before it, and judged from nothing, the manifest's own record and
    /// every one after it were left out as written by hand once a rebuild had gone above a
    /// believed forged line (red-team round 19), and a copy put back from then on opened. A
    /// record that could not be followed from the anchor was judged by a scan of the whole
    /// file, from its first line, and stays as it is.
    pub fn above(mut self, generation: u64) -> Evidence {
        if self.gap.is_none() {
            (self.latest_generation, self.latest_vault, self.implausible) =
                judge(&self.after_anchor, Some(generation));
        }
        self
    }

    /// Every vault the record believes: the file's, then those a running agent saw.
    pub fn believed_vaults(&self) -> Vec<String> {
        let mut out = self.recorded_vaults.clone();
        for v in &self.witnessed.vaults {
            note_vault(&mut out, &v.key);
        }
        out
    }

    /// The highest manifest generation recorded, in the file or as a running agent saw it.
    pub fn highest_generation(&self) -> Option<u64> {
        let seen = self.witnessed.manifest.as_ref().map(|m| m.generation);
        self.latest_generation.max(seen)
    }
}

/// A manifest's record, as a running agent saw it written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenManifest {
    /// The line's `seq`.
    pub seq: u64,
    pub generation: u64,
    /// The vault tag (empty when the writer could not tell).
    pub vault: String,
}

/// What a running agent saw recorded in the ledger while it held it open: the lines it wrote,
/// and the lines other tapsign commands appended, which it took in only after checking that
/// they continue the chain. Kept in memory, it cannot be edited in the file: a record read
/// back at unlock that differs (a line edited in place in the middle of the log, whose
/// successors no longer chain) is refused, whatever the file now says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witness {
    /// The last change of each credential since the last manifest was recorded, with the
    /// line's `seq`. A manifest's check folds every change before it in, so only these must
    /// still be read back after its anchor.
    pub changes: std::collections::BTreeMap<String, (u64, KeyChange)>,
    /// The last (highest) manifest recorded.
    pub manifest: Option<SeenManifest>,
    /// Tokens whose removal was recorded and that were not enrolled again since: where, and
    /// the vault the removal's line says it made.
    pub removed_tokens: std::collections::BTreeMap<String, RemovedToken>,
    /// Every vault public key a manifest's record named, in order, with the links the record
    /// carried. In an [`Evidence`], only those believed ([`Evidence::witness`]).
    pub vaults: Vec<SeenVault>,
}

/// A token's removal, as a running agent saw it recorded (`rotated: token ID removed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedToken {
    /// The line's `seq`.
    pub seq: u64,
    /// The vault tag the line names: a removal always makes a new vault key, which the
    /// removed token never held (empty when the line names none).
    pub vault: String,
    /// The vault public key the line names (empty when it names none), and the signed links
    /// it carries into that vault: a rotation's line carries them from the vault it replaced,
    /// which is what ties a removal to the vault the token opened (`vault_ops::removal_stands`).
    pub vault_key: String,
    pub links: Vec<Succession>,
}

/// A vault a manifest's record named, as a running agent saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenVault {
    /// The line's `seq`.
    pub seq: u64,
    /// The vault public key (compressed, hex).
    pub key: String,
    pub links: Vec<Succession>,
    /// Written by the agent itself, after a check that verified the vault: believed whatever
    /// the file says now.
    pub own: bool,
}

/// A `keystore` line naming a vault that the record does not believe: no signed link leads to
/// it from a vault recorded before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlinked {
    /// The line's `seq` (its number in the log, for a line read out of the chain).
    pub seq: u64,
    /// The vault public key it names.
    pub vault_key: String,
}

/// Most left-out vaults a reading of the record keeps ([`Vaults::unlinked`]): each line read
/// looks through them, and a log flooded with forged lines, each naming a vault of its own,
/// made that quadratic (100,000 lines: 20 s a `key list`; round 19's recheck).
pub const UNLINKED_KEPT: usize = 256;

/// The vaults a record names, as far as it is believed, read in order: the first vault
/// recorded, any recorded again, and any other only with links signed from a believed vault
/// to it (`super::lineage::vouched`). The rest is left out and said: such a line was written by
/// hand (or by a tapsign from before the links were recorded: the next manifest's record
/// carries them, and the vault is believed from then on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vaults {
    /// In the order first believed.
    pub believed: Vec<String>,
    /// The first line of each vault left out and not believed since, in order.
    pub unlinked: Vec<Unlinked>,
}

impl Vaults {
    /// The record at line `seq` of vault public key `key` (empty: a line that names none),
    /// carrying `links`.
    pub fn take(&mut self, seq: u64, key: &str, links: &[Succession]) {
        if key.is_empty() {
            return;
        }
        // Past the kept left-out vaults, a line's links are not verified any more: each forged
        // line carrying links cost a signature check, and 40,000 of them 7 s a command (round
        // 19's second recheck). A genuine line after them is then left out too, which refuses
        // nothing.
        if self.unlinked.len() >= UNLINKED_KEPT && !self.believed.iter().any(|b| b == key) {
            return;
        }
        if super::lineage::vouched(&self.believed, key, links) {
            // The vaults the links pass through are vouched for by the same signatures: a
            // rotation's line from before links were recorded names one of them, and stayed
            // left out for good once a later line linked past it (round 19's recheck).
            for via in links.iter().map(|l| l.to.as_str()).chain([key]) {
                note_vault(&mut self.believed, via);
                self.unlinked.retain(|u| u.vault_key != via);
            }
        } else if self.unlinked.len() < UNLINKED_KEPT
            && !self.unlinked.iter().any(|u| u.vault_key == key)
        {
            self.unlinked.push(Unlinked {
                seq,
                vault_key: key.to_owned(),
            });
        }
    }
}

/// The `reason` of a manifest written by `token add`.
pub fn token_added(id: &str) -> String {
    format!("token {id} added")
}

/// The `reason` of a manifest written by `token remove`.
pub fn token_removed(id: &str) -> String {
    format!("rotated: token {id} removed")
}

impl Witness {
    /// A credential change recorded at line `seq`, remembered for its name where it moves the
    /// name forward ([`forward`]). tapsign's commands only ever write such lines, but anyone who
    /// can write the log can append a line that continues the chain, and one that points back
    /// (an `add` of an old version after its replacement or removal) must not make the agent
    /// forget the change it saw: the check ignores such a line (`manifest::fold`), and the
    /// change it would have hidden is still held to.
    pub fn saw_change(&mut self, seq: u64, change: KeyChange) {
        let seen = self.changes.get(&change.name).map(|(_, c)| c);
        if let Some(next) = forward(seen, change) {
            self.changes.insert(next.name.clone(), (seq, next));
        }
    }

    /// A manifest recorded at line `seq`. One this agent wrote (`own`) was written by a check
    /// that folded every change before it in, so they need not be read back any more. One it
    /// only took in (another tapsign command's, or a line anyone who can write the file
    /// appended, chained correctly) changes nothing it saw: the check compares the changes
    /// with the manifest on disk, which accounts for those a genuine command folded in. For
    /// the same reason a token enrolled again ends its recorded removal only with a
    /// generation above every one seen: a lower one cannot be the next manifest, and a higher
    /// one forged makes the manifest on disk older than the record, which opens nothing.
    pub fn saw_manifest(
        &mut self,
        seq: u64,
        generation: u64,
        vault: &str,
        reason: &str,
        own: bool,
    ) {
        if own {
            self.changes.clear();
        }
        // Its own were written by a check from the manifest it verified, whatever the
        // generation: judged from nothing (no manifest seen yet), a keystore above
        // [`GENERATION_STEP`] had its own records left out (red-team round 19).
        if !own && !plausible(generation, self.manifest.as_ref().map(|m| m.generation)) {
            return;
        }
        let newest = self
            .manifest
            .as_ref()
            .is_none_or(|m| generation > m.generation);
        if newest
            || self
                .manifest
                .as_ref()
                .is_some_and(|m| m.generation == generation)
        {
            self.manifest = Some(SeenManifest {
                seq,
                generation,
                vault: vault.to_owned(),
            });
        }
        let id = |prefix: &str, suffix: &str| {
            reason
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .map(str::to_owned)
        };
        if let Some(token) = id("rotated: token ", " removed") {
            self.removed_tokens.insert(
                token,
                RemovedToken {
                    seq,
                    vault: vault.to_owned(),
                    vault_key: String::new(),
                    links: Vec::new(),
                },
            );
        } else if let Some(token) = id("token ", " added")
            && newest
        {
            self.removed_tokens.remove(&token);
        }
    }

    /// A manifest's record at line `seq` named vault public key `key` (empty: a line that
    /// does not say), carrying `links`. Kept as seen: whether it is believed depends on the
    /// record read back with it ([`Evidence::witness`]).
    pub fn saw_vault(&mut self, seq: u64, key: &str, links: &[Succession], own: bool) {
        // The same line's removal (`saw_manifest` comes first) keeps what it links to.
        for r in self.removed_tokens.values_mut().filter(|r| r.seq == seq) {
            r.vault_key = key.to_owned();
            r.links = links.to_vec();
        }
        let seen = |v: &SeenVault| v.key == key && v.links == links && v.own == own;
        if !key.is_empty() && !self.vaults.iter().any(seen) {
            self.vaults.push(SeenVault {
                seq,
                key: key.to_owned(),
                links: links.to_vec(),
                own,
            });
        }
    }
}

/// Add `key` to `vaults` unless it is empty or there already.
fn note_vault(vaults: &mut Vec<String>, key: &str) {
    if !key.is_empty() && !vaults.iter().any(|v| v == key) {
        vaults.push(key.to_owned());
    }
}

impl Evidence {
    /// What a running agent saw recorded, `w`, with what the file holds: of the vaults it saw,
    /// those the record read back believes and those it believes by the same rule after them
    /// ([`Vaults`]); the rest is left out, as in the file, and said.
    pub fn witness(&mut self, mut w: Witness) {
        let mut vaults = Vaults {
            believed: self.recorded_vaults.clone(),
            unlinked: std::mem::take(&mut self.unlinked),
        };
        // Its own records first, whatever the file says: a log replaced while it runs, whose
        // first line names a vault someone made (wrapped to your tokens from their public
        // keys), took their place, and the unlock the agent advised opened that vault (round
        // 19's second recheck). The keystore must descend from both, which it cannot.
        for v in w.vaults.iter().filter(|v| v.own) {
            note_vault(&mut vaults.believed, &v.key);
            vaults.unlinked.retain(|u| u.vault_key != v.key);
        }
        for v in w.vaults.iter().filter(|v| !v.own) {
            vaults.take(v.seq, &v.key, &v.links);
        }
        w.vaults.retain(|v| vaults.believed.contains(&v.key));
        // A manifest the agent only took in names a vault as its line said: one no believed
        // vault is had the check say to put back a keystore that never existed.
        if let Some(m) = &w.manifest
            && !m.vault.is_empty()
            && !vaults
                .believed
                .iter()
                .any(|k| super::layout::key_tag(k).as_deref() == Some(m.vault.as_str()))
        {
            w.manifest = None;
        }
        self.unlinked = vaults.unlinked;
        self.witnessed = w;
    }

    /// No record at all, and why.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Evidence {
            gap: Some(why.into()),
            unread: true,
            ..Evidence::default()
        }
    }

    /// Where a manifest written on this record is anchored: the ledger's head, unless the
    /// record could not be read ([`Evidence::unread`]), when it is anchored nowhere.
    pub fn anchor(&self, ledger: &mut dyn Ledger) -> Option<Anchor> {
        match self.unread {
            true => None,
            false => ledger.head(),
        }
    }
}

/// Where the keystore records its changes and reads them back.
pub trait Ledger {
    /// Where the record stands now; `None` when it cannot be read.
    fn head(&mut self) -> Option<Anchor>;
    /// What was recorded after `anchor`. Never fails: problems become [`Evidence::gap`].
    fn since(&mut self, anchor: &Anchor) -> Evidence;
    /// What can be known with no anchor to read from (a manifest written while the record could
    /// not be read): a gap saying `why`, and the highest generation recorded anywhere.
    fn unanchored(&mut self, why: &str) -> Evidence {
        Evidence {
            gap: Some(why.to_owned()),
            ..Evidence::default()
        }
    }
    /// The lowest generation a keystore checked against this ledger may have, whatever is
    /// read back now: what a running agent read in its log before (0: nothing known).
    fn floor(&mut self) -> u64 {
        0
    }
    /// Record `entry`; `Err` says why it could not be written.
    fn record(&mut self, entry: &LedgerEntry) -> Result<(), String>;
    /// Whether records can be written now, asked before a change that must not stand without
    /// its record (a rotation: a token removal off the record is undone by putting back a copy
    /// of the keystore from before it). `Err` says why not.
    fn ready(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// A ledger in memory, for tests: the anchor's `seq` is the number of entries before it.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryLedger {
    pub entries: Vec<LedgerEntry>,
    /// Make every `record` fail with this reason, and `ready` say so.
    pub broken: Option<String>,
    /// Let this many more `record`s through, then fail every one with this reason, while
    /// `ready` says it can write (a log that opened, then filled the disk).
    pub fills: Option<(usize, String)>,
    /// Play a running agent: keep what is recorded in memory as well, and hand it out with
    /// what is read back (tests then edit `entries` as one would edit the log).
    pub witness: Option<Witness>,
    /// Make every read fail with this reason while records still go in (a log made
    /// unreadable under an agent that holds it open for appending).
    pub unreadable: Option<String>,
    /// What [`Ledger::floor`] says: the generation a running agent read in its log before.
    pub floor: u64,
}

#[cfg(test)]
impl Ledger for MemoryLedger {
    fn floor(&mut self) -> u64 {
        self.floor
    }

    fn head(&mut self) -> Option<Anchor> {
        let n = self.entries.len() as u64;
        Some(Anchor {
            seq: n,
            hash: format!("{n:064x}"),
            offset: n,
        })
    }

    fn since(&mut self, anchor: &Anchor) -> Evidence {
        if let Some(why) = &self.unreadable {
            return Evidence::unavailable(why.clone());
        }
        let Some(after) = self.entries.get(anchor.seq as usize..) else {
            let mut ev = Evidence::unavailable("the ledger is shorter than the anchor");
            ev.witness(self.witness.clone().unwrap_or_default());
            return ev;
        };
        let mut ev = Evidence::default();
        let mut vaults = Vaults::default();
        for (i, e) in self.entries.iter().enumerate() {
            if let LedgerEntry::Manifest {
                vault_key, links, ..
            } = e
            {
                vaults.take(i as u64 + 1, vault_key, links);
            }
        }
        (ev.recorded_vaults, ev.unlinked) = (vaults.believed, vaults.unlinked);
        for (i, e) in after.iter().enumerate() {
            match e {
                LedgerEntry::Key(k) => {
                    ev.changes.push(k.clone());
                    ev.change_lines.push(ChangeLine {
                        seq: anchor.seq + i as u64 + 1,
                        time: String::new(),
                        change: k.clone(),
                        pid: 0,
                        exe: String::new(),
                    });
                }
                LedgerEntry::Manifest {
                    generation,
                    vault,
                    vault_key,
                    reason,
                    records,
                    signature,
                    ..
                } => {
                    ev.checks.push(CheckLine {
                        seq: anchor.seq + i as u64 + 1,
                        unlock: reason == UNLOCK_REASON,
                        generation: *generation,
                        vault_key: vault_key.clone(),
                        reason: reason.clone(),
                        records: Some(records.clone()).filter(|_| !signature.is_empty()),
                        signature: signature.clone(),
                    });
                    ev.after_anchor.push((
                        *generation,
                        vouched_tag(vault, vault_key, &ev.recorded_vaults),
                    ))
                }
                LedgerEntry::Refused { .. } => {}
            }
        }
        ev.witness(self.witness.clone().unwrap_or_default());
        // Judged from nothing, as the log's reading is (`audit::ledger::evidence_after`).
        ev.above(0)
    }

    fn ready(&mut self) -> Result<(), String> {
        match &self.broken {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    fn record(&mut self, entry: &LedgerEntry) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        if let Some((left, why)) = &mut self.fills {
            if *left == 0 {
                return Err(why.clone());
            }
            *left -= 1;
        }
        self.entries.push(entry.clone());
        let seq = self.entries.len() as u64;
        match (&mut self.witness, entry) {
            (Some(w), LedgerEntry::Key(k)) => w.saw_change(seq, k.clone()),
            (
                Some(w),
                LedgerEntry::Manifest {
                    generation,
                    vault,
                    vault_key,
                    links,
                    reason,
                    ..
                },
            ) => {
                w.saw_manifest(seq, *generation, vault, reason, true);
                w.saw_vault(seq, vault_key, links, true);
            }
            _ => {}
        }
        Ok(())
    }
}
