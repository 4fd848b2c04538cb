//! The shared FIDO2 logic, over any [`Authenticator`]: find the token that holds a keyslot's
//! credential without a touch, guard the PIN, ask for the one touch, and say clearly what went
//! wrong.

use zeroize::Zeroizing;

use super::device::{self, AssertionRequest, Authenticator, Location, Unreached, Where};
use super::error::{Fido2Error, status};
use super::pin_protocol::Protocol;
use super::{Credential, UvMode};
use crate::secret::SecretString;
use crate::token::{Token, TokenError, TokenStub};

/// A present FIDO2 token, ready for the touch that derives a keyslot's key.
pub struct Fido2Token {
    stub: TokenStub,
    device: Box<dyn Authenticator>,
    protocol: Protocol,
    pin: Option<SecretString>,
}

/// Does this authenticator hold the credential? Asked with `up = false`: no touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    Holds,
    Lacks,
    /// The authenticator cannot answer without a touch (no silent assertions).
    Unsure,
    /// The authenticator answers only with the PIN (alwaysUv), and the keyslot takes one.
    NeedsPin,
}

impl Fido2Token {
    pub(super) fn new(
        stub: TokenStub,
        device: Box<dyn Authenticator>,
        protocol: Protocol,
        pin: Option<SecretString>,
    ) -> Self {
        Fido2Token {
            stub,
            device,
            protocol,
            pin,
        }
    }

    /// Find a present authenticator holding one of `stubs`' credentials (all FIDO2), without
    /// a touch. Returns the index of the stub it answers for.
    pub fn locate(
        stubs: &[&TokenStub],
        pin: Option<&SecretString>,
    ) -> Result<(usize, Fido2Token), TokenError> {
        Fido2Token::locate_among(device::search(&Where::Anywhere), stubs, pin)
    }

