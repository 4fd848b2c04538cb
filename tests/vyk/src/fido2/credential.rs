//! Non-discoverable credentials kept in their own credential id: the private key, the two
//! hmac-secret CredRandom values and the credential's policy, sealed with ChaCha20-Poly1305
//! under the device's master secret and bound to the RP id hash. The card stores nothing per
//! credential, like real keys do for non-resident credentials, and a factory reset (a new
//! master secret) makes every old id foreign.
//!
//! Layout: `01 | nonce (12) | sealed(key 32 | CredRandomWithUV 32 | CredRandomWithoutUV 32 |
//! flags 1 | credProtect 1) | tag (16)` = 127 bytes.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use p256::SecretKey;

use super::pin_uv::{random_array, random_secret};
use super::status::{CtapResult, Status};

const VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;
const PLAIN_LEN: usize = 32 + 32 + 32 + 1 + 1;
/// Length of every credential id this card issues.
pub const ID_LEN: usize = 1 + NONCE_LEN + PLAIN_LEN + 16;
const FLAG_HMAC_SECRET: u8 = 0x01;

/// credProtect levels (CTAP 2.1 §12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredProtect {
    UvOptional = 1,
    UvOptionalWithCredentialIdList = 2,
    UvRequired = 3,
}

impl CredProtect {
    pub fn from_level(n: i128) -> Option<CredProtect> {
        match n {
            1 => Some(CredProtect::UvOptional),
            2 => Some(CredProtect::UvOptionalWithCredentialIdList),
            3 => Some(CredProtect::UvRequired),
            _ => None,
        }
    }
}

/// A credential, opened. No security: tests only.
pub struct Credential {
    pub key: SecretKey,
    /// The hmac-secret output with user verification uses this one...
    pub cred_random_with_uv: [u8; 32],
    /// ...and without it this one: the two must never be the same secret.
    pub cred_random_without_uv: [u8; 32],
    pub hmac_secret: bool,
    pub cred_protect: CredProtect,
}

impl Credential {
    pub fn generate(hmac_secret: bool, cred_protect: CredProtect) -> CtapResult<Credential> {
        Ok(Credential {
            key: random_secret()?,
            cred_random_with_uv: random_array()?,
            cred_random_without_uv: random_array()?,
            hmac_secret,
            cred_protect,
        })
    }

    /// The credential id for `rp_id_hash`.
    pub fn seal(&self, master: &[u8; 32], rp_id_hash: &[u8; 32]) -> CtapResult<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = random_array()?;
        let mut buf = Vec::with_capacity(PLAIN_LEN + 16);
        buf.extend_from_slice(&self.key.to_bytes());
        buf.extend_from_slice(&self.cred_random_with_uv);
        buf.extend_from_slice(&self.cred_random_without_uv);
        buf.push(if self.hmac_secret {
            FLAG_HMAC_SECRET
        } else {
            0
        });
        buf.push(self.cred_protect as u8);
        ChaCha20Poly1305::new(master.into())
            .encrypt_in_place(&Nonce::from(nonce), &aad(rp_id_hash), &mut buf)
            .map_err(|_| Status::Other)?;
        let mut id = vec![VERSION];
        id.extend_from_slice(&nonce);
        id.extend(buf);
        Ok(id)
    }

    /// Opens a credential id; `None` if it is not one this device issued for this RP.
    pub fn open(master: &[u8; 32], rp_id_hash: &[u8; 32], id: &[u8]) -> Option<Credential> {
        if id.len() != ID_LEN || id[0] != VERSION {
            return None;
        }
        let nonce: [u8; NONCE_LEN] = id[1..1 + NONCE_LEN].try_into().ok()?;
        let mut buf = id[1 + NONCE_LEN..].to_vec();
        ChaCha20Poly1305::new(master.into())
            .decrypt_in_place(&Nonce::from(nonce), &aad(rp_id_hash), &mut buf)
            .ok()?;
        let key = SecretKey::from_slice(&buf[..32]).ok()?;
        Some(Credential {
            key,
            cred_random_with_uv: buf[32..64].try_into().ok()?,
            cred_random_without_uv: buf[64..96].try_into().ok()?,
            hmac_secret: buf[96] & FLAG_HMAC_SECRET != 0,
            cred_protect: CredProtect::from_level(i128::from(buf[97]))?,
        })
    }
}

fn aad(rp_id_hash: &[u8; 32]) -> Vec<u8> {
    [&[VERSION][..], rp_id_hash].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_opens_only_for_its_rp_and_its_device() {
        let master = [1u8; 32];
        let cred = Credential::generate(true, CredProtect::UvOptional).unwrap();
        let id = cred.seal(&master, &[5; 32]).unwrap();
        assert_eq!(id.len(), ID_LEN);
        let back = Credential::open(&master, &[5; 32], &id).unwrap();
        assert_eq!(back.key.to_bytes(), cred.key.to_bytes());
        assert_eq!(back.cred_random_with_uv, cred.cred_random_with_uv);
        assert_eq!(back.cred_random_without_uv, cred.cred_random_without_uv);
        assert!(back.hmac_secret);
        assert!(
            Credential::open(&master, &[6; 32], &id).is_none(),
            "other RP"
        );
        assert!(
            Credential::open(&[2; 32], &[5; 32], &id).is_none(),
            "other key"
        );
        let mut flipped = id.clone();
        flipped[40] ^= 1;
        assert!(Credential::open(&master, &[5; 32], &flipped).is_none());
        assert!(Credential::open(&master, &[5; 32], &id[..100]).is_none());
    }

    #[test]
    fn the_two_cred_randoms_are_distinct() {
        let cred = Credential::generate(true, CredProtect::UvOptional).unwrap();
        assert_ne!(cred.cred_random_with_uv, cred.cred_random_without_uv);
    }
}
