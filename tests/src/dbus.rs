//! Private D-Bus daemons and fake desktop services, for the screen-lock and notification tests.
//!
//! [`Bus`] is a `dbus-daemon` of our own on a socket in a temp folder; [`Lab`] starts two (one
//! plays the system bus, one the session bus) and serves on them, from a tokio runtime in the
//! test process, a fake logind (crate::logind), fake screensavers and a fake notification
//! daemon. Each fake owns the real well-known name: the agent's proxies match signals on
//! `sender=<well-known name>`, so a signal from an anonymous connection (a bare `dbus-send`)
//! would not reach them.
//!
//! Run as root (CI), the "system" bus enforces the system bus's default policy and logind's
//! real policy file, copied from the systemd package: the fake logind may own its name because
//! it runs as root, and an agent run as another user may call only what logind's policy lets
//! unprivileged callers call.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::{Connection, OwnedVariant};

use crate::logind::{FakeLogind, SessionSpec};

/// The login session the default lab puts the agent in ("7", at `session/_37`). Signals come
/// from this path, not from `session/auto`, which is why the agent must resolve its session
/// first.
pub const SESSION_ID: &str = "7";
pub const SESSION_PATH: &str = "/org/freedesktop/login1/session/_37";

/// systemd's bus policy for logind (Debian package `systemd`): who may own
/// `org.freedesktop.login1` (root) and which of its methods anyone else may call.
const LOGIN1_POLICY: [&str; 2] = [
    "/usr/share/dbus-1/system.d/org.freedesktop.login1.conf",
    "/etc/dbus-1/system.d/org.freedesktop.login1.conf",
];

/// A private `dbus-daemon`, stopped when dropped.
pub struct Bus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    /// A bus with the session bus's permissive policy.
    pub fn start() -> Bus {
        Bus::spawn(|_| vec!["--session".into()])
    }

    /// A bus with the system bus's default policy (from dbus's own system.conf: nobody may
    /// own a name or call a method unless a policy file allows it) plus a copy of logind's
    /// real policy file, so the fake logind and the agent are held to the rules real ones
    /// are. Only root may own `org.freedesktop.login1` under that policy.
    pub fn start_system_with_login1_policy() -> Bus {
        let policy = LOGIN1_POLICY
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "logind's bus policy file is missing ({LOGIN1_POLICY:?}): install the Debian package systemd (scripts/packages.txt)"
                )
            });
        Bus::spawn(|dir| {
            let copy = dir.join("org.freedesktop.login1.conf");
            std::fs::copy(policy, &copy).unwrap();
            let config = dir.join("system.conf");
            let sock = dir.join("sock");
            std::fs::write(&config, system_config(&sock, &copy)).unwrap();
            vec![format!("--config-file={}", config.display())]
        })
    }

    fn spawn(args: impl FnOnce(&Path) -> Vec<String>) -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("tapsign-bus-")
            .tempdir()
            .unwrap();
        // An agent running as another user (tests of the bus policy) must reach the socket.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = dir.path().join("sock");
        let mut args = args(dir.path());
        if args.iter().all(|a| !a.starts_with("--config-file")) {
            args.push(format!("--address=unix:path={}", sock.display()));
        }
        let mut child = Command::new("dbus-daemon")
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .args(&args)
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

/// A system bus configuration: dbus's default system policy, listening on `sock`, with the
/// policy file `include` (the copy of logind's).
fn system_config(sock: &Path, include: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>{include}</include>
</busconfig>
"#,
        sock = sock.display(),
        include = include.display()
    )
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

/// What logind knows when a lab starts.
#[derive(Debug, Clone)]
pub struct Logins {
    /// Whether logind is on the bus yet.
    pub running: bool,
    /// Users logind knows (with or without sessions).
    pub users: Vec<u32>,
    pub sessions: Vec<SessionSpec>,
}

impl Logins {
    /// The agent's user with one graphical session, [`SESSION_ID`]. With `leader` the test
    /// process (an ancestor of every agent a test starts), agents are inside it; with `None`
    /// they are outside any session, like a systemd user unit's.
    pub fn one_session(uid: u32, leader: Option<u32>) -> Logins {
        Logins {
            running: true,
            users: vec![uid],
            sessions: vec![SessionSpec {
                id: SESSION_ID.into(),
                uid,
                leader,
                kind: "wayland",
            }],
        }
    }
}

