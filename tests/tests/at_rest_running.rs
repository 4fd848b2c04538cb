//! At rest, while the agent runs: the audit log edited in place under a running agent, where
//! the agent's checks of its last line and of what was appended do not look, must not bring
//! back what the log recorded as gone. What the agent saw recorded is kept in memory, and a
//! record whose chain breaks after the keystore's anchor is refused, not warned about.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use tapsign_tests::World;
use tapsign_tests::at_rest::{append_chained, cred_file, put_back, sign};

fn log_path(w: &World) -> PathBuf {
    w.home().join("audit.log")
}

/// Overwrite line `n` (1-based) of the log in place with `edit(line)`, which must keep its
/// length: the file keeps its inode, its length and its last line, as `python r+b` would.
fn edit_line_in_place(w: &World, n: usize, edit: impl FnOnce(&str) -> String) {
    let path = log_path(w);
    let text = std::fs::read_to_string(&path).unwrap();
    let offset: usize = text.split_inclusive('\n').take(n - 1).map(str::len).sum();
    let line = text.lines().nth(n - 1).unwrap();
    let edited = edit(line);
    assert_eq!(edited.len(), line.len(), "same length");
    assert_ne!(edited, line);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(edited.as_bytes(), offset as u64).unwrap();
}

/// The 1-based number of the last log line for which `pick` holds.
fn last_line_where(w: &World, pick: impl Fn(&serde_json::Value) -> bool) -> usize {
    let text = std::fs::read_to_string(log_path(w)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.iter().rposition(pick).unwrap() + 1
}

fn three_keys_unlocked() -> World {
    let mut w = World::new();
    for k in ["kb", "kb3", "kb4"] {
        w.setup_key(k, "binance", "ak", "sk");
    }
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w
}

#[test]
fn a_middle_audit_line_edited_while_the_agent_runs_does_not_bring_back_a_removed_key() {
    let w = three_keys_unlocked();
    let backup = std::fs::read(cred_file(&w, "kb3")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    sign(&w, "kb").ok();
    let n = last_line_where(&w, |l| l["event"]["type"] == "key_change");
    edit_line_in_place(&w, n, |l| l.replace("\"name\":\"kb3\"", "\"name\":\"kb9\""));
    sign(&w, "kb").ok();
    put_back(&cred_file(&w, "kb3"), &backup);
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "tapsign audit verify");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
}

/// Changes the last digit of the time on the audit line the keystore's manifest is anchored
/// at, in place: the line keeps its place and its length, and the next line no longer chains.
fn change_a_digit_of_the_anchored_line(w: &World) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.home().join("keystore/manifest.json")).unwrap())
            .unwrap();
    let anchored = manifest["audit"]["seq"].as_u64().unwrap() as usize;
    edit_line_in_place(w, anchored, |l| {
        let at = l.find("Z\"").unwrap() - 1;
        let digit = if &l[at..=at] == "7" { "8" } else { "7" };
        format!("{}{digit}{}", &l[..at], &l[at + 1..])
    });
}

/// The same, with the line the keystore's manifest is anchored at edited instead: the log
/// still goes on from it, so the record is broken, not a log started afresh.
#[test]
fn the_anchored_line_edited_instead_is_caught_by_what_the_agent_saw() {
    let w = three_keys_unlocked();
    let backup = std::fs::read(cred_file(&w, "kb3")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    change_a_digit_of_the_anchored_line(&w);
    put_back(&cred_file(&w, "kb3"), &backup);
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "was edited");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
}

/// Edit one digit of the anchored line's time, with the agent stopped: the line is still in
/// its place and the log goes on from it, so this is a broken record (nothing opens), not a
/// log started afresh (which only warns). `key list` says so too.
#[test]
fn the_anchored_line_edited_with_the_agent_stopped_is_a_broken_record() {
    let mut w = three_keys_unlocked();
    let backup = std::fs::read(cred_file(&w, "kb3")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    change_a_digit_of_the_anchored_line(&w);
    put_back(&cred_file(&w, "kb3"), &backup);
    let list = w.run(&["key", "list"], "");
    assert!(list.stderr.contains("is broken"), "{list:?}");
    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "is broken");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
}

