//! Golden frames: the exact bytes of every message kind, committed under `tests/golden/`.
//!
//! Each positive file must decode into the value built here AND re-encode byte for byte, so a
//! change to field order, naming, tagging or optional-field skipping breaks this test before it
//! breaks a client written in another language. The committed files are the truth; to
//! regenerate them after a deliberate protocol change, run
//! `TAPSIGN_BLESS=1 cargo test -p tapsign-proto --test golden` and review the diff.
//!
//! Negative files hold frames the decoder must refuse, with the outcome pinned per file.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::path::PathBuf;

use tapsign_proto::frame::{decode, encode};
use tapsign_proto::*;

/// A message of either direction; the two enums decode differently. (A test's list of
/// values: the size difference between the variants costs nothing here.)
#[allow(clippy::large_enum_variant)]
enum Msg {
    Req(Request),
    Resp(Response),
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

fn blessing() -> bool {
    std::env::var_os("TAPSIGN_BLESS").is_some_and(|v| v == "1")
}

/// Every error code. The match below stops compiling when a code is added, as a reminder to
/// list it here (and so give it a golden frame and a line in docs/protocol.md).
fn every_code() -> Vec<ErrorCode> {
    use ErrorCode::*;
    let all = vec![
        Locked,
        Expired,
        BudgetExhausted,
        PolicyDenied,
        UnknownKey,
        BadRequest,
        TokenAbsent,
        WrongToken,
        TouchTimeout,
        PinInvalid,
        VersionMismatch,
        Keystore,
        Busy,
        Forbidden,
        Internal,
    ];
    for c in &all {
        match c {
            Locked | Expired | BudgetExhausted | PolicyDenied | UnknownKey | BadRequest
            | TokenAbsent | WrongToken | TouchTimeout | PinInvalid | VersionMismatch | Keystore
            | Busy | Forbidden | Internal => {}
        }
    }
    all
}

/// What the agent calls itself (`tapsign_agent::agent::agent_version`; tests/tests/docs.rs
/// checks the two agree).
const AGENT: &str = "tapsign 0.1.0";

/// A YubiKey as the agent names it (`TokenStub::id` and `describe`).
const YUBIKEY: &str = "YubiKey 12345678 (PIV slot R1)";

fn token() -> TokenInfo {
    TokenInfo {
        id: "piv-12345678-r1-1a2b3c4d".into(),
        kind: "piv".into(),
        description: YUBIKEY.into(),
    }
}

/// The agent's lock sources, as on a desktop where logind follows the session (open) or on
/// one without logind (locked). The agent lists the screensavers after these.
fn lock_sources(open: bool) -> Vec<LockSource> {
    let source = |name: &str, live: bool, detail: &str| LockSource {
        name: name.into(),
        live,
        detail: Some(detail.into()),
    };
    let (removal, logind) = match open {
        true => (
            source(
                "token removal",
                true,
                "watching PC/SC reader Yubico YubiKey OTP+FIDO+CCID 00 00",
            ),
            source(
                "logind-session",
                true,
                "logind session 2 (/org/freedesktop/login1/session/_32, the agent's own session): Session.Lock and LockedHint",
            ),
        ),
        false => (
            source(
                "token removal",
                true,
                "no session is open; the next one is ended when its token leaves its PC/SC reader or USB port",
            ),
            source(
                "logind-session",
                false,
                "logind (org.freedesktop.login1) is not on the system bus; listening for it to start",
            ),
        ),
    };
    vec![
        source("command", true, "`tapsign lock`"),
        source(
            "deadlines",
            true,
            "lifetime, idle timeout and signature budget",
        ),
        source(
            "signals",
            true,
            "SIGHUP locks, and so does SIGCONT after a stop; SIGTERM and SIGINT lock and stop the agent",
        ),
        removal,
        logind,
    ]
}

/// The warning `status` gives while no source would notice a screen lock.
const NO_SCREEN_LOCK: &str = "no screen-lock source is live: the session will not end when you lock your screen; see docs/screen-lock.md";

fn status_unlocked() -> Status {
    Status {
        state: SessionState::Unlocked,
        agent: AGENT.into(),
        lock_reason: None,
        session: Some(SessionStatus {
            expires_in_secs: 3540,
            idle_timeout_secs: 600,
            idle_expires_in_secs: 598,
            signatures_left: 497,
            signatures_made: 3,
            keys: vec![
                KeyStatus {
                    name: "upbit-main".into(),
                    exchange: "upbit".into(),
                    signatures_left: Some(97),
                    signatures_made: 3,
                },
                KeyStatus {
                    name: "binance-spot".into(),
                    exchange: "binance".into(),
                    signatures_left: None,
                    signatures_made: 0,
                },
            ],
            clients: vec![ClientInfo {
                pid: 4242,
                exe: "/usr/bin/python3".into(),
                signatures: 3,
            }],
            opened_by: YUBIKEY.into(),
            keys_total: None,
        }),
        tokens: vec![token()],
        warnings: vec![],
        lock_sources: lock_sources(true),
        key_policies: vec![],
        audit_head: None,
        keystore: None,
        changed_keys: vec![],
    }
}

/// The positive cases: file stem and the value its bytes must be.
fn cases() -> Vec<(String, Msg)> {
    let mut v: Vec<(String, Msg)> = vec![
        (
            "request_hello".into(),
            Msg::Req(Request::Hello {
                version: 1,
                client: "mybot/1.2".into(),
            }),
        ),
        ("request_status".into(), Msg::Req(Request::Status {})),
        ("request_lock".into(), Msg::Req(Request::Lock {})),
        ("request_subscribe".into(), Msg::Req(Request::Subscribe {})),
        (
            "request_noted".into(),
            Msg::Req(Request::Noted(NotedRequest {
                replaced: vec!["binance-spot".into()],
                removed: vec![],
            })),
        ),
        ("response_noted".into(), Msg::Resp(Response::Noted {})),
        (
            "request_unlock_extend".into(),
            Msg::Req(Request::Unlock(UnlockRequest {
                extend: true,
                ttl_secs: Some(3600),
                ..Default::default()
            })),
        ),
        (
            "response_subscribed".into(),
            Msg::Resp(Response::Subscribed {}),
        ),
        (
            "response_event_expiring".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::ExpiringSoon,
                message: "the session ends in 5m; `tapsign unlock --extend` renews it with a touch for 1h (idle 10m, 500 signatures)".into(),
                reason: None,
                code: None,
                expires_in_secs: Some(300),
                signatures_left: Some(120),
            })),
        ),
        (
            "response_event_unlocked".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::Unlocked,
                message: "a session opened with 2 key(s) for 1h".into(),
                reason: None,
                code: None,
                expires_in_secs: Some(3600),
                signatures_left: Some(500),
            })),
        ),
        (
            "response_event_budget_low".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::BudgetLow,
                message: "50 signatures left in this session".into(),
                reason: None,
                code: None,
                expires_in_secs: Some(2400),
                signatures_left: Some(50),
            })),
        ),
        (
            "response_event_extended".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::Extended,
                message: "the session was extended for 1h".into(),
                reason: None,
                code: None,
                expires_in_secs: Some(3600),
                signatures_left: Some(500),
            })),
        ),
        (
            "response_event_locked".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::Locked,
                message: "locked: screen locked (logind Session.Lock)".into(),
                reason: Some("screen locked (logind Session.Lock)".into()),
                code: Some(ErrorCode::Locked),
                expires_in_secs: None,
                signatures_left: None,
            })),
        ),
        (
            "response_event_locked_replaced".into(),
            Msg::Resp(Response::Event(SessionEvent {
                event: EventKind::Locked,
                message: "locked: session replaced by a new unlock".into(),
                reason: Some("session replaced by a new unlock".into()),
                code: Some(ErrorCode::Locked),
                expires_in_secs: None,
                signatures_left: None,
            })),
        ),
        (
            "request_unlock_defaults".into(),
            Msg::Req(Request::Unlock(UnlockRequest::default())),
        ),
        (
            "request_unlock_full".into(),
            Msg::Req(Request::Unlock(UnlockRequest {
                keys: Some(vec!["upbit-main".into(), "binance-spot".into()]),
                ttl_secs: Some(3600),
                idle_secs: Some(600),
                max_signatures: Some(500),
                // A made-up PIN: the field is on the wire, so its shape is pinned here.
                pin: Some(Pin::new("123456".into())),
                ..Default::default()
            })),
        ),
        (
            // The token to use, named: the PIN goes to it alone (red-team round 24).
            "request_unlock_token".into(),
            Msg::Req(Request::Unlock(UnlockRequest {
                token: Some("fido2-c47a10dc".into()),
                pin: Some(Pin::new("4321".into())),
                ..Default::default()
            })),
        ),
        (
            "request_sign_get_query".into(),
            Msg::Req(Request::Sign(SignRequest {
                key: "binance-spot".into(),
                method: "GET".into(),
                path: "/api/v3/openOrders".into(),
                query: "symbol=BTCUSDT".into(),
                body: String::new(),
                kind: Default::default(),
            })),
        ),
        (
            "request_sign_post_body".into(),
            Msg::Req(Request::Sign(SignRequest {
                key: "upbit-main".into(),
                method: "POST".into(),
                path: "/v1/orders".into(),
                query: String::new(),
                body: r#"{"market":"KRW-BTC","side":"bid","price":"5000","ord_type":"price"}"#
                    .into(),
                kind: Default::default(),
            })),
        ),
        (
            "request_sign_ws_login".into(),
            Msg::Req(Request::Sign(SignRequest {
                key: "bybit-main".into(),
                method: "GET".into(),
                path: "/v5/private".into(),
                query: String::new(),
                body: String::new(),
                kind: SignKind::WsLogin,
            })),
        ),
        (
            "response_hello".into(),
            Msg::Resp(Response::Hello {
                version: 1,
                agent: AGENT.into(),
            }),
        ),
        (
            "response_status_locked".into(),
            Msg::Resp(Response::Status(Status {
                state: SessionState::Locked,
                agent: AGENT.into(),
                lock_reason: Some("session idle timeout".into()),
                session: None,
                tokens: vec![token()],
                warnings: vec![NO_SCREEN_LOCK.into()],
                lock_sources: lock_sources(false),
                key_policies: vec![KeyPolicyInfo {
                    key: "binance-spot".into(),
                    rules: vec![
                        "allow POST /sapi/v1/margin/order (symbol, side, type, quantity)".into(),
                    ],
                }],
                audit_head: None,
                keystore: None,
                changed_keys: vec![],
            })),
        ),
        (
            // The audit head and the verified keystore: fields a newer agent adds. Frames
            // without them (above) stay valid.
            "response_status_anchored".into(),
            Msg::Resp(Response::Status(Status {
                state: SessionState::Locked,
                agent: AGENT.into(),
                lock_reason: None,
                session: None,
                tokens: vec![token()],
                warnings: vec![],
                lock_sources: lock_sources(false),
                key_policies: vec![],
                audit_head: Some(AuditHead {
                    seq: 412,
                    hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                }),
                keystore: Some(KeystoreState {
                    generation: 7,
                    vault_key: "0394c7c26f4714aade566f2f78ff1c2997da4dc3dd8cd70fcfdfb5edb802660b0f"
                        .into(),
                    log_unread: false,
                }),
                changed_keys: vec![],
            })),
        ),
        (
            "response_status_unlocked".into(),
            Msg::Resp(Response::Status(status_unlocked())),
        ),
        (
            "response_unlocked".into(),
            Msg::Resp(Response::Unlocked(status_unlocked())),
        ),
        (
            // A status cut to fit one answer (a session of many keys): `keys` lists the first
            // ones and `keys_total` says how many the session holds. Absent when `keys` lists
            // them all, as above.
            "response_unlocked_keys_cut".into(),
            Msg::Resp(Response::Unlocked({
                let mut status = status_unlocked();
                if let Some(s) = status.session.as_mut() {
                    s.keys_total = Some(1200);
                }
                status.warnings = vec![
                    "this status was cut to fit one answer (a session of many keys, or many warnings): `tapsign key list`, `tapsign token list` and `tapsign audit` show everything".into(),
                ];
                status
            })),
        ),
        ("response_locked".into(), Msg::Resp(Response::Locked {})),
        (
            // What the agent answers `request_sign_get_query` with, for the API key
            // "test-access-key" and the secret "test-secret-key" at 1795600000000 ms (the
            // agent appends only `timestamp` and `signature`; tests/tests/docs.rs signs it).
            "response_signed_headers".into(),
            Msg::Resp(Response::Signed(SignedRequest {
                method: "GET".into(),
                path: "/api/v3/openOrders".into(),
                query: "symbol=BTCUSDT&timestamp=1795600000000&signature=\
                        ab49a552077a94d691d8775442963d0c6f390bdc72854cbb2aed02feff5a1c7b"
                    .into(),
                body: String::new(),
                headers: BTreeMap::from([("X-MBX-APIKEY".into(), "test-access-key".into())]),
            })),
        ),
    ];
    // What the agent answers a `sign` with before any unlock (tests/tests/docs.rs asks it).
    v.push((
        "response_error_sign_while_locked".into(),
        Msg::Resp(Response::Error {
            code: ErrorCode::Locked,
            message: "the agent is locked: run `tapsign unlock`".into(),
        }),
    ));
    for code in every_code() {
        v.push((
            format!("response_error_{code}"),
            Msg::Resp(Response::Error {
                code,
                message: format!("example {code} message"),
            }),
        ));
    }
    v
}

