//! What the audit log records: one [`AuditEvent`] per decision.
//!
//! The events have no field that could hold secret material: no API key, secret, signature,
//! JWT or PIN, and not even a sign request's query or body (an order's size and price are the
//! trader's business, and a careless bot may put a key in them). A sign is recorded as key
//! name, method and path; [`AuditEvent::sign`] and [`AuditEvent::refusal`] build those events
//! from the request, and [`AuditEvent::loggable`] (applied by every append) cuts off a query
//! a bot glued onto the path. A websocket login is marked as one (`kind`), and its line names
//! what the login signs, not the path the bot sent (no login signs that).

use std::fmt;

use serde::{Deserialize, Serialize};
use tapsign_proto::{ErrorCode, SignKind, SignRequest};

use crate::credential::Exchange;
use crate::keystore::KeyAction;

/// One decision of the agent. `pid` and `exe` name the client process as the kernel reported
/// it (`SO_PEERCRED`, `/proc/<pid>/exe`; for a client that hid its executable, what it calls
/// itself, marked as such: `server::program`; `"?"` or empty when nothing could be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditEvent {
    /// The agent started (`version` is the agent's, `pid` its own).
    AgentStart { version: String, pid: u32 },
    /// The agent is stopping (`"received SIGTERM"`, ...).
    AgentStop { reason: String },
    /// A connection from another user was turned away.
    PeerRefused {
        uid: u32,
        pid: u32,
        exe: String,
        /// How many refusals like this one came since its previous line and were counted,
        /// not written (docs/audit.md, "Repeated refusals"); left out when none.
        #[serde(default, skip_serializing_if = "is_zero")]
        repeated: u64,
    },
    /// A session opened, at the request of `pid`.
    Unlock {
        /// The token that was touched, as the keystore names it.
        token: String,
        /// The credentials the session holds.
        keys: Vec<String>,
        ttl_secs: u64,
        idle_secs: u64,
        /// The session-wide signature budget.
        max_signatures: u64,
        pid: u32,
        exe: String,
    },
    /// An unlock was refused or failed (`touch_timeout`, `wrong_token`, `pin_invalid`, ...).
    UnlockRefused {
        code: ErrorCode,
        reason: String,
        pid: u32,
        exe: String,
        /// As for `PeerRefused`.
        #[serde(default, skip_serializing_if = "is_zero")]
        repeated: u64,
    },
    /// A session ended: the reason as `LockReason` displays it (`"session lifetime ran out"`,
    /// `"session idle timeout"`, `"agent received SIGTERM"`, what a lock source says, ...).
    Lock {
        reason: String,
        /// For a `lock` request, the program that sent it (`reason` names it too); absent for
        /// every other end, and from lines written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exe: Option<String>,
    },
    /// A request was signed.
    Sign {
        key: String,
        /// Left out for an HTTP request (lines written before the field existed read the
        /// same); `ws_login` for a websocket login, whose `method` and `path` are then what the
        /// login signs ([`crate::sign::ws_login_signs`]), never the path the bot sent.
        #[serde(default, skip_serializing_if = "SignKind::is_rest")]
        kind: SignKind,
        method: String,
        path: String,
        pid: u32,
        exe: String,
    },
    /// A sign request was refused (`policy_denied`, `locked`, `budget_exhausted`, ...).
    Refusal {
        key: String,
        /// As for `Sign`; a refused websocket login keeps the method and path the bot sent,
        /// but one withheld after its `sign` line names what it signs ([`AuditEvent::withheld`]).
        #[serde(default, skip_serializing_if = "SignKind::is_rest")]
        kind: SignKind,
        method: String,
        path: String,
        code: ErrorCode,
        reason: String,
        pid: u32,
        exe: String,
        /// As for `PeerRefused`.
        #[serde(default, skip_serializing_if = "is_zero")]
        repeated: u64,
    },
    /// A credential was added, replaced or removed (`tapsign key add` / `key remove`, by
    /// `pid`). `created` and `file` (the SHA-256 of the file's bytes) identify the version
    /// written, or removed: the keystore's next check holds the files to this record.
    KeyChange {
        action: KeyAction,
        name: String,
        created: u64,
        file: String,
        pid: u32,
        exe: String,
    },
    /// The keystore's authenticated manifest was written: an unlock's check, a token enrolled,
    /// a rotation (`token remove`, `keystore rotate`). `vault` is the vault key's tag.
    Keystore {
        generation: u64,
        vault: String,
        /// The vault public key itself (SEC1 compressed, hex), which the vault lineage is
        /// checked against; absent from lines written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vault_key: Option<String>,
        /// For a vault the log recorded no line for before (a rotation's new one): its
        /// lineage's links from the last vault that was (`vault.json`'s `lineage`, each
        /// signed by the vault key it replaced). Without them, such a line is left out of
        /// the record of vaults (docs/keystore-format.md, "The lineage"); absent otherwise.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lineage: Vec<crate::keystore::Succession>,
        reason: String,
        /// The credential records the manifest holds (name, created, sha256), which the
        /// change notes judge the files against (docs/keystore-format.md, "What a check
        /// leaves in the log"); absent from lines written before they were recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<Vec<crate::keystore::CredRecord>>,
        /// The line's signature by the vault key (ECDSA P-256, hex) over its generation,
        /// vault key, reason and `credentials`: only such a line counts as a check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// A credential file failed the keystore's rollback check and was refused.
    KeyRefused { name: String, reason: String },
}