/// Red-team round 23: one more digit in the anchored line's `seq` (the agent stopped) moves
/// the offset the manifest records off the line's end, and the unlock read a log started
/// afresh: it opened with a warning where the same edit keeping the line's length is refused,
/// and said the manifest's command stopped before its line. The next line still chains from
/// the recorded hash: a broken record, refused, and no command is said to have stopped.
#[test]
fn the_anchored_line_made_longer_with_the_agent_stopped_is_a_broken_record() {
    let mut w = three_keys_unlocked();
    let backup = std::fs::read(cred_file(&w, "kb3")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.home().join("keystore/manifest.json")).unwrap())
            .unwrap();
    let anchored = manifest["audit"]["seq"].as_u64().unwrap();
    let text = std::fs::read_to_string(log_path(&w)).unwrap();
    let from = format!("{{\"seq\":{anchored},");
    let edited = text.replacen(&from, &format!("{{\"seq\":{anchored}0,"), 1);
    assert_ne!(edited, text);
    put_back(&log_path(&w), edited.as_bytes());
    put_back(&cred_file(&w, "kb3"), &backup);
    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "was edited");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
    assert!(!out.stderr.contains("stopped before its line"), "{out:?}");
}

/// A log moved aside and started afresh is a gap: unlock opens with a warning, and `key list`
/// prints the same warning.
#[test]
fn key_list_warns_when_the_record_cannot_be_read_back() {
    let w = three_keys_unlocked();
    std::fs::rename(log_path(&w), w.home().join("audit.log.old")).unwrap();
    let list = w.run(&["key", "list"], "");
    assert!(list.stderr.contains("could not be read back"), "{list:?}");
}

#[test]
fn a_rotation_record_edited_down_while_the_agent_runs_does_not_reopen_an_old_copy() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let ks = w.home().join("keystore");
    let copy = w.home().join("keystore-copy");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&ks)
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    w.run(&["keystore", "rotate"], "").ok();
    std::fs::remove_dir_all(&ks).unwrap();
    std::fs::rename(&copy, &ks).unwrap();
    w.run(&["unlock"], "")
        .fails_with(7, "older copy of the keystore was put back");
    sign(&w, "nope").fails_with(5, "unknown_key");
    let text = std::fs::read_to_string(log_path(&w)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rotated = last_line_where(&w, |l| {
        l["event"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("rotated"))
    });
    let before = lines[..rotated - 1]
        .iter()
        .rfind(|l| l["event"]["type"] == "keystore")
        .unwrap();
    let (old_gen, old_vault) = (
        before["event"]["generation"].as_u64().unwrap(),
        before["event"]["vault"].as_str().unwrap().to_owned(),
    );
    let new = &lines[rotated - 1]["event"];
    let (new_gen, new_vault) = (
        new["generation"].as_u64().unwrap(),
        new["vault"].as_str().unwrap().to_owned(),
    );
    let forged_gen = old_gen - 1;
    assert_eq!(forged_gen.to_string().len(), new_gen.to_string().len());
    edit_line_in_place(&w, rotated, |l| {
        l.replace(
            &format!("\"generation\":{new_gen},\"vault\":\"{new_vault}\""),
            &format!("\"generation\":{forged_gen},\"vault\":\"{old_vault}\""),
        )
    });
    let manifest_before = std::fs::read(ks.join("manifest.json")).unwrap();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
    assert_eq!(
        std::fs::read(ks.join("manifest.json")).unwrap(),
        manifest_before,
        "no manifest written under the old vault"
    );
}

/// A crash that tore a line, which the next writer ended and chained on from, is damage the
/// log already accounts for: the keystore's check reads past it and opens the keys.
#[test]
fn a_torn_line_after_a_crash_does_not_stop_unlock() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    // What a crash mid-write leaves: the start of the next line, no newline.
    let text = std::fs::read_to_string(log_path(&w)).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let next = last["seq"].as_u64().unwrap() + 1;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(log_path(&w))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{{\"seq\":{next},\"time\":\"20").as_bytes())
        .unwrap();
    w.start_agent();
    w.run(&["key", "remove", "k1"], "").ok();
    w.setup_key("k2", "binance", "ak2", "sk2");
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k2."), "{out:?}");
    assert!(!out.stderr.contains("could not be read back"), "{out:?}");
    let verify = w.run(&["audit", "verify"], "");
    let said = format!("{}{}", verify.stdout, verify.stderr);
    assert!(said.contains("not an audit line"), "{verify:?}");
}

