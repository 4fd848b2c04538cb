//! PIN/UV auth protocols one and two (CTAP 2.1 §6.5.6 and §6.5.7), the authenticator's
//! half: the key agreement key, decapsulating the platform's COSE key into a shared secret,
//! and encrypt/decrypt/authenticate/verify under that secret or a pinUvAuthToken.
//!
//! - Protocol 1: shared secret = SHA-256(ECDH x); AES-256-CBC with an all-zero IV;
//!   authenticate = the first 16 bytes of HMAC-SHA-256.
//! - Protocol 2: shared secret = HKDF-SHA-256(salt 32 zero bytes, ECDH x, "CTAP2 HMAC key")
//!   || HKDF(..., "CTAP2 AES key"); AES-256-CBC with a random IV sent in front; the full
//!   HMAC-SHA-256 under the HMAC half.
//!
//! No security: tests only (plain memory, no constant-time care beyond the MAC compare).

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};

use super::cbor::Value;
use super::status::{CtapResult, Status};

/// A supported PIN/UV auth protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    One = 1,
    Two = 2,
}

impl Protocol {
    pub fn from_number(n: i128) -> Option<Protocol> {
        match n {
            1 => Some(Protocol::One),
            2 => Some(Protocol::Two),
            _ => None,
        }
    }

    pub fn number(self) -> u64 {
        self as u64
    }

    /// The shared secret from the ECDH x coordinate (32 bytes for one, 64 for two).
    pub fn kdf(self, z: &[u8]) -> Vec<u8> {
        match self {
            Protocol::One => Sha256::digest(z).to_vec(),
            Protocol::Two => {
                let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
                let mut out = vec![0u8; 64];
                // 32-byte outputs are far below HKDF-SHA-256's limit.
                let _ = hk.expand(b"CTAP2 HMAC key", &mut out[..32]);
                let _ = hk.expand(b"CTAP2 AES key", &mut out[32..]);
                out
            }
        }
    }

    /// The AES key inside a shared secret.
    fn aes_key(self, key: &[u8]) -> &[u8] {
        match self {
            Protocol::One => key,
            Protocol::Two if key.len() == 64 => &key[32..],
            Protocol::Two => key,
        }
    }

    /// The HMAC key inside a shared secret; a 32-byte pinUvAuthToken is used whole.
    fn hmac_key(self, key: &[u8]) -> &[u8] {
        match self {
            Protocol::Two if key.len() == 64 => &key[..32],
            _ => key,
        }
    }

    pub fn encrypt(self, key: &[u8], plaintext: &[u8]) -> CtapResult<Vec<u8>> {
        let iv = match self {
            Protocol::One => [0u8; 16],
            Protocol::Two => random_array()?,
        };
        let mut out = match self {
            Protocol::One => Vec::new(),
            Protocol::Two => iv.to_vec(),
        };
        out.extend(cbc_encrypt(self.aes_key(key), &iv, plaintext)?);
        Ok(out)
    }

    pub fn decrypt(self, key: &[u8], ciphertext: &[u8]) -> CtapResult<Vec<u8>> {
        let (iv, body) = match self {
            Protocol::One => ([0u8; 16], ciphertext),
            Protocol::Two => {
                let (iv, body) = ciphertext
                    .split_at_checked(16)
                    .ok_or(Status::InvalidParameter)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(iv);
                (a, body)
            }
        };
        cbc_decrypt(self.aes_key(key), &iv, body)
    }

    pub fn authenticate(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = hmac_sha256(self.hmac_key(key), message);
        if self == Protocol::One {
            mac.truncate(16);
        }
        mac
    }

    /// Whether `signature` is the MAC of `message` under `key`.
    pub fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let want = self.authenticate(key, message);
        want.len() == signature.len()
            && want
                .iter()
                .zip(signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub fn random_array<const N: usize>() -> CtapResult<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| Status::Other)?;
    Ok(out)
}

/// A random P-256 private key.
pub fn random_secret() -> CtapResult<SecretKey> {
    // A random 32-byte string is a valid scalar except with negligible probability; retry.
    for _ in 0..8 {
        if let Ok(secret) = SecretKey::from_slice(&random_array::<32>()?) {
            return Ok(secret);
        }
    }
    Err(Status::Other)
}

