//! Which enrolled token a command uses, and which token its PIN goes to, with a YubiKey and a
//! FIDO2 key both enrolled: the real CLI and agent, a real private pcscd and the project's
//! virtual keys (tests/vyk). Needs root and the PC/SC packages; without them each test prints
//! SKIPPED (and fails in CI, where TAPSIGN_VYK_REQUIRE=1).
//!
//! Red-team round 24: one prompt asked the "PIN of FIDO2 key X or YubiKey N", and the PIN typed
//! for the FIDO2 key went to the YubiKey first, spending one of its tries; the FIDO2 key could
//! not be chosen while the YubiKey was in; and once a YubiKey was enrolled, every unlock,
//! `token add` and `token remove` demanded a PIN line, even when the token present took none.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fido2_support;

use fido2_support::*;
use tapsign_tests::World;
use tapsign_vyk::{PinProtocol, harness};

const PIV_PIN: &str = "123456\n";

/// The id `token list` gives the token of `kind` (`piv`, `fido2`).
fn id_of(w: &World, kind: &str) -> String {
    let list = w.run(&["token", "list"], "");
    list.ok()
        .lines()
        .find(|l| l.contains(&format!(" {kind} ")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned()
}

fn opened_by(w: &World) -> String {
    w.status()["session"]["opened_by"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_pin_goes_only_to_the_token_it_was_asked_for() {
    harness::run(
        &[
            piv_key(24_000_001),
            fido(24_000_002, Some(PIN), &[PinProtocol::Two]),
        ],
        |stack| {
            let mut w = World::new();
            let out = w.run(&["token", "add", "--piv", "--serial", "24000001"], PIV_PIN);
            assert!(out.ok().contains("Enrolled"), "{out:?}");
            add_key(&w);
            // The YubiKey opens the keystore (its PIN), then the new key's PIN.
            enroll(&w, &["--name", "green"], &format!("123456\n{PIN}\n"));
            let (piv, fido) = (id_of(&w, "piv"), id_of(&w, "fido2"));
            agent(&mut w);

            // Both present: the YubiKey is the one asked, and named alone.
            let out = w.run(&["unlock"], PIV_PIN);
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert!(!out.stderr.contains("green"), "{out:?}");
            assert!(opened_by(&w).contains("YubiKey 24000001"));
            w.run(&["lock"], "").ok();

            // The FIDO2 key, chosen while the YubiKey is in: its PIN goes to it alone.
            let out = w.run(&["unlock", "--token", &fido], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert!(!out.stderr.contains("YubiKey"), "{out:?}");
            assert_eq!(opened_by(&w), "FIDO2 key \"green\"");
            sign_and_verify(&w);
            // So do the commands that open the keystore themselves.
            let out = w.run(
                &["keystore", "rotate", "--token", &fido],
                &format!("{PIN}\n{PIN}\n"),
            );
            assert!(out.ok().contains("new vault key"), "{out:?}");
            assert!(!out.stderr.contains("Touch YubiKey"), "{out:?}");

            // No FIDO2 PIN reached the YubiKey: a wrong PIN now leaves two of its three tries.
            w.run(&["unlock", "--token", &piv], "654321\n")
                .fails_with(6, "YubiKey 24000001 refused the PIN (2 tries left");
            // An id no token has is a usage error, before any PIN or touch.
            w.run(&["unlock", "--token", "piv-1-r1-00000000"], PIV_PIN)
                .fails_with(2, "no enrolled token has that id");

            // The YubiKey out: the FIDO2 key is the first present, and its PIN is asked.
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert_eq!(opened_by(&w), "FIDO2 key \"green\"");
        },
    );
}

#[test]
fn a_token_that_takes_no_pin_is_asked_no_pin_line() {
    harness::run(
        &[
            piv_key(24_000_003),
            fido(24_000_004, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let mut w = World::new();
            w.run(&["token", "add", "--piv", "--serial", "24000003"], PIV_PIN)
                .ok();
            add_key(&w);
            enroll(&w, &["--name", "plain"], PIV_PIN);
            let piv = id_of(&w, "piv");
            agent(&mut w);
            // The YubiKey out, nothing on stdin: the touch-only FIDO2 key opens it.
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], "");
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert_eq!(opened_by(&w), "FIDO2 key \"plain\"");
            let out = w.run(&["token", "remove", &piv], "");
            assert!(out.ok().contains("Removed token"), "{out:?}");
            // The token being removed cannot be the one that opens the keystore.
            let fido = id_of(&w, "fido2");
            w.run(&["token", "remove", &fido, "--token", &fido], "")
                .fails_with(2, "--token names the token being removed");
        },
    );
}
