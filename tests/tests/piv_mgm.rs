//! The YubiKey's management key through `token add --piv` (red-team round 27): the factory
//! key, left in place, let any program running as the trader generate or import a key over
//! the enrolled slot (the keystore then never opened with that card) or change the management
//! key, with no PIN and no touch. `token add` now replaces it with a random key stored on the
//! card behind the PIN, in ykman's format. The real CLI, a private pcscd and the virtual
//! YubiKey (tests/vyk); see tests/tests/piv.rs for what the harness needs.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use tapsign_tests::World;
use tapsign_vyk::{Config, Fault, Stack, harness};
use yubikey::piv::{self, AlgorithmId, RetiredSlotId, SlotId};
use yubikey::{MgmAlgorithmId, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const PIN: &str = "123456\n";
const PUT_DATA: u8 = 0xDB;
const SET_MGM_KEY: u8 = 0xFF;
const ADMIN_DATA: u32 = 0x005F_FF00;
const PRINTED: u32 = 0x005F_C109;

fn fw(version: [u8; 3], serial: u32) -> Config {
    Config {
        version,
        serial,
        ..Config::default()
    }
}

fn open(stack: &Stack) -> YubiKey {
    YubiKey::open_by_serial(Serial(stack.key(0).serial())).unwrap()
}

/// Whether the factory management key still authenticates.
fn default_works(stack: &Stack) -> bool {
    let mut yk = open(stack);
    let default = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&default).is_ok()
}

/// The key stored behind the PIN, read as ykman and the `yubikey` crate read it, if it
/// authenticates.
fn stored_key(stack: &Stack) -> Option<Vec<u8>> {
    let mut yk = open(stack);
    yk.verify_pin(b"123456").unwrap();
    let key = MgmKey::get_protected(&mut yk).ok()?;
    yk.authenticate(&key).ok()?;
    Some(key.as_ref().to_vec())
}

/// ADMIN DATA's flags byte (`80 { 81 <flags> }`), `None` when the card has no such object.
fn admin_flags(stack: &Stack) -> Option<u8> {
    let mut yk = open(stack);
    let data = yk.fetch_object(ADMIN_DATA).ok()?;
    match data.as_slice() {
        [0x80, _, 0x81, 0x01, flags, ..] => Some(*flags),
        other => panic!("admin data not ykman's: {other:02X?}"),
    }
}

/// Whether `key` (of algorithm `alg`) authenticates.
fn authenticates(stack: &Stack, key: &[u8], alg: MgmAlgorithmId) -> bool {
    let mut yk = open(stack);
    let key = MgmKey::from_bytes(key, Some(alg)).unwrap();
    yk.authenticate(&key).is_ok()
}

/// What a program running as the trader can do with the factory key and no PIN: set
/// `key` (AES-192) as the management key when given, store `printed` in PRINTED as ykman
/// stores a key (`88 { 89 <printed> }`), and set ADMIN DATA's flags to `flags`.
fn plant(stack: &Stack, key: Option<&[u8; 24]>, printed: &[u8; 24], flags: u8) {
    let mut yk = open(stack);
    let default = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&default).unwrap();
    if let Some(key) = key {
        let key = MgmKey::from_bytes(key, Some(MgmAlgorithmId::Aes192)).unwrap();
        key.set_manual(&mut yk, false).unwrap();
        yk.authenticate(&key).unwrap();
    }
    let mut data = vec![0x88, 0x1A, 0x89, 0x18];
    data.extend_from_slice(printed);
    yk.save_object(PRINTED, &mut data).unwrap();
    let mut admin = [0x80, 0x03, 0x81, 0x01, flags];
    yk.save_object(ADMIN_DATA, &mut admin).unwrap();
}

/// PRINTED as the card gives it out after the PIN.
fn printed(stack: &Stack) -> Vec<u8> {
    let mut yk = open(stack);
    yk.verify_pin(b"123456").unwrap();
    yk.fetch_object(PRINTED).unwrap().to_vec()
}

