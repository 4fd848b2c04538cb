//! Commands that talk to the running agent.

use std::time::Duration;

use tapsign_agent::clock::{format_duration, parse_duration};
use tapsign_agent::error::AgentError;
use tapsign_agent::keystore::Keystore;
use tapsign_agent::paths::Paths;
use tapsign_agent::session::signatures;
use tapsign_agent::token::{self, Search, TokenError, TokenStub};
use tapsign_proto::client::Client;
use tapsign_proto::{
    ErrorCode, Pin, ProtoError, SessionState, SessionStatus, Status, UnlockRequest,
};

use crate::prompt::SecretReader;

use super::CLIENT_NAME;
use crate::Failure;
use crate::args::{SignArgs, UnlockArgs};
use crate::exit::exit_codes;

use super::lock::{foreign_socket, foreign_status, home_agent, timed_out, unanswered, within};

fn connect(paths: &Paths) -> Result<Client, Failure> {
    Client::connect(&paths.socket, CLIENT_NAME).map_err(|e| not_connected(paths, e))
}

/// A failed connection: the agent's own answer (another user, busy, other version), or none.
pub(super) fn not_connected(paths: &Paths, e: ProtoError) -> Failure {
    match e {
        e @ ProtoError::Agent { .. } => e.into(),
        // Not "start it": an agent runs there, another user's, and a second one would fail on
        // its socket (red-team round 26, F7).
        ProtoError::Io(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && foreign_owner(&paths.socket).is_some() =>
        {
            let (path, uid) = foreign_owner(&paths.socket).unwrap_or_default();
            Failure::new(
                exit_codes::NO_AGENT,
                format!(
                    "cannot reach the agent at {} ({e}): {} belongs to another user (uid {uid}), and an agent serves only its own user: point TAPSIGN_SOCK at your own agent's socket (start one with `tapsign agent`), or have that user forward theirs to you (docs/remote-bots.md)",
                    paths.socket.display(),
                    path.display()
                ),
            )
        }
        e => match home_agent(paths) {
            // Not "start it": a second agent would be refused, and the one that runs keeps
            // its session open (red-team round 23).
            Some(pid) => Failure::new(
                exit_codes::NO_AGENT,
                format!(
                    "cannot reach an agent at {} ({e}), but a tapsign agent (pid {pid}) runs on this home, listening on another socket: set TAPSIGN_SOCK to the socket it listens on (its log's first lines say it), or restart it",
                    paths.socket.display()
                ),
            ),
            None => Failure::new(
                exit_codes::NO_AGENT,
                format!(
                    "cannot reach the agent at {} ({e}); start it with `tapsign agent` (or set TAPSIGN_SOCK)",
                    paths.socket.display()
                ),
            ),
        },
    }
}

/// The socket, or the first folder on its way this user may look at, when another user owns
/// it: where `connect` was refused (EACCES), the agent there is that user's.
fn foreign_owner(sock: &std::path::Path) -> Option<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::getuid().as_raw();
    (sock.ancestors())
        .find_map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (p.to_path_buf(), m.uid()))
        })
        .filter(|(_, uid)| *uid != me)
}

fn duration(flag: &str, v: &Option<String>) -> Result<Option<u64>, Failure> {
    v.as_deref()
        .map(|s| {
            parse_duration(s)
                .map(|d| d.as_secs())
                .map_err(|e| Failure::new(exit_codes::USAGE, format!("--{flag}: {e}")))
        })
        .transpose()
}

/// The enrolled tokens, for prompts: which need a PIN, what to ask the human to touch. The
/// keyslots the agent tries (`Keystore::keyslots_to_try`), not every file that parses: a
/// keyslot planted beside the trader's (sealing needs no secret) put its label, text of the
/// attacker's choosing, in the touch prompt, and a FIDO2 one asked for a PIN nothing needed
/// (red-team round 21).
/// Also the other readable keyslots' tokens, tried when none of those tokens is present
/// (`Tried::spare`): then the names rest on a manifest that may be edited to record a keyslot
/// someone planted, with a label of their choosing (red-team round 21's recheck), and the
/// prompts say so and ask no PIN that cannot be skipped.
fn enrolled(paths: &Paths) -> (Vec<TokenStub>, Vec<TokenStub>) {
    let ks = Keystore::new(paths.keystore_dir());
    ks.keyslots_to_try()
        .map(|t| {
            let stubs = |v: Vec<tapsign_agent::keystore::Keyslot>| {
                v.into_iter().map(|s| s.stub).collect::<Vec<_>>()
            };
            (stubs(t.slots), stubs(t.spare))
        })
        .unwrap_or_default()
}

