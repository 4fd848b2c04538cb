//! File plumbing: private folders, atomic writes, bounded reads, and the envelope every
//! keystore file shares (canonical JSON with a checksum).
//!
//! The envelope makes *any* change to a file visible on the cheapest read (listing), not only
//! at unlock: the checksum covers every value, and the file must be byte for byte the
//! canonical serialization of what it parses to, so changed whitespace, case, field order or
//! trailing bytes are caught too. The checksum is not a MAC (anyone can recompute it); the
//! AEAD tags and the vault key check at unlock are what stop deliberate tampering.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::KeystoreError;

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
    fn checksum_mut(&mut self) -> &mut String;
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
    if version != Some(FORMAT_VERSION) {
        return match version {
            Some(found) if found > FORMAT_VERSION => Err(KeystoreError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                supported: FORMAT_VERSION,
            }),
            _ => Err(KeystoreError::damaged(
                path,
                "its \"version\" field is invalid",
            )),
        };
    }
    let parsed: T = serde_json::from_value(value)
        .map_err(|e| KeystoreError::damaged(path, format!("unexpected contents ({e})")))?;
    if encode(path, parsed.clone())? != bytes {
        return Err(KeystoreError::damaged(
            path,
            "it is not in the exact form tapsign writes (extra bytes, spacing or field order)",
        ));
    }
    Ok(parsed)
}

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
    match fs::metadata(path) {
        Ok(meta) => check_private(path, &meta, true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Created with the mode, not chmod-ed afterwards: no window where it is open.
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| KeystoreError::io("create the folder", path, e))?;
            let meta =
                fs::metadata(path).map_err(|e| KeystoreError::io("inspect the folder", path, e))?;
            check_private(path, &meta, true)
        }
        Err(e) => Err(KeystoreError::io("inspect the folder", path, e)),
    }
}

/// Does the private folder `path` exist? Errs if it exists but others can use it.
pub(crate) fn private_dir_exists(path: &Path) -> Result<bool, KeystoreError> {
    match fs::metadata(path) {
        Ok(meta) => check_private(path, &meta, true).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(KeystoreError::io("inspect the folder", path, e)),
    }
}

/// Refuse what other users could read or write: they could swap files under us. We report
/// rather than chmod: a widened mode means something else touched the keystore, and the
/// user should know.
fn check_private(path: &Path, meta: &fs::Metadata, dir: bool) -> Result<(), KeystoreError> {
    if meta.is_dir() != dir {
        let what = if dir { "a folder" } else { "a regular file" };
        return Err(KeystoreError::damaged(path, format!("it is not {what}")));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 || meta.uid() != rustix::process::geteuid().as_raw() {
        let want = if dir { 0o700 } else { 0o600 };
        return Err(KeystoreError::InsecurePermissions {
            path: path.to_owned(),
            mode,
            want,
        });
    }
    Ok(())
}

/// Read a whole keystore file; `None` if it does not exist.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, KeystoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(KeystoreError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| KeystoreError::io("inspect", path, e))?;
    check_private(path, &meta, false)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(KeystoreError::damaged(
            path,
            "it is far larger than any keystore file",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
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

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never a mix,
/// even across a crash or a full disk: temp file in the same folder (created 0600), write,
/// fsync, rename (or link, to refuse an existing file without a race), fsync the folder.
/// On failure the temp file is removed and the old file is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite<'_>,
) -> Result<(), KeystoreError> {
    let (dir, name) = split(path)?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| KeystoreError::Random(e.to_string()))?;
    // Leading dot: listings skip it, so a crash's leftover never reads as a damaged entry.
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let result = write_then_place(&tmp, path, bytes, overwrite);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

fn write_then_place(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite<'_>,
) -> Result<(), KeystoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| KeystoreError::io("create", tmp, e))?;
    write_data(&mut file, bytes).map_err(|e| KeystoreError::io("write", tmp, e))?;
    file.sync_all()
        .map_err(|e| KeystoreError::io("flush to disk", tmp, e))?;
    drop(file);
    crash_point("place a written file");
    match overwrite {
        Overwrite::Replace => {
            fs::rename(tmp, path).map_err(|e| KeystoreError::io("replace", path, e))
        }
        Overwrite::Refuse { what, name } => {
            // link() fails if the name exists, atomically: no check-then-rename race.
            fs::hard_link(tmp, path).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => KeystoreError::Exists {
                    what,
                    name: name.to_owned(),
                    path: path.to_owned(),
                },
                _ => KeystoreError::io("create", path, e),
            })?;
            fs::remove_file(tmp).map_err(|e| KeystoreError::io("remove", tmp, e))
        }
    }
}

/// Remove a keystore file durably.
pub(crate) fn remove_private(path: &Path) -> Result<(), KeystoreError> {
    let (dir, _) = split(path)?;
    crash_point("remove a file");
    fs::remove_file(path).map_err(|e| KeystoreError::io("remove", path, e))?;
    sync_dir(dir)
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeystoreError::io("flush to disk the folder", dir, e))
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
thread_local! {
    /// Test hook: let this many steps that change the disk (placing a file, removing one,
    /// renaming or removing a folder) through, then panic before the next, like a crash: no
    /// error path and no cleanup runs. `None`: never.
    pub(crate) static CRASH_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// A place where a crash leaves the disk in a state of its own; tests stop here (see
/// `CRASH_AFTER`) to check every such state is the old keystore or the new one.
#[cfg(test)]
pub(crate) fn crash_point(step: &str) {
    CRASH_AFTER.with(|c| match c.get() {
        Some(0) => {
            c.set(None);
            panic!("simulated crash before: {step}");
        }
        Some(n) => c.set(Some(n - 1)),
        None => {}
    });
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn crash_point(_step: &str) {}

#[cfg(test)]
thread_local! {
    /// Test hook: let this many writes on this thread through, then fail each one half way,
    /// like a full disk. `None`: never fail.
    pub(crate) static FAIL_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

fn write_data(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    match FAIL_AFTER.with(|f| f.get()) {
        Some(0) => {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (test)",
            ));
        }
        Some(n) => FAIL_AFTER.with(|f| f.set(Some(n - 1))),
        None => {}
    }
    file.write_all(bytes)
}
