//! The agent's shared state and the handling of each request.
//!
//! State lives behind `std::sync::Mutex`es that are never held across an `.await` or any token
//! I/O: the session lock is taken to check and count a signature (microseconds), and an unlock
//! does its touch on a blocking thread before taking it to install the new session. Nothing
//! here waits on the disk on an async worker: the audit log has its own writer thread
//! ([`AuditSink`]), Kraken nonces are reserved on blocking threads ([`KrakenNonces`]), and
//! `status`, which reads the keystore's folder, runs on a blocking thread. What has an owner
//! of its own lives there: the keystore and tokens in `unlocker::Unlocker`, where the
//! session's token sits in [`Removal`]. `unlock` (the async half of an unlock) and `at_rest`
//! (the audit log as anchor and ledger) are submodules. Every error a request gets is an
//! [`AgentError`], whose one mapping gives the wire code.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tapsign_proto::{
    EventKind, KeyPolicyInfo, LockSource, PROTOCOL_VERSION, Request, Response, SessionEvent,
    SessionState, SignRequest, SignedRequest, Status, TokenInfo,
};

use crate::audit::{AuditEvent, AuditSink};
use crate::clock::{boot_now, format_duration};
use crate::config::Config;
use crate::credential::Exchange;
use crate::error::{AgentError, lock_code};
use crate::nonces::KrakenNonces;
use crate::paths::Paths;
use crate::policy;
use crate::removal::Removal;
use crate::session::{Client, LockReason, Session, Warning};
use crate::sign::{self, Stamp};
use crate::unlocker::Unlocker;

mod at_rest;
mod unlock;

/// The agent's name and version, as `hello` and `status` report it.
pub fn agent_version() -> String {
    format!("tapsign {}", env!("CARGO_PKG_VERSION"))
}

/// A source of boot-time "now".
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Everything the connections share.
pub struct Agent {
    pub(crate) paths: Paths,
    pub(crate) config: Config,
    /// The keystore and tokens, as an unlock uses them.
    unlocker: Unlocker,
    /// Where the session's token sits, for the removal watch.
    pub(crate) removal: Removal,
    session: Mutex<Session>,
    /// The audit log, owned by its writer thread.
    pub(crate) audit: AuditSink,
    /// Wakes the reaper when the session changes.
    pub(crate) changed: tokio::sync::Notify,
    warnings: Mutex<Vec<String>>,
    /// Session events for subscribed connections.
    events: tokio::sync::broadcast::Sender<SessionEvent>,
    /// What the D-Bus lock sources report (written by their tasks, read by `status`).
    pub(crate) dbus_sources: crate::locksource::Sources,
    pub(crate) notifier: crate::notify::Notifier,
    /// The boot-time clock (suspended time counts); tests substitute their own.
    clock: Clock,
    /// Kraken nonces, reserved on disk in blocks, one store per key.
    nonces: KrakenNonces,
    /// The watchdog's last beat: a request that finds it stale locks first (crate::watchdog).
    pub(crate) beat: crate::watchdog::Beat,
    /// SIGHUP and SIGCONT counts acted on: a request that finds one newer locks first.
    pub(crate) signals: crate::watchdog::Signals,
    /// What keeps the watchdog from guarding a session now: unlock is refused while any.
    pub(crate) guard: crate::watchdog::Guard,
    /// Locks asked for, from any source, a session open or not: an unlock whose touch was
    /// pending when one came opens nothing (the trader locked the screen meanwhile).
    pub(crate) locks: std::sync::atomic::AtomicU64,
    /// Sessions ended by their lifetime or idle time: a signature whose line is being written
    /// then is withheld, as a lock withholds it; an unlock whose touch was pending is not
    /// refused for it (the session it replaces ran out, nobody locked).
    pub(crate) expiries: std::sync::atomic::AtomicU64,
    /// A signature spent the session's budget, and the end is not announced yet: that waits
    /// for the signature's line (so the log has it before the lock), unless an unlock replaces
    /// the session first, which then announces it (before its own `unlocked`).
    pub(crate) budget_end: std::sync::atomic::AtomicBool,
}

impl Agent {
    pub fn new(paths: Paths, config: Config, soft_allowed: bool) -> Arc<Agent> {
        // What an unlock whose secrets cannot be locked compares the limit with then.
        crate::harden::note_memlock_at_start();
        let audit = AuditSink::open(&paths.audit_log(), config.audit);
        Agent::with_audit(paths, config, soft_allowed, audit)
    }

