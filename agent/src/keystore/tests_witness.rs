//! What a running agent saw recorded ([`Witness`]) against a record edited afterwards: the
//! ledger here plays the agent, keeping in memory what it records, while the test edits the
//! entries as one would edit the log in place.

use std::fs;

use super::ledger::{LedgerEntry, Witness, token_removed};
use super::tests::{Fixture, cred, unlock};
use super::tests_at_rest::put_back;
use super::tests_rotate::copy_tree;
use super::*;

fn watched() -> Fixture {
    let mut f = Fixture::new();
    f.ledger.witness = Some(Witness::default());
    f
}

/// Rename the recorded change of `from` to `to`, as an in-place edit of its line would.
fn rename_change(f: &mut Fixture, from: &str, to: &str) {
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Key(k) = e
            && k.name == from
        {
            k.name = to.into();
        }
    }
}

/// Credentials kb and kb3, a check (the manifest records both), then `key remove kb3`:
/// kb3's file as it was, to put back, and where.
fn kb3_removed_after_a_check(f: &mut Fixture) -> (std::path::PathBuf, Vec<u8>) {
    f.add(&cred("kb", Exchange::Binance, None), false).unwrap();
    f.add(&cred("kb3", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let path = f.live().join("credentials/kb3.json");
    let old = fs::read(&path).unwrap();
    f.remove("kb3").unwrap();
    (path, old)
}

#[test]
fn a_removal_edited_in_the_log_while_the_agent_runs_does_not_bring_the_key_back() {
    for agent_saw_it in [false, true] {
        let mut f = Fixture::new();
        if agent_saw_it {
            f.ledger.witness = Some(Witness::default());
        }
        let (path, old) = kb3_removed_after_a_check(&mut f);
        rename_change(&mut f, "kb3", "kb9");
        put_back(&path, &old);
        match (agent_saw_it, f.check()) {
            // Only the edited record to go by: the old file looks like the recorded one.
            (false, Ok(c)) => assert!(c.accepted.contains(&"kb3".to_owned()), "{c:?}"),
            // What the agent saw counts instead: kb3 is refused by name, the rest opens.
            (true, Ok(c)) => {
                assert!(c.refused.iter().any(|r| r.name == "kb3"), "{c:?}");
                assert!(!c.accepted.contains(&"kb3".to_owned()), "{c:?}");
                assert!(c.accepted.contains(&"kb".to_owned()), "{c:?}");
            }
            (saw, other) => panic!("agent saw it: {saw}: {other:?}"),
        }
    }
}

#[test]
fn a_rotation_edited_down_in_the_log_does_not_reopen_the_copy_before_it() {
    let (mut f, mut b) = Fixture::populated();
    f.ledger.witness = Some(Witness::default());
    f.check().unwrap();
    let backup = f.tmp.path().join("backup");
    copy_tree(f.ks.dir(), &backup);
    let (old_gen, old_vault) = match f.ledger.entries.last() {
        Some(LedgerEntry::Manifest {
            generation, vault, ..
        }) => (*generation, vault.clone()),
        other => panic!("{other:?}"),
    };
    f.rotate(Some(&b.stub().id())).unwrap();
    fs::remove_dir_all(f.ks.dir()).unwrap();
    copy_tree(&backup, f.ks.dir());
    // The rotation's record, edited to name a generation below the copy's and its vault.
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Manifest {
            generation, vault, ..
        } = e
            && *generation > old_gen
        {
            (*generation, *vault) = (old_gen - 1, old_vault.clone());
        }
    }
    // The removed token, with its keyslot in the copy.
    let vk = unlock(&f.ks, &mut b).unwrap();
    let slot =
        f.ks.keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .find(|s| &s.stub == b.stub())
            .unwrap();
    let e = f.ks.check(&vk, &slot, 0, &mut f.ledger).unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
}

/// The generation, vault tag, vault key and links of the last manifest recorded.
fn last_record(f: &Fixture) -> (u64, String, String, Vec<super::format::Succession>) {
    f.ledger
        .entries
        .iter()
        .rev()
        .find_map(|e| match e {
            LedgerEntry::Manifest {
                generation,
                vault,
                vault_key,
                links,
                ..
            } => Some((*generation, vault.clone(), vault_key.clone(), links.clone())),
            _ => None,
        })
        .unwrap()
}

/// The generation and vault tag of the last manifest recorded.
fn last_manifest(f: &Fixture) -> (u64, String) {
    f.ledger
        .entries
        .iter()
        .rev()
        .find_map(|e| match e {
            LedgerEntry::Manifest {
                generation, vault, ..
            } => Some((*generation, vault.clone())),
            _ => None,
        })
        .unwrap()
}

/// Red-team round 21: one chained `keystore` line anyone can append, naming the current
/// generation and vault with the reason `rotated: token T removed`, had the running agent
/// refuse every unlock with T, call the log edited, and advise deleting T's keyslot, the
/// trader's only way in; an agent started afresh opened as before. A removal makes a new
/// vault key, so T opening the vault the line names shows no rotation wrote it: the unlock
/// opens, and says so.
#[test]
fn a_token_removal_line_naming_the_vault_it_opens_is_ignored_with_a_warning() {
    let mut f = watched();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let id = f.token.stub().id();
    let (generation, vault) = last_manifest(&f);
    for (line_vault, seq) in [
        (vault.clone(), 90),
        (String::new(), 91),
        ("0".repeat(16), 92),
    ] {
        if let Some(w) = f.ledger.witness.as_mut() {
            w.saw_manifest(seq, generation, &line_vault, &token_removed(&id), false);
        }
        let c = f.check().unwrap();
        assert!(c.accepted.contains(&"k1".to_owned()), "{c:?}");
        let w = c.warnings.join("\n");
        assert!(
            w.contains(&format!("line {seq} of the audit log says")),
            "{w}"
        );
        assert!(w.contains("it is ignored"), "{w}");
        assert!(!w.contains("Delete"), "{w}");
    }
    // The keyslot is still there, and still opens.
    f.check().unwrap();
}

/// The recheck of round 21: once the keystore was rotated, a removal line naming the vault
/// from before the rotation (believed, and needing no links to be believed) still had the
/// running agent refuse every unlock, call the log edited, forbid the restart that opens as
/// before, and advise putting back the pre-rotation vault from a backup. The vault a removal
/// makes is newer than the one the removed token opens, linked from it by the line: this
/// line's vault is older, so it is ignored with the warning, as an agent started afresh does.
#[test]
fn a_token_removal_line_naming_the_vault_before_the_last_rotation_is_ignored() {
    let (mut f, _b) = Fixture::populated();
    f.ledger.witness = Some(Witness::default());
    f.check().unwrap();
    let (_, before, before_key, _) = last_record(&f);
    f.rotate(None).unwrap();
    let (generation, _, _, _) = last_record(&f);
    let id = f.token.stub().id();
    if let Some(w) = f.ledger.witness.as_mut() {
        w.saw_manifest(99, generation - 1, &before, &token_removed(&id), false);
        w.saw_vault(99, &before_key, &[], false);
    }
    for _ in 0..2 {
        let c = f.check().unwrap();
        let w = c.warnings.join("\n");
        assert!(w.contains("line 99 of the audit log says"), "{w}");
        assert!(
            w.contains(&format!(
                "names vault-{before}, which is not one made from it"
            )),
            "{w}"
        );
        assert!(w.contains("it is ignored"), "{w}");
        assert!(!w.contains("Delete") && !w.contains("from a backup"), "{w}");
    }
}

/// A removal holds only for a vault made from the one the token opened, by signed links the
/// line carries and a vault the record believes: the vault after a rotation, against the
/// keyslot of the vault before it. Not the other way round, not without the links, not for a
/// vault the record does not believe.
#[test]
fn a_removal_stands_only_for_a_vault_made_after_the_one_opened() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let (_, _, x, _) = last_record(&f);
    f.rotate(None).unwrap();
    let (_, y_tag, y, links) = last_record(&f);
    assert!(!links.is_empty(), "a rotation's record carries its link");
    let believed = vec![x.clone(), y.clone()];
    let removal =
        |vault: &str, key: &str, links: &[super::format::Succession]| super::ledger::RemovedToken {
            seq: 9,
            vault: vault.to_owned(),
            vault_key: key.to_owned(),
            links: links.to_vec(),
        };
    let stands = |r: &super::ledger::RemovedToken, opened: &str, believed: &[String]| {
        super::vault_ops::removal_made_after(r, opened, believed)
    };
    assert_eq!(
        stands(&removal(&y_tag, &y, &links), &x, &believed),
        Some(y_tag.clone())
    );
    assert_eq!(stands(&removal(&y_tag, &y, &links), &y, &believed), None);
    assert_eq!(stands(&removal(&y_tag, &y, &[]), &x, &believed), None);
    assert_eq!(
        stands(&removal(&y_tag, &y, &links), &x, &believed[..1]),
        None
    );
    let x_tag = super::layout::key_tag(&x).unwrap();
    assert_eq!(stands(&removal(&x_tag, &x, &links), &y, &believed), None);
    assert_eq!(stands(&removal(&x_tag, &x, &[]), &y, &believed), None);
}

