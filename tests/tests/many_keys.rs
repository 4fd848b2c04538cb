//! A keystore of many keys opens. Its manifest lists every credential (about 150 bytes each),
//! and a cap on keystore files of 64 KiB used to refuse it as damaged past some 440 keys: an
//! unlock then said "no key could be opened".
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;

#[test]
fn a_manifest_of_more_than_440_keys_is_not_refused_as_too_large() {
    let mut w = World::new();
    w.run(&["token", "add", "--soft"], "").ok();
    for i in 0..500 {
        w.run(
            &["key", "add", &format!("k{i}"), "--exchange", "binance"],
            "ak\nsk\n",
        )
        .ok();
    }
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 500 key(s)"), "{out:?}");
    let manifest = w.home().join("keystore").join("manifest.json");
    assert!(std::fs::metadata(&manifest).unwrap().len() > 64 * 1024);
    // And the next unlock reads it back.
    w.run(&["lock"], "").ok();
    assert!(w.run(&["unlock"], "").ok().contains("Unlocked 500 key(s)"));
    w.run(
        &[
            "sign",
            "k499",
            "--method",
            "GET",
            "--path",
            "/api/v3/account",
        ],
        "",
    )
    .ok();
}