/// The token the unlock is to use, and whether it is one of the spare keyslots', with what
/// the probe passed over on the way to it.
#[derive(Default)]
struct Choice<'a> {
    token: Option<(&'a TokenStub, bool)>,
    /// What the kinds tried before the one found said (`token::locate_noting`): an enrolled
    /// token found dead, or a YubiKey not present when the soft token is chosen instead.
    passed: Vec<TokenError>,
}

/// The token the unlock is to use, and whether it is one of the spare keyslots': `--token`'s,
/// or, when a token present may take a PIN, the one the agent would find first (PIV, FIDO2,
/// soft), found here without a PIN or a touch so that the PIN prompt names that token alone
/// and the PIN goes to it alone (red-team round 24: one prompt for "FIDO2 key X or YubiKey N"
/// sent the FIDO2 PIN to the YubiKey, spending one of its tries). None: no token present
/// takes a PIN, or none was found (the agent then says what is wrong).
///
/// `--token`'s is looked for too, and refused before the prompts where the agent would refuse
/// it before its touch: not present (said with the enrolled token that is, if one is), a
/// spare keyslot's while a recorded one's token is present, or for an extend (its recheck:
/// the PIN was read and `Touch ... when it blinks` printed first).
fn chosen<'a>(
    paths: &Paths,
    tokens: &'a [TokenStub],
    spare: &'a [TokenStub],
    a: &UnlockArgs,
) -> Result<Choice<'a>, Failure> {
    let soft_dir = paths.soft_token_dir();
    let search = Search {
        soft_dir: &soft_dir,
        soft_allowed: super::soft_allowed(),
        pin: None,
    };
    if let Some(id) = a.token.as_deref() {
        return named(tokens, spare, id, a.extend, &search);
    }
    if !tokens.iter().chain(spare).any(TokenStub::needs_pin) {
        return Ok(Choice::default());
    }
    let mut passed = Vec::new();
    // No token found, and a transport not searched (pcscd not running): said before the
    // prompts, as the agent says it, not after a `Touch ...` line (red-team round 27, recheck
    // F3).
    let mut unsearched = None;
    for (list, is_spare) in [(tokens, false), (spare, true)] {
        let stubs: Vec<&TokenStub> = list.iter().collect();
        if stubs.is_empty() {
            continue;
        }
        match token::which(&stubs, &search) {
            Ok((i, more)) => {
                passed.extend(more);
                return Ok(Choice {
                    token: Some((stubs[i], is_spare)),
                    passed,
                });
            }
            // A card another program holds, with no enrolled token found elsewhere: the agent
            // meets it too, so it is said before the prompts (red-team round 27: the PIN was
            // read and `Touch ...` printed, and the agent then waited on the same card).
            Err(e @ TokenError::InUse { .. }) => return Err(refused(e.into())),
            Err(e @ TokenError::Absent { .. }) if !token::absent_notes(&e, &stubs).is_empty() => {
                unsearched.get_or_insert(e);
            }
            Err(e) => passed.push(e),
        }
    }
    if let Some(e) = unsearched {
        return Err(refused(e.into()));
    }
    Ok(Choice::default())
}

