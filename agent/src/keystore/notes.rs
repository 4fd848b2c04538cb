//! What an unlock tells the trader of the credential changes the audit log records since the
//! keystore's last check: what each name went from and to, when and by which program.

use std::collections::BTreeMap;

use super::ledger::{ChangeLine, KeyAction};
use super::manifest::{ManifestFile, takes};

/// What the trader is told of the credential changes since the keystore's last check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeNotes {
    /// A sentence for each credential recorded at the last check that now holds another
    /// version (replaced, whatever the commands that did it), then for each one removed since:
    /// what costs money if it was not the trader. Shown before any other warning, replaced
    /// ones first; past [`LOUD_NOTED`], one more sentence (named `""`) counts the rest: names
    /// need no touch to be stored, so anyone can have a check record many and then remove them
    /// (a review of round 20: uncut, they pushed `status` past one answer for a day).
    /// Each with the credential's name.
    pub loud: Vec<(String, String)>,
    /// How many of [`ChangeNotes::loud`], from the first, are credentials that now hold
    /// another version (the rest are removals, and the sentence counting the rest): what a
    /// running agent keeps longest (red-team round 21: names stored and removed by anyone,
    /// noted at four more checks, evicted a replacement's note within its day).
    pub replaced: usize,
    /// At most two sentences: the names stored since (a setup's first unlock lists them all,
    /// and a warning each taught the trader to skim past them), and how many were stored and
    /// removed again (nothing of them is left).
    pub quiet: Vec<String>,
}

impl ChangeNotes {
    pub fn is_empty(&self) -> bool {
        self.loud.is_empty() && self.quiet.is_empty()
    }

    /// Every sentence, loud ones first.
    pub fn all(&self) -> Vec<String> {
        let loud = self.loud.iter().map(|(_, s)| s);
        loud.chain(&self.quiet).cloned().collect()
    }
}

/// Where a name stands, as far as the notes tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State<'a> {
    Absent,
    Present(u64, &'a str),
    Removed(u64),
}

impl State<'_> {
    fn created(self) -> Option<u64> {
        match self {
            State::Absent => None,
            State::Present(c, _) | State::Removed(c) => Some(c),
        }
    }
}

/// What the trader is told of the credential changes recorded since the keystore's last check
/// (`manifest`, the record that check left; `lines`, oldest first). Sealing needs no secret,
/// so anyone who runs as the trader can `key add --replace` a name with an API key of their
/// own: the unlock opened it as before, and orders went to their account with nothing shown
/// (red-team round 20).
///
/// Each name is judged by what it went from (the manifest's record) and to (after the lines
/// the check takes, by its own rule: [`takes`]), not by the verbs of the lines: `key remove`
/// then `key add` is a replacement as much as `--replace` is, and read as a mild "added"; a
/// line the check ignores changes nothing, and a note built from one advised removing the
/// trader's own credential; names stored and removed again, many of them, pushed a real
/// replacement out of the notes shown (red-team round 20, recheck). Linear in the lines: a
/// log anyone can append to may hold a great many.
///
/// `files` are the credential files the operation accepted, by name, with their SHA-256: a
/// file that is not the version the record and the lines leave its name at was written with
/// no line (by hand, sealed in a copy of the keystore and copied in, or by a `key add` killed
/// before its line), and is noted as loudly as a replacement, first: it had one mild warning,
/// gone at the next unlock, and none at all where the log was started afresh (red-team round
/// 21). A name stored more than once since the check is loud too: `key add` then `key add
/// --replace` by another program read as the trader's own "stored".
pub fn change_notes(
    manifest: Option<&ManifestFile>,
    lines: &[ChangeLine],
    files: &BTreeMap<String, String>,
) -> ChangeNotes {
    change_notes_resealed(manifest, lines, files, (&BTreeMap::new(), false))
}

