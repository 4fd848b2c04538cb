use std::sync::atomic::Ordering;

use super::*;
use crate::credential::{Credential, Exchange};
use crate::secret::{SecretBytes, SecretString};
use crate::session::{Bounds, Session};

fn cred() -> Credential {
    Credential {
        name: "k".into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("ak".into()),
        secret: SecretBytes::from_slice(b"sk"),
        passphrase: None,
    }
}

/// A suspend: the boot clock jumps past the session's end while the monotonic clock that
/// drives tokio's timers stands still. After resume the reaper must wipe within MAX_NAP.
#[tokio::test(start_paused = true)]
async fn a_deadline_slept_through_is_wiped_soon_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, boot) = Agent::with_test_clock(dir.path());
    let bounds = Bounds {
        ttl: Duration::from_secs(1800),
        idle: Duration::from_secs(3600),
        max_signatures: 10,
        per_key: None,
    };
    *agent.session() = Session::unlock(vec![cred()], bounds, agent.now(), "test".into());
    let task = tokio::spawn(reaper(Arc::clone(&agent)));

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        agent.session().is_unlocked(),
        "a minute in, the session is open"
    );

    boot.fetch_add(3600, Ordering::SeqCst); // asleep for an hour
    tokio::time::sleep(MAX_NAP + Duration::from_millis(10)).await; // awake again
    assert!(
        !agent.session().is_unlocked(),
        "the reaper missed a deadline slept through"
    );
    assert_eq!(agent.session().lock_reason(), Some(&LockReason::Expired));
    task.abort();
}

/// A lock that came after a signature was checked, while its line was being written (here, in
/// `sync` mode, while its sync hangs), let the signature leave after `tapsign lock` had been
/// answered: the screen was locked and the bot still got one. It is withheld now, and the log
/// says so after its `sign` line, naming the request as that line does: the held request is a
/// websocket login, whose `sign` line names what the login signs, and whose refusal named the
/// path the bot sent (none) as if it were another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_while_a_signature_is_recorded_withholds_it() {
    use crate::audit::AuditSink;
    use crate::config::{AuditConfig, Config, Flush};
    use crate::paths::Paths;
    use std::sync::{Condvar, Mutex};
    use tapsign_proto::{ErrorCode, SignRequest};

    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
    // A disk whose syncs wait while `held`, counting those that started.
    let gate = Arc::new((Mutex::new((false, 0u32)), Condvar::new()));
    let sync_gate = Arc::clone(&gate);
    let sync: crate::audit::SyncFn = Arc::new(move |f: &std::fs::File| {
        let (m, cv) = &*sync_gate;
        let mut g = m.lock().unwrap();
        g.1 += 1;
        cv.notify_all();
        while g.0 {
            g = cv.wait(g).unwrap();
        }
        f.sync_data()
    });
    let audit_config = AuditConfig {
        flush: Flush::Sync,
        sync_interval: Duration::from_secs(1),
    };
    let audit = AuditSink::open_with(&paths.audit_log(), audit_config, sync);
    let config = Config {
        audit: audit_config,
        ..Config::parse("[keys.b]\nws_login = true\n").unwrap()
    };
    let agent = Agent::with_audit(paths.clone(), config, false, audit);
    let bounds = Bounds {
        ttl: Duration::from_secs(1800),
        idle: Duration::from_secs(1800),
        max_signatures: 10,
        per_key: None,
    };
    let bybit = Credential {
        name: "b".into(),
        exchange: Exchange::Bybit,
        ..cred()
    };
    *agent.session() = Session::unlock(vec![cred(), bybit], bounds, agent.now(), "test".into());
    let client = Client {
        pid: 7,
        exe: "bot".into(),
    };
    let req = || {
        Request::Sign(SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v3/openOrders".into(),
            query: "symbol=BTCUSDT".into(),
            body: String::new(),
            kind: Default::default(),
        })
    };
    let login = || {
        Request::Sign(SignRequest {
            key: "b".into(),
            method: "GET".into(),
            path: "/v5/private".into(),
            kind: tapsign_proto::SignKind::WsLogin,
            ..SignRequest::default()
        })
    };
    // Unhindered, it signs.
    let resp = agent.handle(req(), &client).await;
    assert!(matches!(resp, Response::Signed(_)), "{resp:?}");

    let syncs_before = gate.0.lock().unwrap().1;
    gate.0.lock().unwrap().0 = true;
    let signer = tokio::spawn({
        let (agent, client) = (Arc::clone(&agent), client.clone());
        async move { agent.handle(login(), &client).await }
    });
    // Its line is written and its sync hangs: the signature is checked, not yet answered.
    let started = std::time::Instant::now();
    while gate.0.lock().unwrap().1 == syncs_before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no sync started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(agent.lock(LockReason::request(&crate::session::Client {
        pid: 1,
        exe: "bot".into()
    })));
    {
        let (m, cv) = &*gate;
        m.lock().unwrap().0 = false;
        cv.notify_all();
    }
    match signer.await.unwrap() {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Locked, "{message}");
            assert!(message.contains("it was withheld"), "{message}");
        }
        other => panic!("signed after the lock: {other:?}"),
    }
    agent.audit.close().await;
    let log = std::fs::read_to_string(paths.audit_log()).unwrap();
    let kinds: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            ["\"sign\"", "\"refusal\""]
                .into_iter()
                .find(|k| l.contains(k))
        })
        .collect();
    assert_eq!(kinds, ["\"sign\"", "\"sign\"", "\"refusal\""], "{log}");
    assert!(log.contains("it was withheld"), "{log}");
    // The refusal names the login as its `sign` line does.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("\"ws_login\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].take())
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(lines[1]["type"], "refusal", "{log}");
    for field in ["key", "kind", "method", "path", "pid", "exe"] {
        assert_eq!(lines[0][field], lines[1][field], "{field}: {log}");
    }
    assert_eq!(lines[1]["path"], "/realtime", "{log}");
}

