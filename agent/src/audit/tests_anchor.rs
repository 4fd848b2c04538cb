//! The open log stays anchored to its file, other tapsign processes can append to it, and
//! the keystore reads back what came after an anchor.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ledger::{self, AuditLedger, evidence};
use super::*;
use crate::keystore::{KeyAction, KeyChange, Ledger, LedgerEntry};

fn lock(reason: &str) -> AuditEvent {
    AuditEvent::Lock {
        reason: reason.into(),
        pid: None,
        exe: None,
    }
}

fn fresh() -> (tempfile::TempDir, PathBuf, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    for i in 0..3 {
        log.append(&lock(&format!("line {i}"))).unwrap();
    }
    (dir, path, log)
}

fn tampered(r: Result<(), AuditError>) -> String {
    match r {
        Err(e) if e.is_tampering() => e.to_string(),
        other => panic!("expected tampering, got {other:?}"),
    }
}

#[test]
fn a_log_replaced_under_the_writer_is_refused_and_left_alone() {
    let (dir, path, mut log) = fresh();
    let truncated: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    // The attack from the review: a copy missing its last line, renamed over the log.
    let copy = dir.path().join("copy");
    fs::write(&copy, &truncated).unwrap();
    fs::rename(&copy, &path).unwrap();
    let e = tampered(log.append(&lock("after")));
    assert!(e.contains("replaced"), "{e}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        truncated,
        "not written to"
    );
    // Deleted outright: also refused.
    fs::remove_file(&path).unwrap();
    assert!(tampered(log.append(&lock("x"))).contains("deleted"));
}

#[test]
fn a_log_cut_or_edited_in_place_is_refused() {
    let (_dir, path, mut log) = fresh();
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    assert!(tampered(log.append(&lock("x"))).contains("cut off"));

    let (_dir, path, mut log) = fresh();
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("line 2", "line 9")).unwrap();
    assert!(tampered(log.refresh()).contains("last line changed"));
}

#[test]
fn lines_another_tapsign_process_appends_join_the_chain() {
    let (_dir, path, mut agent) = fresh();
    // `tapsign key add` opens the same log, appends under the same lock, and goes.
    let mut cli = AuditLog::open(&path).unwrap();
    cli.append(&AuditEvent::KeyRefused {
        name: "k".into(),
        reason: "from the cli".into(),
    })
    .unwrap();
    drop(cli);
    agent.append(&lock("from the agent")).unwrap();
    assert_eq!(agent.checkpoint().seq, 5);
    match verify(&path).unwrap() {
        VerifyReport::Intact { lines, head } => {
            assert_eq!(lines, 5);
            assert_eq!(head, agent.checkpoint());
        }
        broken => panic!("{broken}"),
    }
}

/// Red-team round 23: a rotation's line records every credential, and one of 6,000 passed
/// the bound on what a running agent takes in from other processes, which then withheld every
/// signature. A keystore holds at most `MAX_CREDENTIALS`: the line of that many, each with the
/// longest name a credential takes, is taken in with room to spare.
#[test]
fn the_line_of_the_most_credentials_a_keystore_holds_is_taken_in() {
    use crate::keystore::{CredRecord, MAX_CREDENTIALS, Succession};
    let (_dir, path, mut agent) = fresh();
    let credentials = (0..MAX_CREDENTIALS)
        .map(|i| CredRecord {
            name: format!("{i:x>64}"),
            created: 4_000_000_000,
            sha256: "ab".repeat(32),
        })
        .collect();
    let line = AuditEvent::Keystore {
        generation: u64::MAX,
        vault: "ab".repeat(8),
        vault_key: Some("02".repeat(33)),
        lineage: vec![Succession {
            from: "02".repeat(33),
            to: "03".repeat(33),
            signature: "ab".repeat(64),
        }],
        reason: "rotated: token fido2-0123456789abcdef0123456789abcdef removed".into(),
        credentials: Some(credentials),
        signature: Some("ab".repeat(64)),
    };
    let mut cli = AuditLog::open(&path).unwrap();
    let before = fs::metadata(&path).unwrap().len();
    cli.append(&line).unwrap();
    let written = fs::metadata(&path).unwrap().len() - before;
    assert!(written * 2 < MAX_FOREIGN_BYTES, "{written} bytes");
    agent.refresh().unwrap();
    assert_eq!(agent.checkpoint().seq, 4);
}

/// Red-team round 19: a line of a kind only the agent writes (a `lock`, a `sign`), appended
/// by another process and chained, was taken in, and the record held a lock or a signature
/// that never happened with `audit verify` intact. Only the kinds tapsign's commands write
/// are taken in.
#[test]
fn a_chained_line_of_a_kind_only_the_agent_writes_is_refused() {
    let (_dir, path, mut agent) = fresh();
    let mut other = AuditLog::open(&path).unwrap();
    other.append(&lock("locked by `tapsign lock`")).unwrap();
    drop(other);
    let why = tampered(agent.append(&lock("from the agent")));
    assert!(why.contains("of a kind only an agent writes"), "{why}");
}

