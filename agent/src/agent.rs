//! The agent's shared state and the handling of each request.
//!
//! State lives behind `std::sync::Mutex`es that are never held across an `.await` or any token
//! I/O: the session lock is taken to check and count a signature (microseconds), and an unlock
//! does its touch on a blocking thread before taking it to install the new session. Nothing
//! here waits on the disk on an async worker: the audit log has its own writer thread
//! ([`AuditSink`]), Kraken nonces are reserved on blocking threads ([`KrakenNonces`]), and
//! `status`, which reads the keystore's folder, runs on a blocking thread.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tapsign_proto::{
    ErrorCode, EventKind, KeyPolicyInfo, KeystoreState, LockSource, PROTOCOL_VERSION, Request,
    Response, SessionEvent, SessionState, SignRequest, Status, TokenInfo, UnlockRequest,
};

use crate::audit::{AuditEvent, AuditSink, Unrecorded};
use crate::clock::{boot_now, format_duration};
use crate::config::Config;
use crate::credential::Exchange;
use crate::keystore::Keystore;
use crate::nonces::KrakenNonces;
use crate::paths::Paths;
use crate::session::{Client, LockReason, Session, Warning};
use crate::sign::{self, Stamp};
use crate::{policy, unlocker};

mod at_rest;

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
    pub(crate) keystore: Keystore,
    /// `TAPSIGN_INSECURE_SOFT_TOKEN=1` was set when the agent started.
    pub(crate) soft_allowed: bool,
    session: Mutex<Session>,
    /// The audit log, owned by its writer thread.
    pub(crate) audit: AuditSink,
    /// Wakes the reaper when the session changes.
    pub(crate) changed: tokio::sync::Notify,
    /// One unlock at a time: a second waits instead of asking for a second touch.
    unlocking: tokio::sync::Mutex<()>,
    warnings: Mutex<Vec<String>>,
    /// Session events for subscribed connections.
    events: tokio::sync::broadcast::Sender<SessionEvent>,
    /// What the D-Bus lock sources report (written by their tasks, read by `status`).
    pub(crate) dbus_sources: crate::locksource::Sources,
    pub(crate) notifier: crate::notify::Notifier,
    /// The boot-time clock (suspended time counts); tests substitute their own.
    clock: Clock,
    /// The keystore manifest this agent last verified or wrote (at an unlock).
    verified: Mutex<Option<KeystoreState>>,
    /// Kraken nonces, reserved on disk in blocks, one store per key.
    nonces: KrakenNonces,
    /// The PC/SC reader of the token that opened the session (watched for removal).
    reader: Mutex<Option<String>>,
    /// Whether the removal watcher is following a reader now, and which.
    removal_live: Mutex<Option<String>>,
}

impl Agent {
    pub fn new(paths: Paths, config: Config, soft_allowed: bool) -> Arc<Agent> {
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
        let keystore = Keystore::new(paths.keystore_dir());
        let warnings = Vec::new();
        let nonces = KrakenNonces::new(&paths.state_dir);
        let notifications = config.notifications.enabled;
        Arc::new(Agent {
            paths,
            config,
            keystore,
            soft_allowed,
            session: Mutex::new(Session::default()),
            audit,
            changed: tokio::sync::Notify::new(),
            unlocking: tokio::sync::Mutex::new(()),
            warnings: Mutex::new(warnings),
            events: tokio::sync::broadcast::channel(64).0,
            dbus_sources: crate::locksource::Sources::default(),
            notifier: crate::notify::Notifier::new(notifications),
            clock: Arc::new(boot_now),
            nonces,
            verified: Mutex::new(None),
            reader: Mutex::new(None),
            removal_live: Mutex::new(None),
        })
    }

