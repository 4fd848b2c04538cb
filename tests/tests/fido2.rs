//! FIDO2 tokens end to end: the real `tapsign` agent and CLI, tapsign's own CTAP2 client on
//! the real `pcsc` crate, a real private pcscd, and the FIDO2 applet of the project's virtual
//! key (tests/vyk). Needs root and the PC/SC packages; without them each test prints SKIPPED
//! (and fails in CI, where TAPSIGN_VYK_REQUIRE=1).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fido2_support;

use std::time::Duration;

use fido2_support::*;
use tapsign_tests::World;
use tapsign_vyk::{PinProtocol, TouchMode, harness};

#[test]
fn fido2_enroll_then_unlock_with_exactly_one_touch_then_sign() {
    harness::run(&[fido(21_000_001, None, &[PinProtocol::Two])], |stack| {
        let touch = stack.key(0).touch();
        let mut w = World::new();
        let out = enroll(&w, &["--name", "desk"], "");
        assert!(out.contains("FIDO2 key \"desk\""), "{out}");
        assert!(out.contains("uv discouraged"), "a key without a PIN: {out}");
        assert_eq!(
            touch.touches(),
            2,
            "enrolling: one touch to make the credential, one to seal the vault key"
        );
        add_key(&w);
        agent(&mut w);
        w.run(&["sign", "b", "--method", "GET", "--path", "/x"], "")
            .fails_with(4, "locked");
        let out = w.run(&["unlock"], "");
        assert!(out.ok().contains("Unlocked 1 key(s): b."), "{out:?}");
        assert!(out.stderr.contains("FIDO2 key \"desk\""), "{out:?}");
        assert_eq!(touch.touches(), 3, "one unlock, exactly one touch");
        assert_eq!(touch.requests(), 3, "and no touch asked for in vain");
        sign_and_verify(&w);
        let st = w.run(&["status", "--json"], "");
        assert!(st.ok().contains("FIDO2 key \\\"desk\\\""), "{st:?}");
        let list = w.run(&["token", "list"], "");
        let line = list.ok().trim();
        assert!(line.starts_with("fido2-"), "{line}");
        assert!(line.contains(" fido2 "), "{line}");
        assert!(line.contains(&format!("aaguid {}", AAGUID_UUID)), "{line}");
    });
}

#[test]
fn a_pin_protected_key_takes_the_pin_from_stdin_with_protocol_two() {
    harness::run(
        &[fido(21_000_002, Some(PIN), &[PinProtocol::Two])],
        |stack| pin_flow(stack, true),
    );
}

#[test]
fn an_older_key_with_protocol_one_and_ctap_2_0_works() {
    let mut key = fido(21_000_003, Some(PIN), &[PinProtocol::One]);
    if let Some(f) = key.fido2.as_mut() {
        f.ctap21 = false;
        f.make_cred_uv_not_rqd = false;
    }
    harness::run(&[key], |stack| pin_flow(stack, false));
}

fn pin_flow(stack: &tapsign_vyk::Stack, ctap21: bool) {
    let touch = stack.key(0).touch();
    let mut w = World::new();
    let out = enroll(&w, &["--name", "pinned"], &format!("{PIN}\n"));
    assert!(out.contains("uv required"), "a key with a PIN: {out}");
    add_key(&w);
    agent(&mut w);
    let before = touch.touches();
    let out = w.run(&["unlock"], &format!("{PIN}\n"));
    assert!(out.ok().contains("Unlocked"), "{out:?}");
    assert_eq!(
        touch.touches(),
        before + 1,
        "exactly one touch (ctap21 {ctap21})"
    );
    sign_and_verify(&w);
    w.run(&["lock"], "").ok();
    // Without the PIN the secret would differ: a wrong one is refused before any touch.
    let asked = touch.requests();
    w.run(&["unlock"], "999999\n").fails_with(6, "7 tries left");
    assert_eq!(touch.requests(), asked, "no touch for a wrong PIN");
    locked(&w);
}

