//! The tapsign agent, as a library the `tapsign` binary and the tests drive.
//!
//! Layout, from the edges in:
//! - [`server`]: the accept loop on the Unix socket: peer-uid check, frame cap, connection
//!   limit, read timeout, shutdown.
//! - [`agent`]: shared state (session, keystore, audit log) and the handling of each request.
//! - [`session`]: the pure state machine, Locked / Unlocked with deadlines and budgets; time is
//!   passed in.
//! - [`policy`]: refuses fund-moving endpoints.
//! - [`sign`]: one module per exchange scheme, pure functions of (secret, request, stamp).
//! - [`token`]: the [`token::Token`] trait and the test-only soft token.
//! - [`keystore`]: vault key, keyslots, sealed credentials, atomic writes.
//! - [`audit`]: the append-only, hash-chained log of every decision, and the sink that owns
//!   it in the agent (a writer thread; syncs in the background or per signature).
//! - [`nonces`]: Kraken's ever-increasing nonces, reserved on disk in blocks.
//! - [`locksource`]: screen lock and suspend on D-Bus (logind, screensavers).
//! - [`notify`]: desktop notifications when a session opens or ends.
//! - [`clock`]: the boot-time clock (suspended time counts).
//! - [`claim`]: one agent per home, a `flock` on its folders for as long as the agent runs.
//! - [`config`], [`paths`]: where things live and the session defaults; [`disk`]: the one
//!   check of who else can reach a file or folder, and the one atomic write.
//! - [`error`]: [`error::AgentError`], everything a request can fail with, and its one
//!   mapping to the wire's error codes.
//! - [`systemd`]: socket activation and readiness notification, without libsystemd.
//! - [`worker`]: blocking work (a touch, `status`) on a thread of its own, a refused thread an
//!   error rather than a panic.
//! - [`watchdog`]: threads that notice what no signal reports (a stopped agent, a swapped
//!   socket: [`sockwatch`] watches its path).
//! - [`say`]: the agent's own log lines, to stderr, never waiting on a reader that stopped.
//! - [`harden`]: no core dumps, not dumpable, locked memory. It and [`systemd`] (taking over
//!   fd 3, editing the environment at start) hold the only unsafe code.

#[macro_use]
pub mod say;

pub mod agent;
pub mod audit;
pub mod claim;
pub mod clock;
pub mod config;
pub mod credential;
pub mod disk;
pub mod error;
pub mod harden;
pub mod keystore;
pub mod locksource;
pub mod nonces;
pub mod notify;
pub mod paths;
pub mod policy;
pub mod removal;
pub mod secret;
pub mod server;
pub mod session;
pub mod sign;
mod sockwatch;
pub mod systemd;
pub mod token;
mod unlocker;
pub mod watchdog;
pub mod worker;
