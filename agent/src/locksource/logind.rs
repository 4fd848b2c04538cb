//! logind on the system bus: our login session's `Lock` signal and `LockedHint` property, and
//! `PrepareForSleep(true)` before a suspend.
//!
//! Signals come from the session's real object path (`/org/freedesktop/login1/session/_N`);
//! `session/auto` and `session/self` only resolve for method calls, so the path is looked up
//! first (by our pid, then `$XDG_SESSION_ID`, then the user's graphical session).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath};

use super::{LOGIND_SESSION, LOGIND_SLEEP, SETUP_TIMEOUT, not_live};
use crate::agent::Agent;
use crate::config::LockConfig;
use crate::session::LockReason;

const LOGIN1: &str = "org.freedesktop.login1";
const SESSION_IFACE: &str = "org.freedesktop.login1.Session";

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1",
    interface = "org.freedesktop.login1.Manager"
)]
trait Manager {
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    fn get_session(&self, id: &str) -> zbus::Result<OwnedObjectPath>;
    fn get_user(&self, uid: u32) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn prepare_for_sleep(&self, start: bool) -> zbus::Result<()>;
}

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    interface = "org.freedesktop.login1.Session"
)]
trait Session {
    #[zbus(signal)]
    fn lock(&self) -> zbus::Result<()>;
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn locked_hint(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    interface = "org.freedesktop.login1.User"
)]
trait User {
    /// The user's graphical session: (id, path); ("", "/") when there is none.
    #[zbus(property)]
    fn display(&self) -> zbus::Result<(String, OwnedObjectPath)>;
}

/// The subscriptions, each `None` when that source is off or could not be set up.
struct Streams {
    lock: Option<LockStream>,
    hint: Option<zbus::fdo::PropertiesChangedStream>,
    hint_proxy: Option<SessionProxy<'static>>,
    sleep: Option<PrepareForSleepStream>,
}

/// Subscribe, then lock on every signal that says the trader is gone.
pub(super) async fn run(agent: Arc<Agent>, cfg: LockConfig) {
    let setup = tokio::time::timeout(SETUP_TIMEOUT, subscribe(&agent, cfg)).await;
    let mut s = match setup {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return all_down(&agent, cfg, why),
        Err(_) => {
            let why = format!(
                "the system bus did not answer within {} s",
                SETUP_TIMEOUT.as_secs()
            );
            return all_down(&agent, cfg, why);
        }
    };
    let lost = "lost the system bus connection; restart the agent to listen again";
    while s.lock.is_some() || s.hint.is_some() || s.sleep.is_some() {
        tokio::select! {
            ev = next(&mut s.lock) => match ev {
                Some(_) => lock(&agent, "screen locked (logind Session.Lock)"),
                None => { s.lock = None; s.hint = None; not_live(&agent, LOGIND_SESSION, lost.into()) }
            },
            ev = next(&mut s.hint) => match ev {
                Some(changed) => if locked_hint_set(&changed, s.hint_proxy.as_ref()).await {
                    lock(&agent, "screen locked (logind LockedHint)")
                },
                None => { s.lock = None; s.hint = None; not_live(&agent, LOGIND_SESSION, lost.into()) }
            },
            ev = next(&mut s.sleep) => match ev {
                Some(sig) => if sig.args().is_ok_and(|a| *a.start()) {
                    lock(&agent, "suspend (logind PrepareForSleep)")
                },
                None => { s.sleep = None; not_live(&agent, LOGIND_SLEEP, lost.into()) }
            },
        }
    }
}

fn lock(agent: &Agent, reason: &str) {
    agent.lock(LockReason::Other(reason.into()));
}

/// The next item of an optional stream; a missing stream never yields.
async fn next<S: futures_util::Stream + Unpin>(s: &mut Option<S>) -> Option<S::Item> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

fn all_down(agent: &Agent, cfg: LockConfig, why: String) {
    let names: Vec<&str> = [(cfg.screen, LOGIND_SESSION), (cfg.suspend, LOGIND_SLEEP)]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    super::all_not_live(agent, &names, why);
}

