//! One module per command group: `agent` runs the daemon, `local` works on the keystore and
//! audit log directly (no agent needed), `remote` talks to the running agent, `generate`
//! prints shell completions and the manual page.

mod agent;
mod generate;
mod local;
mod remote;
mod tokens;

use tapsign_agent::audit::Checkpoint;
use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::paths::Paths;
use tapsign_proto::AuditHead;

use crate::Failure;
use crate::args::{Cli, Command};

pub fn run(cli: Cli) -> Result<(), Failure> {
    // Generated from the command line's definition alone: no files, no environment needed.
    match &cli.command {
        Command::Completions { shell } => return generate::completions(*shell),
        Command::Man { dir } => return generate::man(dir.as_deref()),
        _ => {}
    }
    let paths = Paths::from_env().map_err(Failure::error)?;
    match cli.command {
        Command::Agent => agent::run(paths),
        Command::Token(t) => tokens::token(&paths, t),
        Command::Keystore(k) => tokens::keystore_cmd(&paths, k),
        Command::Key(k) => local::key(&paths, k),
        Command::Audit { action } => local::audit(&paths, action),
        Command::Policy(p) => local::policy(&paths, p),
        Command::Unlock(u) => remote::unlock(&paths, u),
        Command::Sign(s) => remote::sign(&paths, s),
        Command::Status { json } => remote::status(&paths, json),
        Command::Lock => remote::lock(&paths),
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

/// After a command recorded a change of the keystore in the audit log: a running agent learns
/// of lines other commands append only when it next writes or refreshes, and a line cut off
/// before that would leave no trace in its memory. So the command has the agent take the log
/// in now (`status` refreshes it) and checks that the agent's head includes the line it wrote,
/// before it returns. No agent running: nothing to do.
pub(crate) fn agent_takes_in(paths: &Paths, ledger: &AuditLedger) -> Result<(), Failure> {
    let Some(line) = ledger.written() else {
        return Ok(());
    };
    let name = format!("tapsign-cli/{}", env!("CARGO_PKG_VERSION"));
    let Ok(mut client) = tapsign_proto::client::Client::connect(&paths.socket, &name) else {
        return Ok(());
    };
    let status = client.status().map_err(|e| {
        lost(
            line,
            &format!("the running agent did not answer a status request ({e})"),
        )
    })?;
    match status.audit_head {
        Some(head) if includes(&head, line) => Ok(()),
        Some(head) => Err(lost(
            line,
            &format!(
                "the running agent's record of the log ends at {}:{} without it",
                head.seq, head.hash
            ),
        )),
        None => Err(lost(
            line,
            "the running agent no longer takes the log in (`tapsign status` says why)",
        )),
    }
}

/// The agent's head is at or past the line. Past it, the agent took in lines that continue
/// its chain from where it stood, which is all it can check of a line written since.
fn includes(head: &AuditHead, line: &Checkpoint) -> bool {
    head.seq > line.seq || (head.seq == line.seq && head.hash == line.hash)
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
    fn a_head_before_or_beside_the_line_written_does_not_include_it() {
        let line = Checkpoint {
            seq: 7,
            hash: "ab".into(),
        };
        let head = |seq, hash: &str| AuditHead {
            seq,
            hash: hash.into(),
        };
        assert!(includes(&head(7, "ab"), &line));
        assert!(includes(&head(8, "cd"), &line));
        assert!(!includes(&head(6, "ab"), &line));
        assert!(!includes(&head(7, "cd"), &line));
    }
}