/// `token add --piv` with `extra`: the card's PIN, after the PIN of the same card for the
/// touch that opens the keystore once there is one.
fn add(w: &World, extra: &[&str]) -> tapsign_tests::Run {
    let mut args = vec!["token", "add", "--piv"];
    args.extend_from_slice(extra);
    match w.home().join("keystore").join("manifest.json").exists() {
        true => w.run(&args, &format!("{PIN}{PIN}")),
        false => w.run(&args, PIN),
    }
}

/// After `token add`, the factory key opens nothing: a program with it cannot put a key of its
/// own in the enrolled slot. The random key is stored behind the PIN (flag 02 in ADMIN DATA,
/// `88 { 89 key }` in PRINTED), authenticates, and a second enrollment on the card reads it
/// and replaces it.
fn replaces_and_reuses(stack: &Stack, alg: MgmAlgorithmId, said: &str) {
    assert!(default_works(stack), "a factory-fresh card");
    let mut w = World::new();
    let out = add(&w, &[]);
    assert!(out.ok().contains("Enrolled YubiKey"), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("had the factory management key: it now has a random {said} one, stored on the card behind its PIN")),
        "{out:?}"
    );
    // Without the PIN, a program can still spend the PIN and PUK tries and reset the applet,
    // which wipes the slot: the line must not promise otherwise (red-team round 27).
    assert!(!out.stderr.contains("replace or wipe"), "{out:?}");
    assert!(
        out.stderr.contains("One can still wipe the card, by spending its PIN and PUK tries and resetting it: keep a second token enrolled."),
        "{out:?}"
    );
    assert!(!default_works(stack), "the factory key is gone");
    let mut yk = open(stack);
    let default = MgmKey::get_default(&yk).unwrap();
    assert!(yk.authenticate(&default).is_err());
    let slot = SlotId::Retired(RetiredSlotId::R1);
    let overwrite = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    );
    assert!(overwrite.is_err(), "the enrolled slot was overwritten");
    drop(yk);

    let stored = stored_key(stack).expect("the stored key authenticates");
    assert_eq!(stored.len(), 24);
    assert_eq!(admin_flags(stack), Some(0x02));
    let mut yk = open(stack);
    let meta = piv::metadata(
        &mut yk,
        SlotId::Management(piv::ManagementSlotId::Management),
    );
    assert_eq!(
        meta.unwrap().algorithm,
        piv::SlotAlgorithmId::Management(alg)
    );
    drop(yk);

    // A second slot on the same card: the stored key, read with the PIN, is not kept but
    // replaced (whoever stored it needed no PIN to), and the old one opens nothing.
    let out = add(&w, &["--slot", "R2"]);
    assert!(out.ok().contains("Enrolled YubiKey"), "{out:?}");
    assert!(!out.stderr.contains("factory management key"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "management key, stored behind its PIN, is replaced with a new random {said} one"
        )),
        "{out:?}"
    );
    let rotated = stored_key(stack).expect("the new stored key authenticates");
    assert_ne!(rotated, stored);
    assert!(!authenticates(stack, &stored, alg));
    assert_eq!(admin_flags(stack), Some(0x02));
    w.run(
        &["key", "add", "b", "--exchange", "binance"],
        "ak\nsk-0123456789\n",
    )
    .ok();
    w.start_agent_with(|c| {
        c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
    });
    assert!(w.run(&["unlock"], PIN).ok().contains("Unlocked 1 key(s)"));
}

#[test]
fn token_add_replaces_a_3des_factory_key_with_a_stored_aes_192_one() {
    harness::run(&[fw([5, 4, 3], 27_100_001)], |stack| {
        replaces_and_reuses(stack, MgmAlgorithmId::Aes192, "AES-192");
    });
}

#[test]
fn token_add_replaces_an_aes_factory_key_with_a_stored_aes_192_one() {
    harness::run(&[fw([5, 7, 1], 27_100_002)], |stack| {
        replaces_and_reuses(stack, MgmAlgorithmId::Aes192, "AES-192");
    });
}

/// Firmware before 5.4.2 takes no AES management key: a 3DES one.
#[test]
fn token_add_replaces_the_factory_key_with_3des_where_aes_is_not_taken() {
    harness::run(&[fw([5, 3, 1], 27_100_003)], |stack| {
        replaces_and_reuses(stack, MgmAlgorithmId::ThreeDes, "3DES");
    });
}

