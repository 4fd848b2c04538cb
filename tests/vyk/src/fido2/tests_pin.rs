//! authenticatorClientPIN and the pinUvAuthToken in makeCredential/getAssertion, each error
//! path with the spec's status code. The platform side comes from `tests.rs`.

use super::cbor::Value;
use super::pin_uv::Protocol;
use super::test_platform::{
    Platform, call, call_no_touch, ga_params, hmac_eval, key_agreement, mc_params, register,
};
use super::*;

const PIN: &str = "1234";

fn with_pin(pin: Option<&str>) -> Authenticator {
    Authenticator::new(Fido2Config {
        pin: pin.map(str::to_owned),
        ..Fido2Config::default()
    })
    .unwrap()
}

fn pin_req(p: &Platform, sub: u64, extra: Vec<(i64, Value)>) -> Value {
    let mut pairs = vec![
        (1i64, Value::from(p.protocol.number())),
        (2, Value::from(sub)),
        (3, p.cose.clone()),
    ];
    pairs.extend(extra);
    Value::map(pairs)
}

fn padded(pin: &str) -> Vec<u8> {
    let mut out = pin.as_bytes().to_vec();
    out.resize(64, 0);
    out
}

fn pin_hash_enc(p: &Platform, pin: &str) -> Value {
    let hash = &sha256(pin.as_bytes())[..16];
    Value::from(p.protocol.encrypt(&p.shared, hash).unwrap())
}

/// getPinUvAuthTokenUsingPinWithPermissions (or legacy getPinToken when `perms` is None):
/// the status and, on success, the decrypted token.
fn token(
    a: &mut Authenticator,
    protocol: Protocol,
    pin: &str,
    perms: Option<(u64, &str)>,
) -> (u8, Vec<u8>) {
    let p = key_agreement(a, protocol);
    let mut extra = vec![(6, pin_hash_enc(&p, pin))];
    let sub = match perms {
        Some((bits, rp)) => {
            extra.push((9, Value::from(bits)));
            extra.push((10, Value::from(rp)));
            9
        }
        None => 5,
    };
    let (status, answer) = call_no_touch(a, CMD_CLIENT_PIN, &pin_req(&p, sub, extra));
    let token = answer
        .get_int(2)
        .and_then(Value::as_bytes)
        .map(|enc| p.protocol.decrypt(&p.shared, enc).unwrap())
        .unwrap_or_default();
    (status, token)
}

fn retries(a: &mut Authenticator) -> (i128, bool) {
    let req = Value::map([(1i64, Value::from(2u64)), (2, Value::from(1u64))]);
    let (status, answer) = call_no_touch(a, CMD_CLIENT_PIN, &req);
    assert_eq!(status, 0);
    (
        answer.get_int(3).and_then(Value::as_int).unwrap(),
        answer.get_int(4).and_then(Value::as_bool).unwrap(),
    )
}

fn set_pin(a: &mut Authenticator, protocol: Protocol, new: &[u8]) -> u8 {
    let p = key_agreement(a, protocol);
    let enc = p.protocol.encrypt(&p.shared, new).unwrap();
    let param = p.protocol.authenticate(&p.shared, &enc);
    let req = pin_req(&p, 3, vec![(4, Value::from(param)), (5, Value::from(enc))]);
    call_no_touch(a, CMD_CLIENT_PIN, &req).0
}

#[test]
fn set_pin_then_retries_and_a_token_in_both_protocols() {
    let mut a = with_pin(None);
    assert_eq!(set_pin(&mut a, Protocol::Two, &padded(PIN)), 0);
    assert_eq!(retries(&mut a), (8, false));
    for protocol in [Protocol::One, Protocol::Two] {
        let (status, t) = token(&mut a, protocol, PIN, Some((3, "tapsign.invalid")));
        assert_eq!((status, t.len()), (0, 32));
        let (status, t) = token(&mut a, protocol, PIN, None);
        assert_eq!((status, t.len()), (0, 32));
    }
    assert_eq!(
        set_pin(&mut a, Protocol::One, &padded("5678")),
        0x30,
        "already set"
    );
}

