//! The blocking half of `unlock`: find an enrolled token, ask it for its one touch, unwrap the
//! vault key, decrypt the credentials asked for, and drop the vault key at once.
//!
//! [`Unlocker`] owns what that needs, apart from the session: the keystore, where tokens are
//! looked for, the keystore state the last check verified (nothing older is accepted after
//! it), and the turn that lets one unlock run at a time (a second is refused, not queued). Its
//! calls run on a blocking thread: token calls wait for a human.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tapsign_proto::{KeystoreState, Pin};

use crate::credential::Credential;
use crate::error::AgentError;
use crate::keystore::{ChangeNotes, Keyslot, Keystore, KeystoreError, Ledger, VaultKey};
use crate::paths::Paths;
use crate::secret::SecretString;
use crate::session::Client;
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

/// The keystore and tokens, as an unlock uses them.
pub struct Unlocker {
    keystore: Keystore,
    soft_dir: PathBuf,
    /// `TAPSIGN_INSECURE_SOFT_TOKEN=1` was set when the agent started.
    soft_allowed: bool,
    /// The keystore manifest this agent last verified or wrote (at an unlock).
    verified: Mutex<Option<KeystoreState>>,
    /// The one unlock (or extend) that may run at a time, if one runs.
    turn: Mutex<Option<Held>>,
    /// What the checks said of credentials changed since the check before, kept for `status`.
    changes: Mutex<KeptChanges>,
    /// The audit log's head after this agent's last unlock: where the next unlock starts
    /// reading for what `token` and `keystore` commands folded in meanwhile. Read from the top
    /// only at an agent's first unlock: every unlock reading the whole log took 700 ms on a
    /// long one (docs/benchmarks.md).
    /// With the generation that unlock's check recorded: a signed line after the head at or
    /// below it is a copy of an earlier one (red-team round 22, recheck).
    last_unlock: Mutex<Option<(crate::keystore::Anchor, u64)>>,
}

/// The credential changes the checks noted ([`ChangeNotes`]), each with when it was noted (on
/// the boot-time clock), kept for [`CHANGES_KEPT`]. An unlock's answer goes to whoever asked
/// for it, a bot's as well, and `status` used to repeat them only until the next unlock: a
/// bot (or whatever runs as the trader) that unlocked twice left the trader nothing to see
/// (red-team round 20, recheck).
#[derive(Debug, Default)]
struct KeptChanges {
    /// Each credential replaced or removed, by name: its latest sentence, when it was first
    /// noted (a name changed again keeps its place), and whether it now holds another version
    /// (kept before any removal).
    loud: Vec<Loud>,
    /// The other sentences, the newest last, at most [`QUIET_KEPT`].
    quiet: Vec<(Duration, String)>,
    /// Loud notes let go within their day, past [`LOUD_KEPT`]: how many, and when the last
    /// went (counted in `status` for a day after it).
    let_go: (usize, Duration),
    /// What commands that wrote the manifest told (`noted`), apart from what the checks found:
    /// any program can send it, as often as it likes, and kept with the checks' notes its
    /// names evicted the check's own "k1 was replaced" within its day, and one request reworded
    /// it as "removed" (red-team round 21). At most [`NOTED_KEPT`], the oldest let go first.
    noted: Vec<Loud>,
    /// Those let go, and names the keystore never held that were left out: how many, and when
    /// the last (counted in `status` for a day after it).
    noted_let_go: (usize, Duration),
}

#[derive(Debug)]
struct Loud {
    name: String,
    at: Duration,
    text: String,
    replaced: bool,
}

/// Most loud notes kept. Removals go first past it, then the oldest: names need no touch to be
/// stored, replaced or removed, and a bound of 32 in the order noted let four checks' worth of
/// junk names removed evict a replacement's note within its day (red-team round 21). Each
/// sentence is bounded (`keystore::notes`), so this is some 256 KB at most.
const LOUD_KEPT: usize = 256;

/// Most notes told by `noted` kept ([`KeptChanges::noted`]).
const NOTED_KEPT: usize = 32;

/// How long `status` (and every unlock's answer) repeats a credential change: a day, so the
/// trader who did not ask for the unlock that found it still meets it. The agent cannot tell
/// the trader's own `tapsign unlock` from a program's that runs it (both are the same
/// binary, run as the same user), so nothing sooner is taken as read.
pub const CHANGES_KEPT: Duration = Duration::from_secs(24 * 3600);

/// A quiet note as `status` repeats it, `age` after the check that noted it: said in the
/// present tense ("the keystore's manifest (generation 3) ... has no anchor"), it read as the
/// state of things for a day, beside a `status` that showed generation 5, anchored again
/// (red-team round 26, F2). Past a minute it says when it was noted; the unlock that found it
/// (whose answer carries `status`'s warnings) shows it as it is.
fn noted_ago(text: &str, age: Duration) -> String {
    let minutes = age.as_secs() / 60;
    let ago = match (minutes / 60, minutes % 60) {
        (0, 0) => return text.to_owned(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    };
    format!("{text} (noted by a check {ago} ago, which later checks may have put right)")
}

/// Most of the quiet sentences (names stored, names stored and removed again) kept.
const QUIET_KEPT: usize = 8;

/// The turn's holder: who asked, and whether the touch came (it is then opening and
/// answering, no longer asking for a touch).
struct Held {
    asked: Pending,
    touched: bool,
}

/// An unlock or extend under way: who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub client: Client,
    pub extend: bool,
    /// What it asks for (`notify::asks`): the bounds, and the keys a new session opens.
    pub asks: String,
    /// The agent's count of locks when it asked: a lock counted since dooms it (its touch
    /// opens nothing), which a request it refuses is told.
    pub locks: u64,
}

