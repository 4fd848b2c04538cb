//! The management key (slot 9B) and its mutual authentication (GENERAL AUTHENTICATE with a
//! witness and a challenge), in 3DES and AES. Factory default key and algorithm depend on the
//! firmware (firmware-notes/default-management-key.md).

use aes::{Aes128, Aes192, Aes256};
use des::TdesEde3;
use des::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::apdu::{Response, Sw};
use crate::tlv;

/// The factory management key, as 3DES (before 5.7) or AES-192 (5.7 and later).
pub const DEFAULT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// Management key algorithms by their PIV algorithm id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmAlg {
    Tdes = 0x03,
    Aes128 = 0x08,
    Aes192 = 0x0A,
    Aes256 = 0x0C,
}

impl MgmAlg {
    pub fn from_id(id: u8) -> Option<MgmAlg> {
        Some(match id {
            0x03 => MgmAlg::Tdes,
            0x08 => MgmAlg::Aes128,
            0x0A => MgmAlg::Aes192,
            0x0C => MgmAlg::Aes256,
            _ => return None,
        })
    }

    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn key_len(self) -> usize {
        match self {
            MgmAlg::Tdes | MgmAlg::Aes192 => 24,
            MgmAlg::Aes128 => 16,
            MgmAlg::Aes256 => 32,
        }
    }

    /// Witness and challenge length: one cipher block.
    pub fn block_len(self) -> usize {
        match self {
            MgmAlg::Tdes => 8,
            _ => 16,
        }
    }
}

/// The card's management key. No security: tests only.
pub struct MgmKey {
    pub alg: MgmAlg,
    key: Vec<u8>,
    /// Set with SET MGM KEY P2=FE: authentication then also needs a touch.
    pub touch_required: bool,
}

impl MgmKey {
    /// The factory key: AES-192 from firmware 5.7 on, 3DES before.
    pub fn factory(version: [u8; 3]) -> MgmKey {
        let alg = if version >= [5, 7, 0] {
            MgmAlg::Aes192
        } else {
            MgmAlg::Tdes
        };
        MgmKey {
            alg,
            key: DEFAULT_KEY.to_vec(),
            touch_required: false,
        }
    }

    /// `None` if the length does not fit the algorithm.
    pub fn new(alg: MgmAlg, key: &[u8], touch_required: bool) -> Option<MgmKey> {
        (key.len() == alg.key_len()).then(|| MgmKey {
            alg,
            key: key.to_vec(),
            touch_required,
        })
    }

    pub fn is_default(&self) -> bool {
        self.key == DEFAULT_KEY
    }

    /// Encrypts (or decrypts) one block in place; ECB on a single block is what PIV does.
    fn crypt(&self, block: &mut [u8], encrypt: bool) -> Option<()> {
        macro_rules! run {
            ($c:ty) => {{
                let c = <$c>::new_from_slice(&self.key).ok()?;
                let b = block.try_into().ok()?;
                if encrypt {
                    c.encrypt_block(b)
                } else {
                    c.decrypt_block(b)
                }
            }};
        }
        match self.alg {
            MgmAlg::Tdes => run!(TdesEde3),
            MgmAlg::Aes128 => run!(Aes128),
            MgmAlg::Aes192 => run!(Aes192),
            MgmAlg::Aes256 => run!(Aes256),
        }
        Some(())
    }

    pub fn encrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        let mut b = block.to_vec();
        self.crypt(&mut b, true).map(|()| b)
    }
}

/// Where a mutual authentication stands.
#[derive(Default)]
pub enum AuthState {
    #[default]
    Idle,
    /// Step 1 answered: the host must send back this witness, decrypted.
    WitnessSent(Vec<u8>),
}

/// What step 2 decided.
pub enum Step {
    /// Send this response; authentication is not (yet) granted.
    Reply(Response),
    /// The host proved the key; answer its challenge with this response.
    Authenticated(Response),
}

/// One GENERAL AUTHENTICATE to slot 9B. `data` is the command data (`7C ...`).
pub fn authenticate(key: &MgmKey, p1: u8, data: &[u8], state: &mut AuthState) -> Step {
    let reply = |sw: Sw| Step::Reply(sw.into());
    // A 3DES request to an AES key (the 0.8 crate on 5.7+) is refused like a real key does.
    if MgmAlg::from_id(p1) != Some(key.alg) {
        *state = AuthState::Idle;
        return reply(Sw::WRONG_DATA);
    }
    let Some((0x7C, inner, [])) = tlv::take(data) else {
        return reply(Sw::WRONG_DATA);
    };
    let Some(items) = tlv::parse_all(inner) else {
        return reply(Sw::WRONG_DATA);
    };
    let block = key.alg.block_len();
    match (tlv::find(&items, 0x80), tlv::find(&items, 0x81)) {
        // Step 1: the host asks for a witness.
        (Some([]), None) => {
            let mut witness = vec![0u8; block];
            if getrandom::fill(&mut witness).is_err() {
                return reply(Sw(0x6F00));
            }
            let Some(sealed) = key.encrypt(&witness) else {
                return reply(Sw::WRONG_DATA);
            };
            *state = AuthState::WitnessSent(witness);
            let body = tlv::tlv(&[0x80], &sealed);
            Step::Reply(Response::ok(tlv::tlv(&[0x7C], &body)))
        }
        // Step 2: the decrypted witness and the host's challenge.
        (Some(answer), Some(challenge)) => {
            let expected = std::mem::take(state);
            let AuthState::WitnessSent(witness) = expected else {
                return reply(Sw::CONDITIONS_NOT_SATISFIED);
            };
            if answer != witness.as_slice() || challenge.len() != block {
                return reply(Sw::SECURITY_STATUS);
            }
            let Some(sealed) = key.encrypt(challenge) else {
                return reply(Sw::WRONG_DATA);
            };
            let body = tlv::tlv(&[0x82], &sealed);
            Step::Authenticated(Response::ok(tlv::tlv(&[0x7C], &body)))
        }
        _ => reply(Sw::WRONG_DATA),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays the host side of the exchange the way the `yubikey` crate does.
    fn host_auth(key: &MgmKey) -> bool {
        let mut state = AuthState::Idle;
        let p1 = key.alg.id();
        let Step::Reply(r1) = authenticate(key, p1, &[0x7C, 2, 0x80, 0], &mut state) else {
            panic!("step 1 cannot authenticate");
        };
        let mut witness = r1.data[4..].to_vec();
        key.crypt(&mut witness, false).unwrap();
        let challenge = vec![0x42; key.alg.block_len()];
        let mut body = tlv::tlv(&[0x80], &witness);
        body.extend(tlv::tlv(&[0x81], &challenge));
        match authenticate(key, p1, &tlv::tlv(&[0x7C], &body), &mut state) {
            Step::Authenticated(r) => r.data[4..] == key.encrypt(&challenge).unwrap()[..],
            Step::Reply(_) => false,
        }
    }

    #[test]
    fn factory_keys_authenticate_in_both_algorithms() {
        assert!(host_auth(&MgmKey::factory([5, 4, 3])));
        assert!(host_auth(&MgmKey::factory([5, 7, 1])));
        assert_eq!(MgmKey::factory([5, 7, 1]).alg, MgmAlg::Aes192);
    }

    #[test]
    fn tdes_request_to_aes_key_is_6a80() {
        let key = MgmKey::factory([5, 7, 1]);
        let Step::Reply(r) = authenticate(&key, 0x03, &[0x7C, 2, 0x80, 0], &mut AuthState::Idle)
        else {
            panic!()
        };
        assert_eq!(r.sw, Sw::WRONG_DATA);
    }
}
