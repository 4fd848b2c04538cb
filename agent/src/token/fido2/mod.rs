//! FIDO2 tokens: a non-discoverable ES256 credential with the hmac-secret extension, on any
//! FIDO2 (CTAP2) key, over USB HID or a PC/SC (NFC) reader. The keyslot's key comes from the
//! credential's hmac-secret output for a random salt stored in the keyslot (one touch).
//!
//! Layout, from the wire up:
//! - [`cbor`]: the CBOR subset CTAP2 speaks, canonical encoding, strict decoding.
//! - [`ctap`]: CTAP2 requests and answers (getInfo, makeCredential, getAssertion, clientPIN).
//! - [`pin_protocol`]: PIN/UV auth protocols One and Two (key agreement, KDF, encrypt,
//!   decrypt, authenticate), which clientPIN and hmac-secret build on.
//! - [`client`]: tapsign's CTAP2 client, the sequences of messages, over any byte channel.
//! - [`pcsc`]: that channel on PC/SC (the CTAP NFC binding on ISO 7816-4 APDUs).
//! - [`hid`]: USB HID through `ctap-hid-fido2`, which runs its own CTAP2 client.
//! - [`device`]: the [`device::Authenticator`] trait both transports implement, and the search.
//! - [`session`]: the shared logic: find the token without a touch, guard the PIN, the touch.
//! - this file: the keyslot's view of a credential, and enrollment.
//!
//! Firmware behaviour this relies on is in `firmware-notes/fido2-*.md`.

pub mod cbor;
pub mod client;
pub mod ctap;
pub mod device;
pub mod error;
pub mod hid;
pub mod pcsc;
pub mod pin_protocol;
pub mod session;

use std::fmt;

pub use device::Where;
pub use session::Fido2Token;

use crate::secret::SecretString;
use crate::token::{TokenError, TokenStub};
use device::Registration;
use error::Fido2Error;
use session::{guard_pin, pin_failure, protocol_of, token_error};

/// The relying-party id of every tapsign credential. Like OpenSSH's `ssh:`, it is not a
/// domain, so no web origin can ever claim it: no website can use, or even probe for, the
/// credential through a browser.
pub const RP_ID: &str = "tapsign:";

/// Whether the credential is used with user verification (the PIN). Fixed at enrollment: the
/// hmac-secret output differs with and without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvMode {
    /// The PIN at every unlock, as well as the touch.
    Required,
    /// The touch alone.
    Discouraged,
}

impl UvMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UvMode::Required => "required",
            UvMode::Discouraged => "discouraged",
        }
    }

    pub fn parse(s: &str) -> Option<UvMode> {
        match s {
            "required" => Some(UvMode::Required),
            "discouraged" => Some(UvMode::Discouraged),
            _ => None,
        }
    }
}

impl fmt::Display for UvMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A FIDO2 keyslot's stub, decoded.
pub struct Credential {
    pub label: String,
    pub rp_id: String,
    pub id: Vec<u8>,
    pub salt: [u8; 32],
    pub uv: UvMode,
}

impl Credential {
    pub fn from_stub(stub: &TokenStub) -> Result<Credential, TokenError> {
        let TokenStub::Fido2 {
            label,
            rp_id,
            credential_id,
            salt,
            uv,
            ..
        } = stub
        else {
            return Err(TokenError::Other("internal: not a FIDO2 stub".into()));
        };
        let damaged = |what: &str| {
            TokenError::Other(format!(
                "the keyslot of FIDO2 key \"{label}\" has a bad {what}: the keyslot file is damaged; restore it from a backup, or remove it with `tapsign token remove` and enroll the key again"
            ))
        };
        let id = hex::decode(credential_id)
            .ok()
            .filter(|id| !id.is_empty() && id.len() <= 1024)
            .ok_or_else(|| damaged("credential id"))?;
        let salt = hex::decode(salt)
            .ok()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| damaged("salt"))?;
        let uv = UvMode::parse(uv).ok_or_else(|| damaged("uv mode"))?;
        Ok(Credential {
            label: label.clone(),
            rp_id: rp_id.clone(),
            id,
            salt,
            uv,
        })
    }
}

/// Check a token label: what prompts show, so printable and short.
pub fn check_label(label: &str) -> Result<(), String> {
    let n = label.chars().count();
    if label.trim() != label || !(1..=64).contains(&n) {
        return Err(format!(
            "the name {label:?} must be 1 to 64 characters, without leading or trailing spaces"
        ));
    }
    if label.chars().any(|c| c.is_control() || c == '"') {
        return Err(format!(
            "the name {label:?} contains a control character or a double quote"
        ));
    }
    Ok(())
}

/// What `token add --fido2` asks for.
pub struct EnrollOptions {
    pub place: Where,
    /// `--name`; by default the USB product name, else "FIDO2 key".
    pub label: Option<String>,
    /// `--uv`; by default required when the key has a PIN, else discouraged.
    pub uv: Option<UvMode>,
}

