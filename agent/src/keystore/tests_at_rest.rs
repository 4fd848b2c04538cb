//! Nothing goes backwards: each attack from the at-rest review (an attacker who can write the
//! user's files, or restore a backup) reproduced against the keystore, and caught.

use std::fs;
use std::os::unix::fs::DirBuilderExt;

use super::ledger::{KeyAction, LedgerEntry};
use super::tests::{Fixture, cred, files, unlock};
use super::*;
use crate::secret::SecretBytes;
use crate::token::soft::SoftToken;

fn rotated_secret(name: &str) -> Credential {
    let mut c = cred(name, Exchange::Upbit, None);
    c.secret = SecretBytes::from_slice(b"ROTATED-secret");
    c
}

/// Put a file back as a backup tool or an attacker would: private, like the rest.
pub(super) fn put_back(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn a_restored_old_credential_file_is_refused_at_unlock() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.add(&rotated_secret("upbit-main"), true).unwrap();
    f.check().unwrap();
    put_back(&path, &old);
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt"]);
    assert_eq!(c.refused.len(), 1, "{c:?}");
    assert_eq!(c.refused[0].name, "upbit-main");
    assert!(
        c.refused[0].reason.contains("old copy was put back"),
        "{c:?}"
    );
    // Refused again at every unlock, and recorded each time.
    assert_eq!(f.check().unwrap().refused.len(), 1);
    let refusals = f
        .ledger
        .entries
        .iter()
        .filter(|e| matches!(e, LedgerEntry::Refused { name, .. } if name == "upbit-main"))
        .count();
    assert_eq!(refusals, 2);
}

#[test]
fn a_rotated_key_put_back_before_the_next_unlock_is_caught_by_the_record() {
    // The attack: replace k1, copy the old k1.json back, unlock. No unlock came
    // between, so the old file is the very one the manifest recorded.
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.add(&rotated_secret("upbit-main"), true).unwrap();
    put_back(&path, &old);
    let c = f.check().unwrap();
    assert!(c.refused.iter().any(|r| r.name == "upbit-main"), "{c:?}");
    // Storing it again (a deliberate go-back) is accepted.
    f.add(&cred("upbit-main", Exchange::Upbit, None), true)
        .unwrap();
    let c = f.check().unwrap();
    assert!(c.accepted.contains(&"upbit-main".to_owned()), "{c:?}");
}

#[test]
fn without_the_record_the_put_back_goes_unnoticed_but_not_unannounced() {
    // The documented window: the record of the replace is lost (the log was cut before the
    // next unlock). The old file matches the manifest and is accepted, with a warning.
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.add(&rotated_secret("upbit-main"), true).unwrap();
    put_back(&path, &old);
    f.ledger.entries.clear();
    let c = f.check().unwrap();
    assert!(c.accepted.contains(&"upbit-main".to_owned()));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("could not be read back")),
        "{c:?}"
    );
}

#[test]
fn a_resurrected_deleted_credential_is_refused() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/binance-alt.json");
    let old = fs::read(&path).unwrap();
    // Removed, then put back before any unlock (caught by the record) ...
    f.remove("binance-alt").unwrap();
    put_back(&path, &old);
    let c = f.check().unwrap();
    assert_eq!(c.refused[0].name, "binance-alt", "{c:?}");
    assert!(c.refused[0].reason.contains("was removed"), "{c:?}");
    // ... and put back after one (caught by the manifest's memory of the removal).
    fs::remove_file(&path).unwrap();
    f.remove("upbit-main").unwrap();
    f.check().unwrap();
    put_back(&path, &old);
    f.ledger.entries.clear();
    let c = f.check().unwrap();
    assert_eq!(c.refused.len(), 1, "{c:?}");
    assert!(c.accepted.is_empty());
}

#[test]
fn a_swapped_in_keyslot_is_refused_after_the_touch_and_skipped_before() {
    // A keystore from before manifests, whose `token remove` only deleted B's keyslot: B's
    // old keyslot still wraps the current VK. The first unlock records the keyslots; B's
    // file put back afterwards is not among them.
    let (mut f, b) = Fixture::populated();
    let b_rel = format!("keyslots/{}.json", b.stub().id());
    let b_bytes = fs::read(f.live().join(&b_rel)).unwrap();
    f.make_legacy();
    fs::remove_file(f.ks.dir().join(&b_rel)).unwrap();
    let c = f.check().unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("had no manifest")),
        "{c:?}"
    );
    put_back(&f.live().join(&b_rel), &b_bytes);

    let slot =
        f.ks.keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .find(|s| &s.stub == b.stub())
            .unwrap();
    assert!(
        !slot.recorded,
        "an unlock skips it before asking for a touch"
    );
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    let vk = f.ks.unwrap_vault(&slot, &mut b).unwrap();
    let e = f.ks.check(&vk, &slot, 0, &mut f.ledger).unwrap_err();
    assert!(matches!(e, KeystoreError::KeyslotNotRecorded { .. }), "{e}");
    assert_eq!(e.path(), Some(slot.path.as_path()));
    // Token A still unlocks, with a warning about the stray keyslot.
    let c = f.check().unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains(&b.stub().id())),
        "{c:?}"
    );
}

#[test]
fn a_replaced_vault_json_is_refused_by_key_add_and_caught_at_unlock() {
    let (mut f, _) = Fixture::populated();
    let other = Fixture::new();
    let vault = f.live().join("vault.json");
    fs::copy(other.live().join("vault.json"), &vault).unwrap();
    let e = f
        .add(&cred("new-key", Exchange::Upbit, None), false)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotPinned { .. }), "{e}");
    assert!(e.to_string().contains("Nothing was stored"), "{e}");
    assert!(!f.live().join("credentials/new-key.json").exists());
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
}

