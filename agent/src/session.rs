//! The session: a pure state machine. Time is passed in (boot-time clock), nothing here does
//! I/O, so every transition is tested with injected time.
//!
//! `Locked` holds no secret at all; `Unlocked` owns the decrypted credentials. Locking consumes
//! the `Unlocked` state, and dropping it drops the credentials, which zeroizes them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tapsign_proto::{ClientInfo, KeyStatus, SessionStatus};

use crate::credential::Credential;

/// Most programs a session counts signatures for ([`Session::use_key`]).
pub(crate) const CLIENTS_KEPT: usize = 1024;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockReason {
    /// A `lock` request: `tapsign lock`, or any other program of the user's (the protocol lets
    /// any of them lock), named by its pid and program as every other decision is. Shown as
    /// "locked by `tapsign lock`" whoever sent it, a bot locking the session before each of
    /// the trader's orders was put down to the trader (red-team round 22). `tapsign`: the
    /// client runs the agent's own program, whose only `lock` is `tapsign lock`. Made with
    /// [`LockReason::request`], which cuts the program's name as the audit log does.
    Request { client: Client, tapsign: bool },
    /// The absolute lifetime ran out.
    Expired,
    /// Nothing signed for the idle timeout.
    Idle,
    /// The session-wide signature budget is spent.
    BudgetSpent,
    /// A signal (SIGTERM, SIGINT, SIGHUP).
    Signal(&'static str),
    /// An unlock opened a new session in its place (not an extend, which renews it).
    Replaced,
    /// Another source (screen lock, suspend, token removed), named.
    Other(String),
}

impl LockReason {
    /// The end a `lock` request from `client` makes. The program's name is the client's to
    /// choose: cut as `status` and the audit log cut it, so it cannot push the reason's own
    /// words off the screen.
    pub fn request(client: &Client) -> LockReason {
        LockReason::request_by(client, own_program())
    }

    /// [`LockReason::request`], with the agent's own program given (`None`: unknown).
    fn request_by(client: &Client, own: Option<&str>) -> LockReason {
        let tapsign = own.is_some_and(|own| own == client.exe);
        let mut exe = if client.exe.is_empty() {
            "?".to_owned()
        } else {
            client.exe.clone()
        };
        crate::audit::cap(&mut exe, crate::audit::QUOTED_MAX);
        LockReason::Request {
            client: Client {
                pid: client.pid,
                exe,
            },
            tapsign,
        }
    }

    /// Whether a `sign` after this end says so (with its own code: `expired`,
    /// `budget_exhausted`) rather than just "locked".
    fn tells_a_sign(&self) -> bool {
        matches!(
            self,
            LockReason::Expired | LockReason::Idle | LockReason::BudgetSpent
        )
    }
}

impl fmt::Display for LockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockReason::Request { client, tapsign } => {
                let (pid, exe) = (client.pid, &client.exe);
                if *tapsign {
                    write!(f, "locked by `tapsign lock`, pid {pid} ({exe})")
                } else {
                    write!(f, "locked by a `lock` request from pid {pid} ({exe})")
                }
            }
            LockReason::Expired => f.write_str("session lifetime ran out"),
            LockReason::Idle => f.write_str("session idle timeout"),
            LockReason::BudgetSpent => f.write_str("session signature budget spent"),
            LockReason::Signal(s) => write!(f, "agent received {s}"),
            LockReason::Replaced => f.write_str("session replaced by a new unlock"),
            LockReason::Other(s) => f.write_str(s),
        }
    }
}

/// The agent's own program as a client's is read (`/proc/PID/exe`): the `tapsign` the CLI
/// runs too. Read once; `None` when it cannot be (then no client is taken for it).
fn own_program() -> Option<&'static str> {
    static OWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string())
    })
    .as_deref()
}

/// The bounds of a session, already capped by the agent's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub ttl: Duration,
    pub idle: Duration,
    pub max_signatures: u64,
    /// Per-key budget, when set.
    pub per_key: Option<u64>,
}

/// Who is asking, for `status` and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub pid: u32,
    pub exe: String,
}

/// `n` signatures, said as a count: "1 signature", "2 signatures" ("1 signatures" was in
/// `status` and the `budget_low` event: red-team round 24).
pub fn signatures(n: u64) -> String {
    match n {
        1 => "1 signature".into(),
        n => format!("{n} signatures"),
    }
}

/// Why a `sign` cannot use the session (its wire code: `crate::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the agent is locked: run `tapsign unlock`")]
    Locked,
    /// The session ended for this reason (a deadline or the budget).
    #[error("{0}; run `tapsign unlock` to open a new session")]
    Ended(LockReason),
    #[error(
        "no key named {0:?} in the open session; `tapsign key list` shows the keys, `tapsign unlock` opens them"
    )]
    UnknownKey(String),
    #[error(
        "key {0:?} has used its signature budget for this session; run `tapsign unlock` to start a new one"
    )]
    KeyBudgetSpent(String),
}

