//! PIN/UV auth protocols One and Two (CTAP 2.1 §6.5.6 and §6.5.7): the P-256 key agreement
//! with the authenticator, and the encrypt / decrypt / authenticate functions both clientPIN
//! and the hmac-secret extension (§12.5) build on.
//!
//! | | One | Two |
//! |---|---|---|
//! | kdf(Z) | SHA-256(Z) (32 bytes) | HKDF-SHA-256(salt 32 zeros, Z, "CTAP2 HMAC key") ‖ HKDF-SHA-256(salt 32 zeros, Z, "CTAP2 AES key") (64 bytes) |
//! | encrypt | AES-256-CBC, IV = 0 | random IV ‖ AES-256-CBC(AES key, IV) |
//! | authenticate | first 16 bytes of HMAC-SHA-256 | HMAC-SHA-256 (with the HMAC key) |
//!
//! Z is the X coordinate of the ECDH point. No padding: every plaintext is whole AES blocks.

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cbor::Value;

const BLOCK: usize = 16;

/// Which PIN/UV auth protocol (the number CTAP puts on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    One = 1,
    Two = 2,
}

impl Protocol {
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The protocol to use with an authenticator that lists `offered` in getInfo: Two when
    /// offered, else One. CTAP 2.0 authenticators list nothing and speak One.
    pub fn choose(offered: &[u64]) -> Option<Protocol> {
        if offered.contains(&2) {
            Some(Protocol::Two)
        } else if offered.is_empty() || offered.contains(&1) {
            Some(Protocol::One)
        } else {
            None
        }
    }
}

/// What went wrong in the protocol's crypto. No key material in any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the authenticator's key-agreement key is not a P-256 COSE key ({0})")]
    BadPeerKey(&'static str),
    #[error("a ciphertext from the authenticator is not whole AES blocks")]
    BadCiphertext,
    #[error("the system random number generator failed")]
    Random,
}

/// The shared secret of one key agreement: 32 bytes for One, 64 (HMAC key ‖ AES key) for
/// Two. No Debug or Clone; zeroized on drop.
pub struct SharedSecret {
    protocol: Protocol,
    key: Zeroizing<Vec<u8>>,
}

/// Agree on a shared secret with the authenticator's key-agreement key (a COSE_Key from
/// clientPIN getKeyAgreement). Returns the platform's COSE_Key to send back, and the secret.
pub fn encapsulate(
    protocol: Protocol,
    peer: &Value,
) -> Result<(Value, SharedSecret), ProtocolError> {
    let platform = SecretKey::try_generate().map_err(|_| ProtocolError::Random)?;
    encapsulate_with(protocol, peer, &platform)
}

/// [`encapsulate`] with a given platform key (tests pin it to check against vectors).
pub(crate) fn encapsulate_with(
    protocol: Protocol,
    peer: &Value,
    platform: &SecretKey,
) -> Result<(Value, SharedSecret), ProtocolError> {
    let peer = cose_public_key(peer)?;
    let shared = platform.diffie_hellman(&peer);
    let key = kdf(protocol, shared.raw_secret_bytes())?;
    Ok((
        cose_key(&platform.public_key()),
        SharedSecret { protocol, key },
    ))
}

fn kdf(protocol: Protocol, z: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    match protocol {
        Protocol::One => Ok(Zeroizing::new(Sha256::digest(z).to_vec())),
        Protocol::Two => {
            let hkdf = Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
            let mut key = Zeroizing::new(vec![0u8; 64]);
            let (hmac_key, aes_key) = key.split_at_mut(32);
            hkdf.expand(b"CTAP2 HMAC key", hmac_key)
                .and_then(|()| hkdf.expand(b"CTAP2 AES key", aes_key))
                // 32 bytes is far below HKDF's limit: unreachable, but not a panic.
                .map_err(|_| ProtocolError::Random)?;
            Ok(key)
        }
    }
}

impl SharedSecret {
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn aes_key(&self) -> &[u8] {
        match self.protocol {
            Protocol::One => &self.key,
            Protocol::Two => &self.key[32..],
        }
    }