/// A lock was counted before it took the session: a signature that looked at the count in
/// between, and took the session before the lock did, was signed and recorded while the
/// session ended, and left after `tapsign lock` had been answered. The count changes only
/// once the lock holds the session.
#[test]
fn a_lock_is_counted_only_once_it_holds_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _boot) = Agent::with_test_clock(dir.path());
    let before = agent.locks.load(Ordering::SeqCst);
    let held = agent.session();
    let locker = std::thread::spawn({
        let agent = Arc::clone(&agent);
        move || {
            agent.lock(LockReason::request(&crate::session::Client {
                pid: 1,
                exe: "bot".into(),
            }))
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        agent.locks.load(Ordering::SeqCst),
        before,
        "counted while the session was held by another"
    );
    drop(held);
    locker.join().unwrap();
    assert_eq!(agent.locks.load(Ordering::SeqCst), before + 1);
}

/// A request that came a second before the session's lifetime ran out was signed after it, by
/// as long as its check took (seconds, for the requests whose check grew with the square of
/// their size): the session was used as the request found it. Here each reading of the clock
/// comes two seconds after the one before, as if the check took that long.
#[tokio::test]
async fn a_signature_whose_check_ends_past_the_lifetime_is_refused() {
    use crate::config::Config;
    use crate::paths::Paths;
    use tapsign_proto::{ErrorCode, Request, Response, SignRequest};

    let dir = tempfile::tempdir().unwrap();
    let readings = Arc::new(std::sync::atomic::AtomicU64::new(1_059));
    let clock = Arc::clone(&readings);
    let agent = Agent::new(
        Paths::under(dir.path(), dir.path().join("agent.sock")),
        Config::default(),
        false,
    )
    .with_clock(Arc::new(move || {
        Duration::from_secs(clock.fetch_add(2, Ordering::SeqCst))
    }));
    let bounds = Bounds {
        ttl: Duration::from_secs(60),
        idle: Duration::from_secs(3600),
        max_signatures: 10,
        per_key: None,
    };
    let opened = Duration::from_secs(1_000);
    *agent.session() = Session::unlock(vec![cred()], bounds, opened, "test".into());
    let account = Request::Sign(SignRequest {
        key: "k".into(),
        method: "GET".into(),
        path: "/api/v3/account".into(),
        query: String::new(),
        body: String::new(),
        kind: Default::default(),
    });
    let bot = Client {
        pid: 1,
        exe: "bot".into(),
    };
    match agent.handle(account, &bot).await {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::Expired),
        other => panic!("signed past the lifetime: {other:?}"),
    }
    assert_eq!(agent.session().lock_reason(), Some(&LockReason::Expired));
}

