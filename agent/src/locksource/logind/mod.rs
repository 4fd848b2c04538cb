//! logind on the system bus: our login session's `Lock` signal and `LockedHint` property, and
//! `PrepareForSleep(true)` before a suspend.
//!
//! For suspend, the agent holds a logind `delay` inhibitor lock on `sleep` (org.freedesktop.
//! login1(5), "Inhibitor locks"): logind then waits for the agent to lock and let go of it
//! before the machine sleeps, instead of the agent locking whenever it next runs, which can be
//! after the wake (and, for hibernate, after the session's memory was written to disk). The
//! lock is let go right after the session is locked and asked for again on
//! `PrepareForSleep(false)`, and again while logind refuses it or does not answer ([`sleep`]).
//! `PrepareForSleep(true)` locks whether the inhibitor is held or not.
//!
//! The task follows logind itself as well as the session:
//! - while `org.freedesktop.login1` has no owner (logind not started yet, or restarting),
//!   both sources are not live and the task waits for the name to appear (NameOwnerChanged);
//!   when logind goes away it waits again, and subscribes afresh when it is back;
//! - which session to follow is looked up as [`session`] describes; when none is found yet
//!   (a user unit started before the desktop), or the graphical session changes, the task
//!   looks again on every `SessionNew`, `SessionRemoved` and change of the user's `Display`.
//!
//! The loop that hears `PrepareForSleep` and `Lock` never waits for a method's answer
//! (red-team round 26, L1 to L3). zbus reads a connection's socket in one task and stops
//! reading while any subscription's queue (64 messages) is full; the system bus lets any peer
//! send a signal to any connection. So while the loop waited for `Inhibit` or a session
//! lookup, a burst of signals from another local user (or a slow logind) left the answer
//! unread for 10 s, and with it every lock signal. Now:
//! - method calls (`Inhibit`, the lookups, reading `LockedHint`) run as tasks, on a connection
//!   of their own that subscribes to nothing: zbus drops a message no subscription matches,
//!   so no peer can fill a queue there, and no answer waits behind a signal;
//! - the signal subscriptions are matched on logind's unique name, not on
//!   `org.freedesktop.login1`: zbus checks a unique sender before it queues a message, so
//!   another peer's signals are dropped on arrival instead of filling the queues;
//! - the loop polls every stream while the tasks run, and takes their results as they come.

mod api;
mod owner;
mod session;
mod sleep;

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::task::JoinSet;
use zbus::Connection;
use zbus::names::OwnedUniqueName;

use super::{LOGIND_SESSION, LOGIND_SLEEP, SETUP_TIMEOUT, not_live};
use crate::agent::Agent;
use crate::config::LockConfig;
use crate::session::LockReason;
use api::{ManagerProxy, PrepareForSleepStream, SessionNewStream, SessionRemovedStream};
use owner::Owner;
use session::{Followed, Logind, Looked, UserWatch};
use sleep::Inhibitor;

const LOST: &str = "lost the system bus connection; restart the agent to listen again";
const ABSENT: &str =
    "logind (org.freedesktop.login1) is not on the system bus; listening for it to start";

/// Follow logind until the system bus connection ends.
pub(super) async fn run(agent: Arc<Agent>, cfg: LockConfig) {
    let setup = async {
        let connect = || async {
            Connection::system().await.map_err(|e| {
                format!(
                    "no system bus ({e}); logind cannot tell the agent about screen lock or suspend"
                )
            })
        };
        let signals = connect().await?;
        let calls = connect().await?;
        let owner = Owner::watch(&signals).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((signals, calls, owner))
    };
    let (signals, calls, mut owner) = match tokio::time::timeout(SETUP_TIMEOUT, setup).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return all_down(&agent, cfg, why),
        Err(_) => return all_down(&agent, cfg, timed_out()),
    };
    loop {
        let Some(name) = owner.name.clone() else {
            all_down(&agent, cfg, ABSENT.into());
            while owner.name.is_none() {
                if owner.changed().await.is_none() {
                    return all_down(&agent, cfg, LOST.into());
                }
            }
            continue;
        };
        // The owner stream is read while subscribing too, so a logind that leaves meanwhile
        // is followed at once.
        let start = tokio::time::timeout(
            SETUP_TIMEOUT,
            Watch::start(&agent, cfg, &signals, &calls, name),
        );
        let started = tokio::select! {
            started = start => started,
            change = owner.changed() => match change {
                Some(()) => continue,
                None => return all_down(&agent, cfg, LOST.into()),
            },
        };
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

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// logind left the bus or was replaced: wait for it and subscribe again.
    LogindGone,
    BusLost,
}

