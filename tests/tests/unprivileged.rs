//! The agent and the CLI run as an ordinary user, as a trader runs them: root reads every
//! process's `/proc` files and ignores RLIMIT_NPROC and RLIMIT_MEMLOCK, so what these tests
//! pin never shows in a test run as root (red-team round 21 ran as uid 1001 to find it).
//!
//! Needs root, to hand each world to the user nobody; skips otherwise, and fails in CI
//! (`TAPSIGN_VYK_REQUIRE=1`).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::{World, skip};

const NOBODY: u32 = 65534;

/// A world whose agent and commands run as nobody, with `keys` (Binance) stored; `None` (after
/// a skip) when this test process cannot switch users.
fn as_nobody(keys: &[&str]) -> Option<World> {
    if !skip::needs_root("running the agent and the CLI as the user nobody") {
        return None;
    }
    let mut w = World::new();
    w.become_user(NOBODY);
    for k in keys {
        w.setup_key(k, "binance", &format!("ak-{k}"), &format!("sk-{k}"));
    }
    Some(w)
}

/// Set the agent's RLIMIT_`resource` (soft and hard) to `value` from a process of its user, as
/// any may (`prlimit --pid`).
fn prlimit(w: &World, resource: &str, value: &str) {
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new("prlimit")
        .uid(NOBODY)
        .gid(NOBODY)
        .arg("--pid")
        .arg(w.agent_pid().to_string())
        .arg(format!("--{resource}={value}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "prlimit: {out:?}");
}

/// Red-team round 21: with the agent's process limit lowered (`prlimit --nproc=1`, which the
/// agent cannot undo), every `status` and `unlock` died in a panic of tokio's blocking pool:
/// "the connection was closed", no reason, and the session went on signing. Now the agent
/// answers why and what to do, and locks.
#[test]
fn a_lowered_process_limit_is_named_and_locks_the_session() {
    let Some(mut w) = as_nobody(&["kb"]) else {
        return;
    };
    w.start_agent();
    w.run(&["unlock", "--ttl", "10m"], "").ok();
    w.signs_with("kb", b"sk-kb");
    prlimit(&w, "nproc", "1");
    let status = w.run(&["status"], "");
    for said in ["cannot start a thread", "RLIMIT_NPROC", "restart the agent"] {
        assert!(status.stderr.contains(said), "{said}: {status:?}");
    }
    assert_ne!(status.code, 0);
    let account = ["sign", "kb", "--method", "GET", "--path", "/api/v3/account"];
    w.run(&account, "").fails_with(4, "locked");
    let unlock = w.run(&["unlock", "--ttl", "10m"], "");
    assert!(
        unlock.stderr.contains("cannot start a thread"),
        "{unlock:?}"
    );
    w.agent_said("locking the session");
}

/// Red-team round 21: an agent not run as root may not read the executable of a client that
/// made itself not dumpable, and named it "?": every `tapsign unlock` (which hardens itself),
/// and any bot that hides with one `prctl`. The CLI's unlock now connects before it hardens,
/// so it is named by its path; a hidden client by what it calls itself, marked as such.
#[test]
fn the_traders_unlock_is_named_by_its_path_and_a_hidden_client_by_its_own_name() {
    let Some(mut w) = as_nobody(&["kb"]) else {
        return;
    };
    w.start_agent();
    w.run(&["unlock", "--ttl", "10m"], "").ok();
    let hidden = w.home().join("bin").join("tapsign-hidden-sign");
    std::fs::copy(
        tapsign_tests::tapsign_bin().with_file_name("tapsign-hidden-sign"),
        &hidden,
    )
    .unwrap();
    let out = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(&hidden)
            .arg(&w.sock)
            .arg("kb")
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap()
    };
    assert!(out.status.success(), "{out:?}");
    let audit = w.run(&["audit"], "").ok().to_owned();
    let line = |what: &str| {
        let found = audit.lines().rfind(|l| l.contains(what));
        found
            .unwrap_or_else(|| panic!("no {what} line: {audit}"))
            .to_owned()
    };
    let unlock = line("unlock by");
    assert!(unlock.ends_with("/bin/tapsign)"), "{unlock}");
    let signed = line("sign kb");
    assert!(
        signed.contains("(not dumpable, calls itself \"tapsign-hidden-sign "),
        "{signed}"
    );
    assert!(!audit.contains("(?)"), "{audit}");
}
