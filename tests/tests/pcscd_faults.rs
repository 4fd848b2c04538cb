//! pcscd dies while an unlock waits on the YubiKey: the unlock fails at once with a token
//! error that says what happened, the agent keeps serving, and once pcscd is back an unlock
//! works. Through the real agent and CLI, a private pcscd and the virtual YubiKey
//! (tests/vyk); needs root and the PC/SC packages (skips otherwise, fails in CI).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use tapsign_tests::World;
use tapsign_vyk::{Config, TouchMode, harness};

const PIN: &str = "123456\n";
const SECRET: &str = "pcscd-fault-secret";

/// A virtual YubiKey on firmware 5.7.1 with `serial`.
fn yubikey(serial: u32) -> Config {
    Config {
        version: [5, 7, 1],
        serial,
        ..Config::default()
    }
}

/// A home with the YubiKey enrolled and one key stored, and its agent started without the
/// soft token: only the YubiKey opens it.
fn enrolled_with_agent() -> World {
    let mut w = World::new();
    let enrolled = w.run(&["token", "add", "--piv"], PIN);
    assert!(enrolled.ok().contains("Enrolled"), "{enrolled:?}");
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        &format!("ak\n{SECRET}\n"),
    )
    .ok();
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
    w
}

#[test]
fn pcscd_killed_mid_unlock_fails_the_unlock_at_once_and_a_restarted_pcscd_unlocks() {
    harness::run(&[yubikey(15_100_060)], |stack| {
        let w = enrolled_with_agent();
        let touch = stack.key(0).touch();
        touch.set_mode(TouchMode::Hold {
            timeout: Duration::from_secs(30),
        });
        let (out, after_kill) = std::thread::scope(|s| {
            let unlock = s.spawn(|| w.run(&["unlock"], PIN));
            // The agent is inside the unwrap, the card waits for the touch: kill pcscd now.
            assert!(
                touch.wait_for_request(Duration::from_secs(15)),
                "the unlock never reached the card: {}",
                w.agent_log()
            );
            stack.kill_pcscd().unwrap();
            let killed = Instant::now();
            let out = unlock.join().unwrap();
            (out, killed.elapsed())
        });
        touch.cancel();
        assert!(
            after_kill < Duration::from_secs(10),
            "the unlock hung {after_kill:?} after pcscd died"
        );
        out.fails_with(6, "[token_absent]");
        assert!(
            out.stderr.contains("pcscd") || out.stderr.contains("removed"),
            "the message does not say what happened: {out:?}"
        );
        // The agent is still there, and locked.
        let st: serde_json::Value =
            serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
        assert_eq!(st["state"], "locked", "{st}");

        stack.start_pcscd().unwrap();
        touch.set_mode(TouchMode::Approve);
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        w.signs_with("b", SECRET.as_bytes());
    });
}

