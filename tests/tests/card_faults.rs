//! Cards that answer wrongly: a YubiKey (or another make's PIV card) whose answer comes back
//! cut, empty or garbled (`Config::faults` of the virtual key), and a dead YubiKey beside a
//! good one. The real CLI and agent, a real private pcscd and the project's virtual keys
//! (tests/vyk); needs root and the PC/SC packages, else each test prints SKIPPED (and fails
//! in CI, where TAPSIGN_VYK_REQUIRE=1).
//!
//! Red-team round 25: a GET VERSION answer of one byte made every command that looks for a
//! YubiKey, and the agent's unlock worker, die in the `yubikey` crate's panic, whichever reader
//! the card sat in; a GENERATE answered with no data panicked `token add --piv`; a cut
//! metadata answer was taken for a regenerated slot, with advice to remove a good token; a
//! dead YubiKey ended the look while a good one sat beside it; a card answering junk was said
//! not present.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fido2_support;

use fido2_support::*;
use tapsign_tests::{Run, World};
use tapsign_vyk::{Config, Fault, Faults, PinProtocol, harness};

const PIV_PIN: &str = "123456\n";
/// The instruction bytes the faults are armed on.
const GET_VERSION: u8 = 0xFD;
const GET_SERIAL: u8 = 0xF8;
const GET_METADATA: u8 = 0xF7;
const GENERATE: u8 = 0x47;

fn opened_by(w: &World) -> String {
    w.status()["session"]["opened_by"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn no_panic(r: &Run) {
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert_ne!(r.code, 101, "{r:?}");
}

fn retries(serial: u32) -> u8 {
    let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(serial)).unwrap();
    yk.get_pin_retries().unwrap()
}

/// Another make's PIV card in the second reader answers GET VERSION with one byte: the
/// enrolled YubiKey in the first reader is used as if it were alone. Then the YubiKey itself
/// answers so: every command names its reader and says what happened, the agent included.
#[test]
fn a_card_answering_get_version_short_is_named_not_a_panic() {
    let odd = Config {
        faults: Faults::with(GET_VERSION, Fault::Cut),
        ..piv_key(25_100_002)
    };
    harness::run(&[piv_key(25_100_001), odd], |stack| {
        let mut w = World::new();
        let out = w.run(&["token", "add", "--piv", "--serial", "25100001"], PIV_PIN);
        no_panic(&out);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        add_key(&w);
        let a = id_with(&w, "25100001");
        agent(&mut w);
        let out = w.run(&["unlock"], PIV_PIN);
        no_panic(&out);
        assert!(out.ok().contains("Unlocked"), "{out:?}");
        sign_and_verify(&w);
        let out = w.run(&["keystore", "rotate"], PIV_PIN);
        no_panic(&out);
        out.ok();

        // The enrolled YubiKey's own answer cut: said of its reader, with what to do.
        stack
            .key(0)
            .config()
            .faults
            .set(GET_VERSION, Some(Fault::Cut));
        let reader = stack.reader_name(0);
        for args in [
            vec!["unlock"],
            vec!["keystore", "rotate"],
            vec!["token", "add", "--piv"],
        ] {
            let out = w.run(&args, PIV_PIN);
            no_panic(&out);
            assert_ne!(out.code, 0, "{out:?}");
            assert!(out.stderr.contains(&reader), "{args:?}: {out:?}");
            assert!(out.stderr.contains("came back unreadable"), "{out:?}");
            assert!(
                out.stderr.contains("take it out and insert it again"),
                "{out:?}"
            );
        }
        // A bot's unlock, in the agent: the same answer, not "the unlock worker failed".
        let req = tapsign_proto::UnlockRequest {
            token: Some(a.clone()),
            pin: Some(tapsign_proto::Pin::new("123456".into())),
            ..Default::default()
        };
        let e = w.client().unlock(req).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("came back unreadable") && e.contains(&reader),
            "{e}"
        );
        assert!(!w.agent_log().contains("panicked"), "{}", w.agent_log());
        // The session opened before is still open: a refused unlock leaves it as it was.
        assert_eq!(w.status()["state"], "unlocked");

        stack.key(0).config().faults.set(GET_VERSION, None);
        w.run(&["lock"], "").ok();
        let out = w.run(&["unlock"], PIV_PIN);
        assert!(out.ok().contains("Unlocked"), "{out:?}");
    });
}

/// `token add --piv`: the new card answers GENERATE with `90 00` and no key, or with a key cut
/// short. Nothing is enrolled, the message says a key may be left in the slot and how to
/// replace it, and that works.
#[test]
fn a_generate_answer_without_the_key_says_a_key_may_be_left_in_the_slot() {
    harness::run(&[piv_key(25_100_011), piv_key(25_100_012)], |stack| {
        let w = with_yubikey(25_100_011);
        let enrol = |slot: &str, force: bool| {
            let mut args = vec![
                "token", "add", "--piv", "--serial", "25100012", "--slot", slot,
            ];
            args.extend(force.then_some("--force"));
            w.run(&args, "123456\n123456\n")
        };
        for (fault, slot) in [(Fault::NoData, "R1"), (Fault::Cut, "R2")] {
            stack.key(1).config().faults.set(GENERATE, Some(fault));
            let out = enrol(slot, false);
            stack.key(1).config().faults.set(GENERATE, None);
            no_panic(&out);
            out.fails_with(6, "nothing was enrolled");
            assert!(
                out.stderr
                    .contains(&format!("may have made a new key in slot {slot}"))
                    && out.stderr.contains("again with --force"),
                "{fault:?}: {out:?}"
            );
            assert!(!w.run(&["token", "list"], "").ok().contains("25100012"));
        }
        let out = enrol("R1", true);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
    });
}

