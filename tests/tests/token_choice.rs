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
use tapsign_proto::ErrorCode;
use tapsign_tests::{World, at_rest};
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
            let mut w = with_yubikey(24_000_001);
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
            let mut w = with_yubikey(24_000_003);
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

/// A bot's unlock naming `token`, with `pin`.
fn bot_unlock(w: &World, token: &str, pin: Option<&str>) -> tapsign_proto::ProtoError {
    let req = tapsign_proto::UnlockRequest {
        token: Some(token.into()),
        pin: pin.map(|p| tapsign_proto::Pin::new(p.into())),
        ..Default::default()
    };
    w.client().unlock(req).unwrap_err()
}

/// Red-team round 24, recheck: `--token` (or a bot's `token`) naming an enrolled YubiKey that
/// is not plugged in, with the other enrolled one in, said "the token present (YubiKey N) is
/// not enrolled in this keystore" with `wrong_token`, after reading the PIN and printing the
/// touch prompt; and a keyslot the manifest does not record, named, was tried beside the
/// recorded token present, spending the touch, though every text says it is tried only when
/// none is present. Now: not present (`token_absent`, before any prompt, no PIN spent on the
/// other), and the spare keyslot refused before the touch, for an extend too.
#[test]
fn a_named_token_not_present_is_said_so_and_a_spare_keyslot_waits_its_turn() {
    harness::run(&[piv_key(24_000_011), piv_key(24_000_012)], |stack| {
        let mut w = with_yubikey(24_000_011);
        let out = w.run(
            &["token", "add", "--piv", "--serial", "24000012"],
            "123456\n123456\n",
        );
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        let (first, second) = (id_with(&w, "24000011"), id_with(&w, "24000012"));
        agent(&mut w);

        stack.pull(0).unwrap();
        // No PIN line: the refusal comes before the prompt.
        let out = w.run(&["unlock", "--token", &first], "");
        out.fails_with(6, "token_absent");
        for said in ["YubiKey 24000011 (PIV slot R1)", "is not present", &second] {
            assert!(out.stderr.contains(said), "{said}: {out:?}");
        }
        for never in ["not enrolled", "token remove", "Touch", "PIN"] {
            assert!(!out.stderr.contains(never), "{never}: {out:?}");
        }
        // The same from a bot, or after a pull between the CLI's look and the agent's.
        let refused = bot_unlock(&w, &first, Some("123456"));
        assert_eq!(refused.code(), Some(ErrorCode::TokenAbsent), "{refused}");
        let text = refused.to_string();
        assert!(text.contains("is not present") && !text.contains("not enrolled"));
        // The PIN went to no other token: the present one still has its three tries.
        w.run(&["unlock", "--token", &second], "654321\n")
            .fails_with(6, "YubiKey 24000012 refused the PIN (2 tries left");
        w.run(&["unlock", "--token", &second], PIV_PIN).ok();

        // A keyslot for slot R2 of the card present, made in another home and copied in: a
        // spare keyslot, which the manifest does not record.
        let other = World::new();
        other
            .run(
                &[
                    "token", "add", "--piv", "--serial", "24000012", "--slot", "R2",
                ],
                PIV_PIN,
            )
            .ok();
        let spare = id_with(&other, "24000012");
        let file = format!("{spare}.json");
        std::fs::copy(
            at_rest::live(&other).join("keyslots").join(&file),
            at_rest::live(&w).join("keyslots").join(&file),
        )
        .unwrap();
        let touches = stack.key(1).touch().requests();
        let out = w.run(&["unlock", "--extend", "--token", &spare], "");
        out.fails_with(5, "a session is extended only with the token of a keyslot");
        assert!(!out.stderr.contains("no enrolled token"), "{out:?}");
        assert!(!out.stderr.contains("Touch"), "{out:?}");
        let out = w.run(&["unlock", "--token", &spare], "");
        out.fails_with(5, "only when no token of a keyslot the manifest records");
        assert!(
            out.stderr.contains("YubiKey 24000012 (PIV slot R1) is"),
            "{out:?}"
        );
        assert!(!out.stderr.contains("Touch"), "{out:?}");
        let refused = bot_unlock(&w, &spare, Some("123456"));
        assert_eq!(refused.code(), Some(ErrorCode::BadRequest), "{refused}");
        assert!(refused.to_string().contains("only when no token"));
        assert_eq!(
            stack.key(1).touch().requests(),
            touches,
            "no touch asked for"
        );
        assert!(!w.agent_log().contains("PIV slot R2"), "{}", w.agent_log());
    });
}

