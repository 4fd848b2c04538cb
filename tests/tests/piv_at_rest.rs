//! At rest, with YubiKeys: enrolment refuses a key without a touch policy and proves the key
//! is on the card; removing a YubiKey revokes it. The real CLI, the real `yubikey` + `pcsc`
//! code and a private pcscd with the virtual YubiKey (tests/vyk); see tests/tests/piv.rs for
//! what the harness needs (and TAPSIGN_VYK_REQUIRE=1 in CI).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_agent::keystore::{Keystore, KeystoreError};
use tapsign_agent::secret::SecretString;
use tapsign_agent::token::piv::PivToken;
use tapsign_tests::World;
use tapsign_vyk::{Config, Stack, harness};
use yubikey::piv::{self, AlgorithmId, RetiredSlotId, SlotId};
use yubikey::{MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const PIN: &str = "123456\n";

fn fw(serial: u32) -> Config {
    Config {
        version: [5, 7, 1],
        serial,
        ..Config::default()
    }
}

/// Put a P-256 key with these policies in slot R1 of key `i`, as another tool would.
fn generate_r1(stack: &Stack, i: usize, pin: PinPolicy, touch: TouchPolicy) {
    let mut yk = YubiKey::open_by_serial(Serial(stack.key(i).serial())).unwrap();
    let mgm = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&mgm).unwrap();
    let slot = SlotId::Retired(RetiredSlotId::R1);
    piv::generate(&mut yk, slot, AlgorithmId::EccP256, pin, touch).unwrap();
}

#[test]
fn use_existing_refuses_a_key_without_a_touch_unless_told() {
    harness::run(&[fw(15_200_001)], |stack| {
        generate_r1(stack, 0, PinPolicy::Once, TouchPolicy::Never);
        let w = World::new();
        let out = w.run(&["token", "add", "--piv", "--use-existing"], PIN);
        out.fails_with(6, "touch policy never");
        assert!(out.stderr.contains("--allow-no-touch"), "{out:?}");
        assert!(
            !w.home().join("keystore").join("manifest.json").exists(),
            "nothing enrolled"
        );

        let out = w.run(
            &[
                "token",
                "add",
                "--piv",
                "--use-existing",
                "--allow-no-touch",
            ],
            PIN,
        );
        assert!(out.ok().contains("Enrolled YubiKey 15200001"), "{out:?}");
        assert!(out.stderr.contains("WARNING"), "{out:?}");
        assert!(out.stderr.contains("without a touch"), "{out:?}");
        // The card proved it holds the key (one ECDH); this key asks for no touch.
        assert!(out.stderr.contains("holds the key"), "{out:?}");
        assert_eq!(stack.key(0).touch().requests(), 0);
    });
}

#[test]
fn use_existing_proves_the_key_is_on_the_card_with_a_touch() {
    harness::run(&[fw(15_200_002)], |stack| {
        generate_r1(stack, 0, PinPolicy::Once, TouchPolicy::Always);
        let w = World::new();
        let out = w.run(&["token", "add", "--piv", "--use-existing"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(out.stderr.contains("touch it now"), "{out:?}");
        assert_eq!(stack.key(0).touch().touches(), 1, "the test ECDH");
        // A PIN policy of never is adopted (a touch still gates it), with a note.
        generate_r1(stack, 0, PinPolicy::Never, TouchPolicy::Always);
        let other = World::new();
        let out = other.run(&["token", "add", "--piv", "--use-existing"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(out.stderr.contains("a touch alone unlocks"), "{out:?}");
    });
}

#[test]
fn removing_a_yubikey_revokes_it() {
    harness::run(&[fw(15_200_003), fw(15_200_004)], |stack| {
        let w = World::new();
        let enroll = |serial: &str| {
            let out = w.run(&["token", "add", "--piv", "--serial", serial], PIN);
            assert!(out.ok().contains("Enrolled"), "{out:?}");
        };
        enroll("15200003");
        w.run(&["key", "add", "k1", "--exchange", "binance"], "ak1\nsk1\n")
            .ok();
        enroll("15200004");
        let list = w.run(&["token", "list"], "");
        let b_id = list
            .ok()
            .lines()
            .find(|l| l.contains("15200004"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        // A backup of the keystore, with B's keyslot in it.
        let backup = w.home().join("backup");
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(w.home().join("keystore"))
            .arg(&backup)
            .status()
            .unwrap();
        assert!(copied.success());

        let a_touches = stack.key(0).touch().touches();
        let out = w.run(&["token", "remove", &b_id], PIN);
        let text = out.ok();
        assert!(
            text.contains(&format!("Removed token {b_id}, and revoked it")),
            "{out:?}"
        );
        assert!(text.contains("new vault key"), "{out:?}");
        assert!(text.contains("1 credential(s) (k1)"), "{out:?}");
        assert!(text.contains("opens nothing in this keystore"), "{out:?}");
        assert_eq!(
            stack.key(0).touch().touches(),
            a_touches + 1,
            "a touch on A"
        );
        w.run(&["key", "add", "k2", "--exchange", "binance"], "ak2\nsk2\n")
            .ok();

        // The attacker: YubiKey B and the backup's copy of its keyslot. They open the old
        // vault key (one touch on B) ...
        let old = Keystore::new(backup);
        let slot = old
            .keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .find(|s| s.stub.id() == b_id)
            .unwrap();
        let pin = SecretString::from_str_copy("123456");
        let (_, mut b) = PivToken::locate(&[&slot.stub], Some(&pin)).unwrap();
        let old_vk = old.unwrap_vault(&slot, &mut b).unwrap();
        assert!(
            old.open_credential(&old_vk, "k1").is_ok(),
            "the backup still opens"
        );
        // ... which opens none of the keystore's current files.
        let current = Keystore::new(w.home().join("keystore"));
        for name in ["k1", "k2"] {
            let e = current.open_credential(&old_vk, name).err().unwrap();
            assert!(
                matches!(e, KeystoreError::CredentialLocked { .. }),
                "{name}: {e}"
            );
        }
        let ids: Vec<String> = current
            .keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|s| s.stub.id())
            .collect();
        assert!(!ids.contains(&b_id), "{ids:?}");
    });
}
