//! The same client over tokio, for async bots: [`AsyncClient`] has the methods of
//! [`crate::client::Client`], as `async fn`s.

use std::path::Path;
use tokio::net::UnixStream;

use crate::client::unexpected;
use crate::frame::{decode_body, read_frame_async, write_frame_async};
use crate::{
    PROTOCOL_VERSION, ProtoError, Request, Response, SessionEvent, SignRequest, SignedRequest,
    Status, UnlockRequest,
};

/// An async connection to the agent.
#[derive(Debug)]
pub struct AsyncClient {
    stream: UnixStream,
    agent: String,
}

impl AsyncClient {
    /// Connect to the agent at `path` and say hello.
    pub async fn connect(path: &Path, name: &str) -> Result<Self, ProtoError> {
        let stream = UnixStream::connect(path).await?;
        crate::client::check_peer(&stream)?;
        let mut client = AsyncClient {
            stream,
            agent: String::new(),
        };
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            client: name.to_owned(),
        };
        match client.call(&hello).await? {
            Response::Hello { agent, .. } => client.agent = agent,
            other => return Err(unexpected(&other)),
        }
        Ok(client)
    }

    /// The agent's self-description from `hello`.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Send one request and read its answer. An agent error becomes `ProtoError::Agent`.
    pub async fn call(&mut self, req: &Request) -> Result<Response, ProtoError> {
        // As in the blocking client: a refusing agent's answer may wait behind a failed write.
        let written = write_frame_async(&mut self.stream, req).await;
        let body = match (written, read_frame_async(&mut self.stream).await) {
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
    pub async fn status(&mut self) -> Result<Status, ProtoError> {
        match self.call(&Request::Status {}).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Open a session: the agent asks the token for a touch (and the PIN in `req`, where the
    /// token's policy wants one), so this waits for a human. Usually the trader runs
    /// `tapsign unlock` instead.
    pub async fn unlock(&mut self, req: UnlockRequest) -> Result<Status, ProtoError> {
        match self.call(&Request::Unlock(req)).await? {
            Response::Unlocked(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// End the session now; its secrets are wiped. A no-op when locked.
    pub async fn lock(&mut self) -> Result<(), ProtoError> {
        match self.call(&Request::Lock {}).await? {
            Response::Locked {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Sign what the bot is about to send. The answer is the request to send, exactly:
    /// `query` and `body` with the scheme's additions, and the headers to add. Refusals come
    /// back as [`ProtoError::Agent`] with a stable [`crate::ErrorCode`] (`locked`,
    /// `policy_denied`, ...).
    pub async fn sign(&mut self, req: SignRequest) -> Result<SignedRequest, ProtoError> {
        match self.call(&Request::Sign(req)).await? {
            Response::Signed(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Turn this connection into a stream of session events.
    pub async fn subscribe(mut self) -> Result<AsyncSubscription, ProtoError> {
        match self.call(&Request::Subscribe {}).await? {
            Response::Subscribed {} => Ok(AsyncSubscription {
                stream: self.stream,
            }),
            other => Err(unexpected(&other)),
        }
    }
}

/// A subscribed connection: session events as they happen.
#[derive(Debug)]
pub struct AsyncSubscription {
    stream: UnixStream,
}

impl AsyncSubscription {
    /// Wait for the next event.
    pub async fn next_event(&mut self) -> Result<SessionEvent, ProtoError> {
        match decode_body::<Response>(&read_frame_async(&mut self.stream).await?)? {
            Response::Event(e) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }
}