#[test]
fn a_line_appended_by_something_else_is_refused() {
    let (_dir, path, mut log) = fresh();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    let forged = format!(
        r#"{{"seq":4,"time":"2026-11-23T10:00:00.000Z","prev":"{GENESIS}","event":{{"type":"lock","reason":"x"}}}}"#
    );
    writeln!(f, "{forged}").unwrap();
    assert!(tampered(log.append(&lock("x"))).contains("does not continue the chain"));
}

/// The next line of the chain, as another process would append it: `event` (JSON) with the
/// right `seq` and `prev`, and `time` as given.
fn chained(path: &Path, time: &str, event: &str) -> String {
    let text = fs::read_to_string(path).unwrap();
    let last = text.lines().last().unwrap();
    let seq = text.lines().count() + 1;
    let prev = hash_hex(last.as_bytes());
    format!(r#"{{"seq":{seq},"time":{time:?},"prev":"{prev}","event":{event}}}"#)
}

/// Red-team round 20: a chained `sign` line appended without its newline was taken as a torn
/// write (no chain or kind check), ended by the agent's next line, and so put into the
/// chain with `audit verify` intact. Bytes another process leaves without a newline are
/// tampering, whatever they hold.
#[test]
fn a_line_appended_without_its_newline_is_refused() {
    let sign = r#"{"type":"sign","key":"k1","method":"POST","path":"/sapi/v1/capital/withdraw/apply","pid":4242,"exe":"/usr/bin/tapsign"}"#;
    let key_change = r#"{"type":"key_change","action":"add","name":"zz","created":1,"file":"00","pid":1,"exe":"/usr/bin/tapsign"}"#;
    for i in 0..3 {
        let (_dir, path, mut log) = fresh();
        let forged = match i {
            0 => chained(&path, "2026-11-23T10:00:00.000Z", sign),
            // Even one of a kind commands write, and a part of a line.
            1 => chained(&path, "2026-11-23T10:00:00.000Z", key_change),
            _ => chained(&path, "2026-11-23T10:00:00.000Z", key_change)[..20].to_owned(),
        };
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(forged.as_bytes()).unwrap();
        let why = tampered(log.append(&lock("x")));
        assert!(why.contains("that are not a whole line"), "{i}: {why}");
    }
}

/// Red-team round 20: a chained line of a kind commands write, whose `time` held a newline
/// (`tapsign audit` printed a forged line after it) or which had a field `audit verify`
/// refuses, was taken in; the next unlock then refused. Another process's line is read as
/// `audit verify` reads it.
#[test]
fn an_appended_line_audit_verify_would_refuse_is_refused() {
    let key_change = r#"{"type":"key_change","action":"add","name":"zz","created":1,"file":"00","pid":1,"exe":"/usr/bin/tapsign"}"#;
    let extra = r#"{"type":"key_change","action":"add","name":"zz","created":1,"file":"00","pid":1,"exe":"/usr/bin/tapsign","x":1}"#;
    for (time, event) in [
        (
            "2026-12-05T22:14:00.000Z sign k1 POST /sapi/v1/capital/withdraw/apply by pid 77 (/usr/bin/python3)\n2026-12-05T22:14:00.001Z",
            key_change,
        ),
        ("x", key_change),
        ("2026-12-05T22:14:00.000Z", extra),
    ] {
        let (_dir, path, mut log) = fresh();
        let line = chained(&path, time, event);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "{line}").unwrap();
        let why = tampered(log.append(&lock("x")));
        assert!(why.contains("is not an audit line"), "{time}: {why}");
        assert!(!verify(&path).unwrap().is_ok(), "verify refuses it too");
    }
    // The same line, well formed, is taken in.
    let (_dir, path, mut log) = fresh();
    let line = chained(&path, "2026-12-05T22:14:00.000Z", key_change);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(f, "{line}").unwrap();
    log.append(&lock("x")).unwrap();
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn a_time_is_well_formed_only_as_the_agent_writes_it() {
    for ok in [
        "2026-11-23T10:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
        "2026-12-31T23:59:59.999Z",
        "584556019-08-17T07:12:55.807Z",
    ] {
        assert!(time_well_formed(ok), "{ok}");
    }
    for bad in [
        "",
        "x",
        "2026-11-23T10:00:00Z",
        "2026-11-23 10:00:00.000Z",
        "2026-11-23T10:00:00.000Z\n",
        "2026-11-23T10:00:00.000Z ",
        "026-11-23T10:00:00.000Z",
        "2026-11-2aT10:00:00.000Z",
        "+2026-11-23T10:00:00.000Z",
        // Fields out of their range.
        "2026-13-23T10:00:00.000Z",
        "2026-00-23T10:00:00.000Z",
        "2026-11-00T10:00:00.000Z",
        "2026-11-32T10:00:00.000Z",
        "2026-11-23T24:00:00.000Z",
        "2026-11-23T10:60:00.000Z",
        "2026-11-23T10:00:60.000Z",
    ] {
        assert!(!time_well_formed(bad), "{bad:?}");
    }
}

#[test]
fn reading_back_starts_at_the_anchor_and_stops_where_the_chain_breaks() {
    let (_dir, path, mut log) = fresh();
    let anchor = log.anchor();
    log.append(&lock("after 1")).unwrap();
    log.append(&lock("after 2")).unwrap();
    let got = since(&path, &anchor).unwrap();
    assert!(got.gap.is_none(), "{got:?}");
    let reasons: Vec<String> = got.lines.iter().map(|l| l.event.to_string()).collect();
    assert_eq!(reasons, ["lock (after 1)", "lock (after 2)"]);
    // From an empty log's anchor: everything.
    let start = crate::keystore::Anchor {
        seq: 0,
        hash: GENESIS.into(),
        offset: 0,
    };
    assert_eq!(since(&path, &start).unwrap().lines.len(), 5);

    // The anchored line edited in place: still the same log (the line keeps its seq, the next
    // one chains from the recorded hash), so a broken record, not a gap.
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("line 2", "line 7", 1)).unwrap();
    let got = since(&path, &anchor).unwrap();
    assert!(got.lines.is_empty());
    assert!(got.broken, "{got:?}");
    assert!(got.gap.unwrap().contains("was edited"));
    // Its seq edited too: the next line still chains from the recorded hash.
    fs::write(&path, text.replacen("\"seq\":3", "\"seq\":8", 1)).unwrap();
    assert!(since(&path, &anchor).unwrap().broken);
    // An edit that changes the line's length moves the recorded offset off the line's end:
    // the next line still chains from the recorded hash, wherever it now starts (red-team
    // round 23: one more digit in its seq read as a log started afresh).
    for (from, to) in [("\"seq\":3", "\"seq\":13"), ("line 2", "line")] {
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let got = since(&path, &anchor).unwrap();
        assert!(got.broken, "{to}: {got:?}");
        assert!(
            got.gap.unwrap().contains("was edited (its length changed)"),
            "{to}"
        );
    }
    // A line before it made longer: the anchor's line is there, unchanged, moved. (By one
    // byte, it reads as a torn anchor line the next writer ended, and is read on from.)
    fs::write(&path, text.replacen("line 0", "line 000", 1)).unwrap();
    let got = since(&path, &anchor).unwrap();
    assert!(got.broken, "{got:?}");
    assert!(got.gap.unwrap().contains("unchanged, but not where it was"));
    // Its length changed and the next line chained on from it: the chain breaks after that.
    let edited = text.replacen("line 2", "line", 1);
    let edited_line = edited.lines().nth(2).unwrap();
    let next_prev = format!("\"prev\":\"{}\"", hash_hex(edited_line.as_bytes()));
    let edited = edited.replacen(&format!("\"prev\":\"{}\"", anchor.hash), &next_prev, 1);
    fs::write(&path, &edited).unwrap();
    let got = since(&path, &anchor).unwrap();
    assert!(got.broken, "{got:?}");
    let why = got.gap.unwrap();
    assert!(why.contains("line 5 does not continue the chain"), "{why}");
    assert!(why.contains("not started afresh"), "{why}");
    // A log started afresh, longer than the anchor's offset, chained from seq 1: a gap.
    fs::remove_file(&path).unwrap();
    let mut new_log = AuditLog::open(&path).unwrap();
    for i in 0..6 {
        new_log
            .append(&lock(&format!("a new log's line {i}")))
            .unwrap();
    }
    let got = since(&path, &anchor).unwrap();
    assert!(!got.broken, "{got:?}");
    assert!(got.gap.unwrap().contains("no longer holds line 3"));
    // Shorter than the anchor: a gap.
    fs::write(&path, "").unwrap();
    assert!(since(&path, &anchor).unwrap().gap.is_some());
}