#[test]
fn keep_default_mgm_key_keeps_it_and_says_what_it_costs() {
    harness::run(&[fw([5, 7, 1], 27_100_004)], |stack| {
        let w = World::new();
        let out = add(&w, &["--keep-default-mgm-key"]);
        assert!(out.ok().contains("Enrolled YubiKey"), "{out:?}");
        assert!(
            out.stderr.contains(
                "WARNING: YubiKey 27100004 (PIV slot R1) keeps its factory management key"
            ),
            "{out:?}"
        );
        assert!(out.stderr.contains("no PIN and no touch"), "{out:?}");
        assert!(default_works(stack));
        assert_eq!(admin_flags(stack), None, "nothing stored");
        let out = w.run(
            &[
                "token",
                "add",
                "--piv",
                "--keep-default-mgm-key",
                "--custom-mgm-key",
            ],
            PIN,
        );
        assert_eq!(out.code, 2, "the two flags conflict: {out:?}");
        // Without the flag, the next enrollment replaces it.
        let out = add(&w, &["--slot", "R2"]);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(!default_works(stack));
        assert!(stored_key(stack).is_some());
    });
}

/// A step that fails before the card takes the new key (the card refuses a write) stops the
/// enrollment with what happened, and leaves a card that opens with the factory key, whose
/// objects do not claim a stored key it does not have; the next `token add` then finishes the
/// change.
#[test]
fn a_refused_step_leaves_a_usable_card_and_the_next_enrollment_finishes() {
    harness::run(&[fw([5, 4, 3], 27_100_005)], |stack| {
        let faults = &stack.key(0).config().faults;
        let w = World::new();
        // (instruction, commands let through, what is said)
        let steps = [
            (SET_MGM_KEY, 0, "refused the new management key"),
            (PUT_DATA, 0, "refused to store a new management key"),
        ];
        for (ins, pass, said) in steps {
            faults.set(ins, Some(Fault::Refuse { sw: 0x6A84, pass }));
            let out = add(&w, &[]);
            faults.set(ins, None);
            out.fails_with(6, said);
            assert!(
                out.stderr
                    .contains("its management key is still the factory default"),
                "{out:?}"
            );
            assert!(!out.stderr.contains("Enrolled"), "{out:?}");
            assert!(
                default_works(stack),
                "{said}: the factory key still opens it"
            );
            assert_eq!(admin_flags(stack), None, "{said}");
            assert!(
                !w.home().join("keystore").join("manifest.json").exists(),
                "nothing enrolled"
            );
            if ins == SET_MGM_KEY {
                // PRINTED put back as it was: absent.
                let mut yk = open(stack);
                yk.verify_pin(b"123456").unwrap();
                assert!(yk.fetch_object(PRINTED).is_err(), "PRINTED put back");
            }
        }

        // The flag is written last: refused, the card has the new key, stored behind the PIN
        // but not flagged, and the next run finds it there.
        faults.set(
            PUT_DATA,
            Some(Fault::Refuse {
                sw: 0x6A84,
                pass: 1,
            }),
        );
        let out = add(&w, &[]);
        faults.set(PUT_DATA, None);
        out.fails_with(6, "refused to mark it so");
        assert!(
            out.stderr.contains("Run `tapsign token add --piv` again"),
            "{out:?}"
        );
        assert!(!default_works(stack));
        assert_eq!(admin_flags(stack), None);
        let unflagged = stored_key(stack).expect("the key in use is in PRINTED");

        let out = add(&w, &[]);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(
            out.stderr.contains("is replaced with a new random"),
            "{out:?}"
        );
        assert!(!default_works(stack));
        assert_ne!(stored_key(stack).unwrap(), unflagged);
        assert_eq!(admin_flags(stack), Some(0x02));
    });
}

