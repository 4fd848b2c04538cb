//! tapsign's virtual YubiKey: a card program for vpcd with a PIV applet and, when asked for,
//! a FIDO2 applet (CTAP 2.1 over ISO 7816), so the real `yubikey`, `pcsc` and CTAP2 code paths
//! run against a real `pcscd` in tests. No security: tests only.
//!
//! Layout, from the wire up:
//! - [`vpcd`]: the vpcd TCP protocol (length-prefixed frames, control bytes).
//! - [`apdu`]: command APDU parsing, status words, command and response chaining.
//! - [`card`]: the applets behind one ATR and which one SELECT chose.
//! - [`tlv`]: the BER-TLV subset PIV uses.
//! - [`piv`]: the YubiKey PIV applet: PIN/PUK, management key, key slots, data objects.
//! - [`fido2`]: the FIDO2 applet: CBOR, PIN/UV auth protocols, credentials, CTAP commands,
//!   and the NFC binding ([`fido2::nfc`]).
//! - [`touch`]: the touch sensor a test controls (approve, deny, hold; touch counter).
//! - [`config`]: [`Config`], what kind of key to be (applets, firmware, serial).
//! - [`device`]: [`VirtualYubiKey`], a thread owning one card, with pull and insert.
//! - [`harness`]: a private pcscd in its own namespaces, with one or two keys inserted.
//!
//! YubiKey behaviour the card relies on is written up, with sources, in `firmware-notes/`.
//!
//! # A key with a FIDO2 applet
//!
//! [`Config::default()`] is a PIV-only YubiKey 5. Give it a [`Fido2Config`] for FIDO2:
//! [`Config::with_fido2`] keeps PIV too (a YubiKey 5), [`Config::fido2_only`] drops it (a
//! Security Key series key, SoloKey, Nitrokey...). The applet answers SELECT
//! `A0 00 00 06 47 2F 00 01` with `FIDO_2_0` and speaks NFCCTAP_MSG (`80 10`) and
//! NFCCTAP_GETRESPONSE (`80 11`), short and extended APDUs, command chaining (CLA `90`) and
//! `61xx` + GET RESPONSE (`00 C0` or `80 C0`).
//!
//! ```no_run
//! use std::time::Duration;
//! use tapsign_vyk::{Config, Fido2Config, PinProtocol, TouchMode, harness};
//!
//! #[test]
//! fn unlock_with_a_pin_protected_fido2_key() {
//!     let key = Config::fido2_only(Fido2Config {
//!         aaguid: *b"0123456789abcdef",
//!         pin: Some("123456".into()),              // None: no PIN set
//!         pin_protocols: vec![PinProtocol::One],   // an older key; default [Two, One]
//!         ctap21: false,                           // FIDO_2_0 only; default true
//!         ..Fido2Config::default()                 // alwaysUv off, makeCredUvNotRqd on
//!     });
//!     harness::run(&[key], |stack| {
//!         // Code under test finds the card on reader `stack.reader_name(0)`.
//!         let touch = stack.key(0).touch();
//!         // Approve (default), Deny (CTAP2_ERR_OPERATION_DENIED after `after`) or Hold
//!         // (waits for `touch.touch()`, else CTAP2_ERR_USER_ACTION_TIMEOUT).
//!         touch.set_mode(TouchMode::Hold { timeout: Duration::from_secs(10) });
//!         // ... start the operation on another thread, then:
//!         assert!(touch.wait_for_request(Duration::from_secs(5)));
//!         touch.touch();
//!         assert_eq!(touch.touches(), 1);
//!         // A re-plug is a power cycle: credentials, PIN, retries and the master secret
//!         // stay; the pinUvAuthToken, the key agreement key and the wrong-PIN streak go.
//!         stack.pull(0).unwrap();
//!         stack.insert(0).unwrap();
//!     });
//! }
//! ```
//!
//! A PIN is set with [`Fido2Config::pin`] or by the client (clientPIN setPIN). Two keys go in
//! `harness::run(&[a, b], ..)` on readers 0 and 1; PIV and FIDO2 keys mix freely.
//!
//! What the FIDO2 applet models (CTAP 2.1, written from the FIDO Alliance specification):
//! - authenticatorGetInfo: versions FIDO_2_0 (and FIDO_2_1), extensions credProtect and
//!   hmac-secret, the configured AAGUID, options rk=false, up, plat=false, clientPin,
//!   pinUvAuthToken, makeCredUvNotRqd, alwaysUv; maxMsgSize 1200; pinUvAuthProtocols;
//!   maxCredentialCountInList 8; maxCredentialIdLength 127; transports; algorithms ES256.
//! - authenticatorMakeCredential: ES256 only, non-discoverable credentials whose id seals the
//!   private key and both CredRandom values (ChaCha20-Poly1305 under a per-device master
//!   secret, bound to the RP id hash); packed self-attestation; excludeList (touch, then
//!   CREDENTIAL_EXCLUDED); options up/uv/rk checks; pinUvAuthParam with mc permission and RP
//!   binding; hmac-secret and credProtect.
//! - authenticatorGetAssertion: allowList; up=false preflight with no touch (NO_CREDENTIALS at
//!   once for a foreign id; with up the touch comes first, as on real keys); hmac-secret with
//!   one or two salts over PIN/UV protocol 1 or 2, CredRandomWithUV under a pinUvAuthToken and
//!   CredRandomWithoutUV otherwise; the output is computed even with up=false.
//! - authenticatorClientPIN: getPINRetries (with powerCycleState), getKeyAgreement, setPIN,
//!   changePIN, getPinToken, getPinUvAuthTokenUsingPinWithPermissions (mc, ga; rpId
//!   required); 8 retries, 3 consecutive mismatches block until a re-plug, PIN_BLOCKED at 0;
//!   a mismatch regenerates the key agreement key; a touch-confirmed use spends the token.
//! - authenticatorReset (within [`Fido2Config::reset_window`] of plug-in, with a touch) and
//!   authenticatorSelection.
//!
//! What it does not model is listed in `firmware-notes/not-emulated.md`.

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

pub use config::{Config, Fault, Faults};
pub use device::VirtualYubiKey;
pub use fido2::{Fido2Config, PinProtocol};
pub use harness::{CardState, Stack};
pub use touch::{Touch, TouchMode};
