//! A keystore of many keys opens. Its manifest lists every credential (about 150 bytes each),
//! and a cap on keystore files of 64 KiB used to refuse it as damaged past some 440 keys: an
//! unlock then said "no key could be opened". And `unlock` counts the session's keys, not
//! those its answer, a status cut to fit one frame, lists.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;

/// 600 keys of the longest names: a session status too large for one answer, cut to the
/// first 300 keys. Red-team round 20: `unlock` then said "Unlocked 300 key(s)".
#[test]
fn a_manifest_of_more_than_440_keys_is_not_refused_as_too_large() {
    let mut w = World::new();
    w.run(&["token", "add", "--soft"], "").ok();
    let name = |i: usize| format!("k{i:03}{}", "x".repeat(60));
    for i in 0..600 {
        w.run(
            &["key", "add", &name(i), "--exchange", "binance"],
            "ak\nsk\n",
        )
        .ok();
    }
    w.start_agent();
    let out = w.run(&["unlock"], "");
    let said = out.ok();
    assert!(
        said.contains("Unlocked 600 key(s), the first 300 listed here:"),
        "{said}"
    );
    let manifest = w.home().join("keystore").join("manifest.json");
    assert!(std::fs::metadata(&manifest).unwrap().len() > 64 * 1024);
    let status = w.run(&["status"], "");
    assert!(status.ok().contains("  and 300 more keys"), "{status:?}");
    // And the next unlock reads it back.
    w.run(&["lock"], "").ok();
    assert!(w.run(&["unlock"], "").ok().contains("Unlocked 600 key(s)"));
    w.run(
        &[
            "sign",
            &name(599),
            "--method",
            "GET",
            "--path",
            "/api/v3/account",
        ],
        "",
    )
    .ok();
}
