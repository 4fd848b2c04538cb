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
    /// `unlock`, `token list` and `key list` no longer did).
    pub(super) fn keystore_unread(&self, e: KeystoreError) -> String {
        let why = match e {
            KeystoreError::NotInitialized { .. } => (self.unlocker.keystore())
                .absent(&mut LogAsRead { agent: self })
                .unwrap_or(e),
            e => e,
        };
        why.to_string()
    }

    /// What the audit log records after `anchor`, as this agent last took it in, with what it
    /// saw recorded.
    fn evidence(&self, anchor: &Anchor) -> Evidence {
        let (path, last) = (self.audit.path(), Some(self.audit.vaults_read()));
        let mut out = match self.audit.tampered() {
            // Not to be followed, but still read for the highest generation it records.
            Some(why) => crate::audit::ledger::unanchored_after(path, &why, last),
            // Every read the file the writer holds.
            None => crate::audit::held_to(self.audit.hold(), || {
                crate::audit::ledger::evidence_after(path, anchor, last)
            }),
        };
        out.witness(self.audit.witnessed());
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
        // so that what this agent saw is as new as the file.
        let _ = self.agent.audit.anchor_blocking();
        self.agent.evidence(anchor)
    }

    fn unanchored(&mut self, why: &str) -> Evidence {
        let _ = self.agent.audit.anchor_blocking();
        let (path, last) = (
            self.agent.audit.path(),
            Some(self.agent.audit.vaults_read()),
        );
        let file = self.agent.audit.hold();
        let mut out = crate::audit::held_to(file, || {
            crate::audit::ledger::unanchored_after(path, why, last)
        });
        out.witness(self.agent.audit.witnessed());
        out
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
        self.agent.evidence(anchor)
    }

    fn record(&mut self, _: &LedgerEntry) -> Result<(), String> {
        Err("status records nothing in the audit log".into())
    }
}
