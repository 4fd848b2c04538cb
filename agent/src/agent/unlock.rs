//! The async half of `unlock` (the blocking half, the touch, is `crate::unlocker`): the
//! bounds of the new session, one unlock at a time (another is refused while one waits for
//! its touch), and installing (or renewing) the session
//! once the touch came.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tapsign_proto::{EventKind, Response, SessionEvent, UnlockRequest};

use super::Agent;
use crate::audit::AuditEvent;
use crate::clock::format_duration;
use crate::credential::Credential;
use crate::error::AgentError;
use crate::keystore::KeystoreError;
use crate::session::{Bounds, Client, Extend, LockReason, Session};
use crate::unlocker::Chosen;
use crate::unlocker::{Opened, Pending};

impl Agent {
    /// Answer `unlock`. `gone` is set once the client that asked hangs up (the server watches
    /// its connection while the touch is pending): a touch after that opens nothing.
    pub async fn unlock(
        self: &Arc<Self>,
        req: UnlockRequest,
        client: &Client,
        gone: &AtomicBool,
    ) -> Response {
        let before = self.change_notes();
        match self.open_session(req, client, gone).await {
            // The turn is let go once the answer is made (`Turn`).
            Ok((turn, dropped)) => {
                let status = self.status_now().await;
                drop(turn);
                match status {
                    // What an extend dropped comes first: its answer is where the trader
                    // who asked for it reads it.
                    Ok(mut status) => {
                        status.warnings.splice(0..0, dropped);
                        Response::Unlocked(status)
                    }
                    Err(e) => e.response(),
                }
            }
            Err(e) => with_notes(e.response(), &before, &self.change_notes()),
        }
    }

    /// The credential-change notes `status` repeats now, replaced and removed ones first.
    fn change_notes(&self) -> Vec<String> {
        let (mut loud, quiet) = self.unlocker.changes(crate::clock::boot_now());
        loud.extend(quiet);
        loud
    }

