//! The authenticator as a pure state machine: CTAP messages in, answers out, with the
//! platform's side from `test_platform.rs`. PIN commands are in `tests_pin.rs`, the ISO 7816
//! binding in `nfc_tests.rs`.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::cbor::{self, Value};
use super::pin_uv::Protocol;
use super::test_platform::*;
use super::*;

#[test]
fn get_info_reports_versions_options_and_protocols() {
    let mut a = auth();
    let (status, info) = call_no_touch(&mut a, CMD_GET_INFO, &Value::Null);
    assert_eq!(status, 0);
    let versions = info.get_int(1).unwrap().as_array().unwrap();
    assert_eq!(versions, [Value::from("FIDO_2_0"), Value::from("FIDO_2_1")]);
    let ext = info.get_int(2).unwrap().as_array().unwrap();
    assert!(ext.contains(&Value::from("hmac-secret")));
    assert_eq!(
        info.get_int(3).unwrap().as_bytes(),
        Some(&b"tapsign-vyk-fido"[..])
    );
    let opts = info.get_int(4).unwrap();
    for (k, v) in [("rk", false), ("up", true), ("clientPin", false)] {
        assert_eq!(opts.get_text(k).and_then(Value::as_bool), Some(v), "{k}");
    }
    assert_eq!(
        opts.get_text("pinUvAuthToken").and_then(Value::as_bool),
        Some(true)
    );
    assert_eq!(info.get_int(5).and_then(Value::as_int), Some(1200));
    assert_eq!(
        info.get_int(6).unwrap().as_array().unwrap(),
        [Value::from(2u64), Value::from(1u64)]
    );
}

#[test]
fn an_older_key_reports_ctap_2_0_and_protocol_one_only() {
    let mut a = Authenticator::new(Fido2Config {
        pin_protocols: vec![Protocol::One],
        ctap21: false,
        pin: Some("1234".into()),
        ..Fido2Config::default()
    })
    .unwrap();
    let (_, info) = call_no_touch(&mut a, CMD_GET_INFO, &Value::Null);
    assert_eq!(
        info.get_int(1).unwrap().as_array().unwrap(),
        [Value::from("FIDO_2_0")]
    );
    assert_eq!(
        info.get_int(6).unwrap().as_array().unwrap(),
        [Value::from(1u64)]
    );
    let opts = info.get_int(4).unwrap();
    assert_eq!(opts.get_text("clientPin"), Some(&Value::Bool(true)));
    assert_eq!(opts.get_text("pinUvAuthToken"), None);
    // A protocol-two key agreement is refused.
    let req = map(vec![(1, Value::from(2u64)), (2, Value::from(2u64))]);
    assert_eq!(call_no_touch(&mut a, CMD_CLIENT_PIN, &req).0, 0x02);
}

#[test]
fn framing_errors_have_their_status_codes() {
    let mut a = auth();
    let answer = |a: &mut Authenticator, msg: &[u8]| match a.handle(msg) {
        Step::Done(v) => v,
        Step::Touch(_) => panic!("touch"),
    };
    assert_eq!(answer(&mut a, &[0x42]), [0x01], "unknown command");
    assert_eq!(
        answer(&mut a, &[0x04, 0xA0]),
        [0x03],
        "getInfo takes no data"
    );
    assert_eq!(
        answer(&mut a, &[0x01, 0xA1, 0x01]),
        [0x12],
        "truncated CBOR"
    );
    assert_eq!(answer(&mut a, &[0x01, 0x80]), [0x11], "not a map");
    assert_eq!(answer(&mut a, &[0x08]), [0x30], "getNextAssertion");
    let mut big = vec![0x01];
    big.extend(vec![0u8; MAX_MSG_SIZE]);
    assert_eq!(answer(&mut a, &big), [0x39]);
}

