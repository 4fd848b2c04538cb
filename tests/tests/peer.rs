//! Only the agent's own user is served, even when the socket's permissions are opened up.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use tapsign_tests::{World, skip, tapsign_bin};

const NOBODY: u32 = 65534;

#[test]
fn a_client_running_as_nobody_is_refused() {
    if !skip::needs_root("switching to the user nobody") {
        return;
    }
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();

    // Open every door on the way so only the agent's own uid check stands between nobody and
    // the session: the folder defences are tested elsewhere, this tests the last line.
    let open = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(w.home(), 0o755);
    open(w.sock.parent().unwrap(), 0o755);
    open(&w.sock, 0o666);
    let bin_dir = tempfile::tempdir().unwrap();
    open(bin_dir.path(), 0o755);
    let copy = |name: &str| {
        let to = bin_dir.path().join(name);
        std::fs::copy(tapsign_bin().with_file_name(name), &to).unwrap();
        open(&to, 0o755);
        to
    };
    let (tapsign, raw) = (copy("tapsign"), copy("tapsign-raw-hello"));
    let as_nobody = |program: &std::path::Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env_clear()
            .env("TAPSIGN_SOCK", &w.sock)
            .env("TAPSIGN_HOME", bin_dir.path())
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap()
    };

    // A client that does not check who it talks to reaches the agent, which refuses it.
    let out = as_nobody(&raw, &[w.sock.to_str().unwrap()]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("\"code\":\"forbidden\""),
        "{answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answer.contains("serves only the user"), "{answer}");
    let said = w.agent_said("refused a connection from uid 65534");
    assert!(
        said.contains("refused a connection from uid 65534"),
        "{said}"
    );

    // The real CLI gets no signature either (it refuses the root agent first).
    let out = as_nobody(
        &tapsign,
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
    );
    assert_ne!(out.status.code(), Some(0), "nobody got a signature");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("signature"));
    // The owner is still served.
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
}

/// Red-team round 26, F7: another user's agent, behind a socket folder this user may not
/// enter, was "cannot reach the agent ... start it with `tapsign agent`": an agent runs there,
/// and one started would fail on its socket. It says whose it is.
#[test]
fn another_user_s_socket_is_named_as_theirs_not_as_no_agent() {
    if !skip::needs_root("switching to the user nobody") {
        return;
    }
    let mut w = World::new();
    w.start_agent();
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = home.path().join("tapsign");
    std::fs::copy(tapsign_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // `status` and `lock` look at the folder before connecting (red-team round 26, P1);
    // `sign` meets the refused connection. Each names the other user.
    for (args, named) in [
        (&["status"][..], "belongs to uid 0, not to you"),
        (
            &["sign", "b", "--method", "GET", "--path", "/api/v3/account"][..],
            "belongs to another user (uid 0)",
        ),
    ] {
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .env_clear()
            .env("TAPSIGN_SOCK", &w.sock)
            .env("TAPSIGN_HOME", home.path())
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // The copied binary may be "busy" a moment (tapsign_tests::spawn).
        let out = tapsign_tests::spawn(&mut cmd)
            .unwrap()
            .wait_with_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named) && !stderr.contains("start it with"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_client_refuses_an_agent_run_by_another_user() {
    if !skip::needs_root("running the agent as nobody") {
        return;
    }
    // The reverse of the agent's check: a socket another user serves must not receive an
    // unlock request (and its PIN).
    let mut w = World::new();
    w.start_agent_as(NOBODY);
    let out = w.run(&["unlock"], "");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("not your agent"), "{out:?}");
}
