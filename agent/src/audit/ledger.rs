//! The audit log as the keystore's [`Ledger`]: credential changes made without the vault key
//! (`key add`, `key remove`) are recorded here, hash-chained with every other decision, and
//! read back from the manifest's anchor by the next check. A change the keystore records is
//! thus anchored as well as the log is: checked by the agent while it holds the log open,
//! and by any head kept off the machine (docs/audit.md).
//!
//! [`AuditLedger`] is the command line's: it opens the log for each command, appends under
//! the same `flock` as the agent, and the agent takes those lines into its chain.

use std::path::{Path, PathBuf};

use super::{AuditEvent, AuditLog, since_keeping};
use crate::keystore::ledger::{
    ChangeLine, CheckLine, Vaults, Witness, judge, plausible, vouched_tag,
};
use crate::keystore::{Anchor, Evidence, Ledger, LedgerEntry};

/// The audit log at a path, opened on first use.
#[derive(Debug)]
pub struct AuditLedger {
    path: PathBuf,
    log: Option<AuditLog>,
    /// The file [`Ledger::ready`] found (device, inode): the record must go to that file, not
    /// to another put at the path meanwhile.
    ready_file: Option<(u64, u64)>,
    /// The anchor just past the last line this ledger wrote.
    written: Option<Anchor>,
    /// Reads the lines since an anchor only, not the record of the vaults
    /// ([`AuditLedger::changes_only`]).
    changes_only: bool,
    /// The file every read must open, and the running agent's head every read must reach
    /// ([`AuditLedger::held_to`]).
    held: Option<super::HeldLog>,
    /// Why a read of this ledger came to the end of the file before the agent's head: the log
    /// was cut in place while the command read it, and nothing may be recorded on such reads.
    cut: Option<String>,
}

impl AuditLedger {
    pub fn new(path: &Path) -> AuditLedger {
        AuditLedger {
            path: path.to_owned(),
            log: None,
            ready_file: None,
            written: None,
            changes_only: false,
            held: None,
            cut: None,
        }
    }

    /// Hold every read and the record to the log a running agent holds, which
    /// [`super::holds`] found at the path with the agent's head in it: every read must open
    /// that file (another file put at the path meanwhile is read as an unreadable log, and
    /// written to not at all), and must find it reaching the agent's head, as the agent's own
    /// check's reads must ([`super::held_to_head`]). A read that comes to the file's end before
    /// the head found the log cut in place, and its evidence is unread and marked
    /// [`Evidence::cut`], which the keystore's commands refuse (red-team round 26: the log cut
    /// to its length from before a token's removal right after the command checked it, and
    /// written back 6 ms later; `key add` read the prefix, in which the keystore put back from
    /// before the removal was the newest, and sealed the trader's new secret to the vault the
    /// removed token opens).
    pub fn held_to(mut self, held: super::HeldLog) -> AuditLedger {
        self.ready_file = Some(held.file);
        self.held = Some(held);
        self
    }

    /// Run a read of the log, held to [`AuditLedger::held_to`]'s file and head if given.
    fn reading(&mut self, read: impl FnOnce(&Path) -> Evidence) -> Evidence {
        let Some(held) = &self.held else {
            return read(&self.path);
        };
        crate::disk::interleave("check: the log's head taken, before the reads");
        let hold = super::Hold::File(held.file.0, held.file.1);
        let (mut out, short) = super::held_to_head(hold, Some(&held.head), || read(&self.path));
        if short {
            let why = self.cut_short();
            out.unread = true;
            out.cut = Some(why.clone());
            self.cut = Some(why);
        }
        out
    }

    /// Why a read is short of the agent's head.
    fn cut_short(&self) -> String {
        let seq = self.held.as_ref().map_or(0, |h| h.head.seq);
        format!(
            "{} ended before line {seq}, the running agent's last line, while this command read it: the log only grows, so it was cut in place (and may have been written back since)",
            self.path.display()
        )
    }