#[test]
fn make_credential_parameter_errors_come_before_any_touch() {
    let mut a = auth();
    let es384 = Value::Array(vec![Value::map([
        ("alg", Value::from(-35i64)),
        ("type", Value::from("public-key")),
    ])]);
    let cases: Vec<(Value, u8)> = vec![
        (map(vec![(1, Value::from(vec![0u8; 32]))]), 0x14),
        (mc_params(vec![(1, Value::from("not bytes"))]), 0x11),
        (
            mc_params(vec![(2, Value::map([("name", Value::from("x"))]))]),
            0x14,
        ),
        (mc_params(vec![(4, es384)]), 0x26),
        (mc_params(vec![(7, opts(&[("rk", true)]))]), 0x2B),
        (mc_params(vec![(7, opts(&[("up", false)]))]), 0x2C),
        (mc_params(vec![(7, opts(&[("uv", true)]))]), 0x2C),
        (mc_params(vec![(8, Value::from(vec![1u8; 16]))]), 0x14),
        (
            mc_params(vec![
                (8, Value::from(vec![1u8; 16])),
                (9, Value::from(3u64)),
            ]),
            0x02,
        ),
        (
            mc_params(vec![
                (8, Value::from(vec![1u8; 32])),
                (9, Value::from(2u64)),
            ]),
            0x33,
        ),
    ];
    for (params, want) in cases {
        assert_eq!(
            call_no_touch(&mut a, CMD_MAKE_CREDENTIAL, &params).0,
            want,
            "{params:?}"
        );
    }
}

#[test]
fn make_credential_makes_a_packed_self_attested_es256_credential() {
    let mut a = auth();
    let params = mc_params(vec![(6, Value::map([("hmac-secret", Value::Bool(true))]))]);
    let (status, answer) = call(&mut a, CMD_MAKE_CREDENTIAL, &params, TouchOutcome::Touched);
    assert_eq!(status, 0);
    assert_eq!(answer.get_int(1), Some(&Value::from("packed")));
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    assert_eq!(data[..32], sha256(RP.as_bytes()));
    assert_eq!(data[32], FLAG_UP | FLAG_AT | FLAG_ED);
    assert_eq!(&data[37..53], b"tapsign-vyk-fido");
    let id_len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    let (cose, used) = cbor::decode_first(&data[55 + id_len..]).unwrap();
    assert_eq!(cose.get_int(3).and_then(Value::as_int), Some(-7));
    let (ext, _) = cbor::decode_first(&data[55 + id_len + used..]).unwrap();
    assert_eq!(ext.get_text("hmac-secret"), Some(&Value::Bool(true)));
    let stmt = answer.get_int(3).unwrap();
    let sig = Signature::from_der(stmt.get_text("sig").unwrap().as_bytes().unwrap()).unwrap();
    let x = cose.get_int(-2).unwrap().as_bytes().unwrap();
    let y = cose.get_int(-3).unwrap().as_bytes().unwrap();
    let key = VerifyingKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).unwrap();
    let signed = [data, &[0xCD; 32][..]].concat();
    key.verify(&signed, &sig).unwrap();
}

#[test]
fn a_denied_or_missed_touch_fails_make_credential() {
    let mut a = auth();
    let params = mc_params(vec![]);
    assert_eq!(
        call(&mut a, CMD_MAKE_CREDENTIAL, &params, TouchOutcome::Denied).0,
        0x27
    );
    assert_eq!(
        call(&mut a, CMD_MAKE_CREDENTIAL, &params, TouchOutcome::TimedOut).0,
        0x2F
    );
}

#[test]
fn exclude_list_hit_answers_credential_excluded_after_the_touch() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let exclude = Value::Array(vec![descriptor(&[7; 16]), descriptor(&cred.id)]);
    let params = mc_params(vec![(5, exclude)]);
    let mut msg = vec![CMD_MAKE_CREDENTIAL];
    msg.extend(params.encode());
    let Step::Touch(pending) = a.handle(&msg) else {
        panic!("the exclusion must wait for a touch");
    };
    assert_eq!(a.finish(pending, TouchOutcome::Touched), [0x19]);
    let foreign = mc_params(vec![(5, Value::Array(vec![descriptor(&[7; 127])]))]);
    assert_eq!(
        call(&mut a, CMD_MAKE_CREDENTIAL, &foreign, TouchOutcome::Touched).0,
        0
    );
}

#[test]
fn up_false_preflight_needs_no_touch_and_leaves_the_up_flag_clear() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let params = ga_params(&cred.id, vec![(5, opts(&[("up", false)]))]);
    let (status, answer) = call_no_touch(&mut a, CMD_GET_ASSERTION, &params);
    assert_eq!(status, 0);
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    assert_eq!(data[32] & FLAG_UP, 0);
    assert_eq!(
        answer
            .get_int(1)
            .unwrap()
            .get_text("id")
            .unwrap()
            .as_bytes(),
        Some(&cred.id[..])
    );
}

