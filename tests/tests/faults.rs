//! Faults while the keystore changes: a full disk (a small tmpfs, filled to every point where
//! `key add` and `token add` write) and a SIGKILL (before every system call of theirs that
//! changes the disk). After each: no half-written file, nothing that was stored is lost, the
//! audit log verifies, and running the command again works. docs/keystore-format.md
//! ("Atomic writes") says how each write is made atomic.
//!
//! Needs root (a private mount namespace for the tmpfs; strace, from scripts/packages.txt,
//! to stop the CLI at each system call); skips otherwise, and fails in CI
//! (`TAPSIGN_VYK_REQUIRE=1`).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use tapsign_tests::ns::{PAGE, SmallDisk, private_mounts};
use tapsign_tests::{Run, World, skip};

/// Files and folders a writer leaves behind only when it dies: temp files and stages.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || name.starts_with(".stage-") {
            out.push(p.clone());
        }
        if p.is_dir() {
            out.extend(leftovers(&p));
        }
    }
    out
}

/// The keystore lists exactly `keys`, every file in it reads, and the audit log verifies.
#[track_caller]
fn whole(w: &World, keys: &[String]) {
    let list = w.run(&["key", "list"], "");
    assert_eq!(list.code, 0, "a keystore file is damaged: {list:?}");
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(w.key_names(), want, "the stored keys changed");
    let tokens = w.run(&["token", "list"], "");
    assert_eq!(tokens.code, 0, "a keyslot is damaged: {tokens:?}");
    let verify = w.run(&["audit", "verify"], "");
    assert_eq!(verify.code, 0, "the audit log does not verify: {verify:?}");
}

/// A failure the user can act on: says the disk is full, never panics.
#[track_caller]
fn says_disk_full(out: &Run) {
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("panicked"), "a panic: {out:?}");
    assert!(
        out.stderr.contains("No space left on device")
            || out
                .stderr
                .contains("could not be recorded in the audit log"),
        "the message does not say the disk is full: {out:?}"
    );
}

#[test]
fn a_full_disk_during_key_add_loses_nothing_and_key_add_works_once_there_is_room() {
    if !private_mounts() {
        return;
    }
    let mut w = World::new();
    let disk = SmallDisk::mount(w.home(), 2048, 4096);
    w.setup_key("k0", "binance", "ak-k0", &secret("k0"));
    let mut keys = vec!["k0".to_owned()];
    let mut failures: Vec<String> = Vec::new();
    let mut add = |w: &World, keys: &mut Vec<String>, fill: &dyn Fn()| {
        let name = format!("k{}", keys.len() + failures.len());
        fill();
        let out = w.run(
            &["key", "add", &name, "--exchange", "binance"],
            &format!("ak-{name}\n{}\n", secret(&name)),
        );
        disk.free();
        match out.code {
            0 => keys.push(name),
            _ => {
                says_disk_full(&out);
                failures.push(out.stderr.clone());
            }
        }
        whole(w, keys);
        let left = leftovers(&w.home().join("keystore"));
        assert!(left.is_empty(), "a failed write left {left:?}");
    };
    // Out of space at every point key add writes: the credential file, then the audit log's
    // line (the log grows by a line per key, so over the rounds its end crosses a page while
    // the credential took the last free one). Then out of inodes.
    for _round in 0..24 {
        for pages in 0..3 {
            add(&w, &mut keys, &|| disk.leave_free(pages * PAGE));
        }
    }
    for inodes in 0..4 {
        add(&w, &mut keys, &|| disk.leave_inodes(inodes));
    }
    // With room again, key add works.
    let before = keys.len();
    add(&w, &mut keys, &|| ());
    assert_eq!(
        keys.len(),
        before + 1,
        "key add failed with room on the disk"
    );
    let failed_at = |what: &str| failures.iter().filter(|f| f.contains(what)).count();
    assert!(
        failed_at("credentials/") > 0,
        "never full at the credential: {failures:?}"
    );
    assert!(
        failed_at("could not be recorded in the audit log") > 0,
        "never full at the audit line: {failures:?}"
    );
    // Every key stored opens, and signs with the secret it was stored with.
    w.start_agent();
    signs_with_each(&w, &keys);
    assert_eq!(w.signal_agent("TERM"), Some(0));
}

