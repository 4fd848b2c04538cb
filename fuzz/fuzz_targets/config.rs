//! The config.toml parser under a fuzzer: any text is refused with a message, or is a
//! configuration whose promises hold (docs/defaults.md): every bound above zero, every default
//! within its cap, a connection limit of at least one, and the defaults usable as the bounds
//! of an unlock. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapsign_agent::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(c) = Config::parse(&text) else {
        return;
    };
    let s = &c.session;
    assert!(!s.ttl.is_zero() && !s.idle.is_zero() && s.max_signatures > 0);
    assert!(s.ttl <= s.max_ttl, "ttl above max_ttl: {c:?}");
    assert!(s.max_signatures <= s.max_signatures_cap, "budget above its cap: {c:?}");
    assert!(c.server.max_connections >= 1);
    let b = c.bounds(None, None, None).expect("the defaults are valid bounds");
    assert_eq!((b.ttl, b.idle, b.max_signatures), (s.ttl, s.idle, s.max_signatures));
    // Asking for more than a cap is refused, never cut silently.
    if let Some(more) = s.max_ttl.checked_add(std::time::Duration::from_secs(1)) {
        assert!(c.bounds(Some(more), None, None).is_err());
    }
    for (name, policy) in &c.keys {
        let _ = (name, policy.describe());
    }
    assert_eq!(Config::parse(&text).ok(), Some(c), "parsing is not deterministic");
});