#[test]
fn a_foreign_credential_id_is_no_credentials_at_once_with_up_false() {
    let mut a = auth();
    let other_key = {
        let mut b = auth();
        register(&mut b, vec![]).id
    };
    let preflight = ga_params(&other_key, vec![(5, opts(&[("up", false)]))]);
    assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &preflight).0, 0x2E);
    // Its own credential under another RP is foreign too.
    let own = register(&mut a, vec![]);
    let other_rp = ga_params(
        &own.id,
        vec![
            (1, Value::from("other.invalid")),
            (5, opts(&[("up", false)])),
        ],
    );
    assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &other_rp).0, 0x2E);
    // With up the key still asks for the touch before saying so.
    let params = ga_params(&other_key, vec![]);
    let mut msg = vec![CMD_GET_ASSERTION];
    msg.extend(params.encode());
    let Step::Touch(pending) = a.handle(&msg) else {
        panic!("up=true waits for the touch");
    };
    assert_eq!(a.finish(pending, TouchOutcome::Touched), [0x2E]);
}

#[test]
fn get_assertion_signs_with_the_credential_and_counts() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let mut counts = Vec::new();
    for _ in 0..2 {
        let (status, answer) = call(
            &mut a,
            CMD_GET_ASSERTION,
            &ga_params(&cred.id, vec![]),
            TouchOutcome::Touched,
        );
        assert_eq!(status, 0);
        let data = answer.get_int(2).unwrap().as_bytes().unwrap();
        assert_eq!(data[32], FLAG_UP);
        counts.push(u32::from_be_bytes([data[33], data[34], data[35], data[36]]));
        let sig = Signature::from_der(answer.get_int(3).unwrap().as_bytes().unwrap()).unwrap();
        let signed = [data, &[0xAB; 32][..]].concat();
        VerifyingKey::from(&cred.public)
            .verify(&signed, &sig)
            .unwrap();
    }
    assert!(counts[1] > counts[0]);
}

#[test]
fn get_assertion_parameter_errors() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let cases: Vec<(Value, u8)> = vec![
        (map(vec![(2, Value::from(vec![0u8; 32]))]), 0x14),
        (ga_params(&cred.id, vec![(1, Value::from(5u64))]), 0x11),
        (ga_params(&cred.id, vec![(5, opts(&[("rk", true)]))]), 0x2B),
        (ga_params(&cred.id, vec![(5, opts(&[("uv", true)]))]), 0x2C),
        (
            ga_params(&cred.id, vec![(6, Value::from(vec![1u8; 16]))]),
            0x14,
        ),
        (
            ga_params(
                &cred.id,
                vec![(6, Value::from(vec![1u8; 32])), (7, Value::from(2u64))],
            ),
            0x33,
        ),
    ];
    for (params, want) in cases {
        assert_eq!(
            call_no_touch(&mut a, CMD_GET_ASSERTION, &params).0,
            want,
            "{params:?}"
        );
    }
}

#[test]
fn hmac_secret_is_deterministic_per_salt_in_both_protocols() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let (s1, s2) = ([1u8; 32], [2u8; 32]);
    for p in [Protocol::Two, Protocol::One] {
        let (first, flags) = hmac_eval(&mut a, &cred.id, p, &s1, vec![]);
        assert_eq!(flags, FLAG_UP | FLAG_ED);
        assert_eq!(first.len(), 32);
        let (again, _) = hmac_eval(&mut a, &cred.id, p, &s1, vec![]);
        assert_eq!(first, again, "same salt, same output");
        let (other, _) = hmac_eval(&mut a, &cred.id, p, &s2, vec![]);
        assert_ne!(first, other, "different salts differ");
        let (both, _) = hmac_eval(&mut a, &cred.id, p, &[s1, s2].concat(), vec![]);
        assert_eq!(both, [first.clone(), other].concat());
    }
    // The protocol only protects the transport: both see the same secret.
    let (v2, _) = hmac_eval(&mut a, &cred.id, Protocol::Two, &s1, vec![]);
    let (v1, _) = hmac_eval(&mut a, &cred.id, Protocol::One, &s1, vec![]);
    assert_eq!(v1, v2);
}

