//! The agent's audit sink: the one owner of the open log while the agent runs.
//!
//! A writer thread owns the [`AuditLog`]; the syncer (`sync`) owns a second descriptor on it
//! and only syncs. Connections hand the writer their events over a channel and await a tokio
//! oneshot, so no async worker ever waits on the disk or holds a lock around it.
//!
//! - Every line is written (`write(2)`) before the answer it belongs to leaves the agent, in
//!   both modes: a crash of the agent loses nothing.
//! - `flush = "incremental_async"`: the syncer syncs in the background, at most every
//!   `sync_interval`, and at once after a lock and at shutdown.
//! - `flush = "sync"`: a signature's answer also waits for its line's sync; signatures
//!   written while a sync runs share the next one (group commit).
//! - A line that cannot be written withholds its signature; a log found tampered with
//!   withholds every signature until the agent restarts (`tail`).
//! - A failed sync is never silent: the agent's log and `status` say so, and until a sync
//!   succeeds again each signature waits for the sync of its own line, withheld if that fails.
//! - Events queued together are written together: one `flock`, one anchoring check, one
//!   `write(2)`.
//!
//! docs/audit.md ("Durability") is the user's side of this.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::sync::{Synced, Syncer};
use super::{AuditEvent, AuditLog, Checkpoint, rfc3339_utc_ms};
use crate::config::{AuditConfig, Flush};
use crate::keystore::Anchor;
use crate::keystore::ledger::Witness;

/// How the syncer flushes the file to disk: `File::sync_data` (`fdatasync`), or, in tests, a
/// sync that fails or hangs.
pub type SyncFn = Arc<dyn Fn(&File) -> std::io::Result<()> + Send + Sync>;

/// Why a decision is not on record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrecorded {
    /// The log was replaced, cut or edited under the agent (the message says how, and what
    /// to do).
    #[error("{0}")]
    Tampered(String),
    #[error("the audit log cannot be written ({0})")]
    Unwritable(String),
    /// Another process held the log's lock for longer than an append waits.
    #[error("the audit log cannot be written ({0})")]
    LockHeld(String),
    #[error("the audit log could not be synced to disk ({0})")]
    Unsynced(String),
    #[error("the audit log's writer has stopped (the agent is shutting down)")]
    Stopped,
}

/// How to find the process that holds the log's lock, for the messages that say it does.
pub(crate) const LOCK_HOLDER: &str = "`lslocks` shows which process holds it (or `fuser -v` on the log, which lists every process that has it open): end that process unless it is a tapsign command at work";

/// Answers a caller waiting for its line.
pub(super) type Ack = oneshot::Sender<Result<(), Unrecorded>>;

/// Most events written in one batch (one `write(2)`).
const MAX_BATCH: usize = 64;

/// Most lock and unlock lines kept for the next write when theirs failed.
const MAX_PENDING: usize = 256;

/// A line [`AuditSink::queue`]d: its answer, once written.
pub struct Queued(oneshot::Receiver<Result<(), Unrecorded>>);

impl Queued {
    /// Wait until the line is written (or could not be).
    pub async fn written(self) -> Result<(), Unrecorded> {
        self.0.await.unwrap_or(Err(Unrecorded::Stopped))
    }

    /// [`Queued::written`] from a blocking thread (never from an async worker).
    fn written_blocking(self) -> Result<(), Unrecorded> {
        self.0.blocking_recv().unwrap_or(Err(Unrecorded::Stopped))
    }
}

enum Job {
    Record {
        event: AuditEvent,
        time: SystemTime,
        ack: Option<Ack>,
        /// Its signer was the only one waiting for a line when it sent it (see
        /// [`Writer::run`]).
        alone: bool,
        /// A refusal, counted instead of written when one like it went in less than a second
        /// before (`repeats`).
        fold: bool,
    },
    /// Take in lines other tapsign processes appended (and catch tampering); answered once
    /// everything queued before it is written.
    Refresh(oneshot::Sender<Option<Anchor>>),
    /// Write what is queued, sync, stop.
    Close(oneshot::Sender<()>),
}

