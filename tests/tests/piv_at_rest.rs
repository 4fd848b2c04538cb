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

/// Put a P-256 key with these policies in slot R1 of key `i`, as another tool would: with
/// the factory management key, or once `token add` has replaced it, with the one it stored
/// behind the PIN (as ykman finds it).
fn generate_r1(stack: &Stack, i: usize, pin: PinPolicy, touch: TouchPolicy) {
    let mut yk = YubiKey::open_by_serial(Serial(stack.key(i).serial())).unwrap();
    let mgm = MgmKey::get_default(&yk).unwrap();
    if yk.authenticate(&mgm).is_err() {
        yk.verify_pin(b"123456").unwrap();
        let stored = MgmKey::get_protected(&mut yk).unwrap();
        yk.authenticate(&stored).unwrap();
    }
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

/// Put a P-256 key whose private half the test knows in slot R1 of key `i`, with touch
/// always, as a program running as the trader can with the factory management key (no PIN,
/// no touch).
fn import_r1(stack: &Stack, i: usize) {
    let mut yk = YubiKey::open_by_serial(Serial(stack.key(i).serial())).unwrap();
    let mgm = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&mgm).unwrap();
    let slot = SlotId::Retired(RetiredSlotId::R1);
    let scalar = [0x11u8; 32];
    piv::import_ecc_key(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        &scalar,
        TouchPolicy::Always,
        PinPolicy::Once,
    )
    .unwrap();
}

/// An imported key's private half is known to whoever imported it: adopted, the keystore
/// opened offline with no card and no touch. The card's metadata says where the key came
/// from, and adopting an imported one takes --allow-imported; the occupied-slot refusal no
/// longer offers adopting as the harmless way out (red-team round 26, F1).
#[test]
fn use_existing_refuses_an_imported_key_unless_told() {
    harness::run(&[fw(15_200_012)], |stack| {
        import_r1(stack, 0);
        let w = World::new();
        let out = w.run(&["token", "add", "--piv"], PIN);
        out.fails_with(6, "--force");
        assert!(
            out.stderr
                .contains("--use-existing only if you generated it on this card yourself"),
            "{out:?}"
        );
        let out = w.run(&["token", "add", "--piv", "--use-existing"], PIN);
        out.fails_with(6, "was imported, not generated on the card");
        assert!(out.stderr.contains("holds its private key"), "{out:?}");
        assert!(out.stderr.contains("--allow-imported"), "{out:?}");
        assert!(
            !out.stderr.contains("touch it now"),
            "no touch asked: {out:?}"
        );
        assert!(
            !w.home().join("keystore").join("manifest.json").exists(),
            "nothing enrolled"
        );
        assert_eq!(stack.key(0).touch().requests(), 0);

        let out = w.run(
            &[
                "token",
                "add",
                "--piv",
                "--use-existing",
                "--allow-imported",
            ],
            PIN,
        );
        assert!(out.ok().contains("Enrolled YubiKey 15200012"), "{out:?}");
    });
}

