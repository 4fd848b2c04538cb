//! The audit log: append-only JSON lines, one per decision, hash-chained.
//!
//! Each line is one JSON object, written by one `write` call on an `O_APPEND` descriptor:
//!
//! ```text
//! {"seq":1,"time":"2026-11-23T10:00:00.000Z","prev":"000…000","event":{"type":"agent_start",…}}
//! ```
//!
//! - `seq` is the line's 1-based number in the file.
//! - `time` is RFC 3339 UTC with milliseconds (wall clock; order is carried by `seq`).
//! - `prev` is the lower-case hex SHA-256 of the previous line's exact bytes, without its
//!   newline; 64 zeros on the first line.
//! - `event` is an [`AuditEvent`], tagged by `type`.
//!
//! Editing, deleting or inserting a line breaks the chain at the next line, and [`verify`]
//! names it. Cutting lines off the end leaves a shorter, valid chain: only a [`Checkpoint`]
//! kept elsewhere (see [`verify_against`]) catches that. While the agent holds the log open it
//! also checks, before each write, that the path still names the file it opened and that the
//! file only grew, by lines that continue the chain (`tail`). [`AuditLog`] writes and syncs
//! (`append`); in the agent, [`AuditSink`] owns it on a thread of its own and decides when to
//! sync (`sink`). The format and its limits are documented in `docs/audit.md`.

mod append;
mod event;
pub mod ledger;
mod read;
mod repeats;
mod since;
mod sink;
mod sync;
mod tail;
mod time;

#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_anchor;
#[cfg(test)]
mod tests_sink;

pub use event::{AuditEvent, QUOTED_MAX, Shown, cap, hidden, loggable_path};
pub use read::{Entry, Lines, read};
pub use since::{HeldLog, Since, holds, since, since_keeping};
pub(crate) use sink::LOCK_HOLDER;
pub use sink::{AuditSink, NotHeld, SyncFn, Unrecorded, not_held_reason};
pub use tail::MAX_FOREIGN_BYTES;
pub use time::{civil_from_days, rfc3339_utc_ms, utc_secs};

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log, fields in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLine {
    pub seq: u64,
    /// As the agent writes it (`YYYY-MM-DDTHH:MM:SS.mmmZ`); any other text is not an audit
    /// line's (red-team round 20: a `time` holding a newline printed as a second, forged line
    /// in `tapsign audit`, with `audit verify` intact).
    #[serde(deserialize_with = "time_as_written")]
    pub time: String,
    pub prev: String,
    pub event: AuditEvent,
}

impl std::fmt::Display for AuditLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", Shown(&self.time), self.event)
    }
}

/// Whether `time` has the form the agent writes, `YYYY-MM-DDTHH:MM:SS.mmmZ` (a year of four
/// digits or more: a clock set far ahead writes more), each field in its range (a month 13 or
/// an hour 24 is no time the agent writes: such a line was written by another hand).
pub fn time_well_formed(time: &str) -> bool {
    let Some(year_end) = time.find('-') else {
        return false;
    };
    let (year, rest) = time.split_at(year_end);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let shape = rest.as_bytes();
    let field = |at: usize| u32::from(shape[at] - b'0') * 10 + u32::from(shape[at + 1] - b'0');
    year.len() >= 4
        && digits(year)
        && shape.len() == 20
        && shape
            .iter()
            .zip(b"-00-00T00:00:00.000Z")
            .all(|(&c, &want)| match want {
                b'0' => c.is_ascii_digit(),
                _ => c == want,
            })
        && (1..=12).contains(&field(1))
        && (1..=31).contains(&field(4))
        && field(7) <= 23
        && field(10) <= 59
        && field(13) <= 59
}

fn time_as_written<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let time = String::deserialize(d)?;
    if !time_well_formed(&time) {
        return Err(serde::de::Error::custom(format!(
            "time {:?} is not one the agent writes (YYYY-MM-DDTHH:MM:SS.mmmZ, each field in its range)",
            Shown(&time).to_string()
        )));
    }
    Ok(time)
}