/// What `status` shows of the log, kept up to date by the writer and the syncer.
#[derive(Default)]
pub(super) struct View {
    state: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    head: Option<Anchor>,
    tampered: Option<String>,
    unwritable: Option<String>,
    /// Why it cannot be written is that another process holds its lock (red-team round 20:
    /// the warning sent the trader to the disk).
    lock_held: bool,
    unsynced: Option<String>,
    /// Past trouble that still matters (a sync that failed once).
    notes: Vec<String>,
    /// `status` found the writer busy for longer than it waits.
    stalled: bool,
    /// The keystore's records this agent wrote or took in: kept when the log is found
    /// tampered with, since they are what it saw before that.
    witness: Witness,
    /// The file the writer holds open (device, inode), while it is trusted.
    file: Option<(u64, u64)>,
}

impl View {
    fn lock(&self) -> MutexGuard<'_, ViewState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A sync's outcome: logged when it starts failing and when it recovers.
    pub(super) fn synced(&self, outcome: Synced) {
        let mut v = self.lock();
        match outcome {
            Synced::Ok { recovered: None } => {}
            Synced::Ok {
                recovered: Some(why),
            } => {
                v.unsynced = None;
                let note = format!(
                    "syncing the audit log to disk failed at {} ({why}): lines written before then may not survive a power failure; check the disk (dmesg)",
                    rfc3339_utc_ms(SystemTime::now())
                );
                say!("tapsign agent: the audit log syncs again; {note}");
                v.notes.push(note);
            }
            Synced::Failed { why, first } => {
                if first {
                    say!(
                        "tapsign agent: ALERT: the audit log cannot be synced to disk ({why}); each signature now waits for its own line's sync and is withheld if that fails"
                    );
                }
                v.unsynced = Some(why);
            }
        }
    }
}

/// The open audit log, owned by a writer thread. See the module doc.
pub struct AuditSink {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    view: Arc<View>,
    /// How long [`AuditSink::record`] looks for its answer before it waits ([`LOOK_FOR`]).
    look: Duration,
    /// Records waiting for their answer now.
    waiting: std::sync::atomic::AtomicUsize,
    /// The record of the vaults as the keystore's last check read it from this log.
    vaults_read: super::ledger::VaultsRead,
}

impl AuditSink {
    /// Open the log at `path` and start its writer. A log that cannot be opened does not stop
    /// the agent: it is said once, shown by `status`, retried at every decision, and every
    /// signature is withheld until it opens.
    pub fn open(path: &Path, config: AuditConfig) -> AuditSink {
        AuditSink::open_with(path, config, Arc::new(|f: &File| f.sync_data()))
    }