#[test]
fn set_pin_errors() {
    let mut a = with_pin(None);
    assert_eq!(
        set_pin(&mut a, Protocol::Two, &padded("123")),
        0x37,
        "too short"
    );
    assert_eq!(
        set_pin(&mut a, Protocol::Two, &[b'1'; 64]),
        0x37,
        "no padding"
    );
    assert_eq!(set_pin(&mut a, Protocol::Two, &padded(PIN)[..48]), 0x02);
    // Four code points in more bytes is fine.
    assert_eq!(set_pin(&mut a, Protocol::Two, &padded("ééé1")), 0);
    let mut a = with_pin(None);
    let p = key_agreement(&mut a, Protocol::Two);
    let enc = p.protocol.encrypt(&p.shared, &padded(PIN)).unwrap();
    let bad = pin_req(
        &p,
        3,
        vec![(4, Value::from(vec![0u8; 32])), (5, Value::from(enc))],
    );
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &bad).0, 0x33);
    let missing = pin_req(&p, 3, vec![]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &missing).0, 0x14);
    let unknown = Value::map([(1i64, Value::from(2u64)), (2, Value::from(0x0Fu64))]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &unknown).0, 0x3E);
    let no_sub = Value::map([(1i64, Value::from(2u64))]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &no_sub).0, 0x14);
    assert_eq!(
        token(&mut a, Protocol::Two, PIN, None).0,
        0x35,
        "no PIN yet"
    );
}

#[test]
fn wrong_pins_cost_tries_and_three_in_a_row_need_a_power_cycle() {
    let mut a = with_pin(Some(PIN));
    assert_eq!(token(&mut a, Protocol::Two, "0000", None).0, 0x31);
    assert_eq!(retries(&mut a), (7, false));
    assert_eq!(token(&mut a, Protocol::One, "0000", None).0, 0x31);
    assert_eq!(token(&mut a, Protocol::Two, "0000", None).0, 0x34);
    assert_eq!(retries(&mut a), (5, true));
    assert_eq!(
        token(&mut a, Protocol::Two, PIN, None).0,
        0x34,
        "blocked until re-plug"
    );
    assert_eq!(retries(&mut a).0, 5, "a blocked attempt costs nothing");
    a.power_up().unwrap();
    assert_eq!(retries(&mut a), (5, false));
    assert_eq!(token(&mut a, Protocol::Two, PIN, None).0, 0);
    assert_eq!(
        retries(&mut a),
        (8, false),
        "a right PIN restores the count"
    );
}

#[test]
fn the_last_try_blocks_the_pin_for_good() {
    let mut a = with_pin(Some(PIN));
    let mut last = 0;
    for i in 0..8 {
        if i % 3 == 0 {
            a.power_up().unwrap();
        }
        last = token(&mut a, Protocol::Two, "0000", None).0;
    }
    assert_eq!(last, 0x32);
    assert_eq!(retries(&mut a).0, 0);
    a.power_up().unwrap();
    assert_eq!(token(&mut a, Protocol::Two, PIN, None).0, 0x32);
}

#[test]
fn a_wrong_pin_regenerates_the_key_agreement_key() {
    let mut a = with_pin(Some(PIN));
    let p = key_agreement(&mut a, Protocol::Two);
    let req = pin_req(&p, 5, vec![(6, pin_hash_enc(&p, "0000"))]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &req).0, 0x31);
    // The same platform key and the right PIN no longer meet: the secret changed.
    let req = pin_req(&p, 5, vec![(6, pin_hash_enc(&p, PIN))]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &req).0, 0x31);
}

#[test]
fn token_request_errors() {
    let mut a = with_pin(Some(PIN));
    let p = key_agreement(&mut a, Protocol::Two);
    let base = |extra: Vec<(i64, Value)>| {
        let mut e = vec![(6, pin_hash_enc(&p, PIN))];
        e.extend(extra);
        e
    };
    let cases = [
        (9, base(vec![(10, Value::from("rp"))]), 0x14),
        (
            9,
            base(vec![(9, Value::from(0u64)), (10, Value::from("rp"))]),
            0x02,
        ),
        (
            9,
            base(vec![(9, Value::from(4u64)), (10, Value::from("rp"))]),
            0x40,
        ),
        (9, base(vec![(9, Value::from(1u64))]), 0x14),
        (5, base(vec![(9, Value::from(1u64))]), 0x02),
        (5, base(vec![(10, Value::from("rp"))]), 0x02),
    ];
    for (sub, extra, want) in cases {
        let req = pin_req(&p, sub, extra);
        assert_eq!(
            call_no_touch(&mut a, CMD_CLIENT_PIN, &req).0,
            want,
            "{req:?}"
        );
    }
    assert_eq!(retries(&mut a).0, 8, "refused requests cost no tries");
    let old = Authenticator::new(Fido2Config {
        ctap21: false,
        pin: Some(PIN.into()),
        ..Fido2Config::default()
    });
    let mut old = old.unwrap();
    assert_eq!(token(&mut old, Protocol::Two, PIN, Some((1, "rp"))).0, 0x3E);
}

