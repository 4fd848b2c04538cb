//! A manifest whose anchor the audit log does not hold, against the log's last signed check
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
//! must not go back on it. The log's lines can only make this refuse more: a line anyone
//! appends cannot raise a manifest to what it must follow.

use std::collections::BTreeMap;

use super::ledger::{ChangeLine, CheckLine, Evidence, KeyAction, KeyChange, forward};
use super::manifest::ManifestFile;

/// What the log's last signed check makes of a manifest whose anchor it does not hold.
#[derive(Debug)]
pub(crate) enum Follows {
    /// The log holds no check signed by this vault key or one it descends from: a log started
    /// afresh, or from before lines were signed. Nothing to hold the manifest to.
    NoCheck,
    /// The manifest is the one that check recorded (same generation, vault and credentials):
    /// the `key` lines after it (`since`) came after the manifest too, and are read back as
    /// from an anchor.
    Recorded { seq: u64, since: Vec<ChangeLine> },
    /// The manifest came after that check and goes back on nothing it or the `key` lines after
    /// it record.
    After { seq: u64, generation: u64 },
    /// The manifest goes back on that check, or on a `key` line after it: it is another copy's.
    GoesBack {
        seq: u64,
        generation: u64,
        why: String,
    },
}

/// The last `keystore` line of `whole` (the log read along its chain from the first line)
/// signed by one of `ancestry` (the vault on disk's key and those it descends from, by its
/// verified lineage), and what it makes of `m`. A line of the vault on disk or an ancestor
/// counts whether or not the log's record links to it: a rotation's line whose `lineage` was
/// taken out of the log is still the trader's, and the lineage on disk vouches for its key.
pub(crate) fn follows(m: &ManifestFile, whole: &Evidence, ancestry: &[String]) -> Follows {
    let auth = super::attest::authenticated(&whole.checks, ancestry, |a| !a.is_empty());
    let Some(check) = auth.lines.last().copied() else {
        return Follows::NoCheck;
    };
    let since: Vec<ChangeLine> = (whole.change_lines.iter())
        .filter(|l| l.seq > check.seq)
        .cloned()
        .collect();
    let records = check.records.as_deref().unwrap_or_default();
    let (seq, generation) = (check.seq, check.generation);
    if m.generation == check.generation {
        if m.vault_key == check.vault_key && m.credentials == records {
            return Follows::Recorded { seq, since };
        }
        return Follows::GoesBack {
            seq,
            generation,
            why: "that check records a manifest of the same generation with other contents".into(),
        };
    }
    // A manifest below the check is refused by its generation (`OlderThanLog`).
    if m.generation < check.generation {
        return Follows::After { seq, generation };
    }
    // A manifest written while the log could not be read had no `key` line since the check
    // to fold (a removal's file gone, its record kept): held to the check alone.
    let since = match m.audit {
        Some(_) => since,
        None => Vec::new(),
    };
    match goes_back(m, check, whole, &since) {
        Some(why) => Follows::GoesBack {
            seq,
            generation,
            why,
        },
        None => Follows::After { seq, generation },
    }
}

/// Where each name stands as of `check` and the `key` lines after it (`since`): the check's
/// records; a removal before the check of a name it does not record (the record of the removal
/// went with a rotation's `removed`, so a manifest need not name it, but must not hold it
/// present at that version); then each line since, taken only where it moves the name forward
/// ([`forward`]). `bool`: a manifest after it must name the name (present or removed).
fn floor<'a>(
    check: &'a CheckLine,
    whole: &'a Evidence,
    since: &'a [ChangeLine],
) -> BTreeMap<&'a str, (KeyChange, bool, u64)> {
    let records = check.records.as_deref().unwrap_or_default();
    let mut before: BTreeMap<&str, (KeyChange, u64)> = BTreeMap::new();
    for l in whole.change_lines.iter().filter(|l| l.seq < check.seq) {
        let seen = before.get(l.change.name.as_str()).map(|(c, _)| c);
        if let Some(next) = forward(seen, l.change.clone()) {
            before.insert(&l.change.name, (next, l.seq));
        }
    }
    let mut out: BTreeMap<&str, (KeyChange, bool, u64)> = BTreeMap::new();
    for (name, (ch, seq)) in before {
        if ch.action == KeyAction::Remove && !records.iter().any(|r| r.name == name) {
            out.insert(name, (ch, false, seq));
        }
    }
    for r in records {
        let ch = KeyChange {
            action: KeyAction::Add,
            name: r.name.clone(),
            created: r.created,
            sha256: r.sha256.clone(),
        };
        out.insert(&r.name, (ch, true, check.seq));
    }
    for l in since {
        let seen = out.get(l.change.name.as_str()).map(|(c, ..)| c);
        if let Some(next) = forward(seen, l.change.clone()) {
            out.insert(&l.change.name, (next, true, l.seq));
        }
    }
    out
}