/// The turn of the unlock that holds it; the next can start once it is dropped. It is held
/// until the unlock's answer is made, after the touch: let go before, a bot's unlock could ask
/// for a touch while the trader's `tapsign unlock` still waits for its answer, and take the
/// trader's next touch (red-team round 18).
pub struct Turn<'a>(&'a Unlocker);

impl Turn<'_> {
    /// The touch came: from now on the unlock opens and answers, and `status` no longer says
    /// it asks for a touch (nor warns the trader off touching the token).
    pub fn touched(&self) {
        if let Some(h) = self.0.holder().as_mut() {
            h.touched = true;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.holder() = None;
    }
}

impl Unlocker {
    pub fn new(paths: &Paths, soft_allowed: bool) -> Unlocker {
        Unlocker {
            keystore: Keystore::new(paths.keystore_dir()),
            soft_dir: paths.soft_token_dir(),
            soft_allowed,
            verified: Mutex::new(None),
            turn: Mutex::new(None),
            changes: Mutex::new(KeptChanges::default()),
            last_unlock: Mutex::new(None),
        }
    }

    /// Keep what a check said of credential changes (`at`, on the boot-time clock), for
    /// [`Unlocker::changes`]. Kept as soon as the check ran: an unlock that then fails (a key
    /// asked for by name refused, secret memory that cannot be locked) has moved the
    /// keystore's record on all the same, and the next check has nothing to say of them.
    pub fn keep_changes(&self, notes: ChangeNotes, at: Duration) {
        for text in notes.all() {
            say!("tapsign agent: warning: {text}");
        }
        let mut kept = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        for (i, (name, text)) in notes.loud.into_iter().enumerate() {
            let replaced = i < notes.replaced;
            match kept.loud.iter_mut().find(|k| k.name == name) {
                Some(k) => {
                    k.text = text;
                    k.replaced |= replaced;
                }
                None => kept.loud.push(Loud {
                    name,
                    at,
                    text,
                    replaced,
                }),
            }
        }
        // Bounded however many checks note how many names: removals go first, then the oldest
        // (the audit log keeps each line), and the count of those let go is said.
        while kept.loud.len() > LOUD_KEPT {
            let i = kept.loud.iter().position(|k| !k.replaced).unwrap_or(0);
            kept.loud.remove(i);
            kept.let_go = (kept.let_go.0 + 1, at);
        }
        // Replacements first, each kind in the order noted: what `status` names first.
        kept.loud.sort_by_key(|k| !k.replaced);
        for text in notes.quiet {
            kept.quiet.retain(|(_, t)| *t != text);
            kept.quiet.push((at, text));
        }
        let extra = kept.quiet.len().saturating_sub(QUIET_KEPT);
        kept.quiet.drain(..extra);
    }

