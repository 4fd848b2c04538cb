//! The signature a `keystore` line carries (docs/keystore-format.md, "What a check leaves in
//! the log"). The change notes judge the credential files against the record the keystore's
//! last check left in the audit log, and anyone who can write the log can append a line that
//! continues its chain: one copied `keystore` line was taken for a check and hid a
//! replacement behind it (red-team round 22). So each operation that holds the vault key signs
//! its line with it, as a rotation signs the next vault key (`super::lineage`), over the
//! credential records its manifest holds: a line verifies against the vault public key it
//! names, which the record believes only by the lineage's signed links. Only the commands and
//! an unlock's check sign or verify these: nothing here runs on the signing path.

use p256::ecdsa::signature::Verifier;

use super::ledger::CheckLine;
use super::manifest::CredRecord;
use super::seal::VaultKey;

/// What a `keystore` line's signature covers: this context, a zero byte, then the generation,
/// the vault public key, the reason and each credential record (name, created, sha256), each
/// string length-prefixed so that no two lines' statements run together the same way.
const CONTEXT: &[u8] = b"tapsign/v1/keystore-line";

fn statement(generation: u64, vault_key: &str, reason: &str, records: &[CredRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + 64 + records.len() * 96);
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    out.extend_from_slice(CONTEXT);
    out.push(0);
    out.extend_from_slice(&generation.to_be_bytes());
    text(&mut out, vault_key);
    text(&mut out, reason);
    out.extend_from_slice(&(records.len() as u64).to_be_bytes());
    for r in records {
        text(&mut out, &r.name);
        out.extend_from_slice(&r.created.to_be_bytes());
        text(&mut out, &r.sha256);
    }
    out
}

/// The signature (hex) of the line recording a manifest of `generation` under `vk`, whose
/// public key (`vault_key`, compressed hex) the line names, for `reason` and `records`.
pub(crate) fn sign(
    vk: &VaultKey,
    generation: u64,
    vault_key: &str,
    reason: &str,
    records: &[CredRecord],
) -> String {
    hex::encode(vk.sign_statement(&statement(generation, vault_key, reason, records)))
}

/// Whether `line` carries records signed by the vault key it names, and that key is one the
/// record believes (`believed`: the first vault recorded, and those signed links lead to).
pub(crate) fn verifies(line: &CheckLine, believed: &[String]) -> bool {
    let Some(records) = &line.records else {
        return false;
    };
    if line.signature.is_empty() || !believed.contains(&line.vault_key) {
        return false;
    }
    let (Ok(key), Ok(sig)) = (hex::decode(&line.vault_key), hex::decode(&line.signature)) else {
        return false;
    };
    let (Ok(key), Ok(sig)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&key),
        p256::ecdsa::Signature::from_slice(&sig),
    ) else {
        return false;
    };
    let stated = statement(line.generation, &line.vault_key, &line.reason, records);
    key.verify(&stated, &sig).is_ok()
}

/// Most `keystore` lines with a signature that does not verify a reading looks past, from the
/// newest back, for the last one that does: each costs a signature check, and anyone can
/// append many. Past them, no line counts as a check (and the notes say so).
pub const FORGED_CHECKED: usize = 1024;

/// The `keystore` lines of `checks` (oldest first) that a holder of the vault key wrote, as
/// far as a reading looks back ([`FORGED_CHECKED`]), oldest first, and what to say of the rest.
#[derive(Debug, Default)]
pub struct Authenticated<'a> {
    pub lines: Vec<&'a CheckLine>,
    /// Whether the log holds any line that verifies, or more forged ones than were looked at:
    /// from then on, only authenticated lines are checks. A log from before lines were signed
    /// reads as it did until its first signed line.
    pub signed: bool,
    /// The `seq` of each line after the last authenticated one that is not (a line copied or
    /// written by hand, or by a tapsign from before lines were signed).
    pub not_checks: Vec<u64>,
}

/// Sort `checks` into authenticated lines and the rest ([`Authenticated`]), looking back from
/// the newest line until `enough` says the authenticated ones found (newest first) suffice.
pub fn authenticated<'a>(
    checks: &'a [CheckLine],
    believed: &[String],
    enough: impl Fn(&[&CheckLine]) -> bool,
) -> Authenticated<'a> {
    let mut out = Authenticated::default();
    let mut forged = 0;
    for line in checks.iter().rev() {
        if enough(&out.lines) {
            break;
        }
        let signed = !line.signature.is_empty();
        if signed && forged >= FORGED_CHECKED {
            out.signed = true;
            break;
        }
        if verifies(line, believed) {
            out.lines.push(line);
            out.signed = true;
            continue;
        }
        forged += usize::from(signed);
        if out.lines.is_empty() {
            out.not_checks.push(line.seq);
        }
    }
    out.lines.reverse();
    out.not_checks.reverse();
    out
}

