//! logind's D-Bus API as the agent uses it, member names spelled exactly as in
//! org.freedesktop.login1(5).
//!
//! Every name is given explicitly: zbus derives a member name from the Rust one, and
//! `get_session_by_pid` becomes `GetSessionByPid`, which logind does not have. D-Bus names are
//! case-sensitive, and the system bus policy (org.freedesktop.login1.conf) only lets
//! unprivileged callers send the methods it lists by name: a misspelt call is refused before
//! it reaches logind.

use zbus::OwnedObjectPath;

pub(super) const LOGIN1: &str = "org.freedesktop.login1";
pub(super) const SESSION_IFACE: &str = "org.freedesktop.login1.Session";
pub(super) const USER_IFACE: &str = "org.freedesktop.login1.User";

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1",
    interface = "org.freedesktop.login1.Manager"
)]
pub(super) trait Manager {
    /// The session process `pid` belongs to.
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    #[zbus(name = "GetSession")]
    fn get_session(&self, session_id: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(name = "GetUser")]
    fn get_user(&self, uid: u32) -> zbus::Result<OwnedObjectPath>;
    /// Take an inhibitor lock: held until every copy of the returned fd is closed. A `delay`
    /// lock on `sleep` makes logind wait (at most `InhibitDelayMaxSec`, 5 s by default) after
    /// `PrepareForSleep(true)` for its release before the machine sleeps.
    #[zbus(name = "Inhibit")]
    fn inhibit(&self, what: &str, who: &str, why: &str, mode: &str) -> zbus::Result<zbus::OwnedFd>;
    /// Suspend or hibernate is about to happen (`start` true) or has ended.
    #[zbus(signal, name = "PrepareForSleep")]
    fn prepare_for_sleep(&self, start: bool) -> zbus::Result<()>;
    /// A session was created (any user's).
    #[zbus(signal, name = "SessionNew")]
    fn session_new(&self, session_id: String, object_path: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal, name = "SessionRemoved")]
    fn session_removed(&self, session_id: String, object_path: OwnedObjectPath)
    -> zbus::Result<()>;
}

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    interface = "org.freedesktop.login1.Session"
)]
pub(super) trait Session {
    /// `loginctl lock-session` and lockers that hook logind: lock the screen now.
    #[zbus(signal, name = "Lock")]
    fn lock(&self) -> zbus::Result<()>;
    #[zbus(property, name = "Id")]
    fn id(&self) -> zbus::Result<String>;
    /// Set by lockers (GNOME, KDE) while the screen is locked.
    #[zbus(property, name = "LockedHint")]
    fn locked_hint(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    default_service = "org.freedesktop.login1",
    interface = "org.freedesktop.login1.User"
)]
pub(super) trait User {
    /// The user's graphical session: (id, path); ("", "/") when there is none. logind
    /// announces changes with PropertiesChanged.
    #[zbus(property, name = "Display")]
    fn display(&self) -> zbus::Result<(String, OwnedObjectPath)>;
}
