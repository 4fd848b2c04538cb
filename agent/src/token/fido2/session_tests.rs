//! The shared FIDO2 logic (the part USB keys run too) against a spec-modelled software
//! authenticator (`fake.rs`): which key is found, when a touch is asked, the PIN guard, the
//! flags checked, and how failures read.

use super::*;
use crate::token::fido2::fake::{FakeKey, Touch, found};

const SALT: [u8; 32] = [0x5A; 32];

/// A key holding one credential, and the stub naming it.
fn enrolled(reader: &str, label: &str, pin: Option<&str>, uv: UvMode) -> (FakeKey, TokenStub) {
    let key = FakeKey::new(reader, pin);
    let id = vec![label.len() as u8; 40];
    key.state().creds.push(id.clone());
    let stub = TokenStub::Fido2 {
        label: label.into(),
        aaguid: "66616b65-2d66-6964-6f32-2d6b65792d30".into(),
        rp_id: super::super::RP_ID.into(),
        credential_id: hex::encode(id),
        salt: hex::encode(SALT),
        uv: uv.as_str().into(),
    };
    (key, stub)
}

fn pin(s: &str) -> SecretString {
    SecretString::from_str_copy(s)
}

#[test]
fn the_key_holding_the_credential_is_found_without_a_touch() {
    let stranger = FakeKey::new("reader 0", None);
    let (holder, stub) = enrolled("reader 1", "desk", None, UvMode::Discouraged);
    let (_, other) = enrolled("nowhere", "spare-key", None, UvMode::Discouraged);
    let (i, token) =
        Fido2Token::locate_among(found(&[&stranger, &holder]), &[&other, &stub], None).unwrap();
    assert_eq!(i, 1);
    assert_eq!(token.stub(), &stub);
    assert_eq!(token.reader().as_deref(), Some("reader 1"));
    assert_eq!(
        stranger.state().touch_requests + holder.state().touch_requests,
        0
    );
}

#[test]
fn a_stranger_alone_is_the_wrong_token_and_is_never_asked_for_a_touch() {
    let stranger = FakeKey::new("reader 0", None);
    let (_, stub) = enrolled("elsewhere", "desk", None, UvMode::Discouraged);
    let err = Fido2Token::locate_among(found(&[&stranger]), &[&stub], None)
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::KeyLost { .. }), "{err}");
    assert!(err.to_string().contains("insert that one instead"), "{err}");
    // It may be the enrolled key, reset: the way on is named (red-team round 24).
    assert!(
        err.to_string()
            .contains(&format!("`tapsign token remove {}`", stub.id())),
        "{err}"
    );
    assert_eq!(stranger.state().touch_requests, 0);
}

#[test]
fn nothing_present_is_absent_and_says_which_transport_could_not_be_searched() {
    let (_, stub) = enrolled("elsewhere", "desk", None, UvMode::Discouraged);
    let mut none = found(&[]);
    none.notes
        .push("NFC readers were not searched: pcscd is not running".into());
    let err = Fido2Token::locate_among(none, &[&stub], None)
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::Absent { .. }), "{err}");
    assert!(
        err.to_string().contains("insert FIDO2 key \"desk\""),
        "{err}"
    );
    assert!(err.to_string().contains("pcscd is not running"), "{err}");
}

#[test]
fn unlocking_touches_once_and_gives_the_same_secret_every_time() {
    let (key, stub) = enrolled("r", "desk", None, UvMode::Discouraged);
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    let a = token.agree(&SALT).unwrap();
    let b = token.agree(&SALT).unwrap();
    assert_eq!(*a, *b);
    assert_ne!(
        *a,
        *token.agree(&[0x5B; 32]).unwrap(),
        "another salt, another secret"
    );
    assert_eq!(key.state().touches, 3, "one touch per unlock");
}

#[test]
fn a_key_that_cannot_answer_silently_is_tried_only_when_no_other_is_sure() {
    let (old, stub) = enrolled("r0", "old", None, UvMode::Discouraged);
    old.state().silent = false;
    let (_, mut token) = Fido2Token::locate_among(found(&[&old]), &[&stub], None).unwrap();
    assert_eq!(old.state().touch_requests, 0);
    token.agree(&SALT).unwrap();
    assert_eq!(old.state().touches, 1);
    // With a sure holder present, that one is used.
    let (sure, stub2) = enrolled("r1", "sure-key", None, UvMode::Discouraged);
    let (i, t) = Fido2Token::locate_among(found(&[&old, &sure]), &[&stub, &stub2], None).unwrap();
    assert_eq!((i, t.reader().as_deref()), (1, Some("r1")));
}