fn encode_msg(m: &Msg) -> Vec<u8> {
    match m {
        Msg::Req(r) => encode(r),
        Msg::Resp(r) => encode(r),
    }
    .expect("encode")
}

/// Decode `bytes` as the same direction as `m`, check it equals `m` and used every byte, and
/// return its re-encoding.
fn decode_like(m: &Msg, bytes: &[u8]) -> Vec<u8> {
    match m {
        Msg::Req(want) => {
            let (got, used) = decode::<Request>(bytes)
                .expect("decode")
                .expect("whole frame");
            assert_eq!(&got, want);
            assert_eq!(used, bytes.len());
            encode(&got).expect("re-encode")
        }
        Msg::Resp(want) => {
            let (got, used) = decode::<Response>(bytes)
                .expect("decode")
                .expect("whole frame");
            assert_eq!(&got, want);
            assert_eq!(used, bytes.len());
            encode(&got).expect("re-encode")
        }
    }
}

#[test]
fn golden_frames_decode_and_reencode_byte_for_byte() {
    let dir = golden_dir();
    for (name, msg) in cases() {
        let path = dir.join(format!("{name}.frame"));
        if blessing() {
            std::fs::write(&path, encode_msg(&msg)).expect("write golden");
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4, "{name}: header length");
        assert_eq!(
            decode_like(&msg, &bytes),
            bytes,
            "{name}: re-encoding differs"
        );
        assert_eq!(
            encode_msg(&msg),
            bytes,
            "{name}: encoding of the value differs"
        );
    }
}

