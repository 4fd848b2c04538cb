//! A fake systemd-logind, written from its D-Bus API documentation (org.freedesktop.login1(5))
//! and its sources' object layout, not from the agent's calls.
//!
//! What it models:
//! - `Manager` at `/org/freedesktop/login1`: `GetSession(s) -> o`, `GetSessionByPID(u) -> o`
//!   (pid 0 means the caller), `GetUser(u) -> o`, `ListSessions() -> a(susso)`; the signals
//!   `SessionNew(so)`, `SessionRemoved(so)`, `UserNew(uo)`, `UserRemoved(uo)`,
//!   `PrepareForSleep(b)`. Failures use logind's error names (`NoSuchSession`,
//!   `NoSessionForPID`, `NoSuchUser`, `OperationInProgress`).
//! - Inhibitor locks: `Inhibit(what, who, why, mode) -> h` hands the caller the write end of
//!   a pipe, and the lock is held until every copy of it is closed (logind uses a FIFO the
//!   same way). As logind's `method_inhibit` does, it refuses an unknown `what` or `mode`, a
//!   `delay` lock on anything but `shutdown` and `sleep`, and a lock on an operation that is
//!   running (`OperationInProgress`: a sleep lock asked for between `PrepareForSleep(true)`
//!   and the wake). [`FakeLogind::suspend`] then does what logind does for a suspend:
//!   `PrepareForSleep(true)`, wait for the `sleep` delay locks to be released, at most
//!   `InhibitDelayMaxSec` (5 s by default), sleep, `PrepareForSleep(false)`.
//! - `Session` at `/org/freedesktop/login1/session/<escaped id>`: `Id`, `User`, `Name`,
//!   `Leader`, `Type`, `Class`, `Active`, `State`, `Remote`, `LockedHint` (changes announced
//!   with PropertiesChanged); the signals `Lock` and `Unlock`.
//! - `User` at `/org/freedesktop/login1/user/_<uid>`: `UID`, `Name`, `State`, `Sessions`, and
//!   `Display`, the user's graphical session, announced with PropertiesChanged when it changes.
//!
//! - A busy logind: [`FakeLogind::stall`] makes it answer a method late, as a logind busy
//!   with other clients or stuck on a slow disk does (logind runs one event loop: a slow answer
//!   is a late answer, never a lost one). Not part of the API: a knob for tests.
//!
//! A process belongs to a session when the session's leader is the process or one of its
//! ancestors: real logind asks the process's cgroup (`session-N.scope`), which every process
//! the leader starts inherits. Object paths escape ids as sd-bus does (`bus_label_escape`: a
//! leading digit and every non-alphanumeric byte become `_xx`), so session "5" lives at
//! `.../session/_35`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath};

pub const MANAGER_PATH: &str = "/org/freedesktop/login1";

/// logind's error replies (org.freedesktop.login1.*).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.login1")]
pub enum LoginError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchSession(String),
    #[zbus(name = "NoSessionForPID")]
    NoSessionForPid(String),
    NoSuchUser(String),
    OperationInProgress(String),
}

/// logind's `InhibitDelayMaxSec` default (logind.conf(5)): how long a suspend waits for the
/// delay locks.
pub const INHIBIT_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// An inhibitor lock as logind lists it (`ListInhibitors`: what, who, why, mode, uid, pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitorSpec {
    pub what: String,
    pub who: String,
    pub why: String,
    pub mode: String,
    pub uid: u32,
    pub pid: u32,
}

/// One lock: its description, and whether the holder has closed every copy of its fd (a
/// thread blocked reading the pipe sees the end of file then).
struct Inhibitor {
    spec: InhibitorSpec,
    released: Arc<std::sync::atomic::AtomicBool>,
}

/// What a suspend found: the `sleep` delay locks held when it began, and how long it waited
/// for them.
#[derive(Debug, Clone)]
pub struct Suspended {
    pub delay_locks: Vec<InhibitorSpec>,
    pub waited: std::time::Duration,
    /// Whether every one of them was released before `InhibitDelayMaxSec` ran out.
    pub released_in_time: bool,
}

/// One session, as a test describes it.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub id: String,
    pub uid: u32,
    /// The session's leader; `None` for one whose leader has exited.
    pub leader: Option<u32>,
    /// `wayland`, `x11` (graphical: may become the user's Display) or `tty`.
    pub kind: &'static str,
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<String, SessionSpec>,
    /// uid -> the id of the user's Display session, if any.
    users: BTreeMap<u32, Option<String>>,
    pids_asked: Vec<u32>,
    locked_hints: BTreeMap<String, bool>,
    inhibitors: Vec<Inhibitor>,
    /// The `what` of the operation running (logind's `action_what`): set from
    /// `PrepareForSleep(true)` to the wake.
    action_what: Vec<&'static str>,
    /// Method name -> how late logind answers it ([`FakeLogind::stall`]).
    stalls: BTreeMap<&'static str, std::time::Duration>,
}

