//! `token add|list|remove` and `keystore rotate`: the commands that need the vault key, so a
//! touch on an enrolled token (except the first enrolment, which makes the key). They work
//! on the files directly; the agent need not run.

use tapsign_agent::audit::Shown;
use tapsign_agent::audit::ledger::AuditLedger;
use tapsign_agent::keystore::{
    ChangeNotes, Checked, Dropping, Keyslot, Keystore, KeystoreError, Rotated, VaultKey,
    unrecorded_keyslot,
};
use tapsign_agent::paths::Paths;
use tapsign_agent::token::fido2::{self, UvMode, Where};
use tapsign_agent::token::mgm::MgmOutcome;
use tapsign_agent::token::piv::{self, EnrollOptions};
use tapsign_agent::token::soft::SoftToken;
use tapsign_agent::token::{Search, Token, TokenError, TokenStub};
use yubikey::PinPolicy;

use super::local::{ks_failure, preview, print_listing, token_failure, warn_whole};
use super::{harden, soft_allowed};
use crate::Failure;
use crate::args::{KeystoreCommand, TokenAddArgs, TokenCommand};
use crate::exit::exit_codes;
use crate::prompt::SecretReader;

fn keystore(paths: &Paths) -> Keystore {
    Keystore::new(paths.keystore_dir())
}

pub fn token(paths: &Paths, cmd: TokenCommand) -> Result<(), Failure> {
    let ks = keystore(paths);
    match cmd {
        TokenCommand::Add(a) if a.soft => add_soft(paths, &ks),
        TokenCommand::Add(a) if a.fido2 => add_fido2(paths, &ks, &a),
        TokenCommand::Add(a) => add_piv(paths, &ks, &a),
        TokenCommand::List => {
            // An older keystore put back (a removed token's keyslot with it) lists as it was:
            // say that the next unlock opens none of it, as `key list` does.
            let preview = preview(paths, &ks);
            let listed = list_tokens(&ks);
            warn_whole(&preview, "opens nothing with these tokens");
            listed
        }
        TokenCommand::Remove {
            id,
            drop_refused,
            token,
        } => rotate(
            paths,
            &ks,
            Some(&id),
            dropping(drop_refused),
            token.as_deref(),
        ),
    }
}

fn list_tokens(ks: &Keystore) -> Result<(), Failure> {
    let slots = ks.keyslots().map_err(ks_failure)?;
    // The ids with a file, readable or not: a damaged one is reported as damaged.
    let on_disk: Vec<String> = slots
        .iter()
        .filter_map(|s| match s {
            Ok(s) => Some(s.stub.id()),
            Err(e) => e
                .path()
                .and_then(|p| p.file_stem())
                .map(|n| n.to_string_lossy().into_owned()),
        })
        .collect();
    // A recorded key whose touch policy is weaker than always, said after the list (the
    // keyslot files that are not recorded are never used).
    let weak: Vec<String> = slots
        .iter()
        .flatten()
        .filter(|s| s.recorded)
        .filter_map(|s| s.stub.touch_warning())
        .collect();
    // Whether a token with a working keyslot is left: `token remove` revokes a token whose
    // file is missing only while another opens the keystore.
    let working = slots.iter().flatten().any(|s| s.recorded);
    // manifest.json is read here without its MAC (that needs the vault key): a keyslot it does
    // not record is not used, but an edited manifest makes a genuine keyslot read the same,
    // so the verdict is worded as unverified and never advises deleting the file (red-team
    // round 21: "remove the file" of the trader's only keyslot lost every credential).
    let unrecorded: Vec<String> = slots
        .iter()
        .flatten()
        .filter(|s| !s.recorded)
        .map(|s| unrecorded_keyslot(&s.path, !working))
        .collect();
    let listed = print_listing(slots, "keyslots", |s| {
        let note = if s.recorded {
            ""
        } else {
            "  (NOT in the keystore's manifest as read unverified: do not delete it on this alone, see below)"
        };
        format!(
            "{:<24} {:<6} {:<34} {}{note}",
            s.stub.id(),
            s.stub.kind(),
            s.stub.describe(),
            s.stub.model()
        )
    });
    // A token the manifest records whose keyslot file is gone (moved aside, hidden under a dot
    // name, deleted) is still enrolled: its file put back opens the keystore again. Listed,
    // so that it does not read as "not enrolled" and go unrevoked (red-team round 20).
    // With no other working token, `token remove` refuses (the last keyslot): only the file
    // put back opens the keystore again (red-team round 20 recheck).
    for id in ks.recorded_keyslot_ids().map_err(ks_failure)? {
        if !on_disk.contains(&id) {
            let way = match working {
                true => format!(
                    "Put it back from a backup, or revoke the token with `tapsign token remove {id}`"
                ),
                false => "Put it back from a backup: no other token opens the keystore".into(),
            };
            outln!(
                "{}",
                Shown(&format!(
                    "{id:<24} (recorded in the keystore's manifest, as read unverified, but its keyslot file is missing: moved aside or deleted? {way}. If you never enrolled this token, manifest.json was edited: the next unlock verifies it)"
                ))
            );
        }
    }
    for w in unrecorded.iter().chain(&weak) {
        errln!("warning: {}", Shown(w));
    }
    listed
}

