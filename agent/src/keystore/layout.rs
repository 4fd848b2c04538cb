//! Where the live files are, and how a whole new set of them replaces the old in one step.
//!
//! ```text
//! <dir>/                  0700   (flock-ed by writers)
//!   manifest.json                names the live folder: the commit point
//!   vault-<16 hex>/       0700   the live folder, named after its vault public key
//!     vault.json  keyslots/  credentials/
//! ```
//!
//! A rotation (or a migration, or `create`) builds the new folder as `.stage-<hex>/`, renames
//! it to `vault-<tag>/`, then replaces `manifest.json`: before that rename of the manifest
//! every reader sees the old folder, after it the new one. Whatever a crash leaves besides
//! (a stage, a folder no manifest names) is garbage, removed by the next writer.
//!
//! A keystore from before manifests keeps its files at the top of `<dir>` ("legacy"); the
//! first operation that holds the vault key moves them into a folder of their own.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use p256::PublicKey;
use sha2::{Digest, Sha256};

use super::files::{
    Overwrite, decode, encode, ensure_private_dir, list_json, private_dir_exists, read_private,
    remove_private, remove_temp_files, remove_tree, rename_dir, write_atomic,
};
use super::manifest::ManifestFile;
use super::seal::compressed;
use super::{CREDENTIALS, KEYSLOTS, Keystore, KeystoreError, VAULT_FILE};

pub(crate) const MANIFEST: &str = "manifest.json";
const STAGE_PREFIX: &str = ".stage-";
const VAULT_PREFIX: &str = "vault-";
/// How long a writer waits for another to finish before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The live folder's name for a vault key: `vault-` and the first 8 bytes of SHA-256 of the
/// compressed key, hex.
pub(crate) fn vault_folder(key: &PublicKey) -> String {
    format!("{VAULT_PREFIX}{}", vault_tag(key))
}

/// The tag of a vault public key given in hex (compressed); `None` when it is not a key. The
/// short form the audit log, the vault's folder and `key add` name a vault by.
pub fn key_tag(hex_key: &str) -> Option<String> {
    super::format::point(Path::new(""), "vault_key", hex_key)
        .ok()
        .map(|k| vault_tag(&k))
}

pub(crate) fn vault_tag(key: &PublicKey) -> String {
    hex::encode(&Sha256::digest(compressed(key))[..8])
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Held while a writer changes the keystore: an exclusive `flock` on the keystore folder.
/// Released on drop (and by the kernel if the process dies).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _dir: File,
}

/// The live folder, and the manifest naming it (`None`: a legacy keystore).
pub(crate) struct Live {
    pub dir: PathBuf,
    pub manifest: Option<ManifestFile>,
}