/// `inhibit_what_from_string`: a colon-separated list of known operations.
const WHATS: [&str; 8] = [
    "shutdown",
    "sleep",
    "idle",
    "handle-power-key",
    "handle-suspend-key",
    "handle-hibernate-key",
    "handle-lid-switch",
    "handle-reboot-key",
];

/// `bus_label_escape`: how sd-bus turns an id into an object path element.
pub fn escape(label: &str) -> String {
    let mut out = String::new();
    for (i, b) in label.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

pub fn session_path(id: &str) -> String {
    format!("{MANAGER_PATH}/session/{}", escape(id))
}

pub fn user_path(uid: u32) -> String {
    format!("{MANAGER_PATH}/user/_{uid}")
}

fn object_path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p).unwrap()
}

/// The parent of `pid`, from /proc (field 4 of /proc/PID/stat, after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

impl State {
    /// The session `pid` belongs to: its leader is `pid` or an ancestor of it.
    fn session_of(&self, pid: u32) -> Option<&SessionSpec> {
        let mut p = Some(pid);
        while let Some(cur) = p.filter(|&c| c > 1) {
            if let Some(s) = self.sessions.values().find(|s| s.leader == Some(cur)) {
                return Some(s);
            }
            p = parent_of(cur);
        }
        None
    }

    /// logind's `user_elect_display`, simplified: keep a graphical display session while it
    /// exists, else take the user's first graphical session.
    fn elect_display(&mut self, uid: u32) -> bool {
        let current = self.users.get(&uid).cloned().flatten();
        let graphical = |s: &SessionSpec| s.uid == uid && matches!(s.kind, "wayland" | "x11");
        if current
            .as_ref()
            .is_some_and(|id| self.sessions.get(id).is_some_and(graphical))
        {
            return false;
        }
        let elected = self
            .sessions
            .values()
            .find(|s| graphical(s))
            .map(|s| s.id.clone());
        let changed = elected != current;
        self.users.insert(uid, elected);
        changed
    }
}

struct Manager {
    state: Arc<Mutex<State>>,
}

impl Manager {
    /// Answer `method` as late as the test asked ([`FakeLogind::stall`]).
    async fn busy(&self, method: &str) {
        let late = self.state.lock().unwrap().stalls.get(method).copied();
        if let Some(late) = late {
            tokio::time::sleep(late).await;
        }
    }
}

/// The real uid of `pid`, from /proc (the first field of its `Uid:` line).
fn uid_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(u32::MAX)
}