    /// Keep what a command that wrote the keystore's manifest (`token add`, `token remove`,
    /// `keystore rotate`) found changed since the last check, told by `client` (`noted`): no
    /// later check tells of it, since that manifest folded it in, and only the command's own
    /// output did (red-team round 21). Names only, at most [`tapsign_proto::NOTED_MAX`] of
    /// each: the sentences are this agent's, naming the program that told it (any program of
    /// the trader's can send this, as it can append a `key` line the next check notes).
    pub fn keep_noted(&self, req: &tapsign_proto::NotedRequest, client: &Client, at: Duration) {
        let mut exe = client.exe.clone();
        crate::audit::cap(&mut exe, crate::audit::QUOTED_MAX);
        let by = format!(
            "as {} (pid {}) told this agent after writing the keystore's manifest, which no unlock tells of again",
            crate::audit::Shown(&exe),
            client.pid
        );
        // Only names the keystore holds or records: the command that sends this has just
        // written the manifest, whose records name every credential it found changed.
        let known = self.keystore.names_on_record();
        let mut refused = 0;
        let mut named = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .take(tapsign_proto::NOTED_MAX)
                .filter(|n| {
                    let ok = known.as_ref().is_none_or(|k| k.contains(n.as_str()));
                    refused += usize::from(!ok);
                    ok
                })
                .map(|n| {
                    let mut n = n.clone();
                    crate::audit::cap(&mut n, crate::audit::QUOTED_MAX);
                    n
                })
                .collect()
        };
        let mut loud: Vec<(String, String)> = named(&req.replaced)
            .into_iter()
            .map(|name| {
                let text = format!(
                    "credential {name:?} was replaced since the keystore's last check, {by}; if neither you nor a script of yours replaced it, it now holds an API key and secret someone else chose, and orders signed with it go to their account: store yours again with `tapsign key add {name} --exchange ... --replace` (`tapsign audit` shows each `key` line)"
                );
                (name, text)
            })
            .collect();
        let replaced = loud.len();
        loud.extend(named(&req.removed).into_iter().map(|name| {
            let text = format!(
                "credential {name:?} was removed since the keystore's last check, {by}; if that was not you, store it again with `tapsign key add {name} --exchange ...`"
            );
            (name, text)
        }));
        let mut kept = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        kept.noted_let_go.0 += refused;
        if refused > 0 {
            kept.noted_let_go.1 = at;
        }
        for (i, (name, text)) in loud.into_iter().enumerate() {
            say!("tapsign agent: warning: {text}");
            let replaced = i < replaced;
            // Its own list: a name noted again keeps its place and its first text, never in
            // what a check found. Only a louder note takes its place (a replacement over a
            // removal): any program may send `noted`, and one naming k1 removed turned the
            // command's "k1 was replaced ... orders go to their account" into "store it
            // again" (red-team round 22).
            match kept.noted.iter_mut().find(|k| k.name == name) {
                Some(k) => {
                    if replaced && !k.replaced {
                        k.text = text;
                        k.replaced = true;
                    }
                }
                None => kept.noted.push(Loud {
                    name,
                    at,
                    text,
                    replaced,
                }),
            }
        }
        let extra = kept.noted.len().saturating_sub(NOTED_KEPT);
        if extra > 0 {
            kept.noted.drain(..extra);
            kept.noted_let_go = (kept.noted_let_go.0 + extra, at);
        }
    }

    /// The credential changes noted less than [`CHANGES_KEPT`] before `now`: the replaced and
    /// removed ones first (a sentence each, never cut), then the rest.
    pub fn changes(&self, now: Duration) -> (Vec<String>, Vec<String>) {
        let kept = self.kept_changes(now);
        // The checks' own notes first: what `noted` told comes after, whatever its count.
        let mut loud: Vec<String> = (kept.loud.iter().chain(&kept.noted))
            .map(|k| k.text.clone())
            .collect();
        // What one answer can carry (each sentence is bounded: `keystore::notes`).
        let shown = crate::keystore::LOUD_NOTED + 1;
        let let_go = kept.let_go.0 + kept.noted_let_go.0;
        if loud.len() > shown || let_go > 0 {
            let more = loud.len().saturating_sub(crate::keystore::LOUD_NOTED) + let_go;
            loud.truncate(crate::keystore::LOUD_NOTED);
            loud.push(format!(
                "and {more} more notes of credentials replaced or removed in the last day: `tapsign audit` shows each `key` line"
            ));
        }
        let quiet = (kept.quiet.iter())
            .map(|(at, t)| noted_ago(t, now.saturating_sub(*at)))
            .collect();
        (loud, quiet)
    }

    /// The kept changes, those older than [`CHANGES_KEPT`] at `now` let go.
    fn kept_changes(&self, now: Duration) -> std::sync::MutexGuard<'_, KeptChanges> {
        let mut kept = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = |at: Duration| now.saturating_sub(at) < CHANGES_KEPT;
        kept.loud.retain(|k| fresh(k.at));
        kept.noted.retain(|k| fresh(k.at));
        kept.quiet.retain(|(at, _)| fresh(*at));
        if !fresh(kept.let_go.1) {
            kept.let_go = (0, now);
        }
        if !fresh(kept.noted_let_go.1) {
            kept.noted_let_go = (0, now);
        }
        kept
    }

    /// The names of the credentials replaced or removed that [`Unlocker::changes`] repeats:
    /// what the touch prompt names, before the touch.
    pub fn changed_names(&self, now: Duration) -> Vec<String> {
        let kept = self.kept_changes(now);
        // The sentence counting the rest is named "". The checks' names first.
        let mut names: Vec<String> = Vec::new();
        for k in kept.loud.iter().chain(&kept.noted) {
            if !k.name.is_empty() && !names.contains(&k.name) {
                names.push(k.name.clone());
            }
        }
        names
    }

    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// This unlock's turn; hold it for the whole unlock. While another holds
    /// it, that one's asker is the error: a second unlock is refused, never queued, since a
    /// queued one would take the next touch, which its human was asked for by another (a bot's
    /// unlock sent just before the trader's would be opened by the trader's touch).
    pub fn turn(&self, asked: Pending) -> Result<Turn<'_>, Pending> {
        let mut holder = self.holder();
        if let Some(h) = holder.as_ref() {
            return Err(h.asked.clone());
        }
        *holder = Some(Held {
            asked,
            touched: false,
        });
        Ok(Turn(self))
    }

    fn holder(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The unlock (or extend) waiting for its touch now, if one is.
    pub fn pending(&self) -> Option<Pending> {
        self.holder()
            .as_ref()
            .filter(|h| !h.touched)
            .map(|h| h.asked.clone())
    }

    /// The keystore generation and vault key the last check verified (or wrote), said to
    /// vouch for nothing (`log_unread`) when that check could not read the audit log.
    pub fn verified(&self) -> Option<KeystoreState> {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The highest keystore generation this agent has verified or written.
    fn seen(&self) -> u64 {
        self.verified().map_or(0, |v| v.generation)
    }

    /// Keep what a check verified. One that could not read the audit log keeps its generation
    /// (nothing older is accepted after it) but pins nothing for `key add`, and replaces any
    /// pin an earlier check left: it opened for one session what passed the manifest alone
    /// (a copy from before a token's removal, put back, among it), and its pin vouched alone
    /// for a later `key add` with the log moved aside, which sealed the new secret to a vault
    /// the removed token opens (red-team round 26).
    fn set_verified(&self, checked: &crate::keystore::Checked) {
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if v.as_ref()
            .is_none_or(|v| v.generation <= checked.generation)
        {
            *v = Some(KeystoreState {
                generation: checked.generation,
                vault_key: checked.vault_key.clone(),
                log_unread: checked.log_unread,
            });
        }
    }

    /// Open the session's credentials (`names`, or all when empty). `ledger` is the audit
    /// log, as the keystore's check reads and writes it; `touch_needed` is told which token
    /// waits for a touch.
    pub fn open(
        &self,
        names: &[String],
        chosen: Chosen<'_>,
        ledger: &mut dyn Ledger,
        touch_needed: &dyn Fn(&str),
    ) -> Result<Opened, AgentError> {
        let ks = &self.keystore;
        let mut warnings = Vec::new();
        let (slots, spare) = self.usable_keyslots(&mut warnings)?;
        // Settle which credentials to open before asking for a touch: a typo in a name must not
        // cost the trader a touch, and must say "unknown key", not "damaged keystore".
        let mut available = Vec::new();
        for info in ks.list_credentials()? {
            match info {
                Ok(i) => available.push(i.name),
                Err(e) => warnings.push(e.to_string()),
            }
        }
        let wanted: Vec<String> = if names.is_empty() {
            available
        } else {
            if let Some(missing) = names.iter().find(|n| !available.contains(n)) {
                return Err(AgentError::NoSuchKey(missing.clone()));
            }
            names.to_vec()
        };
        if wanted.is_empty() {
            return Err(AgentError::NoKeys("to open"));
        }
        // Each credential's API key and secret take a locked page each at least: what cannot
        // all be locked opens nothing, so it is refused before the touch.
        if let Some(short) = crate::harden::lockable_shortfall(wanted.len() * 2) {
            return Err(AgentError::TooManyToLock {
                keys: wanted.len(),
                all: names.is_empty(),
                short,
            });
        }

        let (vk, opened_by, reader, slot) =
            self.unwrap_with_touch(&slots, &spare, chosen, touch_needed, &mut warnings)?;
        let credentials = self.check_and_open(&vk, slot, names, &wanted, ledger, &mut warnings);
        drop(vk);
        let credentials = credentials?;
        Ok(Opened {
            credentials,
            opened_by,
            reader,
            warnings,
        })
    }

    /// With the vault key `slot` gave: check every file against the manifest and the audit
    /// log's record (nothing goes backwards), then open the `wanted` credentials that passed,
    /// as the check judged them. `names` is what the unlock asked for (empty: all).
    pub(crate) fn check_and_open(
        &self,
        vk: &VaultKey,
        slot: &Keyslot,
        names: &[String],
        wanted: &[String],
        ledger: &mut dyn Ledger,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Credential>, AgentError> {
        let ks = &self.keystore;
        let checked = self.check(vk, slot, names, ledger, warnings)?;
        crate::disk::interleave("unlock: checked, before opening");
        let mut credentials = Vec::new();
        for name in wanted.iter().filter(|n| checked.accepted.contains(n)) {
            match ks.open_checked(vk, name, &checked) {
                Ok(c) => credentials.push(c),
                // A file swapped since the check is tampering: nothing opens.
                Err(e @ KeystoreError::Swapped { .. }) => return Err(e.into()),
                // A key asked for by name must open; with "all", a damaged one is a warning.
                Err(e) if !names.is_empty() => return Err(e.into()),
                Err(e) => warnings.push(e.to_string()),
            }
        }
        if credentials.is_empty() && !checked.refused.is_empty() {
            let why: Vec<&str> = checked.refused.iter().map(|r| r.reason.as_str()).collect();
            return Err(AgentError::KeysRefused(format!(
                "no key could be opened. REFUSED: {}",
                why.join("; REFUSED: ")
            )));
        }
        if credentials.is_empty() {
            return Err(AgentError::NoKeys("could be opened"));
        }
        Ok(credentials)
    }

    /// The keystore's check with the vault key `slot` gave (every file against the manifest
    /// and the audit log's record: nothing goes backwards), its notes kept for `status`. A
    /// credential the check refused is an error when `names` (what an unlock asked for; empty:
    /// all) names it, else a warning.
    fn check(
        &self,
        vk: &VaultKey,
        slot: &Keyslot,
        names: &[String],
        ledger: &mut dyn Ledger,
        warnings: &mut Vec<String>,
    ) -> Result<crate::keystore::Checked, AgentError> {
        let ks = &self.keystore;
        let mut checked = ks.check(vk, slot, self.seen(), ledger)?;
        self.set_verified(&checked);
        warnings.extend(std::mem::take(&mut checked.warnings));
        for r in &checked.refused {
            if names.contains(&r.name) {
                return Err(AgentError::KeysRefused(r.reason.clone()));
            }
            warnings.push(format!("REFUSED: {}", r.reason));
        }
        // Kept for `status`, which shows them first, whatever becomes of this unlock.
        self.keep_changes(
            std::mem::take(&mut checked.changes),
            crate::clock::boot_now(),
        );
        // What a `token` or `keystore` command folded in since the unlock before: its own
        // output alone told of it, and that output can be cut (red-team round 21). Read from
        // where this agent's last unlock left the log (from the top at its first).
        let last = (self.last_unlock.lock().unwrap_or_else(|p| p.into_inner())).clone();
        let (from, above) = match last {
            Some((from, generation)) => (from, Some(generation)),
            None => (crate::keystore::Anchor::genesis(), None),
        };
        let folded = crate::keystore::folded_by_commands(&ledger.since(&from), above);
        if !folded.is_empty() {
            self.keep_changes(folded, crate::clock::boot_now());
        }
        if let Some(head) = ledger.head() {
            *self.last_unlock.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((head, checked.generation));
        }
        Ok(checked)
    }

    /// A touch on an enrolled token, proved by unwrapping the vault key: what `unlock --extend`
    /// asks before renewing a session. With the vault key, the keystore is checked as an
    /// unlock checks it, and the credentials `names` (the session's keys) it holds now are
    /// opened, for the extend to hold the session's to: a key the keystore no longer holds,
    /// or holds as another credential, is dropped from the session, not renewed (red-team
    /// round 23). Checked, not merely read: a file put back in place of one `tapsign key
    /// remove` took out is refused by the check, where a read of the folder would take it.
    /// The vault key is dropped at once.
    pub fn touch(
        &self,
        names: &[String],
        chosen: Chosen<'_>,
        ledger: &mut dyn Ledger,
        touch_needed: &dyn Fn(&str),
    ) -> Result<Opened, AgentError> {
        let mut warnings = Vec::new();
        // A session is renewed only with a keyslot the manifest records (or, recording none
        // readable, any): never with a spare one, which opens a vault no check follows here.
        let (slots, spare) = self.usable_keyslots(&mut warnings)?;
        if let Some(id) = chosen.token
            && let Ok(Named::Spare(_)) = named(&slots, &spare, id)
        {
            return Err(AgentError::spare_named(id, None));
        }
        let (vk, opened_by, reader, slot) =
            self.unwrap_with_touch(&slots, &[], chosen, touch_needed, &mut warnings)?;
        let credentials = self
            .check(&vk, slot, &[], ledger, &mut warnings)
            .map(|checked| {
                let held = names.iter().filter(|n| checked.accepted.contains(n));
                // One that cannot be opened now is not the session's either: dropped.
                held.filter_map(|n| self.keystore.open_checked(&vk, n, &checked).ok())
                    .collect()
            });
        drop(vk);
        Ok(Opened {
            credentials: credentials?,
            opened_by,
            reader,
            warnings,
        })
    }

    /// The keyslots an unlock tries (`Keystore::keyslots_to_try`), and those it tries when no
    /// token of one of them is present (`Tried::spare`); damaged ones, and those the
    /// unverified manifest does not record, become warnings. None at all is an error.
    fn usable_keyslots(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Keyslot>, Vec<Keyslot>), AgentError> {
        let tried = self.keystore.keyslots_to_try()?;
        if let Some(e) = AgentError::nothing_to_try(&tried) {
            return Err(e);
        }
        warnings.extend(tried.warnings);
        Ok((tried.slots, tried.spare))
    }

    /// Find an enrolled token, ask it for its touch, and unwrap the vault key. Returns the
    /// key, the token's description, the PC/SC reader it sat in (for the removal watch) and
    /// the keyslot. An enrolled token found dead while another opens is added to `warnings`.
    /// `spare`: keyslots the unverified manifest does not record, tried when no token of one
    /// of `slots` is present (or only another one is): the check after the touch then names
    /// the file out of place, manifest.json or the keyslot (`Keystore::keyslots_to_try`).
    fn unwrap_with_touch<'a>(
        &self,
        slots: &'a [Keyslot],
        spare: &'a [Keyslot],
        chosen: Chosen<'_>,
        touch_needed: &dyn Fn(&str),
        warnings: &mut Vec<String>,
    ) -> Result<(VaultKey, String, Option<String>, &'a Keyslot), AgentError> {
        let pin = chosen.pin;
        let (slot, mut token) = match chosen.token {
            Some(id) => self.locate_named(slots, spare, id, pin)?,
            None => self.locate_any(slots, spare, pin, warnings)?,
        };
        let opened_by = slot.stub.describe();
        // No prompt to touch a token that will refuse for want of its PIN.
        if slot.stub.needs_pin() && pin.is_none() {
            return Err(TokenError::PinNeeded { token: opened_by }.into());
        }
        touch_needed(&opened_by);
        let vk = match self.keystore.unwrap_vault(slot, token.as_mut()) {
            // A keyslot the manifest does not record, tried for want of one it does
            // (`Keystore::keyslots_to_try`): holding another vault key, it is an old copy, or
            // vault.json was replaced with the manifest; which cannot be told.
            Err(KeystoreError::VaultMismatch { .. }) if !slot.recorded => {
                return Err(KeystoreError::UnrecordedKeyslotMismatch {
                    path: slot.path.clone(),
                }
                .into());
            }
            other => other?,
        };
        Ok((vk, opened_by, token.reader(), slot))
    }

    /// The token of a recorded keyslot present (else of a spare one), for an unlock that named
    /// none. An enrolled token found dead while another answers becomes a warning.
    fn locate_any<'a>(
        &self,
        slots: &'a [Keyslot],
        spare: &'a [Keyslot],
        pin: Option<&Pin>,
        warnings: &mut Vec<String>,
    ) -> Result<(&'a Keyslot, Box<dyn Token>), AgentError> {
        Ok(match self.locate(slots, pin) {
            Ok((slot, found)) => {
                warnings.extend(token::dead(&found.passed).map(ToString::to_string));
                (slot, found.token)
            }
            Err(
                e @ (TokenError::Absent { .. }
                | TokenError::WrongToken { .. }
                | TokenError::KeyLost { .. }),
            ) if !spare.is_empty() => self
                .locate(spare, pin)
                .map(|(slot, found)| (slot, found.token))
                .map_err(|s| match s {
                    TokenError::Absent { .. }
                    | TokenError::WrongToken { .. }
                    | TokenError::KeyLost { .. } => unrecorded_absent(e, slots),
                    other => other,
                })?,
            Err(e) => return Err(e.into()),
        })
    }

    /// The token an unlock named by `id`, and no other, so that the PIN it carries reaches no
    /// other (red-team round 24). Not present while another enrolled token is: said as such
    /// ([`token::named_error`]). A spare keyslot's token is tried only when no token of a
    /// recorded keyslot is present, as for an unlock that names none: named, it was tried
    /// beside the recorded token, spending the trader's touch on a file nothing vouches for
    /// (red-team round 24, recheck).
    fn locate_named<'a>(
        &self,
        slots: &'a [Keyslot],
        spare: &'a [Keyslot],
        id: &str,
        pin: Option<&Pin>,
    ) -> Result<(&'a Keyslot, Box<dyn Token>), AgentError> {
        let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
        let search = Search {
            soft_dir: &self.soft_dir,
            soft_allowed: self.soft_allowed,
            pin: None,
        };
        match named(slots, spare, id)? {
            Named::Recorded(i) => match self.locate(&slots[i..=i], pin) {
                Ok((slot, found)) => Ok((slot, found.token)),
                Err(e) => Err(by_agent(token::named_error(e, &stubs, i, &search)).into()),
            },
            Named::Spare(i) => {
                if let Ok((j, _)) = token::which(&stubs, &search) {
                    return Err(AgentError::spare_named(id, Some(&stubs[j].describe())));
                }
                let (slot, found) = self.locate(&spare[i..=i], pin)?;
                Ok((slot, found.token))
            }
        }
    }

    /// Find a present token that answers for one of `slots`, without asking for a touch, with
    /// what the kinds passed over said ([`token::locate_noting`]).
    fn locate<'a>(
        &self,
        slots: &'a [Keyslot],
        pin: Option<&Pin>,
    ) -> Result<(&'a Keyslot, token::Found), TokenError> {
        let pin = pin.map(|p| SecretString::from_str_copy(p.expose()));
        let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
        let search = Search {
            soft_dir: &self.soft_dir,
            soft_allowed: self.soft_allowed,
            pin: pin.as_ref(),
        };
        let found = token::locate_noting(&stubs, &search).map_err(by_agent)?;
        Ok((&slots[found.index], found))
    }
}

