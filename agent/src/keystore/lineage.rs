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
    let mut file = VaultFile::new(next);
    file.version = super::format::VAULT_LINEAGE_VERSION;
    file.lineage = old_file.lineage.clone();
    file.lineage.push(link(old, next));
    file
}

/// The link by which `old` signs `next` as the vault key that replaces it.
fn link(old: &VaultKey, next: &PublicKey) -> Succession {
    let from = compressed(&old.public_key());
    let to = compressed(next);
    let signature = old.sign_statement(&statement(&from, &to));
    Succession {
        from: hex::encode(&from),
        to: hex::encode(&to),
        signature: hex::encode(signature),
    }
}

/// Vault `n` of a made-up keystore, for records tests write by hand: its public key (hex), and
/// the link to it signed by vault `n - 1`.
#[cfg(test)]
pub(crate) fn numbered(n: u8) -> (String, Succession) {
    let vault = |n: u8| VaultKey::from_bytes(&[n.wrapping_add(16); 32]).expect("a valid scalar");
    let key = vault(n).public_key();
    (
        hex::encode(compressed(&key)),
        link(&vault(n.wrapping_sub(1)), &key),
    )
}

/// Every vault key `file` descends from, oldest first, then its own: each link must follow on
/// from the one before (its `from` the previous `to`), the last must end at the file's key,
/// and each must be signed by the key it replaced. Any link that does not is damage.
pub(crate) fn ancestry(file: &VaultFile, path: &Path) -> Result<Vec<String>, KeystoreError> {
    descent(&file.lineage, &file.public_key, path)
}

/// [`ancestry`] of vault key `key` by `links` (a `vault.json`'s lineage, or the part of it a
/// `keystore` line carries).
fn descent(links: &[Succession], key: &str, path: &Path) -> Result<Vec<String>, KeystoreError> {
    let damaged = |i: usize, why: &str| {
        KeystoreError::damaged(path, format!("its lineage does not verify: link {i} {why}"))
    };
    let mut keys = Vec::with_capacity(links.len() + 1);
    for (i, link) in links.iter().enumerate() {
        let next = links.get(i + 1).map_or(key, |n| n.from.as_str());
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
    if keys.iter().any(|k| k == key) {
        return Err(damaged(
            links.len(),
            "goes back to a vault key it already had",
        ));
    }
    keys.push(key.to_owned());
    Ok(keys)
}

/// Whether a record naming vault key `key`, and carrying `links`, is believed after the vaults
/// `believed` (those believed before it, in the order the record is read). The first vault a
/// record names is (nothing came before it to sign for it), and so is one believed already;
/// any other must carry signed links that lead to it from a believed vault, as a rotation's
/// record does. A record that names a vault nobody holds (anyone who can write the log can
/// append one that continues the chain) would otherwise hold every later check to a vault the
/// keystore can never descend from: every unlock and rebuild refused for good (red-team round
/// 19).
pub(crate) fn vouched(believed: &[String], key: &str, links: &[Succession]) -> bool {
    if believed.is_empty() || believed.iter().any(|b| b == key) {
        return true;
    }
    links
        .first()
        .is_some_and(|first| believed.contains(&first.from))
        && descent(links, key, Path::new("the audit log")).is_ok()
}

/// Whether `links` (the part of a lineage a `keystore` line carries) are signed links that
/// lead from vault key `from` to vault key `to`, a later one: `to` descends from `from`. A
/// line naming a vault already believed is believed with no links at all ([`vouched`]), so
/// this, not belief, says which of two vaults is the newer.
pub(crate) fn leads_from(links: &[Succession], from: &str, to: &str) -> bool {
    from != to
        && descent(links, to, Path::new("the audit log"))
            .is_ok_and(|keys| keys.iter().any(|k| k == from))
}

/// The links a record of `vault` carries (its lineage from the last of it `believed` holds),
/// so that the record is [`vouched`] for: none when its key is believed already, or when no
/// vault is (it is the first).
pub(crate) fn links_for(vault: &VaultFile, believed: &[String]) -> Vec<Succession> {
    if believed.is_empty() || believed.contains(&vault.public_key) {
        return Vec::new();
    }
    match vault
        .lineage
        .iter()
        .rposition(|l| believed.contains(&l.from))
    {
        Some(i) => vault.lineage[i..].to_vec(),
        None => Vec::new(),
    }
}
