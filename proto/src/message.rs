//! The messages: one enum per direction, each tagged by `"type"`.
//!
//! Unknown fields are rejected (`deny_unknown_fields`), as OpenSSH's agent rejects an unknown
//! constraint: a client that thinks it asked for something the agent does not know about must
//! hear so, not have it silently ignored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroize;

use crate::ErrorCode;

/// A client's request.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First message on every connection.
    Hello { version: u32, client: String },
    /// What is the agent doing? Served while locked. (An empty struct, not a unit variant:
    /// serde's `deny_unknown_fields` ignores unit variants, and an unknown field must be refused.)
    Status {},
    /// Open a session: asks the token for a touch. Served while locked.
    Unlock(UnlockRequest),
    /// End the session now. Served while locked (a no-op then).
    Lock {},
    /// Sign a request with a credential of the open session.
    Sign(SignRequest),
    /// Turn this connection into a stream of session events (`event` frames), so a bot can wind
    /// down before the session ends. Served while locked. Sign on another connection.
    Subscribe {},
    /// Sent by `tapsign token add|remove` and `keystore rotate` after they wrote the keystore's
    /// manifest: the credentials they found replaced or removed since the keystore's last
    /// check, which no later unlock tells of. The agent keeps them in `status` for a day, as it
    /// keeps what an unlock's check finds, and names them before the next touch. Served while
    /// locked.
    Noted(NotedRequest),
}

/// Parameters of `noted`: names only (the agent words the notes itself, naming the program
/// that told it), at most [`NOTED_MAX`] of each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct NotedRequest {
    /// Credentials that now hold another version than the one the last check recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
    /// Credentials removed since that check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// Most names of each list a `noted` request carries (the agent takes no more).
pub const NOTED_MAX: usize = 8;

/// Parameters of `unlock`. Every bound is optional; the agent's configured defaults fill the
/// gaps and its configured maximums cap them.
#[derive(Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// Credentials to open; `None` (the field left out) means every one. A list, when
    /// present, names at least one: an empty list is refused ([`EMPTY_KEYS`]), and so is
    /// `null`. Red-team round 20: `[]` meant every key, so a bot that worked out its list and
    /// came up with none asked for the widest session instead of a narrow one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "named_keys"
    )]
    pub keys: Option<Vec<String>>,
    /// Absolute lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Idle timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
    /// Session-wide signature budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_signatures: Option<u64>,
    /// The enrolled token to open the keystore with, by id (`tapsign token list`, `status`'s
    /// `tokens`): only it is tried, and the `pin` goes to it alone. Left out: the first
    /// token present, PIV then FIDO2 then soft. Red-team round 24: one PIN for "FIDO2 key X
    /// or YubiKey N" went to the YubiKey, and the FIDO2 key could not be chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token's PIN, where its policy wants one. Never logged, never echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    /// Extend the open session instead of opening a new one: a touch renews its lifetime,
    /// idle time and budget and keeps its keys. Refused when no session is open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extend: bool,
}

/// Why an `unlock` whose `keys` is an empty list is refused.
pub const EMPTY_KEYS: &str =
    "\"keys\" is an empty list: name at least one key, or leave \"keys\" out to open every key";

/// `keys`, when present: a list of at least one name. (Absent, serde's `default` gives `None`
/// without calling this; `null` is refused as "expected a sequence", not read as absent.)
fn named_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let keys = Vec::<String>::deserialize(d)?;
    if keys.is_empty() {
        return Err(serde::de::Error::custom(EMPTY_KEYS));
    }
    Ok(Some(keys))
}

impl std::fmt::Debug for UnlockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockRequest")
            .field("keys", &self.keys)
            .field("ttl_secs", &self.ttl_secs)
            .field("idle_secs", &self.idle_secs)
            .field("max_signatures", &self.max_signatures)
            .field("token", &self.token)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("extend", &self.extend)
            .finish()
    }
}

/// A PIN on its way to the agent. No `Debug`, no `Clone`; zeroized on drop.
#[derive(Deserialize, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
#[serde(transparent)]
pub struct Pin(String);

/// Written by hand, not derived, to mark the one place a PIN is ever serialized: the `unlock`
/// request on the agent's private socket. Nothing else that serializes (status, audit, logs)
/// holds a `Pin`.
impl Serialize for Pin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl Pin {
    pub fn new(pin: String) -> Self {
        Pin(pin)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What the bot is about to send. The agent signs these bytes as they are and never
/// re-serializes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The credential's name in the keystore.
    pub key: String,
    /// HTTP method, upper case (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`).
    pub method: String,
    /// Request path, starting with `/` (`/api/v3/order`), without query.
    pub path: String,
    /// Query string without the leading `?`, exactly as it will be sent.
    #[serde(default)]
    pub query: String,
    /// Body exactly as it will be sent (empty for none).
    #[serde(default)]
    pub body: String,
    /// What to sign: an HTTP request (the default, omitted from the frame) or a websocket
    /// login message. Omitting the default keeps frames of older clients byte-identical.
    #[serde(default, skip_serializing_if = "SignKind::is_rest")]
    pub kind: SignKind,
}

/// The kind of signature a [`SignRequest`] asks for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignKind {
    /// Sign the HTTP request described by method, path, query and body.
    #[default]
    Rest,
    /// Make the exchange's websocket login message (Binance `session.logon`, Bybit `auth`,
    /// OKX `login`). Method is `GET`, path the websocket path, query and body empty; the
    /// signed message comes back as the body of the answer.
    WsLogin,
}

