//! Commands that work on the files directly: keys and the audit log (tokens are in `tokens`).
//! None of them needs the agent; none of them ever prints a secret. Key changes are recorded
//! in the audit log (the keystore's ledger) and refused if they cannot be.

use tapsign_agent::audit;
use tapsign_agent::audit::Shown;
use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::credential::{Credential, Exchange, KeyType, check_name, validate};
use tapsign_agent::keystore::{Keystore, KeystoreError, Preview};
use tapsign_agent::paths::Paths;
use tapsign_agent::secret::SecretBytes;
use tapsign_agent::token::TokenError;

use super::harden;
use crate::Failure;
use crate::args::{AuditCommand, KeyCommand, PolicyCommand};
use crate::exit::exit_codes;
use crate::prompt::SecretReader;

/// What the next unlock's check would say of the keystore as it is, run without the token
/// (`Keystore::preview`): a listing must not show files put back as if they were in use.
pub(super) fn preview(paths: &Paths, ks: &Keystore) -> Preview {
    ks.preview(&mut AuditLedger::new(&paths.audit_log()))
        .unwrap_or_default()
}

/// The preview's warnings about the whole keystore, on stderr: `what` says what the next
/// unlock does with what was listed when it would open nothing.
pub(super) fn warn_whole(preview: &Preview, what: &str) {
    for w in &preview.warnings {
        errln!("warning: {}", Shown(w));
    }
    if let Some(why) = &preview.whole {
        errln!("warning: the next unlock {what}: {}", Shown(why));
    }
}

/// What `key list` says of its verdicts, which rest on a manifest no one has verified yet.
const UNVERIFIED_VERDICTS: &str = "`key list` reads manifest.json without verifying it (that needs the vault key, which only an unlock opens): these verdicts hold if manifest.json is genuine. An edited manifest.json can make a genuine credential read as removed or as an old copy, so remove nothing on them alone: `tapsign unlock` verifies manifest.json first, and if it does not verify, `tapsign keystore rotate --rebuild-manifest` rebuilds it from the files";

pub(super) fn ks_failure(e: KeystoreError) -> Failure {
    let exit = match &e {
        KeystoreError::Token(TokenError::InUse { .. }) => exit_codes::ERROR,
        KeystoreError::Token(_) => exit_codes::TOKEN,
        KeystoreError::Damaged { .. }
        | KeystoreError::VaultMismatch { .. }
        | KeystoreError::VaultNotPinned { .. }
        | KeystoreError::VaultNotYetChecked { .. }
        | KeystoreError::VaultNotChained { .. }
        | KeystoreError::LogOfAnotherKeystore { .. }
        | KeystoreError::VaultRecordBroken { .. }
        | KeystoreError::ManifestInvalid { .. }
        | KeystoreError::RolledBack { .. }
        | KeystoreError::OlderThanLog { .. }
        | KeystoreError::NotFollowing { .. }
        | KeystoreError::ChecksDisagree { .. }
        | KeystoreError::Unvouched { .. }
        | KeystoreError::LogCut { .. }
        | KeystoreError::RecordUnreadable { .. }
        | KeystoreError::RecordBroken { .. }
        | KeystoreError::Contradicted { .. }
        | KeystoreError::Swapped { .. }
        | KeystoreError::ManifestGone { .. }
        | KeystoreError::Gone { .. }
        | KeystoreError::KeyslotNotRecorded { .. }
        | KeystoreError::UnrecordedKeyslotMismatch { .. }
        | KeystoreError::KeyslotMissing { .. }
        | KeystoreError::CredentialsUnreadable { .. }
        | KeystoreError::RefusedNotDropped { .. }
        | KeystoreError::RebuildPutBack { .. }
        | KeystoreError::RebuildUnchecked { .. }
        | KeystoreError::RebuildUnsigned { .. }
        | KeystoreError::NotUndone { .. }
        | KeystoreError::CredentialNotUndone { .. } => exit_codes::DAMAGED,
        _ => exit_codes::ERROR,
    };
    Failure::new(exit, e.to_string())
}