/// Where the chain stood: the last line's `seq` and the hex SHA-256 of its bytes. Kept
/// outside the log's folder (shown by `tapsign status`, shipped off-box), it lets
/// [`verify_against`] catch lines cut off the end, which the chain alone cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
}

/// `12:9f86d08…` (seq, a colon, the hash): short enough to copy by hand or paste in a chat.
impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a checkpoint: expected SEQ:SHA256HEX, as `tapsign audit verify` prints it"
            )
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Checkpoint { seq, hash })
    }
}

/// Why a line does not belong in the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not an audit line: {0}")]
    NotALine(String),
    #[error("seq is {found}, expected {expected} (a line was deleted or inserted before it)")]
    Seq { expected: u64, found: u64 },
    #[error("prev does not match the previous line (it was edited, deleted or inserted)")]
    Prev,
    #[error("the last line has no newline (a torn or truncated write)")]
    Truncated,
    #[error("the log ends at seq {found}, but a checkpoint saw seq {expected}: lines were cut off")]
    Missing { expected: u64, found: u64 },
    #[error("the line differs from the one the checkpoint saw")]
    Checkpoint,
    #[error("reading stopped: {0}")]
    Unreadable(String),
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every line chains to the one before. `head` is where the chain ends.
    Intact { lines: u64, head: Checkpoint },
    /// `line` (1-based) is the first that breaks the chain.
    Broken { line: u64, problem: Problem },
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, VerifyReport::Intact { .. })
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyReport::Intact { lines, head } => write!(
                f,
                "intact: {lines} lines; head {head} (keep it elsewhere to catch a cut-off tail)"
            ),
            // The problem can quote the line (serde names an unknown event type): one line.
            VerifyReport::Broken { line, problem } => {
                write!(f, "broken at line {line}: {}", Shown(&problem.to_string()))
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log folder {} {problem}; fix it or point TAPSIGN_HOME elsewhere", path.display())]
    InsecureFolder { path: PathBuf, problem: String },
    #[error("audit log {}: only {wrote} of {len} bytes could be written (disk full?); they were cut off again", path.display())]
    ShortWrite {
        path: PathBuf,
        wrote: usize,
        len: usize,
    },
    #[error("audit event could not be encoded: {0}")]
    Encode(String),
    /// The file was replaced, moved, cut or edited under the writer: not a disk problem, and
    /// not something to recover from by reopening.
    #[error("audit log {} {detail}", path.display())]
    Tampered { path: PathBuf, detail: String },
}

/// The log at `path` is not a regular file (a FIFO, a device, a folder).
fn not_a_file(path: &Path) -> AuditError {
    AuditError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file; move it away so a new log starts",
        ),
    }
}

/// Open the log at `path` for reading (disk::open_regular: a FIFO in its place would wedge
/// `key add`, `audit` and a rotation). Inside [`held_to`], the file opened must be the one
/// named there.
pub(crate) fn open_regular(path: &Path) -> Result<fs::File, AuditError> {
    use std::os::unix::fs::MetadataExt;
    let held = HELD_TO.with(std::cell::Cell::get);
    if held == Hold::Nothing {
        return Err(AuditError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(
                "is not open for the agent's writing (it could not be opened), so the agent's check reads none of what is at its path",
            ),
        });
    }
    let file = crate::disk::open_regular(path).map_err(io_err(path))?;
    if let Hold::File(dev, ino) = held {
        let meta = file.metadata().map_err(io_err(path))?;
        if (meta.dev(), meta.ino()) != (dev, ino) {
            return Err(AuditError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(
                    "is not the file the agent writes (another file was put at its path while it was read)",
                ),
            });
        }
    }
    Ok(file)
}

/// What reads of the log on a thread are held to ([`held_to`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Whatever file is at the path (a command's reading).
    Free,
    /// The file the agent's writer holds (device, inode).
    File(u64, u64),
    /// None: the agent's writer holds no file, so no read is its log.
    Nothing,
}

thread_local! {
    /// What every read of the log on this thread is held to ([`held_to`]).
    static HELD_TO: std::cell::Cell<Hold> = const { std::cell::Cell::new(Hold::Free) };
}

