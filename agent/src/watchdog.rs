//! The watchdog: threads of their own that notice what no signal reports.
//!
//! - **The agent did not run.** A process of the user can stop the agent (SIGSTOP) while the
//!   trader locks the screen, so that it misses the lock (docs/screen-lock.md). SIGCONT locks
//!   it again, but its handler runs on the accept loop, and on resume the workers may serve
//!   requests queued during the stop first. So the watchdog stamps the boot clock every
//!   [`BEAT`]; a request that finds the stamp older than [`STALL`] locks the session before it
//!   is served, and the watchdog itself locks when it wakes to such a gap (it locks before it
//!   stamps, so a fresh stamp means the lock is done). A suspended machine counts too: the boot
//!   clock runs on through a suspend.
//! - **The socket was swapped.** The socket's path is in a folder the user owns, so a bot can
//!   move the agent's socket aside and put something else there, which then answers
//!   `tapsign lock` with "locked" while the real agent keeps signing on the bot's connection.
//!   A thread of its own waits on inotify for any change to that name in the folder (created,
//!   deleted, moved from or to) and locks at once: a swap put back before any check could see
//!   it still makes an event; so does a change to any folder above it on the path, and to the
//!   pid file next to it (which `tapsign lock` reads when every slot is taken), which the
//!   agent then writes anew ([`crate::sockwatch`], which also says what lost events do). The watchdog also checks every beat that the path names the
//!   socket the agent serves (device and inode) and that the pid file is its own. While it
//!   cannot guard a session so (no inotify watch, a pid file it cannot write, a socket path
//!   that is not its socket) unlock is refused ([`Guard`]).
//! - **A deadline the reaper has not got to.** The reaper is a task on the agent's two
//!   workers; the watchdog ends a session whose lifetime or idle timeout has run out at its
//!   next beat, whatever those workers are doing.
//! - **A signal the accept loop has not read yet.** SIGHUP and SIGCONT are counted by a handler
//!   of their own when they arrive ([`Signals`]); the watchdog locks for one at its next
//!   beat, and a request that finds a count the agent has not acted on locks first. So a bot
//!   that starves the accept loop's threads cannot have requests served after `tapsign lock`
//!   said it sent SIGHUP, nor one checked meanwhile (the lock withholds it).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::agent::Agent;
use crate::clock::boot_now;
use crate::session::LockReason;

/// How often the watchdog wakes.
pub const BEAT: Duration = Duration::from_millis(100);
/// A gap in the beat longer than this means the agent did not run. Longer than a busy
/// machine delays a waking thread, and no longer than `tapsign lock` waits for an answer
/// before it signals instead (2 s): a stop long enough to make it signal is always seen.
pub const STALL: Duration = Duration::from_secs(2);

/// The watchdog's last beat, in boot-clock milliseconds; 0 while no watchdog runs (an agent in
/// a unit test, which has none: nothing is judged stalled then).
#[derive(Debug, Default)]
pub struct Beat(AtomicU64);

impl Beat {
    /// How long since the last beat, when that is longer than [`STALL`].
    pub fn stalled(&self) -> Option<Duration> {
        let last = self.0.load(Ordering::SeqCst);
        if last == 0 {
            return None;
        }
        let gap = Duration::from_millis((boot_now().as_millis() as u64).saturating_sub(last));
        (gap > STALL).then_some(gap)
    }

    fn stamp(&self) {
        let now = (boot_now().as_millis() as u64).max(1);
        self.0.store(now, Ordering::SeqCst);
    }
}

/// What keeps the agent from noticing a socket or pid file swapped under it, while it lasts
/// (no inotify watch, a pid file it cannot write, its socket path not its socket). While
/// anything is here, `unlock` is refused and `status` says why: a session the agent cannot
/// guard is not opened.
#[derive(Debug, Default)]
pub struct Guard {
    problems: std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>,
    /// The pid file's name had an event since the beat last looked: read what it says.
    pub(crate) pid_event: std::sync::atomic::AtomicBool,
    /// Tests: the watch's readers wait while this is set, so that events pile up unread.
    #[cfg(test)]
    pub(crate) hold_watch: std::sync::atomic::AtomicBool,
    /// Tests: how many times the watch lost events and looked into them.
    #[cfg(test)]
    pub(crate) lost: AtomicU64,
}

impl Guard {
    pub(crate) fn set(&self, what: &'static str, why: String) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(what, why);
    }

    pub(crate) fn clear(&self, what: &'static str) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(what);
    }