/// A card whose ADMIN DATA says the key is stored, with a stored key that does not
/// authenticate (an earlier tapsign cut off between its writes, or another tool, left it):
/// tapsign tries the factory key next and, when it works, stores a new one; when neither
/// works, it says so and how to go on.
#[test]
fn a_stored_key_that_does_not_authenticate_is_said() {
    harness::run(&[fw([5, 7, 1], 27_100_006)], |stack| {
        let w = World::new();
        plant(stack, None, &[0x11; 24], 0x02);
        let out = add(&w, &[]);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(
            out.stderr.contains("had the factory management key"),
            "{out:?}"
        );
        assert!(stored_key(stack).is_some());

        // Another tool sets a key of its own and leaves the stored one in place.
        let mut yk = open(stack);
        yk.verify_pin(b"123456").unwrap();
        let stored = MgmKey::get_protected(&mut yk).unwrap();
        yk.authenticate(&stored).unwrap();
        let other = MgmKey::from_bytes([0x42u8; 24], Some(MgmAlgorithmId::Aes192)).unwrap();
        other.set_manual(&mut yk, false).unwrap();
        // set_manual clears the flag and the stored key: put them back as a careless tool
        // would have left them.
        let mut admin = [0x80, 0x03, 0x81, 0x01, 0x02];
        yk.save_object(ADMIN_DATA, &mut admin).unwrap();
        drop(yk);
        let out = add(&w, &["--slot", "R2"]);
        out.fails_with(6, "says its management key is stored behind its PIN, but");
        assert!(out.stderr.contains("--custom-mgm-key"), "{out:?}");

        // Doing as told works with the card's AES-192 key: 48 hex digits were taken as 3DES
        // alone, so the key was refused as wrong. A key of the wrong length for the card's
        // algorithm is said so.
        let custom = |key: &str| {
            w.run(
                &["token", "add", "--piv", "--slot", "R2", "--custom-mgm-key"],
                &format!("{PIN}{PIN}{key}\n"),
            )
        };
        let out = custom(&"42".repeat(16));
        out.fails_with(
            6,
            "management key is AES-192, 48 hex digits, and that one has 32",
        );
        let out = custom(&"42".repeat(24));
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert!(authenticates(stack, &[0x42; 24], MgmAlgorithmId::Aes192));
    });
}

/// A program running as the trader, with the factory key and no PIN, stores a key of its own
/// behind the PIN before the card's first enrollment, as ykman's `--protect` would (writing
/// PRINTED and the flag takes the management key, not the PIN). `token add` reads it with the
/// PIN and replaces it: the program's key no longer authenticates, so it cannot generate over
/// the enrolled slot (red-team round 27).
#[test]
fn a_key_another_program_stored_before_enrollment_is_replaced() {
    harness::run(&[fw([5, 4, 3], 27_100_008)], |stack| {
        const MALWARE: [u8; 24] = [0x5A; 24];
        plant(stack, Some(&MALWARE), &MALWARE, 0x02);
        let w = World::new();
        let out = add(&w, &[]);
        assert!(out.ok().contains("Enrolled YubiKey"), "{out:?}");
        assert!(
            out.stderr.contains("YubiKey 27100008 (PIV slot R1)'s management key, stored behind its PIN, is replaced with a new random AES-192 one"),
            "{out:?}"
        );
        assert!(!authenticates(stack, &MALWARE, MgmAlgorithmId::Aes192));
        let mut yk = open(stack);
        let malware = MgmKey::from_bytes(MALWARE, Some(MgmAlgorithmId::Aes192)).unwrap();
        assert!(yk.authenticate(&malware).is_err());
        let overwrite = piv::generate(
            &mut yk,
            SlotId::Retired(RetiredSlotId::R1),
            AlgorithmId::EccP256,
            PinPolicy::Never,
            TouchPolicy::Never,
        );
        assert!(overwrite.is_err(), "the enrolled slot was overwritten");
        drop(yk);
        let stored = stored_key(stack).expect("the new stored key authenticates");
        assert_ne!(stored, MALWARE);
        assert_eq!(admin_flags(stack), Some(0x02));
        // ykman's form, with nothing of the old key left beside it.
        let mut want = vec![0x88, 0x1A, 0x89, 0x18];
        want.extend_from_slice(&stored);
        assert_eq!(printed(stack), want);
    });
}

