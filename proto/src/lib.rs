//! The tapsign wire protocol, shared by the agent and every client, and the Rust client.
//!
//! # The Rust client
//!
//! A bot sends the agent the request it is about to make and gets back what to attach; the
//! API secret never enters the bot. [`client::Client`] is the blocking client,
//! [`async_client::AsyncClient`] the same over tokio (feature `tokio`, on by default). Both
//! say `hello` when they connect and check, before sending anything, that the socket is served
//! by the bot's own user.
//!
//! ```no_run
//! use tapsign_proto::client::Client;
//! use tapsign_proto::path::default_socket_path;
//! use tapsign_proto::{ErrorCode, SignRequest};
//!
//! # fn main() -> Result<(), tapsign_proto::ProtoError> {
//! // $TAPSIGN_SOCK, else $XDG_RUNTIME_DIR/tapsign/agent.sock, ... (docs/protocol.md).
//! let mut agent = Client::connect(&default_socket_path(), "mybot/1.2")?;
//! let order = SignRequest {
//!     key: "binance-main".into(),
//!     method: "POST".into(),
//!     path: "/api/v3/order".into(),
//!     query: "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=20000"
//!         .into(),
//!     ..SignRequest::default()
//! };
//! match agent.sign(order) {
//!     // Send exactly this, promptly: the agent stamped the time.
//!     Ok(signed) => println!(
//!         "{} https://api.binance.com{}?{} {:?}",
//!         signed.method, signed.path, signed.query, signed.headers
//!     ),
//!     // Match on the stable code, never on the message.
//!     Err(e) if e.code() == Some(ErrorCode::Locked) => eprintln!("stop trading: {e}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Keep one connection for the life of the bot; after an I/O error
//! ([`ProtoError::Io`], [`ProtoError::Closed`]) connect again. Calls on one connection are
//! answered in order: share a `Client` between threads behind a `Mutex`, or give each thread
//! its own. An unlock waits for a human touch, so leave its timeout unbounded
//! ([`client::Client::set_timeout`]).
//!
//! Session events (the session is ending soon, or has ended) come on a connection of their
//! own, so a bot can stop placing orders before its signatures are refused:
//!
//! ```no_run
//! use tapsign_proto::async_client::AsyncClient;
//! use tapsign_proto::path::default_socket_path;
//! use tapsign_proto::EventKind;
//!
//! # async fn watch() -> Result<(), tapsign_proto::ProtoError> {
//! let mut events = AsyncClient::connect(&default_socket_path(), "mybot/1.2")
//!     .await?
//!     .subscribe()
//!     .await?;
//! loop {
//!     let event = events.next_event().await?;
//!     match event.event {
//!         EventKind::ExpiringSoon | EventKind::BudgetLow => { /* wind down: cancel, stop */ }
//!         EventKind::Locked => { /* stop; a websocket logged in with a signature stays open: close it */ }
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! `proto/examples/bot.rs` is a whole bot that signs a Binance order and prints the request to
//! send: `cargo run -p tapsign-proto --example bot`. Bots on another host reach the agent
//! through an SSH-forwarded socket (docs/remote-bots.md); the client is the same, with
//! `TAPSIGN_SOCK` set to the forwarded path.
//!
//! # Layout
//!
//! - [`frame`]: a 4-byte big-endian length, then one JSON object of at most [`MAX_FRAME`]
//!   bytes. The length is checked before anything is allocated.
//! - [`message`]: one enum per direction, [`Request`] and [`Response`], tagged by `"type"`.
//! - [`error`]: the stable wire error codes ([`ErrorCode`]) and the error a client sees.
//! - [`client`]: a blocking client; [`async_client`] (feature `tokio`): the same over tokio.
//! - [`path`]: where the agent's socket is.
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