impl AuditEvent {
    /// The event for a request that was signed with a key of `exchange`: key, method and
    /// path only. A websocket login is recorded as one, with what its login signs.
    pub fn sign(req: &SignRequest, exchange: Exchange, pid: u32, exe: &str) -> Self {
        Self::signed(req, exchange, false, pid, exe)
    }

    /// [`AuditEvent::sign`], for a request the policy found to be the exchange's websocket
    /// login (`login`) whatever its `kind` says: a REST request whose signed bytes are the
    /// login's is recorded as a login too.
    pub fn signed(req: &SignRequest, exchange: Exchange, login: bool, pid: u32, exe: &str) -> Self {
        let (method, path) = match req.kind {
            SignKind::Rest => (req.method.as_str(), loggable_path(&req.path)),
            SignKind::WsLogin => crate::sign::ws_login_signs(exchange),
        };
        AuditEvent::Sign {
            key: req.key.clone(),
            // A REST request whose signed bytes are the exchange's websocket login is one.
            kind: match login {
                true => SignKind::WsLogin,
                false => req.kind,
            },
            method: method.to_owned(),
            path: path.to_owned(),
            pid,
            exe: exe.to_owned(),
        }
    }

    /// The event for a sign request that was refused.
    pub fn refusal(req: &SignRequest, code: ErrorCode, reason: &str, pid: u32, exe: &str) -> Self {
        AuditEvent::Refusal {
            key: req.key.clone(),
            kind: req.kind,
            method: req.method.clone(),
            path: loggable_path(&req.path).to_owned(),
            code,
            reason: reason.to_owned(),
            pid,
            exe: exe.to_owned(),
            repeated: 0,
        }
    }

    /// The refusal of a signature already on record as `self` (a `Sign` event) but withheld
    /// before it left the agent: it names the request as its `sign` line does (a websocket
    /// login, even one sent as a REST request, with what the login signs), so the two lines
    /// read as one request's. `None` for any other event.
    pub fn withheld(&self, code: ErrorCode, reason: &str) -> Option<Self> {
        let AuditEvent::Sign {
            key,
            kind,
            method,
            path,
            pid,
            exe,
        } = self
        else {
            return None;
        };
        Some(AuditEvent::Refusal {
            key: key.clone(),
            kind: *kind,
            method: method.clone(),
            path: path.clone(),
            code,
            reason: reason.to_owned(),
            pid: *pid,
            exe: exe.clone(),
            repeated: 0,
        })
    }

