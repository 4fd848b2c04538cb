//! A manifest whose anchor the audit log does not hold, against the log's signed checks
//! (docs/keystore-format.md, "What is caught, and the window").
//!
//! The check reads the credential changes since the manifest from its anchor on. Where the
//! anchor's line is not in the log and the log chains whole, that read as a log started
//! afresh, and the check opened what passed the manifest. But a copy of the home that shares
//! the vault (a backup restored and used, a second `TAPSIGN_HOME`) writes manifests of its own,
//! anchored in its own log, whose generations rise apart from the original's: its manifest,
//! copied into the original with an old credential file, verified, stood above every
//! generation the original's log records, and brought back a credential the trader had
//! replaced or removed, the log untouched (red-team round 24). A log started afresh holds no
//! check this vault key signed; one that does is the keystore's own record, and the manifest
//! must not go back on it.
//!
//! Every signed check counts, not only the last: the copy's own signed check, appended to the
//! original's log with the chain continued, became "the last check", the copy's manifest its
//! own, and the replaced credential opened (red-team round 24, recheck). In one log each check
//! is written after the one before it and folds in every change, so a signed check that goes
//! back on an earlier one was written in another copy: nothing opens. The `key` lines, which
//! anyone can append, refuse only the credentials they name, as they do from an anchor.
//! The log's lines can only make this refuse more: a line anyone appends cannot raise a
//! manifest to what it must follow.

use std::collections::BTreeMap;

use super::ledger::{ChangeLine, CheckLine, Evidence, KeyAction, KeyChange, forward};
use super::manifest::ManifestFile;

/// What the log's signed checks make of a manifest whose anchor the log does not hold.
#[derive(Debug)]
pub(crate) enum Follows {
    /// The log holds no check signed by this vault key or one it descends from: a log started
    /// afresh, or from before lines were signed. Nothing to hold the manifest to.
    NoCheck,
    /// The manifest is the one the last check recorded (same generation, vault and
    /// credentials): the `key` lines after it came after the manifest too, and are read back as
    /// from an anchor (`lines`, with any before the check the manifest goes back on).
    Recorded { seq: u64, lines: Vec<ChangeLine> },
    /// The manifest came after the last check (`seq`) and goes back on nothing a signed check
    /// records. `behind`: the `key` lines it goes back on (each as the names stand after it),
    /// which refuse the credentials they name, as from an anchor.
    After {
        seq: u64,
        generation: u64,
        behind: Vec<ChangeLine>,
    },
    /// The manifest goes back on a signed check (`seq`): an older or another copy's.
    GoesBack {
        seq: u64,
        generation: u64,
        why: String,
    },
    /// A signed check (`seq`) goes back on an earlier one (`earlier`): written in another copy
    /// of the keystore, and appended to this log.
    Forked {
        seq: u64,
        generation: u64,
        earlier: u64,
        why: String,
    },
}

/// Where a name stands by the signed checks: its `created`, its file's hash (`None`: removed),
/// the vault of the check that vouches for it, that check's line, and the line that set it (the
/// check, or a `key` line removing it that the check bears out by not listing the name).
#[derive(Debug, Clone, Copy)]
struct Stand<'a> {
    created: u64,
    sha256: Option<&'a str>,
    vault: &'a str,
    check: u64,
    line: u64,
}

impl Stand<'_> {
    /// As [`KeyChange::rank`]: the version, and for the same version, removed after present.
    fn rank(&self) -> (u64, bool) {
        (self.created, self.sha256.is_none())
    }
}

/// The log's record, read once along it: where each name stands by the signed checks, and by
/// every `key` line folded forward ([`forward`]) with the line that set it.
#[derive(Default)]
struct Record<'a> {
    signed: BTreeMap<&'a str, Stand<'a>>,
    keys: BTreeMap<&'a str, (KeyChange, &'a ChangeLine)>,
}

impl<'a> Record<'a> {
    fn key_line(&mut self, l: &'a ChangeLine) {
        let seen = self.keys.get(l.change.name.as_str()).map(|(c, _)| c);
        if let Some(next) = forward(seen, l.change.clone()) {
            self.keys.insert(&l.change.name, (next, l));
        }
    }

