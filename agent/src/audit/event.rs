//! What the audit log records: one [`AuditEvent`] per decision.
//!
//! The events have no field that could hold secret material: no API key, secret, signature,
//! JWT or PIN, and not even a sign request's query or body (an order's size and price are the
//! trader's business, and a careless bot may put a key in them). A sign is recorded as key
//! name, method and path. Build sign and refusal events with [`AuditEvent::sign`] and
//! [`AuditEvent::refusal`], which take the request and keep only what may be logged.

use std::fmt;

use serde::{Deserialize, Serialize};
use tapsign_proto::{ErrorCode, SignRequest};

/// The process on the other end of the socket, as the agent learned it from the kernel
/// (`SO_PEERCRED` pid, `/proc/<pid>/exe`). `exe` is empty when it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub pid: u32,
    pub exe: String,
}

/// One decision of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditEvent {
    /// The agent started (`version` is the agent's, `pid` its own).
    AgentStart { version: String, pid: u32 },
    /// The agent is stopping (`"signal SIGTERM"`, `"shutdown"`, ...).
    AgentStop { reason: String },
    /// A session opened.
    Unlock {
        /// The token that was touched, as the keystore names it.
        token: String,
        /// The credentials the session holds.
        keys: Vec<String>,
        ttl_secs: u64,
        idle_secs: u64,
        /// The session-wide signature budget.
        max_signatures: u64,
    },
    /// An unlock was refused or failed (`touch_timeout`, `wrong_token`, `pin_invalid`, ...).
    UnlockRefused { code: ErrorCode, message: String },
    /// A session ended (`"lock command"`, `"expired"`, `"idle"`, `"budget spent"`,
    /// `"signal SIGTERM"`, `"screen locked"`, `"token removed"`, ...).
    Lock { reason: String },
    /// A request was signed.
    Sign {
        key: String,
        method: String,
        path: String,
        client: Peer,
    },
    /// A sign request was refused (`policy_denied`, `locked`, `budget_exhausted`, ...).
    Refusal {
        key: String,
        method: String,
        path: String,
        code: ErrorCode,
        reason: String,
        client: Peer,
    },
}

impl AuditEvent {
    /// The event for a request that was signed: key, method and path only.
    pub fn sign(req: &SignRequest, client: &Peer) -> Self {
        AuditEvent::Sign {
            key: req.key.clone(),
            method: req.method.clone(),
            path: loggable_path(&req.path).to_owned(),
            client: client.clone(),
        }
    }

    /// The event for a sign request that was refused.
    pub fn refusal(req: &SignRequest, code: ErrorCode, reason: &str, client: &Peer) -> Self {
        AuditEvent::Refusal {
            key: req.key.clone(),
            method: req.method.clone(),
            path: loggable_path(&req.path).to_owned(),
            code,
            reason: reason.to_owned(),
            client: client.clone(),
        }
    }
}

/// The path up to any `?` or `#`. The protocol says the query goes in its own field, but a bot
/// that glued it onto the path must not get it logged that way.
pub fn loggable_path(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or_default()
}

/// Bot-supplied text written to a terminal by `tapsign audit`: control characters (a newline
/// forging a line, an escape sequence repainting the screen) are shown escaped.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exe = if self.exe.is_empty() { "?" } else { &self.exe };
        write!(f, "pid {} ({})", self.pid, Shown(exe))
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditEvent::AgentStart { version, pid } => {
                write!(f, "agent start {} pid {pid}", Shown(version))
            }
            AuditEvent::AgentStop { reason } => write!(f, "agent stop ({})", Shown(reason)),
            AuditEvent::Unlock {
                token,
                keys,
                ttl_secs,
                idle_secs,
                max_signatures,
            } => {
                write!(f, "unlock by {}: keys ", Shown(token))?;
                for (i, k) in keys.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", Shown(k))?;
                }
                write!(
                    f,
                    "; ttl {ttl_secs}s idle {idle_secs}s budget {max_signatures}"
                )
            }
            AuditEvent::UnlockRefused { code, message } => {
                write!(f, "unlock refused {code}: {}", Shown(message))
            }
            AuditEvent::Lock { reason } => write!(f, "lock ({})", Shown(reason)),
            AuditEvent::Sign {
                key,
                method,
                path,
                client,
            } => {
                write!(
                    f,
                    "sign {} {} {} by {client}",
                    Shown(key),
                    Shown(method),
                    Shown(path)
                )
            }
            AuditEvent::Refusal {
                key,
                method,
                path,
                code,
                reason,
                client,
            } => write!(
                f,
                "refuse {} {} {} {code}: {} by {client}",
                Shown(key),
                Shown(method),
                Shown(path),
                Shown(reason)
            ),
        }
    }
}