/// [`change_notes`], where `resealed` names the files a rotation the record leaves out sealed
/// again (each name's `created`): such a file is the version of that `created`, whatever its
/// hash (a rotation keeps `created`, and the check it ran refused a file with the `created` of
/// the version it expected and another hash).
///
/// `elsewhere`: `resealed` is the record of a manifest anchored in another log, which goes
/// back on nothing this one records (`super::follows`): a later version it records was stored
/// beside that log, and is said so, not as a file no command wrote (red-team round 24,
/// recheck: after a log restored from an older backup, the trader's own current key was told
/// as one "someone else chose").
fn change_notes_resealed(
    manifest: Option<&ManifestFile>,
    lines: &[ChangeLine],
    files: &BTreeMap<String, String>,
    (resealed, elsewhere): (&BTreeMap<String, u64>, bool),
) -> ChangeNotes {
    let mut before: BTreeMap<&str, State<'_>> = BTreeMap::new();
    let written = manifest.map_or(0, |m| m.written);
    if let Some(m) = manifest {
        for c in &m.credentials {
            before.insert(&c.name, State::Present(c.created, &c.sha256));
        }
        for r in &m.removed {
            before.entry(&r.name).or_insert(State::Removed(r.created));
        }
    }
    // Each name the taken lines move: where it stood, where it stands, the lines, and where it
    // first appears (the order the notes keep).
    let mut moved: BTreeMap<&str, (usize, State<'_>, State<'_>, Vec<&ChangeLine>)> =
        BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let ch = &l.change;
        let was = before
            .get(ch.name.as_str())
            .copied()
            .unwrap_or(State::Absent);
        let entry = moved
            .entry(&ch.name)
            .or_insert_with(|| (i, was, was, Vec::new()));
        let now = entry.2;
        if !takes(now.created(), ch, written) {
            continue;
        }
        entry.2 = match ch.action {
            KeyAction::Add | KeyAction::Replace => State::Present(ch.created, &ch.sha256),
            KeyAction::Remove => State::Removed(ch.created.max(now.created().unwrap_or(0))),
        };
        entry.3.push(l);
    }
    // Where the lines leave each name present, before the files are judged: its `created`.
    let moved_to: BTreeMap<&str, u64> = (moved.iter())
        .filter_map(|(name, m)| match m.2 {
            State::Present(c, _) if !m.3.is_empty() => Some((*name, c)),
            _ => None,
        })
        .collect();
    // Each accepted file against where its name stands: one that is not that version has no
    // line of its own (whatever the log says, a gap or not).
    // With no record to compare with (a keystore from before manifests, a rebuild), none.
    let mut unrecorded: Vec<&str> = Vec::new();
    for (name, sha256) in files.iter().filter(|_| manifest.is_some()) {
        let now = match moved.get(name.as_str()) {
            Some(m) => m.2,
            None => before.get(name.as_str()).copied().unwrap_or(State::Absent),
        };
        let same = |c: u64, s: &str| s == sha256 || resealed.get(name.as_str()) == Some(&c);
        if matches!(now, State::Present(c, s) if same(c, s)) {
            continue;
        }
        let was = before.get(name.as_str()).copied().unwrap_or(State::Absent);
        let entry = moved
            .entry(name)
            .or_insert_with(|| (lines.len(), was, was, Vec::new()));
        entry.2 = State::Present(u64::MAX, sha256);
        unrecorded.push(name);
    }
    let mut moved: Vec<_> = moved
        .into_iter()
        .filter(|(name, m)| !m.3.is_empty() || unrecorded.contains(name))
        .collect();
    moved.sort_by_key(|(_, (first, ..))| *first);

    // An accepted file's `created`, where a record it matches tells it (the manifest's, or a
    // rotation's re-sealing), below the `created` its name's last line leaves it at: the file
    // and that version's.
    let older = |name: &str| -> Option<(u64, u64)> {
        let sha256 = files.get(name)?;
        let file = match (resealed.get(name), before.get(name)) {
            (Some(c), _) => *c,
            (None, Some(State::Present(c, s))) if s == sha256 => *c,
            _ => return None,
        };
        let lines = moved_to.get(name)?;
        (file < *lines).then_some((file, *lines))
    };
    let stored_elsewhere = |name: &str, was: State<'_>| {
        elsewhere
            && resealed
                .get(name)
                .is_some_and(|c| was.created().is_none_or(|w| *c > w))
    };
    // Replacements of names the last check recorded, then of names new since it, then
    // removals (all of recorded names): each list in the order first changed.
    let (mut replaced, mut fresh, mut removed, mut stored, mut gone) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    for (name, (_, was, now, own)) in moved {
        let no_line = unrecorded.contains(&name);
        let versions = own
            .iter()
            .filter(|l| l.change.action != KeyAction::Remove)
            .count();
        // Said as a line shows it: a line anyone appended may name a credential at any length.
        let mut name = name.to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        let name = name.as_str();
        // A name the last check recorded is the trader's (present or removed then); one new
        // since costs nothing to make, eight at a time (red-team round 21).
        let into = match was {
            State::Absent => &mut fresh,
            _ => &mut replaced,
        };
        match (was, now) {
            (State::Present(..), State::Present(..)) if was == now => {}
            // Its own lines since, and the file none of them: whoever ran them (the trader,
            // a moment ago) must not read the note as their doing (red-team round 22: "Unless
            // you just stored it yourself" told the trader who had to dismiss it).
            // The file is a version older than the one its name's last line records, as far
            // as its `created` is known (the record it matches): a copy put back, the
            // trader's own from before that change, not a key someone else chose (red-team
            // round 24: a rotated credential put back was called one).
            (_, State::Present(..)) if no_line && !own.is_empty() && older(name).is_some() => {
                let (file, recorded) = older(name).unwrap_or_default();
                into.push((name.to_owned(), format!(
                    "credential {name:?} holds an older version than its last line in the audit log records ({}): this file was added {}, that version {}, so an old copy of it was put back in its place, with no line: it holds the API key and secret you replaced, so if you replaced them because they leaked, orders signed with it are signed with the leaked secret; store the current one again with `tapsign key add {name} --exchange ... --replace`, and look for what wrote the file",
                    done(&own),
                    crate::audit::utc_secs(file),
                    crate::audit::utc_secs(recorded)
                )));
            }
            // A later version the manifest records, anchored in another log: stored beside
            // that log, as far as the check knows.
            (_, State::Present(..)) if no_line && stored_elsewhere(name, was) => {
                into.push((name.to_owned(), format!(
                    "credential {name:?} holds a later version than this audit log records (this file was added {}), which the keystore's manifest, signed by the vault key, records: it was stored beside another audit log, the one the manifest was anchored in (a log this one took the place of, or a copy of the keystore's). If you did not store it there, it holds an API key and secret someone else chose: store yours again with `tapsign key add {name} --exchange ... --replace`",
                    crate::audit::utc_secs(resealed.get(name).copied().unwrap_or_default())
                )));
            }
            (_, State::Present(..)) if no_line && !own.is_empty() => into.push((name.to_owned(), format!(
                "credential {name:?} is not the file its last line in the audit log records ({}): something wrote over it afterwards without recording it (by hand, or sealed in a copy of the keystore and copied in). It holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what wrote the file",
                done(&own)
            ))),
            (_, State::Present(..)) if no_line => into.push((name.to_owned(), format!(
                "credential {name:?} holds a file that no line of the audit log records writing since the keystore's last check {CHECKS}{}: tapsign's `key add` records each file it stores, so this one was written by hand, sealed in a copy of the keystore and copied in, or left by a `key add` killed before its line. Unless you just stored it yourself, it holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what wrote the file",
                match was {
                    State::Present(..) => " (it was recorded, and has changed)",
                    _ => " (a name it did not record)",
                }
            ))),
            // Replaced more than once: the trader who replaced it once themselves must not
            // read the note as their own doing (red-team round 21).
            (State::Present(..), State::Present(..)) if versions > 1 => into.push((name.to_owned(), format!(
                "credential {name:?} was replaced {versions} times since the keystore's last check {CHECKS}: {}; if you replaced it fewer times than that (once, say), the last version holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command",
                done(&own)
            ))),
            (State::Present(..), State::Present(..)) => into.push((name.to_owned(), format!(
                "credential {name:?} was replaced since the keystore's last check {CHECKS}: {}; if neither you nor a script of yours replaced it, it now holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command",
                done(&own)
            ))),
            (State::Present(..), _) => removed.push((name.to_owned(), format!(
                "credential {name:?} was removed since the keystore's last check {CHECKS}: {}; if that was not you, store it again with `tapsign key add {name} --exchange ...`",
                done(&own)
            ))),
            (_, State::Present(..)) if versions > 1 => into.push((name.to_owned(), format!(
                "credential {name:?} was stored, then stored again over it, since the keystore's last check {CHECKS}: {}; if you stored it only once, the later version holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command",
                done(&own)
            ))),
            (_, State::Present(..)) => stored.push(name.to_owned()),
            _ => gone += 1,
        }
    }
    // Past [`LOUD_NOTED`], what is named goes by what a substitution reaches: the recorded
    // names replaced, then those removed, then new names; shown replacements first.
    let total = replaced.len() + fresh.len() + removed.len();
    replaced.truncate(LOUD_NOTED);
    removed.truncate(LOUD_NOTED - replaced.len());
    fresh.truncate(LOUD_NOTED - replaced.len() - removed.len());
    replaced.append(&mut fresh);
    let mut notes = ChangeNotes {
        replaced: replaced.len(),
        loud: replaced,
        quiet: Vec::new(),
    };
    notes.loud.append(&mut removed);
    if total > notes.loud.len() {
        let more = total - notes.loud.len();
        notes.loud.push((
            String::new(),
            format!(
                "and {more} more credentials were replaced or removed since the keystore's last check: `tapsign audit` shows each `key` line"
            ),
        ));
    }
    if !stored.is_empty() {
        let listed: Vec<String> = stored
            .iter()
            .take(CHANGES_NOTED)
            .map(|n| format!("{n:?}"))
            .collect();
        let more = match stored.len().saturating_sub(CHANGES_NOTED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let (n, were) = match stored.len() {
            1 => ("1 credential".to_owned(), "was"),
            n => (format!("{n} credentials"), "were"),
        };
        notes.quiet.push(format!(
            "{n} {were} stored since the keystore's last check {CHECKS}: {}{more}; `tapsign audit` shows who stored each, and `tapsign key remove NAME` removes one you did not",
            listed.join(", ")
        ));
    }
    if gone > 0 {
        notes.quiet.push(format!(
            "{gone} credential name(s) were stored and removed again since the keystore's last check: nothing of them is left (`tapsign audit` shows each `key` line)"
        ));
    }
    notes
}

