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

/// A session being followed, with its subscriptions in place.
pub(super) struct Followed {
    pub(super) path: OwnedObjectPath,
    pub(super) how: How,
    pub(super) lock: LockStream,
    pub(super) hint: zbus::fdo::PropertiesChangedStream,
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
pub(super) async fn watch_user(
    conn: &Connection,
    manager: &ManagerProxy<'_>,
) -> Result<UserWatch, String> {
    let uid = rustix::process::getuid().as_raw();
    let path = manager
        .get_user(uid)
        .await
        .map_err(|e| format!("GetUser({uid}): {e}"))?;
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(LOGIN1)
        .path(path.clone())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let changes = props
        .receive_properties_changed()
        .await
        .map_err(|e| format!("cannot subscribe to the user's Display: {e}"))?;
    let proxy = UserProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(UserWatch { proxy, changes })
}

/// The session to follow, or what was tried.
pub(super) async fn find(
    manager: &ManagerProxy<'_>,
    user: Option<&UserWatch>,
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
        Some(u) => match u.proxy.display().await {
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
pub(super) async fn follow(
    conn: &Connection,
    path: OwnedObjectPath,
    how: How,
) -> Result<Followed, String> {
    let proxy = SessionProxy::builder(conn)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let lock = proxy
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

/// Whether a PropertiesChanged says LockedHint is now true. A change that only invalidates
/// the property is answered by reading it.
pub(super) async fn locked_hint_set(
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