/// Another program (gpg's scdaemon, say) holds the card exclusively: the unlock says so and
/// answers `busy` (close that program and try again), not `internal`, nor `token_absent` ("insert
/// the key", of a key sitting in the reader: red-team round 26, recheck), and works once the
/// card is free again.
#[test]
fn a_card_held_by_another_program_is_busy_and_says_so() {
    harness::run(&[yubikey(15_100_061)], |stack| {
        let w = enrolled_with_agent();
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let reader = std::ffi::CString::new(stack.reader_name(0)).unwrap();
        let held = ctx
            .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
            .unwrap();
        let out = w.run(&["unlock"], PIN);
        out.fails_with(1, "held by another program");
        assert!(out.stderr.contains("gpgconf --kill scdaemon"), "{out:?}");
        assert!(out.stderr.contains("[busy]"), "{out:?}");
        drop(held);
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}

/// Another program holds a PC/SC transaction on the card and keeps it: the unlock is refused
/// within seconds, with `busy`, what to do, and "Do not touch" after the touch prompt. pcscd makes a
/// connect wait for the transaction to end, and libpcsclite a transaction's begin, with no
/// bound: the unlock waited silently after "Touch ... when it blinks" for as long as the other
/// program held it (red-team round 26, recheck, finding 3).
#[test]
fn a_card_another_program_holds_a_transaction_on_is_busy_not_a_silent_wait() {
    use std::sync::mpsc;
    harness::run(&[yubikey(15_100_062)], |stack| {
        let w = enrolled_with_agent();
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = {
            let reader = stack.reader_name(0);
            let (held, release) = (held.0, release.1);
            std::thread::spawn(move || {
                let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
                let name = std::ffi::CString::new(reader).unwrap();
                let mut card = ctx
                    .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
                    .unwrap();
                let tx = card.transaction().unwrap();
                held.send(()).unwrap();
                let _ = release.recv_timeout(Duration::from_secs(60));
                drop(tx);
            })
        };
        held.1.recv().unwrap();
        let started = std::time::Instant::now();
        let out = w.run(&["unlock"], PIN);
        let took = started.elapsed();
        let _ = release.0.send(());
        holder.join().unwrap();
        out.fails_with(1, "held by another program");
        assert!(out.stderr.contains("[busy]"), "{out:?}");
        assert!(
            !out.stderr.contains("Touch") || out.stderr.contains("Do not touch"),
            "{out:?}"
        );
        assert!(took < Duration::from_secs(15), "refused after {took:?}");
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}

/// Finding which YubiKey an unlock is for (the CLI's probe before the PIN prompt: its serial,
/// its slot's public key) needs no PIN, and lets go of the card without resetting it: another
/// program with the card open (a PIV middleware, gpg's scdaemon) carries on with its next
/// command. The probe's handles were dropped, and a dropped handle resets the card, so that
/// program's next command failed with "card reset" and it had to reconnect (red-team round 24
/// left it). Its PIN state is another matter: the probe's SELECT of the PIV applet clears it,
/// as any program's does on a real YubiKey.
#[test]
fn the_probe_that_finds_the_yubikey_does_not_reset_the_card_under_another_program() {
    harness::run(&[yubikey(15_100_062)], |stack| {
        // A key stored: with none, unlock stops at "no key to open" before it looks for the
        // token, and this test could not fail.
        let w = enrolled_with_agent();
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let reader = std::ffi::CString::new(stack.reader_name(0)).unwrap();
        let other = ctx
            .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .unwrap();
        let apdu = |cmd: &[u8]| -> Result<Vec<u8>, pcsc::Error> {
            let mut buf = [0u8; 258];
            other.transmit(cmd, &mut buf).map(<[u8]>::to_vec)
        };
        let select = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
        assert!(apdu(&select).unwrap().ends_with(&[0x90, 0x00]));
        let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
        verify.extend_from_slice(b"123456\xff\xff");
        assert_eq!(apdu(&verify).unwrap(), [0x90, 0x00]);

        // The CLI finds the token (no PIN, no touch), then finds no PIN on stdin: it stops
        // before the agent touches the card.
        let out = w.run(&["unlock"], "");
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains("PIN"),
            "the token was not looked for: {out:?}"
        );
        assert!(!out.stderr.contains("Touch"), "{out:?}");

        // The other program's handle still works: no "card reset", no reconnect. Its PIN
        // state went with the probe's SELECT; verifying again needs nothing more.
        assert!(apdu(&select).unwrap().ends_with(&[0x90, 0x00]));
        assert_eq!(apdu(&verify).unwrap(), [0x90, 0x00]);
        let probe = [0x00, 0x20, 0x00, 0x80];
        assert_eq!(apdu(&probe).unwrap(), [0x90, 0x00]);
    });
}

/// Red-team round 26, T1: pcscd stopped (SIGSTOP) or hung. pcsc-lite's client waits for its
/// answers with no timeout, so the removal watcher's SCardGetStatusChange never came back: a
/// token pulled meanwhile was not seen, the session stayed open for as long as pcscd was
/// stopped, and `status` said "watching". The session now locks once a PC/SC call has waited
/// 3 s, and `status` says pcscd does not answer.
#[test]
fn a_stopped_pcscd_locks_the_session_and_status_says_removal_is_not_watched() {
    harness::run(&[yubikey(15_100_063)], |stack| {
        let w = enrolled_with_agent();
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        let removal = |st: &serde_json::Value| tapsign_tests::lock_source(st, "token removal");
        w.wait_for_status("the reader watched", Duration::from_secs(5), |st| {
            removal(st)["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("watching PC/SC reader")
        });

        let paused = stack.pause_pcscd().unwrap();
        let stopped = Instant::now();
        stack.key(0).pull();
        let st = w.wait_for_status("locked", Duration::from_secs(10), |st| {
            st["state"] == "locked"
        });
        let after = stopped.elapsed();
        assert!(
            after < Duration::from_millis(4500),
            "locked {after:?} after pcscd stopped"
        );
        let why = st["lock_reason"].as_str().unwrap_or_default();
        assert!(why.contains("pcscd has not answered"), "{why}");
        let src = removal(&st);
        assert_eq!(src["live"], false, "{src}");
        assert!(
            src["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("pcscd has not answered"),
            "{src}"
        );

        drop(paused);
        stack.insert(0).unwrap();
        let st = w.wait_for_status("pcscd answering again", Duration::from_secs(10), |st| {
            removal(st)["live"] == true
        });
        assert_eq!(st["state"], "locked", "{st}");
        // pcscd, resumed, may still be settling the reader's state: an unlock works within
        // a few tries.
        let mut out = w.run(&["unlock"], PIN);
        for _ in 0..5 {
            if out.code == 0 {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            out = w.run(&["unlock"], PIN);
        }
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}