#[test]
fn what_the_agent_saw_agrees_with_an_untouched_log() {
    let (mut f, _b) = Fixture::populated();
    f.ledger.witness = Some(Witness::default());
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
    f.remove("k1").unwrap();
    f.check().unwrap();
    f.remove("k2").unwrap();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    let c = f.check().unwrap();
    assert!(c.refused.is_empty(), "{c:?}");
    assert!(c.accepted.contains(&"k1".to_owned()), "{c:?}");
    f.remove("k1").unwrap();
    f.rotate(None).unwrap();
    f.add(&cred("k3", Exchange::Binance, None), true).unwrap();
    let c = f.check().unwrap();
    assert!(c.refused.is_empty(), "{c:?}");
    // A record cut off before the anchor (a log moved aside and started afresh) is a gap,
    // and what the agent saw since the last manifest is all still in the manifest's reach.
    f.check().unwrap();
    f.ledger.entries.clear();
    f.check().unwrap();
}

#[test]
fn a_manifest_line_the_agent_only_took_in_makes_it_forget_nothing() {
    let mut w = Witness::default();
    w.saw_manifest(5, 7, "v", &token_removed("t"), true);
    let removal = KeyChange {
        action: KeyAction::Remove,
        name: "kb3".into(),
        created: 1,
        sha256: "aa".into(),
    };
    w.saw_change(6, removal.clone());
    // A low generation, appended by anyone who can write the log.
    w.saw_manifest(7, 1, "v", &super::ledger::token_added("t"), false);
    assert_eq!(w.changes.get("kb3"), Some(&(6, removal)));
    assert!(w.removed_tokens.contains_key("t"));
    assert_eq!(w.manifest.as_ref().map(|m| m.generation), Some(7));
    // A manifest the agent wrote itself folded the change in.
    w.saw_manifest(8, 8, "v", "unlock", true);
    assert!(w.changes.is_empty());
}