#[test]
fn a_replaced_vault_json_and_manifest_are_refused_by_the_agents_pin() {
    // The attacker replaces both, consistently (their own keystore's manifest and folder):
    // the files alone cannot tell, the key the agent verified at its last unlock can.
    let (mut f, _) = Fixture::populated();
    let pinned = f.check().unwrap().vault_key;
    let other = Fixture::new();
    let their_live = other.live();
    let theirs = f.ks.dir().join(their_live.file_name().unwrap());
    for sub in ["credentials", "keyslots"] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(theirs.join(sub))
            .unwrap();
    }
    fs::copy(their_live.join("vault.json"), theirs.join("vault.json")).unwrap();
    fs::copy(
        other.ks.dir().join("manifest.json"),
        f.ks.dir().join("manifest.json"),
    )
    .unwrap();
    let c = cred("new-key", Exchange::Upbit, None);
    let e =
        f.ks.add_credential(&c, false, Some(&pinned), &mut f.ledger)
            .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotPinned { .. }), "{e}");
    assert!(e.to_string().contains("running agent"), "{e}");
}

#[test]
fn a_forged_manifest_does_not_verify() {
    let (mut f, _) = Fixture::populated();
    let path = f.ks.dir().join("manifest.json");
    let mut m: super::manifest::ManifestFile =
        files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    m.credentials.clear();
    fs::write(&path, files::encode(&path, m).unwrap()).unwrap();
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::ManifestInvalid { .. }), "{e}");
    assert_eq!(e.path(), Some(path.as_path()));
}

#[test]
fn a_manifest_put_back_is_refused_by_the_agent_that_saw_a_newer_one() {
    let (mut f, _) = Fixture::populated();
    let path = f.ks.dir().join("manifest.json");
    let old = fs::read(&path).unwrap();
    let seen = f.check().unwrap().generation;
    put_back(&path, &old);
    let slot = f.ks.keyslots().unwrap().remove(0).unwrap();
    let vk = unlock(&f.ks, &mut f.token).unwrap();
    // The agent's memory alone catches it, even where the log's record of it was cut.
    let mut cut = super::ledger::MemoryLedger {
        entries: f.ledger.entries.clone(),
        ..Default::default()
    };
    cut.entries
        .retain(|e| !matches!(e, LedgerEntry::Manifest { generation, .. } if *generation == seen));
    let e = f.ks.check(&vk, &slot, seen, &mut cut).unwrap_err();
    assert!(matches!(e, KeystoreError::RolledBack { .. }), "{e}");
    // Nor does a fresh agent that read the newer one in its log at its start, before any
    // unlock (red-team round 26, part 2: the log cut in place during its first check).
    cut.floor = seen;
    let e = f.ks.check(&vk, &slot, 0, &mut cut).unwrap_err();
    assert!(matches!(e, KeystoreError::RolledBack { .. }), "{e}");
    cut.floor = 0;
    // A fresh agent has no memory: the record in the log refuses it too.
    let e = f.check().unwrap_err();
    assert!(
        matches!(e, KeystoreError::OlderThanLog { recorded, .. } if recorded == seen),
        "{e}"
    );
    assert!(e.to_string().contains("--rebuild-manifest"), "{e}");
    // So does `key add`: a credential sealed now could be opened by a token removed since.
    let e = f
        .add(&cred("late", Exchange::Upbit, None), false)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
    // The trader who restored it on purpose rebuilds; generations never repeat.
    rebuild(&mut f).unwrap();
    let c = f.check().unwrap();
    assert!(c.generation > seen + 1, "{} after {seen}", c.generation);
}

#[test]
fn a_keystore_without_a_manifest_gets_one_at_its_first_unlock() {
    let (mut f, _) = Fixture::populated();
    f.make_legacy();
    assert!(f.ks.is_initialized().unwrap());
    assert_eq!(f.ks.generation().unwrap(), None);
    // Key changes still work before it (without the vault pin), and say so.
    let added = f.add(&cred("late", Exchange::Upbit, None), false).unwrap();
    assert!(added.warnings[0].contains("no manifest yet"), "{added:?}");
    let c = f.check().unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("had no manifest")),
        "{c:?}"
    );
    assert_eq!(c.accepted.len(), 3);
    assert!(!f.ks.dir().join("vault.json").exists());
    let live = f.live();
    assert!(
        live.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("vault-")
    );
    let vk = f.unlock();
    for name in ["upbit-main", "binance-alt", "late"] {
        f.ks.open_credential(&vk, name).unwrap();
    }
    assert_eq!(files(f.ks.dir()).len(), 7, "{:?}", files(f.ks.dir()));
}

