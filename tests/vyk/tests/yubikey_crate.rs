//! The `yubikey` crate (0.9.0-rc.0) against the virtual key on a private pcscd: the code path
//! tapsign's agent uses, unchanged.

// Helpers outside #[test] fns panic on purpose too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use tapsign_vyk::{Config, Stack, TouchMode, harness};
use yubikey::piv::{self, AlgorithmId, RetiredSlotId, SlotId};
use yubikey::{Error, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const PIN: &[u8] = b"123456";
const PUK: &[u8] = b"12345678";
const SLOT: SlotId = SlotId::Retired(RetiredSlotId::R1);

fn fw543() -> Config {
    Config {
        version: [5, 4, 3],
        serial: 15_000_001,
        ..Config::default()
    }
}

fn fw571() -> Config {
    Config {
        version: [5, 7, 1],
        serial: 15_000_002,
        ..Config::default()
    }
}

fn open(stack: &Stack, i: usize) -> YubiKey {
    YubiKey::open_by_serial(Serial(stack.key(i).serial())).expect("open the virtual key")
}

/// Enrolls a P-256 key in R1 (PIN once, touch always) the way tapsign does.
fn enroll(yk: &mut YubiKey) -> PublicKey {
    yk.verify_pin(PIN).unwrap();
    let mgm = MgmKey::get_default(yk).unwrap();
    yk.authenticate(&mgm).unwrap();
    let spki = piv::generate(
        yk,
        SLOT,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Always,
    )
    .unwrap();
    PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap()
}

/// A host-side ephemeral key, as the wrap side makes one.
fn ephemeral() -> (SecretKey, Vec<u8>) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let secret = SecretKey::from_slice(&bytes).unwrap();
    let point = secret.public_key().to_sec1_point(false).as_bytes().to_vec();
    (secret, point)
}

fn host_ecdh(secret: &SecretKey, card: &PublicKey) -> Vec<u8> {
    p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), card.as_affine())
        .raw_secret_bytes()
        .to_vec()
}

#[test]
fn open_by_serial_reports_version_and_serial() {
    harness::run(&[fw543()], |stack| {
        let yk = open(stack, 0);
        assert_eq!(yk.version().to_string(), "5.4.3");
        assert_eq!(yk.serial(), Serial(15_000_001));
        assert_eq!(yk.name(), stack.reader_name(0));
    });
}

#[test]
fn wrong_pin_counts_down_blocks_and_puk_unblocks() {
    harness::run(&[fw543()], |stack| {
        let mut yk = open(stack, 0);
        assert_eq!(yk.get_pin_retries().unwrap(), 3);
        assert!(matches!(
            yk.verify_pin(b"000000"),
            Err(Error::WrongPin { tries: 2 })
        ));
        assert!(matches!(
            yk.verify_pin(b"000000"),
            Err(Error::WrongPin { tries: 1 })
        ));
        assert!(matches!(
            yk.verify_pin(b"000000"),
            Err(Error::WrongPin { tries: 0 })
        ));
        // Blocked: even the right PIN fails (the crate maps 6983 to WrongPin{0} here)...
        assert!(matches!(
            yk.verify_pin(PIN),
            Err(Error::WrongPin { tries: 0 })
        ));
        // ...and CHANGE REFERENCE sees the block as PinLocked.
        assert!(matches!(
            yk.change_pin(PIN, b"654321"),
            Err(Error::PinLocked)
        ));
        yk.unblock_pin(PUK, b"654321").unwrap();
        assert_eq!(yk.get_pin_retries().unwrap(), 3);
        yk.verify_pin(b"654321").unwrap();
        // The empty VERIFY probe says "still verified" without costing a try.
        yk.verify_pin(&[]).unwrap();
    });
}