    /// Open a session (or, with `extend`, renew the open one) after a touch. With the turn,
    /// what an extend dropped from the session, a sentence each (none for an unlock).
    async fn open_session(
        self: &Arc<Self>,
        mut req: UnlockRequest,
        client: &Client,
        gone: &AtomicBool,
    ) -> Result<(crate::unlocker::Turn<'_>, Vec<String>), AgentError> {
        // Each name once: 6,000 copies of one name held the unlock's turn for seconds while
        // the same credential was opened again and again, and filled its audit line (red-team
        // round 19).
        if let Some(keys) = req.keys.as_mut() {
            let mut seen = std::collections::HashSet::new();
            keys.retain(|k| seen.insert(k.clone()));
        }
        // The decoder refuses an empty list; one built in-process is refused the same way,
        // never read as "every key" (red-team round 20). Past here an empty slice means all.
        if req.keys.as_ref().is_some_and(Vec::is_empty) {
            return Err(AgentError::Malformed(tapsign_proto::EMPTY_KEYS.into()));
        }
        if req.extend && req.keys.is_some() {
            // Told, not ignored: an extend keeps the session's keys.
            return Err(AgentError::Malformed(
                "an extend keeps the session's keys: leave out \"keys\" (an unlock without \"extend\" opens a new session with the keys it names)".into(),
            ));
        }
        if let Some(why) = self.guard.why() {
            return Err(AgentError::Unguarded(why));
        }
        // An extend renews what the session was opened with; the request's values replace
        // only the bounds it names. (The configured defaults may be far wider than what the
        // trader chose at unlock.) Worked out before the turn is taken, so that whoever is
        // refused while this one waits hears what it asks for: a bot running `tapsign unlock`
        // itself is named as `tapsign`, as the trader's own would be (red-team round 19).
        let (opened_with, keeps) = {
            let session = self.session();
            match (req.extend, session.bounds()) {
                (false, _) => (None, Vec::new()),
                (true, Some(b)) => (Some(b), session.key_names()),
                (true, None) => return Err(AgentError::NothingToExtend),
            }
        };
        let secs = |s: Option<u64>| s.map(Duration::from_secs);
        let bounds = self
            .config
            .bounds(
                secs(req.ttl_secs).or(opened_with.map(|b| b.ttl)),
                secs(req.idle_secs).or(opened_with.map(|b| b.idle)),
                req.max_signatures.or(opened_with.map(|b| b.max_signatures)),
            )
            .map_err(AgentError::Bounds)?;
        // An extend names the keys it keeps (those the keystore still holds as the session
        // opened them): "same keys" hid that it renewed one `tapsign key remove` took out
        // (red-team round 23).
        let keys = if req.extend { &keeps[..] } else { names(&req) };
        // A lock while the touch is pending must win over it: counted from here, before the
        // turn is taken, so that whoever is refused meanwhile is told when a lock has doomed
        // it.
        let locks_before = self.locks.load(Ordering::SeqCst);
        let pending = Pending {
            client: client.clone(),
            extend: req.extend,
            asks: crate::notify::asks(req.extend, &bounds, keys),
            locks: locks_before,
        };
        let turn = self
            .unlocker
            .turn(pending)
            .map_err(|p| AgentError::UnlockPending {
                extend: p.extend,
                pid: p.client.pid,
                doomed: self.locks.load(Ordering::SeqCst) != p.locks,
                exe: p.client.exe,
                asks: p.asks,
            });
        let turn = match turn {
            Ok(turn) => turn,
            Err(e) => {
                // On record: a bot asking while the trader's unlock waits (or the other way
                // round) shows in the log, with who asked.
                self.unlock_refused(&e, client).await;
                return Err(e);
            }
        };
        // Everything the touch grants, so the trader sees what a bot asked for: the bounds,
        // and the keys a new session opens.
        let asked = crate::notify::asked(&client.exe, client.pid, req.extend, &bounds, keys);
        let changed = self.unlocker.changed_names(crate::clock::boot_now());
        let asked = crate::notify::with_changes(asked, &changed);
        let extend = req.extend;
        let touched = self.touch(req, keeps, asked).await;
        let opened = match self.after_touch(touched, extend, locks_before, gone) {
            Ok(o) => o,
            Err(e) => {
                if matches!(e, AgentError::AskerGone) {
                    say!(
                        "tapsign agent: a touch came for the unlock pid {} ({}) asked for, which has hung up: nothing was opened",
                        client.pid,
                        crate::audit::Shown(&client.exe)
                    );
                }
                self.unlock_refused(&e, client).await;
                return Err(e);
            }
        };
        turn.touched();
        // Checked again after the touch: what the watchdog saw meanwhile locked no session.
        if let Some(why) = self.guard.why() {
            return Err(AgentError::Unguarded(why));
        }
        let mut dropped = Vec::new();
        if extend {
            dropped = self.extended(opened, bounds, client).await?;
        } else {
            let opened = self.opened(opened, bounds, client, locks_before).await;
            if let Err(e) = &opened {
                self.unlock_refused(e, client).await;
            }
            opened?;
        }
        Ok((turn, dropped))
    }

    /// Put a refused unlock on record when the log can take it; the refusal stands either way.
    async fn unlock_refused(&self, e: &AgentError, client: &Client) {
        let _ = self
            .audit
            .record_refusal(AuditEvent::UnlockRefused {
                code: e.code(),
                reason: e.to_string(),
                pid: client.pid,
                exe: client.exe.clone(),
                repeated: 0,
            })
            .await;
    }

    /// What the touch gave, unless something ended the session meanwhile: a lock counted
    /// since `locks_before` (a SIGHUP or a stop the accept loop has not acted on yet counts
    /// too) refuses it; a deadline passed ends the session an extend would renew; the asker
    /// having hung up (`gone`) refuses it too. Refused, the credentials opened are dropped, and
    /// so wiped.
    fn after_touch(
        &self,
        touched: Result<Opened, AgentError>,
        extend: bool,
        locks_before: u64,
        gone: &AtomicBool,
    ) -> Result<Opened, AgentError> {
        let opened = touched?;
        self.catch_up(self.now());
        if self.locks.load(Ordering::SeqCst) != locks_before {
            return Err(match extend {
                true => AgentError::EndedDuringTouch,
                false => AgentError::LockedDuringTouch,
            });
        }
        if gone.load(Ordering::SeqCst) {
            return Err(AgentError::AskerGone);
        }
        Ok(opened)
    }