/// The vault tag the log's last `keystore` line names.
fn vault_tag(w: &World) -> String {
    let text = std::fs::read_to_string(log_path(w)).unwrap();
    let last = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|l| l["event"]["type"] == "keystore")
        .unwrap();
    last["event"]["vault"].as_str().unwrap().to_owned()
}

/// A `keystore` line with a low generation, appended while the agent runs and taken in by
/// it, must not make the agent forget the credential changes it saw; nor must the log then
/// found tampered with (so that unlock cannot follow it).
#[test]
fn a_forged_low_generation_line_does_not_make_the_agent_forget_a_removal() {
    let mut w = three_keys_unlocked();
    let backup = std::fs::read(cred_file(&w, "kb3")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    sign(&w, "kb").ok();
    let vault = vault_tag(&w);
    append_chained(
        &w,
        serde_json::json!({"type": "keystore", "generation": 1, "vault": vault, "reason": "unlock"}),
    );
    w.run(&["status"], "").ok();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(log_path(&w))
        .unwrap();
    std::io::Write::write_all(&mut f, b"x\n").unwrap();
    put_back(&cred_file(&w, "kb3"), &backup);
    w.run(&["unlock"], "");
    let out = sign(&w, "kb3");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("signature"), "{out:?}");
    // Nor after a restart: the unlock above recorded the removal in the manifest.
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(!out.ok().contains("kb3"), "{out:?}");
    assert!(
        out.stderr.contains("REFUSED: credential \"kb3\""),
        "{out:?}"
    );
    let out = sign(&w, "kb3");
    assert_ne!(out.code, 0, "{out:?}");
    sign(&w, "kb").ok();
}

/// Cut the log back to `len` bytes.
fn truncate_log(w: &World, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(log_path(w))
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// A command's line cut off right after the command, back to the length the agent knew
/// before it: the command had the agent take the line in before it returned, so the agent
/// remembers the change and finds the log cut. For a removal, and for a replacement with the
/// old file put back.
#[test]
fn a_change_cut_off_the_log_right_after_the_command_does_not_bring_the_old_file_back() {
    let commands: [(&[&str], &str); 2] = [
        (&["key", "remove", "kb3"], ""),
        (
            &["key", "add", "kb3", "--exchange", "binance", "--replace"],
            "ak\nnew\n",
        ),
    ];
    for (command, input) in commands {
        let w = three_keys_unlocked();
        let old = std::fs::read(cred_file(&w, "kb3")).unwrap();
        w.run(&["status"], "").ok();
        let known = std::fs::metadata(log_path(&w)).unwrap().len();
        w.run(command, input).ok();
        truncate_log(&w, known);
        put_back(&cred_file(&w, "kb3"), &old);
        w.run(&["unlock"], "");
        let out = sign(&w, "kb3");
        assert_ne!(out.code, 0, "{command:?}: {out:?}");
    }
}

/// A line that is not the start of the one a writer would have put there, or that names a
/// credential change, is not a write a crash tore: unlock refuses the record as broken.
#[test]
fn a_torn_key_change_line_is_a_broken_record() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.setup_key("k2", "binance", "ak2", "sk2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let backup = std::fs::read(cred_file(&w, "k2")).unwrap();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w.run(&["key", "remove", "k2"], "").ok();
    // The removal's line cut to look like a write a crash tore.
    let text = std::fs::read_to_string(log_path(&w)).unwrap();
    let cut = text.trim_end_matches('\n').len() - 10;
    truncate_log(&w, cut as u64);
    assert!(
        std::fs::read_to_string(log_path(&w))
            .unwrap()
            .contains("\"key_change\"")
    );
    put_back(&cred_file(&w, "k2"), &backup);
    w.start_agent();
    sign(&w, "k1");
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "is broken");
}