/// Sealing a real secret where a soft token (whose key is a plain file) opens the vault would
/// give it no protection: refused unless `TAPSIGN_INSECURE_SOFT_TOKEN=1` says this is a test,
/// as the agent refuses to unlock with one. Someone who can write the trader's files could
/// otherwise make such a keystore with this binary and wait for the next `key add`.
fn refuse_soft_keyslots(ks: &Keystore) -> Result<(), Failure> {
    if super::soft_allowed() {
        return Ok(());
    }
    let slots = ks.keyslots().map_err(ks_failure)?;
    let no_slot = slots.is_empty();
    let unreadable = slots.iter().filter(|k| k.is_err()).count();
    let mut soft: Vec<String> = slots
        .into_iter()
        .flatten()
        .filter(|k| matches!(k.stub, tapsign_agent::token::TokenStub::Soft { .. }))
        .map(|k| k.stub.id())
        .collect();
    // A soft keyslot moved aside or damaged for the moment is still named by the manifest.
    for id in ks.recorded_keyslot_ids().map_err(ks_failure)? {
        if id.starts_with("soft-") && !soft.contains(&id) {
            soft.push(id);
        }
    }
    if soft.is_empty() && no_slot {
        return Err(Failure::new(
            exit_codes::TOKEN,
            "this keystore has no keyslot, so no token can open it: nothing was read or stored. Check `tapsign token list`",
        ));
    }
    if soft.is_empty() && unreadable > 0 {
        return Err(Failure::new(
            exit_codes::TOKEN,
            format!(
                "{unreadable} keyslot file(s) of this keystore cannot be read, so which tokens open it cannot be told: nothing was read or stored. Check `tapsign token list`; for a test keystore, set TAPSIGN_INSECURE_SOFT_TOKEN=1"
            ),
        ));
    }
    if soft.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        exit_codes::TOKEN,
        format!(
            "this keystore can be opened by the soft token {} (its key is a plain file, for tests only): a secret stored now would be readable by anyone who can read your files, so nothing was read or stored. If you did not enroll it, someone who can write your files did: check `tapsign token list`. For a test keystore, set TAPSIGN_INSECURE_SOFT_TOKEN=1",
            soft.join(", ")
        ),
    ))
}

pub(super) fn token_failure(e: TokenError) -> Failure {
    // A card another program has open is `busy` (close that program, try again), as the
    // agent answers it: not a token problem for the trader to fix on the token.
    let exit = match e {
        TokenError::InUse { .. } => exit_codes::ERROR,
        _ => exit_codes::TOKEN,
    };
    Failure::new(exit, e.to_string())
}

fn keystore(paths: &Paths) -> Keystore {
    Keystore::new(paths.keystore_dir())
}

