//! FIDO2 keyslots: sealed under the hmac-secret output, so both sealing and opening go
//! through the token. The stand-in token computes what CTAP 2.1 §12.5 says an authenticator
//! returns, output1 = HMAC-SHA-256(CredRandom, salt1), and counts its touches.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::ledger::MemoryLedger;
use super::tests::{Fixture, cred};
use super::*;
use crate::token::{Token, TokenError, TokenStub};

struct FakeFido2 {
    stub: TokenStub,
    cred_random: [u8; 32],
    touches: u32,
    refuse: bool,
}

fn stub(label: &str, cred_id: &str) -> TokenStub {
    TokenStub::Fido2 {
        label: label.into(),
        aaguid: "74617073-6967-6e2d-7465-73742d6b6579".into(),
        rp_id: "tapsign:".into(),
        credential_id: cred_id.into(),
        salt: "5a".repeat(32),
        uv: "discouraged".into(),
    }
}

fn fake(label: &str, cred_id: &str, cred_random: u8) -> FakeFido2 {
    FakeFido2 {
        stub: stub(label, cred_id),
        cred_random: [cred_random; 32],
        touches: 0,
        refuse: false,
    }
}

impl Token for FakeFido2 {
    fn stub(&self) -> &TokenStub {
        &self.stub
    }

    fn agree(&mut self, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        if self.refuse {
            return Err(TokenError::TouchDenied {
                token: self.stub.describe(),
            });
        }
        self.touches += 1;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.cred_random).unwrap();
        mac.update(salt);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }
}

fn slot_of(ks: &Keystore, stub: &TokenStub) -> Keyslot {
    ks.keyslots()
        .unwrap()
        .into_iter()
        .flatten()
        .find(|s| &s.stub == stub)
        .unwrap()
}

#[test]
fn a_fido2_keyslot_is_sealed_and_opened_with_one_touch_each() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    let mut token = fake("desk", "c0ffee01", 7);
    let mut ledger = MemoryLedger::default();
    ks.create_with(&mut token, &mut ledger).unwrap();
    assert_eq!(token.touches, 1, "sealing asks the token");
    ks.add_credential(
        &cred("upbit-main", Exchange::Upbit, None),
        false,
        None,
        &mut ledger,
    )
    .unwrap();
    let slot = slot_of(&ks, &token.stub);
    let vk = ks.unwrap_vault(&slot, &mut token).unwrap();
    assert_eq!(token.touches, 2, "opening asks it once more");
    let c = ks.open_credential(&vk, "upbit-main").unwrap();
    assert_eq!(c.api_key.expose(), super::tests::api_key("upbit-main"));
    let text = std::fs::read_to_string(&slot.path).unwrap();
    assert!(text.contains("\"kind\": \"fido2\""), "{text}");
    assert!(!text.contains("ephemeral_key"), "{text}");
}

#[test]
fn another_credential_with_the_same_stub_cannot_open_it() {
    // Same stub, another CredRandom: what a wrong key, or the output with UV instead of
    // without, gives. The AEAD tag refuses it; no garbage vault key comes out.
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    ks.create_with(
        &mut fake("desk", "c0ffee01", 7),
        &mut MemoryLedger::default(),
    )
    .unwrap();
    let mut impostor = fake("desk", "c0ffee01", 8);
    let slot = slot_of(&ks, &impostor.stub);
    let err = ks.unwrap_vault(&slot, &mut impostor).err().unwrap();
    assert!(matches!(err, KeystoreError::KeyslotLocked { .. }), "{err}");
}

