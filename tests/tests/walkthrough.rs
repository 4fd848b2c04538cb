//! The README walk-through, with the soft token: store a key, sign while locked, unlock with a
//! budget of three, spend it, lock.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::{World, hmac_sha256_hex, signed};

const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

/// Check a Binance signature the way the exchange does: HMAC over query + body, with the
/// signature parameter itself taken out.
fn verify_binance(out: &serde_json::Value) {
    let query = out["query"].as_str().unwrap();
    let body = out["body"].as_str().unwrap();
    let (carrier, other) = if body.is_empty() {
        (query, "")
    } else {
        (body, query)
    };
    let (signed_part, sig) = carrier
        .rsplit_once("&signature=")
        .expect("a signature parameter, last");
    let payload = if body.is_empty() {
        signed_part.to_owned()
    } else {
        format!("{other}{signed_part}")
    };
    assert_eq!(
        sig,
        hmac_sha256_hex(SECRET.as_bytes(), payload.as_bytes()),
        "signature over {payload:?}"
    );
    assert!(
        payload.contains("timestamp="),
        "the agent stamps the timestamp: {payload}"
    );
    assert_eq!(out["headers"]["X-MBX-APIKEY"], API_KEY);
}

#[test]
fn walkthrough_budget_of_three_then_lock() {
    let mut w = World::new();
    w.setup_key("binance-main", "binance", API_KEY, SECRET);
    w.start_agent();

    let sign = |w: &World| {
        w.run(
            &[
                "sign",
                "binance-main",
                "--method",
                "POST",
                "--path",
                "/api/v3/order",
                "--query",
                "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
            ],
            "",
        )
    };
    sign(&w).fails_with(4, "locked");

    let out = w.run(&["unlock", "--max-signatures", "3"], "");
    assert!(out.ok().contains("binance-main"), "{out:?}");

    for _ in 0..3 {
        let out = sign(&w);
        let v = signed(out.ok());
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/api/v3/order");
        assert!(
            v["query"]
                .as_str()
                .unwrap()
                .starts_with("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=")
        );
        verify_binance(&v);
    }
    sign(&w).fails_with(4, "budget_exhausted");

    w.run(&["unlock", "--max-signatures", "3"], "").ok();
    w.run(&["lock"], "").ok();
    sign(&w).fails_with(4, "locked");
    let status = w.run(&["status", "--json"], "");
    let st: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(st["state"], "locked");
    assert!(
        st["lock_reason"].as_str().unwrap().contains("tapsign lock"),
        "{st}"
    );
}

#[test]
fn body_requests_carry_the_signature_in_the_body() {
    let mut w = World::new();
    w.setup_key("b", "binance", API_KEY, SECRET);
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let out = w.run(
        &[
            "sign",
            "b",
            "--method",
            "POST",
            "--path",
            "/api/v3/order",
            "--body",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
        ],
        "",
    );
    let v = signed(out.ok());
    assert_eq!(v["query"], "", "nothing is added to an empty query");
    assert!(
        v["body"]
            .as_str()
            .unwrap()
            .starts_with("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=")
    );
    verify_binance(&v);
    // Split between query and body, the same order is refused: a cut where they meet could
    // make names neither holds (docs/policy.md, "Query or body, not both").
    w.run(
        &[
            "sign",
            "b",
            "--method",
            "POST",
            "--path",
            "/api/v3/order",
            "--query",
            "symbol=BTCUSDT",
            "--body",
            "side=BUY&type=MARKET&quantity=1",
        ],
        "",
    )
    .fails_with(5, "in the query or every one in the body");
}

#[test]
fn status_shows_the_session_and_the_insecure_token() {
    let mut w = World::new();
    w.setup_key("b", "binance", API_KEY, SECRET);
    w.start_agent();
    w.run(&["unlock", "--ttl", "1h", "--max-signatures", "10"], "")
        .ok();
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
    let st: serde_json::Value =
        serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
    assert_eq!(st["state"], "unlocked");
    assert_eq!(st["session"]["signatures_left"], 9);
    assert_eq!(st["session"]["signatures_made"], 1);
    assert!(st["session"]["expires_in_secs"].as_u64().unwrap() <= 3600);
    assert_eq!(st["session"]["clients"][0]["signatures"], 1);
    assert!(
        st["tokens"][0]["description"]
            .as_str()
            .unwrap()
            .contains("INSECURE")
    );
    assert!(st["warnings"].to_string().contains("no protection"), "{st}");
    let text = w.run(&["status"], "");
    assert!(text.ok().contains("Unlocked"), "{text:?}");
}

#[test]
fn the_agent_refuses_the_soft_token_unless_told() {
    let mut w = World::new();
    w.setup_key("b", "binance", API_KEY, SECRET);
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
    w.run(&["unlock"], "")
        .fails_with(6, "TAPSIGN_INSECURE_SOFT_TOKEN=1");
    let mut add = w.cmd(&["token", "add", "--soft"]);
    add.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    let out = add.output().unwrap();
    assert_eq!(out.status.code(), Some(6));
}
