//! At rest, with two copies of the home that share the vault (a backup restored and used, a
//! second `TAPSIGN_HOME` copied from the first): each writes manifests of its own, anchored in
//! its own audit log, and their generations rise apart. A copy's manifest, copied into the
//! original with an old credential file, must not bring back a credential the trader replaced
//! or removed there (red-team round 24): the original's log holds a signed check that records
//! the change, and the manifest does not follow it.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;

use tapsign_tests::World;
use tapsign_tests::at_rest::{append_chained, cred_file, put_back};

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

/// Replace k1 in `h` (its secret leaked, say) with `key add --replace`; its file from before.
fn replace_k1(h: &World) -> Vec<u8> {
    let old = std::fs::read(cred_file(h, "k1")).unwrap();
    h.run(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "AK1NEW\nSK1NEW\n",
    )
    .ok();
    old
}

fn refused(out: &tapsign_tests::Run) {
    out.fails_with(7, "does not follow the audit log's check");
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
    let old = replace_k1(&h);
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
            .contains("does not follow the audit log's check")
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
            .contains("that later check leaves out: it was removed"),
        "{out:?}"
    );
}

/// The agent kept running: it saw the replacement and wrote the next manifest itself, and the
/// copy's is above it, so its memory of the generation does not catch it.
#[test]
fn a_copys_manifest_does_not_bring_back_a_replaced_credential_under_a_running_agent() {
    let mut h = home();
    let mut f = fork(&h);
    h.start_agent();
    let old = replace_k1(&h);
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

/// The copy's last `keystore` line (signed by the vault key the two share), as its log has it.
fn last_check_of(f: &World) -> serde_json::Value {
    let text = std::fs::read_to_string(f.home().join("audit.log")).unwrap();
    let line = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|l| l["event"]["type"] == "keystore")
        .unwrap();
    line["event"].clone()
}

