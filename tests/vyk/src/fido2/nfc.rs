//! The CTAP ISO 7816 (NFC) binding (CTAP 2.1 §11.3) in front of the [`Authenticator`]:
//! SELECT of the FIDO AID, NFCCTAP_MSG (`80 10`), NFCCTAP_GETRESPONSE (`80 11`). Command
//! chaining (CLA `90`) and `61xx` + GET RESPONSE are done by [`crate::apdu::Chainer`] before
//! and after this layer.
//!
//! User presence: when NFCCTAP_MSG has P1 bit `80` set (the client can poll), a command that
//! waits for a touch answers `91 00` with the keepalive status UPNEEDED, and each
//! NFCCTAP_GETRESPONSE waits up to [`POLL_WAIT`] before answering `91 00` again or the final
//! answer with `90 00`. Without that bit the APDU blocks until the touch, like the PIV applet.

use std::time::Duration;

use super::{Authenticator, Fido2Config, Pending, Step};
use crate::apdu::{Command, Response, Sw};
use crate::touch::{Ticket, Touch};

/// The FIDO applet's AID.
pub const FIDO_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01];
/// SELECT's answer for a FIDO2-only authenticator (§11.3.3).
pub const VERSION_FIDO_2_0: &[u8] = b"FIDO_2_0";
const INS_NFCCTAP_MSG: u8 = 0x10;
const INS_NFCCTAP_GETRESPONSE: u8 = 0x11;
/// NFCCTAP_MSG P1: the client supports NFCCTAP_GETRESPONSE.
const P1_GETRESPONSE_SUPPORTED: u8 = 0x80;
/// `91 00`: status update, the data byte is the keepalive status.
pub const SW_STATUS_UPDATE: Sw = Sw(0x9100);
/// Keepalive status: waiting for user presence (CTAP 2.1 §11.2.9.1.3).
pub const STATUS_UPNEEDED: u8 = 0x02;
/// How long one NFCCTAP_GETRESPONSE waits for the touch before reporting "still waiting":
/// keeps a client that polls back-to-back from spinning.
pub const POLL_WAIT: Duration = Duration::from_millis(100);

/// The FIDO2 applet: the authenticator and the binding's session.
pub struct Fido2Applet {
    auth: Authenticator,
    selected: bool,
    pending: Option<(Pending, Ticket)>,
}

impl Fido2Applet {
    /// A factory-fresh applet (with the configured PIN, if any).
    pub fn new(config: Fido2Config) -> Fido2Applet {
        Fido2Applet {
            auth: Authenticator::new(config).unwrap_or_else(|s| {
                unreachable!("the OS RNG failed while making a test authenticator: {s:?}")
            }),
            selected: false,
            pending: None,
        }
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// SELECT of the FIDO AID.
    pub fn select(&mut self, touch: &Touch) -> Response {
        self.end_session(touch);
        self.selected = true;
        Response::ok(VERSION_FIDO_2_0.to_vec())
    }

    /// Power off, reset or another applet selected: the binding forgets its state; an open
    /// touch request is dropped.
    pub fn end_session(&mut self, touch: &Touch) {
        self.selected = false;
        self.abandon(touch);
    }

    /// Unplugged and plugged in again: a power cycle for the authenticator.
    pub fn power_up(&mut self, touch: &Touch) {
        self.end_session(touch);
        // Without randomness there is no new key agreement key; keep the old state then.
        let _ = self.auth.power_up();
    }

    fn abandon(&mut self, touch: &Touch) {
        if let Some((_, ticket)) = self.pending.take() {
            touch.abandon(ticket);
        }
    }

    /// One complete (unchained) command APDU for the selected applet.
    pub fn process(&mut self, cmd: &Command, touch: &Touch) -> Response {
        if !self.selected {
            return Sw::INS_NOT_SUPPORTED.into();
        }
        // CTAP uses CLA 80; some clients send 00 (the chain bit is gone by now).
        if cmd.cla & !0x80 != 0 {
            return Sw::CLA_NOT_SUPPORTED.into();
        }
        match cmd.ins {
            INS_NFCCTAP_MSG => self.message(cmd, touch),
            INS_NFCCTAP_GETRESPONSE => self.get_response(touch),
            // U2F (CTAP1) is not offered: SELECT answered FIDO_2_0 only.
            _ => Sw::INS_NOT_SUPPORTED.into(),
        }
    }

    fn message(&mut self, cmd: &Command, touch: &Touch) -> Response {
        // A new command replaces one still waiting for its touch.
        self.abandon(touch);
        if cmd.data.is_empty() {
            return Sw::WRONG_LENGTH.into();
        }
        match self.auth.handle(&cmd.data) {
            Step::Done(answer) => Response::ok(answer),
            Step::Touch(pending) if cmd.p1 & P1_GETRESPONSE_SUPPORTED != 0 => {
                let ticket = touch.begin();
                match touch.poll(&ticket, Duration::ZERO) {
                    Some(outcome) => Response::ok(self.auth.finish(pending, outcome)),
                    None => {
                        self.pending = Some((pending, ticket));
                        status_update()
                    }
                }
            }
            Step::Touch(pending) => {
                let outcome = touch.request();
                Response::ok(self.auth.finish(pending, outcome))
            }
        }
    }

    fn get_response(&mut self, touch: &Touch) -> Response {
        let Some((pending, ticket)) = self.pending.take() else {
            return Sw::CONDITIONS_NOT_SATISFIED.into();
        };
        match touch.poll(&ticket, POLL_WAIT) {
            Some(outcome) => Response::ok(self.auth.finish(pending, outcome)),
            None => {
                self.pending = Some((pending, ticket));
                status_update()
            }
        }
    }
}

fn status_update() -> Response {
    Response {
        data: vec![STATUS_UPNEEDED],
        sw: SW_STATUS_UPDATE,
    }
}