/// A line that takes a name back (an `add` of the version a replacement or a removal ended,
/// appended by anyone who can write the log) does not replace the change the agent saw;
/// tapsign's own lines, which only move a name forward, do.
#[test]
fn a_change_line_that_points_back_does_not_make_the_agent_forget() {
    let change = |action, created: u64, sha: &str| KeyChange {
        action,
        name: "k1".into(),
        created,
        sha256: sha.into(),
    };
    let mut w = Witness::default();
    let replaced = change(KeyAction::Replace, 20, "new");
    w.saw_change(4, change(KeyAction::Add, 10, "old"));
    w.saw_change(5, replaced.clone());
    w.saw_change(6, change(KeyAction::Replace, 10, "old"));
    assert_eq!(w.changes.get("k1"), Some(&(5, replaced)));
    // Removed: an `add` of the removed version is not later than its removal.
    let removed = change(KeyAction::Remove, 20, "new");
    w.saw_change(7, removed.clone());
    w.saw_change(8, change(KeyAction::Add, 20, "new"));
    assert_eq!(w.changes.get("k1"), Some(&(7, removed)));
    // Stored again, as `key add` does: a later version.
    let again = change(KeyAction::Add, 30, "third");
    w.saw_change(9, again.clone());
    assert_eq!(w.changes.get("k1"), Some(&(9, again)));
}

#[test]
fn a_record_rewritten_for_a_name_the_agent_saw_changed_opens_nothing_and_names_it() {
    let mut f = watched();
    kb3_removed_after_a_check(&mut f);
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Key(k) = e
            && k.name == "kb3"
        {
            k.sha256 = "00".repeat(32);
        }
    }
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::Contradicted { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("remove \"kb3\""), "{msg}");
    assert!(msg.contains("delete it"), "{msg}");
    assert!(msg.contains("Do not restart the agent"), "{msg}");
    assert!(!msg.contains("then restart"), "{msg}");
}

