//! What is said, before any touch, on the word of `manifest.json`, whose MAC needs the vault key
//! (red-team round 21): an edited manifest must not get a genuine keyslot or credential
//! deleted, and a keyslot it does not record must not reach the unlock's prompts.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;
use tapsign_tests::at_rest::{forge_manifest, live};

/// The only keyslot file's id.
fn only_keyslot(w: &World) -> String {
    tapsign_tests::at_rest::only_keyslot(w).1
}

/// One keyslot hash edited in `manifest.json` (checksum recomputed, MAC left wrong): `token
/// list` said of the only genuine keyslot "never used; remove the file", and the unlock, which
/// tried no keyslot, advised moving the keystore folder away; both lose every credential. Now
/// the listing says the manifest is unverified, the unlock tries the keyslot and names the
/// manifest as the forged file, and the rebuild it names opens the keys again.
#[test]
fn an_edited_manifest_does_not_get_the_only_keyslot_deleted() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    let id = only_keyslot(&w);
    forge_manifest(&w, |m| m["keyslots"][0]["sha256"] = "0".repeat(64).into());

    let list = w.run(&["token", "list"], "");
    let line = list.ok().lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains("as read unverified"), "{list:?}");
    assert!(!line.contains("remove the file"), "{list:?}");
    assert!(
        list.stderr.contains("do not delete it on this alone"),
        "{list:?}"
    );
    assert!(
        list.stderr.contains("the next unlock tries this one"),
        "{list:?}"
    );
    assert!(list.stderr.contains("--rebuild-manifest"), "{list:?}");

    w.start_agent();
    let status = w.run(&["status"], "");
    assert!(!status.stdout.contains("remove the file"), "{status:?}");
    assert!(!status.stderr.contains("remove the file"), "{status:?}");
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "manifest.json does not verify");
    assert!(out.stderr.contains("--rebuild-manifest"), "{out:?}");
    assert!(
        !out.stderr.contains("move the keystore folder away"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("no keyslot can be used"), "{out:?}");

    w.run(&["keystore", "rotate", "--rebuild-manifest"], "")
        .ok();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k1."), "{out:?}");
    w.signs_with("k1", b"sk");
}

/// A credential moved from `credentials` to `removed` in an edited manifest: `key list` stated
/// "refused: a removed credential put back" as fact, and `key remove` on that word deletes a
/// genuine key. The verdict is now worded as what the unlock would do, with a warning that it
/// rests on a manifest no one has verified.
#[test]
fn key_list_words_its_verdicts_as_resting_on_an_unverified_manifest() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    w.setup_key("k2", "binance", "ak2", "sk2");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    forge_manifest(&w, |m| {
        let creds = m["credentials"].as_array_mut().unwrap();
        let at = creds.iter().position(|c| c["name"] == "k1").unwrap();
        let k1 = creds.remove(at);
        m["removed"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": k1["name"], "created": k1["created"]}));
    });
    let list = w.run(&["key", "list"], "");
    let line = list.ok().lines().find(|l| l.starts_with("k1")).unwrap();
    assert!(
        line.ends_with("would be refused: a removed credential put back"),
        "{list:?}"
    );
    assert!(
        list.stderr
            .contains("would be refused at unlock: credential \"k1\" was removed"),
        "{list:?}"
    );
    assert!(
        list.stderr
            .contains("reads manifest.json without verifying it"),
        "{list:?}"
    );
    assert!(
        list.stderr.contains("remove nothing on them alone"),
        "{list:?}"
    );
    w.run(&["unlock"], "")
        .fails_with(7, "manifest.json does not verify");
}

