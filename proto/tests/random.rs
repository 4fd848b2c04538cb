//! Random input for the frame decoder (never panics, whatever the bytes) and round trips of
//! generated sign requests. `fuzz/` runs the same decoder under libFuzzer for longer.
//!
//! Also pins two decoder bugs found while writing the goldens.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use proptest::prelude::*;
use tapsign_proto::frame::{self, decode, encode};
use tapsign_proto::*;

// Found while writing the goldens: serde ignores extra keys on a unit variant of an internally tagged enum even under
// `deny_unknown_fields`, so `{"type":"lock","force":true}` is accepted as a plain `lock`.
#[test]
fn unit_variant_with_unknown_field_is_refused() {
    for json in [
        r#"{"type":"status","verbose":true}"#,
        r#"{"type":"lock","force":true}"#,
    ] {
        assert!(
            frame::decode_body::<Request>(json.as_bytes()).is_err(),
            "{json}"
        );
    }
    let json = r#"{"type":"locked","extra":1}"#;
    assert!(
        frame::decode_body::<Response>(json.as_bytes()).is_err(),
        "{json}"
    );
}

// serde_json's messages quote the offending value, and `Malformed` carries that message: a PIN
// sent as a number comes back (and may be logged) in the `bad_request` text.
#[test]
fn malformed_pin_is_not_echoed_in_the_error() {
    let json = r#"{"type":"unlock","pin":987654}"#;
    let err = frame::decode_body::<Request>(json.as_bytes()).expect_err("a number is not a PIN");
    assert!(!err.to_string().contains("987654"), "{err}");
}

/// A frame whose header announces exactly the bytes that follow, so the body reaches the
/// JSON decoder instead of stopping at the length check.
fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

/// JSON-looking bodies find more of the decoder than uniform bytes do.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    proptest::string::string_regex(
        r#"\{("(type|key|method|path|query|body|pin|version|code|message|session|keys|headers)":("(sign|hello|status|unlock|lock|error|signed|locked)"|[0-9-]{1,20}|null|true|\[\]|\{\}|"[^"]{0,8}"),?){0,6}\}?"#,
    )
    .expect("regex")
    .prop_map(String::into_bytes)
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including quotes, backslashes and control characters JSON must escape.
    any::<String>()
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode::<Request>(&bytes);
        let _ = decode::<Response>(&bytes);
    }

    #[test]
    fn decode_never_panics_on_well_framed_garbage(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let f = framed(body);
        let _ = decode::<Request>(&f);
        let _ = decode::<Response>(&f);
    }

    #[test]
    fn decode_never_panics_on_jsonish_bodies(body in jsonish()) {
        let f = framed(body);
        let _ = decode::<Request>(&f);
        let _ = decode::<Response>(&f);
    }

    #[test]
    fn sign_requests_round_trip(key in text(), method in text(), path in text(), query in text(), body in text()) {
        let req = Request::Sign(SignRequest { key, method, path, query, body, kind: Default::default() });
        let frame = encode(&req).expect("encode");
        let (back, used) = decode::<Request>(&frame).expect("decode").expect("whole");
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(encode(&back).expect("re-encode"), frame);
    }
}