/// Red-team round 24, recheck: the copy's own signed check, appended to the original's log with
/// the chain continued, was taken for the log's last check, and the copy's manifest was its
/// own: the replaced key opened and signed, `audit verify` said intact. Every signed check
/// counts, and one that goes back on an earlier one is another copy's.
#[test]
fn a_copys_check_line_appended_does_not_vouch_for_its_manifest() {
    let mut h = home();
    let mut f = fork(&h);
    let old = replace_k1(&h);
    h.start_agent();
    h.run(&["unlock"], "").ok();
    assert_eq!(h.signal_agent("TERM"), Some(0));
    used_twice(&mut f);
    swap_in(&h, &f, &old);
    append_chained(&h, last_check_of(&f));
    h.run(&["audit", "verify"], "").ok();
    let list = h.run(&["key", "list"], "");
    assert!(
        list.stderr.contains("two checks of this keystore"),
        "{list:?}"
    );
    h.start_agent();
    let out = h.run(&["unlock"], "");
    out.fails_with(
        7,
        "two checks of this keystore, both signed by its vault key",
    );
    assert!(
        out.stderr.contains("credential \"k1\"")
            && out.stderr.contains("another copy of the keystore")
            && out.stderr.contains("--rebuild-manifest"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
    let sign = tapsign_tests::at_rest::sign(&h, "k1");
    assert!(!sign.stdout.contains("AK1\""), "{sign:?}");
    // The way out it names: the rebuild holds the files to the log, and names the old copy.
    let rebuild = h.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    rebuild.fails_with(7, "k1");
}

/// Make the home's audit log a folder (it cannot be opened) while `during` runs, then put it back.
fn log_unopenable(w: &mut World, during: impl FnOnce(&mut World)) {
    let log = w.home().join("audit.log");
    let aside = w.home().join("audit.log.aside");
    std::fs::rename(&log, &aside).unwrap();
    std::fs::create_dir(&log).unwrap();
    during(w);
    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&aside, &log).unwrap();
}

/// An unlock (with the agent started for it) and the agent stopped.
fn unlock_once(w: &mut World) -> tapsign_tests::Run {
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert_eq!(w.signal_agent("TERM"), Some(0));
    out
}

/// Red-team round 24, recheck: a manifest with no anchor (the copy's, written while its log
/// could not be opened) was held to the check alone, so a `key add --replace` after the check
/// in the original was skipped, and the old file opened. The `key` line refuses it, as from an
/// anchor; the rest opens.
#[test]
fn an_anchorless_copys_manifest_does_not_skip_a_later_replacement() {
    let h = home();
    let mut f = fork(&h);
    let old = replace_k1(&h);
    log_unopenable(&mut f, |f| {
        unlock_once(f);
        unlock_once(f);
    });
    let manifest = std::fs::read_to_string(f.home().join("keystore/manifest.json")).unwrap();
    assert!(manifest.contains("\"audit\": null"), "{manifest}");
    swap_in(&h, &f, &old);
    let list = h.run(&["key", "list"], "");
    assert!(list.stderr.contains("`key` line"), "{list:?}");
    let mut h = h;
    h.start_agent();
    let out = h.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked"), "{out:?}");
    assert!(
        out.stderr.contains("REFUSED") && out.stderr.contains("k1"),
        "{out:?}"
    );
    h.signs_with("k2", b"SK2");
    let sign = tapsign_tests::at_rest::sign(&h, "k1");
    assert!(!sign.stdout.contains("AK1\""), "{sign:?}");
    // Not the first unlock only: the manifest it wrote records the later version.
    h.run(&["lock"], "").ok();
    let again = h.run(&["unlock"], "");
    assert!(again.stderr.contains("REFUSED"), "{again:?}");
    let sign = tapsign_tests::at_rest::sign(&h, "k1");
    assert!(!sign.stdout.contains("AK1\""), "{sign:?}");
}

/// The honest case of a manifest with no anchor: `key remove`, an unlock while the log cannot
/// be opened (the file gone, its record kept), then one with the log back. The removal's line,
/// folded in, leaves the name removed and refuses nothing; the warning says what happened.
#[test]
fn an_honest_anchorless_manifest_after_a_removal_opens_without_the_removed_key() {
    let mut h = home();
    h.run(&["key", "remove", "k1"], "").ok();
    log_unopenable(&mut h, |h| {
        unlock_once(h);
    });
    let out = unlock_once(&mut h);
    assert!(out.stdout.contains("Unlocked 1 key"), "{out:?}");
    assert!(!out.stderr.contains("REFUSED"), "{out:?}");
    assert!(out.stderr.contains("could not be opened"), "{out:?}");
    assert!(
        !out.stderr.contains("written beside another copy"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("after them beside another copy"),
        "{out:?}"
    );
    h.start_agent();
    h.run(&["unlock"], "").ok();
    h.signs_with("k2", b"SK2");
    assert_eq!(h.key_names(), ["k2"]);
}

/// Red-team round 24, recheck: right after the log was moved aside (the documented way to
/// start afresh), its old first line (signed) and one forged `key` line refused the whole
/// keystore and blamed "another copy". An unsigned line refuses the credential it names only,
/// as it does from an anchor.
#[test]
fn a_forged_key_line_in_a_log_started_afresh_refuses_that_credential_only() {
    let h = home();
    let log = h.home().join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::rename(&log, h.home().join("audit.log.old")).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.contains("\"type\":\"keystore\""), "{first}");
    put_back(&log, format!("{first}\n").as_bytes());
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 100_000;
    append_chained(
        &h,
        serde_json::json!({"type": "key_change", "action": "replace", "name": "k1",
            "created": later, "file": "ab".repeat(32), "pid": 1, "exe": "/bin/x"}),
    );
    let mut h = h;
    h.start_agent();
    let out = h.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked 1 key"), "{out:?}");
    assert!(
        out.stderr.contains("REFUSED") && out.stderr.contains("k1"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("another copy of the keystore"),
        "{out:?}"
    );
    h.signs_with("k2", b"SK2");
}

/// Red-team round 24, recheck: `key remove`, the log moved aside, an unlock, and the old log put
/// back: the manifest, anchored in the newer log, holds the removed name (its file gone), and
/// nothing opened, said as "another copy ... copied in". It never saw the removal's line: that
/// line leaves the name removed, and the rest opens.
#[test]
fn a_log_moved_aside_and_put_back_after_a_removal_opens_without_the_removed_key() {
    let mut h = home();
    h.run(&["key", "remove", "k1"], "").ok();
    let log = h.home().join("audit.log");
    let aside = h.home().join("audit.log.old");
    std::fs::rename(&log, &aside).unwrap();
    unlock_once(&mut h);
    std::fs::rename(&log, h.home().join("audit.log.new")).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    let out = unlock_once(&mut h);
    assert!(out.stdout.contains("Unlocked 1 key"), "{out:?}");
    assert!(!out.stderr.contains("copied in"), "{out:?}");
    assert!(
        out.stderr.contains("this log put back from an older copy"),
        "{out:?}"
    );
}

/// Red-team round 24, recheck: a log put back from an older backup beside a current keystore
/// (k2 replaced since, and unlocked): the trader's own k2, which the verified manifest records,
/// was told as a file no line records, "written by hand". It is said as stored beside another
/// log.
#[test]
fn a_key_stored_beside_a_newer_log_is_said_so_after_an_older_log_is_put_back() {
    let mut h = home();
    let log = h.home().join("audit.log");
    let backup = std::fs::read(&log).unwrap();
    h.run(
        &["key", "add", "k2", "--exchange", "binance", "--replace"],
        "AK2NEW\nSK2NEW\n",
    )
    .ok();
    unlock_once(&mut h);
    std::fs::remove_file(&log).unwrap();
    put_back(&log, &backup);
    h.start_agent();
    let out = h.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    assert!(
        out.stderr
            .contains("credential \"k2\" holds a later version than this audit log records")
            && out.stderr.contains("stored beside another audit log"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("written by hand"), "{out:?}");
    h.signs_with("k2", b"SK2NEW");
}

/// Red-team round 24, recheck: `lineage` taken out of every line of a rotated home's log and
/// the chain recomputed (the documented rewrite): the manifest is the last check's own, found
/// where its anchor is not, and the rotation's own line, signed by its vault key, was said to
/// be written by hand: the warning looked it up among the lines after the anchor only.
#[test]
fn a_rotations_line_is_not_said_written_by_hand_after_a_lineage_strip() {
    use sha2::Digest;
    let mut h = home();
    h.run(&["keystore", "rotate"], "").ok();
    unlock_once(&mut h);
    let path = h.home().join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut prev = "0".repeat(64);
    for l in text.lines() {
        let mut line: serde_json::Value = serde_json::from_str(l).unwrap();
        line["event"].as_object_mut().unwrap().remove("lineage");
        line["prev"] = prev.into();
        let written = line.to_string();
        prev = hex::encode(sha2::Sha256::digest(written.as_bytes()));
        out.push_str(&written);
        out.push('\n');
    }
    put_back(&path, out.as_bytes());
    let out = unlock_once(&mut h);
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    assert!(
        out.stderr.contains("signed by that vault's own key"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("wrote it by hand"), "{out:?}");
}

/// The home's audit log rewritten as `events` (each line's `event`), numbered from 1 and
/// chained from the start, as anyone who can write the log can: `audit verify` says intact.
fn rewrite_log(w: &World, events: Vec<serde_json::Value>) {
    use sha2::Digest;
    let mut out = String::new();
    let mut prev = "0".repeat(64);
    for (i, event) in events.into_iter().enumerate() {
        let line = serde_json::json!({
            "seq": i + 1,
            "time": "2026-01-01T00:00:00.000Z",
            "prev": prev,
            "event": event,
        });
        let written = line.to_string();
        prev = hex::encode(sha2::Sha256::digest(written.as_bytes()));
        out.push_str(&written);
        out.push('\n');
    }
    put_back(&w.home().join("audit.log"), out.as_bytes());
}

/// The events of the home's audit log, in order.
fn events_of(w: &World) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .collect()
}

/// The log without its `key remove` line(s): what a rewrite with the agent stopped leaves.
fn drop_removals(w: &World) {
    let events: Vec<_> = (events_of(w).into_iter())
        .filter(|e| !(e["type"] == "key_change" && e["action"] == "remove"))
        .collect();
    rewrite_log(w, events);
}

/// Red-team round 24, second recheck: in a log started afresh, one forged `key remove k1` line
/// before the trader's own first check (which lists nothing) and last check, replayed: the
/// removal was taken as borne out by the first check, the last one "went back" on it, and
/// nothing opened (`ChecksDisagree`), said as the trader's own check "written in another copy".
/// The unsigned line refuses k1 alone.
#[test]
fn a_forged_removal_before_the_first_check_refuses_that_credential_only() {
    let mut h = home();
    let events = events_of(&h);
    let first = events.first().unwrap().clone();
    assert_eq!(first["type"], "keystore", "{first}");
    let last = last_check_of(&h);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.home().join("keystore/manifest.json")).unwrap())
            .unwrap();
    let k1 = (manifest["credentials"].as_array().unwrap().iter())
        .find(|c| c["name"] == "k1")
        .unwrap()
        .clone();
    std::fs::rename(h.home().join("audit.log"), h.home().join("audit.log.old")).unwrap();
    let forged = serde_json::json!({"type": "key_change", "action": "remove", "name": "k1",
        "created": k1["created"], "file": k1["sha256"], "pid": 1, "exe": "/bin/x"});
    rewrite_log(&h, vec![forged, first, last]);
    h.start_agent();
    let out = h.run(&["unlock"], "");
    assert!(!out.stderr.contains("two checks"), "{out:?}");
    assert!(out.stdout.contains("Unlocked 1 key"), "{out:?}");
    assert!(
        out.stderr.contains("REFUSED") && out.stderr.contains("k1"),
        "{out:?}"
    );
    h.signs_with("k2", b"SK2");
}

/// Red-team round 24, second recheck: a removal stood on its unsigned `key remove` line alone.
/// That line dropped and the log rechained (the agent stopped), the copy's manifest and the old
/// file copied in: the removed key opened and signed, though the check before the removal
/// records k1 and the unlock's check after it leaves it out, both signed and in place.
#[test]
fn a_copys_manifest_does_not_bring_back_a_removal_whose_key_line_was_dropped() {
    let mut h = home();
    let mut f = fork(&h);
    let old = std::fs::read(cred_file(&h, "k1")).unwrap();
    h.run(&["key", "remove", "k1"], "").ok();
    unlock_once(&mut h);
    used_twice(&mut f);
    swap_in(&h, &f, &old);
    drop_removals(&h);
    let verify = h.run(&["audit", "verify"], "");
    assert!(verify.stdout.contains("intact"), "{verify:?}");
    h.start_agent();
    let out = h.run(&["unlock"], "");
    refused(&out);
    assert!(
        out.stderr.contains("credential \"k1\"")
            && out.stderr.contains("that later check leaves out"),
        "{out:?}"
    );
    let sign = tapsign_tests::at_rest::sign(&h, "k1");
    assert!(!sign.stdout.contains("AK1\""), "{sign:?}");
}

/// Red-team round 24, second recheck, the same on the rebuild's path, with no copy: `key remove
/// k1` and an unlock, then the old file put back, the manifest deleted and the `key remove`
/// line dropped. The rebuild the unlock advises took k1 back, calling it a file no line
/// records. The signed checks record k1 and then leave it out: it was removed.
#[test]
fn the_rebuild_does_not_take_back_a_removal_whose_key_line_was_dropped() {
    let mut h = home();
    let old = std::fs::read(cred_file(&h, "k1")).unwrap();
    h.run(&["key", "remove", "k1"], "").ok();
    unlock_once(&mut h);
    put_back(&cred_file(&h, "k1"), &old);
    std::fs::remove_file(h.home().join("keystore/manifest.json")).unwrap();
    drop_removals(&h);
    let rebuild = h.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    rebuild.fails_with(7, "\"k1\" was removed");
    // Moved out, the rebuild goes on, and k1 stays gone.
    std::fs::remove_file(cred_file(&h, "k1")).unwrap();
    h.run(&["keystore", "rotate", "--rebuild-manifest"], "")
        .ok();
    let out = unlock_once(&mut h);
    assert!(out.stdout.contains("Unlocked 1 key"), "{out:?}");
}

/// Red-team round 25: a copy's own signed check appended to an honest keystore's log (whose
/// anchor the log still holds) refuses the keystore by its generation, as an older copy put
/// back, which nothing was. The refusal stays; it now names the line and says that another
/// copy sharing the vault may have written it.
#[test]
fn a_copys_check_appended_to_an_honest_log_is_named_in_the_refusal() {
    let h = home();
    let mut f = fork(&h);
    used_twice(&mut f);
    let text = std::fs::read_to_string(f.home().join("audit.log")).unwrap();
    let last_check: serde_json::Value = text
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"]["type"] == "keystore")
        .unwrap();
    append_chained(&h, last_check["event"].clone());
    let seq = std::fs::read_to_string(h.home().join("audit.log"))
        .unwrap()
        .lines()
        .count();
    let mut h = h;
    h.start_agent();
    let out = h.run(&["unlock"], "");
    out.fails_with(7, "older copy of the keystore was put back");
    assert!(
        out.stderr.contains(&format!(
            "(audit line {seq}, a check signed by this keystore's vault key"
        )) && out
            .stderr
            .contains("another copy of the keystore sharing this vault"),
        "{out:?}"
    );
}