#[test]
fn key_changes_are_recorded_and_undone_when_they_cannot_be() {
    let (mut f, _) = Fixture::populated();
    let keys: Vec<_> = f
        .ledger
        .entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Key(k) => Some((k.action, k.name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [
            (KeyAction::Add, "upbit-main".into()),
            (KeyAction::Add, "binance-alt".into())
        ]
    );
    let path = f.live().join("credentials/upbit-main.json");
    let before = fs::read(&path).unwrap();
    f.ledger.broken = Some("disk full (test)".into());
    let e = f.add(&rotated_secret("upbit-main"), true).unwrap_err();
    assert!(matches!(e, KeystoreError::NotRecorded { .. }), "{e}");
    assert!(e.to_string().contains("undone"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), before, "the old file is back");
    f.add(&cred("new-key", Exchange::Upbit, None), false)
        .unwrap_err();
    assert!(!f.live().join("credentials/new-key.json").exists());
    f.remove("upbit-main").unwrap_err();
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "not removed off the record"
    );
    f.ledger.broken = None;
    f.remove("upbit-main").unwrap();
    match f.ledger.entries.last() {
        Some(LedgerEntry::Key(k)) => {
            assert_eq!(k.action, KeyAction::Remove);
            assert_eq!(k.sha256, super::layout::sha256_hex(&before));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_or_forged_manifest_can_be_rebuilt_with_a_touch() {
    let (mut f, _) = Fixture::populated();
    let path = f.ks.dir().join("manifest.json");
    let pristine = fs::read(&path).unwrap();
    // Damaged (one flipped byte): every read names it and says how to get out.
    let mut bytes = pristine.clone();
    bytes[40] ^= 0x01;
    put_back(&path, &bytes);
    let e = f.ks.keyslots().unwrap_err();
    assert_eq!(e.path(), Some(path.as_path()));
    assert!(e.to_string().contains("--rebuild-manifest"), "{e}");
    let vk = touch_for_rebuild(&mut f);
    let r = rebuild_with(&mut f, &vk).unwrap();
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
    // Only the token touched: nothing vouches for the other keyslot any more.
    assert_eq!(r.keyslots, [f.token.stub().id()]);
    assert!(
        r.warnings.iter().any(|w| w.contains("enroll it again")),
        "{r:?}"
    );
    assert!(f.check().unwrap().refused.is_empty());

    // Forged (it parses, the MAC fails): the same way out.
    let mut m: super::manifest::ManifestFile =
        files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    m.credentials.clear();
    put_back(&path, &files::encode(&path, m).unwrap());
    assert!(matches!(
        f.check().unwrap_err(),
        KeystoreError::ManifestInvalid { .. }
    ));
    let vk = f.unlock();
    rebuild_with(&mut f, &vk).unwrap();
    let vk = f.unlock();
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt", "upbit-main"]);
    f.ks.open_credential(&vk, "upbit-main").unwrap();
}

#[test]
fn a_keystore_without_a_manifest_can_remove_a_token_at_once() {
    let (mut f, b) = Fixture::populated();
    f.make_legacy();
    let r = f.rotate(Some(&b.stub().id())).unwrap();
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
    assert!(!f.ks.dir().join("vault.json").exists());
    assert!(!f.ks.dir().join("keyslots").exists());
    assert!(f.ks.generation().unwrap().is_some());
    let c = f.check().unwrap();
    assert_eq!(c.accepted.len(), 2, "{c:?}");
}

/// The vault key from a touch on the fixture's token, through the keyslots a rebuild reads
/// (the manifest being damaged).
fn touch_for_rebuild(f: &mut Fixture) -> VaultKey {
    let slot =
        f.ks.keyslots_for_rebuild()
            .unwrap()
            .into_iter()
            .find(|s| &s.stub == f.token.stub())
            .unwrap();
    f.ks.unwrap_vault(&slot, &mut f.token).unwrap()
}

/// `keystore rotate --rebuild-manifest` with the fixture's token (a soft keyslot wraps offline).
fn rebuild(f: &mut Fixture) -> Result<Rotated, KeystoreError> {
    let vk = f.unlock();
    rebuild_with(f, &vk)
}

/// [`rebuild`] with the vault key `vk` from a touch already made.
fn rebuild_with(f: &mut Fixture, vk: &VaultKey) -> Result<Rotated, KeystoreError> {
    let mut none = |_: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        unreachable!("soft keyslots wrap offline")
    };
    f.ks.rebuild_manifest(vk, &f.token.stub().clone(), &mut none, &mut f.ledger, false)
}

/// A `key_change` line as anyone who can write the log can append one (it continues the
/// chain: nothing in it is secret), recording the file at `path` as `name`'s current version.
fn forged_line(path: &std::path::Path, name: &str, action: KeyAction) -> LedgerEntry {
    let (file, sha256) = load_credential(path, name).unwrap();
    LedgerEntry::Key(super::ledger::KeyChange {
        action,
        name: name.into(),
        created: file.created,
        sha256,
    })
}

#[test]
fn a_line_added_to_the_log_cannot_take_a_credential_back() {
    // The at-rest review's attack: a rotated credential's old file put back, and a line
    // appended that records it as the current version.
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    let line = forged_line(&path, "upbit-main", KeyAction::Replace);
    f.add(&rotated_secret("upbit-main"), true).unwrap();
    f.check().unwrap();
    put_back(&path, &old);
    f.ledger.entries.push(line);
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt"], "{c:?}");
    assert_eq!(c.refused[0].name, "upbit-main", "{c:?}");
    assert!(
        c.warnings.iter().any(|w| w.contains("added by hand")),
        "{c:?}"
    );

    // A removed credential, brought back with a line that says it was added again.
    let path = f.live().join("credentials/binance-alt.json");
    let old = fs::read(&path).unwrap();
    let line = forged_line(&path, "binance-alt", KeyAction::Add);
    f.remove("binance-alt").unwrap();
    f.check().unwrap();
    put_back(&path, &old);
    f.ledger.entries.push(line);
    let c = f.check().unwrap();
    assert!(c.accepted.is_empty(), "{c:?}");
    assert!(c.refused.iter().any(|r| r.name == "binance-alt"), "{c:?}");
}

/// Red-team round 17: one changed byte of `manifest.json` makes every command advise the
/// rebuild, and the rebuild took every file that opened: an old copy of a replaced secret (or
/// a removed credential) put back before it signed again, with the log intact. The rebuild now
/// checks the files against the log's record of key changes, and is refused, naming each file
/// the record shows put back; the rest (and a file moved aside) rebuild as before.
#[test]
fn a_rebuild_refuses_a_copy_the_audit_log_shows_put_back() {
    let (mut f, _) = Fixture::populated();
    // A rotation re-seals every file (same `created`, a new hash): `binance-alt`'s file no
    // longer has the hash its line records, and must still pass.
    f.rotate(None).unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    let removed = f.live().join("credentials/gone.json");
    f.add(&cred("gone", Exchange::Upbit, None), false).unwrap();
    let removed_bytes = fs::read(&removed).unwrap();
    f.remove("gone").unwrap();
    f.add(&rotated_secret("upbit-main"), true).unwrap();
    let current = fs::read(&path).unwrap();
    f.check().unwrap();

    let manifest = f.ks.dir().join("manifest.json");
    let mut damaged = fs::read(&manifest).unwrap();
    damaged[40] ^= 0x01;
    put_back(&manifest, &damaged);
    let rebuild = |f: &mut Fixture| {
        let vk = touch_for_rebuild(f);
        rebuild_with(f, &vk)
    };
    for (file, bytes, name) in [
        (&path, &old, "upbit-main"),
        (&removed, &removed_bytes, "gone"),
    ] {
        put_back(file, bytes);
        let e = rebuild(&mut f).unwrap_err();
        assert!(matches!(e, KeystoreError::RebuildPutBack { .. }), "{e}");
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(fs::read(&manifest).unwrap(), damaged, "nothing changed");
        if name == "upbit-main" {
            // Recheck: a log that is not this keystore's history (moved aside, a new one
            // started) vouches for nothing: the rebuild stops, unless told to take the files
            // unchecked.
            let kept = std::mem::take(&mut f.ledger.entries);
            let e = rebuild(&mut f).unwrap_err();
            assert!(matches!(e, KeystoreError::RebuildUnchecked { .. }), "{e}");
            assert!(e.to_string().contains("--unchecked"), "{e}");
            assert_eq!(fs::read(&manifest).unwrap(), damaged, "nothing changed");
            f.ledger.entries = kept;
            put_back(file, &current);
        } else {
            fs::remove_file(file).unwrap();
        }
    }
    // The current file (re-sealed by the rotation) passes, and rebuilds.
    let r = rebuild(&mut f).unwrap();
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
    assert_eq!(r.dropped, []);
    let vk = f.unlock();
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt", "upbit-main"]);
    let opened = f.ks.open_credential(&vk, "upbit-main").unwrap();
    assert_eq!(opened.secret.expose(), b"ROTATED-secret");
}

#[test]
fn versions_stored_within_one_second_each_pass_the_check() {
    // The check takes a line only if it moves a name forward, so `key add` seals each
    // version later than every one it knows of, however fast they come.
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(f.add(&rotated_secret("upbit-main"), true).unwrap().created);
    }
    f.remove("upbit-main").unwrap();
    created.push(f.add(&rotated_secret("upbit-main"), false).unwrap().created);
    assert!(created.windows(2).all(|w| w[0] < w[1]), "{created:?}");
    let c = f.check().unwrap();
    assert!(c.refused.is_empty(), "{c:?}");
    assert!(c.warnings.is_empty(), "{c:?}");
}

/// A `key_change` line anyone can append named a version at `u64::MAX`: `key add --replace`
/// sealed the new secret at `u64::MAX` too (saturated), said it was stored, and every unlock
/// refused it as an old copy, its advice (`key add --replace`) doing the same again. It is
/// refused up front, and the way out it names works.
#[test]
fn no_version_is_stored_after_one_recorded_at_the_end_of_time() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    f.ledger
        .entries
        .push(LedgerEntry::Key(super::ledger::KeyChange {
            action: KeyAction::Replace,
            name: "upbit-main".into(),
            created: u64::MAX,
            sha256: "00".repeat(32),
        }));
    let e = f.add(&rotated_secret("upbit-main"), true).unwrap_err();
    assert!(matches!(e, KeystoreError::NoLaterVersion { .. }), "{e}");
    let c = f.check().unwrap();
    assert!(c.refused.iter().any(|r| r.name == "upbit-main"), "{c:?}");
    // The way out the error names.
    f.remove("upbit-main").unwrap();
    f.rotate(None).unwrap();
    f.add(&rotated_secret("upbit-main"), false).unwrap();
    let c = f.check().unwrap();
    assert!(c.accepted.iter().any(|n| n == "upbit-main"), "{c:?}");
    assert!(c.refused.is_empty(), "{c:?}");
}