#[test]
fn the_last_fido2_pin_try_is_never_spent() {
    harness::run(
        &[fido(21_000_004, Some(PIN), &[PinProtocol::Two])],
        |stack| {
            let touch = stack.key(0).touch();
            let mut w = World::new();
            enroll(&w, &[], &format!("{PIN}\n"));
            add_key(&w);
            agent(&mut w);
            // 8 tries; three wrong in a row and the key wants a re-plug (CTAP 2.1 §6.5.5.5).
            for left in [7, 6] {
                w.run(&["unlock"], "999999\n")
                    .fails_with(6, &format!("{left} tries left"));
            }
            w.run(&["unlock"], "999999\n")
                .fails_with(6, "insert it again");
            replug(stack);
            for left in [4, 3] {
                w.run(&["unlock"], "999999\n")
                    .fails_with(6, &format!("{left} tries left"));
            }
            w.run(&["unlock"], "999999\n")
                .fails_with(6, "insert it again");
            replug(stack);
            w.run(&["unlock"], "999999\n").fails_with(6, "1 tries left");
            // One try left: tapsign spends it on nothing, not even the right PIN.
            w.run(&["unlock"], "999999\n")
                .fails_with(6, "one PIN try left");
            w.run(&["unlock"], &format!("{PIN}\n"))
                .fails_with(6, "one PIN try left");
            assert_eq!(touch.requests(), 2, "only the enrollment's two touches");
            locked(&w);
        },
    );
}

#[test]
fn pulling_the_fido2_key_locks_the_session() {
    harness::run(&[fido(21_000_005, None, &[PinProtocol::Two])], |stack| {
        let mut w = World::new();
        enroll(&w, &[], "");
        add_key(&w);
        agent(&mut w);
        w.run(&["unlock"], "").ok();
        wait_removal_watch(&w, "Virtual PCD 00 00");
        sign_and_verify(&w);
        stack.pull(0).unwrap();
        let st = wait_locked(&w);
        assert!(
            st["lock_reason"]
                .as_str()
                .unwrap()
                .contains("token removed"),
            "{st}"
        );
        w.run(&["sign", "b", "--method", "GET", "--path", "/x"], "")
            .fails_with(4, "locked");
        // Plugged back in, it opens nothing by itself.
        stack.insert(0).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(wait_locked(&w)["state"], "locked");
    });
}

#[test]
fn a_wrong_fido2_key_is_refused_before_any_touch() {
    harness::run(
        &[
            fido(21_000_006, None, &[PinProtocol::Two]),
            fido(21_000_007, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--reader", "Virtual PCD 00 00", "--name", "blue"], "");
            add_key(&w);
            agent(&mut w);
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], "");
            out.fails_with(6, "wrong_token");
            assert!(
                out.stderr.contains("FIDO2 key \"blue\""),
                "names it: {out:?}"
            );
            assert_eq!(
                stack.key(1).touch().requests(),
                0,
                "the wrong key was never asked for a touch"
            );
            locked(&w);
            stack.pull(1).unwrap();
            let out = w.run(&["unlock"], "");
            out.fails_with(6, "token_absent");
            assert!(out.stderr.contains("insert FIDO2 key \"blue\""), "{out:?}");
        },
    );
}

#[test]
fn a_denied_or_missed_touch_leaves_the_agent_locked() {
    harness::run(&[fido(21_000_008, None, &[PinProtocol::Two])], |stack| {
        let touch = stack.key(0).touch();
        let mut w = World::new();
        enroll(&w, &[], "");
        add_key(&w);
        agent(&mut w);
        touch.set_mode(TouchMode::Deny {
            after: Duration::from_millis(300),
        });
        let out = w.run(&["unlock"], "");
        out.fails_with(6, "touch_timeout");
        assert!(out.stderr.contains("refused or cancelled"), "{out:?}");
        locked(&w);
        touch.set_mode(TouchMode::Hold {
            timeout: Duration::from_millis(300),
        });
        let out = w.run(&["unlock"], "");
        out.fails_with(6, "touch_timeout");
        assert!(out.stderr.contains("no touch within"), "{out:?}");
        locked(&w);
        touch.set_mode(TouchMode::Approve);
        w.run(&["unlock"], "").ok();
        sign_and_verify(&w);
    });
}

#[test]
fn a_fido2_key_pulled_during_the_touch_is_a_clear_error() {
    harness::run(&[fido(21_000_009, None, &[PinProtocol::Two])], |stack| {
        let touch = stack.key(0).touch();
        let mut w = World::new();
        enroll(&w, &[], "");
        add_key(&w);
        agent(&mut w);
        touch.set_mode(TouchMode::Hold {
            timeout: Duration::from_secs(20),
        });
        std::thread::scope(|scope| {
            let unlock = scope.spawn(|| w.run(&["unlock"], ""));
            assert!(touch.wait_for_request(Duration::from_secs(10)));
            stack.pull(0).unwrap();
            unlock.join().unwrap().fails_with(6, "removed");
        });
        locked(&w);
    });
}

