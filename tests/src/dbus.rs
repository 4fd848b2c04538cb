//! Private D-Bus daemons and fake desktop services, for the screen-lock and notification tests.
//!
//! [`Bus`] is a `dbus-daemon` of our own on a socket in a temp folder; [`Lab`] starts two (one
//! plays the system bus, one the session bus) and serves on them, from a tokio runtime in the
//! test process, a fake logind, fake screensavers and a fake notification daemon. Each fake owns
//! the real well-known name: the agent's proxies match signals on `sender=<well-known name>`, so
//! a signal from an anonymous connection (a bare `dbus-send`) would not reach them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

/// The session object path the fake logind hands out. Signals come from it, not from
/// `session/auto`, which is why the agent must resolve its session first.
pub const SESSION_PATH: &str = "/org/freedesktop/login1/session/_37";
const USER_PATH: &str = "/org/freedesktop/login1/user/_1000";

/// A private `dbus-daemon`, stopped when dropped.
pub struct Bus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    pub fn start() -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("tapsign-bus-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("sock");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", sock.display()))
            .stdout(Stdio::piped())
            // It warns "Failed to set fd limit" when not allowed to; nothing to see.
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run dbus-daemon ({e}): install the Debian package dbus-daemon")
            });
        // The first line is the address, printed once the daemon listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
        Bus {
            child,
            address: line.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Bus {
    /// Stop the daemon, as a crashed or restarted bus would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake logind Manager: hands out [`SESSION_PATH`] and remembers who asked.
struct Manager {
    pids_asked: Arc<Mutex<Vec<u32>>>,
    /// Answer GetSessionByPID as logind does for a process outside any session (a systemd
    /// user unit's).
    outside: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn get_session_by_pid(&self, pid: u32) -> zbus::fdo::Result<OwnedObjectPath> {
        self.pids_asked.lock().unwrap().push(pid);
        if self.outside {
            return Err(zbus::fdo::Error::Failed(format!(
                "PID {pid} does not belong to any known session"
            )));
        }
        Ok(OwnedObjectPath::try_from(SESSION_PATH).unwrap())
    }

    fn get_user(&self, _uid: u32) -> OwnedObjectPath {
        OwnedObjectPath::try_from(USER_PATH).unwrap()
    }

    fn get_session(&self, _id: &str) -> OwnedObjectPath {
        OwnedObjectPath::try_from(SESSION_PATH).unwrap()
    }

    #[zbus(signal)]
    async fn prepare_for_sleep(emitter: &SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

/// The fake logind User: its graphical session is ours.
struct User;

#[zbus::interface(name = "org.freedesktop.login1.User")]
impl User {
    #[zbus(property)]
    fn display(&self) -> (String, OwnedObjectPath) {
        (
            "37".into(),
            OwnedObjectPath::try_from(SESSION_PATH).unwrap(),
        )
    }
}

/// The fake logind Session.
struct LoginSession {
    locked_hint: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl LoginSession {
    #[zbus(signal)]
    async fn lock(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(property)]
    fn id(&self) -> String {
        "37".into()
    }

    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.locked_hint
    }
}

/// One notification the fake daemon received.
#[derive(Debug, Clone)]
pub struct Shown {
    pub app_name: String,
    pub summary: String,
    pub body: String,
}

struct Notifications {
    shown: Arc<Mutex<Vec<Shown>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)] // the D-Bus method's signature
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        shown.push(Shown {
            app_name,
            summary,
            body,
        });
        shown.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "fake".into(),
            "tapsign-tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

/// A connection that owns a screensaver's name; its signals are sent with `emit_signal`.
async fn screensaver(address: &str, name: &'static str) -> Connection {
    zbus::connection::Builder::address(address)
        .name(name)
        .build()
        .await
        .unwrap()
}

/// Something a desktop does when the trader walks away.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    SessionLock,
    LockedHint,
    PrepareForSleep,
    FreedesktopScreenSaver,
    GnomeScreenSaver,
}

/// Two private buses with the fakes on them. (Fields drop in order: the connections, then
/// their runtime, then the daemons.)
pub struct Lab {
    logind: Connection,
    screensavers: Vec<(&'static str, Connection)>,
    _notifications: Connection,
    pids_asked: Arc<Mutex<Vec<u32>>>,
    shown: Arc<Mutex<Vec<Shown>>>,
    rt: tokio::runtime::Runtime,
    pub system: Bus,
    pub session: Bus,
}

impl Lab {
    pub fn start() -> Lab {
        Lab::start_with(false)
    }

    /// A lab whose logind says the agent is outside any session, as for a systemd user unit.
    pub fn start_outside_session() -> Lab {
        Lab::start_with(true)
    }

    fn start_with(outside: bool) -> Lab {
        let system = Bus::start();
        let session = Bus::start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pids_asked = Arc::new(Mutex::new(Vec::new()));
        let shown = Arc::new(Mutex::new(Vec::new()));
        let (logind, screensavers, notifications) = rt.block_on(async {
            let logind = zbus::connection::Builder::address(system.address.as_str())
                .name("org.freedesktop.login1")
                .serve_at(
                    "/org/freedesktop/login1",
                    Manager {
                        pids_asked: Arc::clone(&pids_asked),
                        outside,
                    },
                )
                .serve_at(USER_PATH, User)
                .serve_at(SESSION_PATH, LoginSession { locked_hint: false })
                .build()
                .await
                .unwrap();
            let mut screensavers = Vec::new();
            for name in ["org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"] {
                screensavers.push((name, screensaver(&session.address, name).await));
            }
            let notifications = zbus::connection::Builder::address(session.address.as_str())
                .name("org.freedesktop.Notifications")
                .serve_at(
                    "/org/freedesktop/Notifications",
                    Notifications {
                        shown: Arc::clone(&shown),
                    },
                )
                .build()
                .await
                .unwrap();
            (logind, screensavers, notifications)
        });
        Lab {
            system,
            session,
            rt,
            logind,
            screensavers,
            _notifications: notifications,
            pids_asked,
            shown,
        }
    }

    /// Point an agent's command at the private buses.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &self.system.address)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.session.address)
            .env_remove("XDG_SESSION_ID");
    }

    /// Do what a desktop does when the screen locks or the machine suspends.
    pub fn fire(&self, trigger: Trigger) {
        self.rt.block_on(async {
            let server = self.logind.object_server();
            match trigger {
                Trigger::SessionLock => {
                    let s = server
                        .interface::<_, LoginSession>(SESSION_PATH)
                        .await
                        .unwrap();
                    LoginSession::lock(s.signal_emitter()).await.unwrap();
                }
                Trigger::LockedHint => {
                    let s = server
                        .interface::<_, LoginSession>(SESSION_PATH)
                        .await
                        .unwrap();
                    s.get_mut().await.locked_hint = true;
                    s.get()
                        .await
                        .locked_hint_changed(s.signal_emitter())
                        .await
                        .unwrap();
                }
                Trigger::PrepareForSleep => {
                    let m = server
                        .interface::<_, Manager>("/org/freedesktop/login1")
                        .await
                        .unwrap();
                    Manager::prepare_for_sleep(m.signal_emitter(), true)
                        .await
                        .unwrap();
                }
                Trigger::FreedesktopScreenSaver => {
                    self.active_changed("org.freedesktop.ScreenSaver", true)
                        .await
                }
                Trigger::GnomeScreenSaver => {
                    self.active_changed("org.gnome.ScreenSaver", true).await
                }
            }
        });
    }

    /// `ActiveChanged(active)` from the screensaver that owns `name`.
    pub fn screensaver_active(&self, name: &str, active: bool) {
        self.rt.block_on(self.active_changed(name, active));
    }

    async fn active_changed(&self, name: &str, active: bool) {
        let (_, conn) = self
            .screensavers
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no fake {name}"));
        let path = format!("/{}", name.replace('.', "/"));
        conn.emit_signal(None::<()>, path.as_str(), name, "ActiveChanged", &(active,))
            .await
            .unwrap();
    }

    /// Start a screensaver that owns `name`, as a desktop starting after the agent would.
    pub fn start_screensaver(&mut self, name: &'static str) {
        let conn = self.rt.block_on(screensaver(&self.session.address, name));
        self.screensavers.push((name, conn));
    }

    /// The pids the agent asked the fake logind about with GetSessionByPID.
    pub fn pids_asked(&self) -> Vec<u32> {
        self.pids_asked.lock().unwrap().clone()
    }

    /// The notifications the fake daemon received so far.
    pub fn notifications(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }
}