#[test]
fn a_removal_the_agent_saw_is_recorded_by_its_check_when_the_log_lost_it() {
    let mut f = watched();
    let (path, old) = kb3_removed_after_a_check(&mut f);
    // The log loses the line (cut, started afresh): only the agent's memory has it.
    f.ledger
        .entries
        .retain(|e| !matches!(e, LedgerEntry::Key(k) if k.name == "kb3"));
    put_back(&path, &old);
    let c = f.check().unwrap();
    assert!(c.refused.iter().any(|r| r.name == "kb3"), "{c:?}");
    // The manifest that check wrote records it: an agent started afresh refuses it too.
    f.ledger.witness = Some(Witness::default());
    let c = f.check().unwrap();
    assert!(c.refused.iter().any(|r| r.name == "kb3"), "{c:?}");
}

/// Red-team round 19: a keystore rebuilt above [`super::ledger::GENERATION_STEP`] (after a
/// believed forged line) had the running agent leave its own records out, judged from no
/// manifest seen yet. Its own are believed; one it only took in, far above, is not.
#[test]
fn the_agent_believes_its_own_manifest_records_above_the_step() {
    use super::ledger::GENERATION_STEP;
    let mut w = Witness::default();
    w.saw_manifest(5, GENERATION_STEP + 7, "v", "unlock", true);
    assert_eq!(
        w.manifest.as_ref().map(|m| m.generation),
        Some(GENERATION_STEP + 7)
    );
    w.saw_manifest(6, 3 * GENERATION_STEP, "v", "added by hand", false);
    assert_eq!(
        w.manifest.as_ref().map(|m| m.generation),
        Some(GENERATION_STEP + 7)
    );
    let mut fresh = Witness::default();
    fresh.saw_manifest(5, GENERATION_STEP + 7, "v", "added by hand", false);
    assert!(fresh.manifest.is_none());
}

/// The `created` sealed in a credential file.
fn created_of(bytes: &[u8]) -> u64 {
    let file: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    file["created"].as_u64().unwrap()
}

/// k1 and k2, a check, then k1 replaced (with the agent watching): k1's first file and its
/// replacement, each with its path.
fn k1_replaced_after_a_check(f: &mut Fixture) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let path = f.live().join("credentials/k1.json");
    let first = fs::read(&path).unwrap();
    f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    let second = fs::read(&path).unwrap();
    assert!(created_of(&second) > created_of(&first));
    (path, first, second)
}

/// A removal is always forward, as the check folds it: one naming an older version than the
/// one seen leaves the name removed as of the later.
#[test]
fn a_removal_naming_an_older_version_than_the_agent_saw_moves_the_name_forward() {
    let change = |action, created: u64, sha: &str| KeyChange {
        action,
        name: "k1".into(),
        created,
        sha256: sha.into(),
    };
    let mut w = Witness::default();
    w.saw_change(4, change(KeyAction::Add, 10, "old"));
    w.saw_change(5, change(KeyAction::Replace, 20, "new"));
    w.saw_change(6, change(KeyAction::Remove, 10, "old"));
    assert_eq!(
        w.changes.get("k1"),
        Some(&(6, change(KeyAction::Remove, 20, "old")))
    );
    // An `add` of the version removed still points back.
    w.saw_change(7, change(KeyAction::Add, 20, "new"));
    assert_eq!(w.changes.get("k1").map(|(seq, _)| *seq), Some(6));
}

/// Red-team round 20: with the agent running and remembering k1's replacement, the trader's
/// own `key remove k1` over an older copy put in place of the file recorded a removal of that
/// older version, and the running agent refused every unlock as if the log had been edited
/// (advising a rebuild, and not to restart it). The same agent now opens the other keys, and
/// refuses k1's file put back (either version) as a removed credential.
#[test]
fn a_removal_over_an_older_copy_refuses_only_that_credential_while_the_agent_runs() {
    for put_back_after in [0, 1] {
        let mut f = watched();
        let (path, first, second) = k1_replaced_after_a_check(&mut f);
        put_back(&path, &first);
        f.remove("k1").unwrap();
        put_back(&path, [&first, &second][put_back_after]);
        let c = f.check().unwrap();
        assert!(c.accepted.contains(&"k2".to_owned()), "{c:?}");
        assert!(!c.accepted.contains(&"k1".to_owned()), "{c:?}");
        let refusal = c.refused.iter().find(|r| r.name == "k1");
        assert_eq!(refusal.map(|r| r.verdict), Some(manifest::REMOVED), "{c:?}");
        // Recorded beyond a restart: an agent started afresh refuses it too.
        f.ledger.witness = Some(Witness::default());
        let c = f.check().unwrap();
        assert!(c.refused.iter().any(|r| r.name == "k1"), "{c:?}");
        assert!(c.accepted.contains(&"k2".to_owned()), "{c:?}");
    }
}