    /// The unlocker's touch (and, unless extending, the opening of the keys), on a blocking
    /// thread: it waits for a human.
    /// An extend is given the session's keys (`keeps`): it opens those the keystore holds now.
    async fn touch(
        self: &Arc<Self>,
        req: UnlockRequest,
        keeps: Vec<String>,
        asked: String,
    ) -> Result<Opened, AgentError> {
        let agent = Arc::clone(self);
        let touched = crate::worker::run("tapsign-unlock", move || {
            let touch_needed = |token: &str| {
                say!("tapsign agent: waiting for a touch on {token}");
                agent.notifier.touch_needed(token, &asked)
            };
            let mut ledger = agent.ledger();
            let chosen = Chosen {
                token: req.token.as_deref(),
                pin: req.pin.as_ref(),
            };
            if req.extend {
                (agent.unlocker).touch(&keeps, chosen, &mut ledger, &touch_needed)
            } else {
                (agent.unlocker).open(names(&req), chosen, &mut ledger, &touch_needed)
            }
        })
        .await;
        touched
            .unwrap_or_else(|e| Err(self.worker_failed(&e)))
            .map_err(|e| self.older_than_held_log(e))
    }

    /// A check that found the keystore older than the log, said with what the agent holds:
    /// where its writer no longer holds the file at the path (replaced), the generation it
    /// compared with is the old file's, and a restore of the whole home needs a restart, not
    /// the rebuild the check advises ([`AgentError::OlderThanHeldLog`]).
    fn older_than_held_log(&self, e: AgentError) -> AgentError {
        match e {
            AgentError::Keystore(
                why @ (KeystoreError::OlderThanLog { .. } | KeystoreError::RolledBack { .. }),
            ) if self.audit.tampered().is_some() => AgentError::OlderThanHeldLog {
                why,
                log: self.audit.path().to_owned(),
            },
            e => e,
        }
    }

    /// Renew the open session after the touch of `unlock --extend`, without the keys the
    /// keystore no longer holds as the session opened them (`o.credentials` holds the
    /// session's keys as the keystore holds them now). Returns a sentence for each key
    /// dropped, for the answer.
    async fn extended(
        &self,
        o: Opened,
        bounds: Bounds,
        client: &Client,
    ) -> Result<Vec<String>, AgentError> {
        let now_held = o.credentials;
        // By name, not a scan per key: the closure runs under the session's lock, for each of
        // up to thousands of keys.
        let by_name: std::collections::HashMap<&str, &Credential> =
            now_held.iter().map(|h| (h.name.as_str(), h)).collect();
        let gone = |c: &Credential| match by_name.get(c.name.as_str()) {
            None => Some("removed from the keystore or refused by its check".to_owned()),
            Some(h) if !h.same_as(c) => Some("replaced in the keystore".to_owned()),
            Some(_) => None,
        };
        // The extend's line takes its place under the session's lock, before any signature's
        // made under the new bounds.
        let (queued, dropped) = {
            let now = self.now();
            let mut session = self.session();
            let dropped = match session.extend(bounds, now, &gone) {
                Extend::Renewed { dropped } => dropped,
                // The session ended while the touch was pending.
                Extend::NotOpen => return Err(AgentError::EndedDuringTouch),
                // A deadline passed since `after_touch` looked: ended, as `expire` ends it.
                Extend::Ended(reason) => {
                    self.expiries.fetch_add(1, Ordering::SeqCst);
                    drop(session);
                    self.ended(&reason);
                    return Err(AgentError::EndedDuringTouch);
                }
                Extend::NoneKept { dropped } => {
                    return Err(AgentError::ExtendKeepsNothing(said(&dropped).join("; ")));
                }
            };
            let mut token = format!("{} (extend)", o.opened_by);
            if !dropped.is_empty() {
                let why: Vec<String> = dropped
                    .iter()
                    .map(|(n, why)| format!("{n}: {why}"))
                    .collect();
                let mut why = why.join("; ");
                crate::audit::cap(&mut why, crate::audit::QUOTED_MAX);
                token = format!("{} (extend; dropped {why})", o.opened_by);
            }
            let line = unlock_line(token, session.key_names(), bounds, client);
            (self.audit.queue(line), dropped)
        };
        drop(by_name);
        drop(now_held);
        self.keystore_warnings(o.warnings);
        // The token that opened the session stays the one watched (`Removal::opened_at`),
        // whichever enrolled token this touch came from.
        say!("tapsign agent: session extended with {}", o.opened_by);
        let said = said(&dropped);
        for s in &said {
            say!("tapsign agent: extend: {s}");
        }
        let _ = queued.written().await;
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
        Ok(said)
    }

