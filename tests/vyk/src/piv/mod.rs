//! The YubiKey PIV applet: command dispatch, the per-session security state (PIN verified,
//! management key authenticated) and the persistent card state (keys, objects, PIN, PUK,
//! management key). Which YubiKey behaviour each rule follows is in `firmware-notes/`.
//!
//! No security: this is a test double. Secrets sit in plain memory.

pub mod keys;
pub mod mgm;
pub mod objects;
pub mod pin;

use std::collections::BTreeMap;
use std::time::Instant;

use crate::apdu::{Command, Response, Sw};
use crate::touch::{Touch, TouchOutcome};
use keys::{KeyOp, Keyslot, PinPolicy, TouchPolicy};
use mgm::{AuthState, MgmAlg, MgmKey, Step};
use objects::Objects;
use pin::Reference;

/// The PIV AID prefix; clients select with it or with the full AID.
const PIV_AID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];
/// SELECT's answer on a YubiKey 5: the application property template.
const SELECT_RESPONSE: [u8; 19] = [
    0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00,
    0x00, 0x03, 0x08,
];
const SLOT_MGM: u8 = 0x9B;
const SLOT_PIN: u8 = 0x80;
const SLOT_PUK: u8 = 0x81;

pub use crate::config::Config;

/// Security state that a reset, power-off or SELECT wipes.
#[derive(Default)]
struct Session {
    selected: bool,
    pin_verified: bool,
    /// Verified since the last private-key operation: what PIN policy Always needs.
    pin_fresh: bool,
    mgm_authenticated: bool,
    mgm_auth: AuthState,
}

/// The applet and everything stored on the card.
pub struct Piv {
    config: Config,
    pin: Reference,
    puk: Reference,
    mgm: MgmKey,
    slots: BTreeMap<u8, Keyslot>,
    objects: Objects,
    session: Session,
    last_touch: Option<Instant>,
}