/// The same with no command at all: a chained line anyone can append, removing an older
/// version of k1 than the replacement the agent saw (and naming no real file).
#[test]
fn an_appended_removal_of_an_older_version_refuses_only_that_credential() {
    let mut f = watched();
    let (_, first, _) = k1_replaced_after_a_check(&mut f);
    let line = LedgerEntry::Key(KeyChange {
        action: KeyAction::Remove,
        name: "k1".into(),
        created: created_of(&first),
        sha256: "0".repeat(64),
    });
    f.ledger.record(&line).unwrap();
    let c = f.check().unwrap();
    assert!(c.accepted.contains(&"k2".to_owned()), "{c:?}");
    let refusal = c.refused.iter().find(|r| r.name == "k1");
    assert_eq!(refusal.map(|r| r.verdict), Some(manifest::REMOVED), "{c:?}");
}

/// `key remove` records the newest version the keystore knows of the name, not only the
/// file's: over an older copy put in place of the file, the line names the replacement.
#[test]
fn key_remove_over_an_older_copy_records_the_newest_version_known() {
    let mut f = Fixture::new();
    let (path, first, second) = k1_replaced_after_a_check(&mut f);
    put_back(&path, &first);
    f.remove("k1").unwrap();
    match f.ledger.entries.last() {
        Some(LedgerEntry::Key(k)) => {
            assert_eq!(k.action, KeyAction::Remove);
            assert_eq!(k.created, created_of(&second), "{k:?}");
            // The file it removed, as it was.
            assert_eq!(k.sha256, super::layout::sha256_hex(&first));
        }
        other => panic!("{other:?}"),
    }
}

/// The same for a chained line that takes k1 back to its first version: the agent ignores it,
/// as the check does (with a warning), rather than taking the record for an edited one.
#[test]
fn an_appended_line_pointing_back_is_ignored_not_taken_for_an_edited_log() {
    let mut f = watched();
    let (_, first, _) = k1_replaced_after_a_check(&mut f);
    let line = LedgerEntry::Key(KeyChange {
        action: KeyAction::Add,
        name: "k1".into(),
        created: created_of(&first),
        sha256: super::layout::sha256_hex(&first),
    });
    f.ledger.record(&line).unwrap();
    let c = f.check().unwrap();
    assert!(c.accepted.contains(&"k1".to_owned()), "{c:?}");
    assert!(c.accepted.contains(&"k2".to_owned()), "{c:?}");
    assert!(
        c.warnings.iter().any(|w| w.contains("added by hand")),
        "{c:?}"
    );
}

/// Red-team round 20: a credential replaced by anyone who runs as the trader (`key add
/// --replace` needs no secret) opened at the next unlock with nothing said. The check names
/// each credential replaced or removed since the last one, replaced ones first, and lists the
/// names stored in one sentence.
#[test]
fn the_check_names_the_credentials_changed_since_the_last_one() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    f.add(&cred("k3", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), true).unwrap();
    f.remove("k1").unwrap();
    let c = f.check().unwrap();
    let loud = &c.changes.loud;
    assert_eq!(loud.len(), 2, "{:?}", c.changes);
    assert_eq!(loud[0].0, "k2");
    assert!(
        loud[0].1.starts_with("credential \"k2\" was replaced"),
        "{loud:?}"
    );
    assert!(loud[0].1.contains("replaced at"), "{loud:?}");
    assert!(loud[0].1.contains("--replace"), "{loud:?}");
    assert!(
        loud[1].1.starts_with("credential \"k1\" was removed") && loud[1].1.contains("removed at")
    );
    assert_eq!(c.changes.quiet.len(), 1, "{:?}", c.changes);
    assert!(
        c.changes.quiet[0].starts_with("1 credential was stored since the keystore's last check"),
        "{:?}",
        c.changes
    );
    assert!(c.changes.quiet[0].contains("\"k3\""), "{:?}", c.changes);
    // Said once: the next check has nothing new to say.
    assert!(f.check().unwrap().changes.is_empty());
}

