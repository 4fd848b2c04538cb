//! The ISO 7816 binding as a client sees it: raw APDUs through the chaining layer and the
//! card's applet routing, with the touch sensor in each mode.

use std::time::Duration;

use super::cbor;
use super::test_platform::{mc_params, message};
use super::{CMD_GET_INFO, CMD_MAKE_CREDENTIAL, Fido2Config};
use crate::apdu::Chainer;
use crate::card::Applets;
use crate::config::Config;
use crate::touch::{Touch, TouchMode};

const SELECT_FIDO: [u8; 13] = [
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01,
];
const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];

struct Card {
    applets: Applets,
    chainer: Chainer,
    touch: Touch,
}

impl Card {
    fn new(config: Config) -> Card {
        Card {
            applets: Applets::new(&config),
            chainer: Chainer::default(),
            touch: Touch::default(),
        }
    }

    fn send(&mut self, apdu: &[u8]) -> (Vec<u8>, u16) {
        let (applets, touch) = (&mut self.applets, &self.touch);
        let mut out = self.chainer.handle(apdu, |cmd| applets.process(cmd, touch));
        let sw = out.split_off(out.len() - 2);
        (out, u16::from_be_bytes([sw[0], sw[1]]))
    }

    /// NFCCTAP_MSG as a short APDU (chained in 250-byte links when longer, as clients do).
    fn ctap(&mut self, p1: u8, msg: &[u8]) -> (Vec<u8>, u16) {
        let mut rest = msg;
        while rest.len() > 250 {
            let (link, tail) = rest.split_at(250);
            let apdu = [&[0x90, 0x10, p1, 0x00, 250][..], link].concat();
            assert_eq!(self.send(&apdu).1, 0x9000);
            rest = tail;
        }
        let len = u8::try_from(rest.len()).unwrap();
        let apdu = [&[0x80, 0x10, p1, 0x00, len][..], rest, &[0x00]].concat();
        self.collect(apdu)
    }

    /// Sends an APDU and follows `61xx` with GET RESPONSE (CLA 80, as CTAP clients may).
    fn collect(&mut self, apdu: Vec<u8>) -> (Vec<u8>, u16) {
        let (mut data, mut sw) = self.send(&apdu);
        while sw >> 8 == 0x61 {
            let (more, next) = self.send(&[0x80, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8]);
            data.extend(more);
            sw = next;
        }
        (data, sw)
    }
}

fn fido_key() -> Config {
    Config::with_fido2(Fido2Config::default())
}

#[test]
fn select_answers_the_fido_2_0_version_string() {
    let mut card = Card::new(fido_key());
    assert_eq!(card.send(&SELECT_FIDO), (b"FIDO_2_0".to_vec(), 0x9000));
}

#[test]
fn ctap_messages_need_the_applet_selected() {
    // Nothing selected: the PIV applet answers, and it knows no CLA 80.
    let mut card = Card::new(fido_key());
    assert_eq!(card.send(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x04]).1, 0x6E00);
    card.send(&SELECT_FIDO);
    let (data, sw) = card.send(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x04, 0x00]);
    assert_eq!((sw, data[0]), (0x9000, 0x00));
    assert!(cbor::decode(&data[1..]).is_ok());
    assert_eq!(
        card.send(&[0x80, 0x12, 0x00, 0x00]).1,
        0x6D00,
        "unknown INS"
    );
    assert_eq!(card.send(&[0x84, 0x10, 0x00, 0x00, 0x01, 0x04]).1, 0x6E00);
}

#[test]
fn extended_apdus_get_the_whole_answer_at_once() {
    let mut card = Card::new(fido_key());
    card.send(&SELECT_FIDO);
    let (data, sw) = card.send(&[0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00]);
    assert_eq!((sw, data[0]), (0x9000, 0x00));
    let info = cbor::decode(&data[1..]).unwrap();
    assert!(info.get_int(1).is_some());
}

#[test]
fn chained_commands_and_long_answers_round_trip() {
    let mut card = Card::new(fido_key());
    card.send(&SELECT_FIDO);
    // A long user name makes the request span several links.
    let mut msg = message(CMD_MAKE_CREDENTIAL, &mc_params(vec![]));
    let long = message(
        CMD_MAKE_CREDENTIAL,
        &mc_params(vec![(
            3,
            cbor::Value::map([
                ("id", cbor::Value::from(&b"user"[..])),
                ("name", cbor::Value::from("n".repeat(600).as_str())),
            ]),
        )]),
    );
    assert!(long.len() > 500);
    for m in [&mut msg, &mut long.clone()] {
        let (data, sw) = card.ctap(0x80, m);
        assert_eq!((sw, data[0]), (0x9000, 0x00));
        // The attestation answer is over 256 bytes: it came in 61xx pieces.
        assert!(data.len() > 256, "{}", data.len());
        let answer = cbor::decode(&data[1..]).unwrap();
        assert_eq!(answer.get_int(1), Some(&cbor::Value::from("packed")));
    }
}