/// [`chosen`] for `--token ID`.
fn named<'a>(
    tokens: &'a [TokenStub],
    spare: &'a [TokenStub],
    id: &str,
    extend: bool,
    search: &Search<'_>,
) -> Result<Choice<'a>, Failure> {
    let recorded: Vec<&TokenStub> = tokens.iter().collect();
    let at = |list: &[TokenStub]| list.iter().position(|t| t.id() == id);
    let one = |t: &'a TokenStub, is_spare: bool| Choice {
        token: Some((t, is_spare)),
        passed: Vec::new(),
    };
    match (at(tokens), at(spare)) {
        (Some(i), _) => match token::which_named(&recorded, i, search) {
            Err(
                e @ (TokenError::Absent { .. }
                | TokenError::NamedAbsent { .. }
                | TokenError::WrongToken { .. }
                | TokenError::KeyLost { .. }),
            ) => Err(refused(e.into())),
            // The rest (the soft token refused by this shell's environment, where the agent's
            // decides; pcscd; a card held elsewhere) the agent says as it meets them.
            Err(_) | Ok(()) => Ok(one(&tokens[i], false)),
        },
        (None, Some(_)) if extend => Err(refused(AgentError::spare_named(id, None))),
        (None, Some(i)) => match token::which(&recorded, search) {
            Ok((j, _)) => Err(refused(AgentError::spare_named(
                id,
                Some(&recorded[j].describe()),
            ))),
            Err(_) => Ok(one(&spare[i], true)),
        },
        (None, None) => Err(Failure::new(
            exit_codes::USAGE,
            format!(
                "--token {id}: no enrolled token has that id: `tapsign token list` shows the ids"
            ),
        )),
    }
}

/// An agent's refusal, said by this command as the agent says it: its code and exit status.
fn refused(e: tapsign_agent::error::AgentError) -> Failure {
    Failure::from(ProtoError::Agent {
        code: e.code(),
        message: e.to_string(),
    })
}

/// A spare keyslot's token, as the prompts name it: a FIDO2 keyslot's label is text whoever
/// wrote the file chose (its credential id is no secret, so a planted file can name the
/// trader's own key), and is not shown; a YubiKey found present is named by what the card
/// itself answered for.
fn spare_name(t: &TokenStub) -> String {
    match t {
        TokenStub::Fido2 { .. } => "the FIDO2 key present".into(),
        other => other.describe(),
    }
}

pub fn unlock(paths: &Paths, a: UnlockArgs) -> Result<(), Failure> {
    // Connected first, while this process is still dumpable: the agent names its clients by
    // their executable when it accepts them, which the kernel refuses it for a process that
    // is not (for any agent not run as root), and every `tapsign unlock` was "?" in the log
    // and the touch prompt, like any bot that hides itself (red-team round 21). Nothing
    // secret is held yet; hardened before the PIN is read. A usage error is said first.
    let (ttl_secs, idle_secs) = (duration("ttl", &a.ttl)?, duration("idle", &a.idle)?);
    let mut client = connect(paths)?;
    super::harden();
    refuse_before_prompts(paths, &a, &mut client)?;
    let (tokens, spare) = enrolled(paths);
    let Choice {
        token: chosen,
        passed,
    } = chosen(paths, &tokens, &spare, &a)?;
    // An enrolled token found dead on the way to the one chosen: it opens nothing any more,
    // and the trader is told before using another (red-team round 24, recheck).
    for dead in token::dead(&passed) {
        errln!(
            "warning: {}",
            tapsign_agent::audit::Shown(&dead.to_string())
        );
    }
    // The PIN of the one token chosen, if it takes one; a spare keyslot's may be left empty.
    let pin = match chosen {
        Some((t, false)) if t.needs_pin() => {
            let pin = SecretReader::new().field(&format!("PIN of {}", t.describe()))?;
            Some(Pin::new(pin.expose().to_owned()))
        }
        Some((t, true)) if t.needs_pin() => {
            let label = format!(
                "PIN of {} (its keyslot file is not one manifest.json, read unverified, records: empty if that is no token of yours)",
                spare_name(t)
            );
            SecretReader::new()
                .optional_field(&label)?
                .map(|pin| Pin::new(pin.expose().to_owned()))
        }
        _ => None,
    };
    // A spare keyslot's token whose PIN was left empty is not asked for: the agent chooses.
    let token = chosen.filter(|(t, is_spare)| !is_spare || !t.needs_pin() || pin.is_some());
    let req = UnlockRequest {
        // No names: the field is left out, which asks for every key (an empty list is refused).
        keys: (!a.names.is_empty()).then_some(a.names),
        ttl_secs,
        idle_secs,
        max_signatures: a.max_signatures,
        token: token.map(|(t, _)| t.id()),
        pin,
        extend: a.extend,
    };
    let session_keys = warn_before_touch(paths, &mut client);
    let names: Vec<String> = tokens.iter().map(TokenStub::describe).collect();
    let which = match (token, names.is_empty(), spare.is_empty()) {
        (Some((t, false)), _, _) => t.describe(),
        (Some((t, true)), _, _) => spare_name(t),
        (None, true, _) => "your token".to_owned(),
        (None, false, true) => names.join(" or "),
        (None, false, false) => format!(
            "{} (as manifest.json, read unverified, names it), or if that is not present, your token",
            names.join(" or ")
        ),
    };
    errln!(
        "Touch {which} when it blinks, to {}...",
        what_the_touch_opens(&req, &session_keys)
    );
    let soft = token.is_some_and(|(t, _)| t.is_insecure());
    let status = client.unlock(req).map_err(|e| match e {
        // Another unlock holds the touch: the prompt above must not be followed.
        e if e.code() == Some(ErrorCode::Busy) => {
            errln!("Do not touch {which} for this command: it was refused.");
            Failure::from(e)
        }
        // The soft token, chosen because this shell allows it, refused by an agent started
        // without the variable: what the tokens before it said is what the trader needs ("insert
        // YubiKey N" was lost behind "restart the agent": red-team round 24, recheck).
        ProtoError::Agent { code, message } if soft && !passed.is_empty() => {
            let before: Vec<String> = passed.iter().map(ToString::to_string).collect();
            Failure::from(ProtoError::Agent {
                code,
                message: format!(
                    "{message}; the other enrolled tokens: {}",
                    before.join("; ")
                ),
            })
        }
        e => Failure::from(e),
    })?;
    let Some(s) = &status.session else {
        return Err(Failure::error(
            "the agent answered the unlock without an open session (a bug: please report it); `tapsign status` shows what it holds",
        ));
    };
    let verb = if a.extend { "Extended" } else { "Unlocked" };
    outln!("{}", opened_text(verb, s));
    for w in &status.warnings {
        errln!("warning: {}", tapsign_agent::audit::Shown(w));
    }
    Ok(())
}