#[test]
fn files_from_before_manifests_put_back_where_the_log_records_one_are_refused() {
    // Moving the files back to the layout before manifests, and deleting manifest.json, must
    // not turn the checks off: the log records that this keystore had a manifest.
    let (mut f, _) = Fixture::populated();
    let recorded = f.check().unwrap().generation;
    let record = f.ledger.entries.clone();
    f.make_legacy();
    f.ledger.entries = record;
    let e = f.check().unwrap_err();
    assert!(
        matches!(e, KeystoreError::ManifestGone { recorded: r, .. } if r == recorded),
        "{e}"
    );
    assert!(e.to_string().contains("--rebuild-manifest"), "{e}");
    let e = f
        .add(&cred("late", Exchange::Upbit, None), false)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::ManifestGone { .. }), "{e}");
    // A rebuild (the trader trusts the files) goes on above the recorded generation.
    rebuild(&mut f).unwrap();
    assert!(f.ks.generation().unwrap().unwrap() > recorded);
    assert!(f.check().unwrap().refused.is_empty());
}

/// A line recording a generation no keystore reaches by counting would make every later
/// manifest that generation, or none. Red-team round 18: one at `u64::MAX - 1` was taken as
/// the floor, a rebuild wrote `u64::MAX`, no manifest could follow, and every way out led to an
/// unchecked rebuild that sealed an old copy of a secret again; its recheck: a fixed limit
/// (2^48) only moved that below itself. A line further above the one before it than
/// [`super::ledger::GENERATION_STEP`] is left out of the record, and said.
#[test]
fn a_generation_far_above_the_record_is_left_out_of_it() {
    use super::ledger::GENERATION_STEP;
    let (mut f, _) = Fixture::populated();
    let before = f.check().unwrap().generation;
    let forge = |f: &mut Fixture, generation| {
        f.ledger.entries.push(LedgerEntry::Manifest {
            generation,
            vault: "0000000000000000".into(),
            vault_key: String::new(),
            links: vec![],
            reason: "added by hand".into(),
            records: vec![],
            signature: String::new(),
        })
    };
    for forged in [u64::MAX, u64::MAX - 1, (1 << 48) - 1, GENERATION_STEP + 10] {
        forge(&mut f, forged);
        let c = f.check().unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("by hand") && w.contains(&forged.to_string())),
            "{:?}",
            c.warnings
        );
        assert!(c.generation < GENERATION_STEP, "{}", c.generation);
    }
    // One within reach is believed: the check refuses the keystore as older than the record,
    // and the rebuild it advises goes on above it, with room to go on.
    let near = before + 100;
    forge(&mut f, near);
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
    rebuild(&mut f).unwrap();
    let g = f.ks.generation().unwrap().unwrap();
    assert!(g > near && g < GENERATION_STEP, "{g}");
    f.check().unwrap();
}

