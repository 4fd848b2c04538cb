//! The accept loop: socket creation, peer-uid check, connection limit, frame cap and read
//! timeouts, the reaper, and shutdown on signals.

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tapsign_proto::frame::{check_len, decode_body, write_frame_async};
use tapsign_proto::{PROTOCOL_VERSION, ProtoError, Request, Response};
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::agent::Agent;
use crate::audit::AuditEvent;
use crate::disk::{DirError, Exposure, Kind, Need};
use crate::error::AgentError;
use crate::session::{Client, LockReason};
use crate::systemd::Notifier;

/// Why the agent could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "another tapsign agent is already running on {0}; stop it first (`tapsign lock` does not stop it: send it SIGTERM)"
    )]
    AlreadyRunning(PathBuf),
    #[error("the socket folder {path} {problem}: {fix}, or point TAPSIGN_SOCK elsewhere")]
    UnsafeFolder {
        path: PathBuf,
        problem: Exposure,
        fix: String,
    },
    #[error(
        "the socket {path} that systemd passed {problem}; fix tapsign-agent.socket (SocketMode=0600, DirectoryMode=0700)"
    )]
    UnsafeSocket { path: PathBuf, problem: String },
    #[error(
        "cannot listen on {0}: something other than a socket is there, and the agent replaces only a stale socket; check TAPSIGN_SOCK, or move that file away"
    )]
    NotASocket(PathBuf),
    #[error(
        "the folder {path} above the socket folder {problem}: whoever can move the socket folder can end your session at will (the agent locks when its socket is moved); set XDG_RUNTIME_DIR to a folder of your own, mode 0700 (or unset it), or point TAPSIGN_SOCK at a path in a folder of your own"
    )]
    UnsafeAbove { path: PathBuf, problem: String },
    #[error("cannot create the socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The socket the agent serves, and whether it bound it itself.
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    /// Passed in by systemd (socket activation): systemd owns the file and removes it.
    inherited: bool,
}

