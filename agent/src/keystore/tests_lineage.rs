//! The vault key's lineage: a vault of someone else's making, wrapped to the trader's tokens
//! (whose public keys sit in clear in their keyslots) with a manifest it verifies, is refused
//! by every operation that would open or seal with it; rotations, which sign their new vault
//! key with the old one, go on working.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::format::VaultFile;
use super::layout::{sha256_hex, vault_tag};
use super::ledger::LedgerEntry;
use super::manifest::{ManifestFile, SlotRecord};
use super::tests::{Fixture, cred, unlock};
use super::tests_at_rest::put_back;
use super::*;

/// What someone who can write the files and holds no token's secret can make: a vault key of
/// their own, its `vault.json` (with `lineage` as given), a keyslot wrapping it to each token
/// the keystore has, and a manifest it verifies, a generation above every one recorded and
/// anchored at the log's end, naming the new folder. Returns the forged vault key.
fn forge(f: &mut Fixture, vault: impl FnOnce(&VaultKey) -> VaultFile) -> VaultKey {
    let vk = VaultKey::generate().unwrap();
    let live =
        f.ks.dir()
            .join(format!("vault-{}", vault_tag(&vk.public_key())));
    for sub in ["", "keyslots", "credentials"] {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(live.join(sub))
            .unwrap();
    }
    let path = live.join(VAULT_FILE);
    put_back(&path, &files::encode(&path, vault(&vk)).unwrap());
    let mut slots = Vec::new();
    for slot in f.ks.keyslots().unwrap().into_iter().flatten() {
        let id = slot.stub.id();
        let rel = format!("{KEYSLOTS}/{id}.json");
        let bytes =
            super::vault_ops::keyslot_bytes(Path::new(&rel), &vk, &slot.stub, None).unwrap();
        put_back(&live.join(&rel), &bytes);
        slots.push(SlotRecord {
            id,
            sha256: sha256_hex(&bytes),
        });
    }
    let generation = f.ks.generation().unwrap().unwrap() + 10;
    let manifest = ManifestFile::new(
        &vk,
        generation,
        super::vault_ops::now_secs(),
        slots,
        vec![],
        vec![],
        f.ledger.head(),
    )
    .unwrap();
    let path = f.ks.dir().join("manifest.json");
    put_back(&path, &files::encode(&path, manifest).unwrap());
    vk
}

/// The tokens a rebuild asks to be present: none here (soft keyslots wrap offline).
fn offline() -> impl FnMut(&TokenStub) -> Result<Box<dyn Token>, KeystoreError> {
    |_| unreachable!("soft keyslots wrap offline")
}

fn fresh_vault(vk: &VaultKey) -> VaultFile {
    VaultFile::new(&vk.public_key())
}

#[test]
fn a_vault_of_someone_elses_making_opens_nothing_and_receives_nothing() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let genuine = f.live();
    let genuine_tag = genuine.file_name().unwrap().to_str().unwrap().to_owned();
    let forged = forge(&mut f, fresh_vault);
    // `key list` says so before any touch.
    let whole = f.ks.preview(&mut f.ledger).unwrap().whole.unwrap();
    assert!(whole.contains(&format!("not {genuine_tag}")), "{whole}");
    // The trader's token opens the forged vault like the real one: the keyslot was made for it.
    assert_eq!(
        unlock(&f.ks, &mut f.token).unwrap().public_key(),
        forged.public_key()
    );
    let e = f.check().unwrap_err();
    assert!(
        matches!(&e, KeystoreError::VaultNotChained { by, .. } if *by == "the audit log"),
        "{e}"
    );
    assert!(e.to_string().contains("nothing is opened or sealed"), "{e}");
    // Nothing is sealed to it either, without an agent's pin.
    let e = f
        .add(&cred("new-key", Exchange::Binance, None), false)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
    // The genuine folder was not collected as a leftover: putting the real manifest back
    // is the way home.
    assert!(genuine.join(VAULT_FILE).exists());
}