/// Refuse, before the PIN is read and the touch prompt printed, an unlock the agent would
/// refuse before any touch: an extend with no session open, no keystore, a keystore with no
/// credential, a name the keystore does not hold. The agent settles these before the touch, but the prompt came first: "Touch
/// ... when it blinks" for a key that never blinked, after a PIN typed for nothing (red-team
/// round 24). Said as the agent says it, with its code and exit status. Only for the agent of
/// this keystore (its tokens are the keystore's keyslots): another home's agent (a
/// `TAPSIGN_SOCK` of elsewhere) is left to judge its own.
fn refuse_before_prompts(
    paths: &Paths,
    a: &UnlockArgs,
    client: &mut Client,
) -> Result<(), Failure> {
    use tapsign_agent::error::AgentError;
    use tapsign_agent::keystore::KeystoreError;
    // No answer: the unlock's own request says what is wrong.
    let Ok(status) = client.status() else {
        return Ok(());
    };
    if a.extend && status.state != SessionState::Unlocked {
        return Err(refused(AgentError::NothingToExtend));
    }
    let ks = Keystore::new(paths.keystore_dir());
    // No keyslot to try (its only file moved aside, say): the agent refuses before its touch,
    // so this command does before its prompts (red-team round 27).
    if let Ok(tried) = ks.keyslots_to_try()
        && let Some(e) = AgentError::nothing_to_try(&tried)
    {
        return Err(refused(e));
    }
    let ours: std::collections::BTreeSet<String> = match ks.keyslots() {
        Ok(slots) => slots.into_iter().flatten().map(|s| s.stub.id()).collect(),
        Err(e @ KeystoreError::NotInitialized { .. }) if status.tokens.is_empty() => {
            return Err(refused(e.into()));
        }
        Err(_) => return Ok(()),
    };
    let theirs: std::collections::BTreeSet<String> =
        status.tokens.iter().map(|t| t.id.clone()).collect();
    if theirs.is_empty() || theirs != ours {
        return Ok(());
    }
    let Ok(listed) = ks.list_credentials() else {
        return Ok(());
    };
    // A file that cannot be read opens nothing either: the agent counts only those it reads.
    let held: Vec<String> = listed.into_iter().flatten().map(|c| c.name).collect();
    // No credential at all: the first unlock after `token add` printed "Touch ..." and read
    // the PIN, then said there was no key (red-team round 26). An extend is left to the
    // agent, which judges it against the open session.
    if a.names.is_empty() && held.is_empty() && !a.extend {
        return Err(refused(AgentError::NoKeys("to open")));
    }
    match a.names.iter().find(|n| !held.contains(n)) {
        Some(missing) => Err(refused(AgentError::NoSuchKey(missing.clone()))),
        None => Ok(()),
    }
}

