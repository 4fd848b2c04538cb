//! The committed seeds of the keystore, config and request fuzz targets (fuzz/seeds/<target>/):
//! each target starts from inputs that get deep into what it fuzzes, not from nothing. With
//! `TAPSIGN_WRITE_FUZZ_SEEDS=1` these tests write the seeds afresh; otherwise they check the
//! committed ones are still what they should be (valid files, configs that parse, the
//! trading corpus), so a change of format cannot leave the fuzzer starting from junk.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::path::{Path, PathBuf};

use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};
use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::config::Config;
use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::keystore::{FileKind, Keystore, check_file};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::token::TokenStub;

fn seeds(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

fn writing() -> bool {
    std::env::var_os("TAPSIGN_WRITE_FUZZ_SEEDS").is_some()
}

/// The committed seeds of `target`, by file name.
fn committed(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(seeds(target))
        .unwrap_or_else(|e| panic!("{target}: {e}: run with TAPSIGN_WRITE_FUZZ_SEEDS=1"))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Replace the seeds of `target` with `files`.
fn write(target: &str, files: &[(String, Vec<u8>)]) {
    let dir = seeds(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The request target's input: exchange byte, method byte, then path, query and body
/// separated by '\n'.
fn request_input(exchange: usize, method: &str, path: &str, query: &str, body: &str) -> Vec<u8> {
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let m = methods.iter().position(|x| *x == method).unwrap_or(1) as u8;
    let mut bytes = vec![exchange as u8, m];
    bytes.extend_from_slice(format!("{path}\n{query}\n{body}").as_bytes());
    bytes
}

#[test]
fn the_request_seeds_are_the_trading_corpus() {
    let mut files = Vec::new();
    for (i, &exchange) in Exchange::ALL.iter().enumerate() {
        for (n, e) in support::corpus::load("trading", exchange)
            .iter()
            .enumerate()
        {
            let input = request_input(i, &e.method, &e.path, &e.query, &e.body);
            files.push((format!("{exchange}-{n:03}"), input));
        }
        // Orders that borrow (signed only for a key with `margin = true`) are seeds too.
        for (n, e) in support::corpus::load("margin", exchange).iter().enumerate() {
            let input = request_input(i, &e.method, &e.path, &e.query, &e.body);
            files.push((format!("{exchange}-margin-{n:03}"), input));
        }
    }
    files.sort();
    assert!(files.len() > 100, "only {} trading requests", files.len());
    if writing() {
        return write("request", &files);
    }
    assert!(
        committed("request") == files,
        "fuzz/seeds/request/ differs from the trading and margin corpora: run with TAPSIGN_WRITE_FUZZ_SEEDS=1"
    );
}

/// Every section of config.toml, as docs/defaults.md and docs/policy.md write them, and the
/// shapes a trader writes by hand.
const CONFIGS: &[(&str, &str)] = &[
    (
        "defaults",
        "[session]\nttl = \"8h\"\nidle = \"1h\"\nmax_signatures = 50000\nmax_ttl = \"24h\"\n\
         max_signatures_cap = 1000000\n\n[signing]\nmax_skew_ms = 5000\nrecv_window_cap_ms = 5000\n\n\
         [lock]\nscreen = true\nsuspend = true\n\n[notifications]\nenabled = true\n\n[server]\n\
         max_connections = 64\nframe_timeout = \"5s\"\nidle_connection_timeout = \"10m\"\n",
    ),
    (
        "short-session",
        "[session]\nttl = \"1h30m\"\nidle = \"600\"\nmax_signatures = 500\n\
         per_key_max_signatures = 100\n",
    ),
    (
        "key-policy",
        "[keys.binance-main]\nallow = [\n  { method = \"POST\", path = \"/sapi/v1/margin/order\", \
         params = [\"symbol\", \"side\", \"type\", \"quantity\", \"price\"], required = [\"symbol\", \"side\"] },\n]\n\
         only = [\"POST /api/v3/order\", \"DELETE /api/v3/order\", \"GET /api/v3/account\"]\n\
         ws_login = true\n",
    ),
    (
        "two-keys",
        "[keys.okx-main]\nws_login = true\n\n[keys.upbit-main]\nonly = [\"GET /v1/accounts\"]\n\n\
         [lock]\nscreen = false\n",
    ),
    (
        "old-allow-list",
        "[keys.b]\nallow = [\"POST /api/v3/order\"]\n",
    ),
];

#[test]
fn the_config_seeds_are_the_documented_sections() {
    let files: Vec<(String, Vec<u8>)> = CONFIGS
        .iter()
        .map(|(name, text)| (format!("{name}.toml"), text.as_bytes().to_vec()))
        .collect();
    for (name, text) in CONFIGS {
        // All but the old form parse: the fuzzer starts from configs the agent accepts.
        assert_eq!(
            Config::parse(text).is_ok(),
            *name != "old-allow-list",
            "{name}"
        );
    }
    if writing() {
        return write("config", &files);
    }
    let mut files = files;
    files.sort();
    assert!(
        committed("config") == files,
        "fuzz/seeds/config/ differs from CONFIGS: run with TAPSIGN_WRITE_FUZZ_SEEDS=1"
    );
}

/// A P-256 stub like `token add --piv` records (the keystore seals to its public key; no
/// card is needed to make a keystore, only to open one).
fn piv_stub() -> TokenStub {
    let key = p256::SecretKey::try_generate().unwrap();
    let public = key.public_key().to_sec1_point(true).as_bytes().to_vec();
    TokenStub::Piv {
        serial: 12_345_678,
        slot: 0x82,
        tag: hex::encode(&Sha256::digest(&public)[..4]),
        public_key: hex::encode(&public),
        pin_policy: "once".into(),
        touch_policy: "always".into(),
    }
}

fn credential(name: &str, exchange: Exchange, passphrase: Option<&str>) -> Credential {
    Credential {
        name: name.into(),
        exchange,
        api_key: SecretString::new(format!("{name}-api-key")),
        secret: SecretBytes::from_slice(b"seed-secret-not-real"),
        passphrase: passphrase.map(|p| SecretString::new(p.into())),
    }
}

/// The keystore target's input: a kind byte (0 vault, 1 manifest, 2 keyslot, 3 credential)
/// and the file.
fn keystore_seeds() -> Vec<(String, Vec<u8>)> {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("keystore"));
    let mut ledger = AuditLedger::new(&tmp.path().join("audit.log"));
    ks.create(&piv_stub(), &mut ledger).unwrap();
    for (name, exchange, passphrase) in [
        ("upbit-main", Exchange::Upbit, None),
        ("okx-main", Exchange::Okx, Some("seed-passphrase")),
    ] {
        ks.add_credential(
            &credential(name, exchange, passphrase),
            false,
            None,
            &mut ledger,
        )
        .unwrap();
    }
    let live = ks.live_dir().unwrap();
    let mut out = vec![
        ("vault".to_owned(), 0u8, live.join("vault.json")),
        ("manifest".to_owned(), 1, ks.dir().join("manifest.json")),
    ];
    for (kind, folder) in [(2u8, "keyslots"), (3, "credentials")] {
        for entry in std::fs::read_dir(live.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((format!("{folder}-{stem}"), kind, path));
        }
    }
    out.into_iter()
        .map(|(name, kind, path)| {
            let mut bytes = vec![kind];
            bytes.extend(std::fs::read(path).unwrap());
            (name, bytes)
        })
        .collect()
}

/// The file kind a keystore seed says it is, named as it would be on disk.
fn kind_of(seed: &[u8], name: &str) -> FileKind {
    let stem = || name.split_once('-').map(|(_, s)| s.to_owned()).unwrap();
    match seed[0] {
        0 => FileKind::Vault,
        1 => FileKind::Manifest,
        2 => FileKind::Keyslot(stem()),
        _ => FileKind::Credential(stem()),
    }
}

#[test]
fn the_keystore_seeds_are_valid_keystore_files() {
    let seeds = if writing() {
        let fresh = keystore_seeds();
        write("keystore", &fresh);
        fresh
    } else {
        committed("keystore")
    };
    let kinds: Vec<u8> = seeds.iter().map(|(_, b)| b[0]).collect();
    for kind in 0..4 {
        assert!(kinds.contains(&kind), "no seed of kind {kind}");
    }
    for (name, bytes) in &seeds {
        check_file(&kind_of(bytes, name), &bytes[1..])
            .unwrap_or_else(|e| panic!("seed {name} is not a valid keystore file: {e}"));
    }
}
