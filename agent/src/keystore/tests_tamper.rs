//! Tamper tests: every byte of every file of a populated keystore, flipped, must give an
//! error naming that file (never a panic, never a wrong answer); so must truncation, an
//! extra byte, and deliberate edits that recompute the checksum (caught by AEAD at unlock).

use std::fs;
use std::path::Path;

use super::files::{decode, encode};
use super::format::{CredentialFile, KeyslotFile};
use super::tests::{Fixture, files, unlock};
use super::*;
use crate::token::soft::SoftToken;

/// Ways to damage a file, as (label, new contents).
fn damages(orig: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..orig.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut b = orig.to_vec();
            b[i] ^= mask;
            out.push((format!("byte {i} ^ {mask:#04x}"), b));
        }
    }
    for len in [0, 1, orig.len() / 2, orig.len() - 2, orig.len() - 1] {
        out.push((format!("truncated to {len}"), orig[..len].to_vec()));
    }
    for at in [0, orig.len() / 2, orig.len() - 1, orig.len()] {
        let mut b = orig.to_vec();
        b.insert(at, b' ');
        out.push((format!("space inserted at {at}"), b));
    }
    let mut b = orig.to_vec();
    b.extend_from_slice(b"{}");
    out.push(("trailing bytes".into(), b));
    out
}

/// The error the keystore gives for `path` in its current state, if any.
fn check(f: &mut Fixture, vk: &VaultKey, path: &Path) -> Option<KeystoreError> {
    let touches_before = SoftToken::touches(&f.token_dir("token-a")).unwrap();
    let kind = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let err = match kind {
        "keyslots" => {
            let slots = f.ks.keyslots().unwrap();
            assert_eq!(slots.len(), 2, "one result per keyslot file");
            slots.into_iter().find_map(|r| match r {
                Err(e) if e.path() == Some(path) => Some(e),
                Err(e) => panic!("error for another file: {e}"),
                Ok(_) => None,
            })
        }
        "credentials" => {
            let list = f.ks.list_credentials().unwrap();
            assert_eq!(list.len(), 2, "one result per credential file");
            let listed = list.into_iter().find_map(|r| r.err());
            let name = path.file_stem().unwrap().to_str().unwrap();
            let opened = f.ks.open_credential(vk, name).err();
            // Listing and opening must agree that the file is bad.
            assert_eq!(
                listed.is_some(),
                opened.is_some(),
                "{listed:?} vs {opened:?}"
            );
            opened
        }
        _ => {
            let e = unlock(&f.ks, &mut f.token).err();
            // A damaged vault.json is caught before asking for a touch.
            let after = SoftToken::touches(&f.token_dir("token-a")).unwrap();
            assert!(
                e.is_none() || after == touches_before,
                "touched for a damaged vault.json"
            );
            e
        }
    };
    if let Some(e) = &err {
        assert_eq!(e.path(), Some(path), "{e}");
    }
    err
}

#[test]
fn every_damaged_byte_of_every_file_is_an_error_naming_it() {
    let (mut f, _) = Fixture::populated();
    let vk = f.unlock();
    let all = files(f.ks.dir());
    assert_eq!(
        all.len(),
        6,
        "manifest, vault, 2 keyslots, 2 credentials: {all:?}"
    );
    for path in all {
        let orig = fs::read(&path).unwrap();
        assert!(
            check(&mut f, &vk, &path).is_none(),
            "{} starts out fine",
            path.display()
        );
        for (label, bytes) in damages(&orig) {
            fs::write(&path, &bytes).unwrap();
            let e = check(&mut f, &vk, &path);
            assert!(e.is_some(), "{}: {label} went unnoticed", path.display());
        }
        fs::write(&path, &orig).unwrap();
        assert!(
            check(&mut f, &vk, &path).is_none(),
            "{} restored",
            path.display()
        );
    }
}

#[test]
fn garbage_of_any_shape_is_an_error_not_a_panic() {
    let (mut f, _) = Fixture::populated();
    let vk = f.unlock();
    let path = f.live().join("credentials/upbit-main.json");
    let garbage: [&[u8]; 8] = [
        b"",
        b"null",
        b"[]",
        b"\xff\xfe\x00",
        b"{\"format\":\"tapsign-credential\"}",
        b"{\"format\":\"tapsign-credential\",\"checksum\":7}",
        &[b'['; 10_000],
        &[b'x'; 100_000],
    ];
    for g in garbage {
        fs::write(&path, g).unwrap();
        assert!(
            check(&mut f, &vk, &path).is_some(),
            "{:?}",
            &g[..g.len().min(40)]
        );
    }
}

/// Rewrite a file through `edit` with a fresh, valid checksum: what a deliberate attacker
/// (rather than a bad disk) does.
fn forge<T: files::Envelope + Clone>(path: &Path, edit: impl FnOnce(&mut T)) {
    let mut file: T = decode(path, &fs::read(path).unwrap()).unwrap();
    edit(&mut file);
    fs::write(path, encode(path, file).unwrap()).unwrap();
}

