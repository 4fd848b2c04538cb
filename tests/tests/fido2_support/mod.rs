//! Shared steps of the FIDO2 end-to-end tests.
#![allow(clippy::unwrap_used, dead_code)] // each test binary uses part of it

use std::time::{Duration, Instant};

use tapsign_tests::World;
use tapsign_vyk::{Config, Fido2Config, PinProtocol, Stack};

pub const PIN: &str = "314159";
pub const SECRET: &str = "fido2-test-secret-0123456789";
pub const AAGUID: [u8; 16] = *b"tapsign-e2e-fido";
/// [`AAGUID`] as tapsign prints it.
pub const AAGUID_UUID: &str = "74617073-6967-6e2d-6532-652d6669646f";

/// A FIDO2-only key (no PIV applet), with a PIN or none, offering `protocols`.
pub fn fido(serial: u32, pin: Option<&str>, protocols: &[PinProtocol]) -> Config {
    Config {
        serial,
        ..Config::fido2_only(Fido2Config {
            aaguid: AAGUID,
            pin: pin.map(str::to_owned),
            pin_protocols: protocols.to_vec(),
            ..Fido2Config::default()
        })
    }
}

/// A YubiKey 5 with PIV only.
pub fn piv_key(serial: u32) -> Config {
    Config {
        serial,
        version: [5, 7, 1],
        ..Config::default()
    }
}

/// `token add --fido2 EXTRA` with `stdin`; returns stdout.
pub fn enroll(w: &World, extra: &[&str], stdin: &str) -> String {
    let mut args = vec!["token", "add", "--fido2"];
    args.extend_from_slice(extra);
    let out = w.run(&args, stdin);
    assert!(out.ok().contains("Enrolled FIDO2 key"), "{out:?}");
    out.stdout
}

/// A world with the YubiKey `serial` enrolled (its PIN 123456) and a Binance key stored.
pub fn with_yubikey(serial: u32) -> World {
    let w = World::new();
    let out = w.run(
        &["token", "add", "--piv", "--serial", &serial.to_string()],
        "123456\n",
    );
    assert!(out.ok().contains("Enrolled"), "{out:?}");
    add_key(&w);
    w
}

/// The id `token list` gives the token whose line holds `needle` (a serial, a label).
pub fn id_with(w: &World, needle: &str) -> String {
    let list = w.run(&["token", "list"], "");
    list.ok()
        .lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no token {needle} in {list:?}"))
        .to_owned()
}

pub fn add_key(w: &World) {
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        &format!("fido2-api-key\n{SECRET}\n"),
    )
    .ok();
}

/// Start the agent without the soft token: only real (virtual) keys open it.
pub fn agent(w: &mut World) {
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
}

pub fn sign_and_verify(w: &World) {
    w.signs_with("b", SECRET.as_bytes());
}

/// The agent is locked now, and signs nothing.
pub fn locked(w: &World) {
    assert_eq!(w.status()["state"], "locked");
    w.run(&["sign", "b", "--method", "GET", "--path", "/x"], "")
        .fails_with(4, "locked");
}

/// Wait (up to 10 s) until the agent says it is locked; returns its status.
pub fn wait_locked(w: &World) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let st = w.status();
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

/// Wait until the removal watch follows `reader` (it picks a new session up within its poll).
pub fn wait_removal_watch(w: &World, reader: &str) {
    let start = Instant::now();
    loop {
        let st = w.status();
        let sources = st["lock_sources"].as_array().unwrap();
        let removal = sources
            .iter()
            .find(|s| s["name"] == "token removal")
            .unwrap();
        if removal["live"] == true {
            assert!(removal["detail"].as_str().unwrap().contains(reader), "{st}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "removal watch never went live: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Unplug key 0 and plug it back in: a power cycle.
pub fn replug(stack: &Stack) {
    stack.pull(0).unwrap();
    stack.insert(0).unwrap();
}
