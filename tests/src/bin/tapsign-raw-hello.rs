//! Test tool: connect to the socket named on the command line, say hello WITHOUT checking who
//! serves it (unlike every tapsign client), and print the agent's answer as JSON. The tests
//! use it to see the agent's own refusal of another user.

use std::os::unix::net::UnixStream;

use tapsign_proto::frame::{decode_body, read_frame, write_frame};
use tapsign_proto::{PROTOCOL_VERSION, Request, Response};

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: tapsign-raw-hello SOCKET");
        return std::process::ExitCode::from(2);
    };
    let run = || -> Result<Response, String> {
        let mut s = UnixStream::connect(&path).map_err(|e| e.to_string())?;
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            client: "raw-hello".into(),
        };
        // The agent refuses another user as soon as the connection opens, and hangs up: on a
        // loaded machine that can come before this write, which then fails (EPIPE) while the
        // answer waits unread. Read it before giving up, as the tapsign client does.
        let written = write_frame(&mut s, &hello);
        let body = match (written, read_frame(&mut s)) {
            (_, Ok(body)) => body,
            (Err(e), Err(_)) | (Ok(()), Err(e)) => return Err(e.to_string()),
        };
        decode_body(&body).map_err(|e| e.to_string())
    };
    match run() {
        Ok(resp) => {
            println!("{}", serde_json::to_string(&resp).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tapsign-raw-hello: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
