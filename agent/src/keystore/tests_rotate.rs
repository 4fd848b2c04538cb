//! Rotation and token removal: revocation, and atomicity under a crash at every step (the
//! `CRASH_AFTER` hook panics before a chosen step that changes the disk, and nothing after
//! it runs, as in a crash).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use super::files::CRASH_AFTER;
use super::layout::sha256_hex;
use super::tests::{Fixture, cred, files, secret, soft, unlock};
use super::vault_ops::unwrap_keyslot;
use super::*;
use crate::token::soft::SoftToken;

/// Copy a folder tree as a backup tool would (modes kept).
pub(super) fn copy_tree(from: &Path, to: &Path) {
    fs::DirBuilder::new().mode(0o700).create(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn a_removed_token_with_an_old_copy_of_its_keyslot_opens_nothing_current() {
    let (mut f, b) = Fixture::populated();
    let backup = f.tmp.path().join("backup");
    copy_tree(f.ks.dir(), &backup);
    let old_live = backup.join(f.live().file_name().unwrap());
    let old_pub = f.unlock().public_key();

    let r = f.rotate(Some(&b.stub().id())).unwrap();
    assert_eq!(r.removed.as_deref(), Some(b.stub().id().as_str()));
    assert_eq!(r.keyslots, [f.token.stub().id()]);
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
    f.add(&cred("after-removal", Exchange::Upbit, None), false)
        .unwrap();

    // The attacker holds token B and the backup's copy of its keyslot.
    let stem = b.stub().id();
    let old_slot = load_keyslot(old_live.join(format!("keyslots/{stem}.json")), &stem).unwrap();
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    let old_vk = unwrap_keyslot(&old_slot, &mut b).unwrap();
    assert_eq!(
        old_vk.public_key(),
        old_pub,
        "it still opens the old vault key"
    );
    // The backup itself still opens with it (what the CLI warns about) ...
    let (file, _) =
        load_credential(&old_live.join("credentials/upbit-main.json"), "upbit-main").unwrap();
    let c = open_file(
        &old_vk,
        &file,
        &old_live.join("credentials/upbit-main.json"),
    )
    .unwrap();
    assert_eq!(c.secret.expose(), secret("upbit-main").as_bytes());
    // ... but nothing current: no credential, not even one added after the removal.
    let live = f.live();
    let current = files(&live.join("credentials"));
    assert_eq!(current.len(), 3);
    for path in current {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let (file, _) = load_credential(&path, &name).unwrap();
        let e = open_file(&old_vk, &file, &path).err().unwrap();
        assert!(
            matches!(e, KeystoreError::CredentialLocked { .. }),
            "{name}: {e}"
        );
    }
    assert!(!live.join(format!("keyslots/{stem}.json")).exists());
    // The old keyslot put back into the live folder gets the vault mismatch, before any use.
    fs::copy(
        old_live.join(format!("keyslots/{stem}.json")),
        live.join(format!("keyslots/{stem}.json")),
    )
    .unwrap();
    let e = unlock(&f.ks, &mut b).err().unwrap();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
    // The old folder is gone from the keystore.
    assert!(!f.ks.dir().join(old_live.file_name().unwrap()).exists());
}

/// Red-team round 17: `token remove` whose record the audit log could not take (a `chmod 400`
/// on the log while it ran) said the token was revoked, and a copy of the keystore from before
/// it, put back, then opened with that token with nothing to refuse it. A rotation the log
/// cannot take is now refused before anything changes. One whose record fails after the log
/// opened (a disk filled meanwhile; on the recheck, a line appended to break the chain, or
/// the log's lock held) is undone: the previous manifest and folder stay, B still opens, and
/// the retry removes it on the record.
#[test]
fn a_rotation_the_audit_log_cannot_record_changes_nothing() {
    let (mut f, b) = Fixture::populated();
    let manifest = f.ks.dir().join("manifest.json");
    let before = fs::read(&manifest).unwrap();
    let live = f.live();
    let recorded = f.ledger.entries.len();
    let id = b.stub().id();
    f.ledger.broken = Some("Permission denied (test)".into());
    let e = f.rotate(Some(&id)).unwrap_err();
    assert!(matches!(e, KeystoreError::CannotRecord { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("removal of token {id}")) && msg.contains("Nothing was changed"),
        "{msg}"
    );
    assert_eq!(
        fs::read(&manifest).unwrap(),
        before,
        "the manifest is the old one"
    );
    assert!(live.join(format!("keyslots/{id}.json")).exists());
    assert_eq!(f.ledger.entries.len(), recorded);
    f.ledger.broken = None;

    f.ledger.fills = Some((0, "No space left on device (test)".into()));
    let e = f.rotate(Some(&id)).unwrap_err();
    assert!(matches!(e, KeystoreError::NotRecorded { .. }), "{e}");
    assert!(e.to_string().contains("undone"), "{e}");
    assert_eq!(
        fs::read(&manifest).unwrap(),
        before,
        "the manifest is put back"
    );
    assert_eq!(f.live(), live);
    assert_eq!(
        leftovers(f.ks.dir()),
        [live.file_name().unwrap().to_string_lossy()]
    );
    assert_eq!(f.ledger.entries.len(), recorded);
    f.ledger.fills = None;
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    unlock(&f.ks, &mut b).unwrap();
    assert!(f.check().unwrap().refused.is_empty());
    // The retry removes it, on the record.
    let r = f.rotate(Some(&id)).unwrap();
    let slots = f.ks.keyslots().unwrap();
    assert!(!slots.iter().flatten().any(|s| s.stub.id() == id));
    let last = f.ledger.entries.iter().rev().find_map(|e| match e {
        LedgerEntry::Manifest { generation, .. } => Some(*generation),
        _ => None,
    });
    assert_eq!(last, Some(r.generation));
}

/// Red-team round 17, second and third rechecks: where the record failed and putting the
/// previous manifest back failed too, the message said both "undone" and "run `tapsign
/// unlock`", which would record whatever manifest is there, a copy put back included. It says
/// not to unlock, and how to finish the removal instead.
#[test]
fn a_failed_undo_says_not_to_unlock() {
    let mut said = None;
    for n in 0..40 {
        let (mut f, b) = Fixture::populated();
        f.ledger.fills = Some((0, "a line appended that breaks the chain (test)".into()));
        let vk = f.unlock();
        let mut none = |_: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
            unreachable!("soft keyslots wrap offline")
        };
        crate::disk::FAIL_AFTER.with(|h| h.set(Some(n)));
        let r = f.ks.rotate(
            &vk,
            Some(&b.stub().id()),
            &mut none,
            &mut f.ledger,
            Dropping::None,
        );
        crate::disk::FAIL_AFTER.with(|h| h.set(None));
        if let Err(e @ KeystoreError::NotUndone { .. }) = r {
            said = Some(e.to_string());
            break;
        }
    }
    let said = said.expect("some write failure hit the undo");
    assert!(said.contains("Do not unlock"), "{said}");
    assert!(
        said.contains("tapsign token list") && said.contains("keystore rotate"),
        "{said}"
    );
    assert!(
        !said.contains("run `tapsign unlock`") && !said.contains("tapsign bug"),
        "{said}"
    );
}

/// Red-team round 17: a credential file the rotation could not read (mode 0644 after a `cp`
/// from a backup, or one `chmod` by another program) was neither carried over nor named, and
/// went with the old folder. The rotation is refused, naming it, and nothing changes.
#[test]
fn a_rotation_that_cannot_read_a_credential_is_refused_and_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let (mut f, b) = Fixture::populated();
    let path = f.live().join("credentials/upbit-main.json");
    let bytes = fs::read(&path).unwrap();
    let manifest = fs::read(f.ks.dir().join("manifest.json")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    for remove in [Some(b.stub().id()), None] {
        let e = f.rotate(remove.as_deref()).unwrap_err();
        assert!(
            matches!(e, KeystoreError::CredentialsUnreadable { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("upbit-main"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(
            fs::read(f.ks.dir().join("manifest.json")).unwrap(),
            manifest
        );
    }
    // A damaged byte is the same.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() / 2);
    fs::write(&path, &cut).unwrap();
    let e = f.rotate(None).unwrap_err();
    assert!(
        matches!(e, KeystoreError::CredentialsUnreadable { .. }),
        "{e}"
    );
    // Mended, it is carried over.
    fs::write(&path, &bytes).unwrap();
    let r = f.rotate(Some(&b.stub().id())).unwrap();
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
}

/// Red-team round 18: a credential made unreadable after the rotation's check (a `chmod 644`
/// or one changed byte, timed by the stage folder appearing) was dropped when re-sealed, and
/// its file went with the old folder: the command succeeded, and the secret was gone. The
/// rotation now stops as the check would have, and keeps the old folder.
#[test]
fn a_credential_made_unreadable_after_the_check_stops_the_rotation() {
    use std::os::unix::fs::PermissionsExt;
    let (mut f, b) = Fixture::populated();
    let path = f.live().join("credentials/upbit-main.json");
    let bytes = fs::read(&path).unwrap();
    let manifest = fs::read(f.ks.dir().join("manifest.json")).unwrap();
    let spoil: [fn(&Path); 2] = [
        |p| fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap(),
        |p| {
            let mut b = fs::read(p).unwrap();
            let at = b.len() / 2;
            b[at] ^= 1;
            fs::write(p, b).unwrap();
        },
    ];
    for spoil in spoil {
        let spoiled = path.clone();
        let spoil: Box<dyn FnOnce()> = Box::new(move || spoil(&spoiled));
        crate::disk::INTERLEAVE.with(|i| {
            i.borrow_mut()
                .push(("rotate: checked under the lock, before the stage", spoil));
        });
        let e = f.rotate(Some(&b.stub().id())).unwrap_err();
        assert!(
            matches!(e, KeystoreError::CredentialsUnreadable { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("upbit-main"), "{e}");
        // Nothing changed: the file (as spoiled) and the manifest are where they were.
        assert!(path.exists());
        assert_eq!(
            fs::read(f.ks.dir().join("manifest.json")).unwrap(),
            manifest
        );
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let r = f.rotate(Some(&b.stub().id())).unwrap();
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
}

/// A rotation forgets a recorded credential whose file is missing (keystore-format.md). Its
/// warning said what a check says (put the file back from a backup, or rotate), advice that no
/// longer holds once the rotation is done: a backup of the file is sealed to the old vault key.
/// It says the key must be stored again.
#[test]
fn a_rotation_that_forgets_a_missing_credential_says_to_store_it_again() {
    let (mut f, _) = Fixture::populated();
    let path = f.live().join("credentials/upbit-main.json");
    let backup = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let before = f.check().unwrap();
    assert!(
        before.warnings.iter().any(|w| w.contains("from a backup")),
        "{:?}",
        before.warnings
    );
    let r = f.rotate(None).unwrap();
    assert_eq!(r.carried, ["binance-alt"]);
    let said = r.warnings.join("\n");
    assert!(!said.contains("from a backup"), "{said}");
    assert!(said.contains("tapsign key add upbit-main"), "{said}");
    // What it says holds: the backup put back does not open under the new vault key.
    fs::write(f.live().join("credentials/upbit-main.json"), &backup).unwrap();
    let c = f.check().unwrap();
    assert!(!c.accepted.contains(&"upbit-main".to_string()), "{c:?}");
}

/// Red-team round 17: an I/O error flushing the keystore folder after `manifest.json` was
/// renamed into place made the commit remove the new folder the new manifest names: every
/// command failed after, the rebuild too. The rotation is committed; the new folder stays.
#[test]
fn a_failed_flush_after_the_manifest_is_in_place_keeps_the_new_folder() {
    let (mut f, b) = Fixture::populated();
    let old = f.live();
    // The flush fails, and so does the commit's second try.
    crate::disk::FAIL_FLUSH_AFTER.with(|h| h.set(Some(("manifest.json", 1))));
    let r = f.rotate(Some(&b.stub().id()));
    crate::disk::FAIL_FLUSH_AFTER.with(|h| h.set(None));
    let r = r.unwrap();
    // Committed, and not in silence (stop 26's leftover).
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("could not be flushed")),
        "{:?}",
        r.warnings
    );
    let live = f.live();
    assert_ne!(live, old);
    assert!(live.ends_with(format!("vault-{}", r.vault)), "{live:?}");
    assert!(live.is_dir(), "the folder the manifest names is there");
    assert!(!old.exists());
    let c = f.check().unwrap();
    assert_eq!(c.accepted, ["binance-alt", "upbit-main"]);
}

#[test]
fn a_rotation_keeps_every_token_and_credential_working() {
    let (mut f, b) = Fixture::populated();
    let before = f.ks.list_credentials().unwrap();
    let old_pub = f.unlock().public_key();
    let r = f.rotate(None).unwrap();
    assert!(r.removed.is_none() && r.dropped.is_empty(), "{r:?}");
    assert_eq!(r.keyslots.len(), 2);
    for dir in ["token-a", "token-b"] {
        let mut t = SoftToken::open_ungated(&f.token_dir(dir)).unwrap();
        let vk = unlock(&f.ks, &mut t).unwrap();
        assert_ne!(vk.public_key(), old_pub);
        for name in ["upbit-main", "binance-alt"] {
            let c = f.ks.open_credential(&vk, name).unwrap();
            assert_eq!(c.secret.expose(), secret(name).as_bytes());
        }
    }
    // The creation times survive (they are what `key list` shows and what rollback checks).
    let after = f.ks.list_credentials().unwrap();
    let created = |l: &Vec<Result<CredentialInfo, KeystoreError>>| -> Vec<u64> {
        l.iter().map(|c| c.as_ref().unwrap().created).collect()
    };
    assert_eq!(created(&before), created(&after));
    assert_eq!(f.check().unwrap().refused, []);
    drop(b);
}

#[test]
fn a_rotation_drops_credentials_that_fail_the_rollback_check_only_when_told() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.add(&cred("upbit-main", Exchange::Upbit, None), true)
        .unwrap();
    fs::write(&path, &old).unwrap();
    // Red-team round 19: a refused file is deleted with the old folder, and a line written by
    // hand can make a current one refused: the rotation stops, changing nothing, unless told
    // to drop them.
    let generation = f.ks.generation().unwrap();
    let e = f.rotate(None).unwrap_err();
    assert!(
        matches!(&e, KeystoreError::RefusedNotDropped { refused, .. } if refused.contains("upbit-main")),
        "{e}"
    );
    assert_eq!(f.ks.generation().unwrap(), generation);
    assert_eq!(fs::read(&path).unwrap(), old);
    let r = f.rotate_dropping(None, super::Dropping::Refused).unwrap();
    assert_eq!(r.carried, ["binance-alt"]);
    assert_eq!(r.dropped.len(), 1, "{r:?}");
    assert!(r.dropped[0].reason.contains("old copy"), "{r:?}");
    assert!(!f.live().join("credentials/upbit-main.json").exists());
}

/// What a user can observe of the fixture's keystore: the vault key A unlocks, which
/// credentials pass the check and their secrets, and whether B still unlocks.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    vault: Vec<u8>,
    credentials: BTreeMap<String, Vec<u8>>,
    b_unlocks: bool,
}

fn observe(f: &mut Fixture) -> Observed {
    assert!(f.ks.is_initialized().unwrap());
    let vk = f.unlock();
    let checked = f.check().unwrap();
    assert!(checked.refused.is_empty(), "{checked:?}");
    let credentials = checked
        .accepted
        .iter()
        .map(|n| {
            let c = f.ks.open_credential(&vk, n).unwrap();
            (n.clone(), c.secret.expose().to_vec())
        })
        .collect();
    let b_unlocks = match SoftToken::open_ungated(&f.token_dir("token-b")) {
        Ok(mut b) => {
            f.ks.keyslots()
                .unwrap()
                .into_iter()
                .flatten()
                .find(|s| &s.stub == b.stub())
                .is_some_and(|s| f.ks.unwrap_vault(&s, &mut b).is_ok())
        }
        Err(_) => false,
    };
    Observed {
        vault: seal::compressed(&vk.public_key()),
        credentials,
        b_unlocks,
    }
}

/// Run `op` with a crash before its `n`th step; `true` if it ran to the end instead.
fn crash_at<T>(n: u32, op: impl FnOnce() -> T) -> bool {
    CRASH_AFTER.with(|c| c.set(Some(n)));
    let finished = catch_unwind(AssertUnwindSafe(op)).is_ok();
    CRASH_AFTER.with(|c| c.set(None));
    finished
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vault-") || n.starts_with(".stage-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_crash_at_any_step_of_a_token_removal_leaves_the_old_keystore_or_the_new() {
    let mut steps = 0;
    loop {
        let (mut f, b) = Fixture::populated();
        let before = observe(&mut f);
        assert!(before.b_unlocks);
        let finished = crash_at(steps, || f.rotate(Some(&b.stub().id())).unwrap());
        let after = observe(&mut f);
        assert_eq!(after.credentials, before.credentials, "step {steps}");
        if after.vault == before.vault {
            assert!(after.b_unlocks, "old vault key, old keyslots: step {steps}");
            assert!(!finished);
            // The retry completes the removal.
            f.rotate(Some(&b.stub().id())).unwrap();
            let retried = observe(&mut f);
            assert!(!retried.b_unlocks && retried.vault != before.vault);
        } else {
            assert!(!after.b_unlocks, "new vault key, B left out: step {steps}");
        }
        // Whatever the crash left, the next writer cleans up: one live folder, no stage.
        f.rotate(None).unwrap();
        assert_eq!(
            leftovers(f.ks.dir()).len(),
            1,
            "step {steps}: {:?}",
            leftovers(f.ks.dir())
        );
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps >= 7, "a rotation has many steps; saw {steps}");
}

#[test]
fn a_crash_at_any_step_of_enrolling_a_token_leaves_a_working_keystore() {
    let mut steps = 0;
    loop {
        let (mut f, _) = Fixture::populated();
        let before = observe(&mut f);
        let c = soft(f.tmp.path(), "token-c");
        let vk = f.unlock();
        let finished = crash_at(steps, || {
            f.ks.add_keyslot(&vk, c.stub(), &mut f.ledger).unwrap()
        });
        let after = observe(&mut f);
        assert_eq!(after, before, "step {steps}");
        // Whether C made it or not, enrolling it (again) ends with C unlocking.
        let mut c = SoftToken::open_ungated(&f.token_dir("token-c")).unwrap();
        let enrolled =
            f.ks.keyslots()
                .unwrap()
                .into_iter()
                .flatten()
                .any(|s| &s.stub == c.stub());
        assert_eq!(enrolled, finished, "step {steps}");
        if !enrolled {
            f.ks.add_keyslot(&vk, c.stub(), &mut f.ledger).unwrap();
        }
        let vk_c = unlock(&f.ks, &mut c).unwrap();
        let slot =
            f.ks.keyslots()
                .unwrap()
                .into_iter()
                .flatten()
                .find(|s| &s.stub == c.stub())
                .unwrap();
        f.ks.check(&vk_c, &slot, 0, &mut f.ledger).unwrap();
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps >= 2, "saw {steps} steps");
}

#[test]
fn a_crash_at_any_step_of_the_first_manifest_leaves_the_old_layout_or_the_new() {
    let mut steps = 0;
    loop {
        let (mut f, _) = Fixture::populated();
        let before = observe(&mut f);
        f.make_legacy();
        let finished = crash_at(steps, || f.check().unwrap());
        // Either still the old layout (no manifest, files at the top) or the new one.
        let legacy = f.ks.generation().unwrap().is_none();
        assert!(
            !legacy || f.ks.dir().join("vault.json").exists(),
            "step {steps}"
        );
        assert!(!legacy || !finished);
        let after = observe(&mut f);
        assert_eq!(after, before, "step {steps}");
        assert!(f.ks.generation().unwrap().is_some(), "migrated by now");
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps >= 6, "saw {steps} steps");
}

#[test]
fn a_crash_at_any_step_of_creating_a_keystore_leaves_none_or_a_whole_one() {
    let mut steps = 0;
    loop {
        let tmp = tempfile::tempdir().unwrap();
        let ks = Keystore::new(tmp.path().join("ks"));
        let mut t = soft(tmp.path(), "t");
        let mut ledger = super::ledger::MemoryLedger::default();
        let finished = crash_at(steps, || ks.create(t.stub(), &mut ledger).unwrap());
        if ks.is_initialized().unwrap() {
            let vk = unlock(&ks, &mut t).unwrap();
            let manifest = fs::read(ks.dir().join("manifest.json")).unwrap();
            assert!(!manifest.is_empty());
            drop(vk);
        } else {
            assert!(!finished);
            ks.create(t.stub(), &mut ledger).unwrap();
            unlock(&ks, &mut t).unwrap();
        }
        assert_eq!(
            leftovers(ks.dir()).len(),
            1,
            "step {steps}: {:?}",
            leftovers(ks.dir())
        );
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps >= 3, "saw {steps} steps");
}

#[test]
fn the_manifest_records_the_files_a_rotation_wrote() {
    let (mut f, _) = Fixture::populated();
    f.rotate(None).unwrap();
    let m = f.ks.read_manifest().unwrap().unwrap();
    let live = f.live();
    for c in &m.credentials {
        let bytes = fs::read(live.join(format!("credentials/{}.json", c.name))).unwrap();
        assert_eq!(sha256_hex(&bytes), c.sha256);
    }
    for s in &m.keyslots {
        let bytes = fs::read(live.join(format!("keyslots/{}.json", s.id))).unwrap();
        assert_eq!(sha256_hex(&bytes), s.sha256);
    }
    assert!(m.removed.is_empty());
}

/// What a damaged keyslot's error advises must work: `token remove` revokes it by the
/// manifest's record. A rotation with another token refuses, changing nothing: a file made
/// unreadable (a newline appended, its mode set to 000) left a backup token out with a warning
/// only after the touch (a review of round 20).
#[test]
fn a_damaged_keyslot_stops_a_rotation_and_is_revoked_by_its_removal() {
    let (mut f, b) = Fixture::populated();
    let damaged = f
        .live()
        .join("keyslots")
        .join(format!("{}.json", b.stub().id()));
    std::fs::write(&damaged, "not json").unwrap();
    let err =
        f.ks.keyslots()
            .unwrap()
            .into_iter()
            .find_map(Result::err)
            .unwrap();
    assert!(
        err.to_string()
            .contains(&format!("tapsign token remove {}", b.stub().id())),
        "{err}"
    );
    let e = f.rotate(None).err().unwrap();
    assert!(matches!(e, KeystoreError::KeyslotMissing { .. }), "{e}");
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let r = f.rotate(Some(&b.stub().id())).unwrap();
    assert_eq!(r.keyslots.len(), 1, "{r:?}");
    let mut a = SoftToken::open_ungated(&f.token_dir("token-a")).unwrap();
    let vk = unlock(&f.ks, &mut a).unwrap();
    f.ks.open_credential(&vk, "upbit-main").unwrap();
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// Run `act` when the operation on this thread passes `point` (see `disk::interleave`).
fn at(point: &'static str, act: impl FnOnce() + 'static) {
    crate::disk::INTERLEAVE.with(|i| i.borrow_mut().push((point, Box::new(act))));
}

/// Red-team round 10: the keyslots a rotation wraps the new vault key to were judged recorded
/// against the manifest as it was before the lock, unverified. A keyslot planted with a
/// forged manifest that records it, the genuine manifest put back before the lock, got the
/// new vault key, and so every credential.
#[test]
fn a_keyslot_recorded_only_by_a_manifest_swapped_back_before_the_lock_gets_nothing() {
    let (mut f, _b) = Fixture::populated();
    let c = soft(f.tmp.path(), "token-c");
    let id = c.stub().id();
    let rel = format!("{KEYSLOTS}/{id}.json");
    let planted = super::vault_ops::keyslot_bytes(
        Path::new(&rel),
        &VaultKey::generate().unwrap(),
        c.stub(),
        None,
    )
    .unwrap();
    write_private(&f.live().join(&rel), &planted);
    let manifest = f.ks.dir().join("manifest.json");
    let genuine = fs::read(&manifest).unwrap();
    let mut forged: super::manifest::ManifestFile =
        super::files::decode(&manifest, &genuine).unwrap();
    forged.keyslots.push(super::manifest::SlotRecord {
        id: id.clone(),
        sha256: sha256_hex(&planted),
    });
    fs::write(&manifest, super::files::encode(&manifest, forged).unwrap()).unwrap();
    let back = manifest.clone();
    at("rotate: keyslots wrapped, before the lock", move || {
        fs::write(&back, &genuine).unwrap()
    });
    let e = match f.rotate(None) {
        Ok(r) => panic!("rotated: {r:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(&e, KeystoreError::Swapped { path, .. } if path.ends_with(&rel)),
        "{e}"
    );
    // Nothing changed: token A still opens the same keystore, and C opens nothing.
    let mut c = SoftToken::open_ungated(&f.token_dir("token-c")).unwrap();
    assert!(unlock(&f.ks, &mut c).is_err());
    assert_eq!(f.check().unwrap().refused, []);
    assert_eq!(
        leftovers(f.ks.dir()).len(),
        1,
        "{:?}",
        leftovers(f.ks.dir())
    );
}

/// Red-team round 10: a rotation re-read each accepted credential to re-seal it; an older
/// copy (sealed to the same vault key) put in place after the check was re-sealed under the
/// new vault key and recorded as current.
#[test]
fn a_credential_swapped_after_the_rotations_check_is_not_resealed() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let path = f.live().join("credentials/upbit-main.json");
    let old = fs::read(&path).unwrap();
    f.add(&cred("upbit-main", Exchange::Upbit, None), true)
        .unwrap();
    let current = fs::read(&path).unwrap();
    let swap = path.clone();
    at(
        "rotate: checked under the lock, before the stage",
        move || fs::write(&swap, &old).unwrap(),
    );
    let e = f.rotate(None).err().unwrap();
    assert!(
        matches!(&e, KeystoreError::Swapped { path: p, .. } if *p == path),
        "{e}"
    );
    assert_eq!(
        leftovers(f.ks.dir()).len(),
        1,
        "{:?}",
        leftovers(f.ks.dir())
    );
    // The old copy is still refused as what it is; the current file put back passes.
    let refused = f.check().unwrap().refused;
    assert!(
        refused.iter().any(|r| r.reason.contains("old copy")),
        "{refused:?}"
    );
    fs::write(&path, &current).unwrap();
    assert_eq!(f.check().unwrap().refused, []);
}

/// Red-team round 20: `token remove B` with B's keyslot file hidden (moved under a dot name,
/// which listings skip) said there was no such token and rotated nothing; the file put back
/// matched the manifest, and B opened everything again. The manifest records B: the rotation
/// revokes it without the file, and a copy of the file put back opens nothing current.
#[test]
fn a_token_whose_keyslot_file_is_hidden_is_still_removed_and_revoked() {
    let (mut f, b) = Fixture::populated();
    let id = b.stub().id();
    let file = f.live().join(format!("keyslots/{id}.json"));
    let hidden = f.tmp.path().join("hidden-keyslot.json");
    fs::rename(&file, &hidden).unwrap();
    assert!(
        f.ks.keyslots()
            .unwrap()
            .iter()
            .flatten()
            .all(|s| s.stub.id() != id)
    );

    let r = f.rotate(Some(&id)).unwrap();
    assert_eq!(r.removed.as_deref(), Some(id.as_str()));
    assert_eq!(r.keyslots, [f.token.stub().id()]);
    assert_eq!(r.carried, ["binance-alt", "upbit-main"]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains(&format!("keyslot file of token {id} was missing"))),
        "{r:?}"
    );
    // The file put back: not recorded, and it opens only the old vault key.
    let back = f.live().join(format!("keyslots/{id}.json"));
    fs::copy(&hidden, &back).unwrap();
    let slot = f.ks.keyslots().unwrap().into_iter().flatten();
    let slot: Vec<Keyslot> = slot.filter(|s| s.stub.id() == id).collect();
    assert!(!slot[0].recorded);
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    let e = unlock(&f.ks, &mut b).err().unwrap();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
    let e = f.check().map(|c| c.accepted);
    assert!(e.is_ok(), "A still opens: {e:?}");
}

/// The id a removal takes without its file must be one the manifest verified under the lock
/// records: a forged manifest naming a token, the genuine one put back before the lock, makes
/// the rotation refuse, not report a token removed that never was.
#[test]
fn a_token_recorded_only_by_a_forged_manifest_is_not_removed() {
    let (mut f, _b) = Fixture::populated();
    let manifest = f.ks.dir().join("manifest.json");
    let genuine = fs::read(&manifest).unwrap();
    let mut forged: super::manifest::ManifestFile =
        super::files::decode(&manifest, &genuine).unwrap();
    let ghost = "soft-0badc0de".to_owned();
    forged.keyslots.push(super::manifest::SlotRecord {
        id: ghost.clone(),
        sha256: "00".repeat(32),
    });
    fs::write(&manifest, super::files::encode(&manifest, forged).unwrap()).unwrap();
    let back = manifest.clone();
    at("rotate: keyslots wrapped, before the lock", move || {
        fs::write(&back, &genuine).unwrap()
    });
    let e = f.rotate(Some(&ghost)).err().unwrap();
    assert!(
        matches!(&e, KeystoreError::NotFound { name, .. } if *name == ghost),
        "{e}"
    );
    // An id nobody records is refused before anything, as before.
    let e = f.rotate(Some("soft-12345678")).err().unwrap();
    assert!(matches!(e, KeystoreError::NotFound { .. }), "{e}");
}

/// Red-team round 20: a rotation wrapped the new vault key only for the keyslot files it found.
/// The backup token B, whose file was hidden for the moment (a dot name, which listings skip),
/// was left out of the new manifest without a word: `token list` no longer named it, and the
/// file put back opened nothing. The rotation is refused, naming B and the ways on, and
/// nothing changes: B's file put back still opens the keystore.
#[test]
fn a_rotation_with_a_recorded_tokens_keyslot_file_hidden_is_refused() {
    let (mut f, b) = Fixture::populated();
    let id = b.stub().id();
    let file = f.live().join(format!("keyslots/{id}.json"));
    let hidden = f.live().join(format!("keyslots/.{id}.json.hide"));
    fs::rename(&file, &hidden).unwrap();
    let manifest = f.ks.dir().join("manifest.json");
    let before = fs::read(&manifest).unwrap();
    let live = f.live();

    let e = f.ks.keyslots_left_out(None).err().unwrap();
    assert!(matches!(e, KeystoreError::KeyslotMissing { .. }), "{e}");
    let e = f.rotate(None).err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(&e, KeystoreError::KeyslotMissing { tokens, .. } if *tokens == [id.clone()]),
        "{msg}"
    );
    for says in [
        format!("keyslot file of token {id} is missing"),
        "Nothing was changed".into(),
        "Put the file back".into(),
        format!("`tapsign token remove {id}`"),
    ] {
        assert!(msg.contains(&says), "{says:?} in {msg}");
    }
    assert_eq!(fs::read(&manifest).unwrap(), before);
    assert_eq!(f.live(), live);
    assert_eq!(
        leftovers(f.ks.dir()).len(),
        1,
        "{:?}",
        leftovers(f.ks.dir())
    );

    fs::rename(&hidden, &file).unwrap();
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    let vk = unlock(&f.ks, &mut b).unwrap();
    f.ks.open_credential(&vk, "upbit-main").unwrap();
    // With the file back, the rotation goes ahead and keeps B.
    let r = f.rotate(None).unwrap();
    assert_eq!(r.keyslots.len(), 2, "{r:?}");
    unlock(&f.ks, &mut b).unwrap();
}

/// A removal is how a lost token is cut off: a third token's hidden keyslot file does not hold
/// it up (two hidden files would block each other's removal for good), but that token is
/// revoked too, and named in a warning, before the touch and after.
#[test]
fn a_removal_revokes_too_a_token_whose_keyslot_file_is_hidden_and_says_so() {
    let (mut f, b) = Fixture::populated();
    let c = soft(f.tmp.path(), "token-c");
    let vk = f.unlock();
    f.ks.add_keyslot(&vk, c.stub(), &mut f.ledger).unwrap();
    let (b_id, c_id) = (b.stub().id(), c.stub().id());
    let file = f.live().join(format!("keyslots/{b_id}.json"));
    let hidden = f.tmp.path().join("hidden-keyslot.json");
    fs::rename(&file, &hidden).unwrap();

    assert_eq!(
        f.ks.keyslots_left_out(Some(&c_id)).unwrap(),
        std::slice::from_ref(&b_id)
    );
    let r = f.rotate(Some(&c_id)).unwrap();
    assert_eq!(r.keyslots, [f.token.stub().id()]);
    assert!(
        r.warnings.iter().any(
            |w| w.contains(&format!("token {b_id} is revoked too, with {c_id}"))
                && w.contains("tapsign token add")
        ),
        "{r:?}"
    );
    let back = f.live().join(format!("keyslots/{b_id}.json"));
    fs::copy(&hidden, &back).unwrap();
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap();
    let e = unlock(&f.ks, &mut b).err().unwrap();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
}

/// Red-team round 26 (G2): right after an honest `token remove` with the agent running, before
/// any unlock, `key add --replace` was refused (rightly: the agent has not checked the new
/// vault) with advice to restore vault.json from a backup, which holds the vault the removed
/// token opens. A vault that descends from the agent's pin is a rotation since: unlock once.
#[test]
fn key_add_after_a_removal_the_agent_has_not_checked_says_to_unlock_not_to_restore() {
    let (mut f, b) = Fixture::populated();
    let pinned = f.check().unwrap().vault_key;
    f.rotate(Some(&b.stub().id())).unwrap();
    let c = cred("upbit-main", Exchange::Upbit, None);
    let e =
        f.ks.add_credential(&c, true, Some(&pinned), &mut f.ledger)
            .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotYetChecked { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("Run `tapsign unlock` once"), "{text}");
    assert!(!text.contains("backup"), "{text}");
    // Once the agent's unlock has checked the new vault, its pin is that vault.
    let pinned = f.check().unwrap().vault_key;
    f.ks.add_credential(&c, true, Some(&pinned), &mut f.ledger)
        .unwrap();
}
