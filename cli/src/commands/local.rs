//! Commands that work on the files directly: tokens, keys, the audit log. None of them needs
//! the agent; none of them ever prints a secret.

use tapsign_agent::audit;
use tapsign_agent::credential::{Credential, Exchange, KeyType, check_name, validate};
use tapsign_agent::keystore::VaultKey;
use tapsign_agent::keystore::{Keystore, KeystoreError};
use tapsign_agent::paths::Paths;
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::token::fido2::{self, UvMode, Where};
use tapsign_agent::token::piv::{self, EnrollOptions};
use tapsign_agent::token::soft::SoftToken;
use tapsign_agent::token::{Search, Token, TokenError, TokenStub};
use yubikey::{PinPolicy, TouchPolicy};

use crate::Failure;
use crate::args::{AuditCommand, KeyCommand, PolicyCommand, TokenAddArgs, TokenCommand};
use crate::exit::exit_codes;
use crate::prompt::{SecretReader, read_credential};

fn ks_failure(e: KeystoreError) -> Failure {
    let exit = match &e {
        KeystoreError::Token(_) => exit_codes::TOKEN,
        KeystoreError::Damaged { .. } | KeystoreError::VaultMismatch { .. } => exit_codes::DAMAGED,
        _ => exit_codes::ERROR,
    };
    Failure::new(exit, e.to_string())
}

fn token_failure(e: TokenError) -> Failure {
    Failure::new(exit_codes::TOKEN, e.to_string())
}

fn keystore(paths: &Paths) -> Keystore {
    Keystore::new(paths.keystore_dir())
}

pub fn token(paths: &Paths, cmd: TokenCommand) -> Result<(), Failure> {
    let ks = keystore(paths);
    match cmd {
        TokenCommand::Add(a) if a.soft => add_soft(paths, &ks),
        TokenCommand::Add(a) if a.fido2 => add_fido2(paths, &ks, &a),
        TokenCommand::Add(a) => add_piv(paths, &ks, &a),
        TokenCommand::List => print_listing(ks.keyslots().map_err(ks_failure)?, "keyslots", |s| {
            format!(
                "{:<24} {:<6} {:<34} {}",
                s.stub.id(),
                s.stub.kind(),
                s.stub.describe(),
                s.stub.model()
            )
        }),
        TokenCommand::Remove { id } => {
            ks.remove_keyslot(&id).map_err(ks_failure)?;
            println!("Removed token {id}: it can no longer unlock this keystore.");
            Ok(())
        }
    }
}

/// Print what could be read, report each damaged file on stderr, and fail with the damage
/// exit code if there was any: a listing shows all it can.
fn print_listing<T>(
    entries: Vec<Result<T, KeystoreError>>,
    what: &str,
    line: impl Fn(&T) -> String,
) -> Result<(), Failure> {
    let mut damaged = false;
    for entry in entries {
        match entry {
            Ok(item) => println!("{}", line(&item)),
            Err(e) => {
                damaged = true;
                eprintln!("damaged: {e}");
            }
        }
    }
    if damaged {
        return Err(Failure::new(
            exit_codes::DAMAGED,
            format!("some {what} are damaged (listed above)"),
        ));
    }
    Ok(())
}

fn add_soft(paths: &Paths, ks: &Keystore) -> Result<(), Failure> {
    if !super::soft_allowed() {
        return Err(token_failure(TokenError::SoftRefused));
    }
    if ks.is_initialized().map_err(ks_failure)? {
        // Only one soft token exists per folder, so a keystore that already exists was made
        // by another token; enrolling the soft token beside real ones is not supported.
        return Err(Failure::new(
            exit_codes::TOKEN,
            "the keystore already exists; the soft token can only create a new one (tests)",
        ));
    }
    let token = SoftToken::create(&paths.soft_token_dir()).map_err(token_failure)?;
    let stub = token.stub().clone();
    ks.create(&stub).map_err(ks_failure)?;
    println!("Enrolled {} as {}.", stub.describe(), stub.id());
    println!("The keystore is at {}.", ks.dir().display());
    Ok(())
}

