//! Bots can subscribe to session events and wind down before the session ends; a touch
//! extends an open session.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::Duration;

use tapsign_proto::client::{Client, Subscription};
use tapsign_proto::{ErrorCode, EventKind, SessionEvent};
use tapsign_tests::World;

fn world() -> World {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w
}

fn subscribe(w: &World) -> Subscription {
    let sub = Client::connect(&w.sock, "events-test")
        .unwrap()
        .subscribe()
        .unwrap();
    sub.set_timeout(Some(Duration::from_secs(20))).unwrap();
    sub
}

fn next(sub: &mut Subscription, kind: EventKind) -> SessionEvent {
    let e = sub.next_event().unwrap();
    assert_eq!(e.event, kind, "{e:?}");
    e
}

fn sign(w: &World) {
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
}

#[test]
fn subscribers_hear_unlock_budget_low_and_the_end() {
    let w = world();
    let mut sub = subscribe(&w);
    w.run(&["unlock", "--max-signatures", "10"], "").ok();
    let e = next(&mut sub, EventKind::Unlocked);
    assert_eq!(e.signatures_left, Some(10));
    for _ in 0..9 {
        sign(&w);
    }
    let e = next(&mut sub, EventKind::BudgetLow);
    assert_eq!(e.signatures_left, Some(1));
    sign(&w);
    let e = next(&mut sub, EventKind::Locked);
    assert_eq!(e.code, Some(ErrorCode::BudgetExhausted));
    assert!(e.reason.unwrap().contains("budget"));
}

#[test]
fn subscribers_are_warned_before_expiry_then_told_it_expired() {
    let w = world();
    let mut sub = subscribe(&w);
    w.run(&["unlock", "--ttl", "4s"], "").ok();
    next(&mut sub, EventKind::Unlocked);
    let e = next(&mut sub, EventKind::ExpiringSoon);
    assert!(e.expires_in_secs.unwrap() <= 1, "{e:?}");
    assert!(e.message.contains("--extend"), "{e:?}");
    let e = next(&mut sub, EventKind::Locked);
    assert_eq!(e.code, Some(ErrorCode::Expired));
}

#[test]
fn lock_is_announced_with_its_reason() {
    let w = world();
    w.run(&["unlock"], "").ok();
    let mut sub = subscribe(&w);
    w.run(&["lock"], "").ok();
    let e = next(&mut sub, EventKind::Locked);
    assert_eq!(e.code, Some(ErrorCode::Locked));
    assert!(e.reason.unwrap().contains("tapsign lock"));
}

#[test]
fn a_touch_extends_an_open_session() {
    let w = world();
    w.run(&["unlock", "--ttl", "30s", "--max-signatures", "2"], "")
        .ok();
    sign(&w);
    let mut sub = subscribe(&w);
    let touches = || std::fs::read_to_string(w.home().join("soft-token/touches")).unwrap();
    let before = touches();
    let out = w.run(
        &[
            "unlock",
            "--extend",
            "--ttl",
            "1h",
            "--max-signatures",
            "50",
        ],
        "",
    );
    assert!(out.ok().starts_with("Extended 1 key(s): b."), "{out:?}");
    assert_ne!(before, touches(), "extending asks for a touch");
    next(&mut sub, EventKind::Extended);
    let st: serde_json::Value =
        serde_json::from_str(w.run(&["status", "--json"], "").ok()).unwrap();
    assert!(
        st["session"]["expires_in_secs"].as_u64().unwrap() > 3000,
        "{st}"
    );
    assert_eq!(st["session"]["signatures_left"], 50);
}