/// The file reads on this thread are held to, inside [`held_to`].
pub(crate) fn held_file() -> Option<(u64, u64)> {
    match HELD_TO.with(std::cell::Cell::get) {
        Hold::File(dev, ino) => Some((dev, ino)),
        Hold::Free | Hold::Nothing => None,
    }
}

/// Run `f`, whose reads of the log (by its path) must each open the file `hold` names, the one
/// the agent's writer holds: a read that opens another file fails, as an unreadable log's
/// does, and the keystore's check then anchors and records nothing (red-team round 25, second
/// recheck: another file renamed over the log for the one read of the record of the vaults
/// named the attacker's vault, and a keystore of it opened, was anchored and recorded). Where
/// the writer holds no file ([`Hold::Nothing`]: the log could not be opened when the agent
/// started), every read fails: the third recheck put the attacker's log, readable and not
/// writable, at the path, and the check read it as the record.
pub(crate) fn held_to<T>(hold: Hold, f: impl FnOnce() -> T) -> T {
    /// Puts back what the thread was held to, `f` returning or unwinding: a worker thread
    /// reused after a panic must not keep holding its reads to a file it no longer checks.
    struct Restore(Hold);
    impl Drop for Restore {
        fn drop(&mut self) {
            HELD_TO.with(|h| h.set(self.0));
        }
    }
    let _restore = Restore(HELD_TO.with(|h| h.replace(hold)));
    f()
}

/// Where every read of the log on this thread must get to ([`held_to_head`]): the writer's
/// head (its line's end and hash), and whether a read did not.
#[derive(Clone)]
struct Reach {
    head: crate::keystore::Anchor,
    short: bool,
}

thread_local! {
    /// What every read of the log on this thread must get to, inside [`held_to_head`].
    static REACH: std::cell::RefCell<Option<Reach>> = const { std::cell::RefCell::new(None) };
}

/// A read of the log on this thread came to the file's end after `end` bytes: short of the
/// agent's head if that is before where [`held_to_head`] says the head ends.
pub(crate) fn reached(end: u64) {
    REACH.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut()
            && end < r.head.offset
        {
            r.short = true;
        }
    });
}

/// A read of the log on this thread read `line` (without its newline) from `start` to `end`
/// bytes into the file. Where the agent's head ends within it or at its end
/// ([`held_to_head`]), it must be the head's line, ending there: a file as long as the log
/// but with other lines where the head was (the log cut in place to an older prefix, and
/// lines chained on from that until it is as long again: the chain is not keyed) is short of
/// the head, however long (review of round 26).
pub(crate) fn passed(start: u64, end: u64, line: &[u8]) {
    REACH.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut()
            && start < r.head.offset
            && r.head.offset <= end
            && (end != r.head.offset || hash_hex(line) != r.head.hash)
        {
            r.short = true;
        }
    });
}

/// [`held_to`], each read of the log by `f` also required to reach `head` (none: nothing is
/// required): to find the file at least as long as where it ends ([`reached`]), and the
/// line that ends there to be the head's ([`passed`]). The head is the line the agent's writer
/// last wrote or took in, which is in the file it holds for good (its writer checks the
/// file's length and tail against it at every write and refresh). Returns what `f` returned,
/// and whether a read fell short of the head. A read that did was of the file cut in place,
/// for the moment of the read: the writer, refreshed after, finds the file whole again
/// (red-team round 26, part 2: the log cut to its pre-rotation prefix and written back, over
/// and over, during a fresh agent's first unlock, and one check read the prefix as the whole
/// record and opened the keystore from before the rotation, unwarned).
pub(crate) fn held_to_head<T>(
    hold: Hold,
    head: Option<&crate::keystore::Anchor>,
    f: impl FnOnce() -> T,
) -> (T, bool) {
    /// Puts back what the thread was held to, as [`held_to`] does.
    struct Restore(Option<Reach>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REACH.with(|r| *r.borrow_mut() = self.0.take());
        }
    }
    let reach = head.map(|head| Reach {
        head: head.clone(),
        short: false,
    });
    let restore = Restore(REACH.with(|r| r.replace(reach)));
    let out = held_to(hold, f);
    let short = REACH.with(|r| r.borrow().as_ref().is_some_and(|r| r.short));
    drop(restore);
    (out, short)
}

