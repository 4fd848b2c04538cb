//! The agent's part in keeping things from going backwards at rest: the audit log anchored
//! (tampering noticed, signatures withheld, the head shown and logged), and the audit log as
//! the keystore's ledger for the check an unlock runs (docs/audit.md,
//! docs/keystore-format.md).

use tapsign_proto::AuditHead;

use super::Agent;
use crate::audit::AuditLog;
use crate::keystore::{Anchor, Evidence, Ledger, LedgerEntry};

impl Agent {
    /// Why the audit log is no longer trusted, if it was tampered with.
    pub(super) fn audit_tampered(&self) -> Option<String> {
        self.audit_tampered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_tampered(
        &self,
        e: &crate::audit::AuditError,
        head: crate::audit::Checkpoint,
    ) {
        let msg = format!(
            "{e}. Signatures are withheld: the log this agent wrote ends at {head}; check what is there now with `tapsign audit verify --head {head}`, keep a copy, then restart the agent"
        );
        eprintln!("tapsign agent: ALERT: {msg}");
        *self
            .audit_tampered
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(msg);
    }

    /// The audit log's head now (after catching up with lines other tapsign processes added).
    pub(super) fn audit_head(&self) -> Option<AuditHead> {
        if self.audit_tampered().is_some() {
            return None;
        }
        let mut guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        let log = guard.as_mut()?;
        if let Err(e) = log.refresh() {
            if e.is_tampering() {
                self.set_tampered(&e, log.checkpoint());
                *guard = None;
            }
            return None;
        }
        let cp = log.checkpoint();
        Some(AuditHead {
            seq: cp.seq,
            hash: cp.hash,
        })
    }

    /// Say where the chain stands, in the agent's own log (journald, under systemd): a record
    /// of the head kept outside the audit log's folder, at every lock and unlock.
    pub(super) fn log_head(&self, when: &str) {
        if let Some(h) = self.audit_head() {
            eprintln!("tapsign agent: audit head {}:{} ({when})", h.seq, h.hash);
        }
    }

    /// The audit log as the keystore's ledger, for the check an unlock runs.
    pub(crate) fn ledger(&self) -> AgentLedger<'_> {
        AgentLedger { agent: self }
    }
}

/// The agent's audit log as the keystore's [`Ledger`]: records go through [`Agent::audit`],
/// the anchor is the agent's own head.
pub(crate) struct AgentLedger<'a> {
    agent: &'a Agent,
}

impl Ledger for AgentLedger<'_> {
    fn head(&mut self) -> Option<Anchor> {
        self.agent.audit_head()?;
        let guard = self.agent.audit.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(AuditLog::anchor)
    }

    fn since(&mut self, anchor: &Anchor) -> Evidence {
        if let Some(why) = self.agent.audit_tampered() {
            return Evidence::unavailable(why);
        }
        crate::audit::ledger::evidence(&self.agent.paths.audit_log(), anchor)
    }

    fn record(&mut self, entry: &LedgerEntry) -> Result<(), String> {
        match self.agent.audit(crate::audit::ledger::event(entry)) {
            true => Ok(()),
            false => Err("the audit log cannot be written".into()),
        }
    }
}