#[test]
fn default_management_key_authenticates_on_3des_and_aes_firmware() {
    harness::run(&[fw543(), fw571()], |stack| {
        for (i, expected) in [(0, "5.4.3"), (1, "5.7.1")] {
            let mut yk = open(stack, i);
            assert_eq!(yk.version().to_string(), expected);
            let mgm = MgmKey::get_default(&yk).unwrap();
            yk.authenticate(&mgm).unwrap();
        }
        // The other firmware's default algorithm is refused.
        let mut yk = open(stack, 1);
        let tdes = MgmKey::from_bytes(
            [
                1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
            Some(yubikey::MgmAlgorithmId::ThreeDes),
        )
        .unwrap();
        assert!(matches!(
            yk.authenticate(&tdes),
            Err(Error::AuthenticationError)
        ));
    });
}

#[test]
fn generate_needs_management_key() {
    harness::run(&[fw571()], |stack| {
        let mut yk = open(stack, 0);
        let r = piv::generate(
            &mut yk,
            SLOT,
            AlgorithmId::EccP256,
            PinPolicy::Once,
            TouchPolicy::Always,
        );
        assert!(matches!(r, Err(Error::AuthenticationError)), "{r:?}");
    });
}

#[test]
fn metadata_shows_policies_and_public_key() {
    harness::run(&[fw571()], |stack| {
        let mut yk = open(stack, 0);
        assert!(matches!(piv::metadata(&mut yk, SLOT), Err(Error::NotFound)));
        let public = enroll(&mut yk);
        let meta = piv::metadata(&mut yk, SLOT).unwrap();
        assert_eq!(meta.policy, Some((PinPolicy::Once, TouchPolicy::Always)));
        assert_eq!(meta.origin, Some(piv::Origin::Generated));
        let spki = meta.public.unwrap();
        let from_meta = PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
        assert_eq!(from_meta, public);
    });
}

/// IMPORT (`FE`) makes a key whose metadata says imported (tag `03` = 2), as a real YubiKey's
/// does: what `token add --piv --use-existing` reads to refuse a key whose private half was
/// outside the card (red-team round 26).
#[test]
fn metadata_says_an_imported_key_was_imported() {
    harness::run(&[fw571()], |stack| {
        let mut yk = open(stack, 0);
        let mgm = MgmKey::get_default(&yk).unwrap();
        yk.authenticate(&mgm).unwrap();
        piv::import_ecc_key(
            &mut yk,
            SLOT,
            AlgorithmId::EccP256,
            &[0x11; 32],
            TouchPolicy::Always,
            PinPolicy::Once,
        )
        .unwrap();
        let meta = piv::metadata(&mut yk, SLOT).unwrap();
        assert_eq!(meta.origin, Some(piv::Origin::Imported));
        assert_eq!(meta.policy, Some((PinPolicy::Once, TouchPolicy::Always)));
    });
}

#[test]
fn ecdh_matches_host_and_costs_one_touch_each() {
    harness::run(&[fw543()], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack, 0);
        let card_pk = enroll(&mut yk);
        assert_eq!(touch.touches(), 0, "generating asks for no touch");
        for n in 1..=3 {
            let (eph, point) = ephemeral();
            let shared = piv::decrypt_data(&mut yk, &point, AlgorithmId::EccP256, SLOT).unwrap();
            assert_eq!(shared.as_slice(), host_ecdh(&eph, &card_pk).as_slice());
            assert_eq!(touch.touches(), n);
        }
    });
}

#[test]
fn ecdh_without_pin_is_refused_before_any_touch() {
    harness::run(&[fw543()], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack, 0);
        enroll(&mut yk);
        drop(yk); // reset card: the PIN state is gone
        let mut yk = open(stack, 0);
        let (_, point) = ephemeral();
        let r = piv::decrypt_data(&mut yk, &point, AlgorithmId::EccP256, SLOT);
        assert!(matches!(r, Err(Error::AuthenticationError)), "{r:?}");
        assert_eq!(touch.requests(), 0);
    });
}

