//! Reading the log back for people: `tapsign audit` prints every line, damaged ones in place.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{AuditError, AuditLine, Problem, io_err};

/// Read the log for display (`tapsign audit`): every line in order. A line that does not parse
/// is yielded as [`Entry::Damaged`] and reading goes on after it; the chain is not checked here
/// (that is [`verify`]'s job).
pub fn read(path: &Path) -> Result<Lines, AuditError> {
    Lines::open(path)
}

/// One line as [`read`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Line(AuditLine),
    /// `line` is 1-based.
    Damaged {
        line: u64,
        problem: Problem,
    },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Line(l) => l.fmt(f),
            Entry::Damaged { line, problem } => write!(f, "(line {line} damaged: {problem})"),
        }
    }
}

/// The lines of a log, in order. See [`read`].
#[derive(Debug)]
pub struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    failed: bool,
}

impl Lines {
    pub(super) fn open(path: &Path) -> Result<Lines, AuditError> {
        let file = super::open_regular(path)?;
        Ok(Lines {
            path: path.to_owned(),
            reader: BufReader::new(file),
            line: 0,
            failed: false,
        })
    }

    /// The next line's bytes, its newline included when it has one.
    pub(super) fn next_raw(&mut self) -> Result<Option<Vec<u8>>, AuditError> {
        let mut buf = Vec::new();
        if self
            .reader
            .read_until(b'\n', &mut buf)
            .map_err(io_err(&self.path))?
            == 0
        {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(buf))
    }
}

impl Iterator for Lines {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.failed {
            return None;
        }
        let raw = match self.next_raw() {
            Ok(raw) => raw?,
            Err(e) => {
                // An I/O error mid-file is shown once, then reading stops.
                self.failed = true;
                return Some(Entry::Damaged {
                    line: self.line + 1,
                    problem: Problem::Unreadable(e.to_string()),
                });
            }
        };
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        Some(match serde_json::from_slice(bytes) {
            Ok(l) => Entry::Line(l),
            Err(e) => Entry::Damaged {
                line: self.line,
                problem: Problem::NotALine(e.to_string()),
            },
        })
    }
}
