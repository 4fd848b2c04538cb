//! The YubiKey PIV token end to end: the real `tapsign` agent and CLI, the real `yubikey` and
//! `pcsc` code, a real private pcscd, and the project's virtual YubiKey (tests/vyk). Needs
//! root and the PC/SC packages; without them each test prints SKIPPED (and fails in CI, where
//! TAPSIGN_VYK_REQUIRE=1).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::Duration;

use tapsign_tests::World;
use tapsign_vyk::{Config, Stack, TouchMode, harness};

const PIN: &str = "123456\n";
const SECRET: &str = "piv-test-secret-0123456789";

fn fw(version: [u8; 3], serial: u32) -> Config {
    Config {
        version,
        serial,
        ..Config::default()
    }
}

/// A world whose agent refuses the soft token: only the YubiKey can open it.
fn agent(w: &mut World) {
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
}

/// [`agent`], pausing 1.5 s between the PIN check and the ECDH of each unlock
/// (`TAPSIGN_TEST_PIV_PAUSE_MS`, read by debug builds only): where another program's command
/// would land if the card were not held alone.
fn agent_pausing(w: &mut World) {
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
        c.env("TAPSIGN_TEST_PIV_PAUSE_MS", "1500");
    });
}

fn enroll(w: &World, extra: &[&str], stdin: &str) {
    let mut args = vec!["token", "add", "--piv"];
    args.extend_from_slice(extra);
    let out = w.run(&args, stdin);
    assert!(out.ok().contains("Enrolled YubiKey"), "{out:?}");
}

fn add_key(w: &World) {
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        &format!("piv-api-key\n{SECRET}\n"),
    )
    .ok();
}

fn full_flow(stack: &Stack) {
    let touch = stack.key(0).touch();
    let mut w = World::new();
    enroll(&w, &[], PIN);
    assert_eq!(touch.touches(), 0, "enrolling asks for no touch");
    add_key(&w);
    agent(&mut w);
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .fails_with(4, "locked");
    let out = w.run(&["unlock"], PIN);
    assert!(out.ok().contains("Unlocked 1 key(s): b."), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("Touch YubiKey {}", stack.key(0).serial())),
        "{out:?}"
    );
    assert_eq!(touch.touches(), 1, "one unlock, exactly one touch");
    w.signs_with("b", SECRET.as_bytes());
    let st = w.run(&["status", "--json"], "");
    assert!(
        st.ok()
            .contains(&format!("YubiKey {}", stack.key(0).serial())),
        "{st:?}"
    );
}

#[test]
fn piv_unlock_and_sign_on_a_3des_default_firmware() {
    harness::run(&[fw([5, 4, 3], 15_100_001)], full_flow);
}

#[test]
fn piv_unlock_and_sign_on_an_aes_default_firmware() {
    harness::run(&[fw([5, 7, 1], 15_100_002)], full_flow);
}

#[test]
fn a_refused_touch_is_touch_timeout_and_stays_locked() {
    harness::run(&[fw([5, 7, 1], 15_100_003)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent(&mut w);
        stack.key(0).touch().set_mode(TouchMode::Deny {
            after: Duration::from_millis(300),
        });
        w.run(&["unlock"], PIN).fails_with(6, "touch_timeout");
        assert!(
            w.run(&["status", "--json"], "")
                .ok()
                .contains("\"state\": \"locked\"")
        );
        w.run(
            &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
        .fails_with(4, "locked");
    });
}

#[test]
fn a_wrong_card_is_refused_without_asking_it_for_a_touch() {
    harness::run(
        &[fw([5, 7, 1], 15_100_004), fw([5, 7, 1], 15_100_005)],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--serial", "15100004"], PIN);
            add_key(&w);
            agent(&mut w);
            stack.pull(0).unwrap();
            let out = w.run(&["unlock"], PIN);
            out.fails_with(6, "wrong_token");
            assert!(
                out.stderr.contains("YubiKey 15100004"),
                "names the enrolled key: {out:?}"
            );
            assert_eq!(
                stack.key(1).touch().requests(),
                0,
                "the wrong card was never asked for a touch"
            );
        },
    );
}