/// Red-team round 19: after the rebuild a believed forged line advises, the keystore stands
/// above [`super::ledger::GENERATION_STEP`]. Each unlock reads the record from its manifest's
/// anchor, and judged from nothing there, its own record was left out as written by hand: every
/// unlock warned of a forgery that was the trader's own line, and a copy of the manifest put
/// back opened. Judged from the manifest's own generation, they are believed.
#[test]
fn a_keystore_above_the_step_believes_its_own_record() {
    use super::ledger::GENERATION_STEP;
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    f.ledger.entries.push(LedgerEntry::Manifest {
        generation: GENERATION_STEP,
        vault: "0000000000000000".into(),
        vault_key: String::new(),
        links: Vec::new(),
        reason: "added by hand".into(),
        records: vec![],
        signature: String::new(),
    });
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
    rebuild(&mut f).unwrap();
    let c = f.check().unwrap();
    assert!(c.generation > GENERATION_STEP, "{}", c.generation);
    assert!(
        !c.warnings.iter().any(|w| w.contains("by hand")),
        "{:?}",
        c.warnings
    );
    let path = f.ks.dir().join("manifest.json");
    let old = fs::read(&path).unwrap();
    let older = f.check().unwrap().generation;
    let newest = f.check().unwrap().generation;
    assert!(newest > older);
    put_back(&path, &old);
    let e = f.check().unwrap_err();
    assert!(
        matches!(e, KeystoreError::OlderThanLog { recorded, .. } if recorded == newest),
        "{e}"
    );
    // The preview (`key list`) reads it as the unlock does.
    let p = f.ks.preview(&mut f.ledger).unwrap();
    assert!(
        p.whole.as_deref().is_some_and(|w| w.contains("older copy")),
        "{p:?}"
    );
}

#[test]
fn a_keystore_made_afresh_next_to_an_old_log_is_refused_until_the_log_is_moved_aside() {
    // The log names the old keystore's vault keys, and a new vault descends from none of them:
    // its first unlock would be refused, so `create` says so first.
    let (mut f, _) = Fixture::populated();
    let old = f.check().unwrap().generation;
    fs::remove_dir_all(f.ks.dir()).unwrap();
    let stub = f.token.stub().clone();
    let e = f.ks.create(&stub, &mut f.ledger).unwrap_err();
    assert!(matches!(e, KeystoreError::LogHasKeystore { .. }), "{e}");
    assert!(e.to_string().contains("move the audit log aside"), "{e}");
    assert!(!f.ks.is_initialized().unwrap());
    // A log from before vault keys were recorded names generations only: the new keystore
    // starts above them, so it does not look like an older copy of the one before it.
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Manifest { vault_key, .. } = e {
            vault_key.clear();
        }
    }
    f.ks.create(&stub, &mut f.ledger).unwrap();
    assert!(f.ks.generation().unwrap().unwrap() > old);
    assert!(f.check().is_ok());
}

#[test]
fn a_fifo_where_a_credential_belongs_is_reported_not_waited_on() {
    // Red-team round 6: opening a FIFO blocks until a writer comes, so a pipe left as
    // credentials/k9.json wedged `key list`, the unlock, and the agent's shutdown behind it.
    let (mut f, _) = Fixture::populated();
    let pipe = f.live().join("credentials/k9.json");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &pipe,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let listed = f.ks.list_credentials().unwrap();
    let damaged: Vec<String> = listed
        .iter()
        .filter_map(|c| c.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert!(damaged[0].contains("not a regular file"), "{damaged:?}");
    // The unlock's check goes on with the others.
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt", "upbit-main"], "{c:?}");
}

#[test]
fn a_manifest_that_does_not_verify_gets_no_vault_folder_removed() {
    // Red-team round 6: a manifest.json with a good checksum (anyone can compute it) naming
    // another vault folder, filled with copies, made the unlock's check remove the real vault
    // folder as a crash's leftover before the manifest's MAC was checked; then it refused.
    let (mut f, _) = Fixture::populated();
    let real = f.live();
    let other = p256::SecretKey::from_slice(&[7u8; 32])
        .unwrap()
        .public_key();
    let path = f.ks.dir().join("manifest.json");
    let mut m: super::manifest::ManifestFile =
        files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    m.vault_key = hex::encode(super::seal::compressed(&other));
    fs::write(&path, files::encode(&path, m).unwrap()).unwrap();
    let decoy = f.ks.dir().join(super::layout::vault_folder(&other));
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&real)
        .arg(&decoy)
        .status()
        .unwrap();
    assert!(cp.success());
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::ManifestInvalid { .. }), "{e}");
    assert!(
        real.join("credentials/upbit-main.json").exists(),
        "the real vault folder was removed"
    );
}

/// Red-team round 10: an unlock checked the files, let the lock go, then read each accepted
/// credential again and opened whatever its AEAD tag let through: an older copy sealed to the
/// same vault key, put in place between the two, opened into the session unrefused.
#[test]
fn an_older_copy_put_in_place_after_the_check_is_not_opened() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let path = f.live().join("credentials/k1.json");
    let old = fs::read(&path).unwrap();
    f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    let current = fs::read(&path).unwrap();
    let checked = f.check().unwrap();
    assert!(checked.accepted.contains(&"k1".to_string()), "{checked:?}");
    let vk = f.unlock();
    fs::write(&path, &old).unwrap();
    let e = f.ks.open_checked(&vk, "k1", &checked).err().unwrap();
    assert!(matches!(e, KeystoreError::Swapped { .. }), "{e}");
    fs::write(&path, &current).unwrap();
    f.ks.open_checked(&vk, "k1", &checked).unwrap();
}

