//! A FIDO2 authenticator (CTAP 2.1) for the virtual key, written from the FIDO Alliance's
//! "Client to Authenticator Protocol (CTAP) 2.1" and reached over its ISO 7816 (NFC) binding.
//! No security: tests only. Secrets sit in plain memory.
//!
//! Layout:
//! - [`cbor`]: the CBOR subset CTAP2 messages use.
//! - [`status`]: CTAP status codes.
//! - [`pin_uv`]: PIN/UV auth protocols 1 and 2 (key agreement, encrypt, authenticate).
//! - [`credential`]: non-discoverable credentials sealed inside their credential id.
//! - [`Authenticator`] (this file): persistent and per-power-cycle state, command dispatch,
//!   and the pinUvAuthToken; the commands live in `info`, `make_credential`,
//!   `get_assertion`, `client_pin` and `reset`.
//! - [`nfc`]: the ISO 7816 binding (SELECT, NFCCTAP_MSG, NFCCTAP_GETRESPONSE) in front.
//!
//! A command that needs user presence does not block here: it returns [`Step::Touch`] with
//! everything already checked, and the binding asks the touch sensor and calls
//! [`Authenticator::finish`]. That keeps the spec's order of checks (all parameter and PIN
//! errors before any touch) in one place and lets the binding answer `91 00` meanwhile.

pub mod cbor;
mod client_pin;
pub mod credential;
mod get_assertion;
mod info;
mod make_credential;
pub mod nfc;
pub mod pin_uv;
pub mod status;

#[cfg(test)]
mod nfc_tests;
#[cfg(test)]
mod test_platform;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pin;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::touch::TouchOutcome;
use cbor::Value;
pub use pin_uv::Protocol as PinProtocol;
use pin_uv::{KeyAgreement, Protocol, random_array};
use status::{CtapResult, Status};

/// CTAP command bytes (CTAP 2.1 §6).
const CMD_MAKE_CREDENTIAL: u8 = 0x01;
const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_INFO: u8 = 0x04;
const CMD_CLIENT_PIN: u8 = 0x06;
const CMD_RESET: u8 = 0x07;
const CMD_GET_NEXT_ASSERTION: u8 = 0x08;
const CMD_SELECTION: u8 = 0x0B;

/// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
pub const PERMISSION_MC: u8 = 0x01;
pub const PERMISSION_GA: u8 = 0x02;
/// Permissions this authenticator can grant (no credMgmt, bioEnroll, largeBlobs, config).
const SUPPORTED_PERMISSIONS: u8 = PERMISSION_MC | PERMISSION_GA;

/// PIN tries after a factory reset or a correct PIN (CTAP 2.1 §6.5.2: maximum 8).
pub const PIN_RETRIES: u8 = 8;
/// Consecutive wrong PINs after which the key wants a power cycle (CTAP 2.1 §6.5.5.5).
pub const MISMATCHES_PER_POWER_CYCLE: u8 = 3;
/// The largest request accepted, advertised as maxMsgSize.
pub const MAX_MSG_SIZE: usize = 1200;
/// Credentials accepted in one allowList or excludeList (maxCredentialCountInList).
pub const MAX_CREDS_IN_LIST: usize = 8;

/// How the FIDO2 applet of a virtual key behaves.
#[derive(Debug, Clone)]
pub struct Fido2Config {
    /// Reported in getInfo and in attested credential data.
    pub aaguid: [u8; 16],
    /// A PIN set at the factory (UTF-8, 4 to 63 bytes), or none.
    pub pin: Option<String>,
    /// PIN/UV auth protocols, in the order getInfo lists them. `[One]` models an older key.
    pub pin_protocols: Vec<Protocol>,
    /// CTAP 2.1 (FIDO_2_1, pinUvAuthToken and permissions); `false` models a CTAP 2.0 key.
    pub ctap21: bool,
    /// alwaysUv: every makeCredential and every getAssertion with up needs PIN auth.
    pub always_uv: bool,
    /// makeCredUvNotRqd: non-discoverable credentials without UV even with a PIN set.
    pub make_cred_uv_not_rqd: bool,
    /// authenticatorReset only this long after power-up (10 s on real keys).
    pub reset_window: Duration,
}

impl Default for Fido2Config {
    fn default() -> Self {
        Fido2Config {
            // A made-up AAGUID, so nothing mistakes the virtual key for a real model.
            aaguid: *b"tapsign-vyk-fido",
            pin: None,
            pin_protocols: vec![Protocol::Two, Protocol::One],
            ctap21: true,
            always_uv: false,
            make_cred_uv_not_rqd: true,
            reset_window: Duration::from_secs(10),
        }
    }
}

/// What the card remembers across a re-plug.
struct Persistent {
    /// Seals every credential id; replaced by authenticatorReset.
    master: [u8; 32],
    /// LEFT(SHA-256(PIN), 16), as the spec stores it.
    pin_hash: Option<[u8; 16]>,
    pin_retries: u8,
    sign_count: u32,
}