    /// Why the agent cannot guard a session now, if it cannot.
    pub fn why(&self) -> Option<String> {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        (!problems.is_empty()).then(|| problems.values().cloned().collect::<Vec<_>>().join("; "))
    }
}

/// Why a stall locks, as the audit log and `status` say it.
pub fn stalled_reason(gap: Duration) -> LockReason {
    LockReason::Other(format!(
        "the agent did not run for {:.1} s (stopped, or the machine slept): it may have missed a lock",
        gap.as_secs_f64()
    ))
}

/// Why a swapped socket locks.
pub(crate) fn swapped_reason(socket: &Path) -> LockReason {
    LockReason::Other(format!(
        "the agent's socket {} was moved or replaced",
        socket.display()
    ))
}

/// SIGHUP and SIGCONT as they arrive, counted by a signal handler (async-signal-safe: an
/// atomic add), beside the accept loop's handling of the same signals.
#[derive(Debug)]
pub struct Counts {
    hups: AtomicU64,
    conts: AtomicU64,
}

impl Counts {
    pub const fn new() -> Counts {
        Counts {
            hups: AtomicU64::new(0),
            conts: AtomicU64::new(0),
        }
    }

    /// Count one SIGHUP (what the handler does; tests too).
    pub fn hup(&self) {
        self.hups.fetch_add(1, Ordering::SeqCst);
    }

    fn cont(&self) {
        self.conts.fetch_add(1, Ordering::SeqCst);
    }
}

impl Default for Counts {
    fn default() -> Self {
        Counts::new()
    }
}

/// The process's counts, which the handlers add to.
static ARRIVED: Counts = Counts::new();

/// The counts the agent has acted on, against the counts that arrived (the process's; a test's
/// own, so that what it counts reaches no other test's agent).
#[derive(Debug)]
pub struct Signals {
    arrived: &'static Counts,
    hups: AtomicU64,
    conts: AtomicU64,
}

impl Default for Signals {
    fn default() -> Self {
        Signals::on(&ARRIVED)
    }
}

impl Signals {
    /// Acting on `arrived` from now on: what arrived before is not this agent's to act on.
    pub fn on(arrived: &'static Counts) -> Signals {
        Signals {
            arrived,
            hups: AtomicU64::new(arrived.hups.load(Ordering::SeqCst)),
            conts: AtomicU64::new(arrived.conts.load(Ordering::SeqCst)),
        }
    }

    /// The lock a signal that arrived since the last call asks for, if any; it counts as acted
    /// on from here (whoever calls first, the accept loop or a request, locks once).
    pub fn take(&self) -> Option<LockReason> {
        let hups = self.arrived.hups.load(Ordering::SeqCst);
        let conts = self.arrived.conts.load(Ordering::SeqCst);
        let hup = self.hups.swap(hups, Ordering::SeqCst) != hups;
        let cont = self.conts.swap(conts, Ordering::SeqCst) != conts;
        if cont {
            Some(LockReason::Signal("SIGCONT: the agent was stopped"))
        } else if hup {
            Some(LockReason::Signal("SIGHUP"))
        } else {
            None
        }
    }
}

/// Count SIGHUP and SIGCONT from now on. Registered once per process, next to tokio's own
/// handler for the same signals.
#[allow(unsafe_code)]
pub fn count_signals() -> std::io::Result<()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        let count: [(_, fn(&Counts)); 2] = [
            (rustix::process::Signal::HUP, Counts::hup),
            (rustix::process::Signal::CONT, Counts::cont),
        ];
        for (sig, add) in count {
            // SAFETY: the action only adds to an atomic, which is async-signal-safe.
            let registered =
                unsafe { signal_hook_registry::register(sig.as_raw(), move || add(&ARRIVED)) };
            if let Err(e) = registered {
                result = Err(e);
            }
        }
    });
    result
}