/// A log started afresh (docs/audit.md) records no vault key: a vault of someone else's
/// making, with a manifest anchored in the new file, passed every check without a word (and
/// the genuine folder went as a leftover). Nothing in the files can tell it; the check says
/// that the record holds no vault, with the key to compare, until one records it.
#[test]
fn a_log_started_afresh_is_said_to_hold_the_keystore_to_no_vault() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    f.ledger.entries.clear();
    forge(&mut f, fresh_vault);
    let c = f.check().unwrap();
    let said = |c: &Checked| {
        c.warnings
            .iter()
            .any(|w| w.contains("records no vault key") && w.contains(&c.vault_key))
    };
    assert!(said(&c), "{c:?}");
    let c = f.check().unwrap();
    assert!(!said(&c), "recorded now: {c:?}");
}

#[test]
fn a_running_agent_refuses_a_forged_vault_even_where_the_file_lost_the_record() {
    // A running agent saw the vault recorded: cutting every record out of the file does not
    // make the forged vault acceptable to it.
    let (mut f, _b) = Fixture::populated();
    f.ledger.witness = Some(Default::default());
    f.check().unwrap();
    forge(&mut f, fresh_vault);
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Manifest { vault_key, .. } = e {
            vault_key.clear();
        }
    }
    let e = f.check().unwrap_err();
    assert!(
        matches!(&e, KeystoreError::VaultNotChained { by, .. } if by.contains("running agent")),
        "{e}"
    );
}

#[test]
fn a_removed_tokens_old_vault_put_back_as_a_newer_generation_is_refused() {
    // Whoever holds a removed token and an old copy of its keyslot has the old vault key: they
    // can MAC a manifest for the old vault at any generation, and even sign a lineage from it.
    // The rotation that removed the token recorded the new vault, which descends from the old
    // one and not the other way round.
    let (mut f, mut b) = Fixture::populated();
    f.check().unwrap();
    let old_vault = fs::read(f.live().join(VAULT_FILE)).unwrap();
    let old_vk = unlock(&f.ks, &mut b).unwrap();
    f.rotate(Some(&b.stub().id())).unwrap();
    f.check().unwrap();
    // The old vault key, re-wrapped to the remaining token, under a manifest above the record.
    let old_file: VaultFile = files::decode(&f.live().join(VAULT_FILE), &old_vault).unwrap();
    let forged = forge(&mut f, |vk| {
        super::lineage::succeeding(&old_file, &old_vk, &vk.public_key())
    });
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
    assert_eq!(
        unlock(&f.ks, &mut f.token).unwrap().public_key(),
        forged.public_key()
    );
    let e = f
        .add(&cred("new-key", Exchange::Binance, None), false)
        .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
}

