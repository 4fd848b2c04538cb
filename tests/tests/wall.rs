//! The withdrawal wall through the real agent and CLI: a trading session on every exchange
//! with the default profiles, config.toml that others could change (class 6), connections
//! that hold every slot (class 7), what `status` and `policy explain` show.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tapsign_proto::{SignKind, SignRequest};
use tapsign_tests::{Run, World};

/// The Coinbase SDK's published ECDSA test key: ccxt reads balances from the App's `/v2`
/// endpoints, which refuse Ed25519 keys.
const CB_EC_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";
const KRAKEN_SECRET: &str =
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";

#[derive(Deserialize)]
struct Entry {
    what: String,
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct File {
    request: Vec<Entry>,
}

fn trading(exchange: &str) -> Vec<Entry> {
    let path = format!(
        "{}/../agent/tests/corpus/trading/{exchange}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    toml::from_str::<File>(&text).unwrap().request
}

/// The fields `key add` reads for each exchange (test secrets).
fn fields(exchange: &str) -> String {
    match exchange {
        "okx" | "kucoin" | "bitget" => "key\nsecret\npassphrase\n".into(),
        "kraken" => format!("key\n{KRAKEN_SECRET}\n"),
        "coinbase" => format!("organizations/o/apiKeys/k\n{CB_EC_PEM}"),
        _ => "key\nsecret\n".into(),
    }
}

const EXCHANGES: [&str; 10] = [
    "upbit", "bithumb", "binance", "bybit", "okx", "coinbase", "kraken", "gate", "kucoin", "bitget",
];

/// Place, amend, cancel, query and read balances on every exchange, as ccxt sends them
/// (agent/tests/corpus/trading), over the socket with the default profiles.
#[test]
fn a_trading_session_on_every_exchange_signs_with_the_default_profiles() {
    let mut w = World::new();
    w.run(&["token", "add", "--soft"], "").ok();
    for ex in EXCHANGES {
        w.run(&["key", "add", ex, "--exchange", ex], &fields(ex))
            .ok();
    }
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let mut client = w.client();
    let mut n = 0;
    for ex in EXCHANGES {
        for e in trading(ex) {
            let r = SignRequest {
                key: ex.into(),
                method: e.method.clone(),
                path: e.path.clone(),
                query: e.query.clone(),
                body: e.body.clone(),
                kind: SignKind::Rest,
            };
            let signed = client
                .sign(r)
                .unwrap_or_else(|err| panic!("{ex} {} {} {}: {err}", e.what, e.method, e.path));
            assert_eq!((signed.method, signed.path), (e.method, e.path));
            n += 1;
        }
    }
    assert!(n > 300, "only {n} requests");
}

/// Class 6: a config.toml that others can write decides nothing.
#[test]
fn class6_a_world_writable_config_raising_the_recv_window_cap_is_refused() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[signing]\nrecv_window_cap_ms = 60000\n");
    let config = w.home().join("config.toml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    w.run(&["agent"], "")
        .fails_with(1, "can be written by other users");
    explain(&w, "b", "GET", "/api/v3/account", "", "")
        .fails_with(1, "can be written by other users");
    // Made private, the same file is honoured.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let q = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&recvWindow=60000";
    w.run(
        &[
            "sign",
            "b",
            "--method",
            "POST",
            "--path",
            "/api/v3/order",
            "--query",
            q,
        ],
        "",
    )
    .ok();
}

/// `tapsign policy explain KEY --method M --path P --query Q --body B`.
fn explain(w: &World, key: &str, method: &str, path: &str, query: &str, body: &str) -> Run {
    w.run(
        &[
            "policy", "explain", key, "--method", method, "--path", path, "--query", query,
            "--body", body,
        ],
        "",
    )
}

fn wait_closed(s: &mut UnixStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the refusal frame, then the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Class 7: connections that send nothing, or two header bytes, hold no slot beyond the frame
/// timeout, and `status` and `lock` get through while they do.
#[test]
fn class7_silent_connections_do_not_hold_the_slots() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[server]\nmax_connections = 8\nframe_timeout = \"1s\"\n");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    // As in the test below: a hog turned away because the `unlock` connection's slot was not
    // free yet makes a run that proves nothing, and it is made again.
    let mut tries = 0;
    let mut hogs = loop {
        let hogs: Vec<UnixStream> = (0..7)
            .map(|i| {
                let mut s = UnixStream::connect(&w.sock).unwrap();
                if i % 2 == 1 {
                    s.write_all(&[0, 0]).unwrap();
                }
                s
            })
            .collect();
        // Every general slot is held: status and lock still get through on the kept-back slot.
        let st = w.run(&["status", "--json"], "");
        let out = w.run(&["lock"], "");
        let through = st.code == 0 && out.code == 0 && !out.stdout.contains("SIGHUP");
        // The `unlock` connection's slot still held, the last hog took the kept-back slot
        // (it may wait there for its `hello` until the frame timeout): `status` was then
        // answered busy without any hog being turned away. That run proves nothing either.
        let setup_lost = hogs.iter().any(turned_away) || st.stderr.contains("[busy]");
        if !through && setup_lost && tries < 5 {
            tries += 1;
            drop(hogs);
            std::thread::sleep(Duration::from_millis(1500));
            w.run(&["unlock"], "").ok();
            continue;
        }
        assert!(st.ok().contains("\"unlocked\""), "{st:?}");
        assert!(
            !out.ok().contains("SIGHUP"),
            "lock had to fall back to SIGHUP: {out:?}"
        );
        break hogs;
    };
    // The silent ones are dropped after the frame timeout, not the 10-minute idle timeout.
    let start = Instant::now();
    for s in &mut hogs {
        assert!(
            wait_closed(s, Duration::from_secs(5)),
            "a silent connection was kept"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    // And the slots are free again.
    w.client().status().unwrap();
}

#[test]
fn with_every_slot_held_the_busy_answer_says_so_and_lock_signals_instead() {
    // The kept-back slot taken too: the answer once claimed status and lock still got through.
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[server]\nmax_connections = 4\nframe_timeout = \"5s\"\n");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    // The agent lets the `unlock` connection's slot go when it reads the client's hang-up,
    // which a loaded machine can do after the hogs below connect: one of them is then turned
    // away as busy, and `status` finds that slot free. That run proves nothing, so it is made
    // again; a `status` that gets through while all four hogs hold their slots fails.
    let mut tries = 0;
    let _hogs = loop {
        let hogs: Vec<UnixStream> = (0..4)
            .map(|_| UnixStream::connect(&w.sock).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let status = w.run(&["status"], "");
        if status.code != 0 {
            status.fails_with(
                1,
                "the one kept for `tapsign status` and `tapsign lock` too",
            );
            break hogs;
        }
        assert!(
            hogs.iter().any(turned_away) && tries < 5,
            "status got through with every slot held: {status:?}"
        );
        tries += 1;
        drop(hogs);
        std::thread::sleep(Duration::from_millis(200));
    };
    // A fifth connection is turned away with the busy answer (which `turned_away` reads).
    let extra = UnixStream::connect(&w.sock).unwrap();
    let start = Instant::now();
    while !turned_away(&extra) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no busy answer on a fifth connection"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = w.run(&["lock"], "");
    assert!(out.ok().contains("SIGHUP"), "{out:?}");
}

/// Whether the agent turned `s` away as busy when it connected (every slot taken): its answer
/// is waiting, a `busy` error. A connection the agent holds has nothing to read, and one it
/// closed for a late frame has another error.
fn turned_away(s: &UnixStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut answer = [0u8; 4096];
    let read = (&*s).read(&mut answer);
    s.set_nonblocking(false).unwrap();
    read.is_ok_and(|n| String::from_utf8_lossy(&answer[..n]).contains("\"busy\""))
}

#[test]
fn status_and_policy_explain_show_what_widens_a_key() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config(
        "[keys.b]\nallow = [{ method = \"POST\", path = \"/sapi/v1/margin/order\", params = [\"symbol\", \"side\", \"type\", \"quantity\"] }]\n",
    );
    w.start_agent();
    let st = w.run(&["status"], "");
    assert!(
        st.ok().contains(
            "policy b: differs from its trading profile: allow POST /sapi/v1/margin/order"
        ),
        "{st:?}"
    );
    let ex = explain(
        &w,
        "b",
        "POST",
        "/sapi/v1/margin/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
        "",
    );
    let out = ex.ok();
    assert!(out.contains("query   symbol = BTCUSDT"), "{out}");
    assert!(
        out.contains("allowed by config.toml [keys.b] allow: POST /sapi/v1/margin/order"),
        "{out}"
    );
    assert!(
        out.contains("signs neither the path nor the method"),
        "{out}"
    );
    // A withdrawal: refused, the rule named, exit code 5; no agent or token needed.
    let ex = explain(
        &w,
        "b",
        "POST",
        "/api/v3/order",
        "coin=USDT&address=TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE&amount=1000",
        "",
    );
    assert_eq!(ex.code, 5, "{ex:?}");
    assert!(
        ex.stdout.contains("refused [policy_denied]") && ex.stdout.contains("parameter address"),
        "{ex:?}"
    );
    // The seam attack is shown as the parse failure it is.
    let ex = explain(
        &w,
        "b",
        "POST",
        "/api/v3/order",
        "amount=1000&addr",
        "ess=x",
    );
    assert_eq!(ex.code, 5, "{ex:?}");
    assert!(
        ex.stdout.contains("does not parse") && ex.stdout.contains("has no '='"),
        "{ex:?}"
    );
}

/// Bad input of every kind gets its stable code and a message that says what to send instead,
/// and neither the agent nor the session goes down.
#[test]
fn malformed_requests_are_refused_with_their_code_and_the_session_stays_open() {
    use tapsign_proto::ErrorCode;
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.run(&["key", "add", "o", "--exchange", "okx"], "ak\nsk\npp\n")
        .ok();
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let mut client = w.client();
    let cases: &[(&str, &str, &str, &str, &str, ErrorCode)] = &[
        (
            "b",
            "POST",
            "/api/v3/order",
            "symbol=BTCUSDT&&side=BUY",
            "",
            ErrorCode::BadRequest,
        ),
        (
            "b",
            "POST",
            "/api/v3/order",
            "symbol=BTC USDT",
            "",
            ErrorCode::BadRequest,
        ),
        ("b", "POST", "/api//v3/order", "", "", ErrorCode::BadRequest),
        ("b", "post", "/api/v3/order", "", "", ErrorCode::BadRequest),
        (
            "b",
            "POST",
            "/api/v3/order",
            "symbol=BTCUSDT&symbol=ETHUSDT",
            "",
            ErrorCode::BadRequest,
        ),
        (
            "b",
            "GET",
            "/sapi/v1/capital/deposit/address",
            "coin=BTC",
            "",
            ErrorCode::PolicyDenied,
        ),
        (
            "o",
            "POST",
            "/api/v5/trade/order",
            "",
            "{\"instId\":\"BTC-USDT\",\"instId\":\"X\"}",
            ErrorCode::BadRequest,
        ),
        (
            "o",
            "POST",
            "/api/v5/trade/order",
            "",
            "{\"instId\":\"\\ud800\"}",
            ErrorCode::BadRequest,
        ),
        (
            "o",
            "POST",
            "/api/v5/trade/order",
            "",
            "[[[[[[[[[[1]]]]]]]]]]",
            ErrorCode::BadRequest,
        ),
        (
            "o",
            "POST",
            "/api/v5/trade/order",
            "",
            &"{".repeat(5000),
            ErrorCode::BadRequest,
        ),
        (
            "o",
            "GET",
            "/api/v5/asset/balances",
            "",
            "",
            ErrorCode::PolicyDenied,
        ),
    ];
    for (key, method, path, query, body, code) in cases {
        let r = SignRequest {
            key: (*key).into(),
            method: (*method).into(),
            path: (*path).into(),
            query: (*query).into(),
            body: (*body).into(),
            kind: SignKind::Rest,
        };
        let err = client.sign(r).expect_err("refused");
        let msg = err.to_string();
        assert_eq!(
            err.code(),
            Some(*code),
            "{method} {path} {query} {body}: {msg}"
        );
        assert!(msg.len() < 600, "an over-long message: {msg}");
        assert!(
            !msg.contains("sk") || msg.contains("ask"),
            "the secret in a message: {msg}"
        );
    }
    // The session is still open and still signs.
    let st = client.status().unwrap();
    assert_eq!(st.state, tapsign_proto::SessionState::Unlocked);
    let q = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1";
    client
        .sign(SignRequest {
            key: "b".into(),
            method: "POST".into(),
            path: "/api/v3/order".into(),
            query: q.into(),
            body: String::new(),
            kind: SignKind::Rest,
        })
        .unwrap();
}

/// `policy explain` says "refused" for what the exchange's signing refuses after the policy
/// passed it (a value Upbit's query hash cannot carry, a bot's stale timestamp), as the agent
/// answers: before, it said "allowed" and exited 0. (An Upbit string with `%` was the case
/// here until round 27, when the policy came to refuse it first, as it does in a query; a
/// number that is not an integer, whose printing in Upbit's hash is undocumented, is one the
/// policy passes and the scheme refuses.)
#[test]
fn policy_explain_refuses_what_the_signing_scheme_refuses_as_the_agent_does() {
    use tapsign_proto::ErrorCode;
    let mut w = World::new();
    w.setup_key("u", "upbit", "ak", "sk");
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let order = r#"{"market":"KRW-BTC","side":"bid","ord_type":"limit","price":"100","volume":1.5,"identifier":"bot-1"}"#;
    let cases = [
        ("u", "POST", "/v1/orders", "", order),
        ("b", "GET", "/api/v3/account", "timestamp=1", ""),
    ];
    let mut client = w.client();
    for (key, method, path, query, body) in cases {
        let err = client
            .sign(SignRequest {
                key: key.into(),
                method: method.into(),
                path: path.into(),
                query: query.into(),
                body: body.into(),
                kind: SignKind::Rest,
            })
            .expect_err("the agent refuses it");
        assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
        let ex = explain(&w, key, method, path, query, body);
        assert_eq!(ex.code, 5, "{ex:?}");
        assert!(
            ex.stdout.contains("signing:  refused [bad_request]"),
            "{ex:?}"
        );
    }
    // What the agent signs, explain still allows.
    let ex = explain(
        &w,
        "b",
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
        "",
    );
    assert_eq!(ex.code, 0, "{ex:?}");
    assert!(!ex.stdout.contains("signing:"), "{ex:?}");
}

#[test]
fn policy_explain_says_a_credential_file_is_damaged_not_missing() {
    let w = World::new();
    w.setup_key("bn", "binance", "ak", "sk");
    let ks = w.home().join("keystore");
    let live = std::fs::read_dir(&ks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("vault-")
        })
        .unwrap();
    let file = live.join("credentials/bn.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = explain(&w, "bn", "GET", "/api/v3/account", "", "");
    out.fails_with(1, "bn.json can be read or entered by other users");
    assert!(!out.stderr.contains("no credential named"), "{out:?}");
    explain(&w, "other", "GET", "/api/v3/account", "", "").fails_with(5, "no credential named");
}
