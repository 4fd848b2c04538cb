//! The agent's part in keeping things from going backwards at rest: the audit log's head in
//! `status` (the sink keeps the log anchored: tampering noticed, signatures withheld, the head
//! logged), and the audit log as the keystore's ledger for the check an unlock runs
//! (docs/audit.md, docs/keystore-format.md).

use tapsign_proto::AuditHead;

use super::Agent;
use crate::keystore::{Anchor, Evidence, KeystoreError, Ledger, LedgerEntry};

impl Agent {
    /// The audit log's head, as of the last write or refresh (none while the log is not open
    /// or no longer trusted). The sink's writer logs it after every lock and unlock too.
    pub(super) fn audit_head(&self) -> Option<AuditHead> {
        self.audit.head().map(|cp| AuditHead {
            seq: cp.seq,
            hash: cp.hash,
        })
    }

    /// The audit log as the keystore's ledger, for the check an unlock runs.
    pub(crate) fn ledger(&self) -> AgentLedger<'_> {
        AgentLedger { agent: self }
    }

    /// What `status` says of a keystore it cannot read (`e`): as the CLI says it. One that is
    /// not there, where the audit log records one, is named gone (its folder) or its
    /// manifest.json missing, never "enroll a token first": `token add` is refused by that
    /// record (red-team round 22: `status` still said it with manifest.json deleted, after
    /// `unlock`, `token list` and `key list` no longer did). One this agent verified since it
    /// started (status's `keystore` line) is named so: its folder was moved or deleted under
    /// the running agent, and "enroll a token first" (the log emptied too) or "start over with
    /// `tapsign token add`", printed beside that line, contradicted it (red-team round 27).
    pub(super) fn keystore_unread(&self, e: KeystoreError) -> String {
        let why = match e {
            KeystoreError::NotInitialized { .. } => (self.unlocker.keystore())
                .absent(&mut LogAsRead { agent: self })
                .unwrap_or(e),
            e => e,
        };
        match (&why, self.unlocker.verified()) {
            (
                KeystoreError::NotInitialized { dir } | KeystoreError::Gone { dir, .. },
                Some(verified),
            ) => {
                let vault =
                    crate::keystore::key_tag(&verified.vault_key).unwrap_or_else(|| "?".into());
                format!(
                    "the keystore this agent verified (vault {vault}, generation {}) is no longer in {}: its folder was moved or deleted while the agent runs. Put it back (moved aside, it may still be beside it; else from a backup); until then no unlock opens it, and a session open now lasts until it ends or is locked. If you are starting over on purpose, stop the agent first (`systemctl --user stop tapsign-agent`), move the audit log aside, then add the token again",
                    verified.generation,
                    dir.display()
                )
            }
            _ => why.to_string(),
        }
    }

    /// What the audit log records after `anchor`, as this agent last took it in, with what it
    /// saw recorded. With `head`, where the writer's file stood just before: a read that
    /// found the file shorter makes the evidence unread ([`crate::audit::held_to_head`]).
    fn evidence(&self, anchor: &Anchor, head: Option<&Anchor>) -> Evidence {
        let (path, last) = (self.audit.path(), Some(self.audit.vaults_read()));
        let mut out = match self.audit.tampered() {
            // Not to be followed, but still read for the highest generation it records.
            Some(why) => crate::audit::ledger::unanchored_after(path, &why, last),
            None => self.read_held(head, || {
                crate::audit::ledger::evidence_after(path, anchor, last)
            }),
        };
        out.witness(self.audit.witnessed());
        out
    }

    /// `read` of the log, each of its reads held to the file the writer holds and, with
    /// `head` (where the writer's file stood just before), required to reach it: a read that
    /// found the file shorter makes the evidence unread ([`crate::audit::held_to_head`]). The
    /// one rule for the agent's check, whatever it reads.
    fn read_held(&self, head: Option<&Anchor>, read: impl FnOnce() -> Evidence) -> Evidence {
        let (mut out, short) = crate::audit::held_to_head(self.audit.hold(), head, read);
        out.unread |= short;
        out
    }
}

/// The agent's audit log as the keystore's [`Ledger`]: records go through the agent's sink,
/// the anchor is the agent's own head. Used on the unlock's blocking thread: it waits for the
/// sink's writer.
pub(crate) struct AgentLedger<'a> {
    agent: &'a Agent,
}

