//! What kind of key to be: which applets it has and how they behave.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    /// Commands the card (or its reader) answers wrongly: none by default. Shared between
    /// clones, so a test can arm a fault on a card already running (an enrolled key whose next
    /// answer comes back cut) through `stack.key(i).config().faults`.
    pub faults: Faults,
}

/// A wrong answer a real card or reader can give, in place of the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The answer's data cut to its first half, its status word kept: a transfer that lost
    /// its tail (a worn contact, a USB hiccup), or an applet of another make whose answer to
    /// a YubiKey-only command (GET VERSION `FD`) is shorter than a YubiKey's.
    Cut,
    /// `90 00` with no data: an applet that takes a command it does not implement for a
    /// success.
    NoData,
    /// 40 bytes of `A5` then `90 00`: noise where the answer should be.
    Junk,
    /// The command is not run and is answered with status word `sw`, once `pass` more
    /// commands with the same instruction have been served: a card that refuses a write
    /// partway through a sequence (a YubiKey answers PUT DATA with `6A84` when its object
    /// store is full, and any command with `6581` on a memory failure).
    Refuse { sw: u16, pass: u8 },
}

/// The commands answered with a [`Fault`], by instruction byte (`FD` GET VERSION, `F8` GET
/// SERIAL, `F7` GET METADATA, `47` GENERATE ...). Each answer to such a command is replaced
/// (the last piece of a chained answer, as the host receives it) until the fault is cleared.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<BTreeMap<u8, Fault>>>);

impl Faults {
    /// A card that answers `ins` with `fault` from the start.
    pub fn with(ins: u8, fault: Fault) -> Faults {
        let faults = Faults::default();
        faults.set(ins, Some(fault));
        faults
    }

    /// Answer `ins` with `fault` from now on (`None`: answer it right again).
    pub fn set(&self, ins: u8, fault: Option<Fault>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match fault {
            Some(f) => map.insert(ins, f),
            None => map.remove(&ins),
        };
    }

    /// The status word to answer the command APDU `apdu` with, without running it, when a
    /// [`Fault::Refuse`] armed for its instruction has let its `pass` commands through.
    pub fn refusal(&self, apdu: &[u8]) -> Option<u16> {
        let &ins = apdu.get(1)?;
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&ins)? {
            Fault::Refuse { pass, .. } if *pass > 0 => {
                *pass -= 1;
                None
            }
            Fault::Refuse { sw, .. } => Some(*sw),
            _ => None,
        }
    }

    /// `answer` (data and status word) to the command APDU `apdu`, as the fault armed for
    /// its instruction makes it.
    pub fn apply(&self, apdu: &[u8], answer: Vec<u8>) -> Vec<u8> {
        let Some(&ins) = apdu.get(1) else {
            return answer;
        };
        let fault = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ins)
            .copied();
        match fault {
            // Handled before the command runs (`refusal`).
            None | Some(Fault::Refuse { .. }) => answer,
            Some(Fault::Cut) => {
                let (data, sw) = answer.split_at(answer.len().saturating_sub(2));
                let mut cut = data[..data.len() / 2].to_vec();
                cut.extend_from_slice(sw);
                cut
            }
            Some(Fault::NoData) => vec![0x90, 0x00],
            Some(Fault::Junk) => {
                let mut junk = vec![0xA5; 40];
                junk.extend_from_slice(&[0x90, 0x00]);
                junk
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: [5, 4, 3],
            serial: 12_345_678,
            touch_cache: Duration::from_secs(15),
            piv: true,
            fido2: None,
            faults: Faults::default(),
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
