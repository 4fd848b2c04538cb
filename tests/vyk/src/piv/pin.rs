//! PIN and PUK: reference data with a retry counter (VERIFY 20, CHANGE REFERENCE 24,
//! RESET RETRY 2C). No security: tests only.

use crate::apdu::Sw;

pub const DEFAULT_PIN: &[u8] = b"123456";
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// PIV sends PINs as 8 bytes, padded with 0xFF.
pub const PADDED_LEN: usize = 8;

/// A PIN or PUK with its retry counter.
pub struct Reference {
    value: [u8; PADDED_LEN],
    default: [u8; PADDED_LEN],
    pub max_tries: u8,
    pub tries_left: u8,
}

/// Pads a PIN to the 8-byte form the card compares.
pub fn pad(pin: &[u8]) -> [u8; PADDED_LEN] {
    let mut out = [0xFF; PADDED_LEN];
    let n = pin.len().min(PADDED_LEN);
    out[..n].copy_from_slice(&pin[..n]);
    out
}

/// Whether an 8-byte padded value holds an acceptable PIN (6 to 8 bytes before the padding).
fn well_formed(padded: &[u8]) -> bool {
    let len = padded
        .iter()
        .position(|b| *b == 0xFF)
        .unwrap_or(padded.len());
    padded.len() == PADDED_LEN && (6..=8).contains(&len) && padded[len..].iter().all(|b| *b == 0xFF)
}

impl Reference {
    pub fn new(default: &[u8], max_tries: u8) -> Reference {
        Reference {
            value: pad(default),
            default: pad(default),
            max_tries,
            tries_left: max_tries,
        }
    }

    pub fn is_blocked(&self) -> bool {
        self.tries_left == 0
    }

    pub fn is_default(&self) -> bool {
        self.value == self.default
    }

    /// Status for an empty VERIFY: how many tries are left.
    pub fn status(&self) -> Sw {
        if self.is_blocked() {
            Sw::AUTH_BLOCKED
        } else {
            Sw::tries_left(self.tries_left)
        }
    }

    /// Checks `candidate` (padded); a wrong one costs a try. The try that empties the counter
    /// answers `63C0`, later ones `6983`, as SP 800-73 cards do.
    pub fn check(&mut self, candidate: &[u8]) -> Sw {
        if self.is_blocked() {
            return Sw::AUTH_BLOCKED;
        }
        if candidate.len() != PADDED_LEN {
            return Sw::WRONG_DATA;
        }
        if candidate == self.value {
            self.tries_left = self.max_tries;
            Sw::OK
        } else {
            self.tries_left -= 1;
            Sw::tries_left(self.tries_left)
        }
    }

    /// Replaces the value after the caller checked the old one (or the PUK).
    pub fn set(&mut self, new: &[u8]) -> Sw {
        if !well_formed(new) {
            return Sw::WRONG_DATA;
        }
        self.value.copy_from_slice(new);
        self.tries_left = self.max_tries;
        Sw::OK
    }

    /// Back to the factory value with `max_tries` tries (SET PIN RETRIES, RESET).
    pub fn reset(&mut self, max_tries: u8) {
        self.value = self.default;
        self.max_tries = max_tries;
        self.tries_left = max_tries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_wrong_tries_block() {
        let mut pin = Reference::new(DEFAULT_PIN, 3);
        assert_eq!(pin.check(&pad(b"000000")), Sw(0x63C2));
        assert_eq!(pin.check(&pad(b"000000")), Sw(0x63C1));
        assert_eq!(pin.check(&pad(b"000000")), Sw(0x63C0));
        assert_eq!(pin.check(&pad(DEFAULT_PIN)), Sw::AUTH_BLOCKED);
        assert_eq!(pin.status(), Sw::AUTH_BLOCKED);
    }

    #[test]
    fn right_pin_restores_tries() {
        let mut pin = Reference::new(DEFAULT_PIN, 3);
        pin.check(&pad(b"000000"));
        assert_eq!(pin.check(&pad(DEFAULT_PIN)), Sw::OK);
        assert_eq!(pin.status(), Sw(0x63C3));
    }

    #[test]
    fn short_new_pin_is_refused() {
        let mut pin = Reference::new(DEFAULT_PIN, 3);
        assert_eq!(pin.set(&pad(b"123")), Sw::WRONG_DATA);
    }
}
