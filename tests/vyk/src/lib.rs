//! tapsign's virtual YubiKey: a PIV card program for vpcd, so the real `yubikey` and `pcsc`
//! code paths run against a real `pcscd` in tests. No security: tests only.
//!
//! Layout, from the wire up:
//! - [`vpcd`]: the vpcd TCP protocol (length-prefixed frames, control bytes).
//! - [`apdu`]: command APDU parsing, status words, command and response chaining.
//! - [`tlv`]: the BER-TLV subset PIV uses.
//! - [`piv`]: the YubiKey PIV applet: PIN/PUK, management key, key slots, data objects.
//! - [`touch`]: the touch sensor a test controls (approve, deny, hold; touch counter).
//! - [`device`]: [`VirtualYubiKey`], a thread owning one card, with pull and insert.
//! - [`harness`]: a private pcscd in its own namespaces, with one or two keys inserted.
//!
//! YubiKey behaviour the card relies on is written up, with sources, in `firmware-notes/`.

pub mod apdu;
pub mod card;
pub mod config;
pub mod device;
pub mod fido2;
pub mod harness;
pub mod piv;
pub mod tlv;
pub mod touch;
pub mod vpcd;

pub use config::Config;
pub use device::VirtualYubiKey;
pub use fido2::{Fido2Config, PinProtocol};
pub use harness::{CardState, Stack};
pub use touch::{Touch, TouchMode};
