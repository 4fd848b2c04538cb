//! The one sealing construction the keystore uses twice (VK to a token's key in a keyslot,
//! a credential to the vault key), the way age encrypts to a recipient: an ephemeral P-256
//! key, ECDH with the recipient's public key, HKDF-SHA256 (salt = ephemeral point ||
//! recipient point, both SEC1 compressed; ikm = shared X; a distinct info string per use),
//! then XChaCha20-Poly1305 with a random 24-byte nonce and the file's header as AAD.
//! Sealing needs only the public key; opening needs the shared X, which for a keyslot only
//! the token can compute.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::KeystoreError;
use crate::secret::{SecretBytes, SecretString};

/// HKDF info for a keyslot (VK sealed to a token's P-256 key).
pub const INFO_KEYSLOT: &[u8] = b"tapsign/v1/keyslot/p256";
/// HKDF info for a credential (secrets sealed to the vault public key).
pub const INFO_CREDENTIAL: &[u8] = b"tapsign/v1/credential/p256";
/// HKDF info for a FIDO2 keyslot (VK sealed under a key from the hmac-secret output).
pub const INFO_KEYSLOT_FIDO2: &[u8] = b"tapsign/v1/keyslot/fido2-hmac-secret";

pub const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The vault private key (VK). Only [`super::Keystore::unwrap_vault`] makes one from disk;
/// it opens credentials and enrolls further tokens. No `Debug`, `Clone` or `Serialize`;
/// the scalar is zeroized on drop (by `p256::SecretKey`).
pub struct VaultKey {
    secret: SecretKey,
}

impl VaultKey {
    pub(crate) fn generate() -> Result<Self, KeystoreError> {
        let secret = SecretKey::try_generate().map_err(|e| KeystoreError::Random(e.to_string()))?;
        Ok(VaultKey { secret })
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        SecretKey::from_slice(bytes)
            .ok()
            .map(|secret| VaultKey { secret })
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut field = self.secret.to_bytes();
        let out = Zeroizing::new(field.to_vec());
        field.zeroize();
        out
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Sign `statement` (ECDSA P-256, SHA-256, deterministic nonce): only the vault lineage's
    /// statements, which start with their own context string (`super::lineage`), are signed.
    pub(crate) fn sign_statement(&self, statement: &[u8]) -> [u8; 64] {
        use p256::ecdsa::signature::Signer;
        let key = p256::ecdsa::SigningKey::from(&self.secret);
        let sig: p256::ecdsa::Signature = key.sign(statement);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    }

    /// ECDH with an ephemeral public key (the host side of a credential's seal).
    pub(crate) fn agree(&self, epk: &PublicKey) -> Zeroizing<[u8; 32]> {
        let shared = self.secret.diffie_hellman(epk);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        out
    }
}

/// SEC1 compressed encoding (33 bytes), the form every key takes on disk and in the salt.
pub fn compressed(key: &PublicKey) -> Vec<u8> {
    key.to_sec1_point(true).as_bytes().to_vec()
}

pub(crate) struct Sealed {
    pub ephemeral_key: Vec<u8>,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Seal `plaintext` to `recipient`. `aad` builds the file header from the ephemeral key
/// (compressed SEC1), so the header can name the key it depends on.
pub(crate) fn seal(
    recipient: &PublicKey,
    info: &[u8],
    plaintext: &[u8],
    aad: impl FnOnce(&[u8]) -> Result<Vec<u8>, KeystoreError>,
) -> Result<Sealed, KeystoreError> {
    let eph = EphemeralSecret::try_generate().map_err(|e| KeystoreError::Random(e.to_string()))?;
    let ephemeral_key = compressed(&eph.public_key());
    let shared = eph.diffie_hellman(recipient);
    let cipher = cipher(shared.raw_secret_bytes(), &ephemeral_key, recipient, info)?;
    let aad = aad(&ephemeral_key)?;
    let (nonce, ciphertext) = encrypt(&cipher, plaintext, &aad)?;
    Ok(Sealed {
        ephemeral_key,
        nonce,
        ciphertext,
    })
}

/// Seal `plaintext` under a key derived from secret key material `ikm` (a FIDO2 token's
/// hmac-secret output): KEK = HKDF-SHA256(salt, ikm, info), then XChaCha20-Poly1305.
pub(crate) fn seal_with(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), KeystoreError> {
    encrypt(&kek_cipher(ikm, salt, info)?, plaintext, aad)
}

/// Open what [`seal_with`] sealed; `None` if the tag does not verify.
pub(crate) fn open_with(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    decrypt(&kek_cipher(ikm, salt, info).ok()?, aad, nonce, ciphertext)
}

fn encrypt(
    cipher: &XChaCha20Poly1305,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), KeystoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| KeystoreError::Random(e.to_string()))?;
    // Room for the tag up front: a reallocation would leave a plaintext copy behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buf.extend_from_slice(plaintext);
    cipher
        .encrypt_in_place(&XNonce::from(nonce), aad, &mut *buf)
        .map_err(|_| KeystoreError::Internal("encryption failed".into()))?;
    Ok((nonce, buf.to_vec()))
}