    /// The event as it may be written: a path is cut at `?` or `#` however the event was
    /// built. [`super::AuditLog::append`] applies this to every event.
    pub fn loggable(&self) -> AuditEvent {
        let mut e = self.clone();
        if let AuditEvent::Sign { path, .. } | AuditEvent::Refusal { path, .. } = &mut e {
            path.truncate(loggable_path(path).len());
        }
        // What a client chose is cut to a bound: refusals are not rate-limited, and a bot must
        // not write a 64 KiB key name into the log with every request. A reason is the agent's
        // own sentence, which may quote such a name, so it gets more room.
        match &mut e {
            AuditEvent::Sign {
                key,
                method,
                path,
                exe,
                ..
            } => [key, method, path, exe].into_iter().for_each(cap_quoted),
            AuditEvent::Refusal {
                key,
                method,
                path,
                reason,
                exe,
                ..
            } => {
                [key, method, path, exe].into_iter().for_each(cap_quoted);
                cap(reason, REASON_MAX);
            }
            AuditEvent::UnlockRefused { reason, exe, .. } => {
                cap_quoted(exe);
                cap(reason, REASON_MAX);
            }
            AuditEvent::PeerRefused { exe, .. } | AuditEvent::Unlock { exe, .. } => cap_quoted(exe),
            AuditEvent::Lock { reason, exe, .. } => {
                exe.iter_mut().for_each(cap_quoted);
                cap(reason, REASON_MAX);
            }
            _ => {}
        }
        e
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl AuditEvent {
    /// Whether this is a refusal (of a connection, an unlock or a signature), the kind of line
    /// a bot in a loop repeats: one like a refusal written less than a second before is
    /// counted, not written (docs/audit.md, "Repeated refusals").
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            AuditEvent::PeerRefused { .. }
                | AuditEvent::UnlockRefused { .. }
                | AuditEvent::Refusal { .. }
        )
    }

    /// How many refusals like this one its line stands for besides itself.
    pub fn repeated(&self) -> u64 {
        match self {
            AuditEvent::PeerRefused { repeated, .. }
            | AuditEvent::UnlockRefused { repeated, .. }
            | AuditEvent::Refusal { repeated, .. } => *repeated,
            _ => 0,
        }
    }

    /// The event with `repeated` set to `n` (a refusal's; any other event is returned as is).
    pub fn with_repeated(mut self, n: u64) -> Self {
        if let AuditEvent::PeerRefused { repeated, .. }
        | AuditEvent::UnlockRefused { repeated, .. }
        | AuditEvent::Refusal { repeated, .. } = &mut self
        {
            *repeated = n;
        }
        self
    }
}

/// The most bytes of a string a client chose (key name, method, path, program) a line holds.
pub const QUOTED_MAX: usize = 256;
/// The most bytes of a reason (the agent's sentence, which may quote a client's string).
pub const REASON_MAX: usize = 1024;

fn cap_quoted(s: &mut String) {
    cap(s, QUOTED_MAX);
}

/// Cut `s` to at most `max` bytes, on a character boundary, and say how much was cut:
/// `…[cut 64744 bytes]`.
///
/// A string this already cut is left as it is: an event is made loggable again on its way to
/// the file (a refusal counted as a repeat, `repeats`), and cutting the cut string wrote a
/// marker for the marker's own bytes, `…[cut 18 bytes]` where 744 were cut (red-team round
/// 20's recheck).
pub fn cap(s: &mut String, max: usize) {
    if s.len() <= max || already_cut(s, max) {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("…[cut {cut} bytes]"));
}

/// Whether `s` is what [`cap`] leaves of a longer string: at most `max` bytes, then its
/// marker, `…[cut N bytes]`.
fn already_cut(s: &str, max: usize) -> bool {
    let Some(at) = s.rfind("…[cut ") else {
        return false;
    };
    let Some(n) = s[at..]
        .strip_prefix("…[cut ")
        .and_then(|r| r.strip_suffix(" bytes]"))
    else {
        return false;
    };
    // A count of bytes (a `u64` has at most 20 digits): a bot's string ending in a marker of
    // 60,000 digits was kept whole as cut already (a review of round 20).
    at <= max && (1..=20).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
}

/// The path up to any `?` or `#`. The protocol says the query goes in its own field, but a bot
/// that glued it onto the path must not get it logged that way.
pub fn loggable_path(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or_default()
}

/// Bot-supplied text written to a terminal (`tapsign audit`, `status`, whatever the CLI
/// quotes): control characters (a newline forging a line, an escape sequence repainting the
/// screen), bidirectional overrides (text that reads backwards) and invisible characters or
/// separators (text that hides or breaks a line) are shown escaped.
pub struct Shown<'a>(pub &'a str);