#[test]
fn uv_required_uses_the_pin_and_its_secret_differs_from_the_touch_only_one() {
    let (key, stub) = enrolled("r", "pinned", Some("1234"), UvMode::Required);
    let p = pin("1234");
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], Some(&p)).unwrap();
    let with_uv = token.agree(&SALT).unwrap();
    let (_, mut no_pin) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    let err = no_pin.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::PinNeeded { .. }), "{err}");
    let mut plain = key.plug();
    let touch_only = plain
        .get_assertion(&AssertionRequest {
            rp_id: super::super::RP_ID,
            credential_id: &[6; 40],
            up: true,
            salt: Some(&SALT),
            pin: None,
            protocol: Protocol::Two,
        })
        .unwrap();
    assert_ne!(*with_uv, *touch_only.hmac_output.unwrap());
}

#[test]
fn the_last_pin_try_is_never_spent_and_a_wrong_pin_says_how_many_are_left() {
    let (key, stub) = enrolled("r", "pinned", Some("1234"), UvMode::Required);
    let wrong = pin("9999");
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], Some(&wrong)).unwrap();
    let err = token.agree(&SALT).err().unwrap();
    assert!(
        matches!(err, TokenError::PinInvalid { tries_left: 7, .. }),
        "{err}"
    );
    key.state().retries = 1;
    let err = token.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::PinLastTry { .. }), "{err}");
    assert!(err.to_string().contains("one PIN try left"), "{err}");
    assert_eq!(key.state().retries, 1, "the guard spent nothing");
    key.state().retries = 0;
    let err = token.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::PinBlocked { .. }), "{err}");
    assert_eq!(key.state().touch_requests, 0);
}

#[test]
fn answers_without_the_touch_or_with_the_wrong_uv_are_refused() {
    let (key, stub) = enrolled("r", "desk", None, UvMode::Discouraged);
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    key.state().force_up = Some(false);
    let err = token.agree(&SALT).err().unwrap();
    assert!(err.to_string().contains("without a touch"), "{err}");
    key.state().force_up = None;
    key.state().force_uv = Some(true);
    let err = token.agree(&SALT).err().unwrap();
    assert!(err.to_string().contains("its secret differs"), "{err}");
}

#[test]
fn a_refused_or_missed_touch_is_reported_as_such() {
    let (key, stub) = enrolled("r", "desk", None, UvMode::Discouraged);
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    key.state().touch = Touch::Deny;
    let err = token.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::TouchDenied { .. }), "{err}");
    key.state().touch = Touch::Ignore;
    let err = token.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::TouchTimeout { .. }), "{err}");
}

#[test]
fn the_pin_goes_to_no_key_before_one_is_known_to_be_the_enrolled_one() {
    // A key that is not enrolled and answers a silent probe only with the PIN (alwaysUv, a
    // rogue card on the reader) once received the PIN (and spent its own tries on it), even
    // with the enrolled key present and answering silently.
    let stranger = FakeKey::new("reader 0", Some("271828"));
    stranger
        .state()
        .info
        .options
        .push(("alwaysUv".into(), true));
    let (holder, stub) = enrolled("reader 1", "mine", Some("314159"), UvMode::Required);
    let retries = stranger.state().retries;
    let p = pin("314159");
    let (_, token) =
        Fido2Token::locate_among(found(&[&stranger, &holder]), &[&stub], Some(&p)).unwrap();
    assert_eq!(token.reader().as_deref(), Some("reader 1"));
    assert_eq!(
        stranger.state().retries,
        retries,
        "the stranger got the PIN"
    );
    // Two keys neither of which can be told apart without the PIN: it goes to neither.
    let (other, _) = enrolled("reader 2", "other", Some("314159"), UvMode::Required);
    other.state().info.options.push(("alwaysUv".into(), true));
    let (strict, strict_stub) = enrolled("reader 3", "strict", Some("314159"), UvMode::Required);
    strict.state().info.options.push(("alwaysUv".into(), true));
    let err = Fido2Token::locate_among(found(&[&stranger, &strict]), &[&strict_stub], Some(&p))
        .err()
        .unwrap();
    assert!(err.to_string().contains("leave only that key"), "{err}");
    assert_eq!(stranger.state().retries, retries);
    // Alone, the key that might be it is asked with the PIN, and a stranger is refused.
    let err = Fido2Token::locate_among(found(&[&other]), &[&strict_stub], Some(&p))
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::WrongToken { .. }), "{err}");
    Fido2Token::locate_among(found(&[&strict]), &[&strict_stub], Some(&p)).unwrap();
}

