//! `manifest.json`: what the keystore holds, authenticated with a key derived from VK, and the
//! pure check of the files against it (docs/keystore-format.md, "The manifest").
//!
//! The manifest records every credential (name, creation time, file hash), the names removed
//! (with the creation time of the last version), every keyslot (token id, file hash), the
//! vault public key (which also names the live folder) and a generation counter, plus where
//! the ledger stood when it was written. Only a holder of VK can write one that verifies, so
//! it is rewritten by the operations that have VK: an unlock, enrolling or removing a token,
//! a rotation. [`fold`] is the check those operations run first: it replays the ledger's
//! record on top of the manifest and decides, file by file, what may be opened.

use std::collections::BTreeMap;
use std::path::Path;

use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use p256::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::KeystoreError;
use super::files::{Envelope, FORMAT_VERSION};
use super::ledger::{Anchor, Evidence, KeyAction};
use super::seal::{VaultKey, compressed};

/// HKDF info of the manifest's MAC key (salt: the vault public key, compressed).
pub const INFO_MANIFEST: &[u8] = b"tapsign/v1/manifest/hmac-sha256";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRecord {
    /// The token id (the keyslot's file name without `.json`).
    pub id: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredRecord {
    pub name: String,
    pub created: u64,
    pub sha256: String,
}

/// A name whose removal was recorded, and the creation time of the version removed: a copy
/// of that version (or an older one) coming back is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedRecord {
    pub name: String,
    pub created: u64,
}

/// `manifest.json`, fields in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestFile {
    pub format: String,
    pub version: u64,
    /// Counts manifests written: each one is the previous one's plus one.
    pub generation: u64,
    /// When it was written, seconds since the Unix epoch (UTC).
    pub written: u64,
    /// The vault public key, compressed, hex. The live folder is named after it.
    pub vault_key: String,
    pub keyslots: Vec<SlotRecord>,
    pub credentials: Vec<CredRecord>,
    pub removed: Vec<RemovedRecord>,
    /// Where the ledger stood when this was written; `null` if it could not be read.
    pub audit: Option<Anchor>,
    /// HMAC-SHA256, hex, under the key derived from VK (see [`mac_key`]).
    pub mac: String,
    pub checksum: String,
}

impl Envelope for ManifestFile {
    const FORMAT: &'static str = "tapsign-manifest";
    fn checksum_mut(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// The manifest's MAC key: HKDF-SHA256(salt = vault public key, ikm = VK, INFO_MANIFEST).
/// Distinct from every sealing key: those come from ECDH outputs and other info strings.
fn mac_key(vk: &VaultKey) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&compressed(&vk.public_key())), &vk.to_bytes())
        .expand(INFO_MANIFEST, key.as_mut())
        .map_err(|_| KeystoreError::Internal("manifest key derivation failed".into()))?;
    Ok(key)
}

impl ManifestFile {
    /// An empty record, not a manifest: what the audit log says a check left
    /// (`super::notes::since_logged_check`), for the notes to judge against.
    pub(super) fn unsigned_record() -> ManifestFile {
        ManifestFile {
            format: String::new(),
            version: 0,
            generation: 0,
            written: 0,
            vault_key: String::new(),
            keyslots: Vec::new(),
            credentials: Vec::new(),
            removed: Vec::new(),
            audit: None,
            mac: String::new(),
            checksum: String::new(),
        }
    }

    /// A manifest for these records, MACed under `vk`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vk: &VaultKey,
        generation: u64,
        written: u64,
        mut keyslots: Vec<SlotRecord>,
        mut credentials: Vec<CredRecord>,
        mut removed: Vec<RemovedRecord>,
        audit: Option<Anchor>,
    ) -> Result<ManifestFile, KeystoreError> {
        keyslots.sort_by(|a, b| a.id.cmp(&b.id));
        credentials.sort_by(|a, b| a.name.cmp(&b.name));
        removed.sort_by(|a, b| a.name.cmp(&b.name));
        let mut m = ManifestFile {
            format: Self::FORMAT.into(),
            version: FORMAT_VERSION,
            generation,
            written,
            vault_key: hex::encode(compressed(&vk.public_key())),
            keyslots,
            credentials,
            removed,
            audit,
            mac: String::new(),
            checksum: String::new(),
        };
        m.mac = m.compute_mac(vk)?;
        Ok(m)
    }

    fn compute_mac(&self, vk: &VaultKey) -> Result<String, KeystoreError> {
        let mut body = self.clone();
        body.mac.clear();
        body.checksum.clear();
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| KeystoreError::Internal(format!("cannot encode the manifest ({e})")))?;
        let key = mac_key(vk)?;
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&*key)
            .map_err(|_| KeystoreError::Internal("bad manifest key length".into()))?;
        mac.update(&bytes);
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Check the MAC (VK must be the vault key it names) and that records are unique.
    pub fn verify(&self, vk: &VaultKey, path: &Path) -> Result<(), KeystoreError> {
        let forged = |detail: &str| KeystoreError::ManifestInvalid {
            path: path.to_owned(),
            detail: detail.into(),
        };
        if self.vault_key != hex::encode(compressed(&vk.public_key())) {
            return Err(forged(
                "it names another vault key than the one this token opened",
            ));
        }
        let want = self.compute_mac(vk)?;
        // Not secret-dependent timing that matters: the MAC is over public data, and a
        // forger learns nothing from how many hex digits matched.
        if want != self.mac {
            return Err(forged("its MAC does not verify"));
        }
        let unique = |mut v: Vec<&str>| {
            let n = v.len();
            v.sort_unstable();
            v.dedup();
            v.len() == n
        };
        if !unique(self.keyslots.iter().map(|s| s.id.as_str()).collect())
            || !unique(self.credentials.iter().map(|c| c.name.as_str()).collect())
        {
            return Err(forged("it lists a name twice"));
        }
        Ok(())
    }

    pub fn vault_public_key(&self, path: &Path) -> Result<PublicKey, KeystoreError> {
        super::format::point(path, "vault_key", &self.vault_key)
    }

    pub fn keyslot(&self, id: &str) -> Option<&SlotRecord> {
        self.keyslots.iter().find(|s| s.id == id)
    }
}