impl Ledger for AgentLedger<'_> {
    fn head(&mut self) -> Option<Anchor> {
        self.agent.audit.anchor_blocking()
    }

    fn since(&mut self, anchor: &Anchor) -> Evidence {
        // Take in what other tapsign commands appended first (checked to continue the chain),
        // so that what this agent saw is as new as the file, and every read must get there.
        let head = self.agent.audit.anchor_blocking();
        crate::disk::interleave("check: the log's head taken, before the reads");
        self.agent.evidence(anchor, head.as_ref())
    }

    fn unanchored(&mut self, why: &str) -> Evidence {
        let head = self.agent.audit.anchor_blocking();
        let (path, last) = (
            self.agent.audit.path(),
            Some(self.agent.audit.vaults_read()),
        );
        let mut out = self.agent.read_held(head.as_ref(), || {
            crate::audit::ledger::unanchored_after(path, why, last)
        });
        out.witness(self.agent.audit.witnessed());
        out
    }

    /// The highest generation the agent's reads of the log found recorded, its start-up read
    /// among them: a check does not take a keystore older than that, whatever its own reads
    /// find (red-team round 26, part 2).
    fn floor(&mut self) -> u64 {
        let (path, reads) = (self.agent.audit.path(), self.agent.audit.vaults_read());
        crate::audit::held_to(self.agent.audit.hold(), || reads.highest(path)).unwrap_or(0)
    }

    fn record(&mut self, entry: &LedgerEntry) -> Result<(), String> {
        let event = crate::audit::ledger::event(entry);
        self.agent
            .audit
            .record_blocking(event)
            .map_err(|e| e.to_string())
    }
}

/// The audit log as `status` reads it: as the agent last took it in (`status_now` has it
/// refreshed first), without waiting on the sink's writer, which `status` must not do (it may
/// run on the async runtime); it records nothing.
struct LogAsRead<'a> {
    agent: &'a Agent,
}

impl Ledger for LogAsRead<'_> {
    fn head(&mut self) -> Option<Anchor> {
        None
    }

    fn since(&mut self, anchor: &Anchor) -> Evidence {
        self.agent.evidence(anchor, None)
    }

    fn record(&mut self, _: &LedgerEntry) -> Result<(), String> {
        Err("status records nothing in the audit log".into())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use crate::audit::AuditLog;
    use crate::audit::tests_anchor::vault_line;
    use crate::keystore::{Anchor, Ledger};

    /// Red-team round 26, part 2 (F1): a freshly started agent's log, recording a rotation
    /// (vault 1, then vault 2), cut in place to its prefix from before the rotation, or to
    /// nothing, after the check took the writer's head and before its reads, and written back
    /// after them. The check read the prefix as the whole record: the vaults the agent read at
    /// its start were dropped, nothing newer than the pre-rotation manifest was found, and that
    /// keystore opened and signed. Now the reading is unread, the vaults read at the start
    /// stand, and so does the generation (the floor of the check).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_whose_reads_find_the_log_cut_in_place_is_unread() {
        for cut_to_nothing in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let paths = crate::paths::Paths::under(dir.path(), dir.path().join("agent.sock"));
            let path = paths.audit_log();
            let mut log = AuditLog::open(&path).unwrap();
            log.append(&vault_line(1)).unwrap();
            let old_anchor = log.anchor();
            let before = std::fs::read(&path).unwrap();
            log.append(&vault_line(2)).unwrap();
            drop(log);
            let whole = std::fs::read(&path).unwrap();
            let agent = super::Agent::new(paths, crate::config::Config::default(), false);
            let checked = tokio::task::spawn_blocking(move || {
                let file = agent.audit.hold();
                crate::audit::held_to(file, || agent.audit.read_vaults());
                let put = move |bytes: &[u8]| {
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    f.set_len(0).unwrap();
                    f.write_all_at(bytes, 0).unwrap();
                };
                let cut = match cut_to_nothing {
                    true => Vec::new(),
                    false => before,
                };
                let put_cut = put.clone();
                crate::disk::INTERLEAVE.with(|i| {
                    i.borrow_mut().push((
                        "check: the log's head taken, before the reads",
                        Box::new(move || put_cut(&cut)),
                    ))
                });
                let mut ledger = agent.ledger();
                let ev = ledger.since(&old_anchor);
                put(&whole);
                let floor = ledger.floor();
                (ev, floor, agent.ledger().since(&Anchor::genesis()))
            })
            .await
            .unwrap();
            let (ev, floor, after) = checked;
            let vaults = [1, 2].map(|n| crate::keystore::numbered_vault(n).0);
            assert!(ev.unread, "cut to nothing: {cut_to_nothing}: {ev:?}");
            assert_eq!(ev.recorded_vaults, vaults, "{ev:?}");
            assert_eq!(floor, 2);
            // Written back: read on, whole.
            assert!(!after.unread, "{after:?}");
            assert_eq!(after.recorded_vaults, vaults);
            assert_eq!(after.latest_generation, Some(2));
        }
    }
}