/// The agent's session.
pub enum Session {
    Locked(Locked),
    Unlocked(Unlocked),
}

/// No secrets. Remembers why the last session ended.
#[derive(Debug, Default)]
pub struct Locked {
    pub reason: Option<LockReason>,
}

struct OpenKey {
    cred: Credential,
    made: u64,
    left: Option<u64>,
}

/// What [`Session::extend`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extend {
    /// Renewed, without the keys dropped (each with why).
    Renewed { dropped: Vec<(String, String)> },
    /// No session was open.
    NotOpen,
    /// A deadline had passed: the session ended now, for this reason (for the caller to
    /// announce, as [`Session::tick`]'s).
    Ended(LockReason),
    /// Every key would have been dropped (each with why): nothing changed.
    NoneKept { dropped: Vec<(String, String)> },
}

/// A heads-up before the session ends, given once per session (and again after an extend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The lifetime ends in `in_secs`; `unlock --extend` without bounds would renew it with
    /// `renew`.
    ExpiringSoon {
        in_secs: u64,
        signatures_left: u64,
        renew: Bounds,
    },
    /// Only `left` signatures remain in the session-wide budget.
    BudgetLow { left: u64, expires_in_secs: u64 },
}

/// An open session: credentials, deadlines, budgets.
pub struct Unlocked {
    keys: BTreeMap<String, OpenKey>,
    opened_at: Duration,
    /// What the session was opened (or last extended) with: an extend that names no bounds
    /// renews these, never the configured defaults, which may be wider.
    bounds: Bounds,
    warned_expiry: bool,
    warned_budget: bool,
    expires_at: Duration,
    last_used: Duration,
    left: u64,
    made: u64,
    opened_by: String,
    /// Signatures per program, by pid and the program's path (cut as `status` shows it): a
    /// program that gets a pid another had before is another entry, not more signatures under
    /// the earlier one's name (red-team round 20).
    clients: BTreeMap<(u32, String), u64>,
}

impl Default for Session {
    fn default() -> Self {
        Session::Locked(Locked::default())
    }
}

impl Session {
    /// Open a session with `creds` (replacing any open one).
    pub fn unlock(
        creds: Vec<Credential>,
        bounds: Bounds,
        now: Duration,
        opened_by: String,
    ) -> Self {
        let keys = creds
            .into_iter()
            .map(|cred| {
                (
                    cred.name.clone(),
                    OpenKey {
                        cred,
                        made: 0,
                        left: bounds.per_key,
                    },
                )
            })
            .collect();
        Session::Unlocked(Unlocked {
            keys,
            opened_at: now,
            bounds,
            warned_expiry: false,
            warned_budget: false,
            expires_at: now.saturating_add(bounds.ttl),
            last_used: now,
            left: bounds.max_signatures,
            made: 0,
            opened_by,
            clients: BTreeMap::new(),
        })
    }

    pub fn is_unlocked(&self) -> bool {
        matches!(self, Session::Unlocked(_))
    }

    /// End the session (idempotent). Returns whether a session was open.
    pub fn lock(&mut self, reason: LockReason) -> bool {
        let was_open = self.is_unlocked();
        if was_open {
            // Replacing the state drops `Unlocked`, and with it every credential (zeroized).
            *self = Session::Locked(Locked {
                reason: Some(reason),
            });
        } else if let Session::Locked(l) = self
            && l.reason.is_none()
        {
            l.reason = Some(reason);
        }
        was_open
    }

    /// Why the agent is locked, if it is.
    pub fn lock_reason(&self) -> Option<&LockReason> {
        match self {
            Session::Locked(l) => l.reason.as_ref(),
            Session::Unlocked(_) => None,
        }
    }

    /// End the session if a deadline has passed. Returns the reason when it just ended.
    pub fn tick(&mut self, now: Duration) -> Option<LockReason> {
        let Session::Unlocked(u) = self else {
            return None;
        };
        let reason = u.due(now)?;
        self.lock(reason.clone());
        Some(reason)
    }

    /// The next moment `tick` could end the session.
    pub fn next_deadline(&self) -> Option<Duration> {
        match self {
            Session::Unlocked(u) => {
                Some(u.expires_at.min(u.last_used.saturating_add(u.bounds.idle)))
            }
            Session::Locked(_) => None,
        }
    }