#[test]
fn the_ledger_reads_back_the_key_changes_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut ledger = AuditLedger::new(&path);
    let anchor = ledger.head().unwrap();
    let change = KeyChange {
        action: KeyAction::Replace,
        name: "k1".into(),
        created: 1_800_000_000,
        sha256: "ab".repeat(32),
    };
    ledger.record(&LedgerEntry::Key(change.clone())).unwrap();
    ledger
        .record(&LedgerEntry::Manifest {
            generation: 9,
            vault: "0011223344556677".into(),
            vault_key: String::new(),
            links: vec![],
            reason: "unlock".into(),
            records: vec![],
            signature: String::new(),
        })
        .unwrap();
    let ev = evidence(&path, &anchor);
    assert_eq!(ev.changes, [change]);
    assert_eq!(ev.latest_generation, Some(9));
    assert!(ev.gap.is_none());
    let text = read(&path)
        .unwrap()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(
            "key replace k1 (added 2027-01-15T08:00:00.000Z, file sha256 abababababababab) by pid"
        ),
        "{text}"
    );
    assert!(text.contains("keystore manifest generation 9 (vault 0011223344556677): unlock"));
    // A log that cannot be read gives no evidence, and says why.
    let ev = evidence(Path::new("/nonexistent/audit.log"), &anchor);
    assert!(ev.gap.is_some() && ev.changes.is_empty());
}

