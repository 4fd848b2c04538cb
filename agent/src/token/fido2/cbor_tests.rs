//! The CBOR codec against RFC 8949's examples and CTAP2's canonical order.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// RFC 8949 Appendix A: each value's one encoding, both ways.
#[test]
fn rfc_8949_appendix_a_examples_round_trip() {
    let cases: Vec<(Value, &str)> = vec![
        (Value::Unsigned(0), "00"),
        (Value::Unsigned(23), "17"),
        (Value::Unsigned(24), "1818"),
        (Value::Unsigned(100), "1864"),
        (Value::Unsigned(1000), "1903e8"),
        (Value::Unsigned(1_000_000), "1a000f4240"),
        (Value::Unsigned(1_000_000_000_000), "1b000000e8d4a51000"),
        (Value::Unsigned(u64::MAX), "1bffffffffffffffff"),
        (Value::Negative(u64::MAX), "3bffffffffffffffff"),
        (Value::int(-1), "20"),
        (Value::int(-10), "29"),
        (Value::int(-100), "3863"),
        (Value::int(-1000), "3903e7"),
        (Value::Bool(false), "f4"),
        (Value::Bool(true), "f5"),
        (Value::Null, "f6"),
        (Value::Bytes(vec![]), "40"),
        (Value::Bytes(vec![1, 2, 3, 4]), "4401020304"),
        (Value::text(""), "60"),
        (Value::text("a"), "6161"),
        (Value::text("IETF"), "6449455446"),
        (Value::text("\"\\"), "62225c"),
        (Value::text("\u{00fc}"), "62c3bc"),
        (Value::text("\u{6c34}"), "63e6b0b4"),
        (Value::Array(vec![]), "80"),
        (
            Value::Array(vec![Value::int(1), Value::int(2), Value::int(3)]),
            "83010203",
        ),
        (
            Value::Array(vec![
                Value::int(1),
                Value::Array(vec![Value::int(2), Value::int(3)]),
                Value::Array(vec![Value::int(4), Value::int(5)]),
            ]),
            "8301820203820405",
        ),
        (
            Value::Array((1..=25).map(Value::int).collect()),
            "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        ),
        (Value::Map(vec![]), "a0"),
        (
            Value::int_map(vec![(1, Value::int(2)), (3, Value::int(4))]),
            "a201020304",
        ),
        (
            Value::text_map(vec![
                ("a", Value::int(1)),
                ("b", Value::Array(vec![Value::int(2), Value::int(3)])),
            ]),
            "a26161016162820203",
        ),
    ];
    for (value, encoding) in cases {
        let bytes = hex(encoding);
        assert_eq!(encode(&value), bytes, "encode {value:?}");
        assert_eq!(decode(&bytes).unwrap(), value, "decode {encoding}");
    }
}

/// CTAP 2.1 §8 canonical form: the encoder sorts keys itself, whatever order it is given.
#[test]
fn maps_are_sorted_in_ctap2_canonical_order() {
    // Major type first (24 before -1, though -1 encodes shorter), then length, then bytes.
    let keys = [
        Value::Bool(false),
        Value::Array(vec![Value::int(100)]),
        Value::Array(vec![Value::int(-1)]),
        Value::text("aa"),
        Value::text("z"),
        Value::int(-1),
        Value::int(24),
        Value::int(10),
    ];
    let map = Value::Map(keys.iter().map(|k| (k.clone(), Value::Null)).collect());
    let want = "a8 0af6 1818f6 20f6 617af6 626161f6 8120f6 811864f6 f4f6";
    assert_eq!(hex::encode(encode(&map)), want.replace(' ', ""));
    // COSE keys: 1, 3, -1, -2, -3.
    let cose = Value::int_map(vec![
        (-3, Value::Null),
        (-1, Value::Null),
        (3, Value::Null),
        (-2, Value::Null),
        (1, Value::Null),
    ]);
    assert_eq!(hex::encode(encode(&cose)), "a501f603f620f621f622f6");
}

#[test]
fn non_shortest_forms_from_an_authenticator_are_read() {
    assert_eq!(decode(&hex("1900 05")).unwrap(), Value::Unsigned(5));
    assert_eq!(decode(&hex("5800")).unwrap(), Value::Bytes(vec![]));
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let bad: &[(&str, CborError)] = &[
        ("", CborError::Truncated(0)),
        ("19 01", CborError::Truncated(2)),
        ("44 0102", CborError::Truncated(3)),
        ("5b ffffffffffffffff", CborError::Truncated(9)),
        ("9b ffffffffffffffff", CborError::Truncated(9)),
        ("bb 7fffffffffffffff", CborError::Truncated(9)),
        ("5f 41 00 ff", CborError::Unsupported { byte: 0x5F, at: 0 }),
        ("f9 3c00", CborError::Unsupported { byte: 0xF9, at: 0 }),
        ("f7", CborError::Unsupported { byte: 0xF7, at: 0 }),
        ("c2 41 01", CborError::Unsupported { byte: 0xC2, at: 0 }),
        ("1c", CborError::Unsupported { byte: 0x1C, at: 0 }),
        ("62 c328", CborError::BadText(0)),
        ("a2 01 02 01 03", CborError::DuplicateKey(3)),
        ("00 00", CborError::Trailing(1)),
    ];
    for (input, want) in bad {
        assert_eq!(decode(&hex(input)).err().as_ref(), Some(want), "{input}");
    }
    let deep = vec![0x81u8; MAX_DEPTH + 2];
    assert_eq!(decode(&deep), Err(CborError::TooDeep));
}

#[test]
fn decode_prefix_reports_what_it_used() {
    let (v, used) = decode_prefix(&hex("a10102 a0")).unwrap();
    assert_eq!((v.get(1), used), (Some(&Value::int(2)), 3));
}

#[test]
fn lookups_find_keys_of_their_own_type() {
    let m = Value::Map(vec![
        (Value::int(1), Value::text("one")),
        (Value::text("up"), Value::Bool(true)),
        (Value::int(-25), Value::Bytes(vec![7])),
    ]);
    assert_eq!(m.get(1).and_then(Value::as_text), Some("one"));
    assert_eq!(m.get_text("up").and_then(Value::as_bool), Some(true));
    assert_eq!(m.get(-25).and_then(Value::as_bytes), Some(&[7u8][..]));
    assert_eq!(m.get(2), None);
    assert_eq!(Value::int(-25).as_int(), Some(-25));
    assert_eq!(Value::Negative(u64::MAX).as_int(), None);
    assert_eq!(format!("{:?}", Value::Bytes(vec![1, 2])), "h'<2 bytes>'");
}
