//! Many bots racing for one budget get exactly the budget, never more; an unlock racing
//! another for the one touch is refused, not queued behind it.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tapsign_proto::{ErrorCode, SignRequest, UnlockRequest};
use tapsign_tests::World;

#[test]
fn thirty_two_clients_racing_for_a_budget_of_1000_get_exactly_1000() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock", "--max-signatures", "1000"], "").ok();

    let granted = Arc::new(AtomicU64::new(0));
    let w = Arc::new(w);
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let (w, granted) = (Arc::clone(&w), Arc::clone(&granted));
            std::thread::spawn(move || {
                let mut client = w.client();
                loop {
                    let req = SignRequest {
                        key: "b".into(),
                        method: "GET".into(),
                        path: "/api/v3/openOrders".into(),
                        query: "symbol=BTCUSDT".into(),
                        body: String::new(),
                        kind: Default::default(),
                    };
                    match client.sign(req) {
                        Ok(_) => {
                            granted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert_eq!(e.code(), Some(ErrorCode::BudgetExhausted), "{e}");
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(granted.load(Ordering::SeqCst), 1000);
    let st: serde_json::Value =
        serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
    assert_eq!(
        st["state"], "locked",
        "a spent budget ends the session: {st}"
    );
}

/// Unlocks queued for the touch: a bot's unlock with the widest bounds, sent just before the
/// trader's `tapsign unlock`, took the trader's one touch, while the trader's terminal still
/// said "Touch ... when it blinks". While one waits for its touch another is refused at once
/// (`busy`), naming who holds the touch, and the CLI says not to touch.
#[test]
fn an_unlock_while_another_waits_for_its_touch_is_refused_naming_the_holder() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    std::fs::write(w.home().join("soft-token/touch"), "delay 1500").unwrap();
    std::thread::scope(|scope| {
        let bot = scope.spawn(|| {
            w.client().unlock(UnlockRequest {
                ttl_secs: Some(86_400),
                ..Default::default()
            })
        });
        let asked = Instant::now();
        while !w.agent_log().contains("waiting for a touch")
            && asked.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let started = Instant::now();
        let trader = w.run(&["unlock", "--ttl", "1h"], "");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once, not after the pending touch"
        );
        trader.fails_with(1, "[busy]");
        let pid = format!(
            "another unlock is waiting for a touch, asked by pid {}",
            std::process::id()
        );
        assert!(trader.stderr.contains(&pid), "{trader:?}");
        assert!(trader.stderr.contains("Do not touch"), "{trader:?}");
        assert!(
            trader
                .stderr
                .contains("do not touch your token: run `tapsign lock`"),
            "{trader:?}"
        );
        // The pending unlock is the bot's, and still gets its touch.
        let st = bot.join().unwrap().unwrap();
        assert!(st.session.unwrap().expires_in_secs > 3600);
    });
    // Once it is done, the trader's unlock goes through, saying what the touch opens.
    let out = w.run(&["unlock", "--ttl", "1h", "--max-signatures", "500"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("to open a session with every key: lifetime 1h, 500 signatures, the agent's defaults for the rest"),
        "{out:?}"
    );
}
