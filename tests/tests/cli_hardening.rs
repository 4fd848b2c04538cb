//! The CLI commands that read secrets harden their own process before the prompt, as the
//! agent does: not dumpable (no ptrace or /proc/PID/mem by other processes of the user, no
//! core dump) and core size 0. Checked on a CLI waiting at its prompt.
//!
//! Dumpability shows in /proc: the kernel makes a non-dumpable process's /proc/PID files
//! belong to root. So the CLI runs as another user (root is needed to start it so); without
//! root only the core limit is checked.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapsign_tests::{World, is_root, skip, tapsign_bin};

const NOBODY: u32 = 65534;

/// `tapsign ARGS` started with its stdin held open (so it waits at the prompt), as `nobody`
/// when we are root.
fn waiting(w: &World, args: &[&str]) -> Child {
    let mut cmd = if is_root() {
        let bin = w.home().join("bin/tapsign");
        if !bin.exists() {
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::copy(tapsign_bin(), &bin).unwrap();
            for p in [bin.parent().unwrap(), bin.as_path()] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let owned = Command::new("chown")
                .args(["-R", &format!("{NOBODY}:{NOBODY}")])
                .arg(w.home())
                .status();
            assert!(owned.is_ok_and(|s| s.success()));
        }
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"ulimit -c 1000 2>/dev/null; exec "$0" "$@""#)
            .arg(bin)
            .uid(NOBODY)
            .gid(NOBODY);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"ulimit -c 1000 2>/dev/null; exec "$0" "$@""#)
            .arg(tapsign_bin());
        c
    };
    cmd.args(args)
        .env_clear()
        .env("TAPSIGN_HOME", w.home())
        .env("TAPSIGN_SOCK", &w.sock)
        .env("TAPSIGN_INSECURE_SOFT_TOKEN", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The soft and hard limits on core size, from /proc/PID/limits.
fn core_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let mut f = line.split_whitespace().skip(4);
    Some((f.next()?.to_owned(), f.next()?.to_owned()))
}

/// Wait until `child` blocks reading its stdin: it is at the prompt, past its hardening.
fn wait_at_prompt(child: &Child) {
    let start = Instant::now();
    let wchan =
        || std::fs::read_to_string(format!("/proc/{}/wchan", child.id())).unwrap_or_default();
    while !wchan().contains("pipe_read") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the CLI never waited at its prompt (wchan {:?})",
            wchan()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// At the prompt, both core limits are 0 (the CLI is started with a soft limit of 1000
/// blocks where the hard limit allows, so 0 is its own doing).
fn assert_no_core(child: &Child) {
    wait_at_prompt(child);
    let limits = core_limits(child.id()).unwrap();
    assert_eq!(limits, ("0".to_owned(), "0".to_owned()), "core size limits");
}

fn proc_owner(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid()
}

fn assert_not_dumpable(child: &Child) {
    if !skip::needs_root("seeing dumpability in /proc (the CLI must run as another user)") {
        return;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&NOBODY.to_string())),
        "{status}"
    );
    assert_eq!(
        proc_owner(child.id()),
        0,
        "dumpable: /proc shows its own uid"
    );
}

#[test]
fn key_add_is_hardened_while_it_waits_for_the_secret() {
    let w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    let mut child = waiting(&w, &["key", "add", "k2", "--exchange", "binance"]);
    assert_no_core(&child);
    assert_not_dumpable(&child);
    // It was waiting at the prompt: the secret given now is stored.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ak2\nsk2\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Stored k2"));
}

#[test]
fn token_add_is_hardened_while_it_waits_for_the_pin() {
    let w = World::new();
    let mut child = waiting(&w, &["token", "add", "--piv"]);
    assert_no_core(&child);
    assert_not_dumpable(&child);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_process_that_did_not_harden_shows_its_own_uid() {
    // The control for the check above: an ordinary process of that user owns its /proc
    // files, so a root owner means something.
    if !skip::needs_root("running a control process as another user") {
        return;
    }
    let mut child = Command::new("sleep")
        .arg("10")
        .uid(NOBODY)
        .gid(NOBODY)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while proc_owner(child.id()) != NOBODY && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(proc_owner(child.id()), NOBODY);
    child.kill().unwrap();
    child.wait().unwrap();
}