    /// The same agent reading time from `clock` (tests: a clock that jumps, like a suspend).
    pub fn with_clock(self: Arc<Self>, clock: Clock) -> Arc<Self> {
        let mut agent =
            Arc::try_unwrap(self).unwrap_or_else(|_| panic!("with_clock on a shared agent"));
        agent.clock = clock;
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

    /// Report a warning once: the log and `status` show each distinct one a single time, so a
    /// problem met on every unlock does not grow the list.
    pub(crate) fn warn(&self, msg: String) {
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if !warnings.contains(&msg) {
            eprintln!("tapsign agent: warning: {msg}");
            warnings.push(msg);
        }
    }

    /// End the session (idempotent); audited when a session was open.
    pub fn lock(&self, reason: LockReason) -> bool {
        let was_open = self.session().lock(reason.clone());
        if was_open {
            self.ended(&reason);
        }
        was_open
    }

    /// The reader to watch for removal: only while a session opened by a PC/SC token is open.
    pub(crate) fn watched_reader(&self) -> Option<String> {
        if !self.session().is_unlocked() {
            return None;
        }
        self.reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_removal_live(&self, reader: Option<&str>) {
        *self.removal_live.lock().unwrap_or_else(|p| p.into_inner()) = reader.map(str::to_owned);
    }

    /// The session's token left its reader.
    pub(crate) fn removed(&self, reader: &str, why: &str) {
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.set_removal_live(None);
        self.lock(LockReason::Other(format!(
            "token removed ({why} in {})",
            crate::removal::describe(reader)
        )));
    }

    /// Everything that follows the end of a session, whatever ended it: log, audit, tell the
    /// subscribers, wake the reaper.
    pub(crate) fn ended(&self, reason: &LockReason) {
        eprintln!("tapsign agent: locked: {reason}");
        // Not waited for: a lock happens whatever the disk does. The writer logs the head
        // after this line and has it synced at once.
        self.audit.submit(AuditEvent::Lock {
            reason: reason.to_string(),
        });
        self.publish(SessionEvent {
            event: EventKind::Locked,
            message: format!("locked: {reason}"),
            reason: Some(reason.to_string()),
            code: Some(reason.code()),
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
                } => SessionEvent {
                    event: EventKind::ExpiringSoon,
                    message: format!(
                        "the session ends in {}; `tapsign unlock --extend` renews it with a touch",
                        format_duration(Duration::from_secs(in_secs))
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
                    message: format!("{left} signatures left in this session"),
                    reason: None,
                    code: None,
                    expires_in_secs: Some(expires_in_secs),
                    signatures_left: Some(left),
                },
            };
            eprintln!("tapsign agent: {}", event.message);
            let short = match event.event {
                EventKind::ExpiringSoon => format!(
                    "The session ends in {}",
                    format_duration(Duration::from_secs(event.expires_in_secs.unwrap_or(0)))
                ),
                _ => format!("{} signatures left", event.signatures_left.unwrap_or(0)),
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
            Request::Status {} => Response::Status(self.status_now().await),
            Request::Lock {} => {
                self.lock(LockReason::Command);
                // The answer waits (briefly, never for a sync) for the lock's line.
                self.audit.refresh(AUDIT_WAIT).await;
                Response::Locked {}
            }
            Request::Unlock(u) => self.unlock(u, client).await,
            Request::Sign(s) => self.sign(s, client).await,
            // The server turns the connection into an event stream; this is its first answer.
            Request::Subscribe {} => Response::Subscribed {},
        }
    }

    async fn sign(&self, req: SignRequest, client: &Client) -> Response {
        let now = self.now();
        // A deadline this request is the first to notice ends the session like the reaper's.
        let expired = self.session().tick(now);
        if let Some(reason) = expired {
            self.ended(&reason);
        }
        let (signed, spent_now) = match self.stamp_and_sign(&req, client, now).await {
            Ok(done) => done,
            Err((code, message)) => {
                // Recorded when the log can take it; the refusal stands either way.
                let _ = self
                    .audit
                    .record(AuditEvent::Refusal {
                        key: req.key.clone(),
                        method: req.method.clone(),
                        path: req.path.clone(),
                        code,
                        reason: message.clone(),
                        pid: client.pid,
                        exe: client.exe.clone(),
                    })
                    .await;
                return Response::Error { code, message };
            }
        };
        // Every signature that leaves the agent is on record: one that cannot be recorded
        // does not leave (it still counts against the budget).
        let recorded = self
            .audit
            .record(AuditEvent::Sign {
                key: req.key.clone(),
                method: req.method.clone(),
                path: req.path.clone(),
                pid: client.pid,
                exe: client.exe.clone(),
            })
            .await;
        if let Err(why) = recorded {
            return Response::Error {
                code: ErrorCode::Internal,
                message: withheld(&why, self.audit.path()),
            };
        }
        if spent_now {
            self.ended(&LockReason::BudgetSpent);
        } else {
            self.publish_warnings();
        }
        Response::Signed(signed)
    }

    /// Stamp the request, check it against the policy and sign it; also whether that spent
    /// the session's budget.
    async fn stamp_and_sign(
        &self,
        req: &SignRequest,
        client: &Client,
        now: Duration,
    ) -> Result<(tapsign_proto::SignedRequest, bool), (ErrorCode, String)> {
        let mut stamp = Stamp::now().map_err(|e| (ErrorCode::Internal, e.to_string()))?;
        // Kraken wants a nonce above every one it has seen for the key, across agent restarts:
        // the nonces come from a block already reserved on disk. It is fetched before taking
        // the session lock; should the session change in between, the scheme refuses a Kraken
        // request without a nonce, and a non-Kraken one ignores it.
        let kraken = self.session().exchange_of(&req.key) == Some(Exchange::Kraken);
        if kraken {
            let nonce = self.nonces.next(&req.key, stamp.unix_ms).await;
            stamp.counter = Some(nonce.map_err(|e| (ErrorCode::Internal, e.to_string()))?);
        }
        let opts = self.config.signing;
        let key_policy = self.config.key_policy(&req.key);
        // The policy runs under the same lock as the signature, on the credential actually
        // used: no unlock can slip in between the check and the signing. What is signed is the
        // request the policy parsed, written back (`checked.wire`).
        let mut session = self.session();
        let out = session.use_key(&req.key, now, client, |cred| {
            let checked = policy::check_request(cred.exchange, &req.key, key_policy, req)
                .map_err(|r| (r.code(), r.to_string()))?;
            sign::sign(cred, &checked.wire, &stamp, &opts)
                .map_err(|e| (ErrorCode::BadRequest, e.to_string()))
        });
        let spent_now = matches!(out, Ok(Ok(_))) && !session.is_unlocked();
        drop(session);
        match out {
            Err(r) => Err((r.code, r.message)),
            Ok(Err(refused)) => Err(refused),
            Ok(Ok(signed)) => Ok((signed, spent_now)),
        }
    }

    async fn unlock(self: &Arc<Self>, req: UnlockRequest, client: &Client) -> Response {
        let secs = |s: Option<u64>| s.map(Duration::from_secs);
        let bounds =
            match self
                .config
                .bounds(secs(req.ttl_secs), secs(req.idle_secs), req.max_signatures)
            {
                Ok(b) => b,
                Err(message) => {
                    return Response::Error {
                        code: ErrorCode::BadRequest,
                        message,
                    };
                }
            };
        let _one_at_a_time = self.unlocking.lock().await;
        if req.extend && !self.session().is_unlocked() {
            let message = "no session is open to extend: run `tapsign unlock`".to_owned();
            return Response::Error {
                code: ErrorCode::Locked,
                message,
            };
        }
        let agent = Arc::clone(self);
        let keys = req.keys.clone();
        let pin = req.pin;
        let extend = req.extend;
        let program = client.exe.rsplit('/').next().unwrap_or("?");
        let asked = format!(
            "{program} (pid {}) asks to {} a session for {}, {} signatures",
            client.pid,
            if extend { "extend" } else { "open" },
            format_duration(bounds.ttl),
            bounds.max_signatures
        );
        let opened = tokio::task::spawn_blocking(move || {
            if extend {
                unlocker::touch(&agent, pin.as_ref(), &asked)
            } else {
                unlocker::open(&agent, &keys, pin.as_ref(), &asked)
            }
        })
        .await;
        let opened = match opened {
            Ok(r) => r,
            Err(_) => Err((
                ErrorCode::Internal,
                "the unlock worker failed; see the agent's log".into(),
            )),
        };
        match opened {
            Err((code, message)) => {
                let _ = self
                    .audit
                    .record(AuditEvent::UnlockRefused {
                        code,
                        reason: message.clone(),
                        pid: client.pid,
                        exe: client.exe.clone(),
                    })
                    .await;
                Response::Error { code, message }
            }
            Ok(o) if extend => {
                if !self.session().extend(bounds, self.now()) {
                    // The session ended while the touch was pending.
                    let message =
                        "the session ended before the touch; run `tapsign unlock`".to_owned();
                    return Response::Error {
                        code: ErrorCode::Locked,
                        message,
                    };
                }
                *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = o.reader.clone();
                eprintln!("tapsign agent: session extended with {}", o.opened_by);
                let _ = self
                    .audit
                    .record(AuditEvent::Unlock {
                        token: format!("{} (extend)", o.opened_by),
                        keys: Vec::new(),
                        ttl_secs: bounds.ttl.as_secs(),
                        idle_secs: bounds.idle.as_secs(),
                        max_signatures: bounds.max_signatures,
                        pid: client.pid,
                        exe: client.exe.clone(),
                    })
                    .await;
                self.publish(SessionEvent {
                    event: EventKind::Extended,
                    message: format!(
                        "the session was extended for {}",
                        format_duration(bounds.ttl)
                    ),
                    reason: None,
                    code: None,
                    expires_in_secs: Some(bounds.ttl.as_secs()),
                    signatures_left: Some(bounds.max_signatures),
                });
                self.changed.notify_one();
                Response::Unlocked(self.status_now().await)
            }
            Ok(o) => {
                for w in o.warnings {
                    self.warn(w);
                }
                *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = o.reader.clone();
                let names: Vec<String> = o.credentials.iter().map(|c| c.name.clone()).collect();
                let session =
                    Session::unlock(o.credentials, bounds, self.now(), o.opened_by.clone());
                *self.session() = session;
                self.changed.notify_one();
                eprintln!(
                    "tapsign agent: unlocked {} key(s) with {}",
                    names.len(),
                    o.opened_by
                );
                self.publish(SessionEvent {
                    event: EventKind::Unlocked,
                    message: format!(
                        "a session opened with {} key(s) for {}",
                        names.len(),
                        format_duration(bounds.ttl)
                    ),
                    reason: None,
                    code: None,
                    expires_in_secs: Some(bounds.ttl.as_secs()),
                    signatures_left: Some(bounds.max_signatures),
                });
                self.notifier.session_opened(names.len(), bounds.ttl);
                let _ = self
                    .audit
                    .record(AuditEvent::Unlock {
                        token: o.opened_by,
                        keys: names,
                        ttl_secs: bounds.ttl.as_secs(),
                        idle_secs: bounds.idle.as_secs(),
                        max_signatures: bounds.max_signatures,
                        pid: client.pid,
                        exe: client.exe.clone(),
                    })
                    .await;
                Response::Unlocked(self.status_now().await)
            }
        }
    }

    /// What `status` reports, with the audit log's head caught up with the file; computed on
    /// a blocking thread (it reads the keystore's folder).
    pub async fn status_now(self: &Arc<Self>) -> Status {
        self.audit.refresh(AUDIT_WAIT).await;
        let agent = Arc::clone(self);
        match tokio::task::spawn_blocking(move || agent.status()).await {
            Ok(status) => status,
            // Only a panic gets here; answer from this thread rather than not at all.
            Err(_) => self.status(),
        }
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
        let mut warnings = self
            .warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut tokens = Vec::new();
        match self.keystore.keyslots() {
            Ok(slots) => {
                for slot in slots {
                    match slot {
                        Ok(slot) => {
                            if slot.stub.is_insecure() {
                                warnings.push(format!(
                                    "{} is enrolled: it gives no protection",
                                    slot.stub.describe()
                                ));
                            }
                            if !slot.recorded {
                                warnings.push(format!(
                                    "keyslot {} is not the one the keystore's manifest records: it is never used; remove the file",
                                    slot.path.display()
                                ));
                            }
                            tokens.push(TokenInfo {
                                id: slot.stub.id(),
                                kind: slot.stub.kind().into(),
                                description: slot.stub.describe(),
                            });
                        }
                        Err(e) => warnings.push(e.to_string()),
                    }
                }
            }
            Err(e) => warnings.push(e.to_string()),
        }
        let audit_head = self.audit_head();
        warnings.extend(self.audit.warnings());
        if crate::harden::mlock_failed() {
            warnings.push("secret memory could not be locked (RLIMIT_MEMLOCK too small): secrets may reach swap; raise the limit (ulimit -l, LimitMEMLOCK=)".into());
        }
        if !self.dbus_sources.screen_lock_live() {
            warnings.push(crate::locksource::NO_SCREEN_LOCK.into());
        }
        warnings.dedup();
        Status {
            state,
            agent: agent_version(),
            lock_reason,
            session,
            tokens,
            warnings,
            lock_sources: self.lock_sources(),
            key_policies: self
                .config
                .keys
                .iter()
                .map(|(key, p)| KeyPolicyInfo {
                    key: key.clone(),
                    rules: p.describe(),
                })
                .filter(|k| !k.rules.is_empty())
                .collect(),
            audit_head,
            keystore: self
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

impl Agent {
    fn lock_sources(&self) -> Vec<LockSource> {
        let mut sources = always_live_sources();
        let watched = self
            .removal_live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        sources.push(LockSource {
            name: "token removal".into(),
            live: watched.is_some(),
            detail: Some(match watched {
                Some(r) => format!("watching {}", crate::removal::describe(&r)),
                None => "watches the PC/SC reader or USB key of the token that opened the session"
                    .into(),
            }),
        });
        sources.extend(self.dbus_sources.snapshot());
        sources
    }
}

/// How long `lock` and `status` wait for the audit writer (to have the lock's line written, to
/// show the file's head) before answering anyway: a stalled disk delays them this much at most.
const AUDIT_WAIT: Duration = Duration::from_millis(500);

/// What a bot is told when its signature cannot be put on record.
fn withheld(why: &Unrecorded, log: &std::path::Path) -> String {
    match why {
        Unrecorded::Tampered(why) => format!("the signature was withheld: {why}"),
        Unrecorded::Unsynced(e) => format!(
            "the audit log {} could not be synced to disk ({e}), so the signature was withheld; check the disk (dmesg) and retry",
            log.display()
        ),
        Unrecorded::Unwritable(_) | Unrecorded::Stopped => format!(
            "the audit log {} cannot be written (disk full? permissions?), so the signature was withheld; fix it and retry",
            log.display()
        ),
    }
}

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
            "SIGHUP locks; SIGTERM and SIGINT lock and stop the agent",
        ),
    ]
}
