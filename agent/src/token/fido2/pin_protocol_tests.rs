//! The PIN/UV protocols against independent results. The vectors marked "python-fido2" were
//! computed with python-fido2 2.0.0's own `PinProtocolV1` / `PinProtocolV2` (Yubico's
//! client library), with the platform key pinned to the scalar 0x11..11, the authenticator's
//! to 0x22..22, the IV to 0xa5..a5, the salt to 00 01 .. 1f.

use super::*;
use crate::token::fido2::cbor;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).unwrap()
}

fn salt() -> Vec<u8> {
    (0u8..32).collect()
}

const PLATFORM_COSE: &str = "a5010203381820012158200217e617f0b6443928278f96999e69a23a4f2c152bdf6d6cdf66e5b80282d4ed225820194a7debcb97712d2dda3ca85aa8765a56f45fc758599652f2897c65306e5794";
const PEER_COSE: &str = "a501020338182001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285";

fn agree(protocol: Protocol) -> (Value, SharedSecret) {
    let peer = cbor::decode(&hex(PEER_COSE)).unwrap();
    encapsulate_with(protocol, &peer, &key(0x11)).unwrap()
}

#[test]
fn the_authenticators_cose_key_encodes_like_python_fido2() {
    assert_eq!(
        hex::encode(cbor::encode(&cose_key(&key(0x22).public_key()))),
        PEER_COSE
    );
}

#[test]
fn protocol_one_matches_python_fido2() {
    let (platform, shared) = agree(Protocol::One);
    assert_eq!(hex::encode(cbor::encode(&platform)), PLATFORM_COSE);
    assert_eq!(
        hex::encode(&*shared.key),
        "98f5bf15dbc72627acd9a8ab61ce21349ea3496d79136adf08ad381cc9c0fa25"
    );
    let enc = shared.encrypt(&salt()).unwrap();
    assert_eq!(
        hex::encode(&enc),
        "3a6fce1f2c0517ade8dc3b3f9f6dbb4b735732c052d19aafbcf85f336946cd07"
    );
    assert_eq!(
        hex::encode(shared.authenticate(&enc)),
        "70639a4c02bdc71241058b44c66bf279"
    );
    assert_eq!(&shared.decrypt(&enc).unwrap()[..], &salt()[..]);
}

#[test]
fn protocol_two_matches_python_fido2() {
    let (platform, shared) = agree(Protocol::Two);
    assert_eq!(hex::encode(cbor::encode(&platform)), PLATFORM_COSE);
    assert_eq!(
        hex::encode(&*shared.key),
        "abc3809533cb07b6ae481ea05b28ac708ffed9777147a09aabc8ab58e167ba0e\
         aecad75245932defecf4cd0d93420fcd05d99403d09a49655fed76fa64c2cf82"
    );
    let enc = shared.encrypt_with_iv(&[0xA5; 16], &salt());
    assert_eq!(
        hex::encode(&enc),
        "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5\
         d7ed7e407111293767bec549d45714d88338e65dfcc3d8f126e1b91b7a8f219e"
    );
    assert_eq!(
        hex::encode(shared.authenticate(&enc)),
        "0e6b1a9488aaf99a8a7e37d4168e265e267ec1cde570f9b3a8497d691d73f926"
    );
    assert_eq!(&shared.decrypt(&enc).unwrap()[..], &salt()[..]);
}

#[test]
fn protocol_two_draws_a_fresh_iv_per_encryption() {
    let (_, shared) = agree(Protocol::Two);
    let a = shared.encrypt(&salt()).unwrap();
    let b = shared.encrypt(&salt()).unwrap();
    assert_eq!(a.len(), 16 + 32);
    assert_ne!(a[..16], b[..16]);
    assert_eq!(
        &shared.decrypt(&a).unwrap()[..],
        &shared.decrypt(&b).unwrap()[..]
    );
}

#[test]
fn authenticating_with_a_pin_token_matches_python_fido2() {
    let msg = b"tapsign test message";
    assert_eq!(
        hex::encode(authenticate(Protocol::One, &[0x33; 32], msg)),
        "11a7c26093e36d0feec146bf321d9795"
    );
    assert_eq!(
        hex::encode(authenticate(Protocol::Two, &[0x33; 32], msg)),
        "11a7c26093e36d0feec146bf321d97953eef7c760dcb637fcf24a23beaa6fcf9"
    );
}

#[test]
fn pin_hash_is_the_left_half_of_sha256() {
    assert_eq!(
        hex::encode(&*pin_hash("123456")),
        "8d969eef6ecad3c29a3a629280e686cf"
    );
}

/// NIST SP 800-38A F.2.5 (CBC-AES256.Encrypt) and F.2.6 (Decrypt).
#[test]
fn aes_256_cbc_matches_nist_sp_800_38a() {
    let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let plain = hex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
    );
    let cipher = hex(
        "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
         39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
    );
    assert_eq!(cbc_encrypt(&key, &iv, &plain), cipher);
    assert_eq!(&cbc_decrypt(&key, &iv, &cipher).unwrap()[..], &plain[..]);
}

#[test]
fn ciphertexts_that_are_not_whole_blocks_are_refused() {
    let (_, one) = agree(Protocol::One);
    let (_, two) = agree(Protocol::Two);
    assert_eq!(
        one.decrypt(&[0; 31]).err(),
        Some(ProtocolError::BadCiphertext)
    );
    assert_eq!(
        two.decrypt(&[0; 15]).err(),
        Some(ProtocolError::BadCiphertext)
    );
    assert_eq!(
        two.decrypt(&[0; 40]).err(),
        Some(ProtocolError::BadCiphertext)
    );
    assert!(two.decrypt(&[0; 16]).unwrap().is_empty());
}

#[test]
fn a_bad_peer_key_is_refused() {
    let good = cbor::decode(&hex(PEER_COSE)).unwrap();
    let with = |label: i64, v: Value| {
        let Value::Map(mut m) = good.clone() else {
            unreachable!()
        };
        m.retain(|(k, _)| *k != Value::int(label));
        m.push((Value::int(label), v));
        Value::Map(m)
    };
    for bad in [
        with(1, Value::int(1)),
        with(-1, Value::int(2)),
        with(-2, Value::Bytes(vec![1; 31])),
        with(-3, Value::Bytes(vec![1; 32])),
        Value::Null,
    ] {
        assert!(
            matches!(
                encapsulate(Protocol::Two, &bad),
                Err(ProtocolError::BadPeerKey(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn two_is_preferred_and_ctap_2_0_speaks_one() {
    assert_eq!(Protocol::choose(&[1, 2]), Some(Protocol::Two));
    assert_eq!(Protocol::choose(&[2]), Some(Protocol::Two));
    assert_eq!(Protocol::choose(&[1]), Some(Protocol::One));
    assert_eq!(Protocol::choose(&[]), Some(Protocol::One));
    assert_eq!(Protocol::choose(&[3]), None);
}
