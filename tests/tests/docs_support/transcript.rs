//! Console transcripts from the docs, run for real. The format is the one the Rust CLI
//! ecosystem's snapshot testers (trycmd, snapbox) read:
//!
//! ```text
//! $ tapsign sign binance-main --method GET --path /api/v3/account
//! ? 4
//! tapsign: the agent is locked: run `tapsign unlock` [locked]
//! ```
//!
//! `$ ` starts a command (a line ending in `\` continues it, on a line that may start with the
//! continuation prompt `> `); `? N` right after it is the exit
//! status it must have (0 when absent); the lines up to the next command are its output,
//! stdout and stderr together as a terminal shows them. In the output `[..]` matches any
//! text within a line, and a line `...` any number of lines. A command ending in `&` is
//! started in the background, like the shell would, and stopped when the sandbox goes.
//!
//! Commands run under bash in a sandbox: a private `TAPSIGN_HOME`, `TAPSIGN_SOCK` and `HOME`,
//! the soft token allowed, the `tapsign` under test first on `PATH`, no desktop buses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One command of a transcript and what it must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The line of the `$`, from 1 within the block.
    pub line: usize,
    pub command: String,
    pub status: i32,
    pub output: Vec<String>,
}

impl Step {
    pub fn background(&self) -> bool {
        self.command.trim_end().ends_with('&') && !self.command.trim_end().ends_with("&&")
    }
}

/// The steps of a transcript. Text before the first `$` is an error.
pub fn parse(body: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = body.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            let mut command = cmd.to_owned();
            while command.ends_with('\\') {
                let Some((_, next)) = lines.next() else { break };
                command.push('\n');
                // The shell's continuation prompt, as a terminal shows it.
                command.push_str(next.strip_prefix("> ").unwrap_or(next));
            }
            let mut status = 0;
            if let Some((_, s)) = lines.peek()
                && let Some(code) = s.strip_prefix("? ")
            {
                status = code
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {}: `? {code}` is not an exit status", n + 2))?;
                lines.next();
            }
            steps.push(Step {
                line: n + 1,
                command,
                status,
                output: Vec::new(),
            });
        } else {
            match steps.last_mut() {
                Some(step) => step.output.push(line.trim_end().to_owned()),
                None => return Err(format!("line {}: output before any `$ ` command", n + 1)),
            }
        }
    }
    if steps.is_empty() {
        return Err("no `$ ` command".into());
    }
    Ok(steps)
}

/// Whether `got` (lines) matches `want` (patterns with `[..]` and `...`).
pub fn matches(want: &[String], got: &[&str]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w == "..." => (0..=got.len()).any(|skip| matches(rest, &got[skip..])),
        Some((w, rest)) => got
            .split_first()
            .is_some_and(|(g, grest)| line_matches(w, g.trim_end()) && matches(rest, grest)),
    }
}

/// One line against one pattern, where `[..]` matches any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A private place to run transcripts in: a temp folder, and what it started in the background.
pub struct Sandbox {
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    background: Vec<Child>,
}

impl Sandbox {
    pub fn new(tapsign: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("tapsign-doc-")
            .tempdir()
            .expect("tempdir");
        Sandbox {
            dir,
            bin_dir: tapsign.parent().expect("bin folder").to_path_buf(),
            background: Vec::new(),
        }
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("run").join("agent.sock")
    }

