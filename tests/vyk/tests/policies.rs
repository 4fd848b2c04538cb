//! Card rules the agent depends on, seen through the `yubikey` crate: PIN and touch
//! policies, a touch-protected and a PIN-protected management key, data objects (with
//! command and response chaining), state lost on SELECT, and RESET.

// Helpers outside #[test] fns panic on purpose too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use p256::SecretKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use tapsign_vyk::{Config, Stack, TouchMode, harness};
use yubikey::piv::{self, AlgorithmId, RetiredSlotId, SlotId};
use yubikey::{Error, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const PIN: &[u8] = b"123456";
const SLOT: SlotId = SlotId::Retired(RetiredSlotId::R2);

fn config(version: [u8; 3]) -> Config {
    Config {
        version,
        serial: 16_000_000,
        ..Config::default()
    }
}

fn open(stack: &Stack) -> YubiKey {
    YubiKey::open_by_serial(Serial(stack.key(0).serial())).unwrap()
}

fn admin(yk: &mut YubiKey) {
    yk.verify_pin(PIN).unwrap();
    yk.authenticate(&MgmKey::get_default(yk).unwrap()).unwrap();
}

fn peer_point() -> Vec<u8> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let secret = SecretKey::from_slice(&bytes).unwrap();
    secret.public_key().to_sec1_point(false).as_bytes().to_vec()
}

fn ecdh(yk: &mut YubiKey) -> yubikey::Result<yubikey::Buffer> {
    piv::decrypt_data(yk, &peer_point(), AlgorithmId::EccP256, SLOT)
}

#[test]
fn pin_policy_always_needs_the_pin_before_each_operation() {
    harness::run(&[config([5, 4, 3])], |stack| {
        let mut yk = open(stack);
        admin(&mut yk);
        let (pin, touch) = (PinPolicy::Always, TouchPolicy::Never);
        piv::generate(&mut yk, SLOT, AlgorithmId::EccP256, pin, touch).unwrap();
        ecdh(&mut yk).unwrap();
        assert!(matches!(ecdh(&mut yk), Err(Error::AuthenticationError)));
        yk.verify_pin(PIN).unwrap();
        ecdh(&mut yk).unwrap();
        assert_eq!(stack.key(0).touch().requests(), 0, "touch policy Never");
    });
}

#[test]
fn cached_touch_covers_the_window_then_expires() {
    let short_cache = Config {
        touch_cache: Duration::from_millis(300),
        ..config([5, 4, 3])
    };
    harness::run(&[short_cache], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack);
        admin(&mut yk);
        let (pin, cached) = (PinPolicy::Once, TouchPolicy::Cached);
        piv::generate(&mut yk, SLOT, AlgorithmId::EccP256, pin, cached).unwrap();
        ecdh(&mut yk).unwrap();
        ecdh(&mut yk).unwrap();
        assert_eq!(
            touch.touches(),
            1,
            "the second one rides on the cached touch"
        );
        // The window is the behaviour under test, so waiting it out is the test.
        std::thread::sleep(Duration::from_millis(350));
        ecdh(&mut yk).unwrap();
        assert_eq!(touch.touches(), 2);
    });
}

#[test]
fn management_key_set_with_touch_needs_a_touch_to_authenticate() {
    harness::run(&[config([5, 7, 1])], |stack| {
        let touch = stack.key(0).touch();
        let mut yk = open(stack);
        admin(&mut yk);
        let mut rng = getrandom::SysRng;
        let key = MgmKey::generate_for(&yk, &mut rng).unwrap();
        key.set_manual(&mut yk, true).unwrap();
        drop(yk);
        let mut yk = open(stack);
        touch.set_mode(TouchMode::Deny {
            after: Duration::from_millis(50),
        });
        assert!(matches!(
            yk.authenticate(&key),
            Err(Error::AuthenticationError)
        ));
        touch.set_mode(TouchMode::Approve);
        yk.authenticate(&key).unwrap();
        assert_eq!((touch.touches(), touch.requests()), (1, 2));
    });
}

/// age-plugin-yubikey's pattern: a random management key stored PIN-protected on the card.
#[test]
fn pin_protected_management_key_round_trip() {
    harness::run(&[config([5, 7, 1])], |stack| {
        let mut yk = open(stack);
        admin(&mut yk);
        let key = MgmKey::generate_for(&yk, &mut getrandom::SysRng).unwrap();
        key.set_protected(&mut yk).unwrap();
        drop(yk);

        let mut yk = open(stack);
        // The protected object (printed information) is readable only after the PIN.
        assert!(MgmKey::get_protected(&mut yk).is_err());
        yk.verify_pin(PIN).unwrap();
        let stored = MgmKey::get_protected(&mut yk).unwrap();
        assert_eq!(stored.as_ref(), key.as_ref());
        yk.authenticate(&stored).unwrap();
        let default = MgmKey::get_default(&yk).unwrap();
        assert!(
            yk.authenticate(&default).is_err(),
            "the default key is gone"
        );
    });
}

#[test]
fn objects_round_trip_through_command_and_response_chaining() {
    // A retired-slot certificate object; 600 bytes needs both chaining directions.
    const OBJECT: u32 = 0x005F_C10D;
    harness::run(&[config([5, 4, 3])], |stack| {
        let mut yk = open(stack);
        assert!(matches!(yk.fetch_object(OBJECT), Err(Error::NotFound)));
        let mut value: Vec<u8> = (0..600u16).map(|i| (i % 251) as u8).collect();
        let r = yk.save_object(OBJECT, &mut value.clone());
        assert!(matches!(r, Err(Error::AuthenticationError)), "{r:?}");
        admin(&mut yk);
        yk.save_object(OBJECT, &mut value).unwrap();
        drop(yk);
        let mut yk = open(stack);
        assert_eq!(
            yk.fetch_object(OBJECT).unwrap().as_slice(),
            value.as_slice()
        );
    });
}

/// The crate's `get_pin_retries` re-SELECTs the applet, and SELECT drops the PIN: probe
/// with `verify_pin(&[])` instead (yubikey 0.9.0-rc.0 `YubiKey::get_pin_retries`).
#[test]
fn get_pin_retries_unverifies_the_pin() {
    harness::run(&[config([5, 4, 3])], |stack| {
        let mut yk = open(stack);
        yk.verify_pin(PIN).unwrap();
        yk.verify_pin(&[]).unwrap();
        assert_eq!(yk.get_pin_retries().unwrap(), 3);
        assert!(matches!(
            yk.verify_pin(&[]),
            Err(Error::WrongPin { tries: 3 })
        ));
    });
}

#[test]
fn reset_needs_pin_and_puk_blocked_and_wipes_keys() {
    harness::run(&[config([5, 7, 1])], |stack| {
        let mut yk = open(stack);
        admin(&mut yk);
        let (pin, touch) = (PinPolicy::Once, TouchPolicy::Always);
        piv::generate(&mut yk, SLOT, AlgorithmId::EccP256, pin, touch).unwrap();
        assert!(yk.reset_device().is_err(), "PIN and PUK are not blocked");
        for _ in 0..3 {
            let _ = yk.verify_pin(b"000000");
        }
        yk.block_puk().unwrap();
        yk.reset_device().unwrap();
        assert!(matches!(piv::metadata(&mut yk, SLOT), Err(Error::NotFound)));
        yk.verify_pin(PIN).unwrap();
        yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
    });
}
