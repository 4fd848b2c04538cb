//! What an unlock tells the trader of the credential changes the audit log records since the
//! keystore's last check: a sentence per credential, what was done to it, when and by which
//! program.

use std::collections::BTreeMap;

use super::ledger::{ChangeLine, KeyAction};

/// What the trader is told of the credential changes recorded since the keystore's last check
/// (`lines`, oldest first): one sentence per name, what was done to it, when and by which
/// program, and what to do if it was not them. Sealing needs no secret, so anyone who runs as
/// the trader can `key add --replace` a name with an API key of their own: the unlock opened
/// it as before, and orders went to their account with nothing shown (red-team round 20).
pub fn change_notes(lines: &[ChangeLine]) -> Vec<String> {
    // Each name's lines, in the order names first appear; replaced names first, since where
    // the warnings shown are cut those matter most. Linear in the lines: a log anyone can
    // append to may hold a great many.
    let mut by_name: BTreeMap<&str, (usize, Vec<&ChangeLine>)> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        by_name
            .entry(&l.change.name)
            .or_insert((i, Vec::new()))
            .1
            .push(l);
    }
    let mut names: Vec<(&str, usize, Vec<&ChangeLine>)> = (by_name.into_iter())
        .map(|(name, (first, own))| (name, first, own))
        .collect();
    let replaced = |own: &[&ChangeLine]| own.iter().any(|l| l.change.action == KeyAction::Replace);
    names.sort_by_key(|(_, first, own)| (!replaced(own), *first));
    let more = names.len().saturating_sub(CHANGES_NOTED);
    let mut notes: Vec<String> = (names.into_iter().take(CHANGES_NOTED))
        .map(|(name, _, own)| change_note(name, &own))
        .collect();
    if more > 0 {
        notes.push(format!(
            "and {more} more credentials changed since the keystore's last check: `tapsign audit` shows each `key` line"
        ));
    }
    notes
}

/// [`change_notes`]' sentence for one name, from its lines (oldest first, at least one).
fn change_note(name: &str, own: &[&ChangeLine]) -> String {
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
    let last = own.last().map(|l| l.change.action);
    let replaced = own.iter().any(|l| l.change.action == KeyAction::Replace);
    let advice = match (last, replaced) {
        (Some(KeyAction::Remove), _) => format!(
            "if that was not you, store it again with `tapsign key add {name} --exchange ...`"
        ),
        (_, true) => format!(
            "if neither you nor a script of yours replaced it, it now holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace`, and look for what ran the command"
        ),
        _ => format!(
            "if neither you nor a script of yours added it, remove it with `tapsign key remove {name}`"
        ),
    };
    format!(
        "credential {name:?} changed since the keystore's last check (an unlock, `token` or `keystore` command): {}; {advice}",
        done.join(", then ")
    )
}

/// Most credentials [`change_notes`] names one by one: a log anyone can append to could
/// otherwise fill the unlock's answer with them.
pub const CHANGES_NOTED: usize = 8;
