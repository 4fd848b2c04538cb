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
#[cfg(test)]
mod fake;
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
    /// No PIN. tapsign asks for the touch, but the key does not insist on it: many keys
    /// answer hmac-secret without one to any program that asks with `up` false
    /// (firmware-notes/fido2-user-presence.md).
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
        // The name is shown in prompts and listings: a file edited to carry control
        // characters must not reach a terminal. The credential is tapsign's own; a keyslot
        // pointed at another site's would ask a touch for that site's credential.
        if check_label(label).is_err() {
            return Err(TokenError::Other(
                "the keyslot of a FIDO2 key has a bad name (control characters, quotes or more than 64 characters): the keyslot file is damaged; restore it from a backup, or remove it with `tapsign token remove` and enroll the key again".into(),
            ));
        }
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
        if rp_id != RP_ID {
            return Err(damaged("relying party (not tapsign's)"));
        }
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
    /// `--name`; by default the USB product name, else "USB key" or "NFC key".
    pub label: Option<String>,
    /// `--uv`; by default required when the key has a PIN, else discouraged.
    pub uv: Option<UvMode>,
}

/// A FIDO2 key chosen for enrollment and checked, before any touch.
pub struct Prepared {
    dev: Box<dyn device::Authenticator>,
    name: String,
    label: String,
    aaguid: String,
    uv: UvMode,
    protocol: pin_protocol::Protocol,
    /// The key wants its PIN to make the credential.
    pin_for_make: bool,
}

/// Find the one FIDO2 key at `opts.place` that is not enrolled yet and check it can serve
/// (CTAP2, hmac-secret, a PIN if UV is required). No touch. `enrolled` are the keystore's
/// stubs: their keys are set aside, and labels stay unique.
pub fn prepare(opts: &EnrollOptions, enrolled: &[&TokenStub]) -> Result<Prepared, TokenError> {
    prepare_among(device::search(&opts.place), opts, enrolled)
}

/// [`prepare`] among the authenticators `found`.
fn prepare_among(
    found: device::Found,
    opts: &EnrollOptions,
    enrolled: &[&TokenStub],
) -> Result<Prepared, TokenError> {
    let mut dev = pick_device(found, enrolled)?;
    let default_label = match dev.location() {
        device::Location::Hid { product, .. } if !product.trim().is_empty() => product.trim(),
        device::Location::Hid { .. } => "USB key",
        device::Location::Pcsc { .. } => "NFC key",
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
    Ok(Prepared {
        dev,
        name,
        label,
        aaguid: info.aaguid_string(),
        uv,
        protocol,
        pin_for_make,
    })
}

impl Prepared {
    /// Make tapsign's credential (one touch). `pin` is asked for the key's PIN when one is
    /// needed, with the prompt's label. The returned token is ready for the second touch,
    /// which derives the keyslot's key.
    pub fn enroll(
        mut self,
        pin: &mut dyn FnMut(&str) -> Result<SecretString, String>,
    ) -> Result<Fido2Token, TokenError> {
        let (name, label, protocol) = (&self.name, &self.label, self.protocol);
        let pin = match self.pin_for_make {
            true => Some(pin(&format!("FIDO2 PIN of {name}")).map_err(TokenError::Other)?),
            false => None,
        };
        if pin.is_some() {
            guard_pin(self.dev.as_mut(), protocol, label)?;
        }
        say!("Touch {name} to create tapsign's credential...");
        let reg = self
            .dev
            .make_credential(&Registration {
                rp_id: RP_ID,
                display_name: label,
                pin: pin.as_ref(),
                protocol,
            })
            .map_err(|e| pin_failure(self.dev.as_mut(), protocol, label, e))?;
        if !reg.hmac_secret {
            return Err(TokenError::Other(format!(
                "{name} made the credential without hmac-secret; tapsign cannot use it"
            )));
        }
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| token_error(Fido2Error::Random, label))?;
        // Every unlock finds the key with a silent probe: check now that it can (a key that
        // hides credentials without UV, a credProtect default, could not be told apart).
        let cred = Credential {
            label: label.clone(),
            rp_id: RP_ID.into(),
            id: reg.credential_id.clone(),
            salt,
            uv: self.uv,
        };
        let probe_pin = if self.uv == UvMode::Required {
            pin.as_ref()
        } else {
            None
        };
        let mut seen = session::probe(self.dev.as_mut(), &cred)?;
        if seen == session::Probe::NeedsPin {
            // The key being enrolled, chosen already: its PIN goes to it anyway.
            seen = session::confirm_with_pin(self.dev.as_mut(), &cred, probe_pin)?;
        }
        if seen == session::Probe::Lacks {
            return Err(TokenError::Other(format!(
                "{name} does not show the new credential without user verification (a credProtect default?), so tapsign could not recognise it before a touch; nothing was enrolled (firmware-notes/fido2-credprotect.md)"
            )));
        }
        let stub = TokenStub::Fido2 {
            label: self.label.clone(),
            aaguid: self.aaguid.clone(),
            rp_id: RP_ID.into(),
            credential_id: hex::encode(&reg.credential_id),
            salt: hex::encode(salt),
            uv: self.uv.as_str().into(),
        };
        let pin = if self.uv == UvMode::Required {
            pin
        } else {
            None
        };
        Ok(Fido2Token::new(stub, self.dev, protocol, pin))
    }
}