/// What a rebuild tells of the credential changes where no manifest verifies (gone, or edited):
/// the files as they are (`files`, name and SHA-256) against the record the audit log keeps
/// (`ev`, read from its first line) as of its last check, with the `key` lines since. A rebuild
/// compared only against a manifest that verifies, so one `rm manifest.json` after a `key add
/// --replace` made the advised rebuild say nothing, and the next unlock opened the other key in
/// silence (red-team round 21). `None`: the log records no check to judge from (a log started
/// afresh, or unreadable).
///
/// The last check is the last `keystore` line the vault key signed, and the record it left is
/// the credential records it carries (`super::attest`): one line copied and appended after a
/// `key add --replace` was taken for a check, and hid the replacement (red-team round 22); and
/// a rotation's line records the files it sealed again, whose hashes no `key` line records, so
/// a rebuild after one called every credential a file no line records. A log with no signed
/// line (from before they were signed) is read as it was: its last `keystore` line, and the
/// `key` lines before it.
pub fn since_logged_check(
    ev: &super::ledger::Evidence,
    files: &BTreeMap<String, String>,
) -> Option<ChangeNotes> {
    since_check_resealed(ev, files, (&BTreeMap::new(), false))
}

/// [`since_logged_check`], with files a rotation the log does not record sealed again
/// (`resealed`, see [`change_notes_resealed`]).
fn since_check_resealed(
    ev: &super::ledger::Evidence,
    files: &BTreeMap<String, String>,
    resealed: (&BTreeMap<String, u64>, bool),
) -> Option<ChangeNotes> {
    let auth = super::attest::authenticated(&ev.checks, &ev.believed_vaults(), |a| !a.is_empty());
    if !auth.signed {
        return unsigned_since_check(ev, files);
    }
    let mut record = ManifestFile::unsigned_record();
    // Past as many forged lines as are looked at, nothing is a check: every file is said.
    let last = auth.lines.last().map_or(0, |c| c.seq);
    if let Some(check) = auth.lines.last() {
        record.credentials = check.records.clone().unwrap_or_default();
    }
    let since: Vec<ChangeLine> = (ev.change_lines.iter())
        .filter(|l| l.seq > last)
        .cloned()
        .collect();
    let mut notes = change_notes_resealed(Some(&record), &since, files, resealed);
    let flooded = super::attest::flooded_note(auth.flooded, "the keystore's last check");
    notes.loud.extend(flooded.map(|n| (String::new(), n)));
    (notes.quiet).extend(super::attest::not_checks_note(&auth.not_checks));
    (notes.quiet).extend(super::attest::unlinked_note(&auth.unlinked));
    (notes.quiet).extend(super::attest::replayed_note(&auth.replayed));
    Some(notes)
}