/// Two private buses with the fakes on them. (Fields drop in order: the connections, then
/// their runtime, then the daemons.)
pub struct Lab {
    logind: Option<FakeLogind>,
    screensavers: Vec<(&'static str, Connection)>,
    _notifications: Connection,
    shown: Arc<Mutex<Vec<Shown>>>,
    logins: Logins,
    rt: tokio::runtime::Runtime,
    /// Whether the system bus enforces logind's real policy (only possible as root).
    policy: bool,
    pub system: Bus,
    pub session: Bus,
}

impl Lab {
    /// An agent of this process's user, inside session [`SESSION_ID`].
    pub fn start() -> Lab {
        Lab::start_with(Logins::one_session(current_uid(), Some(std::process::id())))
    }

    /// A lab whose logind says the agent is outside any session, as for a systemd user unit;
    /// the user's graphical session is [`SESSION_ID`].
    pub fn start_outside_session() -> Lab {
        Lab::start_with(Logins::one_session(current_uid(), None))
    }

    /// As root, the system bus enforces logind's real bus policy (the fake owns the name as
    /// root, like logind); otherwise it is permissive, for developers' runs without root.
    pub fn start_with(logins: Logins) -> Lab {
        let policy = current_uid() == 0;
        let system = if policy {
            Bus::start_system_with_login1_policy()
        } else {
            Bus::start()
        };
        let session = Bus::start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shown = Arc::new(Mutex::new(Vec::new()));
        let (screensavers, notifications) = rt.block_on(async {
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
            (screensavers, notifications)
        });
        let mut lab = Lab {
            logind: None,
            screensavers,
            _notifications: notifications,
            shown,
            logins,
            rt,
            policy,
            system,
            session,
        };
        if lab.logins.running {
            lab.start_logind();
        }
        lab
    }

    /// Whether logind's real bus policy is in force on the system bus.
    pub fn policy_enforced(&self) -> bool {
        self.policy
    }

    /// Start logind (again), with the lab's users and sessions.
    pub fn start_logind(&mut self) {
        let logins = self.logins.clone();
        let fake = self
            .rt
            .block_on(FakeLogind::start(
                &self.system.address,
                &logins.users,
                &logins.sessions,
            ))
            .unwrap_or_else(|e| panic!("the fake logind cannot start: {e}"));
        self.logind = Some(fake);
    }

    /// Stop logind: its name leaves the bus.
    pub fn stop_logind(&mut self) {
        if let Some(l) = self.logind.take() {
            self.rt.block_on(l.stop());
        }
    }

    fn logind(&self) -> &FakeLogind {
        self.logind.as_ref().expect("logind is not running")
    }

    /// A new login session, announced as logind announces one.
    pub fn add_session(&mut self, spec: SessionSpec) {
        self.logins.sessions.push(spec.clone());
        self.rt.block_on(self.logind().add_session(spec)).unwrap();
    }

    /// The user's Display becomes session `id`, with no new session announced.
    pub fn set_display(&self, uid: u32, id: &str) {
        self.rt
            .block_on(self.logind().set_display(uid, id))
            .unwrap();
    }

    /// `systemctl suspend`: logind's whole suspend, waiting for the delay locks at most
    /// `InhibitDelayMaxSec` (FakeLogind::suspend).
    pub fn suspend(&self) -> crate::logind::Suspended {
        self.rt
            .block_on(self.logind().suspend(crate::logind::INHIBIT_DELAY_MAX))
            .unwrap()
    }

    /// The inhibitor locks logind holds now.
    pub fn inhibitors(&self) -> Vec<crate::logind::InhibitorSpec> {
        self.logind().inhibitors()
    }

