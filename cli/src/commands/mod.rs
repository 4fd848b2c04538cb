//! One module per command group: `agent` runs the daemon, `local` works on the keystore and
//! audit log directly (no agent needed), `remote` talks to the running agent, `generate`
//! prints shell completions and the manual page.

mod agent;
mod generate;
mod local;
mod remote;
mod tokens;

use tapsign_agent::paths::Paths;

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