    /// [`AuditSink::open`] with another way to sync (tests: a disk that fails or stalls).
    pub fn open_with(path: &Path, config: AuditConfig, sync: SyncFn) -> AuditSink {
        let (jobs, queue) = mpsc::channel();
        let view = Arc::new(View::default());
        let syncer = Syncer::new();
        let mut writer = Writer {
            path: path.to_owned(),
            flush: config.flush,
            log: None,
            view: Arc::clone(&view),
            syncer: Arc::clone(&syncer),
            batches: 0,
            pending: Vec::new(),
            repeats: Default::default(),
        };
        writer.open();
        let (every, v) = (config.sync_interval, Arc::clone(&view));
        let syncing = std::thread::Builder::new()
            .name("tapsign-audit-sync".into())
            .spawn(move || syncer.run(every, sync, v));
        let started = syncing.and_then(|syncing| {
            std::thread::Builder::new()
                .name("tapsign-audit".into())
                .spawn(move || writer.run(&queue, syncing))
        });
        if let Err(e) = started {
            let why = format!("its writer thread could not start: {e}");
            say!(
                "tapsign agent: warning: the audit log cannot be written ({why}); signing is refused"
            );
            view.lock().unwritable = Some(why);
        }
        AuditSink {
            path: path.to_owned(),
            jobs,
            view,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            vaults_read: super::ledger::VaultsRead::default(),
            look: match config.flush {
                Flush::IncrementalAsync => LOOK_FOR,
                Flush::Sync => Duration::ZERO,
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the keystore's last check read the record of the vaults up to: the next one reads
    /// on from there (`ledger::VaultsRead`).
    pub fn vaults_read(&self) -> &super::ledger::VaultsRead {
        &self.vaults_read
    }

    /// Read the record of the vaults ahead of the first unlock (reads the whole log: from a
    /// blocking thread, never from an async worker).
    pub fn read_vaults(&self) {
        super::ledger::read_vaults(&self.path, &self.vaults_read);
    }

    fn send(&self, event: AuditEvent, ack: Option<Ack>, alone: bool, fold: bool) {
        let time = SystemTime::now();
        // A writer that is gone drops the ack: the waiter then hears `Stopped`.
        let _ = self.jobs.send(Job::Record {
            event,
            time,
            ack,
            alone,
            fold,
        });
    }

    /// Record a decision, and return once its line is written; a signature's line, in `sync`
    /// mode or while syncs fail, once it is synced.
    pub async fn record(&self, event: AuditEvent) -> Result<(), Unrecorded> {
        self.record_as(event, false).await
    }

    /// [`AuditSink::record`] for a refusal a bot can repeat in a loop: one like a refusal
    /// whose line went in less than a second before is counted, and its count written with
    /// the next line of it (docs/audit.md, "Repeated refusals"). Returns at once when counted.
    pub async fn record_refusal(&self, event: AuditEvent) -> Result<(), Unrecorded> {
        self.record_as(event, true).await
    }

    async fn record_as(&self, event: AuditEvent, fold: bool) -> Result<(), Unrecorded> {
        use std::sync::atomic::Ordering;
        let (ack, mut done) = oneshot::channel();
        // Look for the answer for a moment, yielding to the worker's other tasks in between
        // (nothing is blocked), before the worker may sleep on it ([`LOOK_FOR`]); but only
        // when no other record waits: then the writer has a queue, the workers have other
        // signers to serve, and looking would take the CPU the writer needs.
        let alone = self.waiting.fetch_add(1, Ordering::Relaxed) == 0;
        // Counted out however this ends, a dropped future included.
        let _counted = Waiting(&self.waiting);
        self.send(event, Some(ack), alone, fold);
        let until = Instant::now() + if alone { self.look } else { Duration::ZERO };
        let mut answer = None;
        while Instant::now() < until {
            match done.try_recv() {
                Ok(r) => {
                    answer = Some(r);
                    break;
                }
                // The writer is gone. (Awaiting a receiver that said so would panic.)
                Err(oneshot::error::TryRecvError::Closed) => {
                    answer = Some(Err(Unrecorded::Stopped));
                    break;
                }
                Err(oneshot::error::TryRecvError::Empty) => tokio::task::yield_now().await,
            }
        }
        match answer {
            Some(r) => r,
            None => done.await.unwrap_or(Err(Unrecorded::Stopped)),
        }
    }

    /// Queue a decision's line now (its place in the log is taken here, before anything the
    /// caller does next), and wait for it later with [`Queued::written`]: an unlock queues
    /// its line while it holds the session's lock, so no signature of the new session is
    /// logged before it.
    pub fn queue(&self, event: AuditEvent) -> Queued {
        let (ack, done) = oneshot::channel();
        self.send(event, Some(ack), false, false);
        Queued(done)
    }

    /// [`AuditSink::record`] from a blocking thread (never from an async worker).
    pub fn record_blocking(&self, event: AuditEvent) -> Result<(), Unrecorded> {
        self.queue(event).written_blocking()
    }

    /// Record a decision without waiting: locks, which happen whatever the disk does. The
    /// writer logs the head after a lock's line and has it synced at once.
    pub fn submit(&self, event: AuditEvent) {
        self.send(event, None, false, false);
    }

    /// Wait, at most `wait`, until everything queued so far is written and lines other tapsign
    /// processes appended are taken in: then [`AuditSink::head`] is the file's. False when the
    /// writer did not answer in time (a stalled disk): `status` then says so.
    pub async fn refresh(&self, wait: Duration) -> bool {
        let (ack, done) = oneshot::channel();
        if self.jobs.send(Job::Refresh(ack)).is_err() {
            return false;
        }
        let answered = tokio::time::timeout(wait, done).await.is_ok();
        if !answered {
            self.view.lock().stalled = true;
        }
        answered
    }

    /// The anchor the keystore records, after a refresh: from a blocking thread only.
    pub fn anchor_blocking(&self) -> Option<Anchor> {
        let (ack, done) = oneshot::channel();
        self.jobs.send(Job::Refresh(ack)).ok()?;
        done.blocking_recv().ok().flatten()
    }

    /// What the keystore's check reads are held to ([`super::held_to`]): the file the writer
    /// holds open (device, inode) while it is trusted, or nothing while it holds none.
    pub(crate) fn hold(&self) -> super::Hold {
        match self.view.lock().file {
            Some((dev, ino)) => super::Hold::File(dev, ino),
            None => super::Hold::Nothing,
        }
    }

    /// Where the chain stands, as of the last write or refresh; none while the log is not open
    /// or not trusted.
    pub fn head(&self) -> Option<Checkpoint> {
        let v = self.view.lock();
        v.head.as_ref().map(|a| Checkpoint {
            seq: a.seq,
            hash: a.hash.clone(),
        })
    }

    /// The keystore's records this agent saw written to the log (by itself, or by other
    /// tapsign commands, checked to continue the chain), as of the last write or refresh.
    pub fn witnessed(&self) -> Witness {
        self.view.lock().witness.clone()
    }

    /// Why the log is no longer trusted, if it was tampered with.
    pub fn tampered(&self) -> Option<String> {
        self.view.lock().tampered.clone()
    }

    /// What `status` should warn about the log.
    pub fn warnings(&self) -> Vec<String> {
        let v = self.view.lock();
        let path = self.path.display();
        let mut out = Vec::new();
        if let Some(why) = &v.tampered {
            out.push(why.clone());
        } else if let Some(why) = &v.unwritable
            && v.lock_held
        {
            out.push(format!(
                "the audit log {path} cannot be written ({why}): signatures are withheld until that lock is let go; {LOCK_HOLDER}"
            ));
        } else if let Some(why) = &v.unwritable {
            out.push(format!(
                "the audit log {path} cannot be written ({why}): signatures are withheld until it can (disk full? permissions?)"
            ));
        }
        if let Some(why) = &v.unsynced {
            out.push(format!(
                "the audit log {path} cannot be synced to disk ({why}): each signature waits for its own line's sync and is withheld if that fails; check the disk (dmesg)"
            ));
        }
        if v.stalled {
            out.push(format!(
                "the audit log {path} is slow to write (a stalled disk?): signatures wait for it, and the head shown may be behind"
            ));
        }
        out.extend(v.notes.iter().cloned());
        out
    }

    /// Write what is queued, sync it, and stop the writer. Later records fail (`Stopped`).
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.jobs.send(Job::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

/// How long the writer looks for the next job before it sleeps (after a lone signer's line:
/// [`one_signer`]), and a signer for its line before it lets its worker sleep, when lines are
/// answered once written (`incremental_async`). Waking a sleeping thread costs tens of
/// microseconds on a virtual machine (the sleeping CPU must be woken too), more than writing
/// the line: two such wakes per signature doubled its round trip (docs/benchmarks.md). Bots sign in bursts, so the next
/// line usually comes within this; an idle agent sleeps after it. In `sync` mode a line waits
/// for a sync of hundreds of microseconds, and looking out for it only takes the CPU from the
/// signers, so neither looks.
const LOOK_FOR: Duration = Duration::from_micros(100);

/// The next job: looked for during `look` (the writer's CPU only), then waited for, until
/// `due` if given (`None` then: the time came first).
fn next_job(
    queue: &mpsc::Receiver<Job>,
    look: Duration,
    due: Option<Instant>,
) -> Result<Option<Job>, mpsc::RecvError> {
    let until = Instant::now() + look;
    loop {
        match queue.try_recv() {
            Ok(job) => return Ok(Some(job)),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Empty) => break,
        }
    }
    let Some(due) = due else {
        return queue.recv().map(Some);
    };
    match queue.recv_timeout(due.saturating_duration_since(Instant::now())) {
        Ok(job) => Ok(Some(job)),
        Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::RecvError),
    }
}

/// Whether the writer looks out for the next job after `jobs` (when it looks at all): only
/// after a batch of one line whose sender awaits it and found no other line awaited (a bot
/// signing alone: [`AuditSink::record`]), whose next line comes within [`LOOK_FOR`] and is
/// answered sooner for it. Lines that
/// queued together, or a signer that found others waiting, mean several signers: the workers
/// have their requests to check, the next line comes soon anyway, and looking would take the
/// CPU they need (on two cores, 8 signers made 25 to 27% of the bare echo's round trips a
/// second with the writer looking after every batch, 27 to 31% without: docs/benchmarks.md).
fn one_signer(jobs: &[Job]) -> bool {
    matches!(jobs, [Job::Record { alone: true, .. }])
}

/// The lines of counts of repeated refusals, which no one waits for.
fn late_records(late: Vec<super::repeats::Late>) -> Vec<Record> {
    late.into_iter()
        .map(|(event, time)| Record {
            event,
            time,
            ack: None,
        })
        .collect()
}

/// One record waiting for its answer, counted in [`AuditSink`]'s `waiting` while it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The writer thread's state: the log and what it reports.
struct Writer {
    path: PathBuf,
    flush: Flush,
    log: Option<AuditLog>,
    view: Arc<View>,
    syncer: Arc<Syncer>,
    /// Batches written so far: the syncer's measure of how far it got.
    batches: u64,
    /// Lock and unlock lines whose write failed (the log's lock held elsewhere, a full disk):
    /// written first, in order, with the next lines that go in. Dropped, a session could show
    /// in the log only by its signatures, after the previous session's `lock` line
    /// (red-team round 18).
    pending: Vec<Record>,
    /// Refusals written in the last second, and those like them counted since.
    repeats: super::repeats::Repeats,
}

/// One queued decision.
struct Record {
    event: AuditEvent,
    time: SystemTime,
    ack: Option<Ack>,
}

impl Writer {
    fn run(mut self, queue: &mpsc::Receiver<Job>, syncing: std::thread::JoinHandle<()>) {
        let mut closed = None;
        let look = match self.flush {
            Flush::IncrementalAsync => LOOK_FOR,
            Flush::Sync => Duration::ZERO,
        };
        let mut looking = look;
        while let Ok(first) = next_job(queue, looking, self.repeats.next_due()) {
            let Some(first) = first else {
                // Counts of repeated refusals fell due, and nothing else came.
                let due = self.repeats.due(Instant::now());
                self.write(late_records(due));
                looking = Duration::ZERO;
                continue;
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            looking = if one_signer(&jobs) {
                look
            } else {
                Duration::ZERO
            };
            if let Some(ack) = self.handle(jobs) {
                closed = Some(ack);
                break;
            }
        }
        if closed.is_none() {
            // Every sender is gone: the counts not yet written go in before the last sync.
            let rest = self.repeats.drain();
            self.write(late_records(rest));
        }
        // Closed, or every sender is gone: one last sync before the thread ends.
        self.syncer.close();
        let _ = syncing.join();
        if let Some(ack) = closed {
            let _ = ack.send(());
        }
    }

    /// Handle jobs in order; consecutive records are written together. Returns the ack of a
    /// `Close` (jobs after it are dropped: their waiters hear `Stopped`).
    fn handle(&mut self, jobs: Vec<Job>) -> Option<oneshot::Sender<()>> {
        let now = Instant::now();
        let mut records = late_records(self.repeats.due(now));
        for job in jobs {
            match job {
                Job::Record {
                    event,
                    time,
                    ack,
                    fold: true,
                    ..
                } if event.is_refusal() => match self.repeats.take(&event, time, now) {
                    // Counted: its refusal stands, and its count goes with a later line.
                    None => {
                        if let Some(ack) = ack {
                            let _ = ack.send(Ok(()));
                        }
                    }
                    Some((late, event)) => {
                        records.extend(late_records(late));
                        records.push(Record { event, time, ack });
                    }
                },
                Job::Record {
                    event, time, ack, ..
                } => records.push(Record { event, time, ack }),
                Job::Refresh(ack) => {
                    self.write(std::mem::take(&mut records));
                    self.refresh();
                    let _ = ack.send(self.view.lock().head.clone());
                }
                Job::Close(ack) => {
                    records.extend(late_records(self.repeats.drain()));
                    self.write(records);
                    return Some(ack);
                }
            }
        }
        self.write(records);
        None
    }

    fn open(&mut self) -> bool {
        match AuditLog::open(&self.path) {
            Ok(log) => {
                match log.sync_handle() {
                    Ok(f) => self.syncer.set_file(f),
                    Err(e) => say!("tapsign agent: warning: {e}"),
                }
                {
                    let mut v = self.view.lock();
                    v.head = Some(log.anchor());
                    v.file = Some(log.identity());
                }
                self.log = Some(log);
                true
            }
            Err(e) => {
                self.unwritable(&e.to_string(), "opened", false);
                false
            }
        }
    }

    /// Say once, when it starts, that the log cannot be written; `status` shows it meanwhile.
    fn unwritable(&self, why: &str, verb: &str, lock_held: bool) {
        let mut v = self.view.lock();
        if v.unwritable.is_none() {
            say!(
                "tapsign agent: warning: the audit log cannot be {verb} ({why}); signing is refused until it can"
            );
        }
        v.unwritable = Some(why.to_owned());
        v.lock_held = lock_held;
    }

    fn write(&mut self, mut records: Vec<Record>) {
        if !self.pending.is_empty() {
            let mut all = std::mem::take(&mut self.pending);
            all.append(&mut records);
            records = all;
        }
        if records.is_empty() {
            return;
        }
        match self.write_lines(&records) {
            Err(e) => {
                // A log found tampered with takes no more lines: nothing is kept for it.
                let keep = !matches!(e, Unrecorded::Tampered(_));
                for mut r in records {
                    if let Some(ack) = r.ack.take() {
                        let _ = ack.send(Err(e.clone()));
                    }
                    let session_line =
                        matches!(r.event, AuditEvent::Lock { .. } | AuditEvent::Unlock { .. });
                    if keep && session_line && self.pending.len() < MAX_PENDING {
                        self.pending.push(r);
                    }
                }
            }
            Ok(()) => self.written(records),
        }
    }

    fn write_lines(&mut self, records: &[Record]) -> Result<(), Unrecorded> {
        if let Some(why) = self.view.lock().tampered.clone() {
            return Err(Unrecorded::Tampered(why));
        }
        if self.log.is_none() && !self.open() {
            let why = self.view.lock().unwritable.clone().unwrap_or_default();
            return Err(Unrecorded::Unwritable(why));
        }
        let Some(log) = self.log.as_mut() else {
            return Err(Unrecorded::Unwritable("it is not open".into()));
        };
        let events: Vec<_> = records.iter().map(|r| (&r.event, r.time)).collect();
        let written = log.write_lines(&events);
        self.take_witnessed();
        match written {
            Ok(_) => {
                let Some(log) = self.log.as_ref() else {
                    return Err(Unrecorded::Unwritable("it is not open".into()));
                };
                let anchor = log.anchor();
                let mut v = self.view.lock();
                if v.unwritable.take().is_some() {
                    say!("tapsign agent: the audit log can be written again");
                }
                v.lock_held = false;
                v.head = Some(anchor);
                v.stalled = false;
                Ok(())
            }
            Err(e) if e.is_tampering() => Err(Unrecorded::Tampered(self.tampered(&e))),
            Err(e) => {
                let lock_held = e.is_lock_wait();
                let why = match &e {
                    // The path is in every message that says this.
                    super::AuditError::Io { source, .. } if lock_held => source.to_string(),
                    e => e.to_string(),
                };
                self.unwritable(&why, "written", lock_held);
                match lock_held {
                    true => Err(Unrecorded::LockHeld(why)),
                    false => Err(Unrecorded::Unwritable(why)),
                }
            }
        }
    }

    /// Keep what the log's writer saw of the keystore's records.
    fn take_witnessed(&mut self) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let seen = log.take_witnessed();
        if seen.is_empty() {
            return;
        }
        let mut v = self.view.lock();
        for w in &seen {
            super::ledger::witness(&mut v.witness, w);
        }
    }

    /// The log was tampered with: stop writing to it for good, say so loudly.
    fn tampered(&mut self, e: &super::AuditError) -> String {
        let head = self.log.as_ref().map(AuditLog::checkpoint);
        let head = head.map_or_else(|| "?".to_owned(), |h| h.to_string());
        let msg = format!(
            "{e}. Signatures are withheld: the log this agent wrote ends at {head}; check what is there now with `tapsign audit verify --head {head}`, keep a copy; run `tapsign unlock` once before restarting the agent (its check records in the keystore's manifest the key changes this agent saw, which a restart forgets)"
        );
        say!("tapsign agent: ALERT: {msg}");
        self.log = None;
        let mut v = self.view.lock();
        v.tampered = Some(msg.clone());
        v.head = None;
        v.file = None;
        msg
    }

    /// The lines are in the file: answer who waits only for that, hand the rest to the
    /// syncer, and log the head after a lock or an unlock.
    fn written(&mut self, records: Vec<Record>) {
        self.batches += 1;
        let must_sync = self.flush == Flush::Sync || self.syncer.failing();
        let (mut waiters, mut urgent, mut milestone) = (Vec::new(), false, None);
        for r in records {
            match &r.event {
                AuditEvent::Lock { .. } => (urgent, milestone) = (true, Some("lock")),
                AuditEvent::Unlock { .. } => milestone = Some("unlock"),
                _ => {}
            }
            let signature = matches!(r.event, AuditEvent::Sign { .. });
            match r.ack {
                Some(ack) if signature && must_sync => waiters.push(ack),
                Some(ack) => {
                    let _ = ack.send(Ok(()));
                }
                None => {}
            }
        }
        if let (Some(when), Some(log)) = (milestone, &self.log) {
            // The journal keeps this head where a process running as the user cannot rewrite
            // it (docs/audit.md, "Heads").
            say!("tapsign agent: audit head {} ({when})", log.checkpoint());
        }
        self.syncer.written(self.batches, waiters, urgent);
    }

    /// Catch up with the file: lines other tapsign processes appended, or tampering.
    fn refresh(&mut self) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let refreshed = log.refresh();
        self.take_witnessed();
        let Some(log) = self.log.as_ref() else {
            return;
        };
        match refreshed {
            Ok(()) => {
                let anchor = log.anchor();
                let mut v = self.view.lock();
                v.head = Some(anchor);
                v.stalled = false;
            }
            Err(e) if e.is_tampering() => {
                self.tampered(&e);
            }
            // A read that failed changes nothing the next write would not find out.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Job, one_signer};
    use crate::audit::AuditEvent;
    use std::time::SystemTime;

    fn line(alone: bool) -> Job {
        Job::Record {
            event: AuditEvent::Sign {
                key: "k".into(),
                kind: Default::default(),
                method: "POST".into(),
                path: "/api/v3/order".into(),
                pid: 1,
                exe: "/usr/bin/bot".into(),
            },
            time: SystemTime::now(),
            ack: None,
            alone,
            fold: false,
        }
    }

    /// The writer looks out for the next line only after one lone signer's line: never after
    /// lines queued together, nor after a line whose signer found others waiting.
    #[test]
    fn the_writer_looks_out_for_a_next_line_only_after_a_lone_signer() {
        assert!(one_signer(&[line(true)]));
        assert!(!one_signer(&[line(false)]));
        assert!(!one_signer(&[line(true), line(true)]));
        assert!(!one_signer(&[line(false), line(true)]));
        let (ack, _) = tokio::sync::oneshot::channel();
        assert!(!one_signer(&[Job::Refresh(ack)]));
        assert!(!one_signer(&[]));
    }
}

/// Why an agent does not hold the audit log at `path` (its `status` has no `audit_head`), as
/// one of `status`'s `warnings` says it: the warning [`AuditSink::warnings`] gives for that,
/// found by its own wording, with what was found. Not any warning that names the audit log:
/// the agent's kept notes of earlier checks name it too, and come first (red-team round 26:
/// `key add` quoted a day-old note about another manifest as its reason).
pub fn not_held_reason<'w>(path: &Path, warnings: &'w [String]) -> Option<(&'w str, NotHeld)> {
    let tampered = format!("audit log {} ", path.display());
    let unwritable = format!("the audit log {} cannot be written (", path.display());
    warnings.iter().find_map(|w| {
        if w.starts_with(&tampered) {
            Some((w.as_str(), NotHeld::Tampered))
        } else if w.starts_with(&unwritable) {
            Some((w.as_str(), NotHeld::Unwritable))
        } else {
            None
        }
    })
}

/// What [`not_held_reason`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHeld {
    /// Cut, changed, replaced or moved: the agent writes no more to it, and signs nothing.
    Tampered,
    /// Not open (permissions, a full disk, a lock held): the agent opens it again at its next
    /// line.
    Unwritable,
}