/// The pinUvAuthToken's state while it is in use (CTAP 2.1 §6.5.2.1).
struct TokenUse {
    permissions: u8,
    rp_id: Option<String>,
    user_verified: bool,
}

/// State a power cycle (unplug and plug) wipes.
struct PowerCycle {
    key_agreement: KeyAgreement,
    token: [u8; 32],
    token_use: Option<TokenUse>,
    mismatches: u8,
    powered_at: Instant,
}

impl PowerCycle {
    fn new() -> CtapResult<PowerCycle> {
        Ok(PowerCycle {
            key_agreement: KeyAgreement::generate()?,
            token: random_array()?,
            token_use: None,
            mismatches: 0,
            powered_at: Instant::now(),
        })
    }
}

/// A command's result: an answer now, or one that waits for the user's touch.
pub enum Step {
    /// Status byte and CBOR.
    Done(Vec<u8>),
    Touch(Pending),
}

/// A command checked in full, waiting for user presence.
pub enum Pending {
    MakeCredential(Box<make_credential::Prepared>),
    GetAssertion(Box<get_assertion::Prepared>),
    /// A touch, then this error (excludeList hit, no credential, zero-length pinUvAuthParam).
    ThenFail(Status),
    Reset,
    Selection,
}

/// The authenticator's whole state.
pub struct Authenticator {
    config: Fido2Config,
    store: Persistent,
    cycle: PowerCycle,
}

impl Authenticator {
    pub fn new(config: Fido2Config) -> CtapResult<Authenticator> {
        let pin_hash = config.pin.as_deref().map(|p| pin_hash(p.as_bytes()));
        Ok(Authenticator {
            store: Persistent {
                master: random_array()?,
                pin_hash,
                pin_retries: PIN_RETRIES,
                sign_count: 0,
            },
            cycle: PowerCycle::new()?,
            config,
        })
    }

    pub fn config(&self) -> &Fido2Config {
        &self.config
    }

    /// Power-up: a new key agreement key and token, the mismatch counter cleared, and the
    /// reset window opened.
    pub fn power_up(&mut self) -> CtapResult<()> {
        self.cycle = PowerCycle::new()?;
        Ok(())
    }

    /// Whether a PIN is set.
    pub fn has_pin(&self) -> bool {
        self.store.pin_hash.is_some()
    }

    pub fn pin_retries(&self) -> u8 {
        self.store.pin_retries
    }

    /// One CTAP message (command byte, then CBOR) in.
    pub fn handle(&mut self, message: &[u8]) -> Step {
        let Some((&command, body)) = message.split_first() else {
            return Step::Done(vec![Status::InvalidLength.code()]);
        };
        if message.len() > MAX_MSG_SIZE {
            return Step::Done(vec![Status::RequestTooLarge.code()]);
        }
        let result = match command {
            CMD_GET_INFO if body.is_empty() => Ok(Step::Done(ok(info::get_info(self)))),
            CMD_SELECTION | CMD_RESET if body.is_empty() => Ok(if command == CMD_RESET {
                self.reset_request()
            } else {
                Step::Touch(Pending::Selection)
            }),
            CMD_GET_INFO | CMD_SELECTION | CMD_RESET => Err(Status::InvalidLength),
            CMD_MAKE_CREDENTIAL | CMD_GET_ASSERTION | CMD_CLIENT_PIN => {
                parse_map(body).and_then(|req| match command {
                    CMD_MAKE_CREDENTIAL => make_credential::request(self, &req),
                    CMD_GET_ASSERTION => get_assertion::request(self, &req),
                    _ => client_pin::request(self, &req).map(|v| Step::Done(ok(v))),
                })
            }
            // Only discoverable credentials ever need it, and there are none.
            CMD_GET_NEXT_ASSERTION => Err(Status::NotAllowed),
            _ => Err(Status::InvalidCommand),
        };
        result.unwrap_or_else(|status| Step::Done(vec![status.code()]))
    }

    /// Completes a command once the touch sensor answered.
    pub fn finish(&mut self, pending: Pending, outcome: TouchOutcome) -> Vec<u8> {
        match outcome {
            TouchOutcome::Touched => {}
            TouchOutcome::Denied => return vec![Status::OperationDenied.code()],
            TouchOutcome::TimedOut => return vec![Status::UserActionTimeout.code()],
        }
        let result = match pending {
            Pending::MakeCredential(p) => make_credential::finish(self, *p),
            Pending::GetAssertion(p) => get_assertion::finish(self, *p),
            Pending::ThenFail(status) => Err(status),
            Pending::Selection => Ok(None),
            Pending::Reset => self.reset().map(|()| None),
        };
        match result {
            Ok(Some(v)) => ok(v),
            Ok(None) => vec![0x00],
            Err(status) => vec![status.code()],
        }
    }

    /// authenticatorReset (CTAP 2.1 §6.6): only shortly after power-up, and with a touch.
    fn reset_request(&mut self) -> Step {
        if self.cycle.powered_at.elapsed() > self.config.reset_window {
            return Step::Done(vec![Status::NotAllowed.code()]);
        }
        Step::Touch(Pending::Reset)
    }

