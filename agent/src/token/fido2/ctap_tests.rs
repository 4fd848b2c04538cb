//! CTAP2 messages against independent encodings: requests byte for byte as python-fido2
//! 2.0.0's canonical CBOR encoder writes the same maps, a getInfo answer captured from a real
//! YubiKey Bio (published in ctap-hid-fido2's tests), and authenticator data laid out by hand
//! from WebAuthn §6.1.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn make_credential_encodes_like_python_fido2() {
    let req = make_credential(&MakeCredential {
        client_data_hash: &[0; 32],
        rp_id: "tapsign:",
        user_id: &[7; 16],
        display_name: "desk",
        pin_auth: Some((vec![9; 16], Protocol::One)),
    });
    let python = "a7015820000000000000000000000000000000000000000000000000000000000000000002a2626964687461707369676e3a646e616d65677461707369676e03a36269645007070707070707070707070707070707646e616d65677461707369676e6b646973706c61794e616d65646465736b0481a263616c672664747970656a7075626c69632d6b657906a16b686d61632d736563726574f50850090909090909090909090909090909090901";
    assert_eq!(req[0], MAKE_CREDENTIAL);
    assert_eq!(hex::encode(&req[1..]), python);
}

#[test]
fn the_silent_probe_encodes_like_python_fido2() {
    let req = get_assertion(&GetAssertion {
        rp_id: "tapsign:",
        client_data_hash: &[0; 32],
        credential_id: &[8; 20],
        up: false,
        hmac_secret: None,
        pin_auth: None,
    });
    let python = "a401687461707369676e3a02582000000000000000000000000000000000000000000000000000000000000000000381a262696454080808080808080808080808080808080808080864747970656a7075626c69632d6b657905a1627570f4";
    assert_eq!(req[0], GET_ASSERTION);
    assert_eq!(hex::encode(&req[1..]), python);
}

fn hmac_request(protocol: Protocol) -> Vec<u8> {
    let key_agreement = Value::int_map(vec![
        (1, Value::int(2)),
        (3, Value::int(-25)),
        (-1, Value::int(1)),
        (-2, Value::Bytes(vec![1; 32])),
        (-3, Value::Bytes(vec![2; 32])),
    ]);
    get_assertion(&GetAssertion {
        rp_id: "tapsign:",
        client_data_hash: &[0; 32],
        credential_id: &[8; 20],
        up: true,
        hmac_secret: Some(HmacSecretInput {
            key_agreement,
            salt_enc: vec![3; 48],
            salt_auth: vec![4; 32],
            protocol,
        }),
        pin_auth: Some((vec![5; 32], protocol)),
    })
}

#[test]
fn an_hmac_secret_assertion_encodes_like_python_fido2() {
    let python = "a601687461707369676e3a02582000000000000000000000000000000000000000000000000000000000000000000381a262696454080808080808080808080808080808080808080864747970656a7075626c69632d6b657904a16b686d61632d736563726574a401a501020338182001215820010101010101010101010101010101010101010101010101010101010101010122582002020202020202020202020202020202020202020202020202020202020202020258300303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030358200404040404040404040404040404040404040404040404040404040404040404040206582005050505050505050505050505050505050505050505050505050505050505050702";
    assert_eq!(hex::encode(&hmac_request(Protocol::Two)[1..]), python);
}

/// CTAP 2.1 §12.5: pinUvAuthProtocol goes in the hmac-secret input only when it is not One,
/// so a CTAP 2.0 authenticator sees only the keys it knows.
#[test]
fn protocol_one_leaves_the_hmac_secret_protocol_out() {
    let v = cbor::decode(&hmac_request(Protocol::One)[1..]).unwrap();
    let input = v.get(4).and_then(|e| e.get_text("hmac-secret")).unwrap();
    assert!(input.get(4).is_none());
    assert_eq!(v.get(7).and_then(Value::as_int), Some(1));
    let v = cbor::decode(&hmac_request(Protocol::Two)[1..]).unwrap();
    let input = v.get(4).and_then(|e| e.get_text("hmac-secret")).unwrap();
    assert_eq!(input.get(4).and_then(Value::as_int), Some(2));
}

#[test]
fn client_pin_requests_carry_protocol_and_subcommand() {
    let req = client_pin(Protocol::Two, pin_cmd::GET_RETRIES, vec![]);
    assert_eq!(hex::encode(req), "06a201020201");
    let req = client_pin(Protocol::One, pin_cmd::GET_KEY_AGREEMENT, vec![]);
    assert_eq!(hex::encode(req), "06a201010202");
}

/// A YubiKey Bio's getInfo answer, as ctap-hid-fido2 3.6.1's tests publish it.
const BIO_INFO: &str = "B30184665532465F5632684649444F5F325F306C4649444F5F325F315F505245684649444F5F325F3102856B6372656450726F746563746B686D61632D7365637265746C6C61726765426C6F624B65796863726564426C6F626C6D696E50696E4C656E6774680350D8522D9F575B486688A9BA99FA02F35B04B062726BF5627570F5627576F564706C6174F4677576546F6B656EF568616C776179735576F568637265644D676D74F569617574686E72436667F56962696F456E726F6C6CF569636C69656E7450696EF56A6C61726765426C6F6273F56E70696E557641757468546F6B656EF56F7365744D696E50494E4C656E677468F5706D616B654372656455764E6F74527164F47563726564656E7469616C4D676D7450726576696577F5781B75736572566572696669636174696F6E4D676D7450726576696577F5051904B00682020107080818800981637573620A82A263616C672664747970656A7075626C69632D6B6579A263616C672764747970656A7075626C69632D6B65790B1904000CF40D040E1A000505060F18201001110312021415";

