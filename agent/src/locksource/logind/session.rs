//! Which login session the agent follows, and the subscriptions to its `Lock` signal and
//! `LockedHint` property.
//!
//! Signals come from the session's real object path (`/org/freedesktop/login1/session/_N`);
//! `session/auto` and `session/self` only resolve for method calls, so the path is looked up
//! first, in this order:
//! 1. the session the agent's own process belongs to (`GetSessionByPID`): an agent started
//!    from the desktop;
//! 2. `$XDG_SESSION_ID`, if set (a unit that imported it);
//! 3. the user's graphical session (`User.Display`): an agent started by a systemd user unit,
//!    which runs in user@.service, outside any session. This one can change: it may not exist
//!    yet when the agent starts, and a new login can replace it, so the agent looks again when
//!    logind announces a session (`SessionNew`) or a new `Display`.

use std::collections::HashMap;

use zbus::names::OwnedUniqueName;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath};

use super::api::{LOGIN1, LockStream, ManagerProxy, SESSION_IFACE, SessionProxy, UserProxy};

/// How the followed session was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    OwnSession,
    SessionIdEnv,
    Display,
}

impl How {
    fn describe(self) -> &'static str {
        match self {
            How::OwnSession => "the agent's own session",
            How::SessionIdEnv => "$XDG_SESSION_ID",
            How::Display => "the user's graphical session",
        }
    }

    /// Whether a new session, or a new graphical session, can change what the agent should
    /// follow. The agent's own session and `$XDG_SESSION_ID` are fixed for its lifetime.
    pub(super) fn can_change(self) -> bool {
        self == How::Display
    }
}

/// One running logind, as the agent reaches it: signals on one connection, matched on
/// logind's unique name, method calls on another that subscribes to nothing (the module
/// above says why).
#[derive(Clone)]
pub(super) struct Logind {
    pub(super) signals: Connection,
    pub(super) name: OwnedUniqueName,
    /// The manager, for method calls.
    pub(super) manager: ManagerProxy<'static>,
}

impl Logind {
    fn calls(&self) -> &Connection {
        self.manager.inner().connection()
    }

    /// A properties proxy whose PropertiesChanged stream takes only logind's own signals.
    async fn properties(
        &self,
        path: OwnedObjectPath,
    ) -> Result<zbus::fdo::PropertiesProxy<'static>, String> {
        zbus::fdo::PropertiesProxy::builder(&self.signals)
            .destination(self.name.clone())
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| e.to_string())
    }
}

/// A session being followed, with its subscriptions in place.
pub(super) struct Followed {
    pub(super) path: OwnedObjectPath,
    pub(super) how: How,
    pub(super) lock: LockStream,
    pub(super) hint: zbus::fdo::PropertiesChangedStream,
    /// The session, for reading `LockedHint` (on the connection for calls).
    pub(super) proxy: SessionProxy<'static>,
    /// What `status` says about it.
    pub(super) detail: String,
}

/// The user's logind object: its `Display` and the PropertiesChanged that announce a new one.
pub(super) struct UserWatch {
    pub(super) proxy: UserProxy<'static>,
    pub(super) changes: zbus::fdo::PropertiesChangedStream,
}

/// Subscribe to changes of the user's object, then return it (subscribed first, so a
/// `Display` change right after the lookup is not missed).
pub(super) async fn watch_user(logind: &Logind) -> Result<UserWatch, String> {
    let uid = rustix::process::getuid().as_raw();
    let path = logind
        .manager
        .get_user(uid)
        .await
        .map_err(|e| format!("GetUser({uid}): {e}"))?;
    let changes = logind
        .properties(path.clone())
        .await?
        .receive_properties_changed()
        .await
        .map_err(|e| format!("cannot subscribe to the user's Display: {e}"))?;
    let proxy = UserProxy::builder(logind.calls())
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(UserWatch { proxy, changes })
}

/// What a lookup found.
pub(super) enum Looked {
    /// The session to follow is the one followed when the lookup began.
    Same(OwnedObjectPath),
    /// Another session, subscribed to.
    New(Box<Followed>),
    /// A session was found, but subscribing to it failed: why.
    Unfollowable(String),
    /// No session: what was tried.
    NotFound(String),
    /// logind did not answer in time.
    NoAnswer,
}

