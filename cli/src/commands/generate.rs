//! `tapsign completions SHELL` and `tapsign man`: generated from the clap definitions in
//! `args.rs`, so they always list exactly the commands and flags this build has.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::Failure;
use crate::args::{AFTER_HELP, Cli};

const BIN: &str = "tapsign";

pub fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    crate::out::stdout_bytes(&out)
}

pub fn man(dir: Option<&Path>) -> Result<(), Failure> {
    let cmd = Cli::command().name(BIN);
    match dir {
        None => {
            let out = main_page(cmd)
                .map_err(|e| Failure::error(format!("cannot render the manual page: {e}")))?;
            crate::out::stdout_bytes(&out)
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                Failure::error(format!(
                    "cannot create {}: {e}; pick a folder you can write",
                    dir.display()
                ))
            })?;
            let failed = |e: std::io::Error| {
                Failure::error(format!(
                    "cannot write the manual pages into {}: {e}",
                    dir.display()
                ))
            };
            clap_mangen::generate_to(cmd.clone(), dir).map_err(failed)?;
            // The main page as `tapsign man` prints it, in place of the plain rendering.
            std::fs::write(
                dir.join(format!("{BIN}.1")),
                main_page(cmd).map_err(failed)?,
            )
            .map_err(failed)
        }
    }
}

/// tapsign(1): clap_mangen's sections, but the help's closing text (getting started, files,
/// exit codes) kept line for line in EXAMPLES and NOTES instead of reflowed into one paragraph.
fn main_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    let (examples, notes) = AFTER_HELP.split_once("\n\n").unwrap_or((AFTER_HELP, ""));
    let examples = examples
        .strip_prefix("Getting started:\n")
        .unwrap_or(examples);
    for (title, text) in [("EXAMPLES", examples), ("NOTES", notes)] {
        writeln!(out, ".SH {title}\n.nf")?;
        for line in text.lines() {
            writeln!(out, "{}", roff_line(line))?;
        }
        writeln!(out, ".fi")?;
    }
    writeln!(
        out,
        ".SH \"SEE ALSO\"\nThe documentation in docs/ of the source tree: cli.md (every command and exit code), protocol.md (for bot authors), screen\\-lock.md, remote\\-bots.md."
    )?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// One line of literal text for roff: backslashes and dashes escaped, and a line that would
/// start with a control character protected.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
