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
        await_log(&w, "waiting for a touch");
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
        // And what it asks for (red-team round 19: a bot running `tapsign unlock` itself is
        // named as the trader's own command would be).
        assert!(
            trader
                .stderr
                .contains("Open a session for 1d, 50000 signatures (idle 1h), every key"),
            "{trader:?}"
        );
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
    // The refusal is on record, with who was refused.
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"unlock_refused\"")
            && l.contains("\"code\":\"busy\"")
            && l.contains("another unlock is waiting for a touch")),
        "{log}"
    );
    // Once it is done, the trader's unlock goes through, saying what the touch opens.
    let out = w.run(&["unlock", "--ttl", "1h", "--max-signatures", "500"], "");
    out.ok();
    assert!(
        out.stderr
            .contains("to open a session with every key: lifetime 1h, 500 signatures, the agent's defaults for the rest"),
        "{out:?}"
    );
}

/// Red-team round 23 (A3): after `tapsign lock`, an extend still waiting for its touch made
/// the trader's next unlock `busy`, with advice to "run `tapsign lock`" (just done) and that
/// "a touch now would open that one" (it opens nothing). The refusal and `status` say a lock
/// came after it, that it opens nothing, and how long it holds the turn.
#[test]
fn an_unlock_after_a_lock_is_told_the_pending_extend_opens_nothing() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock", "--ttl", "1h"], "").ok();
    std::fs::write(w.home().join("soft-token/touch"), "delay 1500").unwrap();
    std::thread::scope(|scope| {
        let bot = scope.spawn(|| {
            w.client().unlock(UnlockRequest {
                extend: true,
                ..Default::default()
            })
        });
        await_log(&w, "waiting for a touch");
        w.run(&["lock"], "").ok();
        let trader = w.run(&["unlock", "--ttl", "1h"], "");
        trader.fails_with(1, "[busy]");
        assert!(
            trader
                .stderr
                .contains("but a lock came after it asked: it opens nothing now, even if touched"),
            "{trader:?}"
        );
        assert!(trader.stderr.contains("retry then"), "{trader:?}");
        assert!(!trader.stderr.contains("run `tapsign lock`"), "{trader:?}");
        assert!(!trader.stderr.contains("would open that one"), "{trader:?}");
        let st = w.status();
        let warnings = st["warnings"].to_string();
        assert!(warnings.contains("it opens nothing now"), "{warnings}");
        assert!(!warnings.contains("run `tapsign lock`"), "{warnings}");
        let e = bot.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("ended before the touch"), "{e}");
    });
    w.run(&["unlock", "--ttl", "1h"], "").ok();
}

/// Waits until the agent's log says `needle`, at most 10 s.
fn await_log(w: &World, needle: &str) {
    let said = w.agent_said(needle);
    assert!(said.contains(needle), "{said}");
}

/// Waits until the agent's log says `needle` `n` times, at most 10 s.
fn await_count(w: &World, needle: &str, n: usize) {
    let asked = Instant::now();
    while w.agent_log().matches(needle).count() < n && asked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn warnings(w: &World) -> Vec<String> {
    w.status()["warnings"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// An unlock given up (Ctrl-C on `tapsign unlock`, a bot that died) went on waiting for its
/// touch, and a touch meant for something else opened the session nobody was there for. Now
/// the touch opens nothing once the asker has hung up; `status` shows the pending unlock
/// meanwhile, and the log has the refusal.
#[test]
fn an_unlock_whose_asker_hangs_up_before_the_touch_opens_nothing() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    std::fs::write(w.home().join("soft-token/touch"), "delay 1500").unwrap();
    let mut unlock = w.cmd(&["unlock"]);
    unlock
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut asker = unlock.spawn().unwrap();
    await_log(&w, "waiting for a touch");
    let pending = format!("an unlock asked by pid {} ", asker.id());
    assert!(
        warnings(&w).iter().any(|m| m.contains(&pending)),
        "{:?}",
        warnings(&w)
    );
    asker.kill().unwrap();
    asker.wait().unwrap();
    await_log(&w, "which has hung up: nothing was opened");
    let st = w.status();
    assert_eq!(st["state"], "locked", "{st}");
    assert!(
        !warnings(&w).iter().any(|m| m.contains("is under way")),
        "{st}"
    );
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"unlock_refused\"") && l.contains("hung up before the touch")),
        "{log}"
    );
    // The turn is free again.
    std::fs::write(w.home().join("soft-token/touch"), "").unwrap();
    w.run(&["unlock"], "").ok();
}

/// Only a whole close is a hang-up: a client that shuts down its writing half after sending
/// `unlock` still reads the answer, and its session opens.
#[test]
fn an_unlock_from_a_client_that_shuts_down_writing_still_opens() {
    use tapsign_proto::frame::read_frame;
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    std::fs::write(w.home().join("soft-token/touch"), "delay 500").unwrap();
    let mut s = unlock_asked(&w);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&read_frame(&mut s).unwrap()).unwrap();
    assert_eq!(answer["type"], "unlocked", "{answer}");
    assert_eq!(w.status()["state"], "unlocked");
}

/// A client that shut down its writing half after `unlock` (as `socat` does at the end of its
/// input), or that sent its next request ahead, and then hung up (Ctrl-C) was not seen to: its
/// socket stays readable, and the agent looked no further, so the touch opened the session
/// nobody was there for. The close is seen in both cases.
#[test]
fn an_unlock_whose_asker_shut_writing_or_sent_ahead_and_then_hung_up_opens_nothing() {
    use std::io::Write;
    use tapsign_proto::frame::write_frame;
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    std::fs::write(w.home().join("soft-token/touch"), "delay 1500").unwrap();
    for (n, sent_ahead) in [(1, false), (2, true)] {
        let mut s = unlock_asked(&w);
        if sent_ahead {
            write_frame(&mut s, &serde_json::json!({"type": "status"})).unwrap();
        } else {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        s.flush().unwrap();
        await_count(&w, "waiting for a touch", n);
        drop(s);
        await_count(&w, "which has hung up: nothing was opened", n);
        let st = w.status();
        assert_eq!(st["state"], "locked", "sent ahead: {sent_ahead}: {st}");
        assert_eq!(
            w.agent_log()
                .matches("which has hung up: nothing was opened")
                .count(),
            n,
            "{}",
            w.agent_log()
        );
    }
}

/// A raw connection that has said hello and sent `unlock` (all bounds the agent's defaults).
fn unlock_asked(w: &World) -> std::os::unix::net::UnixStream {
    use std::io::Write;
    use tapsign_proto::frame::{read_frame, write_frame};
    let mut s = std::os::unix::net::UnixStream::connect(&w.sock).unwrap();
    let hello = serde_json::json!({"type": "hello", "version": tapsign_proto::PROTOCOL_VERSION, "client": "raw"});
    write_frame(&mut s, &hello).unwrap();
    read_frame(&mut s).unwrap();
    write_frame(&mut s, &serde_json::json!({"type": "unlock"})).unwrap();
    s.flush().unwrap();
    s
}
