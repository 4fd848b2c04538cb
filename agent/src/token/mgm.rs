//! The PIV management key of a YubiKey being enrolled: the one `token add --piv`
//! authenticates with, and the random one it puts in place of the factory default.
//!
//! The factory key is public (`010203...`): with it, any program running as the trader can
//! generate or import a key over the enrolled slot (the keystore's keyslot then opens nothing),
//! or change the management key and lock the trader out of enrolling the card again, with no
//! PIN and no touch (red-team round 27). So when `token add --piv` finds the factory key, it
//! sets a random one and keeps it on the card behind the PIN, as yubikey-agent does at setup
//! and `ykman piv access change-management-key --generate --protect` does, in ykman's format,
//! so ykman and the `yubikey` crate (`MgmKey::get_protected`) find it with the PIN:
//! - PRINTED (`5FC109`), which the card gives out only after the PIN: `88 { 89 <key> }`;
//! - ADMIN DATA (`5FFF00`), readable by anyone: `80 { 81 <flags> }`, flag `02` meaning "the
//!   management key is stored behind the PIN".
//!
//! The order is chosen so that a failure at any step leaves a card that opens with a key
//! tapsign finds, and never one flagged as stored while the card uses another (ykman would
//! then answer the right PIN with "PIN verification failed"): the flag off, the key stored in
//! PRINTED (beside the stored key it replaces, if any), SET, the flag on ([`replace`]);
//! finding the key tries the ones in PRINTED first, flag or not, and the factory one after
//! it. A SET MANAGEMENT KEY the card refuses puts both objects back. A key found stored is
//! replaced all the same: storing one takes the management key, not the PIN, so a program
//! that had the factory key may have stored its own. Every step runs on the card held alone
//! ([`super::held`]), after the PIN check. See
//! firmware-notes/default-management-key.md.

use yubikey::{MgmAlgorithmId, MgmKey, YubiKey};
use zeroize::Zeroizing;

use super::TokenError;
use super::held::HeldCard;
use super::piv::card_error;
use crate::secret::SecretString;

/// Printed information: the card reads it out only after the PIN; ykman keeps its
/// PIN-protected management key there.
const PRINTED: [u8; 3] = [0x5F, 0xC1, 0x09];
/// ykman's "pivman" admin data: flags anyone can read.
const ADMIN_DATA: [u8; 3] = [0x5F, 0xFF, 0x00];
const TAG_PROTECTED: u8 = 0x88;
const TAG_PROTECTED_KEY: u8 = 0x89;
/// tapsign's own, in PRINTED beside ykman's key while a stored key is being replaced: the key
/// still in use, for a run cut off before SET to find. ykman and the `yubikey` crate read
/// only `89`.
const TAG_PREVIOUS_KEY: u8 = 0x8A;
const TAG_ADMIN: u8 = 0x80;
const TAG_ADMIN_FLAGS: u8 = 0x81;
/// The salt of a PIN-derived management key (deprecated): gone once the key is a stored one.
const TAG_ADMIN_SALT: u8 = 0x82;
/// ADMIN DATA flag: the management key is stored in PRINTED, behind the PIN.
const FLAG_KEY_STORED: u8 = 0x02;
const SW_OK: u16 = 0x9000;
const SW_NOT_FOUND: u16 = 0x6A82;
/// What PUT DATA can carry in one short APDU, its `5C 03 <id> 53 L` head included.
const PUT_MAX: usize = 255;

/// How `token add --piv` gets its management key.
pub(super) enum Plan {
    /// The one the trader typed in (`--custom-mgm-key`), used as it is: its bytes, of a
    /// length some algorithm takes; which one is the card's to say ([`custom_key`]).
    Custom(Zeroizing<Vec<u8>>),
    /// The one stored behind the PIN, else the factory one (`default`, the card's by
    /// firmware), which is replaced unless `keep_default`. `aes`: the firmware takes AES
    /// management keys (5.4.2 and later).
    Managed {
        default: MgmKey,
        aes: bool,
        keep_default: bool,
    },
}