/// `token add` making a new keystore (the soft token here: what it writes is the keystore's,
/// whichever token it is sealed to), on a disk full at each point it writes.
#[test]
fn a_full_disk_during_token_add_leaves_no_half_keystore_and_token_add_works_once_there_is_room() {
    if !private_mounts() {
        return;
    }
    let mut failures = Vec::new();
    let mut enrolled = false;
    let mut fills: Vec<(u64, Option<usize>)> = (0..12).map(|p| (p, None)).collect();
    fills.extend((0..16).map(|i| (64, Some(i))));
    for (pages, inodes) in fills {
        let w = World::new();
        let disk = SmallDisk::mount(w.home(), 1024, 4096);
        match inodes {
            Some(n) => disk.leave_inodes(n),
            None => disk.leave_free(pages * PAGE),
        }
        let out = w.run(&["token", "add", "--soft"], "");
        disk.free();
        if out.code != 0 {
            says_disk_full(&out);
            failures.push(out.stderr.clone());
            let left = leftovers(&w.home().join("keystore"));
            assert!(left.is_empty(), "a failed token add left {left:?}");
            // Running it again, with room, enrolls the token.
            let again = w.run(&["token", "add", "--soft"], "");
            assert!(again.ok().contains("Enrolled"), "{again:?}");
        } else {
            enrolled = true;
        }
        whole(&w, &[]);
        let tokens = w.run(&["token", "list"], "");
        assert_eq!(tokens.ok().lines().count(), 1, "{tokens:?}");
        w.run(&["key", "add", "k", "--exchange", "binance"], "ak\nsk\n")
            .ok();
        whole(&w, &["k".to_owned()]);
    }
    assert!(enrolled, "token add never succeeded on the small disk");
    assert!(
        failures.len() >= 3,
        "the disk was never full when it mattered: {failures:?}"
    );
}

/// Every system call that can change the disk (x86-64 and aarch64 names; strace matches the
/// ones the machine has).
const CHANGES_DISK: &str = "/^(write|pwrite64|writev|fsync|fdatasync|rename|renameat|renameat2|link|linkat|unlink|unlinkat|mkdir|mkdirat|rmdir|ftruncate|fallocate)$";

/// The disk-changing system calls of `tapsign ARGS` (run once, to completion): how many of
/// each kind.
fn disk_calls(w: &World, args: &[&str], stdin: &str) -> Vec<(String, u32)> {
    let log = w.home().join("strace.log");
    let log_arg = log.to_str().unwrap();
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-o",
        log_arg,
        "-e",
        &format!("trace={CHANGES_DISK}"),
    ];
    w.run_cmd(w.cmd_under(&wrapper, args), stdin).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let mut counts: Vec<(String, u32)> = Vec::new();
    for line in text.lines() {
        let rest = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        let Some((name, _)) = rest.split_once('(') else {
            continue;
        };
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name.to_owned(), 1)),
        }
    }
    counts
}

/// Run `tapsign ARGS`, SIGKILLed on entering its `n`th `call`. Whether it was killed (a run
/// that made fewer such calls finishes).
fn killed_at(w: &World, args: &[&str], stdin: &str, call: &str, n: u32) -> bool {
    let inject = format!("inject={call}:signal=KILL:when={n}");
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        &format!("trace={call}"),
        "-e",
        &inject,
    ];
    let out = w.run_cmd(w.cmd_under(&wrapper, args), stdin);
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out.code == -1
}