    /// [`Fido2Token::locate`] among the authenticators `found`.
    pub(super) fn locate_among(
        found: device::Found,
        stubs: &[&TokenStub],
        pin: Option<&SecretString>,
    ) -> Result<(usize, Fido2Token), TokenError> {
        let creds: Vec<Credential> = stubs
            .iter()
            .map(|s| Credential::from_stub(s))
            .collect::<Result<_, _>>()?;
        let expected = stubs
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(" or ");
        let mut seen = Vec::new();
        let mut first_err = None;
        // Tokens that cannot be probed without a touch or the PIN: one of them is used only
        // if no token is sure. The PIN goes to no token before one is known to hold the
        // credential, or is the only one that might: a key that is not enrolled would
        // otherwise receive it (and spend its own PIN tries on it).
        let mut fallback: Vec<(Box<dyn Authenticator>, usize, Probe)> = Vec::new();
        for mut dev in found.devices {
            seen.push(format!("a FIDO2 key on {}", dev.location().describe()));
            let mut unsure = None;
            for (i, cred) in creds.iter().enumerate() {
                match probe(dev.as_mut(), cred) {
                    Ok(Probe::Holds) => {
                        let token = Fido2Token::ready(stubs[i], dev, cred, pin)?;
                        return Ok((i, token));
                    }
                    Ok(p @ (Probe::Unsure | Probe::NeedsPin)) => {
                        unsure.get_or_insert((i, p));
                    }
                    Ok(Probe::Lacks) => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some((i, p)) = unsure {
                fallback.push((dev, i, p));
            }
        }
        let pin_goes_out = |(_, i, p): &(Box<dyn Authenticator>, usize, Probe)| {
            *p == Probe::NeedsPin || (creds[*i].uv == UvMode::Required && pin.is_some())
        };
        if fallback.len() > 1 && fallback.iter().any(pin_goes_out) {
            return Err(TokenError::Other(format!(
                "{} FIDO2 keys are present that tapsign cannot tell apart without the PIN, and the PIN must go only to {expected}: leave only that key on the USB ports and readers, then try again",
                fallback.len()
            )));
        }
        if let Some((mut dev, i, p)) = fallback.into_iter().next() {
            // The only key present that might be it: the PIN tells, still without a touch.
            // Without one, it is the key a PIN prompt is to name ([`crate::token::which`]);
            // its `agree` asks for the PIN before any touch.
            if p == Probe::NeedsPin && pin.is_some() {
                match confirm_with_pin(dev.as_mut(), &creds[i], pin)? {
                    Probe::Holds => {}
                    _ => {
                        return Err(TokenError::WrongToken {
                            found: seen.join(", "),
                            expected,
                        });
                    }
                }
            }
            // Only the touch can tell; the assertion itself refuses a wrong token.
            let token = Fido2Token::ready(stubs[i], dev, &creds[i], pin)?;
            return Ok((i, token));
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        // A card that could not be asked may be the key: "insert it" was said of a key in
        // the reader another program held, or while pcscd was gone (red-team round 27).
        if let Some(u) = found.unreached.first() {
            return Err(unreached_error(u, &expected));
        }
        if seen.is_empty() {
            let mut hint = format!("insert {expected}");
            for note in found.notes {
                hint.push_str(&format!(" ({note})"));
            }
            return Err(TokenError::Absent { hint });
        }
        Err(no_credential(&seen, stubs))
    }

    fn ready(
        stub: &TokenStub,
        mut device: Box<dyn Authenticator>,
        cred: &Credential,
        pin: Option<&SecretString>,
    ) -> Result<Fido2Token, TokenError> {
        let protocol = protocol_of(device.as_mut(), &cred.label)?;
        let pin = match cred.uv {
            UvMode::Required => pin.map(|p| possible(p, &cred.label)).transpose()?,
            UvMode::Discouraged => None,
        };
        Ok(Fido2Token::new(stub.clone(), device, protocol, pin))
    }
}

/// Why a card that may be the FIDO2 key asked for (`expected`) could not be asked
/// ([`Unreached`]), no such key being found elsewhere. A held card may be no FIDO2 key at all
/// (gpg's scdaemon holds the OpenPGP card or YubiKey it uses, by default): so both are said,
/// insert the key, or close the program if it is that card; "close that program" alone had
/// the trader kill scdaemon for a key not plugged in (red-team round 27, recheck F5). Still
/// `busy`: a key that another program holds only for a moment opens on the next try.
pub(super) fn unreached_error(u: &Unreached, expected: &str) -> TokenError {
    let card = format!("the card in {}", u.location.describe());
    match &u.why {
        Fido2Error::InUse => TokenError::InUse {
            token: format!(
                "no FIDO2 key was found: insert {expected}; or, if it is {card}, that card"
            ),
        },
        Fido2Error::Unavailable(hint) => TokenError::Unavailable { hint: hint.clone() },
        e => TokenError::Other(format!("{card} could not be asked: {e}")),
    }
}

/// The FIDO2 keys `seen` hold none of `stubs`' credentials, asked without a touch: another
/// key, or an enrolled one reset (a reset deletes every credential on it, tapsign's too),
/// which cannot be told apart. "Insert <the key in the reader>" alone left the trader of a
/// reset key stuck, and every `token remove` and rotation with it (red-team round 24).
fn no_credential(seen: &[String], stubs: &[&TokenStub]) -> TokenError {
    let expected = stubs
        .iter()
        .map(|s| s.describe())
        .collect::<Vec<_>>()
        .join(" or ");
    let remove = stubs
        .iter()
        .map(|s| format!("`tapsign token remove {}` ({})", s.id(), s.describe()))
        .collect::<Vec<_>>()
        .join(" or ");
    TokenError::KeyLost {
        what: format!(
            "the FIDO2 key present ({}) holds no credential of this keystore. If it is not {expected}, insert that one instead. If it is, it was reset since it was enrolled (a reset deletes every credential on it, tapsign's too)",
            seen.join(", ")
        ),
        remove,
        other: String::new(),
    }
}

/// The PIN/UV protocol to speak with `dev`: Two when it offers it, else One.
pub(super) fn protocol_of(
    dev: &mut dyn Authenticator,
    label: &str,
) -> Result<Protocol, TokenError> {
    let info = dev.info().map_err(|e| token_error(e, label))?;
    Protocol::choose(&info.pin_protocols).ok_or_else(|| {
        TokenError::Other(format!(
            "{label} offers only PIN/UV protocols {:?}, and tapsign speaks 1 and 2",
            info.pin_protocols
        ))
    })
}

/// Whether `dev` holds `cred`, asked without a touch and without the PIN.
pub(super) fn probe(dev: &mut dyn Authenticator, cred: &Credential) -> Result<Probe, TokenError> {
    let protocol = protocol_of(dev, &cred.label)?;
    let req = AssertionRequest {
        rp_id: &cred.rp_id,
        credential_id: &cred.id,
        up: false,
        salt: None,
        pin: None,
        protocol,
    };
    match dev.get_assertion(&req) {
        Ok(_) => Ok(Probe::Holds),
        // Some authenticators answer a credential id that is not theirs with
        // INVALID_PARAMETER (it does not even decrypt) rather than NO_CREDENTIALS.
        Err(Fido2Error::Status(status::NO_CREDENTIALS | status::INVALID_PARAMETER)) => {
            Ok(Probe::Lacks)
        }
        Err(Fido2Error::Status(status::INVALID_OPTION | status::UNSUPPORTED_OPTION)) => {
            Ok(Probe::Unsure)
        }
        // The token insists on user verification (alwaysUv): with the PIN it can answer,
        // still without a touch ([`confirm_with_pin`]). Without one it cannot be this
        // keyslot's token in discouraged mode (its secret would differ), so say why.
        Err(Fido2Error::Status(status::PIN_REQUIRED)) => match cred.uv {
            UvMode::Required => Ok(Probe::NeedsPin),
            UvMode::Discouraged => Err(demands_uv(&cred.label)),
        },
        Err(e) => Err(token_error(e, &cred.label)),
    }
}

/// A copy of `pin` if it can be a FIDO2 PIN at all (CTAP 2.1: at least 4 code points, at most
/// 63 bytes): one that cannot is never sent, since the key would spend a try on it.
fn possible(pin: &SecretString, label: &str) -> Result<SecretString, TokenError> {
    let p = pin.expose();
    if p.chars().count() < 4 || p.len() > 63 {
        return Err(TokenError::PinImpossible {
            token: format!("FIDO2 key \"{label}\""),
        });
    }
    Ok(SecretString::from_str_copy(p))
}

/// Ask a token that answers only with the PIN whether it holds `cred`, still without a
/// touch: only for the one token present that might be the keyslot's.
pub(super) fn confirm_with_pin(
    dev: &mut dyn Authenticator,
    cred: &Credential,
    pin: Option<&SecretString>,
) -> Result<Probe, TokenError> {
    let Some(pin) = pin else {
        return Err(TokenError::PinNeeded {
            token: format!("FIDO2 key \"{}\"", cred.label),
        });
    };
    let pin = possible(pin, &cred.label)?;
    let protocol = protocol_of(dev, &cred.label)?;
    guard_pin(dev, protocol, &cred.label)?;
    let req = AssertionRequest {
        rp_id: &cred.rp_id,
        credential_id: &cred.id,
        up: false,
        salt: None,
        pin: Some(&pin),
        protocol,
    };
    match dev.get_assertion(&req) {
        Ok(_) => Ok(Probe::Holds),
        Err(Fido2Error::Status(status::NO_CREDENTIALS | status::INVALID_PARAMETER)) => {
            Ok(Probe::Lacks)
        }
        Err(e) => Err(pin_failure(dev, protocol, &cred.label, e)),
    }
}

/// Whether `dev` holds `cred`, as far as a probe without PIN or touch can tell.
pub(super) fn holds(dev: &mut dyn Authenticator, cred: &Credential) -> bool {
    matches!(probe(dev, cred), Ok(Probe::Holds))
}

fn demands_uv(label: &str) -> TokenError {
    TokenError::Other(format!(
        "FIDO2 key \"{label}\" now demands its PIN on every use (alwaysUv), but it was enrolled without user verification, and the secret differs with it: turn alwaysUv off (`ykman fido config toggle-always-uv`), or unlock with another token and enroll this one again with --uv required"
    ))
}

impl Token for Fido2Token {
    fn stub(&self) -> &TokenStub {
        &self.stub
    }

    /// The removal watch: a PC/SC reader name, or `hid:<path>#<sysfs identity>`.
    fn reader(&self) -> Option<String> {
        match self.device.location() {
            Location::Pcsc { reader } => Some(reader.clone()),
            Location::Hid { path, .. } => {
                // Without sysfs the watch falls back to the node's existence.
                let id = super::hid::identity(std::path::Path::new("/sys"), path);
                let id = id.unwrap_or_default();
                Some(format!("{}{path}#{id}", crate::removal::HID_PREFIX))
            }
        }
    }

    fn agree(&mut self, challenge: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let cred = Credential::from_stub(&self.stub)?;
        let salt: [u8; 32] = challenge.try_into().map_err(|_| {
            TokenError::Other("a FIDO2 keyslot's salt is not 32 bytes: the keyslot file is damaged; remove it with `tapsign token remove` and enroll the token again".into())
        })?;
        let pin = match cred.uv {
            UvMode::Discouraged => None,
            UvMode::Required => {
                let token = format!("FIDO2 key \"{}\"", cred.label);
                let pin = self.pin.as_ref().ok_or(TokenError::PinNeeded { token })?;
                guard_pin(self.device.as_mut(), self.protocol, &cred.label)?;
                Some(pin)
            }
        };
        say!("tapsign: touch FIDO2 key \"{}\" now", cred.label);
        let req = AssertionRequest {
            rp_id: &cred.rp_id,
            credential_id: &cred.id,
            up: true,
            salt: Some(&salt),
            pin,
            protocol: self.protocol,
        };
        let dev = self.device.as_mut();
        let answer = dev.get_assertion(&req).map_err(|e| match e {
            Fido2Error::Status(status::NO_CREDENTIALS) => TokenError::WrongToken {
                found: format!("the FIDO2 key on {}", dev.location().describe()),
                expected: self.stub.describe(),
            },
            Fido2Error::Status(status::PIN_REQUIRED) if cred.uv == UvMode::Discouraged => {
                demands_uv(&cred.label)
            }
            e => pin_failure(dev, self.protocol, &cred.label, e),
        })?;
        check_flags(&cred, answer.up, answer.uv)?;
        answer.hmac_output.ok_or_else(|| {
            TokenError::Other(format!(
                "FIDO2 key \"{}\" answered without the hmac-secret output tapsign asked for",
                cred.label
            ))
        })
    }
}

/// The secret differs with and without UV, and a touch is the point: check what the
/// authenticator says it did before using its answer.
pub(super) fn check_flags(cred: &Credential, up: bool, uv: bool) -> Result<(), TokenError> {
    let label = &cred.label;
    if !up {
        return Err(TokenError::Other(format!(
            "FIDO2 key \"{label}\" answered without a touch (its UP flag is clear): tapsign does not accept that; check the key with its vendor's tool"
        )));
    }
    match (cred.uv, uv) {
        (UvMode::Required, false) => Err(TokenError::Other(format!(
            "FIDO2 key \"{label}\" did not verify the PIN, which this keyslot needs"
        ))),
        (UvMode::Discouraged, true) => Err(TokenError::Other(format!(
            "FIDO2 key \"{label}\" verified the user although this keyslot was enrolled without user verification, so its secret differs: turn the key's alwaysUv off, or enroll it again with --uv required"
        ))),
        _ => Ok(()),
    }
}

/// Never spend the last PIN try (any local client can start an unlock: a wrong PIN must not
/// be able to block the token), and say so when it is blocked.
pub(super) fn guard_pin(
    dev: &mut dyn Authenticator,
    protocol: Protocol,
    label: &str,
) -> Result<(), TokenError> {
    let token = format!("FIDO2 key \"{label}\"");
    match dev.pin_retries(protocol) {
        Ok(0) => Err(blocked(token)),
        Ok(1) => Err(TokenError::PinLastTry {
            token,
            fix: "enter the PIN once in a tool you trust (`ykman fido access verify-pin`, or a browser's security-key settings) to reset the count, then try again".into(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(token_error(e, label)),
    }
}

fn blocked(token: String) -> TokenError {
    TokenError::PinBlocked {
        token,
        fix: "only a FIDO2 reset unblocks it, and that deletes its credentials, tapsign's too; unlock with another enrolled token and enroll a replacement".into(),
    }
}

/// An error of a request that carried the PIN: a wrong PIN reports the tries left.
pub(super) fn pin_failure(
    dev: &mut dyn Authenticator,
    protocol: Protocol,
    label: &str,
    e: Fido2Error,
) -> TokenError {
    match e {
        Fido2Error::Status(status::PIN_INVALID) => match dev.pin_retries(protocol) {
            Ok(0) => blocked(format!("FIDO2 key \"{label}\"")),
            Ok(n) => TokenError::PinInvalid {
                token: format!("FIDO2 key \"{label}\""),
                tries_left: n,
            },
            Err(e) => token_error(e, label),
        },
        e => token_error(e, label),
    }
}

/// A [`Fido2Error`] as the user should read it, naming the token.
pub(super) fn token_error(e: Fido2Error, label: &str) -> TokenError {
    let token = format!("FIDO2 key \"{label}\"");
    match e {
        Fido2Error::Status(status::USER_ACTION_TIMEOUT | status::ACTION_TIMEOUT) => {
            TokenError::TouchTimeout { secs: 30 }
        }
        Fido2Error::Timeout(secs) => TokenError::TouchTimeout { secs },
        Fido2Error::Status(status::OPERATION_DENIED | status::KEEPALIVE_CANCEL) => {
            TokenError::TouchDenied { token }
        }
        Fido2Error::Status(status::PIN_BLOCKED) => blocked(token),
        Fido2Error::Status(status::PIN_AUTH_BLOCKED) => TokenError::PinNeedsReplug { token },
        Fido2Error::Status(status::PIN_NOT_SET) => TokenError::Other(format!(
            "{token} has no PIN: set one (`ykman fido access change-pin`, or a browser's security-key settings), or enroll with --uv discouraged"
        )),
        Fido2Error::Status(status::PIN_REQUIRED) => TokenError::PinNeeded { token },
        Fido2Error::Status(code) => TokenError::Other(format!(
            "{token} refused the request: {}; if this persists, check it with its vendor's tool",
            super::error::status_name(code)
        )),
        Fido2Error::Removed => TokenError::Removed { token },
        Fido2Error::Unavailable(hint) => TokenError::Unavailable { hint },
        Fido2Error::InUse => TokenError::InUse { token },
        Fido2Error::Transport(m) => TokenError::Other(format!("{token}: {m}")),
        Fido2Error::Malformed(m) => TokenError::Other(format!(
            "{token} gave an answer tapsign cannot use ({m}); if this persists, check it with its vendor's tool"
        )),
        Fido2Error::Random => {
            TokenError::Other("the system random number generator failed; try again".into())
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