fn decrypt(
    cipher: &XChaCha20Poly1305,
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place(&XNonce::from(*nonce), aad, &mut *buf)
        .ok()?;
    Some(buf)
}

/// Open a sealed box given the shared X coordinate (from the token, or from VK). `None` if
/// the tag does not verify: wrong key, or a changed ciphertext, nonce or header.
pub(crate) fn open(
    shared_x: &[u8],
    ephemeral_key: &[u8],
    recipient: &PublicKey,
    info: &[u8],
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = cipher(shared_x, ephemeral_key, recipient, info).ok()?;
    decrypt(&cipher, aad, nonce, ciphertext)
}

fn cipher(
    shared_x: &[u8],
    ephemeral_key: &[u8],
    recipient: &PublicKey,
    info: &[u8],
) -> Result<XChaCha20Poly1305, KeystoreError> {
    let mut salt = Vec::with_capacity(66);
    salt.extend_from_slice(ephemeral_key);
    salt.extend_from_slice(&compressed(recipient));
    kek_cipher(shared_x, &salt, info)
}

fn kek_cipher(ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<XChaCha20Poly1305, KeystoreError> {
    let mut kek = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, kek.as_mut())
        .map_err(|_| KeystoreError::Internal("key derivation failed".into()))?;
    Ok(XChaCha20Poly1305::new((&*kek).into()))
}

/// The credential plaintext: a count byte (2 or 3), then each field as a 4-byte big-endian
/// length and its bytes: API key, secret, and the passphrase if there is one.
pub(crate) fn encode_secrets(
    api_key: &SecretString,
    secret: &SecretBytes,
    passphrase: Option<&SecretString>,
) -> Zeroizing<Vec<u8>> {
    let mut fields: Vec<&[u8]> = vec![api_key.expose().as_bytes(), secret.expose()];
    if let Some(p) = passphrase {
        fields.push(p.expose().as_bytes());
    }
    let len = 1 + fields.iter().map(|f| 4 + f.len()).sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.push(fields.len() as u8);
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

pub(crate) type Secrets = (SecretString, SecretBytes, Option<SecretString>);

/// The inverse of [`encode_secrets`]; `None` for anything malformed (only a tapsign bug can
/// produce that, as the AEAD tag has already verified).
pub(crate) fn decode_secrets(bytes: &[u8]) -> Option<Secrets> {
    let (&count, mut rest) = bytes.split_first()?;
    if !(2..=3).contains(&count) {
        return None;
    }
    let mut fields = Vec::with_capacity(3);
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (field, tail) = tail.split_at(len);
        fields.push(field);
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(SecretString::from_str_copy);
    let api_key = text(fields[0])?;
    let secret = SecretBytes::from_slice(fields[1]);
    let passphrase = match fields.get(2) {
        Some(p) => Some(text(p)?),
        None => None,
    };
    Some((api_key, secret, passphrase))
}
