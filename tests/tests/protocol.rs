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
    s.write_all(
        &encode(&Request::Hello {
            version: PROTOCOL_VERSION,
            client: "raw".into(),
        })
        .unwrap(),
    )
    .unwrap();
    assert!(matches!(answer(s), Response::Hello { .. }));
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
    // The harness's readiness probe may still hold a slot for a moment: retry while busy.
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
    let start = std::time::Instant::now();
    loop {
        let mut d = raw(&w);
        d.write_all(
            &encode(&Request::Hello {
                version: PROTOCOL_VERSION,
                client: "d".into(),
            })
            .unwrap(),
        )
        .unwrap();
        if matches!(answer(&mut d), Response::Hello { .. }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the freed slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