/// Before the touch, on the terminal: the credentials replaced or removed lately, as the agent
/// keeps them from its checks (`status`), and those the check this unlock runs will find (the
/// keystore as it is, read without the token). The desktop prompt named them, the terminal did
/// not: a trader with no notification daemon (a server over SSH) touched with no word of them,
/// after a bot's unlock had taken the check's answer (red-team round 21).
///
/// Returns the open session's keys, which an extend names.
fn warn_before_touch(paths: &Paths, client: &mut Client) -> Vec<String> {
    let status = client.status().ok();
    let session_keys = (status.as_ref())
        .and_then(|s| s.session.as_ref())
        .map(|s| s.keys.iter().map(|k| k.name.clone()).collect())
        .unwrap_or_default();
    let mut changed = status.map(|s| s.changed_keys).unwrap_or_default();
    let ks = Keystore::new(paths.keystore_dir());
    // The lines since the last check only: the whole record read at every unlock cost 400 ms
    // on a 94 MB log.
    let ledger = &mut tapsign_agent::audit::ledger::AuditLedger::changes_only(&paths.audit_log());
    let changes = ks.preview(ledger).unwrap_or_default().changes;
    for (name, _) in changes.loud {
        if !name.is_empty() && !changed.contains(&name) {
            changed.push(name);
        }
    }
    if let Some(warning) = tapsign_agent::notify::before_touch(&changed) {
        errln!("WARNING: {}", tapsign_agent::audit::Shown(&warning));
    }
    session_keys
}

/// What `unlock` says it opened: the session's keys and bounds. The count is the session's: a
/// status cut to fit one answer lists only the first keys of a large session, and counting
/// the list said "Unlocked 600 key(s)" of a session of 1,200 (red-team round 20).
fn opened_text(verb: &str, s: &SessionStatus) -> String {
    let names: Vec<&str> = s.keys.iter().map(|k| k.name.as_str()).collect();
    let keys = match s.keys_total {
        Some(total) if total > names.len() as u64 => {
            format!("{total} key(s), the first {} listed here", names.len())
        }
        _ => format!("{} key(s)", names.len()),
    };
    format!(
        "{verb} {keys}: {}. Ends in {} (idle {}), or after {}.",
        names.join(", "),
        format_duration(Duration::from_secs(s.expires_in_secs)),
        format_duration(Duration::from_secs(s.idle_timeout_secs)),
        signatures(s.signatures_left)
    )
}

/// What the touch an unlock asks for grants, so the trader knows what they approve: the keys,
/// and the bounds the request names; the others are the agent's defaults, from config.toml as
/// the agent read it when it started (this command cannot know them: the file may have
/// changed since, and a bot can change it), and the answer after the touch says what opened.
/// An extend renews the open session's keys (`session_keys`, as `status` gave them), with the
/// bounds it was opened with unless the request names others, less the keys the keystore no
/// longer holds as the session opened them: "same keys" hid that it renewed a credential
/// `tapsign key remove` took out (red-team round 23).
fn what_the_touch_opens(req: &UnlockRequest, session_keys: &[String]) -> String {
    let show = |secs: u64| format_duration(Duration::from_secs(secs));
    let named: Vec<String> = [
        req.ttl_secs.map(|s| format!("lifetime {}", show(s))),
        req.idle_secs.map(|s| format!("idle {}", show(s))),
        req.max_signatures.map(signatures),
    ]
    .into_iter()
    .flatten()
    .collect();
    if req.extend {
        let bounds = match named.is_empty() {
            true => "the bounds it was opened with".to_owned(),
            false => format!("{}, the rest as it was opened with", named.join(", ")),
        };
        let keys = match session_keys {
            [] => "its keys".to_owned(),
            names => format!("key(s) {}", names.join(", ")),
        };
        return format!(
            "extend the open session, keeping {keys} less any removed from the keystore or replaced in it since the session opened them: {bounds}"
        );
    }
    let keys = match req.keys.as_deref().unwrap_or_default() {
        [] => "every key".to_owned(),
        names => format!("key(s) {}", names.join(", ")),
    };
    let bounds = match (named.is_empty(), named.len() == 3) {
        (true, _) => "the agent's default bounds".to_owned(),
        (false, true) => named.join(", "),
        (false, false) => format!("{}, the agent's defaults for the rest", named.join(", ")),
    };
    format!("open a session with {keys}: {bounds}")
}