#[test]
fn change_pin_checks_the_old_one() {
    let mut a = with_pin(Some(PIN));
    let change = |a: &mut Authenticator, old: &str, new: &str| {
        let p = key_agreement(a, Protocol::One);
        let new_enc = p.protocol.encrypt(&p.shared, &padded(new)).unwrap();
        let old_enc = p
            .protocol
            .encrypt(&p.shared, &sha256(old.as_bytes())[..16])
            .unwrap();
        let param = p
            .protocol
            .authenticate(&p.shared, &[&new_enc[..], &old_enc].concat());
        let req = pin_req(
            &p,
            4,
            vec![
                (4, Value::from(param)),
                (5, Value::from(new_enc)),
                (6, Value::from(old_enc)),
            ],
        );
        call_no_touch(a, CMD_CLIENT_PIN, &req).0
    };
    assert_eq!(change(&mut a, "9999", "5678"), 0x31);
    assert_eq!(change(&mut a, PIN, "56"), 0x37);
    assert_eq!(change(&mut a, PIN, "5678"), 0);
    assert_eq!(token(&mut a, Protocol::Two, PIN, None).0, 0x31);
    assert_eq!(token(&mut a, Protocol::Two, "5678", None).0, 0);
}

fn param(protocol: Protocol, token: &[u8], cdh: &[u8]) -> Vec<(i64, Value)> {
    vec![
        (0, Value::from(protocol.authenticate(token, cdh))),
        (1, Value::from(protocol.number())),
    ]
}

/// makeCredential/getAssertion extras for pinUvAuthParam at `key`, protocol at `key + 1`.
fn auth_extra(protocol: Protocol, token: &[u8], cdh: &[u8], key: i64) -> Vec<(i64, Value)> {
    param(protocol, token, cdh)
        .into_iter()
        .map(|(k, v)| (k + key, v))
        .collect()
}

#[test]
fn with_a_pin_set_make_credential_follows_make_cred_uv_not_rqd() {
    let mut a = with_pin(Some(PIN));
    assert_eq!(
        call(
            &mut a,
            CMD_MAKE_CREDENTIAL,
            &mc_params(vec![]),
            TouchOutcome::Touched
        )
        .0,
        0
    );
    let mut strict = Authenticator::new(Fido2Config {
        pin: Some(PIN.into()),
        make_cred_uv_not_rqd: false,
        ..Fido2Config::default()
    })
    .unwrap();
    assert_eq!(
        call_no_touch(&mut strict, CMD_MAKE_CREDENTIAL, &mc_params(vec![])).0,
        0x36
    );
    let (_, t) = token(
        &mut strict,
        Protocol::Two,
        PIN,
        Some((1, super::test_platform::RP)),
    );
    let extra = auth_extra(Protocol::Two, &t, &[0xCD; 32], 8);
    let (status, answer) = call(
        &mut strict,
        CMD_MAKE_CREDENTIAL,
        &mc_params(extra.clone()),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0);
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    assert_eq!(data[32] & FLAG_UV, FLAG_UV);
    // The touch spent the token's permissions: it cannot make a second credential.
    assert_eq!(
        call_no_touch(&mut strict, CMD_MAKE_CREDENTIAL, &mc_params(extra)).0,
        0x33
    );
}

