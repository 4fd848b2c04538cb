//! The blocking half of `unlock`: find an enrolled token, ask it for its one touch, unwrap the
//! vault key, decrypt the credentials asked for, and drop the vault key at once.
//!
//! Runs on a blocking thread: token calls wait for a human.

use tapsign_proto::{ErrorCode, Pin};

use crate::agent::Agent;
use crate::credential::Credential;
use crate::keystore::{Keyslot, KeystoreError, VaultKey};
use crate::secret::SecretString;
use crate::token::{self, Search, Token, TokenError, TokenStub};

/// What an unlock produced.
pub struct Opened {
    pub credentials: Vec<Credential>,
    /// The token that opened the session, described for humans.
    pub opened_by: String,
    /// The PC/SC reader it sat in, to lock when it leaves.
    pub reader: Option<String>,
    pub warnings: Vec<String>,
}

type Failure = (ErrorCode, String);

/// Open the session's credentials (`names`, or all when empty).
pub fn open(
    agent: &Agent,
    names: &[String],
    pin: Option<&Pin>,
    asked: &str,
) -> Result<Opened, Failure> {
    let ks = &agent.keystore;
    let mut warnings = Vec::new();
    let slots = usable_keyslots(agent, &mut warnings)?;
    // Settle which credentials to open before asking for a touch: a typo in a name must not
    // cost the trader a touch, and must say "unknown key", not "damaged keystore".
    let mut available = Vec::new();
    for info in ks.list_credentials().map_err(keystore_failure)? {
        match info {
            Ok(i) => available.push(i.name),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    let wanted: Vec<String> = if names.is_empty() {
        available
    } else {
        if let Some(missing) = names.iter().find(|n| !available.contains(n)) {
            return Err((
                ErrorCode::UnknownKey,
                format!(
                    "no usable key named {missing:?} in the keystore; `tapsign key list` shows the keys"
                ),
            ));
        }
        names.to_vec()
    };
    if wanted.is_empty() {
        return Err((
            ErrorCode::UnknownKey,
            "no key to open: add one with `tapsign key add NAME --exchange EXCHANGE`".into(),
        ));
    }

    let (vk, opened_by, reader, slot) = unwrap_with_touch(agent, &slots, pin, asked)?;
    // Nothing goes backwards: check every file against the manifest and the audit log's
    // record before opening any, and refuse what was put back from an old copy.
    let checked = ks
        .check(&vk, slot, agent.keystore_seen(), &mut agent.ledger())
        .map_err(keystore_failure)?;
    agent.set_verified(checked.generation, checked.vault_key.clone());
    warnings.extend(checked.warnings);
    for r in &checked.refused {
        if names.contains(&r.name) {
            return Err((ErrorCode::Keystore, r.reason.clone()));
        }
        warnings.push(format!("REFUSED: {}", r.reason));
    }
    let mut credentials = Vec::new();
    for name in wanted.iter().filter(|n| checked.accepted.contains(n)) {
        match ks.open_credential(&vk, name) {
            Ok(c) => credentials.push(c),
            // A key asked for by name must open; with "all", a damaged one is a warning.
            Err(e) if !names.is_empty() => return Err(keystore_failure(e)),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    drop(vk);
    if credentials.is_empty() && !checked.refused.is_empty() {
        let why: Vec<&str> = checked.refused.iter().map(|r| r.reason.as_str()).collect();
        return Err((
            ErrorCode::Keystore,
            format!(
                "no key could be opened. REFUSED: {}",
                why.join("; REFUSED: ")
            ),
        ));
    }
    if credentials.is_empty() {
        return Err((
            ErrorCode::UnknownKey,
            "no key could be opened: add one with `tapsign key add NAME --exchange EXCHANGE`"
                .into(),
        ));
    }
    Ok(Opened {
        credentials,
        opened_by,
        reader,
        warnings,
    })
}

/// A touch on an enrolled token, proved by unwrapping the vault key (then dropped at once):
/// what `unlock --extend` asks before renewing a session.
pub fn touch(agent: &Agent, pin: Option<&Pin>, asked: &str) -> Result<Opened, Failure> {
    let mut warnings = Vec::new();
    let slots = usable_keyslots(agent, &mut warnings)?;
    let (vk, opened_by, reader, _) = unwrap_with_touch(agent, &slots, pin, asked)?;
    drop(vk);
    Ok(Opened {
        credentials: Vec::new(),
        opened_by,
        reader,
        warnings,
    })
}

/// The keyslots that can be read; damaged ones become warnings. None at all is an error.
fn usable_keyslots(agent: &Agent, warnings: &mut Vec<String>) -> Result<Vec<Keyslot>, Failure> {
    let mut good = Vec::new();
    for slot in agent.keystore.keyslots().map_err(keystore_failure)? {
        match slot {
            Ok(s) if s.recorded => good.push(s),
            // Checked again once VK verifies the manifest; not worth a touch before that.
            Ok(s) => warnings.push(format!(
                "keyslot {} is not the one the keystore's manifest records (put there by hand, or an old copy put back): it is not used",
                s.path.display()
            )),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    if good.is_empty() && !warnings.is_empty() {
        // Enrolling or rotating needs a touch on a token that can open the keystore, so the
        // only way back is the keyslot file itself.
        return Err((
            ErrorCode::Keystore,
            format!(
                "no keyslot can be used: {}. No enrolled token can open the keystore, so neither `tapsign token add` nor `tapsign keystore rotate` can help: restore the keyslot from a backup (without one the stored keys cannot be read again: move the keystore folder away, enroll a token and add the keys again)",
                warnings.join("; ")
            ),
        ));
    }
    if good.is_empty() {
        return Err((
            ErrorCode::TokenAbsent,
            "no usable token is enrolled: run `tapsign token add` first".into(),
        ));
    }
    Ok(good)
}

/// Find an enrolled token, ask it for its touch, and unwrap the vault key. Returns the key, the
/// token's description, the PC/SC reader it sat in (for the removal watch) and the keyslot.
fn unwrap_with_touch<'a>(
    agent: &Agent,
    slots: &'a [Keyslot],
    pin: Option<&Pin>,
    asked: &str,
) -> Result<(VaultKey, String, Option<String>, &'a Keyslot), Failure> {
    let (slot, mut token) = locate(agent, slots, pin).map_err(token_failure)?;
    let opened_by = slot.stub.describe();
    agent.notifier.touch_needed(&opened_by, asked);
    let vk = agent
        .keystore
        .unwrap_vault(slot, token.as_mut())
        .map_err(keystore_failure)?;
    Ok((vk, opened_by, token.reader(), slot))
}

/// Find a present token that answers for one of `slots`, without asking for a touch.
fn locate<'a>(
    agent: &Agent,
    slots: &'a [Keyslot],
    pin: Option<&Pin>,
) -> Result<(&'a Keyslot, Box<dyn Token>), TokenError> {
    let pin = pin.map(|p| SecretString::from_str_copy(p.expose()));
    let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
    let soft_dir = agent.paths.soft_token_dir();
    let search = Search {
        soft_dir: &soft_dir,
        soft_allowed: agent.soft_allowed,
        pin: pin.as_ref(),
    };
    let (i, token) = token::locate(&stubs, &search)?;
    Ok((&slots[i], token))
}

fn token_failure(e: TokenError) -> Failure {
    let code = match &e {
        TokenError::Absent { .. } | TokenError::SoftRefused | TokenError::Unavailable { .. } => {
            ErrorCode::TokenAbsent
        }
        TokenError::WrongToken { .. } => ErrorCode::WrongToken,
        // No code of its own on the wire: a refused touch is a touch that did not come.
        TokenError::TouchTimeout { .. } | TokenError::TouchDenied { .. } => ErrorCode::TouchTimeout,
        TokenError::PinInvalid { .. }
        | TokenError::PinBlocked { .. }
        | TokenError::PinNeeded { .. }
        | TokenError::PinLastTry { .. }
        | TokenError::PinNeedsReplug { .. } => ErrorCode::PinInvalid,
        TokenError::Other(_) => ErrorCode::Internal,
    };
    (code, e.to_string())
}

fn keystore_failure(e: KeystoreError) -> Failure {
    match e {
        KeystoreError::Token(t) => token_failure(t),
        other => (ErrorCode::Keystore, other.to_string()),
    }
}