#[test]
fn a_second_fido2_key_enrolls_with_a_touch_on_the_first_and_either_unlocks() {
    harness::run(
        &[
            fido(21_000_010, None, &[PinProtocol::Two]),
            fido(21_000_011, Some(PIN), &[PinProtocol::One, PinProtocol::Two]),
        ],
        |stack| {
            let (first, second) = (stack.key(0).touch(), stack.key(1).touch());
            let mut w = World::new();
            enroll(&w, &["--reader", "Virtual PCD 00 00", "--name", "one"], "");
            add_key(&w);
            // Both plugged in: the enrolled one is recognised and set aside, no option needed.
            let out = enroll(&w, &["--name", "two"], &format!("{PIN}\n"));
            assert!(out.contains("FIDO2 key \"two\""), "{out}");
            assert_eq!(first.touches(), 3, "one touch opened the keystore");
            assert_eq!(second.touches(), 2);
            let again = w.run(&["token", "add", "--fido2"], "");
            again.fails_with(6, "enrolled already");
            agent(&mut w);
            stack.pull(1).unwrap();
            w.run(&["unlock"], &format!("{PIN}\n")).ok();
            sign_and_verify(&w);
            w.run(&["lock"], "").ok();
            stack.insert(1).unwrap();
            stack.pull(0).unwrap();
            w.run(&["unlock"], &format!("{PIN}\n")).ok();
            assert_eq!(second.touches(), 3);
            sign_and_verify(&w);
        },
    );
}

#[test]
fn enrolling_without_a_fido2_key_present_says_what_to_do() {
    harness::run(&[piv_key(21_000_012)], |_stack| {
        let w = World::new();
        w.run(&["token", "add", "--fido2"], "")
            .fails_with(6, "insert a FIDO2 key");
        w.run(
            &["token", "add", "--fido2", "--reader", "No Such Reader"],
            "",
        )
        .fails_with(6, "no PC/SC reader is named");
    });
}

#[test]
fn a_keystore_with_a_piv_and_a_fido2_key_opens_with_either() {
    harness::run(
        &[
            piv_key(21_000_013),
            fido(21_000_014, None, &[PinProtocol::Two]),
        ],
        |stack| {
            let (piv, fido) = (stack.key(0).touch(), stack.key(1).touch());
            let mut w = World::new();
            let out = w.run(
                &["token", "add", "--piv", "--serial", "21000013"],
                "123456\n",
            );
            assert!(out.ok().contains("Enrolled YubiKey 21000013"), "{out:?}");
            add_key(&w);
            // The YubiKey's PIN opens the keystore (one touch on it), then two on the new key.
            enroll(&w, &["--name", "green"], "123456\n");
            assert_eq!((piv.touches(), fido.touches()), (1, 2));
            let list = w.run(&["token", "list"], "");
            let lines: Vec<&str> = list.ok().lines().collect();
            assert_eq!(lines.len(), 2, "{list:?}");
            let line = |kind: &str| *lines.iter().find(|l| l.contains(kind)).unwrap();
            assert!(line(" piv ").contains("serial 21000013"), "{list:?}");
            assert!(line(" fido2 ").contains(AAGUID_UUID), "{list:?}");
            agent(&mut w);

            stack.pull(1).unwrap();
            let out = w.run(&["unlock"], "123456\n");
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert_eq!(piv.touches(), 2);
            sign_and_verify(&w);
            w.run(&["lock"], "").ok();

            stack.insert(1).unwrap();
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], "123456\n");
            assert!(out.ok().contains("Unlocked"), "{out:?}");
            assert_eq!(fido.touches(), 3, "the FIDO2 key opened it, with one touch");
            let st = w.run(&["status"], "");
            assert!(st.ok().contains("FIDO2 key \"green\""), "{st:?}");
            sign_and_verify(&w);
        },
    );
}

