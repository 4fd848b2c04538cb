//! PIV data objects: GET DATA (CB) and PUT DATA (DB). Objects are kept as the `53 L value`
//! encoding the client wrote and handed back verbatim; an absent object answers `6A82`,
//! which is how a fresh YubiKey answers for CHUID, CCC and empty certificate slots.

use std::collections::BTreeMap;

use crate::apdu::{Response, Sw};
use crate::tlv;

/// The discovery object (tag 7E): PIV AID and PIN usage policy "PIV PIN only". Fixed on a
/// YubiKey and not writable.
const DISCOVERY: [u8; 20] = [
    0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
    0x2F, 0x02, 0x40, 0x00,
];
/// Printed information: readable only after the PIN (ykman keeps a PIN-protected
/// management key there).
const PRINTED: [u8; 3] = [0x5F, 0xC1, 0x09];
/// Largest object a YubiKey 5 stores.
const MAX_OBJECT: usize = 3063;

#[derive(Default)]
pub struct Objects {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The object id in `5C L id`, and what follows it.
fn object_id(data: &[u8]) -> Result<(&[u8], &[u8]), Sw> {
    match tlv::take(data) {
        Some((0x5C, id @ ([_] | [_, _, _]), rest)) => Ok((id, rest)),
        _ => Err(Sw::WRONG_DATA),
    }
}

impl Objects {
    /// GET DATA with `5C L id`.
    pub fn get(&self, data: &[u8], pin_verified: bool) -> Response {
        let id = match object_id(data) {
            Ok((id, [])) => id,
            Ok(_) => return Sw::WRONG_DATA.into(),
            Err(sw) => return sw.into(),
        };
        if id == [0x7E] {
            return Response::ok(DISCOVERY.to_vec());
        }
        if id == PRINTED && !pin_verified {
            return Sw::SECURITY_STATUS.into();
        }
        match self.map.get(id) {
            Some(value) => Response::ok(value.clone()),
            None => Sw::NOT_FOUND.into(),
        }
    }

    /// PUT DATA with `5C L id 53 L value`; an empty value deletes the object. The caller
    /// checked management-key authentication.
    pub fn put(&mut self, data: &[u8]) -> Response {
        let (id, rest) = match object_id(data) {
            Ok(x) => x,
            Err(sw) => return sw.into(),
        };
        if id.len() != 3 || id[0] != 0x5F {
            return Sw::WRONG_DATA.into();
        }
        match tlv::take(rest) {
            Some((0x53, [], [])) => {
                self.map.remove(id);
            }
            Some((0x53, _, [])) if rest.len() <= MAX_OBJECT => {
                self.map.insert(id.to_vec(), rest.to_vec());
            }
            Some((0x53, _, [])) => return Sw(0x6A84).into(),
            _ => return Sw::WRONG_DATA.into(),
        }
        Sw::OK.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete() {
        let mut o = Objects::default();
        let get = [0x5C, 3, 0x5F, 0xC1, 0x0B];
        assert_eq!(o.get(&get, false).sw, Sw::NOT_FOUND);
        let put = [0x5C, 3, 0x5F, 0xC1, 0x0B, 0x53, 2, 0x70, 0];
        assert_eq!(o.put(&put).sw, Sw::OK);
        assert_eq!(o.get(&get, false).data, [0x53, 2, 0x70, 0]);
        assert_eq!(o.put(&[0x5C, 3, 0x5F, 0xC1, 0x0B, 0x53, 0]).sw, Sw::OK);
        assert_eq!(o.get(&get, false).sw, Sw::NOT_FOUND);
    }

    #[test]
    fn discovery_is_always_there() {
        assert_eq!(
            Objects::default().get(&[0x5C, 1, 0x7E], false).data,
            DISCOVERY
        );
    }
}