fn add_piv(paths: &Paths, ks: &Keystore, a: &TokenAddArgs) -> Result<(), Failure> {
    let policy = |p: &str| match p {
        "never" => PinPolicy::Never,
        "always" => PinPolicy::Always,
        _ => PinPolicy::Once,
    };
    let mut reader = SecretReader::new();
    let pin = reader.field("YubiKey PIN")?;
    let mgm_key = if a.custom_mgm_key {
        Some(reader.field("management key (hex)")?)
    } else {
        None
    };
    let opts = EnrollOptions {
        serial: a.serial,
        slot: a.slot,
        pin_policy: policy(&a.pin_policy),
        touch_policy: if a.touch_policy == "cached" {
            TouchPolicy::Cached
        } else {
            TouchPolicy::Always
        },
        use_existing: a.use_existing,
        force: a.force,
        mgm_key,
    };
    let initialized = ks.is_initialized().map_err(ks_failure)?;
    // With an existing keystore, first make sure an enrolled token can open it: the new key
    // is generated only once the vault key is in hand.
    let vk = match initialized {
        true => Some(open_vault(paths, ks, Some(&pin))?),
        false => None,
    };
    let stub = piv::enroll(&opts, Some(&pin)).map_err(token_failure)?;
    match vk {
        Some(vk) => ks.add_keyslot(&vk, &stub).map_err(ks_failure)?,
        None => ks.create(&stub).map_err(ks_failure)?,
    }
    println!("Enrolled {} as {}.", stub.describe(), stub.id());
    if !initialized {
        println!("The keystore is at {}.", ks.dir().display());
    }
    Ok(())
}

/// The keystore's readable keyslots.
fn enrolled(ks: &Keystore) -> Result<Vec<tapsign_agent::keystore::Keyslot>, Failure> {
    Ok(ks
        .keyslots()
        .map_err(ks_failure)?
        .into_iter()
        .filter_map(Result::ok)
        .collect())
}

/// Open the vault with an enrolled token (one touch), to enroll another.
fn open_vault(
    paths: &Paths,
    ks: &Keystore,
    pin: Option<&SecretString>,
) -> Result<VaultKey, Failure> {
    let slots = enrolled(ks)?;
    let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
    let soft_dir = paths.soft_token_dir();
    let search = Search {
        soft_dir: &soft_dir,
        soft_allowed: super::soft_allowed(),
        pin,
    };
    let (i, mut token) = tapsign_agent::token::locate(&stubs, &search).map_err(token_failure)?;
    eprintln!("Touch {} to open the keystore...", stubs[i].describe());
    ks.unwrap_vault(&slots[i], token.as_mut())
        .map_err(ks_failure)
}

fn add_fido2(paths: &Paths, ks: &Keystore, a: &TokenAddArgs) -> Result<(), Failure> {
    let mut reader = SecretReader::new();
    let initialized = ks.is_initialized().map_err(ks_failure)?;
    let slots = match initialized {
        true => enrolled(ks)?,
        false => Vec::new(),
    };
    let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
    let opts = fido2::EnrollOptions {
        place: match (&a.device, &a.reader) {
            (Some(d), _) => Where::Hid(d.clone()),
            (None, Some(r)) => Where::Reader(r.clone()),
            (None, None) => Where::Anywhere,
        },
        label: a.name.clone(),
        uv: a.uv.as_deref().and_then(UvMode::parse),
    };
    // Every check that needs no touch comes before the touch that opens the keystore.
    let prepared = fido2::prepare(&opts, &stubs).map_err(token_failure)?;
    let vk = match initialized {
        true => {
            let needing: Vec<String> = stubs
                .iter()
                .filter(|s| s.needs_pin())
                .map(|s| s.describe())
                .collect();
            let pin = match needing.is_empty() {
                true => None,
                false => Some(reader.field(&format!("PIN of {}", needing.join(" or ")))?),
            };
            Some(open_vault(paths, ks, pin.as_ref())?)
        }
        false => None,
    };
    let mut ask = |label: &str| reader.field(label).map_err(|f| f.message);
    let mut token = prepared.enroll(&mut ask).map_err(token_failure)?;
    let stub = token.stub().clone();
    eprintln!(
        "Touch {} again, to seal the keystore's key to it...",
        stub.describe()
    );
    match vk {
        Some(vk) => ks.add_keyslot_with(&vk, &mut token).map_err(ks_failure)?,
        None => ks.create_with(&mut token).map_err(ks_failure)?,
    }
    println!(
        "Enrolled {} as {} ({}).",
        stub.describe(),
        stub.id(),
        stub.model()
    );
    if !initialized {
        println!("The keystore is at {}.", ks.dir().display());
    }
    Ok(())
}

