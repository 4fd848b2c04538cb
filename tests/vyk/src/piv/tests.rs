//! The applet as a pure state machine: APDUs in, responses out, no vpcd or pcscd. These run
//! anywhere (no root); the PC/SC-level tests are in `tests/`.

use super::*;
use crate::touch::TouchMode;

fn apdu(hex: &str) -> Command {
    let bytes: Vec<u8> = hex
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    Command::parse(&bytes).unwrap()
}

fn card(version: [u8; 3]) -> (Piv, Touch) {
    let mut piv = Piv::new(Config {
        version,
        ..Config::default()
    });
    let touch = Touch::new(TouchMode::Approve);
    let r = piv.process(&apdu("00 A4 04 00 05 A0 00 00 03 08"), &touch);
    assert_eq!(r.sw, Sw::OK);
    (piv, touch)
}

const VERIFY_DEFAULT_PIN: &str = "00 20 00 80 08 31 32 33 34 35 36 FF FF";
const GENERATE_9D_TOUCH_ALWAYS: &str = "00 47 00 9D 0B AC 09 80 01 11 AA 01 02 AB 01 02";

/// Authenticates with the factory key by playing the host side.
fn authenticate(piv: &mut Piv, touch: &Touch) {
    let alg = piv.mgm.alg;
    let p1 = alg.id();
    let witness_request = Command {
        cla: 0,
        ins: 0x87,
        p1,
        p2: 0x9B,
        data: vec![0x7C, 2, 0x80, 0],
        le: None,
    };
    let r = piv.process(&witness_request, touch);
    let mut witness = r.data[4..].to_vec();
    decrypt_with_factory_key(alg, &mut witness);
    let block = alg.block_len();
    let mut body = crate::tlv::tlv(&[0x80], &witness);
    body.extend(crate::tlv::tlv(&[0x81], &vec![7; block]));
    let answer = Command {
        data: crate::tlv::tlv(&[0x7C], &body),
        ..witness_request
    };
    assert_eq!(piv.process(&answer, touch).sw, Sw::OK);
}

/// The host side's half: decrypt the card's witness with the factory key.
fn decrypt_with_factory_key(alg: MgmAlg, block: &mut [u8]) {
    use aes::Aes192;
    use des::TdesEde3;
    use des::cipher::{BlockCipherDecrypt, KeyInit};
    match alg {
        MgmAlg::Tdes => TdesEde3::new_from_slice(&mgm::DEFAULT_KEY)
            .unwrap()
            .decrypt_block(block.try_into().unwrap()),
        MgmAlg::Aes192 => Aes192::new_from_slice(&mgm::DEFAULT_KEY)
            .unwrap()
            .decrypt_block(block.try_into().unwrap()),
        _ => unreachable!("only factory keys here"),
    }
}

#[test]
fn commands_before_select_are_refused() {
    let piv_config = Config::default();
    let mut piv = Piv::new(piv_config);
    let touch = Touch::default();
    assert_eq!(
        piv.process(&apdu("00 FD 00 00 00"), &touch).sw,
        Sw::INS_NOT_SUPPORTED
    );
    assert_eq!(
        piv.process(&apdu("00 A4 04 00 05 A0 00 00 05 27"), &touch)
            .sw,
        Sw::NOT_FOUND
    );
}

#[test]
fn select_forgets_the_pin() {
    let (mut piv, touch) = card([5, 4, 3]);
    assert_eq!(piv.process(&apdu(VERIFY_DEFAULT_PIN), &touch).sw, Sw::OK);
    assert_eq!(piv.process(&apdu("00 20 00 80 00"), &touch).sw, Sw::OK);
    piv.process(&apdu("00 A4 04 00 05 A0 00 00 03 08"), &touch);
    assert_eq!(piv.process(&apdu("00 20 00 80 00"), &touch).sw, Sw(0x63C3));
}

#[test]
fn generate_without_management_key_is_6982() {
    let (mut piv, touch) = card([5, 7, 1]);
    let r = piv.process(&apdu(GENERATE_9D_TOUCH_ALWAYS), &touch);
    assert_eq!(r.sw, Sw::SECURITY_STATUS);
}

#[test]
fn ecdh_answers_the_raw_x_coordinate_after_one_touch() {
    for version in [[5, 4, 3], [5, 7, 1]] {
        let (mut piv, touch) = card(version);
        authenticate(&mut piv, &touch);
        let r = piv.process(&apdu(GENERATE_9D_TOUCH_ALWAYS), &touch);
        assert_eq!(
            (r.sw, &r.data[..5]),
            (Sw::OK, &[0x7F, 0x49, 0x43, 0x86, 0x41][..])
        );
        let card_point = r.data[5..].to_vec();
        piv.process(&apdu(VERIFY_DEFAULT_PIN), &touch);
        // ECDH with our own public point is as good a peer as any.
        let mut ecdh = vec![0x7C, 0x45, 0x82, 0x00, 0x85, 0x41];
        ecdh.extend(&card_point);
        let cmd = Command {
            cla: 0,
            ins: 0x87,
            p1: 0x11,
            p2: 0x9D,
            data: ecdh,
            le: None,
        };
        let r = piv.process(&cmd, &touch);
        assert_eq!(
            (r.sw, &r.data[..4]),
            (Sw::OK, &[0x7C, 0x22, 0x82, 0x20][..])
        );
        assert_eq!(touch.touches(), 1);
    }
}

