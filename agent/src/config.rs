//! The agent's configuration (`config.toml`): session defaults and caps, signing limits,
//! server limits, how the audit log reaches the disk. Every field is optional;
//! `docs/defaults.md` explains each default.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::clock::parse_duration;
use crate::disk::{self, Kind, Need};
use crate::policy::{Endpoint, KeyPolicy};
use crate::session::Bounds;
use crate::sign::SignOptions;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub session: SessionConfig,
    pub signing: SignOptions,
    pub server: ServerConfig,
    /// Per-key policies: what widens or narrows a key's trading profile, and whether it may
    /// sign websocket logins (off by default: a logged-in websocket keeps trading after the
    /// session ends). Keys not named here get their exchange's profile as it is.
    pub keys: BTreeMap<String, KeyPolicy>,
    pub lock: LockConfig,
    pub notifications: NotificationsConfig,
    pub audit: AuditConfig,
}

/// `[audit]`: how the audit log reaches the disk (docs/audit.md, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    pub flush: Flush,
    /// In `incremental_async`, the longest a written line waits for its `fdatasync`.
    pub sync_interval: Duration,
}

/// When a line is synced to disk. Either way it is written (`write(2)`) before the answer
/// leaves, so a crash of the agent loses nothing; the modes differ on a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flush {
    /// Synced in the background, at most `sync_interval` after it was written (auditd's
    /// `flush = incremental_async`).
    IncrementalAsync,
    /// A signature waits for its line's `fdatasync`; signers waiting together share one.
    Sync,
}

/// Most keys without a table [`Config::unmatched_keys`] names; past that, they are counted.
const UNTABLED_SHOWN: usize = 8;

/// The bounds of `audit.sync_interval`: whole seconds (config durations have no finer unit);
/// past a minute the kernel's own writeback would have written the lines anyway, without the
/// agent knowing whether it worked.
const SYNC_INTERVAL_MAX: Duration = Duration::from_secs(60);

/// `[lock]`: which D-Bus lock sources run (docs/screen-lock.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockConfig {
    /// Lock on screen lock (logind Session.Lock / LockedHint, screensavers).
    pub screen: bool,
    /// Lock before suspend (logind PrepareForSleep).
    pub suspend: bool,
}

