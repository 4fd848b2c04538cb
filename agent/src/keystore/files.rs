//! File plumbing: private folders, atomic writes, bounded reads, and the envelope every
//! keystore file shares (canonical JSON with a checksum).
//!
//! The envelope makes *any* change to a file visible on the cheapest read (listing), not only
//! at unlock: the checksum covers every value, and the file must be byte for byte the
//! canonical serialization of what it parses to, so changed whitespace, case, field order or
//! trailing bytes are caught too. The checksum is not a MAC (anyone can recompute it); the
//! AEAD tags and the vault key check at unlock are what stop deliberate tampering.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::KeystoreError;
use crate::disk::{self, DirError, Exposure, Kind, Need, Place, crash_point};

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// No keystore file comes near this; anything bigger is not ours, and is not read whole. The
/// largest is the manifest, about 150 bytes per credential and per removal: 64 KiB used to
/// stop a keystore at some 440 keys (docs/benchmarks.md signs with 1,000).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A file type of the keystore: its `format` tag and where its checksum lives.
pub(crate) trait Envelope: Serialize + DeserializeOwned {
    /// The value of the file's `format` field (`tapsign-vault`, ...).
    const FORMAT: &'static str;
    /// The highest `version` of this file this tapsign reads (from 1 up).
    const MAX_VERSION: u64 = FORMAT_VERSION;
    fn checksum_mut(&mut self) -> &mut String;
    /// Whether the fields are those of the file's `version` (a field a version brought is
    /// not in a file of an earlier one).
    fn fits_version(&self) -> bool {
        true
    }
}

/// Serialize `value` the one way tapsign writes it, with its checksum filled in.
pub(crate) fn encode<T: Envelope>(path: &Path, mut value: T) -> Result<Vec<u8>, KeystoreError> {
    value.checksum_mut().clear();
    let body = serde_json::to_vec_pretty(&value).map_err(|e| bug(path, e))?;
    *value.checksum_mut() = checksum(&body);
    let mut out = serde_json::to_vec_pretty(&value).map_err(|e| bug(path, e))?;
    out.push(b'\n');
    Ok(out)
}

/// Parse a file written by [`encode`], refusing anything that is not exactly that.
pub(crate) fn decode<T: Envelope + Clone>(path: &Path, bytes: &[u8]) -> Result<T, KeystoreError> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| KeystoreError::damaged(path, format!("not valid JSON ({e})")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| KeystoreError::damaged(path, "not a JSON object"))?;
    if obj.get("format").and_then(Value::as_str) != Some(T::FORMAT) {
        return Err(KeystoreError::damaged(
            path,
            format!(
                "not a {} file (its \"format\" field is wrong or missing)",
                T::FORMAT
            ),
        ));
    }
    // Check the checksum before trusting any value, the version included: a flipped digit in
    // "version" must read as damage, not as "upgrade tapsign".
    let stored = match obj.get_mut("checksum") {
        Some(Value::String(s)) => std::mem::take(s),
        _ => {
            return Err(KeystoreError::damaged(
                path,
                "the \"checksum\" field is missing",
            ));
        }
    };
    let body = serde_json::to_vec_pretty(&value).map_err(|e| bug(path, e))?;
    if checksum(&body) != stored {
        return Err(KeystoreError::damaged(
            path,
            "its checksum does not match its contents (bytes were changed, added or removed)",
        ));
    }
    let version = value.get("version").and_then(Value::as_u64);
    if !version.is_some_and(|v| (1..=T::MAX_VERSION).contains(&v)) {
        return match version {
            Some(found) if found > T::MAX_VERSION => Err(KeystoreError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                supported: T::MAX_VERSION,
            }),
            _ => Err(KeystoreError::damaged(
                path,
                "its \"version\" field is invalid",
            )),
        };
    }
    let parsed: T = serde_json::from_value(value)
        .map_err(|e| KeystoreError::damaged(path, format!("unexpected contents ({e})")))?;
    if !parsed.fits_version() {
        return Err(KeystoreError::damaged(
            path,
            "its fields are not those of its \"version\"",
        ));
    }
    if encode(path, parsed.clone())? != bytes {
        return Err(KeystoreError::damaged(path, NOT_EXACT_FORM));
    }
    Ok(parsed)
}

