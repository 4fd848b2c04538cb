//! authenticatorGetInfo (CTAP 2.1 §6.4).

use super::cbor::Value;
use super::credential::ID_LEN;
use super::{Authenticator, MAX_CREDS_IN_LIST, MAX_MSG_SIZE};

pub fn get_info(auth: &Authenticator) -> Value {
    let c = &auth.config;
    let mut versions = vec![Value::from("FIDO_2_0")];
    if c.ctap21 {
        versions.push(Value::from("FIDO_2_1"));
    }
    let mut extensions = vec![Value::from("hmac-secret")];
    if c.ctap21 {
        extensions.insert(0, Value::from("credProtect"));
    }
    let mut options = vec![
        // Non-discoverable credentials only: nothing is stored per credential.
        ("rk", false),
        ("up", true),
        ("plat", false),
        ("clientPin", auth.has_pin()),
    ];
    if c.ctap21 {
        options.push(("pinUvAuthToken", true));
        options.push(("makeCredUvNotRqd", c.make_cred_uv_not_rqd));
        if c.always_uv {
            options.push(("alwaysUv", true));
        }
    }
    let protocols = c
        .pin_protocols
        .iter()
        .map(|p| Value::from(p.number()))
        .collect();
    let mut info = vec![
        (1i64, Value::Array(versions)),
        (2, Value::Array(extensions)),
        (3, Value::from(&c.aaguid[..])),
        (
            4,
            Value::map(options.into_iter().map(|(k, v)| (k, Value::Bool(v)))),
        ),
        (5, Value::from(MAX_MSG_SIZE as u64)),
        (6, Value::Array(protocols)),
    ];
    if c.ctap21 {
        info.extend([
            (7, Value::from(MAX_CREDS_IN_LIST as u64)),
            (8, Value::from(ID_LEN as u64)),
            (
                9,
                Value::Array(vec![Value::from("nfc"), Value::from("usb")]),
            ),
            (
                10,
                Value::Array(vec![Value::map([
                    ("alg", Value::from(-7i64)),
                    ("type", Value::from("public-key")),
                ])]),
            ),
            (13, Value::from(4u64)),
        ]);
    }
    Value::map(info)
}
