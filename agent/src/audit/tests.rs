use super::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};
use tapsign_proto::{ErrorCode, SignRequest};

const PID: u32 = 123;
const EXE: &str = "/usr/bin/python3";
const UPBIT: crate::credential::Exchange = crate::credential::Exchange::Upbit;

fn sign_req(path: &str) -> SignRequest {
    SignRequest {
        key: "upbit-main".into(),
        method: "GET".into(),
        path: path.into(),
        query: "market=KRW-BTC".into(),
        body: String::new(),
        kind: Default::default(),
    }
}

/// One event of every kind, in a plausible order.
fn every_event() -> Vec<AuditEvent> {
    vec![
        AuditEvent::AgentStart {
            version: "0.1.0".into(),
            pid: 77,
        },
        AuditEvent::PeerRefused {
            uid: 1001,
            pid: 555,
            exe: "/usr/bin/nc".into(),
            repeated: 0,
        },
        AuditEvent::UnlockRefused {
            code: ErrorCode::TouchTimeout,
            reason: "no touch".into(),
            pid: PID,
            exe: EXE.into(),
            repeated: 3,
        },
        AuditEvent::Unlock {
            token: "YubiKey 12345678 slot 82".into(),
            keys: vec!["upbit-main".into(), "binance-spot".into()],
            ttl_secs: 3600,
            idle_secs: 600,
            max_signatures: 500,
            pid: PID,
            exe: EXE.into(),
        },
        AuditEvent::sign(&sign_req("/v1/orders"), UPBIT, PID, EXE),
        AuditEvent::refusal(
            &sign_req("/v1/withdraws/coin"),
            ErrorCode::PolicyDenied,
            "withdrawals are never signed",
            PID,
            EXE,
        ),
        AuditEvent::Lock {
            reason: "idle".into(),
            pid: None,
            exe: None,
        },
        AuditEvent::AgentStop {
            reason: "signal SIGTERM".into(),
        },
    ]
}

/// A log in a fresh private folder with `n` events appended.
fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit").join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    for e in every_event().iter().cycle().take(n) {
        log.append(e).unwrap();
    }
    (dir, path)
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn broken_at(path: &Path) -> (u64, Problem) {
    match verify(path).unwrap() {
        VerifyReport::Broken { line, problem } => (line, problem),
        ok => panic!("expected a broken chain, got {ok:?}"),
    }
}

#[test]
fn chain_verifies_after_appends_and_across_reopen() {
    let (_dir, path) = log_with(5);
    let mut log = AuditLog::open(&path).unwrap();
    assert!(!log.damaged_tail());
    log.append(&AuditEvent::Lock {
        reason: "lock command".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    let head = log.checkpoint();
    assert_eq!(head.seq, 6);
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport::Intact {
            lines: 6,
            head: head.clone()
        }
    );
    assert!(matches!(
        verify_against(&path, &head).unwrap(),
        VerifyReport::Intact { .. }
    ));
    let first = lines_of(&path).remove(0);
    assert!(first.starts_with(r#"{"seq":1,"time":"#), "{first}");
    assert!(first.contains(&format!(
        r#""prev":"{GENESIS}","event":{{"type":"agent_start""#
    )));
}

#[test]
fn line_format_is_exactly_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    let t = UNIX_EPOCH + Duration::from_millis(1_795_428_000_007);
    log.append_at(
        &AuditEvent::sign(&sign_req("/v1/orders"), UPBIT, PID, EXE),
        t,
    )
    .unwrap();
    log.append_at(
        &AuditEvent::Lock {
            reason: "idle".into(),
            pid: None,
            exe: None,
        },
        t,
    )
    .unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let first = r#"{"seq":1,"time":"2026-11-23T10:00:00.007Z","prev":"0000000000000000000000000000000000000000000000000000000000000000","event":{"type":"sign","key":"upbit-main","method":"GET","path":"/v1/orders","pid":123,"exe":"/usr/bin/python3"}}"#;
    let second = format!(
        r#"{{"seq":2,"time":"2026-11-23T10:00:00.007Z","prev":"{}","event":{{"type":"lock","reason":"idle"}}}}"#,
        hex::encode(Sha256::digest(first.as_bytes()))
    );
    assert_eq!(text, format!("{first}\n{second}\n"));
}

#[test]
fn new_log_is_private() {
    let (_dir, path) = log_with(1);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn open_refuses_a_folder_others_can_write() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = AuditLog::open(&dir.path().join("audit.log")).unwrap_err();
    assert!(matches!(err, AuditError::InsecureFolder { .. }), "{err}");
}

#[test]
fn open_refuses_a_symlinked_log() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    fs::write(&elsewhere, "").unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("audit.log")).unwrap();
    assert!(AuditLog::open(&dir.path().join("audit.log")).is_err());
}

