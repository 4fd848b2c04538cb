//! Rotation with a FIDO2 key in the keystore: it has no public key to wrap to, so it must be
//! present, and touched, to receive the new vault key; the CLI asks for it by name. On the
//! virtual key's FIDO2 applet over a private pcscd (see tests/tests/fido2.rs).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fido2_support;

use fido2_support::*;
use tapsign_tests::World;
use tapsign_vyk::{PinProtocol, harness};

const YUBIKEY_PIN: &str = "123456\n";

/// A PIV key and a FIDO2 key ("green") enrolled, one credential, both keys present.
fn both(w: &World) {
    let out = w.run(
        &["token", "add", "--piv", "--serial", "21100001"],
        YUBIKEY_PIN,
    );
    assert!(out.ok().contains("Enrolled YubiKey 21100001"), "{out:?}");
    add_key(w);
    enroll(w, &["--name", "green"], YUBIKEY_PIN);
}

#[test]
fn a_rotation_asks_the_fido2_key_for_a_touch_to_receive_the_new_vault_key() {
    harness::run(
        &[
            piv_key(21_100_001),
            fido(21_100_002, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let (piv, fido2) = (stack.key(0).touch(), stack.key(1).touch());
            let mut w = World::new();
            both(&w);
            let before = (piv.touches(), fido2.touches());
            let out = w.run(&["keystore", "rotate"], YUBIKEY_PIN);
            assert!(out.ok().contains("new vault key"), "{out:?}");
            assert!(
                out.stderr
                    .contains("FIDO2 key \"green\" must receive the new vault key itself"),
                "asked for by name: {out:?}"
            );
            // A touch on one token to open the keystore, and one on the FIDO2 key to seal.
            let after = (piv.touches(), fido2.touches());
            assert_eq!(after.0 + after.1, before.0 + before.1 + 2, "{after:?}");
            assert!(after.1 > before.1, "the FIDO2 key was touched");
            // The FIDO2 key alone opens the rotated keystore (the CLI still asks for the
            // YubiKey's PIN, which the FIDO2 key does not need).
            agent(&mut w);
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], YUBIKEY_PIN);
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            sign_and_verify(&w);
        },
    );
}

#[test]
fn removing_the_yubikey_keeps_the_fido2_key_and_revokes_the_yubikey() {
    harness::run(
        &[
            piv_key(21_100_003),
            fido(21_100_004, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let fido2 = stack.key(1).touch();
            let mut w = World::new();
            let out = w.run(
                &["token", "add", "--piv", "--serial", "21100003"],
                YUBIKEY_PIN,
            );
            assert!(out.ok().contains("Enrolled"), "{out:?}");
            add_key(&w);
            enroll(&w, &["--name", "green"], YUBIKEY_PIN);
            let list = w.run(&["token", "list"], "");
            let piv_id = list
                .ok()
                .lines()
                .find(|l| l.contains(" piv "))
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            // The YubiKey is "lost": it is not even present for its removal.
            stack.pull(0).unwrap();
            let before = fido2.touches();
            let out = w.run(&["token", "remove", &piv_id], "");
            let text = out.ok();
            assert!(
                text.contains(&format!("Removed token {piv_id}, and revoked it")),
                "{out:?}"
            );
            assert_eq!(
                fido2.touches(),
                before + 2,
                "one touch to open the keystore, one to receive the new key"
            );
            let list = w.run(&["token", "list"], "");
            assert_eq!(list.ok().lines().count(), 1, "{list:?}");
            agent(&mut w);
            w.run(&["unlock"], "").ok();
            sign_and_verify(&w);
        },
    );
}

/// One FIDO2 key ("desk", `--uv required`: its PIN at every touch) and one credential.
fn pinned(w: &World) {
    enroll(
        w,
        &["--name", "desk", "--uv", "required"],
        &format!("{PIN}\n"),
    );
    add_key(w);
}

#[test]
fn a_rotation_takes_both_pins_of_a_pinned_fido2_key_from_stdin() {
    harness::run(
        &[fido(21_100_005, Some(PIN), &[PinProtocol::Two])],
        |stack| {
            let touch = stack.key(0).touch();
            let mut w = World::new();
            pinned(&w);
            // The PIN to open the keystore, then the PIN of the key that receives the new
            // vault key: one per line, in that order (red-team round 22: the second was never
            // read, the first read took in both lines and a second reader found stdin empty).
            let before = touch.touches();
            let out = w.run(&["keystore", "rotate"], &format!("{PIN}\n{PIN}\n"));
            assert!(out.ok().contains("new vault key"), "{out:?}");
            assert_eq!(touch.touches(), before + 2, "{out:?}");
            // One line only: the second PIN is named as missing, as a token's failure.
            w.run(&["keystore", "rotate"], &format!("{PIN}\n"))
                .fails_with(6, "PIN of FIDO2 key \"desk\" is empty");
            agent(&mut w);
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            sign_and_verify(&w);
        },
    );
}

#[test]
fn a_rebuild_with_manifest_json_gone_takes_both_pins_from_stdin_and_never_advises_itself() {
    harness::run(&[fido(21_100_006, Some(PIN), &[PinProtocol::Two])], |_| {
        let mut w = World::new();
        pinned(&w);
        std::fs::remove_file(w.home().join("keystore/manifest.json")).unwrap();
        // A failed rebuild says why it failed: not `ManifestGone`, whose advice is to run
        // this very rebuild (red-team round 22: a loop, for anyone driving it over a pipe).
        let out = w.run(
            &["keystore", "rotate", "--rebuild-manifest"],
            &format!("{PIN}\n"),
        );
        out.fails_with(6, "PIN of FIDO2 key \"desk\" is empty");
        assert!(!out.stderr.contains("--rebuild-manifest"), "{out:?}");
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        assert!(!out.stderr.contains("--rebuild-manifest"), "{out:?}");
        assert!(out.stderr.contains("PIN of FIDO2 key \"desk\""), "{out:?}");
        // Both PINs piped, one per line: the rebuild goes through.
        let out = w.run(
            &["keystore", "rotate", "--rebuild-manifest"],
            &format!("{PIN}\n{PIN}\n"),
        );
        assert!(
            out.ok().contains("Rebuilt the keystore's manifest"),
            "{out:?}"
        );
        assert!(w.home().join("keystore/manifest.json").exists());
        agent(&mut w);
        let out = w.run(&["unlock"], &format!("{PIN}\n"));
        assert!(out.ok().contains("Unlocked"), "{out:?}");
        sign_and_verify(&w);
    });
}