/// The [`KeystoreError::Damaged`] detail of a file whose fields all read, with a checksum that
/// matches, but that is not byte for byte what tapsign writes for them: what it holds is
/// likely intact ([`KeystoreError::content_reads`]).
pub(crate) const NOT_EXACT_FORM: &str =
    "it is not in the exact form tapsign writes (extra bytes, spacing or field order)";

fn checksum(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn bug(path: &Path, e: serde_json::Error) -> KeystoreError {
    KeystoreError::Internal(format!("cannot serialize {} ({e})", path.display()))
}

/// Decode lowercase hex as tapsign writes it; anything else is damage.
pub(crate) fn parse_hex(path: &Path, field: &str, s: &str) -> Result<Vec<u8>, KeystoreError> {
    match hex::decode(s) {
        Ok(bytes) if hex::encode(&bytes) == s => Ok(bytes),
        _ => Err(KeystoreError::damaged(
            path,
            format!("field {field:?} is not lowercase hex"),
        )),
    }
}

/// Make sure `path` is a folder only we can use, creating it (and missing parents) 0700.
pub(crate) fn ensure_private_dir(path: &Path) -> Result<(), KeystoreError> {
    disk::ensure_private_dir(path).map_err(dir_error)
}

/// Does the private folder `path` exist? Errs if it exists but others can use it.
pub(crate) fn private_dir_exists(path: &Path) -> Result<bool, KeystoreError> {
    disk::check_dir(path, Need::Private).map_err(dir_error)
}

fn dir_error(e: DirError) -> KeystoreError {
    match e {
        DirError::Io {
            action,
            path,
            source,
        } => KeystoreError::io(action, path, source),
        DirError::Exposed { path, problem } => KeystoreError::InsecurePermissions {
            fix: problem.fix(&path, Kind::Folder),
            path,
            problem,
        },
    }
}

/// Read a whole keystore file; `None` if it does not exist. The file must be ours alone
/// (checked on the open file: no race with a swap): others could have changed it.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, KeystoreError> {
    read_private_within(path, MAX_FILE_BYTES)
}

