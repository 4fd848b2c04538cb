//! The keystore's file parsers under a fuzzer: any bytes, read as any kind of keystore file,
//! are refused with an error naming the file, or are a file exactly as tapsign writes it.
//! Never a panic. The oracle recomputes the envelope from its specification
//! (docs/keystore-format.md "Files"), not with the agent's code.
//!
//! Input: byte 0 picks the kind (vault, manifest, keyslot, credential); the rest is the file.
//! A keyslot is named after the token it holds and a credential after its name, as they would
//! be on disk, so the fuzzer gets past the name check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tapsign_agent::keystore::{FileKind, check_file};
use tapsign_agent::token::TokenStub;

fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// The id of the token a keyslot file names (its file stem on disk).
fn token_id(bytes: &[u8]) -> String {
    json(bytes)
        .and_then(|v| serde_json::from_value::<TokenStub>(v.get("token")?.clone()).ok())
        .map_or_else(|| "none".to_owned(), |t| t.id())
}

/// The name a credential file holds (its file stem on disk).
fn credential_name(bytes: &[u8]) -> String {
    json(bytes)
        .and_then(|v| Some(v.get("name")?.as_str()?.to_owned()))
        .unwrap_or_else(|| "none".to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let kind = match pick % 4 {
        0 => FileKind::Vault,
        1 => FileKind::Manifest,
        2 => FileKind::Keyslot(token_id(bytes)),
        _ => FileKind::Credential(credential_name(bytes)),
    };
    if check_file(&kind, bytes).is_err() {
        return;
    }
    // Accepted: serde_json's pretty form plus a newline, `checksum` last, and the checksum is
    // SHA-256 of the same form with `"checksum": ""`, without the newline.
    let text = std::str::from_utf8(bytes).expect("an accepted file is UTF-8");
    let body = text.strip_suffix('\n').expect("an accepted file ends with a newline");
    let mut v: Value = serde_json::from_str(body).expect("an accepted file is JSON");
    assert_eq!(serde_json::to_string_pretty(&v).unwrap(), body, "not the pretty form");
    let obj = v.as_object_mut().expect("an accepted file is an object");
    assert_eq!(obj.keys().last().map(String::as_str), Some("checksum"));
    assert_eq!(obj.get("version"), Some(&Value::from(1)));
    let stored = obj.insert("checksum".into(), Value::from("")).expect("a checksum");
    let blank = serde_json::to_string_pretty(&v).unwrap();
    let want = format!("sha256:{}", hex::encode(Sha256::digest(blank.as_bytes())));
    assert_eq!(stored, Value::from(want), "the checksum does not cover the file");
});