/// Rewrite one top-level field (or one event field) of line `k` (0-based) as JSON.
fn edit(path: &Path, k: usize, f: impl FnOnce(&mut serde_json::Value)) {
    let mut lines = lines_of(path);
    let mut v: serde_json::Value = serde_json::from_str(&lines[k]).unwrap();
    f(&mut v);
    lines[k] = serde_json::to_string(&v).unwrap();
    write_lines(path, &lines);
}

#[test]
fn editing_any_field_of_a_line_is_caught() {
    // Line 5 (1-based) is the sign event. seq and prev are checked on the line itself; any
    // other change shows as the next line's prev no longer matching.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, u64); 8] = [
        ("seq", |v| v["seq"] = 40.into(), 5),
        ("prev", |v| v["prev"] = "ab".repeat(32).into(), 5),
        ("time", |v| v["time"] = "2026-11-23T09:00:00.000Z".into(), 6),
        ("key", |v| v["event"]["key"] = "binance-spot".into(), 6),
        ("method", |v| v["event"]["method"] = "POST".into(), 6),
        ("path", |v| v["event"]["path"] = "/v1/order".into(), 6),
        ("pid", |v| v["event"]["pid"] = 124.into(), 6),
        ("type", |v| v["event"]["type"] = "refusal".into(), 5),
    ];
    for (field, f, want_line) in edits {
        let (_dir, path) = log_with(8);
        assert!(lines_of(&path)[4].contains(r#""type":"sign""#));
        edit(&path, 4, f);
        let (line, problem) = broken_at(&path);
        assert_eq!(line, want_line, "editing {field}: {problem}");
    }
}

#[test]
fn editing_the_last_line_needs_a_checkpoint() {
    let (_dir, path) = log_with(5);
    let head = AuditLog::open(&path).unwrap().checkpoint();
    edit(&path, 4, |v| v["event"]["path"] = "/v1/order".into());
    assert!(matches!(
        verify(&path).unwrap(),
        VerifyReport::Intact { lines: 5, .. }
    ));
    assert_eq!(
        verify_against(&path, &head).unwrap(),
        VerifyReport::Broken {
            line: 5,
            problem: Problem::Checkpoint
        }
    );
}

#[test]
fn deleting_a_middle_line_is_caught() {
    let (_dir, path) = log_with(6);
    let mut lines = lines_of(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    assert_eq!(
        broken_at(&path),
        (
            3,
            Problem::Seq {
                expected: 3,
                found: 4
            }
        )
    );
}

#[test]
fn deleting_the_last_line_needs_a_checkpoint() {
    let (_dir, path) = log_with(6);
    let head = AuditLog::open(&path).unwrap().checkpoint();
    let mut lines = lines_of(&path);
    lines.pop();
    write_lines(&path, &lines);
    // The chain alone cannot tell: a shorter chain is still a chain.
    assert!(matches!(
        verify(&path).unwrap(),
        VerifyReport::Intact { lines: 5, .. }
    ));
    assert_eq!(
        verify_against(&path, &head).unwrap(),
        VerifyReport::Broken {
            line: 6,
            problem: Problem::Missing {
                expected: 6,
                found: 5
            }
        }
    );
}

#[test]
fn inserting_a_line_is_caught() {
    // A forger who copies a line's shape, fixes seq and prev, and renumbers nothing after it.
    let (_dir, path) = log_with(5);
    let mut lines = lines_of(&path);
    let mut forged: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    forged["seq"] = 4.into();
    forged["prev"] = hex::encode(Sha256::digest(lines[2].as_bytes())).into();
    lines.insert(3, serde_json::to_string(&forged).unwrap());
    write_lines(&path, &lines);
    assert_eq!(
        broken_at(&path),
        (
            5,
            Problem::Seq {
                expected: 5,
                found: 4
            }
        )
    );

    // A plain duplicate of a line.
    let (_dir, path) = log_with(5);
    let mut lines = lines_of(&path);
    lines.insert(2, lines[1].clone());
    write_lines(&path, &lines);
    assert_eq!(
        broken_at(&path),
        (
            3,
            Problem::Seq {
                expected: 3,
                found: 2
            }
        )
    );
}

#[test]
fn truncated_final_line_is_reported_and_logging_goes_on() {
    let (_dir, path) = log_with(3);
    let len = fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    assert_eq!(broken_at(&path), (3, Problem::Truncated));

    let mut log = AuditLog::open(&path).unwrap();
    assert!(log.damaged_tail());
    log.append(&AuditEvent::Lock {
        reason: "expired".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    assert!(!log.damaged_tail());
    // The torn line is now a whole (bad) line of its own, and the new line chains from it.
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 4);
    let last: AuditLine = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(last.seq, 4);
    assert_eq!(last.prev, hex::encode(Sha256::digest(lines[2].as_bytes())));
    assert!(matches!(broken_at(&path), (3, Problem::NotALine(_))));
}

#[test]
fn garbage_tail_is_counted_so_seq_stays_the_line_number() {
    let (_dir, path) = log_with(2);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"not json\n").unwrap();
    drop(f);
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&AuditEvent::Lock {
        reason: "idle".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    let last: AuditLine = serde_json::from_str(&lines_of(&path)[3]).unwrap();
    assert_eq!(last.seq, 4);
    assert!(matches!(broken_at(&path), (3, Problem::NotALine(_))));
}

#[test]
fn no_secret_material_reaches_the_file() {
    const MARKER: &str = "SECRET-MARKER-7f3a";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    // The bot put the marker in the query, the body, and glued onto the path.
    let req = SignRequest {
        key: "upbit-main".into(),
        method: "POST".into(),
        path: format!("/v1/orders?access_key={MARKER}#{MARKER}"),
        query: format!("secret={MARKER}"),
        body: format!(r#"{{"api_secret":"{MARKER}"}}"#),
        kind: Default::default(),
    };
    let exe = "/home/trader/bot/run.py";
    // Built with the constructors, and by hand the way a caller might (the append cuts it).
    let events = [
        AuditEvent::sign(&req, UPBIT, 9, exe),
        AuditEvent::refusal(&req, ErrorCode::BudgetExhausted, "budget spent", 9, exe),
        AuditEvent::Sign {
            key: req.key.clone(),
            kind: Default::default(),
            method: req.method.clone(),
            path: req.path.clone(),
            pid: 9,
            exe: exe.into(),
        },
    ];
    for e in &events {
        log.append(e).unwrap();
        assert!(!e.loggable().to_string().contains(MARKER), "{e}");
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains(MARKER), "{text}");
    assert!(text.contains(r#""path":"/v1/orders""#), "{text}");
}

#[test]
fn events_read_like_sentences() {
    let (_dir, path) = log_with(8);
    let shown: Vec<String> = read(&path)
        .unwrap()
        .map(|l| match l {
            Entry::Line(l) => l.event.to_string(),
            damaged => panic!("{damaged}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "agent start 0.1.0 pid 77",
            "refused a connection from uid 1001, pid 555 (/usr/bin/nc)",
            "unlock refused touch_timeout: no touch; asked by pid 123 (/usr/bin/python3) (and 3 more like it since its last line, not written one by one)",
            "unlock by YubiKey 12345678 slot 82: keys upbit-main, binance-spot; ttl 3600s idle 600s budget 500; asked by pid 123 (/usr/bin/python3)",
            "sign upbit-main GET /v1/orders by pid 123 (/usr/bin/python3)",
            "refuse upbit-main GET /v1/withdraws/coin policy_denied: withdrawals are never signed; by pid 123 (/usr/bin/python3)",
            "lock (idle)",
            "agent stop (signal SIGTERM)",
        ]
    );
    let line = AuditLine {
        seq: 1,
        time: "2026-11-23T10:00:00.000Z".into(),
        prev: GENESIS.into(),
        event: AuditEvent::sign(&sign_req("/v1/orders"), UPBIT, PID, EXE),
    };
    assert_eq!(
        line.to_string(),
        "2026-11-23T10:00:00.000Z sign upbit-main GET /v1/orders by pid 123 (/usr/bin/python3)"
    );
}

#[test]
fn display_escapes_control_characters_from_bots() {
    let e = AuditEvent::sign(
        &sign_req("/v1/orders\n2026-11-23T10:00:00.000Z lock (idle)"),
        UPBIT,
        PID,
        EXE,
    );
    assert!(!e.to_string().contains('\n'), "{e}");
    let e = AuditEvent::sign(&sign_req("/v1/\u{1b}[2J\u{202e}sredro"), UPBIT, PID, EXE);
    let shown = e.to_string();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
        "{shown}"
    );
    assert!(shown.contains(r"\u{1b}[2J\u{202e}sredro"), "{shown}");
}

/// Red-team round 11: serde_json escapes only C0 controls, UPBIT, so C1 controls (which some
/// terminals act on), DEL and bidi overrides from a bot's path or program name reached the
/// raw file, and any terminal a `tail -f` of it (or its syslog copy) shows.
#[test]
fn the_raw_file_holds_no_character_a_terminal_would_act_on() {
    let (_dir, path) = log_with(0);
    let mut log = AuditLog::open(&path).unwrap();
    let forged =
        "/api/v3/order\u{9b}3A\u{9b}J\u{85}\u{7f}\u{202e}\u{200b}\u{2028}\u{feff}\u{ad}\u{e0041}é";
    log.append(&AuditEvent::sign(
        &sign_req(forged),
        UPBIT,
        PID,
        "/tmp/\u{9b}2J",
    ))
    .unwrap();
    let raw = std::fs::read(&path).unwrap();
    let text = String::from_utf8(raw).unwrap();
    for c in text.trim_end_matches('\n').chars() {
        assert!(!event::hidden(c), "{:?} in {text:?}", c);
    }
    assert!(
        text.contains(r"\u009b3A\u009bJ\u0085\u007f\u202e\u200b\u2028\ufeff\u00ad\udb40\udc41"),
        "{text}"
    );
    // The same JSON, and the chain holds.
    assert!(matches!(
        verify(&path).unwrap(),
        VerifyReport::Intact { .. }
    ));
    let got: Vec<_> = read(&path).unwrap().collect();
    let Entry::Line(line) = &got[got.len() - 1] else {
        panic!("{got:?}")
    };
    let json = serde_json::to_value(&line.event).unwrap();
    assert_eq!(json["path"], forged, "{json}");
}

#[test]
fn read_goes_on_past_a_damaged_line() {
    let (_dir, path) = log_with(3);
    let mut lines = lines_of(&path);
    lines[1] = "{half a line".into();
    write_lines(&path, &lines);
    let got: Vec<_> = read(&path).unwrap().collect();
    assert_eq!(got.len(), 3);
    assert!(matches!(got[0], Entry::Line(_)) && matches!(got[2], Entry::Line(_)));
    assert!(matches!(got[1], Entry::Damaged { line: 2, .. }));
    assert!(
        got[1].to_string().starts_with("(line 2 damaged: "),
        "{}",
        got[1]
    );
}

#[test]
fn reopen_finds_a_last_line_longer_than_one_read_chunk() {
    let (_dir, path) = log_with(2);
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&AuditEvent::sign(
        &sign_req(&format!("/{}", "p".repeat(20_000))),
        UPBIT,
        PID,
        EXE,
    ))
    .unwrap();
    let head = log.checkpoint();
    drop(log);
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.checkpoint(), head);
    log.append(&AuditEvent::Lock {
        reason: "idle".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    assert!(matches!(
        verify(&path).unwrap(),
        VerifyReport::Intact { lines: 4, .. }
    ));
}

#[test]
fn a_forged_huge_seq_on_the_last_line_does_not_panic_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let forged = format!(
        r#"{{"seq":{},"time":"x","prev":"{GENESIS}","event":{{"type":"lock","reason":"x"}}}}"#,
        u64::MAX
    );
    fs::write(&path, format!("{forged}\n")).unwrap();
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&AuditEvent::Lock {
        reason: "idle".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    assert_eq!(broken_at(&path).0, 1);
}

#[test]
fn checkpoints_print_and_parse_as_seq_colon_hash() {
    let (_dir, path) = log_with(3);
    let head = AuditLog::open(&path).unwrap().checkpoint();
    let shown = head.to_string();
    assert!(shown.starts_with("3:") && shown.len() == 2 + 64, "{shown}");
    assert_eq!(shown.parse::<Checkpoint>().unwrap(), head);
    assert!(verify(&path).unwrap().to_string().contains(&shown));
    for bad in ["", "3", "x:ab", "3:abc", &format!("3:{}", "g".repeat(64))] {
        assert!(bad.parse::<Checkpoint>().is_err(), "{bad:?}");
    }
}

#[test]
fn open_refuses_a_folder_of_another_user() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&theirs, Some(4242), None).is_err() {
        say!("not root: cannot give a folder away, so this case is not checked");
        return;
    }
    let err = AuditLog::open(&theirs.join("audit.log")).unwrap_err();
    assert!(err.to_string().contains("belongs to uid 4242"), "{err}");
}

#[test]
fn the_last_line_is_read_whole_wherever_it_starts() {
    // Read back once its start is found (a torn tail of megabytes used to be copied again at
    // every 8 KiB step); the bytes must be the same at and around chunk boundaries.
    for len in [0usize, 1, 8191, 8192, 8193, 3 * 8192 + 17] {
        for first in [&b""[..], b"first line\n", b"\n"] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f");
            let line: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let bytes = [first, &line].concat();
            std::fs::write(&p, &bytes).unwrap();
            let mut f = std::fs::File::open(&p).unwrap();
            let got = super::last_line(&mut f, bytes.len() as u64).unwrap();
            assert_eq!(got, line, "{len} bytes after {first:?}");
        }
    }
}

#[test]
fn the_scan_counts_every_keystore_record_and_names_a_damaged_one_but_not_a_torn_last_line() {
    // The rollback check's fallback when the chain cannot be followed (ledger::scan).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    for generation in [3, 7, 5, 3] {
        log.append(&AuditEvent::Keystore {
            generation,
            vault: "00".into(),
            // Lines from before vault keys were recorded name none.
            vault_key: (generation != 5).then(|| format!("02{generation:064x}")),
            lineage: vec![],
            reason: "test".into(),
            credentials: None,
            signature: None,
        })
        .unwrap();
        log.append(&AuditEvent::sign(
            &sign_req("/api/v3/order"),
            UPBIT,
            1,
            "bot",
        ))
        .unwrap();
    }
    drop(log);
    let scan = ledger::scan(&path);
    assert_eq!(scan.highest, Some(7));
    assert!(scan.unreadable.is_none(), "{:?}", scan.unreadable);
    // A torn record at the end (a crash mid-write) is not a damaged one.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"seq":7,"type":"keystore","generation":9"#)
        .unwrap();
    drop(f);
    let scan = ledger::scan(&path);
    assert_eq!(scan.highest, Some(7));
    assert!(scan.unreadable.is_none(), "{:?}", scan.unreadable);
    // Ended by a newline, it is a record that cannot be read: it may name a newer generation.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    let scan = ledger::scan(&path);
    assert!(
        scan.unreadable
            .as_deref()
            .is_some_and(|u| u.contains("line 9")),
        "{:?}",
        scan.unreadable
    );
}

/// A `key_change` line with `created` past what `SystemTime` holds (anyone who can write the
/// log can append one, chained) made `tapsign audit` panic at it, so no line after it was
/// shown. It is printed, as a date far ahead.
#[test]
fn a_key_change_created_past_the_end_of_time_is_printed() {
    let event = AuditEvent::KeyChange {
        action: crate::keystore::KeyAction::Add,
        name: "k1".into(),
        created: u64::MAX,
        file: "ab".repeat(32),
        pid: 1,
        exe: "/usr/bin/tapsign".into(),
    };
    let text = event.to_string();
    assert!(text.starts_with("key add k1 (added "), "{text}");
    assert!(text.contains("Z, file sha256 abababababababab)"), "{text}");
}

/// Red-team round 17, recheck: a process holding the log's lock held an append (a rotation's
/// record after its commit) forever. The append waits a bounded time, then fails, saying why;
/// once the lock is free it goes through.
#[test]
fn an_append_waits_a_bounded_time_for_a_lock_held_elsewhere() {
    use rustix::fs::{FlockOperation, flock};
    let (_dir, path) = log_with(2);
    let mut log = AuditLog::open(&path).unwrap();
    let holder = std::fs::File::open(&path).unwrap();
    flock(&holder, FlockOperation::LockExclusive).unwrap();
    let started = std::time::Instant::now();
    let e = log.append(&AuditEvent::Lock {
        reason: "test".into(),
        pid: None,
        exe: None,
    });
    let e = e.unwrap_err().to_string();
    assert!(e.contains("held it locked"), "{e}");
    assert!(started.elapsed() >= super::tail::LOCK_WAIT, "it waited");
    assert_eq!(lines_of(&path).len(), 2, "nothing written");
    flock(&holder, FlockOperation::Unlock).unwrap();
    log.append(&AuditEvent::Lock {
        reason: "test".into(),
        pid: None,
        exe: None,
    })
    .unwrap();
    assert_eq!(lines_of(&path).len(), 3);
}

/// Red-team round 26, part 2 (F2): a command asked by a running agent for its head holds the
/// keystore only to a log at the path whose chain passes through that head. The log the agent
/// wrote does, with lines appended after it and a torn write at the end; a copy taken before
/// the head, another log, and the log with a line after the head changed do not.
#[test]
fn only_the_log_the_agent_wrote_holds_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    let events = every_event();
    let ev = |i: usize| &events[i % events.len()];
    for i in 0..4 {
        log.append(ev(i)).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    log.append(ev(4)).unwrap();
    let a = log.anchor();
    let head = Checkpoint {
        seq: a.seq,
        hash: a.hash.clone(),
    };
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).unwrap();
    let held = holds(&path, &head).unwrap();
    assert_eq!(held.file, (meta.dev(), meta.ino()));
    // Where the head line ends: a command's reads must get there.
    assert_eq!(held.head, a);
    // Lines appended by others, and a torn last write: still the agent's log.
    for i in 5..8 {
        log.append(ev(i)).unwrap();
    }
    drop(log);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"seq\":9,\"ti")
        .unwrap();
    assert!(holds(&path, &head).is_ok(), "{:?}", holds(&path, &head));
    let genesis = Checkpoint {
        seq: 0,
        hash: GENESIS.into(),
    };
    assert!(holds(&path, &genesis).is_ok());
    let whole = std::fs::read(&path).unwrap();

    // The copy from before the head was written.
    let copy = dir.path().join("copy.log");
    std::fs::write(&copy, &before).unwrap();
    let why = holds(&copy, &head).unwrap_err();
    assert!(why.contains("ends at line 4, before line 5"), "{why}");

    // Another log, as long: its line 5 is not the agent's.
    let other = dir.path().join("other.log");
    let mut o = AuditLog::open(&other).unwrap();
    for i in 1..9 {
        o.append(ev(i)).unwrap();
    }
    drop(o);
    let why = holds(&other, &head).unwrap_err();
    assert!(why.contains("its line 5 is not the one"), "{why}");

    // A line after the head edited: the chain does not go on from it.
    let text = String::from_utf8(whole).unwrap();
    let edited = text.replacen("\"seq\":7,", "\"seq\":7 ,", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let why = holds(&path, &head).unwrap_err();
    assert!(why.contains("do not continue the chain"), "{why}");

    // No file there.
    std::fs::remove_file(&path).unwrap();
    assert!(holds(&path, &head).unwrap_err().contains("cannot be read"));
}