impl Piv {
    /// A factory-fresh key.
    pub fn new(config: Config) -> Piv {
        Piv {
            pin: Reference::new(pin::DEFAULT_PIN, 3),
            puk: Reference::new(pin::DEFAULT_PUK, 3),
            mgm: MgmKey::factory(config.version),
            slots: BTreeMap::new(),
            objects: Objects::default(),
            session: Session::default(),
            last_touch: None,
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Power off, reset, or unplug: the card forgets who authenticated.
    pub fn end_session(&mut self) {
        self.session = Session::default();
    }

    /// Unplugged: also the touch cache goes.
    pub fn unplugged(&mut self) {
        self.end_session();
        self.last_touch = None;
    }

    /// Handles one complete command APDU.
    pub fn process(&mut self, cmd: &Command, touch: &Touch) -> Response {
        if cmd.cla & !0x10 != 0 {
            return Sw::CLA_NOT_SUPPORTED.into();
        }
        if cmd.ins == 0xA4 {
            return self.select(cmd);
        }
        if !self.session.selected {
            return Sw::INS_NOT_SUPPORTED.into();
        }
        match cmd.ins {
            0xFD => Response::ok(self.config.version.to_vec()),
            0xF8 => Response::ok(self.config.serial.to_be_bytes().to_vec()),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference(cmd),
            0x2C => self.reset_retry(cmd),
            0x87 if cmd.p2 == SLOT_MGM => self.mgm_authenticate(cmd, touch),
            0x87 => self.key_operation(cmd, touch),
            0x47 => self.generate(cmd),
            0xFE => self.import(cmd),
            0xF7 => self.metadata(cmd),
            0xCB if (cmd.p1, cmd.p2) == (0x3F, 0xFF) => {
                self.objects.get(&cmd.data, self.session.pin_verified)
            }
            0xDB if (cmd.p1, cmd.p2) == (0x3F, 0xFF) => match self.session.mgm_authenticated {
                true => self.objects.put(&cmd.data),
                false => Sw::SECURITY_STATUS.into(),
            },
            0xCB | 0xDB => Sw::INCORRECT_P1P2.into(),
            0xFF => self.set_mgm_key(cmd),
            0xFA => self.set_pin_retries(cmd),
            0xFB => self.reset(),
            _ => Sw::INS_NOT_SUPPORTED.into(),
        }
    }

    fn select(&mut self, cmd: &Command) -> Response {
        let is_piv = cmd.p1 == 0x04 && cmd.data.starts_with(&PIV_AID);
        if !is_piv {
            // OTP, management, OATH and FIDO applets are not emulated. A failed SELECT
            // leaves the current selection alone.
            return Sw::NOT_FOUND.into();
        }
        // Selecting PIV drops the PIN and management-key state, as on a real key.
        self.end_session();
        self.session.selected = true;
        Response::ok(SELECT_RESPONSE.to_vec())
    }

    fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != SLOT_PIN {
            return Sw::REFERENCE_NOT_FOUND.into();
        }
        match (cmd.p1, cmd.data.is_empty()) {
            // P1=FF: forget the verification (firmware 5.x).
            (0xFF, true) => {
                self.session.pin_verified = false;
                self.session.pin_fresh = false;
                Sw::OK.into()
            }
            // The probe: OK if already verified, else how many tries are left.
            (0x00, true) if self.session.pin_verified => Sw::OK.into(),
            (0x00, true) => self.pin.status().into(),
            (0x00, false) => {
                let sw = self.pin.check(&cmd.data);
                self.session.pin_verified = sw == Sw::OK;
                self.session.pin_fresh = sw == Sw::OK;
                sw.into()
            }
            _ => Sw::INCORRECT_P1P2.into(),
        }
    }

    /// CHANGE REFERENCE DATA: old value then new value, 8 bytes each.
    fn change_reference(&mut self, cmd: &Command) -> Response {
        let target = match cmd.p2 {
            SLOT_PIN => &mut self.pin,
            SLOT_PUK => &mut self.puk,
            _ => return Sw::REFERENCE_NOT_FOUND.into(),
        };
        if cmd.data.len() != 2 * pin::PADDED_LEN {
            return Sw::WRONG_DATA.into();
        }
        let (old, new) = cmd.data.split_at(pin::PADDED_LEN);
        match target.check(old) {
            Sw::OK => target.set(new).into(),
            sw => sw.into(),
        }
    }

    /// RESET RETRY COUNTER: unblock (and replace) the PIN with the PUK.
    fn reset_retry(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != SLOT_PIN {
            return Sw::REFERENCE_NOT_FOUND.into();
        }
        if cmd.data.len() != 2 * pin::PADDED_LEN {
            return Sw::WRONG_DATA.into();
        }
        let (puk, new_pin) = cmd.data.split_at(pin::PADDED_LEN);
        match self.puk.check(puk) {
            Sw::OK => self.pin.set(new_pin).into(),
            sw => sw.into(),
        }
    }

    fn mgm_authenticate(&mut self, cmd: &Command, touch: &Touch) -> Response {
        match mgm::authenticate(&self.mgm, cmd.p1, &cmd.data, &mut self.session.mgm_auth) {
            Step::Reply(r) => {
                self.session.mgm_authenticated = false;
                r
            }
            Step::Authenticated(r) => {
                if self.mgm.touch_required && touch.request() != TouchOutcome::Touched {
                    return Sw::SECURITY_STATUS.into();
                }
                self.session.mgm_authenticated = true;
                r
            }
        }
    }

    /// ECDSA or ECDH with a slot's key, after its PIN and touch policies.
    fn key_operation(&mut self, cmd: &Command, touch: &Touch) -> Response {
        if !keys::is_key_slot(cmd.p2) {
            return Sw::WRONG_P1P2.into();
        }
        let Some(slot) = self.slots.get(&cmd.p2) else {
            return Sw::REFERENCE_NOT_FOUND.into();
        };
        if cmd.p1 != keys::ALG_ECCP256 {
            return Sw::WRONG_DATA.into();
        }
        let Some(op) = KeyOp::parse(&cmd.data) else {
            return Sw::WRONG_DATA.into();
        };
        // The PIN comes first: a real key asks for no touch while the PIN is missing.
        let pin_ok = match slot.pin_policy {
            PinPolicy::Never => true,
            PinPolicy::Once => self.session.pin_verified,
            PinPolicy::Always => self.session.pin_fresh,
        };
        if !pin_ok {
            return Sw::SECURITY_STATUS.into();
        }
        self.session.pin_fresh = false;
        let cached = self
            .last_touch
            .is_some_and(|t| t.elapsed() < self.config.touch_cache);
        let needs_touch = match slot.touch_policy {
            TouchPolicy::Never => false,
            TouchPolicy::Always => true,
            TouchPolicy::Cached => !cached,
        };
        if needs_touch {
            // Touch timeout is answered like a missing PIN (firmware-notes/touch-timeout.md).
            if touch.request() != TouchOutcome::Touched {
                return Sw::SECURITY_STATUS.into();
            }
            self.last_touch = Some(Instant::now());
        }
        match slot.run(&op) {
            Ok(data) => Response::ok(data),
            Err(sw) => sw.into(),
        }
    }

    fn generate(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Sw::SECURITY_STATUS.into();
        }
        if cmd.p1 != 0 || !keys::is_key_slot(cmd.p2) {
            return Sw::WRONG_P1P2.into();
        }
        match Keyslot::generate(cmd.p2, &cmd.data) {
            Ok(slot) => {
                let answer = slot.public_key_template();
                self.slots.insert(cmd.p2, slot);
                Response::ok(answer)
            }
            Err(sw) => sw.into(),
        }
    }