    /// Install the session an unlock opened. A session it replaces ends as a lock ends it
    /// (its `locked` event and `lock` line come first): bots close their websocket logins on
    /// `locked`, and the log shows where the first session ended. A lock counted since
    /// `locks_before` refuses it here too, under the session's lock: one that came after
    /// `after_touch` looked, while this ran (its agent log lines can wait on a stalled
    /// stderr), found no session to end and was answered "locked", so the session must not
    /// open after it.
    async fn opened(
        &self,
        o: Opened,
        bounds: Bounds,
        client: &Client,
        locks_before: u64,
    ) -> Result<(), AgentError> {
        // Secrets in pages that could not be locked may be swapped out, and a copy in swap
        // outlives the session: nothing opens then. Any process of the user can lower a running
        // agent's RLIMIT_MEMLOCK (prlimit), and the session opened anyway with a warning
        // (red-team round 19). Dropped, the credentials opened are wiped.
        if !o
            .credentials
            .iter()
            .all(crate::credential::Credential::in_locked_memory)
        {
            return Err(AgentError::SecretsNotLocked {
                limit: crate::harden::memlock_limit(),
                at_start: crate::harden::memlock_at_start(),
            });
        }
        self.keystore_warnings(o.warnings);
        self.removal.opened_at(o.reader.clone());
        let names: Vec<String> = o.credentials.iter().map(|c| c.name.clone()).collect();
        let session = Session::unlock(o.credentials, bounds, self.now(), o.opened_by.clone());
        // One swap: no signature falls between the two sessions. The old one is dropped, so
        // its credentials are wiped, before anything is told of its end. Its end is told under
        // the session's lock: a signature that spent its budget and waits to announce that
        // has it announced here, before the new session's `unlocked`, not after it.
        // The unlock's line takes its place in the log under the session's lock too, after
        // the old session's `lock` line and before any line of a signature the new session
        // makes; a line the log cannot take now is written before the next one it takes
        // (`AuditSink`): the log never shows a session only by its signatures (red-team
        // round 18).
        let line = unlock_line(o.opened_by.clone(), names.clone(), bounds, client);
        let queued = {
            let mut current = self.session();
            // `Agent::lock` counts under the session's lock: a lock not counted yet
            // waits for this one, and then ends the new session.
            if self.locks.load(Ordering::SeqCst) != locks_before {
                return Err(AgentError::LockedDuringTouch);
            }
            let old = std::mem::replace(&mut *current, session);
            let replaced = old.is_unlocked();
            drop(old);
            if replaced {
                // Counted as a lock: a signature of the old session still on its way out (its
                // line being written) is withheld, as a lock withholds it (red-team round 18).
                self.locks.fetch_add(1, Ordering::SeqCst);
                self.ended(&LockReason::Replaced);
            } else if self.budget_end.swap(false, Ordering::SeqCst) {
                self.ended(&LockReason::BudgetSpent);
            }
            self.audit.queue(line)
        };
        self.changed.notify_one();
        say!(
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
        // Answered once the line is written, or could not be (then it is written before the
        // next line the log takes, and a signature's line cannot come first).
        let _ = queued.written().await;
        Ok(())
    }
}

/// An unlock's (or extend's) line. The writer logs the chain's head after it.
/// Most of a failed unlock's answer the change notes it found may take (each is bounded, and
/// there are few): the answer must fit one frame.
const NOTES_MAX: usize = 16 * 1024;

/// A failed unlock's answer (`resp`), with the notes of credential changes its keystore check
/// found (in `after`, not in `before`): the check moves the keystore's record on whether the
/// unlock then opens or not, so the next check has nothing to say of them, and the answer of
/// an unlock that failed after the check (secrets that could not be locked, a key asked for
/// that was refused) said nothing of credentials someone else stored (red-team round 21).
fn with_notes(resp: Response, before: &[String], after: &[String]) -> Response {
    let found: Vec<&str> = after
        .iter()
        .filter(|n| !before.contains(n))
        .map(String::as_str)
        .collect();
    match resp {
        Response::Error { code, message } if !found.is_empty() => {
            let mut notes = found.join(". ");
            crate::audit::cap(&mut notes, NOTES_MAX);
            Response::Error {
                code,
                message: format!(
                    "{message}. The keystore's check found (`tapsign status` repeats it for a day): {notes}"
                ),
            }
        }
        resp => resp,
    }
}

/// What an extend says of the keys it dropped (`Extend`), a sentence each.
fn said(dropped: &[(String, String)]) -> Vec<String> {
    dropped
        .iter()
        .map(|(name, why)| {
            format!(
                "key {name:?} was dropped from the session: {why} since the session opened it (`tapsign unlock` opens what the keystore holds now)"
            )
        })
        .collect()
}

/// The keys an unlock names, empty for every key (as the unlocker and the prompts take them).
fn names(req: &UnlockRequest) -> &[String] {
    req.keys.as_deref().unwrap_or_default()
}

fn unlock_line(token: String, keys: Vec<String>, bounds: Bounds, client: &Client) -> AuditEvent {
    AuditEvent::Unlock {
        token,
        keys,
        ttl_secs: bounds.ttl.as_secs(),
        idle_secs: bounds.idle.as_secs(),
        max_signatures: bounds.max_signatures,
        pid: client.pid,
        exe: client.exe.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            ttl: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            max_signatures: 10,
            per_key: None,
        }
    }