/// Red-team round 20, recheck: the notes were ranked and worded by the verbs of the lines.
/// `key remove k1` then `key add k1` (what `--replace` does) read as a mild "added", and eight
/// names stored and removed again pushed it into "and 1 more", with advice to store the junk
/// names again. Judged by what each name went from and to, k1 is replaced, first; the junk
/// names are one count with no advice.
#[test]
fn a_replacement_made_as_remove_then_add_is_noted_as_replaced_first() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    for i in 1..=8 {
        let name = format!("tmp{i}");
        f.add(&cred(&name, Exchange::Binance, None), false).unwrap();
        f.remove(&name).unwrap();
    }
    f.remove("k1").unwrap();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    let c = f.check().unwrap();
    let all = c.changes.all();
    assert_eq!(c.changes.loud.len(), 1, "{all:?}");
    assert!(
        all[0].starts_with("credential \"k1\" was replaced"),
        "{all:?}"
    );
    assert!(
        all[0].contains("removed at") && all[0].contains("then added at"),
        "{all:?}"
    );
    assert!(all[0].contains("someone else chose"), "{all:?}");
    assert!(!all.iter().any(|n| n.contains("tmp")), "{all:?}");
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1].starts_with("8 credential name(s) were stored and removed again"),
        "{all:?}"
    );
}

/// Red-team round 20, recheck: a line that takes a name back to an older version is ignored by
/// the check ("added by hand and is ignored"), yet it made a note advising `key remove` of the
/// trader's own credential. A line the check ignores makes no note.
#[test]
fn an_ignored_line_makes_no_change_note() {
    let mut f = watched();
    let (_, first, _) = k1_replaced_after_a_check(&mut f);
    f.check().unwrap();
    let line = LedgerEntry::Key(KeyChange {
        action: KeyAction::Add,
        name: "k1".into(),
        created: created_of(&first),
        sha256: super::layout::sha256_hex(&first),
    });
    f.ledger.record(&line).unwrap();
    let c = f.check().unwrap();
    assert!(c.accepted.contains(&"k1".to_owned()), "{c:?}");
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("ignored, and the credential is unchanged")),
        "{c:?}"
    );
}

/// Red-team round 20, recheck: sixteen such lines gave sixteen warnings, which pushed the note
/// of a real replacement out of the warnings shown. They make one.
#[test]
fn many_ignored_lines_make_one_warning() {
    let mut f = watched();
    let (_, first, _) = k1_replaced_after_a_check(&mut f);
    f.check().unwrap();
    for i in 0..16 {
        let line = LedgerEntry::Key(KeyChange {
            action: KeyAction::Add,
            name: format!("m{i}"),
            created: 1,
            sha256: super::layout::sha256_hex(&first),
        });
        f.ledger.record(&line).unwrap();
    }
    let c = f.check().unwrap();
    let ignored: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.contains("added by hand"))
        .collect();
    assert_eq!(ignored.len(), 1, "{c:?}");
    assert!(ignored[0].contains("15 more lines like it"), "{c:?}");
}

#[test]
fn a_flood_of_change_lines_is_noted_in_a_bounded_number_of_sentences() {
    use super::ledger::ChangeLine;
    use super::notes::{CHANGES_NOTED, change_notes};
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let m = f.ks.read_manifest().unwrap().unwrap();
    let base = m.written + 1_000_000;
    let line = |seq: u64, name: String, action| ChangeLine {
        seq,
        time: "2026-12-05T21:59:58.000Z".into(),
        change: KeyChange {
            action,
            name,
            created: base + seq,
            sha256: "aa".into(),
        },
        pid: 7,
        exe: String::new(),
    };
    let mut lines: Vec<ChangeLine> = (0..50_000)
        .map(|i| line(i, format!("n{i}"), KeyAction::Add))
        .collect();
    lines.extend((0..10).map(|i| line(60_000 + i, "k1".into(), KeyAction::Replace)));
    let start = std::time::Instant::now();
    let notes = change_notes(Some(&m), &lines, &Default::default());
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    let all = notes.all();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].starts_with("credential \"k1\" was replaced"),
        "{}",
        all[0]
    );
    assert!(all[0].contains("7 changes before"), "{}", all[0]);
    assert!(all[0].contains("by pid 7 (?)"), "{}", all[0]);
    assert!(
        all[1].starts_with("50000 credentials were stored"),
        "{}",
        all[1]
    );
    assert!(
        all[1].contains(&format!("{} more", 50_000 - CHANGES_NOTED)),
        "{}",
        all[1]
    );
}

