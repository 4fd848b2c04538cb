//! An independent CTAP2 client judges the FIDO2 applet: python-fido2 (pinned in
//! scripts/python-env) over PC/SC, through the real pcscd and vpcd, registers a credential
//! with hmac-secret and evaluates it, sets and changes a PIN, and runs into the retry limits.
//! When python-fido2 and the applet disagree, the applet is what gets fixed.
//!
//! The script (`fido2_fidelity.py`) only reports what the client saw; the assertions are here.

// Helpers outside #[test] fns panic on purpose too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tapsign_vyk::{Config, Fido2Config, PinProtocol, Stack, TouchMode, harness};

const READER: &str = "Virtual PCD 00 00";
/// CTAP status codes the client reports.
const PIN_INVALID: u64 = 0x31;
const PIN_AUTH_BLOCKED: u64 = 0x34;
const NOT_ALLOWED: u64 = 0x30;

/// The pinned venv's python, made (or reused) by scripts/python-env; `None` (after a skip)
/// if it cannot be had. Runs in the parent test process, before the network namespace.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = match std::env::var_os("TAPSIGN_VENV") {
        Some(v) if Path::new(&v).join("bin/python").is_file() => PathBuf::from(v),
        _ => {
            let out = Command::new(root.join("scripts/python-env")).output();
            match out {
                Ok(o) if o.status.success() => {
                    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                }
                Ok(o) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    tapsign_skip::skip(&format!("scripts/python-env failed: {err}"));
                    return None;
                }
                Err(e) => {
                    tapsign_skip::skip(&format!("cannot run scripts/python-env: {e}"));
                    return None;
                }
            }
        }
    };
    let python = venv.join("bin/python");
    let probe = Command::new(&python)
        .args(["-c", "import fido2.pcsc, smartcard"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        tapsign_skip::skip(&format!(
            "{} lacks fido2/pyscard (scripts/python-env installs them)",
            python.display()
        ));
        return None;
    }
    Some(python)
}

/// Runs one scenario of the script against reader 0 and parses its report.
fn scenario(stack: &Stack, python: &Path, name: &str, pin: Option<&str>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fido2_fidelity.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).args([name, READER]);
    if let Some(pin) = pin {
        cmd.arg(pin);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-fido2 scenario {name} failed ({}):\n{stdout}\n{}\n--- pcscd ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stack.pcscd_log()
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Runs `f` while a user touches whenever the key asks (after a short delay), so requests
/// go through NFCCTAP_GETRESPONSE's `91 00` status updates rather than an instant approval.
fn with_patient_user<T>(stack: &Stack, f: impl FnOnce() -> T) -> T {
    let touch = stack.key(0).touch();
    touch.set_mode(TouchMode::Hold {
        timeout: Duration::from_secs(20),
    });
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if touch.wait_for_request(Duration::from_millis(50)) {
                    std::thread::sleep(Duration::from_millis(150));
                    touch.touch();
                }
            }
        });
        let result = f();
        done.store(true, Ordering::SeqCst);
        result
    })
}

fn hex_of<'a>(report: &'a Value, key: &str, output: &str) -> &'a str {
    report[key][output]
        .as_str()
        .unwrap_or_else(|| panic!("{key}.{output} missing: {report}"))
}

fn fido2(pin: Option<&str>, protocols: Vec<PinProtocol>, ctap21: bool) -> Config {
    Config::fido2_only(Fido2Config {
        aaguid: *b"vyk-fidelity-aag",
        pin: pin.map(str::to_owned),
        pin_protocols: protocols,
        ctap21,
        ..Fido2Config::default()
    })
}

/// Checks the hmac-secret outputs of one `hmac` report: deterministic per salt, different
/// per salt, two salts at once, and (with a PIN) a different secret under UV.
fn check_hmac(report: &Value, with_uv: bool) {
    assert_eq!(report["hmac_create_secret"], true, "{report}");
    let s1 = hex_of(report, "salt1", "output1");
    assert_eq!(s1.len(), 64);
    assert_eq!(s1, hex_of(report, "salt1_again", "output1"), "same salt");
    let s2 = hex_of(report, "salt2", "output1");
    assert_ne!(s1, s2, "different salts");
    assert_eq!(hex_of(report, "both", "output1"), s1);
    assert_eq!(hex_of(report, "both", "output2"), s2);
    // Every evaluation was a touch-confirmed assertion without UV: UP set, UV clear.
    assert_eq!(report["salt1"]["flags"].as_u64().unwrap() & 0x05, 0x01);
    if with_uv {
        let uv = hex_of(report, "salt1_uv", "output1");
        assert_ne!(uv, s1, "UV and no-UV secrets must differ");
        assert_eq!(uv, hex_of(report, "salt1_uv_again", "output1"));
        assert_eq!(report["salt1_uv"]["flags"].as_u64().unwrap() & 0x05, 0x05);
    }
}

