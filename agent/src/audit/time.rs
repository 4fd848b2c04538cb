//! The log's timestamps are RFC 3339 UTC with milliseconds (`2026-11-23T10:00:00.000Z`),
//! written by the agent's one date formatter (`crate::clock`).

pub use crate::clock::{civil_from_days, rfc3339_utc_ms, utc_secs};
