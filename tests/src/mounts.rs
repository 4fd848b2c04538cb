//! A small filesystem of a test's own, to fill up: a tmpfs mounted in a private mount
//! namespace, so nothing outside the test sees it and it goes away with the test.
//!
//! A test calls [`private_mounts`] first. In the ordinary test process it checks the
//! prerequisites (root, `unshare`, `mount`), then runs the same test binary for just this test
//! under `unshare --mount --propagation private`, and reports that child's result. Without the
//! prerequisites the test prints `SKIPPED: <reason>` (or fails when `TAPSIGN_VYK_REQUIRE=1`,
//! as in CI, which runs as root).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MARKER_ENV: &str = "TAPSIGN_PRIVATE_MOUNTS";
const REQUIRE_ENV: &str = "TAPSIGN_VYK_REQUIRE";

/// Whether the caller is inside its private mount namespace and should run its body. `false`:
/// the test already ran in a child (or was skipped); return.
pub fn private_mounts() -> bool {
    let current = std::thread::current();
    let name = current
        .name()
        .filter(|n| *n != "main")
        .expect("call private_mounts from a libtest test thread")
        .to_owned();
    match std::env::var(MARKER_ENV) {
        Ok(marker) if marker == name => true,
        Ok(marker) => panic!("inside the namespace for {marker:?}, but {name:?} ran"),
        Err(_) => {
            match missing_prerequisite() {
                Some(reason) => skip(&name, &reason),
                None => reexec(&name),
            }
            false
        }
    }
}

fn skip(name: &str, reason: &str) {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{name}: prerequisites missing and {REQUIRE_ENV}=1: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {name}: {reason}");
}

fn missing_prerequisite() -> Option<String> {
    if !crate::is_root() {
        return Some("needs root to mount a tmpfs in a mount namespace (CI runs as root)".into());
    }
    for tool in ["unshare", "mount"] {
        let found = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            .any(|d| Path::new(d).join(tool).is_file());
        if !found {
            return Some(format!("`{tool}` not found (see scripts/packages.txt)"));
        }
    }
    None
}

fn reexec(name: &str) {
    let exe = std::env::current_exe().expect("current test executable");
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(MARKER_ENV, name)
        .stdin(Stdio::null())
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
    // Never pass without having run: the filter must have matched exactly this test.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its namespace:\n{report}"
    );
    print!("{report}");
}

/// Mount a tmpfs of `size` (as `mount -o size=` takes it: `512k`, `2m`) on `dir`, private to
/// `root` (mode 0700, as tapsign wants its folders). Inside [`private_mounts`] only.
pub fn mount_tmpfs(dir: &Path, size: &str) {
    assert!(
        std::env::var(MARKER_ENV).is_ok(),
        "mount_tmpfs outside a private mount namespace"
    );
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
        .arg("tmpfs")
        .arg(dir)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount tmpfs on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file that takes up every free byte of its filesystem until dropped or [`Filler::free`]d.
pub struct Filler {
    path: Option<PathBuf>,
}

impl Filler {
    /// Fill the filesystem holding `dir` (with a file named `filler` in it).
    pub fn fill(dir: &Path) -> Filler {
        let path = dir.join("filler");
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", dir.display()),
            }
        }
        // Single bytes too: not one byte left.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        Filler { path: Some(path) }
    }

    /// Give the space back.
    pub fn free(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        if let Some(p) = self.path.take() {
            std::fs::remove_file(&p).expect("remove the filler");
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
