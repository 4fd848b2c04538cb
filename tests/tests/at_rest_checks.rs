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
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["kb", "binance"]
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
