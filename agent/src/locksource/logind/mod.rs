//! logind on the system bus: our login session's `Lock` signal and `LockedHint` property, and
//! `PrepareForSleep(true)` before a suspend.
//!
//! For suspend, the agent holds a logind `delay` inhibitor lock on `sleep` (org.freedesktop.
//! login1(5), "Inhibitor locks"): logind then waits for the agent to lock and let go of it
//! before the machine sleeps, instead of the agent locking whenever it next runs, which can be
//! after the wake (and, for hibernate, after the session's memory was written to disk). The
//! lock is let go right after the session is locked and taken again on `PrepareForSleep(false)`.
//!
//! The task follows logind itself as well as the session:
//! - while `org.freedesktop.login1` has no owner (logind not started yet, or restarting),
//!   both sources are not live and the task waits for the name to appear (NameOwnerChanged);
//!   when logind goes away it waits again, and subscribes afresh when it is back;
//! - which session to follow is looked up as [`session`] describes; when none is found yet
//!   (a user unit started before the desktop), or the graphical session changes, the task
//!   looks again on every `SessionNew`, `SessionRemoved` and change of the user's `Display`.

mod api;
mod session;

use std::sync::Arc;

use futures_util::StreamExt;
use zbus::Connection;

use super::{LOGIND_SESSION, LOGIND_SLEEP, SETUP_TIMEOUT, not_live};
use crate::agent::Agent;
use crate::config::LockConfig;
use crate::session::LockReason;
use api::{LOGIN1, ManagerProxy, PrepareForSleepStream, SessionNewStream, SessionRemovedStream};
use session::{Followed, UserWatch};

const LOST: &str = "lost the system bus connection; restart the agent to listen again";
const SLEEP_INHIBITED: &str = "logind PrepareForSleep: suspend and hibernate lock; the machine sleeps only once the session is locked (a logind delay inhibitor lock)";
const SLEEP_LATE: &str = "logind PrepareForSleep: suspend and hibernate lock, maybe only after the wake: logind refused a delay inhibitor lock: ";
const ABSENT: &str =
    "logind (org.freedesktop.login1) is not on the system bus; listening for it to start";

/// Follow logind until the system bus connection ends.
pub(super) async fn run(agent: Arc<Agent>, cfg: LockConfig) {
    let setup = async {
        let conn = Connection::system().await.map_err(|e| {
            format!(
                "no system bus ({e}); logind cannot tell the agent about screen lock or suspend"
            )
        })?;
        let owner = Owner::watch(&conn).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((conn, owner))
    };
    let (conn, mut owner) = match tokio::time::timeout(SETUP_TIMEOUT, setup).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return all_down(&agent, cfg, why),
        Err(_) => return all_down(&agent, cfg, timed_out()),
    };
    loop {
        if !owner.present {
            all_down(&agent, cfg, ABSENT.into());
            while !owner.present {
                if owner.changed().await.is_none() {
                    return all_down(&agent, cfg, LOST.into());
                }
            }
        }
        let started = tokio::time::timeout(SETUP_TIMEOUT, Watch::start(&agent, cfg, &conn)).await;
        let ended = match started {
            Ok(Ok(mut watch)) => watch.run(&agent, &mut owner).await,
            Ok(Err(why)) => stuck(&agent, cfg, why, &mut owner).await,
            Err(_) => stuck(&agent, cfg, timed_out(), &mut owner).await,
        };
        if ended == Ended::BusLost {
            return all_down(&agent, cfg, LOST.into());
        }
    }
}

fn timed_out() -> String {
    format!(
        "the system bus did not answer within {} s",
        SETUP_TIMEOUT.as_secs()
    )
}

/// Subscribing failed: report why, and try again once logind is replaced.
async fn stuck(agent: &Agent, cfg: LockConfig, why: String, owner: &mut Owner) -> Ended {
    all_down(agent, cfg, why);
    match owner.changed().await {
        Some(_) => Ended::LogindGone,
        None => Ended::BusLost,
    }
}

fn all_down(agent: &Agent, cfg: LockConfig, why: String) {
    let names: Vec<&str> = [(cfg.screen, LOGIND_SESSION), (cfg.suspend, LOGIND_SLEEP)]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    super::all_not_live(agent, &names, why);
}