fn cbc_encrypt(key: &[u8], iv: &[u8; 16], plaintext: &[u8]) -> CtapResult<Vec<u8>> {
    if !plaintext.len().is_multiple_of(16) {
        return Err(Status::InvalidLength);
    }
    let cipher = Aes256::new_from_slice(key).map_err(|_| Status::Other)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(plaintext.len());
    for block in plaintext.chunks_exact(16) {
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = block[i] ^ chain[i];
        }
        let mut ga = b.into();
        cipher.encrypt_block(&mut ga);
        chain.copy_from_slice(&ga);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

fn cbc_decrypt(key: &[u8], iv: &[u8; 16], ciphertext: &[u8]) -> CtapResult<Vec<u8>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(Status::InvalidLength);
    }
    let cipher = Aes256::new_from_slice(key).map_err(|_| Status::Other)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(ciphertext.len());
    for block in ciphertext.chunks_exact(16) {
        let mut ga = <[u8; 16]>::try_from(block)
            .map_err(|_| Status::Other)?
            .into();
        cipher.decrypt_block(&mut ga);
        out.extend(ga.iter().zip(chain).map(|(a, c)| a ^ c));
        chain.copy_from_slice(block);
    }
    Ok(out)
}

/// The authenticator's key agreement key for one power cycle (shared by both protocols).
pub struct KeyAgreement {
    secret: SecretKey,
}

impl KeyAgreement {
    pub fn generate() -> CtapResult<KeyAgreement> {
        Ok(KeyAgreement {
            secret: random_secret()?,
        })
    }

    /// getKeyAgreement's COSE_Key: EC2, P-256, alg -25 (ECDH-ES+HKDF-256; the spec says to
    /// name it whatever protocol is in use).
    pub fn cose_public_key(&self) -> Value {
        cose_ec2(&self.secret.public_key(), -25)
    }

    /// The platform's COSE key to a shared secret (`INVALID_PARAMETER` if it is not a P-256
    /// point).
    pub fn decapsulate(&self, protocol: Protocol, peer: &Value) -> CtapResult<Vec<u8>> {
        let kty = peer.get_int(1).and_then(Value::as_int);
        let crv = peer.get_int(-1).and_then(Value::as_int);
        let x = peer.get_int(-2).and_then(Value::as_bytes);
        let y = peer.get_int(-3).and_then(Value::as_bytes);
        let (Some(2), Some(1), Some(x), Some(y)) = (kty, crv, x, y) else {
            return Err(Status::InvalidParameter);
        };
        if x.len() != 32 || y.len() != 32 {
            return Err(Status::InvalidParameter);
        }
        let sec1 = [&[0x04][..], x, y].concat();
        let peer = PublicKey::from_sec1_bytes(&sec1).map_err(|_| Status::InvalidParameter)?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(protocol.kdf(shared.raw_secret_bytes()))
    }
}

