//! A refusing agent (busy, another user) answers and hangs up at once. The client's own write
//! may then fail (EPIPE) while the answer waits unread: the client must still report the
//! agent's code, not "broken pipe".
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::net::UnixListener;

use tapsign_proto::client::Client;
use tapsign_proto::frame::write_frame;
use tapsign_proto::{ErrorCode, Response};

#[test]
fn a_refusal_sent_before_hello_is_read_not_lost_to_a_broken_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let rounds = 200;
    let server = std::thread::spawn(move || {
        for _ in 0..rounds {
            let (mut s, _) = listener.accept().unwrap();
            let busy = Response::Error {
                code: ErrorCode::Busy,
                message: "full".into(),
            };
            write_frame(&mut s, &busy).unwrap();
            // Dropped at once, as the agent does, whether or not the client wrote yet.
        }
    });
    for round in 0..rounds {
        let err = Client::connect(&path, "t").unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Busy), "round {round}: {err}");
    }
    server.join().unwrap();
}
