//! Many bots racing for one budget get exactly the budget, never more.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tapsign_proto::{ErrorCode, SignRequest};
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