/// Find the session to follow and subscribe to it unless it is `current`; with `user`
/// `None`, first subscribe to the user's object (a user logind did not know at start may
/// exist now). Bounded by `limit`: a busy logind makes it [`Looked::NoAnswer`].
pub(super) async fn look(
    logind: Logind,
    user: Option<UserProxy<'static>>,
    current: Option<OwnedObjectPath>,
    limit: std::time::Duration,
) -> (Option<UserWatch>, Looked) {
    let work = async {
        let watched = match user {
            Some(_) => None,
            None => watch_user(&logind).await.ok(),
        };
        let proxy = user.as_ref().or(watched.as_ref().map(|w| &w.proxy));
        let looked = match find(&logind.manager, proxy).await {
            Ok((path, _)) if current.as_ref() == Some(&path) => Looked::Same(path),
            Ok((path, how)) => match follow(&logind, path, how).await {
                Ok(f) => Looked::New(Box::new(f)),
                Err(why) => Looked::Unfollowable(why),
            },
            Err(tried) => Looked::NotFound(tried),
        };
        (watched, looked)
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or((None, Looked::NoAnswer))
}

/// The session to follow, or what was tried.
async fn find(
    manager: &ManagerProxy<'_>,
    user: Option<&UserProxy<'static>>,
) -> Result<(OwnedObjectPath, How), String> {
    let mut tried = Vec::new();
    match manager.get_session_by_pid(std::process::id()).await {
        Ok(p) => return Ok((p, How::OwnSession)),
        Err(e) => tried.push(format!("GetSessionByPID: {e}")),
    }
    if let Ok(id) = std::env::var("XDG_SESSION_ID")
        && !id.is_empty()
    {
        match manager.get_session(&id).await {
            Ok(p) => return Ok((p, How::SessionIdEnv)),
            Err(e) => tried.push(format!("GetSession({id}): {e}")),
        }
    }
    match user {
        None => tried.push("the user's graphical session: logind does not know the user".into()),
        Some(u) => match u.display().await {
            Ok((id, path)) if !id.is_empty() && path.as_str() != "/" => {
                return Ok((path, How::Display));
            }
            Ok(_) => tried.push("the user's graphical session: none yet".into()),
            Err(e) => tried.push(format!("the user's graphical session: {e}")),
        },
    }
    Err(tried.join("; "))
}

/// Subscribe to the session's `Lock` signal and `LockedHint` changes.
async fn follow(logind: &Logind, path: OwnedObjectPath, how: How) -> Result<Followed, String> {
    let signals = SessionProxy::builder(&logind.signals)
        .destination(logind.name.clone())
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let lock = signals
        .receive_lock()
        .await
        .map_err(|e| format!("cannot subscribe to Session.Lock: {e}"))?;
    // Our own PropertiesChanged subscription: it is in place when this returns, so a
    // LockedHint change right after `status` shows the source live is not missed.
    let hint = logind
        .properties(path.clone())
        .await?
        .receive_properties_changed()
        .await
        .map_err(|e| format!("cannot subscribe to LockedHint changes: {e}"))?;
    let proxy = SessionProxy::builder(logind.calls())
        .destination(LOGIN1)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let id = proxy.id().await.unwrap_or_else(|_| "?".into());
    let detail = format!(
        "logind session {id} ({}, {}): Session.Lock and LockedHint",
        path.as_str(),
        how.describe()
    );
    Ok(Followed {
        path,
        how,
        lock,
        hint,
        proxy,
        detail,
    })
}

/// Whether a PropertiesChanged from `iface` names `property`.
pub(super) fn names_property(
    changed: &zbus::fdo::PropertiesChanged,
    iface: &str,
    property: &str,
) -> bool {
    changed.args().is_ok_and(|args| {
        args.interface_name().as_str() == iface
            && (args.changed_properties().contains_key(property)
                || args.invalidated_properties().contains(&property))
    })
}

/// What a PropertiesChanged says of LockedHint: `Some(true)` set, `Some(false)` not set or
/// not named, `None` invalidated only (the value must be read).
pub(super) fn locked_hint(changed: &zbus::fdo::PropertiesChanged) -> Option<bool> {
    let Ok(args) = changed.args() else {
        return Some(false);
    };
    if args.interface_name().as_str() != SESSION_IFACE {
        return Some(false);
    }
    let values: &HashMap<&str, zbus::Variant<'_>> = args.changed_properties();
    if let Some(v) = values.get("LockedHint") {
        return Some(matches!(v.downcast_ref::<bool>(), Ok(true)));
    }
    if args.invalidated_properties().contains(&"LockedHint") {
        return None;
    }
    Some(false)
}
