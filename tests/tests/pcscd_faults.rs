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

#[test]
fn pcscd_killed_mid_unlock_fails_the_unlock_at_once_and_a_restarted_pcscd_unlocks() {
    let key = Config {
        version: [5, 7, 1],
        serial: 15_100_060,
        ..Config::default()
    };
    harness::run(&[key], |stack| {
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
/// answers `token_absent` (the token cannot be reached), not `internal`, and works once the
/// card is free again.
#[test]
fn a_card_held_by_another_program_is_token_absent_and_says_so() {
    let key = Config {
        version: [5, 7, 1],
        serial: 15_100_061,
        ..Config::default()
    };
    harness::run(&[key], |stack| {
        let mut w = World::new();
        w.run(&["token", "add", "--piv"], PIN).ok();
        w.run(
            &["key", "add", "b", "--exchange", "binance"],
            &format!("ak\n{SECRET}\n"),
        )
        .ok();
        w.start_agent_with(|c| {
            c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
        });
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let reader = std::ffi::CString::new(stack.reader_name(0)).unwrap();
        let held = ctx
            .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
            .unwrap();
        let out = w.run(&["unlock"], PIN);
        out.fails_with(6, "held exclusively by another program");
        assert!(out.stderr.contains("[token_absent]"), "{out:?}");
        drop(held);
        let out = w.run(&["unlock"], PIN);
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}
