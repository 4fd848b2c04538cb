//! Writing lines. A batch of events becomes one `write(2)` on the `O_APPEND` descriptor, under
//! the exclusive `flock` other tapsign processes append under, after the anchoring checks
//! (`tail`). A write that lands only in part (a full disk) is cut off again before the lock is
//! released, so no torn line is left behind and the chain goes on from the last whole line.
//!
//! Syncing is separate: [`AuditLog::append`] (one-shot commands such as `key add`) writes and
//! syncs; the agent's sink writes with [`AuditLog::write_lines`] and syncs from its own thread
//! through [`AuditLog::sync_handle`] (docs/audit.md, "Durability").

use std::fs::File;
use std::io::Write;
use std::time::SystemTime;

use super::{AuditError, AuditEvent, AuditLine, AuditLog, hash_hex, io_err, rfc3339_utc_ms};

impl AuditLog {
    /// Append `event`, stamped with the current time, and sync it.
    pub fn append(&mut self, event: &AuditEvent) -> Result<(), AuditError> {
        self.append_at(event, SystemTime::now())
    }

    /// Append `event` stamped with `time`: the line in one write, then `fdatasync`.
    pub fn append_at(&mut self, event: &AuditEvent, time: SystemTime) -> Result<(), AuditError> {
        self.write_lines(&[(event, time)])?;
        self.sync()
    }

    /// Write one line per event, all in one `write(2)`, without syncing. Under an exclusive
    /// `flock`, so another tapsign process appending never interleaves with this one; first
    /// the file is checked to be the one opened, grown only by lines that continue the chain
    /// (see [`AuditError::Tampered`]). Either every line is written or none is. Returns the
    /// `seq` of the last line written.
    pub fn write_lines(&mut self, events: &[(&AuditEvent, SystemTime)]) -> Result<u64, AuditError> {
        self.locked(|log| log.write_locked(events))
    }

    /// `fdatasync` the file: the lines written so far survive a crash of the machine.
    pub fn sync(&self) -> Result<(), AuditError> {
        #[cfg(test)]
        if FAIL_SYNC.with(|f| f.replace(false)) {
            return Err(io_err(&self.path)(std::io::Error::other(
                "input/output error (test)",
            )));
        }
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// A second descriptor on the open file, for syncing it from another thread while this
    /// one goes on writing.
    pub fn sync_handle(&self) -> Result<File, AuditError> {
        self.file.try_clone().map_err(io_err(&self.path))
    }

    fn write_locked(&mut self, events: &[(&AuditEvent, SystemTime)]) -> Result<u64, AuditError> {
        if self.resync {
            self.read_tail()?;
        }
        self.check_anchored()?;
        if events.is_empty() {
            return Ok(self.next_seq.saturating_sub(1));
        }
        let mut buf = Vec::with_capacity(events.len() * 256 + 1);
        if self.torn {
            // The file ends in a torn line: end it, so the new lines stand on their own.
            buf.push(b'\n');
        }
        let (mut seq, mut prev, mut last_start) = (self.next_seq, self.prev.clone(), 0);
        for (event, time) in events {
            let line = AuditLine {
                seq,
                time: rfc3339_utc_ms(*time),
                prev,
                event: event.loggable(),
            };
            last_start = buf.len();
            serde_json::to_writer(&mut buf, &line)
                .map_err(|e| AuditError::Encode(e.to_string()))?;
            super::event::escape_hidden(&mut buf, last_start);
            prev = hash_hex(&buf[last_start..]);
            buf.push(b'\n');
            seq = seq.saturating_add(1);
        }
        self.write_whole(&buf)?;
        for (i, (event, _)) in events.iter().enumerate() {
            if matches!(
                event,
                AuditEvent::KeyChange { .. } | AuditEvent::Keystore { .. }
            ) {
                let seq = self.next_seq.saturating_add(i as u64);
                self.witnessed.push(super::Witnessed {
                    seq,
                    event: (*event).clone(),
                    own: true,
                });
            }
        }
        self.last = buf[last_start..buf.len() - 1].to_vec();
        self.end = self.end.saturating_add(buf.len() as u64);
        self.prev = prev;
        self.next_seq = seq;
        self.torn = false;
        Ok(seq.saturating_sub(1))
    }

    /// One `write(2)`: the lines land whole and contiguous, or whatever landed is cut off.
    fn write_whole(&mut self, buf: &[u8]) -> Result<(), AuditError> {
        let failed = match self.file.write(buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            Ok(wrote) => AuditError::ShortWrite {
                path: self.path.clone(),
                wrote,
                len: buf.len(),
            },
            Err(e) => io_err(&self.path)(e),
        };
        // The anchoring check left the file `end` bytes long, and no tapsign process appends
        // without the lock this writer holds: anything past `end` is the part of this write
        // that landed. Should cutting it fail too, the tail is re-read before the next write
        // (and a torn line then ends with a newline, as at open).
        if self.file.set_len(self.end).is_err() {
            self.resync = true;
        }
        Err(failed)
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: make the next [`AuditLog::sync`] on this thread fail (an I/O error).
    pub(crate) static FAIL_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