#[test]
fn touch_denied_is_authentication_error() {
    harness::run(&[fw543()], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack, 0);
        enroll(&mut yk);
        touch.set_mode(TouchMode::Deny {
            after: Duration::from_millis(200),
        });
        let (_, point) = ephemeral();
        let started = Instant::now();
        let r = piv::decrypt_data(&mut yk, &point, AlgorithmId::EccP256, SLOT);
        assert!(matches!(r, Err(Error::AuthenticationError)), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!((touch.touches(), touch.requests()), (0, 1));
    });
}

#[test]
fn held_touch_blocks_until_the_user_touches() {
    harness::run(&[fw543()], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack, 0);
        let card_pk = enroll(&mut yk);
        touch.set_mode(TouchMode::Hold {
            timeout: Duration::from_secs(10),
        });
        let (eph, point) = ephemeral();
        let shared = std::thread::scope(|s| {
            let op = s.spawn(|| piv::decrypt_data(&mut yk, &point, AlgorithmId::EccP256, SLOT));
            assert!(
                touch.wait_for_request(Duration::from_secs(5)),
                "card never asked"
            );
            assert!(!op.is_finished(), "the APDU must block until the touch");
            assert!(touch.touch());
            op.join().unwrap().unwrap()
        });
        assert_eq!(shared.as_slice(), host_ecdh(&eph, &card_pk).as_slice());
        assert_eq!(touch.touches(), 1);
    });
}

#[test]
fn ecdsa_signature_verifies_against_metadata_key() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;
    harness::run(&[fw571()], |stack| {
        let mut yk = open(stack, 0);
        let public = enroll(&mut yk);
        let hash = sha2::Sha256::digest(b"GET /api/v3/account");
        let der = piv::sign_data(&mut yk, &hash, AlgorithmId::EccP256, SLOT).unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        p256::ecdsa::VerifyingKey::from(&public)
            .verify_prehash(&hash, &sig)
            .unwrap();
    });
}

#[test]
fn pulled_card_reports_empty_then_present_again() {
    harness::run(&[fw543()], |stack| {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let name = std::ffi::CString::new(stack.reader_name(0)).unwrap();
        let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
        // The first call only reports the starting state.
        ctx.get_status_change(Duration::from_secs(5), &mut states)
            .unwrap();
        assert!(states[0].event_state().contains(pcsc::State::PRESENT));
        states[0].sync_current_state();

        stack.key(0).pull();
        ctx.get_status_change(Duration::from_secs(5), &mut states)
            .unwrap();
        assert!(states[0].event_state().contains(pcsc::State::EMPTY));
        assert!(matches!(
            YubiKey::open_by_serial(Serial(15_000_001)),
            Err(Error::NotFound)
        ));
        states[0].sync_current_state();

        stack.key(0).insert();
        ctx.get_status_change(Duration::from_secs(5), &mut states)
            .unwrap();
        assert!(states[0].event_state().contains(pcsc::State::PRESENT));
        open(stack, 0);
    });
}

#[test]
fn pull_forgets_pin_but_keeps_keys() {
    harness::run(&[fw543()], |stack| {
        let mut yk = open(stack, 0);
        let public = enroll(&mut yk);
        drop(yk);
        stack.pull(0).unwrap();
        stack.insert(0).unwrap();
        let mut yk = open(stack, 0);
        assert!(matches!(
            yk.verify_pin(&[]),
            Err(Error::WrongPin { tries: 3 })
        ));
        let meta = piv::metadata(&mut yk, SLOT).unwrap();
        let spki = meta.public.unwrap();
        assert_eq!(
            PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap(),
            public
        );
    });
}

#[test]
fn two_keys_open_by_serial_picks_the_right_one() {
    harness::run(&[fw543(), fw571()], |stack| {
        assert!(
            YubiKey::open().is_err(),
            "open() must refuse to choose between two keys"
        );
        for i in [1, 0] {
            let yk = open(stack, i);
            assert_eq!(yk.serial(), Serial(stack.key(i).serial()));
            assert_eq!(yk.name(), stack.reader_name(i));
        }
    });
}
