//! Errors as the user meets them: the right wire code for what went wrong (one mapping,
//! agent/src/error.rs), a socket folder that others can see into refused, and output to a
//! pipe whose reader has gone ending quietly instead of in a panic.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::keystore::Keystore;
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_tests::{World, spawn};

#[test]
fn a_0755_socket_folder_is_refused() {
    let w = World::new();
    let dir = w.sock.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Bounded: an agent that accepted the folder would serve until stopped.
    let out = w.run_cmd(w.cmd_under(&["timeout", "10"], &["agent"]), "");
    out.fails_with(1, "can be read or entered by other users (mode 0755)");
    assert!(out.stderr.contains("chmod 700"), "{out:?}");
    assert!(!w.sock.exists(), "the agent listened anyway");
    // Closed to others, the same folder is used.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut w = w;
    w.start_agent();
    w.run(&["status"], "").ok();
}

/// The keystore holds a Binance key whose API key could never go into a header (stored by a
/// program other than `key add`, which checks it): the agent says the stored credential is
/// the problem (`keystore`), not the bot's request (`bad_request`).
#[test]
fn a_stored_credential_that_cannot_sign_answers_keystore_not_bad_request() {
    let mut w = World::new();
    w.setup_key("good", "binance", "ak", "sk");
    let bad = Credential {
        name: "bad".into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("two words".into()),
        secret: SecretBytes::from_slice(b"sk"),
        passphrase: None,
    };
    let ks = Keystore::new(w.home().join("keystore"));
    let mut ledger = AuditLedger::new(&w.home().join("audit.log"));
    ks.add_credential(&bad, false, None, &mut ledger).unwrap();
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let sign = |key: &str| {
        w.run(
            &["sign", key, "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
    };
    let out = sign("bad");
    out.fails_with(7, "[keystore]");
    assert!(out.stderr.contains("tapsign key add"), "{out:?}");
    sign("good").ok();
}

/// Run `tapsign ARGS` with stdout a pipe whose reading end is already closed, as after
/// `| head -1` has read its line.
fn to_a_closed_pipe(w: &World, args: &[&str]) -> tapsign_tests::Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = w.cmd(args);
    cmd.stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    let out = spawn(&mut cmd).unwrap().wait_with_output().unwrap();
    tapsign_tests::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn tapsign_status_into_a_closed_pipe_does_not_panic() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let commands: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["key", "list"],
        &["token", "list"],
        &["audit"],
        &["audit", "verify"],
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        &["completions", "bash"],
        &["man"],
        &["lock"],
    ];
    for args in commands {
        let out = to_a_closed_pipe(&w, args);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {out:?}");
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?} said more than nothing: {out:?}"
        );
    }
}

/// `tapsign events | grep -m1 locked`: once grep has its line and leaves, the next event
/// ends `events` quietly.
#[test]
fn tapsign_events_ends_quietly_when_its_reader_leaves() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = w.cmd(&["events"]);
    cmd.stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd).unwrap();
    drop((cmd, reader));
    // Events until it notices (it subscribes shortly after starting).
    let start = std::time::Instant::now();
    let status = loop {
        w.run(&["unlock"], "").ok();
        w.run(&["lock"], "").ok();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("`tapsign events` kept running with nobody reading");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}
