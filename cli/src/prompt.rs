//! Reading secrets: a no-echo prompt on a terminal, one field per line otherwise. Never argv.

use std::io::{BufRead, Write};

use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
use tapsign_agent::credential::Exchange;
use tapsign_agent::secret::SecretString;
use zeroize::Zeroize;

use crate::Failure;

/// Reads secret fields from stdin.
pub struct SecretReader {
    tty: bool,
    lines: std::io::StdinLock<'static>,
}

impl SecretReader {
    pub fn new() -> Self {
        SecretReader {
            tty: isatty(std::io::stdin()),
            lines: std::io::stdin().lock(),
        }
    }

    /// Read one field: prompts without echo on a terminal, else takes the next line.
    pub fn field(&mut self, label: &str) -> Result<SecretString, Failure> {
        let mut line = String::new();
        if self.tty {
            eprint!("{label}: ");
            let _ = std::io::stderr().flush();
            let restore = tcgetattr(std::io::stdin()).ok();
            if let Some(mut t) = restore.clone() {
                t.local_modes.remove(LocalModes::ECHO);
                let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
            }
            let r = self.lines.read_line(&mut line);
            if let Some(t) = restore {
                let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
            }
            eprintln!();
            r.map_err(|e| Failure::error(format!("cannot read the {label}: {e}")))?;
        } else {
            self.lines
                .read_line(&mut line)
                .map_err(|e| Failure::error(format!("cannot read the {label} from stdin: {e}")))?;
        }
        let value = line.trim_end_matches(['\n', '\r']).to_owned();
        line.zeroize();
        if value.trim().is_empty() {
            let mut value = value;
            value.zeroize();
            let how = if self.tty {
                "type it at the prompt"
            } else {
                "give one field per line on stdin"
            };
            return Err(Failure::error(format!("the {label} is empty: {how}")));
        }
        Ok(SecretString::new(value))
    }
}

/// Read a credential's fields for `exchange` (API key, secret, then any passphrase), one per
/// line; a PEM key may span lines. On a terminal the input is not echoed.
pub fn read_credential(exchange: Exchange) -> Result<Vec<SecretString>, Failure> {
    let stdin = std::io::stdin();
    let tty = isatty(&stdin);
    let restore = if tty {
        eprintln!(
            "Enter the {exchange} credential, one field per line (nothing is shown): {}.",
            exchange.fields().join(", then ")
        );
        let saved = tcgetattr(&stdin).ok();
        if let Some(mut t) = saved.clone() {
            t.local_modes.remove(LocalModes::ECHO);
            let _ = tcsetattr(&stdin, OptionalActions::Now, &t);
        }
        saved
    } else {
        None
    };
    let fields = exchange.read_fields(&mut stdin.lock());
    if let Some(t) = restore {
        let _ = tcsetattr(&stdin, OptionalActions::Now, &t);
    }
    fields.map_err(|e| {
        let how = if tty {
            "type each field at the prompt"
        } else {
            "give one field per line on stdin"
        };
        Failure::error(format!("{e} ({how})"))
    })
}
