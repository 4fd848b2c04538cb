//! Lock sources: the things outside the agent that end a session when the trader walks away.
//!
//! - [`logind`] (system bus): our login session's `Lock` signal and `LockedHint` property, and
//!   the manager's `PrepareForSleep(true)` (suspend, lid close).
//! - [`screensaver`] (session bus): `ActiveChanged(true)` from `org.freedesktop.ScreenSaver`
//!   (KDE, Xfce, ...) and `org.gnome.ScreenSaver` (GNOME Shell).
//!
//! No single signal covers every desktop (docs/screen-lock.md), so the agent listens to all of
//! them and any one locks; `Agent::lock` is idempotent and audits the reason. A missing bus or
//! service is never fatal: the source is reported `live: false` with the reason in `status`,
//! and `unlock` warns when no screen-lock source is live.
//!
//! Each source task writes its state into a shared [`Sources`] table that `status` reads.

mod logind;
mod screensaver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapsign_proto::LockSource;
use tokio::task::JoinHandle;

use crate::agent::Agent;

/// Source names as `status` lists them.
pub const LOGIND_SESSION: &str = "logind-session";
pub const LOGIND_SLEEP: &str = "logind-sleep";
pub const FREEDESKTOP_SCREENSAVER: &str = "org.freedesktop.ScreenSaver";
pub const GNOME_SCREENSAVER: &str = "org.gnome.ScreenSaver";
pub const CINNAMON_SCREENSAVER: &str = "org.cinnamon.ScreenSaver";
pub const MATE_SCREENSAVER: &str = "org.mate.ScreenSaver";
pub const XFCE_SCREENSAVER: &str = "org.xfce.ScreenSaver";

/// The screensaver sources, in the order `status` lists them.
pub(super) const SCREENSAVERS: [&str; 5] = [
    FREEDESKTOP_SCREENSAVER,
    GNOME_SCREENSAVER,
    CINNAMON_SCREENSAVER,
    MATE_SCREENSAVER,
    XFCE_SCREENSAVER,
];

/// Whether `name` sees a screen lock (suspend alone does not count: a trader who locks the
/// screen and walks away never suspends).
fn sees_screen_lock(name: &str) -> bool {
    name == LOGIND_SESSION || SCREENSAVERS.contains(&name)
}

/// What `unlock` and `status` say when no screen lock would end the session.
pub const NO_SCREEN_LOCK: &str = "no screen-lock source is live: the session will not end when you lock your screen; see docs/screen-lock.md";

/// How long connecting to a bus and subscribing may take. A wedged bus must not keep a source
/// in limbo; it is reported not live instead.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the lock sources report, shared between their tasks and `status`.
#[derive(Clone, Default)]
pub struct Sources(Arc<Mutex<Vec<LockSource>>>);

impl Sources {
    /// Record the state of source `name` (added on first report, updated after).
    pub fn set(&self, name: &str, live: bool, detail: impl Into<String>) {
        let detail = Some(detail.into());
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|s| s.name == name) {
            Some(s) => {
                s.live = live;
                s.detail = detail;
            }
            None => all.push(LockSource {
                name: name.into(),
                live,
                detail,
            }),
        }
    }

    /// A copy of the table, for `status`.
    pub fn snapshot(&self) -> Vec<LockSource> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether any source that sees a screen lock is live.
    pub fn screen_lock_live(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|s| s.live && sees_screen_lock(&s.name))
    }
}

/// The running source tasks; [`Running::stop`] ends them at shutdown.
pub struct Running(Vec<JoinHandle<()>>);

impl Running {
    pub fn stop(self) {
        for task in self.0 {
            task.abort();
        }
    }
}

/// Start the lock sources the configuration asks for. Never fails: a source that cannot run
/// says why in `status` and the agent's log.
pub fn spawn(agent: &Arc<Agent>) -> Running {
    let cfg = agent.config.lock;
    let sources = &agent.dbus_sources;
    let off = |what: &str| format!("turned off in config.toml ([lock] {what} = false)");
    if !cfg.screen {
        for name in std::iter::once(LOGIND_SESSION).chain(SCREENSAVERS) {
            sources.set(name, false, off("screen"));
        }
    }
    if !cfg.suspend {
        sources.set(LOGIND_SLEEP, false, off("suspend"));
    }
    let mut tasks = Vec::new();
    if cfg.screen || cfg.suspend {
        for name in [LOGIND_SESSION, LOGIND_SLEEP] {
            if sources.snapshot().iter().all(|s| s.name != name) {
                sources.set(name, false, "connecting to the system bus");
            }
        }
        tasks.push(tokio::spawn(logind::run(Arc::clone(agent), cfg)));
    }
    if cfg.screen {
        for name in SCREENSAVERS {
            sources.set(name, false, "connecting to the session bus");
        }
        tasks.push(tokio::spawn(screensaver::run(Arc::clone(agent))));
    }
    Running(tasks)
}

/// Several sources down for one reason (no bus): one line in the log, each in `status`.
pub(crate) fn all_not_live(agent: &Agent, names: &[&str], why: String) {
    say!(
        "tapsign agent: warning: lock sources {} are not live: {why}",
        names.join(", ")
    );
    for name in names {
        agent.dbus_sources.set(name, false, why.clone());
    }
}

/// Log a source that is not live, once, as a warning in the agent's log.
pub(crate) fn not_live(agent: &Agent, name: &str, why: String) {
    say!("tapsign agent: warning: lock source {name} is not live: {why}");
    agent.dbus_sources.set(name, false, why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_screen_source_counts_as_screen_lock() {
        let s = Sources::default();
        assert!(!s.screen_lock_live(), "nothing reported yet");
        s.set(LOGIND_SLEEP, true, "suspend only");
        s.set(GNOME_SCREENSAVER, false, "absent");
        assert!(
            !s.screen_lock_live(),
            "suspend alone does not see a screen lock"
        );
        s.set(GNOME_SCREENSAVER, true, "appeared");
        assert!(s.screen_lock_live());
        assert_eq!(
            s.snapshot().len(),
            2,
            "a source is updated, not added twice"
        );
        s.set(GNOME_SCREENSAVER, false, "bus lost");
        assert!(!s.screen_lock_live());
    }
}
