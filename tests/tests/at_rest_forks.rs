//! At rest, with two copies of the home that share the vault (a backup restored and used, a
//! second `TAPSIGN_HOME` copied from the first): each writes manifests of its own, anchored in
//! its own audit log, and their generations rise apart. A copy's manifest, copied into the
//! original with an old credential file, must not bring back a credential the trader replaced
//! or removed there (red-team round 24): the original's log holds a signed check that records
//! the change, and the manifest does not follow it.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;

use tapsign_tests::World;
use tapsign_tests::at_rest::{cred_file, put_back};

/// A home with k1 and k2 (Binance), unlocked once, the agent stopped.
fn home() -> World {
    let mut w = World::new();
    w.setup_key("k1", "binance", "AK1", "SK1");
    w.setup_key("k2", "binance", "AK2", "SK2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w
}

/// A copy of `w`'s home (keystore, soft token, audit log) in a new world: the same vault.
fn fork(w: &World) -> World {
    let f = World::new();
    for name in ["keystore", "soft-token", "audit.log"] {
        copy(&w.home().join(name), &f.home().join(name));
    }
    f
}

fn copy(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .args(["-a"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Two more checks in the copy: its manifest's generation goes above the original's.
fn used_twice(f: &mut World) {
    f.start_agent();
    f.run(&["unlock"], "").ok();
    f.run(&["lock"], "").ok();
    f.run(&["unlock"], "").ok();
    assert_eq!(f.signal_agent("TERM"), Some(0));
}

/// What malware does: the copy's manifest and an old k1 file into the original.
fn swap_in(h: &World, f: &World, old_k1: &[u8]) {
    let manifest = std::fs::read(f.home().join("keystore/manifest.json")).unwrap();
    put_back(&h.home().join("keystore/manifest.json"), &manifest);
    put_back(&cred_file(h, "k1"), old_k1);
}

fn refused(out: &tapsign_tests::Run) {
    out.fails_with(7, "does not follow the audit log's last check");
    assert!(
        out.stderr.contains("another copy of the keystore")
            && out.stderr.contains("--rebuild-manifest"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
    assert!(
        !out.stderr.contains("the command that wrote it stopped"),
        "{out:?}"
    );
}

#[test]
fn a_copys_manifest_does_not_bring_back_a_replaced_credential() {
    let mut h = home();
    let mut f = fork(&h);
    let old = std::fs::read(cred_file(&h, "k1")).unwrap();
    h.run(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "AK1NEW\nSK1NEW\n",
    )
    .ok();
    h.start_agent();
    h.run(&["unlock"], "").ok();
    h.signs_with("k1", b"SK1NEW");
    assert_eq!(h.signal_agent("TERM"), Some(0));
    used_twice(&mut f);
    swap_in(&h, &f, &old);
    // `key list` says it before any touch, as the unlock will.
    let list = h.run(&["key", "list"], "");
    assert!(
        list.stderr
            .contains("does not follow the audit log's last check")
            && !list.stderr.contains("started afresh"),
        "{list:?}"
    );
    h.start_agent();
    let out = h.run(&["unlock"], "");
    refused(&out);
    assert!(out.stderr.contains("credential \"k1\""), "{out:?}");
    // The way out it names: the rebuild holds the files to the log, and names the old copy.
    let rebuild = h.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    rebuild.fails_with(7, "k1");
}

#[test]
fn a_copys_manifest_does_not_bring_back_a_removed_credential() {
    let mut h = home();
    let mut f = fork(&h);
    let old = std::fs::read(cred_file(&h, "k1")).unwrap();
    h.run(&["key", "remove", "k1"], "").ok();
    h.start_agent();
    h.run(&["unlock"], "").ok();
    assert_eq!(h.signal_agent("TERM"), Some(0));
    used_twice(&mut f);
    swap_in(&h, &f, &old);
    h.start_agent();
    let out = h.run(&["unlock"], "");
    refused(&out);
    assert!(
        out.stderr
            .contains("(before that check, which does not list it) records removed"),
        "{out:?}"
    );
}

/// The agent kept running: it saw the replacement and wrote the next manifest itself, and the
/// copy's is above it, so its memory of the generation does not catch it.
#[test]
fn a_copys_manifest_does_not_bring_back_a_replaced_credential_under_a_running_agent() {
    let mut h = home();
    let mut f = fork(&h);
    let old = std::fs::read(cred_file(&h, "k1")).unwrap();
    h.start_agent();
    h.run(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "AK1NEW\nSK1NEW\n",
    )
    .ok();
    h.run(&["unlock"], "").ok();
    h.signs_with("k1", b"SK1NEW");
    h.run(&["lock"], "").ok();
    used_twice(&mut f);
    swap_in(&h, &f, &old);
    let out = h.run(&["unlock"], "");
    refused(&out);
}

/// A copy's manifest that goes back on nothing the original's log records (the copy is ahead
/// in everything): it opens, and the warning says what it found, not a log started afresh.
#[test]
fn a_copys_manifest_that_goes_back_on_nothing_opens_with_a_warning_that_says_so() {
    let h = home();
    let mut f = fork(&h);
    used_twice(&mut f);
    let manifest = std::fs::read(f.home().join("keystore/manifest.json")).unwrap();
    put_back(&h.home().join("keystore/manifest.json"), &manifest);
    let mut h = h;
    h.start_agent();
    let out = h.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked"), "{out:?}");
    assert!(
        out.stderr
            .contains("was anchored in another audit log than this one"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("started afresh"), "{out:?}");
    assert!(
        !out.stderr.contains("the command that wrote it stopped"),
        "{out:?}"
    );
    h.signs_with("k1", b"SK1");
}
