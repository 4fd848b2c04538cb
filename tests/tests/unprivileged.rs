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
    // The agent's log says why it locked (agent_said returns the log as it is after 10 s
    // without the words, so they are looked for again).
    let said = w.agent_said("locking the session");
    let line = said
        .lines()
        .find(|l| l.contains("; locking the session"))
        .unwrap_or_else(|| panic!("the agent did not say it locks: {said}"));
    for why in ["cannot start a thread", "RLIMIT_NPROC"] {
        assert!(line.contains(why), "{why}: {said}");
    }
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
        // A copy just written can be "busy" for a moment: a test thread that forks meanwhile
        // holds the copy's write descriptor until its child execs (ETXTBSY).
        let run = || {
            std::process::Command::new(&hidden)
                .arg(&w.sock)
                .arg("kb")
                .uid(NOBODY)
                .gid(NOBODY)
                .output()
        };
        let mut out = run();
        for _ in 0..50 {
            match &out {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    out = run();
                }
                _ => break,
            }
        }
        out.unwrap()
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

/// A page, as the agent locks secrets in whole pages (x86-64, aarch64 with 4 KiB pages).
const PAGE: u64 = 4096;

/// Red-team round 21: 1,100 credentials stored by anyone made the default (all-keys) unlock fail
/// after the touch, with advice blaming a lowered RLIMIT_MEMLOCK that was never lowered, and
/// the answer lacked the note of the credentials stored. Here the agent starts with room for
/// two locked pages: every key (three) is refused before the touch, naming the count and the
/// way on; the OKX key named alone fails after the check (its passphrase needs a third page),
/// without blaming prlimit, and its answer carries what the check found.
#[test]
fn keys_that_cannot_all_be_locked_are_refused_before_the_touch_and_named() {
    let Some(mut w) = as_nobody(&["k1", "k2"]) else {
        return;
    };
    let okx = ["key", "add", "kx", "--exchange", "okx"];
    w.run(&okx, "key\nsecret\npassphrase\n").ok();
    w.start_agent_with(|cmd| {
        use std::os::unix::process::CommandExt;
        let limit = libc::rlimit {
            rlim_cur: 2 * PAGE,
            rlim_max: 2 * PAGE,
        };
        #[allow(unsafe_code)]
        // SAFETY: between fork and exec only setrlimit, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let every = w.run(&["unlock", "--ttl", "10m"], "");
    every.fails_with(7, "opening every key (the keystore holds 3 credentials)");
    for said in [
        "nothing was asked of your token",
        "Name the keys to open",
        "remove the credentials you did not store",
    ] {
        assert!(every.stderr.contains(said), "{said}: {every:?}");
    }
    assert!(!every.stderr.contains("prlimit"), "{every:?}");
    assert!(
        !w.agent_log().contains("waiting for a touch"),
        "{}",
        w.agent_log()
    );

    let one = w.run(&["unlock", "--ttl", "10m", "kx"], "");
    assert_ne!(one.code, 0, "{one:?}");
    for said in [
        "could not be locked in memory",
        "is too small for the keys opened",
        "The keystore's check found",
        "3 credentials were stored since the keystore's last check",
    ] {
        assert!(one.stderr.contains(said), "{said}: {one:?}");
    }
    assert!(!one.stderr.contains("prlimit"), "{one:?}");
}