/// An unlock read the whole manifest again to open each credential (`live_dir` per name), so
/// opening N credentials was quadratic: 2,000 took 6.8 s, 2.2 s without. The check hands the
/// folder it read to the opening, which reads no manifest: here none is left to read, and the
/// file judged still opens while another in its place is still refused.
#[test]
fn credentials_open_in_the_folder_the_check_read_without_the_manifest_again() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let live = f.live();
    let path = live.join("credentials/k1.json");
    let old = fs::read(&path).unwrap();
    f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    let checked = f.check().unwrap();
    assert_eq!(checked.live.as_deref(), Some(live.as_path()));
    let vk = f.unlock();
    fs::remove_file(f.ks.dir().join("manifest.json")).unwrap();
    f.ks.open_checked(&vk, "k1", &checked).unwrap();
    fs::write(&path, &old).unwrap();
    let e = f.ks.open_checked(&vk, "k1", &checked).err().unwrap();
    assert!(matches!(e, KeystoreError::Swapped { .. }), "{e}");
}

/// The same through the agent's unlock: a file put in place between the check and the
/// opening (`unlock: checked, before opening`) stops the unlock; nothing is opened.
#[test]
fn an_unlock_opens_nothing_when_a_file_is_swapped_after_its_check() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let path = f.live().join("credentials/k1.json");
    let old = fs::read(&path).unwrap();
    f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    let home = f.ks.dir().parent().unwrap().to_path_buf();
    let unlocker =
        crate::unlocker::Unlocker::new(&crate::paths::Paths::under(&home, home.join("s")), false);
    let vk = f.unlock();
    let slot =
        f.ks.keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .find(|s| &s.stub == f.token.stub())
            .unwrap();
    let swap = path.clone();
    crate::disk::INTERLEAVE.with(|i| {
        i.borrow_mut().push((
            "unlock: checked, before opening",
            Box::new(move || fs::write(&swap, &old).unwrap()),
        ))
    });
    let all = ["k1".to_string(), "k2".to_string()];
    let mut warnings = Vec::new();
    let e = unlocker
        .check_and_open(&vk, &slot, &[], &all, &mut f.ledger, &mut warnings)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("changed while this command checked"),
        "{e}"
    );
}

/// Red-team round 10: `key remove` took the file away before it recorded the removal, so a
/// removal stopped between the two (killed, a power cut) left nothing on record: the retry
/// found no file to remove, and a copy put back later opened unrefused. Now the line comes
/// first: stopped there, the file is still present and refused as removed, and a retry
/// finishes the removal.
#[test]
fn a_removal_stopped_after_its_line_leaves_the_file_refused_and_the_retry_finishes_it() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
    f.check().unwrap();
    let path = f.live().join("credentials/k2.json");
    super::files::CRASH_AFTER.with(|c| c.set(Some(0)));
    let crashed = catch_unwind(AssertUnwindSafe(|| f.remove("k2"))).is_err();
    super::files::CRASH_AFTER.with(|c| c.set(None));
    assert!(crashed, "the removal ran past its crash point");
    assert!(path.exists(), "the file goes only after its line");
    let c = f.check().unwrap();
    assert!(c.refused.iter().any(|r| r.name == "k2"), "{c:?}");
    f.remove("k2").unwrap();
    assert!(!path.exists());
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["k1"]);
    assert_eq!(c.refused, []);
}

/// Red-team round 10: a `token remove` stopped after its commit, before its `keystore`
/// line, left a manifest the log does not know; a copy from before it then passed for
/// current. `key list` (the preview) says so, and the next unlock's check records one again.
#[test]
fn a_manifest_the_log_does_not_record_is_warned_about_until_a_check_records_one() {
    let (mut f, b) = Fixture::populated();
    assert_eq!(
        f.ks.preview(&mut f.ledger).unwrap().warnings,
        Vec::<String>::new()
    );
    // Killed right after the commit (a record that fails undoes the commit instead).
    let id = b.stub().id();
    let mut killed = false;
    for n in 0..64 {
        let snapshot = f.ledger.entries.len();
        super::files::CRASH_AFTER.with(|c| c.set(Some(n)));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.rotate(Some(&id))));
        super::files::CRASH_AFTER.with(|c| c.set(None));
        let Err(panic) = run else {
            panic!("the rotation ran to its end before its record");
        };
        let said = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        if said.contains("the manifest in place, before its record") {
            killed = true;
            break;
        }
        assert_eq!(f.ledger.entries.len(), snapshot, "step {n}: {said}");
    }
    assert!(killed);
    let w = f.ks.preview(&mut f.ledger).unwrap().warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("no record of the keystore's manifest")),
        "{w:?}"
    );
    f.check().unwrap();
    assert_eq!(
        f.ks.preview(&mut f.ledger).unwrap().warnings,
        Vec::<String>::new()
    );
}

