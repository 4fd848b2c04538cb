//! Asymmetric key slots (9A/9C/9D/9E and retired 82..95) holding P-256 keys: GENERATE (47),
//! IMPORT (FE), slot metadata, and the private-key halves of GENERAL AUTHENTICATE (87):
//! ECDSA (tag 81) and ECDH (tag 85). Policy checks live with the session in `piv::mod`.

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};

use crate::apdu::Sw;
use crate::tlv;

/// PIV algorithm id for ECC P-256; the only asymmetric algorithm this card has.
pub const ALG_ECCP256: u8 = 0x11;

/// PIN policy (TLV AA; firmware-notes/pin-policies.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    Never = 1,
    Once = 2,
    Always = 3,
}

/// Touch policy (TLV AB; firmware-notes/touch-policies.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchPolicy {
    Never = 1,
    Always = 2,
    /// A touch is good for 15 s.
    Cached = 3,
}

/// Whether the key was made on the card or imported (metadata tag 03).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated = 1,
    Imported = 2,
}

/// Slots that can hold a private key.
pub fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95)
}

/// The slot's policy when GENERATE omits AA: 9C (signature) asks every time, 9E (card
/// authentication) never, the rest once per session.
fn default_pin_policy(slot: u8) -> PinPolicy {
    match slot {
        0x9C => PinPolicy::Always,
        0x9E => PinPolicy::Never,
        _ => PinPolicy::Once,
    }
}

/// A private key in a slot. No security: tests only.
pub struct Keyslot {
    secret: SecretKey,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
    pub origin: Origin,
}

/// What a GENERAL AUTHENTICATE asks of a key.
pub enum KeyOp<'a> {
    /// Tag 81: sign this (already hashed) message.
    Sign(&'a [u8]),
    /// Tag 85: ECDH with this peer point.
    Ecdh(&'a [u8]),
}

/// Reads AA/AB from GENERATE or IMPORT data; value 0 means "the slot's default".
fn policies(slot: u8, items: &[(u8, &[u8])]) -> Result<(PinPolicy, TouchPolicy), Sw> {
    let pin = match tlv::find(items, 0xAA) {
        None | Some([0]) => default_pin_policy(slot),
        Some([1]) => PinPolicy::Never,
        Some([2]) => PinPolicy::Once,
        Some([3]) => PinPolicy::Always,
        Some(_) => return Err(Sw::WRONG_DATA),
    };
    let touch = match tlv::find(items, 0xAB) {
        None | Some([0]) | Some([1]) => TouchPolicy::Never,
        Some([2]) => TouchPolicy::Always,
        Some([3]) => TouchPolicy::Cached,
        Some(_) => return Err(Sw::WRONG_DATA),
    };
    Ok((pin, touch))
}

fn random_secret() -> Result<SecretKey, Sw> {
    // A random 32-byte string is a valid scalar except with negligible probability; retry.
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| Sw(0x6F00))?;
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return Ok(secret);
        }
    }
    Err(Sw(0x6F00))
}

impl Keyslot {
    /// GENERATE ASYMMETRIC data: `AC L 80 01 <alg> [AA 01 <pin>] [AB 01 <touch>]`.
    pub fn generate(slot: u8, data: &[u8]) -> Result<Keyslot, Sw> {
        let Some((0xAC, inner, [])) = tlv::take(data) else {
            return Err(Sw::WRONG_DATA);
        };
        let items = tlv::parse_all(inner).ok_or(Sw::WRONG_DATA)?;
        if tlv::find(&items, 0x80) != Some(&[ALG_ECCP256]) {
            // RSA, P-384, 25519: not emulated (firmware-notes/not-emulated.md).
            return Err(Sw::WRONG_DATA);
        }
        let (pin_policy, touch_policy) = policies(slot, &items)?;
        Ok(Keyslot {
            secret: random_secret()?,
            pin_policy,
            touch_policy,
            origin: Origin::Generated,
        })
    }

    /// IMPORT ASYMMETRIC KEY data for P-256: `06 20 <d> [AA ..] [AB ..]`.
    pub fn import(slot: u8, alg: u8, data: &[u8]) -> Result<Keyslot, Sw> {
        let items = tlv::parse_all(data).ok_or(Sw::WRONG_DATA)?;
        if alg != ALG_ECCP256 {
            return Err(Sw::WRONG_DATA);
        }
        let d = tlv::find(&items, 0x06).ok_or(Sw::WRONG_DATA)?;
        let secret = SecretKey::from_slice(d).map_err(|_| Sw::WRONG_DATA)?;
        let (pin_policy, touch_policy) = policies(slot, &items)?;
        Ok(Keyslot {
            secret,
            pin_policy,
            touch_policy,
            origin: Origin::Imported,
        })
    }

    /// Uncompressed SEC1 point, 65 bytes.
    pub fn public_point(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// GENERATE's answer: `7F49 L 86 41 <point>`.
    pub fn public_key_template(&self) -> Vec<u8> {
        tlv::tlv(&[0x7F, 0x49], &tlv::tlv(&[0x86], &self.public_point()))
    }

    /// GET METADATA for this slot: algorithm, policies, origin, public key.
    pub fn metadata(&self) -> Vec<u8> {
        let mut out = tlv::tlv(&[0x01], &[ALG_ECCP256]);
        let policy = [self.pin_policy as u8, self.touch_policy as u8];
        tlv::put(&mut out, &[0x02], &policy);
        tlv::put(&mut out, &[0x03], &[self.origin as u8]);
        tlv::put(&mut out, &[0x04], &tlv::tlv(&[0x86], &self.public_point()));
        out
    }

    /// Runs the private-key operation; the caller already enforced PIN and touch.
    /// Answers `7C L 82 L <result>`.
    pub fn run(&self, op: &KeyOp<'_>) -> Result<Vec<u8>, Sw> {
        let result = match op {
            KeyOp::Ecdh(point) => {
                // Only the uncompressed form is accepted, as on the real key.
                if point.len() != 65 {
                    return Err(Sw::WRONG_DATA);
                }
                let peer = PublicKey::from_sec1_bytes(point).map_err(|_| Sw::WRONG_DATA)?;
                let shared =
                    p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
                shared.raw_secret_bytes().to_vec()
            }
            KeyOp::Sign(hash) => {
                if hash.is_empty() || hash.len() > 32 {
                    return Err(Sw::WRONG_DATA);
                }
                // Shorter input is a truncated hash; left-pad it like the card does.
                let mut prehash = [0u8; 32];
                prehash[32 - hash.len()..].copy_from_slice(hash);
                let sig: p256::ecdsa::Signature = SigningKey::from(&self.secret)
                    .sign_prehash(&prehash)
                    .map_err(|_| Sw::WRONG_DATA)?;
                sig.to_der().as_bytes().to_vec()
            }
        };
        Ok(tlv::tlv(&[0x7C], &tlv::tlv(&[0x82], &result)))
    }
}

impl<'a> KeyOp<'a> {
    /// Parses `7C L [82 00] (81|85) L <input>`.
    pub fn parse(data: &'a [u8]) -> Option<KeyOp<'a>> {
        let (0x7C, inner, []) = tlv::take(data)? else {
            return None;
        };
        let items = tlv::parse_all(inner)?;
        if tlv::find(&items, 0x82) != Some(&[]) {
            return None;
        }
        match (tlv::find(&items, 0x81), tlv::find(&items, 0x85)) {
            (Some(hash), None) => Some(KeyOp::Sign(hash)),
            (None, Some(point)) => Some(KeyOp::Ecdh(point)),
            _ => None,
        }
    }
}
