//! What can go wrong with the keystore. Every message names the file involved and says what
//! to do; none carries secret material.

use std::io;
use std::path::{Path, PathBuf};

use crate::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("no keystore in {dir}: enroll a token first with `tapsign token add`")]
    NotInitialized { dir: PathBuf },

    #[error(
        "no keystore in {dir}, but the audit log records one here (vault-{recorded}, generation \
         {generation}): its folder is gone (moved or deleted?). Put the keystore folder back \
         from a backup; do not enroll a token to start a new one (the log's record refuses a \
         keystore that is not made from that one). With no backup, the keys it held are lost \
         (make new ones at the exchanges): move the audit log aside (keep it: it is the old \
         keystore's record) and start over with `tapsign token add`"
    )]
    Gone {
        dir: PathBuf,
        recorded: String,
        generation: u64,
    },

    #[error(
        "a keystore already exists in {dir}: enroll further tokens with `tapsign token add` \
         (it asks for a touch on an enrolled token)"
    )]
    AlreadyInitialized { dir: PathBuf },

    #[error("{path} is damaged: {detail}; {}", repair_hint(path, detail))]
    Damaged { path: PathBuf, detail: String },

    #[error("{path} does not belong in the keystore folder; move it elsewhere")]
    Stray { path: PathBuf },

    #[error(
        "{path} uses keystore format version {found}, but this tapsign reads version {supported}: \
         upgrade tapsign"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Too open, or not ours (the one check: `crate::disk::exposure`).
    #[error("{path} {problem}; {fix}")]
    InsecurePermissions {
        path: PathBuf,
        problem: crate::disk::Exposure,
        fix: String,
    },

    #[error(
        "the keystore holds {held} credential files ({dir}), and takes at most {max}: every \
         check records each of them in one audit log line, and a longer one would make a \
         running agent turn the log away. Remove one you no longer use first (`tapsign key \
         remove NAME`), or replace one (`--replace`){}",
        if held > max {
            "; more than the most were not stored by `tapsign key add`: look at `tapsign key \
             list` and `tapsign audit` for ones you did not store"
        } else {
            ""
        }
    )]
    TooManyCredentials {
        dir: PathBuf,
        held: usize,
        max: usize,
    },

    #[error("{what} {name:?} already exists ({path}); remove it first, or replace it")]
    Exists {
        what: &'static str,
        name: String,
        path: PathBuf,
    },

    #[error("no {what} named {name:?} in the keystore (looked for {path})")]
    NotFound {
        what: &'static str,
        name: String,
        path: PathBuf,
    },

    #[error(
        "refusing to remove the keyslot of {token}: it is the only working keyslot, and without \
         it no credential could ever be read again; enroll another token first"
    )]
    LastKeyslot { token: String },

    #[error("{}", keyslots_missing(tokens, dir))]
    KeyslotMissing { tokens: Vec<String>, dir: PathBuf },

    #[error(
        "the vault key {from} does not match {vault}: vault.json was replaced, or the keyslot \
         comes from another keystore; restore vault.json from a backup"
    )]
    VaultMismatch { from: String, vault: PathBuf },

    /// A keyslot the unverified manifest does not record, tried for want of one it does
    /// (`Keystore::keyslots_to_try`), holds another vault key than `vault.json`: which of the
    /// three files is out of place cannot be told, so nothing is to be deleted.
    #[error(
        "{path}, which manifest.json (read unverified) does not record, was tried since no \
         keyslot it records can be read: it holds another vault key than vault.json. Either it \
         is an old copy (from before a rotation) or another keystore's and the current keyslot \
         is gone, or vault.json and manifest.json were replaced. Delete nothing: keep a copy of \
         the keystore folder as it is, and put back the keyslot, vault.json and manifest.json \
         from a backup"
    )]
    UnrecordedKeyslotMismatch { path: PathBuf },

    #[error(
        "{path} could not be opened with the key material from {token}: the token is not the \
         one this keyslot was made for, or the file was changed; try another enrolled token"
    )]
    KeyslotLocked { path: PathBuf, token: String },

    #[error(
        "{path} could not be decrypted with this vault key: the file was changed or belongs to \
         another keystore; remove it and add the credential again"
    )]
    CredentialLocked { path: PathBuf },

    #[error(
        "{path} does not verify ({detail}): it was forged or damaged, so nothing in the keystore \
         can be vouched for; restore it from a backup, or rebuild it from the files as they are \
         with `tapsign keystore rotate --rebuild-manifest` (a touch; it checks the files against \
         the audit log's record of key changes, and refuses a copy put back that the record \
         shows)"
    )]
    ManifestInvalid { path: PathBuf, detail: String },

    #[error(
        "refusing to seal to the vault key in {vault}: it is not the one pinned by {pinned_by}. \
         vault.json was replaced (a credential sealed to it could be read by whoever replaced it); \
         restore vault.json from a backup. Nothing was stored"
    )]
    VaultNotPinned { vault: PathBuf, pinned_by: String },

    /// `vault.json` is not the running agent's pin, but descends from it by a link the pinned
    /// vault key signed: a rotation since the agent's last unlock (`token remove`, `keystore
    /// rotate`), which only a holder of that key could make. The advice of `VaultNotPinned`
    /// ("restore vault.json from a backup") would put back the vault the removed token opens
    /// (red-team round 26).
    #[error(
        "refusing to seal to the vault key in {vault} yet: it is vault-{now}, which replaced \
         vault-{pinned}, the one the running agent verified at its last unlock (a `tapsign token \
         remove` or `tapsign keystore rotate` since), and the agent has not checked it. Run \
         `tapsign unlock` once, so that it checks the new vault against the audit log, then add \
         the key again. Nothing was stored"
    )]
    VaultNotYetChecked {
        vault: PathBuf,
        now: String,
        pinned: String,
    },

    #[error(
        "{path} is generation {found}, but this agent already saw generation {seen}: an older \
         copy of the keystore was put back, so nothing is opened. If you restored a backup \
         yourself, restart the agent"
    )]
    RolledBack {
        path: PathBuf,
        found: u64,
        seen: u64,
    },

    #[error(
        "{path} is generation {found}, but the audit log records generation {recorded}{by}: an \
         older copy of the keystore was put back (it may hold a token removed since, or \
         credentials replaced since), so nothing is opened. If you restored a backup yourself \
         and trust its files, run `tapsign keystore rotate --rebuild-manifest`, then check \
         `tapsign token list` and remove again any token you had removed"
    )]
    OlderThanLog {
        path: PathBuf,
        found: u64,
        recorded: u64,
        /// Where a check signed by the vault key records that generation, and what else
        /// that line may be; empty where no such line does.
        by: String,
    },

    #[error(
        "{path} (generation {found}) does not follow the audit log's check of this keystore at \
         audit line {seq} (generation {generation}): {why}. That check is signed by this \
         keystore's vault key, so the log is the keystore's own record, and the manifest was not \
         written after it: it comes from another copy of the keystore sharing this vault (a \
         backup restored and used, or a second TAPSIGN_HOME) or is an older one put back, and \
         was copied in, with whatever credential files came with it, so nothing is opened. Keep \
         a copy of the keystore folder as found. If this audit log was put back in place of a \
         newer one, put the newer one back (the manifest's anchor may be there). Otherwise put \
         back manifest.json and the credential files from after that check (a backup), or run \
         `tapsign keystore rotate --rebuild-manifest`, which holds the files to the log's \
         record and names each old copy to move out of the keystore first; store again with \
         `tapsign key add NAME --exchange ... --replace` any key it names"
    )]
    NotFollowing {
        path: PathBuf,
        found: u64,
        seq: u64,
        generation: u64,
        why: String,
    },

    #[error(
        "the audit log holds two checks of this keystore, both signed by its vault key, and the \
         later goes back on the earlier: audit line {seq} (generation {generation}) {why}. Each \
         check is written after the one before it in the same log and folds in every change, \
         so audit line {seq} was written in another copy of the keystore sharing this vault (a \
         backup restored and used, or a second TAPSIGN_HOME) and appended to this log, and \
         {path} may be that copy's too: nothing is opened. Keep a copy of the audit log and \
         the keystore folder as found, and look for what appended the line (`tapsign audit` \
         shows it, and audit line {earlier}). Then run `tapsign keystore rotate \
         --rebuild-manifest`, which holds the files to the log's record and names each old copy \
         to move out of the keystore first; store again with `tapsign key add NAME --exchange \
         ... --replace` any key it names"
    )]
    ChecksDisagree {
        path: PathBuf,
        seq: u64,
        generation: u64,
        earlier: u64,
        why: String,
    },

    #[error(
        "the audit log cannot vouch that {path} is the newest copy of the keystore ({why}), \
         and no running agent has checked it since with the log readable: nothing is sealed to \
         its vault key until an unlock has (an old copy put back would bring back tokens removed \
         since). With the audit log at its path and readable, run `tapsign unlock`, read its \
         warnings, then add the key again"
    )]
    Unvouched { path: PathBuf, why: String },

    #[error(
        "the audit log holds a record of the keystore it cannot read ({why}): it may record a \
         newer generation than {path}, so nothing is opened or sealed. If you repaired the log \
         yourself and trust the keystore's files, run `tapsign keystore rotate \
         --rebuild-manifest`, then check `tapsign token list` and remove again any token you \
         had removed"
    )]
    RecordUnreadable { path: PathBuf, why: String },

    #[error(
        "the audit log's record of the keystore since {path} was last checked is broken ({why}): \
         a line was edited, inserted or deleted, and it may have hidden a credential or token \
         removed since, or a newer copy of the keystore, so nothing is opened or sealed. See \
         where with `tapsign audit verify`; keep a copy of the log. If you trust the keystore's \
         files as they are, run `tapsign keystore rotate --rebuild-manifest`, then check \
         `tapsign token list` and `tapsign key list` and remove again anything you had removed"
    )]
    RecordBroken { path: PathBuf, why: String },

    #[error(
        "the audit log no longer says what this agent saw recorded in it ({why}): the log was \
         edited while the agent ran, so nothing is opened or sealed. See where with `tapsign \
         audit verify`; keep a copy of the log. {fix}. Do not restart the agent before that: \
         it keeps what it saw in memory only"
    )]
    Contradicted { why: String, fix: String },

    #[error(
        "{vault} holds vault-{found}, which is not vault-{recorded}, recorded by {by}, nor made \
         from it by a rotation (each rotation signs its new vault key with the one it replaces). \
         vault.json, its keyslots and the manifest were replaced together by someone who can \
         write your files: nothing is opened or sealed, since a credential sealed to this vault \
         could be read by whoever made it. Keep a copy of the keystore folder as found; then put \
         back manifest.json from a backup (the genuine vault-{recorded} folder may still be \
         beside the forged one; if not, it too). Only if you put this keystore back from an \
         older backup yourself: move the audit log aside (keep it), then unlock. If \
         vault-{recorded} was never yours and the log records a vault before it, its record \
         carries a link signed by an older vault key: someone opened an older vault with one \
         of its tokens (one you removed, say) and a copy of its keyslot \
         (docs/keystore-format.md, \"The lineage\")"
    )]
    VaultNotChained {
        vault: PathBuf,
        found: String,
        recorded: String,
        by: &'static str,
    },

    #[error(
        "the audit log records vault-{recorded} (generation {generation}) and never this \
         keystore's vault (vault.json in {vault} is vault-{found}) nor one it was made from: it \
         holds no record of this keystore at all, so the log looks like another keystore's \
         log (another home's, copied or hard-linked to this home's path), not the one this \
         keystore was written with. Nothing is opened or sealed. Check the log at its path: \
         `ls -li` shows its link count (above 1: a hard link, shared with another file), and \
         `TAPSIGN_HOME=... tapsign status` of another home names the vault it records; put this \
         home's own log back. If the log is this home's, then it is the keystore folder that was \
         replaced by another: keep a copy of it as found, and restore the keystore from a backup \
         whose vault is vault-{recorded} (that folder may still be beside the other)"
    )]
    LogOfAnotherKeystore {
        vault: PathBuf,
        found: String,
        recorded: String,
        generation: u64,
    },

    #[error(
        "the audit log's chain breaks ({why}) before any record of the keystore's vault: a line \
         taken out or made into something else there may have been that record, so the vault \
         cannot be checked and nothing is opened or sealed. See where with `tapsign audit \
         verify`, and keep a copy of the log. Only if you edited or repaired the log yourself: \
         move it aside (keep it) and run this again; the log's record of key changes goes with \
         it, so keep a copy of the keystore folder too, and after the next unlock check the time \
         `tapsign key list` shows each key added against your last replacements (in the old \
         log): an older one is a copy put back"
    )]
    VaultRecordBroken { why: String },

    #[error(
        "the audit log records another keystore (vault-{recorded}): a new keystore next to it \
         would be refused at its first unlock, since nothing shows it was made from that one. \
         If you are starting over on purpose, move the audit log aside first (keep it: it is \
         the old keystore's record), then run this again"
    )]
    LogHasKeystore { recorded: String },

    #[error(
        "{path} is missing, but the audit log records that this keystore had one (generation \
         {recorded}): its files were put back from before tapsign kept a manifest, or the \
         manifest was deleted, so nothing is opened. Restore manifest.json and its vault-* \
         folder from a backup, or run `tapsign keystore rotate --rebuild-manifest`, which \
         judges the files against the audit log's last check and names, before its touch, \
         each credential changed since (stop there if one was not you)"
    )]
    ManifestGone { path: PathBuf, recorded: u64 },

    #[error(
        "the keystore is at generation {generation}, the last there is (no keystore reaches it \
         by counting), so no later manifest can be written and nothing was changed. Run \
         `tapsign keystore rotate --rebuild-manifest`, which starts again from the generations \
         the audit log records (leaving out lines far above the one before them), then check \
         `tapsign token list` and `tapsign key list`"
    )]
    GenerationExhausted { generation: u64 },

    #[error(
        "credential {name:?} has a version on record added at the last second a time can name \
         (a line or a file made by hand): no later version can follow it, and the next unlock \
         would refuse one stored now, so nothing was stored. Run `tapsign key remove {name}`, \
         then `tapsign keystore rotate` (which forgets that record), then add the key again"
    )]
    NoLaterVersion { name: String },

    #[error(
        "{path} (for {token}) is not the keyslot the keystore's manifest records (verified with \
         the vault key): it was put there by hand or is an old copy, and it is refused. It opened \
         this keystore's vault key all the same, so do not delete it while it may be your only \
         way in: unlock with another enrolled token, and if none opens the keystore, run `tapsign \
         keystore rotate --rebuild-manifest` with this one (it records the keyslot of the token \
         you touch)"
    )]
    KeyslotNotRecorded { path: PathBuf, token: String },

    #[error(
        "the change to {what} could not be recorded in the audit log ({reason}), so it was undone; \
         fix the audit log and run the command again"
    )]
    NotRecorded { what: String, reason: String },

    #[error(
        "{what} must be recorded in the audit log, which cannot be opened for reading and \
         appending now ({reason}): \
         without that record, a copy of the keystore from before it could be put back unnoticed \
         (and a removed token would open it). Nothing was changed; fix the audit log (its \
         permissions, the disk) and run the command again"
    )]
    CannotRecord { what: String, reason: String },

    #[error(
        "{what} checks the keystore against the audit log first, and the log cannot be read now \
         ({reason}): written on a check that could not read the record, the change could carry \
         back a credential or token the record says was replaced or removed. Nothing was \
         changed; make the log readable again (its permissions, `chmod 600`; the disk) and run \
         the command again"
    )]
    LogUnread { what: String, reason: String },

    #[error(
        "{what} checks the keystore against the audit log first, and the log changed while it \
         read it: {why}. A log cut short like this shows a command an older record, in which a \
         keystore put back from before a token's removal or a rotation looks like the newest. \
         Nothing was changed. Something running as you rewrites the log: run `tapsign audit \
         verify` and `tapsign status`, look for the program (`ls -li` the log, check what runs \
         at your login), run `tapsign unlock` once (the agent's check reads the whole log and \
         refuses a keystore older than it), then run the command again"
    )]
    LogCut { what: String, why: String },

    #[error(
        "credential file(s) in {dir} cannot be read: {names}. A rotation re-seals every \
         credential to the new vault key and removes the old folder, so it would lose these; \
         `tapsign key list` says what is wrong with each. Fix each file (`chmod 600` it, or \
         put it back from a backup), or remove it (`tapsign key remove NAME`, or move it out of \
         the keystore), then run the command again"
    )]
    CredentialsUnreadable { dir: PathBuf, names: String },

    #[error(
        "the check refuses these credential files in {dir}, and a rotation would delete them \
         with the old vault folder (they are sealed to the vault key it replaces, so no backup \
         of them opens after it): {refused}. Nothing was changed. If you put them back \
         yourself, or they are junk, run the command again with --drop-refused. If you did \
         not, the audit log may hold a line written by hand that makes a current file look \
         old (`tapsign audit` shows the key_change lines): keep a copy of the keystore \
         folder and of the log before you go on"
    )]
    RefusedNotDropped { dir: PathBuf, refused: String },

    #[error(
        "the audit log's record says these credential files in {dir} are copies put back: \
         {files}. A rebuild would seal them again, so nothing was changed. Move each out of the \
         keystore folder (keep it if unsure) and run the rebuild again, then store the key \
         again with `tapsign key add NAME --replace` if you still need it; or restore \
         manifest.json from a backup"
    )]
    RebuildPutBack { dir: PathBuf, files: String },

    #[error(
        "the audit log's record of key changes cannot be read ({why}), so a rebuild cannot check \
         the credential files against it, and would seal again a copy put back; nothing was \
         changed. Put the audit log back (or mend it), or, if it is lost for good and you trust \
         the files, run `tapsign keystore rotate --rebuild-manifest --unchecked`"
    )]
    RebuildUnchecked { why: String },

    #[error(
        "the audit log holds no keystore check signed by the vault key ({why}), so a rebuild \
         cannot tell from it which credential files are the ones you stored; nothing was \
         changed. A log written by this version of tapsign carries signed `keystore` lines from \
         the keystore's first check on, so one without any was written before this version or \
         had them taken out (rewritten while the agent was stopped). Restore manifest.json or \
         the audit log from a backup; or, if this log is from an older tapsign and you trust the \
         files, run `tapsign keystore rotate --rebuild-manifest --unchecked`, which takes them \
         as they are: the log then vouches for nothing, and a file someone else sealed goes \
         unnoticed"
    )]
    RebuildUnsigned { why: String },

    #[error(
        "the audit log could not record this change ({reason}), and putting the previous \
         manifest back failed too ({undo}): the keystore may be at the new manifest, off the \
         record. Do not unlock with it yet: mend the audit log, check that `tapsign token list` \
         shows only the tokens you keep (remove again, with `tapsign token remove`, any you \
         meant to remove), then run `tapsign keystore rotate`, which records a new vault key"
    )]
    NotUndone { reason: String, undo: String },

    #[error(
        "the audit log could not record the change to credential {name:?} ({reason}), and \
         putting its previous file back failed too ({undo}): the new file is in place, off the \
         record, and an old copy of it put back would go unnoticed. Mend the audit log and the \
         disk, then run `tapsign key add {name} --replace` again with the secret you meant to \
         store, which records it"
    )]
    CredentialNotUndone {
        name: String,
        reason: String,
        undo: String,
    },

    #[error("the keystore in {dir} changed while this command waited; run it again")]
    Changed { dir: PathBuf },

    /// A file read before the writer lock, or judged under it, is not the file used: no
    /// tapsign command writes the keystore without the lock, so another program put it there.
    #[error(
        "{path} changed while this command checked the keystore, under the lock every tapsign \
         command takes to write it: another program put a file in its place ({why}), so \
         nothing is opened or written. Run the command again; if this repeats, find what \
         writes to the keystore's folder"
    )]
    Swapped { path: PathBuf, why: &'static str },

    #[error(
        "the keystore in {dir} is busy: another tapsign command has been changing it for 30 s; \
         let it finish, then run this again"
    )]
    Busy { dir: PathBuf },

    #[error("{token} cannot hold a keyslot: {detail}")]
    UnsupportedToken { token: String, detail: String },

    #[error("{0}")]
    InvalidName(String),

    #[error("the system random number generator failed ({0}); the keystore was not changed")]
    Random(String),

    #[error("internal error: {0}; this is a tapsign bug, please report it")]
    Internal(String),

    #[error(transparent)]
    Token(#[from] TokenError),
}

