//! systemd integration, without libsystemd: socket activation and readiness notification.
//!
//! - Socket activation (sd_listen_fds(3)): systemd binds the socket (tapsign-agent.socket) and
//!   starts the agent with it as fd 3, saying so in `LISTEN_PID`, `LISTEN_FDS` and
//!   `LISTEN_FDNAMES`. The agent checks the fd really is a listening Unix stream socket before
//!   serving it; the server then applies the folder and mode rules it applies to a socket it
//!   binds itself ([`crate::server::inherit`]).
//! - Readiness (sd_notify(3)): with `Type=notify`, systemd waits for a `READY=1` datagram on
//!   `$NOTIFY_SOCKET` before it counts the agent as started; `STATUS=` is shown by
//!   `systemctl status`, and `STOPPING=1` says the agent is shutting down.
//!
//! [`Handoff::take`] reads all four variables once, at start, and removes them from the
//! environment so nothing the agent might start inherits a socket meant for the agent alone.

use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

const LISTEN_PID: &str = "LISTEN_PID";
const LISTEN_FDS: &str = "LISTEN_FDS";
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Why an inherited socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(
        "{var}={value:?} is not a number; start the agent from tapsign-agent.socket, or unset LISTEN_PID and LISTEN_FDS"
    )]
    BadVariable { var: &'static str, value: String },
    #[error(
        "systemd passed {0} sockets; tapsign-agent.socket must have exactly one ListenStream= line"
    )]
    SocketCount(usize),
    #[error(
        "fd 3, which LISTEN_FDS says systemd passed, {0}; start the agent from tapsign-agent.socket (contrib/systemd)"
    )]
    NotASocket(String),
    #[error(
        "the socket systemd passed is {0}; tapsign serves only a listening Unix stream socket (ListenStream=%t/tapsign/agent.sock)"
    )]
    WrongKind(String),
}

/// What systemd handed over in the environment.
pub struct Handoff {
    /// `Some` when `LISTEN_PID` names this process: the socket to serve, or why it cannot be.
    pub listener: Option<Result<UnixListener, ActivationError>>,
    pub notifier: Notifier,
}

impl Handoff {
    /// Read and remove the variables, and take fd 3 if they say it is ours.
    ///
    /// Call it first thing in `main`, before any thread starts: removing environment variables
    /// is only sound while the process has one thread.
    pub fn take() -> Handoff {
        let pid = std::env::var_os(LISTEN_PID);
        let fds = std::env::var_os(LISTEN_FDS);
        let notify = std::env::var_os(NOTIFY_SOCKET);
        for var in [LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, NOTIFY_SOCKET] {
            remove_env(var);
        }
        let listener = match listen_fds(pid, fds, std::process::id()) {
            Ok(None) => None,
            Ok(Some(_)) => Some(adopt_first_fd()),
            Err(e) => Some(Err(e)),
        };
        Handoff {
            listener,
            notifier: Notifier::new(notify),
        }
    }
}

#[allow(unsafe_code)]
fn remove_env(var: &str) {
    // SAFETY: `Handoff::take` runs at the start of `tapsign agent`, before the runtime or any
    // other thread exists, so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(var) }
}

/// How many sockets systemd passed to process `me`, if it passed any to it. `LISTEN_PID` for
/// another process (a parent's, inherited) means none: sd_listen_fds(3) ignores them too.
pub fn listen_fds(
    pid: Option<OsString>,
    fds: Option<OsString>,
    me: u32,
) -> Result<Option<usize>, ActivationError> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    let number = |var: &'static str, v: &OsString| {
        v.to_str()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ActivationError::BadVariable {
                var,
                value: v.to_string_lossy().into_owned(),
            })
    };
    if number(LISTEN_PID, &pid)? != u64::from(me) {
        return Ok(None);
    }
    match number(LISTEN_FDS, &fds)? {
        0 => Ok(None),
        1 => Ok(Some(1)),
        n => Err(ActivationError::SocketCount(
            usize::try_from(n).unwrap_or(usize::MAX),
        )),
    }
}