#[test]
fn a_real_get_info_answer_parses() {
    let mut answer = vec![0u8];
    answer.extend(hex(BIO_INFO));
    let info = parse_info(&response(&answer).unwrap()).unwrap();
    assert_eq!(info.ctap_version(), "FIDO_2_1");
    assert!(info.has_extension("hmac-secret"));
    assert_eq!(info.aaguid_string(), "d8522d9f-575b-4866-88a9-ba99fa02f35b");
    assert_eq!(info.client_pin(), Some(true));
    assert!(info.has_token_permissions());
    assert_eq!(info.option("alwaysUv"), Some(true));
    assert_eq!(info.option("makeCredUvNotRqd"), Some(false));
    assert_eq!(info.option("noSuchOption"), None);
    assert_eq!(info.pin_protocols, vec![2, 1]);
}

#[test]
fn a_ctap2_0_get_info_without_options_parses() {
    // {1: ["FIDO_2_0"], 3: h'00..0f'}
    let v = cbor::decode(&hex(
        "a20181684649444f5f325f300350000102030405060708090a0b0c0d0e0f",
    ))
    .unwrap();
    let info = parse_info(&v).unwrap();
    assert_eq!(info.ctap_version(), "FIDO_2_0");
    assert_eq!(info.client_pin(), None);
    assert!(!info.has_token_permissions());
    assert!(info.pin_protocols.is_empty());
    assert!(parse_info(&Value::int_map(vec![])).is_err());
}

#[test]
fn a_failure_status_is_an_error_and_an_empty_success_is_an_empty_map() {
    assert_eq!(response(&[0x2E]).err(), Some(Fido2Error::Status(0x2E)));
    assert_eq!(response(&[0x00]).unwrap(), Value::Map(vec![]));
    assert!(matches!(response(&[]), Err(Fido2Error::Malformed(_))));
    assert!(matches!(
        response(&[0x00, 0xFF]),
        Err(Fido2Error::Malformed(_))
    ));
}

/// authData = rpIdHash(32) | flags | signCount(4) | [aaguid(16) | L(2) | credId(L) | COSE key]
/// | [extensions].
fn auth_data(flags: u8, cred: Option<&[u8]>, ext: Option<&Value>) -> Vec<u8> {
    let mut out = vec![0xAB; 32];
    out.push(flags);
    out.extend([0, 0, 0, 7]);
    if let Some(id) = cred {
        out.extend([0x11; 16]);
        out.extend((id.len() as u16).to_be_bytes());
        out.extend(id);
        out.extend(cbor::encode(&Value::int_map(vec![
            (1, Value::int(2)),
            (3, Value::int(-7)),
        ])));
    }
    if let Some(e) = ext {
        out.extend(cbor::encode(e));
    }
    out
}

#[test]
fn attested_authenticator_data_gives_the_credential_and_extensions() {
    let ext = Value::text_map(vec![("hmac-secret", Value::Bool(true))]);
    let data = auth_data(
        flag::UP | flag::UV | flag::AT | flag::ED,
        Some(&[0x42; 70]),
        Some(&ext),
    );
    let a = parse_auth_data(&data).unwrap();
    assert_eq!(a.rp_id_hash, [0xAB; 32]);
    assert!(a.up() && a.uv());
    assert_eq!(a.credential_id.as_deref(), Some(&[0x42; 70][..]));
    assert_eq!(a.aaguid, Some([0x11; 16]));
    assert_eq!(a.extensions, Some(ext));
}

#[test]
fn assertion_authenticator_data_has_flags_and_maybe_extensions() {
    let a = parse_auth_data(&auth_data(0, None, None)).unwrap();
    assert!(!a.up() && !a.uv());
    assert_eq!((a.credential_id, a.extensions), (None, None));
}

#[test]
fn damaged_authenticator_data_is_an_error() {
    let ext = Value::text_map(vec![("hmac-secret", Value::Bytes(vec![1; 32]))]);
    let good = auth_data(flag::UP | flag::AT | flag::ED, Some(&[1; 16]), Some(&ext));
    for cut in [
        0,
        31,
        33,
        36,
        37 + 16,
        37 + 17,
        37 + 18 + 15,
        good.len() - 1,
    ] {
        assert!(parse_auth_data(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(parse_auth_data(&trailing).is_err());
    // The ED flag set but nothing follows.
    assert!(parse_auth_data(&auth_data(flag::ED, None, None)).is_err());
}

#[test]
fn uuids_print_in_the_usual_form() {
    let b: [u8; 16] = hex("cb69481e8ff7403993ec0a2729a154a8").try_into().unwrap();
    assert_eq!(format_uuid(&b), "cb69481e-8ff7-4039-93ec-0a2729a154a8");
}