/// Red-team round 22: a `lock` from any program was recorded and shown as "locked by
/// `tapsign lock`", with no pid or program, where every other decision names its client. The
/// status, the `locked` event and the audit line name the program that asked now, and the
/// line carries its pid and program as fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_request_is_recorded_and_shown_with_the_program_that_sent_it() {
    use crate::config::Config;
    use crate::paths::Paths;
    use tapsign_proto::{Request, Response};

    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
    let agent = Agent::new(paths.clone(), Config::default(), false);
    let bounds = Bounds {
        ttl: Duration::from_secs(1800),
        idle: Duration::from_secs(1800),
        max_signatures: 10,
        per_key: None,
    };
    *agent.session() = Session::unlock(vec![cred()], bounds, agent.now(), "test".into());
    let mut events = agent.subscribe();
    let bot = Client {
        pid: 4242,
        exe: "/usr/bin/python3".into(),
    };
    assert!(matches!(
        agent.handle(Request::Lock {}, &bot).await,
        Response::Locked {}
    ));
    let said = "locked by a `lock` request from pid 4242 (/usr/bin/python3)";
    let shown = agent.session().lock_reason().map(|r| r.to_string());
    assert_eq!(shown.as_deref(), Some(said));
    assert_eq!(events.try_recv().unwrap().reason.as_deref(), Some(said));
    agent.audit.close().await;
    let lock = crate::audit::read(&paths.audit_log())
        .unwrap()
        .into_iter()
        .find_map(|e| match e {
            crate::audit::Entry::Line(l) => match l.event {
                crate::audit::AuditEvent::Lock { .. } => Some(l.event),
                _ => None,
            },
            _ => panic!("a damaged line"),
        })
        .expect("a lock line");
    assert_eq!(
        lock,
        crate::audit::AuditEvent::Lock {
            reason: said.into(),
            pid: Some(4242),
            exe: Some("/usr/bin/python3".into()),
        }
    );
    assert_eq!(lock.to_string(), format!("lock ({said})"));
}

/// A bot retrying in a loop against a locked agent, or one the wall refuses, wrote a line per
/// attempt (about a megabyte a second, until the disk was full). Each attempt is refused as
/// before; the log has the first of each at once and a count after, every refusal accounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_retrying_a_refused_request_in_a_loop_does_not_write_a_line_each_time() {
    use crate::config::Config;
    use crate::paths::Paths;
    use tapsign_proto::{ErrorCode, Request, Response, SignRequest};

    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
    let agent = Agent::new(paths.clone(), Config::default(), false);
    let bot = Client {
        pid: 7,
        exe: "bot".into(),
    };
    let order = || {
        Request::Sign(SignRequest {
            key: "k".into(),
            method: "POST".into(),
            path: "/api/v3/order".into(),
            query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001".into(),
            ..SignRequest::default()
        })
    };
    let withdraw = || {
        Request::Sign(SignRequest {
            key: "k".into(),
            method: "POST".into(),
            path: "/sapi/v1/capital/withdraw/apply".into(),
            query: "coin=BTC&address=x&amount=1".into(),
            ..SignRequest::default()
        })
    };
    let refused = |resp: Response, want: ErrorCode| match resp {
        Response::Error { code, .. } => assert_eq!(code, want),
        other => panic!("not refused: {other:?}"),
    };
    for _ in 0..300 {
        refused(agent.handle(order(), &bot).await, ErrorCode::Locked);
    }
    let bounds = Bounds {
        ttl: Duration::from_secs(1800),
        idle: Duration::from_secs(1800),
        max_signatures: 10,
        per_key: None,
    };
    *agent.session() = Session::unlock(vec![cred()], bounds, agent.now(), "test".into());
    for _ in 0..300 {
        refused(
            agent.handle(withdraw(), &bot).await,
            ErrorCode::PolicyDenied,
        );
    }
    agent.audit.close().await;
    let (mut lines, mut refusals) = (0, 0);
    for entry in crate::audit::read(&paths.audit_log()).unwrap() {
        let crate::audit::Entry::Line(l) = entry else {
            panic!("a damaged line")
        };
        if l.event.is_refusal() {
            lines += 1;
            refusals += 1 + l.event.repeated();
        }
    }
    assert_eq!(refusals, 600, "every refusal is on record, counted");
    // Two refusals, each written at once and its count at the end (more if the machine was
    // so slow that a second went by during a loop).
    assert!((4..=12).contains(&lines), "{lines} lines for 600 refusals");
}