/// Why `m`, a later generation than `check`, goes back on it or on the lines since; `None`
/// where it does not. Versions compare by `created`, and by hash too where the check is of
/// `m`'s own vault (a rotation seals every file again and keeps `created`).
fn goes_back(
    m: &ManifestFile,
    check: &CheckLine,
    whole: &Evidence,
    since: &[ChangeLine],
) -> Option<String> {
    let when = crate::audit::utc_secs;
    let same_vault = check.vault_key == m.vault_key;
    for (name, (want, binding, seq)) in floor(check, whole, since) {
        let present = m.credentials.iter().find(|c| c.name == name);
        let removed = m.removed.iter().find(|r| r.name == name);
        let by = match seq == check.seq {
            true => "that check".to_owned(),
            false if seq < check.seq => {
                format!("audit line {seq} (before that check, which does not list it)")
            }
            false => format!("audit line {seq}"),
        };
        let ok = match (present, removed) {
            (None, None) => !(binding && same_vault),
            (Some(c), _) if want.action == KeyAction::Remove => c.created > want.created,
            (Some(c), _) => {
                c.created > want.created
                    || (c.created == want.created && (!same_vault || c.sha256 == want.sha256))
            }
            (None, Some(r)) => r.created >= want.created,
        };
        if ok {
            continue;
        }
        let mut name = name.to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        return Some(match (present, want.action) {
            (Some(c), KeyAction::Remove) => format!(
                "it holds credential {name:?} as added {}, which {by} records removed",
                when(c.created)
            ),
            (Some(c), _) if c.created == want.created => format!(
                "it holds credential {name:?} in another file than the version {by} records (both added {})",
                when(c.created)
            ),
            (Some(c), _) => format!(
                "it holds credential {name:?} as added {}, and {by} records a later version, added {}",
                when(c.created),
                when(want.created)
            ),
            (None, _) if removed.is_some() => format!(
                "it records credential {name:?} removed as of an older version than the one {by} records"
            ),
            (None, _) => format!("it does not record credential {name:?}, which {by} records"),
        });
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
    /// last signed check ([`follows`]): refused where it goes back on it (`NotFollowing`);
    /// where it is that check's own manifest, the `key` lines after the check are read back
    /// into `evidence` as from an anchor. Returns the warning to give of the gap, if any, and
    /// what was found. `vault` is `vault.json` as read once (at `vault_path`).
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
            None => "it has no anchor: it was written while the log could not be read".into(),
        };
        let whole = ledger.since(&super::Anchor::genesis());
        let ancestry = super::lineage::ancestry(vault, vault_path)?;
        match follows(m, &whole, &ancestry) {
            Follows::NoCheck => Ok((Some(gap_warning(&gap)), None)),
            Follows::Recorded { seq, since } => {
                let mut lines = since;
                lines.append(&mut evidence.change_lines);
                evidence.changes = lines.iter().map(|l| l.change.clone()).collect();
                evidence.change_lines = lines;
                let warning = format!(
                    "the keystore's manifest is not anchored in this audit log ({anchor}), but the log holds that manifest's own check (audit line {seq}, signed by the vault key), and the credential changes since were read back from there; the log was rewritten from before that line (`tapsign audit verify` shows whether it still chains), so keep a copy of it"
                );
                Ok((
                    Some(warning),
                    Some(Followed {
                        recorded: true,
                        seq,
                    }),
                ))
            }
            Follows::After { seq, generation } => {
                let warning = format!(
                    "the keystore's manifest (generation {}) was anchored in another audit log than this one ({anchor}): this log holds the keystore's checks up to audit line {seq} (generation {generation}), and the manifest goes back on nothing they record, so it was written after them beside another copy of the log (this log put back from an older copy, or a copy of the keystore's); credential changes made since the manifest could not be read back, so a credential put back to its state then would go unnoticed",
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
            Follows::Recorded { seq: 4, since } => assert_eq!(since[0].seq, 5),
            other => panic!("{other:?}"),
        }
        // A later manifest must follow those lines too; a line anyone appended can only make
        // it refuse more.
        let f = follows(
            &manifest(8, &v.1, own.credentials.clone()),
            &after,
            &ancestry,
        );
        assert!(goes_back(f).contains("audit line 5 records a later version"));
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
        let mut forged = whole.clone();
        forged.checks[0].signature = "00".repeat(64);
        assert!(matches!(
            follows(&m, &forged, &[old.1.clone(), new.1.clone()]),
            Follows::NoCheck
        ));
    }
}