/// A character a terminal would act on, draw out of order or not draw: a control character
/// (C0, DEL, C1), a bidirectional override, isolate or mark, a zero-width or other invisible
/// format character (soft hyphen, byte-order mark, interlinear annotation, tag characters),
/// or a line or paragraph separator.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// A serialized JSON line with every [`hidden`] character written as a `\u` escape: the
/// same JSON to any reader, and nothing a terminal showing the raw file (`tail -f`, a log
/// shipped to syslog) would act on. serde_json escapes only C0 controls; C1 controls
/// (which some terminals take as escape sequences) and bidi overrides would go through.
pub fn escape_hidden(line: &mut Vec<u8>, from: usize) {
    if line[from..].is_ascii() && !line[from..].contains(&0x7f) {
        return;
    }
    let Ok(text) = std::str::from_utf8(&line[from..]) else {
        return;
    };
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    line.truncate(from);
    line.extend_from_slice(out.as_bytes());
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if hidden(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// `pid 123 (/usr/bin/python3)`.
struct By<'a>(u32, &'a str);

impl fmt::Display for By<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exe = if self.1.is_empty() { "?" } else { self.1 };
        write!(f, "pid {} ({})", self.0, Shown(exe))
    }
}

/// A refusal line's count of the refusals like it that were not written on their own:
/// ` (and 523 more like it since its last line, not written one by one)`; nothing for none.
struct Repeated(u64);

impl fmt::Display for Repeated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(
                f,
                " (and {n} more like it since its last line, not written one by one)"
            ),
        }
    }
}