    /// What a touch that opened nothing returns.
    fn opened() -> Opened {
        Opened {
            credentials: Vec::new(),
            opened_by: "test".into(),
            reader: None,
            warnings: Vec::new(),
        }
    }

    /// Install a session as an unlock with no lock since its touch does.
    async fn open_one(agent: &Agent) {
        agent
            .opened(opened(), bounds(), &client(), 0)
            .await
            .unwrap();
    }

    fn client() -> Client {
        Client {
            pid: 1,
            exe: "bot".into(),
        }
    }

    /// Red-team round 10: an extend renewed a session whose deadline had passed but that the
    /// reaper (napping up to 5 s, longer after a suspend) had not wiped yet. It ends now.
    #[tokio::test]
    async fn an_extend_does_not_renew_a_session_past_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, boot) = Agent::with_test_clock(dir.path());
        *agent.session() = Session::unlock(Vec::new(), bounds(), agent.now(), "test".into());
        boot.fetch_add(120, Ordering::SeqCst); // past the lifetime, not yet reaped
        let locks = agent.locks.load(Ordering::SeqCst);
        let opened = agent
            .after_touch(Ok(opened()), true, locks, &AtomicBool::new(false))
            .unwrap();
        let e = agent
            .extended(opened, bounds(), &client())
            .await
            .unwrap_err();
        assert!(matches!(e, AgentError::EndedDuringTouch), "{e}");
        assert_eq!(agent.session().lock_reason(), Some(&LockReason::Expired));
    }

    /// Red-team round 23 (A7): an extend touched on another enrolled token moved the removal
    /// watch to that token's reader, so pulling the token that opened the session no longer
    /// locked while the other stayed plugged in. The opening token stays watched.
    #[tokio::test]
    async fn an_extend_on_another_token_keeps_watching_the_one_that_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let at = |reader: &str| Opened {
            reader: Some(reader.into()),
            ..opened()
        };
        agent
            .opened(at("reader A"), bounds(), &client(), 0)
            .await
            .unwrap();
        let locks = agent.locks.load(Ordering::SeqCst);
        let touched = agent
            .after_touch(Ok(at("reader B")), true, locks, &AtomicBool::new(false))
            .unwrap();
        agent.extended(touched, bounds(), &client()).await.unwrap();
        assert_eq!(agent.removal.location().as_deref(), Some("reader A"));
    }

    /// A lock that came after the touch was checked for one, but before the session was
    /// installed (the agent stalled writing its own log to a stopped terminal), found no
    /// session, and `tapsign lock` answered that the session was over; the session then
    /// opened. The lock wins there too: nothing opens, and the unlock says why.
    #[tokio::test]
    async fn a_lock_after_the_touch_before_the_session_is_installed_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let locks = agent.locks.load(Ordering::SeqCst);
        let touched = agent
            .after_touch(Ok(opened()), false, locks, &AtomicBool::new(false))
            .unwrap();
        assert!(
            !agent.lock(LockReason::request(&client())),
            "no session to end yet"
        );
        let e = agent
            .opened(touched, bounds(), &client(), locks)
            .await
            .unwrap_err();
        assert!(matches!(e, AgentError::LockedDuringTouch), "{e}");
        assert!(!agent.session().is_unlocked());
        // Without a lock in between, the same unlock opens.
        let locks = agent.locks.load(Ordering::SeqCst);
        let touched = agent
            .after_touch(Ok(opened()), false, locks, &AtomicBool::new(false))
            .unwrap();
        agent
            .opened(touched, bounds(), &client(), locks)
            .await
            .unwrap();
        assert!(agent.session().is_unlocked());
    }

    /// Red-team round 18 (suspected): an unlock that replaced a session did not count as a
    /// lock, so a signature of the old session whose line was still being written was not
    /// withheld (`Agent::sign` withholds on a change of the count), where a lock withholds it.
    #[tokio::test]
    async fn a_replacing_unlock_counts_as_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let who = client();
        agent.opened(opened(), bounds(), &who, 0).await.unwrap();
        let before = agent.locks.load(Ordering::SeqCst);
        agent
            .opened(opened(), bounds(), &who, before)
            .await
            .unwrap();
        assert_ne!(agent.locks.load(Ordering::SeqCst), before, "replaced");
        // Opening with no session to replace is no lock.
        agent.lock(LockReason::request(&client()));
        let before = agent.locks.load(Ordering::SeqCst);
        agent
            .opened(opened(), bounds(), &who, before)
            .await
            .unwrap();
        assert_eq!(agent.locks.load(Ordering::SeqCst), before);
    }

    /// Red-team round 19: a session ended by its lifetime (or idle time) did not count as a
    /// lock, so a signature whose line was held up across the end (another process holding
    /// the log's lock) left seconds after `status` said the session was over. Every end by a
    /// deadline counts (in `expiries`, which withholds as `locks` does), wherever it is
    /// noticed; it does not refuse an unlock whose touch was pending (nobody locked).
    #[tokio::test]
    async fn a_session_ended_by_a_deadline_counts_as_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, boot) = Agent::with_test_clock(dir.path());
        open_one(&agent).await;
        let before = agent.expiries.load(Ordering::SeqCst);
        agent.catch_up(agent.now());
        assert_eq!(agent.expiries.load(Ordering::SeqCst), before, "still open");
        boot.fetch_add(61, Ordering::SeqCst);
        agent.catch_up(agent.now());
        assert!(!agent.session().is_unlocked());
        let after = agent.expiries.load(Ordering::SeqCst);
        assert_ne!(after, before, "ended by its lifetime");
        // Noticed by the reaper or the watchdog instead; an unlock whose touch was pending
        // meanwhile still opens (nobody locked).
        let locks = agent.locks.load(Ordering::SeqCst);
        open_one(&agent).await;
        boot.fetch_add(61, Ordering::SeqCst);
        let touched = agent
            .after_touch(Ok(opened()), false, locks, &AtomicBool::new(false))
            .unwrap();
        assert_ne!(
            agent.expiries.load(Ordering::SeqCst),
            after,
            "ended by its idle time"
        );
        agent
            .opened(touched, bounds(), &client(), locks)
            .await
            .unwrap();
        assert!(agent.session().is_unlocked());
    }

    /// Red-team round 19: any process of the user can lower a running agent's locked-memory
    /// limit (`prlimit`), and the next session opened with its secrets in pages that can be
    /// swapped out (and stay in swap after the lock), with only a warning. Nothing opens.
    #[tokio::test]
    async fn an_unlock_whose_secrets_are_not_locked_in_memory_opens_nothing() {
        use crate::credential::{Credential, Exchange};
        use crate::secret::{SecretBytes, SecretString};
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let cred = |name: &str| Credential {
            name: name.into(),
            exchange: Exchange::Binance,
            api_key: SecretString::new("ak".into()),
            secret: SecretBytes::from_slice(b"sk"),
            passphrase: None,
        };
        let locked = cred("a");
        crate::harden::FAIL_MLOCK.with(|f| f.set(true));
        let swappable = cred("b");
        crate::harden::FAIL_MLOCK.with(|f| f.set(false));
        assert!(locked.in_locked_memory() && !swappable.in_locked_memory());
        let touched = Opened {
            credentials: vec![locked, swappable],
            ..opened()
        };
        let e = agent
            .opened(touched, bounds(), &client(), 0)
            .await
            .unwrap_err();
        assert!(matches!(e, AgentError::SecretsNotLocked { .. }), "{e}");
        assert!(e.to_string().contains("nothing was opened"), "{e}");
        assert!(!agent.session().is_unlocked());
        let touched = Opened {
            credentials: vec![cred("a")],
            ..opened()
        };
        if touched.credentials[0].in_locked_memory() {
            agent.opened(touched, bounds(), &client(), 0).await.unwrap();
            assert!(agent.session().is_unlocked());
        }
    }

    /// Red-team round 21: an unlock that failed after its check moved the keystore's record on
    /// without saying what the check found; its error carries the new notes now, only those.
    #[test]
    fn a_failed_unlock_carries_the_change_notes_its_check_found() {
        let before = vec!["an old note".to_owned()];
        let after = vec![
            "an old note".to_owned(),
            "2 credentials were stored".to_owned(),
        ];
        let failed = || {
            AgentError::SecretsNotLocked {
                limit: Some(8192),
                at_start: Some(8192),
            }
            .response()
        };
        match with_notes(failed(), &before, &after) {
            Response::Error { code, message } => {
                assert_eq!(code, tapsign_proto::ErrorCode::Internal);
                assert!(
                    message.ends_with(
                        "The keystore's check found (`tapsign status` repeats it for a day): 2 credentials were stored"
                    ),
                    "{message}"
                );
                assert!(!message.contains("an old note"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Nothing new: the answer as it was.
        match (with_notes(failed(), &after, &after), failed()) {
            (Response::Error { message: a, .. }, Response::Error { message: b, .. }) => {
                assert_eq!(a, b)
            }
            other => panic!("{other:?}"),
        }
    }

    /// An unlock replacing an open session told subscribers only `unlocked`: the old session
    /// ends with `locked` (reason `Replaced`, code `locked`) before the new one's `unlocked`.
    #[tokio::test]
    async fn an_unlock_replacing_a_session_ends_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let mut events = agent.subscribe();
        open_one(&agent).await;
        assert_eq!(events.recv().await.unwrap().event, EventKind::Unlocked);
        open_one(&agent).await;
        let e = events.recv().await.unwrap();
        assert_eq!(e.event, EventKind::Locked, "{e:?}");
        assert_eq!(e.reason, Some(LockReason::Replaced.to_string()));
        assert_eq!(e.code, Some(tapsign_proto::ErrorCode::Locked));
        assert_eq!(events.recv().await.unwrap().event, EventKind::Unlocked);
        assert!(agent.session().is_unlocked());
    }

    /// A signature that spent the budget announced the end after its line was written; an
    /// unlock replacing the session in between was told `unlocked`, and then the stale
    /// `locked` came, reporting the new session locked. The unlock announces it now, first.
    #[tokio::test]
    async fn a_budget_end_pending_when_an_unlock_replaces_the_session_is_told_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, _boot) = Agent::with_test_clock(dir.path());
        let mut events = agent.subscribe();
        open_one(&agent).await;
        assert_eq!(events.recv().await.unwrap().event, EventKind::Unlocked);
        // As a signature that spent the budget leaves it: locked, the end not told yet.
        agent.session().lock(LockReason::BudgetSpent);
        agent.budget_end.store(true, Ordering::SeqCst);
        open_one(&agent).await;
        let e = events.recv().await.unwrap();
        assert_eq!(e.event, EventKind::Locked, "{e:?}");
        assert_eq!(e.reason, Some(LockReason::BudgetSpent.to_string()));
        assert_eq!(events.recv().await.unwrap().event, EventKind::Unlocked);
        // The signature's own announcement then finds it told: nothing more.
        agent.announce_budget_end();
        assert!(events.try_recv().is_err());
        assert!(agent.session().is_unlocked());
        // Without a replacement, the signature tells it.
        agent.session().lock(LockReason::BudgetSpent);
        agent.budget_end.store(true, Ordering::SeqCst);
        agent.announce_budget_end();
        assert_eq!(events.recv().await.unwrap().event, EventKind::Locked);
    }
}