pub fn sign(paths: &Paths, a: SignArgs) -> Result<(), Failure> {
    let mut client = connect(paths)?;
    let signed = client.sign(a.request.into_request(a.name))?;
    let json = serde_json::to_string(&signed).map_err(|e| Failure::error(e.to_string()))?;
    jsonln!(json);
    Ok(())
}

pub fn events(paths: &Paths) -> Result<(), Failure> {
    let mut sub = connect(paths)?.subscribe()?;
    loop {
        // The agent closes the stream only when it stops (red-team round 24: "the connection
        // was closed" did not say so).
        let event = sub.next_event().map_err(|e| match e {
            ProtoError::Closed => Failure::error(format!(
                "the agent closed the event stream: it stopped (its log says why); events resume with a new `tapsign events` once it runs again, at {}",
                paths.socket.display()
            )),
            e => e.into(),
        })?;
        let json = serde_json::to_string(&event).map_err(|e| Failure::error(e.to_string()))?;
        jsonln!(json);
    }
}

/// How long `status` waits for the whole answer: an agent stopped (SIGSTOP, by anyone running
/// as you) or wedged must not hang the command that is asked what it is doing, nor must a
/// listener that answers a byte at a time (each read was bounded, the answer not: a minute,
/// red-team round 26).
const STATUS_WAIT: Duration = Duration::from_secs(5);

pub fn status(paths: &Paths, json: bool) -> Result<(), Failure> {
    // Another user's socket, or one in a folder of another user's, is not asked (nor waited
    // on: red-team round 26).
    if let Some(whose) = foreign_socket(&paths.socket) {
        return Err(foreign_status(paths, &whose));
    }
    let late = || unanswered(paths, STATUS_WAIT);
    let socket = paths.socket.clone();
    // Whether the connection was made, with what failed: a failure to connect says how to
    // start the agent.
    let answer = within(STATUS_WAIT, move || {
        let mut client = Client::connect_within(&socket, CLIENT_NAME, Some(STATUS_WAIT))
            .map_err(|e| (false, e))?;
        client.status().map_err(|e| (true, e))
    });
    let status = match answer {
        None => return Err(late()),
        Some(Ok(status)) => status,
        Some(Err((_, e))) if timed_out(&e) => return Err(late()),
        Some(Err((false, e))) => return Err(not_connected(paths, e)),
        Some(Err((true, e))) => return Err(e.into()),
    };
    if json {
        let text =
            serde_json::to_string_pretty(&status).map_err(|e| Failure::error(e.to_string()))?;
        jsonln!(text);
    } else {
        print_status(&status)?;
    }
    Ok(())
}

fn print_status(s: &Status) -> Result<(), Failure> {
    out!("{}", status_text(s));
    Ok(())
}