#[test]
fn denied_touch_is_6982_and_no_result() {
    let (mut piv, touch) = card([5, 4, 3]);
    authenticate(&mut piv, &touch);
    piv.process(&apdu(GENERATE_9D_TOUCH_ALWAYS), &touch);
    piv.process(&apdu(VERIFY_DEFAULT_PIN), &touch);
    touch.set_mode(TouchMode::Deny {
        after: std::time::Duration::ZERO,
    });
    let hash = " 11".repeat(32);
    let sign = apdu(&format!("00 87 11 9D 26 7C 24 82 00 81 20{hash}"));
    let r = piv.process(&sign, &touch);
    assert_eq!((r.sw, r.data.len()), (Sw::SECURITY_STATUS, 0));
}

#[test]
fn reset_is_refused_until_pin_and_puk_are_blocked() {
    let (mut piv, touch) = card([5, 4, 3]);
    assert_eq!(
        piv.process(&apdu("00 FB 00 00"), &touch).sw,
        Sw::CONDITIONS_NOT_SATISFIED
    );
    for _ in 0..3 {
        piv.process(&apdu("00 20 00 80 08 30 30 30 30 30 30 FF FF"), &touch);
        let wrong_puk = "00 24 00 81 10 30 30 30 30 30 30 30 30 31 31 31 31 31 31 31 31";
        piv.process(&apdu(wrong_puk), &touch);
    }
    assert_eq!(piv.process(&apdu("00 FB 00 00"), &touch).sw, Sw::OK);
    assert_eq!(piv.process(&apdu(VERIFY_DEFAULT_PIN), &touch).sw, Sw::OK);
}

#[test]
fn metadata_needs_firmware_5_3() {
    let (mut old, touch) = card([5, 2, 7]);
    assert_eq!(
        old.process(&apdu("00 F7 00 9B 00"), &touch).sw,
        Sw::INS_NOT_SUPPORTED
    );
    let (mut new, touch) = card([5, 7, 1]);
    let r = new.process(&apdu("00 F7 00 9B 00"), &touch);
    // AES-192, touch Never, still the default key.
    assert_eq!(r.data, [1, 1, 0x0A, 2, 2, 0, 1, 5, 1, 1]);
    let r = new.process(&apdu("00 F7 00 80 00"), &touch);
    assert_eq!(r.data, [1, 1, 0xFF, 5, 1, 1, 6, 2, 3, 3]);
    assert_eq!(
        new.process(&apdu("00 F7 00 82 00"), &touch).sw,
        Sw::REFERENCE_NOT_FOUND
    );
}

#[test]
fn printed_object_needs_the_pin() {
    let (mut piv, touch) = card([5, 4, 3]);
    let get = apdu("00 CB 3F FF 05 5C 03 5F C1 09 00");
    assert_eq!(piv.process(&get, &touch).sw, Sw::SECURITY_STATUS);
    piv.process(&apdu(VERIFY_DEFAULT_PIN), &touch);
    assert_eq!(piv.process(&get, &touch).sw, Sw::NOT_FOUND);
}

/// What `tapsign token add --piv` relies on when it replaces a 3DES factory key with an
/// AES-192 one (firmware-notes/default-management-key.md): from 5.4.2 SET MANAGEMENT KEY takes
/// algorithm `0A`, the metadata then reports `0A` and no longer the default, the card
/// authenticates in AES (16-byte witness) and refuses a 3DES request with `6A80`; before
/// 5.4.2 an AES key is refused and the 3DES one stays.
#[test]
fn an_aes_192_management_key_replaces_a_3des_one_from_5_4_2() {
    // The factory bytes, as AES-192: the host-side helper decrypts with them in the card's
    // current algorithm.
    const SET_AES192: &str = "00 FF FF FF 1B 0A 9B 18 \
        01 02 03 04 05 06 07 08 01 02 03 04 05 06 07 08 01 02 03 04 05 06 07 08";
    let (mut piv, touch) = card([5, 4, 3]);
    authenticate(&mut piv, &touch);
    assert_eq!(piv.process(&apdu(SET_AES192), &touch).sw, Sw::OK);
    let r = piv.process(&apdu("00 F7 00 9B 00"), &touch);
    assert_eq!(r.data[..3], [1, 1, 0x0A]);
    let tdes = piv.process(&apdu("00 87 03 9B 04 7C 02 80 00"), &touch);
    assert_eq!(tdes.sw, Sw::WRONG_DATA);
    let aes = piv.process(&apdu("00 87 0A 9B 04 7C 02 80 00"), &touch);
    assert_eq!((aes.sw, aes.data.len()), (Sw::OK, 4 + 16));
    authenticate(&mut piv, &touch);

    let (mut old, touch) = card([5, 4, 1]);
    authenticate(&mut old, &touch);
    assert_eq!(old.process(&apdu(SET_AES192), &touch).sw, Sw::WRONG_DATA);
    assert_eq!(old.mgm.alg, MgmAlg::Tdes);
}