/// A slot-metadata answer cut short (no public key left in it) is a card error, to try again:
/// not "holds another key in that slot (regenerated ...)", which advised `token remove` of a
/// good token.
#[test]
fn a_cut_slot_metadata_answer_is_not_a_regenerated_slot() {
    harness::run(&[piv_key(25_100_021)], |stack| {
        let mut w = with_yubikey(25_100_021);
        agent(&mut w);
        stack
            .key(0)
            .config()
            .faults
            .set(GET_METADATA, Some(Fault::Cut));
        for args in [vec!["unlock"], vec!["keystore", "rotate"]] {
            let out = w.run(&args, PIV_PIN);
            no_panic(&out);
            assert_ne!(out.code, 0, "{out:?}");
            assert!(
                out.stderr
                    .contains("YubiKey 25100021 answered its slot metadata")
                    && out.stderr.contains("try again"),
                "{args:?}: {out:?}"
            );
            assert!(!out.stderr.contains("token remove"), "{out:?}");
            assert!(!out.stderr.contains("regenerated"), "{out:?}");
        }
        stack.key(0).config().faults.set(GET_METADATA, None);
        let out = w.run(&["unlock"], PIV_PIN);
        assert!(out.ok().contains("Unlocked"), "{out:?}");
    });
}

/// Two enrolled YubiKeys plugged in (a primary and its backup, with different PINs), the first
/// dead (its slot regenerated): the backup opens the keystore, its PIN alone is asked, and the
/// dead one is warned of. Named, the dead one is refused with the `--token` of the good one.
#[test]
fn a_dead_yubikey_beside_a_good_one_is_passed_over_with_a_warning() {
    harness::run(&[piv_key(25_100_031), piv_key(25_100_032)], |_stack| {
        {
            let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(25_100_032)).unwrap();
            yk.change_pin(b"123456", b"111111").unwrap();
        }
        let mut w = with_yubikey(25_100_031);
        w.run(
            &["token", "add", "--piv", "--serial", "25100032"],
            "123456\n111111\n",
        )
        .ok();
        let (a, b) = (id_with(&w, "25100031"), id_with(&w, "25100032"));
        agent(&mut w);
        // A's slot regenerated from another home.
        World::new()
            .run(
                &["token", "add", "--piv", "--serial", "25100031", "--force"],
                PIV_PIN,
            )
            .ok();
        let remove_a = format!("run `tapsign token remove {a}`");

        let out = w.run(&["unlock"], "111111\n");
        assert!(out.ok().contains("Unlocked"), "{out:?}");
        assert_eq!(opened_by(&w), "YubiKey 25100032 (PIV slot R1)");
        assert!(
            out.stderr
                .contains("Touch YubiKey 25100032 (PIV slot R1) when"),
            "{out:?}"
        );
        assert!(!out.stderr.contains("Touch YubiKey 25100031"), "{out:?}");
        assert!(out.stderr.contains("warning: YubiKey 25100031"), "{out:?}");
        assert!(out.stderr.contains(&remove_a), "{out:?}");
        w.run(&["lock"], "").ok();
        // A bot that names no token: the same.
        let req = tapsign_proto::UnlockRequest {
            pin: Some(tapsign_proto::Pin::new("111111".into())),
            ..Default::default()
        };
        let opened = w.client().unlock(req).unwrap();
        assert!(
            opened.warnings.iter().any(|x| x.contains(&remove_a)),
            "{:?}",
            opened.warnings
        );
        w.run(&["lock"], "").ok();
        let out = w.run(&["keystore", "rotate"], "111111\n");
        assert!(out.ok().contains("new vault key"), "{out:?}");
        assert!(out.stderr.contains(&remove_a), "{out:?}");
        // No PIN reached the dead card.
        assert_eq!(retries(25_100_031), 3);

        // Named, the dead one is refused before any PIN or touch, with the good one's id.
        let out = w.run(&["unlock", "--token", &a], PIV_PIN);
        out.fails_with(6, "holds another key in that slot");
        assert!(
            out.stderr.contains(&format!("add `--token {b}`")),
            "{out:?}"
        );
        assert_eq!(retries(25_100_031), 3);
    });
}

/// The enrolled YubiKey answers GET SERIAL (or GET VERSION) with noise, a FIDO2 key enrolled
/// beside it: `--token` of the YubiKey says what its reader's card did, not "not present:
/// insert it".
#[test]
fn a_card_answering_junk_to_get_serial_is_not_said_absent() {
    harness::run(
        &[
            piv_key(25_100_041),
            fido(25_100_042, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let mut w = with_yubikey(25_100_041);
            enroll(&w, &["--name", "f"], PIV_PIN);
            let a = id_with(&w, "25100041");
            agent(&mut w);
            let reader = stack.reader_name(0);
            for (ins, fault) in [
                (GET_SERIAL, Fault::Junk),
                (GET_VERSION, Fault::Junk),
                (GET_VERSION, Fault::NoData),
            ] {
                stack.key(0).config().faults.set(ins, Some(fault));
                let out = w.run(&["unlock", "--token", &a], PIV_PIN);
                stack.key(0).config().faults.set(ins, None);
                no_panic(&out);
                out.fails_with(
                    6,
                    &format!("the card in PC/SC reader {reader} answered as a PIV card"),
                );
                assert!(!out.stderr.contains("is not present"), "{out:?}");
                assert!(
                    out.stderr
                        .contains("if it is another card, insert YubiKey 25100041"),
                    "{out:?}"
                );
            }
            let out = w.run(&["unlock", "--token", &a], PIV_PIN);
            assert!(out.ok().contains("Unlocked"), "{out:?}");
        },
    );
}
