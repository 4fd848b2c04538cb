//! Reading the log back from an [`Anchor`]: the keystore's check at unlock wants the credential
//! changes recorded since its manifest was written, and only those (a log of a year's
//! signatures is not read at every unlock).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::{AuditError, AuditLine, GENESIS, hash_hex, io_err, last_line, read_at};
use crate::keystore::Anchor;

/// The lines after an anchor, as far as they chain.
#[derive(Debug)]
pub struct Since {
    pub lines: Vec<AuditLine>,
    /// Why reading stopped early or could not start: the anchor's line is gone or changed,
    /// or the chain breaks after it. `lines` holds what chained before that.
    pub gap: Option<String>,
    /// The gap is a break in the chain after the anchor's line, which is still there: a line
    /// edited, inserted or deleted, not a log started afresh.
    pub broken: bool,
    /// Just past the last line that continued the chain (the anchor itself when none did):
    /// where a later read can take up from (its line is checked then as an anchor's is).
    pub end: Anchor,
}

/// The lines of the log at `path` after `anchor`, checking that the anchor's line is still
/// there, unchanged, and that each line after it continues the chain.
pub fn since(path: &Path, anchor: &Anchor) -> Result<Since, AuditError> {
    since_keeping(path, anchor, |_| true)
}

/// [`since`], keeping in `lines` only those whose event `keep` wants: every line is still
/// read and its chain checked, but a log of a year's signatures is not held in memory for the
/// few lines the keystore's check reads.
pub fn since_keeping(
    path: &Path,
    anchor: &Anchor,
    keep: impl Fn(&super::AuditEvent) -> bool,
) -> Result<Since, AuditError> {
    let mut file = super::open_regular(path)?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let gone = |what: &str| {
        Ok(Since {
            lines: Vec::new(),
            gap: Some(format!(
                "{} no longer holds line {} as it was when the keystore was last checked ({what}): the log was replaced, cut, edited or started afresh",
                path.display(),
                anchor.seq
            )),
            broken: false,
            end: anchor.clone(),
        })
    };
    let edited = |why: String| {
        Ok(Since {
            lines: Vec::new(),
            gap: Some(format!(
                "line {} of {}, where the keystore was last checked, {why}",
                anchor.seq,
                path.display()
            )),
            broken: true,
            end: anchor.clone(),
        })
    };
    if anchor.offset > len {
        super::reached(len);
        // Lines made shorter can leave the file shorter than the offset too.
        if let Some(why) = anchor_edited(path, b"", anchor)? {
            return edited(why);
        }
        return gone("the file is shorter now");
    }
    if anchor.offset == 0 {
        if anchor.seq != 0 || anchor.hash != GENESIS {
            return gone("the anchor is malformed");
        }
    } else {
        let last = read_at(&mut file, anchor.offset - 1, 1).map_err(io_err(path))?;
        let end = if last == b"\n" {
            anchor.offset - 1
        } else {
            anchor.offset
        };
        let line = last_line(&mut file, end).map_err(io_err(path))?;
        if hash_hex(&line) != anchor.hash {
            if let Some(why) = anchor_edited(path, &line, anchor)? {
                return edited(why);
            }
            return gone("that line differs");
        }
    }
    file.seek(SeekFrom::Start(anchor.offset))
        .map_err(io_err(path))?;
    let mut reader = BufReader::new(file);
    let mut out = Since {
        lines: Vec::new(),
        gap: None,
        broken: false,
        end: anchor.clone(),
    };
    let (mut seq, mut prev) = (anchor.seq, anchor.hash.clone());
    // Where the line in `buf` ends.
    let mut offset = anchor.offset;
    let mut buf = Vec::new();
    // A line that is not an audit line, taken provisionally as a write a crash tore: it
    // stands only if the next line continues the chain from its bytes.
    let mut torn: Option<String> = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 {
            super::reached(offset);
            break;
        }
        offset += n as u64;
        let Some(bytes) = buf.strip_suffix(b"\n") else {
            // A torn last line: nothing after it to check.
            super::reached(offset);
            break;
        };
        super::passed(offset - n as u64, offset, bytes);
        if bytes.is_empty() && seq == anchor.seq {
            // The anchor's line was torn, and the next writer ended it.
            continue;
        }
        let broken = |why: String| Some(format!("line {} {why}", seq + 1));
        match serde_json::from_slice::<AuditLine>(bytes) {
            Ok(l) if l.seq == seq + 1 && l.prev == prev => {
                seq = l.seq;
                prev = hash_hex(bytes);
                if keep(&l.event) {
                    out.lines.push(l);
                }
                torn = None;
                out.end = Anchor {
                    seq,
                    hash: prev.clone(),
                    offset,
                };
            }
            Ok(_) => {
                out.gap = torn
                    .take()
                    .or_else(|| broken("does not continue the chain".into()));
                out.broken = true;
                break;
            }
            Err(e)
                if torn.is_none() && !names_keystore(bytes) && torn_fits(bytes, seq + 1, &prev) =>
            {
                // A crash tore this write; the next writer ended it with a newline and
                // chained on from its bytes as they are (docs/audit.md, "Damage and recovery").
                torn = broken(format!("is not an audit line ({e})"));
                seq += 1;
                prev = hash_hex(bytes);
            }
            Err(e) => {
                out.gap = torn
                    .take()
                    .or_else(|| broken(format!("is not an audit line ({e})")));
                out.broken = true;
                break;
            }
        }
    }
    if let Some(why) = torn {
        // Nothing after it chains from it: not a torn write that the log went on from.
        out.gap = Some(why);
        out.broken = true;
    }
    Ok(out)
}