/// What a task sends back to the loop.
enum Done {
    Inhibit(sleep::Answer),
    Looked(Box<(Option<UserWatch>, Looked)>),
    /// `LockedHint`, read after a PropertiesChanged that only invalidated it.
    Hint(bool),
}

/// The subscriptions to one running logind; each is `None` when off or not set up.
struct Watch {
    logind: Logind,
    sleep: Option<PrepareForSleepStream>,
    inhibitor: Inhibitor,
    session_new: Option<SessionNewStream>,
    session_removed: Option<SessionRemovedStream>,
    user: Option<UserWatch>,
    followed: Option<Followed>,
    /// Why no session is followed, as last reported: a new login of someone else (each
    /// brings a SessionNew) does not log the same line again.
    waiting: Option<String>,
    /// Method calls under way; dropped (aborted) with the watch.
    tasks: JoinSet<Done>,
    /// The lookup under way; `again`: another was asked for meanwhile.
    lookup: Option<tokio::task::Id>,
    again: bool,
}

impl Watch {
    /// Subscribe to the signals of logind at unique name `name` (on `signals`); calls go on
    /// `calls`. No method of logind's is called here: the calls run as tasks in [`Watch::run`].
    async fn start(
        agent: &Agent,
        cfg: LockConfig,
        signals: &Connection,
        calls: &Connection,
        name: OwnedUniqueName,
    ) -> Result<Watch, String> {
        // No property cache: a cache would subscribe to PropertiesChanged on this connection.
        let manager = ManagerProxy::builder(calls)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let manager_signals = ManagerProxy::builder(signals)
            .destination(name.clone())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let mut w = Watch {
            logind: Logind {
                signals: signals.clone(),
                name,
                manager,
            },
            sleep: None,
            inhibitor: Inhibitor::default(),
            session_new: None,
            session_removed: None,
            user: None,
            followed: None,
            waiting: None,
            tasks: JoinSet::new(),
            lookup: None,
            again: false,
        };
        if cfg.suspend {
            // Subscribed before the inhibitor is asked for: a suspend that starts in between
            // is heard, not waited on for InhibitDelayMaxSec.
            match manager_signals.receive_prepare_for_sleep().await {
                Ok(s) => w.sleep = Some(s),
                Err(e) => not_live(agent, LOGIND_SLEEP, format!("cannot subscribe: {e}")),
            }
        }
        if cfg.screen {
            // Subscribed before the lookup, so a session that starts meanwhile is not missed.
            let subscribe = async {
                let new = manager_signals.receive_session_new().await?;
                let removed = manager_signals.receive_session_removed().await?;
                Ok::<_, zbus::Error>((new, removed))
            };
            match subscribe.await {
                Ok((new, removed)) => {
                    w.session_new = Some(new);
                    w.session_removed = Some(removed);
                }
                Err(e) => not_live(agent, LOGIND_SESSION, format!("cannot subscribe: {e}")),
            }
        }
        Ok(w)
    }

