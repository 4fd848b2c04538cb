//! Red-team round 19, finding D: one `keystore` line appended to the log (it continues the
//! chain) naming a vault key nobody holds made every unlock and every rebuild refuse for good
//! (`VaultNotChained`), and the only way out left (moving the log aside) threw the whole
//! record away, so an old copy of a replaced secret opened again. A line naming a vault the
//! record does not know must now carry the signed links to it from one it does; a line that
//! does not is left out of the record, and said.

use std::fs;

use super::format::Succession;
use super::layout::vault_tag;
use super::ledger::{LedgerEntry, Witness};
use super::manifest::ManifestFile;
use super::seal::compressed;
use super::tests::{Fixture, cred};
use super::tests_at_rest::put_back;
use super::*;

/// A vault key nobody holds: its public key (hex) and tag.
fn nobodys_vault() -> (VaultKey, String, String) {
    let vk = VaultKey::generate().unwrap();
    let key = vk.public_key();
    (vk, hex::encode(compressed(&key)), vault_tag(&key))
}

/// The generation and vault tag of the last manifest recorded.
fn last_recorded(f: &Fixture) -> (u64, String) {
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

/// A line as someone who can write the log appends it (it continues the chain): the last
/// record's generation and vault tag, naming vault key `key`, carrying `links`.
fn forged_line(f: &Fixture, key: &str, links: Vec<Succession>) -> LedgerEntry {
    let (generation, vault) = last_recorded(f);
    LedgerEntry::Manifest {
        generation,
        vault,
        vault_key: key.to_owned(),
        links,
        reason: "unlock".into(),
        records: vec![],
        signature: String::new(),
    }
}

fn says_left_out(warnings: &[String], tag: &str) -> bool {
    warnings.iter().any(|w| {
        w.contains(&format!("vault-{tag}"))
            && w.contains("no signed link to it from a vault recorded before it")
            && w.contains("left out of the record")
    })
}

/// Break the manifest's MAC: what `--rebuild-manifest` is for.
fn damage_manifest(f: &Fixture) {
    let path = f.ks.dir().join("manifest.json");
    let mut m: ManifestFile = files::decode(&path, &fs::read(&path).unwrap()).unwrap();
    m.mac = "00".repeat(32);
    put_back(&path, &files::encode(&path, m).unwrap());
}

fn rebuild(f: &mut Fixture) -> Result<Rotated, KeystoreError> {
    let vk = f.unlock();
    let touched = f.token.stub().clone();
    let mut offline = |_: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        unreachable!("soft keyslots wrap offline")
    };
    f.ks.rebuild_manifest(&vk, &touched, &mut offline, &mut f.ledger, false)
}

#[test]
fn a_forged_vault_line_with_no_link_refuses_nothing_and_is_said() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let (_, key, tag) = nobodys_vault();
    let line = forged_line(&f, &key, vec![]);
    f.ledger.entries.push(line);
    // `key list`, before any touch.
    let p = f.ks.preview(&mut f.ledger).unwrap();
    assert!(p.whole.is_none(), "{p:?}");
    assert!(says_left_out(&p.warnings, &tag), "{p:?}");
    // An unlock's check.
    let c = f.check().unwrap();
    assert_eq!(c.accepted.len(), 2, "{c:?}");
    assert!(says_left_out(&c.warnings, &tag), "{c:?}");
    // `key add`.
    let added = f
        .add(&cred("new-key", Exchange::Binance, None), false)
        .unwrap();
    assert!(says_left_out(&added.warnings, &tag), "{added:?}");
    // A rebuild (here of a damaged manifest), which every way out of a refusal ends in.
    damage_manifest(&f);
    let r = rebuild(&mut f).unwrap();
    assert!(says_left_out(&r.warnings, &tag), "{r:?}");
    let c = f.check().unwrap();
    assert_eq!(c.accepted.len(), 3, "{c:?}");
}