/// An in-place, same-length edit of a line in the middle (here a recorded removal renamed)
/// breaks the chain at the next line: reading back says so as a broken record, which the
/// keystore refuses, rather than as a gap it only warns about.
#[test]
fn a_middle_line_edited_in_place_is_a_broken_record_not_a_gap() {
    let (_dir, path, mut log) = fresh();
    let anchor = log.anchor();
    let change = KeyChange {
        action: KeyAction::Remove,
        name: "kb3".into(),
        created: 1_800_000_000,
        sha256: "ab".repeat(32),
    };
    log.append(&ledger::event(&LedgerEntry::Key(change)))
        .unwrap();
    log.append(&lock("after")).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replacen("\"name\":\"kb3\"", "\"name\":\"kb9\"", 1),
    )
    .unwrap();
    let ev = evidence(&path, &anchor);
    let why = ev.broken.expect("a broken record");
    assert!(why.contains("does not continue the chain"), "{why}");
    // The same file read from before the edit's anchor, intact: neither gap nor break.
    fs::write(&path, text).unwrap();
    let ev = evidence(&path, &anchor);
    assert!(ev.broken.is_none() && ev.gap.is_none(), "{ev:?}");
}

/// A write a crash tore, ended by the next writer, which chained on from its bytes, is not a
/// broken record: the lines after it are read back, and nothing is refused for it.
#[test]
fn a_torn_line_the_log_went_on_from_is_read_past() {
    let (_dir, path, log) = fresh();
    let anchor = log.anchor();
    drop(log);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{\"seq\":4,\"time\":\"2026-").unwrap();
    drop(f);
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&lock("after the crash")).unwrap();
    let got = since(&path, &anchor).unwrap();
    assert!(got.gap.is_none() && !got.broken, "{got:?}");
    let reasons: Vec<String> = got.lines.iter().map(|l| l.event.to_string()).collect();
    assert_eq!(reasons, ["lock (after the crash)"]);
    // A line of garbage that nothing chains from is not a torn write.
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}garbage\n")).unwrap();
    assert!(since(&path, &anchor).unwrap().broken);
}

/// Only the start of the line a writer would have put there is a torn write: a line of other
/// bytes, or one that names a credential change, the next writer chained on from is a break.
#[test]
fn a_torn_line_that_is_not_the_start_of_the_next_line_is_a_break() {
    let cases: [&[u8]; 4] = [
        b"{\"seq\":9,\"time\":\"2026-",
        b"{\"seq\":4,\"time\":\"2026-01-01T00:00:00.000Z\",\"prev\":\"00",
        b"{\"seq\":4,\"time\":\"2026-01-01T00:00:00.000Z\",\"prev\":\"",
        b"x\"key_change\"",
    ];
    for (i, torn) in cases.into_iter().enumerate() {
        let (_dir, path, log) = fresh();
        let anchor = log.anchor();
        let fits = log.checkpoint().hash;
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(torn).unwrap();
        drop(f);
        let mut log = AuditLog::open(&path).unwrap();
        log.append(&lock("after the crash")).unwrap();
        let got = since(&path, &anchor).unwrap();
        // Case 2 starts a prev other than the chain's (unless the hash starts with 00);
        // case 3 stops before the prev: a torn write.
        let torn_write = i == 2 || (i == 1 && fits.starts_with("00"));
        assert_eq!(got.broken, !torn_write, "case {i}: {got:?}");
    }
}

#[test]
fn reading_back_for_the_keystore_keeps_only_its_lines_but_checks_every_link() {
    // The keystore's check read every line after the anchor into memory (a busy day's
    // signatures: hundreds of megabytes, at every unlock and `key add`). It keeps only the
    // lines it reads now, and a line it does not keep still breaks the chain.
    let (_dir, path, mut log) = fresh();
    let anchor = log.anchor();
    log.append(&lock("signature-like line")).unwrap();
    log.append(&AuditEvent::Keystore {
        generation: 4,
        vault: "00".into(),
        vault_key: None,
        lineage: vec![],
        reason: "unlock".into(),
        credentials: None,
        signature: None,
    })
    .unwrap();
    log.append(&lock("another")).unwrap();
    drop(log);
    let is_keystore = |e: &AuditEvent| matches!(e, AuditEvent::Keystore { .. });
    let got = since_keeping(&path, &anchor, is_keystore).unwrap();
    assert!(got.gap.is_none(), "{got:?}");
    assert_eq!(got.lines.len(), 1);
    assert_eq!(evidence(&path, &anchor).latest_generation, Some(4));
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("signature-like", "edited", 1)).unwrap();
    let got = since_keeping(&path, &anchor, is_keystore).unwrap();
    assert!(got.broken && got.lines.is_empty(), "{got:?}");
}

