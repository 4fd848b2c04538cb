//! Lifetime and idle timeout, in real time (short). The transitions themselves are unit-tested
//! with injected time in agent/src/session_tests.rs.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::Duration;

use tapsign_tests::World;

fn world() -> World {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w
}

fn sign(w: &World) -> tapsign_tests::Run {
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
}

#[test]
fn lifetime_expiry_locks_the_agent() {
    let w = world();
    w.run(&["unlock", "--ttl", "2s"], "").ok();
    sign(&w).ok();
    std::thread::sleep(Duration::from_millis(2600));
    // The reaper has wiped the session by now: status says so without any sign attempt.
    let st: serde_json::Value =
        serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
    assert_eq!(st["state"], "locked", "{st}");
    assert!(
        st["lock_reason"].as_str().unwrap().contains("lifetime"),
        "{st}"
    );
    sign(&w).fails_with(4, "expired");
}

#[test]
fn idle_timeout_locks_the_agent() {
    let w = world();
    w.run(&["unlock", "--idle", "2s"], "").ok();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        sign(&w).ok(); // each signature resets the idle clock
    }
    std::thread::sleep(Duration::from_millis(2600));
    sign(&w).fails_with(4, "expired");
    assert!(w.run(&["status", "--json"], "").ok().contains("idle"));
}