    /// Raise the signed record by `check`: its records, and the removals before it of names it
    /// does not list (the record of a removal goes with a rotation's `removed`, so a manifest
    /// need not name it, but must not hold it present at that version). Only ever raised: a
    /// line appended can add refusals, never take one away.
    fn raise(&mut self, check: &'a CheckLine) {
        let records = check.records.as_deref().unwrap_or_default();
        for r in records {
            let new = Stand {
                created: r.created,
                sha256: Some(&r.sha256),
                vault: &check.vault_key,
                check: check.seq,
                line: check.seq,
            };
            self.stand(&r.name, new);
        }
        let removed: Vec<(&'a str, Stand<'a>)> = (self.keys.iter())
            .filter(|(name, (ch, _))| {
                ch.action == KeyAction::Remove && !records.iter().any(|r| r.name == **name)
            })
            .map(|(name, (ch, line))| {
                let stand = Stand {
                    created: ch.created,
                    sha256: None,
                    vault: &check.vault_key,
                    check: check.seq,
                    line: line.seq,
                };
                (*name, stand)
            })
            .collect();
        for (name, stand) in removed {
            self.stand(name, stand);
        }
    }

    fn stand(&mut self, name: &'a str, new: Stand<'a>) {
        match self.signed.get(name) {
            Some(old) if old.rank() > new.rank() => {}
            // The same version, present: the latest vault's hash (a rotation seals it again).
            Some(old) if old.rank() == new.rank() && new.sha256.is_none() => {}
            _ => {
                self.signed.insert(name, new);
            }
        }
    }
}

/// Why `check`'s records go back on the signed record before it, and the line they go back on.
fn check_goes_back(check: &CheckLine, signed: &BTreeMap<&str, Stand<'_>>) -> Option<(u64, String)> {
    let when = crate::audit::utc_secs;
    for r in check.records.as_deref().unwrap_or_default() {
        let Some(s) = signed.get(r.name.as_str()) else {
            continue;
        };
        let mut name = r.name.clone();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        let why = match s.sha256 {
            None if r.created <= s.created => format!(
                "records credential {name:?} as added {}, which audit line {} records removed before audit line {}, signed too, left it out",
                when(r.created),
                s.line,
                s.check
            ),
            Some(_) if r.created < s.created => format!(
                "records credential {name:?} as added {}, and audit line {}, signed too, a later version, added {}",
                when(r.created),
                s.check,
                when(s.created)
            ),
            Some(sha)
                if r.created == s.created && s.vault == check.vault_key && sha != r.sha256 =>
            {
                format!(
                    "records credential {name:?} in another file than audit line {}, signed too, records at the same version (both added {})",
                    s.check,
                    when(r.created)
                )
            }
            _ => continue,
        };
        return Some((s.check, why));
    }
    None
}

/// What the signed `keystore` lines of `whole` (the log read along its chain from the first
/// line) make of `m`: every one signed by one of `ancestry` (the vault on disk's key and those
/// it descends from, by its verified lineage). A line of the vault on disk or an ancestor
/// counts whether or not the log's record links to it: a rotation's line whose `lineage` was
/// taken out of the log is still the trader's, and the lineage on disk vouches for its key.
pub(crate) fn follows(m: &ManifestFile, whole: &Evidence, ancestry: &[String]) -> Follows {
    // Every signed line, not the last alone: each costs a signature check, but this runs only
    // where the anchor is gone, and one appended line otherwise chose which check counted.
    let auth = super::attest::authenticated(&whole.checks, ancestry, |_| false);
    let Some(last) = auth.lines.last().copied() else {
        return Follows::NoCheck;
    };
    let mut record = Record::default();
    let mut lines = whole.change_lines.iter().peekable();
    for check in &auth.lines {
        while let Some(l) = lines.next_if(|l| l.seq < check.seq) {
            record.key_line(l);
        }
        if let Some((earlier, why)) = check_goes_back(check, &record.signed) {
            return Follows::Forked {
                seq: check.seq,
                generation: check.generation,
                earlier,
                why,
            };
        }
        record.raise(check);
    }
    let since: Vec<ChangeLine> = lines.cloned().collect();
    for l in &since {
        record.key_line(l);
    }
    let records = last.records.as_deref().unwrap_or_default();
    let (seq, generation) = (last.seq, last.generation);
    if m.generation == last.generation {
        if m.vault_key == last.vault_key && m.credentials == records {
            let mut lines = behind(m, &record);
            lines.retain(|l| l.seq < seq);
            lines.extend(since);
            return Follows::Recorded { seq, lines };
        }
        return Follows::GoesBack {
            seq,
            generation,
            why: "that check records a manifest of the same generation with other contents".into(),
        };
    }
    // A manifest below the check is refused by its generation (`OlderThanLog`).
    if m.generation < last.generation {
        return Follows::After {
            seq,
            generation,
            behind: Vec::new(),
        };
    }
    if let Some((s, why)) = goes_back(m, last, &record.signed) {
        let generation = (auth.lines.iter())
            .find(|c| c.seq == s)
            .map_or(generation, |c| c.generation);
        return Follows::GoesBack {
            seq: s,
            generation,
            why,
        };
    }
    Follows::After {
        seq,
        generation,
        behind: behind(m, &record),
    }
}