/// Start the watchdog for `agent`, whose socket is `socket`, bound as (device, inode) `id`
/// (`None`: not checked). It ends when the agent is dropped.
pub(crate) fn spawn(
    agent: &std::sync::Arc<Agent>,
    socket: PathBuf,
    id: Option<(u64, u64)>,
    pid_file: PidFileSlot,
) {
    let weak: Weak<Agent> = std::sync::Arc::downgrade(agent);
    let pid_name = pid_file
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|p| p.path().file_name().map(|n| n.as_encoded_bytes().to_vec()));
    if (id.is_some() || pid_name.is_some())
        && let Err(e) = crate::sockwatch::watch(weak.clone(), socket.clone(), id, pid_name)
    {
        // Fail closed: a 100 ms check alone can be dodged by swaps timed to it.
        agent.guard.set(
            "watch",
            format!(
                "the agent cannot watch its socket folder for changes ({e}): a swapped socket or pid file could go unseen; free inotify instances (another program of yours holds them all) and restart the agent"
            ),
        );
        say!(
            "tapsign agent: warning: cannot watch {} for changes ({e}): unlock is refused until the agent restarts with a watch",
            socket.display(),
        );
    }
    agent.beat.stamp();
    // The locks this thread makes are told as any other (a desktop notification is sent from
    // the agent's runtime), even while its workers are held.
    let runtime = tokio::runtime::Handle::try_current().ok();
    let spawned = std::thread::Builder::new()
        .name("tapsign-watchdog".into())
        .spawn(move || {
            let _in_runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
            let mut swapped = false;
            loop {
                std::thread::sleep(BEAT);
                let Some(agent) = weak.upgrade() else { return };
                if let Some(gap) = agent.beat.stalled() {
                    agent.lock(stalled_reason(gap));
                }
                // A SIGHUP (or SIGCONT) the accept loop has not got to: with both workers
                // held by long requests, `tapsign lock` gives up waiting and signals, and says
                // the session is wiped; a request then finds it locked only when one is served.
                if let Some(why) = agent.signals.take() {
                    agent.lock(why);
                }
                // A deadline, likewise: the reaper is a task on those workers, and came 5 s
                // late behind one request that held a worker for 10 s.
                agent.expire(agent.now());
                agent.beat.stamp();
                let now = std::fs::symlink_metadata(&socket)
                    .map(|m| (m.dev(), m.ino()))
                    .ok();
                if id.is_some() && now != id {
                    agent.guard.set(
                        "socket",
                        format!(
                            "{} is no longer the agent's socket (moved, removed or replaced): restart the agent",
                            socket.display()
                        ),
                    );
                    if !swapped {
                        say!(
                            "tapsign agent: warning: {} is no longer the agent's socket (moved, removed or replaced): the session is locked, and stays locked while it is so; restart the agent",
                            socket.display()
                        );
                        swapped = true;
                    }
                    agent.lock(swapped_reason(&socket));
                } else if id.is_some() {
                    agent.guard.clear("socket");
                }
                keep_pid_file(&agent, &pid_file);
            }
        });
    if let Err(e) = spawned {
        // Never stamped again: left at 0, so requests are not all judged stalled.
        agent.beat.0.store(0, Ordering::SeqCst);
        say!(
            "tapsign agent: warning: the watchdog thread did not start ({e}): a stop (SIGSTOP) locks only through SIGCONT"
        );
    }
}

/// The agent's pid file ([`crate::server::PidFile`]), shared by the accept loop (which
/// removes it at shutdown) and the watchdog (which keeps it the agent's).
pub(crate) type PidFileSlot = std::sync::Arc<std::sync::Mutex<Option<crate::server::PidFile>>>;

/// If the pid file's path no longer names the file the agent holds, lock, and put the
/// agent's back. `tapsign lock` signals the pid in that file when every connection slot is
/// taken; a bot's file there, naming another process, would have it signal that one.
fn keep_pid_file(agent: &Agent, slot: &PidFileSlot) {
    let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pid_file) = held.as_mut() else {
        return;
    };
    // After an event on its name, the file is also read (the bot that wrote it knows anyway):
    // a write within the file system's clock tick of the agent's own leaves the times as they
    // were.
    let event = agent.guard.pid_event.swap(false, Ordering::SeqCst);
    if pid_file.in_place() && (!event || pid_file.says_ours()) {
        agent.guard.clear("pid_file");
        return;
    }
    agent.lock(pid_file_reason(pid_file.path()));
    match pid_file.restore() {
        Ok(()) => {
            agent.guard.clear("pid_file");
            pid_file.failed(false);
            say!(
                "tapsign agent: warning: {} was moved, replaced or rewritten: the session is locked, and the agent's pid file is back",
                pid_file.path().display()
            );
        }
        Err(e) => {
            agent.guard.set(
                "pid_file",
                format!(
                    "the agent cannot write its pid file {} ({e}), which `tapsign lock` needs when every connection slot is taken",
                    pid_file.path().display()
                ),
            );
            if pid_file.failed(true) {
                say!(
                    "tapsign agent: warning: {} was moved, replaced or rewritten and cannot be put back ({e}): the session stays locked until it can",
                    pid_file.path().display()
                );
            }
        }
    }
}