#[test]
fn a_wrong_pin_says_how_many_tries_are_left() {
    harness::run(&[fw([5, 7, 1], 15_100_006)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent(&mut w);
        w.run(&["unlock"], "000000\n").fails_with(6, "2 tries left");
        assert_eq!(stack.key(0).touch().requests(), 0);
        w.run(&["unlock"], PIN).ok();
        w.run(&["lock"], "").ok();
        w.run(&["unlock"], "000000\n").fails_with(6, "2 tries left");
        w.run(&["unlock"], "000000\n").fails_with(6, "1 tries left");
        // tapsign never spends the last try (a bot could block the card), not even on a right
        // PIN: the trader resets the count with the card's own tools.
        let asked = stack.key(0).touch().requests();
        w.run(&["unlock"], "000000\n")
            .fails_with(6, "one PIN try left");
        w.run(&["unlock"], PIN).fails_with(6, "one PIN try left");
        assert_eq!(
            stack.key(0).touch().requests(),
            asked,
            "no touch asked past the guard"
        );
    });
}

#[test]
fn a_card_pulled_during_unlock_is_a_clear_error() {
    harness::run(&[fw([5, 7, 1], 15_100_012)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent(&mut w);
        let touch = stack.key(0).touch();
        touch.set_mode(TouchMode::Hold {
            timeout: Duration::from_secs(20),
        });
        std::thread::scope(|scope| {
            let unlock = scope.spawn(|| w.run(&["unlock"], PIN));
            assert!(
                touch.wait_for_request(Duration::from_secs(10)),
                "the unlock asked for a touch"
            );
            stack.pull(0).unwrap();
            let out = unlock.join().unwrap();
            out.fails_with(6, "removed");
        });
        assert!(
            w.run(&["status", "--json"], "")
                .ok()
                .contains("\"state\": \"locked\"")
        );
    });
}

#[test]
fn two_enrolled_keys_each_unlock_alone() {
    harness::run(
        &[fw([5, 4, 3], 15_100_007), fw([5, 7, 1], 15_100_008)],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--serial", "15100007"], PIN);
            add_key(&w);
            // The second enrollment opens the vault with the first key: one touch on it, with
            // its PIN; then the new card's PIN.
            enroll(&w, &["--serial", "15100008"], &format!("{PIN}{PIN}"));
            assert_eq!(stack.key(0).touch().touches(), 1);
            let list = w.run(&["token", "list"], "");
            assert_eq!(list.ok().lines().count(), 2, "{list:?}");
            agent(&mut w);

            stack.pull(1).unwrap();
            w.run(&["unlock"], PIN).ok();
            w.signs_with("b", SECRET.as_bytes());
            w.run(&["lock"], "").ok();

            stack.insert(1).unwrap();
            stack.pull(0).unwrap();
            let before = stack.key(1).touch().touches();
            w.run(&["unlock"], PIN).ok();
            assert_eq!(stack.key(1).touch().touches(), before + 1);
            w.signs_with("b", SECRET.as_bytes());
        },
    );
}

#[test]
fn pcscd_stopped_is_a_clear_error_and_the_agent_keeps_running() {
    harness::run(&[fw([5, 7, 1], 15_100_009)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent(&mut w);
        stack.stop_pcscd().unwrap();
        w.run(&["unlock"], PIN).fails_with(6, "pcscd");
        w.run(&["status"], "").ok();
    });
}

#[test]
fn enrolling_with_pcscd_stopped_fails_before_the_touch_that_opens_the_keystore() {
    // It used to ask for a touch of an enrolled token first, then fail on pcscd.
    harness::run(&[fw([5, 7, 1], 15_100_019)], |stack| {
        let w = World::new();
        w.run(&["token", "add", "--soft"], "").ok();
        stack.stop_pcscd().unwrap();
        let out = w.run(&["token", "add", "--piv"], PIN);
        out.fails_with(6, "pcscd");
        assert!(!out.stderr.contains("Touch"), "{out:?}");
    });
}