#[test]
fn rotations_sign_their_lineage_and_a_changed_link_is_damage() {
    let (mut f, b) = Fixture::populated();
    let first = unlock(&f.ks, &mut f.token).unwrap().public_key();
    f.rotate(None).unwrap();
    f.rotate(Some(&b.stub().id())).unwrap();
    let c = f.check().unwrap();
    assert!(c.refused.is_empty(), "{c:?}");
    f.add(&cred("after", Exchange::Binance, None), false)
        .unwrap();
    let path = f.live().join(VAULT_FILE);
    let file: VaultFile = files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    assert_eq!(file.lineage.len(), 2);
    // A vault.json with a lineage is version 2, so an older tapsign says "upgrade tapsign";
    // the version and the fields must agree.
    assert_eq!(file.version, 2);
    for (version, lineage) in [(1, file.lineage.clone()), (2, vec![])] {
        let mut v = file.clone();
        v.version = version;
        v.lineage = lineage;
        let bytes = files::encode(&path, v).unwrap();
        let e = files::decode::<VaultFile>(&path, &bytes).unwrap_err();
        assert!(matches!(e, KeystoreError::Damaged { .. }), "{e}");
    }
    let mut v3 = file.clone();
    v3.version = 3;
    let bytes = files::encode(&path, v3).unwrap();
    let e = files::decode::<VaultFile>(&path, &bytes).unwrap_err();
    assert!(matches!(e, KeystoreError::UnsupportedVersion { .. }), "{e}");
    assert_eq!(
        file.lineage[0].from,
        hex::encode(super::seal::compressed(&first))
    );
    assert_eq!(file.lineage[1].to, file.public_key);
    // A link whose signature is not the replaced key's, or that skips a vault, is damage.
    let mut bad = file.clone();
    let mut sig = hex::decode(&bad.lineage[1].signature).unwrap();
    sig[10] ^= 1;
    bad.lineage[1].signature = hex::encode(sig);
    let e = super::lineage::ancestry(&bad, &path).unwrap_err();
    assert!(e.to_string().contains("link 2"), "{e}");
    let mut skipped = file.clone();
    skipped.lineage.remove(0);
    let ancestry = super::lineage::ancestry(&skipped, &path).unwrap();
    assert!(!ancestry.contains(&file.lineage[0].from));
    put_back(&path, &files::encode(&path, skipped).unwrap());
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
    put_back(&path, &files::encode(&path, bad).unwrap());
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::Damaged { .. }), "{e}");
}

#[test]
fn a_rebuild_gives_the_new_vault_key_only_to_the_token_touched() {
    // With the manifest broken, nothing vouches for a keyslot: one planted beside the
    // trader's (sealed to anyone's public key: here a token the planter holds) received the
    // rebuilt vault key, and with it every credential.
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let planted = super::tests::soft(f.tmp.path(), "token-planted");
    let rel = format!("{KEYSLOTS}/{}.json", planted.stub().id());
    let vk = f.unlock();
    let bytes =
        super::vault_ops::keyslot_bytes(Path::new(&rel), &vk, planted.stub(), None).unwrap();
    put_back(&f.live().join(&rel), &bytes);
    let path = f.ks.dir().join("manifest.json");
    let mut m: ManifestFile = files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    m.mac = "00".repeat(32);
    put_back(&path, &files::encode(&path, m).unwrap());
    let touched = f.token.stub().clone();
    let r =
        f.ks.rebuild_manifest(&vk, &touched, &mut offline(), &mut f.ledger, false)
            .unwrap();
    assert_eq!(r.keyslots, [touched.id()]);
    let planted_line = r
        .warnings
        .iter()
        .find(|w| w.contains(&planted.stub().describe()));
    assert!(planted_line.is_some(), "{r:?}");
    // The planted token has no keyslot in the new vault.
    assert!(
        f.ks.keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .all(|s| &s.stub != planted.stub())
    );
    assert!(f.check().unwrap().refused.is_empty());
}

#[test]
fn a_rebuild_keeps_to_the_recorded_vaults_and_says_how_to_restore_an_own_backup() {
    // The trader's own backup from before a rotation, put back: the log names the newer vault,
    // which the backup's does not descend from. A rebuild must not take it (it would take a
    // forged one the same way); the refusal says what to do if the backup is the trader's.
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let backup = f.tmp.path().join("backup");
    copy_dir(f.ks.dir(), &backup);
    f.rotate(None).unwrap();
    fs::remove_dir_all(f.ks.dir()).unwrap();
    copy_dir(&backup, f.ks.dir());
    let vk = f.unlock();
    let touched = f.token.stub().clone();
    let e =
        f.ks.rebuild_manifest(&vk, &touched, &mut offline(), &mut f.ledger, false)
            .unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
    assert!(e.to_string().contains("move the audit log aside"), "{e}");
    // With the log moved aside, it opens.
    f.ledger.entries.clear();
    let c = f.check().unwrap();
    assert_eq!(c.accepted.len(), 2, "{c:?}");
}

