//! fuzz/ is its own workspace (so the main one needs no libFuzzer) with its own Cargo.lock. It
//! must build against the same crate versions as the agent, or CI's fuzz run (`--locked`)
//! fails and the fuzzer tests other code than ships. After changing dependencies:
//! `cp Cargo.lock fuzz/Cargo.lock && (cd fuzz && cargo metadata --format-version 1 >/dev/null)`.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};

fn versions(path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lock: toml::Value = toml::from_str(&text).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in lock["package"].as_array().unwrap() {
        out.entry(p["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(p["version"].as_str().unwrap().to_string());
    }
    out
}

#[test]
fn the_fuzz_lock_file_pins_the_workspace_versions() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let main = versions(&format!("{root}/Cargo.lock"));
    let fuzz = versions(&format!("{root}/fuzz/Cargo.lock"));
    let mut drift = Vec::new();
    for (name, vs) in &fuzz {
        if let Some(ws) = main.get(name) {
            for v in vs.difference(ws) {
                drift.push(format!("{name} {v} (workspace: {ws:?})"));
            }
        }
    }
    assert!(
        drift.is_empty(),
        "fuzz/Cargo.lock differs from Cargo.lock; copy it over (see this file's docs):\n{}",
        drift.join("\n")
    );
    assert!(fuzz.contains_key("tapsign-agent") && fuzz.contains_key("libfuzzer-sys"));
}
