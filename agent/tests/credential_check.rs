//! What `tapsign key add` checks and reads: key types detected from the secret, clear errors
//! for malformed keys and missing passphrases, and PEM secrets read across lines.

use tapsign_agent::credential::Exchange::{self, *};
use tapsign_agent::sign::keys::{KeyType, validate};

const ED_PEM: &str = include_str!("vectors/rfc8032.pem");
const RSA_PEM: &str = include_str!("vectors/bsig_rsa.pem");
const EC_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";
const KRAKEN: &str =
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";

fn check(ex: Exchange, secret: &str, pass: Option<&str>) -> Result<KeyType, String> {
    validate(ex, "api-key", secret.as_bytes(), pass)
}

#[test]
fn key_types_are_read_off_the_secret() {
    assert_eq!(
        check(Binance, "NhqPtmdSJYdKjVHjA7PZ", None),
        Ok(KeyType::Hmac)
    );
    assert_eq!(check(Binance, ED_PEM, None), Ok(KeyType::Ed25519));
    assert_eq!(check(Coinbase, EC_PEM, None), Ok(KeyType::Es256));
    assert_eq!(check(Coinbase, ED_PEM, None), Ok(KeyType::Ed25519));
    assert_eq!(
        check(
            Coinbase,
            "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA==",
            None
        ),
        Ok(KeyType::Ed25519)
    );
    assert_eq!(check(Kraken, KRAKEN, None), Ok(KeyType::Hmac));
    for ex in [Upbit, Bithumb, Bybit, Gate] {
        assert_eq!(check(ex, "secret", None), Ok(KeyType::Hmac), "{ex}");
    }
    for ex in [Okx, Kucoin, Bitget] {
        assert_eq!(check(ex, "secret", Some("pass")), Ok(KeyType::Hmac), "{ex}");
    }
}

#[test]
fn malformed_keys_get_errors_that_say_what_to_do() {
    let err = |ex, s: &str, p| check(ex, s, p).expect_err("refused");
    assert!(err(Kraken, "not*base64", None).contains("not base64"));
    assert!(err(Binance, RSA_PEM, None).contains("not RSA"));
    assert!(err(Coinbase, &EC_PEM[..100], None).contains("-----END"));
    assert!(err(Coinbase, "bm90IGEga2V5", None).contains("bytes"));
    assert!(err(Gate, EC_PEM, None).contains("HMAC"));
    assert!(err(Okx, "secret", None).contains("passphrase"));
    assert!(err(Kucoin, "secret", Some("")).contains("passphrase"));
    assert!(err(Bybit, "secret", Some("extra")).contains("no passphrase"));
    assert!(err(Bybit, "  ", None).contains("empty"));
    assert!(validate(Upbit, "has space", b"s", None).is_err());
    // Nothing secret is quoted back.
    assert!(!err(Coinbase, &EC_PEM[..100], None).contains("MHcCAQEE"));
}

fn read(ex: Exchange, input: &str) -> Result<Vec<String>, String> {
    let fields = ex.read_fields(&mut input.as_bytes())?;
    Ok(fields.iter().map(|f| f.expose().to_string()).collect())
}

#[test]
fn a_pem_secret_is_read_through_its_end_line() {
    let input = format!("{}\n{EC_PEM}", "organizations/o/apiKeys/k");
    assert_eq!(
        read(Coinbase, &input).expect("reads"),
        ["organizations/o/apiKeys/k", EC_PEM]
    );
    assert_eq!(
        validate(
            Coinbase,
            "organizations/o/apiKeys/k",
            EC_PEM.as_bytes(),
            None
        ),
        Ok(KeyType::Es256)
    );
    // Coinbase's JSON key file writes the PEM on one line with \n escapes.
    let escaped = EC_PEM.replace('\n', "\\n");
    assert_eq!(
        read(Coinbase, &format!("name\n{escaped}\n")).expect("reads")[1],
        EC_PEM
    );
    // CRLF line ends are tolerated.
    assert_eq!(
        read(Coinbase, &input.replace('\n', "\r\n")).expect("reads")[1],
        EC_PEM
    );
    // Binance Ed25519 keys are PEM too; HMAC secrets stay one line.
    assert_eq!(
        read(Binance, &format!("key\n{ED_PEM}")).expect("reads")[1],
        ED_PEM
    );
    assert_eq!(
        read(Okx, "key\nsecret \npass\n").expect("reads"),
        ["key", "secret", "pass"]
    );
}

#[test]
fn a_field_longer_than_any_exchange_issues_is_refused_not_read_without_end() {
    // A megabyte secret was once stored (and then could never sign), and a PEM without its
    // end line was read to the end of the input.
    let long = "a".repeat(1_000_000);
    let e = read(Binance, &format!("key\n{long}\n")).unwrap_err();
    assert!(e.contains("longer than 4096 bytes"), "{e}");
    assert!(!e.contains("aaaa"), "nothing typed is quoted back: {e}");
    let endless = format!(
        "k\n-----BEGIN EC PRIVATE KEY-----\n{}",
        "QUJD\n".repeat(10_000)
    );
    let e = read(Coinbase, &endless).unwrap_err();
    assert!(e.contains("-----END"), "{e}");
    // The longest that is read still is.
    let edge = "b".repeat(4096);
    assert_eq!(
        read(Binance, &format!("key\n{edge}\n")).unwrap(),
        ["key", edge.as_str()]
    );
}

#[test]
fn input_that_ends_early_names_the_missing_field() {
    let err = read(Okx, "key\nsecret\n").expect_err("short");
    assert!(err.contains("passphrase"), "{err}");
    let err = read(Coinbase, "name\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n").expect_err("short");
    assert!(err.contains("-----END"), "{err}");
}

#[test]
fn every_exchange_parses_by_name() {
    for &ex in Exchange::ALL {
        assert_eq!(ex.as_str().parse::<Exchange>(), Ok(ex));
        assert!(ex.fields().len() >= 2);
    }
    assert_eq!("OKX".parse::<Exchange>(), Ok(Okx));
}