    /// How long the open session lasts if a signature is made at `now`: to its lifetime's end
    /// or, when nearer, to its idle end, which that signature moves to `now` + the idle time.
    /// `None` when locked. A signature that lives on its own (a Coinbase token) is held to it.
    pub fn left_if_used(&self, now: Duration) -> Option<Duration> {
        match self {
            Session::Unlocked(u) => Some(
                u.expires_at
                    .min(now.saturating_add(u.bounds.idle))
                    .saturating_sub(now),
            ),
            Session::Locked(_) => None,
        }
    }

    /// The next moment something is due: a deadline, or the expiry warning.
    pub fn next_wakeup(&self) -> Option<Duration> {
        let Session::Unlocked(u) = self else {
            return None;
        };
        let deadline = self.next_deadline()?;
        Some(if u.warned_expiry {
            deadline
        } else {
            deadline.min(u.warn_at())
        })
    }

    /// The bounds the open session was opened (or last extended) with.
    pub fn bounds(&self) -> Option<Bounds> {
        match self {
            Session::Unlocked(u) => Some(u.bounds),
            Session::Locked(_) => None,
        }
    }

    /// Renew an open session after a touch: new lifetime, idle and budget from `now`. Per-key
    /// budgets restart too. A key `gone` gives a reason for is dropped from the session first
    /// (its credential wiped): one the keystore no longer holds as the session opened it. An
    /// extend kept a credential `tapsign key remove` took out, and renewed it for a day at each
    /// extend, where the removal's own words say the session keeps it "until it ends"
    /// (red-team round 23). Nothing changes when every key would be dropped.
    ///
    /// The deadlines are looked at here too: a session past its lifetime or idle time is
    /// ended, never renewed, whatever its caller looked at before (red-team round 23, A6).
    pub fn extend(
        &mut self,
        bounds: Bounds,
        now: Duration,
        gone: &dyn Fn(&Credential) -> Option<String>,
    ) -> Extend {
        if let Some(reason) = self.tick(now) {
            return Extend::Ended(reason);
        }
        let Session::Unlocked(u) = self else {
            return Extend::NotOpen;
        };
        let dropped: Vec<(String, String)> = u
            .keys
            .values()
            .filter_map(|k| gone(&k.cred).map(|why| (k.cred.name.clone(), why)))
            .collect();
        if !dropped.is_empty() && dropped.len() == u.keys.len() {
            return Extend::NoneKept { dropped };
        }
        for (name, _) in &dropped {
            // Dropped, the credential is wiped.
            u.keys.remove(name);
        }
        u.expires_at = now.saturating_add(bounds.ttl);
        u.last_used = now;
        u.opened_at = now;
        u.left = bounds.max_signatures;
        u.bounds = bounds;
        u.warned_expiry = false;
        u.warned_budget = false;
        for k in u.keys.values_mut() {
            k.left = bounds.per_key;
        }
        Extend::Renewed { dropped }
    }

    /// The names of the open session's keys (none when locked).
    pub fn key_names(&self) -> Vec<String> {
        match self {
            Session::Unlocked(u) => u.keys.keys().cloned().collect(),
            Session::Locked(_) => Vec::new(),
        }
    }

    /// Warnings that have become due; each is given once.
    pub fn take_warnings(&mut self, now: Duration) -> Vec<Warning> {
        let mut out = Vec::new();
        let Session::Unlocked(u) = self else {
            return out;
        };
        // Rounded up: "ends in 0s" while a second remains would be wrong.
        let expires_in_secs = u.expires_at.saturating_sub(now).as_millis().div_ceil(1000) as u64;
        if !u.warned_expiry && now >= u.warn_at() && now < u.expires_at {
            u.warned_expiry = true;
            out.push(Warning::ExpiringSoon {
                in_secs: expires_in_secs,
                signatures_left: u.left,
                renew: u.bounds,
            });
        }
        if !u.warned_budget && u.left > 0 && u.left <= u.budget_low_mark() {
            u.warned_budget = true;
            out.push(Warning::BudgetLow {
                left: u.left,
                expires_in_secs,
            });
        }
        out
    }

    /// Use credential `key` once: checks deadlines and budgets, runs `f` with the credential,
    /// and counts the signature only when `f` succeeds. The session ends when the session-wide
    /// budget reaches zero.
    pub fn use_key<T, E>(
        &mut self,
        key: &str,
        now: Duration,
        client: &Client,
        f: impl FnOnce(&Credential) -> Result<T, E>,
    ) -> Result<Result<T, E>, Refusal> {
        if let Some(reason) = self.tick(now) {
            return Err(Refusal::Ended(reason));
        }
        let u = match self {
            Session::Locked(l) => {
                return Err(match &l.reason {
                    Some(r) if r.tells_a_sign() => Refusal::Ended(r.clone()),
                    _ => Refusal::Locked,
                });
            }
            Session::Unlocked(u) => u,
        };
        let Some(open) = u.keys.get_mut(key) else {
            return Err(Refusal::UnknownKey(key.to_owned()));
        };
        if open.left == Some(0) {
            return Err(Refusal::KeyBudgetSpent(key.to_owned()));
        }
        let out = f(&open.cred);
        if out.is_ok() {
            open.made += 1;
            if let Some(left) = open.left.as_mut() {
                *left -= 1;
            }
            u.made += 1;
            u.left -= 1;
            u.last_used = now;
            count_client(&mut u.clients, client);
            if u.left == 0 {
                self.lock(LockReason::BudgetSpent);
            }
        }
        Ok(out)
    }

