//! The agent's files on disk: one check of who else can reach a file or folder, private
//! folders, and the one atomic write every file tapsign replaces goes through.
//!
//! Who may reach what (docs/keystore-format.md "Permissions", docs/protocol.md, docs/audit.md):
//! - [`Need::Private`]: ours alone, no access at all for group or others (folders 0700, files
//!   0600). The socket's folder (whoever can list or write it can find or swap the socket)
//!   and the keystore (it names every key and token).
//! - [`Need::Unwritable`]: ours or root's, and writable by no one else; others may read. What
//!   decides what the agent does but holds no secret: config.toml and the folders holding it
//!   (often a 0755 `~/.config`), and the audit log's folder.
//!
//! A symbolic link is never accepted where a folder is checked: the link could be pointed
//! elsewhere later, after the check.

use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How closed a file or folder must be (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Ours alone: no access for group or others.
    Private,
    /// Ours or root's, writable by no one else.
    Unwritable,
}

/// What is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Folder,
    File,
}

/// Why a file or folder is more open than it must be. Reads after the path: "`<path>` is a
/// symbolic link".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exposure {
    #[error("is a symbolic link (it could be pointed elsewhere after the check)")]
    Symlink,
    #[error("is not a folder")]
    NotAFolder,
    #[error("is not a regular file")]
    NotAFile,
    #[error("belongs to uid {owner}, not to you (uid {me})")]
    Owner { owner: u32, me: u32 },
    #[error("can be written by other users (mode {mode:04o})")]
    Writable { mode: u32 },
    #[error("can be read or entered by other users (mode {mode:04o})")]
    Readable { mode: u32 },
}

impl Exposure {
    /// What to do about it, for `path`.
    pub fn fix(&self, path: &Path, kind: Kind) -> String {
        let want = match kind {
            Kind::Folder => "700",
            Kind::File => "600",
        };
        match self {
            Exposure::Writable { .. } | Exposure::Readable { .. } => format!(
                "run `chmod {want} {}` (and check who else could have changed it)",
                path.display()
            ),
            Exposure::Owner { .. } => {
                "it is not yours: move it away, or use another location".to_owned()
            }
            Exposure::Symlink => "use the real folder, not a link to it".to_owned(),
            Exposure::NotAFolder | Exposure::NotAFile => "move it away".to_owned(),
        }
    }
}

/// The user this process acts as: what it creates belongs to this uid.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The one check: is what `meta` describes (from `symlink_metadata`, or `metadata` of an open
/// file) as closed as `need` says?
pub fn exposure(meta: &Metadata, kind: Kind, need: Need) -> Option<Exposure> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Some(Exposure::Symlink);
    }
    match kind {
        Kind::Folder if !ft.is_dir() => return Some(Exposure::NotAFolder),
        Kind::File if !ft.is_file() => return Some(Exposure::NotAFile),
        _ => {}
    }
    let me = my_uid();
    let owner = meta.uid();
    let owner_ok = owner == me || (need == Need::Unwritable && owner == 0);
    if !owner_ok {
        return Some(Exposure::Owner { owner, me });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(Exposure::Writable { mode });
    }
    if need == Need::Private && mode & 0o077 != 0 {
        return Some(Exposure::Readable { mode });
    }
    None
}

/// Why a folder could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the folder {path} {problem}; {}", problem.fix(path, Kind::Folder))]
    Exposed { path: PathBuf, problem: Exposure },
}