/// [`since_logged_check`] in a log with no signed `keystore` line.
fn unsigned_since_check(
    ev: &super::ledger::Evidence,
    files: &BTreeMap<String, String>,
) -> Option<ChangeNotes> {
    let last = ev.checks.iter().map(|c| c.seq).max()?;
    let mut at_check: BTreeMap<&str, super::ledger::KeyChange> = BTreeMap::new();
    for l in ev.change_lines.iter().filter(|l| l.seq < last) {
        let seen = at_check.get(l.change.name.as_str());
        if let Some(next) = super::ledger::forward(seen, l.change.clone()) {
            at_check.insert(&l.change.name, next);
        }
    }
    let mut record = ManifestFile::unsigned_record();
    for (name, c) in at_check {
        match c.action {
            KeyAction::Remove => record.removed.push(super::manifest::RemovedRecord {
                name: name.to_owned(),
                created: c.created,
            }),
            _ => record.credentials.push(super::manifest::CredRecord {
                name: name.to_owned(),
                created: c.created,
                sha256: c.sha256,
            }),
        }
    }
    let since: Vec<ChangeLine> = (ev.change_lines.iter())
        .filter(|l| l.seq > last)
        .cloned()
        .collect();
    Some(change_notes(Some(&record), &since, files))
}

/// What a check that holds the vault key tells where the verified manifest `m` is one no
/// signed line of the log records (`whole`, read from the first line): the command that
/// wrote it stopped before its line (killed, a power cut), and folded in whatever `key` lines
/// came before it, so the notes against `m` said nothing of them, and that command's own
/// output was never shown (red-team round 22: a `key add --replace` during a rotation's touch,
/// and the rotation killed as its manifest landed). The files are judged against the last
/// signed check instead, as a rebuild judges them ([`since_logged_check`]); a file `m` records
/// is the version `m` records it at (the rotation sealed it again). `None`: `m` is on record,
/// or the log holds no signed line to judge from.
#[cfg(test)]
pub(crate) fn unrecorded_manifest(
    m: &ManifestFile,
    whole: &super::ledger::Evidence,
    files: &BTreeMap<String, String>,
) -> Option<ChangeNotes> {
    unrecorded_manifest_in(m, whole, files, false)
}