/// Red-team round 18: `key add --replace` whose record failed, and whose undo failed too (a
/// full disk; or the log's lock held and the folder made read-only), returned the undo's bare
/// I/O error about a temp file, which reads as "nothing was stored", while the new file stood
/// off the record. It says what happened and what to do.
#[test]
fn a_replace_whose_record_and_undo_fail_says_the_new_file_stands() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.ledger.fills = Some((0, "No space left on device (test)".into()));
    // The new file's write goes through; the undo's fails.
    super::files::FAIL_AFTER.with(|h| h.set(Some(1)));
    let mut c = cred("upbit-main", Exchange::Upbit, None);
    c.secret = SecretBytes::from_slice(b"NEW-SECRET");
    let e = f.add(&c, true).unwrap_err();
    super::files::FAIL_AFTER.with(|h| h.set(None));
    f.ledger.fills = None;
    assert!(
        matches!(e, KeystoreError::CredentialNotUndone { .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("the new file is in place") && msg.contains("--replace"),
        "{msg}"
    );
    assert_ne!(fs::read(&path).unwrap(), old);
    // With the undo through, the record's failure is all there is, and the old file is back.
    f.ledger.fills = Some((0, "No space left on device (test)".into()));
    let e = f.add(&c, true).unwrap_err();
    f.ledger.fills = None;
    assert!(matches!(e, KeystoreError::NotRecorded { .. }), "{e}");
}

/// Red-team round 20: `key remove k1` with k1's file hidden (moved under a dot name, which
/// listings skip) said there was no such credential and recorded nothing; the file put back
/// opened at the next unlock. The record holds k1 as present: its removal is recorded,
/// naming the version recorded (here a replacement made since the last check), and the file
/// put back is refused.
#[test]
fn a_credential_whose_file_is_hidden_is_removed_on_the_record() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let replaced = f.add(&rotated_secret("upbit-main"), true).unwrap();
    let file = f.live().join("credentials/upbit-main.json");
    let hidden = f.live().join("credentials/.upbit-main.json.hide");
    fs::rename(&file, &hidden).unwrap();

    let removed = f.remove("upbit-main").unwrap();
    assert!(removed.file_missing);
    let line = f.ledger.entries.iter().rev().find_map(|e| match e {
        LedgerEntry::Key(k) if k.name == "upbit-main" => Some(k.clone()),
        _ => None,
    });
    let line = line.unwrap();
    assert_eq!(line.action, KeyAction::Remove);
    assert_eq!(line.created, replaced.created, "the version recorded");
    // Again: nothing is left on record as present.
    let e = f.remove("upbit-main").err().unwrap();
    assert!(matches!(e, KeystoreError::NotFound { .. }), "{e}");

    fs::rename(&hidden, &file).unwrap();
    let checked = f.check().unwrap();
    assert!(!checked.accepted.contains(&"upbit-main".to_owned()));
    assert_eq!(checked.refused.len(), 1, "{:?}", checked.refused);
    assert_eq!(checked.refused[0].verdict, super::manifest::REMOVED);
    assert!(checked.accepted.contains(&"binance-alt".to_owned()));
}

/// Red-team round 22, recheck: a file sealed with its name's recorded `created` and another
/// API key (in a copy of the keystore, its clock set to that time) and copied over the current
/// one. Every unlock refuses it, but the rebuild compared `created` alone and took it in, and
/// the notes after the rebuild, which take `created` to name one version, said nothing. The
/// rebuild refuses it too, naming it and nothing else.
#[test]
fn a_rebuild_refuses_a_file_with_the_recorded_time_and_other_contents() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let (file, _) = load_credential(&path, "upbit-main").unwrap();
    let vk = f.unlock();
    let other = rotated_secret("upbit-main");
    let bytes =
        super::changes::credential_bytes(&path, &vk.public_key(), &other, file.created).unwrap();
    put_back(&path, &bytes);
    // The check refuses it, and says it is not an older version.
    let c = f.check().unwrap();
    let refused = c.refused.iter().find(|r| r.name == "upbit-main").unwrap();
    assert!(
        refused.reason.contains("is not the version recorded") && !refused.reason.contains("older"),
        "{refused:?}"
    );
    fs::remove_file(f.ks.dir().join("manifest.json")).unwrap();
    let vk = touch_for_rebuild(&mut f);
    let e = rebuild_with(&mut f, &vk).unwrap_err();
    assert!(matches!(e, KeystoreError::RebuildPutBack { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("\"upbit-main\" is not the version recorded"),
        "{text}"
    );
    assert!(!text.contains("binance-alt"), "{text}");
}

/// Red-team round 25: with the log unreadable for one unlock while it still took records (the
/// running agent appends through the descriptor it holds), the check's manifest was anchored
/// at its own check line, so every later check found it anchored and never held it to the
/// record it had not read. It is anchored nowhere now and its check is not recorded; the next
/// check, the log readable, holds it to every signed check.
#[test]
fn a_check_that_could_not_read_the_record_anchors_nothing_and_records_nothing() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let recorded = f.ledger.entries.len();
    f.ledger.unreadable = Some("Permission denied".into());
    let c = f.check().unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("anchored nowhere")),
        "{:?}",
        c.warnings
    );
    assert_eq!(f.ledger.entries.len(), recorded);
    let text = fs::read_to_string(f.ks.dir().join("manifest.json")).unwrap();
    assert!(text.contains("\"audit\": null"), "{text}");
    // Nor does it pin the vault for a running agent (red-team round 26).
    assert!(c.log_unread);
    // Readable again: the next check follows the record and anchors again.
    f.ledger.unreadable = None;
    let c = f.check().unwrap();
    assert!(!c.log_unread);
    assert!(c.refused.is_empty(), "{:?}", c.refused);
    assert_eq!(f.ledger.entries.len(), recorded + 1);
    let text = fs::read_to_string(f.ks.dir().join("manifest.json")).unwrap();
    assert!(!text.contains("\"audit\": null"), "{text}");
}

/// A token added, a rotation or a rebuild on a check that could not read the record is refused
/// before anything is written: its record would vouch for files never held to the record.
#[test]
fn changes_on_a_check_that_could_not_read_the_record_are_refused() {
    let (mut f, b) = Fixture::populated();
    f.check().unwrap();
    let manifest = fs::read(f.ks.dir().join("manifest.json")).unwrap();
    let recorded = f.ledger.entries.len();
    f.ledger.unreadable = Some("Permission denied".into());
    let e = f.rotate(Some(&b.stub().id())).unwrap_err();
    assert!(matches!(e, KeystoreError::LogUnread { .. }), "{e}");
    assert!(e.to_string().contains("Permission denied"), "{e}");
    let e = f.rotate(None).unwrap_err();
    assert!(matches!(e, KeystoreError::LogUnread { .. }), "{e}");
    let c = super::tests::soft(f.tmp.path(), "token-c");
    let vk = f.unlock();
    let e = f.ks.add_keyslot(&vk, c.stub(), &mut f.ledger).unwrap_err();
    assert!(matches!(e, KeystoreError::LogUnread { .. }), "{e}");
    assert_eq!(
        fs::read(f.ks.dir().join("manifest.json")).unwrap(),
        manifest
    );
    assert_eq!(f.ledger.entries.len(), recorded);
    f.ledger.unreadable = None;
    f.rotate(Some(&b.stub().id())).unwrap();
}