/// A P-256 public key as a COSE_Key map (RFC 9053: kty 2, crv 1, x, y).
pub fn cose_ec2(key: &PublicKey, alg: i64) -> Value {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    Value::map([
        (Value::from(1i64), Value::from(2i64)),
        (Value::from(3i64), Value::from(alg)),
        (Value::from(-1i64), Value::from(1i64)),
        (Value::from(-2i64), Value::from(&bytes[1..33])),
        (Value::from(-3i64), Value::from(&bytes[33..65])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The platform's half, written out again from the spec, so the two sides meet.
    fn platform(protocol: Protocol, card: &KeyAgreement) -> (Value, Vec<u8>) {
        let mine = random_secret().unwrap();
        let theirs = card.cose_public_key();
        let x = theirs.get_int(-2).unwrap().as_bytes().unwrap();
        let y = theirs.get_int(-3).unwrap().as_bytes().unwrap();
        let peer = PublicKey::from_sec1_bytes(&[&[0x04][..], x, y].concat()).unwrap();
        let z = p256::ecdh::diffie_hellman(mine.to_nonzero_scalar(), peer.as_affine());
        (
            cose_ec2(&mine.public_key(), -25),
            protocol.kdf(z.raw_secret_bytes()),
        )
    }

    #[test]
    fn both_sides_derive_the_same_secret_in_both_protocols() {
        let card = KeyAgreement::generate().unwrap();
        for (p, len) in [(Protocol::One, 32), (Protocol::Two, 64)] {
            let (cose, host_secret) = platform(p, &card);
            let card_secret = card.decapsulate(p, &cose).unwrap();
            assert_eq!(card_secret, host_secret);
            assert_eq!(card_secret.len(), len);
        }
    }

    #[test]
    fn protocol_two_kdf_is_hkdf_with_the_spec_info_strings() {
        // RFC 5869 structure: PRK = HMAC(salt = 0^32, z); T1 = HMAC(PRK, info || 0x01).
        let z = [7u8; 32];
        let prk = hmac_sha256(&[0u8; 32], &z);
        let mut info = b"CTAP2 HMAC key".to_vec();
        info.push(1);
        let hmac_key = hmac_sha256(&prk, &info);
        let mut info = b"CTAP2 AES key".to_vec();
        info.push(1);
        let aes_key = hmac_sha256(&prk, &info);
        assert_eq!(Protocol::Two.kdf(&z), [hmac_key, aes_key].concat());
        assert_eq!(Protocol::One.kdf(&z), Sha256::digest(z).to_vec());
    }

    #[test]
    fn cbc_matches_nist_sp800_38a_f25() {
        // SP 800-38A F.2.5 CBC-AES256.Encrypt, first block.
        let key = hexv("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv: [u8; 16] = hexv("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let pt = hexv("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let ct = hexv("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d");
        assert_eq!(cbc_encrypt(&key, &iv, &pt).unwrap(), ct);
        assert_eq!(cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
    }

    #[test]
    fn protocol_two_prepends_a_fresh_iv_and_protocol_one_uses_zero() {
        let key = [3u8; 64];
        let a = Protocol::Two.encrypt(&key, &[1; 32]).unwrap();
        let b = Protocol::Two.encrypt(&key, &[1; 32]).unwrap();
        assert_eq!(a.len(), 48);
        assert_ne!(a, b, "random IVs");
        assert_eq!(Protocol::Two.decrypt(&key, &a).unwrap(), [1; 32]);
        let key1 = [3u8; 32];
        let c = Protocol::One.encrypt(&key1, &[1; 32]).unwrap();
        assert_eq!(c, Protocol::One.encrypt(&key1, &[1; 32]).unwrap());
        assert_eq!(Protocol::One.decrypt(&key1, &c).unwrap(), [1; 32]);
        assert_eq!(
            Protocol::Two.decrypt(&key, &[0; 8]),
            Err(Status::InvalidParameter)
        );
        assert_eq!(
            Protocol::One.decrypt(&key1, &[0; 20]),
            Err(Status::InvalidLength)
        );
    }

    #[test]
    fn authenticate_truncates_for_one_and_uses_the_hmac_half_for_two() {
        let shared = [[1u8; 32], [2u8; 32]].concat();
        assert_eq!(Protocol::One.authenticate(&shared[..32], b"m").len(), 16);
        assert_eq!(
            Protocol::Two.authenticate(&shared, b"m"),
            hmac_sha256(&[1u8; 32], b"m")
        );
        let token = [9u8; 32];
        let sig = Protocol::Two.authenticate(&token, b"cdh");
        assert!(Protocol::Two.verify(&token, b"cdh", &sig));
        assert!(!Protocol::Two.verify(&token, b"cdh", &sig[..16]));
        assert!(!Protocol::One.verify(&token, b"cdh", &sig));
    }

    #[test]
    fn decapsulate_refuses_keys_off_the_curve_or_malformed() {
        let card = KeyAgreement::generate().unwrap();
        let (good, _) = platform(Protocol::Two, &card);
        let mut off_curve = good.clone();
        if let Value::Map(pairs) = &mut off_curve {
            for (k, v) in pairs.iter_mut() {
                if *k == Value::from(-3i64) {
                    *v = Value::from(vec![1u8; 32]);
                }
            }
        }
        for bad in [
            off_curve,
            Value::map([(1i64, Value::from(2i64))]),
            Value::Null,
        ] {
            assert_eq!(
                card.decapsulate(Protocol::Two, &bad),
                Err(Status::InvalidParameter)
            );
        }
    }

    fn hexv(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
