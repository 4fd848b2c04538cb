//! On a real YubiKey, through the host's own pcscd. Runs only when
//! `TAPSIGN_TEST_YUBIKEY_SERIAL` names the key to use (see
//! firmware-notes/real-hardware-checklist.md): it generates a key in a retired slot of that
//! YubiKey (default R20, `TAPSIGN_TEST_YUBIKEY_SLOT` to change), overwriting what is there,
//! and needs a human to touch the key twice.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;

#[test]
fn a_real_yubikey_enrolls_unlocks_and_signs() {
    let Some(serial) = tapsign_tests::skip::opted_in(
        "TAPSIGN_TEST_YUBIKEY_SERIAL",
        "run on a real YubiKey (it writes a slot; see firmware-notes/real-hardware-checklist.md)",
    ) else {
        return;
    };
    let slot = std::env::var("TAPSIGN_TEST_YUBIKEY_SLOT").unwrap_or_else(|_| "R20".into());
    let pin = std::env::var("TAPSIGN_TEST_YUBIKEY_PIN").unwrap_or_else(|_| "123456".into());
    let mut w = World::new();
    let out = w.run(
        &[
            "token", "add", "--piv", "--serial", &serial, "--slot", &slot, "--force",
        ],
        &format!("{pin}\n"),
    );
    assert!(out.ok().contains(&format!("YubiKey {serial}")), "{out:?}");
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        "real-test-api-key\nreal-test-secret\n",
    )
    .ok();
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
    eprintln!(">>> touch YubiKey {serial} when it blinks (1 of 2)");
    w.run(&["unlock", "--ttl", "5m"], &format!("{pin}\n")).ok();
    w.signs_with("b", b"real-test-secret");
    w.run(&["lock"], "").ok();
    eprintln!(">>> do NOT touch YubiKey {serial} this time: the unlock must time out");
    w.run(&["unlock"], &format!("{pin}\n"))
        .fails_with(6, "touch_timeout");
    eprintln!(">>> touch YubiKey {serial} when it blinks (2 of 2)");
    w.run(&["unlock", "--ttl", "5m"], &format!("{pin}\n")).ok();
}
