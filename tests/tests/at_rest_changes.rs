//! Credential changes made while the agent runs: what its memory of the audit log makes of a
//! removal, and what the next unlock tells the trader changed since the last one.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;
use tapsign_tests::at_rest::{append_chained, cred_file, put_back, sign};

/// k1 and k2 stored, the agent running and unlocked once (the manifest records k1's first
/// version), then k1 replaced while it runs: k1's first file and its replacement.
fn k1_replaced_while_the_agent_runs() -> (World, Vec<u8>, Vec<u8>) {
    let mut w = World::new();
    w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
    w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    let first = std::fs::read(cred_file(&w, "k1")).unwrap();
    w.run(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "APIKEY1\nSECRET_V2\n",
    )
    .ok();
    let second = std::fs::read(cred_file(&w, "k1")).unwrap();
    (w, first, second)
}

/// The unlock opened k2 and refused k1 as a removed credential put back, and called nothing
/// an edit of the log.
fn refuses_k1_only(w: &World, out: &tapsign_tests::Run) {
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Unlocked 1 key(s): k2."), "{out:?}");
    assert!(
        out.stderr.contains("credential \"k1\" was removed"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("edited"), "{out:?}");
    assert!(!out.stderr.contains("rebuild-manifest"), "{out:?}");
    sign(w, "k2").ok();
    assert_ne!(sign(w, "k1").code, 0);
}

/// Red-team round 20: the trader's own `key remove k1`, run while an older copy of k1's file
/// was in place, recorded a removal of that older version; the running agent, which had seen
/// k1's replacement, took the log for edited and refused every unlock, advising a rebuild of
/// the manifest and not to restart it. The same agent now refuses k1 (either version put
/// back) and opens the rest.
#[test]
fn key_remove_over_an_older_copy_refuses_only_that_key_while_the_agent_runs() {
    for put_back_after in [0, 1] {
        let (w, first, second) = k1_replaced_while_the_agent_runs();
        put_back(&cred_file(&w, "k1"), &first);
        w.run(&["key", "remove", "k1"], "").ok();
        put_back(&cred_file(&w, "k1"), [&first, &second][put_back_after]);
        refuses_k1_only(&w, &w.run(&["unlock"], ""));
    }
}

/// The same with no command at all: one chained line appended (`tapsign audit verify` calls
/// the log intact), removing k1's first version and naming no real file.
#[test]
fn an_appended_removal_of_an_older_version_refuses_only_that_key_while_the_agent_runs() {
    let (w, first, _) = k1_replaced_while_the_agent_runs();
    let created = serde_json::from_slice::<serde_json::Value>(&first).unwrap()["created"]
        .as_u64()
        .unwrap();
    append_chained(
        &w,
        serde_json::json!({
            "type": "key_change",
            "action": "remove",
            "name": "k1",
            "created": created,
            "file": "0".repeat(64),
            "pid": 1,
            "exe": "/usr/bin/tapsign",
        }),
    );
    w.run(&["audit", "verify"], "").ok();
    w.run(&["status"], "").ok();
    refuses_k1_only(&w, &w.run(&["unlock"], ""));
}

/// Red-team round 20: `tapsign key add k1 --replace` run by anyone as the trader swapped in
/// their own API key and secret, and `unlock`, `key list` and `status` showed nothing: orders
/// went to their account. The next unlock names k1 as replaced, when and by what. Red-team
/// round 20, recheck: the answer goes to whoever asked for the unlock (a bot's takes it), and
/// `status` repeated it only until the next unlock, so two unlocks left the trader nothing; it
/// stays in `status` and every unlock's answer for a day, first of the warnings.
#[test]
fn the_unlock_after_a_replacement_names_it() {
    let (w, _, _) = k1_replaced_while_the_agent_runs();
    let line = std::fs::read_to_string(w.home().join("audit.log"))
        .unwrap()
        .lines()
        .rfind(|l| l.contains("\"key_change\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("k1"), "{out:?}");
    let said = out
        .stderr
        .lines()
        .find(|l| l.contains("credential \"k1\" was replaced since the keystore's last check"))
        .unwrap_or_else(|| panic!("{out:?}"));
    let time = line["time"].as_str().unwrap();
    assert!(said.starts_with("warning: "), "{said}");
    assert!(said.contains(&format!("replaced at {time}")), "{said}");
    assert!(
        said.contains(&format!("audit line {}", line["seq"])),
        "{said}"
    );
    assert!(said.contains("--replace"), "{said}");
    assert!(!out.stderr.contains("\"k2\" was"), "{out:?}");
    for _ in 0..2 {
        let again = w.run(&["unlock"], "");
        again.ok();
        let first = again.stderr.lines().find(|l| l.starts_with("warning: "));
        let first = first.unwrap_or_default();
        assert!(first.contains("\"k1\" was replaced"), "{again:?}");
    }
    let status = w.run(&["status"], "");
    assert!(
        status.ok().contains("\"k1\" was replaced")
            || status.stderr.contains("\"k1\" was replaced"),
        "{status:?}"
    );
}

/// Red-team round 21: `tapsign keystore rotate` (as `token add`, `token remove` and a rebuild)
/// wrote the next manifest, folding in a `key add --replace` made since the last check, and
/// said nothing: the next unlock had nothing left to note. The rotation names it before its
/// touch (the trader can stop there), loudly, and the running agent keeps it for `status` and
/// the next touch prompt. And the touch prompt's "Before you touch"
/// reached only the desktop notification: `tapsign unlock` says it on its terminal, before
/// the touch, for a change the coming check finds and for one an earlier check found (a bot's
/// unlock took that answer).
#[test]
fn a_rotation_and_the_unlock_terminal_name_a_replacement_before_the_touch() {
    let (w, _, _) = k1_replaced_while_the_agent_runs();
    let out = w.run(&["keystore", "rotate"], "");
    out.ok();
    let lines: Vec<&str> = out.stderr.lines().collect();
    let said = lines
        .iter()
        .position(|l| l.starts_with("WARNING: credential \"k1\" was replaced"))
        .unwrap_or_else(|| panic!("{out:?}"));
    let touch = lines.iter().position(|l| l.starts_with("Touch ")).unwrap();
    assert!(said < touch, "{out:?}");
    // The running agent keeps it as it keeps an unlock's: in `status`, and named before the
    // next touch, though the check has nothing left to say of it.
    let status = w.run(&["status"], "");
    assert!(
        status.ok().contains("\"k1\" was replaced")
            || status.stderr.contains("\"k1\" was replaced"),
        "{status:?}"
    );
    let out = w.run(&["unlock"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("WARNING: Before you touch: credential \"k1\""),
        "{out:?}"
    );

    let (w, _, _) = k1_replaced_while_the_agent_runs();
    for _ in 0..2 {
        // The first finds it; the second meets what the agent kept of it.
        let out = w.run(&["unlock"], "");
        out.ok();
        let lines: Vec<&str> = out.stderr.lines().collect();
        let said = lines
            .iter()
            .position(|l| l.starts_with("WARNING: Before you touch: credential \"k1\""))
            .unwrap_or_else(|| panic!("{out:?}"));
        let touch = lines.iter().position(|l| l.starts_with("Touch ")).unwrap();
        assert!(said < touch, "{out:?}");
    }
}

/// Red-team round 21: after a `key add --replace`, `rm manifest.json` (or k1's record forged to
/// the new file's hash) made the unlock fail with "no keystore, enroll a token" (or "does not
/// verify"), and the rebuild that the advice led to compared only against a manifest that
/// verifies: it said nothing, and the next unlock opened the other key in silence. Missing,
/// the manifest is said to be missing; the rebuild judges the files against the audit log's
/// last check and names k1 before its touch, and the running agent keeps it.
#[test]
fn a_rebuild_with_no_manifest_that_verifies_names_a_replacement_before_the_touch() {
    for forged in [false, true] {
        let (w, _, second) = k1_replaced_while_the_agent_runs();
        let manifest = w.home().join("keystore/manifest.json");
        if forged {
            use sha2::Digest;
            let hash = hex::encode(sha2::Sha256::digest(&second));
            tapsign_tests::at_rest::forge_manifest(&w, |m| {
                for c in m["credentials"].as_array_mut().unwrap() {
                    if c["name"] == "k1" {
                        c["sha256"] = hash.clone().into();
                    }
                }
            });
        } else {
            std::fs::remove_file(&manifest).unwrap();
            for args in [&["unlock"][..], &["key", "list"], &["token", "list"]] {
                let out = w.run(args, "");
                assert_ne!(out.code, 0, "{args:?}: {out:?}");
                assert!(out.stderr.contains("is missing"), "{args:?}: {out:?}");
                assert!(!out.stderr.contains("enroll a token first"), "{out:?}");
            }
        }
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        out.ok();
        let lines: Vec<&str> = out.stderr.lines().collect();
        let said = lines
            .iter()
            .position(|l| l.starts_with("WARNING: credential \"k1\" was replaced"))
            .unwrap_or_else(|| panic!("forged {forged}: {out:?}"));
        let touch = lines.iter().position(|l| l.starts_with("Touch ")).unwrap();
        assert!(said < touch, "{out:?}");
        let status = w.run(&["status", "--json"], "");
        let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
        assert_eq!(v["changed_keys"][0], "k1", "{status:?}");
    }
}

/// Red-team round 21: a replacement folded in by a `keystore rotate` (or `token add`/`token
/// remove`) was told only on that command's output; cut off (the agent stopped with SIGSTOP
/// made the command exit before it, or the command was killed), nothing told of it again. The
/// next unlock reads it from the audit log: here with no agent to tell at the rotation, and
/// one started afterwards.
#[test]
fn the_unlock_after_a_rotation_names_what_the_rotation_folded_in() {
    let (mut w, _, _) = k1_replaced_while_the_agent_runs();
    w.signal_agent("TERM");
    w.run(&["keystore", "rotate"], "").ok();
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let status = w.run(&["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(v["changed_keys"][0], "k1", "{status:?}");
    let out = w.run(&["unlock"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("WARNING: Before you touch: credential \"k1\""),
        "{out:?}"
    );
}

/// Red-team round 22: a file no line records writing (sealed in a copy of the keystore and
/// copied in; here the log is put back as it was before the `key add`), taken in by a
/// `keystore rotate`, was told only on the rotation's own output and in the `noted` it sent,
/// which any program may reword or crowd out after it. The next unlock reads it from the
/// rotation's signed records: a version of k1 no line records.
#[test]
fn the_unlock_after_a_rotation_names_a_file_it_took_in_that_no_line_records() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
    w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.signal_agent("TERM");
    let log = w.home().join("audit.log");
    let before = std::fs::read(&log).unwrap();
    w.run(
        &["key", "add", "k1", "--exchange", "binance", "--replace"],
        "EVILKEY\nEVILSECRET\n",
    )
    .ok();
    std::fs::write(&log, &before).unwrap();
    let rotated = w.run(&["keystore", "rotate"], "");
    rotated.ok();
    assert!(rotated.stderr.contains("credential \"k1\""), "{rotated:?}");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let status = w.run(&["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(v["changed_keys"], serde_json::json!(["k1"]), "{status:?}");
    let text = w.run(&["status"], "");
    assert!(
        text.ok()
            .contains("no line of the audit log records writing"),
        "{text:?}"
    );
}

/// The last `keystore` line of the audit log, as JSON (its event).
fn last_keystore_event(w: &World) -> serde_json::Value {
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    let line = log.lines().rfind(|l| l.contains("\"keystore\"")).unwrap();
    serde_json::from_str::<serde_json::Value>(line).unwrap()["event"].clone()
}

/// Red-team round 22: after a `key add --replace`, one `keystore` line appended to the log
/// (copying the last check's generation, vault and key, reason `unlock`) was taken for a
/// check, so the replacement stood before it: with `manifest.json` then removed, the advised
/// rebuild said nothing before or after its touch, and neither did the next unlock. Only a
/// line the vault key signed is a check: a copy of one (a replay) carries the records of the
/// file k1 no longer is, and one with no signature is left out.
#[test]
fn a_keystore_line_appended_by_hand_is_not_a_check() {
    for replayed in [false, true] {
        let (w, _, _) = k1_replaced_while_the_agent_runs();
        let mut event = last_keystore_event(&w);
        if !replayed {
            let e = event.as_object_mut().unwrap();
            e.remove("signature");
            e.remove("credentials");
            e.remove("lineage");
        }
        append_chained(&w, event);
        std::fs::remove_file(w.home().join("keystore/manifest.json")).unwrap();
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        out.ok();
        let lines: Vec<&str> = out.stderr.lines().collect();
        let said = lines
            .iter()
            .position(|l| l.starts_with("WARNING: credential \"k1\""))
            .unwrap_or_else(|| panic!("replayed {replayed}: {out:?}"));
        let touch = lines.iter().position(|l| l.starts_with("Touch ")).unwrap();
        assert!(said < touch, "{out:?}");
        assert!(!out.stderr.contains("credential \"k2\""), "{out:?}");
        w.run(&["unlock"], "").ok();
        let status = w.run(&["status", "--json"], "");
        let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
        assert_eq!(
            v["changed_keys"][0], "k1",
            "replayed {replayed}: {status:?}"
        );
    }
}

/// Red-team round 22: a rotation re-seals every credential, and its `keystore` line recorded
/// none of the new files' hashes, so a rebuild after it (`manifest.json` removed, or edited)
/// called every credential "a file that no line of the audit log records": a false alarm on
/// the recovery path, and a real replacement read like the rest. The rotation's line records
/// the files it sealed: the rebuild notes nothing, and a replacement since, alone.
#[test]
fn a_rebuild_after_a_rotation_names_only_what_changed_since() {
    for replace in [false, true] {
        let mut w = World::new();
        w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
        w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
        w.start_agent();
        w.run(&["unlock"], "").ok();
        w.run(&["keystore", "rotate"], "").ok();
        if replace {
            // The agent pins the new vault key once it has verified it.
            w.run(&["unlock"], "").ok();
            w.run(&["lock"], "").ok();
            w.run(
                &["key", "add", "k1", "--exchange", "binance", "--replace"],
                "APIKEY1\nSECRET_V2\n",
            )
            .ok();
        }
        std::fs::remove_file(w.home().join("keystore/manifest.json")).unwrap();
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        out.ok();
        let said: Vec<&str> = (out.stderr.lines())
            .filter(|l| l.starts_with("WARNING: credential"))
            .collect();
        match replace {
            false => assert!(said.is_empty(), "{out:?}"),
            true => {
                assert_eq!(said.len(), 1, "{out:?}");
                assert!(said[0].contains("\"k1\" was replaced"), "{out:?}");
            }
        }
    }
}

/// Red-team round 22: a rotation killed between its manifest and its `keystore` line (the
/// rename of `manifest.json` is an event any process can watch) folded in a `key add
/// --replace` made during its touch, and nothing named it: the command was dead before its
/// notes, and the next unlock compared with the manifest it left, which records the new file.
/// The next unlock judges a manifest no signed line records against the last check that one
/// does. Killed here by cutting the rotation's line from the log's end, which is what the
/// kill leaves (the line is the last one the rotation writes).
#[test]
fn the_unlock_after_a_rotation_killed_before_its_line_names_what_it_folded_in() {
    let (mut w, _, _) = k1_replaced_while_the_agent_runs();
    // Stopped: a running agent would remember the line.
    w.signal_agent("TERM");
    w.run(&["keystore", "rotate"], "").ok();
    let path = w.home().join("audit.log");
    let log = std::fs::read_to_string(&path).unwrap();
    let cut = log.trim_end().rfind('\n').unwrap() + 1;
    assert!(log[cut..].contains("\"keystore\""), "{log}");
    put_back(&path, &log.as_bytes()[..cut]);
    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("credential \"k1\" was replaced since the keystore's last check"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("credential \"k2\""), "{out:?}");
    let status = w.run(&["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(v["changed_keys"][0], "k1", "{status:?}");
}

/// The `keystore` lines of the audit log with a signature, as JSON events, oldest first.
fn signed_keystore_events(w: &World, reason: &str) -> Vec<serde_json::Value> {
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    (log.lines())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .filter(|e| e["type"] == "keystore" && e["signature"].is_string() && e["reason"] == reason)
        .collect()
}

/// Rewrite the audit log through `edit` on each line's event, the chain recomputed (a plain
/// SHA-256 chain: anyone who can write the log can), with the agent stopped.
fn rewrite_log(w: &World, edit: impl Fn(&mut serde_json::Value)) {
    use sha2::Digest;
    let path = w.home().join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut prev: Option<String> = None;
    for l in text.lines() {
        let mut line: serde_json::Value = serde_json::from_str(l).unwrap();
        edit(&mut line["event"]);
        if let Some(p) = &prev {
            line["prev"] = hex::encode(sha2::Sha256::digest(p.as_bytes())).into();
        }
        let written = line.to_string();
        out.push_str(&written);
        out.push('\n');
        prev = Some(written);
    }
    put_back(&path, out.as_bytes());
}

/// Red-team round 22, recheck: a signed line verifies wherever it is put. The first unlock's
/// line, appended again after a rotation, was taken for the keystore's last check, so the
/// rebuild after `rm manifest.json` called every credential (re-sealed by the rotation) a file
/// no line records, and a real replacement read word for word like the false alarms.
/// Generations only rise: the copy is said as such, and the check before it is the last.
#[test]
fn a_signed_line_copied_from_before_a_rotation_is_not_a_check() {
    for replace in [false, true] {
        let mut w = World::new();
        w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
        w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
        w.start_agent();
        w.run(&["unlock"], "").ok();
        let first = signed_keystore_events(&w, "unlock").remove(0);
        w.run(&["keystore", "rotate"], "").ok();
        w.run(&["unlock"], "").ok();
        if replace {
            w.run(&["lock"], "").ok();
            w.run(
                &["key", "add", "k1", "--exchange", "binance", "--replace"],
                "APIKEY1\nSECRET_V2\n",
            )
            .ok();
        }
        append_chained(&w, first);
        std::fs::remove_file(w.home().join("keystore/manifest.json")).unwrap();
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        out.ok();
        let said: Vec<&str> = (out.stderr.lines())
            .filter(|l| l.starts_with("WARNING: credential"))
            .collect();
        match replace {
            false => assert!(said.is_empty(), "{out:?}"),
            true => {
                assert_eq!(said.len(), 1, "{out:?}");
                assert!(said[0].contains("\"k1\" was replaced"), "{out:?}");
            }
        }
        assert!(
            out.stderr
                .contains("repeats a keystore check the vault key signed"),
            "{out:?}"
        );
    }
}

/// Red-team round 22, recheck: with the agent stopped, a `key add --replace` folded in by a
/// rotation whose output went unseen, then the last signed `unlock` line appended again: it
/// became the unlock before the last, and the next unlock's reading of what the rotation
/// folded in found nothing between them. The copy is no unlock: the next unlock names k1 as
/// folded in by the rotation, and the copy as such. So does an agent that ran throughout, which
/// reads from its last unlock on, where the lines the copy repeats are not: there the copy,
/// put between the replacement and the rotation, made k1 read as a file no line records.
#[test]
fn a_signed_unlock_line_appended_again_does_not_hide_what_a_command_folded_in() {
    for stopped in [true, false] {
        let mut w = World::new();
        w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
        w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
        w.start_agent();
        w.run(&["unlock"], "").ok();
        w.run(&["lock"], "").ok();
        let last = signed_keystore_events(&w, "unlock").pop().unwrap();
        if stopped {
            w.signal_agent("TERM");
        }
        w.run(
            &["key", "add", "k1", "--exchange", "binance", "--replace"],
            "EVILKEY\nEVILSECRET\n",
        )
        .ok();
        if stopped {
            w.run(&["keystore", "rotate"], "").ok();
            append_chained(&w, last);
        } else {
            append_chained(&w, last);
            w.run(&["keystore", "rotate"], "").ok();
        }
        if stopped {
            w.start_agent();
        }
        let out = w.run(&["unlock"], "");
        out.ok();
        assert!(
            out.stderr.contains("credential \"k1\" was replaced at"),
            "stopped {stopped}: {out:?}"
        );
        assert!(
            out.stderr.contains("which folded it in"),
            "stopped {stopped}: {out:?}"
        );
        assert!(
            out.stderr
                .contains("repeats a keystore check the vault key signed"),
            "stopped {stopped}: {out:?}"
        );
        assert!(
            !out.stderr.contains("holds a file that no line"),
            "stopped {stopped}: {out:?}"
        );
        let status = w.run(&["status", "--json"], "");
        let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
        assert_eq!(v["changed_keys"][0], "k1", "{status:?}");
    }
}

/// Red-team round 22, recheck: with the agent stopped, the signature and records taken out of
/// every `keystore` line (the chain recomputed) made the log read as one from before lines
/// were signed, and a copy of the last line with reason `unlock`, unsigned, was taken for a
/// check after a `key add --replace`: the advised rebuild took the other API key in silence.
/// A log this version writes carries signed lines, so a rebuild with none to go by is refused
/// before its touch, naming the lines; with `--unchecked` it goes on, saying the log vouches
/// for nothing.
#[test]
fn a_rebuild_refuses_a_log_with_its_signatures_taken_out() {
    let (mut w, _, _) = k1_replaced_while_the_agent_runs();
    w.signal_agent("TERM");
    rewrite_log(&w, |e| {
        if e["type"] == "keystore" {
            let e = e.as_object_mut().unwrap();
            e.remove("signature");
            e.remove("credentials");
        }
    });
    let mut copy = last_keystore_event(&w);
    let e = copy.as_object_mut().unwrap();
    e.remove("lineage");
    e.insert("reason".into(), "unlock".into());
    append_chained(&w, copy);
    assert_eq!(w.run(&["audit", "verify"], "").code, 0);
    std::fs::remove_file(w.home().join("keystore/manifest.json")).unwrap();
    let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    out.fails_with(7, "holds no keystore check signed by the vault key");
    assert!(
        out.stderr.contains("carry no signature that verifies"),
        "{out:?}"
    );
    assert!(out.stderr.contains("audit lines 1, "), "{out:?}");
    assert!(out.stderr.contains("before this version"), "{out:?}");
    assert!(!out.stderr.contains("Touch "), "{out:?}");
    let out = w.run(
        &["keystore", "rotate", "--rebuild-manifest", "--unchecked"],
        "",
    );
    out.ok();
    assert!(out.stderr.contains("vouches for none of them"), "{out:?}");
}

/// Red-team round 23: with the agent stopped, `lineage` taken out of every line (signatures
/// kept, the chain recomputed), and the vault folder from before a rotation put back in place
/// of the new one (or the whole keystore from before it): the record then believed the older
/// vault only, and the rebuild went on from it saying nothing of it, calling the rotation's own
/// signed lines written by hand. It says, before its touch and after, that the log records a
/// later vault than the one on disk, and goes on (its recheck: a refusal made one forged line a
/// dead end, below): only the touched token gets the new vault key.
#[test]
fn a_rebuild_says_an_older_vault_put_back_beside_a_log_without_its_links() {
    for whole_keystore in [false, true] {
        let mut w = World::new();
        w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
        w.setup_key("k2", "binance", "APIKEY2", "SECRET_K2");
        w.start_agent();
        w.run(&["unlock"], "").ok();
        let ks = w.home().join("keystore");
        let (from, copy) = match whole_keystore {
            true => (ks.clone(), w.home().join("old-keystore")),
            false => (tapsign_tests::at_rest::live(&w), w.home().join("old-vault")),
        };
        let cp = std::process::Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(cp.success());
        w.run(&["keystore", "rotate"], "").ok();
        w.run(&["unlock"], "").ok();
        w.signal_agent("TERM");
        rewrite_log(&w, |e| {
            e.as_object_mut().unwrap().remove("lineage");
        });
        assert_eq!(w.run(&["audit", "verify"], "").code, 0);
        match whole_keystore {
            true => std::fs::remove_dir_all(&ks).unwrap(),
            false => {
                std::fs::remove_dir_all(tapsign_tests::at_rest::live(&w)).unwrap();
                std::fs::remove_file(ks.join("manifest.json")).unwrap();
            }
        }
        std::fs::rename(&copy, &from).unwrap();
        let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
        out.ok();
        let said = "records a later vault than the one on disk";
        let (before, after) = out.stderr.split_once("Touch ").expect("a touch");
        assert!(before.contains(said), "not before the touch: {out:?}");
        assert!(after.contains(said), "not after the touch: {out:?}");
        assert!(
            out.stderr.contains("signed by that vault's own key")
                && out
                    .stderr
                    .contains("an older copy of the keystore was put back"),
            "{out:?}"
        );
        // The trader's own lines are not said to be written by hand.
        assert!(
            !out.stderr.contains("no holder of the vault key signed"),
            "{out:?}"
        );
        assert!(!out.stderr.contains("wrote it by hand"), "{out:?}");
    }
}

/// Round 23's recheck: one line appended to the log, signed by a vault key of its own at a
/// generation above the keystore's (here a genuine line of another home, spliced in; no file of
/// the keystore touched), made the unlock refuse and advise the rebuild, and the rebuild then
/// refused too, telling the trader to restore a newer vault from a backup that does not exist.
/// The rebuild says the line and goes on; the keystore then unlocks and signs.
#[test]
fn a_forged_later_vault_line_leaves_the_advised_rebuild_a_way_out() {
    let other = World::new();
    other.setup_key("x", "binance", "APIKEYX", "SECRETX");
    for _ in 0..4 {
        other.run(&["keystore", "rotate"], "").ok();
    }
    let log = std::fs::read_to_string(other.home().join("audit.log")).unwrap();
    let spliced = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .rfind(|e| e["type"] == "keystore" && e["signature"].is_string())
        .expect("a signed keystore line");
    let mut w = World::new();
    w.setup_key("k1", "binance", "APIKEY1", "SECRET_V1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    assert!(
        spliced["generation"].as_u64() > Some(2),
        "the spliced line is not above: {spliced}"
    );
    tapsign_tests::at_rest::append_chained(&w, spliced);
    let out = w.run(&["unlock"], "");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("--rebuild-manifest"), "{out:?}");
    w.signal_agent("TERM");
    let out = w.run(&["keystore", "rotate", "--rebuild-manifest"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("records a later vault than the one on disk")
            && out.stderr.contains("someone appended that line"),
        "{out:?}"
    );
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.signs_with("k1", b"SECRET_V1");
}