    /// A ledger whose reads since an anchor leave out the record of the vaults: for a
    /// preview of the credential changes alone, which must not read a long log from the top
    /// ([`changes_since`]). Its verdicts on the keystore as a whole are not to be used.
    pub fn changes_only(path: &Path) -> AuditLedger {
        AuditLedger {
            changes_only: true,
            ..AuditLedger::new(path)
        }
    }

    /// The last line this ledger wrote (its `seq`, hash and end), if it wrote any: a command
    /// that changed the keystore has a running agent take the log in up to there.
    pub fn written(&self) -> Option<&Anchor> {
        self.written.as_ref()
    }

    /// Why a record is refused: the log at the path is another file than the one checked.
    fn replaced(&self) -> String {
        format!(
            "{} is not the file it was when this command began (moved aside or replaced meanwhile)",
            self.path.display()
        )
    }

    fn log(&mut self) -> Result<&mut AuditLog, String> {
        if self.log.is_none() {
            let log = AuditLog::open(&self.path).map_err(|e| e.to_string())?;
            // Moved aside (and a new one started at the path) since `ready`: a record there
            // would leave the real log without it (red-team round 17, third recheck).
            if self.ready_file.is_some_and(|was| log.identity() != was) {
                return Err(self.replaced());
            }
            self.log = Some(log);
        }
        self.log
            .as_mut()
            .ok_or_else(|| "the audit log is not open".to_owned())
    }
}

impl Ledger for AuditLedger {
    fn head(&mut self) -> Option<Anchor> {
        let log = self.log().ok()?;
        log.refresh().ok()?;
        let anchor = log.anchor();
        // Short of the running agent's head: the log cut in place, read as not read.
        if self
            .held
            .as_ref()
            .is_some_and(|h| anchor.offset < h.head.offset)
        {
            self.cut = Some(self.cut_short());
            return None;
        }
        Some(anchor)
    }

    fn since(&mut self, anchor: &Anchor) -> Evidence {
        match self.changes_only {
            true => self.reading(|path| changes_since(path, anchor)),
            false => self.reading(|path| evidence(path, anchor)),
        }
    }

    fn unanchored(&mut self, why: &str) -> Evidence {
        self.reading(|path| unanchored(path, why))
    }

    /// Whether the log opens for appending now, and is the file the first such check found
    /// (asked by the command before a PIN and a touch, and again when the rotation starts,
    /// after them: a log moved aside in between must not pass the second). Not kept open: a running agent may append more
    /// in that time than a descriptor opened now would take in as others' lines (red-team
    /// round 17, recheck); a record that fails later is undone by its caller.
    fn ready(&mut self) -> Result<(), String> {
        if let Some(why) = &self.cut {
            return Err(why.clone());
        }
        let log = AuditLog::open(&self.path).map_err(|e| e.to_string())?;
        let found = log.identity();
        match self.ready_file {
            Some(was) if was != found => Err(self.replaced()),
            _ => {
                self.ready_file = Some(found);
                Ok(())
            }
        }
    }

    /// The line written counts as recorded even when its sync fails (an I/O error): it is in
    /// the file, which the next check reads, and undoing what it records would leave the
    /// log naming a change the keystore no longer has (red-team round 17, recheck). The
    /// failed sync is said.
    fn record(&mut self, entry: &LedgerEntry) -> Result<(), String> {
        // A read of this command's found the log cut: whatever it decided rests on an older
        // record than the agent's, so nothing it did is recorded as checked.
        if let Some(why) = &self.cut {
            return Err(why.clone());
        }
        let event = event(entry);
        let log = self.log()?;
        log.write_lines(&[(&event, std::time::SystemTime::now())])
            .map_err(|e| e.to_string())?;
        let (anchor, synced) = (log.anchor(), log.sync());
        self.written = Some(anchor);
        if let Err(e) = synced {
            say!(
                "tapsign: warning: the audit log's record of this change was written but could not be synced to disk ({e}): it may not survive a power failure; check the disk (dmesg)"
            );
        }
        Ok(())
    }
}