/// [`unrecorded_manifest`], where `elsewhere` says the log does not hold `m`'s anchor either
/// (it chains whole: `super::follows`): `m` was written beside another copy of the log, and no
/// command of this one stopped before its line (red-team round 24: a copy's manifest, copied
/// in, was said to be one whose command was killed).
pub(crate) fn unrecorded_manifest_in(
    m: &ManifestFile,
    whole: &super::ledger::Evidence,
    files: &BTreeMap<String, String>,
    elsewhere: bool,
) -> Option<ChangeNotes> {
    let auth =
        super::attest::authenticated(&whole.checks, &whole.believed_vaults(), |a| !a.is_empty());
    let last = auth.lines.last()?;
    if last.generation >= m.generation {
        return None;
    }
    let resealed: BTreeMap<String, u64> = (m.credentials.iter())
        .filter(|c| files.get(&c.name) == Some(&c.sha256))
        .map(|c| (c.name.clone(), c.created))
        .collect();
    let mut notes = since_check_resealed(whole, files, (&resealed, elsewhere))?;
    // Read along the chain, the record ends where the chain breaks: the line recording `m`
    // may be past it, and a command killed is then only one reading (red-team round 23: an
    // edited line was told as a command that stopped).
    let why = match whole.broken.as_ref().or(whole.gap.as_ref()) {
        // No anchor: the log could not be opened when it was written (red-team round 24,
        // recheck: an honest one was said to be written beside another copy of the log).
        _ if elsewhere && m.audit.is_none() => "it has no anchor either: it was written while this log could not be opened (or beside another copy of the log), not by a command here that was stopped".to_owned(),
        _ if elsewhere => "its anchor is not in this log either, so it was written beside another copy of the log (this one put back from an older copy, or a copy of the keystore's), not by a command here that was stopped".to_owned(),
        Some(gap) => format!(
            "either the command that wrote it stopped before its line, or its line is past where the log's record stops ({gap}): `tapsign audit verify` shows which"
        ),
        None => "the command that wrote it stopped before its line".to_owned(),
    };
    notes.quiet.push(format!(
        "the keystore's manifest (generation {}) is one no check in the audit log records: {why}, so what it folded in was judged against the last check the log records (generation {}, audit line {})",
        m.generation, last.generation, last.seq
    ));
    Some(notes)
}

/// The credentials replaced or removed before a `token` or `keystore` command (not an unlock)
/// recorded the keystore, since the unlock before the last (`ev`, read from the log's first
/// line): that command's manifest folded them in, and only its own output told of them, so a
/// command killed, or one whose agent did not answer (stopped), left no word anywhere; the
/// unlock after it (the last) names them, from the log (red-team round 21). Removals and
/// replacements only: a name stored is the quiet note the command said.
///
/// Where the log holds signed lines, only those count (`super::attest`): one copied `unlock`
/// line between a rebuild and the unlock before it made the rebuild's folding fall outside
/// (red-team round 22).
///
/// A signed line copied from earlier in the log is not an unlock either
/// ([`super::attest::Authenticated::replayed`]); and past as many lines that do not verify
/// as a reading looks at, what was read is said loudly to end there: 1025 forged lines left
/// this reading with nothing to say, and nothing was said (red-team round 22, recheck).
///
/// `above`: the generation the check of this agent's last unlock recorded, where `ev` is read
/// from the log's head after it (`None`: read from the first line). A signed line in `ev` at or
/// below it is a copy: the lines before the reading are not there to tell it by.
pub fn folded_by_commands(ev: &super::ledger::Evidence, above: Option<u64>) -> ChangeNotes {
    let believed = ev.believed_vaults();
    let auth = super::attest::authenticated_above(&ev.checks, &believed, above, |a| {
        a.iter().filter(|c| c.unlock).count() >= 2
    });
    let flooded = super::attest::flooded_note(
        auth.flooded,
        "what a `token` or `keystore` command folded in before this unlock",
    );
    let replayed = super::attest::replayed_note(&auth.replayed);
    let mut notes = folded_in(ev, auth);
    if let Some(flooded) = flooded {
        // Kept as long as a replacement is: it stands for any the lines buried.
        notes.loud.insert(0, (String::new(), flooded));
        notes.replaced += 1;
    }
    notes.quiet.extend(replayed);
    notes
}