/// Whether `org.freedesktop.login1` has an owner, kept current by NameOwnerChanged.
struct Owner {
    changes: zbus::fdo::NameOwnerChangedStream,
    present: bool,
}

impl Owner {
    /// Subscribe first, then ask: an owner that appears in between is not missed.
    async fn watch(conn: &Connection) -> zbus::Result<Owner> {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let changes = dbus
            .receive_name_owner_changed_with_args(&[(0, LOGIN1)])
            .await?;
        let present = dbus.name_has_owner(LOGIN1.try_into()?).await?;
        Ok(Owner { changes, present })
    }

    /// Wait for the next change of owner; `None` when the bus connection is gone.
    async fn changed(&mut self) -> Option<()> {
        let change = self.changes.next().await?;
        self.present = change.args().is_ok_and(|a| a.new_owner().is_some());
        Some(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// logind left the bus or was replaced: wait for it and subscribe again.
    LogindGone,
    BusLost,
}

/// The subscriptions to one running logind; each is `None` when off or not set up.
struct Watch {
    conn: Connection,
    manager: ManagerProxy<'static>,
    sleep: Option<PrepareForSleepStream>,
    /// The delay inhibitor lock on sleep, while held (dropping it closes the fd: released).
    inhibitor: Option<zbus::OwnedFd>,
    session_new: Option<SessionNewStream>,
    session_removed: Option<SessionRemovedStream>,
    user: Option<UserWatch>,
    followed: Option<Followed>,
    /// Why no session is followed, as last reported: a new login of someone else (each
    /// brings a SessionNew) does not log the same line again.
    waiting: Option<String>,
}

impl Watch {
    async fn start(agent: &Agent, cfg: LockConfig, conn: &Connection) -> Result<Watch, String> {
        let manager = ManagerProxy::new(conn).await.map_err(|e| e.to_string())?;
        let mut w = Watch {
            conn: conn.clone(),
            manager,
            sleep: None,
            inhibitor: None,
            session_new: None,
            session_removed: None,
            user: None,
            followed: None,
            waiting: None,
        };
        if cfg.suspend {
            // Subscribed before the inhibitor is taken: a suspend that starts in between is
            // heard, not waited on for InhibitDelayMaxSec.
            match w.manager.receive_prepare_for_sleep().await {
                Ok(s) => {
                    w.sleep = Some(s);
                    w.take_inhibitor(agent).await;
                }
                Err(e) => not_live(agent, LOGIND_SLEEP, format!("cannot subscribe: {e}")),
            }
        }
        if cfg.screen {
            // Subscribed before the lookup, so a session that starts meanwhile is not missed.
            let subscribe = async {
                let new = w.manager.receive_session_new().await?;
                let removed = w.manager.receive_session_removed().await?;
                Ok::<_, zbus::Error>((new, removed))
            };
            match subscribe.await {
                Ok((new, removed)) => {
                    w.session_new = Some(new);
                    w.session_removed = Some(removed);
                }
                Err(e) => {
                    not_live(agent, LOGIND_SESSION, format!("cannot subscribe: {e}"));
                    return Ok(w);
                }
            }
            w.user = session::watch_user(conn, &w.manager).await.ok();
            w.look_again(agent).await;
        }
        Ok(w)
    }

    /// Lock on every signal that says the trader is gone, and keep following the session.
    async fn run(&mut self, agent: &Agent, owner: &mut Owner) -> Ended {
        loop {
            let (lock, hint) = match &mut self.followed {
                Some(f) => (Some(&mut f.lock), Some(&mut f.hint)),
                None => (None, None),
            };
            tokio::select! {
                change = owner.changed() => return match change {
                    Some(()) => Ended::LogindGone,
                    None => Ended::BusLost,
                },
                ev = next(self.sleep.as_mut()) => match ev {
                    Some(sig) => match sig.args().map(|a| *a.start()) {
                        Ok(true) => {
                            lock_now(agent, "suspend (logind PrepareForSleep)");
                            // Locked: let the machine sleep.
                            self.inhibitor = None;
                        }
                        Ok(false) => self.take_inhibitor(agent).await,
                        Err(_) => {}
                    },
                    None => return Ended::BusLost,
                },
                ev = next(lock) => match ev {
                    Some(_) => lock_now(agent, "screen locked (logind Session.Lock)"),
                    None => return Ended::BusLost,
                },
                ev = next(hint) => match ev {
                    Some(changed) => {
                        let proxy = self.followed.as_ref().map(|f| &f.proxy);
                        if session::locked_hint_set(&changed, proxy).await {
                            lock_now(agent, "screen locked (logind LockedHint)")
                        }
                    }
                    None => return Ended::BusLost,
                },
                ev = next(self.session_new.as_mut()) => match ev {
                    Some(_) => self.bounded_look_again(agent).await,
                    None => return Ended::BusLost,
                },
                ev = next(self.session_removed.as_mut()) => match ev {
                    Some(sig) => {
                        let gone = sig.args().is_ok_and(|a| {
                            self.followed.as_ref().is_some_and(|f| f.path == *a.object_path())
                        });
                        if gone {
                            self.followed = None;
                        }
                        self.bounded_look_again(agent).await
                    }
                    None => return Ended::BusLost,
                },
                ev = next(self.user.as_mut().map(|u| &mut u.changes)) => match ev {
                    Some(changed) => if session::names_property(&changed, api::USER_IFACE, "Display") {
                        self.bounded_look_again(agent).await
                    },
                    None => return Ended::BusLost,
                },
            }
        }
    }

    /// Take the delay inhibitor lock on sleep (bounded: a wedged logind must not hold the
    /// other signals), and say in `status` whether the lock comes before the sleep. Without
    /// the inhibitor the source still locks on `PrepareForSleep(true)`, only maybe late.
    async fn take_inhibitor(&mut self, agent: &Agent) {
        let why = "lock the trading keys' signing session before the machine sleeps";
        let call = self.manager.inhibit("sleep", "tapsign", why, "delay");
        let detail = match tokio::time::timeout(SETUP_TIMEOUT, call).await {
            Ok(Ok(fd)) => {
                self.inhibitor = Some(fd);
                SLEEP_INHIBITED.to_owned()
            }
            Ok(Err(e)) => format!("{SLEEP_LATE}{e}"),
            Err(_) => format!("{SLEEP_LATE}{}", timed_out()),
        };
        agent.dbus_sources.set(LOGIND_SLEEP, true, detail);
    }

    /// [`Watch::look_again`], bounded: a wedged logind must not stop the suspend and lock
    /// signals from being heard for long.
    async fn bounded_look_again(&mut self, agent: &Agent) {
        if tokio::time::timeout(SETUP_TIMEOUT, self.look_again(agent))
            .await
            .is_err()
        {
            not_live(agent, LOGIND_SESSION, timed_out());
        }
    }

    /// Find the session to follow, unless the one followed cannot change; switch to it.
    async fn look_again(&mut self, agent: &Agent) {
        if self.followed.as_ref().is_some_and(|f| !f.how.can_change()) {
            return;
        }
        if self.user.is_none() {
            // A user logind did not know at start (no session yet) may exist now.
            self.user = session::watch_user(&self.conn, &self.manager).await.ok();
        }
        match session::find(&self.manager, self.user.as_ref()).await {
            Ok((path, _)) if self.followed.as_ref().is_some_and(|f| f.path == path) => {}
            Ok((path, how)) => match session::follow(&self.conn, path, how).await {
                Ok(f) => {
                    agent
                        .dbus_sources
                        .set(LOGIND_SESSION, true, f.detail.clone());
                    self.followed = Some(f);
                }
                Err(why) => {
                    self.followed = None;
                    not_live(agent, LOGIND_SESSION, why);
                }
            },
            Err(tried) => {
                self.followed = None;
                let why = format!(
                    "no logind session found for the agent yet ({tried}); listening for one to start. Run the agent inside your desktop session, or see docs/screen-lock.md"
                );
                if self.waiting.as_ref() != Some(&why) {
                    not_live(agent, LOGIND_SESSION, why.clone());
                    self.waiting = Some(why);
                }
            }
        }
    }
}

fn lock_now(agent: &Agent, reason: &str) {
    agent.lock(LockReason::Other(reason.into()));
}

/// The next item of an optional stream; a missing stream never yields.
async fn next<S: futures_util::Stream + Unpin>(s: Option<&mut S>) -> Option<S::Item> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