/// A keyslot record added to the manifest for a token that never existed: `token list` stated
/// it as recorded and advised revoking it, which leads to the rebuild.
#[test]
fn token_list_says_a_recorded_token_rests_on_an_unverified_manifest() {
    let w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    let phantom = "piv-12345678-r1-1a2b3c4d";
    forge_manifest(&w, |m| {
        m["keyslots"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": phantom, "sha256": "0".repeat(64)}));
    });
    let list = w.run(&["token", "list"], "");
    let line = list.ok().lines().find(|l| l.starts_with(phantom)).unwrap();
    assert!(line.contains("as read unverified"), "{list:?}");
    assert!(
        line.contains("If you never enrolled this token, manifest.json was edited"),
        "{list:?}"
    );
}

/// A keyslot planted beside the trader's (here another keystore's soft token, which any file
/// writer can copy in) was named in the unlock's touch prompt, and a FIDO2 one asked for a
/// PIN: the prompt lists only the keyslots the agent tries.
#[test]
fn the_unlock_prompt_names_only_the_keyslots_the_manifest_records() {
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    let ours = only_keyslot(&w);
    let other = World::new();
    other.setup_key("k9", "binance", "ak9", "sk9");
    let planted = only_keyslot(&other);
    std::fs::copy(
        live(&other).join(format!("keyslots/{planted}.json")),
        live(&w).join(format!("keyslots/{planted}.json")),
    )
    .unwrap();
    w.start_agent();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k1."), "{out:?}");
    let prompt = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Touch "))
        .unwrap();
    let short = |id: &str| id.trim_start_matches("soft-").to_owned();
    assert!(prompt.contains(&short(&ours)), "{out:?}");
    assert!(!prompt.contains(&short(&planted)), "{out:?}");
}

/// Red-team round 21's recheck: a manifest edited to record a keyslot someone planted instead
/// of the genuine one (checksum recomputed) had every unlock try only the planted one: "insert"
/// its token, named by the planter's label, and never the trader's, so the check that names
/// the forged manifest never came. With no token of a recorded keyslot present, the unlock
/// tries the other readable ones: the trader's opens and the check names manifest.json, whose
/// rebuild opens the keys again; the prompt says the names it gives rest on the manifest
/// read unverified.
#[test]
fn a_manifest_recording_a_planted_keyslot_instead_still_tries_the_genuine_one() {
    use sha2::Digest;
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    let ours = only_keyslot(&w);
    let other = World::new();
    other.setup_key("k9", "binance", "ak9", "sk9");
    let planted = only_keyslot(&other);
    let bytes = std::fs::read(live(&other).join(format!("keyslots/{planted}.json"))).unwrap();
    tapsign_tests::at_rest::put_back(&live(&w).join(format!("keyslots/{planted}.json")), &bytes);
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    forge_manifest(&w, |m| {
        let slots = m["keyslots"].as_array_mut().unwrap();
        slots[0]["id"] = planted.clone().into();
        slots[0]["sha256"] = sha.into();
    });

    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "manifest.json does not verify");
    assert!(out.stderr.contains("--rebuild-manifest"), "{out:?}");
    let prompt = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Touch "))
        .unwrap();
    assert!(prompt.contains("read unverified"), "{out:?}");
    assert!(prompt.contains("your token"), "{out:?}");

    w.run(&["keystore", "rotate", "--rebuild-manifest"], "")
        .ok();
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k1."), "{out:?}");
    w.signs_with("k1", b"sk");
    assert!(std::fs::exists(live(&w).join(format!("keyslots/{ours}.json"))).unwrap());
}

/// Red-team round 21's recheck: the only keyslot with its fields reordered (content intact, its
/// checksum recomputed) is damaged, as any file not byte for byte tapsign's; but the unlock
/// said "the stored keys cannot be read again: move the keystore folder away", which loses
/// them, when the same fields written back in tapsign's order open. It now says the keys are
/// not lost, to keep the file, and how to get the exact file back.
#[test]
fn a_keyslot_with_its_fields_reordered_is_not_called_lost() {
    use sha2::Digest;
    let mut w = World::new();
    w.setup_key("k1", "binance", "ak", "sk");
    let path = live(&w)
        .join("keyslots")
        .join(format!("{}.json", only_keyslot(&w)));
    let genuine = std::fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&genuine).unwrap();
    let mut m = serde_json::Map::new();
    m.insert("checksum".into(), "".into());
    for (k, x) in v.as_object().unwrap() {
        if k != "checksum" {
            m.insert(k.clone(), x.clone());
        }
    }
    let body = serde_json::to_vec_pretty(&m).unwrap();
    m["checksum"] = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body))).into();
    let mut out = serde_json::to_vec_pretty(&m).unwrap();
    out.push(b'\n');
    tapsign_tests::at_rest::put_back(&path, &out);

    let list = w.run(&["token", "list"], "");
    let all = format!("{}{}", list.stdout, list.stderr);
    assert!(all.contains("likely intact: keep it"), "{list:?}");
    w.start_agent();
    let out = w.run(&["unlock"], "");
    out.fails_with(7, "no keyslot can be used");
    assert!(out.stderr.contains("the keys are not lost"), "{out:?}");
    assert!(!out.stderr.contains("cannot be read again"), "{out:?}");
    assert!(
        !out.stderr.contains("move the keystore folder away"),
        "{out:?}"
    );

    // The same fields in tapsign's form: it opens, as the message says.
    tapsign_tests::at_rest::put_back(&path, &genuine);
    let out = w.run(&["unlock"], "");
    assert!(out.ok().contains("Unlocked 1 key(s): k1."), "{out:?}");
}
