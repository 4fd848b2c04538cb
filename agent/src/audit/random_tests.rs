//! Random event sequences: whatever the events hold, the chain verifies, reads back, and
//! catches any flipped byte against a checkpoint.

use super::*;
use proptest::prelude::*;
use tapsign_proto::{ErrorCode, SignKind, SignRequest};

const BYBIT: crate::credential::Exchange = crate::credential::Exchange::Bybit;

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn peer_s() -> impl Strategy<Value = (u32, String)> {
    (any::<u32>(), text())
}

fn req_s() -> impl Strategy<Value = SignRequest> {
    // Query and body are filled too: they must not reach the log.
    let kind = prop_oneof![Just(SignKind::Rest), Just(SignKind::WsLogin)];
    (text(), text(), text(), text(), kind).prop_map(|(key, method, path, query, kind)| {
        SignRequest {
            key,
            method,
            path,
            body: query.clone(),
            query,
            kind,
        }
    })
}

fn event() -> impl Strategy<Value = AuditEvent> {
    prop_oneof![
        (text(), any::<u32>()).prop_map(|(version, pid)| AuditEvent::AgentStart { version, pid }),
        text().prop_map(|reason| AuditEvent::AgentStop { reason }),
        (
            text(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(text())
        )
            .prop_map(|(reason, pid, exe)| AuditEvent::Lock { reason, pid, exe }),
        (
            text(),
            proptest::collection::vec(text(), 0..3),
            any::<u64>()
        )
            .prop_map(|(token, keys, n)| {
                AuditEvent::Unlock {
                    token,
                    keys,
                    ttl_secs: n,
                    idle_secs: n / 2,
                    max_signatures: n / 3,
                    pid: 1,
                    exe: String::new(),
                }
            }),
        (text(), peer_s(), any::<u64>()).prop_map(|(reason, (pid, exe), repeated)| {
            AuditEvent::UnlockRefused {
                code: ErrorCode::WrongToken,
                reason,
                pid,
                exe,
                repeated,
            }
        }),
        (any::<u32>(), peer_s(), any::<u64>()).prop_map(|(uid, (pid, exe), repeated)| {
            AuditEvent::PeerRefused {
                uid,
                pid,
                exe,
                repeated,
            }
        }),
        (req_s(), peer_s()).prop_map(|(r, (pid, exe))| AuditEvent::sign(&r, BYBIT, pid, &exe)),
        (req_s(), peer_s(), text()).prop_map(|(r, (pid, exe), why)| AuditEvent::refusal(
            &r,
            ErrorCode::Locked,
            &why,
            pid,
            &exe
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_event_sequences_verify(
        events in proptest::collection::vec(event(), 1..24),
        reopen_at in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let cut = reopen_at.index(events.len());
        let mut log = AuditLog::open(&path).unwrap();
        for (i, e) in events.iter().enumerate() {
            if i == cut {
                log = AuditLog::open(&path).unwrap();
            }
            log.append(e).unwrap();
        }
        let head = log.checkpoint();
        prop_assert_eq!(
            verify(&path).unwrap(),
            VerifyReport::Intact { lines: events.len() as u64, head: head.clone() }
        );
        let back: Vec<AuditEvent> = read(&path)
            .unwrap()
            .map(|l| match l {
                Entry::Line(l) => l.event,
                damaged => panic!("{damaged}"),
            })
            .collect();
        let logged: Vec<AuditEvent> = events.iter().map(AuditEvent::loggable).collect();
        prop_assert_eq!(back, logged);
    }

    /// With a checkpoint, no single changed byte anywhere goes unnoticed.
    #[test]
    fn any_flipped_byte_is_caught_with_a_checkpoint(
        events in proptest::collection::vec(event(), 1..8),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path).unwrap();
        for e in &events {
            log.append(e).unwrap();
        }
        let head = log.checkpoint();
        let mut bytes = fs::read(&path).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        fs::write(&path, &bytes).unwrap();
        let report = verify_against(&path, &head).unwrap();
        prop_assert!(matches!(report, VerifyReport::Broken { .. }), "{:?}", report);
    }
}
