//! What kind of key to be: which applets it has and how they behave.

use std::time::Duration;

use crate::fido2::Fido2Config;

/// A virtual key's configuration. The default is a YubiKey 5 with PIV only, so tests that
/// predate the FIDO2 applet see exactly the card they were written against.
#[derive(Debug, Clone)]
pub struct Config {
    /// Firmware version, e.g. `[5, 4, 3]` (3DES default management key) or `[5, 7, 1]` (AES-192).
    pub version: [u8; 3],
    pub serial: u32,
    /// How long a touch counts for slots with the Cached touch policy (15 s on a real key).
    pub touch_cache: Duration,
    /// Whether the PIV applet is there. `false` (with `fido2` set) models a FIDO2-only key
    /// such as the Security Key series: SELECT PIV answers `6A82`.
    pub piv: bool,
    /// The FIDO2 applet (CTAP 2.1 over ISO 7816), if the key has one.
    pub fido2: Option<Fido2Config>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: [5, 4, 3],
            serial: 12_345_678,
            touch_cache: Duration::from_secs(15),
            piv: true,
            fido2: None,
        }
    }
}

impl Config {
    /// A YubiKey 5 with both PIV and FIDO2.
    pub fn with_fido2(fido2: Fido2Config) -> Config {
        Config {
            fido2: Some(fido2),
            ..Config::default()
        }
    }

    /// A FIDO2-only key (no PIV applet).
    pub fn fido2_only(fido2: Fido2Config) -> Config {
        Config {
            piv: false,
            fido2: Some(fido2),
            ..Config::default()
        }
    }
}
