//! The input the policy targets (`wall`, `request`) read: byte 0 picks the exchange, byte 1's
//! low three bits the method (`wall` reads bit 3 as the kind and bit 4 as whether the key may
//! sign websocket logins); the rest is path, query and body separated by '\n'.

use tapsign_agent::credential::Exchange;
use tapsign_proto::{SignKind, SignRequest};

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "post"];

/// The exchange and the REST request for key `k` that `data` holds; none under two bytes.
pub fn request(data: &[u8]) -> Option<(Exchange, SignRequest)> {
    let [exchange, flags, rest @ ..] = data else {
        return None;
    };
    let exchange = Exchange::ALL[*exchange as usize % Exchange::ALL.len()];
    let method = METHODS[(flags & 7) as usize % METHODS.len()];
    let text = String::from_utf8_lossy(rest);
    let mut fields = text.splitn(3, '\n');
    let mut field = || fields.next().unwrap_or("").to_owned();
    let (path, query, body) = (field(), field(), field());
    let req = SignRequest {
        key: "k".into(),
        method: method.into(),
        path,
        query,
        body,
        kind: SignKind::Rest,
    };
    Some((exchange, req))
}