/// What a sign line is about: `GET /v1/orders`, or `ws_login GET /realtime` (a login that
/// signs a method and path) and `ws_login session.logon` (one that signs none).
struct What<'a>(SignKind, &'a str, &'a str);

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == SignKind::WsLogin {
            f.write_str("ws_login ")?;
        }
        match self.1.is_empty() {
            true => write!(f, "{}", Shown(self.2)),
            false => write!(f, "{} {}", Shown(self.1), Shown(self.2)),
        }
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditEvent::AgentStart { version, pid } => {
                write!(f, "agent start {} pid {pid}", Shown(version))
            }
            AuditEvent::AgentStop { reason } => write!(f, "agent stop ({})", Shown(reason)),
            AuditEvent::PeerRefused { uid, pid, exe, .. } => {
                write!(f, "refused a connection from uid {uid}, {}", By(*pid, exe))?;
                Repeated(self.repeated()).fmt(f)
            }
            AuditEvent::Unlock {
                token,
                keys,
                ttl_secs,
                idle_secs,
                max_signatures,
                pid,
                exe,
            } => {
                write!(f, "unlock by {}: keys ", Shown(token))?;
                for (i, k) in keys.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", Shown(k))?;
                }
                write!(
                    f,
                    "; ttl {ttl_secs}s idle {idle_secs}s budget {max_signatures}; asked by {}",
                    By(*pid, exe)
                )
            }
            AuditEvent::UnlockRefused {
                code,
                reason,
                pid,
                exe,
                ..
            } => {
                write!(
                    f,
                    "unlock refused {code}: {}; asked by {}",
                    Shown(reason),
                    By(*pid, exe)
                )?;
                Repeated(self.repeated()).fmt(f)
            }
            AuditEvent::Lock { reason, .. } => write!(f, "lock ({})", Shown(reason)),
            AuditEvent::Sign {
                key,
                kind,
                method,
                path,
                pid,
                exe,
            } => {
                let (k, w) = (Shown(key), What(*kind, method, path));
                write!(f, "sign {k} {w} by {}", By(*pid, exe))
            }
            AuditEvent::Refusal {
                key,
                kind,
                method,
                path,
                code,
                reason,
                pid,
                exe,
                ..
            } => {
                let (k, w) = (Shown(key), What(*kind, method, path));
                write!(
                    f,
                    "refuse {k} {w} {code}: {}; by {}",
                    Shown(reason),
                    By(*pid, exe)
                )?;
                Repeated(self.repeated()).fmt(f)
            }
            AuditEvent::KeyChange {
                action,
                name,
                created,
                file,
                pid,
                exe,
            } => {
                let added = super::utc_secs(*created);
                let short = file.get(..16).unwrap_or(file);
                write!(
                    f,
                    "key {action} {} (added {added}, file sha256 {}) by {}",
                    Shown(name),
                    Shown(short),
                    By(*pid, exe)
                )
            }
            AuditEvent::Keystore {
                generation,
                vault,
                reason,
                ..
            } => write!(
                f,
                "keystore manifest generation {generation} (vault {}): {}",
                Shown(vault),
                Shown(reason)
            ),
            AuditEvent::KeyRefused { name, reason } => {
                write!(f, "REFUSED credential {}: {}", Shown(name), Shown(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_unknown_key_name_is_cut_in_the_log_not_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = super::super::AuditLog::open(&path).unwrap();
        let req = SignRequest {
            key: "k".repeat(65_000),
            method: "GET".into(),
            path: "/api/v3/account".into(),
            query: String::new(),
            body: String::new(),
            kind: Default::default(),
        };
        let reason = format!("no key named {:?}", req.key);
        let e = AuditEvent::refusal(&req, ErrorCode::UnknownKey, &reason, 9, "/usr/bin/bot");
        log.append(&e).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 2048, "{} bytes", text.len());
        let line: super::super::AuditLine = serde_json::from_str(text.trim_end()).unwrap();
        let AuditEvent::Refusal { key, reason, .. } = line.event else {
            panic!("{line}");
        };
        assert_eq!(key, format!("{}…[cut 64744 bytes]", "k".repeat(256)));
        assert!(reason.starts_with("no key named \"kkk"), "{reason}");
        assert!(reason.ends_with("bytes]"), "{reason}");
        assert!(super::super::verify(&path).unwrap().is_ok());
    }

    /// A string [`cap`] cut is left as it is by a second `cap`; a string that merely holds a
    /// marker-like text is cut as any other.
    #[test]
    fn a_cut_string_is_not_cut_again() {
        let mut s = "k".repeat(1000);
        cap(&mut s, 256);
        let once = s.clone();
        cap(&mut s, 256);
        assert_eq!(s, once);
        assert!(s.ends_with("…[cut 744 bytes]"), "{s}");
        let mut forged = format!("{}…[cut 1 bytes]", "x".repeat(300));
        cap(&mut forged, 256);
        assert!(forged.ends_with("bytes]") && forged.len() < 300, "{forged}");
        // Nor is a marker of any length taken for one: a line stays within its bounds.
        let mut long = format!("k…[cut {} bytes]", "9".repeat(60_000));
        cap(&mut long, 256);
        assert!(long.len() < 300, "{} bytes", long.len());
    }

    /// A websocket login was logged as a REST signature of the path the bot named. It says
    /// `ws_login` and what the login signs; a REST line is written as before (no `kind`).
    #[test]
    fn a_websocket_login_line_says_so_and_never_shows_the_bots_path() {
        let mut req = SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v3/withdraw".into(),
            kind: SignKind::WsLogin,
            ..Default::default()
        };
        let shown = |req: &SignRequest, ex| {
            let e = AuditEvent::sign(req, ex, 9, "/usr/bin/bot");
            (serde_json::to_string(&e).unwrap(), e.to_string())
        };
        let (json, text) = shown(&req, Exchange::Binance);
        assert_eq!(
            json,
            r#"{"type":"sign","key":"k","kind":"ws_login","method":"","path":"session.logon","pid":9,"exe":"/usr/bin/bot"}"#
        );
        assert_eq!(
            text,
            "sign k ws_login session.logon by pid 9 (/usr/bin/bot)"
        );
        assert_eq!(
            shown(&req, Exchange::Okx).1,
            "sign k ws_login GET /users/self/verify by pid 9 (/usr/bin/bot)"
        );
        assert_eq!(
            shown(&req, Exchange::Coinbase).1,
            "sign k ws_login jwt without uri by pid 9 (/usr/bin/bot)"
        );

        req.kind = SignKind::Rest;
        let (json, text) = shown(&req, Exchange::Binance);
        assert!(!json.contains("kind"), "{json}");
        assert_eq!(text, "sign k GET /api/v3/withdraw by pid 9 (/usr/bin/bot)");

        req.kind = SignKind::WsLogin;
        let e = AuditEvent::refusal(&req, ErrorCode::PolicyDenied, "no", 9, "bot");
        assert!(
            e.to_string()
                .starts_with("refuse k ws_login GET /api/v3/withdraw policy_denied"),
            "{e}"
        );
    }

    #[test]
    fn a_cut_falls_on_a_character_boundary() {
        let mut s = "€".repeat(100);
        cap(&mut s, QUOTED_MAX);
        assert_eq!(s, format!("{}…[cut 45 bytes]", "€".repeat(85)));
        let mut short = "upbit-main".to_owned();
        cap(&mut short, QUOTED_MAX);
        assert_eq!(short, "upbit-main");
    }
}