/// What `tapsign status` prints. Every line is escaped: a client's program path, a key's or
/// token's name and the agent's reasons can hold what a bot chose, and a control character
/// there (an escape sequence) could repaint the trader's terminal with "Locked".
fn status_text(s: &Status) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    macro_rules! shown {
        ($($arg:tt)*) => {{
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{}", tapsign_agent::audit::Shown(&format!($($arg)*)));
        }};
    }
    let secs = |n: u64| format_duration(Duration::from_secs(n));
    match (&s.state, &s.session) {
        (SessionState::Unlocked, Some(sess)) => {
            shown!("Unlocked (opened by {})", sess.opened_by);
            shown!("  ends in        {}", secs(sess.expires_in_secs));
            shown!(
                "  idle ends in   {} (idle timeout {})",
                secs(sess.idle_expires_in_secs),
                secs(sess.idle_timeout_secs)
            );
            shown!(
                "  signatures     {} made, {} left",
                sess.signatures_made,
                sess.signatures_left
            );
            for k in &sess.keys {
                let left = k
                    .signatures_left
                    .map(|l| format!(", {l} left"))
                    .unwrap_or_default();
                shown!(
                    "  key {:<20} {:<8} {} signed{left}",
                    k.name,
                    k.exchange,
                    k.signatures_made
                );
            }
            if let Some(more) = sess
                .keys_total
                .and_then(|total| total.checked_sub(sess.keys.len() as u64))
                .filter(|&more| more > 0)
            {
                shown!("  and {more} more keys (this status was cut to fit one answer)");
            }
            for c in &sess.clients {
                shown!(
                    "  client pid {:<8} {} ({})",
                    c.pid,
                    c.exe,
                    signatures(c.signatures)
                );
            }
        }
        _ => {
            let why = s
                .lock_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            shown!("Locked{why}. Run `tapsign unlock` to open a session.");
        }
    }
    for t in &s.tokens {
        shown!("token {}: {}", t.id, t.description);
    }
    for k in &s.key_policies {
        shown!(
            "policy {}: differs from its trading profile: {}",
            k.key,
            k.rules.join("; ")
        );
    }
    if let Some(k) = &s.keystore {
        // The vault by its tag first, as `key add`, the audit log and the vault's folder name
        // it; then its key. The key alone could not be matched with any of those (red-team
        // round 24).
        let tag = tapsign_agent::keystore::key_tag(&k.vault_key).unwrap_or_else(|| "?".into());
        shown!(
            "keystore: manifest generation {}, vault {tag} (key {}){}",
            k.generation,
            k.vault_key,
            match k.log_unread {
                true =>
                    ", checked while the audit log could not be read: it vouches for nothing until an unlock with the log readable",
                false => "",
            }
        );
    }
    match &s.audit_head {
        Some(h) => shown!("audit head: {}:{}", h.seq, h.hash),
        None => shown!("audit head: unknown (the audit log cannot be read)"),
    }
    let live: Vec<&str> = s
        .lock_sources
        .iter()
        .filter(|l| l.live)
        .map(|l| l.name.as_str())
        .collect();
    shown!("lock sources: {}", live.join(", "));
    for w in &s.warnings {
        shown!("warning: {w}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team round 7: a bot run from a folder named with an escape sequence had `status`
    /// clear the trader's screen and print a forged "Locked" line.
    #[test]
    fn status_shows_control_characters_escaped() {
        use tapsign_proto::ClientInfo;
        let forged = "/tmp/\u{1b}[2J\u{1b}[HLocked (locked by `tapsign lock`)\u{1b}[8m/bot";
        let s = Status {
            state: SessionState::Unlocked,
            session: Some(SessionStatus {
                clients: vec![ClientInfo {
                    pid: 7,
                    exe: forged.into(),
                    signatures: 1,
                }],
                opened_by: "tapsign-cli\n\u{202e}evil".into(),
                ..Default::default()
            }),
            lock_reason: Some("x\u{1b}[2J".into()),
            warnings: vec!["w\r".into()],
            ..Default::default()
        };
        let text = status_text(&s);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(!text.contains('\u{202e}'), "{text:?}");
        assert!(
            text.starts_with("Unlocked (opened by tapsign-cli\\n"),
            "{text}"
        );
        assert!(text.contains("\\u{1b}[2J"), "{text}");
    }

    /// Red-team round 20: a status cut to fit one answer lists 600 of a session's 1,200 keys,
    /// and `unlock` said "Unlocked 600 key(s)".
    #[test]
    fn unlock_counts_the_session_s_keys_not_those_a_cut_status_lists() {
        use tapsign_proto::KeyStatus;
        let key = |i: u32| KeyStatus {
            name: format!("k{i}"),
            exchange: "binance".into(),
            ..Default::default()
        };
        let mut s = SessionStatus {
            keys: (0..600).map(key).collect(),
            keys_total: Some(1200),
            signatures_left: 100,
            ..Default::default()
        };
        let said = opened_text("Unlocked", &s);
        assert!(
            said.starts_with("Unlocked 1200 key(s), the first 600 listed here: k0, k1,"),
            "{said}"
        );
        let status = Status {
            state: SessionState::Unlocked,
            session: Some(s.clone()),
            ..Default::default()
        };
        let text = status_text(&status);
        assert!(
            text.contains("  and 600 more keys (this status was cut"),
            "{text}"
        );
        // Uncut, the list is the count.
        s.keys_total = None;
        let said = opened_text("Unlocked", &s);
        assert!(said.starts_with("Unlocked 600 key(s): k0, k1,"), "{said}");
    }
}