/// The caller's pid, as logind gets it from the bus (GetConnectionUnixProcessID).
async fn caller_pid(conn: &Connection, header: &Header<'_>) -> Result<u32, LoginError> {
    let sender = header
        .sender()
        .ok_or_else(|| LoginError::ZBus(zbus::Error::MissingField))?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    Ok(dbus
        .get_connection_unix_process_id(sender.clone().into())
        .await
        .map_err(zbus::Error::from)?)
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    #[zbus(name = "GetSession")]
    fn get_session(&self, session_id: &str) -> Result<OwnedObjectPath, LoginError> {
        let state = self.state.lock().unwrap();
        match state.sessions.get(session_id) {
            Some(s) => Ok(object_path(&session_path(&s.id))),
            None => Err(LoginError::NoSuchSession(format!(
                "No session '{session_id}' known"
            ))),
        }
    }

    #[zbus(name = "GetSessionByPID")]
    async fn get_session_by_pid(
        &self,
        pid: u32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<OwnedObjectPath, LoginError> {
        self.busy("GetSessionByPID").await;
        let pid = if pid == 0 {
            caller_pid(conn, &header).await?
        } else {
            pid
        };
        let mut state = self.state.lock().unwrap();
        state.pids_asked.push(pid);
        match state.session_of(pid) {
            Some(s) => Ok(object_path(&session_path(&s.id))),
            None => Err(LoginError::NoSessionForPid(format!(
                "PID {pid} does not belong to any known session"
            ))),
        }
    }

    #[zbus(name = "GetUser")]
    fn get_user(&self, uid: u32) -> Result<OwnedObjectPath, LoginError> {
        let state = self.state.lock().unwrap();
        if state.users.contains_key(&uid) {
            Ok(object_path(&user_path(uid)))
        } else {
            Err(LoginError::NoSuchUser(format!(
                "No user {uid} known or logged in"
            )))
        }
    }

    #[zbus(name = "ListSessions")]
    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        let state = self.state.lock().unwrap();
        state
            .sessions
            .values()
            .map(|s| {
                let path = object_path(&session_path(&s.id));
                (
                    s.id.clone(),
                    s.uid,
                    format!("user{}", s.uid),
                    "seat0".into(),
                    path,
                )
            })
            .collect()
    }

    /// `Inhibit(what, who, why, mode) -> h`, checked as logind's `method_inhibit` checks it.
    #[zbus(name = "Inhibit")]
    async fn inhibit(
        &self,
        what: &str,
        who: &str,
        why: &str,
        mode: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<zbus::OwnedFd, LoginError> {
        self.busy("Inhibit").await;
        let invalid = |m: String| LoginError::ZBus(zbus::fdo::Error::InvalidArgs(m).into());
        let whats: Vec<&str> = what.split(':').collect();
        if what.is_empty() || whats.iter().any(|w| !WHATS.contains(w)) {
            return Err(invalid(format!("Invalid what specification {what}")));
        }
        if !matches!(mode, "block" | "block-weak" | "delay") {
            return Err(invalid(format!("Unknown mode {mode}")));
        }
        if mode == "delay" && whats.iter().any(|w| !matches!(*w, "shutdown" | "sleep")) {
            return Err(invalid(
                "Delay inhibitors only supported for shutdown and sleep".into(),
            ));
        }
        let pid = caller_pid(conn, &header).await?;
        let uid = uid_of(pid);
        let (reader, writer) = std::io::pipe().map_err(|e| LoginError::ZBus(e.into()))?;
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let mut state = self.state.lock().unwrap();
            if whats.iter().any(|w| state.action_what.contains(w)) {
                return Err(LoginError::OperationInProgress(
                    "The operation inhibition has been requested for is already running".into(),
                ));
            }
            state.inhibitors.push(Inhibitor {
                spec: InhibitorSpec {
                    what: what.into(),
                    who: who.into(),
                    why: why.into(),
                    mode: mode.into(),
                    uid,
                    pid,
                },
                released: Arc::clone(&released),
            });
        }
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buf = [0u8; 64];
            // Nothing is ever written: the read returns 0 once every write end is closed.
            while matches!(std::io::Read::read(&mut reader, &mut buf), Ok(n) if n > 0) {}
            released.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Ok(std::os::fd::OwnedFd::from(writer).into())
    }

    #[zbus(signal, name = "SessionNew")]
    async fn session_new(
        emitter: &SignalEmitter<'_>,
        session_id: &str,
        object_path: OwnedObjectPath,
    ) -> zbus::Result<()>;

    #[zbus(signal, name = "SessionRemoved")]
    async fn session_removed(
        emitter: &SignalEmitter<'_>,
        session_id: &str,
        object_path: OwnedObjectPath,
    ) -> zbus::Result<()>;

    #[zbus(signal, name = "UserNew")]
    async fn user_new(
        emitter: &SignalEmitter<'_>,
        uid: u32,
        object_path: OwnedObjectPath,
    ) -> zbus::Result<()>;

    #[zbus(signal, name = "PrepareForSleep")]
    async fn prepare_for_sleep(emitter: &SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

struct Session {
    spec: SessionSpec,
    state: Arc<Mutex<State>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(signal, name = "Lock")]
    async fn lock(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal, name = "Unlock")]
    async fn unlock(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(property, name = "Id")]
    fn id(&self) -> String {
        self.spec.id.clone()
    }

    #[zbus(property, name = "User")]
    fn user(&self) -> (u32, OwnedObjectPath) {
        (self.spec.uid, object_path(&user_path(self.spec.uid)))
    }

    #[zbus(property, name = "Name")]
    fn name(&self) -> String {
        format!("user{}", self.spec.uid)
    }

    #[zbus(property, name = "Leader")]
    fn leader(&self) -> u32 {
        self.spec.leader.unwrap_or(0)
    }

    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.spec.kind.into()
    }

    #[zbus(property, name = "Class")]
    fn class(&self) -> String {
        "user".into()
    }

    #[zbus(property, name = "Active")]
    fn active(&self) -> bool {
        true
    }

    #[zbus(property, name = "State")]
    fn state(&self) -> String {
        "active".into()
    }

    #[zbus(property, name = "Remote")]
    fn remote(&self) -> bool {
        false
    }

    #[zbus(property, name = "LockedHint")]
    fn locked_hint(&self) -> bool {
        let state = self.state.lock().unwrap();
        state
            .locked_hints
            .get(&self.spec.id)
            .copied()
            .unwrap_or(false)
    }
}

