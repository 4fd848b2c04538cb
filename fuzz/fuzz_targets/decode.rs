//! Any bytes a peer can send must come back as a message, an error or "need more": never a
//! panic, never an allocation sized by the peer's length header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapsign_proto::{Request, Response, frame::decode};

fuzz_target!(|data: &[u8]| {
    let _ = (decode::<Request>(data), decode::<Response>(data));
});