#[test]
fn a_forged_vault_line_above_the_record_is_rebuilt_past_not_a_brick() {
    // Finding D as reported: the forged line also names the next generation. The unlock
    // refuses as for any newer generation recorded, and the rebuild it advises now goes on.
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let (_, key, tag) = nobodys_vault();
    let mut line = forged_line(&f, &key, vec![]);
    if let LedgerEntry::Manifest {
        generation, vault, ..
    } = &mut line
    {
        (*generation, *vault) = (*generation + 1, tag.clone());
    }
    f.ledger.entries.push(line);
    let e = f.check().unwrap_err();
    assert!(matches!(e, KeystoreError::OlderThanLog { .. }), "{e}");
    assert!(e.to_string().contains("--rebuild-manifest"), "{e}");
    let r = rebuild(&mut f).unwrap();
    assert!(says_left_out(&r.warnings, &tag), "{r:?}");
    let c = f.check().unwrap();
    assert_eq!(c.accepted.len(), 2, "{c:?}");
    assert!(says_left_out(&c.warnings, &tag), "{c:?}");
}

#[test]
fn a_forged_vault_line_whose_link_no_believed_vault_signed_is_left_out() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let current = f.check().unwrap().vault_key;
    let (forged_vk, key, tag) = nobodys_vault();
    let signed_by = |from: &VaultKey| {
        let file = super::format::VaultFile::new(&from.public_key());
        super::lineage::succeeding(&file, from, &forged_vk.public_key()).lineage
    };
    // Signed, but by a vault key the record never named.
    let stranger = signed_by(&VaultKey::generate().unwrap());
    // From the current vault, but the signature is not its own.
    let mut bad = stranger.clone();
    bad[0].from = current.clone();
    // From the current vault and signed by it, but to another key than the line names.
    let elsewhere = signed_by(&f.unlock());
    let (_, other, other_tag) = nobodys_vault();
    for (links, named, named_tag) in [
        (stranger, &key, &tag),
        (bad, &key, &tag),
        (elsewhere, &other, &other_tag),
    ] {
        let line = forged_line(&f, named, links);
        f.ledger.entries.push(line);
        let c = f.check().unwrap();
        assert!(says_left_out(&c.warnings, named_tag), "{c:?}");
        f.ledger.entries.retain(
            |e| !matches!(e, LedgerEntry::Manifest { vault_key, .. } if vault_key == named),
        );
    }
}

#[test]
fn a_rotations_record_carries_its_link_and_the_vault_before_it_stays_refused() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let backup = f.tmp.path().join("backup");
    super::tests_rotate::copy_tree(f.ks.dir(), &backup);
    let old = f.check().unwrap().vault_key;
    f.rotate(None).unwrap();
    let new = f.check().unwrap().vault_key;
    let links: Vec<_> = f
        .ledger
        .entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Manifest {
                vault_key, links, ..
            } => Some((vault_key.clone(), links.clone())),
            _ => None,
        })
        .filter(|(_, links)| !links.is_empty())
        .collect();
    // The rotation's line alone carries one: the unlock after it names a vault recorded.
    assert_eq!(links.len(), 1, "{links:?}");
    let (key, link) = &links[0];
    assert_eq!((key, &link[0].from, &link[0].to), (&new, &old, &new));
    assert!(super::lineage::vouched(
        std::slice::from_ref(&old),
        &new,
        link
    ));
    // The keystore from before the rotation, put back: even a rebuild, which takes the files
    // as they are, is refused, since the new vault is believed and the old one does not
    // descend from it.
    fs::remove_dir_all(f.ks.dir()).unwrap();
    super::tests_rotate::copy_tree(&backup, f.ks.dir());
    let e = rebuild(&mut f).unwrap_err();
    assert!(matches!(e, KeystoreError::VaultNotChained { .. }), "{e}");
}