    fn command(&self, script: &str) -> Command {
        let path = std::env::var("PATH").unwrap_or_default();
        let no_bus = format!("unix:path={}", self.dir.path().join("no-bus").display());
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(script)
            .current_dir(self.dir.path())
            .env("PATH", format!("{}:{path}", self.bin_dir.display()))
            .env("HOME", self.dir.path())
            .env("TAPSIGN_HOME", self.dir.path().join("tapsign"))
            .env("TAPSIGN_SOCK", self.sock())
            .env("TAPSIGN_INSECURE_SOFT_TOKEN", "1")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &no_bus)
            .env("DBUS_SESSION_BUS_ADDRESS", &no_bus)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_SESSION_ID")
            .env_remove("TAPSIGN_BIN")
            .stdin(Stdio::null());
        c
    }

    /// Run one step; `Err` says how it differed from the transcript.
    pub fn run(&mut self, step: &Step) -> Result<(), String> {
        if step.background() {
            return self.start(step);
        }
        let out_path = self.dir.path().join(".doc-output");
        let out = std::fs::File::create(&out_path).expect("output file");
        let mut child = self
            .command(&step.command)
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn bash");
        let status = wait_bounded(&mut child, Duration::from_secs(60))
            .ok_or_else(|| format!("`{}` did not finish within 60 s", step.command))?;
        let got = std::fs::read_to_string(&out_path).expect("read output");
        let got_lines: Vec<&str> = got.lines().collect();
        let code = status.code().unwrap_or(-1);
        if code != step.status || !matches(&step.output, &got_lines) {
            return Err(format!(
                "`{}`\nwanted exit status {}, got {code}\n--- wanted ---\n{}\n--- got ---\n{}",
                step.command,
                step.status,
                step.output.join("\n"),
                got.trim_end()
            ));
        }
        Ok(())
    }

    /// Enroll the soft token and store `keys` (`NAME:EXCHANGE`) with test credentials, for a
    /// transcript whose marker asks for them (`doctest: keys NAME:EXCHANGE ...`).
    pub fn add_keys(&mut self, keys: &[&str]) -> Result<(), String> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut script = String::from("set -e; tapsign token add --soft >/dev/null\n");
        for spec in keys {
            let (name, exchange) = spec
                .split_once(':')
                .ok_or_else(|| format!("`{spec}` is not NAME:EXCHANGE"))?;
            let passphrase = match exchange {
                "okx" | "kucoin" | "bitget" => "test-passphrase\\n",
                _ => "",
            };
            script.push_str(&format!(
                "printf 'test-access-key\\ntest-secret-key\\n{passphrase}' | tapsign key add {name} --exchange {exchange} >/dev/null\n"
            ));
        }
        let out = self.command(&script).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "setting up {keys:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Start a background step (`tapsign agent &`); when it is the agent, wait until it serves.
    fn start(&mut self, step: &Step) -> Result<(), String> {
        if !step.output.is_empty() || step.status != 0 {
            return Err(format!(
                "`{}` runs in the background: it has no output or status to show",
                step.command
            ));
        }
        let script = step.command.trim_end().trim_end_matches('&');
        let log = std::fs::File::create(self.dir.path().join(".doc-background.log"))
            .expect("background log");
        let child = self
            .command(&format!("exec {script}"))
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn bash");
        self.background.push(child);
        if script.contains("tapsign agent") {
            let start = Instant::now();
            while std::os::unix::net::UnixStream::connect(self.sock()).is_err() {
                if start.elapsed() > Duration::from_secs(20) {
                    return Err(format!("`{}` did not serve within 20 s", step.command));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for mut c in self.background.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn a_transcript_has_commands_statuses_and_outputs() {
        let steps = parse("$ a \\\n>   --b\n? 4\nout 1\nout 2\n$ c &\n").unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].command, "a \\\n  --b");
        assert_eq!((steps[0].status, steps[0].line), (4, 1));
        assert_eq!(steps[0].output, ["out 1", "out 2"]);
        assert!(steps[1].background() && !steps[0].background());
        assert!(parse("stray\n$ a\n").is_err());
        assert!(parse("$ a\n? four\n").is_err());
    }

    #[test]
    fn output_patterns_match_as_documented() {
        let want = lines(&["Stored [..] (binance, [..]), sealed[..].", "...", "end"]);
        assert!(matches(
            &want,
            &[
                "Stored k (binance, HMAC secret), sealed to x.",
                "a",
                "b",
                "end"
            ]
        ));
        assert!(matches(
            &want,
            &["Stored k (binance, HMAC), sealed.", "end"]
        ));
        assert!(!matches(
            &want,
            &["Stored k (binance, HMAC), sealed.", "end", "more"]
        ));
        assert!(!matches(&want, &["Stored k (okx, HMAC), sealed.", "end"]));
        assert!(!matches(&lines(&["a"]), &["ab"]), "no prefix matches");
        assert!(matches(&lines(&["[..]"]), &["anything"]));
        assert!(matches(&[], &[]));
        assert!(!matches(&[], &["unexpected"]));
    }
}
