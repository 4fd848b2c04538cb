//! Secret newtypes. No `Debug`, no `Clone`, no `Serialize`. The bytes live in pages of their
//! own that are locked in memory, excluded from core dumps, and zeroed when dropped
//! ([`crate::harden::LockedBuf`]). Reading one takes an explicit `expose()`, so every place a
//! secret is used is easy to find.

use zeroize::Zeroize;

use crate::harden::LockedBuf;

/// Secret bytes: an API secret, a derived key.
pub struct SecretBytes(LockedBuf);

impl SecretBytes {
    /// Take ownership of `bytes`: they are copied into locked memory and the vector is zeroed.
    pub fn new(mut bytes: Vec<u8>) -> Self {
        let s = SecretBytes(LockedBuf::from_slice(&bytes));
        bytes.zeroize();
        s
    }
    /// Copy from a slice (the caller zeroizes its own copy).
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(LockedBuf::from_slice(bytes))
    }
    /// Whether its pages are locked in memory ([`LockedBuf::is_locked`]).
    pub fn is_locked(&self) -> bool {
        self.0.is_locked()
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }
    pub fn len(&self) -> usize {
        self.0.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }
}

/// A secret string: an API key, a passphrase, a PIN.
pub struct SecretString(LockedBuf);

impl SecretString {
    /// Take ownership of `s`: it is copied into locked memory and the string is zeroed.
    pub fn new(mut s: String) -> Self {
        let secret = SecretString(LockedBuf::from_slice(s.as_bytes()));
        s.zeroize();
        secret
    }
    /// Copy from a `&str` (the caller zeroizes its own copy).
    pub fn from_str_copy(s: &str) -> Self {
        SecretString(LockedBuf::from_slice(s.as_bytes()))
    }
    /// Whether its pages are locked in memory ([`LockedBuf::is_locked`]).
    pub fn is_locked(&self) -> bool {
        self.0.is_locked()
    }

    pub fn expose(&self) -> &str {
        // Built only from `str`s, so always UTF-8; the fallback is unreachable.
        std::str::from_utf8(self.0.as_slice()).unwrap_or_default()
    }
    pub fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }
}
