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

/// Whether `line` carries records signed by the vault key it names, whether or not the record
/// believes that key: a line a rotation wrote, whose link from the vault before was taken out
/// of the log, still verifies so. Anyone can make a key and sign a line with it, so this alone
/// vouches for nothing; it tells such a line from one with no signature that verifies at all.
pub(crate) fn self_signed(line: &CheckLine) -> bool {
    verifies(line, std::slice::from_ref(&line.vault_key))
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
    /// Those of them signed by the vault key they name, which the record does not believe (no
    /// signed link reaches it): a rotation's lines, once its link is taken out of the log,
    /// read so, and were said to be written by hand (red-team round 23).
    pub unlinked: Vec<&'a CheckLine>,
    /// Lines that verify but are copies of a check (`seq`, and the `seq` of the earlier line
    /// that verifies with a generation as high), newest first: every manifest takes a
    /// generation above each one before it (`vault_ops::next_generation`), so a signed line
    /// whose generation is not above an earlier signed one's was not written there.
    pub replayed: Vec<(u64, u64)>,
    /// Where the reading stopped past [`FORGED_CHECKED`] lines that do not verify: the `seq`
    /// of the oldest of them it looked at. Nothing before it was read.
    pub flooded: Option<u64>,
}

/// Sort `checks` into authenticated lines and the rest ([`Authenticated`]), looking back from
/// the newest line until `enough` says the authenticated ones found (newest first) suffice.
///
/// A signed line is valid wherever it is put, and one `unlock` line saved and appended again
/// was taken for the keystore's last check, or for the unlock before the last, and hid what a
/// command folded in (red-team round 22, recheck). Generations only rise, so a line that
/// verifies is a check only where no earlier line that verifies names a generation as high;
/// otherwise it is a copy ([`Authenticated::replayed`]), said as such.
pub fn authenticated<'a>(
    checks: &'a [CheckLine],
    believed: &[String],
    enough: impl Fn(&[&CheckLine]) -> bool,
) -> Authenticated<'a> {
    authenticated_above(checks, believed, None, enough)
}

/// [`authenticated`] for lines read from the middle of the log, after a check known to have
/// recorded generation `floor` (a running agent's last unlock): a line at or below it is a
/// copy ([`Authenticated::replayed`], with `0` for the line it repeats).
pub fn authenticated_above<'a>(
    checks: &'a [CheckLine],
    believed: &[String],
    floor: Option<u64>,
    enough: impl Fn(&[&CheckLine]) -> bool,
) -> Authenticated<'a> {
    let mut out = Authenticated::default();
    let mut forged = 0;
    // Each line's verdict, worked out once: a copy is told by the earlier lines it repeats.
    let mut verdicts: Vec<Option<bool>> = vec![None; checks.len()];
    let mut verified = |i: usize, forged: &mut usize| -> bool {
        *verdicts[i].get_or_insert_with(|| {
            let ok = verifies(&checks[i], believed);
            *forged += usize::from(!ok && !checks[i].signature.is_empty());
            ok
        })
    };
    // The highest generation a signed line names before each line (verified or not): where
    // none is as high as a line's, no earlier line need be verified to know it is no copy.
    let mut highest_before = Vec::with_capacity(checks.len());
    let mut highest: Option<u64> = floor;
    for c in checks {
        highest_before.push(highest);
        if !c.signature.is_empty() {
            highest = highest.max(Some(c.generation));
        }
    }
    for (i, line) in checks.iter().enumerate().rev() {
        if enough(&out.lines) {
            break;
        }
        let signed = !line.signature.is_empty();
        if signed && forged >= FORGED_CHECKED {
            out.signed = true;
            out.flooded = Some(line.seq);
            break;
        }
        if verified(i, &mut forged) {
            out.signed = true;
            let mut copied = floor.filter(|g| *g >= line.generation).map(|_| 0);
            if copied.is_none() && highest_before[i].is_some_and(|g| g >= line.generation) {
                for j in (0..i).rev() {
                    let earlier = &checks[j];
                    if earlier.signature.is_empty() || earlier.generation < line.generation {
                        continue;
                    }
                    if forged >= FORGED_CHECKED {
                        out.flooded = Some(earlier.seq);
                        break;
                    }
                    if verified(j, &mut forged) {
                        copied = Some(earlier.seq);
                        break;
                    }
                }
            }
            match copied {
                Some(of) => out.replayed.push((line.seq, of)),
                None if out.flooded.is_some() => break,
                None => out.lines.push(line),
            }
            continue;
        }
        if out.lines.is_empty() {
            match signed && !believed.contains(&line.vault_key) && self_signed(line) {
                true => out.unlinked.push(line),
                false => out.not_checks.push(line.seq),
            }
        }
    }
    out.lines.reverse();
    out.not_checks.reverse();
    out.unlinked.reverse();
    out
}

