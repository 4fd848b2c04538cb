//! The one way a tapsign test declines to run on this machine.
//!
//! Some tests need what a developer's machine may lack: root (namespaces, another user),
//! a program (`python3`, `pcscd`, `sshd`), or real hardware. Each such test asks here first.
//! A missing prerequisite prints `SKIPPED: <test>: <reason>` straight to stderr (libtest
//! captures a passing test's output, and a skip must show) and the test returns.
//!
//! CI has root and every package of scripts/packages.txt, and sets `TAPSIGN_VYK_REQUIRE=1`:
//! there a skip is a failure, so a test cannot pass in CI without having run. The one
//! exception is [`opted_in`]: tests on a real token run only when a person names one, and
//! never fail for lack of it.
//!
//! Tests that need private namespaces (a pcscd of their own, a small disk, a loopback sshd)
//! run again inside them through [`rerun_in_namespaces`], once their prerequisites are here.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Set to `1` to turn every skip into a failure (CI).
pub const REQUIRE_ENV: &str = "TAPSIGN_VYK_REQUIRE";

/// Whether skips are failures here (`TAPSIGN_VYK_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Report that the current test cannot run here, and why; the caller then returns. Under
/// `TAPSIGN_VYK_REQUIRE=1` this fails the test instead.
#[track_caller]
pub fn skip(reason: &str) {
    let name = test_name();
    if required() {
        panic!("{name}: prerequisites missing and {REQUIRE_ENV}=1: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {name}: {reason}");
}

/// Whether this process runs as root. `false` after a [`skip`] saying what root is for.
#[track_caller]
pub fn needs_root(what_for: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!("{what_for} needs root (CI runs as root)"));
    false
}

/// Where `program` is installed (PATH, then the sbin folders absent from a user's PATH).
/// `None` after a [`skip`] naming the Debian package that has it.
#[track_caller]
pub fn needs_program(program: &str, package: &str) -> Option<PathBuf> {
    let found = which(program);
    if found.is_none() {
        skip(&format!(
            "`{program}` not found: install {package} (scripts/packages.txt lists it)"
        ));
    }
    found
}

/// The value of `var`, which a person sets to run a test on real hardware. Unset: the test
/// says so and returns, even in CI (a machine without the token cannot run it).
pub fn opted_in(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {}: set {var} to {what}",
                test_name()
            );
            None
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Finds an executable in PATH or the sbin folders.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// The running test's name, as libtest names its thread.
fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("?")
        .to_owned()
}

/// Run the test `name` again, alone, in new namespaces: `unshare UNSHARE --fork --kill-child
/// --propagation private` on this test binary, with `env` set (a marker by which the child
/// knows it is inside). Panics unless it passed there, having run (a filter that matched
/// nothing must not pass). Its output is passed on, `SKIPPED:` lines to stderr.
pub fn rerun_in_namespaces(name: &str, unshare: &[&str], env: &[(&str, &std::ffi::OsStr)]) {
    let exe = std::env::current_exe().expect("current test executable");
    let out = std::process::Command::new("unshare")
        .args(unshare)
        .args(["--fork", "--kill-child", "--propagation", "private", "--"])
        .arg(exe)
        // An ignored test (a measurement) got here only because it was asked for by name.
        .args([
            "--exact",
            name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "{name} failed in its namespace ({}):\n{report}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its namespace:\n{report}"
    );
    // A skip decided inside the namespace must stay visible too.
    for line in stderr.lines().filter(|l| l.starts_with("SKIPPED: ")) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    print!("{report}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_none() {
        // Not under REQUIRE here: this test runs in CI too, where a skip would panic.
        if !required() {
            assert!(needs_program("tapsign-no-such-program", "nothing").is_none());
        }
        assert!(which("sh").is_some());
        assert!(which("tapsign-no-such-program").is_none());
    }

    /// Runs itself again in a child process, where it only skips: once plain (a skip, the
    /// test passes) and once with `TAPSIGN_VYK_REQUIRE=1` (the test fails).
    #[test]
    fn a_skip_fails_when_required() {
        const PROBE: &str = "TAPSIGN_SKIP_PROBE";
        if std::env::var_os(PROBE).is_some() {
            return skip("probing");
        }
        let exe = std::env::current_exe().unwrap();
        let run = |require: bool| {
            let mut c = std::process::Command::new(&exe);
            c.args(["--exact", "tests::a_skip_fails_when_required"])
                .env(PROBE, "1");
            match require {
                true => c.env(REQUIRE_ENV, "1"),
                false => c.env_remove(REQUIRE_ENV),
            };
            c.output().unwrap()
        };
        let lax = run(false);
        assert!(lax.status.success(), "{lax:?}");
        let said = String::from_utf8_lossy(&lax.stderr);
        assert!(
            said.contains("SKIPPED: tests::a_skip_fails_when_required: probing"),
            "{said}"
        );
        let strict = run(true);
        assert!(
            !strict.status.success(),
            "a required skip must fail: {strict:?}"
        );
    }
}