/// Red-team round 24: a YubiKey 5 NFC is one PC/SC card with both applets. With its PIV applet
/// enrolled, `token add --fido2` of its FIDO2 applet touched the PIV side to open the
/// keystore, whose handle drops with a card reset, and the FIDO2 handle prepared before it
/// read that reset as the key "removed during the operation" (with "no enrolled token is
/// present" about the key being enrolled). A reset card is reconnected to.
#[test]
fn the_fido2_applet_of_the_piv_card_that_opens_the_keystore_enrolls() {
    let key = tapsign_vyk::Config {
        serial: 21_000_015,
        version: [5, 7, 1],
        ..tapsign_vyk::Config::with_fido2(tapsign_vyk::Fido2Config {
            aaguid: AAGUID,
            pin: None,
            pin_protocols: vec![PinProtocol::Two],
            ..tapsign_vyk::Fido2Config::default()
        })
    };
    harness::run(&[key], |stack| {
        let touch = stack.key(0).touch();
        let mut w = World::new();
        let out = w.run(
            &["token", "add", "--piv", "--serial", "21000015"],
            "123456\n",
        );
        assert!(out.ok().contains("Enrolled YubiKey 21000015"), "{out:?}");
        add_key(&w);
        let reader = stack.reader_name(0);
        let out = enroll(&w, &["--reader", &reader, "--name", "same"], "123456\n");
        assert!(out.contains("FIDO2 key \"same\""), "{out}");
        assert_eq!(
            touch.touches(),
            1 + 2,
            "the PIV side opens, the FIDO2 side enrolls"
        );
        let list = w.run(&["token", "list"], "");
        assert_eq!(list.ok().lines().count(), 2, "{list:?}");
        agent(&mut w);
        let out = w.run(&["unlock"], "123456\n");
        assert!(out.ok().contains("Unlocked"), "{out:?}");
        sign_and_verify(&w);
    });
}

/// Red-team round 24: an enrolled FIDO2 key that was reset holds no credential any more, and
/// was refused with "insert <that key>"; with it staying, every `keystore rotate` and `token
/// remove` of another token stopped on the same words. It is refused with what may have
/// happened and the `token remove` that takes its keyslot out.
#[test]
fn a_reset_fido2_key_names_the_token_remove_that_frees_the_keystore() {
    let key = || fido(21_000_017, None, &[PinProtocol::Two]);
    harness::run(&[piv_key(21_000_016), key()], |stack| {
        let mut w = World::new();
        w.run(
            &["token", "add", "--piv", "--serial", "21000016"],
            "123456\n",
        )
        .ok();
        add_key(&w);
        enroll(&w, &["--name", "reset-me"], "123456\n");
        let list = w.run(&["token", "list"], "");
        let fido_id = list
            .ok()
            .lines()
            .find(|l| l.contains(" fido2 "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        // The reset: a factory-fresh key (a new master key, no credential) in its reader.
        stack.pull(1).unwrap();
        let port = tapsign_vyk::harness::VPCD_PORT + 1;
        let _reset =
            tapsign_vyk::VirtualYubiKey::spawn(key(), ([127, 0, 0, 1], port).into()).unwrap();
        stack
            .wait_card(1, tapsign_vyk::CardState::Present, Duration::from_secs(10))
            .unwrap();
        let remove = format!("`tapsign token remove {fido_id}`");
        let out = w.run(&["keystore", "rotate"], "123456\n");
        out.fails_with(6, "holds no credential of this keystore");
        assert!(out.stderr.contains("it was reset"), "{out:?}");
        assert!(out.stderr.contains(&remove), "{out:?}");
        agent(&mut w);
        stack.pull(0).unwrap();
        let out = w.run(&["unlock"], "");
        out.fails_with(6, "wrong_token");
        assert!(out.stderr.contains(&remove), "{out:?}");
        // The way out it names works: removed with a touch on the YubiKey.
        stack.insert(0).unwrap();
        let out = w.run(&["token", "remove", &fido_id], "123456\n");
        assert!(out.ok().contains("Removed token"), "{out:?}");
    });
}

/// Red-team round 27, F3: a FIDO2 key enrolled without a PIN into a keystore a touch-always
/// YubiKey protects was said "Enrolled ... (uv discouraged)" and nothing more, while any
/// program running as the trader now opens the keystore, with no touch and no PIN, whenever
/// the key is plugged in: any keyslot opens the whole vault. It is warned of.
#[test]
fn a_fido2_key_without_a_pin_beside_a_touch_always_yubikey_is_warned_of() {
    harness::run(
        &[
            piv_key(21_270_010),
            fido(21_270_011, None, &[PinProtocol::Two]),
        ],
        |_| {
            let w = with_yubikey(21_270_010);
            let out = w.run(&["token", "add", "--fido2", "--name", "weak"], "123456\n");
            assert!(out.ok().contains("Enrolled FIDO2 key"), "{out:?}");
            for said in [
                "WARNING: FIDO2 key \"weak\" was enrolled without a PIN",
                "with no touch and no PIN",
                "only as strong as its weakest keyslot",
                "YubiKey 21270010",
            ] {
                assert!(out.stderr.contains(said), "{said}: {out:?}");
            }
        },
    );
}
