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
            break;
        }
        offset += n as u64;
        let Some(bytes) = buf.strip_suffix(b"\n") else {
            // A torn last line: nothing after it to check.
            break;
        };
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