/// The anchor's line differs, but the log around it is the same log, edited: why, or `None`
/// for a log started afresh (or replaced by one whose chain holds whole).
///
/// Edited: the line ending at the anchor's offset still has the anchor's `seq`, or the
/// anchor's line is elsewhere in the file, unchanged (lines before it edited), or a line of
/// the file still chains from the anchor's recorded hash (the log goes on from the line as it
/// was), or the file's chain breaks somewhere. A log started afresh is one whose lines chain
/// from seq 1 with the genesis `prev` to its end; a break in it is this log edited. The line
/// after the anchor was looked for only at the recorded offset, so an edit that changed the
/// anchor line's length (one more digit in its `seq`) moved it off the offset, and the unlock
/// read a log started afresh and opened with a warning where an edit of the same length was
/// refused (red-team round 23). The file is read whole, only here: the anchor's line differs.
fn anchor_edited(path: &Path, line: &[u8], anchor: &Anchor) -> Result<Option<String>, AuditError> {
    #[derive(serde::Deserialize)]
    struct Link {
        seq: u64,
        #[serde(default)]
        prev: String,
    }
    const IN_PLACE: &str = "was edited: it is still in its place and the log goes on from it";
    if serde_json::from_slice::<Link>(line).is_ok_and(|l| l.seq == anchor.seq) {
        return Ok(Some(IN_PLACE.into()));
    }
    let mut lines = super::read::Lines::open(path)?;
    let mut chains_on = false;
    while let Some(raw) = lines.next_raw()? {
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        if hash_hex(bytes) == anchor.hash {
            return Ok(Some(
                "is still in the log, unchanged, but not where it was: lines before it were edited, inserted or taken out".into(),
            ));
        }
        let next = serde_json::from_slice::<Link>(bytes);
        chains_on |= next.is_ok_and(|l| l.seq == anchor.seq + 1 && l.prev == anchor.hash);
    }
    if chains_on {
        return Ok(Some(
            "was edited (its length changed): the log goes on from it as it was recorded".into(),
        ));
    }
    let whole = since_keeping(path, &Anchor::genesis(), |_| false)?;
    Ok(whole.gap.filter(|_| whole.broken).map(|why| {
        format!(
            "differs, and the log's chain breaks ({why}): the log was edited, not started afresh"
        )
    }))
}

/// The line names a manifest generation or a credential change: a record the keystore's
/// check must not lose to a torn write (`ledger::scan` reads generations the same way).
fn names_keystore(line: &[u8]) -> bool {
    let has = |word: &[u8]| line.windows(word.len()).any(|w| w == word);
    has(b"\"generation\"") || has(b"\"key_change\"")
}

/// `bytes` can be the start of the line a writer would have put there: `seq`, a time, and the
/// `prev` that continues the chain, as far as they go. A crash tears a line this writer was
/// writing; anything else (a line edited into garbage, or one forged) is a break.
fn torn_fits(bytes: &[u8], seq: u64, prev: &str) -> bool {
    let prefix_of = |got: &[u8], want: &[u8]| {
        let n = got.len().min(want.len());
        got[..n] == want[..n]
    };
    let head = format!("{{\"seq\":{seq},\"time\":\"");
    if !prefix_of(bytes, head.as_bytes()) {
        return false;
    }
    let rest = bytes.get(head.len()..).unwrap_or_default();
    // The time runs to the next quote (if the tear left one).
    let Some(end) = rest.iter().position(|&b| b == b'"') else {
        return true;
    };
    let tail = format!("\",\"prev\":\"{prev}\",\"event\":");
    prefix_of(&rest[end..], tail.as_bytes())
}

