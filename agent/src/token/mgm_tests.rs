use super::*;

const KEY: [u8; 24] = [0x5A; 24];

#[test]
fn the_protected_object_is_ykmans() {
    // What ykman's PivmanProtectedData writes: 88 { 89 <key> }.
    let mut want = vec![0x88, 26, 0x89, 24];
    want.extend_from_slice(&KEY);
    assert_eq!(protected(None, &KEY, None).as_slice(), want.as_slice());
    // An old key is replaced, another item kept.
    let old = [0x88, 0x07, 0x81, 0x01, 0x01, 0x89, 0x02, 0xAA, 0xBB];
    let got = protected(Some(&old), &KEY, None);
    let (tag, items, rest) = take(&got).unwrap();
    assert_eq!((tag, rest), (0x88, &[][..]));
    assert_eq!(find(items, 0x81), Some(&[0x01][..]));
    assert_eq!(find(items, 0x89), Some(&KEY[..]));
    // Something that is not ykman's object is not kept.
    assert_eq!(
        protected(Some(&[0x01, 0x02, 0x03, 0x04]), &KEY, None).len(),
        28
    );
}

#[test]
fn the_admin_data_sets_the_stored_key_flag_and_keeps_the_rest() {
    assert_eq!(
        admin_data(None, FLAG_KEY_STORED).as_slice(),
        [0x80, 0x03, 0x81, 0x01, 0x02]
    );
    // PUK blocked (01) kept, the salt of a PIN-derived key dropped, the PIN timestamp kept.
    let old = [
        0x80, 0x0D, 0x81, 0x01, 0x01, 0x82, 0x02, 0xAB, 0xCD, 0x83, 0x04, 1, 2, 3, 4,
    ];
    assert_eq!(admin_flags(&old), 0x01);
    let new = admin_data(Some(&old), admin_flags(&old) | FLAG_KEY_STORED);
    assert_eq!(admin_flags(&new), 0x03);
    let (_, items, _) = take(&new).unwrap();
    assert_eq!(find(items, 0x82), None);
    assert_eq!(find(items, 0x83), Some(&[1, 2, 3, 4][..]));
}

#[test]
fn tlv_lengths_round_trip_and_bad_ones_are_refused() {
    for n in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3000] {
        let v = vec![7u8; n];
        let enc = tlv(0x53, &v);
        assert_eq!(take(&enc), Some((0x53, v.as_slice(), &[][..])), "{n}");
    }
    assert_eq!(take(&[0x53, 0x05, 1, 2]), None, "shorter than it says");
    assert_eq!(
        take(&[0x53, 0x83, 0, 0, 1]),
        None,
        "a length form PIV does not use"
    );
    assert_eq!(take(&[0x53]), None);
    assert_eq!(admin_flags(&[0x80, 0x02, 0x81, 0x05]), 0, "cut: no flags");
}

/// While a stored key is replaced, PRINTED holds the new key where ykman reads it and the one
/// still in use beside it (`8A`), which the next run finds should this one stop before SET;
/// once the card uses the new key, the old one is dropped.
#[test]
fn a_replaced_stored_key_is_kept_beside_the_new_one_until_set() {
    const OLD: [u8; 24] = [0x11; 24];
    let during = protected(None, &KEY, Some(&OLD));
    let found: Vec<Vec<u8>> = stored_keys(&during, MgmAlgorithmId::Aes192)
        .iter()
        .map(|k| k.as_ref().to_vec())
        .collect();
    assert_eq!(found, [KEY.to_vec(), OLD.to_vec()]);
    let after = protected(Some(&during), &KEY, None);
    let (_, items, _) = take(&after).unwrap();
    assert_eq!(find(items, 0x8A), None);
    assert_eq!(find(items, 0x89), Some(&KEY[..]));
}
