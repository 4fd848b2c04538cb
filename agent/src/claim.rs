//! One agent per home. The audit log's chain and the Kraken nonce files each assume one agent
//! writes them: a second agent on another socket but the same folders made every signature of
//! one of the two withheld ("a line of a kind only an agent writes, which this agent did not
//! write"), and only the first one's `status` said why (red-team round 23). So an agent holds
//! an exclusive `flock` on `agent.lock` in the state folder (where the log and the nonce files
//! are) for as long as it runs, and a second one refuses to start.
//!
//! The kernel drops the lock when the process ends, however it ends (SIGKILL included), so a
//! crashed agent never blocks the next; the file is opened close-on-exec, so no child of the
//! agent keeps it. What the file holds (the pid and socket of the agent holding it) only
//! words the refusal: any process of the user can write it, and nothing is decided by it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The file's name in the state folder.
pub const FILE: &str = "agent.lock";

/// Held while the agent runs; dropping it (or the process ending) lets the next agent start.
pub struct HomeClaim {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another tapsign agent is already running on this home ({}{}); stop it first (`tapsign lock` does not stop it: send it SIGTERM), or give this agent a TAPSIGN_HOME of its own: two agents on one audit log and one set of nonce files would refuse each other's signatures",
        .dir.display(),
        .holder.as_deref().map(|h| format!(": {h}")).unwrap_or_default()
    )]
    Held {
        dir: PathBuf,
        holder: Option<String>,
    },
    #[error("cannot take {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a file of this user's (a link, or someone else's): remove it and start again", .0.display())]
    NotOurs(PathBuf),
    #[error(transparent)]
    Folder(#[from] crate::disk::DirError),
}

/// Claim the home whose state folder is `state_dir` for this agent, naming its `socket` in
/// the file for a second agent's refusal.
pub fn claim(state_dir: &Path, socket: &Path) -> Result<HomeClaim, ClaimError> {
    use rustix::fs::{FlockOperation, flock};
    // Created private when missing; an existing folder is judged by the audit log's and the
    // keystore's own checks, as before (the file here holds no secret, and must be ours).
    if !state_dir.exists() {
        crate::disk::ensure_private_dir(state_dir)?;
    }
    let path = state_dir.join(FILE);
    let io = |source| ClaimError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a link.
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                ClaimError::NotOurs(path.clone())
            }
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() || meta.uid() != rustix::process::getuid().as_raw() {
        return Err(ClaimError::NotOurs(path));
    }
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ClaimError::Held {
                    dir: state_dir.to_owned(),
                    holder: holder(&mut file),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
    }
    // Only words for a refusal: a failure to write them costs nothing but those words.
    let words = format!("pid {}, socket {}\n", std::process::id(), socket.display());
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(words.as_bytes()));
    Ok(HomeClaim { _file: file })
}

/// What the holder wrote, cut to one line of printable text: any process could have written it.
fn holder(file: &mut File) -> Option<String> {
    let mut bytes = Vec::new();
    file.rewind().ok()?;
    file.take(256).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    (!line.trim().is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A state folder the claim creates (0700) inside a temporary one.
    struct Home(tempfile::TempDir);
    impl Home {
        fn path(&self) -> PathBuf {
            self.0.path().join("state")
        }
    }
    fn home() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    #[test]
    fn a_second_claim_on_a_home_is_refused_and_names_the_first() {
        let h = home();
        let first = claim(&h.path(), Path::new("/run/user/1/tapsign/agent.sock")).unwrap();
        let err = match claim(&h.path(), Path::new("/elsewhere.sock")) {
            Err(e) => e,
            Ok(_) => panic!("a second claim was granted"),
        };
        let said = err.to_string();
        assert!(matches!(err, ClaimError::Held { .. }), "{said}");
        assert!(
            said.contains("already running")
                && said.contains(&format!("pid {}", std::process::id()))
                && said.contains("/run/user/1/tapsign/agent.sock"),
            "{said}"
        );
        drop(first);
        claim(&h.path(), Path::new("/elsewhere.sock")).unwrap();
    }

    #[test]
    fn what_the_file_holds_only_words_the_refusal() {
        let h = home();
        let _first = claim(&h.path(), Path::new("/s")).unwrap();
        // Another process of the user rewrites it: control bytes and length are cut.
        std::fs::write(h.path().join(FILE), "x\u{1b}[2Jy".repeat(200)).unwrap();
        let said = claim(&h.path(), Path::new("/t")).err().unwrap().to_string();
        assert!(!said.contains('\u{1b}'), "{said}");
        assert!(said.len() < 600, "{said}");
    }

    #[test]
    fn a_link_in_its_place_is_refused() {
        let h = home();
        crate::disk::ensure_private_dir(&h.path()).unwrap();
        let target = h.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, h.path().join(FILE)).unwrap();
        let err = claim(&h.path(), Path::new("/s")).err().unwrap();
        assert!(matches!(err, ClaimError::NotOurs(_)), "{err}");
    }
}