/// A credential file as found on disk (parsed, checksum good; not yet opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub name: String,
    pub created: u64,
    pub sha256: String,
}

/// A credential file that failed the check, and why (a sentence for the trader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub name: String,
    /// The verdict in a few words, for a listing (`key list`).
    pub verdict: &'static str,
    pub reason: String,
}

/// The outcome of [`fold`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Folded {
    /// Names whose file may be opened.
    pub accepted: Vec<String>,
    pub refused: Vec<Refusal>,
    pub warnings: Vec<String>,
    /// The records of the next manifest.
    pub credentials: Vec<CredRecord>,
    pub removed: Vec<RemovedRecord>,
    /// Recorded names whose file is missing: their records stay. What to say of them depends
    /// on what reads the files ([`Folded::take_warnings`] for a check; a rotation forgets them).
    pub missing: Vec<String>,
}

impl Folded {
    /// What a check (which keeps the record of a missing file) says: the warnings, each
    /// missing file's first.
    pub(crate) fn take_warnings(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self
            .missing
            .iter()
            .map(|name| format!(
                "credential {name:?} is recorded in the keystore, but its file is missing: put it back from a backup, or run `tapsign keystore rotate` to forget it"
            ))
            .collect();
        out.append(&mut self.warnings);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect<'a> {
    Present { created: u64, sha256: &'a str },
    Removed { created: u64 },
}

/// Check the credential files against the manifest and the ledger's record since it.
///
/// - A file whose hash is the expected one is accepted.
/// - A file that differs is accepted only if it is newer (`created` later) than the expected
///   version, or than the recorded removal; an older or equally old one is a copy put back,
///   and refused. `created` sits in the AEAD's associated data: nobody without the secret can
///   make an old ciphertext look newer.
/// - A name the manifest never saw must be no older than the manifest itself.
/// - A recorded file that is missing or unreadable keeps its record (so putting the right
///   file back works), with a warning for a missing one.
///
/// `unreadable` names the credential files that exist but could not be parsed.
pub(crate) fn fold(
    manifest: &ManifestFile,
    observed: &[Observed],
    unreadable: &[String],
    evidence: &Evidence,
) -> Folded {
    let mut expect: BTreeMap<&str, Expect<'_>> = BTreeMap::new();
    for c in &manifest.credentials {
        let e = Expect::Present {
            created: c.created,
            sha256: &c.sha256,
        };
        expect.insert(&c.name, e);
    }
    for r in &manifest.removed {
        expect
            .entry(&r.name)
            .or_insert(Expect::Removed { created: r.created });
    }
    let mut backwards = Vec::new();
    for ch in &evidence.changes {
        let e = match ch.action {
            // A line only moves a name forward: to a version later than the one expected (or
            // than its removal), or, for a name never recorded, no older than the manifest.
            // `key add` seals a `created` later than every version it knows of, so a line that
            // points back is not one it wrote: anyone who can write the log can append a line
            // that continues the chain, and such a line must not vouch for an old file.
            KeyAction::Add | KeyAction::Replace => {
                let expected = match expect.get(ch.name.as_str()) {
                    Some(Expect::Present { created, .. } | Expect::Removed { created }) => {
                        Some(*created)
                    }
                    None => None,
                };
                if !takes(expected, ch, manifest.written) {
                    backwards.push(ch);
                    continue;
                }
                Expect::Present {
                    created: ch.created,
                    sha256: &ch.sha256,
                }
            }
            KeyAction::Remove => Expect::Removed {
                created: match expect.get(ch.name.as_str()) {
                    Some(Expect::Present { created, .. } | Expect::Removed { created }) => {
                        ch.created.max(*created)
                    }
                    None => ch.created,
                },
            },
        };
        expect.insert(&ch.name, e);
    }

    let mut out = Folded::default();
    // One warning however many such lines there are: anyone who can write the log can append
    // them, and one each pushed what matters (a credential replaced) out of the warnings shown
    // (red-team round 20).
    if let Some(ch) = backwards.first() {
        let more = match backwards.len() - 1 {
            0 => String::new(),
            n => format!(
                " ({n} more lines like it, for any credential, are ignored too: `tapsign audit` shows each `key` line)"
            ),
        };
        out.warnings.push(format!(
            "the audit log has a line that takes credential {:?} back to a version that is not later than the one already recorded ({} {}): tapsign never writes such a line, so it was added by hand and is ignored, and the credential is unchanged{more}",
            ch.name, ch.action, ch.sha256
        ));
    }
    let mut next: BTreeMap<&str, Expect<'_>> = expect.clone();
    for f in observed {
        let verdict = judge(f, expect.get(f.name.as_str()).copied(), manifest.written);
        match verdict {
            // A newer file no line records is said by the change notes, loudly
            // (`super::notes`): a warning here was mild, and gone at the next unlock.
            Ok(_) => {
                out.accepted.push(f.name.clone());
                next.insert(
                    &f.name,
                    Expect::Present {
                        created: f.created,
                        sha256: &f.sha256,
                    },
                );
            }
            Err((verdict, reason)) => out.refused.push(Refusal {
                name: f.name.clone(),
                verdict,
                reason,
            }),
        }
    }
    for (name, e) in &next {
        let seen = observed.iter().any(|f| f.name == *name);
        let damaged = unreadable.iter().any(|u| u == name);
        if let Expect::Present { .. } = e
            && !seen
            && !damaged
        {
            out.missing.push((*name).to_owned());
        }
        match e {
            Expect::Present { created, sha256 } => out.credentials.push(CredRecord {
                name: (*name).to_owned(),
                created: *created,
                sha256: (*sha256).to_owned(),
            }),
            Expect::Removed { created } => out.removed.push(RemovedRecord {
                name: (*name).to_owned(),
                created: *created,
            }),
        }
    }
    out
}

/// Whether the check takes a credential change (`manifest::fold`), given the version its name
/// is expected at (present or removed; `None`: never recorded) and when the manifest was
/// written: a removal always, an `add` or `replace` only to a later version (for a name never
/// recorded, one no older than the manifest). What the unlock tells the trader changed follows
/// the same rule (`super::notes`): a line it ignores changes nothing, and a note built from one
/// advised removing the trader's own, unchanged credential (red-team round 20).
pub(super) fn takes(expected: Option<u64>, ch: &super::ledger::KeyChange, written: u64) -> bool {
    match (ch.action, expected) {
        (KeyAction::Remove, _) => true,
        (_, Some(created)) => ch.created > created,
        (_, None) => ch.created >= written,
    }
}

/// [`Refusal::verdict`]s.
pub const OLD_COPY: &str = "an old copy put back";
pub const REMOVED: &str = "a removed credential put back";
pub const FOREIGN: &str = "does not open with this keystore's vault key";

/// One file against what is expected of its name: `Ok(changed)` to accept it, or why not.
fn judge(
    f: &Observed,
    expect: Option<Expect<'_>>,
    manifest_written: u64,
) -> Result<bool, (&'static str, String)> {
    let when = crate::audit::utc_secs;
    let redo = format!(
        "if you meant to go back to it, store it again with `tapsign key add {} --replace`",
        f.name
    );
    match expect {
        // The hash and the `created` sealed in the file: a line can name any hash with a later
        // `created` (anyone who can write the log can append one), and an old file's hash with
        // a `created` that is not the file's own is not a version tapsign wrote.
        Some(Expect::Present { sha256, created }) if sha256 == f.sha256 && created == f.created => {
            Ok(false)
        }
        Some(Expect::Present { created, .. }) if f.created > created => Ok(true),
        // The recorded version's time and other contents: not an older version, another file
        // (red-team round 22, recheck: both times were printed equal under "an older version").
        Some(Expect::Present { created, .. }) if f.created == created => Err((
            OLD_COPY,
            format!(
                "the file of credential {:?} is not the version recorded: it carries that version's time ({}) but other contents, so it was sealed elsewhere (in a copy of the keystore, say) and copied in, and it is refused; {redo}",
                f.name,
                when(f.created)
            ),
        )),
        Some(Expect::Present { created, .. }) => Err((
            OLD_COPY,
            format!(
                "the file of credential {:?} is an older version than the one recorded (this file was added {}, the recorded one {}): an old copy was put back, so it is refused; {redo}",
                f.name,
                when(f.created),
                when(created)
            ),
        )),
        Some(Expect::Removed { created }) if f.created > created => Ok(true),
        Some(Expect::Removed { .. }) => Err((
            REMOVED,
            format!(
                "credential {:?} was removed, and this file is a copy from before the removal (added {}): a deleted credential was put back, so it is refused; {redo}",
                f.name,
                when(f.created)
            ),
        )),
        None if f.created >= manifest_written => Ok(true),
        None => Err((
            REMOVED,
            format!(
                "credential {:?} is not in the keystore's manifest, yet its file is older than the manifest (added {}, manifest written {}): a deleted credential was put back from a backup, so it is refused; {redo}",
                f.name,
                when(f.created),
                when(manifest_written)
            ),
        )),
    }
}