/// Cached answers without a touch for 15 s after any touch, so a program running as the
/// trader rides the trader's touch: adopting such a key takes its own flag and says what it
/// gives away, and `token list`, `unlock` and `status` keep saying it (red-team round 20).
#[test]
fn use_existing_refuses_a_cached_touch_key_unless_told_and_every_status_says_it() {
    harness::run(&[fw(15_200_009)], |stack| {
        generate_r1(stack, 0, PinPolicy::Once, TouchPolicy::Cached);
        let mut w = World::new();
        for extra in [&[][..], &["--allow-no-touch"][..]] {
            let mut args = vec!["token", "add", "--piv", "--use-existing"];
            args.extend_from_slice(extra);
            let out = w.run(&args, PIN);
            out.fails_with(6, "touch policy cached: for 15 s after each touch");
            assert!(out.stderr.contains("--allow-cached-touch"), "{out:?}");
            assert!(
                !w.home().join("keystore").join("manifest.json").exists(),
                "nothing enrolled"
            );
        }
        assert_eq!(
            stack.key(0).touch().requests(),
            0,
            "refused before the ECDH"
        );

        let out = w.run(
            &[
                "token",
                "add",
                "--piv",
                "--use-existing",
                "--allow-cached-touch",
            ],
            PIN,
        );
        assert!(out.ok().contains("Enrolled YubiKey 15200009"), "{out:?}");
        assert!(
            out.stderr
                .contains("WARNING: YubiKey 15200009 (PIV slot R1) has touch policy cached"),
            "{out:?}"
        );
        let list = w.run(&["token", "list"], "");
        list.ok();
        assert!(
            list.stderr.contains("take the keystore's key itself"),
            "{list:?}"
        );
        w.run(&["key", "add", "k1", "--exchange", "binance"], "ak1\nsk1\n")
            .ok();
        w.start_agent_with(|c| {
            c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
        });
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        assert!(
            out.stderr
                .contains("warning: YubiKey 15200009 (PIV slot R1) has touch policy cached"),
            "{out:?}"
        );
        let st = w.run(&["status"], "");
        assert!(st.ok().contains("has touch policy cached"), "{st:?}");
    });
}

