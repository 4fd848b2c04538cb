//! A software authenticator for the tests of the shared FIDO2 logic (NO SECURITY, TESTS ONLY),
//! modelled on CTAP 2.1, not on tapsign's calls:
//! - getAssertion checks the PIN first (§6.5.5.7: a mismatch spends a retry, none left is
//!   PIN_BLOCKED), then the allowList: with `up` false an unknown credential is
//!   NO_CREDENTIALS at once; with `up` the touch comes first, as on real keys (§6.2.2);
//!   alwaysUv without PIN auth is PUAT_REQUIRED; a key without silent assertions refuses
//!   `up = false` as an invalid option (CTAP 2.0 keys);
//! - hmac-secret's output1 = HMAC-SHA-256(CredRandom, salt), CredRandom differing with and
//!   without UV (§12.5).
//!
//! The key's state sits behind an `Arc`, so one "physical" key can be plugged in again as a
//! new device handle ([`FakeKey::plug`]), and tests read its counters afterwards.

use std::sync::{Arc, Mutex, MutexGuard};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::ctap::Info;
use super::device::{
    Asserted, AssertionRequest, Authenticator, Found, Location, Registered, Registration,
};
use super::error::{Fido2Error, status};
use super::pin_protocol::Protocol;

/// How the human answers a touch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Approve,
    Deny,
    Ignore,
}

pub struct KeyState {
    pub info: Info,
    pub pin: Option<String>,
    pub retries: u32,
    pub creds: Vec<Vec<u8>>,
    pub cred_random: [u8; 32],
    /// Answers `up = false` (silent assertions).
    pub silent: bool,
    pub touch: Touch,
    /// A misbehaving key: report these flags whatever happened.
    pub force_up: Option<bool>,
    pub force_uv: Option<bool>,
    /// Credentials invisible without UV (credProtect level 3 applied by default).
    pub hide_without_uv: bool,
    pub touches: u32,
    pub touch_requests: u32,
}

#[derive(Clone)]
pub struct FakeKey {
    pub state: Arc<Mutex<KeyState>>,
    pub reader: String,
}

impl FakeKey {
    /// A CTAP 2.1 key with hmac-secret, protocols 2 and 1, and `pin` (or none).
    pub fn new(reader: &str, pin: Option<&str>) -> FakeKey {
        let options = vec![
            ("clientPin".to_owned(), pin.is_some()),
            ("pinUvAuthToken".to_owned(), true),
            ("makeCredUvNotRqd".to_owned(), true),
        ];
        let mut cred_random = [0u8; 32];
        getrandom::fill(&mut cred_random).unwrap();
        FakeKey {
            state: Arc::new(Mutex::new(KeyState {
                info: Info {
                    versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
                    extensions: vec!["hmac-secret".into()],
                    aaguid: *b"fake-fido2-key-0",
                    options,
                    pin_protocols: vec![2, 1],
                },
                pin: pin.map(str::to_owned),
                retries: 8,
                creds: Vec::new(),
                cred_random,
                silent: true,
                touch: Touch::Approve,
                force_up: None,
                force_uv: None,
                hide_without_uv: false,
                touches: 0,
                touch_requests: 0,
            })),
            reader: reader.to_owned(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, KeyState> {
        self.state.lock().unwrap()
    }

    /// The key as a freshly found device.
    pub fn plug(&self) -> Box<dyn Authenticator> {
        Box::new(Device {
            key: self.clone(),
            location: Location::Pcsc {
                reader: self.reader.clone(),
            },
        })
    }
}

/// These keys, as a search would find them.
pub fn found(keys: &[&FakeKey]) -> Found {
    Found {
        devices: keys.iter().map(|k| k.plug()).collect(),
        notes: Vec::new(),
        unreached: Vec::new(),
    }
}

struct Device {
    key: FakeKey,
    location: Location,
}

impl KeyState {
    /// §6.5.5.7: the PIN's check, before anything else. Returns whether the user is verified.
    fn verify(&mut self, pin: Option<&crate::secret::SecretString>) -> Result<bool, Fido2Error> {
        let Some(pin) = pin else { return Ok(false) };
        let Some(want) = &self.pin else {
            return Err(Fido2Error::Status(status::PIN_NOT_SET));
        };
        if self.retries == 0 {
            return Err(Fido2Error::Status(status::PIN_BLOCKED));
        }
        if pin.expose() != want {
            self.retries -= 1;
            return Err(Fido2Error::Status(match self.retries {
                0 => status::PIN_BLOCKED,
                _ => status::PIN_INVALID,
            }));
        }
        self.retries = 8;
        Ok(true)
    }

    fn touch(&mut self) -> Result<(), Fido2Error> {
        self.touch_requests += 1;
        match self.touch {
            Touch::Approve => {
                self.touches += 1;
                Ok(())
            }
            Touch::Deny => Err(Fido2Error::Status(status::OPERATION_DENIED)),
            Touch::Ignore => Err(Fido2Error::Status(status::USER_ACTION_TIMEOUT)),
        }
    }
}

impl Authenticator for Device {
    fn location(&self) -> &Location {
        &self.location
    }

    fn info(&mut self) -> Result<Info, Fido2Error> {
        Ok(self.key.state().info.clone())
    }

    fn pin_retries(&mut self, _protocol: Protocol) -> Result<u32, Fido2Error> {
        Ok(self.key.state().retries)
    }

    fn make_credential(&mut self, req: &Registration<'_>) -> Result<Registered, Fido2Error> {
        let mut s = self.key.state();
        let uv = s.verify(req.pin)?;
        if !uv && s.pin.is_some() && s.info.option("makeCredUvNotRqd") != Some(true) {
            return Err(Fido2Error::Status(status::PIN_REQUIRED));
        }
        s.touch()?;
        let id = vec![s.creds.len() as u8 + 1; 48];
        s.creds.push(id.clone());
        Ok(Registered {
            credential_id: id,
            hmac_secret: s.info.has_extension("hmac-secret"),
        })
    }

    fn get_assertion(&mut self, req: &AssertionRequest<'_>) -> Result<Asserted, Fido2Error> {
        let mut s = self.key.state();
        let uv = s.verify(req.pin)?;
        let known = s.creds.iter().any(|c| c == req.credential_id) && (uv || !s.hide_without_uv);
        if !req.up && !s.silent {
            return Err(Fido2Error::Status(status::INVALID_OPTION));
        }
        if s.info.option("alwaysUv") == Some(true) && !uv {
            return Err(Fido2Error::Status(status::PIN_REQUIRED));
        }
        if req.up {
            s.touch()?;
        }
        if !known {
            return Err(Fido2Error::Status(status::NO_CREDENTIALS));
        }
        let hmac_output = req.salt.map(|salt| {
            let mut key = s.cred_random;
            if uv {
                key[0] ^= 0xFF; // CredRandomWithUV
            }
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
            mac.update(salt);
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(&mac.finalize().into_bytes());
            out
        });
        Ok(Asserted {
            up: s.force_up.unwrap_or(req.up),
            uv: s.force_uv.unwrap_or(uv),
            hmac_output,
        })
    }
}