/// The same for a rotation: the whole keystore from before it, put back with the rotation's
/// line cut off right after the command, opens nothing while the agent runs.
#[test]
fn a_rotation_cut_off_the_log_right_after_the_command_does_not_reopen_the_copy_before_it() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let ks = w.home().join("keystore");
    let copy = w.home().join("keystore-copy");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&ks)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    w.run(&["status"], "").ok();
    let known = std::fs::metadata(log_path(&w)).unwrap().len();
    w.run(&["keystore", "rotate"], "").ok();
    truncate_log(&w, known);
    std::fs::remove_dir_all(&ks).unwrap();
    std::fs::rename(&copy, &ks).unwrap();
    let out = w.run(&["unlock"], "");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("Unlocked"), "{out:?}");
}

/// A chained line that takes a replaced credential back to its old version (its `created` and
/// file hash), appended while the agent runs and taken in by it, must not replace the
/// replacement the agent saw; with the log then cut back to the manifest's anchor, the old
/// file put back stays refused.
#[test]
fn a_forged_line_taking_a_replacement_back_does_not_make_the_agent_forget_it() {
    use sha2::Digest;
    let w = three_keys_unlocked();
    let old = std::fs::read(cred_file(&w, "kb3")).unwrap();
    let created = serde_json::from_slice::<serde_json::Value>(&old).unwrap()["created"]
        .as_u64()
        .unwrap();
    w.run(
        &["key", "add", "kb3", "--exchange", "binance", "--replace"],
        "ak\nnew\n",
    )
    .ok();
    append_chained(
        &w,
        serde_json::json!({
            "type": "key_change",
            "action": "replace",
            "name": "kb3",
            "created": created,
            "file": hex::encode(sha2::Sha256::digest(&old)),
            "pid": 1,
            "exe": "/usr/bin/tapsign",
        }),
    );
    w.run(&["status"], "").ok();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.home().join("keystore/manifest.json")).unwrap())
            .unwrap();
    truncate_log(&w, manifest["audit"]["offset"].as_u64().unwrap());
    put_back(&cred_file(&w, "kb3"), &old);
    // The agent found the log cut and withholds signatures; the unlock it asks for first
    // refuses the old file by name, and records that beyond a restart.
    let out = w.run(&["unlock"], "");
    assert!(
        out.stderr
            .contains("REFUSED: the file of credential \"kb3\""),
        "{out:?}"
    );
    assert!(!out.stdout.contains("kb3"), "{out:?}");
    let mut w = w;
    assert_eq!(w.signal_agent("TERM"), Some(0));
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(!out.stdout.contains("kb3"), "{out:?}");
    let out = sign(&w, "kb3");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("signature"), "{out:?}");
}

/// A stopped agent takes `key add`'s connection and never answers: the command neither waits
/// for good nor seals without the vault-key check the agent would have made.
#[test]
fn key_add_stops_before_sealing_when_the_agent_does_not_answer() {
    let w = three_keys_unlocked();
    let pid = w.agent_pid().to_string();
    let kill = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, pid.as_str()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    kill("-STOP");
    let out = w.run(&["key", "add", "k9", "--exchange", "binance"], "ak\nsk\n");
    kill("-CONT");
    out.fails_with(1, "did not answer");
    assert!(!cred_file(&w, "k9").exists());
}

/// Red-team round 10: with the agent's socket moved aside, `key add` took "no answer" for "no
/// agent" and skipped the running agent's pin of the vault key, so a vault.json and manifest
/// replaced together had the new secret sealed to another key. The agent still holds its pid
/// file locked: `key add` stores nothing, and `key remove` removes nothing (since round 26 it
/// asks the agent first too).
#[test]
fn a_socket_moved_aside_does_not_hide_the_running_agent_from_keystore_commands() {
    let w = three_keys_unlocked();
    let aside = w.sock.with_extension("aside");
    std::fs::rename(&w.sock, &aside).unwrap();
    let out = w.run(&["key", "add", "k9", "--exchange", "binance"], "ak\nsk\n");
    out.fails_with(7, "cannot be reached");
    assert!(!cred_file(&w, "k9").exists());
    let out = w.run(&["key", "remove", "kb4"], "");
    out.fails_with(7, "nothing was removed");
    assert!(out.stderr.contains("cannot be reached"), "{out:?}");
    assert!(cred_file(&w, "kb4").exists());
    std::fs::rename(&aside, &w.sock).unwrap();
}

