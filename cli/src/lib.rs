//! The `tapsign` command line. `main` parses flags into [`args::Cli`], [`run`] dispatches to
//! one module per command group, and every failure becomes a [`Failure`] with a documented
//! exit code (docs/cli.md).

#[macro_use]
mod out;
pub mod args;
mod commands;
mod exit;
mod prompt;

pub use exit::{Failure, exit_codes};

use clap::Parser;
use std::process::ExitCode;

/// Parse the command line, run it, print any error, and return the exit code.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.reader_gone => ExitCode::SUCCESS,
        Err(f) => {
            errln!("tapsign: {}", f.message);
            ExitCode::from(f.exit)
        }
    }
}
