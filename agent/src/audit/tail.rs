//! Keeping the open log anchored: before each append the writer checks that the path still
//! names the file it opened (device and inode), that the file did not shrink, that the last
//! line it knows is still there unchanged, and that whatever was appended since (by another
//! tapsign process: `key add` records its changes here) continues the chain. Anything else is
//! [`AuditError::Tampered`]: the agent then withholds signatures and says why, rather than
//! go on writing into a file nobody will read, or one that lost lines.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::{AuditError, AuditLog, hash_hex, io_err, read_at};
use crate::keystore::Anchor;

/// More than this appended by someone else since our last line is not another tapsign
/// process recording a change. Each command has a running agent take its line in before it
/// returns, and its line records at most [`crate::keystore::MAX_CREDENTIALS`] credentials,
/// a third of this at the longest names.
pub const MAX_FOREIGN_BYTES: u64 = 1024 * 1024;

/// How long an append waits for the log's lock ([`AuditLog::locked`]): far above any tapsign
/// process's hold of it (a batch of lines, a command's record and its sync).
#[cfg(not(test))]
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
#[cfg(test)]
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

impl AuditLog {
    /// Run `f` holding an exclusive `flock` on the file (other tapsign processes append under
    /// the same lock).
    pub(super) fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut AuditLog) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        use rustix::fs::{FlockOperation, flock};
        // At most LOCK_WAIT: a process holding the log's lock must not hold a command (or
        // the agent's writer) forever; the write then fails, and what it was for is refused
        // or undone (red-team round 17, recheck: a lock held after a rotation's commit hung
        // `token remove`, and interrupted, left the removal off the record).
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            match flock(&self.file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(io_err(&self.path)(std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "another process has held it locked for more than {} ms",
                            LOCK_WAIT.as_millis()
                        ),
                    )));
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io_err(&self.path)(e.into())),
            }
        }
        let out = f(self);
        let _ = flock(&self.file, FlockOperation::Unlock);
        out
    }

    /// Catch up with lines other tapsign processes appended, after the same checks as an
    /// append. `status` calls this so the head it shows is the file's.
    pub fn refresh(&mut self) -> Result<(), AuditError> {
        self.locked(|log| {
            if log.resync {
                log.read_tail()?;
            }
            log.check_anchored()
        })
    }

    /// Where the chain stands, with the byte offset just past the head line: what the
    /// keystore's manifest records, so that its next check reads only what came after.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            seq: self.next_seq.saturating_sub(1),
            hash: self.prev.clone(),
            offset: self.end,
        }
    }

    fn tampered(&self, detail: impl Into<String>) -> AuditError {
        AuditError::Tampered {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// The checks described in the module doc; adopts lines others appended.
    pub(super) fn check_anchored(&mut self) -> Result<(), AuditError> {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {}
            Ok(_) => return Err(self.tampered("was replaced by another file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.tampered("was deleted or moved away"));
            }
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        if len < self.end {
            return Err(self.tampered(format!(
                "is {len} bytes long, but {} bytes were already written: lines were cut off",
                self.end
            )));
        }
        if self.end > 0 && !self.tail_unchanged()? {
            return Err(self.tampered("had its last line changed"));
        }
        if len > self.end {
            self.adopt(len)?;
        }
        Ok(())
    }

    /// The file still ends, at `end`, with the last line this writer knows (whole, or torn as
    /// it was), preceded by a newline or the start of the file. One `pread`: this runs before
    /// every write.
    fn tail_unchanged(&mut self) -> Result<bool, AuditError> {
        let newline = u64::from(!self.torn);
        let Some(start) = self.end.checked_sub(self.last.len() as u64 + newline) else {
            return Ok(false);
        };
        let from = start.saturating_sub(1);
        let mut buf = vec![0; (self.end - from) as usize];
        self.file
            .read_exact_at(&mut buf, from)
            .map_err(io_err(&self.path))?;
        let rest = match start {
            0 => &buf[..],
            _ => match buf.split_first() {
                Some((b'\n', rest)) => rest,
                _ => return Ok(false),
            },
        };
        let (line, after) = rest.split_at(self.last.len().min(rest.len()));
        let ending: &[u8] = if self.torn { b"" } else { b"\n" };
        Ok(line == self.last.as_slice() && after == ending)
    }

    /// Take the lines between our end and `len` into the chain, if they continue it.
    fn adopt(&mut self, len: u64) -> Result<(), AuditError> {
        let grown = len - self.end;
        if grown > MAX_FOREIGN_BYTES {
            return Err(self.tampered(format!(
                "grew by {grown} bytes that this agent did not write"
            )));
        }
        let bytes =
            read_at(&mut self.file, self.end, grown as usize).map_err(io_err(&self.path))?;
        let mut rest: &[u8] = &bytes;
        if self.torn {
            // A writer that found the torn line ended it first, as this one would have.
            match rest.split_first() {
                Some((b'\n', tail)) => rest = tail,
                _ => return Err(self.tampered("had its torn last line extended")),
            }
            self.torn = false;
        }
        while !rest.is_empty() {
            // Another tapsign process writes whole lines, each in one `write(2)` under the
            // lock this check holds, and cuts off a write that landed in part: bytes without
            // their newline are not its line. Taken as a torn line, as at open, they went into
            // the chain unchecked, and the next line ended them: a chained `sign` line
            // appended without its newline was adopted, `audit verify` intact (red-team round
            // 20).
            let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                return Err(self.tampered(format!(
                    "ends in {} bytes after line {} that are not a whole line (no tapsign process \
                     leaves those: something else appended them)",
                    rest.len(),
                    self.next_seq.saturating_sub(1)
                )));
            };
            let (line, tail) = (&rest[..i], &rest[i + 1..]);
            // Read as `audit verify` reads a line, every field checked: a line it would refuse
            // (an unknown field, a `time` that is not one) taken in here made the next unlock
            // refuse, where the agent says so at once (red-team round 20).
            let parsed = serde_json::from_slice::<super::AuditLine>(line);
            let Ok(parsed) = parsed else {
                return Err(self.tampered(format!(
                    "has a line {} that is not an audit line (it was written by something other than tapsign)",
                    self.next_seq
                )));
            };
            if parsed.seq != self.next_seq || parsed.prev != self.prev {
                return Err(self.tampered(format!(
                    "has a line {} that does not continue the chain (it was written by something other than tapsign)",
                    self.next_seq
                )));
            }
            // Only the agent writes the rest (`sign`, `lock`, `unlock`...): one appended by
            // anyone else, chained, was taken in, and the record then held a lock or a signature
            // that never happened, with `audit verify` intact (red-team round 19).
            if !written_by_commands(&parsed.event) {
                return Err(self.tampered(format!(
                    "has a line {} of a kind only an agent writes, which this agent did not write (another program wrote it: a second agent on this home is refused at its start)",
                    self.next_seq
                )));
            }
            if matches!(
                parsed.event,
                super::AuditEvent::KeyChange { .. } | super::AuditEvent::Keystore { .. }
            ) {
                // Checked to continue the chain: what it records is kept, so that an edit of
                // the file later cannot change what this agent saw (`keystore::ledger::Witness`).
                self.witnessed.push(super::Witnessed {
                    seq: parsed.seq,
                    event: parsed.event,
                    own: false,
                });
            }
            self.prev = hash_hex(line);
            self.last = line.to_vec();
            self.next_seq = self.next_seq.saturating_add(1);
            rest = tail;
        }
        self.end = len;
        Ok(())
    }
}

/// Whether `event` is of a kind tapsign's commands write to the log (the keystore's record:
/// `key_change`, `keystore`, `key_refused`); the agent writes every other kind itself.
fn written_by_commands(event: &super::AuditEvent) -> bool {
    matches!(
        event,
        super::AuditEvent::KeyChange { .. }
            | super::AuditEvent::Keystore { .. }
            | super::AuditEvent::KeyRefused { .. }
    )
}
