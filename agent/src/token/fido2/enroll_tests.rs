//! Enrollment against the spec-modelled software authenticator (`fake.rs`): which key is
//! picked, what is refused before any touch, when the PIN is asked, and that the first unlock
//! finds the new credential and derives the same secret.

use super::fake::{FakeKey, found};
use super::*;
use crate::token::Token;

fn opts(uv: Option<UvMode>, label: Option<&str>) -> EnrollOptions {
    EnrollOptions {
        place: Where::Anywhere,
        label: label.map(str::to_owned),
        uv,
    }
}

/// A PIN source that records what it was asked.
fn pins<'a>(
    answer: &'static str,
    asked: &'a mut Vec<String>,
) -> impl FnMut(&str) -> Result<SecretString, String> + 'a {
    move |label: &str| {
        asked.push(label.to_owned());
        Ok(SecretString::from_str_copy(answer))
    }
}

#[test]
fn enrollment_touches_once_and_the_first_unlock_finds_the_same_secret() {
    let key = FakeKey::new("reader 0", None);
    let mut asked = Vec::new();
    let prepared = prepare_among(found(&[&key]), &opts(None, Some("desk")), &[]).unwrap();
    assert_eq!(key.state().touch_requests, 0, "preparing asks for no touch");
    let mut token = prepared.enroll(&mut pins("-", &mut asked)).unwrap();
    assert!(asked.is_empty(), "a key without a PIN is not asked for one");
    assert_eq!(key.state().touches, 1);
    let stub = token.stub().clone();
    let TokenStub::Fido2 {
        uv,
        rp_id,
        aaguid,
        salt,
        label,
        ..
    } = &stub
    else {
        panic!("a FIDO2 stub")
    };
    assert_eq!(
        (uv.as_str(), rp_id.as_str(), label.as_str()),
        ("discouraged", RP_ID, "desk")
    );
    assert_eq!(aaguid, "66616b65-2d66-6964-6f32-2d6b65792d30");
    let salt = hex::decode(salt).unwrap();
    let sealed_with = token.agree(&salt).unwrap();
    let (_, mut again) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    assert_eq!(*again.agree(&salt).unwrap(), *sealed_with);
    assert_eq!(key.state().touches, 3);
}

#[test]
fn a_key_with_a_pin_defaults_to_uv_required_and_asks_its_pin() {
    let key = FakeKey::new("reader 0", Some("1234"));
    let mut asked = Vec::new();
    let prepared = prepare_among(found(&[&key]), &opts(None, None), &[]).unwrap();
    let token = prepared.enroll(&mut pins("1234", &mut asked)).unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("FIDO2 PIN"), "{asked:?}");
    assert!(token.stub().needs_pin());
    assert_eq!(token.stub().describe(), "FIDO2 key \"NFC key\"");
}

#[test]
fn a_pin_that_a_ctap_2_0_key_demands_is_asked_even_for_touch_only() {
    let key = FakeKey::new("reader 0", Some("1234"));
    key.state()
        .info
        .options
        .retain(|(k, _)| k != "makeCredUvNotRqd");
    let mut asked = Vec::new();
    let prepared =
        prepare_among(found(&[&key]), &opts(Some(UvMode::Discouraged), None), &[]).unwrap();
    let token = prepared.enroll(&mut pins("1234", &mut asked)).unwrap();
    assert_eq!(asked.len(), 1);
    assert!(!token.stub().needs_pin(), "the unlocks stay touch-only");
}

#[test]
fn keys_that_cannot_serve_are_refused_before_any_touch() {
    let no_pin = FakeKey::new("r", None);
    let err = prepare_among(found(&[&no_pin]), &opts(Some(UvMode::Required), None), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("has no FIDO2 PIN"), "{err}");
    let no_hmac = FakeKey::new("r", None);
    no_hmac.state().info.extensions.clear();
    let err = prepare_among(found(&[&no_hmac]), &opts(None, None), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("hmac-secret"), "{err}");
    let u2f = FakeKey::new("r", None);
    u2f.state().info.versions = vec!["U2F_V2".into()];
    let err = prepare_among(found(&[&u2f]), &opts(None, None), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("only U2F"), "{err}");
    let strict = FakeKey::new("r", Some("1234"));
    strict.state().info.options.push(("alwaysUv".into(), true));
    let err = prepare_among(
        found(&[&strict]),
        &opts(Some(UvMode::Discouraged), None),
        &[],
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("--uv required"), "{err}");
    for k in [&no_pin, &no_hmac, &u2f, &strict] {
        assert_eq!(k.state().touch_requests, 0);
    }
}

#[test]
fn an_enrolled_key_is_set_aside_so_the_new_one_needs_no_option() {
    let first = FakeKey::new("reader 0", None);
    let mut asked = Vec::new();
    let token = prepare_among(found(&[&first]), &opts(None, Some("one")), &[])
        .unwrap()
        .enroll(&mut pins("-", &mut asked))
        .unwrap();
    let stub = token.stub().clone();
    let second = FakeKey::new("reader 1", None);
    let prepared = prepare_among(found(&[&first, &second]), &opts(None, None), &[&stub]).unwrap();
    assert_eq!(prepared.name, "the FIDO2 key on PC/SC reader reader 1");
    let err = prepare_among(found(&[&first]), &opts(None, None), &[&stub])
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("enrolled already, as FIDO2 key \"one\""),
        "{err}"
    );
    let third = FakeKey::new("reader 2", None);
    let err = prepare_among(found(&[&second, &third]), &opts(None, None), &[&stub])
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("--device PATH or --reader NAME"),
        "{err}"
    );
    let err = prepare_among(found(&[]), &opts(None, None), &[])
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::Absent { .. }), "{err}");
}

