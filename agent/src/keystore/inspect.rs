//! One keystore file's bytes, read the way the keystore reads them, on their own: everything
//! that can be checked without the rest of the folder or the vault key. The same parsers a
//! listing and an unlock run (docs/keystore-format.md "What is detected where"), for a tool
//! or a fuzzer to drive without a keystore on disk.

use std::path::PathBuf;

use super::files::decode;
use super::format::VaultFile;
use super::manifest::ManifestFile;
use super::{CREDENTIALS, KEYSLOTS, KeystoreError, VAULT_FILE, credential_from, keyslot_from};

/// Which keystore file the bytes are, by where it would sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// `vault-<tag>/vault.json`.
    Vault,
    /// `manifest.json`.
    Manifest,
    /// `vault-<tag>/keyslots/<id>.json`: the keyslot of token `id`.
    Keyslot(String),
    /// `vault-<tag>/credentials/<name>.json`: the credential `name`.
    Credential(String),
}

impl FileKind {
    /// The path errors name (relative: these bytes come from nowhere on disk).
    fn path(&self) -> PathBuf {
        match self {
            FileKind::Vault => PathBuf::from(VAULT_FILE),
            FileKind::Manifest => PathBuf::from("manifest.json"),
            FileKind::Keyslot(id) => PathBuf::from(KEYSLOTS).join(format!("{id}.json")),
            FileKind::Credential(name) => PathBuf::from(CREDENTIALS).join(format!("{name}.json")),
        }
    }
}

/// Check `bytes` as the keystore file `kind`: the envelope (JSON, format, checksum, version,
/// byte for byte the form tapsign writes), every field, the points and lengths, a keyslot's
/// token and a credential's name. What needs the vault key (AEAD tags, the manifest's MAC)
/// is not checked.
pub fn check_file(kind: &FileKind, bytes: &[u8]) -> Result<(), KeystoreError> {
    let path = kind.path();
    match kind {
        FileKind::Vault => decode::<VaultFile>(&path, bytes)?
            .public_key(&path)
            .map(drop),
        FileKind::Manifest => decode::<ManifestFile>(&path, bytes)?
            .vault_public_key(&path)
            .map(drop),
        FileKind::Keyslot(id) => keyslot_from(path, id, bytes).map(drop),
        FileKind::Credential(name) => credential_from(&path, name, bytes).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::tests::Fixture;

    /// Every file of a real keystore passes as what it is, and fails as anything else.
    #[test]
    fn the_files_of_a_keystore_check_as_their_kind() {
        let (f, _) = Fixture::populated();
        let live = f.live();
        let read = |p: &str| std::fs::read(live.join(p)).unwrap();
        let slot = std::fs::read_dir(live.join("keyslots"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let id = slot.file_stem().unwrap().to_str().unwrap().to_owned();
        let slot_bytes = std::fs::read(&slot).unwrap();
        let manifest = std::fs::read(f.ks.dir().join("manifest.json")).unwrap();
        let cred = read("credentials/upbit-main.json");
        check_file(&FileKind::Vault, &read("vault.json")).unwrap();
        check_file(&FileKind::Manifest, &manifest).unwrap();
        check_file(&FileKind::Keyslot(id.clone()), &slot_bytes).unwrap();
        check_file(&FileKind::Credential("upbit-main".into()), &cred).unwrap();
        assert!(check_file(&FileKind::Vault, &cred).is_err());
        assert!(check_file(&FileKind::Credential("other".into()), &cred).is_err());
        assert!(check_file(&FileKind::Keyslot("soft-00000000".into()), &slot_bytes).is_err());
        let mut flipped = cred.clone();
        flipped[40] ^= 1;
        let err = check_file(&FileKind::Credential("upbit-main".into()), &flipped).unwrap_err();
        assert!(
            err.to_string().contains("credentials/upbit-main.json"),
            "{err}"
        );
    }
}