impl KeystoreError {
    /// A damaged file whose fields all read (only its form is not tapsign's): what it holds
    /// is likely intact, and must not be given up for lost.
    pub fn content_reads(&self) -> bool {
        matches!(self, KeystoreError::Damaged { detail, .. } if detail == super::files::NOT_EXACT_FORM)
    }

    pub(crate) fn damaged(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        KeystoreError::Damaged {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        KeystoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The file this error is about, if any (the CLI prints it; tests check it).
    pub fn path(&self) -> Option<&std::path::Path> {
        use KeystoreError::*;
        match self {
            NotInitialized { dir: p } | AlreadyInitialized { dir: p } | Gone { dir: p, .. } => {
                Some(p)
            }
            Damaged { path, .. } | UnsupportedVersion { path, .. } | Io { path, .. } => Some(path),
            Stray { path } => Some(path),
            InsecurePermissions { path, .. } | Exists { path, .. } | NotFound { path, .. } => {
                Some(path)
            }
            KeyslotLocked { path, .. } | CredentialLocked { path } => Some(path),
            VaultMismatch { vault, .. }
            | VaultNotPinned { vault, .. }
            | VaultNotYetChecked { vault, .. }
            | VaultNotChained { vault, .. }
            | LogOfAnotherKeystore { vault, .. } => Some(vault),
            ManifestInvalid { path, .. }
            | RolledBack { path, .. }
            | OlderThanLog { path, .. }
            | NotFollowing { path, .. }
            | ChecksDisagree { path, .. }
            | Unvouched { path, .. }
            | RecordUnreadable { path, .. }
            | RecordBroken { path, .. }
            | ManifestGone { path, .. }
            | KeyslotNotRecorded { path, .. }
            | UnrecordedKeyslotMismatch { path } => Some(path),
            Changed { dir } | Busy { dir } | CredentialsUnreadable { dir, .. } => Some(dir),
            TooManyCredentials { dir, .. } => Some(dir),
            RefusedNotDropped { dir, .. } => Some(dir),
            RebuildPutBack { dir, .. } => Some(dir),
            Swapped { path, .. } => Some(path),
            NotRecorded { .. } | GenerationExhausted { .. } | Contradicted { .. } => None,
            RebuildUnchecked { .. } | RebuildUnsigned { .. } | NotUndone { .. } => None,
            CredentialNotUndone { .. } => None,
            CannotRecord { .. } | LogUnread { .. } | LogCut { .. } => None,
            NoLaterVersion { .. } => None,
            LogHasKeystore { .. } | VaultRecordBroken { .. } => None,
            KeyslotMissing { dir, .. } => Some(dir),
            LastKeyslot { .. } | UnsupportedToken { .. } | InvalidName(_) | Random(_) => None,
            Internal(_) => None,
            Token(_) => None,
        }
    }
}

/// A rotation refused for recorded tokens whose keyslot files are missing: which, and the two
/// ways on (the file back, or the token revoked on its own by `token remove`).
fn keyslots_missing(tokens: &[String], dir: &Path) -> String {
    let (which, first) = match tokens {
        [one] => (format!("the keyslot file of token {one} is"), one.as_str()),
        more => (
            format!("the keyslot files of tokens {} are", more.join(", ")),
            more.first().map_or("ID", String::as_str),
        ),
    };
    format!(
        "{which} missing from {} or cannot be read (moved aside, hidden under a dot name, \
         deleted, changed or made unreadable?), although the keystore's manifest records it: a \
         new vault key would leave it out, and the token would open nothing again. Nothing was \
         changed. Put the file back as it was (from a backup, or from where it was moved: `ls \
         -a` shows a dot name), or, if the token is gone, revoke it first with `tapsign token \
         remove {first}` (it needs no file), then run this again",
        dir.display()
    )
}

/// What to do about a damaged file, by what the file is.
fn repair_hint(path: &Path, detail: &str) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let folder = path.parent().and_then(Path::file_name);
    match folder.and_then(|f| f.to_str()) {
        _ if path.file_name().is_some_and(|n| n == "vault.json") => {
            "restore it from a backup (no keyslot can be trusted without it)".into()
        }
        _ if path.file_name().is_some_and(|n| n == "manifest.json") => {
            "restore it from a backup (it names the live folder and what the keystore holds), or \
             rebuild it from the files as they are with `tapsign keystore rotate --rebuild-manifest`"
                .into()
        }
        Some("credentials") => format!(
            "restore it from a backup, or `tapsign key remove {stem}` and add the key again"
        ),
        // The manifest names the token whose keyslot this is: `token remove` revokes it
        // without the file, and a rotation leaves the file behind.
        // Its fields read: the vault key it wraps is likely intact, and a file with the same
        // fields in tapsign's form opens; deleting it or the keystore loses that (red-team
        // round 21's recheck: "cannot be read again: move the keystore folder away" was said
        // of the only keyslot with its fields reordered).
        Some("keyslots") if detail == super::files::NOT_EXACT_FORM => format!(
            "its fields read, so the vault key it wraps is likely intact: keep it, and a copy of \
             the keystore folder. Restore the exact file from a backup, or write the same fields \
             back in the form tapsign writes (docs/keystore-format.md, \"Files\": field order, \
             two-space indentation, the checksum recomputed and last); or, with another enrolled \
             token, run `tapsign token remove {stem}` and enroll that token again"
        ),
        Some("keyslots") => format!(
            "restore it from a backup; or, with another enrolled token, run `tapsign token \
             remove {stem}` and enroll that token again"
        ),
        _ => "restore it from a backup".into(),
    }
}
