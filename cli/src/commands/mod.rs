//! One module per command group: `agent` runs the daemon, `local` works on the keystore and
//! audit log directly (no agent needed), `remote` talks to the running agent, `lock` locks it
//! (by SIGHUP when it cannot ask; `held` holds the agent it signals by a pidfd), `generate`
//! prints shell completions and the manual page.

mod agent;
mod generate;
mod held;
mod local;
mod lock;
mod remote;
mod tokens;

use tapsign_agent::audit::Checkpoint;
use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::keystore::Ledger;
use tapsign_agent::paths::Paths;
use tapsign_proto::AuditHead;

/// How the command line names itself to the agent (`hello`), as the agent's log shows it.
pub(crate) const CLIENT_NAME: &str = concat!("tapsign-cli/", env!("CARGO_PKG_VERSION"));

use crate::Failure;
use crate::args::{Cli, Command, KeystoreCommand, TokenCommand};

pub fn run(cli: Cli) -> Result<(), Failure> {
    // Generated from the command line's definition alone: no files, no environment needed.
    match &cli.command {
        Command::Completions { shell } => return generate::completions(*shell),
        Command::Man { dir } => return generate::man(dir.as_deref()),
        _ => {}
    }
    let paths = Paths::from_env().map_err(Failure::error)?;
    // The commands that need a keystore: failing without one, they say whether the audit log
    // records one here (its folder moved aside or deleted).
    let needs_keystore = match &cli.command {
        Command::Token(TokenCommand::Add(_)) => false,
        Command::Token(_)
        | Command::Keystore(_)
        | Command::Key(_)
        | Command::Policy(_)
        | Command::Unlock(_) => true,
        _ => false,
    };
    // The rebuild is what `ManifestGone` advises: its own failure is the news, never that.
    let rebuild = matches!(
        &cli.command,
        Command::Keystore(KeystoreCommand::Rotate {
            rebuild_manifest: true,
            ..
        })
    );
    match dispatch(paths.clone(), cli.command) {
        Err(f) if needs_keystore && said_by_the_keystore(&f) => {
            Err(keystore_gone(&paths, rebuild).unwrap_or(f))
        }
        done => done,
    }
}

/// Whether a failure may be one of a keystore that is not there, to be told as
/// [`keystore_gone`] tells it. Not a usage error, and not a token's: a PIN refused or not
/// given, a token absent, is what the trader must hear, and is said the same with a
/// keystore or without (red-team round 22: a rebuild whose second PIN was not read said
/// `ManifestGone`, which advises that very rebuild).
fn said_by_the_keystore(f: &Failure) -> bool {
    use crate::exit::exit_codes::{TOKEN, USAGE};
    f.exit != USAGE && f.exit != TOKEN
}

/// A command that found no keystore says "enroll a token first"; when the audit log records a
/// keystore here, its folder is gone (moved aside or deleted), and a new keystore would be
/// refused by that record: the way out is a backup (red-team round 20). Read only once a
/// command has failed, so a keystore that is there costs nothing more. `ManifestGone` is not
/// said of a failed `--rebuild-manifest` (`rebuild`): it advises running the rebuild, and a
/// loop is no way out; the rebuild's own failure says what stopped it.
fn keystore_gone(paths: &Paths, rebuild: bool) -> Option<Failure> {
    use tapsign_agent::keystore::KeystoreError;
    let ks = tapsign_agent::keystore::Keystore::new(paths.keystore_dir());
    match ks.absent(&mut AuditLedger::new(&paths.audit_log()))? {
        e @ KeystoreError::Gone { .. } => Some(local::ks_failure(e)),
        e @ KeystoreError::ManifestGone { .. } if !rebuild => Some(local::ks_failure(e)),
        _ => None,
    }
}