pub fn key(paths: &Paths, cmd: KeyCommand) -> Result<(), Failure> {
    let ks = keystore(paths);
    match cmd {
        KeyCommand::Add {
            name,
            exchange,
            replace,
        } => {
            check_name(&name).map_err(|e| Failure::new(exit_codes::USAGE, e))?;
            let exchange: Exchange = exchange
                .parse()
                .map_err(|e: String| Failure::new(exit_codes::USAGE, e))?;
            if !ks.is_initialized().map_err(ks_failure)? {
                return Err(Failure::error(
                    "no token is enrolled yet: run `tapsign token add` first",
                ));
            }
            let mut fields = read_credential(exchange)?.into_iter();
            let (Some(api_key), Some(secret)) = (fields.next(), fields.next()) else {
                return Err(Failure::error(
                    "the API key and the secret are both needed: give the API key on the first line and the secret on the next",
                ));
            };
            let passphrase = fields.next();
            let kind = validate(
                exchange,
                api_key.expose(),
                secret.expose().as_bytes(),
                passphrase.as_ref().map(|p| p.expose()),
            )
            .map_err(|e| Failure::new(exit_codes::USAGE, format!("{e}; nothing was stored")))?;
            let cred = Credential {
                name: name.clone(),
                exchange,
                api_key,
                secret: SecretBytes::from_slice(secret.expose().as_bytes()),
                passphrase,
            };
            drop(secret);
            ks.add_credential(&cred, replace).map_err(ks_failure)?;
            let kind = match kind {
                KeyType::Hmac => "HMAC secret",
                KeyType::Ed25519 => "Ed25519 key",
                KeyType::Es256 => "ES256 (P-256) key",
            };
            println!(
                "Stored {name} ({exchange}, {kind}), sealed to the keystore. `tapsign unlock` opens it."
            );
            Ok(())
        }
        KeyCommand::List => print_listing(
            ks.list_credentials().map_err(ks_failure)?,
            "credentials",
            |i| format!("{:<24} {}", i.name, i.exchange),
        ),
        KeyCommand::Remove { name } => {
            ks.remove_credential(&name).map_err(ks_failure)?;
            println!(
                "Removed {name}. A running session keeps it until it ends; `tapsign lock` ends it now."
            );
            Ok(())
        }
    }
}

pub fn audit(paths: &Paths, action: Option<AuditCommand>) -> Result<(), Failure> {
    let path = paths.audit_log();
    match action {
        None => {
            let lines =
                audit::read(&path).map_err(|e| Failure::new(exit_codes::DAMAGED, e.to_string()))?;
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        Some(AuditCommand::Verify) => {
            let report = audit::verify(&path)
                .map_err(|e| Failure::new(exit_codes::DAMAGED, e.to_string()))?;
            println!("{report}");
            if report.is_ok() {
                Ok(())
            } else {
                Err(Failure::new(
                    exit_codes::DAMAGED,
                    format!("the audit log {} fails verification", path.display()),
                ))
            }
        }
    }
}

pub fn policy(paths: &Paths, cmd: PolicyCommand) -> Result<(), Failure> {
    let PolicyCommand::Explain(a) = cmd;
    let config =
        tapsign_agent::config::Config::load(&paths.config_file()).map_err(Failure::error)?;
    let ks = keystore(paths);
    let info = ks
        .list_credentials()
        .map_err(ks_failure)?
        .into_iter()
        .flatten()
        .find(|c| c.name == a.name)
        .ok_or_else(|| {
            Failure::new(
                exit_codes::REFUSED,
                format!(
                    "no credential named {:?} in the keystore: `tapsign key list` shows the names",
                    a.name
                ),
            )
        })?;
    let req = tapsign_proto::SignRequest {
        key: a.name.clone(),
        method: a.method,
        path: a.path,
        query: a.query,
        body: a.body,
        kind: tapsign_proto::SignKind::Rest,
    };
    let report = tapsign_agent::policy::explain::explain(
        info.exchange,
        &a.name,
        config.key_policy(&a.name),
        &req,
    );
    print!("{report}");
    if report.allowed() {
        Ok(())
    } else {
        Err(Failure::new(
            exit_codes::REFUSED,
            "the agent would refuse this request (see the verdict above)",
        ))
    }
}