/// Red-team round 24, recheck: with FIDO2 key "one" in a drawer and "two" in the port,
/// `unlock --token <one>` said the key present "holds no credential of this keystore ... run
/// `tapsign token remove <one>`", advice to revoke a good backup key.
#[test]
fn a_named_fido2_key_not_present_is_not_called_reset() {
    harness::run(
        &[
            fido(24_000_013, None, &[PinProtocol::Two]),
            fido(24_000_014, Some(PIN), &[PinProtocol::Two]),
        ],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--reader", "Virtual PCD 00 00", "--name", "one"], "");
            add_key(&w);
            enroll(&w, &["--name", "two"], &format!("{PIN}\n"));
            let one = id_with(&w, "\"one\"");
            agent(&mut w);
            stack.pull(0).unwrap();
            let out = w.run(&["unlock", "--token", &one], "");
            out.fails_with(6, "token_absent");
            assert!(
                out.stderr.contains("FIDO2 key \"one\", the token"),
                "{out:?}"
            );
            assert!(out.stderr.contains("FIDO2 key \"two\" is"), "{out:?}");
            for never in ["reset", "token remove", "holds no credential", "Touch"] {
                assert!(!out.stderr.contains(never), "{never}: {out:?}");
            }
            let refused = bot_unlock(&w, &one, None);
            assert_eq!(refused.code(), Some(ErrorCode::TokenAbsent), "{refused}");
            assert!(!refused.to_string().contains("token remove"), "{refused}");
        },
    );
}

/// Red-team round 24, recheck: an enrolled YubiKey whose slot was regenerated was passed over
/// in silence when the FIDO2 key opened the keystore, so the trader kept a backup that opens
/// nothing. The unlock says it, from the CLI and in a bot's answer.
#[test]
fn a_dead_token_passed_over_is_warned_of() {
    harness::run(
        &[
            piv_key(24_000_015),
            fido(24_000_016, None, &[PinProtocol::Two]),
        ],
        |_stack| {
            let mut w = with_yubikey(24_000_015);
            enroll(&w, &["--name", "plain"], PIV_PIN);
            let piv = id_of(&w, "piv");
            agent(&mut w);
            World::new()
                .run(
                    &["token", "add", "--piv", "--serial", "24000015", "--force"],
                    PIV_PIN,
                )
                .ok();
            let remove = format!("run `tapsign token remove {piv}`");
            let out = w.run(&["unlock"], "");
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert_eq!(opened_by(&w), "FIDO2 key \"plain\"");
            assert!(out.stderr.contains("regenerated or overwritten"), "{out:?}");
            assert!(out.stderr.contains(&remove), "{out:?}");
            w.run(&["lock"], "").ok();
            let opened = w.client().unlock(Default::default()).unwrap();
            assert!(
                opened.warnings.iter().any(|x| x.contains(&remove)),
                "{:?}",
                opened.warnings
            );
        },
    );
}

/// Red-team round 24, recheck: with the soft token variable in the shell of `tapsign unlock`
/// but not the agent's, and the YubiKey out, the unlock picked the soft token and the agent's
/// "started without TAPSIGN_INSECURE_SOFT_TOKEN" was all it said: "insert YubiKey N" was lost.
#[test]
fn the_soft_token_refused_by_the_agent_still_names_the_missing_yubikey() {
    harness::run(&[piv_key(24_000_017)], |stack| {
        let mut w = World::new();
        w.run(&["token", "add", "--soft"], "").ok();
        add_key(&w);
        w.run(&["token", "add", "--piv", "--serial", "24000017"], PIV_PIN)
            .ok();
        agent(&mut w);
        stack.pull(0).unwrap();
        let out = w.run(&["unlock"], "");
        out.fails_with(6, "TAPSIGN_INSECURE_SOFT_TOKEN");
        assert!(
            out.stderr.contains("insert YubiKey 24000017 (PIV slot R1)"),
            "{out:?}"
        );
    });
}