    /// `loginctl lock-session ID`.
    pub fn lock_session(&self, id: &str) {
        self.rt.block_on(self.logind().lock_session(id)).unwrap();
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
            match trigger {
                Trigger::SessionLock => self.logind().lock_session(SESSION_ID).await.unwrap(),
                Trigger::LockedHint => self.logind().set_locked_hint(SESSION_ID).await.unwrap(),
                Trigger::PrepareForSleep => self.logind().prepare_for_sleep().await.unwrap(),
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

    /// The screensaver owning `name` goes away, as a locker that exits.
    pub fn stop_screensaver(&mut self, name: &'static str) {
        let i = self
            .screensavers
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no fake {name}"));
        let (_, conn) = self.screensavers.remove(i);
        self.rt.block_on(async move {
            conn.release_name(name).await.unwrap();
            drop(conn);
        });
    }

    /// Take `name` and drop it again, `times` times, as any program on the session bus may.
    pub fn churn_name(&self, name: &'static str, times: usize) {
        self.rt.block_on(async {
            let conn = zbus::connection::Builder::address(self.session.address.as_str())
                .build()
                .await
                .unwrap();
            for _ in 0..times {
                conn.request_name(name).await.unwrap();
                conn.release_name(name).await.unwrap();
            }
        });
    }

    /// logind answers `method` `late` from now on ([`FakeLogind::stall`]).
    pub fn stall(&self, method: &'static str, late: std::time::Duration) {
        self.logind().stall(method, late);
    }

    /// Another peer on the system bus sends `count` `Session.Lock` signals for session `id`
    /// straight to each connection process `pid` has on the bus, as any local user may: the
    /// system bus's default policy lets anyone send a signal to anyone (`<allow
    /// send_type="signal"/>`), and it delivers a message addressed to a connection whatever
    /// that connection subscribed to. The peer finds the connections as anyone can
    /// (ListNames, GetConnectionUnixProcessID). Returns how many connections it sent to.
    pub fn flood_signals(&self, pid: u32, id: &str, count: usize) -> usize {
        self.rt.block_on(async {
            let (conn, targets) = self.intruder(pid).await;
            let path = crate::logind::session_path(id);
            for _ in 0..count {
                for dest in &targets {
                    conn.emit_signal(
                        Some(dest.as_str()),
                        path.as_str(),
                        "org.freedesktop.login1.Session",
                        "Lock",
                        &(),
                    )
                    .await
                    .unwrap();
                }
            }
            targets.len()
        })
    }

    /// Another peer on the system bus tries to pass for logind, with signals sent straight
    /// to each connection process `pid` has on the bus: a NameOwnerChanged saying it now owns
    /// `org.freedesktop.login1`, then, from itself, `PrepareForSleep(true)` and `Session.Lock`
    /// for session `id`.
    pub fn forge_logind_takeover(&self, pid: u32, id: &str) {
        self.rt.block_on(async {
            let (conn, targets) = self.intruder(pid).await;
            let me = conn.unique_name().unwrap().to_string();
            let logind = self.logind().unique_name();
            let session = crate::logind::session_path(id);
            for dest in &targets {
                let dest = Some(dest.as_str());
                conn.emit_signal(
                    dest,
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "NameOwnerChanged",
                    &("org.freedesktop.login1", logind.as_str(), me.as_str()),
                )
                .await
                .unwrap();
                let manager = crate::logind::MANAGER_PATH;
                let iface = "org.freedesktop.login1.Manager";
                conn.emit_signal(dest, manager, iface, "PrepareForSleep", &(true,))
                    .await
                    .unwrap();
                let iface = "org.freedesktop.login1.Session";
                conn.emit_signal(dest, session.as_str(), iface, "Lock", &())
                    .await
                    .unwrap();
            }
        });
    }

    /// A connection of another peer's to the system bus, and the unique names of the
    /// connections process `pid` has on it, found as anyone can (ListNames,
    /// GetConnectionUnixProcessID).
    async fn intruder(&self, pid: u32) -> (Connection, Vec<String>) {
        let conn = zbus::connection::Builder::address(self.system.address.as_str())
            .build()
            .await
            .unwrap();
        let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
        let mut targets = Vec::new();
        for name in dbus.list_names().await.unwrap() {
            if !name.starts_with(':') {
                continue;
            }
            let owner = dbus.get_connection_unix_process_id(name.clone().into());
            if owner.await.ok() == Some(pid) {
                targets.push(name.to_string());
            }
        }
        (conn, targets)
    }

    /// The pids the agent asked the fake logind about with GetSessionByPID.
    pub fn pids_asked(&self) -> Vec<u32> {
        self.logind
            .as_ref()
            .map(FakeLogind::pids_asked)
            .unwrap_or_default()
    }

    /// The notifications the fake daemon received so far.
    pub fn notifications(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }
}

/// The real uid of this process (the owner of /proc/self).
pub fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap()
}

/// Where a session's leader would be for processes this test starts: the test process.
pub fn this_process() -> Option<u32> {
    Some(std::process::id())
}