    /// What `status` shows of the open session.
    pub fn status(&self, now: Duration) -> Option<SessionStatus> {
        let Session::Unlocked(u) = self else {
            return None;
        };
        let idle_end = u.last_used.saturating_add(u.bounds.idle);
        Some(SessionStatus {
            expires_in_secs: u.expires_at.saturating_sub(now).as_secs(),
            idle_timeout_secs: u.bounds.idle.as_secs(),
            idle_expires_in_secs: idle_end.saturating_sub(now).as_secs(),
            signatures_left: u.left,
            signatures_made: u.made,
            keys: u
                .keys
                .values()
                .map(|k| KeyStatus {
                    name: k.cred.name.clone(),
                    exchange: k.cred.exchange.to_string(),
                    signatures_left: k.left,
                    signatures_made: k.made,
                })
                .collect(),
            clients: u
                .clients
                .iter()
                .map(|((pid, exe), signatures)| ClientInfo {
                    pid: *pid,
                    exe: exe.clone(),
                    signatures: *signatures,
                })
                .collect(),
            opened_by: u.opened_by.clone(),
            // Said by the agent's `fit_status`, should it cut `keys`.
            keys_total: None,
        })
    }

    /// The exchange of an open key, for the policy check before signing.
    pub fn exchange_of(&self, key: &str) -> Option<crate::credential::Exchange> {
        match self {
            Session::Unlocked(u) => u.keys.get(key).map(|k| k.cred.exchange),
            Session::Locked(_) => None,
        }
    }
}

impl Unlocked {
    /// Warn five minutes before the end, or a quarter of the lifetime before it for short
    /// sessions (a 2-minute session is warned 30 s ahead, not at once).
    fn warn_at(&self) -> Duration {
        let ttl = self.expires_at.saturating_sub(self.opened_at);
        let lead = Duration::from_secs(300).min(ttl / 4);
        self.expires_at.saturating_sub(lead)
    }

    /// Warn when a tenth of the budget is left (at least one signature).
    fn budget_low_mark(&self) -> u64 {
        (self.bounds.max_signatures / 10).max(1)
    }

    fn due(&self, now: Duration) -> Option<LockReason> {
        if now >= self.expires_at {
            Some(LockReason::Expired)
        } else if now >= self.last_used.saturating_add(self.bounds.idle) {
            Some(LockReason::Idle)
        } else {
            None
        }
    }
}

/// Count one signature for `client`'s program in `status`'s list (`clients`).
///
/// Kept for at most `CLIENTS_KEPT` programs: a bot signing from a new process each time must
/// not grow the session without end (the audit log has every signature's program). A new one
/// then takes the place of the one that signed least: counted only while there was room, a
/// program that came after 1,024 one-off signers was never counted, whatever it signed
/// (red-team round 19). A program is its pid and its path: keyed by pid alone, a program that
/// got the pid of one that had exited signed under that one's name (red-team round 20).
///
/// This runs for every signature: a program already counted is found without allocating.
fn count_client(clients: &mut BTreeMap<(u32, String), u64>, client: &Client) {
    // The program's path is the bot's to choose: `status` shows it cut as the audit log does,
    // so it cannot push the session's own lines off the screen. Cut here only when too long.
    let exe: Cow<'_, str> = if client.exe.len() <= crate::audit::QUOTED_MAX {
        Cow::Borrowed(&client.exe)
    } else {
        let mut cut = client.exe.clone();
        crate::audit::cap(&mut cut, crate::audit::QUOTED_MAX);
        Cow::Owned(cut)
    };
    // The entries of one pid are together, from (pid, ""): usually one.
    let counted = clients
        .range_mut((client.pid, String::new())..)
        .take_while(|((pid, _), _)| *pid == client.pid)
        .find(|((_, e), _)| *e == exe);
    if let Some((_, signatures)) = counted {
        *signatures += 1;
        return;
    }
    if clients.len() >= CLIENTS_KEPT
        && let Some(least) = clients
            .iter()
            .min_by_key(|(_, signatures)| **signatures)
            .map(|(who, _)| who.clone())
    {
        clients.remove(&least);
    }
    clients.insert((client.pid, exe.into_owned()), 1);
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