    /// encrypt(key, plaintext): `plaintext` must be whole AES blocks (salts, PIN hashes).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        match self.protocol {
            Protocol::One => Ok(cbc_encrypt(self.aes_key(), &[0; BLOCK], plaintext)),
            Protocol::Two => {
                let mut iv = [0u8; BLOCK];
                getrandom::fill(&mut iv).map_err(|_| ProtocolError::Random)?;
                Ok(self.encrypt_with_iv(&iv, plaintext))
            }
        }
    }

    /// Protocol Two's encrypt with a given IV (tests pin it to check against vectors).
    pub(crate) fn encrypt_with_iv(&self, iv: &[u8; BLOCK], plaintext: &[u8]) -> Vec<u8> {
        let mut out = iv.to_vec();
        out.extend(cbc_encrypt(self.aes_key(), iv, plaintext));
        out
    }

    /// decrypt(key, ciphertext): for Two the first block is the IV.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        let (iv, body) = match self.protocol {
            Protocol::One => ([0u8; BLOCK], ciphertext),
            Protocol::Two => {
                let (iv, body) = ciphertext
                    .split_first_chunk::<BLOCK>()
                    .ok_or(ProtocolError::BadCiphertext)?;
                (*iv, body)
            }
        };
        cbc_decrypt(self.aes_key(), &iv, body)
    }

    /// authenticate(sharedSecret, message) (saltAuth, PIN change).
    pub fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        authenticate(self.protocol, &self.key, message)
    }
}

/// authenticate(key, message): HMAC-SHA-256, cut to 16 bytes for One. For Two only the first
/// 32 bytes of the key count (the HMAC half of a shared secret; all of a pinUvAuthToken).
pub fn authenticate(protocol: Protocol, key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = match protocol {
        Protocol::One => key,
        Protocol::Two => &key[..key.len().min(32)],
    };
    // HMAC takes keys of any length; the error is unreachable.
    let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    let tag = mac.finalize().into_bytes();
    match protocol {
        Protocol::One => tag[..16].to_vec(),
        Protocol::Two => tag.to_vec(),
    }
}

/// pinHashEnc's plaintext: LEFT(SHA-256(PIN), 16) (CTAP 2.1 §6.5.5.7).
pub fn pin_hash(pin: &str) -> Zeroizing<Vec<u8>> {
    let mut digest = Sha256::digest(pin.as_bytes());
    let out = Zeroizing::new(digest[..16].to_vec());
    zeroize::Zeroize::zeroize(digest.as_mut_slice());
    out
}

fn cbc_encrypt(key: &[u8], iv: &[u8; BLOCK], plaintext: &[u8]) -> Vec<u8> {
    let Ok(cipher) = Aes256::new_from_slice(key) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(plaintext.len());
    let mut prev = *iv;
    for chunk in plaintext.chunks(BLOCK) {
        let mut block = [0u8; BLOCK];
        block[..chunk.len()].copy_from_slice(chunk);
        for (b, p) in block.iter_mut().zip(prev) {
            *b ^= p;
        }
        cipher.encrypt_block((&mut block).into());
        out.extend_from_slice(&block);
        prev = block;
    }
    out
}

fn cbc_decrypt(
    key: &[u8],
    iv: &[u8; BLOCK],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    if !ciphertext.len().is_multiple_of(BLOCK) {
        return Err(ProtocolError::BadCiphertext);
    }
    let cipher = Aes256::new_from_slice(key).map_err(|_| ProtocolError::BadCiphertext)?;
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    let mut prev = *iv;
    for chunk in ciphertext.chunks(BLOCK) {
        let mut block = Zeroizing::new([0u8; BLOCK]);
        block.copy_from_slice(chunk);
        cipher.decrypt_block((&mut *block).into());
        for (b, p) in block.iter_mut().zip(prev) {
            *b ^= p;
        }
        out.extend_from_slice(&*block);
        prev.copy_from_slice(chunk);
    }
    Ok(out)
}

/// The COSE_Key CTAP sends for a key-agreement key: kty EC2 (2), alg -25
/// (ECDH-ES+HKDF-256, "although this is NOT the algorithm actually used"), crv P-256 (1).
pub fn cose_key(key: &PublicKey) -> Value {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    Value::int_map(vec![
        (1, Value::int(2)),
        (3, Value::int(-25)),
        (-1, Value::int(1)),
        (-2, Value::bytes(&bytes[1..33])),
        (-3, Value::bytes(&bytes[33..65])),
    ])
}

/// Read a P-256 COSE_Key (key agreement, or a credential's ES256 key), checking the point.
pub fn cose_public_key(cose: &Value) -> Result<PublicKey, ProtocolError> {
    if cose.get(1).and_then(Value::as_int) != Some(2) {
        return Err(ProtocolError::BadPeerKey("kty is not EC2"));
    }
    if cose.get(-1).and_then(Value::as_int) != Some(1) {
        return Err(ProtocolError::BadPeerKey("curve is not P-256"));
    }
    let coord = |label| {
        cose.get(label)
            .and_then(Value::as_bytes)
            .filter(|c| c.len() == 32)
            .ok_or(ProtocolError::BadPeerKey(
                "a coordinate is missing or not 32 bytes",
            ))
    };
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(coord(-2)?);
    sec1.extend_from_slice(coord(-3)?);
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| ProtocolError::BadPeerKey("not on the curve"))
}

#[cfg(test)]
#[path = "pin_protocol_tests.rs"]
mod tests;