impl SignKind {
    /// For `skip_serializing_if`: the REST kind is the default and is left out of frames.
    pub fn is_rest(&self) -> bool {
        *self == SignKind::Rest
    }
}

/// The agent's answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Hello {
        version: u32,
        agent: String,
    },
    Status(Status),
    Unlocked(Status),
    Locked {},
    Signed(SignedRequest),
    /// The answer to `subscribe`; `event` frames follow.
    Subscribed {},
    /// The answer to `noted`: the agent keeps them.
    Noted {},
    /// Something happened to the session (only on a subscribed connection).
    Event(SessionEvent),
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// A session event, pushed to subscribed connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionEvent {
    pub event: EventKind,
    /// A sentence for humans ("session ends in 5m", "locked: screen locked").
    pub message: String,
    /// Why the session ended (`locked` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The code a `sign` now gets (`locked` only): `locked`, `expired` or `budget_exhausted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_left: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A session opened.
    Unlocked,
    /// The open session was extended with a touch.
    Extended,
    /// The lifetime ends soon.
    ExpiringSoon,
    /// The signature budget is nearly spent.
    BudgetLow,
    /// The session ended.
    Locked,
}

/// The request to send, with what the scheme added. `query` and `body` are the client's
/// bytes with the scheme's additions appended in the order the exchange signs them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub headers: BTreeMap<String, String>,
}

/// What `status` reports. No secret material, ever.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// `"locked"` or `"unlocked"`.
    pub state: SessionState,
    /// Agent version.
    pub agent: String,
    /// Why the last session ended, when locked after one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_reason: Option<String>,
    /// Open session details (absent while locked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionStatus>,
    /// Enrolled tokens, as the keystore names them.
    #[serde(default)]
    pub tokens: Vec<TokenInfo>,
    /// Warnings the trader should see (an insecure soft token, a damaged keystore file, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Sources that lock the agent (signals, `tapsign lock`, ...), and whether each is live.
    #[serde(default)]
    pub lock_sources: Vec<LockSource>,
    /// Keys whose policy in config.toml differs from their exchange's trading profile: what
    /// each widens or narrows (`allow POST /x (a, b)`, `only GET /y`, `ws_login`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_policies: Vec<KeyPolicyInfo>,
    /// Where the audit log's hash chain ends: keep a copy elsewhere and check the log against
    /// it later (`tapsign audit verify --head SEQ:HASH`). Absent while the log cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<AuditHead>,
    /// The keystore manifest this agent last verified (at an unlock). Absent before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<KeystoreState>,
    /// The credentials replaced or removed in the last day, by name, as the agent's checks
    /// noted them (`warnings` says when and by what, first): what `tapsign unlock` names before
    /// the touch. At most [`CHANGED_KEYS_SHOWN`]; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_keys: Vec<String>,
}

/// Most names [`Status::changed_keys`] lists.
pub const CHANGED_KEYS_SHOWN: usize = 32;

/// A key's changes to its trading profile, as `status` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicyInfo {
    pub key: String,
    pub rules: Vec<String>,
}

/// The head of the audit log's hash chain: the last line's `seq` and the lowercase hex
/// SHA-256 of its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

/// The keystore as the agent last verified it, with the vault key: `tapsign key add` refuses
/// to seal to any other.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct KeystoreState {
    /// The manifest's generation.
    pub generation: u64,
    /// The vault public key the manifest pins, SEC1 compressed, hex.
    pub vault_key: String,
    /// The check that verified it could not read the audit log (made unreadable, or the
    /// agent's writer holds no file): nothing vouched that this was the keystore's newest
    /// copy, so it pins nothing for `tapsign key add` until an unlock reads the log. Red-team
    /// round 26: such a check opened a pre-removal keystore put back (the documented
    /// one-session residual), and its pin then vouched alone for a later `key add` with the
    /// log moved aside, which sealed the new secret to a vault the removed token opens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_unread: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    #[default]
    Locked,
    Unlocked,
}

/// An open session, as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionStatus {
    /// Seconds until the absolute lifetime ends.
    pub expires_in_secs: u64,
    /// Seconds of inactivity after which the session ends.
    pub idle_timeout_secs: u64,
    /// Seconds until the idle timeout ends the session, if nothing signs.
    pub idle_expires_in_secs: u64,
    /// Signatures left in the session-wide budget.
    pub signatures_left: u64,
    /// Signatures made so far.
    pub signatures_made: u64,
    /// The credentials the session holds, with their own budgets: every one, or in a status
    /// cut to fit one answer the first of them ([`keys_total`](Self::keys_total) says how
    /// many there are).
    pub keys: Vec<KeyStatus>,
    /// How many credentials the session holds, when `keys` lists only the first of them (a
    /// status cut to fit one answer); absent when `keys` lists every one. Red-team round 20:
    /// a count of the cut list said "Unlocked 600 key(s)" of a session of 1,200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_total: Option<u64>,
    /// Clients that signed in this session.
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
    /// The token that opened the session.
    pub opened_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyStatus {
    pub name: String,
    pub exchange: String,
    /// Signatures left for this key, when it has its own budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_left: Option<u64>,
    pub signatures_made: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    pub pid: u32,
    pub exe: String,
    pub signatures: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenInfo {
    pub id: String,
    pub kind: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct LockSource {
    pub name: String,
    pub live: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