/// What the notes say, once, of `keystore` lines that are not checks: they are left out.
pub fn not_checks_note(seqs: &[u64]) -> Option<String> {
    let first = seqs.first()?;
    let more = match seqs.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more after it"),
    };
    Some(format!(
        "audit line {first}{more} records a keystore check that no holder of the vault key signed (the line was copied or written by hand): it is not taken as a check, so the credential files are judged against the last check that is; keep a copy of the log, and `tapsign audit` shows the line"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::seal::compressed;

    fn vault(n: u8) -> (VaultKey, String) {
        let vk = VaultKey::from_bytes(&[n; 32]).expect("a valid scalar");
        let key = hex::encode(compressed(&vk.public_key()));
        (vk, key)
    }

    fn signed(seq: u64, vk: &VaultKey, key: &str, records: Vec<CredRecord>) -> CheckLine {
        CheckLine {
            seq,
            unlock: true,
            generation: 2,
            vault_key: key.to_owned(),
            reason: "unlock".into(),
            signature: sign(vk, 2, key, "unlock", &records),
            records: Some(records),
        }
    }

    fn k1(sha: char) -> Vec<CredRecord> {
        vec![CredRecord {
            name: "k1".into(),
            created: 1,
            sha256: sha.to_string().repeat(64),
        }]
    }

    /// Red-team round 22: a `keystore` line anyone appended was taken for a check. Only one the
    /// vault key signed, over the records it carries, of a vault the record believes, is.
    #[test]
    fn only_a_line_the_vault_key_signed_is_a_check() {
        let (vk, key) = vault(7);
        let believed = vec![key.clone()];
        let line = signed(3, &vk, &key, k1('a'));
        assert!(verifies(&line, &believed));
        // The records edited (a replaced file's hash put in), the reason or the generation.
        let mut edited = line.clone();
        edited.records = Some(k1('b'));
        assert!(!verifies(&edited, &believed));
        let mut edited = line.clone();
        edited.generation = 3;
        assert!(!verifies(&edited, &believed));
        // Signed by a vault key of someone else's making, which the record does not believe.
        let (other, other_key) = vault(9);
        assert!(!verifies(
            &signed(4, &other, &other_key, k1('b')),
            &believed
        ));
        // A copy of the last check's line with no signature, appended after it.
        let mut copied = line.clone();
        (copied.seq, copied.signature, copied.records) = (5, String::new(), None);
        let checks = [line.clone(), copied];
        let auth = authenticated(&checks, &believed, |a| !a.is_empty());
        assert!(auth.signed);
        assert_eq!(auth.lines.iter().map(|c| c.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(auth.not_checks, [5]);
        assert!(not_checks_note(&auth.not_checks).is_some_and(|n| n.contains("audit line 5")));
    }

    /// A log from before lines were signed reads as it did: no line is authenticated, and
    /// none is said to be forged.
    #[test]
    fn a_log_with_no_signed_line_is_read_as_before() {
        let old = CheckLine {
            seq: 2,
            unlock: true,
            generation: 1,
            vault_key: vault(7).1,
            reason: "unlock".into(),
            records: None,
            signature: String::new(),
        };
        let auth = authenticated(
            std::slice::from_ref(&old),
            std::slice::from_ref(&old.vault_key),
            |a| !a.is_empty(),
        );
        assert!(!auth.signed && auth.lines.is_empty());
    }

    /// Forged signed lines past [`FORGED_CHECKED`] are not each verified: the reading stops
    /// there, and counts as signed (nothing older is taken for a check on their account).
    #[test]
    fn a_flood_of_forged_signed_lines_is_not_verified_line_by_line() {
        let (vk, key) = vault(7);
        let genuine = signed(1, &vk, &key, k1('a'));
        let forged = (0..FORGED_CHECKED as u64 + 10).map(|i| CheckLine {
            seq: 2 + i,
            signature: "00".repeat(64),
            ..genuine.clone()
        });
        let checks: Vec<CheckLine> = std::iter::once(genuine.clone()).chain(forged).collect();
        let auth = authenticated(&checks, &[key], |a| !a.is_empty());
        assert!(auth.signed && auth.lines.is_empty());
    }
}