#[test]
fn the_record_of_vaults_is_read_along_the_chain_and_a_hidden_line_is_not_lost() {
    // The keystore's vault check reads every `keystore` line of the file, anchor or not. A
    // line whose field names were escaped past a substring search, or whose generation was
    // made unreadable, still names its vault; one taken out, with no vault recorded before the
    // break, leaves a record that cannot be trusted.
    let (_dir, path, mut log) = fresh();
    let key = vault_key(1);
    log.append(&AuditEvent::Keystore {
        generation: 4,
        vault: "00".into(),
        vault_key: Some(key.clone()),
        lineage: vec![],
        reason: "unlock".into(),
        credentials: None,
        signature: None,
    })
    .unwrap();
    log.append(&lock("after")).unwrap();
    let anchor = log.anchor();
    drop(log);
    let ev = evidence(&path, &anchor);
    assert_eq!(ev.recorded_vaults, std::slice::from_ref(&key));
    assert!(ev.vaults_broken.is_none(), "{ev:?}");
    let text = fs::read_to_string(&path).unwrap();
    let keystore_line = text.lines().find(|l| l.contains("\"keystore\"")).unwrap();
    for (edited, trusted) in [
        // Parses as it is: the break comes after it.
        (
            text.replace("\"generation\":4", "\"gener\\u0061tion\":4"),
            true,
        ),
        // Does not parse as a line: the break is the line itself, with no vault before it.
        (
            text.replace("\"generation\":4", "\"generation\":\"4\""),
            false,
        ),
        (
            text.replace("\"generation\":4", "\"gener\\u0061tion\":\"4\""),
            false,
        ),
    ] {
        fs::write(&path, &edited).unwrap();
        let ev = evidence(&path, &anchor);
        assert_eq!(ev.recorded_vaults, std::slice::from_ref(&key), "{edited}");
        assert_eq!(ev.vaults_broken.is_none(), trusted, "{edited}\n{ev:?}");
    }
    fs::write(&path, text.replace(&format!("{keystore_line}\n"), "")).unwrap();
    let ev = evidence(&path, &anchor);
    assert!(ev.recorded_vaults.is_empty());
    assert!(ev.vaults_broken.is_some(), "{ev:?}");
    // A vault recorded before a break stands, and one named after it counts too, its line read
    // as JSON however the rest of it reads, where a signed link leads to it from a vault
    // believed: a line of garbage appended does not make the record untrustworthy. A vault
    // named there with no link is left out, and named.
    let (other, link) = crate::keystore::numbered_vault(2);
    let link = serde_json::to_string(&[link]).unwrap();
    let nobodys = format!("03{:064x}", 9);
    let garbage = format!(
        "{text}x\n{{\"seq\":99,\"event\":{{\"type\":\"keystore\",\"vault_key\":\"{nobodys}\"}}}}\n{{\"seq\":100,\"event\":{{\"type\":\"keystore\",\"vault_key\":\"{other}\",\"lineage\":{link}}}}}\n"
    );
    fs::write(&path, garbage).unwrap();
    let ev = evidence(&path, &anchor);
    assert_eq!(ev.recorded_vaults, [key, other]);
    assert!(ev.vaults_broken.is_none(), "{ev:?}");
    let unlinked: Vec<_> = ev.unlinked.iter().map(|u| (u.seq, &u.vault_key)).collect();
    assert_eq!(unlinked, [(99, &nobodys)]);
}

#[test]
fn the_agent_reads_the_record_of_vaults_on_from_where_it_last_read_it() {
    // An unlock's check holds the vault to every vault the log records, from its first line.
    // The agent reads that record whole once, then on from where the last read ended, so a
    // long log of signatures is not read again at every unlock. What it read stands against
    // the file edited behind it; a log replaced or cut is read whole again.
    let (_dir, path, mut log) = fresh();
    let (key, keystore) = (vault_key, vault_line);
    let last = ledger::VaultsRead::default();
    let read = |anchor: &crate::keystore::Anchor| {
        let ev = ledger::evidence_after(&path, anchor, Some(&last));
        (ev.recorded_vaults, ev.vaults_broken.is_none())
    };
    log.append(&keystore(1)).unwrap();
    log.append(&lock("after")).unwrap();
    assert_eq!(read(&log.anchor()), (vec![key(1)], true));
    log.append(&keystore(2)).unwrap();
    log.append(&lock("after")).unwrap();
    let anchor = log.anchor();
    drop(log);
    assert_eq!(read(&anchor), (vec![key(1), key(2)], true));

    // The first line edited in place: read whole, the chain breaks before any vault, and the
    // record is not to be trusted; read on, the vaults read before stand.
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("line 0", "line X", 1)).unwrap();
    let whole = evidence(&path, &anchor);
    assert!(whole.vaults_broken.is_some(), "{whole:?}");
    assert_eq!(read(&anchor), (vec![key(1), key(2)], true));

    // Replaced (another file at the path) without the vaults: read whole.
    let replaced = path.with_extension("new");
    let without: String = text
        .lines()
        .filter(|l| !l.contains("\"keystore\""))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&replaced, &without).unwrap();
    fs::rename(&replaced, &path).unwrap();
    let (vaults, _) = read(&anchor);
    assert!(vaults.is_empty(), "{vaults:?}");

    // Read whole again and remembered; then cut in place (the same file) before where that
    // read ended: the vaults read stand, and the reading is unread (red-team round 26, part
    // 2: read whole, the cut file dropped them, and a keystore of the vault before them
    // opened). Written back, the file is read on.
    fs::write(&path, &text).unwrap();
    assert_eq!(read(&anchor), (vec![key(1), key(2)], true));
    let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    for cut in [cut.as_str(), ""] {
        fs::write(&path, cut).unwrap();
        let ev = ledger::evidence_after(&path, &anchor, Some(&last));
        assert!(ev.unread, "{ev:?}");
        assert_eq!(ev.recorded_vaults, [key(1), key(2)]);
    }
    fs::write(&path, &text).unwrap();
    let ev = ledger::evidence_after(&path, &anchor, Some(&last));
    assert!(
        !ev.unread && ev.recorded_vaults == [key(1), key(2)],
        "{ev:?}"
    );
}