/// Red-team round 24: after `token remove`, the vault from before it put back (its folder
/// only) beside a log whose `lineage` was taken out, the rebuild told the trader to enroll
/// again, by name, the token they had removed. The log's line recording the removal, though no
/// signed link vouches for it, is named instead, and re-enrolling is not advised.
#[test]
fn a_rebuild_of_an_older_vault_does_not_advise_enrolling_a_removed_token_again() {
    let (mut f, b) = Fixture::populated();
    f.check().unwrap();
    let before = f.tmp.path().join("before");
    copy_dir(f.ks.dir(), &before);
    // The vault key the touched token opens in that copy (no manifest is put back to unlock).
    let vk = f.unlock();
    let id = b.stub().id();
    f.rotate(Some(&id)).unwrap();
    for e in &mut f.ledger.entries {
        if let super::ledger::LedgerEntry::Manifest { links, .. } = e {
            links.clear();
        }
    }
    fs::remove_dir_all(f.ks.dir()).unwrap();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(f.ks.dir())
        .unwrap();
    for e in fs::read_dir(&before).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("vault-") {
            copy_dir(&e.path(), &f.ks.dir().join(e.file_name()));
        }
    }
    let touched = f.token.stub().clone();
    let r =
        f.ks.rebuild_manifest(&vk, &touched, &mut offline(), &mut f.ledger, false)
            .unwrap();
    assert_eq!(r.keyslots, [touched.id()]);
    let line = r
        .warnings
        .iter()
        .find(|w| w.contains(&b.stub().describe()))
        .unwrap();
    assert!(
        line.contains("records that it was removed") && line.contains("Do not enroll it again"),
        "{line}"
    );
    assert!(
        !line.contains("enroll it again with `tapsign token add`"),
        "{line}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::DirBuilder::new().mode(0o700).create(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            put_back(&dest, &fs::read(e.path()).unwrap());
        }
    }
}

/// Run `act` when the operation on this thread passes `point` (see `disk::interleave`).
fn at(point: &'static str, act: impl FnOnce() + 'static) {
    crate::disk::INTERLEAVE.with(|i| i.borrow_mut().push((point, Box::new(act))));
}

#[test]
fn a_vault_json_swapped_after_it_was_read_changes_nothing() {
    // vault.json was read twice: once for the key to seal to (and to compare with VK), once
    // for the lineage. A forged file for the first read and a copy of the genuine one for the
    // second passed both: key add sealed to the forged key, and unlock opened the forged vault
    // and removed the genuine folder. Each now reads it once.
    let (mut f, _b) = Fixture::populated();
    f.rotate(None).unwrap();
    f.check().unwrap();
    let genuine = f.live();
    let genuine_vault = fs::read(genuine.join(VAULT_FILE)).unwrap();
    let forged = forge(&mut f, fresh_vault);
    let forged_path = f.live().join(VAULT_FILE);
    assert_ne!(f.live(), genuine);
    for point in [
        "key add: vault.json read, before the record",
        "check: vault.json read, before the record",
    ] {
        let (path, bytes) = (forged_path.clone(), genuine_vault.clone());
        at(point, move || put_back(&path, &bytes));
        let e = match point.starts_with("key add") {
            true => f
                .add(&cred("new-key", Exchange::Binance, None), false)
                .unwrap_err(),
            false => f.check().unwrap_err(),
        };
        assert!(
            matches!(
                e,
                KeystoreError::VaultNotChained { .. } | KeystoreError::VaultMismatch { .. }
            ),
            "{point}: {e}"
        );
        assert!(genuine.join(VAULT_FILE).exists(), "{point}");
        crate::disk::INTERLEAVE.with(|i| i.borrow_mut().clear());
        // Put the forged file back for the next round.
        let fresh = files::encode(&forged_path, fresh_vault(&forged)).unwrap();
        put_back(&forged_path, &fresh);
    }
}