#[test]
fn a_held_touch_answers_91_00_until_the_user_touches() {
    let mut card = Card::new(fido_key());
    card.touch.set_mode(TouchMode::Hold {
        timeout: Duration::from_secs(10),
    });
    card.send(&SELECT_FIDO);
    let msg = message(CMD_MAKE_CREDENTIAL, &mc_params(vec![]));
    assert_eq!(card.ctap(0x80, &msg), (vec![0x02], 0x9100));
    assert!(card.touch.is_waiting());
    assert_eq!(
        card.send(&[0x80, 0x11, 0x00, 0x00, 0x00]),
        (vec![0x02], 0x9100)
    );
    assert!(card.touch.touch());
    let (data, sw) = card.collect(vec![0x80, 0x11, 0x00, 0x00, 0x00]);
    assert_eq!((sw, data[0]), (0x9000, 0x00));
    assert_eq!(card.touch.touches(), 1);
    assert_eq!(
        card.send(&[0x80, 0x11, 0x00, 0x00, 0x00]).1,
        0x6985,
        "nothing pending"
    );
}

#[test]
fn denied_and_timed_out_touches_have_their_ctap_errors() {
    let mut card = Card::new(fido_key());
    card.send(&SELECT_FIDO);
    let msg = message(CMD_MAKE_CREDENTIAL, &mc_params(vec![]));
    let after = Duration::from_millis(30);
    card.touch.set_mode(TouchMode::Deny { after });
    // A client without NFCCTAP_GETRESPONSE support (P1 00) blocks in the APDU.
    assert_eq!(card.ctap(0x00, &msg), (vec![0x27], 0x9000));
    card.touch.set_mode(TouchMode::Hold { timeout: after });
    assert_eq!(card.ctap(0x80, &msg).1, 0x9100);
    std::thread::sleep(after);
    assert_eq!(
        card.send(&[0x80, 0x11, 0x00, 0x00, 0x00]),
        (vec![0x2F], 0x9000)
    );
    assert_eq!(card.touch.touches(), 0);
}

#[test]
fn another_command_or_a_reset_drops_the_waiting_request() {
    let mut card = Card::new(fido_key());
    card.send(&SELECT_FIDO);
    card.touch.set_mode(TouchMode::Hold {
        timeout: Duration::from_secs(10),
    });
    let msg = message(CMD_MAKE_CREDENTIAL, &mc_params(vec![]));
    assert_eq!(card.ctap(0x80, &msg).1, 0x9100);
    let (data, sw) = card.ctap(0x80, &[CMD_GET_INFO]);
    assert_eq!((sw, data[0]), (0x9000, 0x00));
    assert!(!card.touch.is_waiting());
    assert_eq!(card.ctap(0x80, &msg).1, 0x9100);
    card.applets.end_session(&card.touch);
    assert!(!card.touch.is_waiting());
    assert_eq!(
        card.send(&[0x80, 0x11, 0x00, 0x00, 0x00]).1,
        0x6E00,
        "deselected"
    );
}

#[test]
fn selecting_piv_ends_the_fido_session_and_back() {
    let mut card = Card::new(fido_key());
    card.send(&SELECT_FIDO);
    assert_eq!(card.send(&SELECT_PIV).1, 0x9000);
    assert_eq!(
        card.send(&[0x00, 0xFD, 0x00, 0x00, 0x00]),
        (vec![5, 4, 3], 0x9000)
    );
    assert_eq!(card.send(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x04]).1, 0x6E00);
    // A failed SELECT (OTP applet) leaves PIV selected.
    let select_otp = [
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01,
    ];
    assert_eq!(card.send(&select_otp).1, 0x6A82);
    assert_eq!(card.send(&[0x00, 0xFD, 0x00, 0x00, 0x00]).1, 0x9000);
    assert_eq!(card.send(&SELECT_FIDO).1, 0x9000);
    assert_eq!(card.send(&[0x00, 0xFD, 0x00, 0x00, 0x00]).1, 0x6D00);
}

#[test]
fn a_fido2_only_key_has_no_piv_and_a_piv_only_key_no_fido() {
    let mut fido_only = Card::new(Config::fido2_only(Fido2Config::default()));
    assert_eq!(fido_only.send(&SELECT_PIV).1, 0x6A82);
    assert_eq!(fido_only.send(&[0x00, 0xFD, 0x00, 0x00, 0x00]).1, 0x6D00);
    assert_eq!(
        fido_only.send(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x04]).1,
        0x6D00
    );
    assert_eq!(fido_only.send(&SELECT_FIDO).1, 0x9000);
    let mut piv_only = Card::new(Config::default());
    assert_eq!(piv_only.send(&SELECT_FIDO).1, 0x6A82);
    assert_eq!(piv_only.send(&SELECT_PIV).1, 0x9000);
}