#[test]
fn always_uv_needs_a_token_but_not_for_the_preflight() {
    let mut a = Authenticator::new(Fido2Config {
        pin: Some(PIN.into()),
        always_uv: true,
        ..Fido2Config::default()
    })
    .unwrap();
    assert_eq!(
        call_no_touch(&mut a, CMD_MAKE_CREDENTIAL, &mc_params(vec![])).0,
        0x36
    );
    let (_, t) = token(
        &mut a,
        Protocol::Two,
        PIN,
        Some((3, super::test_platform::RP)),
    );
    let extra = auth_extra(Protocol::Two, &t, &[0xCD; 32], 8);
    let (status, answer) = call(
        &mut a,
        CMD_MAKE_CREDENTIAL,
        &mc_params(extra),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0, "{answer:?}");
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    let id_len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    let id = data[55..55 + id_len].to_vec();
    assert_eq!(
        call_no_touch(&mut a, CMD_GET_ASSERTION, &ga_params(&id, vec![])).0,
        0x36
    );
    let up_false = Value::map([("up", Value::Bool(false))]);
    let preflight = ga_params(&id, vec![(5, up_false)]);
    assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &preflight).0, 0);
}

#[test]
fn token_permissions_and_rp_binding_are_enforced() {
    let mut a = with_pin(Some(PIN));
    let cred = register(&mut a, vec![]);
    let cdh = [0xAB; 32];
    let (_, mc_only) = token(
        &mut a,
        Protocol::Two,
        PIN,
        Some((1, super::test_platform::RP)),
    );
    let extra = auth_extra(Protocol::Two, &mc_only, &cdh, 6);
    assert_eq!(
        call_no_touch(&mut a, CMD_GET_ASSERTION, &ga_params(&cred.id, extra)).0,
        0x33
    );
    let (_, other_rp) = token(&mut a, Protocol::Two, PIN, Some((2, "other.invalid")));
    let extra = auth_extra(Protocol::Two, &other_rp, &cdh, 6);
    assert_eq!(
        call_no_touch(&mut a, CMD_GET_ASSERTION, &ga_params(&cred.id, extra)).0,
        0x33
    );
    let (_, legacy) = token(&mut a, Protocol::Two, PIN, None);
    let extra = auth_extra(Protocol::Two, &legacy, &cdh, 6);
    let (status, answer) = call(
        &mut a,
        CMD_GET_ASSERTION,
        &ga_params(&cred.id, extra),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0);
    assert_eq!(
        answer.get_int(2).unwrap().as_bytes().unwrap()[32],
        FLAG_UP | FLAG_UV
    );
    // A power cycle forgets the token.
    a.power_up().unwrap();
    let extra = auth_extra(Protocol::Two, &legacy, &cdh, 6);
    assert_eq!(
        call_no_touch(&mut a, CMD_GET_ASSERTION, &ga_params(&cred.id, extra)).0,
        0x33
    );
}

#[test]
fn hmac_secret_with_uv_differs_from_without_and_is_stable() {
    let mut a = with_pin(Some(PIN));
    let cred = register(&mut a, vec![]);
    let salt = [9u8; 32];
    let cdh = [0xAB; 32];
    let mut with_uv = Vec::new();
    for protocol in [Protocol::Two, Protocol::One] {
        let (_, t) = token(&mut a, protocol, PIN, Some((2, super::test_platform::RP)));
        let extra = auth_extra(protocol, &t, &cdh, 6);
        let (out, flags) = hmac_eval(&mut a, &cred.id, protocol, &salt, extra);
        assert_eq!(flags & FLAG_UV, FLAG_UV);
        with_uv.push(out);
    }
    assert_eq!(with_uv[0], with_uv[1]);
    let (without, flags) = hmac_eval(&mut a, &cred.id, Protocol::Two, &salt, vec![]);
    assert_eq!(flags & FLAG_UV, 0);
    assert_ne!(with_uv[0], without);
}

#[test]
fn zero_length_pin_uv_auth_param_asks_for_a_touch_then_reports_the_pin_state() {
    for (pin, want) in [(None, 0x35), (Some(PIN), 0x31)] {
        let mut a = with_pin(pin);
        let params = mc_params(vec![
            (8, Value::from(Vec::<u8>::new())),
            (9, Value::from(2u64)),
        ]);
        assert_eq!(
            call(&mut a, CMD_MAKE_CREDENTIAL, &params, TouchOutcome::Touched).0,
            want
        );
    }
}