/// [`folded_by_commands`] from the lines `auth` takes for checks.
fn folded_in(ev: &super::ledger::Evidence, auth: super::attest::Authenticated<'_>) -> ChangeNotes {
    let checks: Vec<&super::ledger::CheckLine> = match auth.signed {
        true => auth.lines,
        false => ev.checks.iter().collect(),
    };
    let unlocks: Vec<u64> = (checks.iter())
        .filter(|c| c.unlock)
        .map(|c| c.seq)
        .collect();
    let Some(&now) = unlocks.last() else {
        return ChangeNotes::default();
    };
    let from = unlocks.iter().rev().nth(1).copied().unwrap_or(0);
    // Each command's line between the two unlocks, and the line before it.
    let mut folded: BTreeMap<&str, (&ChangeLine, u64)> = BTreeMap::new();
    // Names a command's signed records hold in a version no line records writing (a file
    // sealed in a copy of the keystore and copied in, which the command took in), with the
    // command's line (red-team round 22: only the command's own output, and the `noted` it
    // sent, which any program may send after it, told of it).
    let mut unrecorded: BTreeMap<&str, u64> = BTreeMap::new();
    let mut before = from;
    let mut earlier = checks.iter().rev().find(|c| c.seq <= from).copied();
    for c in checks.iter().filter(|c| c.seq > from && c.seq < now) {
        let (seq, unlock) = (c.seq, c.unlock);
        if !unlock {
            for l in (ev.change_lines.iter()).filter(|l| l.seq > before && l.seq < seq) {
                if l.change.action != KeyAction::Add {
                    folded.insert(&l.change.name, (l, seq));
                }
            }
            if auth.signed
                && let (Some(now_held), Some(was)) = (
                    c.records.as_ref(),
                    earlier.and_then(|e| e.records.as_ref().map(|r| (r, &e.vault_key))),
                )
            {
                let (was_held, was_vault) = was;
                // A rotation seals every file again (new hashes, the same `created`).
                let resealed = *was_vault != c.vault_key;
                let same = |a: &super::manifest::CredRecord, b: &super::manifest::CredRecord| {
                    a.created == b.created && (resealed || a.sha256 == b.sha256)
                };
                // By name, once: a scan per record made this N x N on an unlock of N
                // credentials.
                let was_by_name: BTreeMap<&str, &super::manifest::CredRecord> =
                    was_held.iter().map(|o| (o.name.as_str(), o)).collect();
                let mut lines_by_name: BTreeMap<&str, Vec<&super::ledger::KeyChange>> =
                    BTreeMap::new();
                for l in (ev.change_lines.iter()).filter(|l| l.seq > before && l.seq < seq) {
                    lines_by_name
                        .entry(&l.change.name)
                        .or_default()
                        .push(&l.change);
                }
                for r in now_held {
                    let kept = was_by_name.get(r.name.as_str()).is_some_and(|o| same(o, r));
                    let written = lines_by_name.get(r.name.as_str()).is_some_and(|lines| {
                        lines
                            .iter()
                            .any(|l| l.created == r.created && (resealed || l.sha256 == r.sha256))
                    });
                    if !kept && !written {
                        unrecorded.entry(&r.name).or_insert(seq);
                    }
                }
            }
        }
        before = seq;
        earlier = Some(c);
    }
    let mut notes = ChangeNotes::default();
    let (mut replaced, mut removed) = (Vec::new(), Vec::new());
    for (name, seq) in &unrecorded {
        let mut name = (*name).to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        replaced.push((name.clone(), format!(
            "credential {name:?} holds a file that no line of the audit log records writing, which a `token` or `keystore` command took into the keystore (audit line {seq}): tapsign's `key add` records each file it stores, so this one was written by hand, sealed in a copy of the keystore and copied in; it holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what wrote it"
        )));
    }
    for (name, (l, seq)) in folded {
        if unrecorded.contains_key(name) {
            continue;
        }
        let mut name = name.to_owned();
        crate::audit::cap(&mut name, crate::audit::QUOTED_MAX);
        let what = done(&[l]);
        let by = format!(
            "then a `token` or `keystore` command recorded the keystore (audit line {seq}), which folded it in: only that command's own output told of it"
        );
        match l.change.action {
            KeyAction::Remove => removed.push((name.clone(), format!(
                "credential {name:?} was {what}; {by}. If that was not you, store it again with `tapsign key add {name} --exchange ...`"
            ))),
            _ => replaced.push((name.clone(), format!(
                "credential {name:?} was {what}; {by}. If neither you nor a script of yours replaced it, it now holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command"
            ))),
        }
    }
    let total = replaced.len() + removed.len();
    replaced.truncate(LOUD_NOTED);
    removed.truncate(LOUD_NOTED - replaced.len());
    notes.replaced = replaced.len();
    notes.loud = replaced;
    notes.loud.append(&mut removed);
    if total > notes.loud.len() {
        notes.loud.push((
            String::new(),
            format!(
                "and {} more credentials were replaced or removed before a `token` or `keystore` command recorded the keystore: `tapsign audit` shows each `key` line",
                total - notes.loud.len()
            ),
        ));
    }
    notes
}

/// What the last check was, as the notes say it.
const CHECKS: &str = "(an unlock, `token` or `keystore` command)";

/// What was done to one name, from the lines the check took (oldest first, at least one): the
/// last three, and how many came before.
fn done(own: &[&ChangeLine]) -> String {
    let shown = own.len().min(3);
    let mut done: Vec<String> = own[own.len() - shown..]
        .iter()
        .map(|l| {
            // A program path as a line shows it, cut and escaped: a line anyone appended may
            // hold one of any length (a review of round 20).
            let mut exe = if l.exe.is_empty() {
                "?".to_owned()
            } else {
                l.exe.clone()
            };
            crate::audit::cap(&mut exe, crate::audit::QUOTED_MAX);
            let exe = crate::audit::Shown(&exe);
            let verb = match l.change.action {
                KeyAction::Add => "added",
                KeyAction::Replace => "replaced",
                KeyAction::Remove => "removed",
            };
            format!(
                "{verb} at {} by pid {} ({exe}), audit line {}",
                l.time, l.pid, l.seq
            )
        })
        .collect();
    if own.len() > shown {
        done.insert(0, format!("{} changes before", own.len() - shown));
    }
    done.join(", then ")
}

/// Most credentials replaced or removed named one by one; the rest are counted.
pub const LOUD_NOTED: usize = 8;