/// The keystore's evidence from the log at `path`, after `anchor`. Where the chain cannot be
/// followed from the anchor (its line changed, a line after it broken), the highest manifest
/// generation any `keystore` line of the file records still counts, chained or not: one
/// damaged byte must not hide the record of a rotation from the rollback check (a forged line
/// can only make the check refuse more).
pub fn evidence(path: &Path, anchor: &Anchor) -> Evidence {
    evidence_after(path, anchor, None)
}

/// [`evidence`], reading the record of the vaults on from where `last` read it before
/// ([`VaultsRead`]): the running agent's.
pub fn evidence_after(path: &Path, anchor: &Anchor, last: Option<&VaultsRead>) -> Evidence {
    evidence_read(path, anchor, last, true)
}

/// [`evidence`] without the record of the vaults, which a command with no cache of it reads
/// from the top of the file: for what only needs the lines since `anchor` (the credential
/// changes `tapsign unlock` names before its touch). Reading the whole record there made every
/// unlock take 400 ms on a 94 MB log (docs/benchmarks.md).
pub fn changes_since(path: &Path, anchor: &Anchor) -> Evidence {
    evidence_read(path, anchor, None, false)
}

fn evidence_read(
    path: &Path,
    anchor: &Anchor,
    last: Option<&VaultsRead>,
    with_vaults: bool,
) -> Evidence {
    let keystore_line = |e: &AuditEvent| {
        matches!(
            e,
            AuditEvent::KeyChange { .. } | AuditEvent::Keystore { .. }
        )
    };
    let read = match since_keeping(path, anchor, keystore_line) {
        Ok(s) => s,
        Err(e) => {
            let mut out = Evidence::unavailable(e.to_string());
            // The record of the vaults as far as it can be had: read again, or what this
            // agent read of the same file before (red-team round 25, recheck).
            if with_vaults {
                let (vaults, broken, _) = recorded_vaults(path, last);
                (out.recorded_vaults, out.unlinked) = (vaults.believed, vaults.unlinked);
                out.vaults_broken = broken;
            }
            return out;
        }
    };
    let mut out = Evidence {
        broken: read.gap.clone().filter(|_| read.broken),
        gap: read.gap.clone(),
        ..Evidence::default()
    };
    // The whole file, whatever the anchor (which whoever writes the manifest chooses): the
    // vaults every manifest's record names, along the chain. Read from the top already, a
    // command's reading does not read the file again: those lines are kept in `read`. The
    // running agent's reads on from what it read before, which stands against the file cut
    // in place meanwhile (red-team round 26, part 2).
    if with_vaults {
        let (vaults, vaults_broken, vaults_unread) = match (*anchor == Anchor::genesis(), last) {
            (true, None) => vaults_read(path, &read),
            _ => recorded_vaults(path, last),
        };
        (out.recorded_vaults, out.unlinked) = (vaults.believed, vaults.unlinked);
        out.vaults_broken = vaults_broken;
        // Every read of the check counts: one that failed alone (the log made unreadable
        // between two opens) left the record of the vaults empty, said as a log started
        // afresh, and the check anchored what it opened (red-team round 25, recheck).
        out.unread |= vaults_unread;
    }
    if out.gap.is_some() {
        // The chained lines are in the scan too (and counted again below).
        let scan = scan(path);
        out.unread |= !scan.read;
        out.unreadable = scan.unreadable;
        out.latest_generation = scan.highest;
        out.implausible = scan.implausible;
        out.all_changes = scan.read.then_some(scan.changes);
        out.changes_unreadable = scan.changes_unreadable;
    }
    for line in read.lines {
        match line.event {
            AuditEvent::KeyChange {
                action,
                name,
                created,
                file,
                pid,
                exe,
            } => {
                let change = crate::keystore::KeyChange {
                    action,
                    name,
                    created,
                    sha256: file,
                };
                out.changes.push(change.clone());
                out.change_lines.push(ChangeLine {
                    seq: line.seq,
                    time: line.time,
                    change,
                    pid,
                    exe,
                });
            }
            AuditEvent::Keystore {
                generation,
                vault,
                vault_key,
                reason,
                credentials,
                signature,
                ..
            } => {
                let vault_key = vault_key.unwrap_or_default();
                out.after_anchor.push((
                    generation,
                    vouched_tag(&vault, &vault_key, &out.recorded_vaults),
                ));
                out.checks.push(CheckLine {
                    seq: line.seq,
                    unlock: reason == crate::keystore::ledger::UNLOCK_REASON,
                    generation,
                    vault_key,
                    reason,
                    records: credentials,
                    signature: signature.unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    // Judged from what the scan of the whole file believed where the chain breaks, else from
    // nothing, as a reading from the first line is: a reader that knows the manifest whose
    // anchor this is judges it again from that manifest ([`Evidence::above`]).
    let (latest, vault, implausible) = judge(&out.after_anchor, out.latest_generation);
    out.latest_generation = out.latest_generation.max(latest);
    out.implausible = out.implausible.max(implausible);
    out.latest_vault = vault;
    out
}

/// Evidence with no anchor to follow: the gap `why`, and what a [`scan`] of the whole file
/// finds (a manifest written while the log could not be read has no anchor; the log may be
/// readable again now, and it may record a newer generation).
pub fn unanchored(path: &Path, why: &str) -> Evidence {
    unanchored_after(path, why, None)
}

/// [`unanchored`], reading the record of the vaults as [`evidence_after`] does.
pub fn unanchored_after(path: &Path, why: &str, last: Option<&VaultsRead>) -> Evidence {
    let scan = scan(path);
    let (vaults, vaults_broken, vaults_unread) = recorded_vaults(path, last);
    Evidence {
        gap: Some(why.to_owned()),
        unread: !scan.read || vaults_unread,
        latest_generation: scan.highest,
        implausible: scan.implausible,
        unreadable: scan.unreadable,
        recorded_vaults: vaults.believed,
        unlinked: vaults.unlinked,
        vaults_broken,
        ..Evidence::default()
    }
}

/// The vault public key each manifest's record names, from the log's first line to its last,
/// in order, each once, as far as the record believes it ([`Vaults`]); or why that record
/// cannot be trusted. Read along the chain from the first line (a crash's torn write the log
/// went on from is read past). Where the chain breaks, what came before the break stands, and
/// every line of the file that is a `keystore` event naming a `vault_key`, read as JSON
/// whatever else in it does not parse (a field name escaped, a number made a string), is then
/// taken by the same rule: such a line can only add a vault the keystore must descend from,
/// and only with links signed by one believed. What a break can hide is a line taken out or
/// made into something else; so a break with no vault recorded before it (where the first
/// record of the keystore may have been) is a record that cannot be trusted. A log that
/// cannot be opened names none (a log moved aside: docs/keystore-format.md, "The lineage"),
/// and says so: the third value is whether a read failed ([`Evidence::unread`]).
///
/// With `last`, a read whole that found vaults with the chain intact is remembered, and the
/// next read takes up from where it ended ([`VaultsRead`]).
fn recorded_vaults(path: &Path, last: Option<&VaultsRead>) -> (Vaults, Option<String>, bool) {
    let _reading = last.map(|l| l.1.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(known) = last.and_then(|l| l.read_on(path)) {
        return known;
    }
    let keystore = |e: &AuditEvent| matches!(e, AuditEvent::Keystore { .. });
    match since_keeping(path, &Anchor::genesis(), keystore) {
        Ok(read) => {
            let (vaults, broken, unread) = vaults_read(path, &read);
            if let Some(last) = last
                && read.gap.is_none()
                && !unread
                && !vaults.believed.is_empty()
            {
                last.remember(path, read.end, &vaults, highest(&read.lines, None));
            }
            (vaults, broken, unread)
        }
        // What this agent read of the same file before still stands: the vaults a log
        // recorded are not unrecorded by its becoming unreadable (red-team round 25, recheck:
        // a keystore of another vault, wrapped to the trader's token, opened and signed for
        // the one unlock whose read of the record failed, as under a log started afresh).
        Err(_) => {
            let known = last.and_then(|l| l.remembered(path)).unwrap_or_default();
            (known, None, true)
        }
    }
}

/// The vaults the running agent last read recorded in its audit log (those believed, which
/// the lines read on are judged after, and those left out), and where that read ended. The agent checks the keystore at every unlock, and a log of a year's signatures is
/// not read whole each time: the next read starts where the last one ended, whose line is
/// checked as a manifest's anchor is (still there, unchanged), and follows the chain from it.
///
/// This holds the keystore to every vault the log recorded when it was read, and to every
/// vault recorded after. Only a read that followed the chain intact from the first line to
/// its end is remembered, and the hash of its last line covers every line before it: a file
/// holding that same line at that same place holds the chain that was read, but for lines
/// edited or taken out since (which could hide a recorded vault, or make the record before
/// the first one look broken, from a whole read) or put in. A line put in there is not read:
/// where the log read was someone else's, put in place while no agent ran, and the real log's
/// lines are written back over it up to that line, a whole read would hold the keystore to
/// the real log's vaults and this does not. That is the window of a log replaced while no
/// agent runs (docs/keystore-format.md, "The lineage"), and the chain breaks where the two
/// logs meet, which `tapsign audit verify` shows. A log whose line there is gone or changed
/// (replaced, cut, started afresh) is read whole again.
#[derive(Default)]
pub struct VaultsRead(
    std::sync::Mutex<Option<LastRead>>,
    /// Held for the whole of each read ([`recorded_vaults`]): a check that comes while the
    /// agent's start-up read is under way waits for it and reads on from it, rather than
    /// reading alone with nothing remembered (red-team round 25, third recheck: the first
    /// unlock on a long log, with the log made unreadable, knew no vault).
    std::sync::Mutex<()>,
);

/// Read the record of the vaults in the log at `path` into `last` ahead of the check that
/// will want it: the agent does at start, while nobody waits, so its first unlock reads on.
pub fn read_vaults(path: &Path, last: &VaultsRead) {
    let _ = recorded_vaults(path, Some(last));
}

struct LastRead {
    path: PathBuf,
    /// The file's device and inode when it was read.
    file: (u64, u64),
    end: Anchor,
    vaults: Vaults,
    /// The highest manifest generation those reads found recorded ([`judge`]d along the
    /// chain): the keystore checked is not to be older ([`VaultsRead::highest`]).
    highest: Option<u64>,
}

/// The highest manifest generation the `keystore` lines among `lines` record, judged along
/// the chain from `from` as a check judges them.
fn highest(lines: &[super::AuditLine], from: Option<u64>) -> Option<u64> {
    let records: Vec<(u64, String)> = (lines.iter())
        .filter_map(|l| match &l.event {
            AuditEvent::Keystore { generation, .. } => Some((*generation, String::new())),
            _ => None,
        })
        .collect();
    judge(&records, from).0.max(from)
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

impl VaultsRead {
    fn last(&self) -> std::sync::MutexGuard<'_, Option<LastRead>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, path: &Path, end: Anchor, vaults: &Vaults, highest: Option<u64>) {
        let Some(file) = super::held_file().or_else(|| identity(path)) else {
            return;
        };
        *self.last() = Some(LastRead {
            path: path.to_owned(),
            file,
            end,
            vaults: vaults.clone(),
            highest,
        });
    }

    /// The vaults the last read of the log at `path` found, where the file the reads are held
    /// to ([`super::held_to`]), else the file there now, is the one it read (same device and
    /// inode).
    fn remembered(&self, path: &Path) -> Option<Vaults> {
        self.of_file(path, |last| last.vaults.clone())
    }

    /// `pick` of the last read of the log at `path`, where that read was of the file the reads
    /// are held to ([`super::held_to`]), else of the file there now (same device and inode).
    fn of_file<T>(&self, path: &Path, pick: impl FnOnce(&LastRead) -> T) -> Option<T> {
        let file = super::held_file().or_else(|| identity(path));
        let last = self.last();
        let last = last.as_ref()?;
        (last.path == path && Some(last.file) == file).then(|| pick(last))
    }

    /// The highest manifest generation the reads of the log at `path` found recorded, for the
    /// same file as [`VaultsRead::remembered`]: the agent's start-up read knows it before any
    /// unlock, and a check whose own reads of the log were cut short must not take a keystore
    /// older than it (red-team round 26, part 2: a fresh agent knew no generation until its
    /// first unlock, whose reads the log cut in place and restored made open a pre-rotation
    /// keystore).
    pub fn highest(&self, path: &Path) -> Option<u64> {
        self.of_file(path, |last| last.highest).flatten()
    }

    /// [`recorded_vaults`] read on from where the last read of the log at `path` ended;
    /// `None` when it must be read whole.
    fn read_on(&self, path: &Path) -> Option<(Vaults, Option<String>, bool)> {
        let (end, mut vaults, was) = {
            let last = self.last();
            let last = last.as_ref()?;
            if last.path != path || Some(last.file) != identity(path) {
                return None;
            }
            (last.end.clone(), last.vaults.clone(), last.highest)
        };
        let keystore = |e: &AuditEvent| matches!(e, AuditEvent::Keystore { .. });
        let read = since_keeping(path, &end, keystore).ok()?;
        if read.gap.is_some() && !read.broken {
            // The same file (device and inode) no longer holds the line the last read ended
            // at: cut or rewritten in place, for good or for the moment of this read. The
            // vaults it recorded stand, and this read is said unread; read whole, the cut file
            // dropped them (red-team round 26, part 2: the log cut to its pre-rotation prefix
            // during a fresh agent's first unlock, and written back, had the check open the
            // keystore from before the rotation).
            return Some((vaults, None, true));
        }
        take_vaults(&mut vaults, &read.lines);
        if read.broken {
            // A break after vaults were recorded: those stand, and every line that names one
            // anywhere in the file is taken too, as in a whole read ([`vaults_read`]).
            let unread = !take_vaults_anywhere(&mut vaults, path);
            return Some((vaults, None, unread));
        }
        self.remember(path, read.end, &vaults, highest(&read.lines, was));
        Some((vaults, None, false))
    }
}

/// [`recorded_vaults`] from the log at `path` read from its first line (`read`, which keeps at
/// least its `keystore` lines).
fn vaults_read(path: &Path, read: &super::Since) -> (Vaults, Option<String>, bool) {
    let mut vaults = Vaults::default();
    take_vaults(&mut vaults, &read.lines);
    let Some(why) = read.gap.clone().filter(|_| read.broken) else {
        return (vaults, None, false);
    };
    let before_the_break = !vaults.believed.is_empty();
    let unread = !take_vaults_anywhere(&mut vaults, path);
    match before_the_break {
        true => (vaults, None, unread),
        false => (vaults, Some(why), unread),
    }
}

/// Take the vault each `keystore` line among `lines` names into `vaults`.
fn take_vaults(vaults: &mut Vaults, lines: &[super::AuditLine]) {
    for line in lines {
        if let AuditEvent::Keystore {
            vault_key: Some(key),
            lineage,
            ..
        } = &line.event
        {
            vaults.take(line.seq, key, lineage);
        }
    }
}

/// Take into `vaults` the `vault_key` of each line of the log at `path` that reads as a JSON
/// object whose `event` is of type `keystore`, however the rest of it reads, in file order,
/// with its `lineage` if that reads (none if not). Its `seq` names it, or else its number in
/// the file. False where the file could not be opened or read to its end.
fn take_vaults_anywhere(vaults: &mut Vaults, path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = super::open_regular(path) else {
        return false;
    };
    let mut reader = std::io::BufReader::new(file);
    let (mut buf, mut read) = (Vec::new(), 0);
    for i in 1.. {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                super::reached(read);
                break;
            }
            Ok(n) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                super::passed(read, read + n as u64, line);
                read += n as u64;
            }
            Err(_) => return false,
        }
        let Ok(line) = serde_json::from_slice::<serde_json::Value>(&buf) else {
            continue;
        };
        let event = &line["event"];
        if event["type"] == "keystore"
            && let Some(key) = event["vault_key"].as_str()
        {
            let links: Vec<_> =
                serde_json::from_value(event["lineage"].clone()).unwrap_or_default();
            vaults.take(line["seq"].as_u64().unwrap_or(i), key, &links);
        }
    }
    true
}

/// What the `keystore` lines of a log say, read line by line without following the chain.
#[derive(Debug, Default)]
pub struct Scan {
    /// The highest generation a readable `keystore` line records that is [`plausible`] after
    /// those before it.
    pub highest: Option<u64>,
    /// The highest one above it (a line made by hand, left out).
    pub implausible: Option<u64>,
    /// The first line that names a generation but cannot be read as a `keystore` record.
    pub unreadable: Option<String>,
    /// Whether the file could be opened and read to its end.
    pub read: bool,
    /// Every readable `key_change` line's change, chained or not, oldest first.
    pub changes: Vec<crate::keystore::KeyChange>,
    /// The first line that is a `key_change` but cannot be read as one.
    pub changes_unreadable: Option<String>,
}

/// Read every line of the log at `path` that names a generation (only a `keystore` record
/// has that key: every other string in a line is JSON-escaped, so `"generation"` with its
/// quotes appears nowhere else). A last line with no newline is a write a crash tore, as
/// docs/audit.md has it, and is left out. A file that cannot be read gives an empty scan.
pub fn scan(path: &Path) -> Scan {
    use std::io::BufRead;
    let mut out = Scan::default();
    let Ok(file) = super::open_regular(path) else {
        return out;
    };
    out.read = true;
    let mut reader = std::io::BufReader::new(file);
    let (mut buf, mut read) = (Vec::new(), 0);
    for i in 0.. {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                super::reached(read);
                break;
            }
            Ok(n) => read += n as u64,
            // Read in part: what follows may record a newer generation, or a change.
            Err(_) => {
                out.read = false;
                break;
            }
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            super::reached(read);
            break;
        };
        super::passed(read - buf.len() as u64, read, line);
        // Most lines are signatures: only one naming a generation, or a key change, is parsed
        // (tapsign writes both keys unescaped; inside a string value a quote is escaped, so no
        // bot's text holds them).
        if line.windows(19).any(|w| w == b"\"type\":\"key_change\"") {
            match serde_json::from_slice::<super::AuditLine>(line) {
                Ok(super::AuditLine {
                    event:
                        AuditEvent::KeyChange {
                            action,
                            name,
                            created,
                            file,
                            ..
                        },
                    ..
                }) => out.changes.push(crate::keystore::KeyChange {
                    action,
                    name,
                    created,
                    sha256: file,
                }),
                _ => {
                    out.changes_unreadable.get_or_insert_with(|| {
                        format!(
                            "line {} of {} records a key change but cannot be read",
                            i + 1,
                            path.display()
                        )
                    });
                }
            }
            continue;
        }
        if !line.windows(12).any(|w| w == b"\"generation\"") {
            continue;
        }
        match serde_json::from_slice::<super::AuditLine>(line) {
            Ok(super::AuditLine {
                event: AuditEvent::Keystore { generation, .. },
                ..
            }) if !plausible(generation, out.highest) => {
                out.implausible = out.implausible.max(Some(generation));
            }
            Ok(super::AuditLine {
                event: AuditEvent::Keystore { generation, .. },
                ..
            }) => out.highest = out.highest.max(Some(generation)),
            _ => {
                out.unreadable.get_or_insert_with(|| {
                    format!(
                        "line {} of {} records a keystore manifest but cannot be read",
                        i + 1,
                        path.display()
                    )
                });
            }
        }
    }
    out
}

/// Take a line's event into what a running agent saw recorded (lines of other kinds are not
/// the keystore's business).
pub fn witness(w: &mut Witness, seen: &super::Witnessed) {
    let seq = seen.seq;
    match &seen.event {
        AuditEvent::KeyChange {
            action,
            name,
            created,
            file,
            ..
        } => w.saw_change(
            seq,
            crate::keystore::KeyChange {
                action: *action,
                name: name.clone(),
                created: *created,
                sha256: file.clone(),
            },
        ),
        AuditEvent::Keystore {
            generation,
            vault,
            vault_key,
            lineage,
            reason,
            ..
        } => {
            w.saw_manifest(seq, *generation, vault, reason, seen.own);
            w.saw_vault(
                seq,
                vault_key.as_deref().unwrap_or_default(),
                lineage,
                seen.own,
            );
        }
        _ => {}
    }
}

/// The audit event for a ledger entry, written by this process.
pub fn event(entry: &LedgerEntry) -> AuditEvent {
    match entry {
        LedgerEntry::Key(k) => AuditEvent::KeyChange {
            action: k.action,
            name: k.name.clone(),
            created: k.created,
            file: k.sha256.clone(),
            pid: std::process::id(),
            exe: std::fs::read_link("/proc/self/exe")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        },
        LedgerEntry::Manifest {
            generation,
            vault,
            vault_key,
            links,
            reason,
            records,
            signature,
        } => AuditEvent::Keystore {
            generation: *generation,
            vault: vault.clone(),
            vault_key: Some(vault_key.clone()).filter(|k| !k.is_empty()),
            lineage: links.clone(),
            reason: reason.clone(),
            credentials: Some(records.clone()).filter(|_| !signature.is_empty()),
            signature: Some(signature.clone()).filter(|s| !s.is_empty()),
        },
        LedgerEntry::Refused { name, reason } => AuditEvent::KeyRefused {
            name: name.clone(),
            reason: reason.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team round 25, third recheck: a check that came while the agent's start-up read of
    /// the record of the vaults was under way read alone, with nothing remembered; with the log
    /// unreadable for it, it knew no vault. It waits for that read and takes what it found.
    #[test]
    fn a_read_while_another_is_under_way_waits_for_it_and_takes_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = crate::audit::AuditLog::open(&path).unwrap();
        let key = format!("02{}", "11".repeat(32));
        log.append(&AuditEvent::Keystore {
            generation: 1,
            vault: String::new(),
            vault_key: Some(key.clone()),
            lineage: Vec::new(),
            reason: "keystore created".into(),
            credentials: None,
            signature: None,
        })
        .unwrap();
        drop(log);
        let last = VaultsRead::default();
        let (started, finish) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            // The start-up read, held at its start while the check comes.
            s.spawn(|| {
                let _reading = last.1.lock().unwrap();
                started.wait();
                finish.wait();
                drop(_reading);
            });
            started.wait();
            let check = s.spawn(|| {
                // Whatever it reads itself fails: only the other read can give it the vaults.
                crate::disk::FAIL_OPENS.with(|f| f.set(u64::MAX));
                let out = recorded_vaults(&path, Some(&last));
                crate::disk::FAIL_OPENS.with(|f| f.set(0));
                out
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            let waited = !check.is_finished();
            // The read under way finds the vaults and remembers them as it ends.
            let (vaults, _, unread) = {
                let keystore = |e: &AuditEvent| matches!(e, AuditEvent::Keystore { .. });
                let read = since_keeping(&path, &Anchor::genesis(), keystore).unwrap();
                let (vaults, broken, unread) = vaults_read(&path, &read);
                assert!(broken.is_none() && !unread);
                last.remember(&path, read.end, &vaults, None);
                (vaults, broken, unread)
            };
            assert!(!unread && vaults.believed == [key.clone()]);
            finish.wait();
            assert!(waited, "the check did not wait for the read under way");
            let (got, _, unread) = check.join().unwrap();
            assert!(unread, "its own read failed");
            assert_eq!(got.believed, std::slice::from_ref(&key));
        });
    }
}