struct User {
    uid: u32,
    state: Arc<Mutex<State>>,
}

#[zbus::interface(name = "org.freedesktop.login1.User")]
impl User {
    #[zbus(property, name = "UID")]
    fn uid(&self) -> u32 {
        self.uid
    }

    #[zbus(property, name = "Name")]
    fn name(&self) -> String {
        format!("user{}", self.uid)
    }

    #[zbus(property, name = "State")]
    fn state(&self) -> String {
        "active".into()
    }

    #[zbus(property, name = "Display")]
    fn display(&self) -> (String, OwnedObjectPath) {
        let state = self.state.lock().unwrap();
        match state.users.get(&self.uid).cloned().flatten() {
            Some(id) => {
                let path = object_path(&session_path(&id));
                (id, path)
            }
            None => (String::new(), object_path("/")),
        }
    }

    #[zbus(property, name = "Sessions")]
    fn sessions(&self) -> Vec<(String, OwnedObjectPath)> {
        let state = self.state.lock().unwrap();
        state
            .sessions
            .values()
            .filter(|s| s.uid == self.uid)
            .map(|s| (s.id.clone(), object_path(&session_path(&s.id))))
            .collect()
    }
}

/// The fake, serving on a bus as `org.freedesktop.login1`.
pub struct FakeLogind {
    conn: Connection,
    state: Arc<Mutex<State>>,
}