#[test]
fn labels_are_checked_and_kept_unique() {
    assert!(check_label("desk key").is_ok());
    for bad in ["", " desk", "desk ", "a\"b", "tab\there", &"x".repeat(65)] {
        assert!(check_label(bad).is_err(), "{bad:?}");
    }
    let key = FakeKey::new("r", None);
    let mut asked = Vec::new();
    let one = prepare_among(found(&[&key]), &opts(None, None), &[])
        .unwrap()
        .enroll(&mut pins("-", &mut asked))
        .unwrap();
    let stub = one.stub().clone();
    assert_eq!(pick_label(None, "NFC key", &[&stub]).unwrap(), "NFC key 2");
    let err = pick_label(Some("NFC key"), "x", &[&stub]).err().unwrap();
    assert!(err.to_string().contains("already enrolled"), "{err}");
    assert_eq!(pick_label(None, "\u{7}\"", &[]).unwrap(), "FIDO2 key");
}

#[test]
fn a_damaged_stub_is_a_clear_error() {
    let stub = |id: &str, salt: &str, uv: &str| TokenStub::Fido2 {
        label: "desk".into(),
        aaguid: String::new(),
        rp_id: RP_ID.into(),
        credential_id: id.into(),
        salt: salt.into(),
        uv: uv.into(),
    };
    let good = "ab".repeat(32);
    assert!(Credential::from_stub(&stub("01", &good, "required")).is_ok());
    for (id, salt, uv) in [
        ("", good.as_str(), "required"),
        ("zz", good.as_str(), "required"),
        ("01", "ab", "required"),
        ("01", good.as_str(), "maybe"),
    ] {
        let err = Credential::from_stub(&stub(id, salt, uv)).err().unwrap();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}

#[test]
fn a_key_that_hides_the_credential_without_uv_is_refused_at_enrollment() {
    let key = FakeKey::new("r", Some("1234"));
    key.state().hide_without_uv = true;
    let mut asked = Vec::new();
    let err = prepare_among(found(&[&key]), &opts(Some(UvMode::Discouraged), None), &[])
        .unwrap()
        .enroll(&mut pins("1234", &mut asked))
        .err()
        .unwrap();
    assert!(err.to_string().contains("could not recognise it"), "{err}");
    // Nor with UV required: the unlock's probe goes without the PIN (a PIN tried on every
    // key present would spend other keys' tries), so it could not find it either.
    let err = prepare_among(found(&[&key]), &opts(Some(UvMode::Required), None), &[])
        .unwrap()
        .enroll(&mut pins("1234", &mut asked))
        .err()
        .unwrap();
    assert!(err.to_string().contains("could not recognise it"), "{err}");
}

fn stub(label: &str, uv: &str) -> TokenStub {
    TokenStub::Fido2 {
        label: label.into(),
        aaguid: "00000000-0000-0000-0000-000000000000".into(),
        rp_id: RP_ID.into(),
        credential_id: "c0ffee".into(),
        salt: "00".repeat(32),
        uv: uv.into(),
    }
}

fn yubikey(pin: &str, touch: &str) -> TokenStub {
    TokenStub::Piv {
        serial: 12345678,
        slot: 0x82,
        tag: "0a0b0c0d".into(),
        public_key: "02".repeat(33),
        pin_policy: pin.into(),
        touch_policy: touch.into(),
    }
}

/// Red-team round 27, F3: a FIDO2 keyslot weaker than the keystore's others was enrolled
/// without a word. No PIN is said always, and beside a stronger keyslot that the keystore is
/// only as strong as its weakest; the PIN without the touch, beside a touch-always YubiKey.
#[test]
fn a_weaker_fido2_keyslot_is_warned_of_as_the_keystores_weakest() {
    let (weak, pinned) = (stub("weak", "discouraged"), stub("pinned", "required"));
    let (always, never) = (yubikey("never", "always"), yubikey("never", "never"));
    let alone = weaker_warning(&weak, &[]).unwrap();
    assert!(alone.contains("with no touch and no PIN"), "{alone}");
    assert!(!alone.contains("weakest"), "{alone}");
    let pin_no_touch = yubikey("once", "never");
    for others in [vec![&always], vec![&pinned], vec![&pin_no_touch]] {
        let w = weaker_warning(&weak, &others).unwrap();
        assert!(w.contains("only as strong as its weakest keyslot"), "{w}");
    }
    // Beside keyslots no stronger than it, nothing is lost but what its own words say.
    let w = weaker_warning(&weak, &[&never, &stub("other", "discouraged")]).unwrap();
    assert!(!w.contains("weakest"), "{w}");
    let w = weaker_warning(&pinned, &[&always]).unwrap();
    assert!(
        w.contains("that has its FIDO2 PIN") && w.contains("weakest"),
        "{w}"
    );
    assert_eq!(weaker_warning(&pinned, &[]), None);
    assert_eq!(weaker_warning(&pinned, &[&never, &weak]), None);
    assert_eq!(weaker_warning(&always, &[&weak]), None);
}
