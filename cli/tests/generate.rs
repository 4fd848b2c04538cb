//! `tapsign completions` and `tapsign man` come from the clap definitions: each names every
//! command this build has, so a new command cannot be left out of them.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

use clap::CommandFactory;
use tapsign_cli::args::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_tapsign");

/// Every command path, like ["token", "add"], from the parser's own definition.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

fn tapsign(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "tapsign {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_definition_has_the_commands_the_docs_name() {
    // Guards the walk below against finding nothing.
    let paths = command_paths();
    for want in [
        &["agent"][..],
        &["token", "add"],
        &["key", "remove"],
        &["unlock"],
        &["sign"],
        &["status"],
        &["lock"],
        &["events"],
        &["audit", "verify"],
        &["completions"],
        &["man"],
    ] {
        assert!(
            paths.iter().any(|p| p == want),
            "{want:?} missing from {paths:?}"
        );
    }
}

#[test]
fn completions_name_every_command_in_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = tapsign(&["completions", shell]);
        for path in command_paths() {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "{shell} completion lacks {path:?}"
            );
        }
        assert!(script.contains("max-signatures"), "{shell}: flags too");
    }
}

#[test]
fn the_bash_completion_loads_and_completes_commands() {
    let script = tapsign(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tapsign");
    std::fs::write(&file, script).unwrap();
    // Source it, then ask it to complete `tapsign to<TAB>` the way bash would.
    let probe = format!(
        "source {}; COMP_WORDS=(tapsign to); COMP_CWORD=1; _tapsign tapsign to tapsign; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.trim(), "token", "{out:?}");
}

#[test]
fn the_man_page_lists_every_command() {
    let page = tapsign(&["man"]);
    assert!(page.contains(".TH tapsign 1"), "{page}");
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        // roff escapes the dash: tapsign\-unlock(1)
        let entry = format!("tapsign\\-{}(1)", path[0]);
        assert!(page.contains(&entry), "man page lacks {entry}");
    }
    // The getting-started lines and the exit codes (the help's closing text) are in it too,
    // line for line.
    assert!(page.contains(".SH EXAMPLES\n.nf\n"), "{page}");
    assert!(
        page.contains("  tapsign lock  "),
        "an example line kept as is: {page}"
    );
    assert!(page.contains("Exit codes: 0 ok"), "{page}");
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("man1");
    tapsign(&["man", "--dir", target.to_str().unwrap()]);
    // The main page is the one `tapsign man` prints.
    assert_eq!(
        std::fs::read_to_string(target.join("tapsign.1")).unwrap(),
        tapsign(&["man"])
    );
    for path in command_paths() {
        let file = target.join(format!("tapsign-{}.1", path.join("-")));
        let page =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(page.contains(".TH tapsign-"), "{}", file.display());
    }
}