/// The soft token refused by this agent's environment, not the client's.
fn by_agent(e: TokenError) -> TokenError {
    match e {
        TokenError::SoftRefused => TokenError::SoftRefusedByAgent,
        e => e,
    }
}

/// What an unlock says of the token: the enrolled one to use, by id (any present one, in the
/// order PIV, FIDO2, soft, when left out), and the PIN, which goes to that token alone.
#[derive(Clone, Copy, Default)]
pub struct Chosen<'a> {
    pub token: Option<&'a str>,
    pub pin: Option<&'a Pin>,
}

/// Where the keyslot of the token an unlock names is: among those the manifest records, or
/// the spare ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Recorded(usize),
    Spare(usize),
}

/// The keyslot of `slots` (or else `spare`) whose token is `id`.
pub fn named(slots: &[Keyslot], spare: &[Keyslot], id: &str) -> Result<Named, AgentError> {
    let at = |list: &[Keyslot]| list.iter().position(|s| s.stub.id() == id);
    match (at(slots), at(spare)) {
        (Some(i), _) => Ok(Named::Recorded(i)),
        (None, Some(i)) => Ok(Named::Spare(i)),
        (None, None) => Err(AgentError::Malformed(format!(
            "no enrolled token {id:?}: `tapsign token list` shows the ids"
        ))),
    }
}

