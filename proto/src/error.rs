//! Stable error codes carried on the wire, and the errors the protocol layer itself raises.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable set of error codes an agent answers with. Bots match on these; the wording of
/// the accompanying message may change between releases, the codes do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No session is open: run `tapsign unlock`.
    Locked,
    /// The session's lifetime or idle time ran out.
    Expired,
    /// The session's (or this key's) signature budget is spent.
    BudgetExhausted,
    /// The request is refused by policy (a fund-moving endpoint, or not in the key's allow rules).
    PolicyDenied,
    /// No credential of that name is in the keystore or in the open session.
    UnknownKey,
    /// The request is malformed (bad frame, bad JSON, missing field, bad value).
    BadRequest,
    /// No enrolled token can be reached: none is present, or pcscd is down.
    TokenAbsent,
    /// A token is present but it is not one enrolled in this keystore.
    WrongToken,
    /// The token asked for a touch and none came in time (or the touch was refused).
    TouchTimeout,
    /// The token refused the PIN.
    PinInvalid,
    /// The client spoke another protocol version.
    VersionMismatch,
    /// The keystore could not be read, a file in it is damaged, or a stored credential cannot
    /// sign.
    Keystore,
    /// The agent is busy (connection limit reached, or another command holds the keystore),
    /// or another program has the token open (close it); try again.
    Busy,
    /// The peer is not allowed to talk to this agent (another user).
    Forbidden,
    /// Something went wrong inside the agent; its log says more.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire (`"budget_exhausted"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Locked => "locked",
            ErrorCode::Expired => "expired",
            ErrorCode::BudgetExhausted => "budget_exhausted",
            ErrorCode::PolicyDenied => "policy_denied",
            ErrorCode::UnknownKey => "unknown_key",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TokenAbsent => "token_absent",
            ErrorCode::WrongToken => "wrong_token",
            ErrorCode::TouchTimeout => "touch_timeout",
            ErrorCode::PinInvalid => "pin_invalid",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::Keystore => "keystore",
            ErrorCode::Busy => "busy",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong between a client and the agent.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The socket failed (agent gone, connection reset, ...).
    #[error("talking to the agent failed: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more than [`crate::MAX_FRAME`] bytes.
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    /// A frame was not one valid JSON message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The peer closed the connection at a frame boundary.
    #[error("the connection was closed")]
    Closed,
    /// The agent answered with an error.
    #[error("{code}: {message}")]
    Agent { code: ErrorCode, message: String },
    /// The agent answered with a message that does not fit the request.
    #[error("unexpected answer from the agent: {0}")]
    Unexpected(String),
}

impl ProtoError {
    /// The wire code, when the agent sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ProtoError::Agent { code, .. } => Some(*code),
            _ => None,
        }
    }
}
