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