fn flip_hex(s: &mut String, at: usize) {
    let c = if &s[at..=at] == "0" { "1" } else { "0" };
    s.replace_range(at..=at, c);
}

#[test]
fn forged_credentials_fail_the_aead_at_open() {
    let (mut f, _) = Fixture::populated();
    let vk = f.unlock();
    let path = f.live().join("credentials/upbit-main.json");
    let orig = fs::read(&path).unwrap();
    let edits: [fn(&mut CredentialFile); 4] = [
        |c| flip_hex(&mut c.ciphertext, 10),
        |c| flip_hex(&mut c.nonce, 0),
        |c| c.exchange = Exchange::Binance,
        |c| c.created += 1,
    ];
    for edit in edits {
        forge::<CredentialFile>(&path, edit);
        let e = f.ks.open_credential(&vk, "upbit-main").err().unwrap();
        assert!(matches!(e, KeystoreError::CredentialLocked { .. }), "{e}");
        assert_eq!(e.path(), Some(path.as_path()));
        fs::write(&path, &orig).unwrap();
    }
    // Renaming a credential (file and name field) breaks the AAD too.
    let renamed = f.live().join("credentials/upbit-evil.json");
    fs::rename(&path, &renamed).unwrap();
    forge::<CredentialFile>(&renamed, |c| c.name = "upbit-evil".into());
    let e = f.ks.open_credential(&vk, "upbit-evil").err().unwrap();
    assert!(matches!(e, KeystoreError::CredentialLocked { .. }), "{e}");
}

#[test]
fn forged_keyslots_fail_the_aead_at_unlock() {
    let (mut f, _) = Fixture::populated();
    let path = f
        .live()
        .join(format!("keyslots/{}.json", f.token.stub().id()));
    forge::<KeyslotFile>(&path, |k| flip_hex(&mut k.wrapped_key, 3));
    let e = unlock(&f.ks, &mut f.token).err().unwrap();
    assert!(matches!(e, KeystoreError::KeyslotLocked { .. }), "{e}");
    assert_eq!(e.path(), Some(path.as_path()));
}

#[test]
fn a_file_from_a_newer_tapsign_asks_for_an_upgrade() {
    let (f, _) = Fixture::populated();
    let path = f.live().join("credentials/upbit-main.json");
    forge::<CredentialFile>(&path, |c| c.version = FORMAT_VERSION + 1);
    let list = f.ks.list_credentials().unwrap();
    let e = list.into_iter().find_map(|r| r.err()).unwrap();
    assert!(
        matches!(e, KeystoreError::UnsupportedVersion { found: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade tapsign"), "{e}");
}

#[test]
fn a_keyslot_renamed_to_another_token_is_damage() {
    let (f, _) = Fixture::populated();
    let from = f
        .live()
        .join(format!("keyslots/{}.json", f.token.stub().id()));
    let to = f.live().join("keyslots/soft-00000000.json");
    fs::rename(&from, &to).unwrap();
    let slots = f.ks.keyslots().unwrap();
    let e = slots.into_iter().find_map(|r| r.err()).unwrap();
    assert!(matches!(e, KeystoreError::Damaged { .. }), "{e}");
    assert_eq!(e.path(), Some(to.as_path()));
}

/// Red-team round 10: a keyslot's token id was never held to its public key, so a removed
/// token's key could come back under a new id (file renamed to match, checksum recomputed)
/// and pass for another token. The id is the hash of the key: such a keyslot is damage.
#[test]
fn a_keyslot_naming_a_key_under_another_id_is_damage() {
    let (f, b) = Fixture::populated();
    let from = f.live().join(format!("keyslots/{}.json", b.stub().id()));
    let to = f.live().join("keyslots/soft-0badc0de.json");
    fs::rename(&from, &to).unwrap();
    forge::<KeyslotFile>(&to, |k| {
        if let TokenStub::Soft { id, .. } = &mut k.token {
            *id = "0badc0de".into();
        }
    });
    let slots = f.ks.keyslots().unwrap();
    let e = slots.into_iter().find_map(|r| r.err()).unwrap();
    assert!(
        matches!(&e, KeystoreError::Damaged { .. }) && e.to_string().contains("token id"),
        "{e}"
    );
    assert_eq!(e.path(), Some(to.as_path()));
}

/// Red-team round 19: a keyslot file is read by every `status` and unlock, and a sparse file
/// of 8 MB (no disk used) was read whole, 1,500 of them 12 GB a `status`. A keyslot larger
/// than any keyslot is refused unread.
#[test]
fn a_keyslot_far_larger_than_any_is_refused_unread() {
    use std::os::unix::fs::OpenOptionsExt;
    let f = Fixture::new();
    let junk = f.live().join("keyslots/junk.json");
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&junk)
        .unwrap();
    file.set_len(100 * 1024).unwrap();
    let slots = f.ks.keyslots().unwrap();
    let e = slots
        .iter()
        .find_map(|s| s.as_ref().err())
        .expect("the junk keyslot is an error");
    assert!(e.to_string().contains("far larger"), "{e}");
    assert_eq!(slots.iter().filter(|s| s.is_ok()).count(), 1);
}