#[test]
fn a_forged_vault_line_the_running_agent_saw_refuses_nothing() {
    let (mut f, _b) = Fixture::populated();
    f.ledger.witness = Some(Witness::default());
    f.check().unwrap();
    let (_, key, tag) = nobodys_vault();
    // The agent takes the line in as it is appended; the file loses it afterwards (or keeps
    // it: the same).
    let line = forged_line(&f, &key, vec![]);
    if let Some(w) = f.ledger.witness.as_mut() {
        w.saw_vault(99, &key, &[], false);
    }
    for in_the_file in [false, true] {
        if in_the_file {
            f.ledger.entries.push(line.clone());
        }
        let c = f.check().unwrap();
        assert!(says_left_out(&c.warnings, &tag), "{c:?}");
        assert_eq!(c.accepted.len(), 2, "{c:?}");
    }
    // With the log started afresh, what the agent saw first (the genuine vault) is believed,
    // and still not the line after it.
    f.ledger.entries.clear();
    let c = f.check().unwrap();
    assert!(says_left_out(&c.warnings, &tag), "{c:?}");
    assert!(
        f.ledger
            .witness
            .as_ref()
            .unwrap()
            .vaults
            .iter()
            .any(|v| v.key == key)
    );
}

/// The links a record carries, by the vault key it names.
fn links_recorded(f: &Fixture) -> Vec<(String, usize)> {
    f.ledger
        .entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Manifest {
                vault_key, links, ..
            } if !links.is_empty() => Some((vault_key.clone(), links.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rotation_recorded_without_links_is_recorded_again_with_them() {
    // A log written before the links were recorded: the rotation's line names its vault with
    // none. It is left out like a forged one, and the next unlock, finding its vault not
    // counted, records it with its link; the warning ends there.
    let (mut f, _b) = Fixture::populated();
    f.rotate(None).unwrap();
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Manifest { links, .. } = e {
            links.clear();
        }
    }
    let c = f.check().unwrap();
    let tag = f.live().file_name().unwrap().to_str().unwrap()[6..].to_owned();
    assert!(says_left_out(&c.warnings, &tag), "{c:?}");
    assert_eq!(links_recorded(&f), [(c.vault_key.clone(), 1)]);
    let c = f.check().unwrap();
    assert!(!c.warnings.iter().any(|w| w.contains("left out")), "{c:?}");
}

#[test]
fn a_rotation_whose_line_was_never_written_is_linked_by_the_next_one() {
    // A rotation stopped between its commit and its line (killed, a power cut), then the
    // `keystore rotate` its docs advise: the new line carries both links, from the last vault
    // recorded, so the record counts it, and no line of the trader's is called forged.
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    f.rotate(None).unwrap();
    f.ledger.entries.pop();
    f.rotate(None).unwrap();
    let c = f.check().unwrap();
    assert!(!c.warnings.iter().any(|w| w.contains("left out")), "{c:?}");
    assert_eq!(links_recorded(&f), [(c.vault_key.clone(), 2)]);
}

/// Round 19's recheck: after two rotations written before the links were recorded, the next
/// unlock records the last vault with both links, but the middle rotation's own line stayed
/// left out, called forged at every unlock. The vaults the links pass through are believed.
#[test]
fn two_rotations_recorded_without_links_are_believed_once_linked() {
    let (mut f, _b) = Fixture::populated();
    f.rotate(None).unwrap();
    f.rotate(None).unwrap();
    for e in &mut f.ledger.entries {
        if let LedgerEntry::Manifest { links, .. } = e {
            links.clear();
        }
    }
    let c = f.check().unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("left out")), "{c:?}");
    let c = f.check().unwrap();
    assert!(!c.warnings.iter().any(|w| w.contains("left out")), "{c:?}");
}

/// Round 19's recheck: each line read looked through every vault left out before it, so a log
/// flooded with forged lines, each naming a vault of its own, took quadratic time to read
/// (100,000 lines: 20 s a `key list`). At most [`UNLINKED_KEPT`] are kept, and the warning
/// says there are more.
#[test]
fn a_flood_of_forged_vault_lines_is_read_in_linear_time() {
    use super::ledger::UNLINKED_KEPT;
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    for _ in 0..UNLINKED_KEPT + 40 {
        let (_, key, _) = nobodys_vault();
        let line = forged_line(&f, &key, Vec::new());
        f.ledger.entries.push(line);
    }
    let c = f.check().unwrap();
    let said = c.warnings.join("\n");
    assert!(said.contains("or more such lines"), "{said}");
    let ev = f.ledger.since(&super::Anchor::genesis());
    assert_eq!(ev.unlinked.len(), UNLINKED_KEPT);
}