/// Red-team round 19: one line appended by hand, a `replace` of a credential with a later
/// version that exists nowhere, makes the genuine, current file refused as an old copy; a
/// rotation (`keystore rotate`, or the urgent `token remove`) then deleted its only copy with
/// the old folder, sealed to a vault key no token opens any more, and said it succeeded. It
/// stops now, changing nothing, and says what to do; `--drop-refused` goes on.
#[test]
fn a_rotation_stops_at_a_credential_a_forged_line_makes_refused() {
    let w = three_keys_unlocked();
    let file = cred_file(&w, "kb3");
    let genuine = std::fs::read(&file).unwrap();
    let created = serde_json::from_slice::<serde_json::Value>(&genuine).unwrap()["created"]
        .as_u64()
        .unwrap();
    append_chained(
        &w,
        serde_json::json!({
            "type": "key_change",
            "action": "replace",
            "name": "kb3",
            "created": created + 60,
            "file": "ab".repeat(32),
            "pid": 4242,
            "exe": "/usr/bin/tapsign",
        }),
    );
    let list = w.run(&["key", "list"], "");
    assert!(list.ok().contains("refused"), "{list:?}");
    let out = w.run(&["keystore", "rotate"], "");
    out.fails_with(7, "--drop-refused");
    assert!(out.stderr.contains("kb3"), "{out:?}");
    assert!(out.stderr.contains("Nothing was changed"), "{out:?}");
    assert_eq!(std::fs::read(cred_file(&w, "kb3")).unwrap(), genuine);
    let out = w.run(&["keystore", "rotate", "--drop-refused"], "");
    assert!(
        out.ok().contains("Re-sealed to it: 2 credential(s)"),
        "{out:?}"
    );
    assert!(out.stderr.contains("NOT carried over: kb3"), "{out:?}");
}

