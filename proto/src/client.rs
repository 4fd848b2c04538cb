//! A blocking client: connect, `hello`, then one request at a time (the crate's docs show a
//! whole bot).

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::frame::{decode_body, read_frame, write_frame};
use crate::{
    NotedRequest, PROTOCOL_VERSION, ProtoError, Request, Response, SessionEvent, SignRequest,
    SignedRequest, Status, UnlockRequest,
};

/// A connection to the agent.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    agent: String,
}

impl Client {
    /// Connect to the agent at `path` and say hello. `name` identifies the client in the
    /// agent's log (`"mybot/1.2"`).
    pub fn connect(path: &Path, name: &str) -> Result<Self, ProtoError> {
        Client::connect_within(path, name, None)
    }

    /// [`Client::connect`], each read and write waiting at most `wait` (`hello` included), and
    /// the rest of the calls too until [`Client::set_timeout`] changes it.
    pub fn connect_within(
        path: &Path,
        name: &str,
        wait: Option<Duration>,
    ) -> Result<Self, ProtoError> {
        let stream = match wait {
            Some(wait) => connect_waiting(path, wait)?,
            None => UnixStream::connect(path)?,
        };
        stream.set_read_timeout(wait)?;
        stream.set_write_timeout(wait)?;
        check_peer(&stream)?;
        let mut client = Client {
            stream,
            agent: String::new(),
        };
        match client.call(&Request::Hello {
            version: PROTOCOL_VERSION,
            client: name.to_owned(),
        })? {
            Response::Hello { agent, .. } => client.agent = agent,
            other => return Err(unexpected(&other)),
        }
        Ok(client)
    }

    /// The agent's self-description from `hello`.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Bound how long a call may wait for the agent (an unlock waits for a touch: leave it
    /// unbounded there, or generous).
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ProtoError> {
        self.stream.set_read_timeout(t)?;
        self.stream.set_write_timeout(t)?;
        Ok(())
    }

    /// Send one request and read its answer. An agent error becomes `ProtoError::Agent`.
    pub fn call(&mut self, req: &Request) -> Result<Response, ProtoError> {
        // An agent that refuses a connection (busy, another user) answers and closes at once;
        // our write may then fail while its answer waits unread. Read it before giving up.
        let written = write_frame(&mut self.stream, req);
        let body = match (written, read_frame(&mut self.stream)) {
            (_, Ok(body)) => body,
            (Err(e), Err(_)) | (Ok(()), Err(e)) => return Err(e),
        };
        match decode_body::<Response>(&body)? {
            Response::Error { code, message } => Err(ProtoError::Agent { code, message }),
            resp => Ok(resp),
        }
    }

    /// Whether a session is open, what it has left, the lock sources, warnings for the trader.
    /// Served while locked.
    pub fn status(&mut self) -> Result<Status, ProtoError> {
        match self.call(&Request::Status {})? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Open a session: the agent asks the token for a touch (and the PIN in `req`, where the
    /// token's policy wants one), so this waits for a human. Usually the trader runs
    /// `tapsign unlock` instead.
    pub fn unlock(&mut self, req: UnlockRequest) -> Result<Status, ProtoError> {
        match self.call(&Request::Unlock(req))? {
            Response::Unlocked(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// End the session now; its secrets are wiped. A no-op when locked.
    pub fn lock(&mut self) -> Result<(), ProtoError> {
        match self.call(&Request::Lock {})? {
            Response::Locked {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Sign what the bot is about to send. The answer is the request to send, exactly:
    /// `query` and `body` with the scheme's additions, and the headers to add. Refusals come
    /// back as [`ProtoError::Agent`] with a stable [`crate::ErrorCode`] (`locked`,
    /// `policy_denied`, ...).
    pub fn sign(&mut self, req: SignRequest) -> Result<SignedRequest, ProtoError> {
        match self.call(&Request::Sign(req))? {
            Response::Signed(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Tell the agent of the credentials a command that wrote the keystore's manifest found
    /// replaced or removed since the last check ([`Request::Noted`]).
    pub fn noted(&mut self, req: NotedRequest) -> Result<(), ProtoError> {
        match self.call(&Request::Noted(req))? {
            Response::Noted {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Client {
    /// Turn this connection into a stream of session events.
    pub fn subscribe(mut self) -> Result<Subscription, ProtoError> {
        match self.call(&Request::Subscribe {})? {
            Response::Subscribed {} => Ok(Subscription {
                stream: self.stream,
            }),
            other => Err(unexpected(&other)),
        }
    }
}

/// A subscribed connection: session events as they happen.
#[derive(Debug)]
pub struct Subscription {
    stream: UnixStream,
}

impl Subscription {
    /// Wait for the next event (bounded by `set_timeout`).
    pub fn next_event(&mut self) -> Result<SessionEvent, ProtoError> {
        match decode_body::<Response>(&read_frame(&mut self.stream)?)? {
            Response::Event(e) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }

    /// Bound how long `next_event` waits.
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ProtoError> {
        self.stream.set_read_timeout(t)?;
        Ok(())
    }
}

/// The process at the other end must run as our user: a socket another user planted (a
/// swapped folder, an odd TAPSIGN_SOCK) must not receive an unlock request and its PIN.
/// Connect to `path`, waiting at most `wait` for the agent to take the connection. A blocking
/// connect waits as long as the listen backlog is full (an agent that is stopped, or that a
/// bot floods): tried without blocking, that is `WouldBlock`, retried until `wait` is over.
pub fn connect_waiting(path: &Path, wait: Duration) -> std::io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = SocketAddrUnix::new(path)?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "the agent's listen backlog is full: it does not take connections",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn check_peer(stream: &impl std::os::fd::AsFd) -> Result<(), ProtoError> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(|e| ProtoError::Io(e.into()))?;
    let me = rustix::process::getuid();
    if cred.uid != me {
        return Err(ProtoError::Unexpected(format!(
            "the socket is served by uid {}, not by you (uid {}): it is not your agent; check TAPSIGN_SOCK and the socket folder",
            cred.uid.as_raw(),
            me.as_raw()
        )));
    }
    Ok(())
}

pub(crate) fn unexpected(resp: &Response) -> ProtoError {
    let kind = serde_json::to_value(resp)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    ProtoError::Unexpected(format!("answer of type {kind}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Red-team round 7: `tapsign lock` connected with a blocking connect, which waits for as
    /// long as the agent's listen backlog is full (a stopped agent, a bot flooding it): the
    /// locker after it (`tapsign lock; swaylock`) never ran. A waiting connect gives up.
    #[test]
    fn a_connect_to_a_full_backlog_gives_up_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // Backlog 0: one pending connection, never accepted.
        rustix::net::listen(&listener, 0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let end = loop {
                match super::connect_waiting(&p, Duration::from_millis(100)) {
                    Ok(s) if held.len() < 64 => held.push(s),
                    other => break other.map(|_| ()),
                }
            };
            let _ = tx.send(end);
        });
        let end = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("connect_waiting hung on a full backlog");
        let e = end.expect_err("64 pending connections on a backlog of 0");
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        drop(listener);
    }
}
