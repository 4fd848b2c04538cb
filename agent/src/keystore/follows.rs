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
/// the vault of the check that vouches for it, that check's line, and the line that set it: the
/// check itself, or, for a removal, the earlier check that recorded the name, which this one
/// leaves out.
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
/// every `key` line folded forward ([`forward`]) with the line that set it. `ancestry` orders
/// the vaults, each descending from those before it.
struct Record<'a> {
    signed: BTreeMap<&'a str, Stand<'a>>,
    keys: BTreeMap<&'a str, (KeyChange, &'a ChangeLine)>,
    ancestry: &'a [String],
}

impl<'a> Record<'a> {
    fn new(ancestry: &'a [String]) -> Self {
        Self {
            signed: BTreeMap::new(),
            keys: BTreeMap::new(),
            ancestry,
        }
    }

    fn key_line(&mut self, l: &'a ChangeLine) {
        let seen = self.keys.get(l.change.name.as_str()).map(|(c, _)| c);
        if let Some(next) = forward(seen, l.change.clone()) {
            self.keys.insert(&l.change.name, (next, l));
        }
    }

    /// Raise the signed record by `check`: its records, and the names it leaves out
    /// ([`left_out`]), removed at the version the earlier check recorded. Only the signed
    /// lines set it: a `key` line, which anyone can write, refuses the credential it names and
    /// nothing more, so a forged removal before a check that lists nothing (the vault's first)
    /// made the trader's own next check "go back" on it, and nothing opened (red-team round 24,
    /// second recheck). Only ever raised: a line appended can add refusals, never take one
    /// away.
    fn raise(&mut self, check: &'a CheckLine) {
        for (name, was) in left_out(&self.signed, check, self.ancestry) {
            let gone = Stand {
                sha256: None,
                vault: &check.vault_key,
                check: check.seq,
                line: was.check,
                ..was
            };
            self.signed.insert(name, gone);
        }
        for r in check.records.as_deref().unwrap_or_default() {
            let new = Stand {
                created: r.created,
                sha256: Some(&r.sha256),
                vault: &check.vault_key,
                check: check.seq,
                line: check.seq,
            };
            self.stand(&r.name, new);
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

/// The names `signed` holds present that `check` leaves out, where `check` is of the vault of
/// the check that recorded them or one descending from it (by `ancestry`, oldest first). Each
/// check folds in every change since the one before it, and keeps the record of a file that is
/// missing or refused, so a name it leaves out was removed (or forgotten by a rotation): the
/// signed lines alone prove it. Held by the `key remove` line alone, the removal was undone by
/// dropping that one unsigned line from the log (red-team round 24, second recheck). A line
/// with no records (from before lines carried them) leaves out nothing.
fn left_out<'a>(
    signed: &BTreeMap<&'a str, Stand<'a>>,
    check: &CheckLine,
    ancestry: &[String],
) -> Vec<(&'a str, Stand<'a>)> {
    let Some(records) = check.records.as_deref() else {
        return Vec::new();
    };
    let at = |v: &str| ancestry.iter().position(|k| k == v);
    let Some(mine) = at(&check.vault_key) else {
        return Vec::new();
    };
    (signed.iter())
        .filter(|(name, s)| {
            s.sha256.is_some()
                && s.check < check.seq
                && at(s.vault).is_some_and(|v| v <= mine)
                && !records.iter().any(|r| r.name == **name)
        })
        .map(|(name, s)| (*name, *s))
        .collect()
}

/// The names that one of `checks` (signed, in the log's order) records and a later one of the
/// same vault or a descendant (by `ancestry`) leaves out ([`left_out`]), each with the
/// `created` of the version removed; a later version recorded since brings the name back.
/// For the rebuild, which otherwise knew a removal by its unsigned `key remove` line alone.
pub(crate) fn signed_removals<'a>(
    checks: &[&'a CheckLine],
    ancestry: &'a [String],
) -> BTreeMap<&'a str, u64> {
    let mut record = Record::new(ancestry);
    for check in checks {
        record.raise(check);
    }
    (record.signed.iter())
        .filter(|(_, s)| s.sha256.is_none())
        .map(|(name, s)| (*name, s.created))
        .collect()
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
                "records credential {name:?} as added {}, which audit line {} recorded and audit line {}, signed too and later, left out (removed)",
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
    let mut record = Record::new(ancestry);
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
        let by = "that check";
        let mut name = (*name).to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        let why = match (present, s.sha256) {
            (Some(c), None) => format!(
                "it holds credential {name:?} as added {}, which audit line {}, signed too, recorded and that later check leaves out: it was removed",
                when(c.created),
                s.line
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
        evidence.unread |= whole.unread;
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
                // A manifest with no anchor was anchored nowhere, not "in another log"
                // (red-team round 25, recheck: both were said at once).
                let (was, whence) = match &m.audit {
                    Some(_) => (
                        format!("was anchored in another audit log than this one ({anchor})"),
                        "beside another copy of the log (this log put back from an older copy, or a copy of the keystore's)",
                    ),
                    None => (
                        "has no anchor".to_owned(),
                        "while this log could not be opened or read (or beside another copy of the log)",
                    ),
                };
                let warning = format!(
                    "the keystore's manifest (generation {}) {was}: this log holds the keystore's checks up to audit line {seq} (generation {generation}), and the manifest goes back on none of them, so it was written after them {whence}{held}; credential changes made since the manifest and not recorded here could not be read back, so a credential put back to its state then would go unnoticed",
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