/// The `key` lines `m` goes back on, each as its name stands after it: a later version than
/// `m` holds (present or removed), or a removal of the version it holds. A name `m` does not
/// record at all is left to the check (a file older than the manifest is refused by it).
///
/// A manifest written while the log could not be read (no anchor) read none of these, and is
/// held to them too: a `key add --replace` it never saw is still a later version, and the old
/// file was opened (red-team round 24, recheck). Its honest miss is a removal, whose file is
/// gone: folded in, the name is recorded removed and nothing is refused.
fn behind(m: &ManifestFile, record: &Record<'_>) -> Vec<ChangeLine> {
    let mut out = Vec::new();
    for (name, (want, line)) in &record.keys {
        let present = m.credentials.iter().find(|c| c.name == *name);
        let removed = m.removed.iter().find(|r| r.name == *name);
        let back = match (present, removed, want.action) {
            (Some(c), _, KeyAction::Remove) => c.created <= want.created,
            (Some(c), _, _) => c.created < want.created,
            (None, Some(r), KeyAction::Add | KeyAction::Replace) => r.created < want.created,
            _ => false,
        };
        if back {
            out.push(ChangeLine {
                change: want.clone(),
                ..(*line).clone()
            });
        }
    }
    out.sort_by_key(|l| l.seq);
    out
}

/// Why `m`, a later generation than `last`, goes back on a signed check, and that check's line;
/// `None` where it does not. Versions compare by `created`, and by hash too where the check is
/// of `m`'s own vault (a rotation seals every file again and keeps `created`). A name the last
/// check records must not be missing from a manifest of the same vault.
fn goes_back(
    m: &ManifestFile,
    last: &CheckLine,
    signed: &BTreeMap<&str, Stand<'_>>,
) -> Option<(u64, String)> {
    let when = crate::audit::utc_secs;
    let records = last.records.as_deref().unwrap_or_default();
    for (name, s) in signed {
        let present = m.credentials.iter().find(|c| c.name == *name);
        let removed = m.removed.iter().find(|r| r.name == *name);
        let same_vault = s.vault == m.vault_key;
        let binding = records.iter().any(|r| r.name == *name) && last.vault_key == m.vault_key;
        let ok = match (present, removed, s.sha256) {
            (Some(c), _, None) => c.created > s.created,
            (Some(c), _, Some(sha)) => {
                c.created > s.created
                    || (c.created == s.created && (!same_vault || c.sha256 == sha))
            }
            (None, Some(r), Some(_)) => r.created >= s.created,
            (None, None, Some(_)) => !binding,
            (None, _, None) => true,
        };
        if ok {
            continue;
        }
        let by = match s.line == s.check {
            true => "that check".to_owned(),
            false => format!(
                "audit line {} (before that check, which does not list it)",
                s.line
            ),
        };
        let mut name = (*name).to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        let why = match (present, s.sha256) {
            (Some(c), None) => format!(
                "it holds credential {name:?} as added {}, which {by} records removed",
                when(c.created)
            ),
            (Some(c), _) if c.created == s.created => format!(
                "it holds credential {name:?} in another file than the version {by} records (both added {})",
                when(c.created)
            ),
            (Some(c), _) => format!(
                "it holds credential {name:?} as added {}, and {by} records a later version, added {}",
                when(c.created),
                when(s.created)
            ),
            (None, _) if removed.is_some() => format!(
                "it records credential {name:?} removed as of an older version than the one {by} records"
            ),
            (None, _) => format!("it does not record credential {name:?}, which {by} records"),
        };
        return Some((s.check, why));
    }
    None
}