/// Frames the decoder must refuse, and how.
#[derive(Debug)]
enum Refusal {
    Malformed,
    TooLarge,
    NeedsMore,
}

fn negative_cases() -> Vec<(&'static str, &'static str, Vec<u8>, Refusal)> {
    fn framed(json: &str) -> Vec<u8> {
        let mut f = (json.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(json.as_bytes());
        f
    }
    let hello = framed(r#"{"type":"hello","version":1,"client":"mybot/1.2"}"#);
    vec![
        (
            "reject_request_unknown_field",
            "request",
            framed(r#"{"type":"hello","version":1,"client":"mybot/1.2","shout":true}"#),
            Refusal::Malformed,
        ),
        (
            "reject_sign_unknown_field",
            "request",
            framed(r#"{"type":"sign","key":"k","method":"GET","path":"/","nonce":"1"}"#),
            Refusal::Malformed,
        ),
        (
            "reject_unlock_unknown_field",
            "request",
            framed(r#"{"type":"unlock","ttl_secs":60,"forever":true}"#),
            Refusal::Malformed,
        ),
        // `keys` present names at least one key: `[]` once meant every key, so a bot whose
        // list came up empty asked for the widest session (red-team round 20). `null` is not
        // "left out" either.
        (
            "reject_unlock_empty_keys",
            "request",
            framed(r#"{"type":"unlock","keys":[],"ttl_secs":600}"#),
            Refusal::Malformed,
        ),
        (
            "reject_unlock_null_keys",
            "request",
            framed(r#"{"type":"unlock","keys":null}"#),
            Refusal::Malformed,
        ),
        // Field-less messages refuse extra fields too (serde alone would ignore them).
        (
            "reject_status_unknown_field",
            "request",
            framed(r#"{"type":"status","verbose":true}"#),
            Refusal::Malformed,
        ),
        (
            "reject_request_repeated_field",
            "request",
            framed(r#"{"type":"hello","version":1,"version":2,"client":"x"}"#),
            Refusal::Malformed,
        ),
        (
            "reject_request_unknown_type",
            "request",
            framed(r#"{"type":"withdraw","key":"k"}"#),
            Refusal::Malformed,
        ),
        (
            "reject_request_missing_type",
            "request",
            framed(r#"{"version":1}"#),
            Refusal::Malformed,
        ),
        (
            "reject_request_trailing_bytes",
            "request",
            framed(r#"{"type":"status"} {"type":"lock"}"#),
            Refusal::Malformed,
        ),
        (
            "reject_response_unknown_field",
            "response",
            framed(r#"{"type":"error","code":"locked","message":"m","hint":"x"}"#),
            Refusal::Malformed,
        ),
        (
            "reject_response_unknown_code",
            "response",
            framed(r#"{"type":"error","code":"on_fire","message":"m"}"#),
            Refusal::Malformed,
        ),
        // 64 KiB + 1 announced: refused from the header alone, no body follows.
        (
            "reject_oversized_length",
            "both",
            0x0001_0001u32.to_be_bytes().to_vec(),
            Refusal::TooLarge,
        ),
        (
            "reject_truncated_body",
            "both",
            hello[..hello.len() - 1].to_vec(),
            Refusal::NeedsMore,
        ),
        (
            "reject_truncated_header",
            "both",
            hello[..3].to_vec(),
            Refusal::NeedsMore,
        ),
    ]
}

fn check_refusal<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    name: &str,
    bytes: &[u8],
    want: &Refusal,
) {
    let got = decode::<T>(bytes);
    let ok = matches!(
        (want, &got),
        (Refusal::Malformed, Err(ProtoError::Malformed(_)))
            | (Refusal::TooLarge, Err(ProtoError::FrameTooLarge { .. }))
            | (Refusal::NeedsMore, Ok(None))
    );
    assert!(ok, "{name}: wanted {want:?}, got {got:?}");
}

#[test]
fn negative_golden_frames_are_refused() {
    let dir = golden_dir();
    for (name, direction, frame, want) in negative_cases() {
        let path = dir.join(format!("{name}.frame"));
        if blessing() {
            std::fs::write(&path, &frame).expect("write golden");
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes, frame, "{name}: file differs from the case");
        if direction != "response" {
            check_refusal::<Request>(name, &bytes, &want);
        }
        if direction != "request" {
            check_refusal::<Response>(name, &bytes, &want);
        }
    }
}

/// A frame file left behind by a removed case would look like coverage it is not.
#[test]
fn every_golden_file_belongs_to_a_case() {
    let mut known: Vec<String> = cases().into_iter().map(|(n, _)| n).collect();
    known.extend(negative_cases().into_iter().map(|(n, ..)| n.to_owned()));
    for entry in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if let Some(stem) = name.strip_suffix(".frame") {
            assert!(known.iter().any(|k| k == stem), "orphan golden file {name}");
        }
    }
}

/// Pinned independently of `encode`, so a bless run cannot quietly move the basic shape.
#[test]
fn hello_frame_bytes_are_as_documented() {
    let bytes = std::fs::read(golden_dir().join("request_hello.frame")).expect("read");
    let want = b"\x00\x00\x00\x31{\"type\":\"hello\",\"version\":1,\"client\":\"mybot/1.2\"}";
    assert_eq!(bytes, want.to_vec());
}

/// `query` and `body` may be left out by a client; they mean empty.
#[test]
fn sign_without_query_and_body_decodes_as_empty() {
    let json = r#"{"type":"sign","key":"upbit-main","method":"GET","path":"/v1/accounts"}"#;
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    let (req, _) = decode::<Request>(&frame).unwrap().unwrap();
    assert_eq!(
        req,
        Request::Sign(SignRequest {
            key: "upbit-main".into(),
            method: "GET".into(),
            path: "/v1/accounts".into(),
            query: String::new(),
            body: String::new(),
            kind: Default::default()
        })
    );
}

/// The Python client in docs/protocol.md, run against a fake agent that answers with golden
/// frames: it must send the golden `hello` and `sign` frames byte for byte. Skipped where
/// `python3` is not installed (a failure in CI, which installs it).
#[test]
fn python_example_in_the_docs_sends_the_golden_frames() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/protocol.md");
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let code = &doc[start..start + doc[start..].find("```").expect("block end")];
    let Some(python3) = tapsign_skip::needs_program("python3", "python3") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tapsign-golden-py-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let child = Command::new(python3)
        .arg("-c")
        .arg(code)
        .env("TAPSIGN_SOCK", &sock)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the Python example never connected: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let golden = |name: &str| std::fs::read(golden_dir().join(format!("{name}.frame"))).unwrap();
    for (want, answer) in [
        ("request_hello", "response_hello"),
        ("request_sign_get_query", "response_signed_headers"),
    ] {
        let want = golden(want);
        let mut got = vec![0u8; want.len()];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
        stream.write_all(&golden(answer)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "python exited with {}", out.status);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("X-MBX-APIKEY"), "{printed}");
}

/// Red-team round 20: `"keys":[]` opened every key, as if `keys` were left out, so a bot whose
/// computed list came up empty asked for the widest session. Present, it names at least one
/// key; left out, it is every key; and an empty list built in Rust is sent as one, for the
/// agent to refuse, never dropped on the way.
#[test]
fn an_empty_keys_list_is_refused_not_read_as_every_key() {
    use tapsign_proto::frame::decode_body;
    let Err(ProtoError::Malformed(msg)) = decode_body::<Request>(br#"{"type":"unlock","keys":[]}"#)
    else {
        panic!("an empty keys list decoded");
    };
    assert!(msg.contains("name at least one key"), "{msg}");
    assert_eq!(
        decode_body::<Request>(br#"{"type":"unlock"}"#).unwrap(),
        Request::Unlock(UnlockRequest::default())
    );
    let empty = Request::Unlock(UnlockRequest {
        keys: Some(Vec::new()),
        ..UnlockRequest::default()
    });
    assert_eq!(
        serde_json::to_string(&empty).unwrap(),
        r#"{"type":"unlock","keys":[]}"#
    );
}