impl Plan {
    /// The plan for YubiKey `yk`: the custom key (hex) if one is given, checked for form
    /// only (the card checks it inside the hold).
    pub(super) fn new(
        yk: &YubiKey,
        custom: Option<&SecretString>,
        keep_default: bool,
        serial: u32,
    ) -> Result<Plan, TokenError> {
        if let Some(hexkey) = custom {
            let bytes = Zeroizing::new(hex::decode(hexkey.expose().trim()).map_err(|_| {
                TokenError::Other(
                    "the management key must be hex (48 digits for 3DES or AES-192)".into(),
                )
            })?);
            if algorithms_of(bytes.len()).is_empty() {
                return Err(TokenError::Other("the management key has the wrong length: give 48 hex digits (3DES or AES-192), 32 (AES-128) or 64 (AES-256)".into()));
            }
            return Ok(Plan::Custom(bytes));
        }
        let v = yk.version();
        Ok(Plan::Managed {
            // 3DES before firmware 5.7, AES-192 from 5.7 on: the crate picks by version.
            default: MgmKey::get_default(yk).map_err(|e| card_error(e, serial))?,
            aes: (v.major, v.minor, v.patch) >= (5, 4, 2),
            keep_default,
        })
    }
}

/// What became of the card's management key, for `token add` to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmOutcome {
    /// It was the factory key; a random one (AES-192, or 3DES on firmware before 5.4.2) took
    /// its place, stored on the card behind the PIN.
    Replaced { aes: bool },
    /// One stored behind the PIN (by an earlier `token add`, `ykman ... --protect`, or any
    /// program that had the management key: storing needs no PIN), replaced by a random one
    /// stored the same way.
    Rotated { aes: bool },
    /// The factory key, left in place (`--keep-default-mgm-key`).
    KeptDefault,
    /// The one typed in (`--custom-mgm-key`).
    Custom,
    /// Not needed (adopting a key) and not the factory one: left as it is.
    Untouched,
}