/// Red-team round 26, part 2 (F1): the log cut in place (the same file) to its prefix from
/// before a rotation, for the moment of a fresh agent's first check, and written back before
/// the check's record. Read from the old manifest's anchor, the prefix holds a whole chain
/// with no newer generation, and the record of the vaults, read whole again, held no newer
/// vault: the pre-rotation keystore opened and signed. Each read of the check must find the
/// file reaching the writer's head, or the check is unread; the vaults and the highest
/// generation the agent read at its start stand.
#[test]
fn a_check_that_finds_the_log_cut_short_of_the_writers_head_is_unread() {
    use std::os::unix::fs::FileExt;
    let (_dir, path, mut log) = fresh();
    log.append(&vault_line(1)).unwrap();
    log.append(&lock("after")).unwrap();
    let old_anchor = log.anchor();
    let before = fs::read(&path).unwrap();
    log.append(&vault_line(2)).unwrap();
    log.append(&lock("after")).unwrap();
    let (head, file) = (log.anchor(), log.identity());
    drop(log);
    let whole = fs::read(&path).unwrap();
    let hold = super::Hold::File(file.0, file.1);
    // The agent's start-up read.
    let last = ledger::VaultsRead::default();
    super::held_to(hold, || ledger::read_vaults(&path, &last));
    let highest = || super::held_to(hold, || last.highest(&path));
    assert_eq!(highest(), Some(2));
    let put = |bytes: &[u8]| {
        let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(0).unwrap();
        f.write_all_at(bytes, 0).unwrap();
    };
    let genesis = crate::keystore::Anchor::genesis();
    for cut in [&before[..], b""] {
        put(cut);
        for anchor in [&old_anchor, &genesis] {
            let (ev, short) = super::held_to_head(hold, Some(&head), || {
                ledger::evidence_after(&path, anchor, Some(&last))
            });
            assert!(short, "{anchor:?}: {ev:?}");
            assert_eq!(ev.recorded_vaults, [vault_key(1), vault_key(2)], "{ev:?}");
            let (ev, short) = super::held_to_head(hold, Some(&head), || {
                ledger::unanchored_after(&path, "none", Some(&last))
            });
            assert!(short && ev.recorded_vaults.len() == 2, "{ev:?}");
        }
        assert_eq!(highest(), Some(2));
    }
    put(&whole);
    let (ev, short) = super::held_to_head(hold, Some(&head), || {
        ledger::evidence_after(&path, &old_anchor, Some(&last))
    });
    assert!(!short && !ev.unread, "{ev:?}");
    assert_eq!(ev.latest_generation, Some(2));
}

/// Red-team round 25, recheck: a check opens the log several times (the lines since the
/// anchor, the record of the vaults, a scan of the whole file). With the log made unreadable
/// for one of those opens only, the record of the vaults came back empty with nothing said,
/// as from a log started afresh, and the check anchored a keystore of another vault. Each
/// failed open now marks the reading `unread`, and the vaults the agent read of the same file
/// before still stand.
#[test]
fn any_failed_read_of_a_check_marks_it_unread_and_keeps_the_vaults_read_before() {
    let (_dir, path, mut log) = fresh();
    log.append(&vault_line(1)).unwrap();
    log.append(&lock("after")).unwrap();
    let anchor = log.anchor();
    log.append(&lock("later")).unwrap();
    drop(log);
    let whole = ledger::evidence(&path, &crate::keystore::Anchor::genesis());
    assert!(!whole.unread && whole.recorded_vaults == [vault_key(1)]);
    // A manifest with an anchor, one without, and one whose anchor is gone (a gap: the scan).
    let gone = crate::keystore::Anchor {
        seq: 99,
        hash: "0".repeat(64),
        offset: 1 << 20,
    };
    type Reading<'a> = Box<dyn Fn(&ledger::VaultsRead) -> crate::keystore::Evidence + 'a>;
    let readings: [(&str, Reading); 3] = [
        (
            "anchored",
            Box::new(|l| ledger::evidence_after(&path, &anchor, Some(l))),
        ),
        (
            "gone",
            Box::new(|l| ledger::evidence_after(&path, &gone, Some(l))),
        ),
        (
            "unanchored",
            Box::new(|l| ledger::unanchored_after(&path, "none", Some(l))),
        ),
    ];
    // What a reading found, as far as a check uses it.
    let found = |ev: &crate::keystore::Evidence| {
        (
            ev.recorded_vaults.clone(),
            ev.latest_generation,
            ev.gap.clone(),
            ev.checks.len(),
            ev.unreadable.clone(),
        )
    };
    for (what, read) in &readings {
        let last = ledger::VaultsRead::default();
        ledger::read_vaults(&path, &last);
        let clean = read(&last);
        assert!(!clean.unread, "{what}");
        let mut failed = 0;
        for n in 0..16 {
            crate::disk::FAIL_OPENS.with(|f| f.set(1 << n));
            let ev = read(&last);
            let reached = crate::disk::FAIL_OPENS.with(|f| f.replace(0)) == 0;
            if !reached {
                break;
            }
            failed += 1;
            // Said, or made up for by reading again: never less than the clean reading, unsaid.
            assert!(
                ev.unread || found(&ev) == found(&clean),
                "{what}: open {n} failed unsaid: {ev:?}"
            );
            assert_eq!(ev.recorded_vaults, [vault_key(1)], "{what}: open {n}");
        }
        assert!(failed >= 1, "{what}");
    }
}