/// What the trader is told when enrolling FIDO2 key `new` into a keystore whose other keyslots
/// are `enrolled`: any keyslot opens the whole vault, so the keystore holds against a program
/// running as the trader only as well as its weakest keyslot, and a FIDO2 key's touch is asked
/// for, not enforced (many keys answer hmac-secret with `up` false:
/// firmware-notes/fido2-user-presence.md). `--uv discouraged` is said always: "the touch
/// alone" was what the help called it (red-team round 27). `--uv required` is said beside a
/// YubiKey keyslot with touch policy always, whose touch it gives away (the PIN still holds).
pub fn weaker_warning(new: &TokenStub, enrolled: &[&TokenStub]) -> Option<String> {
    let TokenStub::Fido2 { uv, .. } = new else {
        return None;
    };
    let which = new.describe();
    let touch_always: Vec<String> = enrolled
        .iter()
        .filter(|s| matches!(s, TokenStub::Piv { .. }) && s.touch_warning().is_none())
        .map(|s| s.describe())
        .collect();
    // Keyslots a program running as the trader cannot open without the trader: a PIN, or a
    // touch the token enforces.
    let stronger: Vec<String> = enrolled
        .iter()
        .filter(|s| !s.is_insecure())
        .filter(|s| {
            s.needs_pin() || matches!(s, TokenStub::Piv { .. }) && s.touch_warning().is_none()
        })
        .map(|s| s.describe())
        .collect();
    let weakest = |others: &[String], gone: &str| {
        format!(
            " Any enrolled token opens the whole keystore, so it is now only as strong as its weakest keyslot: the {gone} of {} no longer keeps such a program out.",
            others.join(" and ")
        )
    };
    match UvMode::parse(uv)? {
        UvMode::Discouraged => {
            let mut w = format!(
                "{which} was enrolled without a PIN (--uv discouraged), and FIDO2 keys answer hmac-secret without a touch when asked so (tapsign always asks for the touch; another program need not): while it is plugged in, any program running as you can open the keystore, and take every API secret in it, with no touch and no PIN."
            );
            if !stronger.is_empty() {
                w.push_str(&weakest(&stronger, "touch (or PIN)"));
            }
            w.push_str(&format!(
                " To have the PIN asked, set one on the key and enroll it again with --uv required, then remove this keyslot (`tapsign token remove {}`); otherwise unplug the key when you are not unlocking.",
                new.id()
            ));
            Some(w)
        }
        UvMode::Required if !touch_always.is_empty() => Some(format!(
            "FIDO2 keys answer hmac-secret without a touch when asked so (tapsign always asks for the touch; another program need not): while {which} is plugged in, any program running as you that has its FIDO2 PIN (typed on this desktop at each unlock) can open the keystore with no touch.{} Unplug the key when you are not unlocking.",
            weakest(&touch_always, "touch")
        )),
        UvMode::Required => None,
    }
}

/// The one FIDO2 key at `place` that is not enrolled yet. Keys that already hold one of the
/// keystore's credentials (asked without a touch) are set aside, so enrolling a second key
/// with the first still plugged in needs no option.
fn pick_device(
    found: device::Found,
    enrolled: &[&TokenStub],
) -> Result<Box<dyn device::Authenticator>, TokenError> {
    let creds: Vec<Credential> = enrolled
        .iter()
        .filter(|s| matches!(s, TokenStub::Fido2 { .. }))
        .map(|s| Credential::from_stub(s))
        .collect::<Result<_, _>>()?;
    let notes = found
        .notes
        .iter()
        .map(|n| format!(" ({n})"))
        .collect::<String>();
    let mut fresh = Vec::new();
    let mut taken = Vec::new();
    for mut dev in found.devices {
        let holds = creds
            .iter()
            .zip(
                enrolled
                    .iter()
                    .filter(|s| matches!(s, TokenStub::Fido2 { .. })),
            )
            .find(|(c, _)| session::holds(dev.as_mut(), c));
        match holds {
            Some((_, stub)) => taken.push(format!(
                "the key on {} is enrolled already, as {}",
                dev.location().describe(),
                stub.describe()
            )),
            None => fresh.push(dev),
        }
    }
    match (fresh.len(), taken.is_empty()) {
        (1, _) => Ok(fresh.remove(0)),
        (0, false) => Err(TokenError::Other(format!(
            "{}; insert the key to enroll (`tapsign token list` shows the enrolled tokens)",
            taken.join("; ")
        ))),
        (0, true) if !found.unreached.is_empty() => {
            Err(session::unreached_error(&found.unreached[0], "a FIDO2 key"))
        }
        (0, true) => Err(TokenError::Absent {
            hint: format!("insert a FIDO2 key (none found on USB or the PC/SC readers){notes}"),
        }),
        (n, _) => Err(TokenError::Other(format!(
            "{n} FIDO2 keys are present ({}); say which with --device PATH or --reader NAME",
            fresh
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

#[cfg(test)]
#[path = "enroll_tests.rs"]
mod tests;