impl Listener {
    /// Where clients connect.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The folder that holds the socket must be a real folder, ours alone (no access for others
/// at all, as docs/protocol.md says): whoever can write to it can swap the socket for their
/// own, and one others can list or enter invites them to try the socket.
fn check_folder(dir: &Path) -> Result<(), ServerError> {
    match crate::disk::check_dir(dir, Need::Private) {
        Ok(true) => Ok(()),
        Ok(false) => Err(io_err(dir)(std::io::ErrorKind::NotFound.into())),
        Err(e) => Err(folder_error(e)),
    }
}

fn folder_error(e: DirError) -> ServerError {
    match e {
        DirError::Exposed { path, problem } => ServerError::UnsafeFolder {
            fix: problem.fix(&path, Kind::Folder),
            path,
            problem,
        },
        DirError::Io { path, source, .. } => ServerError::Io { path, source },
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The folder above the socket folder (`$XDG_RUNTIME_DIR`, for the default socket) must be
/// ours or root's, and not writable by others unless sticky (`/tmp`): its owner, or anyone
/// who can write it, can move the socket folder away and back, which locks the session. An
/// `XDG_RUNTIME_DIR` of another user's (a login snippet's `/tmp/$UID-runtime-dir` made first
/// by that user) was served silently, and its owner ended the session at will (red-team
/// round 26, recheck). One that does not exist yet is made by [`bind`], ours and 0700.
pub fn check_above(socket: &Path) -> Result<(), ServerError> {
    let above = parent_of(parent_of(socket));
    match not_ours(above, true) {
        None => Ok(()),
        Some(problem) => Err(ServerError::UnsafeAbove {
            path: above.to_owned(),
            problem,
        }),
    }
}

/// What is wrong with `folder` as one whose every entry must stay as we left it: the one check
/// ([`crate::disk::exposure`], [`Need::Unwritable`]: ours or root's, writable by no one else),
/// except that with `sticky` a folder others may write passes if it is sticky (`/tmp`): they
/// can add names there, not move ours. `None` when it is fine, or cannot be read (what needs
/// it then fails on its own).
pub fn not_ours(folder: &Path, sticky: bool) -> Option<String> {
    let meta = std::fs::symlink_metadata(folder).ok()?;
    match crate::disk::exposure(&meta, Kind::Folder, Need::Unwritable)? {
        Exposure::Writable { mode } if sticky && mode & 0o1000 != 0 => None,
        problem => Some(problem.to_string()),
    }
}

/// Bind the agent's socket: the folder is made 0700 (and must be ours and private, in a folder
/// [`check_above`] accepts), a live agent on the path is left alone, a stale socket file is
/// replaced.
pub async fn bind(path: &Path) -> Result<Listener, ServerError> {
    let dir = parent_of(path);
    check_above(path)?;
    crate::disk::ensure_private_dir(dir).map_err(folder_error)?;
    // Only a socket is ever replaced: whatever else sits at the path (a mistyped
    // TAPSIGN_SOCK naming a file of the user's) is theirs, and is left alone.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(ServerError::NotASocket(path.into()));
        }
        match UnixStream::connect(path).await {
            Ok(_) => return Err(ServerError::AlreadyRunning(path.into())),
            Err(e)
                if e.kind() == ErrorKind::ConnectionRefused || e.kind() == ErrorKind::NotFound =>
            {
                say!(
                    "tapsign agent: replacing the stale socket {}",
                    path.display()
                );
                std::fs::remove_file(path).map_err(io_err(path))?;
            }
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    let listener = UnixListener::bind(path).map_err(io_err(path))?;
    // The umask (077) already made it 0600; say so explicitly in case the caller's differs.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    Ok(Listener {
        inner: listener,
        path: path.into(),
        inherited: false,
    })
}

/// Serve a listening socket systemd passed in (socket activation, crate::systemd). The agent
/// did not create it, so it checks what it can: a socket file (not an abstract name, which
/// has no permissions at all), ours, 0600 or stricter, in a folder that is ours and not
/// writable by others. `expected` is where clients look; a socket elsewhere is served, with a
/// warning.
pub fn inherit(
    listener: std::os::unix::net::UnixListener,
    expected: &Path,
) -> Result<Listener, ServerError> {
    let unsafe_socket = |path: &Path, problem: String| ServerError::UnsafeSocket {
        path: path.into(),
        problem,
    };
    let addr = listener
        .local_addr()
        .map_err(io_err(Path::new("(inherited socket)")))?;
    let Some(path) = addr.as_pathname().map(Path::to_path_buf) else {
        return Err(unsafe_socket(
            Path::new("(inherited socket)"),
            "has no path (an abstract or unnamed socket has no file permissions to keep other users out)".into(),
        ));
    };
    check_folder(parent_of(&path))?;
    check_above(&path)?;
    let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
    let me = rustix::process::getuid().as_raw();
    if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
        return Err(unsafe_socket(&path, "is not a socket file".into()));
    }
    if meta.uid() != me {
        return Err(unsafe_socket(
            &path,
            format!("belongs to uid {}, not to you (uid {me})", meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_socket(
            &path,
            format!("has mode {:04o}; set SocketMode=0600", meta.mode() & 0o7777),
        ));
    }
    if path != expected {
        say!(
            "tapsign agent: warning: serving {} (from systemd), but clients look for {}; set TAPSIGN_SOCK={} for them, or make ListenStream= match",
            path.display(),
            expected.display(),
            path.display()
        );
    }
    listener.set_nonblocking(true).map_err(io_err(&path))?;
    let inner = UnixListener::from_std(listener).map_err(io_err(&path))?;
    Ok(Listener {
        inner,
        path,
        inherited: true,
    })
}

/// Serve until SIGTERM or SIGINT. Locks (wiping the session) before returning. `notifier`
/// tells systemd when the socket is served and when the agent stops (a no-op otherwise).
pub async fn serve(
    agent: Arc<Agent>,
    listener: Listener,
    notifier: &Notifier,
) -> std::io::Result<()> {
    let Listener {
        inner: listener,
        path: socket,
        inherited,
    } = listener;
    // Counted first, so that the count is up before tokio's own action for the same signal
    // wakes the accept loop (actions run in the order they were registered).
    if let Err(e) = crate::watchdog::count_signals() {
        say!(
            "tapsign agent: warning: SIGHUP and SIGCONT are not counted as they arrive ({e}): they lock from the accept loop only"
        );
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // An agent that was stopped (SIGSTOP, which any process of the user may send) cannot know
    // what it missed: a screen lock or suspend signal may have been refused by the bus while
    // it did not read. It locks when it runs again.
    let mut cont = signal(SignalKind::from_raw(rustix::process::Signal::CONT.as_raw()))?;
    let bound_ino = std::fs::symlink_metadata(&socket).map(|m| m.ino()).ok();
    let bound_id = std::fs::symlink_metadata(&socket)
        .map(|m| (m.dev(), m.ino()))
        .ok();
    // Written before the watchdog starts, which then keeps it the agent's (a bot that puts
    // its own file there, naming another process, would have `tapsign lock` signal that one).
    let pid_file = Arc::new(std::sync::Mutex::new(Some(PidFile::write(&socket))));
    crate::watchdog::spawn(&agent, socket.clone(), bound_id, Arc::clone(&pid_file));
    let reaper = tokio::spawn(reaper(Arc::clone(&agent)));
    // The record of the vaults every unlock's check holds the keystore to is read whole now,
    // while nobody waits: the first unlock then reads on from here, not a long log from its
    // first line (audit::ledger::VaultsRead), and holds the keystore to what was read even if
    // its own read of the log fails (red-team round 25, second recheck: only a log over 4 MB
    // was read at start, so the first unlock with the log unreadable knew no vault). On a
    // thread that ends once it has read (one kept for good cost the idle agent 0.3 MiB).
    let reading = Arc::clone(&agent);
    tokio::spawn(crate::worker::run("tapsign-vaults", move || {
        let file = reading.audit.hold();
        crate::audit::held_to(file, || reading.audit.read_vaults())
    }));
    let lock_sources = crate::locksource::spawn(&agent);
    let stop_watchers = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let removal = crate::removal::spawn(Arc::clone(&agent), Arc::clone(&stop_watchers))?;
    // One slot is kept back for `status` and `lock`, so a bot that holds every other one (or
    // a pile of connections that never say hello) cannot keep the trader from locking.
    let general = agent.config.server.max_connections.saturating_sub(1).max(1);
    let slots = Arc::new(Semaphore::new(general));
    let control = Arc::new(Semaphore::new(1));
    // A log that cannot take it is said by the sink and shown by `status`; the agent serves.
    let _ = agent
        .audit
        .record(AuditEvent::AgentStart {
            version: crate::agent::agent_version(),
            pid: std::process::id(),
        })
        .await;
    let from = if inherited { " (from systemd)" } else { "" };
    say!("tapsign agent: listening on {}{from}", socket.display());
    for w in (agent.unmatched_key_policies().into_iter()).chain(agent.idle_key_switches()) {
        say!("tapsign agent: warning: {w}");
    }
    // The listener is accepting from here on: a client that connects after READY=1 is served.
    notifier.ready(&format!("listening on {}", socket.display()));
    let stop = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let agent = Arc::clone(&agent);
                    if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
                        tokio::spawn(serve_on_slot(agent, stream, Slot::Any, permit));
                    } else if let Ok(permit) = Arc::clone(&control).try_acquire_owned() {
                        tokio::spawn(serve_on_slot(agent, stream, Slot::Control, permit));
                    } else {
                        tokio::spawn(async move { let mut stream = stream; refuse(&mut stream, AgentError::BusyAll).await });
                    }
                }
                Err(e) => {
                    say!("tapsign agent: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Marked as acted on (watchdog::Signals), so a request does not lock for it again;
            // locking twice for one signal is harmless, not locking is not.
            _ = hup.recv() => {
                agent.signals.take();
                agent.lock(LockReason::Signal("SIGHUP"));
            }
            _ = cont.recv() => {
                agent.signals.take();
                agent.lock(LockReason::Signal("SIGCONT: the agent was stopped"));
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    notifier.stopping(&format!("stopping ({stop}); the session is wiped"));
    agent.lock(LockReason::Signal(stop));
    reaper.abort();
    lock_sources.stop();
    stop_watchers.store(true, std::sync::atomic::Ordering::Relaxed);
    // The watcher wakes every half second; a hung pcscd must not hold the shutdown up.
    drop(removal);
    let _ = agent
        .audit
        .record(AuditEvent::AgentStop {
            reason: format!("received {stop}"),
        })
        .await;
    // The last sync: what was written reaches the disk before the agent exits.
    agent.audit.close().await;
    drop(listener);
    // Remove the socket only if it is still the one this agent bound: a newer agent that
    // replaced it (after this one looked stale) keeps its own. An inherited socket is
    // systemd's: it keeps listening on it, to start the agent again on the next connection.
    let now_ino = std::fs::symlink_metadata(&socket).map(|m| m.ino()).ok();
    if !inherited && now_ino.is_some() && now_ino == bound_ino {
        let _ = std::fs::remove_file(&socket);
    }
    drop(pid_file.lock().unwrap_or_else(|e| e.into_inner()).take());
    say!("tapsign agent: stopped ({stop})");
    Ok(())
}

/// The agent's pid, next to the socket, under an exclusive `flock` held while the agent runs
/// ([`tapsign_proto::path::pid_file`]): a reader that finds the lock held knows the pid is a
/// live agent's, written by that agent. Removed when the agent stops. Without it (the folder
/// cannot take it) `tapsign lock` still finds an agent that bound its own socket.
pub(crate) struct PidFile {
    path: PathBuf,
    /// The file this agent wrote and holds locked, and its size and change times as written;
    /// `None` until it could write one.
    held: Option<(std::fs::File, FileStamp)>,
    /// The last attempt to write it failed (said once, not every beat).
    failing: bool,
}

impl PidFile {
    /// Write the pid file, replacing whatever is at its path (a file a bot put there before the
    /// agent started, naming another process, included). A failure is said; the watchdog tries
    /// again every beat ([`crate::watchdog`]).
    fn write(socket: &Path) -> PidFile {
        let mut pid_file = PidFile {
            path: tapsign_proto::path::pid_file(socket),
            held: None,
            failing: false,
        };
        if let Err(e) = pid_file.restore() {
            say!(
                "tapsign agent: warning: could not write {} ({e}): the session stays locked until it can; while every connection slot is taken, `tapsign lock` may not find this agent",
                pid_file.path.display()
            );
            pid_file.failing = true;
        }
        pid_file
    }

    /// Create `at` (a new name, no symlink followed), lock it, write the pid, and rename it over
    /// `path`: a whole file appears at once, already locked.
    fn create(at: &Path, path: &Path) -> std::io::Result<std::fs::File> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(at)?;
        let written = (|| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
            writeln!(f, "{}", std::process::id())?;
            std::fs::rename(at, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(at);
            return Err(e);
        }
        Ok(f)
    }

    /// Whether the path names the file this agent holds (device and inode), and the file was
    /// not written since (a bot of the user can write into it: the lock is advisory). Only
    /// `lstat` and `fstat`: reading the file would show a watching bot when the check runs.
    pub(crate) fn in_place(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some((held, stamp)) = &self.held else {
            return false;
        };
        let (Ok(now), Ok(ours)) = (std::fs::symlink_metadata(&self.path), held.metadata()) else {
            return false;
        };
        (now.dev(), now.ino()) == (ours.dev(), ours.ino()) && FileStamp::of(&ours) == *stamp
    }

    /// Whether the held file says this agent's pid.
    pub(crate) fn says_ours(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let Some((held, _)) = &self.held else {
            return false;
        };
        let want = format!("{}\n", std::process::id());
        let mut buf = [0u8; 32];
        matches!(held.read_at(&mut buf, 0), Ok(n) if buf[..n] == *want.as_bytes())
    }

    /// Write this agent's pid file anew where it is missing, moved, replaced or rewritten.
    pub(crate) fn restore(&mut self) -> std::io::Result<()> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            hex::encode(random)
        ));
        let file = Self::create(Path::new(&name), &self.path)?;
        let stamp = FileStamp::of(&file.metadata()?);
        self.held = Some((file, stamp));
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Record whether the last [`PidFile::restore`] failed; true when that is news.
    pub(crate) fn failed(&mut self, failed: bool) -> bool {
        let news = failed && !self.failing;
        self.failing = failed;
        news
    }
}

/// A file's size and modification and change times: a write through any descriptor moves
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Still this agent's file, locked by it: no other agent can have written it since.
        if self.in_place() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a connection may do: anything, or (on the slot kept back when all others are taken)
/// only `hello` and then one `status` or `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Any,
    Control,
}

/// Answer with `e` and hang up.
async fn refuse(stream: &mut UnixStream, e: AgentError) {
    let resp = e.response();
    let _ = tokio::time::timeout(Duration::from_secs(1), answer(stream, &resp)).await;
}

/// Send `resp`. An answer too large for one frame (an error quoting back a name of tens of
/// kilobytes) is replaced by one that says so: every request gets its one answer, and the
/// connection stays in step.
async fn answer(stream: &mut UnixStream, resp: &Response) -> Result<(), ProtoError> {
    match write_frame_async(stream, resp).await {
        // Refused before a byte was written.
        Err(ProtoError::FrameTooLarge { len, max }) => {
            let e = AgentError::Malformed(format!(
                "the answer to this request ({len} bytes) would not fit in one {} KiB frame; \
                 send a smaller request",
                max / 1024
            ));
            write_frame_async(stream, &e.response()).await
        }
        other => other,
    }
}

/// The connecting process: its uid, pid and program, read once, when the connection is
/// accepted (the CLI's `unlock` is still dumpable then: cli/src/commands/remote.rs).
fn client_of(stream: &UnixStream) -> Option<(u32, Client)> {
    let cred = stream.peer_cred().ok()?;
    let pid = cred.pid().map(|p| p as u32).unwrap_or(0);
    let proc = |f: &str| std::fs::read(format!("/proc/{pid}/{f}")).ok();
    let exe = program(std::fs::read_link(format!("/proc/{pid}/exe")), || {
        proc("cmdline")
            .filter(|c| !c.is_empty())
            .or_else(|| proc("comm"))
    });
    Some((cred.uid(), Client { pid, exe }))
}

/// Longest a name a process gives itself is shown, in characters.
const SELF_NAMED_MAX: usize = 64;

/// What a client's program is called: the path of its executable (`/proc/PID/exe`), or, when
/// the kernel refuses that (a process that made itself not dumpable, as `tapsign unlock`
/// does, hides it from every other process of the user), what it calls itself (`named`: its
/// command line, else its `comm`), marked as its own choice: `not dumpable, calls itself
/// "python3 bot.py"`. Any process can choose that name, so it is never a path (which starts
/// with `/`), and only the command's first two words are kept: its program and, say, the
/// script or subcommand, not arguments that might hold what no log should (red-team round
/// 21: every such client, the trader's own `tapsign unlock` included, was "?"). A title set
/// over the command line (`sshd: trader@pts/0`) is one word holding blanks: kept whole, not
/// cut to what follows its last `/` (`"0"`).
pub(crate) fn program(
    exe: std::io::Result<PathBuf>,
    named: impl FnOnce() -> Option<Vec<u8>>,
) -> String {
    let refused = match exe {
        Ok(path) => return path.display().to_string(),
        Err(e) => [rustix::io::Errno::ACCESS, rustix::io::Errno::PERM]
            .iter()
            .any(|c| e.raw_os_error() == Some(c.raw_os_error())),
    };
    let words: Option<String> = named().map(|raw| {
        let mut words = raw
            .split(|b| *b == 0 || *b == b'\n')
            .filter(|w| !w.is_empty())
            .take(2)
            .map(String::from_utf8_lossy);
        let first = words.next().unwrap_or_default();
        // A program as run (`/usr/bin/python3`) is named by its file; a title a process set
        // over its command line (`sshd: trader@pts/0`) is kept whole, less any leading `/`.
        let first = if first.contains(char::is_whitespace) {
            first.trim_start_matches('/').to_owned()
        } else {
            first.rsplit('/').next().unwrap_or_default().to_owned()
        };
        std::iter::once(first)
            .chain(words.map(|w| w.into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    });
    match (refused, words) {
        (true, Some(w)) if !w.is_empty() => {
            let mut cut: String = w.chars().take(SELF_NAMED_MAX).collect();
            if w.chars().count() > SELF_NAMED_MAX {
                cut.push('…');
            }
            format!("not dumpable, calls itself {cut:?}")
        }
        (true, _) => "not dumpable, nameless".into(),
        (false, _) => "?".into(),
    }
}

/// Read one frame. Before `hello` the whole frame must arrive within the frame timeout of the
/// connection opening; after it, the connection may idle between frames, but a frame, once its
/// first byte is in, must be complete within the frame timeout. `Ok(None)`: the peer left or
/// idled out.
async fn read_frame(
    stream: &mut UnixStream,
    limits: &crate::config::ServerConfig,
    may_idle: bool,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AgentError> {
    let greeted = may_idle;
    let late = || {
        AgentError::Malformed(format!(
            "the frame did not arrive in full within {} s; closing",
            limits.frame_timeout.as_secs()
        ))
    };
    let started = tokio::time::Instant::now();
    let idle = if greeted {
        limits.idle_connection_timeout
    } else {
        limits.frame_timeout
    };
    let mut header = [0u8; 4];
    match tokio::time::timeout(idle, stream.read_exact(&mut header[..1])).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Ok(None),
        Err(_) if greeted => return Ok(None),
        Err(_) => return Err(late()),
    }
    let deadline = if greeted {
        tokio::time::Instant::now() + limits.frame_timeout
    } else {
        started + limits.frame_timeout
    };
    match tokio::time::timeout_at(deadline, stream.read_exact(&mut header[1..])).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Ok(None),
        Err(_) => return Err(late()),
    }
    let len = check_len(header).map_err(|e| AgentError::Malformed(e.to_string()))?;
    // An unlock frame carries the PIN: the buffer is wiped when it is dropped.
    let mut body = zeroize::Zeroizing::new(vec![0u8; len]);
    match tokio::time::timeout_at(deadline, stream.read_exact(&mut body[..])).await {
        Ok(Ok(_)) => Ok(Some(body)),
        Ok(Err(_)) => Ok(None),
        Err(_) => Err(late()),
    }
}

/// Serve one connection on its slot. The slot is let go before the connection closes, so a
/// client that sees the agent hang up and connects again at once finds the slot free.
async fn serve_on_slot(
    agent: Arc<Agent>,
    mut stream: UnixStream,
    slot: Slot,
    permit: OwnedSemaphorePermit,
) {
    connection(agent, &mut stream, slot).await;
    drop(permit);
    drop(stream);
}

/// Serve one connection: peer check, `hello`, then request after request.
async fn connection(agent: Arc<Agent>, stream: &mut UnixStream, slot: Slot) {
    let Some((uid, client)) = client_of(stream) else {
        let who = "the agent could not identify the connecting process";
        return refuse(stream, AgentError::Forbidden(who)).await;
    };
    let me = rustix::process::getuid().as_raw();
    if uid != me {
        say!(
            "tapsign agent: refused a connection from uid {uid} (pid {})",
            client.pid
        );
        let _ = agent
            .audit
            .record_refusal(AuditEvent::PeerRefused {
                uid,
                pid: client.pid,
                exe: client.exe.clone(),
                repeated: 0,
            })
            .await;
        let whose = "this agent serves only the user who runs it";
        return refuse(stream, AgentError::Forbidden(whose)).await;
    }
    let limits = agent.config.server;
    let mut greeted = false;
    loop {
        // Only a full connection may idle between requests; the kept-back slot must finish
        // its hello and its one request within the frame timeout each.
        let may_idle = greeted && slot == Slot::Any;
        let body = match read_frame(stream, &limits, may_idle).await {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(e) => return refuse(stream, e).await,
        };
        let resp = match decode_body::<Request>(&body) {
            // Before `hello`, and on the kept-back slot, a frame that is not a message closes
            // the connection like any other wrong first message: answered and kept open, a
            // frame of junk every few seconds would hold the slot for ever.
            Err(e) if !greeted || slot == Slot::Control => {
                return refuse(stream, AgentError::Malformed(e.to_string())).await;
            }
            Err(e) => AgentError::Malformed(e.to_string()).response(),
            Ok(Request::Hello { version, .. }) if version != PROTOCOL_VERSION => {
                let e = AgentError::VersionMismatch {
                    agent: PROTOCOL_VERSION,
                    client: version,
                };
                return refuse(stream, e).await;
            }
            // On the kept-back slot, `hello` comes once: a repeated one answered would restart
            // the frame timeout, and a hello every few seconds would hold the slot for ever.
            Ok(Request::Hello { .. }) if greeted && slot == Slot::Control => {
                return refuse(stream, AgentError::Busy).await;
            }
            Ok(req @ Request::Hello { .. }) => {
                greeted = true;
                agent.handle(req, &client).await
            }
            // The kept-back slot serves one status, lock or `noted` after hello, then hangs up:
            // a command that changed the keystore must be able to tell a busy agent.
            Ok(req @ (Request::Status {} | Request::Lock {} | Request::Noted(_)))
                if greeted && slot == Slot::Control =>
            {
                let resp = agent.handle(req, &client).await;
                let _ = tokio::time::timeout(limits.frame_timeout, answer(stream, &resp)).await;
                return;
            }
            Ok(_) if greeted && slot == Slot::Control => {
                return refuse(stream, AgentError::Busy).await;
            }
            Ok(Request::Subscribe {}) if greeted => return subscribed(&agent, stream).await,
            Ok(_) if !greeted => return refuse(stream, AgentError::HelloFirst).await,
            Ok(Request::Unlock(u)) => {
                // The touch may take a while: if the asker hangs up meanwhile (Ctrl-C on
                // `tapsign unlock`), the touch opens nothing, and there is no one to answer.
                let gone = AtomicBool::new(false);
                let unlock = agent.unlock(u, &client, &gone);
                tokio::pin!(unlock);
                tokio::select! {
                    resp = &mut unlock => resp,
                    () = hung_up(stream) => {
                        gone.store(true, Ordering::SeqCst);
                        // Waits out the touch: the token stays asked until then, and no other
                        // unlock may start while it is.
                        unlock.await;
                        return;
                    }
                }
            }
            Ok(req) => agent.handle(req, &client).await,
        };
        // A client that sends and never reads would hold its slot for ever in a write that
        // waits: the answer gets as long as the connection may idle (red-team round 23).
        let within = match may_idle {
            true => limits.idle_connection_timeout,
            false => limits.frame_timeout,
        };
        match tokio::time::timeout(within, answer(stream, &resp)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// Returns once the peer has closed its end of the connection. Only a whole close counts: a
/// client may shut down its writing half after its request and still read the answer. Bytes
/// sent ahead (a next request) are left to be read. In either case the socket stays readable,
/// so readiness says nothing more: the close is looked for every [`HANG_UP_POLL`] instead, or a
/// client that shut its writing half, or sent ahead, and then hung up would not be seen to.
async fn hung_up(stream: &UnixStream) {
    use rustix::net::{RecvFlags, recv};
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let peeked = stream.try_io(Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
            Ok(recv(stream, &mut byte[..], flags)?.0)
        });
        match peeked {
            // Readiness without bytes: cleared now; wait again.
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => return,
            // End of input (the writing half shut, or a whole close) or bytes ahead.
            Ok(_) => break,
        }
    }
    while !closed(stream) {
        tokio::time::sleep(HANG_UP_POLL).await;
    }
}

/// How often [`hung_up`] looks for a close once the socket stays readable.
const HANG_UP_POLL: Duration = Duration::from_millis(100);

/// Whether the peer has closed both halves (`POLLHUP`), whatever is still unread.
fn closed(stream: &UnixStream) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    poll(&mut fds, Some(&rustix::time::Timespec::default())).is_ok()
        && fds[0].revents().contains(PollFlags::HUP)
}

/// A subscribed connection: session events until the client goes away. Whatever the client
/// sends now is ignored; its closing the connection ends the stream.
async fn subscribed(agent: &Agent, stream: &mut UnixStream) {
    let mut events = agent.subscribe();
    if write_frame_async(stream, &Response::Subscribed {})
        .await
        .is_err()
    {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if write_frame_async(&mut writer, &Response::Event(ev)).await.is_err() {
                        return;
                    }
                }
                // A subscriber too slow to keep up misses events rather than holding the agent.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            n = reader.read(&mut sink) => if matches!(n, Ok(0) | Err(_)) { return },
        }
    }
}

/// The longest the reaper sleeps: after a suspend, tokio's timers (monotonic clock) lag the
/// boot clock, so the wipe of a deadline slept through comes at most this late after resume.
const MAX_NAP: Duration = Duration::from_secs(5);

/// Wakes at the session's next deadline and ends it. Every request also checks deadlines, so a
/// late wake (after a suspend, when tokio's monotonic timers lag the boot clock) never lets a
/// signature through; the sleep is capped so the wipe still happens soon after resume.
async fn reaper(agent: Arc<Agent>) {
    loop {
        let changed = agent.changed.notified();
        let deadline = agent.session().next_wakeup();
        match deadline {
            None => changed.await,
            Some(d) => {
                let nap = d
                    .saturating_sub(agent.now())
                    .saturating_add(Duration::from_millis(5))
                    .min(MAX_NAP);
                tokio::select! {
                    _ = tokio::time::sleep(nap) => {}
                    _ = changed => {}
                }
            }
        }
        agent.publish_warnings();
        agent.expire(agent.now());
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