/// No token of a recorded keyslot present, nor of a spare one: `e`, with what the recorded
/// tokens' names rest on. A keyslot's label is text whoever wrote the file chose, and the
/// manifest that records it is not verified before the touch: an edited one recording a
/// planted keyslot had the unlock say "insert" a key labelled by the planter, with no word of
/// the way out (the recheck of round 21).
fn unrecorded_absent(e: TokenError, slots: &[Keyslot]) -> TokenError {
    let named: Vec<String> = slots.iter().map(|s| s.stub.describe()).collect();
    let hint = format!(
        "{}: the token(s) manifest.json records as read unverified (names as their keyslot files give them; manifest.json is verified only after a touch), and no token of another keyslot file is present either. If no such token is yours, manifest.json was edited: with your own token inserted, `tapsign keystore rotate --rebuild-manifest` rebuilds it from the files",
        named.join(" or ")
    );
    match e {
        TokenError::WrongToken { found, .. } => TokenError::WrongToken {
            found,
            expected: hint,
        },
        // Its advice names the recorded tokens, whose names rest on that manifest.
        TokenError::KeyLost { .. } => TokenError::WrongToken {
            found: "a token without the key its keyslot names".into(),
            expected: hint,
        },
        // With why a transport was not searched (pcscd not running), which the hint rebuilt
        // here dropped (red-team round 27, recheck F3).
        _ => {
            let stubs: Vec<&TokenStub> = slots.iter().map(|s| &s.stub).collect();
            let notes = token::absent_notes(&e, &stubs);
            TokenError::Absent {
                hint: format!("insert {hint}{notes}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(pid: u32, extend: bool) -> Pending {
        Pending {
            client: Client {
                pid,
                exe: "/usr/bin/bot".into(),
            },
            extend,
            asks: "Open a session".into(),
            locks: 0,
        }
    }

    /// Red-team round 20, recheck: `status` repeated the credential changes a check found only
    /// until the next unlock, so a bot that unlocked twice left the trader nothing. They stay
    /// a day, through any number of checks with nothing new, replaced and removed ones first;
    /// a name changed again keeps one sentence, its latest.
    #[test]
    fn credential_changes_stay_in_status_for_a_day_whatever_unlocks_follow() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let t0 = Duration::from_secs(1000);
        let notes = ChangeNotes {
            loud: vec![("k1".into(), "k1 replaced".into())],
            replaced: 1,
            quiet: vec!["1 credential was stored".into()],
        };
        unlocker.keep_changes(notes, t0);
        for i in 1..=3 {
            unlocker.keep_changes(ChangeNotes::default(), t0 + Duration::from_secs(i * 60));
        }
        let again = ChangeNotes {
            loud: vec![("k1".into(), "k1 replaced again".into())],
            replaced: 1,
            quiet: Vec::new(),
        };
        unlocker.keep_changes(again, t0 + Duration::from_secs(3600));
        let (loud, quiet) = unlocker.changes(t0 + Duration::from_secs(3600));
        assert_eq!(loud, ["k1 replaced again"]);
        // Repeated an hour on, it says when (red-team round 26, F2).
        assert_eq!(
            quiet,
            [
                "1 credential was stored (noted by a check 1 h ago, which later checks may have put right)"
            ]
        );
        let (_, quiet) = unlocker.changes(t0 + Duration::from_secs(30));
        assert_eq!(quiet, ["1 credential was stored"]);
        assert_eq!(unlocker.changed_names(t0 + CHANGES_KEPT / 2), ["k1"]);
        let (loud, quiet) = unlocker.changes(t0 + CHANGES_KEPT);
        assert!(loud.is_empty() && quiet.is_empty());
    }

    /// Red-team round 21: the day-long note of a replacement was evicted after four more
    /// checks by junk names anyone stored and removed (each removal a loud note, eight named a
    /// check). Removals go first, and a replacement is named first in `status` and the touch
    /// prompt for its day, however many removals follow.
    #[test]
    fn junk_removals_do_not_evict_a_replacement_within_its_day() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let t0 = Duration::from_secs(1000);
        let replaced = ChangeNotes {
            loud: vec![("k1".into(), "k1 replaced".into())],
            replaced: 1,
            quiet: Vec::new(),
        };
        unlocker.keep_changes(replaced, t0);
        for check in 1..=60u64 {
            let removed = ChangeNotes {
                loud: (0..8)
                    .map(|i| (format!("j{check}x{i}"), format!("j{check}x{i} removed")))
                    .collect(),
                replaced: 0,
                quiet: Vec::new(),
            };
            unlocker.keep_changes(removed, t0 + Duration::from_secs(check * 60));
        }
        let now = t0 + Duration::from_secs(3 * 3600);
        let (loud, _) = unlocker.changes(now);
        assert_eq!(loud[0], "k1 replaced", "{loud:?}");
        assert!(loud.last().unwrap().starts_with("and "), "{loud:?}");
        assert_eq!(unlocker.changed_names(now)[0], "k1");
        assert!(unlocker.changes(t0 + CHANGES_KEPT).0[0] != "k1 replaced");
    }

    /// Red-team round 21: `noted` from any program (33 requests of 8 names, no touch)
    /// evicted the check's own "k1 was replaced" within its day, and one `noted` naming k1
    /// removed reworded it. Noted notes keep their own bounded list, after the checks'.
    #[test]
    fn noted_requests_neither_evict_nor_reword_a_checks_note() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let t0 = Duration::from_secs(1000);
        let replaced = ChangeNotes {
            loud: vec![("k1".into(), "k1 replaced".into())],
            replaced: 1,
            quiet: Vec::new(),
        };
        unlocker.keep_changes(replaced, t0);
        let bot = asked(9, false).client;
        for r in 1..=40u64 {
            let junk = tapsign_proto::NotedRequest {
                replaced: (0..8).map(|i| format!("old-bot-{r}-{i}")).collect(),
                removed: Vec::new(),
            };
            unlocker.keep_noted(&junk, &bot, t0 + Duration::from_secs(r));
        }
        let k1 = tapsign_proto::NotedRequest {
            replaced: Vec::new(),
            removed: vec!["k1".into()],
        };
        unlocker.keep_noted(&k1, &bot, t0 + Duration::from_secs(60));
        let now = t0 + Duration::from_secs(3600);
        let (loud, _) = unlocker.changes(now);
        assert_eq!(loud[0], "k1 replaced", "{loud:?}");
        assert!(loud.last().unwrap().starts_with("and "), "{loud:?}");
        assert_eq!(unlocker.changed_names(now)[0], "k1");
        assert!(unlocker.changed_names(now).len() <= 1 + NOTED_KEPT);
    }

    /// Red-team round 22: a `noted` naming k1 removed reworded the `noted` that had named it
    /// replaced (the only word of a file a rotation took in, once its output was gone). A
    /// note told by `noted` keeps its first text, but for a louder one.
    #[test]
    fn a_noted_replacement_is_never_reworded_as_a_removal() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let t0 = Duration::from_secs(1000);
        let command = asked(7, false).client;
        let bot = asked(9, false).client;
        let noted = |replaced: &[&str], removed: &[&str]| tapsign_proto::NotedRequest {
            replaced: replaced.iter().map(|s| s.to_string()).collect(),
            removed: removed.iter().map(|s| s.to_string()).collect(),
        };
        unlocker.keep_noted(&noted(&["k1"], &["k2"]), &command, t0);
        unlocker.keep_noted(&noted(&[], &["k1"]), &bot, t0 + Duration::from_secs(1));
        let (loud, _) = unlocker.changes(t0 + Duration::from_secs(2));
        let k1 = loud.iter().find(|l| l.contains("\"k1\"")).unwrap();
        assert!(
            k1.contains("was replaced") && k1.contains("pid 7"),
            "{loud:?}"
        );
        // Louder is taken: a removal said again as a replacement.
        unlocker.keep_noted(&noted(&["k2"], &[]), &bot, t0 + Duration::from_secs(3));
        let (loud, _) = unlocker.changes(t0 + Duration::from_secs(4));
        let k2 = loud.iter().find(|l| l.contains("\"k2\"")).unwrap();
        assert!(k2.contains("was replaced"), "{loud:?}");
    }

    /// Red-team round 21: `noted` names were taken whatever they were. With a keystore there,
    /// only the names it holds or records are kept; the rest are counted.
    #[test]
    fn noted_names_the_keystore_never_held_are_counted_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let token =
            crate::token::soft::SoftToken::create_ungated(&dir.path().join("soft")).unwrap();
        let ks = Keystore::new(paths.keystore_dir());
        let mut ledger = crate::keystore::ledger::MemoryLedger::default();
        ks.create(token.stub(), &mut ledger).unwrap();
        let cred = Credential {
            name: "k1".into(),
            exchange: crate::credential::Exchange::Binance,
            api_key: SecretString::new("KEY".into()),
            secret: crate::secret::SecretBytes::from_slice(b"SECRET"),
            passphrase: None,
        };
        ks.add_credential(&cred, false, None, &mut ledger).unwrap();
        let unlocker = Unlocker::new(&paths, false);
        let req = tapsign_proto::NotedRequest {
            replaced: vec!["k1".into(), "never-held".into()],
            removed: Vec::new(),
        };
        let t0 = Duration::from_secs(1000);
        unlocker.keep_noted(&req, &asked(9, false).client, t0);
        assert_eq!(unlocker.changed_names(t0), ["k1"]);
        let (loud, _) = unlocker.changes(t0);
        assert!(loud.last().unwrap().starts_with("and 1 more"), "{loud:?}");
    }

    /// A queued unlock or extend took the next touch, whoever the touch was asked for: the
    /// second is refused with the first's asker, and the turn frees when the first ends.
    #[test]
    fn a_second_unlock_or_extend_is_refused_while_one_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let first = unlocker.turn(asked(7, false)).unwrap();
        assert_eq!(unlocker.turn(asked(8, false)).err(), Some(asked(7, false)));
        assert_eq!(unlocker.turn(asked(8, true)).err(), Some(asked(7, false)));
        drop(first);
        let extend = unlocker.turn(asked(8, true)).unwrap();
        assert_eq!(unlocker.turn(asked(9, false)).err(), Some(asked(8, true)));
        drop(extend);
        assert!(unlocker.turn(asked(9, false)).is_ok());
    }

    /// Red-team round 18 (suspected): the turn was let go before the unlock's answer was made,
    /// so a bot's unlock could ask for a touch while the trader's `tapsign unlock` still waited
    /// for its answer. The turn is held until then; once touched it is no longer shown as
    /// asking for a touch, and it is let go (and untouched) when dropped.
    #[test]
    fn a_touched_turn_still_refuses_others_until_its_answer_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path(), dir.path().join("agent.sock"));
        let unlocker = Unlocker::new(&paths, false);
        let first = unlocker.turn(asked(7, false)).unwrap();
        assert_eq!(unlocker.pending(), Some(asked(7, false)));
        first.touched();
        assert_eq!(unlocker.pending(), None, "no longer asks for a touch");
        assert_eq!(unlocker.turn(asked(8, false)).err(), Some(asked(7, false)));
        drop(first);
        let next = unlocker.turn(asked(8, false)).unwrap();
        assert_eq!(unlocker.pending(), Some(asked(8, false)), "asks again");
        drop(next);
    }
}