pub(crate) fn pid_file_reason(path: &Path) -> LockReason {
    LockReason::Other(format!(
        "the agent's pid file {} was moved, replaced or rewritten",
        path.display()
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use tapsign_proto::{ErrorCode, Request, Response, SessionState, SignRequest};

    use super::*;
    use crate::config::Config;
    use crate::credential::{Credential, Exchange};
    use crate::paths::Paths;
    use crate::secret::{SecretBytes, SecretString};
    use crate::session::{Bounds, Client, Session};

    /// An agent under `dir` with a session of one Binance key open for 30 minutes (the socket
    /// watch's tests share it).
    pub(crate) fn unlocked(dir: &std::path::Path) -> Arc<Agent> {
        let agent = Agent::new(
            Paths::under(dir, dir.join("agent.sock")),
            Config::default(),
            false,
        );
        open_session(&agent, Duration::from_secs(1800));
        agent
    }

    /// A session of one Binance key on `agent`, its lifetime `ttl`, idle for 10 minutes.
    fn open_session(agent: &Agent, ttl: Duration) {
        let cred = Credential {
            name: "k".into(),
            exchange: Exchange::Binance,
            api_key: SecretString::new("ak".into()),
            secret: SecretBytes::from_slice(b"sk"),
            passphrase: None,
        };
        let bounds = Bounds {
            ttl,
            idle: Duration::from_secs(600),
            max_signatures: 10,
            per_key: None,
        };
        *agent.session() = Session::unlock(vec![cred], bounds, agent.now(), "test".into());
    }

    fn bot() -> Client {
        Client {
            pid: 1,
            exe: "bot".into(),
        }
    }

    /// Whether `agent` signs an account read for `bot`.
    async fn signs(agent: &Arc<Agent>) -> bool {
        matches!(agent.handle(account(), &bot()).await, Response::Signed(_))
    }

    /// What `agent` answers an account read, which must be a refusal; its code.
    async fn refusal(agent: &Arc<Agent>) -> ErrorCode {
        match agent.handle(account(), &bot()).await {
            Response::Error { code, .. } => code,
            other => panic!("served: {other:?}"),
        }
    }

    fn account() -> Request {
        Request::Sign(SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v3/account".into(),
            query: String::new(),
            body: String::new(),
            kind: Default::default(),
        })
    }

    /// Red-team round 7, third wave: with no inotify watch (a bot held every instance when the
    /// agent started), a 100 ms check alone was dodged by swaps timed to it; and unlock opened
    /// a session while the pid file could not be written. The agent now refuses to open a
    /// session it cannot guard, and says why in `status`, until that is over.
    #[tokio::test]
    async fn unlock_is_refused_while_the_agent_cannot_guard_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path());
        agent.lock(LockReason::request(&bot()));
        agent.guard.set("watch", "no watch (test)".into());
        let unlock = || Request::Unlock(tapsign_proto::UnlockRequest::default());
        match agent.handle(unlock(), &bot()).await {
            Response::Error { code, message } => {
                assert_eq!(code, ErrorCode::Internal);
                assert!(
                    message.contains("will not open a session: no watch (test)"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let status = agent.status_now().await.unwrap();
        assert!(
            status
                .warnings
                .iter()
                .any(|w| w.contains("unlock is refused: no watch (test)")),
            "{:?}",
            status.warnings
        );
        // Over: unlock goes on to the keystore (none here, so it fails there instead).
        agent.guard.clear("watch");
        match agent.handle(unlock(), &bot()).await {
            Response::Error { message, .. } => {
                assert!(!message.contains("will not open a session"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Red-team round 21: a process of the user lowered the agent's RLIMIT_NPROC; tokio's
    /// blocking pool then panicked in every `status` and `unlock` (the client read "the
    /// connection was closed"), and the session went on signing. Now each answers `internal`
    /// with the cause and the way out, and the session is locked.
    #[tokio::test]
    async fn status_and_unlock_without_a_thread_answer_why_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path());
        assert!(signs(&agent).await);
        crate::worker::REFUSE.with(|r| r.set(true));
        for req in [
            Request::Status {},
            Request::Unlock(tapsign_proto::UnlockRequest::default()),
        ] {
            match agent.handle(req, &bot()).await {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::Internal);
                    for said in ["cannot start a thread", "RLIMIT_NPROC", "restart the agent"] {
                        assert!(message.contains(said), "{said}: {message}");
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(!signs(&agent).await, "the session is locked");
        crate::worker::REFUSE.with(|r| r.set(false));
        let status = agent.status_now().await.unwrap();
        let reason = status.lock_reason.unwrap_or_default();
        assert!(reason.contains("cannot start a thread"), "{reason}");
    }

    #[tokio::test]
    async fn a_request_that_finds_the_beat_stale_locks_before_it_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path());
        // No watchdog (a beat of 0): nothing is judged stalled, the request is signed.
        assert!(signs(&agent).await);
        // A fresh beat: signed.
        agent.beat.stamp();
        assert!(signs(&agent).await);
        // The beat stopped longer than STALL ago (the agent was stopped, then continued, and
        // this request was queued meanwhile): locked first, then refused.
        let old = boot_now().saturating_sub(STALL * 3).as_millis() as u64;
        agent.beat.0.store(old.max(1), Ordering::SeqCst);
        assert_eq!(refusal(&agent).await, ErrorCode::Locked);
        let reason = agent.session().lock_reason().map(ToString::to_string);
        assert!(
            reason
                .as_deref()
                .unwrap_or_default()
                .contains("did not run"),
            "{reason:?}"
        );
    }

    #[tokio::test]
    async fn a_request_after_a_signal_the_accept_loop_has_not_read_locks_first() {
        // Red-team round 6: with the accept loop's threads starved, requests were served after
        // `tapsign lock` had sent SIGHUP. The handler's count is what a request checks.
        static COUNTS: Counts = Counts::new();
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path()).with_signal_counts(&COUNTS);
        assert!(signs(&agent).await);
        COUNTS.hup(); // as the signal handler does
        assert_eq!(refusal(&agent).await, ErrorCode::Locked);
        // Acted on once: the accept loop, getting to it late, does not lock again.
        assert!(agent.signals.take().is_none());
    }

    /// Red-team round 26: `status` right after `tapsign lock` sent SIGHUP answered
    /// "unlocked" while the accept loop had not got to the signal. The count is checked, with
    /// no accept loop here to act on it first.
    #[tokio::test]
    async fn status_after_a_signal_the_accept_loop_has_not_read_says_locked() {
        static COUNTS: Counts = Counts::new();
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path()).with_signal_counts(&COUNTS);
        COUNTS.hup(); // as the signal handler does
        let status = match agent.handle(Request::Status {}, &bot()).await {
            Response::Status(s) => s,
            other => panic!("no status: {other:?}"),
        };
        assert_eq!(status.state, SessionState::Locked);
        assert_eq!(status.lock_reason.as_deref(), Some("agent received SIGHUP"));
        assert!(agent.signals.take().is_none());
    }

    /// A request that held an agent worker for 10 s kept the reaper (a task on the workers)
    /// from ending the session at its lifetime: the secrets stayed in memory 5 s past it. The
    /// watchdog's own thread ends it too.
    #[test]
    fn a_deadline_ends_the_session_from_the_watchdog_with_no_worker_free() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, boot) = Agent::with_test_clock(dir.path());
        open_session(&agent, Duration::from_secs(60));
        let no_pid_file = std::sync::Arc::new(std::sync::Mutex::new(None));
        // No runtime at all here: neither the reaper nor a request runs.
        spawn(&agent, dir.path().join("agent.sock"), None, no_pid_file);
        boot.fetch_add(61, Ordering::SeqCst);
        let given_up = std::time::Instant::now() + Duration::from_secs(30);
        while agent.session().is_unlocked() && std::time::Instant::now() < given_up {
            std::thread::sleep(BEAT);
        }
        assert_eq!(agent.session().lock_reason(), Some(&LockReason::Expired));
    }

    /// A bot's requests that each held an agent worker for seconds (a check whose work grew
    /// with the square of the request) kept both workers from the accept loop: `tapsign lock`
    /// gave up waiting, sent SIGHUP and said the session was wiped, and a signature checked
    /// meanwhile left seconds later. The watchdog's own thread now locks for the signal.
    #[test]
    fn a_signal_locks_from_the_watchdog_with_no_worker_free() {
        static COUNTS: Counts = Counts::new();
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path()).with_signal_counts(&COUNTS);
        let no_pid_file = std::sync::Arc::new(std::sync::Mutex::new(None));
        // No runtime at all here: neither the accept loop nor a request runs.
        spawn(&agent, dir.path().join("agent.sock"), None, no_pid_file);
        COUNTS.hup();
        let given_up = std::time::Instant::now() + Duration::from_secs(30);
        while agent.session().is_unlocked() && std::time::Instant::now() < given_up {
            std::thread::sleep(BEAT);
        }
        assert_eq!(
            agent.session().lock_reason(),
            Some(&LockReason::Signal("SIGHUP"))
        );
        assert!(agent.signals.take().is_none());
    }
}
