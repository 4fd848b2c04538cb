//! The tapsign wire protocol, shared by the agent and every client.
//!
//! Layout:
//! - [`frame`]: a 4-byte big-endian length, then one JSON object of at most [`MAX_FRAME`]
//!   bytes. The length is checked before anything is allocated.
//! - [`message`]: one enum per direction, [`Request`] and [`Response`], tagged by `"type"`.
//! - [`error`]: the stable wire error codes ([`ErrorCode`]) and the error a client sees.
//! - [`client`]: a blocking client; [`async_client`] (feature `tokio`): the same over tokio.
//!
//! The protocol is documented for bot authors in `docs/protocol.md`.

pub mod client;
pub mod error;
pub mod frame;
pub mod message;
pub mod path;

#[cfg(feature = "tokio")]
pub mod async_client;

pub use error::{ErrorCode, ProtoError};
pub use frame::MAX_FRAME;
pub use message::*;

/// The protocol version spoken by this build. A `hello` with another version is answered
/// with `version_mismatch`.
pub const PROTOCOL_VERSION: u32 = 1;