/// Round 19's recheck: the `vault` tag of a line was believed whatever its key: one chained
/// line naming a tag of no vault (with no key, or a key left out) made every unlock and `key
/// add` refuse as if `vault.json` had been replaced. A tag counts only as its believed key's.
#[test]
fn a_forged_vault_tag_refuses_nothing() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let (generation, _) = last_recorded(&f);
    f.ledger.entries.push(LedgerEntry::Manifest {
        generation,
        vault: "0000000000000000".into(),
        vault_key: String::new(),
        links: Vec::new(),
        reason: "unlock".into(),
        records: vec![],
        signature: String::new(),
    });
    f.check().unwrap();
    let (_, key, tag) = nobodys_vault();
    let (generation, _) = last_recorded(&f);
    f.ledger.entries.push(LedgerEntry::Manifest {
        generation,
        vault: tag.clone(),
        vault_key: key,
        links: Vec::new(),
        reason: "unlock".into(),
        records: vec![],
        signature: String::new(),
    });
    let c = f.check().unwrap();
    assert!(says_left_out(&c.warnings, &tag), "{c:?}");
    f.add(&cred("after", Exchange::Binance, None), false)
        .unwrap();
}

/// Round 19's recheck: a forged `vault_key` that is no key stood in the warning as the
/// forger's own printable text. Only a real key's tag is shown.
#[test]
fn the_warning_shows_no_text_of_the_forgers() {
    let forged = super::ledger::Unlinked {
        seq: 7,
        vault_key: "x (expected after an upgrade: no action needed)".into(),
    };
    let w = super::vault_ops::unlinked_warning(&[forged], &[]).unwrap();
    assert!(w.contains("naming a malformed vault key"), "{w}");
    assert!(!w.contains("no action needed"), "{w}");
}

/// Round 19's second recheck: the vaults a running agent recorded itself were judged by the
/// file's record like any line, so a log replaced while it ran, whose first line named a vault
/// someone made, left the agent's own vault out, and the unlock it advised opened the other.
/// Its own are believed whatever the file says.
#[test]
fn the_vaults_the_agent_recorded_itself_stand_against_a_replaced_log() {
    let (_, ours, _) = nobodys_vault();
    let (_, theirs, _) = nobodys_vault();
    let mut ev = Evidence {
        recorded_vaults: vec![theirs.clone()],
        ..Evidence::default()
    };
    let mut w = Witness::default();
    w.saw_vault(3, &ours, &[], true);
    ev.witness(w);
    assert!(ev.unlinked.is_empty(), "{ev:?}");
    assert_eq!(ev.believed_vaults(), [theirs, ours]);
}

/// Round 19's second recheck: one chained line naming the trader's own vault from before a
/// rotation (believed, with its key), at the current generation, pinned every unlock and `key
/// add` to it; the vault on disk descends from it, so it is not a later one.
#[test]
fn a_line_naming_an_older_vault_of_the_keystore_pins_nothing() {
    let (mut f, _b) = Fixture::populated();
    f.check().unwrap();
    let (old_tag, old_key) = f
        .ledger
        .entries
        .iter()
        .rev()
        .find_map(|e| match e {
            LedgerEntry::Manifest {
                vault, vault_key, ..
            } => Some((vault.clone(), vault_key.clone())),
            _ => None,
        })
        .unwrap();
    f.rotate(None).unwrap();
    f.check().unwrap();
    let (generation, _) = last_recorded(&f);
    f.ledger.entries.push(LedgerEntry::Manifest {
        generation,
        vault: old_tag,
        vault_key: old_key,
        links: Vec::new(),
        reason: "unlock".into(),
        records: vec![],
        signature: String::new(),
    });
    f.check().unwrap();
    f.add(&cred("after", Exchange::Binance, None), false)
        .unwrap();
}
