//! The vault key's lineage (docs/keystore-format.md, "The vault key is pinned"). Sealing a
//! keyslot to a PIV or soft token needs only the token's public key, which its keyslot shows
//! in clear: anyone who can write the keystore could make a vault key of their own, wrap it to
//! the trader's tokens, and write a manifest it verifies. The trader's touch would open that
//! vault like the real one. What such a vault cannot have is a signature from the vault key it
//! claims to follow: each rotation signs its new vault key with the one it replaces, and
//! `vault.json` carries every such signature since the keystore was made. A vault the audit
//! log (or a running agent) knows of must be the vault on disk or one of its ancestors.

use std::path::Path;

use p256::PublicKey;
use p256::ecdsa::signature::Verifier;

use super::KeystoreError;
use super::format::{Succession, VaultFile};
use super::seal::{VaultKey, compressed};

/// What a rotation signs: this context, a zero byte, then the replaced and the new vault
/// public key (SEC1 compressed, 33 bytes each).
pub(crate) const CONTEXT: &[u8] = b"tapsign/v1/vault-succession";

pub(crate) fn statement(from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + 1 + from.len() + to.len());
    out.extend_from_slice(CONTEXT);
    out.push(0);
    out.extend_from_slice(from);
    out.extend_from_slice(to);
    out
}

/// `vault.json` for `next`, the vault key a rotation makes to replace `old` (whose file is
/// `old_file`): the old lineage, and one more link signed by `old`.
pub(crate) fn succeeding(old_file: &VaultFile, old: &VaultKey, next: &PublicKey) -> VaultFile {
    let from = compressed(&old.public_key());
    let to = compressed(next);
    let signature = old.sign_statement(&statement(&from, &to));
    let mut file = VaultFile::new(next);
    file.version = super::format::VAULT_LINEAGE_VERSION;
    file.lineage = old_file.lineage.clone();
    file.lineage.push(Succession {
        from: hex::encode(&from),
        to: hex::encode(&to),
        signature: hex::encode(signature),
    });
    file
}

/// Every vault key `file` descends from, oldest first, then its own: each link must follow on
/// from the one before (its `from` the previous `to`), the last must end at the file's key,
/// and each must be signed by the key it replaced. Any link that does not is damage.
pub(crate) fn ancestry(file: &VaultFile, path: &Path) -> Result<Vec<String>, KeystoreError> {
    let damaged = |i: usize, why: &str| {
        KeystoreError::damaged(path, format!("its lineage does not verify: link {i} {why}"))
    };
    let mut keys = Vec::with_capacity(file.lineage.len() + 1);
    for (i, link) in file.lineage.iter().enumerate() {
        let next = file
            .lineage
            .get(i + 1)
            .map_or(file.public_key.as_str(), |n| n.from.as_str());
        if link.to != next {
            return Err(damaged(i + 1, "does not lead to the next vault key"));
        }
        let from = super::format::point(path, "lineage.from", &link.from)?;
        let to = super::format::point(path, "lineage.to", &link.to)?;
        let sig = super::files::parse_hex(path, "lineage.signature", &link.signature)?;
        let sig = p256::ecdsa::Signature::from_slice(&sig)
            .map_err(|_| damaged(i + 1, "has a malformed signature"))?;
        p256::ecdsa::VerifyingKey::from(&from)
            .verify(&statement(&compressed(&from), &compressed(&to)), &sig)
            .map_err(|_| damaged(i + 1, "is not signed by the vault key it replaced"))?;
        if keys.contains(&link.from) {
            return Err(damaged(i + 1, "goes back to a vault key it already had"));
        }
        keys.push(link.from.clone());
    }
    if keys.contains(&file.public_key) {
        return Err(damaged(
            file.lineage.len(),
            "goes back to a vault key it already had",
        ));
    }
    keys.push(file.public_key.clone());
    Ok(keys)
}