    fn import(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Sw::SECURITY_STATUS.into();
        }
        if !keys::is_key_slot(cmd.p2) {
            return Sw::WRONG_P1P2.into();
        }
        match Keyslot::import(cmd.p2, cmd.p1, &cmd.data) {
            Ok(slot) => {
                self.slots.insert(cmd.p2, slot);
                Sw::OK.into()
            }
            Err(sw) => sw.into(),
        }
    }

    /// GET METADATA (firmware 5.3 and later; firmware-notes/metadata.md).
    fn metadata(&self, cmd: &Command) -> Response {
        if self.config.version < [5, 3, 0] {
            return Sw::INS_NOT_SUPPORTED.into();
        }
        let reference = |r: &Reference| {
            let mut out = crate::tlv::tlv(&[0x01], &[0xFF]);
            crate::tlv::put(&mut out, &[0x05], &[u8::from(r.is_default())]);
            crate::tlv::put(&mut out, &[0x06], &[r.max_tries, r.tries_left]);
            out
        };
        match cmd.p2 {
            SLOT_PIN => Response::ok(reference(&self.pin)),
            SLOT_PUK => Response::ok(reference(&self.puk)),
            SLOT_MGM => {
                let mut out = crate::tlv::tlv(&[0x01], &[self.mgm.alg.id()]);
                let touch = if self.mgm.touch_required { 2 } else { 1 };
                crate::tlv::put(&mut out, &[0x02], &[0, touch]);
                crate::tlv::put(&mut out, &[0x05], &[u8::from(self.mgm.is_default())]);
                Response::ok(out)
            }
            slot if keys::is_key_slot(slot) => match self.slots.get(&slot) {
                Some(key) => Response::ok(key.metadata()),
                None => Sw::REFERENCE_NOT_FOUND.into(),
            },
            _ => Sw::REFERENCE_NOT_FOUND.into(),
        }
    }

    /// SET MANAGEMENT KEY: `alg 9B len key`; P2 FE also requires touch from now on.
    fn set_mgm_key(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Sw::SECURITY_STATUS.into();
        }
        let touch_required = match (cmd.p1, cmd.p2) {
            (0xFF, 0xFF) => false,
            (0xFF, 0xFE) => true,
            _ => return Sw::INCORRECT_P1P2.into(),
        };
        let [alg, SLOT_MGM, len, key @ ..] = cmd.data.as_slice() else {
            return Sw::WRONG_DATA.into();
        };
        let Some(alg) = MgmAlg::from_id(*alg) else {
            return Sw::WRONG_DATA.into();
        };
        // AES management keys arrived with firmware 5.4.2
        // (firmware-notes/default-management-key.md).
        if alg != MgmAlg::Tdes && self.config.version < [5, 4, 2] {
            return Sw::WRONG_DATA.into();
        }
        match MgmKey::new(alg, key, touch_required) {
            Some(new) if usize::from(*len) == key.len() => {
                self.mgm = new;
                Sw::OK.into()
            }
            _ => Sw::WRONG_DATA.into(),
        }
    }

    /// SET PIN RETRIES: needs the management key and the PIN; resets PIN and PUK.
    fn set_pin_retries(&mut self, cmd: &Command) -> Response {
        if !(self.session.mgm_authenticated && self.session.pin_verified) {
            return Sw::SECURITY_STATUS.into();
        }
        if cmd.p1 == 0 || cmd.p2 == 0 {
            return Sw::INCORRECT_P1P2.into();
        }
        self.pin.reset(cmd.p1);
        self.puk.reset(cmd.p2);
        self.session.pin_verified = false;
        self.session.pin_fresh = false;
        Sw::OK.into()
    }

    /// RESET: only once both PIN and PUK are blocked (firmware-notes/reset.md).
    fn reset(&mut self) -> Response {
        if !(self.pin.is_blocked() && self.puk.is_blocked()) {
            return Sw::CONDITIONS_NOT_SATISFIED.into();
        }
        *self = Piv::new(self.config.clone());
        self.session.selected = true;
        Sw::OK.into()
    }
}

#[cfg(test)]
mod tests;