    fn reset(&mut self) -> CtapResult<()> {
        self.store = Persistent {
            master: random_array()?,
            pin_hash: None,
            pin_retries: PIN_RETRIES,
            sign_count: 0,
        };
        let powered_at = self.cycle.powered_at;
        self.cycle = PowerCycle::new()?;
        self.cycle.powered_at = powered_at;
        Ok(())
    }

    fn protocol_supported(&self, p: Protocol) -> bool {
        self.config.pin_protocols.contains(&p)
    }

    /// Parses pinUvAuthProtocol (key `key`): `MissingParameter` if absent, `InvalidParameter`
    /// if this key does not speak it.
    fn protocol_param(&self, req: &Value, key: i64) -> CtapResult<Protocol> {
        let n = int(req, key)?.ok_or(Status::MissingParameter)?;
        Protocol::from_number(n)
            .filter(|p| self.protocol_supported(*p))
            .ok_or(Status::InvalidParameter)
    }

    /// Checks a pinUvAuthParam over `client_data_hash` against the token and its
    /// permissions for `permission` on `rp_id` (binding the token to the RP if it is not
    /// bound yet). Any failure is `PIN_AUTH_INVALID`.
    fn check_token(
        &mut self,
        protocol: Protocol,
        param: &[u8],
        client_data_hash: &[u8],
        permission: u8,
        rp_id: &str,
    ) -> CtapResult<()> {
        let Some(token_use) = &mut self.cycle.token_use else {
            return Err(Status::PinAuthInvalid);
        };
        if !protocol.verify(&self.cycle.token, client_data_hash, param) {
            return Err(Status::PinAuthInvalid);
        }
        if token_use.permissions & permission == 0 || !token_use.user_verified {
            return Err(Status::PinAuthInvalid);
        }
        match &token_use.rp_id {
            Some(bound) if bound != rp_id => return Err(Status::PinAuthInvalid),
            Some(_) => {}
            None => token_use.rp_id = Some(rp_id.to_owned()),
        }
        Ok(())
    }

    /// After user presence was collected with a token: clearUserPresentFlag,
    /// clearUserVerifiedFlag, clearPinUvAuthTokenPermissionsExceptLbw (CTAP 2.1 §6.1.2 and
    /// §6.2.2), so one token authorises one touch-confirmed operation.
    fn spend_token(&mut self) {
        if let Some(t) = &mut self.cycle.token_use {
            t.permissions = 0;
            t.user_verified = false;
        }
    }

    fn next_sign_count(&mut self) -> u32 {
        self.store.sign_count = self.store.sign_count.wrapping_add(1);
        self.store.sign_count
    }
}

/// LEFT(SHA-256(pin), 16).
fn pin_hash(pin: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Sha256::digest(pin)[..16]);
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Success: status 0x00 and the CBOR answer.
fn ok(value: Value) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend(value.encode());
    out
}

/// A request's parameters: a CBOR map (`INVALID_CBOR` if not CBOR, `CBOR_UNEXPECTED_TYPE` if
/// not a map).
fn parse_map(body: &[u8]) -> CtapResult<Value> {
    let value = cbor::decode(body).map_err(|_| Status::InvalidCbor)?;
    match value {
        Value::Map(_) => Ok(value),
        _ => Err(Status::CborUnexpectedType),
    }
}

/// Typed field getters: `Ok(None)` when absent, `CBOR_UNEXPECTED_TYPE` when of another type.
fn bytes(req: &Value, key: i64) -> CtapResult<Option<&[u8]>> {
    typed(req.get_int(key), Value::as_bytes)
}

fn text(req: &Value, key: i64) -> CtapResult<Option<&str>> {
    typed(req.get_int(key), Value::as_text)
}

fn int(req: &Value, key: i64) -> CtapResult<Option<i128>> {
    typed(req.get_int(key), Value::as_int)
}

fn typed<'a, T>(v: Option<&'a Value>, f: impl Fn(&'a Value) -> Option<T>) -> CtapResult<Option<T>> {
    v.map(|v| f(v).ok_or(Status::CborUnexpectedType))
        .transpose()
}

/// The options map of makeCredential/getAssertion: each known option as a bool.
struct Options {
    rk: Option<bool>,
    up: Option<bool>,
    uv: Option<bool>,
}

fn options(req: &Value, key: i64) -> CtapResult<Options> {
    let Some(map) = req.get_int(key) else {
        return Ok(Options {
            rk: None,
            up: None,
            uv: None,
        });
    };
    if map.as_map().is_none() {
        return Err(Status::CborUnexpectedType);
    }
    let get = |name: &str| typed(map.get_text(name), Value::as_bool);
    Ok(Options {
        rk: get("rk")?,
        up: get("up")?,
        uv: get("uv")?,
    })
}

/// The authenticator data flags (WebAuthn §6.1).
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// rpIdHash | flags | signCount | rest.
fn auth_data(rp_id_hash: &[u8; 32], flags: u8, count: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = rp_id_hash.to_vec();
    out.push(flags);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(rest);
    out
}