/// Red-team round 21: a client that made itself not dumpable (every `tapsign unlock`, or a
/// bot with one `prctl`) was named "?" to any agent not run as root. It is named by what it
/// calls itself now, marked as its own choice, cut and quoted.
#[test]
fn a_client_whose_program_is_hidden_is_named_by_what_it_calls_itself() {
    let denied = || Err(std::io::Error::from(rustix::io::Errno::ACCESS));
    let named = |raw: &[u8]| {
        let raw = raw.to_vec();
        move || Some(raw)
    };
    assert_eq!(
        program(Ok("/usr/bin/tapsign".into()), || None),
        "/usr/bin/tapsign"
    );
    assert_eq!(
        program(
            denied(),
            named(b"/usr/bin/tapsign\0unlock\0--ttl\0secret-ish\0")
        ),
        "not dumpable, calls itself \"tapsign unlock\""
    );
    // comm, when the command line is empty.
    assert_eq!(
        program(denied(), named(b"python3\n")),
        "not dumpable, calls itself \"python3\""
    );
    // A title set over the command line is kept whole, not cut at its last `/` (it read
    // "0"), and never starts with `/`.
    assert_eq!(
        program(denied(), named(b"sshd: trader@pts/0\0\0\0")),
        "not dumpable, calls itself \"sshd: trader@pts/0\""
    );
    assert_eq!(
        program(denied(), named(b"/opt/bot/run main loop\0")),
        "not dumpable, calls itself \"opt/bot/run main loop\""
    );
    // A name chosen to look like something else stays inside its quotes.
    let forged = program(denied(), named(b"x\")\n/usr/bin/tapsign (\x1b[2J\0arg"));
    assert!(
        forged.starts_with("not dumpable, calls itself \""),
        "{forged}"
    );
    assert!(!forged.contains('\u{1b}'), "{forged}");
    assert!(forged.contains("\\\""), "{forged}");
    let long = program(denied(), named("é".repeat(500).as_bytes()));
    assert!(long.ends_with("…\""), "{long}");
    assert!(long.chars().count() < 100, "{long}");
    assert_eq!(program(denied(), || None), "not dumpable, nameless");
    // Gone before it could be read: nothing to say.
    let gone = Err(std::io::Error::from(rustix::io::Errno::NOENT));
    assert_eq!(program(gone, named(b"bot")), "?");
}

/// The folder above the socket's may be a sticky one others write (`/tmp`: they cannot move
/// our folder there); a runtime folder holding the session bus's name may not (anyone can
/// make that name there first). Both go through the one check of `disk`.
#[test]
fn a_sticky_shared_folder_is_ours_enough_only_where_asked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let set =
        |mode| std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    set(0o1777);
    assert_eq!(not_ours(dir.path(), true), None);
    let said = not_ours(dir.path(), false).unwrap();
    assert!(said.contains("mode 1777"), "{said}");
    set(0o777);
    assert!(not_ours(dir.path(), true).is_some());
    set(0o755);
    assert_eq!(not_ours(dir.path(), false), None);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let said = not_ours(&link, true).unwrap();
    assert!(said.contains("symbolic link"), "{said}");
}