/// Authenticate the held card with its management key, as `plan` says, replacing the factory
/// key first when it finds that one (and may). The PIN must be verified already: the stored
/// key is read with it. `need`: the caller goes on to GENERATE; adopting a key needs no
/// management key, and then a card whose key tapsign cannot find is left alone.
pub(super) fn authenticate(
    card: &mut HeldCard<'_>,
    plan: &Plan,
    serial: u32,
    need: bool,
) -> Result<MgmOutcome, TokenError> {
    let (default, aes, keep_default) = match plan {
        Plan::Custom(bytes) => {
            let key = custom_key(card, bytes, serial)?;
            return match card.authenticate(&key)? {
                true => Ok(MgmOutcome::Custom),
                false => Err(TokenError::Other(format!(
                    "YubiKey {serial} refused that management key: check it and run again (`ykman piv info` shows its algorithm)"
                ))),
            };
        }
        Plan::Managed {
            default,
            aes,
            keep_default,
        } => (default, *aes, *keep_default),
    };
    let current = current_algorithm(card)?;
    let admin = read_object(card, ADMIN_DATA, "its admin data (5FFF00)")?;
    let flags = admin.as_deref().map(Vec::as_slice).map_or(0, admin_flags);
    // PRINTED is read whether or not the flag says a key is stored: a replacement cut off
    // after SET and before the flag leaves the key in use there, unflagged.
    let printed = read_object(card, PRINTED, "its PIN-protected data (5FC109)")?;
    let printed = printed.as_deref().map(Vec::as_slice);
    let alg_now = current.unwrap_or(MgmAlgorithmId::ThreeDes);
    let stored = printed.map(|p| stored_keys(p, alg_now)).unwrap_or_default();
    for key in &stored {
        if card.authenticate(key)? {
            // Writing PRINTED and the flag needs the management key, not the PIN: a program
            // running as the trader that met the factory key before this card's first
            // enrollment could have stored a key of its own there, and would keep it. So a
            // stored key is never kept: a new one takes its place (red-team round 27).
            let aes = aes || alg_now != MgmAlgorithmId::ThreeDes;
            let old = Zeroizing::new(key.as_ref().to_vec());
            replace(
                card,
                aes,
                (admin.as_deref().map(Vec::as_slice), printed),
                Some(&old),
                serial,
            )?;
            return Ok(MgmOutcome::Rotated { aes });
        }
    }
    // Some(found): the card says its key is stored behind the PIN, and no key stored there
    // (found or not) authenticated.
    let stale = (flags & FLAG_KEY_STORED != 0).then_some(!stored.is_empty());
    // A stored key that does not authenticate is one another tool (or an earlier tapsign,
    // whose order left such a flag when cut off) left behind.
    if !card.authenticate(default)? {
        return match (stale, need) {
            (_, false) => Ok(MgmOutcome::Untouched),
            (Some(found), true) => Err(stale_key(serial, found)),
            (None, true) => Err(TokenError::Other(format!(
                "YubiKey {serial}'s management key is not the factory default, and the card does not say it is stored behind its PIN (`ykman piv access change-management-key --protect` and tapsign store it so); run again with --custom-mgm-key and enter it"
            ))),
        };
    }
    if keep_default {
        if stale.is_some() {
            // A flag saying a key is stored over a card on the factory key makes ykman read
            // that key, fail, and say "PIN verification failed" to the right PIN. Best
            // effort: a refusal leaves it for the next run.
            let admin = admin.as_deref().map(Vec::as_slice);
            let _ = put_object(
                card,
                ADMIN_DATA,
                &admin_data(admin, flags & !FLAG_KEY_STORED),
            );
        }
        return Ok(MgmOutcome::KeptDefault);
    }
    // AES where the card takes it: its key is AES already (5.7 and later), or its firmware
    // can set one (5.4.2 and later); 3DES otherwise.
    let aes = aes || current.is_some_and(|a| a != MgmAlgorithmId::ThreeDes);
    replace(
        card,
        aes,
        (admin.as_deref().map(Vec::as_slice), printed),
        None,
        serial,
    )?;
    Ok(MgmOutcome::Replaced { aes })
}

/// The algorithms whose keys are `len` bytes long.
fn algorithms_of(len: usize) -> &'static [MgmAlgorithmId] {
    match len {
        16 => &[MgmAlgorithmId::Aes128],
        24 => &[MgmAlgorithmId::ThreeDes, MgmAlgorithmId::Aes192],
        32 => &[MgmAlgorithmId::Aes256],
        _ => &[],
    }
}

/// The typed-in key `bytes` as a key of the card's algorithm, from its metadata; a card that
/// does not say (before firmware 5.3) has a 3DES key. 24 bytes are 3DES or AES-192 alike,
/// and the crate, asked to pick by length, took only 3DES: an AES-192 key (firmware 5.7's
/// default algorithm, the one ykman sets there, the one tapsign stores) was refused as
/// wrong, and 32 or 64 hex digits as the wrong length.
fn custom_key(card: &mut HeldCard<'_>, bytes: &[u8], serial: u32) -> Result<MgmKey, TokenError> {
    let alg = current_algorithm(card)?.unwrap_or(MgmAlgorithmId::ThreeDes);
    let (name, digits) = match alg {
        MgmAlgorithmId::ThreeDes => ("3DES", 48),
        MgmAlgorithmId::Aes128 => ("AES-128", 32),
        MgmAlgorithmId::Aes192 => ("AES-192", 48),
        MgmAlgorithmId::Aes256 => ("AES-256", 64),
    };
    if !algorithms_of(bytes.len()).contains(&alg) {
        return Err(TokenError::Other(format!(
            "YubiKey {serial}'s management key is {name}, {digits} hex digits, and that one has {}: check it and run again",
            2 * bytes.len()
        )));
    }
    MgmKey::from_bytes(bytes, Some(alg)).map_err(|_| {
        TokenError::Other(format!(
            "that management key is not a usable {name} key: check it and run again"
        ))
    })
}

