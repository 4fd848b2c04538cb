use super::*;
use crate::credential::Exchange;
use crate::secret::{SecretBytes, SecretString};
use tapsign_proto::ErrorCode;

fn cred(name: &str) -> Credential {
    Credential {
        name: name.into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("ak".into()),
        secret: SecretBytes::from_slice(b"sk"),
        passphrase: None,
    }
}

fn bounds(max: u64) -> Bounds {
    Bounds {
        ttl: secs(3600),
        idle: secs(600),
        max_signatures: max,
        per_key: None,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn bot() -> Client {
    Client {
        pid: 42,
        exe: "/usr/bin/bot".into(),
    }
}

fn sign(s: &mut Session, key: &str, now: u64) -> Result<(), ErrorCode> {
    s.use_key(key, secs(now), &bot(), |c| {
        Ok::<_, ()>(c.secret.expose().len())
    })
    .map(|_| ())
    .map_err(|r| crate::error::AgentError::from(r).code())
}

#[test]
fn locked_session_refuses_with_locked() {
    let mut s = Session::default();
    assert_eq!(sign(&mut s, "a", 0), Err(ErrorCode::Locked));
}

#[test]
fn budget_of_three_gives_three_then_budget_exhausted() {
    let mut s = Session::unlock(vec![cred("a")], bounds(3), secs(100), "t".into());
    for i in 0..3 {
        assert_eq!(sign(&mut s, "a", 101 + i), Ok(()), "signature {i}");
    }
    assert_eq!(sign(&mut s, "a", 105), Err(ErrorCode::BudgetExhausted));
    assert!(!s.is_unlocked(), "a spent budget ends the session");
    assert_eq!(s.lock_reason(), Some(&LockReason::BudgetSpent));
}

#[test]
fn failed_signature_does_not_spend_budget() {
    let mut s = Session::unlock(vec![cred("a")], bounds(1), secs(0), "t".into());
    let r = s.use_key("a", secs(1), &bot(), |_| Err::<(), _>("bad request"));
    assert_eq!(r, Ok(Err("bad request")));
    assert_eq!(sign(&mut s, "a", 2), Ok(()));
}

#[test]
fn lifetime_expiry_locks_at_the_deadline() {
    let b = Bounds {
        ttl: secs(60),
        idle: secs(1000),
        max_signatures: 100,
        per_key: None,
    };
    let mut s = Session::unlock(vec![cred("a")], b, secs(1000), "t".into());
    assert_eq!(s.next_deadline(), Some(secs(1060)));
    assert_eq!(s.tick(secs(1059)), None);
    assert_eq!(sign(&mut s, "a", 1059), Ok(()));
    assert_eq!(s.tick(secs(1060)), Some(LockReason::Expired));
    assert_eq!(sign(&mut s, "a", 1061), Err(ErrorCode::Expired));
}

#[test]
fn idle_timeout_counts_from_last_signature() {
    let b = Bounds {
        ttl: secs(10_000),
        idle: secs(30),
        max_signatures: 100,
        per_key: None,
    };
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(sign(&mut s, "a", 20), Ok(()));
    assert_eq!(s.next_deadline(), Some(secs(50)));
    assert_eq!(sign(&mut s, "a", 49), Ok(()));
    // A sign attempt past the idle deadline finds the session already over.
    assert_eq!(sign(&mut s, "a", 79), Err(ErrorCode::Expired));
    assert_eq!(s.lock_reason(), Some(&LockReason::Idle));
}

/// What a signature made now may outlive the session by is nothing: its lifetime's end, or its
/// idle end counted from that signature when nearer (a Coinbase token is held to it).
#[test]
fn left_if_used_is_the_nearer_of_the_lifetime_and_a_fresh_idle_end() {
    let b = Bounds {
        ttl: secs(100),
        idle: secs(30),
        max_signatures: 100,
        per_key: None,
    };
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(s.left_if_used(secs(10)), Some(secs(30)));
    for now in [20, 45, 70] {
        assert_eq!(sign(&mut s, "a", now), Ok(()));
    }
    assert_eq!(s.left_if_used(secs(80)), Some(secs(20)));
    assert_eq!(sign(&mut s, "a", 100), Err(ErrorCode::Expired));
    assert_eq!(s.left_if_used(secs(100)), None);
}

#[test]
fn per_key_budget_leaves_other_keys_usable() {
    let b = Bounds {
        per_key: Some(1),
        ..bounds(10)
    };
    let mut s = Session::unlock(vec![cred("a"), cred("b")], b, secs(0), "t".into());
    assert_eq!(sign(&mut s, "a", 1), Ok(()));
    assert_eq!(sign(&mut s, "a", 2), Err(ErrorCode::BudgetExhausted));
    assert_eq!(sign(&mut s, "b", 3), Ok(()));
    assert!(s.is_unlocked());
}

#[test]
fn unknown_key_is_refused() {
    let mut s = Session::unlock(vec![cred("a")], bounds(10), secs(0), "t".into());
    assert_eq!(sign(&mut s, "zz", 1), Err(ErrorCode::UnknownKey));
}

#[test]
fn lock_is_idempotent_and_keeps_first_reason() {
    let mut s = Session::unlock(vec![cred("a")], bounds(10), secs(0), "t".into());
    assert!(s.lock(LockReason::request(&bot())));
    assert!(!s.lock(LockReason::Signal("SIGHUP")));
    assert_eq!(s.lock_reason(), Some(&LockReason::request(&bot())));
    assert_eq!(sign(&mut s, "a", 1), Err(ErrorCode::Locked));
}

/// Red-team round 22: a `lock` from any program was shown as "locked by `tapsign lock`",
/// putting a bot's locks down to the trader. It names the program now, cut as the audit log
/// cuts a program's name.
#[test]
fn a_lock_request_names_the_program_that_sent_it() {
    let mut s = Session::unlock(vec![cred("a")], bounds(10), secs(0), "t".into());
    assert!(s.lock(LockReason::request(&bot())));
    let why = s.lock_reason().unwrap().to_string();
    assert_eq!(
        why,
        format!(
            "locked by a `lock` request from pid {} ({})",
            bot().pid,
            bot().exe
        )
    );
    let padded = Client {
        pid: 43,
        exe: format!("/tmp/{}", "x".repeat(4000)),
    };
    let why = LockReason::request(&padded).to_string();
    assert!(why.len() < 400 && why.ends_with("bytes])"), "{why}");
    let nameless = Client {
        pid: 44,
        exe: String::new(),
    };
    assert!(
        LockReason::request(&nameless)
            .to_string()
            .ends_with("pid 44 (?)")
    );
    // The agent's own program is `tapsign lock`, the documented name, still with its pid.
    let cli = Client {
        pid: 45,
        exe: "/usr/bin/tapsign".into(),
    };
    let why = LockReason::request_by(&cli, Some("/usr/bin/tapsign")).to_string();
    assert_eq!(why, "locked by `tapsign lock`, pid 45 (/usr/bin/tapsign)");
    let why = LockReason::request_by(&cli, Some("/opt/tapsign/bin/tapsign")).to_string();
    assert_eq!(
        why,
        "locked by a `lock` request from pid 45 (/usr/bin/tapsign)"
    );
}

#[test]
fn status_reports_budgets_and_clients() {
    let mut s = Session::unlock(vec![cred("a")], bounds(10), secs(0), "soft".into());
    sign(&mut s, "a", 5).unwrap();
    let st = s.status(secs(5)).unwrap();
    assert_eq!(st.signatures_left, 9);
    assert_eq!(st.signatures_made, 1);
    assert_eq!(st.expires_in_secs, 3595);
    assert_eq!(st.idle_expires_in_secs, 600);
    assert_eq!(st.clients.len(), 1);
    assert_eq!(st.clients[0].signatures, 1);
    assert!(Session::default().status(secs(0)).is_none());
    // Red-team round 11: a program path padded to push the session's lines off the screen is
    // shown cut, as the audit log cuts it.
    let padded = Client {
        pid: 43,
        exe: format!(
            "/tmp/{}/Locked (locked by `tapsign lock`)",
            " ".repeat(4000)
        ),
    };
    s.use_key("a", secs(6), &padded, |c| {
        Ok::<_, ()>(c.secret.expose().len())
    })
    .map_err(|_| ())
    .unwrap()
    .unwrap();
    let st = s.status(secs(6)).unwrap();
    let shown = &st.clients.iter().find(|c| c.pid == 43).unwrap().exe;
    assert!(shown.len() < 300 && shown.ends_with("bytes]"), "{shown}");
}

#[test]
fn expiry_warning_comes_once_five_minutes_ahead() {
    let b = Bounds {
        ttl: secs(3600),
        idle: secs(10_000),
        max_signatures: 1000,
        per_key: None,
    };
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(s.next_wakeup(), Some(secs(3300)));
    assert!(s.take_warnings(secs(3299)).is_empty());
    assert_eq!(
        s.take_warnings(secs(3300)),
        vec![Warning::ExpiringSoon {
            in_secs: 300,
            signatures_left: 1000,
            renew: b,
        }]
    );
    assert!(s.take_warnings(secs(3400)).is_empty(), "once");
    assert_eq!(s.next_wakeup(), Some(secs(3600)));
}

#[test]
fn short_sessions_are_warned_a_quarter_ahead() {
    let b = Bounds {
        ttl: secs(120),
        idle: secs(10_000),
        max_signatures: 1000,
        per_key: None,
    };
    let s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(s.next_wakeup(), Some(secs(90)));
}

#[test]
fn budget_warning_at_a_tenth_left() {
    let mut s = Session::unlock(vec![cred("a")], bounds(20), secs(0), "t".into());
    for i in 0..17 {
        sign(&mut s, "a", 1 + i).unwrap();
        assert!(s.take_warnings(secs(1 + i)).is_empty(), "at {i}");
    }
    sign(&mut s, "a", 30).unwrap();
    assert_eq!(
        s.take_warnings(secs(30)),
        vec![Warning::BudgetLow {
            left: 2,
            expires_in_secs: 3570
        }]
    );
    sign(&mut s, "a", 31).unwrap();
    assert!(s.take_warnings(secs(31)).is_empty(), "once");
}

#[test]
fn extend_renews_deadlines_and_budget_and_keeps_keys() {
    let b = Bounds {
        ttl: secs(100),
        idle: secs(50),
        max_signatures: 2,
        per_key: Some(1),
    };
    let mut s = Session::unlock(vec![cred("a"), cred("b")], b, secs(0), "t".into());
    sign(&mut s, "a", 10).unwrap();
    assert_eq!(sign(&mut s, "a", 11), Err(ErrorCode::BudgetExhausted));
    assert_eq!(
        s.extend(b, secs(40), &kept),
        Extend::Renewed { dropped: vec![] }
    );
    assert_eq!(s.next_deadline(), Some(secs(90)), "idle, from the extend");
    assert_eq!(sign(&mut s, "a", 45), Ok(()), "per-key budget renewed");
    assert_eq!(s.status(secs(45)).unwrap().signatures_left, 1);
    assert_eq!(
        Session::default().extend(b, secs(0), &kept),
        Extend::NotOpen,
        "nothing to extend while locked"
    );
}

/// An extend that keeps every key (what the keystore still holds as the session opened it).
fn kept(_: &Credential) -> Option<String> {
    None
}

/// Red-team round 23 (A2): an extend kept a credential `tapsign key remove` had taken out (or
/// `key add --replace` had replaced), and renewed it for up to a day at each extend. The keys
/// its caller says are gone are dropped, with why; when none would be left, nothing changes.
#[test]
fn an_extend_drops_the_keys_the_keystore_no_longer_holds() {
    let b = bounds(100);
    let mut s = Session::unlock(vec![cred("a"), cred("b")], b, secs(0), "t".into());
    let b_gone = |c: &Credential| (c.name == "b").then(|| "removed".to_owned());
    assert_eq!(
        s.extend(b, secs(10), &b_gone),
        Extend::Renewed {
            dropped: vec![("b".into(), "removed".into())]
        }
    );
    assert_eq!(s.key_names(), ["a"]);
    assert_eq!(sign(&mut s, "b", 11), Err(ErrorCode::UnknownKey));
    assert_eq!(sign(&mut s, "a", 12), Ok(()));
    // Every key gone: refused, and the session as it was (its deadlines too).
    let all_gone = |_: &Credential| Some("replaced".to_owned());
    let deadline = s.next_deadline();
    assert_eq!(
        s.extend(b, secs(20), &all_gone),
        Extend::NoneKept {
            dropped: vec![("a".into(), "replaced".into())]
        }
    );
    assert_eq!(s.key_names(), ["a"]);
    assert_eq!(s.next_deadline(), deadline);
}

/// Red-team round 23 (A6): `Session::extend` renewed any open session, so a deadline that
/// passed after its caller's last look was renewed, not ended. It looks itself now.
#[test]
fn an_extend_past_a_deadline_ends_the_session_instead() {
    let b = bounds(100);
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(
        s.extend(b, secs(3600), &kept),
        Extend::Ended(LockReason::Expired)
    );
    assert!(!s.is_unlocked());
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert_eq!(
        s.extend(b, secs(600), &kept),
        Extend::Ended(LockReason::Idle)
    );
    let mut s = Session::unlock(vec![cred("a")], b, secs(0), "t".into());
    assert!(matches!(
        s.extend(b, secs(599), &kept),
        Extend::Renewed { .. }
    ));
}

/// `unlock --extend` without bounds renews these: what the session was opened with, then
/// what the last extend gave, never the configured defaults.
#[test]
fn the_session_remembers_the_bounds_it_was_opened_and_extended_with() {
    let opened = Bounds {
        ttl: secs(3600),
        idle: secs(600),
        max_signatures: 500,
        per_key: None,
    };
    let mut s = Session::unlock(vec![cred("a")], opened, secs(0), "t".into());
    assert_eq!(s.bounds(), Some(opened));
    let wider = Bounds {
        ttl: secs(7200),
        ..opened
    };
    assert!(matches!(
        s.extend(wider, secs(10), &kept),
        Extend::Renewed { .. }
    ));
    assert_eq!(s.bounds(), Some(wider));
    assert_eq!(s.status(secs(10)).unwrap().idle_timeout_secs, 600);
    s.lock(LockReason::request(&bot()));
    assert_eq!(s.bounds(), None, "a locked agent has no bounds to renew");
}

/// Red-team round 19: programs were counted only while there was room for them, so after
/// 1,024 one-off signers a program signing thousands of times was never counted, and `status`
/// left it out. A new program takes the place of the one that signed least.
#[test]
fn a_program_that_signs_most_is_counted_however_many_came_before() {
    let mut s = Session::unlock(vec![cred("a")], bounds(100_000), secs(0), "soft".into());
    let mut sign_as = |pid: u32| {
        let who = Client {
            pid,
            exe: format!("/tmp/bot-{pid}"),
        };
        s.use_key("a", secs(1), &who, |c| Ok::<_, ()>(c.secret.expose().len()))
            .map_err(|_| ())
            .unwrap()
            .unwrap();
    };
    for pid in 1..=crate::session::CLIENTS_KEPT as u32 + 10 {
        sign_as(pid);
    }
    for _ in 0..50 {
        sign_as(99_999);
    }
    let st = s.status(secs(1)).unwrap();
    assert_eq!(st.clients.len(), crate::session::CLIENTS_KEPT);
    let heavy = st.clients.iter().find(|c| c.pid == 99_999);
    assert_eq!(heavy.map(|c| c.signatures), Some(50), "{heavy:?}");
}

/// Red-team round 20: signatures were counted per pid, under the path of the first program
/// seen with it, so a program that got the pid of one that had exited (pid reuse) signed
/// under the earlier one's name in `status`. A program is its pid and its path.
#[test]
fn a_program_with_a_reused_pid_is_counted_apart_from_the_one_before() {
    let mut s = Session::unlock(vec![cred("a")], bounds(100), secs(0), "soft".into());
    let mut sign_as = |exe: &str, times: usize| {
        let who = Client {
            pid: 5411,
            exe: exe.into(),
        };
        for _ in 0..times {
            s.use_key("a", secs(1), &who, |c| Ok::<_, ()>(c.secret.expose().len()))
                .map_err(|_| ())
                .unwrap()
                .unwrap();
        }
    };
    sign_as("/usr/local/bin/goodbot", 2);
    sign_as("/tmp/evil", 5);
    sign_as("/usr/local/bin/goodbot", 1);
    let mut shown: Vec<(u32, String, u64)> = s
        .status(secs(1))
        .unwrap()
        .clients
        .into_iter()
        .map(|c| (c.pid, c.exe, c.signatures))
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            (5411, "/tmp/evil".to_owned(), 5),
            (5411, "/usr/local/bin/goodbot".to_owned(), 3)
        ]
    );
}