/// Red-team round 23 (A2): an extend kept a credential `tapsign key remove` had taken out
/// since the session opened, and renewed it for up to a day at each extend ("Extended 2
/// key(s): b, c" right after "Removed c"), under a prompt saying "same keys". It drops it, says
/// so in its answer and its audit line, and the prompt names the keys it keeps.
#[test]
fn an_extend_drops_a_key_removed_since_the_session_opened() {
    let w = world();
    w.run(
        &["key", "add", "c", "--exchange", "binance"],
        "ak-c\nsk-c\n",
    )
    .ok();
    let sign_c = || {
        w.run(
            &["sign", "c", "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
    };
    w.run(&["unlock", "--ttl", "2m"], "").ok();
    sign_c().ok();
    w.run(&["key", "remove", "c"], "").ok();
    let out = w.run(&["unlock", "--extend", "--ttl", "1h"], "");
    assert!(out.ok().starts_with("Extended 1 key(s): b."), "{out:?}");
    assert!(
        out.stderr.contains("keeping key(s) b, c less any removed"),
        "the prompt names the keys: {out:?}"
    );
    assert!(
        out.stderr
            .contains("key \"c\" was dropped from the session: removed from the keystore"),
        "{out:?}"
    );
    sign_c().fails_with(5, "no key named \"c\" in the open session");
    sign(&w);
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    let extend = log.lines().rfind(|l| l.contains("(extend")).unwrap();
    assert!(
        extend.contains("(extend; dropped c: removed from the keystore"),
        "{extend}"
    );
    assert!(extend.contains(r#""keys":["b"]"#), "{extend}");
}

/// Red-team round 23 (A2): after `key add --replace`, an extend kept signing with the old API
/// key and secret (the same signature before and after), and renewed them. It drops the key;
/// and when no key is left, it extends nothing and says to unlock.
#[test]
fn an_extend_drops_a_key_replaced_since_the_session_opened() {
    let w = world();
    w.run(&["unlock", "--ttl", "2m"], "").ok();
    w.run(
        &["key", "add", "b", "--exchange", "binance", "--replace"],
        "ak-new\nsk-new\n",
    )
    .ok();
    let before = w.status()["session"]["expires_in_secs"].as_u64().unwrap();
    let out = w.run(&["unlock", "--extend", "--ttl", "1h"], "");
    out.fails_with(
        5,
        "key \"b\" was dropped from the session: replaced in the keystore",
    );
    assert!(out.stderr.contains("run `tapsign unlock`"), "{out:?}");
    let st = w.status();
    assert!(
        st["session"]["expires_in_secs"].as_u64().unwrap() <= before,
        "nothing renewed: {st}"
    );
    // A replacement with the same API key and secret is the same credential: kept.
    w.run(&["unlock", "--ttl", "2m"], "").ok();
    w.run(
        &["key", "add", "b", "--exchange", "binance", "--replace"],
        "ak-new\nsk-new\n",
    )
    .ok();
    let out = w.run(&["unlock", "--extend", "--ttl", "1h"], "");
    assert!(out.ok().starts_with("Extended 1 key(s): b."), "{out:?}");
}

#[test]
fn extend_without_a_session_is_refused() {
    let w = world();
    w.run(&["unlock", "--extend"], "")
        .fails_with(4, "no session is open to extend");
}

#[test]
fn the_events_command_prints_json_lines() {
    let w = world();
    let mut child = w
        .cmd(&["events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    // The subscription may start after our unlock: retry the lock/unlock pair until seen.
    let start = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.by_ref() {
            if tx.send(l.unwrap()).is_err() {
                return;
            }
        }
    });
    let line = loop {
        w.run(&["unlock"], "").ok();
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no event printed"
        );
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "unlocked");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The last signature of the budget ends the session even when its line cannot be written
/// (the signature is withheld, the budget spent): subscribers hear `locked` as for any end.
#[test]
fn a_budget_spent_by_an_unrecorded_signature_is_announced() {
    let w = world();
    let mut sub = subscribe(&w);
    w.run(&["unlock", "--max-signatures", "2"], "").ok();
    next(&mut sub, EventKind::Unlocked);
    sign(&w);
    next(&mut sub, EventKind::BudgetLow);
    // The log replaced under the agent: it withholds every signature from here on.
    let log = w.home().join("audit.log");
    std::fs::rename(&log, w.home().join("audit.log.moved")).unwrap();
    let run = w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    );
    assert_ne!(
        run.code, 0,
        "signed with the log moved away: {}",
        run.stdout
    );
    let e = next(&mut sub, EventKind::Locked);
    assert_eq!(e.code, Some(ErrorCode::BudgetExhausted), "{e:?}");
}

/// Red-team round 6: an extend that named keys was answered `unlocked` and its keys ignored;
/// a request asking for something the agent will not do is told so.
#[test]
fn an_extend_that_names_keys_is_refused() {
    let w = world();
    w.run(&["unlock"], "").ok();
    let mut c = w.client();
    let e = c
        .unlock(tapsign_proto::UnlockRequest {
            keys: Some(vec!["b".into()]),
            extend: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Some(tapsign_proto::ErrorCode::BadRequest), "{e}");
    assert!(e.to_string().contains("keeps the session's keys"), "{e}");
}

/// Red-team round 19: a name given many times was opened as many times (holding the unlock's
/// turn for seconds for 6,000 copies) and written as many times into the unlock's audit line.
/// Each name counts once.
#[test]
fn an_unlock_naming_a_key_many_times_opens_it_once() {
    let w = world();
    let mut c = w.client();
    let st = c
        .unlock(tapsign_proto::UnlockRequest {
            keys: Some(vec!["b".into(); 500]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(st.session.unwrap().keys.len(), 1);
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    let unlock = log
        .lines()
        .rfind(|l| l.contains("\"type\":\"unlock\""))
        .unwrap();
    assert!(unlock.contains("[\"b\"]"), "{unlock}");
}

/// An unlock during an open session replaced it with only a second `unlocked`: no `locked`
/// for bots to close their websocket logins on, and no audit line ending the first session.
/// The old session now ends as a lock ends it; an extend is no replacement.
#[test]
fn a_replaced_session_ends_with_a_locked_event_and_a_lock_line() {
    let w = world();
    let mut sub = subscribe(&w);
    w.run(&["unlock"], "").ok();
    next(&mut sub, EventKind::Unlocked);
    w.run(&["unlock", "--extend"], "").ok();
    next(&mut sub, EventKind::Extended);
    w.run(&["unlock", "--ttl", "1h"], "").ok();
    let e = next(&mut sub, EventKind::Locked);
    assert_eq!(e.code, Some(ErrorCode::Locked));
    assert_eq!(
        e.reason.as_deref(),
        Some("session replaced by a new unlock")
    );
    let e = next(&mut sub, EventKind::Unlocked);
    assert_eq!(e.expires_in_secs, Some(3600));

    let audit = w.run(&["audit"], "");
    let events: Vec<&str> = audit
        .ok()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, e)| e))
        .filter(|e| e.starts_with("unlock") || e.starts_with("lock"))
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events[1].contains("(extend)"), "{events:?}");
    assert_eq!(events[2], "lock (session replaced by a new unlock)");
    assert!(events[3].contains("ttl 3600s"), "{events:?}");
    w.run(&["audit", "verify"], "").ok();
}