/// Take ownership of fd 3 after checking it is a listening Unix stream socket.
fn adopt_first_fd() -> Result<UnixListener, ActivationError> {
    // Whether fd 3 is open, and a socket, without touching it: the kernel names it
    // `socket:[inode]` in /proc. Taking ownership of an fd that is not open would be wrong.
    match std::fs::read_link(format!("/proc/self/fd/{FIRST_FD}")) {
        Ok(target) if target.to_string_lossy().starts_with("socket:") => {}
        Ok(target) => {
            return Err(ActivationError::NotASocket(format!(
                "is {}, not a socket",
                target.display()
            )));
        }
        Err(e) => return Err(ActivationError::NotASocket(format!("is not open ({e})"))),
    }
    let fd = take_fd(FIRST_FD);
    // systemd passes it without close-on-exec; nothing the agent starts should get it.
    if let Err(e) = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC) {
        say!("tapsign agent: warning: cannot set close-on-exec on the inherited socket: {e}");
    }
    let wrong = |what: String| ActivationError::WrongKind(what);
    let family = rustix::net::sockopt::socket_domain(&fd).map_err(|e| wrong(e.to_string()))?;
    if family != rustix::net::AddressFamily::UNIX {
        return Err(wrong(format!(
            "not a Unix socket (address family {})",
            family.as_raw()
        )));
    }
    let kind = rustix::net::sockopt::socket_type(&fd).map_err(|e| wrong(e.to_string()))?;
    if kind != rustix::net::SocketType::STREAM {
        return Err(wrong(format!(
            "a Unix socket of type {}, not a stream socket (ListenDatagram= or ListenSequentialPacket=?)",
            kind.as_raw()
        )));
    }
    if !rustix::net::sockopt::socket_acceptconn(&fd).map_err(|e| wrong(e.to_string()))? {
        return Err(wrong(
            "a Unix stream socket that is not listening (Accept=yes?)".into(),
        ));
    }
    Ok(UnixListener::from(fd))
}

#[allow(unsafe_code)]
fn take_fd(raw: i32) -> OwnedFd {
    // SAFETY: the fd is open (checked through /proc just before), systemd handed it to this
    // process for it to own (LISTEN_PID is ours), and nothing else in the agent uses fd 3:
    // every fd the agent opens itself is close-on-exec and opened after this point.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Sends state changes to systemd (`$NOTIFY_SOCKET`); does nothing when not started by it.
pub struct Notifier {
    target: Option<Result<SocketAddr, String>>,
    warned: AtomicBool,
}

impl Notifier {
    /// From the value of `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    pub fn new(value: Option<OsString>) -> Notifier {
        let target = value.filter(|v| !v.is_empty()).map(|v| address(&v));
        Notifier {
            target,
            warned: AtomicBool::new(false),
        }
    }

    /// A notifier that never sends (tests, embedders).
    pub fn none() -> Notifier {
        Notifier::new(None)
    }

    /// `READY=1`: the socket is being served.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `STOPPING=1`: the agent is shutting down.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// Send one notification. A failure is logged once and otherwise ignored: systemd then
    /// reports the start as timed out, which says more than a dead agent would.
    pub fn send(&self, state: &str) {
        let Some(target) = &self.target else {
            return;
        };
        let sent = match target {
            Ok(addr) => UnixDatagram::unbound()
                .and_then(|s| s.send_to_addr(state.as_bytes(), addr))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = sent
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            say!("tapsign agent: warning: cannot notify systemd (NOTIFY_SOCKET): {e}");
        }
    }
}

/// Parse a `NOTIFY_SOCKET` value.
fn address(value: &OsString) -> Result<SocketAddr, String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(std::path::Path::new(value))
            .map_err(|e| format!("{}: {e}", value.to_string_lossy())),
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
                .map_err(|e| format!("{}: {e}", value.to_string_lossy()))
        }
        _ => Err(format!(
            "{:?} is neither a path nor an abstract socket (@name)",
            value.to_string_lossy()
        )),
    }
}

/// STATUS= ends at a newline: keep a message on one line.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(s.into())
    }

    #[test]
    fn listen_fds_for_this_process_count() {
        assert_eq!(listen_fds(os("42"), os("1"), 42).unwrap(), Some(1));
    }

    #[test]
    fn listen_fds_meant_for_another_process_are_ignored() {
        // A LISTEN_PID inherited from a parent names the parent, not us.
        assert_eq!(listen_fds(os("41"), os("1"), 42).unwrap(), None);
        assert_eq!(listen_fds(None, os("1"), 42).unwrap(), None);
        assert_eq!(listen_fds(os("42"), None, 42).unwrap(), None);
        assert_eq!(listen_fds(os("42"), os("0"), 42).unwrap(), None);
    }

    #[test]
    fn listen_fds_that_are_not_numbers_are_refused() {
        let e = listen_fds(os("42"), os("one"), 42).unwrap_err();
        assert!(e.to_string().contains("LISTEN_FDS=\"one\""), "{e}");
        let e = listen_fds(os("x"), os("1"), 42).unwrap_err();
        assert!(e.to_string().contains("LISTEN_PID"), "{e}");
    }

    #[test]
    fn more_than_one_socket_is_refused() {
        let e = listen_fds(os("42"), os("2"), 42).unwrap_err();
        assert!(e.to_string().contains("exactly one ListenStream="), "{e}");
    }

    #[test]
    fn notify_socket_addresses_parse() {
        let path = address(&"/run/user/1000/systemd/notify".into()).unwrap();
        assert!(path.as_pathname().is_some());
        let abs = address(&"@/org/freedesktop/systemd1/notify/42".into()).unwrap();
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(
            abs.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/42"[..])
        );
        assert!(address(&"vsock:2:1234".into()).is_err());
    }

    #[test]
    fn a_notification_reaches_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.into_os_string()));
        n.ready("listening\non two lines");
        let mut buf = [0u8; 256];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=listening on two lines");
    }
}