/// What the check found of a manifest whose anchor the log does not hold, for what it tells the
/// trader ([`super::vault_ops::Prepared::changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Followed {
    /// The manifest is the one the log's last signed check (this line) recorded.
    pub recorded: bool,
    pub seq: u64,
}

impl super::Keystore {
    /// Hold `m`, whose anchor `evidence` could not follow (a gap, not a break), to the log's
    /// signed checks ([`follows`]): refused where it goes back on one (`NotFollowing`), or
    /// where one goes back on another (`ChecksDisagree`); the `key` lines it goes back on, and
    /// where it is the last check's own manifest the `key` lines after that check, are read
    /// into `evidence` as from an anchor, and refuse the credentials they name. Returns the
    /// warning to give of the gap, if any, and what was found. `vault` is `vault.json` as read
    /// once (at `vault_path`).
    pub(crate) fn follow_last_check(
        &self,
        m: &ManifestFile,
        (vault, vault_path): (&super::format::VaultFile, &std::path::Path),
        evidence: &mut Evidence,
        ledger: &mut dyn super::Ledger,
    ) -> Result<(Option<String>, Option<Followed>), super::KeystoreError> {
        use super::vault_ops::gap_warning;
        let Some(gap) = evidence.gap.clone() else {
            return Ok((None, None));
        };
        if evidence.broken.is_some() {
            return Ok((Some(gap_warning(&gap)), None));
        }
        // Said from the anchor itself: the gap's own words blame the log ("replaced, cut,
        // edited or started afresh"), which chains whole and holds this keystore's checks.
        let anchor = match &m.audit {
            Some(a) => format!(
                "its anchor, audit line {}, is not in this log as it was",
                a.seq
            ),
            None => {
                "it has no anchor: it was written while the audit log could not be opened".into()
            }
        };
        let whole = ledger.since(&super::Anchor::genesis());
        // The lines the record leaves out (`vault_ops::unlinked_warning` tells each by its own
        // line) may stand before where the anchor was, outside `evidence.checks`: a rotation's
        // own line, signed by its vault key, was said written by hand after its `lineage` was
        // taken out of the log (red-team round 24, recheck).
        for u in &evidence.unlinked {
            if let Err(at) = evidence.checks.binary_search_by_key(&u.seq, |c| c.seq)
                && let Some(line) = whole.checks.iter().find(|c| c.seq == u.seq)
            {
                evidence.checks.insert(at, line.clone());
            }
        }
        // The lines the check reads back where the anchor would have given them.
        let read_back = |mut lines: Vec<ChangeLine>, evidence: &mut Evidence| {
            lines.append(&mut evidence.change_lines);
            evidence.changes = lines.iter().map(|l| l.change.clone()).collect();
            evidence.change_lines = lines;
        };
        let ancestry = super::lineage::ancestry(vault, vault_path)?;
        match follows(m, &whole, &ancestry) {
            Follows::NoCheck => Ok((Some(gap_warning(&gap)), None)),
            Follows::Recorded { seq, lines } => {
                read_back(lines, evidence);
                let warning = format!(
                    "the keystore's manifest is not anchored in this audit log ({anchor}), but the log holds that manifest's own check (audit line {seq}, signed by the vault key), and the credential changes since were read back from there; the log was rewritten from before that line, or the line was copied in from another copy of the keystore's log (`tapsign audit verify` shows whether it still chains), so keep a copy of it"
                );
                Ok((
                    Some(warning),
                    Some(Followed {
                        recorded: true,
                        seq,
                    }),
                ))
            }
            Follows::After {
                seq,
                generation,
                behind,
            } => {
                let held = match behind.is_empty() {
                    true => String::new(),
                    false => format!(
                        "; it does not reflect {} `key` line(s) of this log (audit line {} first), read back as from an anchor: a credential file older than they record is refused",
                        behind.len(),
                        behind[0].seq
                    ),
                };
                read_back(behind, evidence);
                let whence = match &m.audit {
                    Some(_) => {
                        "beside another copy of the log (this log put back from an older copy, or a copy of the keystore's)"
                    }
                    None => {
                        "while this log could not be opened (or beside another copy of the log)"
                    }
                };
                let warning = format!(
                    "the keystore's manifest (generation {}) was anchored in another audit log than this one ({anchor}): this log holds the keystore's checks up to audit line {seq} (generation {generation}), and the manifest goes back on none of them, so it was written after them {whence}{held}; credential changes made since the manifest and not recorded here could not be read back, so a credential put back to its state then would go unnoticed",
                    m.generation
                );
                Ok((
                    Some(warning),
                    Some(Followed {
                        recorded: false,
                        seq,
                    }),
                ))
            }
            Follows::GoesBack {
                seq,
                generation,
                why,
            } => Err(super::KeystoreError::NotFollowing {
                path: self.manifest_path(),
                found: m.generation,
                seq,
                generation,
                why,
            }),
            Follows::Forked {
                seq,
                generation,
                earlier,
                why,
            } => Err(super::KeystoreError::ChecksDisagree {
                path: self.manifest_path(),
                seq,
                generation,
                earlier,
                why,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::manifest::CredRecord;
    use crate::keystore::seal::{VaultKey, compressed};

    fn key(byte: u8) -> (VaultKey, String) {
        let vk = VaultKey::from_bytes(&[byte; 32]).unwrap();
        let hex = hex::encode(compressed(&vk.public_key()));
        (vk, hex)
    }

    fn rec(name: &str, created: u64, sha: char) -> CredRecord {
        CredRecord {
            name: name.into(),
            created,
            sha256: sha.to_string().repeat(64),
        }
    }

    fn check(
        seq: u64,
        generation: u64,
        (vk, key): &(VaultKey, String),
        records: Vec<CredRecord>,
    ) -> CheckLine {
        CheckLine {
            seq,
            unlock: true,
            generation,
            vault_key: key.clone(),
            reason: "unlock".into(),
            signature: crate::keystore::attest::sign(vk, generation, key, "unlock", &records),
            records: Some(records),
        }
    }

    fn change(seq: u64, action: KeyAction, name: &str, created: u64, sha: char) -> ChangeLine {
        ChangeLine {
            seq,
            time: String::new(),
            change: KeyChange {
                action,
                name: name.into(),
                created,
                sha256: sha.to_string().repeat(64),
            },
            pid: 0,
            exe: String::new(),
        }
    }

    fn manifest(generation: u64, key: &str, credentials: Vec<CredRecord>) -> ManifestFile {
        let mut m = ManifestFile::unsigned_record();
        (m.generation, m.vault_key, m.credentials) = (generation, key.into(), credentials);
        m.audit = Some(crate::keystore::Anchor::genesis());
        m
    }

    fn goes_back(f: Follows) -> String {
        match f {
            Follows::GoesBack { why, .. } => why,
            other => panic!("{other:?}"),
        }
    }

    /// Red-team round 24: the corners of holding a manifest whose anchor the log does not hold
    /// to the log's last signed check.
    #[test]
    fn a_manifest_follows_the_last_signed_check_and_the_key_lines_after_it() {
        let v = key(3);
        let ancestry = [v.1.clone()];
        let whole = Evidence {
            checks: vec![check(
                4,
                7,
                &v,
                vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')],
            )],
            change_lines: vec![
                change(2, KeyAction::Add, "k3", 50, 'd'),
                change(3, KeyAction::Remove, "k3", 50, 'd'),
            ],
            ..Evidence::default()
        };
        let later = |creds| follows(&manifest(8, &v.1, creds), &whole, &ancestry);
        // At or after every record: it follows.
        let f = later(vec![rec("k1", 300, 'e'), rec("k2", 100, 'c')]);
        assert!(matches!(f, Follows::After { seq: 4, .. }), "{f:?}");
        // An older version of a recorded name, or another file at its version, or the name
        // left out: another copy's.
        let why = goes_back(later(vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')]));
        assert!(why.contains("records a later version"), "{why}");
        let why = goes_back(later(vec![rec("k1", 200, 'x'), rec("k2", 100, 'c')]));
        assert!(why.contains("in another file"), "{why}");
        let why = goes_back(later(vec![rec("k2", 100, 'c')]));
        assert!(why.contains("does not record credential \"k1\""), "{why}");
        // A name removed before the check, which it does not list, held present at that
        // version; left out is fine (a rotation forgets removals).
        let with = |extra| {
            let mut creds = vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')];
            creds.extend(extra);
            later(creds)
        };
        let why = goes_back(with(Some(rec("k3", 50, 'd'))));
        assert!(why.contains("audit line 3 (before that check"), "{why}");
        assert!(matches!(with(None), Follows::After { .. }));
        assert!(matches!(
            with(Some(rec("k3", 60, 'f'))),
            Follows::After { .. }
        ));
        // The check's own manifest: the key lines after it are read back from there.
        let mut after = whole.clone();
        after
            .change_lines
            .push(change(5, KeyAction::Replace, "k1", 300, 'e'));
        let own = manifest(7, &v.1, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]);
        match follows(&own, &after, &ancestry) {
            Follows::Recorded { seq: 4, lines } => assert_eq!(lines[0].seq, 5),
            other => panic!("{other:?}"),
        }
        // A later manifest is held to those lines too, as from an anchor: they refuse the
        // credential they name, not the keystore (anyone can append one; red-team round 24,
        // recheck).
        let f = follows(
            &manifest(8, &v.1, own.credentials.clone()),
            &after,
            &ancestry,
        );
        match f {
            Follows::After { behind, .. } => {
                assert_eq!(behind.iter().map(|l| l.seq).collect::<Vec<_>>(), [5]);
            }
            other => panic!("{other:?}"),
        }
        // The same generation with other contents: another copy's.
        let f = follows(
            &manifest(7, &v.1, vec![rec("k2", 100, 'c')]),
            &whole,
            &ancestry,
        );
        assert!(goes_back(f).contains("same generation"));
    }

    #[test]
    fn only_a_check_signed_by_the_vault_or_an_ancestor_counts_and_versions_compare_across_a_rotation()
     {
        let (old, new) = (key(3), key(4));
        let whole = Evidence {
            checks: vec![check(4, 7, &old, vec![rec("k1", 200, 'b')])],
            ..Evidence::default()
        };
        // Re-sealed by a rotation: the same `created`, another hash, a later vault.
        let m = manifest(8, &new.1, vec![rec("k1", 200, 'z')]);
        let f = follows(&m, &whole, &[old.1.clone(), new.1.clone()]);
        assert!(matches!(f, Follows::After { .. }), "{f:?}");
        let m = manifest(8, &new.1, vec![rec("k1", 100, 'z')]);
        assert!(matches!(
            follows(&m, &whole, &[old.1.clone(), new.1.clone()]),
            Follows::GoesBack { .. }
        ));
        // A check of a vault the one on disk does not descend from, or an unsigned line, or a
        // forged signature, holds nothing.
        assert!(matches!(
            follows(&m, &whole, std::slice::from_ref(&new.1)),
            Follows::NoCheck
        ));
        // A rotation's own check, of the same version re-sealed, does not go back on the one
        // before it.
        let mut rotated = whole.clone();
        rotated
            .checks
            .push(check(6, 8, &new, vec![rec("k1", 200, 'z')]));
        let m = manifest(9, &new.1, vec![rec("k1", 200, 'z')]);
        let f = follows(&m, &rotated, &[old.1.clone(), new.1.clone()]);
        assert!(matches!(f, Follows::After { .. }), "{f:?}");
        let m = manifest(8, &new.1, vec![rec("k1", 100, 'z')]);
        let mut forged = whole.clone();
        forged.checks[0].signature = "00".repeat(64);
        assert!(matches!(
            follows(&m, &forged, &[old.1.clone(), new.1.clone()]),
            Follows::NoCheck
        ));
    }

    /// Red-team round 24, recheck: the copy's own signed check, appended, was "the last check",
    /// and its manifest that check's own. Every signed check counts, and one that goes back on
    /// an earlier one is another copy's: refused whatever the manifest, naming both lines.
    #[test]
    fn a_signed_check_that_goes_back_on_an_earlier_one_is_another_copys() {
        let v = key(3);
        let ancestry = [v.1.clone()];
        let ours = check(6, 3, &v, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]);
        let theirs = check(9, 4, &v, vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')]);
        let whole = Evidence {
            checks: vec![ours.clone(), theirs],
            change_lines: vec![change(5, KeyAction::Replace, "k1", 200, 'b')],
            ..Evidence::default()
        };
        let copy = manifest(4, &v.1, vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')]);
        match follows(&copy, &whole, &ancestry) {
            Follows::Forked {
                seq: 9,
                earlier: 6,
                why,
                ..
            } => assert!(
                why.contains("audit line 6, signed too, a later version"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // Another file at the same version, or a version removed before a check that left it
        // out, is going back too; the same records again (a later check) are not.
        let other = check(9, 4, &v, vec![rec("k1", 200, 'x'), rec("k2", 100, 'c')]);
        let whole2 = Evidence {
            checks: vec![ours.clone(), other],
            ..Evidence::default()
        };
        assert!(matches!(
            follows(&copy, &whole2, &ancestry),
            Follows::Forked { .. }
        ));
        let gone = check(8, 4, &v, vec![rec("k1", 200, 'b')]);
        let back = check(9, 5, &v, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]);
        let whole3 = Evidence {
            checks: vec![ours.clone(), gone, back],
            change_lines: vec![change(7, KeyAction::Remove, "k2", 100, 'c')],
            ..Evidence::default()
        };
        match follows(&copy, &whole3, &ancestry) {
            Follows::Forked { seq: 9, why, .. } => {
                assert!(why.contains("audit line 7 records removed"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let again = check(9, 4, &v, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]);
        let whole4 = Evidence {
            checks: vec![ours, again],
            ..Evidence::default()
        };
        assert!(!matches!(
            follows(&copy, &whole4, &ancestry),
            Follows::Forked { .. }
        ));
    }

    /// A manifest is held to every signed check, not the last alone: an earlier check records
    /// a later version than the manifest holds, and the last one leaves the name out.
    #[test]
    fn a_manifest_is_held_to_every_signed_check() {
        let v = key(3);
        let whole = Evidence {
            checks: vec![
                check(4, 7, &v, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]),
                check(6, 8, &v, vec![rec("k2", 100, 'c')]),
            ],
            ..Evidence::default()
        };
        let m = manifest(9, &v.1, vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')]);
        match follows(&m, &whole, std::slice::from_ref(&v.1)) {
            Follows::GoesBack { seq: 4, why, .. } => {
                assert!(why.contains("that check records a later version"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Red-team round 24, recheck: a manifest with no anchor was held to the check alone, and a
    /// `key add --replace` after the check was skipped. It is held to the `key` lines too, each
    /// refusing its credential; its honest miss, a removal (the file gone, the record kept),
    /// is folded in as from an anchor, which refuses nothing where the file is gone.
    #[test]
    fn an_anchorless_manifest_is_held_to_the_key_lines_after_the_check() {
        let v = key(3);
        let whole = Evidence {
            checks: vec![check(
                4,
                7,
                &v,
                vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')],
            )],
            change_lines: vec![
                change(5, KeyAction::Replace, "k1", 200, 'b'),
                change(6, KeyAction::Remove, "k2", 100, 'c'),
            ],
            ..Evidence::default()
        };
        let mut m = manifest(9, &v.1, vec![rec("k1", 100, 'a'), rec("k2", 100, 'c')]);
        m.audit = None;
        match follows(&m, &whole, std::slice::from_ref(&v.1)) {
            Follows::After { behind, .. } => {
                let seqs: Vec<_> = behind.iter().map(|l| (l.seq, l.change.action)).collect();
                assert_eq!(seqs, [(5, KeyAction::Replace), (6, KeyAction::Remove)]);
            }
            other => panic!("{other:?}"),
        }
        // The honest one: it took the replacement (the newer file), and the removal is the one
        // line it goes back on.
        m.credentials = vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')];
        match follows(&m, &whole, std::slice::from_ref(&v.1)) {
            Follows::After { behind, .. } => {
                assert_eq!(behind.iter().map(|l| l.seq).collect::<Vec<_>>(), [6]);
            }
            other => panic!("{other:?}"),
        }
    }
}