/// Make tapsign's credential on the one FIDO2 key at `opts.place` (one touch). `enrolled`
/// are the keystore's stubs (a key already enrolled is refused, and labels stay unique).
/// `pin` is asked for the key's PIN when one is needed, with the prompt's label. The returned
/// token is ready for the second touch, which derives the keyslot's key.
pub fn enroll(
    opts: &EnrollOptions,
    enrolled: &[&TokenStub],
    pin: &mut dyn FnMut(&str) -> Result<SecretString, String>,
) -> Result<Fido2Token, TokenError> {
    let mut dev = only_device(&opts.place)?;
    let default_label = match dev.location() {
        device::Location::Hid { product, .. } if !product.trim().is_empty() => product.trim(),
        _ => "FIDO2 key",
    }
    .to_owned();
    let label = pick_label(opts.label.as_deref(), &default_label, enrolled)?;
    let name = format!("the FIDO2 key on {}", dev.location().describe());
    let info = dev.info().map_err(|e| token_error(e, &label))?;
    if !info.versions.iter().any(|v| v.starts_with("FIDO_2")) {
        return Err(TokenError::Other(format!(
            "{name} speaks only U2F (CTAP1); tapsign needs a FIDO2 (CTAP2) key with hmac-secret"
        )));
    }
    if !info.has_extension("hmac-secret") {
        return Err(TokenError::Other(format!(
            "{name} does not offer the hmac-secret extension, which tapsign needs (firmware-notes/fido2-keys.md lists keys that do)"
        )));
    }
    let protocol = protocol_of(dev.as_mut(), &label)?;
    refuse_enrolled(dev.as_mut(), enrolled)?;
    let has_pin = info.client_pin() == Some(true);
    let uv = match opts.uv {
        Some(uv) => uv,
        None if has_pin => UvMode::Required,
        None => UvMode::Discouraged,
    };
    if uv == UvMode::Required && !has_pin {
        return Err(TokenError::Other(format!(
            "{name} has no FIDO2 PIN, and --uv required needs one: set it (`ykman fido access change-pin`, or a browser's security-key settings), or enroll with --uv discouraged"
        )));
    }
    if uv == UvMode::Discouraged && info.option("alwaysUv") == Some(true) {
        return Err(TokenError::Other(format!(
            "{name} verifies the user on every use (alwaysUv), so the touch-only secret is out of reach: enroll with --uv required"
        )));
    }
    // A key with a PIN may demand it to make any credential (CTAP 2.0; 2.1 keys say
    // makeCredUvNotRqd when they do not).
    let pin_for_make =
        uv == UvMode::Required || (has_pin && info.option("makeCredUvNotRqd") != Some(true));
    let pin = match pin_for_make {
        true => Some(pin(&format!("FIDO2 PIN of {name}")).map_err(TokenError::Other)?),
        false => None,
    };
    if pin.is_some() {
        guard_pin(dev.as_mut(), protocol, &label)?;
    }
    eprintln!("Touch {name} to create tapsign's credential...");
    let reg = dev
        .make_credential(&Registration {
            rp_id: RP_ID,
            display_name: &label,
            pin: pin.as_ref(),
            protocol,
        })
        .map_err(|e| pin_failure(dev.as_mut(), protocol, &label, e))?;
    if !reg.hmac_secret {
        return Err(TokenError::Other(format!(
            "{name} made the credential without hmac-secret; tapsign cannot use it"
        )));
    }
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|_| token_error(Fido2Error::Random, &label))?;
    let stub = TokenStub::Fido2 {
        label,
        aaguid: info.aaguid_string(),
        rp_id: RP_ID.into(),
        credential_id: hex::encode(&reg.credential_id),
        salt: hex::encode(salt),
        uv: uv.as_str().into(),
    };
    let pin = if uv == UvMode::Required { pin } else { None };
    Ok(Fido2Token::new(stub, dev, protocol, pin))
}

/// The one FIDO2 key at `place`.
fn only_device(place: &Where) -> Result<Box<dyn device::Authenticator>, TokenError> {
    let found = device::search(place);
    let notes = found
        .notes
        .iter()
        .map(|n| format!(" ({n})"))
        .collect::<String>();
    let mut devices = found.devices;
    match devices.len() {
        0 => Err(TokenError::Absent {
            hint: format!("insert a FIDO2 key (none found on USB or the PC/SC readers){notes}"),
        }),
        1 => Ok(devices.remove(0)),
        n => Err(TokenError::Other(format!(
            "{n} FIDO2 keys are present ({}); say which with --device PATH or --reader NAME",
            devices
                .iter()
                .map(|d| d.location().describe())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn pick_label(
    given: Option<&str>,
    default: &str,
    enrolled: &[&TokenStub],
) -> Result<String, TokenError> {
    let taken = |l: &str| {
        enrolled
            .iter()
            .any(|s| matches!(s, TokenStub::Fido2 { label, .. } if label == l))
    };
    if let Some(l) = given {
        check_label(l).map_err(|e| TokenError::Other(format!("--name: {e}")))?;
        if taken(l) {
            return Err(TokenError::Other(format!(
                "a FIDO2 key named {l:?} is already enrolled; pick another --name"
            )));
        }
        return Ok(l.to_owned());
    }
    let base: String = default
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(56)
        .collect();
    let base = if base.trim().is_empty() {
        "FIDO2 key".to_owned()
    } else {
        base.trim().to_owned()
    };
    (1..100)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                format!("{base} {n}")
            }
        })
        .find(|l| !taken(l))
        .ok_or_else(|| TokenError::Other("too many FIDO2 keys share that name; give --name".into()))
}

/// A key that already holds one of the keystore's credentials is enrolled already.
fn refuse_enrolled(
    dev: &mut dyn device::Authenticator,
    enrolled: &[&TokenStub],
) -> Result<(), TokenError> {
    let fido: Vec<&TokenStub> = enrolled
        .iter()
        .copied()
        .filter(|s| matches!(s, TokenStub::Fido2 { .. }))
        .collect();
    for stub in fido {
        let cred = Credential::from_stub(stub)?;
        if session::holds(dev, &cred) {
            return Err(TokenError::Other(format!(
                "this key is already enrolled, as {}; `tapsign token list` shows the enrolled tokens",
                stub.describe()
            )));
        }
    }
    Ok(())
}