fn dispatch(paths: Paths, command: Command) -> Result<(), Failure> {
    match command {
        Command::Agent => agent::run(paths),
        Command::Token(t) => tokens::token(&paths, t),
        Command::Keystore(k) => tokens::keystore_cmd(&paths, k),
        Command::Key(k) => local::key(&paths, k),
        Command::Audit { action } => local::audit(&paths, action),
        Command::Policy(p) => local::policy(&paths, p),
        Command::Unlock(u) => remote::unlock(&paths, u),
        Command::Sign(s) => remote::sign(&paths, s),
        Command::Status { json } => remote::status(&paths, json),
        Command::Lock => lock::lock(&paths),
        Command::Events => remote::events(&paths),
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

/// `TAPSIGN_INSECURE_SOFT_TOKEN=1`: the explicit opt-in to the test-only soft token (the one
/// check, shared with the token itself).
pub(crate) fn soft_allowed() -> bool {
    tapsign_agent::token::soft::insecure_allowed()
}

/// Harden this process before it reads a secret or holds the vault key, as the agent does:
/// not dumpable (no ptrace by other processes of the user, no core dump), core size 0.
/// Failures are warnings: the command still runs.
pub(crate) fn harden() {
    for w in tapsign_agent::harden::harden_process().warnings {
        errln!("tapsign: warning: {}", tapsign_agent::audit::Shown(&w));
    }
}

/// Why the running agent could not be asked ([`reach_agent`]).
enum Unreached {
    /// An agent of this home runs (its pid), but its socket cannot be reached: moved, removed
    /// or replaced.
    Socket(u32, std::io::Error),
    /// Something took the connection but turned the command away (busy, another version),
    /// dropped it or did not answer in time: an agent that may hold the log all the same.
    Unanswered(tapsign_proto::ProtoError),
}

/// A connection to the running agent, for a command that changes the keystore or has just
/// changed it ([`ask_agent_first`], [`agent_takes_in`]). Bounded: an agent that takes the
/// connection and never answers (stopped) must not keep the command waiting for good.
/// `None`: no agent listens (no socket, or nobody behind it) and none of this home's runs.
fn reach_agent(paths: &Paths) -> Result<Option<tapsign_proto::client::Client>, Unreached> {
    let wait = Some(std::time::Duration::from_secs(10));
    match tapsign_proto::client::Client::connect_within(&paths.socket, CLIENT_NAME, wait) {
        Ok(client) => Ok(Some(client)),
        Err(tapsign_proto::ProtoError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            match lock::unreachable_agent(paths) {
                Some(pid) => Err(Unreached::Socket(pid, e)),
                None => Ok(None),
            }
        }
        Err(e) => Err(Unreached::Unanswered(e)),
    }
}

/// What a running agent, asked before a command changes the keystore, vouches for.
pub(crate) struct Vouched {
    /// The vault key its last unlock verified with the audit log readable (none before an
    /// unlock): `key add` seals to no other.
    pub pinned: Option<String>,
    /// The audit log at the path, which holds the agent's head: the command's ledger reads
    /// and writes that file only, and each of its reads must reach that head, else the
    /// command refuses ([`AuditLedger::held_to`]).
    pub ledger: AuditLedger,
}

/// Ask the running agent before a command changes the keystore (`key add`, `key remove`,
/// `token remove`, `keystore rotate` and its rebuild), and refuse, with `unchanged` said
/// (what was not done) and `again` (what to run once fixed), where what it holds says the
/// command would read the wrong log, or a keystore it never checked against the log:
/// - its writer holds no log, or another file than the one at the path (moved aside, replaced,
///   deleted, cut);
/// - the log at the path does not hold the agent's head, the line its writer last wrote or
///   took in (seq and hash), with the chain going on from it to the file's end: a copy of the
///   log taken before that line, another home's log, a log started afresh. Red-team round 26:
///   the copy from before a token's removal, put at the path for `key add` alone, agreed with
///   the keystore from before the removal, and the trader's new secret was sealed to a vault
///   the removed token opens;
/// - its last unlock verified the keystore without reading the log (`log_unread`): that check
///   opens for one session a keystore put back from before a removal or a rotation, and
///   an agent that started with the log unopenable takes whatever file is later at the path as
///   its log, so its head vouches for nothing either (round 26, the same steps).
///
/// This check is made once; the ledger it gives holds every later read of the command to the
/// same file and head, so a log cut in place right after it (and written back a few
/// milliseconds later) makes the command refuse before it changes anything, not read the
/// prefix as the whole record (round 26, recheck).
///
/// No agent running: `None`, and the command holds the keystore to the log alone.
pub(crate) fn ask_agent_first(
    paths: &Paths,
    unchanged: &str,
    again: &str,
) -> Result<Option<Vouched>, Failure> {
    use crate::exit::exit_codes::{DAMAGED, ERROR};
    let log = paths.audit_log();
    let status = reach_agent(paths).and_then(|client| {
        client
            .map(|mut c| c.status().map_err(Unreached::Unanswered))
            .transpose()
    });
    let status = match status {
        Ok(Some(status)) => status,
        Ok(None) => return Ok(None),
        // An agent running whose socket was moved aside: skipping it would skip what it holds.
        Err(Unreached::Socket(pid, e)) => {
            return Err(Failure::new(
                DAMAGED,
                format!(
                    "the agent (pid {pid}) is running, but its socket {} cannot be reached (moved, removed or replaced: {e}), so it cannot be asked which audit log and keystore it checked; {unchanged}. Restart the agent (`systemctl --user restart tapsign-agent`), then {again}",
                    paths.socket.display()
                ),
            ));
        }
        Err(Unreached::Unanswered(e)) => {
            return Err(Failure::new(
                ERROR,
                format!(
                    "the running agent did not answer when asked which audit log and keystore it checked ({e}); {unchanged}. Try again once `tapsign status` answers"
                ),
            ));
        }
    };
    // The status just refreshed the agent's view of the log: one that no longer holds it
    // (another file at its path, found now) is a log the command must not read its record
    // from (red-team round 25, third recheck).
    let Some(head) = status.audit_head else {
        return Err(Failure::new(
            DAMAGED,
            not_held(&log, &status.warnings, unchanged, again),
        ));
    };
    if status.keystore.as_ref().is_some_and(|k| k.log_unread) {
        return Err(Failure::new(
            DAMAGED,
            format!(
                "the running agent's last unlock checked the keystore without reading the audit log {} (it could not be read then), so nothing vouches that the keystore it opened is the newest copy, nor that the log at the path now is the one it wrote; {unchanged}. Unlock once with the log readable at its path (`tapsign unlock`: its check then reads the log; if `tapsign status` says the agent does not hold the log, restart the agent first), then {again}",
                log.display()
            ),
        ));
    }
    let head = Checkpoint {
        seq: head.seq,
        hash: head.hash,
    };
    let held = tapsign_agent::audit::holds(&log, &head).map_err(|why| {
        Failure::new(
            DAMAGED,
            format!(
                "the audit log at {} is not the log the running agent holds, whose record ends at line {}: {why}; {unchanged}. Someone may have put another file there (an older copy of the log, or another keystore's): `tapsign audit verify` and `ls -li` on it tell. Put the agent's log back at its path; if you replaced the log yourself, restart the agent and unlock once, then {again}",
                log.display(),
                head.seq
            ),
        )
    })?;
    Ok(Some(Vouched {
        pinned: (status.keystore)
            .filter(|k| !k.log_unread)
            .map(|k| k.vault_key),
        ledger: AuditLedger::new(&log).held_to(held),
    }))
}

/// The refusal when the running agent does not hold the audit log: the warning of `status`
/// that says why (not any that names the audit log: the agent's kept notes of earlier checks
/// do too, and come first), and the steps in the order `status` gives them. A log cut or
/// replaced is checked, and `tapsign unlock` run once, before the agent is restarted: that
/// unlock's check records in the manifest what the running agent saw, which a restart forgets
/// (red-team round 26: the refusal quoted a day-old note and said to restart first).
fn not_held(log: &std::path::Path, warnings: &[String], unchanged: &str, again: &str) -> String {
    use tapsign_agent::audit;
    let reason = audit::not_held_reason(log, warnings);
    let steps = match reason.map(|(_, kind)| kind) {
        Some(audit::NotHeld::Tampered) => {
            "do as that warning says, in its order: check the log (`tapsign audit verify --head` the head it names), run `tapsign unlock` once, then restart the agent, unlock again"
        }
        Some(audit::NotHeld::Unwritable) => {
            "make the log writable again, run `tapsign unlock` (the agent opens the log again when it next writes to it)"
        }
        None => {
            "`tapsign status` says what is wrong; do what it says, in its order (for a log cut or replaced: check it, run `tapsign unlock` once, then restart the agent and unlock again)"
        }
    };
    format!(
        "the running agent does not hold the audit log {} now{}, so the record the command checks the keystore against cannot be trusted; {unchanged}. Then: {steps}, and {again}",
        log.display(),
        reason
            .map(|(why, _)| format!(": {}", audit::Shown(why)))
            .unwrap_or_default()
    )
}

/// [`ask_agent_first`]'s answer as a command uses it: the vault key the agent pinned, and the
/// ledger to record in (held to the agent's log; with no agent running, the log at the path).
pub(crate) fn agent_vouches(
    paths: &Paths,
    unchanged: &str,
    again: &str,
) -> Result<(Option<String>, AuditLedger), Failure> {
    Ok(match ask_agent_first(paths, unchanged, again)? {
        Some(v) => (v.pinned, v.ledger),
        None => (None, AuditLedger::new(&paths.audit_log())),
    })
}

/// After a command recorded a change of the keystore in the audit log: a running agent learns
/// of lines other commands append only when it next writes or refreshes, and a line cut off
/// before that would leave no trace in its memory. So the command has the agent take the log
/// in now (`status` refreshes it) and checks that the agent's head includes the line it wrote,
/// before it returns. No agent running: nothing to do.
pub(crate) fn agent_takes_in(paths: &Paths, ledger: &mut AuditLedger) -> Result<(), Failure> {
    let Some(written) = ledger.written().cloned() else {
        return Ok(());
    };
    let line = Checkpoint {
        seq: written.seq,
        hash: written.hash.clone(),
    };
    let mut client = match reach_agent(paths) {
        Ok(Some(c)) => c,
        // No agent: nobody holds the log in memory.
        Ok(None) => return Ok(()),
        Err(Unreached::Socket(pid, e)) => {
            return Err(unasked(
                &line,
                &format!(
                    "the agent, pid {pid}, runs, but its socket {} cannot be reached: {e}",
                    paths.socket.display()
                ),
            ));
        }
        Err(Unreached::Unanswered(e)) => return Err(unasked(&line, &e)),
    };
    let status = client.status().map_err(|e| unasked(&line, &e))?;
    let Some(head) = status.audit_head else {
        return Err(turned_away(&line, &status.warnings));
    };
    // The file as it is now, read from the command's line: the line still where it was
    // written, what follows chained on from it. The agent's head must be on that chain.
    let file = ledger.head().map(|a| Checkpoint {
        seq: a.seq,
        hash: a.hash,
    });
    let next_prev = tapsign_agent::audit::since(&paths.audit_log(), &written)
        .ok()
        .filter(|r| r.gap.is_none())
        .and_then(|r| r.lines.into_iter().find(|l| l.seq == head.seq + 1))
        .map(|l| l.prev);
    if includes(&head, &line, file.as_ref(), next_prev.as_deref()) {
        Ok(())
    } else {
        Err(lost(
            &line,
            &format!(
                "the running agent's record of the log ends at {}:{}, which is not the chain the file holds from it",
                head.seq, head.hash
            ),
        ))
    }
}

/// After a command wrote the keystore's manifest (`token add`, `token remove`, `keystore
/// rotate`): the running agent keeps the credentials it found replaced or removed since the
/// last check (`noted`), in `status` and before the next touch, as it keeps what an unlock's
/// check finds: no later check tells of them (red-team round 21). No agent running: nothing
/// to do; one that cannot be told is said, the change being made.
pub(crate) fn agent_keeps(paths: &Paths, notes: &tapsign_agent::keystore::ChangeNotes) {
    let named = |loud: &[(String, String)]| -> Vec<String> {
        (loud.iter())
            .filter(|(n, _)| !n.is_empty())
            .map(|(n, _)| n.clone())
            .take(tapsign_proto::NOTED_MAX)
            .collect()
    };
    let (replaced, removed) = notes.loud.split_at(notes.replaced.min(notes.loud.len()));
    let req = tapsign_proto::NotedRequest {
        replaced: named(replaced),
        removed: named(removed),
    };
    if req.replaced.is_empty() && req.removed.is_empty() {
        return;
    }
    let wait = Some(std::time::Duration::from_secs(10));
    let told = tapsign_proto::client::Client::connect_within(&paths.socket, CLIENT_NAME, wait)
        .and_then(|mut c| c.noted(req));
    match told {
        Ok(()) => {}
        Err(tapsign_proto::ProtoError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) => {}
        Err(e) => errln!(
            "warning: the running agent could not be told of the credential changes above ({e}): its `tapsign status` and touch prompt do not name them"
        ),
    }
}

/// The agent's head is the command's line, or a line after it on the chain the file holds
/// from it: the file's head (`file`), or the line before the one whose `prev` is `next_prev`.
/// A line replaced by several that the agent took in, then put back, is not.
fn includes(
    head: &AuditHead,
    line: &Checkpoint,
    file: Option<&Checkpoint>,
    next_prev: Option<&str>,
) -> bool {
    if head.seq == line.seq {
        return head.hash == line.hash;
    }
    head.seq > line.seq
        && (file.is_some_and(|f| f.seq == head.seq && f.hash == head.hash)
            || next_prev == Some(head.hash.as_str()))
}

/// The agent could not be asked (busy, another version, no answer): nothing says the line
/// was lost, only that the agent has not read it yet.
fn unasked(line: &Checkpoint, e: &dyn std::fmt::Display) -> Failure {
    Failure::new(
        crate::exit::exit_codes::DAMAGED,
        format!(
            "the change was made and recorded (audit log line {}), but the running agent could not be asked to read that line ({e}). Until it has, cutting the line off the log could hide the change from it: run `tapsign status` once the agent answers (it reads the log then), and `tapsign audit verify`",
            line.seq
        ),
    )
}

/// The agent no longer takes the log in (it withholds signatures), and shows no head: what it
/// says is why (`status` warnings). That is not the line lost: an agent turns the log away for
/// what was appended too (more than it takes in from other processes, say), and a rotation of
/// thousands of credentials, whose line passed that bound, was told "the log was cut or
/// rewritten", which `audit verify` contradicted (red-team round 23).
fn turned_away(line: &Checkpoint, warnings: &[String]) -> Failure {
    let said = (warnings.iter())
        .find(|w| w.contains("Signatures are withheld"))
        .map_or_else(
            || "`tapsign status` says why".to_owned(),
            |w| format!("it says: {}", tapsign_agent::audit::Shown(w)),
        );
    Failure::new(
        crate::exit::exit_codes::DAMAGED,
        format!(
            "the change was made and recorded (audit log line {}), but the running agent no longer takes the log in, and withholds signatures ({said}). Run `tapsign audit verify`: if the log is intact and holds line {}, nothing was lost and the agent turned the log away for what it says; otherwise the log was cut or rewritten: keep a copy of it. Either way, do as the agent's message says before restarting it",
            line.seq, line.seq
        ),
    )
}

fn lost(line: &Checkpoint, why: &str) -> Failure {
    Failure::new(
        crate::exit::exit_codes::DAMAGED,
        format!(
            "the change was made, but the audit log lost the line just written to record it (line {}): {why}. The log was cut or rewritten: run `tapsign audit verify`, keep a copy of the log, and unlock only once you know why",
            line.seq
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_that_cannot_be_asked_is_not_said_to_have_lost_the_line() {
        let line = Checkpoint {
            seq: 7,
            hash: "ab".into(),
        };
        let busy = unasked(&line, &"the agent is busy: every connection slot is taken");
        let text = busy.message;
        assert!(
            text.contains("could not be asked") && text.contains("line 7"),
            "{text}"
        );
        assert!(!text.contains("lost"), "{text}");
        assert!(lost(&line, "cut").message.contains("lost the line"));
    }

    /// Red-team round 23: an agent that turned the log away for the bytes appended since its
    /// last line (a rotation's line of thousands of credentials) was said to have lost the
    /// line, "the log was cut or rewritten". It says what the agent said.
    #[test]
    fn an_agent_that_turned_the_log_away_is_quoted_not_said_to_have_lost_the_line() {
        let line = Checkpoint {
            seq: 4994,
            hash: "ab".into(),
        };
        let warnings = [
            "soft token 1 is enrolled".to_owned(),
            "audit log /h/audit.log grew by 1134631 bytes that this agent did not write. Signatures are withheld: ...".to_owned(),
        ];
        let text = turned_away(&line, &warnings).message;
        assert!(
            text.contains("it says: audit log /h/audit.log grew by 1134631 bytes")
                && text.contains("recorded (audit log line 4994)")
                && text.contains("tapsign audit verify"),
            "{text}"
        );
        assert!(!text.contains("lost the line"), "{text}");
        assert!(!text.contains("The log was cut or rewritten"), "{text}");
        let text = turned_away(&line, &[]).message;
        assert!(text.contains("`tapsign status` says why"), "{text}");
    }

    #[test]
    fn a_head_before_or_beside_the_line_written_does_not_include_it() {
        let cp = |seq, hash: &str| Checkpoint {
            seq,
            hash: hash.into(),
        };
        let head = |seq, hash: &str| AuditHead {
            seq,
            hash: hash.into(),
        };
        let line = cp(7, "ab");
        assert!(includes(&head(7, "ab"), &line, Some(&line), None));
        assert!(includes(&head(8, "cd"), &line, Some(&cp(8, "cd")), None));
        assert!(includes(
            &head(8, "cd"),
            &line,
            Some(&cp(9, "ef")),
            Some("cd")
        ));
        assert!(!includes(&head(6, "ab"), &line, Some(&line), None));
        assert!(!includes(&head(7, "cd"), &line, Some(&line), None));
        // Past the line, but not on the chain the file holds from it.
        assert!(!includes(&head(8, "cd"), &line, Some(&cp(8, "ef")), None));
        assert!(!includes(
            &head(8, "cd"),
            &line,
            Some(&cp(9, "ef")),
            Some("xx")
        ));
        assert!(!includes(&head(8, "cd"), &line, None, None));
    }
}