/// `[notifications]`: desktop notifications when a session opens or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationsConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Lifetime when `unlock` does not say.
    pub ttl: Duration,
    /// Idle timeout when `unlock` does not say.
    pub idle: Duration,
    /// Signature budget when `unlock` does not say.
    pub max_signatures: u64,
    /// Per-key budget (none by default).
    pub per_key_max_signatures: Option<u64>,
    /// The largest lifetime `unlock` may ask for.
    pub max_ttl: Duration,
    /// The longest idle timeout `unlock` may ask for.
    pub max_idle: Duration,
    /// The largest budget `unlock` may ask for.
    pub max_signatures_cap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Connections served at once; more are told `busy`.
    pub max_connections: usize,
    /// How long a started frame may take to arrive in full.
    pub frame_timeout: Duration,
    /// How long a connection may sit idle between requests.
    pub idle_connection_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session: SessionConfig {
                ttl: Duration::from_secs(8 * 3600),
                idle: Duration::from_secs(3600),
                max_signatures: 50_000,
                per_key_max_signatures: None,
                max_ttl: Duration::from_secs(24 * 3600),
                max_idle: Duration::from_secs(8 * 3600),
                max_signatures_cap: 1_000_000,
            },
            signing: SignOptions::default(),
            server: ServerConfig {
                max_connections: 64,
                frame_timeout: Duration::from_secs(5),
                idle_connection_timeout: Duration::from_secs(600),
            },
            keys: BTreeMap::new(),
            lock: LockConfig {
                screen: true,
                suspend: true,
            },
            notifications: NotificationsConfig { enabled: true },
            audit: AuditConfig {
                flush: Flush::IncrementalAsync,
                sync_interval: Duration::from_secs(1),
            },
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    signing: RawSigning,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    lock: RawLock,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    flush: Option<Flush>,
    sync_interval: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLock {
    screen: Option<bool>,
    suspend: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    allow: Vec<toml::Value>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    ws_login: bool,
    #[serde(default)]
    parameterless: bool,
    #[serde(default)]
    margin: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSession {
    ttl: Option<String>,
    idle: Option<String>,
    max_signatures: Option<u64>,
    per_key_max_signatures: Option<u64>,
    max_ttl: Option<String>,
    max_idle: Option<String>,
    max_signatures_cap: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    max_skew_ms: Option<u64>,
    recv_window_cap_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_connections: Option<usize>,
    frame_timeout: Option<String>,
    idle_connection_timeout: Option<String>,
}

/// Whether two entries can take the same request: the same method, and paths alike segment by
/// segment, without ASCII case as entries read them: two placeholders unless each lists values
/// and none is in both (`{settle:usdt|btc}` and `{settle:BTC}`; `{id}` and `{orderId}`), a
/// literal and a placeholder listing it (`usdt` and `{settle:usdt|btc}`), and a literal and a
/// placeholder listing none (`set-greeks` and `{setting}`), but where a profile keeps the two
/// entries apart ([`crate::policy::profile::entries_kept_apart`]: `{orderId}` and KuCoin's
/// `cancelAll`). The first such entry took the request, so a narrowing written after a broader
/// entry was dead (red-team round 27, F3).
fn same_endpoint(a: &Endpoint, b: &Endpoint) -> bool {
    let values = |seg: &str| -> Option<Option<Vec<String>>> {
        let (_, listed) = crate::policy::profile::placeholder(seg)?;
        Some(listed.map(|alts| alts.split('|').map(str::to_ascii_lowercase).collect()))
    };
    let alike = |x: &str, y: &str| match (values(x), values(y)) {
        (None, None) => x.eq_ignore_ascii_case(y),
        (Some(Some(xs)), Some(Some(ys))) => xs.iter().any(|v| ys.contains(v)),
        (Some(_), Some(_)) => true,
        // A literal one of a placeholder's listed values (`usdt` and `{settle:usdt|btc}`), or
        // any literal for a placeholder listing none.
        (None, Some(Some(vs))) => vs.contains(&x.to_ascii_lowercase()),
        (Some(Some(vs)), None) => vs.contains(&y.to_ascii_lowercase()),
        (None, Some(None)) | (Some(None), None) => true,
    };
    let (sa, sb): (Vec<&str>, Vec<&str>) =
        (a.path.split('/').collect(), b.path.split('/').collect());
    a.method.eq_ignore_ascii_case(&b.method)
        && sa.len() == sb.len()
        && sa.iter().zip(&sb).all(|(x, y)| alike(x, y))
        && !crate::policy::profile::entries_kept_apart(a, b)
}

/// `[keys.NAME]` into a [`KeyPolicy`], with errors that say how to write each entry.
fn key_policy(name: &str, key: RawKey) -> Result<KeyPolicy, String> {
    // Quoted where TOML needs it: `keys."okx.spot"`, not the table `spot` in `okx`.
    let table = crate::policy::profile::key_table(name);
    let mut policy = KeyPolicy {
        ws_login: key.ws_login,
        parameterless: key.parameterless,
        margin: key.margin,
        ..KeyPolicy::default()
    };
    for (i, value) in key.allow.into_iter().enumerate() {
        let at = format!("{table}.allow[{i}]");
        if let toml::Value::String(old) = &value {
            return Err(format!(
                "{at} = {old:?}: allow entries now widen the key's built-in trading profile and \
                 name their parameters, as tables: {{ method = \"POST\", path = \"/x/y\", \
                 params = [\"a\", \"b\"] }}. To restrict the key to some endpoints instead, \
                 write only = [\"METHOD /path\"]"
            ));
        }
        let entry: Endpoint = value.try_into().map_err(|e| {
            format!("{at}: {e}; write {{ method = \"POST\", path = \"/x/y\", params = [\"a\"] }}")
        })?;
        entry.check().map_err(|e| format!("{at}: {e}"))?;
        // Red-team round 27, F1: `/api/v5/account/{setting}`, written for a few settings,
        // reached OKX's option activation; such an entry is now refused as it is read, not
        // left to surprise the trader at the request.
        if let Some(withheld) = crate::policy::withheld_through_placeholder(&entry) {
            return Err(format!(
                "{at} ({} {}) takes {withheld}; an entry signs such an endpoint only where its \
                 path names it word for word, never through a placeholder. Hold the \
                 placeholder to the segments you mean ({{name:a|b}}, none that a trading \
                 profile's endpoint has in that place: write those word for word) or write an \
                 entry for each endpoint; if this key must send that one, give it an entry of \
                 its own (docs/policy.md, \"Changing a key's profile\")",
                entry.method, entry.path
            ));
        }
        // Red-team round 27, R1: a placeholder listing a profile endpoint's literal
        // (`{x:order|amend-order}`) never took that endpoint's requests, the profile's own
        // entry did, so its narrowing was dead while `status` listed it.
        if let Some((exchange, profiled)) = crate::policy::profile::answered_by_profile(&entry) {
            return Err(format!(
                "{at} ({} {}): its placeholder lists a segment of {exchange}'s profile endpoint \
                 {} {}, whose requests the profile's own entry takes: a placeholder entry \
                 stands in only for a profile endpoint with a placeholder in the same places, so \
                 this entry would not count there. Write one entry per path, with the path word \
                 for word ({} {}), which does replace the profile's entry, and leave that \
                 segment out of the placeholder (docs/policy.md, \"Changing a key's profile\")",
                entry.method,
                entry.path,
                profiled.method,
                profiled.path,
                profiled.method,
                profiled.path
            ));
        }
        // The first entry that matches a request is the one used: a second for the same
        // endpoint (a suggested line pasted, then a narrowed copy after it) would never count.
        if let Some((j, first)) = policy
            .allow
            .iter()
            .enumerate()
            .find(|(_, e)| same_endpoint(e, &entry))
        {
            return Err(format!(
                "{at} ({} {}): {table}.allow[{j}] ({} {}) already takes its requests, or some \
                 of them, and only the first entry that takes a request is used, so this one \
                 would not count there; merge the two into one, or hold a placeholder to the \
                 segments it is for ({{name:a|b}}, none that a trading profile's endpoint has \
                 in that place: write those word for word)",
                entry.method, entry.path, first.method, first.path
            ));
        }
        policy.allow.push(entry);
    }
    for (i, text) in key.only.iter().enumerate() {
        let at = format!("{table}.only[{i}]");
        let Some((method, path)) = text.split_once(' ') else {
            return Err(format!(
                "{at} = {text:?}: write \"METHOD /path\", e.g. \"POST /api/v3/order\""
            ));
        };
        let probe = Endpoint {
            method: method.into(),
            path: path.into(),
            doc: None,
            params: Vec::new(),
            required: vec![],
            values: Default::default(),
            body: None,
        };
        probe.check().map_err(|e| format!("{at} = {text:?}: {e}"))?;
        policy.only.push((method.into(), path.into()));
    }
    Ok(policy)
}

impl Config {
    /// Read `path`; a missing file means the defaults. The file decides what the agent signs,
    /// so it (and its folder) must belong to the user (or root) and be writable by no one else.
    pub fn load(path: &Path) -> Result<Config, String> {
        match check_owned(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e.to_string()),
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse and validate the TOML text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut c = Config::default();
        let dur = |v: &Option<String>, d: Duration| v.as_deref().map_or(Ok(d), parse_duration);
        let s = &raw.session;
        c.session.ttl = dur(&s.ttl, c.session.ttl)?;
        c.session.idle = dur(&s.idle, c.session.idle)?;
        c.session.max_ttl = dur(&s.max_ttl, c.session.max_ttl)?;
        c.session.max_idle = dur(&s.max_idle, c.session.max_idle)?;
        c.session.max_signatures = s.max_signatures.unwrap_or(c.session.max_signatures);
        c.session.max_signatures_cap = s.max_signatures_cap.unwrap_or(c.session.max_signatures_cap);
        c.session.per_key_max_signatures = s.per_key_max_signatures;
        c.signing.max_skew_ms = raw.signing.max_skew_ms.unwrap_or(c.signing.max_skew_ms);
        c.signing.recv_window_cap_ms = raw
            .signing
            .recv_window_cap_ms
            .unwrap_or(c.signing.recv_window_cap_ms);
        let v = &raw.server;
        c.server.max_connections = v.max_connections.unwrap_or(c.server.max_connections);
        c.server.frame_timeout = dur(&v.frame_timeout, c.server.frame_timeout)?;
        c.server.idle_connection_timeout =
            dur(&v.idle_connection_timeout, c.server.idle_connection_timeout)?;
        c.lock.screen = raw.lock.screen.unwrap_or(c.lock.screen);
        c.lock.suspend = raw.lock.suspend.unwrap_or(c.lock.suspend);
        c.notifications.enabled = raw.notifications.enabled.unwrap_or(c.notifications.enabled);
        c.audit.flush = raw.audit.flush.unwrap_or(c.audit.flush);
        c.audit.sync_interval = dur(&raw.audit.sync_interval, c.audit.sync_interval)?;
        for (name, key) in raw.keys {
            c.keys.insert(name.clone(), key_policy(&name, key)?);
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        /// The widest a timestamp window may be set.
        const SIGNING_WINDOW_MAX_MS: u64 = 60_000;
        let s = &self.session;
        if s.ttl.is_zero() || s.idle.is_zero() || s.max_signatures == 0 {
            return Err("session ttl, idle and max_signatures must be above zero".into());
        }
        // Each with both values and the way out (red-team round 24: the names alone).
        let show = crate::clock::format_duration;
        if s.ttl > s.max_ttl {
            return Err(format!(
                "session.ttl = {} is above session.max_ttl = {}: lower ttl, or raise max_ttl with it",
                show(s.ttl),
                show(s.max_ttl)
            ));
        }
        if s.idle > s.max_idle {
            return Err(format!(
                "session.idle = {} is above session.max_idle = {}: lower idle, or raise max_idle with it",
                show(s.idle),
                show(s.max_idle)
            ));
        }
        if s.max_signatures > s.max_signatures_cap {
            return Err(format!(
                "session.max_signatures = {} is above session.max_signatures_cap = {}: lower max_signatures, or raise max_signatures_cap with it",
                s.max_signatures, s.max_signatures_cap
            ));
        }
        if s.per_key_max_signatures == Some(0) {
            return Err(
                "session.per_key_max_signatures must be above zero (with zero, every signature is refused); leave it out for no budget per key"
                    .into(),
            );
        }
        if self.server.max_connections == 0 {
            return Err("server.max_connections must be at least 1".into());
        }
        if self.server.frame_timeout.is_zero() || self.server.idle_connection_timeout.is_zero() {
            return Err(
                "server.frame_timeout and server.idle_connection_timeout must be above zero (with zero, every connection is closed at once)"
                    .into(),
            );
        }
        let g = &self.signing;
        for (name, value) in [
            ("max_skew_ms", g.max_skew_ms),
            ("recv_window_cap_ms", g.recv_window_cap_ms),
        ] {
            if value == 0 || value > SIGNING_WINDOW_MAX_MS {
                return Err(format!(
                    "signing.{name} must be between 1 and {SIGNING_WINDOW_MAX_MS} ms (a minute: Binance's own ceiling for recvWindow); more would let an old or future request be signed"
                ));
            }
        }
        let every = self.audit.sync_interval;
        if every.is_zero() || every > SYNC_INTERVAL_MAX {
            return Err(format!(
                "audit.sync_interval must be between 1s and {}s; to sync every signature's line, \
                 set audit.flush = \"sync\"",
                SYNC_INTERVAL_MAX.as_secs()
            ));
        }
        Ok(())
    }

    /// The warning for `[keys.NAME]` tables that name no credential of `held` (the keystore's
    /// names), if any. Not an error: a table may be written before its key is added. But a
    /// mistyped name leaves the key it meant on its exchange's whole profile while `status`
    /// shows the table, and nothing said so (red-team round 24); this is said in the agent's
    /// log at start, in `status` and in every unlock's answer, and by `policy explain`.
    pub fn unmatched_keys(&self, held: &std::collections::BTreeSet<String>) -> Option<String> {
        let stray: Vec<String> = (self.keys.keys())
            .filter(|k| !held.contains(*k))
            .map(|k| format!("{k:?}"))
            .collect();
        if stray.is_empty() {
            return None;
        }
        let untabled: Vec<&str> = (held.iter())
            .filter(|k| !self.keys.contains_key(*k))
            .map(String::as_str)
            .collect();
        let defaults = match untabled.as_slice() {
            [] => String::new(),
            few if few.len() <= UNTABLED_SHOWN => {
                format!(
                    "; the keys with no table, which sign with their exchange's whole trading profile: {}",
                    few.join(", ")
                )
            }
            many => format!(
                "; {} keys have no table, and sign with their exchange's whole trading profile (`tapsign key list` names them)",
                many.len()
            ),
        };
        let (tables, names) = match stray.len() {
            1 => (
                "a [keys] table that applies",
                "no stored credential is named",
            ),
            _ => (
                "[keys] tables that apply",
                "no stored credential has the names",
            ),
        };
        Some(format!(
            "config.toml has {tables} to no key: {names} {} (a typo? or a key not added yet){defaults}",
            stray.join(", ")
        ))
    }

    /// A warning for each `[keys.NAME]` table setting a switch that does nothing for that
    /// key's exchange (`exchange_of` reads it from the keystore; a key it cannot read is
    /// skipped).
    pub fn idle_switches(
        &self,
        exchange_of: impl Fn(&str) -> Option<crate::credential::Exchange>,
    ) -> Vec<String> {
        (self.keys.iter())
            .filter(|(_, p)| p.parameterless || p.margin)
            .filter_map(|(name, p)| {
                let exchange = exchange_of(name)?;
                let idle = p.idle_switches(exchange);
                (!idle.is_empty()).then(|| {
                    format!(
                        "config.toml's [{}] sets {}, which changes nothing for a {exchange} key: remove it (or check the table names the key you meant)",
                        crate::policy::profile::key_table(name),
                        idle.join(" and ")
                    )
                })
            })
            .collect()
    }

    /// A key's policy (the default, its exchange's profile as it is, when config.toml does
    /// not name the key).
    pub fn key_policy(&self, key: &str) -> &KeyPolicy {
        static DEFAULT: KeyPolicy = KeyPolicy {
            allow: Vec::new(),
            only: Vec::new(),
            ws_login: false,
            parameterless: false,
            margin: false,
        };
        self.keys.get(key).unwrap_or(&DEFAULT)
    }

    /// The bounds of a new session: what `unlock` asked for, defaults for the rest, capped.
    /// Asking for more than a cap is an error, not a silent cut: the trader should know.
    pub fn bounds(
        &self,
        ttl: Option<Duration>,
        idle: Option<Duration>,
        max_signatures: Option<u64>,
    ) -> Result<Bounds, String> {
        let s = &self.session;
        let capped = |asked: Duration, what: &str, cap: Duration, setting: &str| {
            if asked <= cap {
                return Ok(asked);
            }
            let show = crate::clock::format_duration;
            Err(format!(
                "{what} of {} is above the configured cap session.{setting} = {}",
                show(asked),
                show(cap)
            ))
        };
        let ttl = capped(ttl.unwrap_or(s.ttl), "a lifetime", s.max_ttl, "max_ttl")?;
        let idle = capped(
            idle.unwrap_or(s.idle),
            "an idle timeout",
            s.max_idle,
            "max_idle",
        )?;
        let max = max_signatures.unwrap_or(s.max_signatures);
        if max > s.max_signatures_cap {
            return Err(format!(
                "a budget of {max} signatures is above the configured cap session.max_signatures_cap = {}",
                s.max_signatures_cap
            ));
        }
        if ttl.is_zero() || max == 0 || idle.is_zero() {
            return Err("lifetime, idle timeout and budget must be above zero".into());
        }
        Ok(Bounds {
            ttl,
            idle,
            max_signatures: max,
            per_key: s.per_key_max_signatures,
        })
    }
}

/// The file at `path` and the folders holding it (the link and its target, when it is a
/// symbolic link) belong to the user or root, and no one else can write them
/// ([`Need::Unwritable`]: others may read it, it holds no secret). Links are followed here:
/// config files are often links into a dotfiles folder, and what counts is where they lead.
fn check_owned(path: &Path) -> std::io::Result<()> {
    let check = |p: &Path, kind: Kind| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        let Some(problem) = disk::exposure(&meta, kind, Need::Unwritable) else {
            return Ok(());
        };
        let what = match kind {
            Kind::File => "the config file",
            Kind::Folder => "the folder",
        };
        Err(std::io::Error::other(format!(
            "{what} {} {problem}: config.toml decides what the agent signs, so the agent does \
             not read it; make it yours and closed to writes by others (chown, then chmod go-w)",
            p.display()
        )))
    };
    let meta = std::fs::symlink_metadata(path)?;
    let real = if meta.file_type().is_symlink() {
        std::fs::canonicalize(path)?
    } else {
        path.to_path_buf()
    };
    check(&real, Kind::File)?;
    for file in [path, real.as_path()] {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            check(dir, Kind::Folder)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn fields_parse_and_unknown_fields_are_rejected() {
        let c = Config::parse("[session]\nttl = \"2h\"\nmax_signatures = 7\n").unwrap();
        assert_eq!(c.session.ttl, Duration::from_secs(7200));
        assert_eq!(c.session.max_signatures, 7);
        let err = Config::parse("[session]\nttl_typo = \"2h\"\n").unwrap_err();
        assert!(err.contains("ttl_typo"), "{err}");
    }

    #[test]
    fn lock_sources_and_notifications_can_be_switched_off() {
        let d = Config::default();
        assert!(d.lock.screen && d.lock.suspend && d.notifications.enabled);
        let c =
            Config::parse("[lock]\nscreen = false\n[notifications]\nenabled = false\n").unwrap();
        assert!(!c.lock.screen && c.lock.suspend && !c.notifications.enabled);
    }

    /// Red-team round 24: these named the two settings but neither value nor the way out.
    #[test]
    fn a_default_above_its_cap_names_both_values_and_the_fix() {
        let err = Config::parse("[session]\nttl = \"25h\"\n").unwrap_err();
        assert_eq!(
            err,
            "session.ttl = 1d1h is above session.max_ttl = 1d: lower ttl, or raise max_ttl with it"
        );
        let err = Config::parse("[session]\nidle = \"9h\"\n").unwrap_err();
        assert!(
            err.contains("session.idle = 9h is above session.max_idle = 8h"),
            "{err}"
        );
        let err = Config::parse("[session]\nmax_signatures = 2000000\n").unwrap_err();
        assert!(
            err.contains("= 2000000 is above session.max_signatures_cap = 1000000"),
            "{err}"
        );
    }

    /// Red-team round 24: a table for a mistyped name applied to no key, silently.
    #[test]
    fn a_table_naming_no_stored_key_is_a_warning_naming_the_keys_left_on_their_profile() {
        let c = Config::parse("[keys.binance-mian]\nonly = [\"GET /api/v3/account\"]\n").unwrap();
        let held = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let w = c.unmatched_keys(&held(&["binance-main", "okx"])).unwrap();
        assert!(
            w.contains("no stored credential is named \"binance-mian\""),
            "{w}"
        );
        assert!(
            w.ends_with("whole trading profile: binance-main, okx"),
            "{w}"
        );
        assert!(c.unmatched_keys(&held(&["binance-mian"])).is_none());
        assert!(Config::default().unmatched_keys(&held(&[])).is_none());
        let many: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let w = c.unmatched_keys(&many.into_iter().collect()).unwrap();
        assert!(w.contains("20 keys have no table"), "{w}");
    }

    #[test]
    fn key_policies_widen_with_tables_and_narrow_with_only() {
        let c = Config::parse(
            "[keys.bot1]\nallow = [{ method = \"POST\", path = \"/sapi/v1/margin/order\", params = [\"symbol\", \"side\"] }]\nonly = [\"POST /api/v3/order\"]\nws_login = true\nparameterless = true\n",
        )
        .unwrap();
        let p = c.key_policy("bot1");
        assert!(p.parameterless && !c.key_policy("other").parameterless);
        assert_eq!(p.allow[0].params, ["symbol", "side"]);
        assert_eq!(p.only, [("POST".to_string(), "/api/v3/order".to_string())]);
        assert!(p.ws_login && !c.key_policy("other").ws_login);
        let err = Config::parse("[keys.bot1]\nallow = [\"POST /api/v3/order\"]\n").unwrap_err();
        assert!(
            err.contains("keys.bot1.allow[0]") && err.contains("only ="),
            "{err}"
        );
        let err = Config::parse("[keys.bot1]\nallow = [{ method = \"FLY\", path = \"/x\" }]\n")
            .unwrap_err();
        assert!(err.contains("keys.bot1.allow[0]"), "{err}");
        let err = Config::parse(
            "[keys.bot1]\nallow = [{ method = \"GET\", path = \"/x\", parms = [] }]\n",
        )
        .unwrap_err();
        assert!(err.contains("parms"), "{err}");
        assert!(Config::parse("[keys.b]\nonly = [\"POST\"]\n").is_err());
    }

    /// Two entries for one endpoint: only the first was used, silently, so a narrowed copy
    /// pasted after a suggested line never took effect (red-team round 16).
    #[test]
    fn two_allow_entries_for_one_endpoint_are_refused() {
        let entry = |path: &str, values: &str| {
            format!("{{ method = \"POST\", path = \"{path}\", params = [\"a\"]{values} }}")
        };
        let config = |a: &str, b: &str| format!("[keys.k]\nallow = [{a}, {b}]\n");
        let err = Config::parse(&config(
            &entry("/api/v5/trade/order", ""),
            &entry("/api/v5/trade/order", ", values = { a = [\"x\"] }"),
        ))
        .unwrap_err();
        assert!(
            err.contains("keys.k.allow[1]") && err.contains("allow[0]"),
            "{err}"
        );
        let err =
            Config::parse(&config(&entry("/x/{id}", ""), &entry("/x/{orderId}", ""))).unwrap_err();
        assert!(err.contains("merge"), "{err}");
        // Placeholders that can take one value (recheck of round 16): reordered, overlapping
        // or in another case, only the first entry would be used.
        for (a, b) in [
            ("/f/{settle:usdt|btc}/o", "/f/{settle:btc|usdt}/o"),
            ("/f/{settle:usdt|btc|USDT|BTC}/o", "/f/{settle:usdt}/o"),
            ("/f/{settle:usdt}/o", "/f/{settle:USDT}/o"),
            ("/f/{settle}/o", "/f/{s:usdt}/o"),
            ("/f/usdt/o", "/f/{settle:usdt|btc|USDT|BTC}/o"),
            ("/f/{settle:btc|usdt}/o", "/f/USDT/o"),
            ("/f/usdt/o", "/F/USDT/o"),
        ] {
            let err = Config::parse(&config(&entry(a, ""), &entry(b, ""))).unwrap_err();
            assert!(err.contains("merge"), "{a} {b}: {err}");
        }
        // Other endpoints, and placeholders held to other values, are other entries.
        Config::parse(&config(&entry("/x/{m:a|b}", ""), &entry("/x/{m:c}", ""))).unwrap();
        Config::parse(&config(&entry("/x/{id}", ""), &entry("/y/cancelAll", ""))).unwrap();
    }

    /// Red-team round 27, F3: a placeholder entry and a literal entry that take the same
    /// request both loaded, and the first took it, so a narrowing appended after a broader
    /// entry was dead while `status` listed it. They are refused, in either order, as are
    /// placeholders in different places that meet on one path; but for a pair a profile keeps
    /// apart: `{orderId}` beside KuCoin's literal `cancelAll`, each of which takes its own.
    #[test]
    fn a_placeholder_entry_and_a_literal_one_for_the_same_request_are_refused() {
        let entry = |method: &str, path: &str| {
            format!("{{ method = \"{method}\", path = \"{path}\", params = [\"a\"] }}")
        };
        let config = |a: &str, b: &str| format!("[keys.k]\nallow = [{a}, {b}]\n");
        for (a, b) in [
            ("/f/{x}/o", "/f/a/o"),
            ("/api/v5/{section}/set-greeks", "/api/v5/account/set-greeks"),
            ("/f/{x}/o", "/f/{y:a|b}/o"),
            ("/f/{x}/o", "/f/A/o"),
            ("/f/{x}/b", "/f/a/{y}"),
            ("/x/{id}", "/x/cancelAll"),
        ] {
            for (first, second) in [(a, b), (b, a)] {
                let err = Config::parse(&config(&entry("POST", first), &entry("POST", second)))
                    .unwrap_err();
                assert!(
                    err.contains("keys.k.allow[1]")
                        && err.contains("allow[0]")
                        && err.contains("merge"),
                    "{first} {second}: {err}"
                );
            }
        }
        // KuCoin's cancel by id and cancel-all: a profile endpoint each.
        let by_id = entry("DELETE", "/api/v1/hf/orders/{id}");
        let all = entry("DELETE", "/api/v1/hf/orders/cancelAll");
        for (first, second) in [(&by_id, &all), (&all, &by_id)] {
            Config::parse(&config(first, second)).unwrap();
        }
        // Another method is another endpoint.
        Config::parse(&config(&entry("GET", "/f/{x}/o"), &entry("POST", "/f/a/o"))).unwrap();
    }

    /// Red-team round 27, R1: a placeholder entry that lists a profile endpoint's literal
    /// segment loaded, but the profile's own entry took that endpoint's requests, so a swap
    /// order in `cross` signed under `values = { tdMode = ["cash"] }`. Such an entry is refused,
    /// pointing at the literal entry that does replace the profile's; a placeholder listing
    /// nothing, and one listing only segments the profile has no literal entry for, load.
    #[test]
    fn a_placeholder_listing_a_profile_endpoint_literal_is_refused() {
        let config = |entry: &str| format!("[keys.k]\nallow = [{entry}]\n");
        for (entry, names) in [
            (
                "{ method = \"POST\", path = \"/api/v5/trade/{x:order|amend-order}\", \
                 params = [\"instId\", \"tdMode\", \"side\", \"ordType\", \"sz\"], \
                 values = { tdMode = [\"cash\"] } }",
                "POST /api/v5/trade/amend-order",
            ),
            (
                "{ method = \"POST\", path = \"/api/v5/trade/{x:ORDER}\", params = [\"instId\"] }",
                "POST /api/v5/trade/order",
            ),
            (
                "{ method = \"DELETE\", path = \"/api/v1/hf/orders/{x:cancelAll|foo}\", \
                 params = [\"symbol\"], values = { symbol = [\"BTC-USDT\"] } }",
                "DELETE /api/v1/hf/orders/cancelAll",
            ),
        ] {
            let err = Config::parse(&config(entry)).unwrap_err();
            assert!(
                err.contains("keys.k.allow[0]")
                    && err.contains(names)
                    && err.contains("word for word")
                    && err.contains("does replace the profile's entry"),
                "{entry}: {err}"
            );
        }
        for entry in [
            "{ method = \"POST\", path = \"/api/v5/trade/order\", params = [\"instId\"] }",
            "{ method = \"DELETE\", path = \"/api/v1/hf/orders/{orderId}\", params = [\"symbol\"] }",
            "{ method = \"DELETE\", path = \"/api/v1/hf/orders/{orderId:foo|bar}\", params = [\"symbol\"] }",
            "{ method = \"POST\", path = \"/api/v4/futures/{settle:usdt}/orders\", params = [\"contract\"] }",
        ] {
            Config::parse(&config(entry)).unwrap();
        }
    }

    /// The advice of the F1 and F3 refusals, followed: a placeholder held to segments loads,
    /// but not one listing a segment a profile endpoint has there (R1 refuses it), so both say
    /// to write those word for word, which loads beside the held placeholder.
    #[test]
    fn holding_a_placeholder_as_advised_names_the_segments_that_need_an_entry_of_their_own() {
        let config = |entries: &[&str]| {
            let each: Vec<String> = entries
                .iter()
                .map(|p| format!("{{ method = \"POST\", path = \"{p}\", params = [\"a\"] }}"))
                .collect();
            Config::parse(&format!("[keys.k]\nallow = [{}]\n", each.join(", ")))
        };
        let advised = "none that a trading profile's endpoint has in that place: write those \
                       word for word";
        // F1: the entry takes a withheld endpoint.
        let err = config(&["/api/v5/account/{setting}"]).unwrap_err();
        assert!(err.contains("{name:a|b}") && err.contains(advised), "{err}");
        // F3: two entries take one request.
        let err = config(&["/api/v5/{s}/set-greeks", "/api/v5/account/set-greeks"]).unwrap_err();
        assert!(err.contains("{name:a|b}") && err.contains(advised), "{err}");
        // Held to a segment the OKX profile has an endpoint for: refused; word for word, loads.
        config(&["/api/v5/account/{setting:set-leverage|set-greeks}"]).unwrap_err();
        config(&[
            "/api/v5/account/{setting:set-greeks|set-fee-type}",
            "/api/v5/account/set-leverage",
        ])
        .unwrap();
    }

    /// Red-team round 27: `params` took `*` and `a.*` (any one key under `a`), undocumented,
    /// and `values` or `required` naming one were accepted and held nothing, or refused every
    /// request. A wildcard is refused when config.toml is read.
    #[test]
    fn a_wildcard_in_params_is_refused() {
        for (params, more) in [
            ("\"*\"", ""),
            ("\"a.*\"", ""),
            ("\"a\", \"a.*\"", ", values = { \"a.*\" = [\"x\"] }"),
            ("\"a.*\"", ", required = [\"a.*\"]"),
        ] {
            let err = Config::parse(&format!(
                "[keys.k]\nallow = [{{ method = \"POST\", path = \"/x\", params = [{params}]{more} }}]\n"
            ))
            .unwrap_err();
            assert!(
                err.contains("keys.k.allow[0]") && err.contains("no wildcard"),
                "{params}: {err}"
            );
        }
    }

    #[test]
    fn an_entry_whose_path_ends_in_a_file_extension_is_refused() {
        // Red-team round 18, recheck: it loaded, matched no request (every request whose last
        // segment holds a '.' is refused) and narrowed nothing it was written to narrow.
        let err = Config::parse(
            "[keys.k]\nallow = [{ method = \"POST\", path = \"/api/ua/v1/unified/order/place.json\", params = [\"tradeType\"] }]\n",
        )
        .unwrap_err();
        assert!(err.contains("file extension"), "{err}");
        // A '.' elsewhere in the path, or in a placeholder's values, is not an extension.
        Config::parse(
            "[keys.k]\nallow = [{ method = \"GET\", path = \"/v1.2/x\", params = [\"a\"] }]\n",
        )
        .unwrap();
    }

    /// A budget of zero per key was accepted: the unlock then said it opened a session, and
    /// every signature was refused as over budget (docs audit, 2026-12-05).
    #[test]
    fn a_per_key_budget_of_zero_is_refused() {
        let err = Config::parse("[session]\nper_key_max_signatures = 0\n").unwrap_err();
        assert!(
            err.contains("per_key_max_signatures must be above zero"),
            "{err}"
        );
        let c = Config::parse("[session]\nper_key_max_signatures = 1\n").unwrap();
        assert_eq!(c.session.per_key_max_signatures, Some(1));
    }

    #[test]
    fn audit_flush_modes_parse_and_a_bad_interval_is_refused() {
        let d = Config::default().audit;
        assert_eq!(d.flush, Flush::IncrementalAsync);
        assert_eq!(d.sync_interval, Duration::from_secs(1));
        let c = Config::parse("[audit]\nflush = \"sync\"\nsync_interval = \"5s\"\n").unwrap();
        assert_eq!(c.audit.flush, Flush::Sync);
        assert_eq!(c.audit.sync_interval, Duration::from_secs(5));
        let c = Config::parse("[audit]\nflush = \"incremental_async\"\n").unwrap();
        assert_eq!(c.audit.flush, Flush::IncrementalAsync);
        let err = Config::parse("[audit]\nflush = \"never\"\n").unwrap_err();
        assert!(err.contains("incremental_async"), "{err}");
        for bad in ["0s", "2m"] {
            let err = Config::parse(&format!("[audit]\nsync_interval = \"{bad}\"\n")).unwrap_err();
            assert!(err.contains("audit.sync_interval"), "{bad}: {err}");
        }
        assert!(Config::parse("[audit]\nsync = true\n").is_err());
    }

    #[test]
    fn a_config_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "[signing]\nrecv_window_cap_ms = 60000\n").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Config::load(&file).unwrap().signing.recv_window_cap_ms,
            60000
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Config::load(&file).unwrap_err();
        assert!(err.contains("can be written by other users"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Config::load(&file).unwrap_err();
        assert!(err.contains("the folder"), "{err}");
        assert_eq!(
            Config::load(&dir.path().join("none.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unlock_above_caps_is_refused() {
        let c = Config::default();
        assert!(
            c.bounds(Some(Duration::from_secs(48 * 3600)), None, None)
                .is_err()
        );
        assert!(c.bounds(None, None, Some(2_000_000)).is_err());
        let b = c
            .bounds(Some(Duration::from_secs(60)), None, Some(3))
            .unwrap();
        assert_eq!(
            (b.ttl, b.max_signatures, b.idle),
            (Duration::from_secs(60), 3, c.session.idle)
        );
    }

    #[test]
    fn settings_that_would_turn_a_bound_off_or_close_every_connection_are_refused() {
        // Accepted once: a zero timeout closed each connection right after hello, and a
        // skew of u64::MAX let `timestamp=1` be signed.
        for (toml, says) in [
            ("[server]\nframe_timeout = \"0s\"\n", "above zero"),
            ("[server]\nidle_connection_timeout = \"0s\"\n", "above zero"),
            (
                "[signing]\nmax_skew_ms = 18446744073709551615\n",
                "signing.max_skew_ms",
            ),
            ("[signing]\nmax_skew_ms = 0\n", "signing.max_skew_ms"),
            (
                "[signing]\nrecv_window_cap_ms = 60001\n",
                "signing.recv_window_cap_ms",
            ),
        ] {
            let err = Config::parse(toml)
                .err()
                .unwrap_or_else(|| panic!("{toml}"));
            assert!(err.to_string().contains(says), "{toml}: {err}");
        }
        let c = Config::parse("[signing]\nmax_skew_ms = 60000\nrecv_window_cap_ms = 60000\n");
        assert_eq!(c.unwrap().signing.max_skew_ms, 60_000);
    }

    #[test]
    fn an_idle_timeout_above_its_cap_is_refused() {
        // A bot's `unlock --extend` with a huge idle_secs once turned the idle bound off.
        let c = Config::default();
        let err = c
            .bounds(None, Some(Duration::from_secs(999_999_999)), None)
            .unwrap_err();
        assert!(err.contains("session.max_idle = 8h"), "{err}");
        let b = c
            .bounds(None, Some(Duration::from_secs(8 * 3600)), None)
            .unwrap();
        assert_eq!(b.idle, Duration::from_secs(8 * 3600));
        let c = Config::parse("[session]\nmax_idle = \"2d\"\n").unwrap();
        assert!(
            c.bounds(None, Some(Duration::from_secs(86_400)), None)
                .is_ok()
        );
        let err = Config::parse("[session]\nidle = \"9h\"\n").unwrap_err();
        assert!(err.contains("session.max_idle"), "{err}");
    }
}