/// Most names the note of credentials stored lists: a log anyone can append to could
/// otherwise fill the unlock's answer with them.
pub const CHANGES_NOTED: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::ledger::KeyChange;

    fn line(seq: u64, action: KeyAction, name: &str, exe: &str) -> ChangeLine {
        ChangeLine {
            seq,
            time: "2026-12-05T22:00:00.000Z".into(),
            change: KeyChange {
                action,
                name: name.into(),
                created: 1_000 + seq,
                sha256: format!("{seq:064x}"),
            },
            pid: 7,
            exe: exe.into(),
        }
    }

    /// A review of round 20: the notes of credentials replaced or removed were never cut, and
    /// each quoted its lines' program paths whole, so names stored by anyone, recorded by a
    /// check and then removed, with long paths, pushed `status` past one answer for a day.
    /// Past [`LOUD_NOTED`] the rest are counted, and a path is cut and escaped.
    #[test]
    fn the_loud_notes_are_bounded_however_many_names_and_however_long_their_lines() {
        let exe = format!("/tmp/{}\u{1b}[2J", "x".repeat(5_000));
        let lines: Vec<ChangeLine> = (1..=40)
            .map(|i| line(i, KeyAction::Add, &format!("junk{i}"), &exe))
            .collect();
        let stored = change_notes(None, &lines, &BTreeMap::new());
        assert!(stored.loud.is_empty(), "{stored:?}");
        // Recorded by a check, then removed: each a loud note.
        let manifest = ManifestFile {
            credentials: (1..=40)
                .map(|i| super::super::manifest::CredRecord {
                    name: format!("junk{i}"),
                    created: 1_000 + i,
                    sha256: format!("{i:064x}"),
                })
                .collect(),
            format: String::new(),
            version: 1,
            generation: 1,
            written: 0,
            vault_key: String::new(),
            keyslots: Vec::new(),
            removed: Vec::new(),
            audit: None,
            mac: String::new(),
            checksum: String::new(),
        };
        let removed: Vec<ChangeLine> = (1..=40)
            .map(|i| line(100 + i, KeyAction::Remove, &format!("junk{i}"), &exe))
            .collect();
        let notes = change_notes(Some(&manifest), &removed, &BTreeMap::new());
        assert_eq!(notes.loud.len(), LOUD_NOTED + 1, "{:?}", notes.loud);
        let (last_name, last) = notes.loud.last().unwrap();
        assert!(
            last_name.is_empty() && last.contains("and 32 more"),
            "{last}"
        );
        for (_, sentence) in &notes.loud {
            assert!(sentence.len() < 1_000, "{} bytes", sentence.len());
            assert!(!sentence.contains('\u{1b}'), "{sentence}");
        }
    }

    fn recording(names: &[&str]) -> ManifestFile {
        ManifestFile {
            credentials: names
                .iter()
                .map(|n| super::super::manifest::CredRecord {
                    name: (*n).into(),
                    created: 1_000,
                    sha256: "0".repeat(64),
                })
                .collect(),
            format: String::new(),
            version: 1,
            generation: 1,
            written: 0,
            vault_key: String::new(),
            keyslots: Vec::new(),
            removed: Vec::new(),
            audit: None,
            mac: String::new(),
            checksum: String::new(),
        }
    }

    /// Red-team round 21: eight credential files for new names, written with no line, came
    /// before the replacement of a recorded name and pushed it out of the notes (and so out
    /// of `status` and the touch prompt). A recorded name's change is named first.
    #[test]
    fn a_recorded_name_replaced_comes_before_new_names_with_no_line() {
        let manifest = recording(&["k1", "k2"]);
        let lines = vec![line(5, KeyAction::Replace, "k1", "/x")];
        let mut files: BTreeMap<String, String> = (1..=8)
            .map(|i| (format!("aa-junk{i}"), format!("{i:064x}")))
            .collect();
        files.insert("k1".into(), format!("{:064x}", 5));
        files.insert("k2".into(), "0".repeat(64));
        let notes = change_notes(Some(&manifest), &lines, &files);
        assert_eq!(notes.loud[0].0, "k1", "{:?}", notes.loud);
        assert_eq!(notes.replaced, LOUD_NOTED, "{:?}", notes.loud);
        let (last_name, last) = notes.loud.last().unwrap();
        assert!(
            last_name.is_empty() && last.contains("and 1 more"),
            "{last}"
        );
    }

    /// Red-team round 22: a file written over a credential the trader had just stored, with
    /// no line, was worded "Unless you just stored it yourself": the trader who had stored it
    /// dismissed it. The note says the file is not the one the trader's line records.
    #[test]
    fn a_file_over_a_name_just_stored_is_not_excused_as_the_traders_own() {
        let manifest = recording(&["k1"]);
        let lines = vec![line(8, KeyAction::Add, "k3", "/usr/bin/tapsign")];
        let mut files = BTreeMap::new();
        files.insert("k1".to_owned(), "0".repeat(64));
        files.insert("k3".to_owned(), "b".repeat(64));
        let notes = change_notes(Some(&manifest), &lines, &files);
        let (name, text) = &notes.loud[0];
        assert_eq!(name, "k3", "{notes:?}");
        assert!(!text.contains("Unless you just stored it"), "{text}");
        assert!(
            text.contains("is not the file its last line in the audit log records")
                && text.contains("audit line 8"),
            "{text}"
        );
        // With no line for it at all (a `key add` killed before its line), it may be theirs.
        let notes = change_notes(Some(&manifest), &[], &files);
        assert!(
            notes.loud[0].1.contains("Unless you just stored it"),
            "{notes:?}"
        );
    }

    /// Red-team round 21: the trader's own `--replace`, then another program's, read as one
    /// "replaced" whose "if neither you nor a script of yours replaced it" the trader
    /// dismissed. It counts the versions.
    #[test]
    fn a_recorded_name_replaced_twice_says_how_many_times() {
        let manifest = recording(&["k1"]);
        let lines = vec![
            line(5, KeyAction::Replace, "k1", "/usr/bin/tapsign"),
            line(6, KeyAction::Replace, "k1", "/tmp/evil"),
        ];
        let notes = change_notes(Some(&manifest), &lines, &BTreeMap::new());
        let (name, text) = &notes.loud[0];
        assert_eq!(name, "k1");
        assert!(
            text.contains("replaced 2 times") && text.contains("fewer times than that"),
            "{text}"
        );
        assert!(text.contains("/tmp/evil"), "{text}");
    }

    /// Red-team round 22, recheck: past [`super::super::attest::FORGED_CHECKED`] lines whose
    /// signature does not verify, the unlock's reading of what a command folded in found no
    /// unlock to start from and said nothing at all. It says, loudly, where it stopped.
    #[test]
    fn the_reading_of_what_commands_folded_in_says_where_a_flood_stopped_it() {
        use super::super::attest::{FORGED_CHECKED, sign};
        use super::super::ledger::{CheckLine, Evidence};
        let vk = crate::keystore::seal::VaultKey::from_bytes(&[7; 32]).unwrap();
        let key = hex::encode(crate::keystore::seal::compressed(&vk.public_key()));
        let unlock = CheckLine {
            seq: 1,
            unlock: true,
            generation: 2,
            vault_key: key.clone(),
            reason: "unlock".into(),
            signature: sign(&vk, 2, &key, "unlock", &[]),
            records: Some(Vec::new()),
        };
        let forged = (0..FORGED_CHECKED as u64 + 5).map(|i| CheckLine {
            seq: 2 + i,
            signature: "00".repeat(64),
            ..unlock.clone()
        });
        let ev = Evidence {
            checks: std::iter::once(unlock.clone()).chain(forged).collect(),
            recorded_vaults: vec![key],
            ..Evidence::default()
        };
        let notes = folded_by_commands(&ev, None);
        let (name, text) = &notes.loud[0];
        assert!(name.is_empty() && notes.replaced == 1, "{notes:?}");
        assert!(
            text.contains(&format!("more than {FORGED_CHECKED} keystore lines"))
                && text.contains("could not be read past them")
                && text.contains("down to audit line 6"),
            "{text}"
        );
    }
    /// Red-team round 24: the trader's own credential, from before a `key add --replace`, put
    /// back where the check took it (its record says the version it is), was called "an API
    /// key and secret someone else chose". It is an older version than the line records, and
    /// the note says so; a file of no known version is still told as one written by hand.
    #[test]
    fn an_own_older_version_put_back_is_told_as_an_old_copy() {
        let m = recording(&["k1"]);
        let replaced = line(7, KeyAction::Replace, "k1", "/usr/bin/tapsign");
        let old = BTreeMap::from([("k1".to_owned(), "0".repeat(64))]);
        let notes = change_notes(Some(&m), std::slice::from_ref(&replaced), &old);
        let text = &notes.loud[0].1;
        assert!(
            text.contains("holds an older version than its last line in the audit log records")
                && text.contains("an old copy of it was put back")
                && !text.contains("someone else chose"),
            "{text}"
        );
        let unknown = BTreeMap::from([("k1".to_owned(), "9".repeat(64))]);
        let notes = change_notes(Some(&m), &[replaced], &unknown);
        assert!(notes.loud[0].1.contains("someone else chose"), "{notes:?}");
    }

    /// Red-team round 23: read from the first line, the record stops where the chain breaks,
    /// and a manifest whose line is past the break was said to be one whose command "stopped
    /// before its line". Where the reading stopped at a break, that is one reading of two.
    #[test]
    fn a_manifest_past_a_break_in_the_chain_is_not_said_to_be_from_a_command_killed() {
        use super::super::attest::sign;
        use super::super::ledger::{CheckLine, Evidence};
        let vk = crate::keystore::seal::VaultKey::from_bytes(&[7; 32]).unwrap();
        let key = hex::encode(crate::keystore::seal::compressed(&vk.public_key()));
        let check = CheckLine {
            seq: 1,
            unlock: true,
            generation: 1,
            vault_key: key.clone(),
            reason: "unlock".into(),
            signature: sign(&vk, 1, &key, "unlock", &[]),
            records: Some(Vec::new()),
        };
        let mut whole = Evidence {
            checks: vec![check],
            recorded_vaults: vec![key],
            ..Evidence::default()
        };
        let mut m = recording(&[]);
        m.generation = 2;
        let note = |whole: &Evidence| {
            let notes = unrecorded_manifest(&m, whole, &BTreeMap::new()).unwrap();
            notes.quiet.last().unwrap().clone()
        };
        let killed = note(&whole);
        assert!(
            killed.contains("no check in the audit log records: the command that wrote it stopped before its line"),
            "{killed}"
        );
        let why = "line 3 does not continue the chain".to_owned();
        (whole.gap, whole.broken) = (Some(why.clone()), Some(why));
        let broken = note(&whole);
        assert!(
            broken.contains("either the command that wrote it stopped before its line, or its line is past where the log's record stops (line 3 does not continue the chain)"),
            "{broken}"
        );
    }
}
