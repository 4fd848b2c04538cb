//! What can go wrong talking to a FIDO2 authenticator, below the level of "which token".
//! [`super::session`] turns these into [`crate::token::TokenError`]s that name the token and
//! say what to do.

/// CTAP status codes tapsign reacts to (CTAP 2.1 §8.2.1).
pub mod status {
    pub const INVALID_PARAMETER: u8 = 0x02;
    pub const INVALID_OPTION: u8 = 0x2C;
    pub const UNSUPPORTED_OPTION: u8 = 0x2B;
    pub const UNSUPPORTED_EXTENSION: u8 = 0x16;
    pub const OPERATION_DENIED: u8 = 0x27;
    pub const KEEPALIVE_CANCEL: u8 = 0x2D;
    pub const NO_CREDENTIALS: u8 = 0x2E;
    pub const USER_ACTION_TIMEOUT: u8 = 0x2F;
    pub const PIN_INVALID: u8 = 0x31;
    pub const PIN_BLOCKED: u8 = 0x32;
    pub const PIN_AUTH_INVALID: u8 = 0x33;
    pub const PIN_AUTH_BLOCKED: u8 = 0x34;
    pub const PIN_NOT_SET: u8 = 0x35;
    /// PIN_REQUIRED in CTAP 2.0, PUAT_REQUIRED in 2.1.
    pub const PIN_REQUIRED: u8 = 0x36;
    pub const ACTION_TIMEOUT: u8 = 0x3A;
    pub const UP_REQUIRED: u8 = 0x3B;
    pub const UNAUTHORIZED_PERMISSION: u8 = 0x40;
}

/// A failure of one exchange with an authenticator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fido2Error {
    /// The authenticator answered with a CTAP error status.
    #[error("the authenticator answered {}", status_name(*.0))]
    Status(u8),
    /// The device left (card pulled, USB key unplugged) during the exchange.
    #[error("the token was removed")]
    Removed,
    /// The transport itself is down (pcscd not running, hidapi unusable): what to do.
    #[error("{0}")]
    Unavailable(String),
    /// Another program holds the card exclusively.
    #[error("the card is held exclusively by another program")]
    InUse,
    /// The transport failed (PC/SC, HID) for another reason.
    #[error("{0}")]
    Transport(String),
    /// The answer does not parse or breaks the protocol.
    #[error("the authenticator's answer is malformed: {0}")]
    Malformed(String),
    /// tapsign stopped waiting (the authenticator never finished).
    #[error("the authenticator did not finish within {0} s")]
    Timeout(u64),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl Fido2Error {
    pub fn malformed(what: impl Into<String>) -> Self {
        Fido2Error::Malformed(what.into())
    }
}

/// A status code with its CTAP name, for messages and logs.
pub fn status_name(code: u8) -> String {
    let name = match code {
        0x01 => "CTAP1_ERR_INVALID_COMMAND",
        0x02 => "CTAP1_ERR_INVALID_PARAMETER",
        0x03 => "CTAP1_ERR_INVALID_LENGTH",
        0x11 => "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
        0x12 => "CTAP2_ERR_INVALID_CBOR",
        0x14 => "CTAP2_ERR_MISSING_PARAMETER",
        0x16 => "CTAP2_ERR_UNSUPPORTED_EXTENSION",
        0x19 => "CTAP2_ERR_CREDENTIAL_EXCLUDED",
        0x26 => "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
        0x27 => "CTAP2_ERR_OPERATION_DENIED",
        0x28 => "CTAP2_ERR_KEY_STORE_FULL",
        0x2B => "CTAP2_ERR_UNSUPPORTED_OPTION",
        0x2C => "CTAP2_ERR_INVALID_OPTION",
        0x2D => "CTAP2_ERR_KEEPALIVE_CANCEL",
        0x2E => "CTAP2_ERR_NO_CREDENTIALS",
        0x2F => "CTAP2_ERR_USER_ACTION_TIMEOUT",
        0x30 => "CTAP2_ERR_NOT_ALLOWED",
        0x31 => "CTAP2_ERR_PIN_INVALID",
        0x32 => "CTAP2_ERR_PIN_BLOCKED",
        0x33 => "CTAP2_ERR_PIN_AUTH_INVALID",
        0x34 => "CTAP2_ERR_PIN_AUTH_BLOCKED",
        0x35 => "CTAP2_ERR_PIN_NOT_SET",
        0x36 => "CTAP2_ERR_PUAT_REQUIRED",
        0x37 => "CTAP2_ERR_PIN_POLICY_VIOLATION",
        0x39 => "CTAP2_ERR_REQUEST_TOO_LARGE",
        0x3A => "CTAP2_ERR_ACTION_TIMEOUT",
        0x3B => "CTAP2_ERR_UP_REQUIRED",
        0x3C => "CTAP2_ERR_UV_BLOCKED",
        0x3D => "CTAP2_ERR_INTEGRITY_FAILURE",
        0x3E => "CTAP2_ERR_INVALID_SUBCOMMAND",
        0x3F => "CTAP2_ERR_UV_INVALID",
        0x40 => "CTAP2_ERR_UNAUTHORIZED_PERMISSION",
        0x7F => "CTAP1_ERR_OTHER",
        _ => "an unknown error",
    };
    format!("{code:#04x} ({name})")
}