async fn subscribe(agent: &Agent, cfg: LockConfig) -> Result<Streams, String> {
    let conn = Connection::system().await.map_err(|e| {
        format!("no system bus ({e}); logind cannot tell the agent about screen lock or suspend")
    })?;
    let dbus = zbus::fdo::DBusProxy::new(&conn)
        .await
        .map_err(|e| e.to_string())?;
    let present = dbus
        .name_has_owner(LOGIN1.try_into().map_err(|e: zbus::Error| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    if !present {
        return Err("logind (org.freedesktop.login1) is not on the system bus".into());
    }
    let manager = ManagerProxy::new(&conn).await.map_err(|e| e.to_string())?;
    let mut streams = Streams {
        lock: None,
        hint: None,
        hint_proxy: None,
        sleep: None,
    };
    if cfg.suspend {
        match manager.receive_prepare_for_sleep().await {
            Ok(s) => {
                streams.sleep = Some(s);
                agent.dbus_sources.set(
                    LOGIND_SLEEP,
                    true,
                    "logind PrepareForSleep: suspend and hibernate lock",
                );
            }
            Err(e) => not_live(agent, LOGIND_SLEEP, format!("cannot subscribe: {e}")),
        }
    }
    if cfg.screen {
        match session_streams(&conn, &manager).await {
            Ok((lock, hint, proxy, detail)) => {
                streams.lock = Some(lock);
                streams.hint = Some(hint);
                streams.hint_proxy = Some(proxy);
                agent.dbus_sources.set(LOGIND_SESSION, true, detail);
            }
            Err(why) => not_live(agent, LOGIND_SESSION, why),
        }
    }
    Ok(streams)
}

type SessionStreams = (
    LockStream,
    zbus::fdo::PropertiesChangedStream,
    SessionProxy<'static>,
    String,
);

async fn session_streams(
    conn: &Connection,
    manager: &ManagerProxy<'_>,
) -> Result<SessionStreams, String> {
    let (path, how) = find_session(conn, manager).await?;
    let session = SessionProxy::builder(conn)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let lock = session
        .receive_lock()
        .await
        .map_err(|e| format!("cannot subscribe to Session.Lock: {e}"))?;
    // Our own PropertiesChanged subscription: it is in place when this returns, so a
    // LockedHint change right after `status` shows the source live is not missed.
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(LOGIN1)
        .path(path.clone())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let hint = props
        .receive_properties_changed()
        .await
        .map_err(|e| format!("cannot subscribe to LockedHint changes: {e}"))?;
    let id = session.id().await.unwrap_or_else(|_| "?".into());
    let detail = format!(
        "logind session {id} ({}, {how}): Session.Lock and LockedHint",
        path.as_str()
    );
    Ok((lock, hint, session, detail))
}

/// Our login session: the one this process belongs to; else `$XDG_SESSION_ID`; else the user's
/// graphical session (an agent started by a systemd user unit runs in user@.service, outside
/// any session).
async fn find_session(
    conn: &Connection,
    manager: &ManagerProxy<'_>,
) -> Result<(OwnedObjectPath, &'static str), String> {
    let mut tried = Vec::new();
    match manager.get_session_by_pid(std::process::id()).await {
        Ok(p) => return Ok((p, "the agent's own session")),
        Err(e) => tried.push(format!("GetSessionByPID: {e}")),
    }
    if let Ok(id) = std::env::var("XDG_SESSION_ID")
        && !id.is_empty()
    {
        match manager.get_session(&id).await {
            Ok(p) => return Ok((p, "$XDG_SESSION_ID")),
            Err(e) => tried.push(format!("GetSession({id}): {e}")),
        }
    }
    match display_session(conn, manager).await {
        Ok(p) => return Ok((p, "the user's graphical session")),
        Err(e) => tried.push(format!("the user's graphical session: {e}")),
    }
    Err(format!(
        "no logind session found for the agent ({}); run the agent inside your desktop session, or see docs/screen-lock.md",
        tried.join("; ")
    ))
}

async fn display_session(
    conn: &Connection,
    manager: &ManagerProxy<'_>,
) -> Result<OwnedObjectPath, String> {
    let uid = rustix::process::getuid().as_raw();
    let user_path = manager.get_user(uid).await.map_err(|e| e.to_string())?;
    let user = UserProxy::builder(conn)
        .path(user_path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let (id, path) = user.display().await.map_err(|e| e.to_string())?;
    if id.is_empty() || path.as_str() == "/" {
        return Err("none".into());
    }
    Ok(path)
}

/// Whether a PropertiesChanged says LockedHint is now true. A change that only invalidates
/// the property is answered by reading it.
async fn locked_hint_set(
    changed: &zbus::fdo::PropertiesChanged,
    session: Option<&SessionProxy<'static>>,
) -> bool {
    let invalidated = {
        let Ok(args) = changed.args() else {
            return false;
        };
        if args.interface_name().as_str() != SESSION_IFACE {
            return false;
        }
        let values: &HashMap<&str, zbus::Variant<'_>> = args.changed_properties();
        if let Some(v) = values.get("LockedHint") {
            return matches!(v.downcast_ref::<bool>(), Ok(true));
        }
        args.invalidated_properties().contains(&"LockedHint")
    };
    match (invalidated, session) {
        (true, Some(s)) => s.locked_hint().await.unwrap_or(false),
        _ => false,
    }
}
