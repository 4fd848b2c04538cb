//! The policy's request parser under a fuzzer: for any request a bot can send, for any
//! exchange, the parser refuses it or reads it one way. What the agent signs is the parsed
//! request written back (docs/policy.md), so that must read back to the same request: parsing
//! the written-back request gives the same parse and the same bytes. And the full check only
//! ever passes a request whose written-back form is byte for byte what the bot sent. Never a
//! panic.
//!
//! Input: as `input.rs` says (the wall target's format).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapsign_agent::policy::{self, KeyPolicy};

mod input;

fuzz_target!(|data: &[u8]| {
    let Some((exchange, req)) = input::request(data) else {
        return;
    };
    if let Ok(parsed) = policy::parse::parse(exchange, &req) {
        let wire = parsed.wire(&req);
        let again = policy::parse::parse(exchange, &wire).unwrap_or_else(|e| {
            panic!("{exchange}: the written-back request is refused ({e}): {wire:?}")
        });
        assert_eq!(
            again, parsed,
            "{exchange}: the written-back request parses otherwise"
        );
        assert_eq!(
            again.wire(&wire),
            wire,
            "{exchange}: writing back is not stable"
        );
    }
    if let Ok(checked) = policy::check_request(exchange, "k", &KeyPolicy::default(), &req) {
        let w = &checked.wire;
        assert_eq!(
            (&w.method, &w.path, &w.query, &w.body),
            (&req.method, &req.path, &req.query, &req.body),
            "{exchange}: a request passed the check but is signed otherwise than sent"
        );
    }
});