/// Red-team round 23: a command whose line, with what the agent had not yet taken in, passed
/// the agent's bound on bytes other processes append: the change was made, the agent withheld
/// signatures, and the command said the log lost its line, "cut or rewritten", where `audit
/// verify` says intact. It says what the agent said. Since round 25's third recheck `key add`
/// asks the agent before it seals, and stops there (nothing stored); since round 26 `key
/// remove` does too (nothing removed).
#[test]
fn a_command_whose_line_the_agent_turns_away_says_why_not_that_the_log_was_cut() {
    let w = three_keys_unlocked();
    append_chained(
        &w,
        serde_json::json!({
            "type": "key_refused",
            "name": "kb",
            "reason": "x".repeat(1_100_000),
        }),
    );
    let out = w.run(&["key", "add", "k9", "--exchange", "binance"], "ak\nsk\n");
    out.fails_with(7, "nothing was stored");
    assert!(
        out.stderr.contains("that this agent did not write"),
        "{out:?}"
    );
    let out = w.run(&["key", "remove", "kb3"], "");
    out.fails_with(7, "nothing was removed");
    assert!(
        out.stderr.contains("that this agent did not write"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("lost the line"), "{out:?}");
    assert!(!out.stderr.contains("The log was cut"), "{out:?}");
    assert!(cred_file(&w, "kb3").exists());
    assert_eq!(w.run(&["audit", "verify"], "").code, 0);
}

/// Red-team round 26, part 2 (F3): with an agent running, a copy of the log from before put
/// at the path for the command alone. `keystore rotate`, its rebuild and `key remove` made
/// their change first and said after that the agent no longer takes the log in; over a
/// keystore put back from before a token's removal, the rotation handed the removed token the
/// new vault key. They ask the agent first, as `key add` does, and change nothing.
#[test]
fn the_keystore_commands_change_nothing_on_a_log_that_is_not_the_running_agents() {
    let w = three_keys_unlocked();
    w.run(&["lock"], "").ok();
    let old_log = w.home().join("audit.log.before");
    std::fs::copy(log_path(&w), &old_log).unwrap();
    w.run(&["key", "remove", "kb4"], "").ok();
    std::fs::rename(log_path(&w), w.home().join("audit.log.real")).unwrap();
    std::fs::rename(&old_log, log_path(&w)).unwrap();
    let manifest = w.home().join("keystore/manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    for (cmd, said) in [
        (&["keystore", "rotate"][..], "the keystore was not changed"),
        (
            &["keystore", "rotate", "--rebuild-manifest"][..],
            "the keystore was not changed",
        ),
        (&["key", "remove", "kb3"][..], "nothing was removed"),
    ] {
        let out = w.run(cmd, "");
        out.fails_with(7, said);
        assert!(
            out.stderr.contains("does not hold the audit log"),
            "{out:?}"
        );
        assert!(!out.stderr.contains("change was made"), "{out:?}");
    }
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    assert!(cred_file(&w, "kb3").exists());
}

/// Red-team round 26, recheck (R3): the trader restores the whole home (keystore and audit log
/// together) from a backup, the agent still running. The unlock's refusal quoted the agent's
/// memory of the log it held before ("the audit log records generation 3") and advised
/// `--rebuild-manifest`, which is refused while the agent does not hold the log: a restart
/// alone was the way out, and the refusal must say so first.
#[test]
fn a_home_restored_whole_under_a_running_agent_is_told_to_restart_it_not_to_rebuild() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    let backup = w.home().join("backup");
    std::fs::create_dir(&backup).unwrap();
    let cp = |from: &std::path::Path, to: &std::path::Path| {
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let (ks, log) = (w.home().join("keystore"), log_path(&w));
    cp(&ks, &backup);
    cp(&log, &backup);
    w.run(&["key", "add", "k2", "--exchange", "binance"], "ak2\nsk2\n")
        .ok();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    // The restore: both back from the backup, the agent running on.
    std::fs::remove_dir_all(&ks).unwrap();
    std::fs::remove_file(&log).unwrap();
    cp(&backup.join("keystore"), w.home());
    cp(&backup.join("audit.log"), w.home());
    let out = w.run(&["unlock"], "");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("no longer holds the audit log"),
        "{out:?}"
    );
    assert!(out.stderr.contains("restart the agent first"), "{out:?}");
    // As it says: the restart reads the restored log, and the backup opens.
    w.signal_agent("TERM");
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("k1"), "{out:?}");
}

/// Red-team round 26, recheck (R4): with the keystore folder moved away and an empty file put
/// at the log's path, `token add` made a new keystore and only then said the running agent no
/// longer took the log in; the trader was steered to start over instead of putting back the
/// keystore the agent had verified. It asks the agent first, as every other keystore command.
#[test]
fn token_add_asks_the_running_agent_before_it_makes_a_new_keystore() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    let (ks, log) = (w.home().join("keystore"), log_path(&w));
    let ks_aside = w.home().join(".ks.hidden");
    std::fs::rename(&ks, &ks_aside).unwrap();
    // The agent's log at its path: the keystore it verified is to be put back.
    let out = w.run(&["token", "add", "--soft"], "");
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stderr.contains("verified a keystore at"), "{out:?}");
    assert!(out.stderr.contains("no keystore was made"), "{out:?}");
    assert!(!ks.exists(), "{out:?}");
    // And an empty file put at the log's path: the agent does not hold it.
    std::fs::rename(&log, w.home().join(".log.hidden")).unwrap();
    put_back(&log, b"");
    let out = w.run(&["token", "add", "--soft"], "");
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stderr.contains("no keystore was made"), "{out:?}");
    assert!(
        out.stderr.contains("does not hold the audit log"),
        "{out:?}"
    );
    assert!(!ks.exists(), "{out:?}");
    assert!(std::fs::read(&log).unwrap().is_empty());
}
