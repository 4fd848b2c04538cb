//! Which keyslots an unlock tries before its touch, and what is said of the others.
//!
//! Before the touch, `manifest.json` cannot be verified: its MAC needs the vault key. What it
//! records is therefore a hint there, not a verdict. A keyslot it does not record is left
//! untried while another one it records can be used (a file planted beside them must not put
//! its label in the prompts or cost a PIN), but it is never called "never used; remove the
//! file" on that word alone: one field edited in the manifest (its checksum recomputed, which
//! needs no secret) made the only genuine keyslot read as unrecorded, and `token list`, the
//! agent's `status` and the unlock's refusal advised deleting it or the whole keystore, which
//! loses every credential (red-team round 21). With no recorded keyslot usable, every readable
//! one is tried: the check after the touch verifies the manifest with the vault key the
//! keyslot gave, and names the file that is wrong (`ManifestInvalid`, or the keyslot). So is
//! every readable one when no token of a recorded keyslot is present ([`Tried::spare`]): a
//! manifest edited to record a keyslot someone planted instead of the genuine one (its token
//! nobody's, its label the planter's) had every unlock ask for that token and never try the
//! trader's, so the check that names the forged manifest never came (the recheck of round 21).

use std::path::Path;

use super::{Keyslot, Keystore, KeystoreError};

/// The keyslots [`Keystore::keyslots_to_try`] hands out, and what to say of the rest.
#[derive(Debug, Default)]
pub struct Tried {
    /// In the order the keystore lists them.
    pub slots: Vec<Keyslot>,
    /// Damaged keyslot files, and those the manifest (unverified) does not record.
    pub warnings: Vec<String>,
    /// No keyslot the manifest records could be used, so the others are tried.
    pub unrecorded: bool,
    /// The readable keyslots the manifest does not record, while it records some: tried only
    /// when no token of a recorded one is present (module docs).
    pub spare: Vec<Keyslot>,
    /// A damaged keyslot file whose fields all read ([`KeystoreError::content_reads`]): with
    /// no keyslot usable, the keys are not lost with it.
    pub content_reads: bool,
}

impl Keystore {
    /// The keyslots an unlock tries: those the manifest, read unverified, records; if it
    /// records none that can be read, every one that can (module docs).
    pub fn keyslots_to_try(&self) -> Result<Tried, KeystoreError> {
        let mut out = Tried::default();
        let mut others = Vec::new();
        let mut on_disk = Vec::new();
        for slot in self.keyslots()? {
            match slot {
                Ok(s) => {
                    on_disk.push(s.stub.id());
                    match s.recorded {
                        true => out.slots.push(s),
                        false => others.push(s),
                    }
                }
                Err(e) => {
                    let stem = e.path().and_then(|p| p.file_stem());
                    on_disk.extend(stem.map(|n| n.to_string_lossy().into_owned()));
                    out.content_reads |= e.content_reads();
                    out.warnings.push(e.to_string());
                }
            }
        }
        // Nothing to try at all: a keyslot the manifest records whose file is gone is why, as
        // `token list` says. "No usable token is enrolled: run `tapsign token add`" was said
        // after a touch prompt, of a keystore whose only keyslot file was moved aside, and
        // `token add` cannot open it (red-team round 27).
        if out.slots.is_empty() && others.is_empty() {
            let missing = self.recorded_keyslot_ids()?.into_iter();
            out.warnings.extend(missing.filter(|id| !on_disk.contains(id)).map(|id| {
                format!(
                    "the keystore's manifest, as read unverified, records token {id}, but its keyslot file is missing (moved aside or deleted?): put it back from a backup (if you never enrolled this token, manifest.json was edited)"
                )
            }));
        }
        if out.slots.is_empty() && !others.is_empty() {
            out.warnings.push(format!(
                "manifest.json, as read before the touch (it is verified only with the vault key the touch opens), records none of the keyslot files that can be read ({}): each is tried, and the check after the touch says whether manifest.json or the keyslot is the file out of place. Delete neither meanwhile",
                others
                    .iter()
                    .map(|s| s.stub.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            out.slots = others;
            out.unrecorded = true;
        } else {
            out.warnings
                .extend(others.iter().map(|s| unrecorded_keyslot(&s.path, false)));
            out.spare = others;
        }
        Ok(out)
    }
}

/// What to say of a keyslot file that `manifest.json`, read unverified, does not record;
/// `tried`: no keyslot it records can be read, so an unlock tries this one too.
pub fn unrecorded_keyslot(path: &Path, tried: bool) -> String {
    let used = match tried {
        true => "no keyslot it records can be read, so the next unlock tries this one",
        false => "an unlock tries it only when no token of a keyslot it records is present",
    };
    format!(
        "keyslot {} is not one manifest.json records, as read without the vault key (it is not verified before an unlock): {used}. A keyslot put there by hand or an old copy put back reads this way, but so does a genuine one under an edited manifest.json, so do not delete it on this alone. If this keyslot's token is yours and a token manifest.json records is not, manifest.json was edited: `tapsign keystore rotate --rebuild-manifest` (a touch on your token) rebuilds it from the files",
        path.display()
    )
}