#[test]
fn always_uv_needs_the_pin_to_probe_and_rules_out_touch_only_keyslots() {
    let (key, stub) = enrolled("r", "strict", Some("1234"), UvMode::Required);
    key.state().info.options.push(("alwaysUv".into(), true));
    let p = pin("1234");
    let (_, mut token) = Fido2Token::locate_among(found(&[&key]), &[&stub], Some(&p)).unwrap();
    assert_eq!(
        key.state().touch_requests,
        0,
        "probed with the PIN, still no touch"
    );
    token.agree(&SALT).unwrap();
    // Without the PIN it is the one key that might hold the credential: named (a PIN prompt
    // asks for its PIN), and its agree wants the PIN before any touch.
    let asked = key.state().touch_requests;
    let (_, mut unsure) = Fido2Token::locate_among(found(&[&key]), &[&stub], None).unwrap();
    let err = unsure.agree(&SALT).err().unwrap();
    assert!(matches!(err, TokenError::PinNeeded { .. }), "{err}");
    assert_eq!(
        key.state().touch_requests,
        asked,
        "no touch without the PIN"
    );
    let (loose, loose_stub) = enrolled("r", "loose", Some("1234"), UvMode::Discouraged);
    loose.state().info.options.push(("alwaysUv".into(), true));
    let err = Fido2Token::locate_among(found(&[&loose]), &[&loose_stub], None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("alwaysUv"), "{err}");
}

#[test]
fn ctap_failures_read_as_what_the_user_should_do() {
    let cases: Vec<(Fido2Error, &str)> = vec![
        (
            Fido2Error::Status(status::USER_ACTION_TIMEOUT),
            "no touch within",
        ),
        (
            Fido2Error::Status(status::OPERATION_DENIED),
            "refused or cancelled",
        ),
        (
            Fido2Error::Status(status::KEEPALIVE_CANCEL),
            "refused or cancelled",
        ),
        (
            Fido2Error::Status(status::PIN_BLOCKED),
            "only a FIDO2 reset",
        ),
        (
            Fido2Error::Status(status::PIN_AUTH_BLOCKED),
            "insert it again",
        ),
        (Fido2Error::Status(status::PIN_NOT_SET), "has no PIN"),
        (Fido2Error::Status(0x7F), "0x7f (CTAP1_ERR_OTHER)"),
        (Fido2Error::Removed, "was removed during the operation"),
        (Fido2Error::Timeout(60), "no touch within 60 s"),
        (Fido2Error::Unavailable("start pcscd".into()), "start pcscd"),
        (Fido2Error::malformed("short"), "cannot use (short)"),
    ];
    for (e, want) in cases {
        let text = token_error(e.clone(), "desk").to_string();
        assert!(text.contains(want), "{e:?}: {text}");
    }
}

#[test]
fn a_keyslot_edited_to_another_relying_party_or_a_name_with_control_characters_is_damaged() {
    // Before, a keyslot pointed at another site's credential asked a touch for that site,
    // and a name carrying terminal escapes reached `token list` and the touch prompt.
    let (_, stub) = enrolled("r", "desk", None, UvMode::Discouraged);
    let TokenStub::Fido2 {
        label,
        aaguid,
        credential_id,
        salt,
        uv,
        ..
    } = stub.clone()
    else {
        unreachable!()
    };
    let with = |label: &str, rp_id: &str| TokenStub::Fido2 {
        label: label.into(),
        aaguid: aaguid.clone(),
        rp_id: rp_id.into(),
        credential_id: credential_id.clone(),
        salt: salt.clone(),
        uv: uv.clone(),
    };
    assert!(Credential::from_stub(&with(&label, super::super::RP_ID)).is_ok());
    let err = Credential::from_stub(&with(&label, "github.com"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("relying party"), "{err}");
    let err = Credential::from_stub(&with("desk\u{1b}]0;owned\u{7}", super::super::RP_ID))
        .err()
        .unwrap();
    assert!(err.to_string().contains("bad name"), "{err}");
    assert!(!err.to_string().contains('\u{1b}'), "{err}");
}

#[test]
fn a_pin_that_cannot_be_a_fido2_pin_is_not_sent() {
    // "1", "12" and a 64-byte PIN each cost the key a try before.
    let (key, stub) = enrolled("r", "pinned", Some("1234"), UvMode::Required);
    key.state().info.options.push(("alwaysUv".into(), true));
    let retries = key.state().retries;
    for bad in ["1", "12", &"9".repeat(64)] {
        let err = Fido2Token::locate_among(found(&[&key]), &[&stub], Some(&pin(bad)))
            .err()
            .unwrap();
        assert!(matches!(err, TokenError::PinImpossible { .. }), "{err}");
    }
    let (plain, plain_stub) = enrolled("r", "plain", Some("1234"), UvMode::Required);
    let err = Fido2Token::locate_among(found(&[&plain]), &[&plain_stub], Some(&pin("12")))
        .err()
        .unwrap();
    assert!(matches!(err, TokenError::PinImpossible { .. }), "{err}");
    assert_eq!(key.state().retries, retries);
    assert_eq!(plain.state().retries, retries);
}