/// Red-team round 26, recheck (R1, R1b): with an agent running, a command asks it first and
/// checks that the log at the path holds the agent's head, then reads the log itself. The log
/// cut in place right after that check, to its length from before a token's removal, and
/// written back after the command's reads, showed `key add` a record in which the keystore put
/// back from before the removal was the newest: the new secret was sealed to the vault the
/// removed token opens, and `keystore rotate` gave that token the new vault key. Every read of
/// a ledger held to the agent's head must now reach it, or the command refuses before it
/// changes anything. The cut is made where the agent's own check is tested for it, between
/// taking the head and the reads.
#[test]
fn commands_held_to_the_agents_head_refuse_the_log_cut_in_place_while_they_read() {
    use crate::audit::ledger::AuditLedger;
    use crate::audit::{AuditLog, Checkpoint, holds};
    use std::os::unix::fs::FileExt;

    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("home/keystore"));
    let log = tmp.path().join("home/audit.log");
    let mut a = super::tests::soft(tmp.path(), "token-a");
    let b = super::tests::soft(tmp.path(), "token-b");
    ks.create(a.stub(), &mut AuditLedger::new(&log)).unwrap();
    let vk = unlock(&ks, &mut a).unwrap();
    ks.add_keyslot(&vk, b.stub(), &mut AuditLedger::new(&log))
        .unwrap();
    let k1 = cred("k1", Exchange::Upbit, None);
    ks.add_credential(&k1, false, None, &mut AuditLedger::new(&log))
        .unwrap();
    // Malware keeps a copy of the keystore and the log's length; the trader removes B.
    let stash = tmp.path().join("stash");
    super::tests_rotate::copy_tree(ks.dir(), &stash);
    let before = fs::read(&log).unwrap();
    let mut none = |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        panic!("no token needs to be present, but {} was asked", s.id())
    };
    ks.rotate(
        &vk,
        Some(&b.stub().id()),
        &mut none,
        &mut AuditLedger::new(&log),
        Dropping::None,
    )
    .unwrap();
    let whole = fs::read(&log).unwrap();
    // The copy from before the removal put back, as the running agent's head stands.
    fs::remove_dir_all(ks.dir()).unwrap();
    super::tests_rotate::copy_tree(&stash, ks.dir());
    let head = AuditLog::open(&log).unwrap().anchor();
    let head = Checkpoint {
        seq: head.seq,
        hash: head.hash,
    };
    // The prefix, and the prefix with lines chained on from it (anyone can append those: the
    // chain is not keyed) until it is as long as the whole log: reaching the head's length is
    // not reaching the head.
    let padded = {
        let copy = tmp.path().join("padded.log");
        fs::write(&copy, &before).unwrap();
        let mut forged = AuditLog::open(&copy).unwrap();
        while fs::metadata(&copy).unwrap().len() < whole.len() as u64 {
            let filler = crate::audit::AuditEvent::Lock {
                reason: "idle".into(),
                pid: None,
                exe: None,
            };
            forged.append(&filler).unwrap();
        }
        fs::read(&copy).unwrap()
    };
    for cut in [before.clone(), padded] {
        let put = |path: &std::path::Path, bytes: &[u8]| {
            let f = fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(0).unwrap();
            f.write_all_at(bytes, 0).unwrap();
        };
        // Each command: asked first (the log holds the head), then the log is cut in place where
        // its reads begin, and written back once it returns.
        let run = |op: &mut dyn FnMut(&mut AuditLedger) -> Result<(), KeystoreError>| {
            let mut ledger = AuditLedger::new(&log).held_to(holds(&log, &head).unwrap());
            let (path, cut) = (log.clone(), cut.clone());
            crate::disk::INTERLEAVE.with(|i| {
                i.borrow_mut().push((
                    "check: the log's head taken, before the reads",
                    Box::new(move || put(&path, &cut)),
                ))
            });
            let out = op(&mut ledger);
            crate::disk::INTERLEAVE.with(|i| i.borrow_mut().clear());
            put(&log, &whole);
            out
        };
        let k3 = cred("k3", Exchange::Binance, None);
        let live = ks.live_dir().unwrap();
        let e = run(&mut |l| ks.add_credential(&k3, false, None, l).map(|_| ())).unwrap_err();
        assert!(matches!(e, KeystoreError::LogCut { .. }), "{e}");
        assert!(e.to_string().contains("changed while it read it"), "{e}");
        assert!(!live.join("credentials/k3.json").exists());
        // The rotation: B is given nothing, the keystore is as it was put back.
        let manifest = fs::read(ks.dir().join("manifest.json")).unwrap();
        let e = run(&mut |l| {
            let mut none = |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
                panic!("no token needs to be present, but {} was asked", s.id())
            };
            ks.rotate(&vk, None, &mut none, l, Dropping::None)
                .map(|_| ())
        })
        .unwrap_err();
        assert!(matches!(e, KeystoreError::LogCut { .. }), "{e}");
        assert_eq!(fs::read(ks.dir().join("manifest.json")).unwrap(), manifest);
        assert_eq!(ks.live_dir().unwrap(), live);
        // `key remove` records first: nothing recorded, nothing removed.
        let e = run(&mut |l| ks.remove_credential("k1", l).map(|_| ())).unwrap_err();
        assert!(e.to_string().contains("cut in place"), "{e}");
        assert!(live.join("credentials/k1.json").exists());
        assert_eq!(fs::read(&log).unwrap(), whole);
    }
    let k3 = cred("k3", Exchange::Binance, None);
    // Read whole, the log refuses the copy put back, as it did before the cut.
    let mut ledger = AuditLedger::new(&log).held_to(holds(&log, &head).unwrap());
    let e = ks
        .add_credential(&k3, false, None, &mut ledger)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
}
