//! Hostile and broken clients on the real socket.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use tapsign_proto::frame::{decode_body, encode, read_frame};
use tapsign_proto::{ErrorCode, PROTOCOL_VERSION, Request, Response};
use tapsign_tests::World;

fn agent() -> World {
    let mut w = World::new();
    w.start_agent();
    w
}

fn raw(w: &World) -> UnixStream {
    let s = UnixStream::connect(&w.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn hello(s: &mut UnixStream) {
    assert!(matches!(say_hello(s), Response::Hello { .. }));
}

/// Send `hello` on `s`; the agent's answer. An agent with no free slot answers `busy` at
/// once and closes: the hello may then meet a closed socket (`EPIPE`), while the answer waits
/// to be read (a fresh-clone CI run failed on that race).
fn say_hello(s: &mut UnixStream) -> Response {
    let hello = encode(&Request::Hello {
        version: PROTOCOL_VERSION,
        client: "raw".into(),
    })
    .unwrap();
    if let Err(e) = s.write_all(&hello) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    answer(s)
}

fn answer(s: &mut UnixStream) -> Response {
    decode_body(&read_frame(s).unwrap()).unwrap()
}

fn error_code(r: Response) -> ErrorCode {
    match r {
        Response::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn oversized_length_prefix_is_refused_without_allocating_it() {
    let w = agent();
    let before = rss_kib(w.agent_pid());
    for _ in 0..8 {
        let mut s = raw(&w);
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let r = answer(&mut s);
        assert_eq!(error_code(r), ErrorCode::BadRequest);
        // And the connection is closed.
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    }
    // Eight 4 GiB frames were announced; the agent grew by far less than one of them.
    let after = rss_kib(w.agent_pid());
    assert!(
        after < before + 64 * 1024,
        "rss grew from {before} KiB to {after} KiB"
    );
    w.client().status().unwrap();
}

#[test]
fn garbage_json_gets_bad_request_and_the_connection_survives() {
    let w = agent();
    let mut s = raw(&w);
    hello(&mut s);
    for junk in [
        &b"{nope"[..],
        b"[]",
        b"{\"type\":\"fly\"}",
        b"{\"type\":\"status\",\"extra\":1}",
        b"\xff\xfe",
    ] {
        let mut frame = (junk.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(junk);
        s.write_all(&frame).unwrap();
        assert_eq!(
            error_code(answer(&mut s)),
            ErrorCode::BadRequest,
            "for {junk:?}"
        );
    }
    s.write_all(&encode(&Request::Status {}).unwrap()).unwrap();
    assert!(matches!(answer(&mut s), Response::Status(_)));
}

#[test]
fn requests_before_hello_and_other_versions_are_refused() {
    let w = agent();
    let mut s = raw(&w);
    s.write_all(&encode(&Request::Status {}).unwrap()).unwrap();
    assert_eq!(error_code(answer(&mut s)), ErrorCode::BadRequest);

    let mut s = raw(&w);
    s.write_all(
        &encode(&Request::Hello {
            version: 99,
            client: "future".into(),
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(error_code(answer(&mut s)), ErrorCode::VersionMismatch);
}

#[test]
fn a_stalled_half_frame_does_not_delay_other_clients() {
    let mut w = World::new();
    w.config("[server]\nframe_timeout = \"4s\"\n");
    w.start_agent();
    let mut staller = raw(&w);
    hello(&mut staller);
    // Announce 100 bytes, send 10, stall.
    staller.write_all(&100u32.to_be_bytes()).unwrap();
    staller.write_all(b"{\"type\":\"s").unwrap();

    let mut other = w.client();
    for _ in 0..20 {
        other.status().unwrap();
    }
    // The staller's frame is still pending: the others were served while it stalled.
    staller.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let pending =
        matches!(staller.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(
        pending,
        "the stalled connection was answered before the other client finished"
    );
    // And the agent gives up on it after the frame timeout.
    staller.set_nonblocking(false).unwrap();
    assert_eq!(error_code(answer(&mut staller)), ErrorCode::BadRequest);
}

#[test]
fn connections_over_the_limit_are_told_busy() {
    let mut w = World::new();
    w.config("[server]\nmax_connections = 2\n");
    w.start_agent();
    // Retry while busy: a slot is let go only once the agent has seen its client leave.
    let connect = || {
        let start = std::time::Instant::now();
        loop {
            match tapsign_proto::client::Client::connect(&w.sock, "t") {
                Ok(c) => return c,
                Err(e)
                    if e.code() == Some(ErrorCode::Busy)
                        && start.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    let _a = connect();
    let _b = connect();
    let mut c = raw(&w);
    assert_eq!(error_code(answer(&mut c)), ErrorCode::Busy);
    drop(_a);
    // A slot frees up when a connection closes.
    greeted_when_free(&w, "the freed slot never came back");
}

/// A connection that got past `hello`, retried while the agent answers `busy` (a connection
/// the client closed holds its slot until the agent sees it go).
fn greeted_when_free(w: &World, never: &str) -> UnixStream {
    let start = std::time::Instant::now();
    loop {
        let mut s = raw(w);
        match say_hello(&mut s) {
            Response::Hello { .. } => return s,
            r => assert_eq!(error_code(r), ErrorCode::Busy),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{never}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection on the one ordinary slot of an agent with `max_connections = 2`. A client that
/// left just before may still hold that slot until the agent sees it go, and then a new
/// connection lands on the kept-back slot, which serves one `status` and hangs up: retry until
/// a second `status` gets through.
fn hold_ordinary_slot(w: &World) -> tapsign_proto::client::Client {
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the ordinary slot was never free"
        );
        match tapsign_proto::client::Client::connect(&w.sock, "holder") {
            Ok(mut c) => {
                if c.status().is_ok() && c.status().is_ok() {
                    return c;
                }
            }
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::Busy), "{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent lets a connection's slot go before it hangs up, so a client that has seen the
/// connection close finds the slot free when it connects again at once. Before, the slot was
/// let go just after the close: on a busy machine a `lock` right after a `status` on the
/// kept-back slot could be told busy.
#[test]
fn a_slot_is_free_once_its_connection_is_seen_closed() {
    let mut w = World::new();
    w.config("[server]\nmax_connections = 2\n");
    w.start_agent();
    let _held = hold_ordinary_slot(&w);
    // One `status` on the kept-back slot, then the agent hangs up. (A client that hangs up
    // first frees the slot only once the agent has seen it go.)
    let status_then_closed = |mut s: UnixStream| {
        s.write_all(&encode(&Request::Status {}).unwrap()).unwrap();
        assert!(matches!(answer(&mut s), Response::Status(_)));
        let mut buf = [0u8; 1];
        assert_eq!(
            s.read(&mut buf).unwrap(),
            0,
            "the kept-back slot stayed open"
        );
    };
    status_then_closed(greeted_when_free(&w, "the kept-back slot was never free"));
    for round in 0..300 {
        let mut s = raw(&w);
        match say_hello(&mut s) {
            Response::Hello { .. } => {}
            r => panic!("round {round}: the kept-back slot was still taken: {r:?}"),
        }
        status_then_closed(s);
    }
}

/// A frame that is not a message, sent before `hello` or on the slot kept back for `status`
/// and `lock`, closes the connection: answered and kept open, a frame of junk every few
/// seconds held a slot for ever, and the kept-back slot with it (so `lock` had to fall back
/// to a signal).
#[test]
fn junk_before_hello_or_on_the_kept_back_slot_closes_the_connection() {
    let mut w = World::new();
    w.config("[server]\nmax_connections = 2\n");
    w.start_agent();
    let junk = |s: &mut UnixStream| {
        s.write_all(&[0, 0, 0, 1, b'x']).unwrap();
        assert_eq!(error_code(answer(s)), ErrorCode::BadRequest);
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0, "the connection stayed open");
    };
    // Before hello, on an ordinary slot.
    junk(&mut raw(&w));
    let _held = hold_ordinary_slot(&w);
    // The kept-back slot, after its hello.
    let mut control = greeted_when_free(&w, "the kept-back slot was never free");
    junk(&mut control);
    // It is free again: `status` gets through on it.
    let mut s = greeted_when_free(&w, "the kept-back slot never came back");
    s.write_all(&encode(&Request::Status {}).unwrap()).unwrap();
    assert!(matches!(answer(&mut s), Response::Status(_)));
}

/// On the kept-back slot a second `hello` closes the connection: answered, it restarted the
/// frame timeout, and a bot sending `hello` every few seconds kept `tapsign status` out for as
/// long as it liked (red-team round 6).
#[test]
fn a_repeated_hello_on_the_kept_back_slot_closes_the_connection() {
    let mut w = World::new();
    w.config("[server]\nmax_connections = 2\n");
    w.start_agent();
    let _held = hold_ordinary_slot(&w);
    let mut control = greeted_when_free(&w, "the kept-back slot was never free");
    let again = encode(&Request::Hello {
        version: PROTOCOL_VERSION,
        client: "hog".into(),
    })
    .unwrap();
    control.write_all(&again).unwrap();
    assert_eq!(error_code(answer(&mut control)), ErrorCode::Busy);
    let mut buf = [0u8; 1];
    assert_eq!(control.read(&mut buf).unwrap(), 0, "the slot stayed held");
    let mut s = greeted_when_free(&w, "the kept-back slot never came back");
    s.write_all(&encode(&Request::Status {}).unwrap()).unwrap();
    assert!(matches!(answer(&mut s), Response::Status(_)));
}

/// Every request gets one answer, and no answer exceeds a frame. A request whose signed form
/// would not fit is refused before it is signed: not counted, not on record as a signature
/// (it was both, then never sent). An error quoting back a huge name is replaced by one that
/// says the answer would not fit.
#[test]
fn every_request_gets_one_answer_that_fits_in_a_frame() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock", "--max-signatures", "5"], "").ok();
    let mut s = raw(&w);
    hello(&mut s);
    let order = |pad: usize| {
        Request::Sign(tapsign_proto::SignRequest {
            key: "b".into(),
            method: "POST".into(),
            path: "/api/v3/order".into(),
            query: format!(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&newClientOrderId={}",
                "a".repeat(pad)
            ),
            ..Default::default()
        })
    };
    // The largest order a request frame can carry.
    let pad = tapsign_proto::frame::MAX_FRAME + 4 - encode(&order(0)).unwrap().len();
    s.write_all(&encode(&order(pad)).unwrap()).unwrap();
    match answer(&mut s) {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::BadRequest, "{message}");
            assert!(message.contains("too large to sign"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A name of tens of kilobytes that its error would quote back, escaped threefold.
    let mut huge = order(0);
    if let Request::Sign(r) = &mut huge {
        r.key = "\u{200b}".repeat(20_000);
    }
    s.write_all(&encode(&huge).unwrap()).unwrap();
    match answer(&mut s) {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::BadRequest, "{message}");
            assert!(message.contains("would not fit"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The connection is still in step, and nothing was counted or recorded as signed.
    s.write_all(&encode(&order(10)).unwrap()).unwrap();
    assert!(matches!(answer(&mut s), Response::Signed(_)));
    let status = w.status();
    assert_eq!(status["session"]["signatures_made"], 1, "{status}");
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    let signed = log.matches("\"type\":\"sign\"").count();
    assert_eq!(signed, 1, "{log}");
}

/// Red-team round 20: `"keys":[]` opened every key, exactly as a left-out `keys` does, so a bot
/// whose computed list of keys came up empty was granted the widest session. It is refused,
/// with what to do, and opens nothing; left out, `keys` still means every key.
#[test]
fn an_unlock_naming_an_empty_list_of_keys_is_refused_and_opens_nothing() {
    let mut w = World::new();
    w.setup_key("a", "binance", "ak", "sk");
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    let mut s = raw(&w);
    hello(&mut s);
    let body = br#"{"type":"unlock","keys":[],"ttl_secs":600}"#;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    s.write_all(&frame).unwrap();
    match answer(&mut s) {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::BadRequest, "{message}");
            assert!(message.contains("name at least one key"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(w.status()["state"], "locked");
    // Built in Rust, an empty list is sent as one and refused the same way.
    let empty = tapsign_proto::UnlockRequest {
        keys: Some(Vec::new()),
        ..Default::default()
    };
    let refused = w.client().unlock(empty).unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest), "{refused}");
    assert_eq!(w.status()["state"], "locked");
    let opened = w
        .client()
        .unlock(tapsign_proto::UnlockRequest::default())
        .unwrap();
    assert_eq!(opened.session.unwrap().keys.len(), 2);
}

/// Red-team round 23: a client that pipelines requests and never reads the answers held its
/// slot for ever, past the idle timeout, in the agent's write of an answer. An answer gets as
/// long as the connection may idle; then the connection is closed and its slot let go.
#[test]
fn a_client_that_never_reads_its_answers_lets_its_slot_go() {
    let mut w = World::new();
    w.config("[server]\nmax_connections = 2\nidle_connection_timeout = \"2s\"\n");
    w.start_agent();
    let mut staller = greeted_when_free(&w, "no slot for the staller");
    let frame = encode(&Request::Status {}).unwrap();
    std::thread::spawn(move || {
        for _ in 0..100_000 {
            if staller.write_all(&frame).is_err() {
                return;
            }
        }
        // Kept open, never read.
        std::thread::sleep(Duration::from_secs(60));
    });
    // Give the staller time to fill both socket buffers and the agent's write to wait.
    std::thread::sleep(Duration::from_secs(1));
    let mut c = hold_ordinary_slot(&w);
    c.status().unwrap();
}

/// Red-team round 24: an unlock may name the enrolled token to use (`token`), so that its PIN
/// reaches that token alone; an id no enrolled token has opens nothing.
#[test]
fn an_unlock_names_its_token_by_id() {
    let mut w = World::new();
    w.setup_key("a", "binance", "ak", "sk");
    w.start_agent();
    let id = w.status()["tokens"][0]["id"].as_str().unwrap().to_owned();
    let stranger = tapsign_proto::UnlockRequest {
        token: Some("piv-1-r1-00000000".into()),
        ..Default::default()
    };
    let refused = w.client().unlock(stranger).unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest), "{refused}");
    assert!(
        refused.to_string().contains("no enrolled token"),
        "{refused}"
    );
    assert_eq!(w.status()["state"], "locked");
    let named = tapsign_proto::UnlockRequest {
        token: Some(id),
        ..Default::default()
    };
    let opened = w.client().unlock(named).unwrap();
    assert_eq!(opened.session.unwrap().keys.len(), 1);
}