#[test]
fn hmac_secret_is_computed_even_in_the_up_false_preflight() {
    // As some real keys do: the agent must ask for up itself (the touch counter shows it).
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let p = key_agreement(&mut a, Protocol::Two);
    let ext = Value::map([("hmac-secret", hmac_input(&p, &[1; 32]))]);
    let params = ga_params(&cred.id, vec![(4, ext), (5, opts(&[("up", false)]))]);
    let (status, answer) = call_no_touch(&mut a, CMD_GET_ASSERTION, &params);
    assert_eq!(status, 0);
    let data = answer.get_int(2).unwrap().as_bytes().unwrap();
    assert_eq!(data[32], FLAG_ED);
}

#[test]
fn hmac_secret_input_errors() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    let p = key_agreement(&mut a, Protocol::Two);
    let mut bad_auth = hmac_input(&p, &[1; 32]);
    if let Value::Map(pairs) = &mut bad_auth {
        pairs[2].1 = Value::from(vec![0u8; 32]);
    }
    let short_salt = {
        let enc = p.protocol.encrypt(&p.shared, &[1; 16]).unwrap();
        let auth = p.protocol.authenticate(&p.shared, &enc);
        map(vec![
            (1, p.cose.clone()),
            (2, Value::from(enc)),
            (3, Value::from(auth)),
            (4, Value::from(2u64)),
        ])
    };
    let mut bad_protocol = hmac_input(&p, &[1; 32]);
    if let Value::Map(pairs) = &mut bad_protocol {
        pairs[3].1 = Value::from(7u64);
    }
    for (input, want) in [
        (bad_auth, 0x33),
        (short_salt, 0x03),
        (bad_protocol, 0x02),
        (map(vec![(1, p.cose.clone())]), 0x14),
    ] {
        let ext = Value::map([("hmac-secret", input)]);
        let params = ga_params(&cred.id, vec![(4, ext)]);
        assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &params).0, want);
    }
}

#[test]
fn a_credential_made_without_hmac_secret_gives_no_output() {
    let mut a = auth();
    let plain = register(
        &mut a,
        vec![(6, Value::map([("credProtect", Value::from(1u64))]))],
    );
    let p = key_agreement(&mut a, Protocol::Two);
    let ext = Value::map([("hmac-secret", hmac_input(&p, &[1; 32]))]);
    let (status, answer) = call(
        &mut a,
        CMD_GET_ASSERTION,
        &ga_params(&plain.id, vec![(4, ext)]),
        TouchOutcome::Touched,
    );
    assert_eq!(status, 0);
    assert_eq!(answer.get_int(2).unwrap().as_bytes().unwrap()[32], FLAG_UP);
}

#[test]
fn reset_needs_the_window_and_a_touch_and_forgets_every_credential() {
    let mut a = auth();
    let cred = register(&mut a, vec![]);
    assert_eq!(
        call(&mut a, CMD_RESET, &Value::Null, TouchOutcome::Denied).0,
        0x27
    );
    assert_eq!(
        call(&mut a, CMD_RESET, &Value::Null, TouchOutcome::Touched).0,
        0
    );
    let preflight = ga_params(&cred.id, vec![(5, opts(&[("up", false)]))]);
    assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &preflight).0, 0x2E);

    let mut late = Authenticator::new(Fido2Config {
        reset_window: std::time::Duration::ZERO,
        ..Fido2Config::default()
    })
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert_eq!(call_no_touch(&mut late, CMD_RESET, &Value::Null).0, 0x30);
}

#[test]
fn cred_protect_uv_required_hides_the_credential_without_uv() {
    let mut a = auth();
    let ext = Value::map([
        ("credProtect", Value::from(3u64)),
        ("hmac-secret", Value::Bool(true)),
    ]);
    let cred = register(&mut a, vec![(6, ext)]);
    let preflight = ga_params(&cred.id, vec![(5, opts(&[("up", false)]))]);
    assert_eq!(call_no_touch(&mut a, CMD_GET_ASSERTION, &preflight).0, 0x2E);
}
