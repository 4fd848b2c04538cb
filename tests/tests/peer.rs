//! Only the agent's own user is served, even when the socket's permissions are opened up.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use tapsign_tests::{World, is_root, tapsign_bin};

const NOBODY: u32 = 65534;

#[test]
fn a_client_running_as_nobody_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: switching to the user nobody needs root (CI runs as root)");
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
    let bin = bin_dir.path().join("tapsign");
    std::fs::copy(tapsign_bin(), &bin).unwrap();
    open(&bin, 0o755);

    let out = Command::new(&bin)
        .args(["sign", "b", "--method", "GET", "--path", "/api/v3/account"])
        .env_clear()
        .env("TAPSIGN_SOCK", &w.sock)
        .env("TAPSIGN_HOME", bin_dir.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "nobody got a signature: {stderr}"
    );
    assert!(stderr.contains("serves only the user"), "{stderr}");
    assert!(
        w.agent_log()
            .contains("refused a connection from uid 65534"),
        "{}",
        w.agent_log()
    );
    // The owner is still served.
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
}