/// Whether the log at `path` is the one whose chain passed through `head`, a running agent's:
/// its line `head.seq` is there with the hash `head.hash`, and every line after it continues
/// the chain to the file's end. Gives the file (device, inode) that does, with where that line
/// ends in it ([`HeldLog`]), or why not. A line's
/// hash covers every line before it through its `prev`, so only the log the agent wrote holds
/// that line: a copy taken before it was written, another home's log or a log started afresh
/// does not, whatever else in it agrees with the keystore (red-team round 26: the copy of the
/// log from before a token's removal, put at the path for `key add` alone, vouched for the
/// keystore from before it). The line is looked for from the end of the file, where the head
/// of an agent just asked is: a long log is not read whole.
pub fn holds(path: &Path, head: &super::Checkpoint) -> Result<HeldLog, String> {
    use std::os::unix::fs::MetadataExt;
    let mut file = super::open_regular(path).map_err(|e| format!("it cannot be read ({e})"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("it cannot be read ({e})"))?;
    let identity = (meta.dev(), meta.ino());
    let anchor = match head.seq {
        0 if head.hash == GENESIS => Anchor::genesis(),
        0 => return Err("the agent's record of it is malformed".into()),
        _ => find_line(&mut file, meta.len(), head)
            .map_err(|e| format!("it cannot be read ({e})"))??,
    };
    // The lines after it, from the same file.
    let read = super::held_to(super::Hold::File(identity.0, identity.1), || {
        since_keeping(path, &anchor, |_| false)
    })
    .map_err(|e| format!("it cannot be read ({e})"))?;
    match read.gap {
        Some(why) => Err(format!(
            "the lines after line {} do not continue the chain from it ({why})",
            head.seq
        )),
        None => Ok(HeldLog {
            file: identity,
            head: anchor,
        }),
    }
}

/// The log a running agent holds, as [`holds`] found it at the path: the file (device, inode)
/// and where the agent's head line ends in it. A command's reads are held to both
/// ([`super::ledger::AuditLedger::held_to`]): the file only grows, so a read that comes to its
/// end before the head read a copy cut in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLog {
    /// Device and inode.
    pub file: (u64, u64),
    /// Just past the agent's head line (seq, hash, end offset).
    pub head: Anchor,
}

/// The anchor just past line `head.seq` of the file, read back from its end (`len`): that
/// line must have `head.hash`. A last line with no newline (a torn write) is not it.
fn find_line(
    file: &mut std::fs::File,
    len: u64,
    head: &super::Checkpoint,
) -> std::io::Result<Result<Anchor, String>> {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let mut back = Backwards {
        file,
        from: len,
        buf: Vec::new(),
    };
    let mut newest: Option<u64> = None;
    let mut newline = back.newline_before(len)?;
    while let Some(nl) = newline {
        let start = back.newline_before(nl)?.map_or(0, |p| p + 1);
        let line = back.bytes(start, nl);
        if let Ok(l) = serde_json::from_slice::<SeqOnly>(line) {
            let newest = *newest.get_or_insert(l.seq);
            if l.seq == head.seq {
                return Ok(match hash_hex(line) == head.hash {
                    true => Ok(Anchor {
                        seq: l.seq,
                        hash: head.hash.clone(),
                        offset: nl + 1,
                    }),
                    false => Err(format!(
                        "its line {} is not the one the agent wrote there (another log, or the log rewritten)",
                        head.seq
                    )),
                });
            }
            if l.seq < head.seq {
                return Ok(Err(format!(
                    "it ends at line {newest}, before line {} where the agent's record of it ends (an older copy of the log put back, or the log cut)",
                    head.seq
                )));
            }
        }
        newline = start.checked_sub(1);
    }
    Ok(Err(match newest {
        Some(n) => format!(
            "it holds no line {} as the agent wrote it (its lines run to {n}: another log, or the log rewritten)",
            head.seq
        ),
        None => format!(
            "it holds no line, where the agent's record of it runs to line {} (a log started afresh?)",
            head.seq
        ),
    }))
}

/// A file read back from its end, a chunk at a time: `buf` holds its bytes from `from` on,
/// up to where the reading has come back to.
struct Backwards<'a> {
    file: &'a mut std::fs::File,
    from: u64,
    buf: Vec<u8>,
}

impl Backwards<'_> {
    /// Where the last newline before `before` is, reading further back as needed; what lies
    /// past `before` is let go.
    fn newline_before(&mut self, before: u64) -> std::io::Result<Option<u64>> {
        const CHUNK: u64 = 64 * 1024;
        self.buf.truncate((before - self.from) as usize);
        loop {
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                return Ok(Some(self.from + i as u64));
            }
            if self.from == 0 {
                return Ok(None);
            }
            let more = self.from.saturating_sub(CHUNK);
            let mut chunk = read_at(self.file, more, (self.from - more) as usize)?;
            chunk.append(&mut self.buf);
            (self.from, self.buf) = (more, chunk);
        }
    }

    /// The bytes from `start` to `end`, both read already.
    fn bytes(&self, start: u64, end: u64) -> &[u8] {
        &self.buf[(start - self.from) as usize..(end - self.from) as usize]
    }
}
