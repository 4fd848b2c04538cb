//! One agent per home. The audit log's chain, the Kraken nonce files and the keystore's
//! manifest each assume one agent: a second agent on another socket but the same folders made
//! every signature of one of the two withheld ("a line of a kind only an agent writes, which
//! this agent did not write"), and only the first one's `status` said why (red-team round 23).
//! So an agent holds an exclusive `flock` on the folders themselves, the state folder (the
//! log, the nonce files) and the data folder (the keystore), for as long as it runs, and a
//! second agent with either folder in common refuses to start.
//!
//! A lock on the folder, not on a file in it: a file can be deleted and made anew while the
//! agent runs, and a second agent then locked the new one (the recheck); a folder holding the
//! log cannot be, and a folder reached by another path (a link, a bind mount, another
//! `XDG_*` setting) is the same folder to the kernel. The kernel drops the lock when the
//! process ends, however it ends (SIGKILL included), so a crashed agent never blocks the next;
//! the folder is opened close-on-exec, so no child of the agent keeps it. Who holds it is
//! read from `/proc/locks`, which no other process can word.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How long a claim waits for a holder to let go before refusing.
const DYING_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Held while the agent runs; dropping it (or the process ending) lets the next agent start.
pub struct HomeClaim {
    _folders: Vec<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another tapsign agent is already running on this home: {holder} holds {}; stop it first (`tapsign lock` does not stop it: send it SIGTERM), or give this agent a TAPSIGN_HOME of its own: two agents on one audit log, one set of nonce files or one keystore would refuse each other's signatures",
        .dir.display()
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock the folder {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Folder(#[from] crate::disk::DirError),
}

/// Claim the folders `dirs` (the state and data folders: one, under `TAPSIGN_HOME`) for this
/// agent. A missing folder is created private first; an existing one is judged by the audit
/// log's and the keystore's own checks, as before.
pub fn claim(dirs: &[&Path]) -> Result<HomeClaim, ClaimError> {
    use rustix::fs::{FlockOperation, flock};
    let mut held: Vec<(u64, u64)> = Vec::new();
    let mut folders = Vec::new();
    for &dir in dirs {
        if !dir.exists() {
            crate::disk::ensure_private_dir(dir)?;
        }
        let io = |source| ClaimError::Io {
            path: dir.to_owned(),
            source,
        };
        // std opens close-on-exec; a folder opens read-only.
        let folder = File::open(dir).map_err(io)?;
        let meta = folder.metadata().map_err(io)?;
        // The same folder twice (one home): a second lock from this process would be refused.
        if held.contains(&(meta.dev(), meta.ino())) {
            continue;
        }
        // An agent killed a moment ago holds its folders until the kernel has ended it (a
        // restart right after SIGKILL was refused for a few milliseconds, naming the dying
        // pid: round 23's second agent pass): a short wait before refusing.
        let deadline = std::time::Instant::now() + DYING_WAIT;
        loop {
            match flock(&folder, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
                    let holder = match lock_holder(&locks, meta.dev(), meta.ino()) {
                        Some(pid) => format!("pid {pid}{}", program(pid)),
                        None => "another process".to_owned(),
                    };
                    return Err(ClaimError::Held {
                        dir: dir.to_owned(),
                        holder,
                    });
                }
                Err(e) => return Err(io(e.into())),
            }
        }
        held.push((meta.dev(), meta.ino()));
        folders.push(folder);
    }
    Ok(HomeClaim { _folders: folders })
}

/// ` (PROGRAM)`, the file name of `pid`'s executable, when it can be read.
fn program(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| {
            let n: String = n.chars().filter(|c| !c.is_control()).take(64).collect();
            format!(" ({n})")
        })
        .unwrap_or_default()
}

/// The pid holding an exclusive `flock` on (`dev`, `ino`), from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 00:1b:5678 0 EOF`; the device in hex `major:minor`).
pub fn lock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line starts with "->" and shifts the fields; only holders count.
        let [_, "FLOCK", _, "WRITE", pid, id, ..] = f.as_slice() else {
            return None;
        };
        let mut parts = id.split(':');
        let ma = u32::from_str_radix(parts.next()?, 16).ok()?;
        let mi = u32::from_str_radix(parts.next()?, 16).ok()?;
        let i: u64 = parts.next()?.parse().ok()?;
        ((ma, mi, i) == (major, minor, ino)).then(|| pid.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// State and data folders created (0700) inside a temporary one.
    struct Home(tempfile::TempDir);
    impl Home {
        fn dir(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }
    }
    fn home() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    fn refused(dirs: &[&Path]) -> ClaimError {
        match claim(dirs) {
            Err(e) => e,
            Ok(_) => panic!("a second claim was granted"),
        }
    }

    #[test]
    fn a_second_claim_on_a_folder_is_refused_and_names_the_holder() {
        let h = home();
        let (state, data) = (h.dir("state"), h.dir("data"));
        let first = claim(&[&state, &data]).unwrap();
        // Either folder in common is enough.
        for dirs in [[&state, &h.dir("other")], [&h.dir("other2"), &data]] {
            let err = refused(&dirs.map(PathBuf::as_path));
            let said = err.to_string();
            assert!(matches!(err, ClaimError::Held { .. }), "{said}");
            assert!(
                said.contains("already running")
                    && said.contains(&format!("pid {}", std::process::id())),
                "{said}"
            );
        }
        drop(first);
        claim(&[&state, &data]).unwrap();
    }

    #[test]
    fn one_folder_named_twice_is_claimed_once() {
        let h = home();
        let dir = h.dir("home");
        let _held = claim(&[&dir, &dir]).unwrap();
        assert!(matches!(refused(&[&dir]), ClaimError::Held { .. }));
    }

    /// The recheck: a lock file deleted while the agent ran let a second agent lock a new one.
    /// A folder reached by a link is the same folder.
    #[test]
    fn the_folder_itself_is_held_whatever_path_reaches_it() {
        let h = home();
        let dir = h.dir("home");
        let _held = claim(&[&dir]).unwrap();
        let link = h.dir("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(matches!(refused(&[&link]), ClaimError::Held { .. }));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "a file was left"
        );
    }

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 00:1b:5678 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 99 00:1b:5678 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 7 00:1b:9 0 EOF\n";
        let dev = rustix::fs::makedev(0, 0x1b);
        assert_eq!(lock_holder(locks, dev, 5678), Some(4242));
        assert_eq!(lock_holder(locks, dev, 9), None);
        assert_eq!(lock_holder(locks, dev, 1), None);
    }
}