/// What the notes say, once, of signed lines that are copies of a check
/// ([`Authenticated::replayed`]), or `None`.
pub fn replayed_note(replayed: &[(u64, u64)]) -> Option<String> {
    let (seq, of) = replayed.last()?;
    let more = match replayed.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more after it"),
    };
    let of = match of {
        0 => "this agent's last unlock recorded".to_owned(),
        of => format!("audit line {of} records"),
    };
    Some(format!(
        "audit line {seq}{more} repeats a keystore check the vault key signed, with a generation no higher than the one {of}: tapsign writes each manifest's line once, with a generation above every one before it, so the line was copied there from earlier in the log: it is not taken as a check; keep a copy of the log, and `tapsign audit` shows the line"
    ))
}

/// What the notes say, loudly, where the reading stopped past [`FORGED_CHECKED`] lines that do
/// not verify ([`Authenticated::flooded`]), or `None`: what they read ends there.
pub fn flooded_note(flooded: Option<u64>, what: &str) -> Option<String> {
    let seq = flooded?;
    Some(format!(
        "the audit log holds more than {FORGED_CHECKED} keystore lines whose signature does not verify, down to audit line {seq}: lines written by hand to bury the keystore's checks, and {what} could not be read past them. Keep a copy of the log and look for what wrote them (`tapsign audit` shows each line); check every credential you use (`tapsign key list`), and store again with `tapsign key add NAME --exchange ... --replace` any you did not store yourself"
    ))
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

/// What the notes say, once, of `keystore` lines signed by the vault key they name, to which
/// no signed link leads ([`Authenticated::unlinked`]): not written by hand, as far as the line
/// shows, but not a check of this keystore's either.
pub fn unlinked_note(lines: &[&CheckLine]) -> Option<String> {
    let first = lines.first()?;
    let more = match lines.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more after it"),
    };
    Some(format!(
        "audit line {}{more} records {} (generation {}), signed by that vault's own key, to which no signed link leads from a vault the log records before it: {UNLINKED_WHY}. It is not taken as a check, so the credential files are judged against the last check that is; keep a copy of the log, and `tapsign audit` shows the line",
        first.seq,
        super::layout::key_tag(&first.vault_key)
            .map_or_else(|| "a vault".to_owned(), |t| format!("vault-{t}")),
        first.generation,
    ))
}

/// Why a line signed by its own vault key is not reached by a signed link: what to suspect.
pub(crate) const UNLINKED_WHY: &str = "the link was taken out of the log (a rotation's line carries it) or that vault's folder removed (its `vault.json` carries it too); where the vault on disk is older than that one, an older copy of the keystore may have been put back, which a token removed at that rotation may open";

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

    /// Red-team round 23: a rotation's lines, once its link is taken out of the log, verify
    /// only against the vault key they name, which the record no longer believes. They are no
    /// check, but not "written by hand" either: said as lines of a vault no link reaches.
    #[test]
    fn a_line_signed_by_a_vault_no_link_reaches_is_said_as_such() {
        let (vk, key) = vault(7);
        let (later, later_key) = vault(9);
        let check = signed(3, &vk, &key, k1('a'));
        let rotated = CheckLine {
            generation: 3,
            reason: "rotated".into(),
            signature: sign(&later, 3, &later_key, "rotated", &k1('b')),
            ..signed(5, &later, &later_key, k1('b'))
        };
        let by_hand = CheckLine {
            seq: 6,
            signature: String::new(),
            records: None,
            ..rotated.clone()
        };
        let checks = [check, rotated, by_hand];
        let auth = authenticated(&checks, std::slice::from_ref(&key), |a| !a.is_empty());
        assert_eq!(auth.lines.iter().map(|c| c.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(auth.unlinked.iter().map(|c| c.seq).collect::<Vec<_>>(), [5]);
        assert_eq!(auth.not_checks, [6]);
        let note = unlinked_note(&auth.unlinked).unwrap();
        assert!(
            note.contains("audit line 5") && note.contains("signed by that vault's own key"),
            "{note}"
        );
        assert!(!note.contains("by hand"), "{note}");
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

    /// Red-team round 22, recheck: a signed line verifies wherever it is put, and one saved
    /// and appended again was taken for the last check. Generations only rise: a line whose
    /// generation is not above an earlier signed line's is a copy, not a check.
    #[test]
    fn a_signed_line_appended_again_is_a_copy_not_a_check() {
        let (vk, key) = vault(7);
        let first = signed(1, &vk, &key, k1('a'));
        let mut next = first.clone();
        (next.seq, next.generation) = (2, 3);
        next.signature = sign(&vk, 3, &key, "unlock", next.records.as_ref().unwrap());
        assert!(verifies(&next, std::slice::from_ref(&key)));
        let copy = CheckLine {
            seq: 3,
            ..first.clone()
        };
        let checks = [first, next, copy];
        let auth = authenticated(&checks, std::slice::from_ref(&key), |a| a.len() >= 2);
        assert_eq!(auth.lines.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(auth.replayed, [(3, 2)]);
        assert!(auth.not_checks.is_empty());
        let note = replayed_note(&auth.replayed).unwrap();
        assert!(
            note.contains("audit line 3") && note.contains("audit line 2"),
            "{note}"
        );
    }
}
