//! One FIDO2 authenticator, whatever carries it: the operations tapsign needs, behind one
//! trait, and the search over both transports.
//!
//! - PC/SC ([`super::pcsc`]): tapsign's own CTAP2 client ([`super::client`]) over the ISO 7816
//!   NFC binding. NFC readers, and the virtual key in tests.
//! - USB HID ([`super::hid`]): `ctap-hid-fido2`, which runs its own CTAP2 client (PIN token,
//!   hmac-secret key agreement) and offers no raw transport to put ours on.
//!
//! Everything above this trait (which token, PIN guard, touch, key derivation) is shared.

use zeroize::Zeroizing;

use super::ctap::Info;
use super::error::Fido2Error;
use super::pin_protocol::Protocol;
use crate::secret::SecretString;

/// Where an authenticator sits, for messages and for the removal watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A USB HID device: its path (`/dev/hidrawN`) and product name.
    Hid { path: String, product: String },
    /// A card in a PC/SC reader.
    Pcsc { reader: String },
}

impl Location {
    /// For humans: "USB key Security Key by Yubico (/dev/hidraw3)", "reader ACS ACR122U".
    pub fn describe(&self) -> String {
        match self {
            Location::Hid { path, product } if product.is_empty() => format!("USB key {path}"),
            Location::Hid { path, product } => format!("USB key {product} ({path})"),
            Location::Pcsc { reader } => format!("PC/SC reader {reader}"),
        }
    }
}

/// makeCredential, as tapsign asks it: non-discoverable ES256 with hmac-secret.
pub struct Registration<'a> {
    pub rp_id: &'a str,
    /// The user entity's display name (the token's label); stored nowhere on a
    /// non-discoverable credential, but some authenticators show it.
    pub display_name: &'a str,
    /// The PIN, for UV (and for authenticators that demand it to make a credential).
    pub pin: Option<&'a SecretString>,
    pub protocol: Protocol,
}

pub struct Registered {
    pub credential_id: Vec<u8>,
    /// The authenticator confirmed hmac-secret for this credential.
    pub hmac_secret: bool,
}

/// getAssertion on one credential.
pub struct AssertionRequest<'a> {
    pub rp_id: &'a str,
    pub credential_id: &'a [u8],
    /// Ask for a touch (false only for the probe that finds the token).
    pub up: bool,
    /// The hmac-secret salt, when the secret is wanted.
    pub salt: Option<&'a [u8; 32]>,
    /// The PIN, for UV.
    pub pin: Option<&'a SecretString>,
    pub protocol: Protocol,
}

pub struct Asserted {
    /// The UP and UV flags of the authenticator data.
    pub up: bool,
    pub uv: bool,
    /// hmac-secret output1, decrypted.
    pub hmac_output: Option<Zeroizing<[u8; 32]>>,
}

/// One present authenticator.
pub trait Authenticator: Send {
    fn location(&self) -> &Location;
    fn info(&mut self) -> Result<Info, Fido2Error>;
    fn pin_retries(&mut self, protocol: Protocol) -> Result<u32, Fido2Error>;
    /// Blocks until the touch (or the authenticator's timeout).
    fn make_credential(&mut self, req: &Registration<'_>) -> Result<Registered, Fido2Error>;
    /// Blocks until the touch when `req.up`.
    fn get_assertion(&mut self, req: &AssertionRequest<'_>) -> Result<Asserted, Fido2Error>;
}

/// Where to look for authenticators.
#[derive(Debug, Clone, Default)]
pub enum Where {
    /// USB HID and PC/SC both.
    #[default]
    Anywhere,
    /// The HID device with this path (`--device`).
    Hid(String),
    /// The card in this PC/SC reader (`--reader`).
    Reader(String),
}

/// The authenticators present, and why a transport could not be searched (so "none found"
/// can say that pcscd is down, or hidraw is not readable).
pub struct Found {
    pub devices: Vec<Box<dyn Authenticator>>,
    pub notes: Vec<String>,
    /// Cards that may be FIDO2 keys but could not be asked: "none found" would be wrong.
    pub unreached: Vec<Unreached>,
}

/// A card that could not be asked whether it is a FIDO2 key: another program holds it
/// ([`Fido2Error::InUse`]), or pcscd went away while tapsign waited for it
/// ([`Fido2Error::Unavailable`]).
pub struct Unreached {
    pub location: Location,
    pub why: Fido2Error,
}

/// Every FIDO2 authenticator present at `place`, without asking for any touch.
pub fn search(place: &Where) -> Found {
    let mut found = Found {
        devices: Vec::new(),
        notes: Vec::new(),
        unreached: Vec::new(),
    };
    if !matches!(place, Where::Reader(_)) {
        let path = match place {
            Where::Hid(p) => Some(p.as_str()),
            _ => None,
        };
        match super::hid::devices(path) {
            Ok(devices) => found.devices.extend(devices),
            Err(note) => found.notes.push(note),
        }
    }
    if !matches!(place, Where::Hid(_)) {
        let reader = match place {
            Where::Reader(r) => Some(r.as_str()),
            _ => None,
        };
        match super::pcsc::devices(reader) {
            Ok((devices, unreached)) => {
                found.devices.extend(devices);
                found.unreached.extend(unreached);
            }
            Err(note) => found.notes.push(note),
        }
    }
    found
}