#[test]
fn a_fido2_token_joins_and_receives_a_new_vault_key_with_a_touch() {
    let (mut f, _b) = Fixture::populated();
    let vk = f.unlock();
    let mut fido = fake("travel", "0a0b0c0d", 3);
    assert!(!slot::seals_offline(&fido.stub));
    let err =
        f.ks.add_keyslot(&vk, &fido.stub, &mut f.ledger)
            .err()
            .unwrap();
    assert!(
        matches!(err, KeystoreError::UnsupportedToken { .. }),
        "{err}"
    );
    f.ks.add_keyslot_with(&vk, &mut fido, &mut f.ledger)
        .unwrap();
    let before = fido.touches;
    let again =
        f.ks.add_keyslot_with(&vk, &mut fido, &mut f.ledger)
            .err()
            .unwrap();
    assert!(matches!(again, KeystoreError::Exists { .. }), "{again}");
    assert_eq!(fido.touches, before, "refused before the touch");
    let opened =
        f.ks.unwrap_vault(&slot_of(&f.ks, &fido.stub), &mut fido)
            .unwrap();
    assert!(f.ks.open_credential(&opened, "upbit-main").is_ok());
    f.check().unwrap();

    // A rotation asks for the FIDO2 token by name (it has no public key to wrap to); the
    // P-256 tokens receive the new key without theirs.
    let mut asked = Vec::new();
    let mut present = |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        asked.push(s.id());
        Ok(Box::new(fake("travel", "0a0b0c0d", 3)))
    };
    assert_eq!(
        present_tokens_needed(
            &f.ks
                .keyslots()
                .unwrap()
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
            None
        ),
        [fido.stub.clone()]
    );
    let r =
        f.ks.rotate(&vk, None, &mut present, &mut f.ledger, Dropping::None)
            .unwrap();
    assert_eq!(asked, [fido.stub.id()]);
    assert_eq!(r.keyslots.len(), 3);
    let new_vk =
        f.ks.unwrap_vault(&slot_of(&f.ks, &fido.stub), &mut fido)
            .unwrap();
    assert_ne!(new_vk.public_key(), vk.public_key());
    assert!(f.ks.open_credential(&new_vk, "upbit-main").is_ok());
    assert_eq!(f.unlock().public_key(), new_vk.public_key());

    // Without it, nothing changes.
    let mut absent = |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        Err(TokenError::Absent {
            hint: format!("insert {}", s.describe()),
        }
        .into())
    };
    let live = f.live();
    f.ks.rotate(&new_vk, None, &mut absent, &mut f.ledger, Dropping::None)
        .err()
        .unwrap();
    assert_eq!(f.live(), live);
}

#[test]
fn sealing_for_a_fido2_stub_needs_that_token() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    let mut ledger = MemoryLedger::default();
    let err = ks
        .create(&stub("desk", "c0ffee01"), &mut ledger)
        .err()
        .unwrap();
    assert!(
        matches!(err, KeystoreError::UnsupportedToken { .. }),
        "{err}"
    );
    let mut a = fake("a", "01", 1);
    ks.create_with(&mut a, &mut ledger).unwrap();
    let mut b = fake("b", "02", 2);
    let vk = ks.unwrap_vault(&slot_of(&ks, &a.stub), &mut a).unwrap();
    // A token asked to seal for another stub is refused before its touch.
    let err = slot::seal_vk(&vk, &a.stub.clone(), Some(&mut b))
        .err()
        .unwrap();
    assert!(
        matches!(err, KeystoreError::Token(TokenError::WrongToken { .. })),
        "{err}"
    );
    assert_eq!(b.touches, 0);
}

#[test]
fn a_refused_touch_on_a_fido2_token_passes_through() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    let mut token = fake("desk", "c0ffee01", 7);
    ks.create_with(&mut token, &mut MemoryLedger::default())
        .unwrap();
    token.refuse = true;
    let err = ks
        .unwrap_vault(&slot_of(&ks, &token.stub), &mut token)
        .err()
        .unwrap();
    assert!(
        matches!(err, KeystoreError::Token(TokenError::TouchDenied { .. })),
        "{err}"
    );
}

#[test]
fn a_changed_fido2_stub_or_a_stray_ephemeral_key_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    let mut token = fake("desk", "c0ffee01", 7);
    ks.create_with(&mut token, &mut MemoryLedger::default())
        .unwrap();
    let path = slot_of(&ks, &token.stub).path;
    let original = std::fs::read(&path).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let bad_salt = text.replace(&"5a".repeat(32), &"5a".repeat(31));
    let bad_uv = text.replace("\"discouraged\"", "\"sometimes\"");
    let stray = text.replace(
        "  \"nonce\"",
        "  \"ephemeral_key\": \"03480e022ec79bbb2adad8493c4d814ec75dbbbd12889c78a775cdc34d55deb46b\",\n  \"nonce\"",
    );
    for edited in [bad_salt, bad_uv, stray] {
        // Re-checksummed, so only the content check can catch it.
        let mut v: serde_json::Value = serde_json::from_str(&edited).unwrap();
        v["checksum"] = "".into();
        let body = serde_json::to_vec_pretty(&v).unwrap();
        let sum = format!(
            "sha256:{}",
            hex::encode(<Sha256 as sha2::Digest>::digest(&body))
        );
        v["checksum"] = sum.into();
        let mut bytes = serde_json::to_vec_pretty(&v).unwrap();
        bytes.push(b'\n');
        std::fs::write(&path, &bytes).unwrap();
        let listed = ks.keyslots().unwrap();
        assert!(
            matches!(listed[0], Err(KeystoreError::Damaged { .. })),
            "{edited}"
        );
    }
    std::fs::write(&path, &original).unwrap();
    assert!(ks.keyslots().unwrap()[0].is_ok());
}