    /// An agent recording into `audit` (tests: a sink whose disk fails or stalls).
    pub fn with_audit(
        paths: Paths,
        config: Config,
        soft_allowed: bool,
        audit: AuditSink,
    ) -> Arc<Agent> {
        let unlocker = Unlocker::new(&paths, soft_allowed);
        let warnings = Vec::new();
        let nonces = KrakenNonces::new(&paths.state_dir);
        let notifications = config.notifications.enabled;
        Arc::new(Agent {
            paths,
            config,
            unlocker,
            removal: Removal::default(),
            session: Mutex::new(Session::default()),
            audit,
            changed: tokio::sync::Notify::new(),
            warnings: Mutex::new(warnings),
            events: tokio::sync::broadcast::channel(64).0,
            dbus_sources: crate::locksource::Sources::default(),
            notifier: crate::notify::Notifier::new(notifications),
            clock: Arc::new(boot_now),
            nonces,
            beat: crate::watchdog::Beat::default(),
            signals: crate::watchdog::Signals::default(),
            guard: crate::watchdog::Guard::default(),
            locks: std::sync::atomic::AtomicU64::new(0),
            expiries: std::sync::atomic::AtomicU64::new(0),
            budget_end: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The same agent reading time from `clock` (tests: a clock that jumps, like a suspend).
    pub fn with_clock(self: Arc<Self>, clock: Clock) -> Arc<Self> {
        let mut agent =
            Arc::try_unwrap(self).unwrap_or_else(|_| panic!("with_clock on a shared agent"));
        agent.clock = clock;
        Arc::new(agent)
    }

    /// An agent under `dir` (default config) whose boot-time clock reads the returned
    /// seconds, starting at 1,000: a test moves time (a suspend) by adding to it.
    #[cfg(test)]
    pub(crate) fn with_test_clock(
        dir: &std::path::Path,
    ) -> (Arc<Agent>, Arc<std::sync::atomic::AtomicU64>) {
        let boot = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let clock = Arc::clone(&boot);
        let agent = Agent::new(
            Paths::under(dir, dir.join("agent.sock")),
            Config::default(),
            false,
        )
        .with_clock(Arc::new(move || {
            Duration::from_secs(clock.load(std::sync::atomic::Ordering::SeqCst))
        }));
        (agent, boot)
    }

    /// The same agent acting on signals counted in `counts` (tests: a count of their own).
    pub fn with_signal_counts(
        self: Arc<Self>,
        counts: &'static crate::watchdog::Counts,
    ) -> Arc<Self> {
        let mut agent = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_signal_counts on a shared agent"));
        agent.signals = crate::watchdog::Signals::on(counts);
        Arc::new(agent)
    }

    /// Now, on the agent's boot-time clock.
    pub fn now(&self) -> Duration {
        (self.clock)()
    }

    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock must not leave secrets reachable: recover the state
        // and let the caller go on (the state machine itself never panics midway).
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keystore's warnings from the last unlock's check, which describe the files as they
    /// are now: they replace the previous unlock's (a problem fixed since is no longer shown),
    /// and each one is logged when it first appears, not again at every unlock that meets it.
    pub(crate) fn keystore_warnings(&self, now: Vec<String>) {
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        for msg in now.iter().filter(|m| !warnings.contains(m)) {
            say!("tapsign agent: warning: {msg}");
        }
        *warnings = now;
    }

    /// End the session (idempotent); audited when a session was open. The lock is counted
    /// under the session's own lock, as it ends the session: whatever held the session before
    /// (a signature, an unlock installing its session) sees the count change after, and
    /// whatever takes it after finds it locked. A signature whose line is still being written
    /// is then withheld, and an unlock refused (`Agent::sign`, `crate::agent::unlock`). Counted
    /// before taking it, a signature that took the session in between signed unseen.
    pub fn lock(&self, reason: LockReason) -> bool {
        let was_open = {
            let mut session = self.session();
            self.locks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            session.lock(reason.clone())
        };
        if was_open {
            self.ended(&reason);
        }
        was_open
    }

    /// Everything that follows the end of a session, whatever ended it: log, audit, tell the
    /// subscribers, wake the reaper.
    pub(crate) fn ended(&self, reason: &LockReason) {
        say!("tapsign agent: locked: {reason}");
        // Not waited for: a lock happens whatever the disk does. The writer logs the head
        // after this line and has it synced at once.
        let (pid, exe) = match reason {
            LockReason::Request { client, .. } => (Some(client.pid), Some(client.exe.clone())),
            _ => (None, None),
        };
        self.audit.submit(AuditEvent::Lock {
            reason: reason.to_string(),
            pid,
            exe,
        });
        self.publish(SessionEvent {
            event: EventKind::Locked,
            message: format!("locked: {reason}"),
            reason: Some(reason.to_string()),
            code: Some(lock_code(reason)),
            expires_in_secs: None,
            signatures_left: None,
        });
        self.notifier.locked(reason);
        self.changed.notify_one();
    }

    /// A receiver of session events, for a subscribed connection.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    fn publish(&self, event: SessionEvent) {
        // No subscriber is fine: the send only fails when nobody listens.
        let _ = self.events.send(event);
    }

    /// Hand out warnings that have become due.
    pub(crate) fn publish_warnings(&self) {
        let due = self.session().take_warnings(self.now());
        for w in due {
            let event = match w {
                Warning::ExpiringSoon {
                    in_secs,
                    signatures_left,
                    renew,
                } => SessionEvent {
                    event: EventKind::ExpiringSoon,
                    message: format!(
                        "the session ends in {}; `tapsign unlock --extend` renews it with a touch for {} (idle {}, {})",
                        format_duration(Duration::from_secs(in_secs)),
                        format_duration(renew.ttl),
                        format_duration(renew.idle),
                        crate::session::signatures(renew.max_signatures)
                    ),
                    reason: None,
                    code: None,
                    expires_in_secs: Some(in_secs),
                    signatures_left: Some(signatures_left),
                },
                Warning::BudgetLow {
                    left,
                    expires_in_secs,
                } => SessionEvent {
                    event: EventKind::BudgetLow,
                    message: format!("{} left in this session", crate::session::signatures(left)),
                    reason: None,
                    code: None,
                    expires_in_secs: Some(expires_in_secs),
                    signatures_left: Some(left),
                },
            };
            say!("tapsign agent: {}", event.message);
            let short = match event.event {
                EventKind::ExpiringSoon => format!(
                    "The session ends in {}",
                    format_duration(Duration::from_secs(event.expires_in_secs.unwrap_or(0)))
                ),
                _ => format!(
                    "{} left",
                    crate::session::signatures(event.signatures_left.unwrap_or(0))
                ),
            };
            self.notifier.running_out(&short);
            self.publish(event);
        }
    }

    /// Answer one request from `client`.
    pub async fn handle(self: &Arc<Self>, req: Request, client: &Client) -> Response {
        match req {
            Request::Hello { .. } => Response::Hello {
                version: PROTOCOL_VERSION,
                agent: agent_version(),
            },
            Request::Status {} => match self.status_now().await {
                Ok(status) => Response::Status(status),
                Err(e) => e.response(),
            },
            Request::Lock {} => {
                self.lock(LockReason::request(client));
                // The answer waits (briefly, never for a sync) for the lock's line.
                self.audit.refresh(AUDIT_WAIT).await;
                Response::Locked {}
            }
            // The server watches the asker's connection itself (`Agent::unlock`); here no one
            // does.
            Request::Unlock(u) => {
                self.unlock(u, client, &std::sync::atomic::AtomicBool::new(false))
                    .await
            }
            Request::Sign(s) => self.sign(s, client).await,
            // The server turns the connection into an event stream; this is its first answer.
            Request::Subscribe {} => Response::Subscribed {},
            // On a thread of its own: it reads the keystore's record (the names it may keep),
            // which must not hold an async worker on a slow disk, and any program of the
            // trader's may send it.
            Request::Noted(n) => {
                let (agent, client) = (Arc::clone(self), client.clone());
                let kept = crate::worker::run("tapsign-noted", move || {
                    agent.unlocker.keep_noted(&n, &client, boot_now())
                });
                match kept.await {
                    Ok(()) => Response::Noted {},
                    Err(e) => self.worker_failed(&e).response(),
                }
            }
        }
    }

    /// What ends the session before anything is granted at `now`, though the task that acts
    /// on it has not yet: a sign, and an unlock once its touch came, call this first.
    pub(crate) fn catch_up(&self, now: Duration) {
        // Served after the agent did not run (stopped, the machine asleep): lock first, since a
        // lock it should have seen may be behind this request (crate::watchdog).
        if let Some(gap) = self.beat.stalled() {
            self.lock(crate::watchdog::stalled_reason(gap));
        }
        // A SIGHUP or SIGCONT the accept loop has not got to (its threads starved): lock.
        if let Some(why) = self.signals.take() {
            self.lock(why);
        }
        // A deadline noticed here first (the reaper naps up to 5 s) ends the session like the
        // reaper's.
        self.expire(now);
    }

    /// End the session if its lifetime or idle time ran out by `now`, counted (under the
    /// session's lock, as a lock is) in `expiries`: a signature whose line is still being
    /// written then is withheld, as docs/protocol.md says of any end. Uncounted, one held up
    /// across the end (the log's lock taken by another process) left seconds after `status`
    /// said the session was over (red-team round 19). A budget's end is not one: its last
    /// signature spent it.
    pub(crate) fn expire(&self, now: Duration) {
        let expired = {
            let mut session = self.session();
            let expired = session.tick(now);
            if expired.is_some() {
                self.expiries
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            expired
        };
        if let Some(reason) = expired {
            self.ended(&reason);
        }
    }

    /// A `locked` refusal says what to do first when there is no keystore to unlock.
    fn locked_for_want_of_a_keystore(&self, e: AgentError) -> AgentError {
        match e {
            AgentError::Session(crate::session::Refusal::Locked)
                if matches!(self.unlocker.keystore().is_initialized(), Ok(false)) =>
            {
                AgentError::LockedNoKeystore
            }
            e => e,
        }
    }

    async fn sign(&self, req: SignRequest, client: &Client) -> Response {
        let now = self.now();
        self.catch_up(now);
        // A lock counted from here on withholds the signature, even once it is checked and on
        // record (see below): only one already past that last look can leave after a lock.
        let ends = || {
            (
                self.locks.load(std::sync::atomic::Ordering::SeqCst),
                self.expiries.load(std::sync::atomic::Ordering::SeqCst),
            )
        };
        let ends_before = ends();
        let (signed, exchange, login, spent_now) = match self.sign_now(&req, client).await {
            Ok(s) => s,
            Err(e) => {
                let e = self.locked_for_want_of_a_keystore(e);
                // Recorded when the log can take it; the refusal stands either way.
                let refusal =
                    AuditEvent::refusal(&req, e.code(), &e.to_string(), client.pid, &client.exe);
                let _ = self.audit.record_refusal(refusal).await;
                return e.response();
            }
        };
        // Every signature that leaves the agent is on record: one that cannot be recorded does
        // not leave (it still counts against the budget, and may have spent it).
        let line = |req| AuditEvent::signed(req, exchange, login, client.pid, &client.exe);
        let recorded = self.record_signature(line(&req)).await;
        if spent_now {
            self.announce_budget_end();
        } else {
            self.publish_warnings();
        }
        if let Err(e) = recorded {
            return e.response();
        }
        // A lock that came while the line was written (the screen locked, `tapsign lock`)
        // answers only once this line is written (it waits for the writer): the signature is
        // withheld, and the log says so after its `sign` line.
        let ends_now = ends();
        if ends_now != ends_before {
            let e = match ends_now.0 == ends_before.0 {
                true => AgentError::EndedBeforeAnswer,
                false => AgentError::LockedBeforeAnswer,
            };
            if let Some(refusal) = line(&req).withheld(e.code(), &e.to_string()) {
                self.audit.submit(refusal);
            }
            return e.response();
        }
        Response::Signed(signed)
    }

    /// Check `req` against the session and the policy and sign it. Also says the exchange of
    /// the credential that signed, and whether this signature spent the session's budget.
    async fn sign_now(
        &self,
        req: &SignRequest,
        client: &Client,
    ) -> Result<(SignedRequest, Exchange, bool, bool), AgentError> {
        let mut stamp = Stamp::now()?;
        let exchange = self.session().exchange_of(&req.key);
        // Kraken wants a nonce above every one it has seen for the key, across agent restarts:
        // the nonces come from a block already reserved on disk. It is fetched before taking
        // the session lock; should the session change in between, the scheme refuses a Kraken
        // request without a nonce, and a non-Kraken one ignores it.
        if exchange == Some(Exchange::Kraken) {
            let nonce = self.nonces.next(&req.key, stamp.unix_ms).await;
            stamp.counter = Some(nonce.map_err(|e| match e {
                crate::nonces::NonceError::NoThread(why) => self.no_thread(why),
                e => AgentError::Nonce(e),
            })?);
        }
        let opts = self.config.signing;
        let key_policy = self.config.key_policy(&req.key);
        // The wall's verdict depends only on the request, the key's name and its exchange
        // (config.toml is read once, at start), so it is reached before the session lock:
        // signers do not queue behind each other's checks. Under the lock it is used only for
        // the exchange of the credential actually used; should an unlock have given the name
        // to a key of another exchange in between, the check runs again there. The session's
        // own refusals (locked, unknown key, budget) come first, as if it all ran under the
        // lock. What is signed is the request the policy parsed, written back (`checked.wire`).
        let mut verdict =
            exchange.map(|ex| (ex, policy::check_request(ex, &req.key, key_policy, req)));
        // The session is used as it is now, not as it was when the request came: the check
        // (and a Kraken nonce, from the disk) takes time, and a request that came just before
        // the lifetime or idle timeout ran out was signed after it, by as long as that took.
        let now = self.now();
        self.catch_up(now);
        let mut session = self.session();
        // Counted from the stamp's clock, read before the checks above: the end falls a little
        // early, never late.
        stamp.session_ends_ms = session.left_if_used(now).map(|left| {
            let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            stamp.unix_ms.saturating_add(left_ms)
        });
        let signed = session.use_key(&req.key, now, client, |cred| {
            // A login this key cannot make is said as such, before the policy's refusal
            // advises the `ws_login` switch for it.
            if req.kind == tapsign_proto::SignKind::WsLogin
                && let Some(e) = sign::login_refused(cred)
            {
                return Err(e.into());
            }
            let checked = match verdict.take() {
                Some((ex, checked)) if ex == cred.exchange => checked?,
                _ => policy::check_request(cred.exchange, &req.key, key_policy, req)?,
            };
            let signed = sign::sign(cred, &checked.wire, &stamp, &opts)?;
            deliverable(&signed)?;
            Ok::<_, AgentError>((signed, cred.exchange, checked.login))
        })??;
        let spent = !session.is_unlocked();
        if spent {
            self.budget_end
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok((signed.0, signed.1, signed.2, spent))
    }

    /// Announce the end of a session whose budget a signature spent, once its line is on
    /// record, unless an unlock that replaced the session meanwhile announced it already: a
    /// stale end told after the new session's `unlocked` would report the new one locked.
    /// The session's lock is held, so such an unlock waits, and its `unlocked` follows.
    pub(crate) fn announce_budget_end(&self) {
        let _session = self.session();
        if self
            .budget_end
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.ended(&LockReason::BudgetSpent);
        }
    }

    /// Put a signature's line on record; the error to answer with when it cannot be.
    async fn record_signature(&self, event: AuditEvent) -> Result<(), AgentError> {
        self.audit
            .record(event)
            .await
            .map_err(|why| AgentError::Unrecorded {
                why,
                log: self.paths.audit_log(),
            })
    }

    /// What `status` reports, with the audit log's head caught up with the file; computed on
    /// a blocking thread (it reads the keystore's folder). A lock the agent owes (a SIGHUP the
    /// accept loop has not got to, a stall) is taken first, as before a signature: `tapsign
    /// lock` said its SIGHUP wiped the session, and a `status` right after it answered
    /// "unlocked" under load (red-team round 26).
    pub async fn status_now(self: &Arc<Self>) -> Result<Status, AgentError> {
        self.catch_up(self.now());
        self.audit.refresh(AUDIT_WAIT).await;
        let agent = Arc::clone(self);
        match crate::worker::run("tapsign-status", move || agent.status()).await {
            Ok(status) => Ok(status),
            // Only a panic gets here; answer from this thread rather than not at all.
            Err(crate::worker::WorkerError::Died) => Ok(self.status()),
            Err(e) => Err(self.worker_failed(&e)),
        }
    }

    /// The error to answer with when blocking work did not run (`crate::worker`). A thread the
    /// kernel refused locks the session: neither `status` nor `unlock` can run any more (both
    /// need one), and a session the trader can neither see nor renew must not go on signing.
    pub(crate) fn worker_failed(&self, e: &crate::worker::WorkerError) -> AgentError {
        match e {
            crate::worker::WorkerError::Died => AgentError::Worker,
            crate::worker::WorkerError::Refused(_) => self.no_thread(e.to_string()),
        }
    }

    /// A thread refused (`why`, the kernel's words): lock, and the error that says what to do.
    fn no_thread(&self, why: String) -> AgentError {
        let why = format!("{why}: {}", crate::worker::thread_limit());
        say!("tapsign agent: {why}; locking the session");
        self.lock(LockReason::Other(format!("{why}; restart the agent")));
        AgentError::NoThread(why)
    }

    /// What `status` reports.
    pub fn status(&self) -> Status {
        let (state, lock_reason, session) = {
            let s = self.session();
            let state = if s.is_unlocked() {
                SessionState::Unlocked
            } else {
                SessionState::Locked
            };
            (
                state,
                s.lock_reason().map(|r| r.to_string()),
                s.status(self.now()),
            )
        };
        // What the keystore's files say (one warning per file, as many as there are files),
        // kept apart from the rest, which come first and are never cut (`fit_status`).
        let mut files = self
            .warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The credentials replaced or removed since the check before, first and never cut: the
        // one fact here that sends orders to someone else's account, which sixteen lines
        // anyone appended to the log pushed out of the warnings shown (red-team round 20,
        // recheck). Kept for a day, whoever asked for the unlock that found them.
        let (mut warnings, quiet) = self.unlocker.changes(boot_now());
        warnings.extend(quiet);
        let mut tokens = Vec::new();
        let mut insecure = Vec::new();
        let mut weak_touch = Vec::new();
        match self.unlocker.keystore().keyslots() {
            Ok(slots) => {
                // No recorded keyslot readable: the unlock tries the others (`keyslots_to_try`).
                let tried = !slots.iter().flatten().any(|s| s.recorded);
                for slot in slots {
                    match slot {
                        Ok(slot) => {
                            if slot.stub.is_insecure() {
                                insecure.push(slot.stub.describe());
                            }
                            if slot.recorded {
                                weak_touch.extend(slot.stub.touch_warning());
                            }
                            if !slot.recorded {
                                files.push(crate::keystore::unrecorded_keyslot(&slot.path, tried));
                            }
                            tokens.push(TokenInfo {
                                id: slot.stub.id(),
                                kind: slot.stub.kind().into(),
                                description: slot.stub.describe(),
                            });
                        }
                        Err(e) => files.push(e.to_string()),
                    }
                }
            }
            Err(e) => warnings.push(self.keystore_unread(e)),
        }
        // One warning however many keyslot files there are (the files are anyone's to write).
        match insecure.as_slice() {
            [] => {}
            [one] => warnings.push(format!("{one} is enrolled: it gives no protection")),
            [first, rest @ ..] => warnings.push(format!(
                "{first} and {} more insecure tokens are enrolled: they give no protection",
                rest.len()
            )),
        }
        // A PIV key whose touch policy lets the card answer without a touch (red-team round
        // 20): said at every status and unlock, one warning however many keyslots say so.
        match weak_touch.as_slice() {
            [] => {}
            [one] => warnings.push(one.clone()),
            [first, rest @ ..] => warnings.push(format!(
                "{first} ({} more tokens have a touch policy weaker than always: `tapsign token list`)",
                rest.len()
            )),
        }
        warnings.extend(self.unmatched_key_policies());
        warnings.extend(self.idle_key_switches());
        let audit_head = self.audit_head();
        warnings.extend(self.audit.warnings());
        warnings.extend(self.nonces.warnings());
        if let Some(why) = self.guard.why() {
            warnings.push(format!("unlock is refused: {why}"));
        }
        // One a lock came after opens nothing: "run `tapsign lock`" was said of it all the same,
        // to the trader who just had (red-team round 23, A3).
        if let Some(p) = self.unlocker.pending() {
            let stale = p.locks != self.locks.load(std::sync::atomic::Ordering::SeqCst);
            let now = match stale {
                true => format!(
                    "still waits for a touch on your token ({}), but a lock came after it asked: it opens nothing now, even if touched; until the token gives up waiting (15 to 30 s on a YubiKey or FIDO2 key; about 3 s while another program has the card open), another unlock is refused `busy`",
                    crate::audit::Shown(&p.asks)
                ),
                false => format!(
                    "is under way (it asks for a touch on your token: {}): unless you asked for it yourself, do not touch your token, and run `tapsign lock` (it then opens nothing, even if touched)",
                    crate::audit::Shown(&p.asks)
                ),
            };
            warnings.push(format!(
                "an {} asked by pid {} ({}) {now}",
                if p.extend { "extend" } else { "unlock" },
                p.client.pid,
                crate::audit::Shown(&p.client.exe),
            ));
        }
        if crate::harden::mlock_failed() {
            warnings.push("secret memory could not be locked (RLIMIT_MEMLOCK too small, or lowered by another process): an unlock opens nothing until the agent runs with room for it; restart it (its unit sets LimitMEMLOCK=, or raise ulimit -l)".into());
        }
        if !self.dbus_sources.screen_lock_live() {
            warnings.push(crate::locksource::NO_SCREEN_LOCK.into());
        }
        warnings.dedup();
        files.dedup();
        let mut status = Status {
            state,
            agent: agent_version(),
            lock_reason,
            session,
            tokens,
            warnings,
            lock_sources: self.lock_sources(),
            key_policies: self.key_policies(),
            audit_head,
            keystore: self.unlocker.verified(),
            changed_keys: self
                .unlocker
                .changed_names(boot_now())
                .into_iter()
                .take(tapsign_proto::CHANGED_KEYS_SHOWN)
                .collect(),
        };
        fit_status(&mut status, files);
        status
    }
}

/// Most programs `status` lists as having signed in the session (those that signed most).
const CLIENTS_SHOWN: usize = 16;
/// Most warnings about the keystore's files `status` lists (`key list`, `token list` show all).
const FILE_WARNINGS_SHOWN: usize = 16;
/// Most tokens `status` lists (`token list` shows all).
const TOKENS_SHOWN: usize = 32;
/// Longest warning `status` shows, in bytes.
const WARNING_MAX: usize = 1024;

/// Bound what `status` (and the answer to `unlock`, which is a status) holds, whatever bots and
/// files make of it, so that it always fits one frame. Red-team round 18: a bot signing from
/// 60 programs with control characters in their paths, or 400 junk keyslot files, made it
/// larger than a frame, and the agent answered `bad_request` instead: `status` failed for the
/// whole session, hiding its warnings, and an `unlock` or `unlock --extend` that had opened or
/// extended the session said it failed. Programs and file warnings are cut to the first ones
/// (what is cut is said); should the whole still be too large (a session of thousands of
/// keys), keys, then programs, then the rest are cut too, each said. The warnings that are not
/// about files (a pending unlock's, a tampered log's) come first and stay.
fn fit_status(status: &mut Status, mut files: Vec<String>) {
    // Each warning of a bounded size: one can quote what a file holds (a field name a decoder
    // found unknown), and a file is anyone's to write (red-team round 18, recheck: one keyslot
    // with a 1 MB field name).
    for w in status.warnings.iter_mut().chain(files.iter_mut()) {
        crate::audit::cap(w, WARNING_MAX);
    }
    // The warnings that are not about files come first, and are never cut below.
    let kept = status.warnings.len();
    let mut said = Vec::new();
    if let Some(s) = status.session.as_mut() {
        s.clients
            .sort_by(|a, b| b.signatures.cmp(&a.signatures).then(a.pid.cmp(&b.pid)));
        for c in &mut s.clients {
            // As shown anyway (`Shown`), and a fixed size whatever the path holds: an escaped
            // control character is six bytes of JSON.
            c.exe = c
                .exe
                .chars()
                .map(|ch| {
                    if crate::audit::hidden(ch) {
                        '\u{fffd}'
                    } else {
                        ch
                    }
                })
                .collect();
        }
        if s.clients.len() > CLIENTS_SHOWN {
            // All the session counts: past that, those that signed least were let go.
            let at_least = match s.clients.len() >= crate::session::CLIENTS_KEPT {
                true => "at least ",
                false => "",
            };
            said.push(format!(
                "{at_least}{} more programs signed in this session than are listed here (`tapsign audit` has every signature)",
                s.clients.len() - CLIENTS_SHOWN
            ));
            s.clients.truncate(CLIENTS_SHOWN);
        }
    }
    if files.len() > FILE_WARNINGS_SHOWN {
        let more = files.len() - FILE_WARNINGS_SHOWN;
        files.truncate(FILE_WARNINGS_SHOWN);
        files.push(format!(
            "and {more} more warnings about the keystore's files (`tapsign key list` and `tapsign token list` show each, `tapsign audit` each credential change)"
        ));
    }
    if status.tokens.len() > TOKENS_SHOWN {
        said.push(format!(
            "{} more keyslots than are listed here (`tapsign token list` shows each)",
            status.tokens.len() - TOKENS_SHOWN
        ));
        status.tokens.truncate(TOKENS_SHOWN);
    }
    status.warnings.extend(said);
    status.warnings.extend(files);
    // The last resort, halving what is left until it fits.
    let budget = tapsign_proto::MAX_FRAME - 1024;
    let size = |s: &Status| serde_json::to_vec(s).map_or(usize::MAX, |v| v.len());
    let mut cut = false;
    while size(status) > budget {
        cut = true;
        let keys = status.session.as_ref().map_or(0, |s| s.keys.len());
        let clients = status.session.as_ref().map_or(0, |s| s.clients.len());
        if let Some(s) = status.session.as_mut().filter(|_| keys > 1) {
            // The count before the first cut: how many the session holds.
            s.keys_total.get_or_insert(keys as u64);
            s.keys.truncate(keys / 2);
        } else if let Some(s) = status.session.as_mut().filter(|_| clients > 0) {
            s.clients.clear();
        } else if status.warnings.len() > kept {
            let len = status.warnings.len();
            status.warnings.truncate(kept.max(len / 2).min(len - 1));
        } else if status.tokens.len() > 1 || status.key_policies.len() > 1 {
            status.tokens.truncate(status.tokens.len() / 2);
            status.key_policies.truncate(status.key_policies.len() / 2);
        } else {
            break;
        }
    }
    if cut {
        status.warnings.push(
            "this status was cut to fit one answer (a session of many keys, or many warnings): `tapsign key list`, `tapsign token list` and `tapsign audit` show everything".into(),
        );
    }
}

impl Agent {
    /// config.toml's `[keys.NAME]` tables that name no credential the keystore holds now, as
    /// a warning ([`Config::unmatched_keys`]); read at each call, as keys come and go.
    pub fn unmatched_key_policies(&self) -> Option<String> {
        if self.config.keys.is_empty() {
            return None;
        }
        let held = self.unlocker.keystore().names_held()?;
        self.config.unmatched_keys(&held)
    }

    /// The keys whose config.toml table changes their profile, and how. A table no stored
    /// credential is named for changes no key's, and a switch that does nothing for its key's
    /// exchange changes nothing: both were listed as changes, next to the warnings that say so
    /// (red-team round 26, F9).
    fn key_policies(&self) -> Vec<KeyPolicyInfo> {
        let ks = self.unlocker.keystore();
        let held = ks.names_held();
        (self.config.keys.iter())
            .filter(|(key, _)| held.as_ref().is_none_or(|h| h.contains(*key)))
            .map(|(key, p)| KeyPolicyInfo {
                key: key.clone(),
                rules: match ks.credential_exchange(key) {
                    Some(exchange) => p.describe_for(exchange),
                    None => p.describe(),
                },
            })
            .filter(|k| !k.rules.is_empty())
            .collect()
    }

    /// config.toml's per-key switches that do nothing for their key's exchange, as warnings
    /// ([`Config::idle_switches`]).
    pub fn idle_key_switches(&self) -> Vec<String> {
        let ks = self.unlocker.keystore();
        self.config
            .idle_switches(|name| ks.credential_exchange(name))
    }

    fn lock_sources(&self) -> Vec<LockSource> {
        let mut sources = always_live_sources();
        let session_open = self.session().is_unlocked();
        sources.push(self.removal.lock_source(session_open));
        sources.extend(self.dbus_sources.snapshot());
        sources
    }
}

/// Refuse a signature whose answer would not fit in one frame: it would be counted and put on
/// record, then never sent. Only a request near the frame limit comes close; a bound that
/// holds however the answer's JSON escapes its text spares the exact count for the others.
fn deliverable(signed: &SignedRequest) -> Result<(), AgentError> {
    let text = signed.method.len() + signed.path.len() + signed.query.len() + signed.body.len();
    let headers: usize = signed.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    // An escape takes at most six bytes (`\u001f`); the answer's names and punctuation, 1 KiB.
    if 6 * (text + headers) + 1024 <= tapsign_proto::frame::MAX_FRAME {
        return Ok(());
    }
    let answer = serde_json::to_vec(&Response::Signed(signed.clone()))
        .map_err(|e| AgentError::Malformed(e.to_string()))?;
    if answer.len() <= tapsign_proto::frame::MAX_FRAME {
        return Ok(());
    }
    Err(AgentError::Malformed(format!(
        "the request is too large to sign: its signed form ({} bytes) would not fit in one \
         {} KiB answer; send a smaller request",
        answer.len(),
        tapsign_proto::frame::MAX_FRAME / 1024
    )))
}

/// How long `lock` and `status` wait for the audit writer (to have the lock's line written, to
/// show the file's head) before answering anyway: a stalled disk delays them this much at most.
const AUDIT_WAIT: Duration = Duration::from_millis(500);

/// The sources that are live whenever the agent runs.
fn always_live_sources() -> Vec<LockSource> {
    let live = |name: &str, detail: &str| LockSource {
        name: name.into(),
        live: true,
        detail: Some(detail.into()),
    };
    vec![
        live("command", "`tapsign lock`"),
        live("deadlines", "lifetime, idle timeout and signature budget"),
        live(
            "signals",
            "SIGHUP locks, and so does SIGCONT after a stop; SIGTERM and SIGINT lock and stop the agent",
        ),
    ]
}

#[cfg(test)]
mod fit_tests {
    use super::fit_status;
    use tapsign_proto::{ClientInfo, KeyStatus, Response, SessionState, SessionStatus, Status};

    /// Red-team round 18: a status whatever bots and files make of it (a session of 2,000
    /// keys, 100 programs whose paths are control characters, 400 warnings about junk files)
    /// fits one answer, with the warnings that are not about files first and whole, and what
    /// was cut said.
    #[test]
    fn a_status_always_fits_one_answer() {
        let pending = "an unlock asked by pid 7 (/tmp/bot) is under way".to_string();
        let tampered = "ALERT: the audit log was tampered with".to_string();
        let mut status = Status {
            state: SessionState::Unlocked,
            warnings: vec![pending.clone(), tampered.clone()],
            session: Some(SessionStatus {
                keys: (0..2000)
                    .map(|i| KeyStatus {
                        name: format!("key-with-a-long-name-{i:05}"),
                        exchange: "binance".into(),
                        signatures_left: Some(10),
                        signatures_made: 0,
                    })
                    .collect(),
                clients: (0..100)
                    .map(|pid| ClientInfo {
                        pid,
                        exe: "\u{1}".repeat(256),
                        signatures: u64::from(pid % 7),
                    })
                    .collect(),
                opened_by: "soft token".into(),
                ..SessionStatus::default()
            }),
            ..Status::default()
        };
        // Recheck: one file's warning quoting a 1 MB field name.
        let mut files = vec![format!("unknown field `{}`", "f".repeat(1 << 20))];
        files.extend((0..400)
            .map(|i| format!("keyslot /home/t/.tapsign/keystore/vault-x/keyslots/junk-{i:04}-{}.json is not the one the keystore's manifest records", "x".repeat(60))));
        fit_status(&mut status, files);
        let answer = serde_json::to_vec(&Response::Unlocked(status.clone())).unwrap();
        assert!(answer.len() <= tapsign_proto::MAX_FRAME, "{}", answer.len());
        assert_eq!(status.warnings[..2], [pending, tampered]);
        let said = status.warnings.join("\n");
        assert!(said.contains("more programs signed"), "{said}");
        assert!(
            said.contains("more warnings about the keystore's files"),
            "{said}"
        );
        assert!(said.contains("cut to fit one answer"), "{said}");
        let s = status.session.unwrap();
        assert!(!s.keys.is_empty());
        // Red-team round 20: the count of the session's keys survives the cut.
        assert!(s.keys.len() < 2000);
        assert_eq!(s.keys_total, Some(2000));
        assert!(s.clients.len() <= 16);
        // The programs that signed most come first; their paths shown, not escaped.
        assert!(
            s.clients
                .windows(2)
                .all(|w| w[0].signatures >= w[1].signatures)
        );
        assert!(s.clients.iter().all(|c| !c.exe.contains('\u{1}')));
    }

    /// A status that needs no cut does not say `keys_total`: `keys` is every key.
    #[test]
    fn an_uncut_status_leaves_keys_total_out() {
        let mut status = Status {
            state: SessionState::Unlocked,
            session: Some(SessionStatus {
                keys: vec![KeyStatus::default(); 3],
                ..SessionStatus::default()
            }),
            ..Status::default()
        };
        fit_status(&mut status, Vec::new());
        assert_eq!(status.session.unwrap().keys_total, None);
    }
}