/// What `ykman piv keys generate` says with the right PIN (a blank line to its management
/// key prompt: the factory key), on slot 9D.
fn ykman_generate(stack: &Stack) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("ykman")
        .args(["--reader", &stack.reader_name(0)])
        .args([
            "piv", "keys", "generate", "--pin", "123456", "-a", "ECCP256", "9d", "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Wherever a replacement stops (a card pulled, a kill, a refused write: here refusals from
/// that step on), the card never says a key is stored while it uses another, so ykman never
/// answers the right PIN with "PIN verification failed", and the next `token add` finishes.
/// A flag left so by an earlier tapsign (or another tool) is cleared even under
/// --keep-default-mgm-key (red-team round 27).
#[test]
fn no_interrupted_replacement_makes_ykman_blame_the_pin() {
    harness::run_with_tools(&["ykman"], &[fw([5, 4, 3], 27_100_009)], |stack| {
        const BLAME: &str = "PIN verification failed";
        let faults = &stack.key(0).config().faults;
        let w = World::new();
        // The old order's state: the flag over a card still on the factory key.
        plant(stack, None, &[0x11; 24], 0x02);
        assert!(ykman_generate(stack).contains(BLAME), "the premise");
        let out = add(&w, &["--keep-default-mgm-key"]);
        assert!(out.ok().contains("Enrolled"), "{out:?}");
        assert_eq!(admin_flags(stack), Some(0x00));
        assert!(!ykman_generate(stack).contains(BLAME));

        // (SET refused too, PUT DATA let through before the rest are refused, what is said,
        // what the next run says):
        // - on the factory key: PRINTED written, SET refused, PRINTED not put back;
        // - on a stored flagged key: the flag cleared, PRINTED (new and old key) written,
        //   SET refused, nothing put back;
        // - on a stored flagged key: all but the flag written after SET.
        let steps = [
            (
                true,
                1,
                "refused the new management key",
                "had the factory management key",
            ),
            (
                true,
                2,
                "refused the new management key",
                "is replaced with a new random",
            ),
            (
                false,
                3,
                "refused to mark it so",
                "is replaced with a new random",
            ),
        ];
        for ((set, pass, said, next), slot) in steps.into_iter().zip(["R2", "R3", "R4"]) {
            faults.set(PUT_DATA, Some(Fault::Refuse { sw: 0x6A84, pass }));
            if set {
                faults.set(
                    SET_MGM_KEY,
                    Some(Fault::Refuse {
                        sw: 0x6A84,
                        pass: 0,
                    }),
                );
            }
            let out = add(&w, &["--slot", slot]);
            faults.set(PUT_DATA, None);
            faults.set(SET_MGM_KEY, None);
            out.fails_with(6, said);
            let ykman = ykman_generate(stack);
            assert!(!ykman.contains(BLAME), "{said}: {ykman}");
            let out = add(&w, &["--slot", slot]);
            assert!(out.ok().contains("Enrolled"), "{slot}: {out:?}");
            assert!(out.stderr.contains(next), "{slot}: {out:?}");
            assert_eq!(admin_flags(stack), Some(0x02), "{slot}");
            assert!(stored_key(stack).is_some(), "{slot}");
            let ykman = ykman_generate(stack);
            assert!(!ykman.contains("Error"), "{slot}: {ykman}");
        }
    });
}

/// ykman reads the stored key as its own `--protect` stores it: `piv info` says so, and it
/// generates a key with the PIN alone.
#[test]
fn ykman_finds_the_stored_key_with_the_pin() {
    harness::run_with_tools(&["ykman"], &[fw([5, 4, 3], 27_100_007)], |stack| {
        let w = World::new();
        assert!(add(&w, &[]).ok().contains("Enrolled"));
        let reader = stack.reader_name(0);
        let ykman = |args: &[&str]| {
            let mut cmd = std::process::Command::new("ykman");
            cmd.args(["--reader", &reader]).args(args);
            cmd.output().unwrap()
        };
        let info = ykman(&["piv", "info"]);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.contains("Management key is stored on the YubiKey, protected by PIN"),
            "{info:?}"
        );
        assert!(!text.contains("default Management key"), "{info:?}");
        let generated = ykman(&[
            "piv", "keys", "generate", "--pin", "123456", "-a", "ECCP256", "86", "-",
        ]);
        assert!(generated.status.success(), "{generated:?}");
    });
}
