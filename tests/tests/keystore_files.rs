//! What is on disk: nothing in clear, and damage is reported, never a panic.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use tapsign_tests::World;

const API_KEY: &str = "AKIA-tapsign-test-api-key-0123456789";
const SECRET: &str = "S3CR3T-tapsign-test-secret-abcdefghijklmnop";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let kind = std::fs::symlink_metadata(&p).unwrap().file_type();
        if kind.is_dir() {
            out.extend(files_under(&p));
        } else if kind.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_keystore_file_holds_the_secret_or_api_key_in_clear() {
    let mut w = World::new();
    w.setup_key("k", "binance", API_KEY, SECRET);
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(
        &["sign", "k", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
    w.run(&["lock"], "").ok();
    // Everything tapsign wrote: keystore, audit log, config folder (the agent's stderr log is
    // the harness's, not tapsign's, but it must not leak either).
    let files = files_under(w.home());
    assert!(
        files.len() >= 4,
        "expected the keystore files, got {files:?}"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for needle in [API_KEY, SECRET] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds {needle} in clear",
                f.display()
            );
            assert!(
                !contains(&bytes, hex::encode(needle).as_bytes()),
                "{} holds {needle} as hex",
                f.display()
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_any_keystore_file_is_a_clear_error_naming_it() {
    let mut w = World::new();
    w.setup_key("k", "binance", API_KEY, SECRET);
    w.setup_key("other", "upbit", "ak2", "sk2");
    w.start_agent();
    let ks = w.home().join("keystore");
    let files = files_under(&ks);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let pristine = std::fs::read(f).unwrap();
        for pos in [
            0,
            pristine.len() / 3,
            pristine.len() / 2,
            pristine.len() - 2,
        ] {
            let mut bad = pristine.clone();
            bad[pos] ^= 0x01;
            std::fs::write(f, &bad).unwrap();
            let name = f.file_name().unwrap().to_str().unwrap();
            let runs = [
                w.run(&["key", "list"], ""),
                w.run(&["token", "list"], ""),
                w.run(&["unlock"], ""),
            ];
            for r in &runs {
                assert!(
                    !r.stderr.contains("panicked") && r.code != 101 && r.code != -1,
                    "{name}@{pos}: {r:?}"
                );
            }
            let named = runs.iter().any(|r| r.code != 0 && r.stderr.contains(name));
            assert!(
                named,
                "no command reported damage in {name} at byte {pos}: {runs:?}"
            );
            std::fs::write(f, &pristine).unwrap();
            w.run(&["lock"], "").ok();
        }
    }
    // Restored: everything works again.
    w.run(&["unlock"], "").ok();
    w.run(
        &["sign", "k", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
}

#[test]
fn one_damaged_credential_does_not_stop_the_others() {
    let mut w = World::new();
    w.setup_key("good", "binance", API_KEY, SECRET);
    w.setup_key("bad", "binance", "ak2", "sk2");
    w.start_agent();
    let bad = files_under(&w.home().join("keystore"))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains("bad"))
        .expect("the credential file of `bad` is named after it");
    let mut bytes = std::fs::read(&bad).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&bad, bytes).unwrap();

    let list = w.run(&["key", "list"], "");
    assert_eq!(list.code, 7, "{list:?}");
    assert!(list.stdout.contains("good"), "{list:?}");
    let unlock = w.run(&["unlock"], "");
    assert!(unlock.ok().contains("good"), "{unlock:?}");
    w.run(
        &[
            "sign",
            "good",
            "--method",
            "GET",
            "--path",
            "/api/v3/account",
        ],
        "",
    )
    .ok();
    w.run(
        &[
            "sign",
            "bad",
            "--method",
            "GET",
            "--path",
            "/api/v3/account",
        ],
        "",
    )
    .fails_with(5, "unknown_key");
}