/// The stored key did not authenticate, nor did the factory one.
fn stale_key(serial: u32, found: bool) -> TokenError {
    let what = match found {
        true => "the key stored there does not authenticate",
        false => "no key is stored there",
    };
    TokenError::Other(format!(
        "YubiKey {serial} says its management key is stored behind its PIN, but {what}, and the factory key does not authenticate either: another tool changed the management key without storing the new one. Run again with --custom-mgm-key and enter the key the card has"
    ))
}

/// The algorithm of the card's management key, from its metadata (firmware 5.3 and later):
/// `None` when the card does not say. Only a hint: the authentication is the judge.
fn current_algorithm(card: &mut HeldCard<'_>) -> Result<Option<MgmAlgorithmId>, TokenError> {
    let (data, sw) = card.send(
        &[0x00, 0xF7, 0x00, 0x9B, 0x00],
        "its management key's metadata",
    )?;
    if sw != SW_OK {
        return Ok(None);
    }
    let mut rest = data.as_slice();
    while let Some((tag, value, next)) = take(rest) {
        if let (0x01, [alg]) = (tag, value) {
            return Ok(MgmAlgorithmId::try_from(*alg).ok());
        }
        rest = next;
    }
    Ok(None)
}

/// The value of data object `id` (inside its `53` wrapper), `None` when the card has none.
fn read_object(
    card: &mut HeldCard<'_>,
    id: [u8; 3],
    what: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, TokenError> {
    let apdu = [
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, id[0], id[1], id[2], 0x00,
    ];
    match card.send(&apdu, what)? {
        (data, SW_OK) => match take(&data) {
            Some((0x53, value, [])) => Ok(Some(Zeroizing::new(value.to_vec()))),
            _ => Err(card.unreadable(what)),
        },
        (_, SW_NOT_FOUND) => Ok(None),
        (_, sw) => Err(card.refused(what, sw)),
    }
}

/// Write data object `id` (`value` inside its `53` wrapper; empty deletes it): the card's
/// status word.
fn put_object(card: &mut HeldCard<'_>, id: [u8; 3], value: &[u8]) -> Result<u16, TokenError> {
    let body = tlv(0x53, value);
    if body.len() + 5 > PUT_MAX {
        return Err(TokenError::Other(
            "internal: a data object too long for one command".into(),
        ));
    }
    let mut apdu = Zeroizing::new(Vec::with_capacity(10 + body.len()));
    apdu.extend_from_slice(&[0x00, 0xDB, 0x3F, 0xFF, (body.len() + 5) as u8]);
    apdu.extend_from_slice(&[0x5C, 0x03, id[0], id[1], id[2]]);
    apdu.extend_from_slice(&body);
    Ok(card.send(&apdu, "writing a data object")?.1)
}

/// The keys in PRINTED's value (`88 { 89 <key>, 8A <previous> }`) that fit `alg`: ykman's
/// and the one a replacement cut off before SET still has in use, in that order.
fn stored_keys(printed: &[u8], alg: MgmAlgorithmId) -> Vec<MgmKey> {
    let Some((TAG_PROTECTED, items, _)) = take(printed) else {
        return Vec::new();
    };
    [TAG_PROTECTED_KEY, TAG_PREVIOUS_KEY]
        .into_iter()
        .filter_map(|tag| find(items, tag))
        .filter_map(|k| MgmKey::from_bytes(k, Some(alg)).ok())
        .collect()
}

/// Store a random key behind the PIN and set it: the card is authenticated with the key in
/// use, `previous` when it is a stored one (else the factory key). `aes`: AES-192, else 3DES.
/// `old`: the ADMIN DATA and PRINTED the card had, if any.
///
/// The order leaves, wherever it stops, a card whose key the next run finds (in PRINTED, or
/// the factory one), and never a flag saying a key is stored while the card uses another:
/// ykman, finding the flag, reads the stored key, fails, and says "PIN verification failed"
/// to the right PIN (red-team round 27). So: the flag off (when set), PRINTED with the new
/// key (and `previous` beside it, for the next run to find should this one stop before
/// SET), SET, PRINTED without `previous`, the flag on.
fn replace(
    card: &mut HeldCard<'_>,
    aes: bool,
    (admin, printed): (Option<&[u8]>, Option<&[u8]>),
    previous: Option<&[u8]>,
    serial: u32,
) -> Result<(), TokenError> {
    let alg = match aes {
        true => MgmAlgorithmId::Aes192,
        false => MgmAlgorithmId::ThreeDes,
    };
    // 24 bytes for both: AES-192 and 3DES.
    let mut bytes = Zeroizing::new([0u8; 24]);
    getrandom::fill(&mut *bytes)
        .map_err(|e| TokenError::Other(format!("random number generator failed: {e}")))?;
    // Borrowed, not copied: a copy of the array would be left unwiped.
    let key = MgmKey::from_bytes(bytes.as_slice(), Some(alg))
        .map_err(|_| TokenError::Other("internal: a management key of the wrong size".into()))?;
    let still = match previous {
        Some(_) => "its management key is still the one it had (stored behind its PIN)",
        None => "its management key is still the factory default",
    };
    let retry = match previous {
        Some(_) => "Try again",
        None => {
            "Try again; to enroll with the factory key left in place (any program running as you can then replace the enrolled key), add --keep-default-mgm-key"
        }
    };
    let flags = admin.map_or(0, admin_flags);
    let flagged = flags & FLAG_KEY_STORED != 0;
    if flagged {
        let sw = put_object(
            card,
            ADMIN_DATA,
            &admin_data(admin, flags & !FLAG_KEY_STORED),
        )?;
        if sw != SW_OK {
            return Err(TokenError::Other(format!(
                "YubiKey {serial} refused to change its admin data (status {sw:04X}); nothing changed: {still}. {retry}"
            )));
        }
    }
    let sw = put_object(card, PRINTED, &protected(printed, &*bytes, previous))?;
    if sw != SW_OK {
        if flagged {
            let _ = put_object(card, ADMIN_DATA, admin.unwrap_or_default());
        }
        return Err(TokenError::Other(format!(
            "YubiKey {serial} refused to store a new management key behind its PIN (status {sw:04X}); nothing changed: {still}. {retry}"
        )));
    }
    let sw = set_key(card, &key)?;
    if sw != SW_OK {
        // Put back what the card had: the key in use stays where ykman looks for it. Were
        // PRINTED left with the new key, the next run would still find the old one beside
        // it, or the factory one.
        let _ = put_object(card, PRINTED, printed.unwrap_or_default());
        if flagged {
            let _ = put_object(card, ADMIN_DATA, admin.unwrap_or_default());
        }
        return Err(TokenError::Other(format!(
            "YubiKey {serial} refused the new management key (status {sw:04X}): {still}. {retry}"
        )));
    }
    // The card proves it took the key, as every later `token add` will ask it to.
    if !card.authenticate(&key)? {
        return Err(TokenError::Other(format!(
            "YubiKey {serial} took a new management key but does not authenticate with it; the key is stored on the card behind the PIN. Try again; if it repeats, check the card with `ykman piv info`"
        )));
    }
    if previous.is_some() {
        // Best effort: a key left beside the new one is no longer in use.
        let _ = put_object(card, PRINTED, &protected(printed, &*bytes, None));
    }
    let sw = put_object(
        card,
        ADMIN_DATA,
        &admin_data(admin, flags | FLAG_KEY_STORED),
    )?;
    if sw != SW_OK {
        return Err(TokenError::Other(format!(
            "YubiKey {serial} took a new management key, stored behind its PIN, but refused to mark it so (status {sw:04X}): ykman asks for the management key until then. Run `tapsign token add --piv` again: it finds the key with the PIN and finishes"
        )));
    }
    Ok(())
}

/// SET MANAGEMENT KEY (`alg 9B len key`, no touch required): the card's status word.
fn set_key(card: &mut HeldCard<'_>, key: &MgmKey) -> Result<u16, TokenError> {
    let bytes = key.as_ref();
    let mut apdu = Zeroizing::new(Vec::with_capacity(8 + bytes.len()));
    apdu.extend_from_slice(&[0x00, 0xFF, 0xFF, 0xFF, (bytes.len() + 3) as u8]);
    apdu.extend_from_slice(&[u8::from(key.algorithm_id()), 0x9B, bytes.len() as u8]);
    apdu.extend_from_slice(bytes);
    Ok(card.send(&apdu, "setting the management key")?.1)
}

/// PRINTED holding `key` (`88 { ... 89 <key> }`), and `previous` (`8A`) when given: what else
/// the old one held is kept when it fits one command, as the `yubikey` crate keeps it; else
/// dropped, as ykman drops it.
fn protected(old: Option<&[u8]>, key: &[u8], previous: Option<&[u8]>) -> Zeroizing<Vec<u8>> {
    // Room for the keys up front, as they go in last: a Vec that grows once the new key is in
    // it (adding `previous`) copies that key into a new buffer and frees the old one unwiped.
    let mut items = Zeroizing::new(Vec::with_capacity(PUT_MAX));
    if let Some((TAG_PROTECTED, inner, _)) = old.and_then(take) {
        let mut rest = inner;
        while let Some((tag, value, next)) = take(rest) {
            if tag != TAG_PROTECTED_KEY && tag != TAG_PREVIOUS_KEY {
                items.extend_from_slice(&tlv(tag, value));
            }
            rest = next;
        }
    }
    // 5C 03 id, 53 L, 88 L, 89 L key, 8A L previous: 5 + 3 + 3 + 2 + 24 + 2 + 32 bytes
    // around the kept items.
    if items.len() + 80 > PUT_MAX {
        items.clear();
    }
    items.extend_from_slice(&tlv(TAG_PROTECTED_KEY, key));
    if let Some(previous) = previous {
        items.extend_from_slice(&tlv(TAG_PREVIOUS_KEY, previous));
    }
    tlv(TAG_PROTECTED, &items)
}

/// ADMIN DATA with `flags`, keeping what else the old one held but a PIN-derived key's salt.
fn admin_data(old: Option<&[u8]>, flags: u8) -> Zeroizing<Vec<u8>> {
    let mut items = Zeroizing::new(tlv(TAG_ADMIN_FLAGS, &[flags]).to_vec());
    if let Some((TAG_ADMIN, inner, _)) = old.and_then(take) {
        let mut rest = inner;
        while let Some((tag, value, next)) = take(rest) {
            if tag != TAG_ADMIN_FLAGS && tag != TAG_ADMIN_SALT {
                items.extend_from_slice(&tlv(tag, value));
            }
            rest = next;
        }
    }
    if items.len() + 12 > PUT_MAX {
        items.truncate(3);
    }
    tlv(TAG_ADMIN, &items)
}

/// The flags byte of ADMIN DATA (`80 { 81 <flags> }`), 0 when it has none.
fn admin_flags(admin: &[u8]) -> u8 {
    match take(admin) {
        Some((TAG_ADMIN, items, _)) => match find(items, TAG_ADMIN_FLAGS) {
            Some([flags]) => *flags,
            _ => 0,
        },
        _ => 0,
    }
}

/// The value of the first `tag` among the TLVs `items`.
fn find(mut items: &[u8], tag: u8) -> Option<&[u8]> {
    while let Some((t, value, rest)) = take(items) {
        if t == tag {
            return Some(value);
        }
        items = rest;
    }
    None
}

/// One BER-TLV with a one-byte tag off the front of `data`: tag, value, what follows.
fn take(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7F => (usize::from(first), rest),
        0x81 => (usize::from(*rest.first()?), &rest[1..]),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `tag`, its length (BER), `value`; in a wiped buffer, as it may hold the key.
fn tlv(tag: u8, value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() + 4));
    out.push(tag);
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
#[path = "mgm_tests.rs"]
mod tests;