impl Keystore {
    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST)
    }

    /// The manifest as it is on disk, not yet authenticated (`None` if there is none).
    pub(crate) fn read_manifest(&self) -> Result<Option<ManifestFile>, KeystoreError> {
        let path = self.manifest_path();
        read_private(&path)?
            .map(|bytes| decode::<ManifestFile>(&path, &bytes))
            .transpose()
    }

    /// The keyslot ids the manifest on disk records, unverified (no vault key is needed to read
    /// them); empty without a manifest. For checks that must not trust the keyslot files alone.
    pub fn recorded_keyslot_ids(&self) -> Result<Vec<String>, KeystoreError> {
        Ok(self
            .read_manifest()?
            .map(|m| m.keyslots.into_iter().map(|s| s.id).collect())
            .unwrap_or_default())
    }

    /// The credential names the keystore holds or records, unverified: the files' names and
    /// the manifest's records of present and removed credentials. What a `noted` request may
    /// name (red-team round 21: any program could have the agent keep notes of names the
    /// keystore never held, as many as it liked). `None` when the keystore cannot be read.
    pub fn names_on_record(&self) -> Option<std::collections::BTreeSet<String>> {
        let live = self.live().ok()?;
        let mut names = std::collections::BTreeSet::new();
        if let Some(m) = &live.manifest {
            names.extend(m.credentials.iter().map(|c| c.name.clone()));
            names.extend(m.removed.iter().map(|r| r.name.clone()));
        }
        let dir = live.dir.join(super::CREDENTIALS);
        if let Ok(entries) = super::files::list_json(&dir) {
            names.extend(entries.into_iter().flatten().map(|(_, stem)| stem));
        }
        Some(names)
    }

    /// The credential names the keystore holds now, unverified: the manifest's records of
    /// present credentials and the files' names (removed ones left out). What config.toml's
    /// `[keys.NAME]` tables are held against (red-team round 24: a table for a mistyped name
    /// applied to no key, and nothing said so). `None` when the keystore cannot be read.
    pub fn names_held(&self) -> Option<std::collections::BTreeSet<String>> {
        let live = self.live().ok()?;
        let mut names = std::collections::BTreeSet::new();
        if let Some(m) = &live.manifest {
            names.extend(m.credentials.iter().map(|c| c.name.clone()));
        }
        let dir = live.dir.join(super::CREDENTIALS);
        if let Ok(entries) = super::files::list_json(&dir) {
            names.extend(entries.into_iter().flatten().map(|(_, stem)| stem));
        }
        Some(names)
    }

    /// Find the live folder. Errs with `NotInitialized` when there is no keystore.
    pub(crate) fn live(&self) -> Result<Live, KeystoreError> {
        if !private_dir_exists(&self.dir)? {
            return Err(self.not_initialized());
        }
        if let Some(manifest) = self.read_manifest()? {
            let key = manifest.vault_public_key(&self.manifest_path())?;
            let dir = self.dir.join(vault_folder(&key));
            // Held to the same rule as the keystore's other folders: ours alone, and not a
            // symbolic link to somewhere else (a missing one is reported where it is read).
            private_dir_exists(&dir)?;
            return Ok(Live {
                dir,
                manifest: Some(manifest),
            });
        }
        let legacy = self.dir.join(VAULT_FILE);
        if legacy
            .try_exists()
            .map_err(|e| KeystoreError::io("inspect", &legacy, e))?
        {
            return Ok(Live {
                dir: self.dir.clone(),
                manifest: None,
            });
        }
        Err(self.not_initialized())
    }

    /// The live folder when `manifest.json` cannot be trusted or read (rebuilding it): the
    /// folder it names if it parses, else the legacy files, else the one `vault-*` folder.
    /// The manifest is left out: nothing is checked against it.
    pub(crate) fn live_for_rebuild(&self) -> Result<Live, KeystoreError> {
        let named = match self.read_manifest() {
            Ok(Some(m)) => m.vault_public_key(&self.manifest_path()).ok(),
            _ => None,
        };
        let dir = match named {
            Some(key) => self.dir.join(vault_folder(&key)),
            None if self.dir.join(VAULT_FILE).exists() => self.dir.clone(),
            None => {
                let mut found: Vec<PathBuf> = self
                    .vault_folders()?
                    .into_iter()
                    .filter(|f| f.join(VAULT_FILE).exists())
                    .filter(|f| {
                        f.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(VAULT_PREFIX))
                    })
                    .collect();
                match found.len() {
                    0 => return Err(self.not_initialized()),
                    1 => found.remove(0),
                    _ => {
                        return Err(KeystoreError::damaged(
                            self.manifest_path(),
                            format!(
                                "it cannot be read, and {} vault folders are there; move away all but the one to keep",
                                found.len()
                            ),
                        ));
                    }
                }
            }
        };
        Ok(Live {
            dir,
            manifest: None,
        })
    }

    /// The folder holding `vault.json`, `keyslots/` and `credentials/` now.
    pub fn live_dir(&self) -> Result<PathBuf, KeystoreError> {
        self.live().map(|l| l.dir)
    }

    pub(crate) fn not_initialized(&self) -> KeystoreError {
        KeystoreError::NotInitialized {
            dir: self.dir.clone(),
        }
    }

    /// No keystore here, or damage that must not be mistaken for none: files left without
    /// the file that makes them a keystore.
    pub(crate) fn check_uninitialized(&self) -> Result<(), KeystoreError> {
        for sub in [KEYSLOTS, CREDENTIALS] {
            let dir = self.dir.join(sub);
            if private_dir_exists(&dir)? && !list_json(&dir)?.is_empty() {
                return Err(KeystoreError::damaged(
                    self.dir.join(VAULT_FILE),
                    format!("it is missing, but {} still has files", dir.display()),
                ));
            }
        }
        for folder in self.vault_folders()? {
            let creds = folder.join(CREDENTIALS);
            if private_dir_exists(&creds)? && !list_json(&creds)?.is_empty() {
                return Err(KeystoreError::damaged(
                    self.manifest_path(),
                    format!("it is missing, but {} holds credentials", folder.display()),
                ));
            }
        }
        Ok(())
    }

    /// Every `vault-*` and `.stage-*` folder.
    pub(super) fn vault_folders(&self) -> Result<Vec<PathBuf>, KeystoreError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| KeystoreError::io("list the folder", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| KeystoreError::io("list the folder", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(VAULT_PREFIX) || name.starts_with(STAGE_PREFIX) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Take the writer lock (waiting up to 30 s for another writer).
    pub(crate) fn lock(&self) -> Result<WriteLock, KeystoreError> {
        ensure_private_dir(&self.dir)?;
        let dir = File::open(&self.dir).map_err(|e| KeystoreError::io("open", &self.dir, e))?;
        let start = Instant::now();
        loop {
            match rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(WriteLock { _dir: dir }),
                Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(KeystoreError::Busy {
                        dir: self.dir.clone(),
                    });
                }
                Err(e) => {
                    return Err(KeystoreError::io("lock", &self.dir, e.into()));
                }
            }
        }
    }

    /// Remove what a crash left: stages, vault folders that are not `live`, and the temp
    /// files of writes that never reached their rename (no writer is mid-write: we hold the
    /// lock).
    pub(crate) fn collect_garbage(
        &self,
        live: &Path,
        _lock: &WriteLock,
    ) -> Result<(), KeystoreError> {
        for folder in self.vault_folders()? {
            if folder != live {
                remove_tree(&folder)?;
            }
        }
        for dir in [
            &self.dir,
            live,
            &live.join(KEYSLOTS),
            &live.join(CREDENTIALS),
        ] {
            remove_temp_files(dir)?;
        }
        if live != self.dir {
            // A migration that stopped after its commit: the legacy files are stale copies.
            self.remove_legacy()?;
        }
        Ok(())
    }

    fn remove_legacy(&self) -> Result<(), KeystoreError> {
        let vault = self.dir.join(VAULT_FILE);
        if vault.exists() {
            remove_private(&vault)?;
        }
        for sub in [KEYSLOTS, CREDENTIALS] {
            remove_tree(&self.dir.join(sub))?;
        }
        Ok(())
    }

    /// A fresh, empty stage to build a new live folder in.
    pub(crate) fn stage(&self, _lock: &WriteLock) -> Result<Stage, KeystoreError> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|e| KeystoreError::Random(e.to_string()))?;
        let dir = self
            .dir
            .join(format!("{STAGE_PREFIX}{}", hex::encode(suffix)));
        ensure_private_dir(&dir)?;
        let stage = Stage { dir };
        for sub in [KEYSLOTS, CREDENTIALS] {
            // A stage that could not be built (a full disk) is removed again at once.
            if let Err(e) = ensure_private_dir(&stage.dir.join(sub)) {
                stage.discard();
                return Err(e);
            }
        }
        Ok(stage)
    }

    /// Make `stage` the live folder: rename it after its vault key, write `manifest` (the
    /// commit), then remove the previous live folder `old`.
    pub(crate) fn commit(
        &self,
        stage: Stage,
        manifest: &ManifestFile,
        old: &Path,
        lock: &WriteLock,
        warnings: &mut Vec<String>,
    ) -> Result<PathBuf, KeystoreError> {
        self.commit_recorded(stage, manifest, old, lock, warnings, || Ok(()))
    }

    /// [`Keystore::commit`], with `record` run once the new manifest is in place and before the
    /// old folder goes: if it fails, the commit is undone (the previous manifest put back, the
    /// new folder removed) and its error returned. A change that must not stand off the record
    /// (a token removal: a copy from before it put back would open with the removed token)
    /// is thus never left in place unrecorded by a record that failed (red-team round 17,
    /// recheck: a line appended to break the chain, or a lock held on the log, made it fail).
    pub(crate) fn commit_recorded(
        &self,
        stage: Stage,
        manifest: &ManifestFile,
        old: &Path,
        lock: &WriteLock,
        warnings: &mut Vec<String>,
        record: impl FnOnce() -> Result<(), KeystoreError>,
    ) -> Result<PathBuf, KeystoreError> {
        let key = manifest.vault_public_key(&self.manifest_path())?;
        let target = self.dir.join(vault_folder(&key));
        let previous = read_private(&self.manifest_path())?;
        if let Err(e) = rename_dir(&stage.dir, &target) {
            stage.discard();
            return Err(e);
        }
        // A manifest in place whose folder's flush failed is committed, and names the new
        // folder, which must stay (red-team round 17: removing it left a manifest that named a
        // missing folder, and every command failed, the rebuild too).
        match self.write_manifest(manifest, lock) {
            Ok(unflushed) => warnings.extend(unflushed),
            Err(e) => {
                // Not committed: the old manifest still names the old folder.
                let _ = remove_tree(&target);
                return Err(e);
            }
        }
        crate::disk::crash_point("commit: the manifest in place, before its record");
        if let Err(e) = record() {
            let undone = match &previous {
                Some(bytes) => write_atomic(&self.manifest_path(), bytes, Overwrite::Replace),
                None => remove_private(&self.manifest_path()),
            };
            return Err(match undone {
                Ok(()) => {
                    let _ = remove_tree(&target);
                    e
                }
                // Not `unlock`: it would record whatever manifest is there by then, a copy from
                // before put back included (red-team round 17, second recheck).
                Err(u) => KeystoreError::NotUndone {
                    reason: match e {
                        KeystoreError::NotRecorded { reason, .. } => reason,
                        other => other.to_string(),
                    },
                    undo: u.to_string(),
                },
            });
        }
        // Committed. What is left of the old folder is garbage; if it cannot go now, the next
        // writer removes it (`collect_garbage`).
        let _ = if old == self.dir {
            // A legacy keystore: its files sat at the top.
            self.remove_legacy()
        } else if old != target {
            remove_tree(old)
        } else {
            Ok(())
        };
        Ok(target)
    }

    /// Move a legacy keystore's files into a live folder of their own, plus `extra` keyslots,
    /// and commit `manifest`.
    pub(crate) fn migrate(
        &self,
        live: &Path,
        manifest: &ManifestFile,
        extra: &[(String, Vec<u8>)],
        lock: &WriteLock,
        warnings: &mut Vec<String>,
    ) -> Result<(), KeystoreError> {
        let stage = self.stage(lock)?;
        let built = (|| {
            copy_file(&stage, live, VAULT_FILE)?;
            for sub in [KEYSLOTS, CREDENTIALS] {
                for (_, stem) in list_json(&live.join(sub))?.into_iter().flatten() {
                    copy_file(&stage, live, &format!("{sub}/{stem}.json"))?;
                }
            }
            for (id, bytes) in extra {
                stage.put(&format!("{KEYSLOTS}/{id}.json"), bytes)?;
            }
            Ok(())
        })();
        if let Err(e) = built {
            stage.discard();
            return Err(e);
        }
        self.commit(stage, manifest, live, lock, warnings).map(drop)
    }

    /// Write `manifest.json`. A manifest in place whose folder could not be flushed after its
    /// rename (an I/O error) is written, not failed: the change is made, and reporting it
    /// failed would have callers act on the previous one. What to say of it comes back: a power
    /// failure before the next flush could still bring the previous manifest back.
    pub(crate) fn write_manifest(
        &self,
        manifest: &ManifestFile,
        _lock: &WriteLock,
    ) -> Result<Option<String>, KeystoreError> {
        let path = self.manifest_path();
        let bytes = encode(&path, manifest.clone())?;
        let Err(e) = write_atomic(&path, &bytes, Overwrite::Replace) else {
            return Ok(None);
        };
        // Only the folder's flush comes after the file is placed: then it is in place, whatever
        // a read of it now would say (a folder made unreadable meanwhile failed the read-back
        // the commit used to decide by, and its new folder was removed from under the manifest
        // naming it: round 18's recheck).
        let placed = matches!(&e, KeystoreError::Io { action, .. } if *action == crate::disk::FLUSH_AFTER_PLACE);
        if !placed {
            return Err(e);
        }
        match crate::disk::sync_dir(&self.dir) {
            Ok(()) => Ok(None),
            Err(_) => Ok(Some(format!(
                "the keystore's new manifest is in place, but its folder could not be flushed to disk ({e}): the change is made, yet a power failure before the next flush could bring back the previous manifest; check the disk (dmesg)"
            ))),
        }
    }
}

fn copy_file(stage: &Stage, from: &Path, rel: &str) -> Result<(), KeystoreError> {
    let path = from.join(rel);
    let bytes = read_private(&path)?.ok_or_else(|| KeystoreError::damaged(&path, "it vanished"))?;
    stage.put(rel, &bytes)
}

/// A new live folder being built (`.stage-<hex>/`, with `keyslots/` and `credentials/`).
pub(crate) struct Stage {
    dir: PathBuf,
}

impl Stage {
    /// Write one file (`vault.json`, `keyslots/<id>.json`, `credentials/<name>.json`).
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<(), KeystoreError> {
        write_atomic(
            &self.dir.join(rel),
            bytes,
            Overwrite::Refuse {
                what: "staged file",
                name: rel,
            },
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Give up on this stage (a write failed): remove what was built.
    pub fn discard(self) {
        let _ = remove_tree(&self.dir);
    }
}