/// Print what could be read, report each damaged file on stderr, and fail with the damage
/// exit code if there was any: a listing shows all it can.
pub(super) fn print_listing<T>(
    entries: Vec<Result<T, KeystoreError>>,
    what: &str,
    line: impl Fn(&T) -> String,
) -> Result<(), Failure> {
    let mut damaged = false;
    for entry in entries {
        match entry {
            Ok(item) => outln!("{}", Shown(&line(&item))),
            Err(e) => {
                damaged = true;
                errln!("damaged: {}", Shown(&e.to_string()));
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
            refuse_soft_keyslots(&ks)?;
            harden();
            let mut fields = SecretReader::new().credential(exchange)?.into_iter();
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
            // Exit 1, as the reader's other input errors: 2 says the command line is wrong, and
            // a script that pipes secrets in read it as a bug in its own arguments (red-team
            // round 24).
            .map_err(|e| Failure::error(format!("{e}; nothing was stored")))?;
            let cred = Credential {
                name: name.clone(),
                exchange,
                api_key,
                secret: SecretBytes::from_slice(secret.expose().as_bytes()),
                passphrase,
            };
            drop(secret);
            // The running agent is asked first: the vault key it checked, and the log it holds.
            let (pinned, mut ledger) =
                super::agent_vouches(paths, "nothing was stored", "add the key")?;
            let added = ks
                .add_credential(&cred, replace, pinned.as_deref(), &mut ledger)
                .map_err(ks_failure)?;
            for w in &added.warnings {
                errln!("warning: {}", Shown(w));
            }
            super::agent_takes_in(paths, &mut ledger)?;
            let kind = match kind {
                KeyType::Hmac => "HMAC secret",
                KeyType::Ed25519 => "Ed25519 key",
                KeyType::Es256 => "ES256 (P-256) key",
            };
            let verb = if added.replaced { "Replaced" } else { "Stored" };
            outln!(
                "{verb} {name} ({exchange}, {kind}), sealed to the keystore's vault {} and recorded in the audit log. `tapsign unlock` opens it.",
                added.vault
            );
            Ok(())
        }
        KeyCommand::List => {
            // What the next unlock would refuse: a file put back must not look like a key.
            let preview = preview(paths, &ks);
            let verdict = |name: &str| preview.refused.iter().find(|r| r.name == name);
            // Each key's creation time, as the audit log prints times: a copy put back shows an
            // older one than its last replacement (the advice of `VaultRecordBroken`).
            let listed = print_listing(
                ks.list_credentials().map_err(ks_failure)?,
                "credentials",
                |i| {
                    let added = audit::utc_secs(i.created);
                    match verdict(&i.name) {
                        Some(r) => format!(
                            "{:<24} {:<10} added {added}  would be refused: {}",
                            i.name,
                            i.exchange.to_string(),
                            r.verdict
                        ),
                        None => format!(
                            "{:<24} {:<10} added {added}",
                            i.name,
                            i.exchange.to_string()
                        ),
                    }
                },
            );
            for r in &preview.refused {
                errln!("would be refused at unlock: {}", Shown(&r.reason));
            }
            // The verdicts come from manifest.json as read without its MAC: one edited entry
            // (checksum recomputed, which needs no secret) made a genuine credential read as "a
            // removed credential put back", and `key remove` on that word deletes it (red-team
            // round 21).
            if !preview.refused.is_empty() {
                errln!("warning: {UNVERIFIED_VERDICTS}");
            }
            // A file moved aside makes a key vanish from the listing, not from the record: put
            // back, it opens again (red-team round 20).
            for name in &preview.missing {
                errln!(
                    "warning: {}",
                    Shown(&format!(
                        "credential {name:?} is recorded in the keystore, but its file is missing (moved aside or deleted?): put it back from a backup, or, if you meant to remove it, `tapsign key remove {name}` records its removal, so a copy put back is refused at unlock"
                    ))
                );
            }
            warn_whole(&preview, "opens none of these");
            // The credentials are listed either way; a damaged vault.json fails the listing
            // too, since no key can be added or opened without it.
            ks.check_vault_file().map_err(|e| {
                eprintln!("damaged: {e}");
                Failure::new(
                    exit_codes::DAMAGED,
                    "the keystore's vault.json is damaged (above): no key can be added or opened until it is restored",
                )
            })?;
            listed
        }
        KeyCommand::Remove { name } => {
            let (_, mut ledger) =
                super::agent_vouches(paths, "nothing was removed", "remove the key again")?;
            let removed = ks
                .remove_credential(&name, &mut ledger)
                .map_err(ks_failure)?;
            super::agent_takes_in(paths, &mut ledger)?;
            if removed.file_missing {
                errln!(
                    "warning: the file of {name} was missing (moved aside or deleted?): nothing was deleted, but its removal is recorded, so a copy put back is refused at unlock"
                );
            }
            outln!(
                "Removed {name} (recorded in the audit log: a copy put back is refused at unlock). A running session keeps it until it ends; `tapsign lock` ends it now."
            );
            Ok(())
        }
    }
}

pub fn audit(paths: &Paths, action: Option<AuditCommand>) -> Result<(), Failure> {
    let path = paths.audit_log();
    match action {
        None => {
            let lines = audit::read(&path).map_err(|e| audit_failure(paths, e))?;
            for line in lines {
                outln!("{line}");
            }
            Ok(())
        }
        Some(AuditCommand::Verify { head }) => {
            let report = match head {
                Some(h) => {
                    let cp: audit::Checkpoint = h
                        .parse()
                        .map_err(|e: String| Failure::new(exit_codes::USAGE, e))?;
                    audit::verify_against(&path, &cp)
                }
                None => audit::verify(&path),
            }
            .map_err(|e| audit_failure(paths, e))?;
            outln!("{report}");
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

/// An audit log that cannot be read. One that does not exist yet, on a home with no keystore
/// either, is a new home's, not damage: said as `key list` says "no keystore" (exit 1). With
/// a keystore, a missing log is damage (exit 7), and said so: a bare "No such file or
/// directory" gave neither (red-team round 24).
fn audit_failure(paths: &Paths, e: audit::AuditError) -> Failure {
    let missing = matches!(&e, audit::AuditError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
    match (missing, keystore(paths).is_initialized()) {
        (true, Ok(false)) => Failure::error(format!(
            "no audit log yet at {}: nothing has been recorded on this home; the log starts with `tapsign token add` (or the first `tapsign agent`)",
            paths.audit_log().display()
        )),
        (true, _) => Failure::new(
            exit_codes::DAMAGED,
            format!(
                "the audit log {} is missing, though a keystore exists at {}: it was moved or deleted; put it back from a backup (a new log cannot vouch for what the keystore went through)",
                paths.audit_log().display(),
                paths.keystore_dir().display()
            ),
        ),
        _ => Failure::new(exit_codes::DAMAGED, e.to_string()),
    }
}

pub fn policy(paths: &Paths, cmd: PolicyCommand) -> Result<(), Failure> {
    let PolicyCommand::Explain(a) = cmd;
    let config =
        tapsign_agent::config::Config::load(&paths.config_file()).map_err(Failure::error)?;
    let ks = keystore(paths);
    let mut found = None;
    for entry in ks.list_credentials().map_err(ks_failure)? {
        match entry {
            Ok(c) if c.name == a.name => found = Some(c),
            Ok(_) => {}
            // Its file is there but cannot be read (damaged, or open to others): say that,
            // not that there is no such key.
            Err(e) if e.path().and_then(|p| p.file_stem()) == Some(a.name.as_ref()) => {
                return Err(ks_failure(e));
            }
            Err(_) => {}
        }
    }
    let info = found.ok_or_else(|| {
        Failure::new(
            exit_codes::REFUSED,
            format!(
                "no credential named {:?} in the keystore: `tapsign key list` shows the names",
                a.name
            ),
        )
    })?;
    // A table meant for this key under another name leaves it on its whole profile: said
    // here too, where a trader checks what the key may sign (red-team round 24).
    if let Some(w) = ks
        .names_held()
        .and_then(|held| config.unmatched_keys(&held))
    {
        errln!("warning: {w}");
    }
    for w in config.key_policy(&a.name).idle_switches(info.exchange) {
        errln!(
            "warning: config.toml's [{}] sets {w}, which changes nothing for a {} key",
            tapsign_agent::policy::profile::key_table(&a.name),
            info.exchange
        );
    }
    let req = a.request.into_request(a.name.clone());
    let report = tapsign_agent::policy::explain::explain(
        info.exchange,
        &a.name,
        config.key_policy(&a.name),
        &config.signing,
        &req,
    );
    out!("{report}");
    if report.allowed() {
        Ok(())
    } else {
        Err(Failure::new(
            exit_codes::REFUSED,
            "the agent would refuse this request (see the verdict above)",
        ))
    }
}
