//! The platform's side, for the unit tests: CTAP calls with the touch outcome chosen by the
//! test, key agreement, hmac-secret salts, registration. Written from the spec, apart from
//! the authenticator's code (only the symmetric primitives in `pin_uv` are shared).

use p256::{PublicKey, SecretKey};

use super::cbor::{self, Value};
use super::pin_uv::{Protocol, cose_ec2, random_secret};
use super::*;

pub const RP: &str = "tapsign.invalid";

pub fn auth() -> Authenticator {
    Authenticator::new(Fido2Config::default()).unwrap()
}

/// Sends `command` with `params`; returns the status and the decoded answer.
pub fn call(
    a: &mut Authenticator,
    command: u8,
    params: &Value,
    touch: TouchOutcome,
) -> (u8, Value) {
    let msg = message(command, params);
    let answer = match a.handle(&msg) {
        Step::Done(answer) => answer,
        Step::Touch(pending) => a.finish(pending, touch),
    };
    decode(&answer)
}

/// Like [`call`] but fails the test if the command asks for a touch.
pub fn call_no_touch(a: &mut Authenticator, command: u8, params: &Value) -> (u8, Value) {
    match a.handle(&message(command, params)) {
        Step::Done(answer) => decode(&answer),
        Step::Touch(_) => panic!("command {command:#04x} asked for a touch"),
    }
}

/// Command byte and CBOR; `Null` stands for "no parameters".
pub fn message(command: u8, params: &Value) -> Vec<u8> {
    let mut msg = vec![command];
    if *params != Value::Null {
        msg.extend(params.encode());
    }
    msg
}

fn decode(answer: &[u8]) -> (u8, Value) {
    let value = match &answer[1..] {
        [] => Value::Null,
        rest => cbor::decode(rest).unwrap(),
    };
    (answer[0], value)
}

pub fn map(pairs: Vec<(i64, Value)>) -> Value {
    Value::map(pairs)
}

pub fn descriptor(id: &[u8]) -> Value {
    Value::map([("id", Value::from(id)), ("type", Value::from("public-key"))])
}

/// makeCredential parameters for ES256 on [`RP`], plus `extra`.
pub fn mc_params(extra: Vec<(i64, Value)>) -> Value {
    let mut pairs = vec![
        (1, Value::from(vec![0xCD; 32])),
        (2, Value::map([("id", Value::from(RP))])),
        (
            3,
            Value::map([
                ("id", Value::from(&b"user"[..])),
                ("name", Value::from("u")),
            ]),
        ),
        (
            4,
            Value::Array(vec![Value::map([
                ("alg", Value::from(-7i64)),
                ("type", Value::from("public-key")),
            ])]),
        ),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| *key != k);
        pairs.push((k, v));
    }
    map(pairs)
}

/// A registered credential: its id and public key.
pub struct Registered {
    pub id: Vec<u8>,
    pub public: PublicKey,
}

/// Registers a credential with hmac-secret (and optional extra parameters).
pub fn register(a: &mut Authenticator, extra: Vec<(i64, Value)>) -> Registered {
    let mut extra = extra;
    if !extra.iter().any(|(k, _)| *k == 6) {
        extra.push((6, Value::map([("hmac-secret", Value::Bool(true))])));
    }
    let (status, answer) = call(
        a,
        CMD_MAKE_CREDENTIAL,
        &mc_params(extra),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0, "{answer:?}");
    let data = answer.get_int(2).unwrap().as_bytes().unwrap().to_vec();
    let id_len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    let id = data[55..55 + id_len].to_vec();
    let (cose, _) = cbor::decode_first(&data[55 + id_len..]).unwrap();
    let x = cose.get_int(-2).unwrap().as_bytes().unwrap();
    let y = cose.get_int(-3).unwrap().as_bytes().unwrap();
    let public = PublicKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).unwrap();
    Registered { id, public }
}

/// The platform's side of a key agreement: its COSE key and the shared secret.
pub struct Platform {
    pub protocol: Protocol,
    pub cose: Value,
    pub shared: Vec<u8>,
}

pub fn key_agreement(a: &mut Authenticator, protocol: Protocol) -> Platform {
    let req = map(vec![
        (1, Value::from(protocol.number())),
        (2, Value::from(2u64)),
    ]);
    let (status, answer) = call_no_touch(a, CMD_CLIENT_PIN, &req);
    assert_eq!(status, 0);
    let theirs = answer.get_int(1).unwrap();
    assert_eq!(theirs.get_int(3).and_then(Value::as_int), Some(-25));
    let x = theirs.get_int(-2).unwrap().as_bytes().unwrap();
    let y = theirs.get_int(-3).unwrap().as_bytes().unwrap();
    let peer = PublicKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).unwrap();
    let mine: SecretKey = random_secret().unwrap();
    let z = p256::ecdh::diffie_hellman(mine.to_nonzero_scalar(), peer.as_affine());
    Platform {
        protocol,
        cose: cose_ec2(&mine.public_key(), -25),
        shared: protocol.kdf(z.raw_secret_bytes()),
    }
}

/// The hmac-secret extension input for these salts (32 bytes each).
pub fn hmac_input(p: &Platform, salts: &[u8]) -> Value {
    let salt_enc = p.protocol.encrypt(&p.shared, salts).unwrap();
    let salt_auth = p.protocol.authenticate(&p.shared, &salt_enc);
    map(vec![
        (1, p.cose.clone()),
        (2, Value::from(salt_enc)),
        (3, Value::from(salt_auth)),
        (4, Value::from(p.protocol.number())),
    ])
}

pub fn ga_params(id: &[u8], extra: Vec<(i64, Value)>) -> Value {
    let mut pairs = vec![
        (1, Value::from(RP)),
        (2, Value::from(vec![0xAB; 32])),
        (3, Value::Array(vec![descriptor(id)])),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| *key != k);
        pairs.push((k, v));
    }
    map(pairs)
}

/// Runs getAssertion with hmac-secret over `salts` and returns the decrypted output and the
/// authenticator data flags.
pub fn hmac_eval(
    a: &mut Authenticator,
    id: &[u8],
    protocol: Protocol,
    salts: &[u8],
    extra: Vec<(i64, Value)>,
) -> (Vec<u8>, u8) {
    let p = key_agreement(a, protocol);
    let mut extra = extra;
    extra.push((4, Value::map([("hmac-secret", hmac_input(&p, salts))])));
    let (status, answer) = call(
        a,
        CMD_GET_ASSERTION,
        &ga_params(id, extra),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0, "{answer:?}");
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    let (ext, _) = cbor::decode_first(&data[37..]).unwrap();
    let enc = ext.get_text("hmac-secret").unwrap().as_bytes().unwrap();
    (protocol.decrypt(&p.shared, enc).unwrap(), data[32])
}

pub fn opts(pairs: &[(&str, bool)]) -> Value {
    Value::map(pairs.iter().map(|(k, v)| (*k, Value::Bool(*v))))
}