#[test]
fn other_pc_sc_clients_can_use_the_card_right_after_an_unlock() {
    harness::run_with_tools(
        &["yubico-piv-tool"],
        &[fw([5, 4, 3], 15_100_010)],
        |stack| {
            let mut w = World::new();
            enroll(&w, &[], PIN);
            add_key(&w);
            agent(&mut w);
            w.run(&["unlock"], PIN).ok();
            let out = std::process::Command::new("yubico-piv-tool")
                .args(["-r", &stack.reader_name(0), "-a", "status"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("15100010"));
        },
    );
}

#[test]
fn an_occupied_slot_needs_force_and_an_existing_key_can_be_adopted() {
    harness::run(&[fw([5, 7, 1], 15_100_011)], |_stack| {
        let w = World::new();
        enroll(&w, &[], PIN);
        let other = World::new();
        other
            .run(&["token", "add", "--piv"], PIN)
            .fails_with(6, "--force");
        let out = other.run(&["token", "add", "--piv", "--use-existing"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        // Same key, same public key: the two keystores name the same token.
        let a = w.run(&["token", "list"], "");
        let b = other.run(&["token", "list"], "");
        assert_eq!(a.ok(), b.ok());
    });
}

fn wait_locked(w: &World) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let st: serde_json::Value =
            serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
        if st["state"] == "locked" {
            return st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not locked: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pulling_the_yubikey_locks_and_another_card_unlocks_nothing() {
    harness::run(
        &[fw([5, 7, 1], 15_100_013), fw([5, 7, 1], 15_100_014)],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--serial", "15100013"], PIN);
            add_key(&w);
            agent(&mut w);
            stack.pull(1).unwrap();
            w.run(&["unlock"], PIN).ok();
            // The watcher picks the new session's reader up within its poll interval.
            let start = std::time::Instant::now();
            loop {
                let st: serde_json::Value =
                    serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
                let sources = st["lock_sources"].as_array().unwrap();
                let removal = sources
                    .iter()
                    .find(|s| s["name"] == "token removal")
                    .unwrap();
                if removal["live"] == true {
                    assert!(
                        removal["detail"].as_str().unwrap().contains("Virtual PCD"),
                        "{st}"
                    );
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "removal watch never went live: {st}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            w.signs_with("b", SECRET.as_bytes());

            stack.pull(0).unwrap();
            let st = wait_locked(&w);
            assert!(
                st["lock_reason"]
                    .as_str()
                    .unwrap()
                    .contains("token removed"),
                "{st}"
            );
            w.run(
                &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
                "",
            )
            .fails_with(4, "locked");
            assert!(w.run(&["audit"], "").ok().contains("token removed"));

            // Another card arriving, and the enrolled one coming back, open nothing by themselves.
            stack.insert(1).unwrap();
            stack.insert(0).unwrap();
            std::thread::sleep(Duration::from_millis(700));
            assert_eq!(wait_locked(&w)["state"], "locked");
            w.run(
                &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
                "",
            )
            .fails_with(4, "locked");
        },
    );
}

/// Red-team round 24: a slot whose key was regenerated (here by a `token add --piv --force` of
/// another keystore) was refused with "insert YubiKey N", the card in the reader, and no way
/// out. It says what happened and how to take the dead keyslot out, and still asks the card
/// for no touch.
#[test]
fn a_regenerated_slot_is_said_with_the_way_out() {
    harness::run(&[fw([5, 7, 1], 15_100_012)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent(&mut w);
        let list = w.run(&["token", "list"], "");
        let id = list.ok().split_whitespace().next().unwrap().to_owned();
        World::new()
            .run(&["token", "add", "--piv", "--force"], PIN)
            .ok();
        let out = w.run(&["unlock"], PIN);
        out.fails_with(6, "wrong_token");
        assert!(out.stderr.contains("regenerated or overwritten"), "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("run `tapsign token remove {id}`")),
            "{out:?}"
        );
        assert!(!out.stderr.contains("insert YubiKey"), "{out:?}");
        assert_eq!(stack.key(0).touch().requests(), 0, "no touch asked for");
    });
}

/// An ECDH with the P-256 generator as the peer point: a card that answers it `90 00` did a
/// private-key operation of the slot for whoever sent it. The keystore's own point (public,
/// in the keyslot file) would give the vault key's material the same way.
const ECDH_R1_WITH_G: &str = "0087118247 7C45 8200 8541 04\
    6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296\
    4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5 00";

/// Another program that sends ECDHs on the card in a loop on its own shared PC/SC handle, no
/// SELECT, no PIN, until `stop`: how many it sent, and how many the card served (`90 00`).
/// `brief`: it connects for each ECDH and lets go of the card after it (a program that only
/// looks at the card now and then), rather than keeping it open.
fn spin_ecdh(
    reader: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    brief: bool,
) -> (u32, u32) {
    use std::sync::atomic::Ordering;
    let apdu = hex::decode(ECDH_R1_WITH_G.replace(' ', "")).unwrap();
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new(reader).unwrap();
    let connect = || ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::T1);
    let mut card = connect().unwrap();
    let (mut sent, mut served) = (0, 0);
    let mut buf = [0u8; 258];
    while !stop.load(Ordering::SeqCst) {
        if brief {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
            std::thread::sleep(Duration::from_millis(20));
            card = loop {
                match connect() {
                    Ok(c) => break c,
                    Err(_) if !stop.load(Ordering::SeqCst) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return (sent, served),
                }
            };
        }
        sent += 1;
        match card.transmit(&apdu, &mut buf) {
            Ok([.., 0x90, 0x00]) => served += 1,
            Ok(_) => {}
            Err(pcsc::Error::ResetCard) => {
                let _ = card.reconnect(
                    pcsc::ShareMode::Shared,
                    pcsc::Protocols::T1,
                    pcsc::Disposition::LeaveCard,
                );
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    (sent, served)
}

/// The card's PIN-verified state is the card's, not a PC/SC handle's: the agent verified the
/// PIN and did the ECDH in separate transactions, and another program's ECDH sent in between
/// (no PIN of its own) was served, giving it the keystore's key (red-team round 26, F4). One
/// transaction was not enough: pcscd checks another handle's transaction before that handle's
/// command waits for the reader, so a command sent just before the transaction began ran inside
/// it, after the VERIFY (red-team round 26, recheck). So a PIN is used only on a card connected
/// to exclusively: while another program keeps the card open, the unlock is refused, within a
/// few seconds, and no PIN is sent (a wrong one here: the card still has all its tries).
#[test]
fn a_pin_is_not_used_while_another_program_has_the_card_open() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    harness::run(&[fw([5, 4, 3], 15_100_030)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent_pausing(&mut w);
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let (reader, stop) = (stack.reader_name(0), stop.clone());
            std::thread::spawn(move || spin_ecdh(reader, stop, false))
        };
        std::thread::sleep(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let out = w.run(&["unlock"], "999999\n");
        let took = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let (sent, served) = spinner.join().unwrap();
        out.fails_with(1, "YubiKey 15100030 is held by another program");
        assert!(out.stderr.contains("[busy]"), "{out:?}");
        assert!(out.stderr.contains("gpgconf --kill scdaemon"), "{out:?}");
        assert!(took < Duration::from_secs(10), "refused after {took:?}");
        assert!(sent > 2, "the other program kept trying ({sent} sent)");
        assert_eq!(served, 0, "the card served {served} of {sent} ECDHs");
        assert_eq!(pin_tries(&stack.reader_name(0)), 3, "the PIN was sent");
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s): b."), "{out:?}");
        w.signs_with("b", SECRET.as_bytes());
    });
}

/// Another program that opens the card for one ECDH at a time, over and over (no SELECT, no
/// PIN), is waited out for the moment the unlock needs the card alone, and none of its ECDHs
/// is served with the PIN the unlock verified, though the agent pauses between the PIN check
/// and the ECDH (a debug-build test hook).
#[test]
fn another_program_is_never_served_with_the_pin_an_unlock_verified() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    harness::run(&[fw([5, 4, 3], 15_100_032)], |stack| {
        let mut w = World::new();
        enroll(&w, &[], PIN);
        add_key(&w);
        agent_pausing(&mut w);
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..3)
            .map(|_| {
                let (reader, stop) = (stack.reader_name(0), stop.clone());
                std::thread::spawn(move || spin_ecdh(reader, stop, true))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let out = w.run(&["unlock"], PIN);
        stop.store(true, Ordering::SeqCst);
        let (mut sent, mut served) = (0, 0);
        for s in spinners {
            let (a, b) = s.join().unwrap();
            (sent, served) = (sent + a, served + b);
        }
        assert!(out.ok().contains("Unlocked 1 key(s): b."), "{out:?}");
        assert!(sent > 2, "the other program kept trying ({sent} sent)");
        assert_eq!(
            served, 0,
            "the card served {served} of {sent} ECDHs with the agent's PIN"
        );
        w.signs_with("b", SECRET.as_bytes());
    });
}

/// The PIN tries left on the card in `reader`, read without spending one.
fn pin_tries(reader: &str) -> u8 {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new(reader).unwrap();
    let card = ctx
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::T1)
        .unwrap();
    let mut buf = [0u8; 258];
    let select = hex::decode("00A4040005A000000308").unwrap();
    card.transmit(&select, &mut buf).unwrap();
    let answer = card
        .transmit(&[0x00, 0x20, 0x00, 0x80, 0x00], &mut buf)
        .unwrap();
    match answer {
        [0x63, sw] if sw & 0xF0 == 0xC0 => sw & 0x0F,
        other => panic!("PIN tries: {other:02X?}"),
    }
}

/// With PIN policy never the card serves any program's ECDH on the slot, given a touch: the
/// touch is the card's, not tapsign's. What the warning of `token add --piv --pin-policy
/// never` says, and the threat model with it (red-team round 26, F2).
#[test]
fn with_pin_policy_never_any_program_gets_the_ecdh_with_a_touch() {
    harness::run(&[fw([5, 4, 3], 15_100_031)], |stack| {
        let w = World::new();
        let out = w.run(&["token", "add", "--piv", "--pin-policy", "never"], PIN);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(
            out.stderr
                .contains("WARNING: this key's PIN policy is never: any program running as you"),
            "{out:?}"
        );
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let name = std::ffi::CString::new(stack.reader_name(0)).unwrap();
        let card = ctx
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::T1)
            .unwrap();
        let mut buf = [0u8; 258];
        let select = hex::decode("00A4040005A000000308").unwrap();
        assert!(
            card.transmit(&select, &mut buf)
                .unwrap()
                .ends_with(&[0x90, 0x00])
        );
        let ecdh = hex::decode(ECDH_R1_WITH_G.replace(' ', "")).unwrap();
        let answer = card.transmit(&ecdh, &mut buf).unwrap();
        assert!(answer.ends_with(&[0x90, 0x00]), "{answer:02X?}");
        assert_eq!(
            stack.key(0).touch().touches(),
            1,
            "the other program's touch"
        );
    });
}

/// Another program's GENERATE in R20 (no management key of its own), sent over and over on its
/// own shared handle, or connecting for each one, until `stop`: how many it sent, and how many
/// the card served (`90 00`: a key made with the management key tapsign authenticated with).
fn spin_generate(
    reader: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    brief: bool,
) -> (u32, u32) {
    use std::sync::atomic::Ordering;
    let apdu = hex::decode("004700950bac09800111aa0101ab010100").unwrap();
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new(reader).unwrap();
    let connect = || ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::T1);
    let (mut sent, mut served) = (0, 0);
    let mut buf = [0u8; 258];
    while !stop.load(Ordering::SeqCst) {
        let Ok(card) = connect() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        loop {
            sent += 1;
            match card.transmit(&apdu, &mut buf) {
                Ok([.., 0x90, 0x00] | [.., 0x61, _]) => served += 1,
                Ok(_) => {}
                Err(_) => break,
            }
            if brief || stop.load(Ordering::SeqCst) {
                break;
            }
        }
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        if brief {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (sent, served)
}

/// `token add --piv --custom-mgm-key` authenticated with the management key in one transaction
/// and generated in another, on a shared connection: another program's GENERATE (or IMPORT, or
/// SET MANAGEMENT KEY) sent in between was served as authenticated, with no key of its own
/// (red-team round 26, recheck, finding 2). Now the authentication and GENERATE run on the card
/// held alone: with another program keeping the card open the enrollment is refused (`busy`),
/// and with one that opens it now and then, none of its GENERATEs is served.
#[test]
fn the_management_key_session_is_held_alone() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    const KEY: &str = "112233445566778811223344556677881122334455667788";
    harness::run_with_tools(
        &["yubico-piv-tool"],
        &[fw([5, 4, 3], 15_100_033)],
        |stack| {
            let reader = stack.reader_name(0);
            let set = std::process::Command::new("yubico-piv-tool")
                .args(["-r", &reader, "-a", "set-mgm-key", "-n", KEY])
                .output()
                .unwrap();
            assert!(set.status.success(), "{set:?}");
            let w = World::new();
            let out = w.run(&["token", "add", "--piv"], PIN);
            out.fails_with(6, "management key is not the factory default");
            let wrong = format!("{PIN}{}\n", "00".repeat(24));
            let out = w.run(&["token", "add", "--piv", "--custom-mgm-key"], &wrong);
            out.fails_with(6, "refused that management key");

            let stop = Arc::new(AtomicBool::new(false));
            let kept = {
                let (reader, stop) = (reader.clone(), stop.clone());
                std::thread::spawn(move || spin_generate(reader, stop, false))
            };
            std::thread::sleep(Duration::from_millis(200));
            // token add checks the PIN whatever the policy, in the same hold as the management
            // key: the hold is refused before either is sent.
            let out = w.run(
                &[
                    "token",
                    "add",
                    "--piv",
                    "--pin-policy",
                    "never",
                    "--custom-mgm-key",
                ],
                &format!("{PIN}{KEY}\n"),
            );
            stop.store(true, Ordering::SeqCst);
            let (sent, served) = kept.join().unwrap();
            out.fails_with(1, "is held by another program");
            assert!(sent > 2, "the other program kept trying ({sent} sent)");
            assert_eq!(served, 0, "the card served {served} of {sent} GENERATEs");

            let stop = Arc::new(AtomicBool::new(false));
            let brief: Vec<_> = (0..3)
                .map(|_| {
                    let (reader, stop) = (reader.clone(), stop.clone());
                    std::thread::spawn(move || spin_generate(reader, stop, true))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(200));
            let right = format!("{PIN}{KEY}\n");
            let out = w.run(&["token", "add", "--piv", "--custom-mgm-key"], &right);
            stop.store(true, Ordering::SeqCst);
            let (mut sent, mut served) = (0, 0);
            for s in brief {
                let (a, b) = s.join().unwrap();
                (sent, served) = (sent + a, served + b);
            }
            assert!(out.ok().contains("Enrolled"), "{out:?}");
            assert!(sent > 2, "the other program kept trying ({sent} sent)");
            assert_eq!(served, 0, "the card served {served} of {sent} GENERATEs");
            add_key(&w);
            let mut w = w;
            agent(&mut w);
            let out = w.run(&["unlock"], PIN);
            assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        },
    );
}
