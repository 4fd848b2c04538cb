//! The card's applets behind one ATR, and which one is selected: SELECT by AID switches
//! between PIV and FIDO2 as on a YubiKey, where selecting one applet ends the other's
//! session. A failed SELECT leaves the current selection alone.

use crate::apdu::{Command, Response, Sw};
use crate::config::Config;
use crate::fido2::nfc::{FIDO_AID, Fido2Applet};
use crate::piv::Piv;
use crate::touch::Touch;

const INS_SELECT: u8 = 0xA4;
const P1_BY_AID: u8 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    None,
    Piv,
    Fido2,
}

/// Every applet on the card.
pub struct Applets {
    piv: Option<Piv>,
    fido2: Option<Fido2Applet>,
    current: Current,
}

impl Applets {
    pub fn new(config: &Config) -> Applets {
        Applets {
            piv: config.piv.then(|| Piv::new(config.clone())),
            fido2: config.fido2.clone().map(Fido2Applet::new),
            current: Current::None,
        }
    }

    /// Handles one complete command APDU.
    pub fn process(&mut self, cmd: &Command, touch: &Touch) -> Response {
        if cmd.ins == INS_SELECT && cmd.p1 == P1_BY_AID {
            return self.select(cmd, touch);
        }
        match (self.current, &mut self.fido2, &mut self.piv) {
            (Current::Fido2, Some(fido2), _) => fido2.process(cmd, touch),
            // The PIV applet answers for itself when nothing is selected (`6D00`).
            (_, _, Some(piv)) => piv.process(cmd, touch),
            _ => Sw::INS_NOT_SUPPORTED.into(),
        }
    }

    fn select(&mut self, cmd: &Command, touch: &Touch) -> Response {
        if let Some(fido2) = &mut self.fido2
            && cmd.data.starts_with(&FIDO_AID)
        {
            if let Some(piv) = &mut self.piv {
                piv.end_session();
            }
            self.current = Current::Fido2;
            return fido2.select(touch);
        }
        let Some(piv) = &mut self.piv else {
            return Sw::NOT_FOUND.into();
        };
        let response = piv.process(cmd, touch);
        if response.sw == Sw::OK {
            if let Some(fido2) = &mut self.fido2 {
                fido2.end_session(touch);
            }
            self.current = Current::Piv;
        }
        response
    }

    /// Power off or reset: every applet's session ends.
    pub fn end_session(&mut self, touch: &Touch) {
        if let Some(piv) = &mut self.piv {
            piv.end_session();
        }
        if let Some(fido2) = &mut self.fido2 {
            fido2.end_session(touch);
        }
        self.current = Current::None;
    }

    /// Pulled out: also what only a power cycle clears.
    pub fn unplugged(&mut self, touch: &Touch) {
        self.end_session(touch);
        if let Some(piv) = &mut self.piv {
            piv.unplugged();
        }
    }

    /// Plugged in: FIDO2's per-power-cycle state (key agreement key, pinUvAuthToken, the
    /// wrong-PIN streak) starts afresh and the 10 s reset window opens.
    pub fn plugged(&mut self, touch: &Touch) {
        if let Some(fido2) = &mut self.fido2 {
            fido2.power_up(touch);
        }
    }
}