impl AuditError {
    /// Someone else changed the log: the writer must not carry on as if nothing happened.
    pub fn is_tampering(&self) -> bool {
        matches!(self, AuditError::Tampered { .. })
    }

    /// The append gave up waiting for the log's lock (`tail::AuditLog::locked`), which
    /// another process holds: not the disk's fault, and the message must say so.
    pub fn is_lock_wait(&self) -> bool {
        matches!(self, AuditError::Io { source, .. } if source.kind() == std::io::ErrorKind::WouldBlock)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn hash_hex(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The open log. One writer per process: in the agent, the sink's writer thread.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// The `seq` the next line gets.
    next_seq: u64,
    /// Hash of the last line's bytes.
    prev: String,
    /// The last line's bytes (no newline): the anchoring check compares the file's end to them.
    last: Vec<u8>,
    /// The file does not end in a newline: the next write starts with one.
    torn: bool,
    /// A write failed part-way: re-read the tail before the next append.
    resync: bool,
    /// Device and inode of the file opened: the path must keep naming this file.
    dev: u64,
    ino: u64,
    /// The file's length as of the last line this writer read or wrote: it may only grow.
    end: u64,
    /// The keystore's records (`key_change`, `keystore`) this writer wrote or took into its
    /// chain since [`AuditLog::take_witnessed`] last took them.
    witnessed: Vec<Witnessed>,
}

/// One of the keystore's records as the writer saw it: its line's `seq`, the event, and
/// whether this writer wrote it (`own`) or took it in from another tapsign process. A line
/// taken in was checked to continue the chain, nothing more: anyone who can write the file can
/// append such a line, so it may add to what was seen but never make the agent forget.
#[derive(Debug, Clone)]
pub struct Witnessed {
    pub seq: u64,
    pub event: AuditEvent,
    pub own: bool,
}

impl AuditLog {
    /// Open (or create, 0600 in a 0700 folder) the log at `path` and continue its chain.
    ///
    /// A damaged tail does not stop the agent from logging: a last line without a newline is
    /// ended by the next append, and the chain continues from the last line's bytes as they
    /// are. [`verify`] still reports the damage; [`AuditLog::damaged_tail`] says so at once.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        check_folder(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            // The folder is ours, but a symlink planted in it must not redirect the log.
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(path)
            .map_err(io_err(path))?;
        // A file created earlier with a looser mode still says which bots trade what.
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(not_a_file(path));
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io_err(path))?;
        }
        let mut log = AuditLog {
            path: path.to_owned(),
            file,
            next_seq: 1,
            prev: GENESIS.to_owned(),
            last: Vec::new(),
            torn: false,
            resync: false,
            dev: meta.dev(),
            ino: meta.ino(),
            end: 0,
            witnessed: Vec::new(),
        };
        log.read_tail()?;
        Ok(log)
    }

    /// The device and inode of the file this log was opened on.
    pub(crate) fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Where the chain stands now: give this to someone who can later [`verify_against`] it.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            seq: self.next_seq.saturating_sub(1),
            hash: self.prev.clone(),
        }
    }

    /// The file's last line had no newline when the tail was last read (at open, or before
    /// the first append after a failed write). The next append ends that line; `verify` will
    /// report it.
    pub fn damaged_tail(&self) -> bool {
        self.torn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keystore's records written or taken in since the last call, oldest first: what a
    /// running agent saw, which an edit of the file cannot change (`keystore::ledger::Witness`).
    pub fn take_witnessed(&mut self) -> Vec<Witnessed> {
        std::mem::take(&mut self.witnessed)
    }

    /// Set `next_seq`, `prev` and `torn` from the file's last line, reading it backwards from
    /// the end so opening a long log stays cheap.
    fn read_tail(&mut self) -> Result<(), AuditError> {
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        self.end = len;
        if len == 0 {
            (self.next_seq, self.prev, self.torn) = (1, GENESIS.to_owned(), false);
            self.last.clear();
            self.resync = false;
            return Ok(());
        }
        let last_byte = read_at(&mut self.file, len - 1, 1).map_err(io_err(&self.path))?;
        self.torn = last_byte != b"\n";
        let end = if self.torn { len } else { len - 1 };
        let last = last_line(&mut self.file, end).map_err(io_err(&self.path))?;
        self.prev = hash_hex(&last);
        // seq is the line number; when the last line is too damaged to say, count lines.
        self.next_seq = match serde_json::from_slice::<SeqOnly>(&last) {
            Ok(l) => l.seq.saturating_add(1),
            Err(_) => count_lines(&mut self.file).map_err(io_err(&self.path))? + 1,
        };
        self.last = last;
        self.resync = false;
        Ok(())
    }
}

