//! What the keystore's check records and reports: a manifest vouches only for files that open
//! under the vault key, and `key list` says which files the last check refused.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;
use tapsign_tests::at_rest::{cred_file, put_back};

/// A credential file copied in from another keystore, made later than the genuine one, was
/// accepted "as a newer version" and recorded in the manifest though it could not be
/// decrypted; the genuine file put back was then refused as "an old copy".
#[test]
fn a_file_from_another_keystore_is_not_recorded_and_the_genuine_one_still_opens() {
    let mut w = World::new();
    w.setup_key("kb", "binance", "ak", "sk-genuine");
    w.setup_key("kc", "binance", "akc", "skc");
    let genuine = std::fs::read(cred_file(&w, "kb")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let other = World::new();
    other.setup_key("kb", "binance", "ak", "sk-other");
    put_back(
        &cred_file(&w, "kb"),
        &std::fs::read(cred_file(&other, "kb")).unwrap(),
    );
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): kc."), "{out:?}");
    assert!(out.stderr.contains("REFUSED"), "{out:?}");
    assert!(
        out.stderr
            .contains("does not open with this keystore's vault key"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("newer version"), "{out:?}");
    put_back(&cred_file(&w, "kb"), &genuine);
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 2 key(s)"), "{out:?}");
    assert!(!out.stderr.contains("REFUSED"), "{out:?}");
    w.signs_with("kb", b"sk-genuine");
}

/// `key list` listed a removed credential put back, and an old copy put back, as ordinary
/// keys, though the next unlock refuses both.
#[test]
fn key_list_marks_what_the_next_unlock_refuses() {
    let w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    w.setup_key("kb3", "binance", "ak3", "sk3");
    w.setup_key("kb4", "binance", "ak4", "sk4");
    let removed = std::fs::read(cred_file(&w, "kb3")).unwrap();
    let old = std::fs::read(cred_file(&w, "kb4")).unwrap();
    w.run(&["key", "remove", "kb3"], "").ok();
    w.run(
        &["key", "add", "kb4", "--exchange", "binance", "--replace"],
        "ak4\nsk4-rotated\n",
    )
    .ok();
    put_back(&cred_file(&w, "kb3"), &removed);
    put_back(&cred_file(&w, "kb4"), &old);
    let out = w.run(&["key", "list"], "");
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().take(3).collect::<Vec<_>>(),
        ["kb", "binance", "added"]
    );
    assert!(
        lines[1].starts_with("kb3") && lines[1].ends_with("refused: a removed credential put back"),
        "{out:?}"
    );
    assert!(
        lines[2].starts_with("kb4") && lines[2].ends_with("refused: an old copy put back"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("refused at unlock: credential \"kb3\" was removed"),
        "{out:?}"
    );
    // The unlock agrees.
    let mut w = w;
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): kb."), "{out:?}");
}

/// Red-team round 20: `key remove k1` with k1's file hidden (a dot name, which listings skip)
/// said `no credential named "k1"` and recorded nothing, `key list` said nothing of it, and the
/// file put back opened at the next unlock. Now `key list` warns of a recorded credential whose
/// file is missing, `key remove` records the removal without the file, and the file put back
/// is refused.
#[test]
fn a_key_removed_while_its_file_was_hidden_stays_removed() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak1", "sk1");
    w.setup_key("k2", "binance", "ak2", "sk2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    let file = cred_file(&w, "k1");
    let hidden = file.with_file_name(".k1.json.hide");
    std::fs::rename(&file, &hidden).unwrap();

    let list = w.run(&["key", "list"], "");
    assert!(!list.ok().contains("k1"), "{list:?}");
    assert!(
        list.stderr
            .contains("credential \"k1\" is recorded in the keystore, but its file is missing"),
        "{list:?}"
    );
    assert!(list.stderr.contains("tapsign key remove k1"), "{list:?}");
    let out = w.run(&["key", "remove", "k1"], "");
    assert!(out.ok().contains("Removed k1"), "{out:?}");
    assert!(out.stderr.contains("the file of k1 was missing"), "{out:?}");
    let audit = w.run(&["audit"], "");
    assert!(audit.ok().contains("key remove k1"), "{audit:?}");

    std::fs::rename(&hidden, &file).unwrap();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k2."), "{out:?}");
    assert!(
        out.stderr.contains("REFUSED") && out.stderr.contains("a deleted credential was put back"),
        "{out:?}"
    );
}

