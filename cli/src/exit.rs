//! Exit codes and the one error type of the CLI.

use tapsign_proto::{ErrorCode, ProtoError};

/// The documented exit codes (docs/cli.md). Scripts rely on them.
pub mod exit_codes {
    /// Something else went wrong; the message says what.
    pub const ERROR: u8 = 1;
    /// The command line is wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The agent is not running or cannot be reached.
    pub const NO_AGENT: u8 = 3;
    /// No usable session: locked, expired, or the budget is spent.
    pub const SESSION: u8 = 4;
    /// The request was refused: policy, a bad request, an unknown key.
    pub const REFUSED: u8 = 5;
    /// A token problem: absent, wrong token, no touch, PIN refused.
    pub const TOKEN: u8 = 6;
    /// A keystore or audit-log file is damaged or missing.
    pub const DAMAGED: u8 = 7;
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
    /// The agent's error code, when the agent answered with an error.
    pub code: Option<ErrorCode>,
    /// Nobody reads stdout any more (`tapsign status | head -1`): stop, say nothing, exit 0.
    pub reader_gone: bool,
}

impl Failure {
    pub fn new(exit: u8, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
            code: None,
            reader_gone: false,
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Failure::new(exit_codes::ERROR, message)
    }
    /// The reader of stdout has gone.
    pub fn reader_gone() -> Self {
        Failure {
            reader_gone: true,
            ..Failure::new(0, "")
        }
    }
}

/// The exit code for an agent error code.
pub fn exit_for(code: ErrorCode) -> u8 {
    use exit_codes::*;
    match code {
        ErrorCode::Locked | ErrorCode::Expired | ErrorCode::BudgetExhausted => SESSION,
        ErrorCode::PolicyDenied | ErrorCode::BadRequest | ErrorCode::UnknownKey => REFUSED,
        ErrorCode::TokenAbsent
        | ErrorCode::WrongToken
        | ErrorCode::TouchTimeout
        | ErrorCode::PinInvalid => TOKEN,
        ErrorCode::Keystore => DAMAGED,
        ErrorCode::VersionMismatch
        | ErrorCode::Busy
        | ErrorCode::Forbidden
        | ErrorCode::Internal => ERROR,
    }
}

impl From<ProtoError> for Failure {
    fn from(e: ProtoError) -> Self {
        match e {
            ProtoError::Agent { code, message } => Failure {
                code: Some(code),
                ..Failure::new(exit_for(code), format!("{message} [{code}]"))
            },
            ProtoError::Io(io) => Failure::new(
                exit_codes::NO_AGENT,
                format!("lost the connection to the agent: {io}"),
            ),
            other => Failure::error(other.to_string()),
        }
    }
}