impl FakeLogind {
    /// Take the name and serve `users` (with no session yet) and `sessions`, electing each
    /// user's Display as logind does. Fails when the bus policy does not let this process
    /// own the name.
    pub async fn start(
        address: &str,
        users: &[u32],
        sessions: &[SessionSpec],
    ) -> zbus::Result<FakeLogind> {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut st = state.lock().unwrap();
            for &uid in users {
                st.users.insert(uid, None);
            }
            for s in sessions {
                st.users.entry(s.uid).or_insert(None);
                st.sessions.insert(s.id.clone(), s.clone());
            }
            let uids: Vec<u32> = st.users.keys().copied().collect();
            for uid in uids {
                st.elect_display(uid);
            }
        }
        let manager = Manager {
            state: Arc::clone(&state),
        };
        // Objects first, then the name: a client that sees the name finds them served.
        let conn = zbus::connection::Builder::address(address)
            .serve_at(MANAGER_PATH, manager)
            .build()
            .await?;
        let fake = FakeLogind { conn, state };
        let uids: Vec<u32> = fake.state.lock().unwrap().users.keys().copied().collect();
        for uid in uids {
            fake.serve_user(uid).await?;
        }
        for s in sessions {
            fake.serve_session(s.clone()).await?;
        }
        fake.conn.request_name("org.freedesktop.login1").await?;
        Ok(fake)
    }

    async fn serve_user(&self, uid: u32) -> zbus::Result<()> {
        let user = User {
            uid,
            state: Arc::clone(&self.state),
        };
        self.conn.object_server().at(user_path(uid), user).await?;
        Ok(())
    }

    async fn serve_session(&self, spec: SessionSpec) -> zbus::Result<()> {
        let path = session_path(&spec.id);
        let session = Session {
            spec,
            state: Arc::clone(&self.state),
        };
        self.conn.object_server().at(path, session).await?;
        Ok(())
    }

    /// A new login, in logind's order (session_start): the user's Display is elected, then
    /// SessionNew, then the user's PropertiesChanged for Display.
    pub async fn add_session(&self, spec: SessionSpec) -> zbus::Result<()> {
        let uid = spec.uid;
        let new_user = !self.state.lock().unwrap().users.contains_key(&uid);
        let display_changed = {
            let mut st = self.state.lock().unwrap();
            st.users.entry(uid).or_insert(None);
            st.sessions.insert(spec.id.clone(), spec.clone());
            st.elect_display(uid)
        };
        if new_user {
            self.serve_user(uid).await?;
            let emitter = SignalEmitter::new(&self.conn, MANAGER_PATH)?;
            Manager::user_new(&emitter, uid, object_path(&user_path(uid))).await?;
        }
        let id = spec.id.clone();
        self.serve_session(spec).await?;
        let emitter = SignalEmitter::new(&self.conn, MANAGER_PATH)?;
        Manager::session_new(&emitter, &id, object_path(&session_path(&id))).await?;
        if display_changed {
            self.display_changed(uid).await?;
        }
        Ok(())
    }

    /// Make `id` the user's Display without a new session (logind re-elects when sessions
    /// change class or go away): only the PropertiesChanged is sent.
    pub async fn set_display(&self, uid: u32, id: &str) -> zbus::Result<()> {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(uid, Some(id.to_owned()));
        self.display_changed(uid).await
    }

    async fn display_changed(&self, uid: u32) -> zbus::Result<()> {
        let user = self
            .conn
            .object_server()
            .interface::<_, User>(user_path(uid))
            .await?;
        user.get()
            .await
            .display_changed(user.signal_emitter())
            .await
    }

    /// `loginctl lock-session ID`: the session's Lock signal.
    pub async fn lock_session(&self, id: &str) -> zbus::Result<()> {
        let emitter = SignalEmitter::new(&self.conn, session_path(id))?;
        Session::lock(&emitter).await
    }

    /// A locker calling SetLockedHint(true) on session `id`.
    pub async fn set_locked_hint(&self, id: &str) -> zbus::Result<()> {
        self.state
            .lock()
            .unwrap()
            .locked_hints
            .insert(id.to_owned(), true);
        let s = self
            .conn
            .object_server()
            .interface::<_, Session>(session_path(id))
            .await?;
        s.get().await.locked_hint_changed(s.signal_emitter()).await
    }

    pub async fn prepare_for_sleep(&self) -> zbus::Result<()> {
        let emitter = SignalEmitter::new(&self.conn, MANAGER_PATH)?;
        Manager::prepare_for_sleep(&emitter, true).await
    }

    /// A suspend, as logind runs one (`execute_shutdown_or_sleep` after
    /// `delay_shutdown_or_sleep`): `PrepareForSleep(true)`, then wait until the `sleep` delay
    /// locks held at that moment are released or `max_delay` has passed, then (the machine
    /// sleeps and wakes) `PrepareForSleep(false)`. Released locks are forgotten, as logind
    /// forgets an inhibitor whose FIFO is closed.
    pub async fn suspend(&self, max_delay: std::time::Duration) -> zbus::Result<Suspended> {
        use std::sync::atomic::Ordering;
        let held: Vec<(InhibitorSpec, Arc<std::sync::atomic::AtomicBool>)> = {
            let mut st = self.state.lock().unwrap();
            st.action_what = vec!["sleep"];
            st.inhibitors
                .iter()
                .filter(|i| i.spec.mode == "delay" && i.spec.what.split(':').any(|w| w == "sleep"))
                .filter(|i| !i.released.load(Ordering::SeqCst))
                .map(|i| (i.spec.clone(), Arc::clone(&i.released)))
                .collect()
        };
        let emitter = SignalEmitter::new(&self.conn, MANAGER_PATH)?;
        let started = std::time::Instant::now();
        Manager::prepare_for_sleep(&emitter, true).await?;
        let all_released = || held.iter().all(|(_, r)| r.load(Ordering::SeqCst));
        while !all_released() && started.elapsed() < max_delay {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let released_in_time = all_released();
        let waited = started.elapsed();
        {
            let mut st = self.state.lock().unwrap();
            st.inhibitors.retain(|i| !i.released.load(Ordering::SeqCst));
            st.action_what.clear();
        }
        Manager::prepare_for_sleep(&emitter, false).await?;
        Ok(Suspended {
            delay_locks: held.into_iter().map(|(spec, _)| spec).collect(),
            waited,
            released_in_time,
        })
    }

    /// The inhibitor locks held now (`ListInhibitors`), released ones left out.
    pub fn inhibitors(&self) -> Vec<InhibitorSpec> {
        let st = self.state.lock().unwrap();
        st.inhibitors
            .iter()
            .filter(|i| !i.released.load(std::sync::atomic::Ordering::SeqCst))
            .map(|i| i.spec.clone())
            .collect()
    }

    /// From now on answer `method` (`GetSessionByPID` or `Inhibit`) `late`; zero answers at
    /// once again. A call under way keeps the delay it started with.
    pub fn stall(&self, method: &'static str, late: std::time::Duration) {
        self.state.lock().unwrap().stalls.insert(method, late);
    }

    /// The pids GetSessionByPID was asked about (pid 0 resolved to the caller's).
    pub fn pids_asked(&self) -> Vec<u32> {
        self.state.lock().unwrap().pids_asked.clone()
    }

    /// The fake's unique name on the bus.
    pub fn unique_name(&self) -> String {
        self.conn
            .unique_name()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// Leave the bus, as logind does when it stops or restarts.
    pub async fn stop(self) {
        let _ = self.conn.release_name("org.freedesktop.login1").await;
        drop(self.conn);
    }
}
