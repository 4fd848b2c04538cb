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
    /// what costs money if it was not the trader. Never cut, and shown before any other
    /// warning: the names are those the last check recorded, so their number is the trader's
    /// own, whatever anyone appends to the log.
    /// Each with the credential's name.
    pub loud: Vec<(String, String)>,
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
pub fn change_notes(manifest: Option<&ManifestFile>, lines: &[ChangeLine]) -> ChangeNotes {
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
    let mut moved: Vec<_> = moved.into_iter().filter(|(_, m)| !m.3.is_empty()).collect();
    moved.sort_by_key(|(_, (first, ..))| *first);

    let (mut replaced, mut removed, mut stored, mut gone) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (name, (_, was, now, own)) in moved {
        match (was, now) {
            (State::Present(..), State::Present(..)) if was == now => {}
            (State::Present(..), State::Present(..)) => replaced.push((name.to_owned(), format!(
                "credential {name:?} was replaced since the keystore's last check {CHECKS}: {}; if neither you nor a script of yours replaced it, it now holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command",
                done(&own)
            ))),
            (State::Present(..), _) => removed.push((name.to_owned(), format!(
                "credential {name:?} was removed since the keystore's last check {CHECKS}: {}; if that was not you, store it again with `tapsign key add {name} --exchange ...`",
                done(&own)
            ))),
            (_, State::Present(..)) => stored.push(name),
            _ => gone += 1,
        }
    }
    let mut notes = ChangeNotes {
        loud: replaced,
        quiet: Vec::new(),
    };
    notes.loud.append(&mut removed);
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

/// What the last check was, as the notes say it.
const CHECKS: &str = "(an unlock, `token` or `keystore` command)";

/// What was done to one name, from the lines the check took (oldest first, at least one): the
/// last three, and how many came before.
fn done(own: &[&ChangeLine]) -> String {
    let shown = own.len().min(3);
    let mut done: Vec<String> = own[own.len() - shown..]
        .iter()
        .map(|l| {
            let exe = if l.exe.is_empty() { "?" } else { &l.exe };
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

/// Most names the note of credentials stored lists: a log anyone can append to could
/// otherwise fill the unlock's answer with them.
pub const CHANGES_NOTED: usize = 8;