/// Red-team round 25, second recheck: another file renamed over the log for the one read of
/// the record of the vaults (and back) had the check hold the keystore to the attacker's
/// vault. Held to the file the writer holds, a read that opens another file fails, the reading
/// is unread, and the vaults read of the writer's file before stand.
#[test]
fn reads_held_to_the_writers_file_refuse_another_file_at_its_path() {
    let (dir, path, mut log) = fresh();
    log.append(&vault_line(1)).unwrap();
    log.append(&lock("after")).unwrap();
    let (anchor, file) = (log.anchor(), log.identity());
    drop(log);
    let last = ledger::VaultsRead::default();
    super::held_to(super::Hold::File(file.0, file.1), || {
        ledger::read_vaults(&path, &last)
    });
    let held = super::held_to(super::Hold::File(file.0, file.1), || {
        ledger::evidence_after(&path, &anchor, Some(&last))
    });
    assert!(
        !held.unread && held.recorded_vaults == [vault_key(1)],
        "{held:?}"
    );

    // The attacker's log, naming its vault, put at the path.
    let theirs = dir.path().join("theirs.log");
    let mut other = AuditLog::open(&theirs).unwrap();
    other.append(&vault_line(9)).unwrap();
    drop(other);
    let ours = dir.path().join("ours.log");
    fs::rename(&path, &ours).unwrap();
    fs::rename(&theirs, &path).unwrap();
    for anchor in [anchor.clone(), crate::keystore::Anchor::genesis()] {
        let ev = super::held_to(super::Hold::File(file.0, file.1), || {
            ledger::evidence_after(&path, &anchor, Some(&last))
        });
        assert!(ev.unread, "{ev:?}");
        assert_eq!(ev.recorded_vaults, [vault_key(1)], "{ev:?}");
        let ev = super::held_to(super::Hold::File(file.0, file.1), || {
            ledger::unanchored_after(&path, "none", Some(&last))
        });
        assert!(ev.unread && ev.recorded_vaults == [vault_key(1)], "{ev:?}");
    }
    // Red-team round 25, third recheck: an agent whose writer holds no file (the log could not
    // be opened at its start) reads none of what is at the path, readable or not.
    for anchor in [anchor.clone(), crate::keystore::Anchor::genesis()] {
        let ev = super::held_to(super::Hold::Nothing, || {
            ledger::evidence_after(&path, &anchor, None)
        });
        assert!(ev.unread && ev.recorded_vaults.is_empty(), "{ev:?}");
    }
    // Free (a command's reading), the file at the path is read.
    let free = ledger::evidence_after(&path, &crate::keystore::Anchor::genesis(), None);
    assert_eq!(free.recorded_vaults, [vault_key(9)]);
}

#[test]
fn a_read_on_does_not_see_lines_put_back_before_where_it_last_read() {
    // What a read on holds the keystore to is what it read: a log of someone else's making
    // (naming only their vault), put in place while no agent ran and read whole at the
    // agent's start, then the real log's lines written over it in place, the last line read
    // kept where it was. The read on finds that line unchanged and does not read the lines
    // before it again; a whole read (every command's, `audit verify`) holds the keystore to
    // the real log's vault, and finds the chain broken where the two logs meet.
    let dir = tempfile::tempdir().unwrap();
    let (key, keystore) = (vault_key, vault_line);
    let real = dir.path().join("real.log");
    let mut log = AuditLog::open(&real).unwrap();
    log.append(&keystore(1)).unwrap();
    log.append(&lock("after")).unwrap();
    drop(log);
    let real = fs::read(&real).unwrap();

    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&keystore(9)).unwrap();
    log.append(&lock(&"x".repeat(real.len() + 100))).unwrap();
    log.append(&lock("last")).unwrap();
    let end = log.anchor();
    drop(log);
    let last = ledger::VaultsRead::default();
    ledger::read_vaults(&path, &last);

    // The real lines, blanks up to the last line read, and that line: the same length.
    let forged = fs::read(&path).unwrap();
    let body = &forged[..forged.len() - 1];
    let line = &forged[body.iter().rposition(|&b| b == b'\n').unwrap() + 1..];
    let mut over = real.clone();
    over.resize(forged.len() - line.len() - 1, b' ');
    over.push(b'\n');
    over.extend_from_slice(line);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(&over)
        .unwrap();

    let on = ledger::evidence_after(&path, &end, Some(&last));
    assert_eq!(on.recorded_vaults, [key(9)]);
    let whole = evidence(&path, &end);
    assert_eq!(whole.recorded_vaults, [key(1)]);
    let read = since(&path, &crate::keystore::Anchor::genesis()).unwrap();
    assert!(read.broken, "{read:?}");
}

/// Vault public key `n` of a made-up keystore.
fn vault_key(n: u64) -> String {
    crate::keystore::numbered_vault(n as u8).0
}

/// The `keystore` line of a manifest of generation `n`, recording [`vault_key`] `n`, with the
/// link to it from vault `n - 1`, as a rotation's record carries it. The agent's tests of its
/// check write these lines too.
pub(crate) fn vault_line(n: u64) -> AuditEvent {
    let (key, link) = crate::keystore::numbered_vault(n as u8);
    AuditEvent::Keystore {
        generation: n,
        vault: "00".into(),
        vault_key: Some(key),
        lineage: vec![link],
        reason: "unlock".into(),
        credentials: None,
        signature: None,
    }
}