    /// Lock on every signal that says the trader is gone, and keep following the session.
    /// Nothing in the loop awaits anything but the streams and the tasks' results.
    async fn run(&mut self, agent: &Agent, owner: &mut Owner) -> Ended {
        if self.sleep.is_some() {
            self.ask_inhibitor(agent);
        }
        if self.session_new.is_some() {
            self.look_again();
        }
        loop {
            let (lock, hint) = match &mut self.followed {
                Some(f) => (Some(&mut f.lock), Some(&mut f.hint)),
                None => (None, None),
            };
            let retry = self.inhibitor.retry;
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
                            self.inhibitor.going_to_sleep();
                        }
                        Ok(false) => {
                            self.inhibitor.woke();
                            self.ask_inhibitor(agent);
                        }
                        Err(_) => {}
                    },
                    None => return Ended::BusLost,
                },
                ev = next(lock) => match ev {
                    Some(_) => lock_now(agent, "screen locked (logind Session.Lock)"),
                    None => return Ended::BusLost,
                },
                ev = next(hint) => match ev {
                    Some(changed) => match session::locked_hint(&changed) {
                        Some(true) => lock_now(agent, "screen locked (logind LockedHint)"),
                        Some(false) => {}
                        None => self.read_hint(),
                    },
                    None => return Ended::BusLost,
                },
                ev = next(self.session_new.as_mut()) => match ev {
                    Some(_) => self.look_again(),
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
                        self.look_again()
                    }
                    None => return Ended::BusLost,
                },
                ev = next(self.user.as_mut().map(|u| &mut u.changes)) => match ev {
                    Some(changed) => if session::names_property(&changed, api::USER_IFACE, "Display") {
                        self.look_again()
                    },
                    None => return Ended::BusLost,
                },
                () = wait_until(retry) => self.ask_inhibitor(agent),
                Some(done) = self.tasks.join_next() => match done {
                    Ok(done) => self.done(agent, done),
                    // A task panicked: nothing of it to take in, but a lookup is owed.
                    Err(e) => if self.lookup == Some(e.id()) {
                        self.lookup = None;
                        self.again = true;
                        self.settle_lookup();
                    },
                },
            }
        }
    }

    /// A task's result.
    fn done(&mut self, agent: &Agent, done: Done) {
        match done {
            Done::Inhibit(answer) => {
                if let Some(detail) = self.inhibitor.answered(answer) {
                    agent.dbus_sources.set(LOGIND_SLEEP, true, detail);
                }
            }
            Done::Looked(found) => {
                let (user, looked) = *found;
                if self.user.is_none() {
                    self.user = user;
                }
                self.looked(agent, looked);
                self.settle_lookup();
            }
            Done::Hint(set) => {
                if set {
                    lock_now(agent, "screen locked (logind LockedHint)")
                }
            }
        }
    }

    /// Ask for the delay inhibitor lock, in a task. The source stays live: without the lock,
    /// `PrepareForSleep(true)` still locks, maybe only after the wake.
    fn ask_inhibitor(&mut self, agent: &Agent) {
        let (call, detail) = self.inhibitor.ask(&self.logind.manager);
        agent.dbus_sources.set(LOGIND_SLEEP, true, detail);
        self.tasks.spawn(async move { Done::Inhibit(call.await) });
    }

    /// Read `LockedHint`, in a task.
    fn read_hint(&mut self) {
        if let Some(f) = &self.followed {
            let proxy = f.proxy.clone();
            self.tasks.spawn(async move {
                let read = tokio::time::timeout(SETUP_TIMEOUT, proxy.locked_hint());
                Done::Hint(matches!(read.await, Ok(Ok(true))))
            });
        }
    }

    /// Find the session to follow, in a task, unless the one followed cannot change; one
    /// lookup at a time, and one more after it when asked for meanwhile.
    fn look_again(&mut self) {
        if self.followed.as_ref().is_some_and(|f| !f.how.can_change()) {
            return;
        }
        if self.lookup.is_some() {
            self.again = true;
            return;
        }
        self.again = false;
        let user = self.user.as_ref().map(|u| u.proxy.clone());
        let current = self.followed.as_ref().map(|f| f.path.clone());
        let look = session::look(self.logind.clone(), user, current, SETUP_TIMEOUT);
        let task = self
            .tasks
            .spawn(async move { Done::Looked(Box::new(look.await)) });
        self.lookup = Some(task.id());
    }

    /// A lookup ended: run the one asked for meanwhile.
    fn settle_lookup(&mut self) {
        if self.lookup.is_none() && self.again {
            self.look_again();
        }
    }

    /// Switch to what a lookup found.
    fn looked(&mut self, agent: &Agent, looked: Looked) {
        self.lookup = None;
        let followed_path = self.followed.as_ref().map(|f| f.path.clone());
        match looked {
            Looked::Same(path) if followed_path.as_ref() == Some(&path) => {}
            // The session followed when it began was let go meanwhile (SessionRemoved).
            Looked::Same(_) => self.again = true,
            Looked::New(f) => {
                agent
                    .dbus_sources
                    .set(LOGIND_SESSION, true, f.detail.clone());
                self.followed = Some(*f);
                self.waiting = None;
            }
            Looked::Unfollowable(why) => {
                self.followed = None;
                not_live(agent, LOGIND_SESSION, why);
            }
            Looked::NotFound(tried) => {
                self.followed = None;
                let why = format!(
                    "no logind session found for the agent yet ({tried}); listening for one to start. Run the agent inside your desktop session, or see docs/screen-lock.md"
                );
                if self.waiting.as_ref() != Some(&why) {
                    not_live(agent, LOGIND_SESSION, why.clone());
                    self.waiting = Some(why);
                }
            }
            Looked::NoAnswer => self.no_answer(agent),
        }
    }

    /// logind did not answer a lookup in time. A session still followed still locks (its
    /// subscriptions stand), so the source stays live; the lookup is asked again.
    fn no_answer(&mut self, agent: &Agent) {
        let late = format!(
            "logind did not answer within {} s when asked which session to follow (logind is busy or stuck); asking again",
            SETUP_TIMEOUT.as_secs()
        );
        match &self.followed {
            Some(f) => {
                say!(
                    "tapsign agent: warning: {late}; still following {}",
                    f.detail
                );
            }
            None => not_live(agent, LOGIND_SESSION, late),
        }
        self.again = true;
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

/// Wait until `at`; never when `None`.
async fn wait_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
