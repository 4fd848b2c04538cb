//! The corners of holding a manifest whose anchor the audit log does not hold to the log's
//! signed checks and `key` lines (`super::follows`).

use super::follows::{Follows, follows};
use super::ledger::{ChangeLine, CheckLine, Evidence, KeyAction, KeyChange};
use super::manifest::ManifestFile;
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
    // A name a `key` line removed before the check, which it does not list, held present at
    // that version: that line refuses the credential it names, not the keystore (no signed
    // line records the name; red-team round 24, second recheck). Left out is fine (a
    // rotation forgets removals).
    let with = |extra| {
        let mut creds = vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')];
        creds.extend(extra);
        later(creds)
    };
    match with(Some(rec("k3", 50, 'd'))) {
        Follows::After { behind, .. } => {
            assert_eq!(behind.iter().map(|l| l.seq).collect::<Vec<_>>(), [3]);
        }
        other => panic!("{other:?}"),
    }
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
fn only_a_check_signed_by_the_vault_or_an_ancestor_counts_and_versions_compare_across_a_rotation() {
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
        Follows::Forked {
            seq: 9,
            earlier: 8,
            why,
            ..
        } => {
            assert!(
                why.contains(
                    "audit line 6 recorded and audit line 8, signed too and later, left out"
                ),
                "{why}"
            );
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
        Follows::GoesBack { seq: 6, why, .. } => {
            assert!(
                why.contains("which audit line 4, signed too, recorded"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Red-team round 24, second recheck: a name one signed check records and a later one of the
/// same vault (or one descending from it) leaves out was removed, whether or not a `key
/// remove` line says so: dropped from the log, that one unsigned line was all that stood for
/// the removal, and a copy's manifest holding the old file opened it. A later version is
/// fine; a check of an older vault leaving it out proves nothing.
#[test]
fn a_name_a_later_signed_check_leaves_out_was_removed() {
    let (old, new) = (key(3), key(4));
    let both = [old.1.clone(), new.1.clone()];
    let checks = |second: &(VaultKey, String)| Evidence {
        checks: vec![
            check(4, 7, &old, vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')]),
            check(6, 8, second, vec![rec("k2", 100, 'c')]),
        ],
        ..Evidence::default()
    };
    let copy = |key: &str, k1| manifest(9, key, vec![k1, rec("k2", 100, 'c')]);
    for (second, m) in [
        (&old, copy(&old.1, rec("k1", 200, 'b'))),
        (&new, copy(&new.1, rec("k1", 200, 'z'))),
    ] {
        let why = goes_back(follows(&m, &checks(second), &both));
        assert!(
            why.contains("credential \"k1\"") && why.contains("that later check leaves out"),
            "{why}"
        );
    }
    let later = copy(&old.1, rec("k1", 300, 'e'));
    assert!(matches!(
        follows(&later, &checks(&old), &both),
        Follows::After { .. }
    ));
    // The older vault's check after the newer one's: not a removal by this keystore.
    let mut back = checks(&old);
    back.checks = vec![
        check(4, 7, &new, vec![rec("k1", 200, 'z'), rec("k2", 100, 'c')]),
        check(6, 8, &old, vec![rec("k2", 100, 'c')]),
    ];
    let m = copy(&new.1, rec("k1", 200, 'z'));
    assert!(matches!(follows(&m, &back, &both), Follows::After { .. }));
}

/// Red-team round 24, second recheck: a forged `key remove` line before the vault's first
/// check (which lists nothing), then the trader's own checks replayed into a log started
/// afresh: the next check "went back" on the removal, and nothing opened (`ChecksDisagree`).
/// An unsigned line refuses the credential it names alone, wherever it sits.
#[test]
fn a_key_line_before_a_check_does_not_make_a_later_check_go_back() {
    let v = key(3);
    let own = vec![rec("k1", 200, 'b'), rec("k2", 100, 'c')];
    let whole = Evidence {
        checks: vec![check(2, 1, &v, Vec::new()), check(3, 2, &v, own.clone())],
        change_lines: vec![change(1, KeyAction::Remove, "k1", 200, 'b')],
        ..Evidence::default()
    };
    match follows(&manifest(2, &v.1, own), &whole, std::slice::from_ref(&v.1)) {
        Follows::Recorded { seq: 3, lines } => {
            assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1]);
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