/// `--touch-policy cached` is refused with the reason, and nothing is generated on the card:
/// it used to make a key a program running as the trader could use without a touch for 15 s
/// after each of the trader's (red-team round 20).
#[test]
fn enrolling_with_a_cached_touch_is_refused_and_the_key_generated_asks_every_time() {
    harness::run(&[fw(15_200_010)], |stack| {
        let w = World::new();
        let out = w.run(&["token", "add", "--piv", "--touch-policy", "cached"], PIN);
        out.fails_with(2, "cached is not offered");
        let mut yk = YubiKey::open_by_serial(Serial(stack.key(0).serial())).unwrap();
        let slot = SlotId::Retired(RetiredSlotId::R1);
        assert!(
            matches!(piv::metadata(&mut yk, slot), Err(yubikey::Error::NotFound)),
            "nothing generated"
        );
        drop(yk);
        let out = w.run(&["token", "add", "--piv", "--touch-policy", "always"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(!out.stderr.contains("WARNING"), "{out:?}");
        let mut yk = YubiKey::open_by_serial(Serial(stack.key(0).serial())).unwrap();
        let meta = piv::metadata(&mut yk, slot).unwrap();
        assert!(
            matches!(meta.policy, Some((_, TouchPolicy::Always))),
            "{:?}",
            meta.policy
        );
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
        // A PIN policy of never is adopted (a touch still gates it), with a warning that the
        // touch goes to whichever program asks (red-team round 26).
        generate_r1(stack, 0, PinPolicy::Never, TouchPolicy::Always);
        let other = World::new();
        let out = other.run(&["token", "add", "--piv", "--use-existing"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(
            out.stderr
                .contains("WARNING: this key's PIN policy is never: any program running as you"),
            "{out:?}"
        );
    });
}

#[test]
fn removing_a_yubikey_revokes_it() {
    harness::run(&[fw(15_200_003), fw(15_200_004)], |stack| {
        let w = World::new();
        // The second enrollment reads the enrolled card's PIN, then the new card's.
        let enroll = |serial: &str| {
            let out = w.run(
                &["token", "add", "--piv", "--serial", serial],
                &format!("{PIN}{PIN}"),
            );
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

/// Red-team round 20: `token remove B` with B's keyslot file hidden (a dot name, which
/// listings skip) said "no enrolled token", `token list` showed only A, nothing was revoked,
/// and the file put back matched the manifest: B opened everything again. Now `token list`
/// names B as recorded with its file missing, `token remove B` rotates without the file, and
/// the file put back opens nothing current.
#[test]
fn a_yubikey_whose_keyslot_file_is_hidden_is_still_removed_and_revoked() {
    harness::run(&[fw(15_200_007), fw(15_200_008)], |stack| {
        let w = World::new();
        for serial in ["15200007", "15200008"] {
            let out = w.run(
                &["token", "add", "--piv", "--serial", serial],
                &format!("{PIN}{PIN}"),
            );
            assert!(out.ok().contains("Enrolled"), "{out:?}");
        }
        w.run(&["key", "add", "k1", "--exchange", "binance"], "ak1\nsk1\n")
            .ok();
        let list = w.run(&["token", "list"], "");
        let b_id = list
            .ok()
            .lines()
            .find(|l| l.contains("15200008"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let ks = w.home().join("keystore");
        let live = Keystore::new(ks.clone()).live_dir().unwrap();
        let file = live.join("keyslots").join(format!("{b_id}.json"));
        let hidden = live.join("keyslots").join(format!(".{b_id}.json.hide"));
        std::fs::rename(&file, &hidden).unwrap();
        let kept = std::fs::read(&hidden).unwrap();

        let list = w.run(&["token", "list"], "");
        let line = list.ok().lines().find(|l| l.starts_with(&b_id)).unwrap();
        assert!(line.contains("its keyslot file is missing"), "{list:?}");
        assert!(
            line.contains(&format!("tapsign token remove {b_id}")),
            "{list:?}"
        );

        let b_touches = stack.key(1).touch().touches();
        let out = w.run(&["token", "remove", &b_id], PIN);
        let text = out.ok();
        assert!(
            text.contains(&format!("Removed token {b_id}, and revoked it")),
            "{out:?}"
        );
        assert!(text.contains("1 credential(s) (k1)"), "{out:?}");
        assert!(out.stderr.contains("was missing"), "{out:?}");
        assert_eq!(
            stack.key(1).touch().touches(),
            b_touches,
            "B is not touched"
        );

        // The attacker puts B's file back (the old folder, with the hidden copy, is gone).
        let current = Keystore::new(ks);
        let back = current
            .live_dir()
            .unwrap()
            .join("keyslots")
            .join(format!("{b_id}.json"));
        tapsign_tests::at_rest::put_back(&back, &kept);
        let list = w.run(&["token", "list"], "");
        let line = list.ok().lines().find(|l| l.starts_with(&b_id)).unwrap();
        assert!(line.contains("NOT in the keystore's manifest"), "{list:?}");
        let slot = current
            .keyslots()
            .unwrap()
            .into_iter()
            .flatten()
            .find(|s| s.stub.id() == b_id)
            .unwrap();
        assert!(!slot.recorded);
        let pin = SecretString::from_str_copy("123456");
        let (_, mut b) = PivToken::locate(&[&slot.stub], Some(&pin)).unwrap();
        let e = current.unwrap_vault(&slot, &mut b).err().unwrap();
        assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
    });
}

/// With the agent running: the keystore copied before `token remove` put back, and the
/// removal's `keystore` line then edited in place (same length) to a lower generation and the
/// old vault, so that the agent's checks of the log's end see nothing. The removed YubiKey's
/// keyslot is back in the copy; the unlock still opens nothing, and writes no manifest.
#[test]
fn a_removed_yubikey_put_back_with_its_record_edited_opens_nothing_while_the_agent_runs() {
    harness::run(&[fw(15_200_005), fw(15_200_006)], |_stack| {
        let mut w = World::new();
        for serial in ["15200005", "15200006"] {
            w.run(
                &["token", "add", "--piv", "--serial", serial],
                &format!("{PIN}{PIN}"),
            )
            .ok();
        }
        w.run(&["key", "add", "k1", "--exchange", "binance"], "ak1\nsk1\n")
            .ok();
        let list = w.run(&["token", "list"], "");
        let b_id = list
            .ok()
            .lines()
            .find(|l| l.contains("15200006"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        w.start_agent();
        w.run(&["unlock"], PIN).ok();
        let ks = w.home().join("keystore");
        let backup = w.home().join("backup");
        let cp = std::process::Command::new("cp")
            .arg("-a")
            .arg(&ks)
            .arg(&backup)
            .status()
            .unwrap();
        assert!(cp.success());
        w.run(&["token", "remove", &b_id], PIN).ok();
        std::fs::remove_dir_all(&ks).unwrap();
        std::fs::rename(&backup, &ks).unwrap();
        w.run(&["unlock"], PIN)
            .fails_with(7, "older copy of the keystore was put back");
        // The copy lists the removed YubiKey again: `token list` says the next unlock opens
        // nothing with it (it listed the old tokens as in use before).
        let list = w.run(&["token", "list"], "");
        assert!(list.ok().contains(&b_id), "{list:?}");
        assert!(
            list.stderr
                .contains("the next unlock opens nothing with these tokens: "),
            "{list:?}"
        );
        assert!(
            list.stderr.contains("older copy of the keystore"),
            "{list:?}"
        );
        w.run(
            &["sign", "k1", "--method", "GET", "--path", "/api/v3/account"],
            "",
        );
        // The removal's line, edited in place to below the copy's generation, naming its vault.
        let log = w.home().join("audit.log");
        let text = std::fs::read_to_string(&log).unwrap();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
            .collect();
        let removal = events
            .iter()
            .rposition(|e| {
                e["type"] == "keystore"
                    && e["reason"].as_str().is_some_and(|r| r.contains("removed"))
            })
            .unwrap();
        let before = events[..removal]
            .iter()
            .rfind(|e| e["type"] == "keystore")
            .unwrap();
        let (new, old) = (&events[removal], before);
        let from = format!(
            "\"generation\":{},\"vault\":\"{}\"",
            new["generation"],
            new["vault"].as_str().unwrap()
        );
        let to = format!(
            "\"generation\":{},\"vault\":\"{}\"",
            old["generation"].as_u64().unwrap() - 1,
            old["vault"].as_str().unwrap()
        );
        assert_eq!(from.len(), to.len());
        let line = text.lines().nth(removal).unwrap();
        let offset: usize = text.split_inclusive('\n').take(removal).map(str::len).sum();
        let edited = line.replace(&from, &to);
        assert_ne!(edited, line);
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        f.write_all_at(edited.as_bytes(), offset as u64).unwrap();
        let manifest = std::fs::read(ks.join("manifest.json")).unwrap();
        let out = w.run(&["unlock"], PIN);
        out.fails_with(7, "");
        assert!(!out.stdout.contains("Unlocked"), "{out:?}");
        assert_eq!(std::fs::read(ks.join("manifest.json")).unwrap(), manifest);
    });
}

/// A second YubiKey with a PIN of its own: the enrolled card is asked for its PIN, the new one
/// for its own. `token add --piv` used to read one PIN, the new card's, and send it to the
/// enrolled card as well, spending one of that card's three tries (docs audit, 2026-12-05).
#[test]
fn enrolling_a_second_yubikey_asks_each_card_for_its_own_pin() {
    harness::run(&[fw(15_200_007), fw(15_200_008)], |stack| {
        let w = World::new();
        w.run(&["token", "add", "--piv", "--serial", "15200007"], PIN)
            .ok();
        let mut second = YubiKey::open_by_serial(Serial(stack.key(1).serial())).unwrap();
        second.change_pin(b"123456", b"24681357").unwrap();
        drop(second);
        let out = w.run(
            &["token", "add", "--piv", "--serial", "15200008"],
            &format!("{PIN}24681357\n"),
        );
        assert!(out.ok().contains("Enrolled YubiKey 15200008"), "{out:?}");
        assert_eq!(w.run(&["token", "list"], "").ok().lines().count(), 2);
        for i in [0, 1] {
            let mut yk = YubiKey::open_by_serial(Serial(stack.key(i).serial())).unwrap();
            assert_eq!(yk.get_pin_retries().unwrap(), 3, "card {i} lost a PIN try");
        }
    });
}