/// Red-team round 21: `token add`, `token remove`, `keystore rotate` and a rebuild wrote the
/// next manifest, folding in a `key add --replace` made since the last check, and said nothing
/// of it: the next check had nothing left to note, and orders went to the attacker's account.
/// Each tells of it as the check would have, and the check after has nothing new to say.
#[test]
fn every_operation_that_writes_the_manifest_names_a_replacement_since_the_check() {
    let named = |notes: &ChangeNotes| {
        notes.replaced == 1
            && notes
                .loud
                .first()
                .is_some_and(|(n, t)| n == "k1" && t.starts_with("credential \"k1\" was replaced"))
    };
    // token add
    let mut f = Fixture::new();
    k1_replaced_after_a_check(&mut f);
    let b = super::tests::soft(f.tmp.path(), "token-b");
    let vk = f.unlock();
    let added = f.ks.add_keyslot(&vk, b.stub(), &mut f.ledger).unwrap();
    assert!(named(&added.changes), "{:?}", added.changes);
    assert!(f.check().unwrap().changes.is_empty());
    // token remove, and a rotation
    let replaced_after_a_check = |f: &mut Fixture| {
        f.check().unwrap();
        f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    };
    for remove in [Some(b.stub().id()), None] {
        replaced_after_a_check(&mut f);
        let rotated = f.rotate(remove.as_deref()).unwrap();
        assert!(named(&rotated.changes), "{:?}", rotated.changes);
        assert!(f.check().unwrap().changes.is_empty());
    }
    // a rebuild, where the manifest on disk still verifies
    replaced_after_a_check(&mut f);
    let vk = f.unlock();
    let stub = f.token.stub().clone();
    let mut none =
        |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> { panic!("{} was asked", s.id()) };
    let rebuilt =
        f.ks.rebuild_manifest(&vk, &stub, &mut none, &mut f.ledger, false)
            .unwrap();
    assert!(named(&rebuilt.changes), "{:?}", rebuilt.changes);
}

/// Red-team round 21: a credential file replaced with no line in the log (sealed in a copy of
/// the keystore and copied in, or `key add --replace` killed before its line) got one mild
/// warning, "accepted as a newer version", gone at the next unlock; with the log's record
/// unreadable, none at all. It is a replacement note, loud and first, saying no line records it.
#[test]
fn a_file_replaced_with_no_line_is_noted_as_replaced() {
    for gap in [false, true] {
        let mut f = Fixture::new();
        k1_replaced_after_a_check(&mut f);
        // The replacement's line never written.
        let line = f
            .ledger
            .entries
            .iter()
            .rposition(|e| matches!(e, LedgerEntry::Key(_)))
            .unwrap();
        f.ledger.entries.remove(line);
        if gap {
            // The log started afresh: nothing after the anchor can be read back.
            f.ledger.entries.clear();
        }
        let c = f.check().unwrap();
        assert_eq!(c.changes.replaced, 1, "{:?}", c.changes);
        let (name, text) = &c.changes.loud[0];
        assert_eq!(name, "k1");
        assert!(
            text.contains("no line of the audit log records writing"),
            "{text}"
        );
        assert!(text.contains("--replace"), "{text}");
        let all = c.warnings.join("\n");
        assert!(!all.contains("accepted as a newer version"), "{all}");
    }
}

/// Red-team round 21: a name stored, then replaced by another program before its first check,
/// read as "1 credential was stored", which the trader expected. Stored more than once since
/// the check, it is loud.
#[test]
fn a_name_stored_then_replaced_before_its_first_check_is_loud() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    f.add(&cred("k3", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k3", Exchange::Binance, None), true).unwrap();
    f.add(&cred("k4", Exchange::Binance, None), false).unwrap();
    let c = f.check().unwrap();
    assert_eq!(c.changes.replaced, 1, "{:?}", c.changes);
    assert_eq!(c.changes.loud.len(), 1, "{:?}", c.changes);
    let (name, text) = &c.changes.loud[0];
    assert_eq!(name, "k3");
    assert!(text.contains("stored, then stored again"), "{text}");
    assert!(c.changes.quiet[0].contains("\"k4\""), "{:?}", c.changes);
    assert!(!c.changes.quiet[0].contains("\"k3\""), "{:?}", c.changes);
}