fn manifest_entry(generation: u64) -> LedgerEntry {
    LedgerEntry::Manifest {
        generation,
        vault: "0011223344556677".into(),
        vault_key: String::new(),
        links: vec![],
        reason: "rotated".into(),
        records: vec![],
        signature: String::new(),
    }
}

/// Red-team round 17, second recheck: a command asks whether the log takes records before a
/// PIN and a touch, and kept the log open from then on; lines a running agent appended in that
/// time (a bot's refused requests) beyond what an open descriptor takes in as others' lines
/// made the record fail as tampering, and the rotation was undone. The check no longer keeps
/// the log open.
#[test]
fn a_record_after_ready_takes_lines_others_appended_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut ledger = AuditLedger::new(&path);
    ledger.ready().unwrap();
    let mut agent = AuditLog::open(&path).unwrap();
    let refused = AuditEvent::Lock {
        reason: "x".repeat(200),
        pid: None,
        exe: None,
    };
    let many: Vec<_> = (0..8_000)
        .map(|_| (&refused, std::time::SystemTime::now()))
        .collect();
    agent.write_lines(&many).unwrap();
    assert!(fs::metadata(&path).unwrap().len() > 2 * 1024 * 1024);
    ledger.record(&manifest_entry(3)).unwrap();
    let ev = evidence(&path, &crate::keystore::Anchor::genesis());
    assert_eq!(ev.latest_generation, Some(3), "{:?}", ev.gap);
}

/// Red-team round 17, second recheck: a record whose line was written but whose sync failed
/// was reported failed, and the rotation it recorded was undone, leaving the log naming a
/// vault the keystore no longer had (every later command refused). It counts as written.
#[test]
fn a_record_written_whose_sync_fails_counts_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut ledger = AuditLedger::new(&path);
    ledger.head().unwrap();
    super::append::FAIL_SYNC.with(|f| f.set(true));
    let recorded = ledger.record(&manifest_entry(5));
    super::append::FAIL_SYNC.with(|f| f.set(false));
    recorded.unwrap();
    assert!(ledger.written().is_some());
    let ev = evidence(&path, &crate::keystore::Anchor::genesis());
    assert_eq!(ev.latest_generation, Some(5));
}

/// Red-team round 17, third recheck: the record reopened the log by its path, so a log moved
/// aside during the touch (and a new one started there) took the record, and the real log went
/// without it. The record goes only to the file the check found.
#[test]
fn a_record_after_ready_goes_only_to_the_file_ready_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    AuditLog::open(&path).unwrap();
    let mut ledger = AuditLedger::new(&path);
    ledger.ready().unwrap();
    fs::rename(&path, dir.path().join("audit.log.aside")).unwrap();
    // The rotation asks again when it starts, after the touch: that must not take the new
    // file for the one first checked.
    let e = ledger.ready().unwrap_err();
    assert!(e.contains("not the file it was"), "{e}");
    let e = ledger.record(&manifest_entry(4)).unwrap_err();
    assert!(e.contains("not the file it was"), "{e}");
    assert!(ledger.written().is_none());
    // Put back, it takes the record.
    let mut ledger = AuditLedger::new(&path);
    fs::rename(dir.path().join("audit.log.aside"), &path).unwrap();
    ledger.ready().unwrap();
    ledger.record(&manifest_entry(4)).unwrap();
}

/// Red-team round 18: a `keystore` line naming a generation far above the one before it
/// (written by hand, continuing the chain) is left out of the record read back, along the
/// chain, in a scan of the whole file where the chain is broken, and without an anchor: it
/// neither raises the floor of the next generation nor hides the real one below it.
#[test]
fn a_generation_far_above_the_record_is_left_out_of_every_reading() {
    use crate::keystore::ledger::GENERATION_STEP;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut ledger = AuditLedger::new(&path);
    ledger.head().unwrap();
    ledger.record(&manifest_entry(4)).unwrap();
    ledger.record(&manifest_entry(u64::MAX - 1)).unwrap();
    ledger
        .record(&manifest_entry(4 + GENERATION_STEP + 1))
        .unwrap();
    let along = evidence(&path, &crate::keystore::Anchor::genesis());
    let unanchored = ledger::unanchored(&path, "no anchor");
    for ev in [&along, &unanchored] {
        assert_eq!(ev.latest_generation, Some(4), "{ev:?}");
        assert_eq!(ev.implausible, Some(u64::MAX - 1), "{ev:?}");
    }
    let scan = ledger::scan(&path);
    assert_eq!(
        (scan.highest, scan.implausible),
        (Some(4), Some(u64::MAX - 1))
    );
}

/// A read held to a file by [`super::held_to`] that panics leaves its thread held to nothing
/// afterwards: a worker thread reused after a panic must not hold a later read to a stale file.
#[test]
fn a_panic_inside_held_to_puts_the_thread_back() {
    let held = std::panic::catch_unwind(|| super::held_to(super::Hold::Nothing, || panic!("read")));
    assert!(held.is_err());
    assert_eq!(super::HELD_TO.with(std::cell::Cell::get), super::Hold::Free);
}
