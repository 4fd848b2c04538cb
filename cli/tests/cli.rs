//! The command line's own contract: help that teaches, usage errors with exit code 2.
//! (This test also makes cargo build the `tapsign` binary the end-to-end tests drive.)
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

fn tapsign(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapsign"))
        .args(args)
        .env("TAPSIGN_HOME", "/nonexistent-tapsign-home")
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let out = tapsign(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "agent",
        "token",
        "key",
        "unlock",
        "sign",
        "status",
        "lock",
        "audit",
        "Exit codes",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
}

#[test]
fn secrets_are_never_taken_from_argv() {
    // `key add` has no flag that takes a secret: an extra argument is a usage error.
    let out = tapsign(&["key", "add", "k", "--exchange", "upbit", "--secret", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_exchange_is_a_usage_error_naming_the_choices() {
    let out = tapsign(&["key", "add", "k", "--exchange", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upbit") && err.contains("binance"), "{err}");
}

#[test]
fn bad_durations_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapsign"))
        .args(["unlock", "--ttl", "soon"])
        .env("TAPSIGN_SOCK", "/nonexistent/agent.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