/// Red-team round 20: the advice for a log moved aside was to check "the creation times
/// `tapsign key list` shows", and `key list` showed none. It shows when each key was added,
/// as the audit log writes the time.
#[test]
fn key_list_shows_when_each_key_was_added() {
    let w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    let audit = w.run(&["audit"], "");
    let line = audit
        .ok()
        .lines()
        .find(|l| l.contains("key add kb"))
        .unwrap();
    let added = line
        .split("(added ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_owned();
    let list = w.run(&["key", "list"], "");
    assert_eq!(
        list.ok().split_whitespace().collect::<Vec<_>>(),
        ["kb", "binance", "added", added.as_str()]
    );
}

/// Red-team round 20: with the keystore folder moved aside, every command said "no keystore:
/// enroll a token first", though the audit log records one; enrolling then leads to the
/// refusal whose way out throws the record away. They say the folder is gone and to put it
/// back, and `token add` is advised only with no backup, after the audit log is moved aside
/// (the recheck of round 20 found no way on for a trader without a backup); that works.
#[test]
fn a_keystore_folder_moved_aside_is_named_gone_not_never_made() {
    let mut w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    let ks = w.home().join("keystore");
    std::fs::rename(&ks, w.home().join(".ks-hidden")).unwrap();
    w.start_agent();
    for args in [
        &["key", "list"][..],
        &["key", "remove", "kb"],
        &["token", "list"],
        &["unlock"],
    ] {
        let out = w.run(args, "");
        out.fails_with(7, "the audit log records one here (vault-");
        assert!(
            out.stderr.contains("its folder is gone"),
            "{args:?}: {out:?}"
        );
        let back = out
            .stderr
            .find("Put the keystore folder back from a backup");
        let over = out.stderr.find(
            "With no backup, the keys it held are lost (make new ones at the exchanges): move the audit log aside (keep it",
        );
        assert!(back.is_some() && back < over, "{args:?}: {out:?}");
        assert!(
            over.and_then(|at| out.stderr[at..].find("tapsign token add"))
                .is_some(),
            "{args:?}: {out:?}"
        );
    }
    let out = w.run(&["key", "add", "k2", "--exchange", "binance"], "ak\nsk\n");
    out.fails_with(7, "its folder is gone");
    // The way on with no backup works: the log moved aside, a new keystore starts.
    let lost = World::new();
    lost.setup_key("kb", "binance", "ak", "sk");
    let home = lost.home();
    std::fs::rename(home.join("keystore"), home.join(".ks-hidden")).unwrap();
    lost.run(&["token", "list"], "")
        .fails_with(7, "its folder is gone");
    std::fs::rename(home.join("audit.log"), home.join("audit.log.old")).unwrap();
    lost.run(&["token", "add", "--soft"], "").ok();
    lost.setup_key("kb", "binance", "ak2", "sk2");
    assert!(lost.run(&["key", "list"], "").ok().contains("kb"));
    // A keystore never made here is still told to enroll a token.
    let fresh = World::new();
    fresh
        .run(&["key", "list"], "")
        .fails_with(1, "enroll a token first with `tapsign token add`");
}

/// Red-team round 22: with manifest.json deleted (or the keystore folder moved aside) while
/// the agent runs, `unlock`, `token list` and `key list` named what is missing, but the
/// running agent's `status` still said "no keystore: enroll a token first", the advice whose
/// `token add` the audit log's record refuses. It says it as they do.
#[test]
fn the_running_agents_status_names_a_missing_manifest_not_a_keystore_never_made() {
    let mut w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    w.start_agent();
    let warnings = |w: &World| -> String {
        let status = w.run(&["status", "--json"], "");
        let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
        v["warnings"].to_string()
    };
    let manifest = w.home().join("keystore/manifest.json");
    let kept = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let said = warnings(&w);
    assert!(!said.contains("enroll a token first"), "{said}");
    assert!(
        said.contains("manifest.json is missing, but the audit log records"),
        "{said}"
    );
    let text = w.run(&["status"], "");
    let all = format!("{}{}", text.ok(), text.stderr);
    assert!(!all.contains("enroll a token first"), "{text:?}");
    assert!(all.contains("manifest.json is missing"), "{text:?}");
    // The whole folder moved aside: named gone, as the commands name it.
    put_back(&manifest, &kept);
    let ks = w.home().join("keystore");
    std::fs::rename(&ks, w.home().join(".ks-hidden")).unwrap();
    let said = warnings(&w);
    assert!(!said.contains("enroll a token first"), "{said}");
    assert!(said.contains("its folder is gone"), "{said}");
}

/// Red-team round 27: with the keystore folder moved away from under an agent that had
/// verified it, `status` printed its `keystore` line (generation, vault) and beside it "no
/// keystore: its folder is gone ... start over with `tapsign token add`", or, with the audit
/// log emptied too, "enroll a token first": a keystore that is and is not. It says the one
/// true thing: the keystore the agent verified is no longer at its path; put it back.
#[test]
fn status_says_the_keystore_the_agent_verified_was_moved_not_to_enroll_a_token() {
    let mut w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(&["lock"], "").ok();
    let ks = w.home().join("keystore");
    std::fs::rename(&ks, w.home().join(".ks-hidden")).unwrap();
    let moved = |w: &World| {
        let status = w.run(&["status"], "");
        let all = format!("{}{}", status.ok(), status.stderr);
        assert!(all.contains("keystore: manifest generation"), "{all}");
        assert!(
            all.contains("the keystore this agent verified (vault "),
            "{all}"
        );
        assert!(
            all.contains(&format!("is no longer in {}", ks.display())),
            "{all}"
        );
        assert!(all.contains("Put it back"), "{all}");
        for not in ["enroll a token first", "its folder is gone", "start over"] {
            assert!(!all.contains(not), "{not}: {all}");
        }
    };
    moved(&w);
    // The audit log emptied too: it records no keystore, and the agent still verified one.
    let log = w.home().join("audit.log");
    std::fs::rename(&log, w.home().join(".log-hidden")).unwrap();
    put_back(&log, b"");
    moved(&w);
}

/// The recheck of round 20: `token list` advised revoking the only token, whose keyslot file
/// was missing, with `token remove`, which then refuses (the last keyslot). For the last
/// token it says to put the file back only.
#[test]
fn token_list_says_to_put_back_the_only_tokens_missing_keyslot() {
    let w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    let (file, id) = tapsign_tests::at_rest::only_keyslot(&w);
    let dir = file.parent().unwrap().to_owned();
    std::fs::rename(&file, dir.join(format!(".{id}.json.hide"))).unwrap();

    let list = w.run(&["token", "list"], "");
    let line = list.stdout.lines().find(|l| l.contains(&id)).unwrap();
    assert!(
        line.contains("its keyslot file is missing")
            && line.contains("Put it back from a backup: no other token opens the keystore"),
        "{list:?}"
    );
    assert!(!line.contains("token remove"), "{list:?}");
    w.run(&["token", "remove", &id], "")
        .fails_with(1, "it is the only working keyslot");
}

/// Red-team round 27, F4: with the only keyslot file moved aside (the manifest still records
/// it), `unlock` printed `Touch ...`, then "no usable token is enrolled: run `tapsign token
/// add` first", which cannot open the keystore. It says what `token list` says, before any
/// prompt, and the agent says it to a bot's unlock; the file put back, the unlock works.
#[test]
fn unlock_with_the_only_keyslot_file_missing_says_to_put_it_back_before_any_prompt() {
    let mut w = World::new();
    w.setup_key("kb", "binance", "ak", "sk");
    w.start_agent();
    let (file, id) = tapsign_tests::at_rest::only_keyslot(&w);
    let aside = w.home().join("keyslot.aside");
    std::fs::rename(&file, &aside).unwrap();

    let out = w.run(&["unlock"], "");
    out.fails_with(7, "[keystore]");
    assert!(
        !out.stderr.contains("Touch"),
        "refused before any prompt: {out:?}"
    );
    assert!(!out.stderr.contains("token add` first"), "{out:?}");
    for said in [
        id.as_str(),
        "keyslot file is missing",
        "put it back from a backup",
    ] {
        assert!(out.stderr.contains(said), "{said}: {out:?}");
    }
    let req = tapsign_proto::UnlockRequest::default();
    let e = w.client().unlock(req).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("keyslot file is missing") && e.contains(&id),
        "{e}"
    );

    std::fs::rename(&aside, &file).unwrap();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): kb."), "{out:?}");
}
