//! The audit log records every decision and `audit verify` catches edits and deletions.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;

fn busy_world() -> World {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .fails_with(4, "locked");
    w.run(&["unlock", "--max-signatures", "5"], "").ok();
    for _ in 0..3 {
        w.run(
            &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
        .ok();
    }
    w.run(
        &[
            "sign",
            "b",
            "--method",
            "POST",
            "--path",
            "/sapi/v1/capital/withdraw/apply",
            "--query",
            "coin=BTC",
        ],
        "",
    )
    .fails_with(5, "policy_denied");
    w.run(&["lock"], "").ok();
    w
}

fn log_path(w: &World) -> std::path::PathBuf {
    w.home().join("audit.log")
}

#[test]
fn every_decision_is_recorded_without_secrets() {
    let w = busy_world();
    let text = w.run(&["audit"], "");
    let out = text.ok();
    for needle in [
        "unlock",
        "sign",
        "/api/v3/account",
        "policy_denied",
        "locked",
        "lock",
    ] {
        assert!(out.contains(needle), "audit lacks {needle:?}:\n{out}");
    }
    let raw = std::fs::read_to_string(log_path(&w)).unwrap();
    assert!(!raw.contains("coin=BTC"), "queries are not logged");
    assert!(!raw.contains("signature="), "signatures are not logged");
    w.run(&["audit", "verify"], "").ok();
}

#[test]
fn audit_verify_catches_an_edited_line() {
    let w = busy_world();
    let path = log_path(&w);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("/api/v3/account", "/api/v3/accounX", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    w.run(&["audit", "verify"], "")
        .fails_with(7, "fails verification");
}

#[test]
fn audit_verify_catches_a_deleted_line() {
    let w = busy_world();
    let path = log_path(&w);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 4);
    lines.remove(2);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    w.run(&["audit", "verify"], "")
        .fails_with(7, "fails verification");
}

#[test]
fn a_signature_that_cannot_be_audited_is_withheld() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    // A folder where the log file should be: the agent cannot open it. (`key add` has
    // already recorded itself in the log: take that file away first.)
    let log = log_path(&w);
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    w.start_agent();
    let said = w.agent_said("audit log cannot be opened");
    assert!(said.contains("audit log cannot be opened"), "{said}");
    w.run(&["unlock"], "").ok();
    let out = w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    );
    out.fails_with(1, "signature was withheld");
    assert!(!out.stdout.contains("signature="), "{out:?}");
    let st = w.run(&["status", "--json"], "");
    assert!(st.ok().contains("signatures are withheld"), "{st:?}");

    // Fixed: the log reopens on the next decision and signing resumes.
    std::fs::remove_dir(&log).unwrap();
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
    assert!(!w.run(&["status", "--json"], "").ok().contains("withheld"));
    w.run(&["audit", "verify"], "").ok();
}