#[test]
fn python_fido2_registers_and_evaluates_hmac_secret_without_a_pin() {
    let Some(python) = python() else { return };
    let key = fido2(None, vec![PinProtocol::Two, PinProtocol::One], true);
    harness::run(&[key], |stack| {
        let report = with_patient_user(stack, || scenario(stack, &python, "hmac", None));
        check_hmac(&report, false);
        assert_eq!(
            report["versions"],
            serde_json::json!(["FIDO_2_0", "FIDO_2_1"])
        );
        assert_eq!(report["pin_uv_protocols"], serde_json::json!([2, 1]));
        assert_eq!(report["aaguid"], hex(b"vyk-fidelity-aag"));
        assert_eq!(report["pin_requests"], 0);
        // One touch to register and one per evaluation; the client's up=false preflights
        // (allowList filtering) took none.
        assert_eq!(stack.key(0).touch().touches(), 5);
    });
}

#[test]
fn python_fido2_uv_secret_differs_with_a_pin_on_protocol_two() {
    let Some(python) = python() else { return };
    let key = fido2(
        Some("246810"),
        vec![PinProtocol::Two, PinProtocol::One],
        true,
    );
    harness::run(&[key], |stack| {
        let report = scenario(stack, &python, "hmac", Some("246810"));
        check_hmac(&report, true);
        assert_eq!(report["pin_requests"], 2, "one PIN per UV evaluation");
    });
}

#[test]
fn python_fido2_on_an_older_key_with_protocol_one_only() {
    let Some(python) = python() else { return };
    let key = fido2(Some("1357"), vec![PinProtocol::One], false);
    harness::run(&[key], |stack| {
        let report = scenario(stack, &python, "hmac", Some("1357"));
        assert_eq!(report["versions"], serde_json::json!(["FIDO_2_0"]));
        assert_eq!(report["pin_uv_protocols"], serde_json::json!([1]));
        check_hmac(&report, true);
    });
}

#[test]
fn python_fido2_sets_changes_and_counts_pin_retries() {
    let Some(python) = python() else { return };
    let key = fido2(None, vec![PinProtocol::Two, PinProtocol::One], true);
    harness::run(&[key], |stack| {
        let r = scenario(stack, &python, "pin", None);
        assert_eq!(r["client_pin_before"], false, "{r}");
        assert_eq!(r["client_pin_after"], true);
        assert_eq!(r["retries_fresh"], 8);
        assert_eq!(r["wrong"], PIN_INVALID);
        assert_eq!(r["retries_after_wrong"], 7);
        assert_eq!(r["right_v2"], 32, "a 32-byte token over protocol 2");
        assert_eq!(r["retries_after_right"], 8);
        assert_eq!(r["right_v1_legacy"], 32, "and over protocol 1");
        assert_eq!(r["set_again"], NOT_ALLOWED);
        assert_eq!(r["change_wrong_old"], PIN_INVALID);
        assert_eq!(r["old_after_change"], PIN_INVALID);
        assert_eq!(r["new_after_change"], 32);
        assert_eq!(r["retries_end"], 8);
    });
}

#[test]
fn three_wrong_pins_need_a_replug_which_keeps_the_retry_count() {
    let Some(python) = python() else { return };
    let key = fido2(Some("8642"), vec![PinProtocol::Two, PinProtocol::One], true);
    harness::run(&[key], |stack| {
        let r = scenario(stack, &python, "blocked", Some("8642"));
        let codes = [PIN_INVALID, PIN_INVALID, PIN_AUTH_BLOCKED, PIN_AUTH_BLOCKED];
        assert_eq!(r["codes"], serde_json::json!(codes), "{r}");
        assert_eq!(r["retries"], 5, "the blocked fourth try cost nothing");
        assert_eq!(r["power_cycle"], true);
        assert_eq!(
            r["right"], PIN_AUTH_BLOCKED,
            "even the right PIN waits for a re-plug"
        );
        stack.pull(0).unwrap();
        stack.insert(0).unwrap();
        let r = scenario(stack, &python, "replugged", Some("8642"));
        assert_eq!(r["retries"], 5, "retries persist across the re-plug: {r}");
        assert_eq!(r["power_cycle"], false);
        assert_eq!(r["right"], 0);
        assert_eq!(r["retries_after"], 8);
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
