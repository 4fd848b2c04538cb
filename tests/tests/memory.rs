//! What the agent's memory holds: the secret while a session is open, nothing after it ends.
//! Every readable mapping of the agent is read through /proc/PID/mem (root, or the same user
//! with ptrace rights, is needed: the agent makes itself not dumpable).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use tapsign_tests::{World, skip};

/// Every readable mapping of `pid`, concatenated per region; returns whether `needle` occurs.
fn memory_contains(pid: u32, needle: &[u8]) -> (bool, usize) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut scanned = 0;
    let mut found = false;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (range, perms) = (parts.next().unwrap(), parts.next().unwrap());
        if !perms.starts_with('r')
            || line.ends_with("[vvar]")
            || line.ends_with("[vsyscall]")
            || line.contains("[vvar_vclock]")
        {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut buf = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        scanned += buf.len();
        if buf.windows(needle.len()).any(|w| w == needle) {
            found = true;
        }
    }
    (found, scanned)
}

fn vm_locked_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn marker() -> String {
    // Unique per run, so no copy of it can exist in the agent's binary or libraries.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tapsign-memtest-secret-{nanos:x}-{}", std::process::id())
}

fn signed_world(secret: &str, unlock: &[&str]) -> World {
    let mut w = World::new();
    w.setup_key("b", "binance", "memtest-api-key", secret);
    w.start_agent();
    w.run(unlock, "").ok();
    for _ in 0..3 {
        w.run(
            &[
                "sign",
                "b",
                "--method",
                "GET",
                "--path",
                "/api/v3/account",
                "--query",
                "omitZeroBalances=true",
            ],
            "",
        )
        .ok();
    }
    w
}

#[test]
fn the_secret_is_nowhere_in_memory_after_lock() {
    if !skip::needs_root("reading a not-dumpable process's memory") {
        return;
    }
    let secret = marker();
    let w = signed_world(&secret, &["unlock"]);
    let pid = w.agent_pid();
    let (found, scanned) = memory_contains(pid, secret.as_bytes());
    assert!(scanned > 1 << 20, "scanned only {scanned} bytes");
    assert!(
        found,
        "the scanner must find the secret while the session is open, or it proves nothing"
    );
    assert!(
        vm_locked_kib(pid) > 0,
        "secret pages are locked while unlocked"
    );

    w.run(&["lock"], "").ok();
    let (found, _) = memory_contains(pid, secret.as_bytes());
    assert!(
        !found,
        "the secret is still in the agent's memory after lock"
    );
    assert_eq!(
        vm_locked_kib(pid),
        0,
        "no secret pages stay locked after lock"
    );
}

#[test]
fn the_secret_is_nowhere_in_memory_after_expiry() {
    if !skip::needs_root("reading a not-dumpable process's memory") {
        return;
    }
    let secret = marker();
    // Long enough for the three signatures and the scan on a busy machine (with 2 s the
    // session once ran out before the scan, and the test failed on "found while open").
    let w = signed_world(&secret, &["unlock", "--ttl", "10s"]);
    let pid = w.agent_pid();
    assert!(
        memory_contains(pid, secret.as_bytes()).0,
        "found while open"
    );
    let start = Instant::now();
    while !w.run(&["status", "--json"], "").ok().contains("\"locked\"") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the session did not expire"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !memory_contains(pid, secret.as_bytes()).0,
        "the secret survived expiry"
    );
}

fn proc_status_owner(pid: u32) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid()
}

#[test]
fn the_running_agent_is_not_dumpable() {
    if !skip::needs_root("running the agent as another user") {
        return;
    }
    const NOBODY: u32 = 65534;
    // The kernel hands /proc/PID/* of a not-dumpable process to root. Visible only when the
    // process runs as someone else, so run the agent as nobody; a plain process of nobody is
    // the control that shows the test can tell the difference.
    let mut control = std::process::Command::new("sleep");
    std::os::unix::process::CommandExt::uid(&mut control, NOBODY);
    let mut control = control.arg("30").spawn().unwrap();
    assert_eq!(
        proc_status_owner(control.id()),
        NOBODY,
        "control: a dumpable process owns its /proc files"
    );
    control.kill().unwrap();
    control.wait().unwrap();

    let mut w = World::new();
    w.start_agent_as(NOBODY);
    let pid = w.agent_pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("Uid:\t{NOBODY}")),
        "the agent runs as nobody: {status}"
    );
    assert_eq!(proc_status_owner(pid), 0, "the agent is not dumpable");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().nth(4),
        Some("0"),
        "core size limit 0: {core}"
    );
}
