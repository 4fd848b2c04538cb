//! The syncer: a thread of its own that `fdatasync`s the log behind the writer, so a slow or
//! stuck disk holds up only what must wait for it (a signature in `sync` mode), never the
//! writer, `status`, `lock` or the async workers.
//!
//! The writer counts its writes (`written`: one per batch) and tells the syncer; the syncer
//! syncs everything written so far in one call and records how far that reached (`synced`).
//! Whoever waits for a sync waits for a write count: every signature written while one sync
//! runs is covered by the next (group commit). docs/audit.md, "Durability", says when a sync
//! happens and what a failed one does.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::sink::{Ack, SyncFn, Unrecorded, View};

/// The state the writer and the syncer share.
pub(super) struct Syncer {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// A second descriptor on the open log (none until it opens).
    file: Option<Arc<File>>,
    /// Writes (batches) done, and how many of them the last good sync covered.
    written: u64,
    synced: u64,
    /// Who waits for which write to be synced, in write order.
    waiters: Vec<(u64, Ack)>,
    /// Sync now rather than at the interval: a lock, shutdown.
    urgent: bool,
    /// The writer stops: one last sync, then the thread ends.
    closing: bool,
    /// The last sync failed (and why); cleared by the next that succeeds.
    failed: Option<String>,
    last_attempt: Option<Instant>,
    /// The syncer waits for something to be written (not for the interval): a write must
    /// wake it. While it waits for the interval, writes need not: it syncs them when it wakes.
    idle: bool,
}

impl Syncer {
    pub(super) fn new() -> Arc<Syncer> {
        Arc::new(Syncer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log opened (again): sync this descriptor from now on.
    pub(super) fn set_file(&self, file: File) {
        self.lock().file = Some(Arc::new(file));
    }

    /// A sync failed and none has succeeded since: signatures must wait for one.
    pub(super) fn failing(&self) -> bool {
        self.lock().failed.is_some()
    }

    /// The writer finished write number `ticket`; `waiters` wait for it to be synced.
    pub(super) fn written(&self, ticket: u64, waiters: Vec<Ack>, urgent: bool) {
        let mut st = self.lock();
        st.written = st.written.max(ticket);
        // A wake-up costs a context switch per signature: only when the syncer must act.
        let wake = st.idle || urgent || !waiters.is_empty();
        st.waiters.extend(waiters.into_iter().map(|a| (ticket, a)));
        st.urgent |= urgent;
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Ask for the last sync and the thread's end (it returns once that sync was tried).
    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }

    /// The syncer thread: sync when there is something to sync and it is due.
    pub(super) fn run(&self, every: Duration, sync: SyncFn, view: Arc<View>) {
        let mut st = self.lock();
        loop {
            if st.written <= st.synced {
                if st.closing {
                    break;
                }
                st.idle = true;
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                st.idle = false;
                continue;
            }
            let due = match st.last_attempt {
                _ if st.urgent || st.closing || !st.waiters.is_empty() => None,
                None => None,
                Some(t) => (t + every).checked_duration_since(Instant::now()),
            };
            if let Some(wait) = due {
                st = self
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            let target = st.written;
            // Set before this sync started: the writer is done, so it covers everything.
            let last = st.closing;
            st.urgent = false;
            let file = st.file.clone();
            drop(st);
            let result = match &file {
                Some(f) => sync(f).map_err(|e| e.to_string()),
                None => Err("the audit log is not open".to_owned()),
            };
            st = self.lock();
            st.last_attempt = Some(Instant::now());
            let (outcome, acks) = self.settle(&mut st, target, result);
            drop(st);
            // `status` shows the outcome before anyone it answers can ask.
            view.synced(outcome);
            for (ack, answer) in acks {
                let _ = ack.send(answer);
            }
            st = self.lock();
            if last {
                // One last try at shutdown; a disk that fails it is reported, not retried.
                break;
            }
        }
        for (_, ack) in st.waiters.drain(..) {
            let _ = ack.send(Err(Unrecorded::Stopped));
        }
    }

    /// Record a sync's result; the answers for those it covered, to send once it is shown.
    fn settle(
        &self,
        st: &mut State,
        target: u64,
        result: Result<(), String>,
    ) -> (Synced, Vec<Answer>) {
        let covered = st.waiters.partition_point(|(t, _)| *t <= target);
        let acks = st.waiters.drain(..covered).map(|(_, a)| a);
        match result {
            Ok(()) => {
                st.synced = st.synced.max(target);
                let answers = acks.map(|a| (a, Ok(()))).collect();
                let recovered = st.failed.take();
                (Synced::Ok { recovered }, answers)
            }
            Err(why) => {
                let answer = Err(Unrecorded::Unsynced(why.clone()));
                let answers = acks.map(|a| (a, answer.clone())).collect();
                let first = st.failed.is_none();
                st.failed = Some(why.clone());
                (Synced::Failed { why, first }, answers)
            }
        }
    }
}

/// A waiter and what it is told.
type Answer = (Ack, Result<(), Unrecorded>);

/// What a sync did, for the sink's view (status, the agent's log).
pub(super) enum Synced {
    Ok { recovered: Option<String> },
    Failed { why: String, first: bool },
}