/// Whoever can write the folder can replace the log: it must be ours and closed to others.
fn check_folder(dir: &Path) -> Result<(), AuditError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    let me = rustix::process::getuid().as_raw();
    let problem = if meta.uid() != me {
        format!("belongs to uid {}, not to you (uid {me})", meta.uid())
    } else if meta.mode() & 0o022 != 0 {
        format!(
            "can be written by other users (mode {:o}): run `chmod 700` on it",
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(AuditError::InsecureFolder {
        path: dir.to_owned(),
        problem,
    })
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

fn read_at(f: &mut File, at: u64, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// The bytes of the line that ends at `end` (exclusive, newline not included).
fn last_line(f: &mut File, end: u64) -> std::io::Result<Vec<u8>> {
    const CHUNK: u64 = 8 * 1024;
    // Find where the line starts, then read it once: copying what was read at every step
    // made a long torn tail (megabytes without a newline) cost time in its square.
    let mut start = end;
    let mut line_start = 0;
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let chunk = read_at(f, from, (start - from) as usize)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            line_start = from + i as u64 + 1;
            break;
        }
        start = from;
    }
    read_at(f, line_start, (end - line_start) as usize)
}

/// Lines in the file, a final line without newline included.
fn count_lines(f: &mut File) -> std::io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::new(f);
    let mut n = 0;
    let mut buf = Vec::new();
    while r.read_until(b'\n', &mut buf)? > 0 {
        n += 1;
        buf.clear();
    }
    Ok(n)
}

/// Check the whole chain. `Intact` says nothing about lines cut off the end: use
/// [`verify_against`] with a checkpoint for that.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    verify_inner(path, None)
}

/// [`verify`], and also check that the line the checkpoint saw is still there, unchanged.
pub fn verify_against(path: &Path, checkpoint: &Checkpoint) -> Result<VerifyReport, AuditError> {
    verify_inner(path, Some(checkpoint))
}

fn verify_inner(path: &Path, cp: Option<&Checkpoint>) -> Result<VerifyReport, AuditError> {
    let mut lines = Lines::open(path)?;
    let mut prev = GENESIS.to_owned();
    let mut n = 0;
    while let Some(raw) = lines.next_raw()? {
        n += 1;
        let broken = |problem| Ok(VerifyReport::Broken { line: n, problem });
        let Some(bytes) = raw.strip_suffix(b"\n") else {
            return broken(Problem::Truncated);
        };
        let line = match serde_json::from_slice::<AuditLine>(bytes) {
            Ok(l) => l,
            Err(e) => return broken(Problem::NotALine(e.to_string())),
        };
        if line.seq != n {
            return broken(Problem::Seq {
                expected: n,
                found: line.seq,
            });
        }
        if line.prev != prev {
            return broken(Problem::Prev);
        }
        prev = hash_hex(bytes);
        if cp.is_some_and(|cp| cp.seq == n && cp.hash != prev) {
            return broken(Problem::Checkpoint);
        }
    }
    if let Some(cp) = cp.filter(|cp| cp.seq > n) {
        return Ok(VerifyReport::Broken {
            line: n + 1,
            problem: Problem::Missing {
                expected: cp.seq,
                found: n,
            },
        });
    }
    Ok(VerifyReport::Intact {
        lines: n,
        head: Checkpoint { seq: n, hash: prev },
    })
}
