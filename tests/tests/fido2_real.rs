//! On a real FIDO2 key, over USB HID (ctap-hid-fido2) or an NFC reader (the host's own
//! pcscd). Runs only when `TAPSIGN_TEST_FIDO2_DEVICE` names the key: a hidraw path
//! (`/dev/hidraw3`) or a PC/SC reader name. With `TAPSIGN_TEST_FIDO2_PIN` set, the key's PIN,
//! the keyslot is enrolled with `--uv required`. It makes one non-discoverable credential
//! (nothing is stored on the key) and needs a human: the steps are printed as it goes
//! (firmware-notes/real-hardware-checklist.md).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use tapsign_tests::World;

const SECRET: &str = "real-fido2-secret";

#[test]
fn a_real_fido2_key_enrolls_unlocks_signs_and_locks_when_pulled() {
    let Some(device) = tapsign_tests::skip::opted_in(
        "TAPSIGN_TEST_FIDO2_DEVICE",
        "a hidraw path or a PC/SC reader name to run on a real FIDO2 key (see firmware-notes/real-hardware-checklist.md)",
    ) else {
        return;
    };
    let pin = std::env::var("TAPSIGN_TEST_FIDO2_PIN").ok();
    let stdin = pin.as_ref().map(|p| format!("{p}\n")).unwrap_or_default();
    let place = if device.starts_with('/') {
        "--device"
    } else {
        "--reader"
    };
    let uv = if pin.is_some() {
        "required"
    } else {
        "discouraged"
    };
    let mut w = World::new();
    eprintln!(">>> touch the key twice when it blinks (enrollment)");
    let out = w.run(
        &[
            "token", "add", "--fido2", place, &device, "--name", "real", "--uv", uv,
        ],
        &stdin,
    );
    assert!(out.ok().contains("Enrolled FIDO2 key \"real\""), "{out:?}");
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        &format!("real-fido2-api-key\n{SECRET}\n"),
    )
    .ok();
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
    eprintln!(">>> touch the key when it blinks (unlock 1 of 2)");
    w.run(&["unlock", "--ttl", "5m"], &stdin).ok();
    w.signs_with("b", SECRET.as_bytes());
    w.run(&["lock"], "").ok();
    // Over NFC the tap itself is the user's presence: there is no touch to withhold.
    if place == "--device" {
        eprintln!(">>> do NOT touch the key this time: the unlock must time out (about 30 s)");
        w.run(&["unlock"], &stdin).fails_with(6, "touch_timeout");
    }
    eprintln!(
        ">>> touch the key when it blinks (unlock 2 of 2), then unplug it or take it off the reader"
    );
    w.run(&["unlock", "--ttl", "5m"], &stdin).ok();
    w.signs_with("b", SECRET.as_bytes());
    let start = Instant::now();
    loop {
        let st: serde_json::Value =
            serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
        if st["state"] == "locked" {
            assert!(
                st["lock_reason"]
                    .as_str()
                    .unwrap()
                    .contains("token removed"),
                "{st}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the session stayed open after the key left: {st}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