/// [`read_private`] of a kind of file that is never larger than `max` bytes (a keyslot): every
/// `status` and unlock reads each keyslot file there is, and 1,500 sparse 8 MB files (no disk
/// used) made a `status` read 12 GB and miss the CLI's 5 s (red-team round 19).
pub(crate) fn read_private_within(path: &Path, max: u64) -> Result<Option<Vec<u8>>, KeystoreError> {
    // Non-blocking (a FIFO left where a keystore file belongs would wedge `key list` and the
    // unlock); the type check below then refuses it.
    let file = match disk::open_nonblocking(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(KeystoreError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| KeystoreError::io("inspect", path, e))?;
    match disk::exposure(&meta, Kind::File, Need::Private) {
        None => {}
        Some(Exposure::NotAFile) => {
            return Err(KeystoreError::damaged(path, "it is not a regular file"));
        }
        Some(problem) => {
            return Err(KeystoreError::InsecurePermissions {
                fix: problem.fix(path, Kind::File),
                path: path.to_owned(),
                problem,
            });
        }
    }
    if meta.len() > max {
        return Err(KeystoreError::damaged(
            path,
            "it is far larger than any keystore file of its kind",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeystoreError::io("read", path, e))?;
    Ok(Some(bytes))
}

/// Whether [`write_atomic`] may replace an existing file.
pub(crate) enum Overwrite<'a> {
    Replace,
    /// Refuse an existing file with [`KeystoreError::Exists`] naming it as `what` `name`.
    Refuse {
        what: &'static str,
        name: &'a str,
    },
}

/// Write `bytes` to `path` atomically ([`disk::write_atomic`]: the old file or the new one,
/// never a mix, even across a crash or a full disk).
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite<'_>,
) -> Result<(), KeystoreError> {
    let place = match overwrite {
        Overwrite::Replace => Place::Replace,
        Overwrite::Refuse { .. } => Place::NewOnly,
    };
    disk::write_atomic(path, bytes, place).map_err(|e| match overwrite {
        Overwrite::Refuse { what, name } if e.exists() => KeystoreError::Exists {
            what,
            name: name.to_owned(),
            path: path.to_owned(),
        },
        _ => KeystoreError::io(e.step, e.path, e.source),
    })
}

/// Remove a keystore file durably.
pub(crate) fn remove_private(path: &Path) -> Result<(), KeystoreError> {
    let (dir, _) = split(path)?;
    crash_point("remove a file");
    fs::remove_file(path).map_err(|e| KeystoreError::io("remove", path, e))?;
    sync_dir(dir)
}

/// Remove the temp files [`write_atomic`] leaves when its process dies before the rename
/// (`.<name>.<hex>.tmp`). Only under the writer lock: otherwise one could be another writer's
/// file in the making.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<(), KeystoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(KeystoreError::io("list the folder", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| KeystoreError::io("list the folder", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if disk::is_temp(&name) {
            remove_private(&entry.path())?;
        }
    }
    Ok(())
}

/// Move the folder `from` to `to`, which must not exist yet, durably: the parent's entry
/// changes in one step.
pub(crate) fn rename_dir(from: &Path, to: &Path) -> Result<(), KeystoreError> {
    let (parent, _) = split(to)?;
    if to.exists() {
        return Err(KeystoreError::damaged(
            to,
            "a folder of that name is in the way; move it elsewhere",
        ));
    }
    crash_point("rename a folder");
    fs::rename(from, to).map_err(|e| KeystoreError::io("rename a folder to", to, e))?;
    sync_dir(parent)
}

/// Remove a folder and everything in it, durably. A folder already gone is fine.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), KeystoreError> {
    let (parent, _) = split(dir)?;
    if fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    crash_point("remove a folder");
    match fs::remove_dir_all(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KeystoreError::io("remove the folder", dir, e)),
    }
}

/// The rename is only durable once the folder entry is on disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), KeystoreError> {
    disk::sync_dir(dir).map_err(|e| KeystoreError::io("flush to disk the folder", dir, e))
}

fn split(path: &Path) -> Result<(&Path, String), KeystoreError> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name.to_string_lossy().into_owned())),
        _ => Err(KeystoreError::Internal(format!(
            "{} is not a file path",
            path.display()
        ))),
    }
}

/// The entries of a keystore folder worth looking at, sorted: `(path, stem)` for each
/// `*.json`, or an error for a file that has no business there. Temp files are skipped.
/// One folder entry: `(path, stem)`, or why it does not belong.
pub(crate) type Entry = Result<(PathBuf, String), KeystoreError>;

pub(crate) fn list_json(dir: &Path) -> Result<Vec<Entry>, KeystoreError> {
    let entries = fs::read_dir(dir).map_err(|e| KeystoreError::io("list the folder", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| KeystoreError::io("list the folder", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        out.push(match name.strip_suffix(".json") {
            Some(stem) if !stem.is_empty() => Ok((path, stem.to_owned())),
            _ => Err(KeystoreError::Stray { path }),
        });
    }
    out.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(out)
}

fn sort_key(entry: &Entry) -> Option<&Path> {
    match entry {
        Ok((p, _)) => Some(p),
        Err(e) => e.path(),
    }
}

#[cfg(test)]
pub(crate) use crate::disk::{CRASH_AFTER, FAIL_AFTER};