/// The disk-changing calls of a command, checked to be what a keystore write makes.
fn kill_points(w: &World, args: &[&str], stdin: &str) -> Vec<(String, u32)> {
    let calls = disk_calls(w, args, stdin);
    let has = |prefix: &str| calls.iter().any(|(n, _)| n.starts_with(prefix));
    assert!(
        (has("rename") || has("link")) && (has("fsync") || has("fdatasync")) && has("write"),
        "strace saw no atomic write: {calls:?}"
    );
    calls
}

fn secret(name: &str) -> String {
    format!("sk-{name}")
}

/// Sign with each of `keys` through the running agent and check each signature with the
/// secret that key was stored with: nothing stored was lost or mixed up.
fn signs_with_each(w: &World, keys: &[String]) {
    let out = w.run(&["unlock"], "");
    assert!(
        out.ok()
            .contains(&format!("Unlocked {} key(s)", keys.len())),
        "{out:?}"
    );
    for k in keys {
        w.signs_with(k, secret(k).as_bytes());
    }
    w.run(&["lock"], "").ok();
}

fn add_key(w: &World, name: &str) -> Run {
    w.run(
        &["key", "add", name, "--exchange", "binance"],
        &format!("ak-{name}\n{}\n", secret(name)),
    )
}

#[test]
fn a_sigkill_anywhere_in_key_add_loses_nothing_and_key_add_works_after() {
    if skip::needs_program("strace", "strace").is_none() {
        return;
    }
    let mut w = World::new();
    w.setup_key("k0", "binance", "ak-k0", &secret("k0"));
    // An agent runs beside: it reads the audit log the command appends to.
    w.start_agent();
    let mut keys = vec!["k0".to_owned()];
    let probe = ["key", "add", "probe", "--exchange", "binance"];
    let points = kill_points(&w, &probe, &format!("ak\n{}\n", secret("probe")));
    keys.push("probe".into());
    let mut kills = 0;
    for (call, count) in points {
        for n in 1..=count {
            let name = format!("k{}", keys.len());
            let args = ["key", "add", &name, "--exchange", "binance"];
            let input = format!("ak-{name}\n{}\n", secret(&name));
            kills += u32::from(killed_at(&w, &args, &input, &call, n));
            // The keystore is the old one or the new one, whole either way.
            let listed = w.key_names();
            let stored = listed.contains(&name);
            let mut want = keys.clone();
            if stored {
                want.push(name.clone());
            }
            want.sort();
            assert_eq!(listed, want, "killed at {call} #{n}");
            let verify = w.run(&["audit", "verify"], "");
            assert_eq!(verify.code, 0, "killed at {call} #{n}: {verify:?}");
            // Running it again completes it (or says it is done).
            let again = add_key(&w, &name);
            match stored {
                true => again.fails_with(1, "already exists"),
                false => assert_eq!(again.code, 0, "killed at {call} #{n}: {again:?}"),
            }
            keys.push(name);
        }
    }
    assert!(kills > 5, "only {kills} kills");
    signs_with_each(&w, &keys);
    let left = leftovers(&w.home().join("keystore"));
    assert!(left.is_empty(), "the unlock did not clear {left:?}");
}

#[test]
fn a_sigkill_anywhere_in_token_add_leaves_a_keystore_that_token_add_completes() {
    if skip::needs_program("strace", "strace").is_none() {
        return;
    }
    let points = kill_points(&World::new(), &["token", "add", "--soft"], "");
    let mut kills = 0;
    for (call, count) in points {
        for n in 1..=count {
            let mut w = World::new();
            kills += u32::from(killed_at(&w, &["token", "add", "--soft"], "", &call, n));
            let again = w.run(&["token", "add", "--soft"], "");
            if again.code != 0 {
                // It got as far as the keystore: that one must be whole and usable.
                again.fails_with(6, "the keystore already exists");
            }
            whole(&w, &[]);
            add_key(&w, "k").ok();
            w.start_agent();
            signs_with_each(&w, &["k".to_owned()]);
            assert_eq!(w.signal_agent("TERM"), Some(0), "killed at {call} #{n}");
        }
    }
    assert!(kills > 5, "only {kills} kills");
}
