//! Test credentials every scheme accepts (published test keys, no real secrets).
#![allow(dead_code)] // Each test binary uses a different subset.

use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::secret::{SecretBytes, SecretString};

/// A credential of `exchange` with test secrets that each scheme accepts.
pub fn test_credential(exchange: Exchange) -> Credential {
    const CB_EC_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";
    const KRAKEN: &str =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
    let (key, secret, pass) = match exchange {
        Exchange::Coinbase => (
            "organizations/test-organization/apiKeys/test-api-key",
            CB_EC_PEM,
            None,
        ),
        Exchange::Kraken => ("key", KRAKEN, None),
        Exchange::Okx | Exchange::Kucoin | Exchange::Bitget => ("key", "secret", Some("pass")),
        _ => ("key", "secret", None),
    };
    Credential {
        name: format!("{exchange}-test"),
        exchange,
        api_key: SecretString::new(key.into()),
        secret: SecretBytes::new(secret.as_bytes().to_vec()),
        passphrase: pass.map(|p| SecretString::new(p.into())),
    }
}