pub fn keystore_cmd(paths: &Paths, cmd: KeystoreCommand) -> Result<(), Failure> {
    match cmd {
        KeystoreCommand::Rotate {
            rebuild_manifest: false,
            drop_refused,
            token,
            ..
        } => rotate(
            paths,
            &keystore(paths),
            None,
            dropping(drop_refused),
            token.as_deref(),
        ),
        KeystoreCommand::Rotate {
            rebuild_manifest: true,
            unchecked,
            token,
            ..
        } => rebuild(paths, &keystore(paths), unchecked, token.as_deref()),
    }
}

fn add_soft(paths: &Paths, ks: &Keystore) -> Result<(), Failure> {
    if !soft_allowed() {
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
    // Asked before the soft token is made, as a card's key is made only after.
    let mut ledger = creating(paths)?;
    // A soft token without a keystore was made by a `token add --soft` that stopped before
    // the keystore (killed, or the disk filled up): enroll that one.
    let dir = paths.soft_token_dir();
    let token = match SoftToken::open(&dir) {
        Ok(t) => t,
        Err(TokenError::Absent { .. }) => SoftToken::create(&dir).map_err(token_failure)?,
        Err(e) => return Err(token_failure(e)),
    };
    let stub = token.stub().clone();
    creatable(paths, ks, &mut ledger)?;
    let checked = ks.create(&stub, &mut ledger).map_err(ks_failure)?;
    super::agent_takes_in(paths, &mut ledger)?;
    outln!("Enrolled {} as {}.", stub.describe(), stub.id());
    outln!("The keystore is at {}.", ks.dir().display());
    report(&checked);
    Ok(())
}

fn add_piv(paths: &Paths, ks: &Keystore, a: &TokenAddArgs) -> Result<(), Failure> {
    harden();
    let policy = |p: &str| match p {
        "never" => PinPolicy::Never,
        "always" => PinPolicy::Always,
        _ => PinPolicy::Once,
    };
    let initialized = ks.is_initialized().map_err(ks_failure)?;
    // With an existing keystore, first make sure an enrolled token can open it: the new key
    // is generated only once the vault key is in hand. Before that touch, the checks that
    // need none: pcscd runs and the YubiKey to enroll is there. Without one, that a keystore
    // can be made here at all, before a key is generated on the card.
    let mut ledger = joining(paths, initialized)?;
    if initialized {
        piv::check_present(a.serial).map_err(token_failure)?;
    } else {
        creatable(paths, ks, &mut AuditLedger::new(&paths.audit_log()))?;
    }
    // The PINs in the order the steps need them, as `--fido2` reads them: the enrolled
    // token's (only when it wants one) for the touch that opens the keystore, then the new
    // card's. Each token gets its own PIN: a wrong one spends one of that token's tries.
    let mut reader = SecretReader::new();
    let mut said = Vec::new();
    let vk = match initialized {
        true => {
            let slots = recorded(ks)?;
            said = changes_before_touch(paths, ks);
            Some(touch_enrolled(
                paths,
                ks,
                slots,
                &mut reader,
                a.token.as_deref(),
            )?)
        }
        false => None,
    };
    let label = match initialized {
        true => "PIN of the YubiKey to enroll",
        false => "YubiKey PIN",
    };
    let pin = reader.field(label)?;
    let mgm_key = if a.custom_mgm_key {
        Some(reader.field("management key (hex)")?)
    } else {
        None
    };
    let opts = EnrollOptions {
        serial: a.serial,
        slot: a.slot,
        pin_policy: policy(&a.pin_policy),
        use_existing: a.use_existing,
        allow_no_touch: a.allow_no_touch,
        allow_cached_touch: a.allow_cached_touch,
        allow_imported: a.allow_imported,
        force: a.force,
        mgm_key,
        keep_default_mgm_key: a.keep_default_mgm_key,
    };
    let (stub, mgm) = piv::enroll(&opts, Some(&pin)).map_err(token_failure)?;
    // Said before the keystore is written: the card's management key changed whatever
    // happens next, and the trader should know where it is.
    say_mgm(&stub, mgm);
    let checked = match vk {
        Some(vk) => ks.add_keyslot(&vk, &stub, &mut ledger),
        None => ks.create(&stub, &mut ledger),
    }
    .map_err(ks_failure)?;
    // Said, and told the agent, before it is asked to take the log in: an agent that does not
    // answer (stopped) ended the command there, and a replacement made during the touch was
    // never said (red-team round 21).
    say_changes(&checked.changes, &said);
    super::agent_keeps(paths, &checked.changes);
    super::agent_takes_in(paths, &mut ledger)?;
    outln!("Enrolled {} as {}.", stub.describe(), stub.id());
    // Only an adopted key can get here with a touch policy other than always, and only with
    // its --allow-* flag; `status`, `unlock` and `token list` keep saying it.
    if let Some(w) = stub.touch_warning() {
        errln!("WARNING: {}", Shown(&w));
    }
    if let TokenStub::Piv { pin_policy, .. } = &stub
        && pin_policy == "never"
    {
        // The card serves a touch to whichever program's command is waiting on it, not to
        // tapsign's: with no PIN to stop it, any program running as the trader takes the
        // keystore's key with the trader's next touch, and leaves no trace (red-team round 26).
        errln!(
            "WARNING: this key's PIN policy is never: any program running as you can take the keystore's key (and with it every API secret, for good) with your touch: the card answers a touch for whichever program's command is waiting on it, not only tapsign's. A blink you did not expect, or a second blink during one unlock, means stop. To have the PIN asked, enroll a key with the default PIN policy in another slot (`tapsign token add --piv --slot R2`), then remove this one (`tapsign token remove {}`).",
            stub.id()
        );
    }
    if !initialized {
        outln!("The keystore is at {}.", ks.dir().display());
    }
    report(&checked);
    Ok(())
}

/// What `token add --piv` did to the card's management key, when the trader needs to know.
fn say_mgm(stub: &TokenStub, mgm: MgmOutcome) {
    let card = stub.describe();
    match mgm {
        MgmOutcome::Replaced { aes } => errln!(
            "{card} had the factory management key: it now has a random {} one, stored on the card behind its PIN (ykman and tapsign find it with the PIN), so no program can replace the enrolled key without the PIN. One can still wipe the card, by spending its PIN and PUK tries and resetting it: keep a second token enrolled.",
            if aes { "AES-192" } else { "3DES" }
        ),
        // Storing a key behind the PIN needs the management key only: a program that had the
        // factory one may have stored its own there before this enrollment (red-team round 27).
        MgmOutcome::Rotated { aes } => errln!(
            "{card}'s management key, stored behind its PIN, is replaced with a new random {} one: storing a key there takes no PIN, so whoever stored the old one (an earlier `tapsign token add`, ykman, or another program) can no longer use it.",
            if aes { "AES-192" } else { "3DES" }
        ),
        // The factory key lets any program running as the trader replace the enrolled key
        // with no PIN and no touch (red-team round 27).
        MgmOutcome::KeptDefault => errln!(
            "WARNING: {card} keeps its factory management key (--keep-default-mgm-key): any program running as you can generate or import a key over the enrolled one, with no PIN and no touch, and this card then never opens the keystore again. To close this, run `ykman piv access change-management-key --generate --protect` (tapsign finds that key with the PIN), and keep a second token enrolled."
        ),
        MgmOutcome::Custom | MgmOutcome::Untouched => {}
    }
}

fn add_fido2(paths: &Paths, ks: &Keystore, a: &TokenAddArgs) -> Result<(), Failure> {
    harden();
    let mut reader = SecretReader::new();
    let initialized = ks.is_initialized().map_err(ks_failure)?;
    let mut ledger = joining(paths, initialized)?;
    let slots = match initialized {
        true => recorded(ks)?,
        false => {
            creatable(paths, ks, &mut AuditLedger::new(&paths.audit_log()))?;
            Vec::new()
        }
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
    let mut prepared = Some(fido2::prepare(&opts, &stubs).map_err(token_failure)?);
    let mut said = Vec::new();
    let vk = match initialized {
        true => {
            // The FIDO2 key is let go for that touch and found again after it: the PIV card
            // that opens the keystore may be the same card (its FIDO2 applet), and a PIN is
            // used only on a card no other handle has open, this command's own included
            // (held.rs).
            prepared = None;
            said = changes_before_touch(paths, ks);
            let token = a.token.as_deref();
            Some(touch_enrolled(
                paths,
                ks,
                slots.clone(),
                &mut reader,
                token,
            )?)
        }
        false => None,
    };
    let prepared = match prepared {
        Some(p) => p,
        None => fido2::prepare(&opts, &stubs).map_err(token_failure)?,
    };
    let mut ask = |label: &str| reader.field(label).map_err(|f| f.message);
    let mut token = prepared.enroll(&mut ask).map_err(token_failure)?;
    let stub = token.stub().clone();
    errln!(
        "Touch {} again, to seal the keystore's key to it...",
        stub.describe()
    );
    let checked = match vk {
        Some(vk) => ks.add_keyslot_with(&vk, &mut token, &mut ledger),
        None => ks.create_with(&mut token, &mut ledger),
    }
    .map_err(ks_failure)?;
    // Before the agent is asked: see add_piv.
    say_changes(&checked.changes, &said);
    super::agent_keeps(paths, &checked.changes);
    super::agent_takes_in(paths, &mut ledger)?;
    outln!(
        "Enrolled {} as {} ({}).",
        stub.describe(),
        stub.id(),
        stub.model()
    );
    // As add_piv's weaker choices: the enrollment is where the trader chose it.
    if let Some(w) = fido2::weaker_warning(&stub, &stubs) {
        errln!("WARNING: {}", Shown(&w));
    }
    if !initialized {
        outln!("The keystore is at {}.", ks.dir().display());
    }
    report(&checked);
    Ok(())
}

/// The ledger a `token add` records in: the running agent is asked first, as for a rotation
/// (`rotate`), before any card or key is touched; for a new keystore too ([`creating`]).
fn joining(paths: &Paths, initialized: bool) -> Result<AuditLedger, Failure> {
    match initialized {
        true => super::agent_vouches(paths, "no token was enrolled", "add the token again")
            .map(|(_, ledger)| ledger),
        false => creating(paths),
    }
}

/// The ledger of a `token add` that makes a new keystore, with the running agent asked first.
/// It refuses where the agent does not hold the log at the path ([`super::ask_agent_first`]),
/// and where the agent verified a keystore here since it started, now gone from the path: the
/// trader should put that keystore back, not start over. Red-team round 26, recheck (R4): with
/// the keystore folder moved away and an empty file at the log's path, `token add` made a new
/// keystore and only then said the agent no longer took the log in, while `status` told the
/// trader to enroll a token.
fn creating(paths: &Paths) -> Result<AuditLedger, Failure> {
    let unchanged = "no keystore was made";
    let Some(vouched) = super::ask_agent_first(paths, unchanged, "add the token again")? else {
        return Ok(AuditLedger::new(&paths.audit_log()));
    };
    if vouched.pinned.is_some() {
        return Err(Failure::new(
            exit_codes::DAMAGED,
            format!(
                "the running agent verified a keystore at {} since it started (`tapsign status` shows its generation and vault), and no keystore is there now; {unchanged}. Put that keystore back (moved aside, it may still be beside it; else from a backup), then run `tapsign unlock`. If you are starting over on purpose, stop the agent first (`systemctl --user stop tapsign-agent`), move the audit log aside, then add the token again",
                paths.keystore_dir().display()
            ),
        ));
    }
    Ok(vouched.ledger)
}

/// The credential changes since the keystore's last check that the next check would tell of
/// (`Keystore::preview`), said on stderr before the touch of a command whose new manifest
/// folds them in: after it, no unlock tells of them (red-team round 21: a `key add --replace`
/// made before a `token add`, `token remove`, rotation or rebuild was never mentioned). The
/// trader can still stop before the touch. Returns the sentences said.
fn changes_before_touch(paths: &Paths, ks: &Keystore) -> Vec<String> {
    before_touch(&preview(paths, ks).changes)
}

/// Say `notes` before the touch, with what the touch does to them. Returns the sentences said.
fn before_touch(notes: &ChangeNotes) -> Vec<String> {
    let said = say_changes(notes, &[]);
    if !said.is_empty() {
        errln!(
            "This command records the keystore as it is now: no later unlock tells of these changes again. To look first (`tapsign audit`), stop here (Ctrl-C) before the touch."
        );
    }
    said
}

/// Say the change notes on stderr, those replaced or removed as WARNING, but for the sentences
/// in `said` (told before the touch already). Returns every sentence of `notes`.
fn say_changes(notes: &ChangeNotes, said: &[String]) -> Vec<String> {
    let all = notes.all();
    for (i, text) in all.iter().enumerate() {
        if said.contains(text) {
            continue;
        }
        match i < notes.loud.len() {
            true => errln!("WARNING: {}", Shown(text)),
            false => errln!("warning: {}", Shown(text)),
        }
    }
    all
}

/// The keyslots the manifest records (readable ones).
fn recorded(ks: &Keystore) -> Result<Vec<Keyslot>, Failure> {
    Ok(ks
        .keyslots()
        .map_err(ks_failure)?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| s.recorded)
        .collect())
}

/// Touch a present token among `slots` (the one `chosen` names, when given: `--token`) and
/// unwrap the vault key. The PIN, when that token takes one, is read from `reader` (the
/// command's one reader: it comes first of what the command reads) once the token is known,
/// and goes to it alone.
fn touch_enrolled(
    paths: &Paths,
    ks: &Keystore,
    slots: Vec<Keyslot>,
    reader: &mut SecretReader,
    chosen: Option<&str>,
) -> Result<VaultKey, Failure> {
    touch_one(paths, ks, slots, reader, chosen).map(|(vk, _)| vk)
}

/// [`touch_enrolled`], also saying which token was touched.
fn touch_one(
    paths: &Paths,
    ks: &Keystore,
    slots: Vec<Keyslot>,
    reader: &mut SecretReader,
    chosen: Option<&str>,
) -> Result<(VaultKey, TokenStub), Failure> {
    if slots.is_empty() {
        return Err(Failure::error(
            "no enrolled token can open the keystore: `tapsign token list` shows what is wrong",
        ));
    }
    let named = chosen.map(|id| only_token(&slots, id)).transpose()?;
    let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
    let soft_dir = paths.soft_token_dir();
    let mut search = Search {
        soft_dir: &soft_dir,
        soft_allowed: soft_allowed(),
        pin: None,
    };
    // The token first, then its PIN: one prompt naming every token that takes a PIN sent the
    // PIN typed for a FIDO2 key to the YubiKey found first, spending one of its tries, and
    // asked a PIN line even when the token present took none (red-team round 24). A named
    // token that is not there is said as such, with the other token present (its recheck).
    let found = match (named, stubs.iter().any(|s| s.needs_pin())) {
        (Some(i), _) => {
            tapsign_agent::token::which_named(&stubs, i, &search).map_err(token_failure)?;
            Some(i)
        }
        (None, true) => {
            let (i, passed) =
                tapsign_agent::token::which(&stubs, &search).map_err(token_failure)?;
            for dead in tapsign_agent::token::dead(&passed) {
                errln!("warning: {dead}");
            }
            Some(i)
        }
        (None, false) => None,
    };
    let pin = match found {
        Some(i) if stubs[i].needs_pin() => {
            Some(reader.field(&format!("PIN of {}", stubs[i].describe()))?)
        }
        _ => None,
    };
    search.pin = pin.as_ref();
    let (i, mut token) = match found {
        Some(i) => tapsign_agent::token::locate(&[stubs[i]], &search).map(|(_, t)| (i, t)),
        None => tapsign_agent::token::locate(&stubs, &search),
    }
    .map_err(token_failure)?;
    errln!("Touch {} to open the keystore...", stubs[i].describe());
    ks.unwrap_vault(&slots[i], token.as_mut())
        .map(|vk| (vk, slots[i].stub.clone()))
        .map_err(ks_failure)
}

/// The index of the keyslot of the token `--token` names, among those that can open the
/// keystore.
fn only_token(slots: &[Keyslot], id: &str) -> Result<usize, Failure> {
    match slots.iter().position(|s| s.stub.id() == id) {
        None => Err(Failure::new(
            exit_codes::USAGE,
            format!(
                "--token {id}: no enrolled token with that id can open the keystore here: `tapsign token list` shows the ids"
            ),
        )),
        Some(i) => Ok(i),
    }
}

/// `token remove` (with `remove`) and `keystore rotate`: a new vault key for every token that
/// stays, after a touch on one of them.
fn dropping(drop_refused: bool) -> Dropping {
    match drop_refused {
        true => Dropping::Refused,
        false => Dropping::None,
    }
}

fn rotate(
    paths: &Paths,
    ks: &Keystore,
    remove: Option<&str>,
    dropping: Dropping,
    chosen: Option<&str>,
) -> Result<(), Failure> {
    harden();
    if chosen.is_some() && chosen == remove {
        return Err(Failure::new(
            exit_codes::USAGE,
            "--token names the token being removed: open the keystore with one that stays",
        ));
    }
    if let Some(id) = remove {
        // A token the manifest records is removed even when its keyslot file is gone: a file
        // hidden for the moment must not make the token look never enrolled (red-team round
        // 20). The library holds the id to the manifest verified under its lock.
        let known = ks.keyslots().map_err(ks_failure)?;
        let recorded = ks.recorded_keyslot_ids().map_err(ks_failure)?;
        if !known.iter().flatten().any(|s| s.stub.id() == id) && !recorded.iter().any(|r| r == id) {
            return Err(Failure::error(format!(
                "no enrolled token {id:?}: `tapsign token list` shows the ids"
            )));
        }
    }
    // Said before the touch, so that the trader can stop there: a rotation that would leave
    // out a recorded token whose file is missing is refused; a removal revokes it too.
    for id in ks.keyslots_left_out(remove).map_err(ks_failure)? {
        errln!(
            "warning: this removal revokes token {id} too: the keystore's manifest records it, but its keyslot file is missing or cannot be read (moved aside, hidden under a dot name, deleted or changed?). To keep it, stop now (Ctrl-C) and put the file back as it was"
        );
    }
    let mut stay = recorded(ks)?;
    stay.retain(|s| Some(s.stub.id().as_str()) != remove);
    match (stay.is_empty(), remove) {
        (true, Some(id)) => {
            return Err(ks_failure(KeystoreError::LastKeyslot { token: id.into() }));
        }
        (true, None) => {
            return Err(Failure::new(
                exit_codes::DAMAGED,
                "no keyslot can open the keystore (`tapsign token list` says what is wrong with each): restore them from a backup. If keyslot files are there but manifest.json, read unverified, records none of them, delete none: it may be manifest.json that was edited, and `tapsign unlock` verifies it (if it does not verify, `tapsign keystore rotate --rebuild-manifest` rebuilds it from the files)",
            ));
        }
        (false, _) => {}
    }
    // Asked before the PIN and the touch, and before anything changes: a log at the path
    // that is not the running agent's lets the rotation go ahead on a keystore put back, and
    // gave a removed token the new vault key (red-team round 26).
    let (_, mut ledger) = super::agent_vouches(
        paths,
        "the keystore was not changed",
        "run the command again",
    )?;
    let what = match remove {
        Some(id) => format!("the removal of token {id}"),
        None => "the rotation".into(),
    };
    ready_to_record(&mut ledger, what)?;
    let said = changes_before_touch(paths, ks);
    // One reader for every PIN of the command: the touched token's, then each FIDO2 key's
    // that must receive the new vault key (`present_token`).
    let mut reader = SecretReader::new();
    let vk = touch_enrolled(paths, ks, stay, &mut reader, chosen)?;
    let rotated = ks
        .rotate(
            &vk,
            remove,
            &mut present_token(paths, &mut reader),
            &mut ledger,
            dropping,
        )
        .map_err(ks_failure)?;
    drop(vk);
    // Before the agent is asked: see add_piv.
    say_changes(&rotated.changes, &said);
    super::agent_keeps(paths, &rotated.changes);
    super::agent_takes_in(paths, &mut ledger)?;
    print_rotated(&rotated)
}

/// A rotation must be recorded to hold: refuse it before any PIN or touch is asked for when
/// the audit log cannot be written (the ledger keeps the log open for the record).
fn ready_to_record(ledger: &mut AuditLedger, what: String) -> Result<(), Failure> {
    use tapsign_agent::keystore::Ledger;
    ledger
        .ready()
        .map_err(|reason| ks_failure(KeystoreError::CannotRecord { what, reason }))
}

/// `keystore rotate --rebuild-manifest`.
fn rebuild(
    paths: &Paths,
    ks: &Keystore,
    unchecked: bool,
    chosen: Option<&str>,
) -> Result<(), Failure> {
    harden();
    let slots = ks.keyslots_for_rebuild().map_err(ks_failure)?;
    // As `rotate`: the running agent is asked first.
    let (_, mut ledger) = super::agent_vouches(
        paths,
        "the keystore was not changed",
        "run the command again",
    )?;
    ready_to_record(&mut ledger, "the rebuilt manifest".into())?;
    // Judged against the audit log's last check, not the manifest a rebuild replaces (gone,
    // or one that does not verify: red-team round 21).
    // A log that cannot vouch for the files stops it here, before the touch.
    let preview = match ks.rebuild_preview(&mut ledger, unchecked) {
        Err(e @ KeystoreError::RebuildUnsigned { .. }) => return Err(ks_failure(e)),
        preview => preview.unwrap_or_default(),
    };
    let said = before_touch(&preview);
    // As `rotate`: the touched token's PIN, then the one it is asked again to receive the key.
    let mut reader = SecretReader::new();
    let (vk, touched) = touch_one(paths, ks, slots, &mut reader, chosen)?;
    let rotated = ks
        .rebuild_manifest(
            &vk,
            &touched,
            &mut present_token(paths, &mut reader),
            &mut ledger,
            unchecked,
        )
        .map_err(ks_failure)?;
    drop(vk);
    // Before the agent is asked: see add_piv.
    say_changes(&rotated.changes, &said);
    super::agent_keeps(paths, &rotated.changes);
    super::agent_takes_in(paths, &mut ledger)?;
    outln!(
        "Rebuilt the keystore's manifest from its files as they were (nothing was checked against the old one)."
    );
    print_rotated(&rotated)
}

/// Asks the human for a token that must receive the new vault key itself, and for its PIN
/// from `reader`: the command's one reader, whose buffer may already hold the lines after the
/// first PIN (a reader of its own found stdin drained, and the piped PINs of a rotation never
/// reached their second one: red-team round 22).
fn present_token<'a>(
    paths: &Paths,
    reader: &'a mut SecretReader,
) -> impl FnMut(&TokenStub) -> Result<Box<dyn Token>, KeystoreError> + 'a {
    let soft_dir = paths.soft_token_dir();
    move |stub: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
        errln!(
            "{} must receive the new vault key itself: insert it, and touch it when it blinks...",
            stub.describe()
        );
        let pin = match stub.needs_pin() {
            true => Some(
                reader
                    .field(&format!("PIN of {}", stub.describe()))
                    .map_err(|f| KeystoreError::Token(TokenError::Other(f.message)))?,
            ),
            false => None,
        };
        let search = Search {
            soft_dir: &soft_dir,
            soft_allowed: soft_allowed(),
            pin: pin.as_ref(),
        };
        let (_, token) = tapsign_agent::token::locate(&[stub], &search)?;
        Ok(token)
    }
}