/// Check the folder at `path` (not followed if it is a link). `Ok(false)`: it does not exist.
pub fn check_dir(path: &Path, need: Need) -> Result<bool, DirError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => match exposure(&meta, Kind::Folder, need) {
            None => Ok(true),
            Some(problem) => Err(DirError::Exposed {
                path: path.to_owned(),
                problem,
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(DirError::Io {
            action: "inspect the folder",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Make sure `path` is a folder only we can use: created 0700 (with any missing parents, also
/// 0700) if it is missing, checked [`Need::Private`] either way. Created with the mode, never
/// chmod-ed afterwards, so there is no moment when it is open; an existing folder that is
/// too open is reported, not fixed: something else widened it, and the user should know.
pub fn ensure_private_dir(path: &Path) -> Result<(), DirError> {
    if check_dir(path, Need::Private)? {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DirError::Io {
            action: "create the folder",
            path: path.to_owned(),
            source,
        })?;
    match check_dir(path, Need::Private)? {
        true => Ok(()),
        false => Err(DirError::Io {
            action: "create the folder",
            path: path.to_owned(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }),
    }
}

/// Whether [`write_atomic`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Replace,
    /// Fail with [`io::ErrorKind::AlreadyExists`] if the file exists (no check-then-rename
    /// race: `link` refuses an existing name atomically).
    NewOnly,
}

/// A step of [`write_atomic`] that failed, and on which file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {path}: {source}")]
pub struct WriteError {
    pub step: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl WriteError {
    /// [`Place::NewOnly`] found the file there.
    pub fn exists(&self) -> bool {
        self.source.kind() == io::ErrorKind::AlreadyExists
    }
}

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never a mix,
/// even across a crash or a full disk: a temp file in the same folder (created 0600, its name
/// starting with a dot so listings skip a crash's leftover), write, fsync, rename (or link,
/// for [`Place::NewOnly`]), fsync the folder. On failure the temp file is removed and the old
/// file is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], place: Place) -> Result<(), WriteError> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name.to_string_lossy()),
        _ => {
            return Err(fail("write", path)(io::Error::from(
                io::ErrorKind::InvalidInput,
            )));
        }
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut suffix = [0u8; TEMP_SUFFIX];
    getrandom::fill(&mut suffix)
        .map_err(|e| fail("name a temp file for", path)(io::Error::other(e)))?;
    let tmp = dir.join(temp_name(&name, &suffix));
    let result = write_then_place(&tmp, path, bytes, place);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    #[cfg(test)]
    if let Some((hooked, again)) = FAIL_FLUSH_AFTER.with(|f| f.get())
        && hooked == &*name
    {
        FAIL_FLUSH_AFTER.with(|f| f.set(None));
        SYNC_DIR_FAILS.with(|f| f.set(again));
        let e = io::Error::other("input/output error (test)");
        return Err(fail(FLUSH_AFTER_PLACE, dir)(e));
    }
    sync_dir(dir).map_err(fail(FLUSH_AFTER_PLACE, dir))
}

/// The step of [`write_atomic`] after the file is in place: a [`WriteError`] of this step means
/// the new file was placed, and only its folder's flush failed.
pub const FLUSH_AFTER_PLACE: &str = "flush to disk the folder";

/// The [`WriteError`] of `step` on `path`, for `map_err`.
fn fail(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_owned();
    move |source| WriteError { step, path, source }
}

/// The temp file [`write_atomic`] writes before it places `name`: `.<name>.<hex>.tmp`.
fn temp_name(name: &str, suffix: &[u8; TEMP_SUFFIX]) -> String {
    format!(".{name}.{}.tmp", hex::encode(suffix))
}

/// Random bytes in a temp file's name.
const TEMP_SUFFIX: usize = 6;

/// Whether `file` is a temp file [`write_atomic`] made for a file named `name` (left behind
/// when its process died before the rename). Exact: with names that hold dots, another file's
/// temp file (`.a.nonce.x.nonce.<hex>.tmp` for `a.nonce.x.nonce`) is not `a.nonce`'s.
pub fn is_temp_for(file: &str, name: &str) -> bool {
    temp_target(file) == Some(name)
}

/// Whether `file` is a temp file [`write_atomic`] made, for any file.
pub fn is_temp(file: &str) -> bool {
    temp_target(file).is_some()
}

/// The name of the file a temp file `.<name>.<hex>.tmp` was made for.
fn temp_target(file: &str) -> Option<&str> {
    let (name, hex) = file
        .strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')?;
    let hex_ok = hex.len() == 2 * TEMP_SUFFIX && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_ok && !name.is_empty()).then_some(name)
}

fn write_then_place(tmp: &Path, path: &Path, bytes: &[u8], place: Place) -> Result<(), WriteError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(fail("create", tmp))?;
    write_data(&mut file, bytes).map_err(fail("write", tmp))?;
    file.sync_all().map_err(fail("flush to disk", tmp))?;
    drop(file);
    crash_point("place a written file");
    match place {
        Place::Replace => fs::rename(tmp, path).map_err(fail("replace", path)),
        Place::NewOnly => {
            fs::hard_link(tmp, path).map_err(fail("create", path))?;
            fs::remove_file(tmp).map_err(fail("remove", tmp))
        }
    }
}

/// A rename or removal is only durable once the folder's entry is on disk.
/// Open `path` for reading without waiting on it: a FIFO put where a file of ours belongs
/// would block an ordinary open until a writer came (wedging `key list`, `audit`, an unlock,
/// a signature), so it is opened non-blocking, and anything but a regular file is refused
/// (`InvalidInput`, "not a regular file"). Reads of a regular file never block either way.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let file = open_nonblocking(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Open `path` for reading, non-blocking, whatever it is; the caller checks its type (see
/// [`open_regular`]).
pub fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    #[cfg(test)]
    if FAIL_OPENS.with(|f| {
        let due = f.get();
        f.set(due >> 1);
        due & 1 == 1
    }) {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    if SYNC_DIR_FAILS.with(|f| f.replace(f.get().saturating_sub(1))) > 0 {
        return Err(io::Error::other("input/output error (test)"));
    }
    File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
thread_local! {
    /// Test hook: let this many steps that change the disk (placing a file, removing one,
    /// renaming or removing a folder) through, then panic before the next, like a crash: no
    /// error path and no cleanup runs. `None`: never.
    pub(crate) static CRASH_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };

    /// Test hook: let this many writes on this thread through, then fail each one half way,
    /// like a full disk. `None`: never fail.
    pub(crate) static FAIL_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };

    /// Test hook: make the folder's flush fail right after a file of this name is placed, once
    /// (an I/O error after the rename already put the new file in place), and the given
    /// number of [`sync_dir`] calls after it too.
    pub(crate) static FAIL_FLUSH_AFTER: std::cell::Cell<Option<(&'static str, u32)>> = const { std::cell::Cell::new(None) };

    /// How many of the next [`sync_dir`] calls fail (set by [`FAIL_FLUSH_AFTER`]).
    static SYNC_DIR_FAILS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A place where a crash leaves the disk in a state of its own; tests stop here (see
/// `CRASH_AFTER`) to check every such state is the old one or the new one.
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

/// What another program does to the files while an operation runs: tests register it for a
/// named point with `INTERLEAVE`, and it runs once, when the operation passes that point.
#[cfg(test)]
pub(crate) fn interleave(point: &str) {
    let due = INTERLEAVE.with(|i| {
        let mut i = i.borrow_mut();
        let at = i.iter().position(|(p, _)| *p == point)?;
        Some(i.remove(at).1)
    });
    if let Some(act) = due {
        act();
    }
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn interleave(_point: &str) {}

#[cfg(test)]
type Act = Box<dyn FnOnce()>;

#[cfg(test)]
thread_local! {
    /// Test hook for [`open_nonblocking`]: bit `n` set fails the `n`th open from now (bit 0
    /// the next) with "permission denied", as a file made unreadable between two reads would.
    pub(crate) static FAIL_OPENS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Test hook for [`interleave`]: a point's name and what happens there.
    pub(crate) static INTERLEAVE: std::cell::RefCell<Vec<(&'static str, Act)>> =
        const { std::cell::RefCell::new(Vec::new()) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_private_folder_must_be_closed_to_group_and_others() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        for (mode, want) in [
            (0o755, Exposure::Readable { mode: 0o755 }),
            (0o750, Exposure::Readable { mode: 0o750 }),
            (0o770, Exposure::Writable { mode: 0o770 }),
            (0o703, Exposure::Writable { mode: 0o703 }),
        ] {
            chmod(&d, mode);
            match check_dir(&d, Need::Private) {
                Err(DirError::Exposed { problem, .. }) => assert_eq!(problem, want),
                other => panic!("{mode:o}: {other:?}"),
            }
        }
        chmod(&d, 0o700);
        assert!(check_dir(&d, Need::Private).unwrap());
    }

    #[test]
    fn an_unwritable_folder_may_be_read_by_others() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        assert!(check_dir(dir.path(), Need::Unwritable).unwrap());
        chmod(dir.path(), 0o775);
        let err = check_dir(dir.path(), Need::Unwritable).unwrap_err();
        assert!(
            err.to_string().contains("can be written by other users"),
            "{err}"
        );
    }

    #[test]
    fn a_link_to_a_private_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        ensure_private_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert!(
            matches!(
                err,
                DirError::Exposed {
                    problem: Exposure::Symlink,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!check_dir(&dir.path().join("none"), Need::Private).unwrap());
    }

    #[test]
    fn a_full_disk_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old", Place::Replace).unwrap();
        FAIL_AFTER.with(|f| f.set(Some(0)));
        let err = write_atomic(&path, b"new contents", Place::Replace).unwrap_err();
        FAIL_AFTER.with(|f| f.set(None));
        assert_eq!(err.step, "write");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temp file is left"
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn temp_files_are_told_apart_by_their_exact_name() {
        let suffix = [0xab; TEMP_SUFFIX];
        let ours = temp_name("a.nonce", &suffix);
        assert!(is_temp_for(&ours, "a.nonce"));
        // Another file's, whose name starts the same way, is not ours.
        assert!(!is_temp_for(
            &temp_name("a.nonce.x.nonce", &suffix),
            "a.nonce"
        ));
        assert!(!is_temp_for("a.nonce", "a.nonce"));
        assert!(!is_temp_for(".a.nonce.tmp", "a.nonce"));
        assert!(!is_temp_for(".a.nonce.zzzzzzzzzzzz.tmp", "a.nonce"));
        // Any file's temp file is one; a user's own dot file is not.
        assert!(is_temp(&ours) && is_temp(&temp_name("x", &suffix)));
        for other in [
            ".notes.tmp",
            ".vimrc",
            "..abababababab.tmp",
            "a.abababababab.tmp",
        ] {
            assert!(!is_temp(other), "{other}");
        }
    }

    #[test]
    fn new_only_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", Place::NewOnly).unwrap();
        let err = write_atomic(&path, b"two", Place::NewOnly).unwrap_err();
        assert!(err.exists(), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
