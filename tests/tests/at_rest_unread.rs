//! At rest, with the audit log made unreadable for one command (`chmod 000`, `chmod 200`) while
//! it can still be appended to: the running agent appends through the descriptor it holds, and
//! a write-only log opens for appending. A check that could not read the record must not write
//! a record that vouches for what it could not check (red-team round 25).
//!
//! The agent and the CLI run as the user nobody: root reads a file whatever its mode. Needs
//! root to hand the world over; skips otherwise, and fails in CI (`TAPSIGN_VYK_REQUIRE=1`).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;

use tapsign_tests::at_rest::{cred_file, put_back, sign};
use tapsign_tests::{World, skip};

const NOBODY: u32 = 65534;

/// A world run as nobody with k1 and k2 (Binance), unlocked once, the agent stopped; `None`
/// (after a skip) when this process cannot switch users.
fn home() -> Option<World> {
    if !skip::needs_root("running the agent and the CLI as the user nobody") {
        return None;
    }
    let mut w = World::new();
    w.become_user(NOBODY);
    w.setup_key("k1", "binance", "AK1", "SK1");
    w.setup_key("k2", "binance", "AK2", "SK2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    Some(w)
}

fn log_mode(w: &World, mode: u32) {
    let log = w.home().join("audit.log");
    std::fs::set_permissions(log, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn manifest(w: &World) -> Vec<u8> {
    std::fs::read(w.home().join("keystore/manifest.json")).unwrap()
}

/// The trader replaces (or removes) k1, whose secret leaked, and unlocks: that check, signed,
/// records the change. Malware that kept the manifest and k1's file from before puts both back
/// while an agent runs, and makes the log unreadable for the next unlock only. An agent that
/// read the log at its start refuses it (its generation is older than the log's). One started
/// while the log could not be read could not read the record, and opens what it finds (the
/// documented residual of a log that cannot be read: docs/threat-model.md). But its manifest
/// was anchored at its own check line,
/// written through the agent's open descriptor, so every later unlock, with the log readable
/// and intact, found it anchored and opened the old k1 again.
fn rolled_back_for_one_unlock(change: &[&str], stdin: &str) {
    let Some(mut w) = home() else {
        return;
    };
    let (old_manifest, old_k1) = (manifest(&w), std::fs::read(cred_file(&w, "k1")).unwrap());
    w.run(change, stdin).ok();
    w.start_agent();
    w.run(&["unlock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));

    w.start_agent();
    put_back(&w.home().join("keystore/manifest.json"), &old_manifest);
    put_back(&cred_file(&w, "k1"), &old_k1);
    // Malware runs as the trader: the files it puts back are the trader's.
    std::os::unix::fs::chown(cred_file(&w, "k1"), Some(NOBODY), Some(NOBODY)).unwrap();
    log_mode(&w, 0o000);
    // An agent that read the log at its start knows the trader's check's generation, and
    // takes nothing older, whatever that unlock reads (red-team round 26, part 2).
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "this agent already saw generation");
    assert_eq!(w.signal_agent("TERM"), Some(0));
    // One that started with the log unreadable knows nothing of it: that unlock opens.
    w.start_agent();
    let out = w.run(&["unlock"], "");
    log_mode(&w, 0o600);
    assert!(out.stderr.contains("could not be read back"), "{out:?}");
    assert!(out.stderr.contains("anchored nowhere"), "{out:?}");
    let written = String::from_utf8(manifest(&w)).unwrap();
    assert!(written.contains("\"audit\": null"), "{written}");
    w.run(&["lock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));

    // From the next unlock on, the log readable: the manifest is held to the trader's check,
    // which it goes back on, and nothing opens.
    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "does not follow the audit log's check");
    assert!(!sign(&w, "k1").stdout.contains("\"AK1\""));
    // The way out it names holds the files to the log, and names the old copy of k1.
    assert_eq!(w.signal_agent("TERM"), Some(0));
    let rebuild = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    rebuild.fails_with(7, "k1");
}

#[test]
fn a_log_unreadable_for_one_unlock_does_not_bring_back_a_replaced_credential() {
    rolled_back_for_one_unlock(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "AK1NEW\nSK1NEW\n",
    );
}

#[test]
fn a_log_unreadable_for_one_unlock_does_not_bring_back_a_removed_credential() {
    rolled_back_for_one_unlock(&["key", "remove", "k1"], "");
}

/// The honest case: the log unreadable for one unlock (a mistaken `chmod`), nothing put back.
/// That unlock opens with its warnings; the next, with the log readable, opens everything and
/// anchors the manifest again, so the one after (a new agent's) says nothing more of it.
#[test]
fn an_honest_unlock_with_the_log_unreadable_is_taken_back_in_by_the_next() {
    let Some(mut w) = home() else {
        return;
    };
    w.start_agent();
    log_mode(&w, 0o000);
    let out = w.run(&["unlock"], "");
    log_mode(&w, 0o600);
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    // A log that could not be read, not one started afresh (red-team round 25, recheck).
    assert!(!out.stderr.contains("started afresh"), "{out:?}");
    w.run(&["lock"], "").ok();
    let out = w.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    assert!(!out.stderr.contains("REFUSED"), "{out:?}");
    // Said as what it is: a manifest with no anchor, not one anchored in another log.
    assert!(
        out.stderr.contains("(generation 3) has no anchor"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("anchored in another audit log"),
        "{out:?}"
    );
    w.signs_with("k1", b"SK1");
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    assert!(!out.stderr.contains("anchor"), "{out:?}");
    let written = String::from_utf8(manifest(&w)).unwrap();
    assert!(!written.contains("\"audit\": null"), "{written}");
}

/// Red-team round 25, third recheck: with an agent running that had not unlocked since it
/// started (so it pinned no vault), another log put at the path for `key add` alone, with a
/// keystore of another vault, had the trader's new secret sealed to that vault; the agent's
/// alarm came after. `key add` asks the agent first, whose answer then holds no audit head
/// (it found another file at its log's path), and stores nothing.
#[test]
fn key_add_stores_nothing_while_the_running_agent_finds_another_log_at_the_path() {
    let Some(mut w) = home() else {
        return;
    };
    w.start_agent();
    let out = key_add_with_the_log_replaced(&w);
    assert!(
        out.stderr.contains("does not hold the audit log"),
        "{out:?}"
    );
    assert!(!cred_file(&w, "k9").exists());
}

/// `key add k9` with the running agent's log renamed aside and a copy of it put at the path
/// (the agent then finds another file there): it fails and says nothing was stored.
fn key_add_with_the_log_replaced(w: &World) -> tapsign_tests::Run {
    let log = w.home().join("audit.log");
    let real = w.home().join("audit.log.real");
    std::fs::rename(&log, &real).unwrap();
    std::fs::copy(&real, &log).unwrap();
    std::os::unix::fs::chown(&log, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = w.run(
        &["key", "add", "k9", "--exchange", "binance"],
        "AKTRADER9\nSKTRADER9\n",
    );
    out.fails_with(7, "nothing was stored");
    out
}

/// Copy `from` to `to` as `cp -a` does (owner and modes kept): a copy of the keystore folder.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every credential file named `name` under the keystore folder, in any vault's folder.
fn cred_files_named(w: &World, name: &str) -> Vec<std::path::PathBuf> {
    let ks = w.home().join("keystore");
    std::fs::read_dir(&ks)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .join("credentials")
                .join(format!("{name}.json"))
        })
        .filter(|p| p.exists())
        .collect()
}

/// Red-team round 26 (G1)'s steps up to the trader's unlock: the trader rotates the keystore
/// (the vault key may have leaked), and unlocks once. Malware kept a copy of the keystore, and
/// of the log, from before; it restarts the agent while the log cannot be opened, and puts the
/// keystore's copy back: the trader's unlock opens it for one session (the documented residual
/// of a log that cannot be read, with its warnings). Returns the world, its agent running, and
/// the copy of the log from before the rotation; the log is readable again.
fn opened_by_an_unread_unlock() -> Option<(World, std::path::PathBuf)> {
    let mut w = home()?;
    let ks = w.home().join("keystore");
    let stash = w.home().join("stash");
    copy_tree(&ks, &stash);
    let old_log = w.home().join("audit.log.before");
    copy_tree(&w.home().join("audit.log"), &old_log);
    w.start_agent();
    let rotated = w.run(&["keystore", "rotate"], "");
    assert!(rotated.ok().contains("new vault key"), "{rotated:?}");
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));

    // The agent starts while the log cannot be opened; the pre-rotation copy is put back.
    log_mode(&w, 0o000);
    w.start_agent();
    std::fs::remove_dir_all(&ks).unwrap();
    copy_tree(&stash, &ks);
    let out = w.run(&["unlock"], "");
    assert!(out.stdout.contains("Unlocked 2 key"), "{out:?}");
    assert!(out.stderr.contains("anchored nowhere"), "{out:?}");
    let status = w.run(&["status", "--json"], "");
    let status: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(status["keystore"]["log_unread"], true, "{status}");
    log_mode(&w, 0o600);
    Some((w, old_log))
}

/// Red-team round 26 (G1): after [`opened_by_an_unread_unlock`], that check left the running
/// agent's pin on the old vault, and a later `key add`, with the log moved aside for it, was
/// vouched for by that pin alone: the trader's new secret was sealed to the pre-rotation
/// vault. A check that could not read the log pins nothing, and `key add` asks the agent
/// first: it refuses and stores nothing anywhere.
#[test]
fn key_add_is_not_vouched_for_by_an_unlock_that_could_not_read_the_log() {
    let Some((mut w, _)) = opened_by_an_unread_unlock() else {
        return;
    };
    // The log moved aside for the trader's next `key add`.
    let log = w.home().join("audit.log");
    let hidden = w.home().join("audit.log.hidden");
    std::fs::rename(&log, &hidden).unwrap();
    let out = w.run(
        &["key", "add", "k3", "--exchange", "binance"],
        "AKTRADER3\nSKTRADER3\n",
    );
    out.fails_with(7, "with the log readable");
    assert!(cred_files_named(&w, "k3").is_empty(), "{out:?}");

    // The log put back: nothing is stored either, and an agent reading it (the one running
    // holds the file it made meanwhile) refuses the copy.
    std::fs::rename(&hidden, &log).unwrap();
    let out = w.run(
        &["key", "add", "k3", "--exchange", "binance"],
        "AKTRADER3\nSKTRADER3\n",
    );
    out.fails_with(7, "nothing was stored");
    assert!(cred_files_named(&w, "k3").is_empty(), "{out:?}");
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w.start_agent();
    w.run(&["unlock"], "")
        .fails_with(7, "older copy of the keystore was put back");
}

/// Red-team round 26, F1: `key add`'s refusal quoted the first warning naming the audit log,
/// and the agent keeps notes of earlier checks for a day, listed first: it gave a note about
/// another manifest (the "has no anchor" one an unlock with the log unreadable leaves) as its
/// reason. It also said to restart the agent before the unlock, the opposite of `status`,
/// whose order keeps what the running agent saw. It quotes the warning that is the reason,
/// and gives `status`'s order.
#[test]
fn key_add_names_the_replaced_log_not_a_kept_note_and_unlocks_before_the_restart() {
    let Some(mut w) = home() else {
        return;
    };
    w.start_agent();
    log_mode(&w, 0o000);
    w.run(&["unlock"], "").ok();
    log_mode(&w, 0o600);
    w.run(&["lock"], "").ok();
    let out = w.run(&["unlock"], "");
    assert!(out.stderr.contains("has no anchor"), "{out:?}");
    let out = key_add_with_the_log_replaced(&w);
    assert!(
        out.stderr.contains("was replaced by another file"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("has no anchor"), "{out:?}");
    let steps = out
        .stderr
        .split("nothing was stored. Then:")
        .nth(1)
        .expect("the steps");
    let at = |s: &str| steps.find(s).unwrap_or_else(|| panic!("{s:?} in {steps}"));
    assert!(
        at("audit verify --head") < at("`tapsign unlock` once"),
        "{steps}"
    );
    assert!(
        at("`tapsign unlock` once") < at("restart the agent"),
        "{steps}"
    );
    assert!(!cred_file(&w, "k9").exists());
}

/// Red-team round 26, part 2 (F2): the same steps, with the copy of the log from before the
/// rotation put at the path (a new file) for the trader's `key add`, in place of the log
/// moved aside, and the keystore's copy put back again as it was (its manifest anchored in
/// that log; the unread unlock had written one anchored nowhere). That log agrees with the
/// keystore (its newest generation is the old manifest's, its record of the vaults ends at
/// the old vault), so `key add`, holding the vault to the log alone once the agent's pin no
/// longer counted, sealed the new secret to the pre-rotation vault. With an agent running,
/// the agent's last check must have read the log, and the log `key add` reads must be the one
/// the agent holds: it stores nothing. So do the keystore's other commands, before they
/// change anything (F3).
#[test]
fn with_an_agent_running_no_command_takes_the_log_from_before_for_the_real_one() {
    let Some((w, old_log)) = opened_by_an_unread_unlock() else {
        return;
    };
    let log = w.home().join("audit.log");
    let hidden = w.home().join("audit.log.hidden");
    std::fs::rename(&log, &hidden).unwrap();
    copy_tree(&old_log, &log);
    let ks = w.home().join("keystore");
    std::fs::remove_dir_all(&ks).unwrap();
    copy_tree(&w.home().join("stash"), &ks);
    let before = manifest(&w);
    let out = w.run(
        &["key", "add", "k3", "--exchange", "binance"],
        "AKTRADER3\nSKTRADER3\n",
    );
    out.fails_with(7, "nothing was stored");
    assert!(cred_files_named(&w, "k3").is_empty(), "{out:?}");
    for (cmd, said) in [
        (&["keystore", "rotate"][..], "the keystore was not changed"),
        (&["key", "remove", "k2"][..], "nothing was removed"),
    ] {
        let out = w.run(cmd, "");
        out.fails_with(7, said);
        assert!(!out.stdout.contains("new vault key"), "{out:?}");
    }
    assert_eq!(manifest(&w), before);
    assert_eq!(cred_files_named(&w, "k2").len(), 1);
}