fn print_rotated(r: &Rotated) -> Result<(), Failure> {
    if let Some(id) = &r.removed {
        outln!("Removed token {id}, and revoked it:");
    }
    outln!(
        "The keystore has a new vault key (vault {}, manifest generation {}).",
        r.vault,
        r.generation
    );
    outln!(
        "Re-sealed to it: {} credential(s){}.",
        r.carried.len(),
        list(&r.carried)
    );
    outln!(
        "Tokens that received it: {}.",
        if r.keyslots.is_empty() {
            "none".into()
        } else {
            r.keyslots.join(", ")
        }
    );
    if r.removed.is_some() {
        outln!(
            "The removed token now opens nothing in this keystore, even with an old copy of its keyslot. \
             A backup made before now still opens with it and holds the secrets as they were then: \
             if the token was lost, replace those API keys at the exchange too."
        );
    }
    for d in &r.dropped {
        errln!("NOT carried over: {}: {}", d.name, d.reason);
    }
    for w in &r.warnings {
        errln!("warning: {}", tapsign_agent::audit::Shown(w));
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        n => format!(" ({})", n.join(", ")),
    }
}

/// What a check found that the trader must hear about.
pub(super) fn report(c: &Checked) {
    for r in &c.refused {
        errln!("REFUSED: {}", r.reason);
    }
    for w in &c.warnings {
        errln!("warning: {}", tapsign_agent::audit::Shown(w));
    }
}

/// A new keystore cannot be made next to an audit log that names another keystore's vault:
/// say so, with the log's path, before any token is touched or written to.
fn creatable(paths: &Paths, ks: &Keystore, ledger: &mut AuditLedger) -> Result<(), Failure> {
    ks.creatable(ledger).map_err(|e| {
        let mut f = ks_failure(e);
        f.message = format!(
            "{} (the audit log: {})",
            f.message,
            paths.audit_log().display()
        );
        f
    })
}
