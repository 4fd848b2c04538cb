//! Screensavers on the session bus: `ActiveChanged(true)` means the screen is locked.
//!
//! Each desktop's locker owns its own well-known name, all with the same `ActiveChanged(b)`
//! signal (the GNOME screensaver interface, kept by its forks). A subscription is made for each
//! whether or not the name has an owner yet: zbus follows the owner, so a screensaver that
//! starts after the agent is heard, and `status` flips it live when the name appears.

use std::sync::Arc;

use futures_util::StreamExt;
use zbus::Connection;
use zbus::proxy::CacheProperties;

use super::{FREEDESKTOP_SCREENSAVER, GNOME_SCREENSAVER, SETUP_TIMEOUT, not_live};
use crate::agent::Agent;
use crate::session::LockReason;

/// A locker's name (also its interface) and the object path its signal comes from.
pub(super) struct Locker {
    pub(super) name: &'static str,
    path: &'static str,
    desktops: &'static str,
}

/// KDE registers its screensaver object at both paths; a signal from either counts.
pub(super) static LOCKERS: [Locker; 6] = [
    Locker {
        name: FREEDESKTOP_SCREENSAVER,
        path: "/org/freedesktop/ScreenSaver",
        desktops: "KDE Plasma, Xfce, newer xscreensaver",
    },
    Locker {
        name: FREEDESKTOP_SCREENSAVER,
        path: "/ScreenSaver",
        desktops: "KDE Plasma",
    },
    Locker {
        name: GNOME_SCREENSAVER,
        path: "/org/gnome/ScreenSaver",
        desktops: "GNOME Shell",
    },
    Locker {
        name: super::CINNAMON_SCREENSAVER,
        path: "/org/cinnamon/ScreenSaver",
        desktops: "Cinnamon",
    },
    Locker {
        name: super::MATE_SCREENSAVER,
        path: "/org/mate/ScreenSaver",
        desktops: "MATE",
    },
    Locker {
        name: super::XFCE_SCREENSAVER,
        path: "/org/xfce/ScreenSaver",
        desktops: "Xfce (xfce4-screensaver)",
    },
];

/// Connect to the session bus and listen to every locker.
pub(super) async fn run(agent: Arc<Agent>) {
    let conn = match tokio::time::timeout(SETUP_TIMEOUT, Connection::session()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return all_down(
                &agent,
                format!("no session bus ({e}); screensavers cannot tell the agent about a lock"),
            );
        }
        Err(_) => return all_down(&agent, "the session bus did not answer".into()),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for locker in &LOCKERS {
        tasks.spawn(listen(Arc::clone(&agent), conn.clone(), locker));
    }
    // Dropping the set (when the agent stops this task) aborts the listeners.
    while tasks.join_next().await.is_some() {}
}

fn all_down(agent: &Agent, why: String) {
    super::all_not_live(agent, &super::SCREENSAVERS, why);
}

async fn listen(agent: Arc<Agent>, conn: Connection, locker: &'static Locker) {
    let setup = tokio::time::timeout(SETUP_TIMEOUT, subscribe(&conn, locker)).await;
    let (mut active, mut owner, present) = match setup {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return not_live(&agent, locker.name, format!("cannot subscribe: {e}")),
        Err(_) => return not_live(&agent, locker.name, "the session bus did not answer".into()),
    };
    // The two KDE paths share a name: only the first reports it.
    let reports = LOCKERS.iter().position(|l| l.name == locker.name)
        == LOCKERS.iter().position(|l| std::ptr::eq(l, locker));
    if reports {
        report(&agent, locker, present);
    }
    let reason = format!("screen locked ({} ActiveChanged)", locker.name);
    loop {
        tokio::select! {
            sig = active.next() => match sig {
                Some(msg) => if msg.body().deserialize::<bool>().unwrap_or(false) {
                    agent.lock(LockReason::Other(reason.clone()));
                },
                None => break,
            },
            // Read by every listener, reported by one: a stream left unread fills zbus's
            // small queue of owner changes, and then the reader of the whole connection
            // stops (a bot that took and dropped the name a few times silenced every
            // screensaver this way, while `status` still said live).
            new_owner = owner.next() => match new_owner {
                Some(o) => if reports { report(&agent, locker, o.is_some()) },
                None => break,
            },
        }
    }
    if reports {
        let why = "lost the session bus connection; restart the agent to listen again";
        not_live(&agent, locker.name, why.into());
    }
}

type Subscription = (
    zbus::proxy::SignalStream<'static>,
    zbus::proxy::OwnerChangedStream<'static>,
    bool,
);

/// Subscribe to ActiveChanged and to the name's owner, then ask whether it has one now (in
/// that order, so an owner that appears in between is not missed).
async fn subscribe(conn: &Connection, locker: &'static Locker) -> zbus::Result<Subscription> {
    let proxy: zbus::Proxy<'static> = zbus::proxy::Builder::new(conn)
        .destination(locker.name)
        .path(locker.path)
        .interface(locker.name)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let active = proxy.receive_signal("ActiveChanged").await?;
    let owner = proxy.receive_owner_changed().await?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let present = dbus.name_has_owner(locker.name.try_into()?).await?;
    Ok((active, owner, present))
}

fn report(agent: &Agent, locker: &Locker, present: bool) {
    if present {
        let detail = format!("{} ActiveChanged ({})", locker.name, locker.desktops);
        agent.dbus_sources.set(locker.name, true, detail);
    } else {
        // Absent is normal (only one desktop runs), so no warning in the log.
        let detail = format!(
            "{} is not on the session bus ({} only); listening in case it starts",
            locker.name, locker.desktops
        );
        agent.dbus_sources.set(locker.name, false, detail);
    }
}
