//! Hardware tokens (and the test-only soft token) behind one trait.
//!
//! A token does exactly one secret operation: [`Token::agree`], which turns a keyslot's
//! challenge into 32 bytes of key material and asks the human for a touch. The keystore turns
//! that material into a key-encryption key (HKDF) and opens the keyslot (AEAD).
//! - P-256 tokens (PIV, soft): the challenge is an ephemeral public key and the answer the
//!   ECDH shared X coordinate; wrapping needs only the token's public key.
//! - FIDO2 tokens: the challenge is the keyslot's hmac-secret salt and the answer the
//!   hmac-secret output; wrapping needs the token too (one more touch).

pub mod fido2;
mod held;
pub mod mgm;
pub mod piv;
mod readers;
pub mod soft;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a keyslot records about its token: enough to name it and to recognise it before
/// asking for a touch. Never secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenStub {
    /// The software token: NO SECURITY, TESTS ONLY. Its private key sits in a file.
    Soft {
        /// The soft token's id (hex of the first 4 bytes of SHA-256 of its public key).
        id: String,
        /// Its P-256 public key, SEC1 compressed, hex.
        public_key: String,
    },
    /// A P-256 key in a retired PIV slot of a YubiKey.
    Piv {
        serial: u32,
        /// The slot as the card numbers it (0x82 = R1 .. 0x95 = R20).
        slot: u8,
        /// Hex of the first 4 bytes of SHA-256 of the compressed public key.
        tag: String,
        /// The slot's P-256 public key, SEC1 compressed, hex.
        public_key: String,
        /// PIN policy the key was generated with: never, once, always (or default).
        pin_policy: String,
        /// Touch policy: always (the only one `token add` generates); an adopted key keeps its
        /// own: cached (with `--allow-cached-touch`), never or default (`--allow-no-touch`).
        touch_policy: String,
    },
    /// A FIDO2 credential with the hmac-secret extension, on any FIDO2 key (USB or NFC).
    Fido2 {
        /// The name given at enrollment (`--name`), used in prompts ("insert <label>").
        label: String,
        /// The authenticator model's AAGUID, as getInfo gave it (UUID form).
        aaguid: String,
        /// The relying-party id the credential is scoped to ([`fido2::RP_ID`]).
        rp_id: String,
        /// The credential id, hex: the key needs it back (the credential is not discoverable).
        credential_id: String,
        /// The hmac-secret salt, hex (32 bytes).
        salt: String,
        /// `required` (the PIN at every unlock) or `discouraged` (touch only).
        uv: String,
    },
}

impl TokenStub {
    /// A short id for `token list` / `token remove`.
    pub fn id(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => format!("soft-{id}"),
            TokenStub::Piv {
                serial, slot, tag, ..
            } => format!("piv-{serial}-r{}-{tag}", slot.wrapping_sub(0x81)),
            TokenStub::Fido2 { credential_id, .. } => {
                // A damaged (non-hex) id still names a file; loading it reports the damage.
                let raw = hex::decode(credential_id)
                    .unwrap_or_else(|_| credential_id.as_bytes().to_vec());
                format!("fido2-{}", hex::encode(&Sha256::digest(&raw)[..4]))
            }
        }
    }

    /// The kind, as `status` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenStub::Soft { .. } => "soft",
            TokenStub::Piv { .. } => "piv",
            TokenStub::Fido2 { .. } => "fido2",
        }
    }

    /// How to name this token to a human ("insert YubiKey 12345678").
    pub fn describe(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => {
                format!("soft token {id} (INSECURE: for tests only, the key is in a file)")
            }
            TokenStub::Piv { serial, slot, .. } => {
                format!("YubiKey {serial} (PIV slot R{})", slot.wrapping_sub(0x81))
            }
            TokenStub::Fido2 { label, .. } => format!("FIDO2 key \"{label}\""),
        }
    }

    /// What tells this token apart, for `token list`: a serial or a model (AAGUID).
    pub fn model(&self) -> String {
        match self {
            TokenStub::Soft { id, .. } => format!("key {id}"),
            TokenStub::Piv { serial, .. } => format!("serial {serial}"),
            TokenStub::Fido2 { aaguid, uv, .. } => format!("aaguid {aaguid}, uv {uv}"),
        }
    }

    /// Whether unlocking with this token takes its PIN.
    pub fn needs_pin(&self) -> bool {
        match self {
            TokenStub::Soft { .. } => false,
            TokenStub::Piv { pin_policy, .. } => pin_policy != "never",
            TokenStub::Fido2 { uv, .. } => uv == "required",
        }
    }

    /// What a PIV key's touch policy gives away, when it is weaker than always: `status`,
    /// `unlock`, `token list` and `token add` say it. Cached lets the card answer without a
    /// touch for 15 s after the last one (firmware-notes/touch-policies.md), so a program
    /// running as you can ride the trader's touch: send its own unlock (every key, as long as
    /// it likes) or do the ECDH with the card itself and take the vault key (red-team round 20).
    pub fn touch_warning(&self) -> Option<String> {
        let TokenStub::Piv { touch_policy, .. } = self else {
            return None;
        };
        let which = self.describe();
        let instead = format!(
            "enroll a key with touch always in another slot (`tapsign token add --piv --slot R2`), then remove this one (`tapsign token remove {}`)",
            self.id()
        );
        match touch_policy.as_str() {
            "always" => None,
            "cached" => Some(format!(
                "{which} has touch policy cached: for 15 s after each touch on it, any program running as you can unlock every key for as long as it asks, or take the keystore's key itself, without a touch; {instead}"
            )),
            other => Some(format!(
                "{which} has touch policy {other}: any program running as you can unlock the keystore while it is plugged in, without a touch; {instead}"
            )),
        }
    }

    /// True for tokens that give no protection (the soft token).
    pub fn is_insecure(&self) -> bool {
        matches!(self, TokenStub::Soft { .. })
    }

    /// Whether a soft token's id, or a PIV key's tag, is the hash of its public key as
    /// enrollment derives it: a keyslot naming one token's key under another's id (a
    /// removed token's key back under a new id) does not pass for that other token.
    pub fn id_matches_key(&self) -> bool {
        match self {
            TokenStub::Soft { id: tag, .. } | TokenStub::Piv { tag, .. } => self
                .ecdh_public_key()
                .is_some_and(|k| hex::encode(&Sha256::digest(&k)[..4]) == *tag),
            TokenStub::Fido2 { .. } => true,
        }
    }

    /// The P-256 public key (SEC1 bytes) wrapping encrypts to, for ECDH tokens.
    pub fn ecdh_public_key(&self) -> Option<Vec<u8>> {
        match self {
            TokenStub::Soft { public_key, .. } | TokenStub::Piv { public_key, .. } => {
                hex::decode(public_key).ok()
            }
            TokenStub::Fido2 { .. } => None,
        }
    }
}

/// What can go wrong with a token. Messages say what to do; they never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no enrolled token is present: {hint}")]
    Absent { hint: String },
    /// A token left during the operation (the one being used or enrolled, named): not "no
    /// enrolled token is present", which read wrong of the key being enrolled (red-team round
    /// 24).
    #[error("{token} was removed during the operation: insert it and try again")]
    Removed { token: String },
    #[error("the token present ({found}) is not enrolled in this keystore; insert {expected}")]
    WrongToken { found: String, expected: String },
    /// The token an unlock named (`--token`, the unlock frame's `token`) is not present while
    /// another enrolled one is: "the token present (YubiKey 3333) is not enrolled", or a FIDO2
    /// key's "reset: run `tapsign token remove`" of the key left in a drawer, had the trader
    /// told to revoke a good backup token (red-team round 24, recheck).
    #[error(
        "{token}, the token named for this command, is not present; {present} is, enrolled in this keystore as {id}: insert {token} and try again, or use {id} instead (`--token {id}`)"
    )]
    NamedAbsent {
        token: String,
        present: String,
        id: String,
    },
    /// An enrolled token is there, but not with the key its keyslot was sealed to (a PIV slot
    /// regenerated or emptied, a FIDO2 key reset): that keyslot opens nothing any more, and
    /// "insert <the token in the reader>" left the trader stuck (red-team round 24). `what`
    /// says what was found; `remove` the `tapsign token remove` command(s) that take the dead
    /// keyslot out.
    ///
    /// `other` is empty, or says which other enrolled token is present and how to use it
    /// (`--token`), when the refused command named this one (red-team round 25).
    #[error(
        "{what}: that enrolled token can no longer open this keystore: open the keystore with another enrolled token{other}, run {remove}, then enroll the key again with `tapsign token add`. If no other token is enrolled, nothing can open the keystore any more: move the keystore folder and the audit log aside (keep them), start over with `tapsign token add`, and add your API keys again"
    )]
    KeyLost {
        what: String,
        remove: String,
        other: String,
    },
    #[error(
        "no touch within {secs} s (or the touch was refused); run the command again and touch the token when it blinks"
    )]
    TouchTimeout { secs: u64 },
    #[error(
        "the touch on {token} was refused or cancelled; run the command again and touch the token when it blinks"
    )]
    TouchDenied { token: String },
    #[error("{token} refused the PIN ({tries_left} tries left before it blocks)")]
    PinInvalid { token: String, tries_left: u32 },
    #[error("the PIN of {token} is blocked: {fix}")]
    PinBlocked { token: String, fix: String },
    #[error(
        "{token} has one PIN try left, and tapsign will not spend it (a wrong PIN would block it): {fix}"
    )]
    PinLastTry { token: String, fix: String },
    #[error("{token} needs its PIN for this key: `tapsign unlock` asks for it")]
    PinNeeded { token: String },
    #[error(
        "{token} takes no more PIN tries until it is unplugged (three wrong PINs in a row): remove it, insert it again, and retry with the right PIN"
    )]
    PinNeedsReplug { token: String },
    #[error(
        "the PIN given for {token} cannot be its PIN (a FIDO2 PIN is 4 to 63 bytes), so it was not sent: a wrong PIN costs one of the key's tries"
    )]
    PinImpossible { token: String },
    /// A card answered the PIV applet's SELECT but not GET VERSION or GET SERIAL as a YubiKey
    /// does: it may be the YubiKey `wanted` (a bad contact, a fault), or another make's PIV
    /// card; "not present: insert it" was said of a card sitting in the reader (red-team
    /// round 25).
    #[error(
        "the card in PC/SC reader {reader} answered as a PIV card, but its serial or firmware version came back unreadable, so it is not known to be {wanted}: if it is, take it out and insert it again, and check it with `ykman piv info` if that does not help; if it is another card, insert {wanted}"
    )]
    Unreadable { reader: String, wanted: String },
    #[error("no token can be reached: {hint}")]
    Unavailable { hint: String },
    /// Another program has the card open. A PIN is used only on a card no other program has
    /// open (no other program's command can then be served with it), so a shared hold refuses
    /// it too; the message said "held exclusively" and the code `token_absent` ("insert the
    /// key") of a key sitting in the reader (red-team round 26, recheck).
    #[error(
        "{token} is held by another program, and tapsign uses the card only while no other program has it open (a command of another program could otherwise be served with the PIN it checks): close that program and try again (gpg's scdaemon: `gpgconf --kill scdaemon`; a YubiKey manager such as ykman or Yubico Authenticator; a browser or PIV middleware using the card)"
    )]
    InUse { token: String },
    #[error(
        "the soft token is for tests only and gives no protection; set TAPSIGN_INSECURE_SOFT_TOKEN=1 to use it anyway"
    )]
    SoftRefused,
    /// The agent's own environment lacks the variable: only a restart of the agent changes
    /// that. "set TAPSIGN_INSECURE_SOFT_TOKEN=1" went to `tapsign unlock`, whose shell had it
    /// already, and following it changed nothing (red-team round 24).
    #[error(
        "the agent was started without TAPSIGN_INSECURE_SOFT_TOKEN=1, so it does not use the soft token (tests and demos only: it gives no protection); to use it anyway, stop `tapsign agent` and start it again with TAPSIGN_INSECURE_SOFT_TOKEN=1 in its own environment (the variable in the shell of `tapsign unlock` changes nothing)"
    )]
    SoftRefusedByAgent,
    #[error("token error: {0}")]
    Other(String),
}

/// A token that is present and can be asked for its one secret operation.
pub trait Token: Send {
    /// The stub of the keyslot this token answers for.
    fn stub(&self) -> &TokenStub;

    /// Turn a keyslot's challenge into 32 bytes of key material. Asks for a touch.
    fn agree(&mut self, challenge: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError>;

    /// The PC/SC reader the token sat in for its last `agree`, so the agent can lock when it
    /// goes away. `None` for tokens not on PC/SC.
    fn reader(&self) -> Option<String> {
        None
    }
}

/// Where tokens are looked for, and what the human already gave.
pub struct Search<'a> {
    /// The soft token's folder.
    pub soft_dir: &'a std::path::Path,
    /// `TAPSIGN_INSECURE_SOFT_TOKEN=1` was given.
    pub soft_allowed: bool,
    /// The PIN, for tokens whose policy wants one.
    pub pin: Option<&'a crate::secret::SecretString>,
}

/// Find a present token that answers for one of `stubs`, without asking for a touch.
/// Returns the index of the stub and the token.
pub fn locate(
    stubs: &[&TokenStub],
    search: &Search<'_>,
) -> Result<(usize, Box<dyn Token>), TokenError> {
    locate_noting(stubs, search).map(|f| (f.index, f.token))
}

/// A token [`locate_noting`] found: the index of its stub, the token, and what the kinds tried
/// before it said.
pub struct Found {
    pub index: usize,
    pub token: Box<dyn Token>,
    pub passed: Vec<TokenError>,
}

/// [`locate`], with what the kinds tried before the one found said: an enrolled token found
/// dead there ([`TokenError::KeyLost`]: its slot emptied, the key reset) was passed over in
/// silence whenever a later kind answered, and the trader kept a backup token that no longer
/// opens the keystore without knowing it (red-team round 24, recheck).
pub fn locate_noting(stubs: &[&TokenStub], search: &Search<'_>) -> Result<Found, TokenError> {
    let expected = || {
        stubs
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let of_kind = |kind: &str| -> Vec<(usize, &TokenStub)> {
        stubs
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| s.kind() == kind)
            .collect()
    };
    // Every error met, in order: the passed-over kinds' if a later one answers.
    let mut met: Vec<TokenError> = Vec::new();
    let found = |index: usize, token: Box<dyn Token>, passed| Found {
        index,
        token,
        passed,
    };
    let piv = of_kind("piv");
    if !piv.is_empty() {
        let only: Vec<&TokenStub> = piv.iter().map(|(_, s)| *s).collect();
        let mut dead = Vec::new();
        match piv::PivToken::locate_noting(&only, search.pin, &mut dead) {
            Ok((i, t)) => {
                met.extend(dead);
                return Ok(found(piv[i].0, Box::new(t), met));
            }
            Err(e) => {
                met.push(e);
                met.extend(dead);
            }
        }
    }
    // What a kind's "absent" added to its "insert ...": a transport it could not search.
    let mut notes = String::new();
    let fido = of_kind("fido2");
    if !fido.is_empty() {
        let only: Vec<&TokenStub> = fido.iter().map(|(_, s)| *s).collect();
        match fido2::Fido2Token::locate(&only, search.pin) {
            Ok((i, t)) => return Ok(found(fido[i].0, Box::new(t), met)),
            Err(e) => {
                notes.push_str(absent_notes(&e, &only));
                met.push(e);
            }
        }
    }
    let soft = of_kind("soft");
    if !soft.is_empty() {
        if !search.soft_allowed {
            return Err(kept(met).unwrap_or(TokenError::SoftRefused));
        }
        match soft::SoftToken::open(search.soft_dir) {
            Ok(t) => match soft.iter().find(|(_, s)| **s == *t.stub()) {
                Some(&(i, _)) => return Ok(found(i, Box::new(t), met)),
                None => met.push(TokenError::WrongToken {
                    found: t.stub().describe(),
                    expected: expected(),
                }),
            },
            Err(TokenError::Absent { .. }) => {}
            Err(e) => met.push(e),
        }
    }
    match kept(met) {
        // The one "insert" names every enrolled token, and keeps why a transport was not
        // searched: "pcscd is not running" was dropped, and an unlock told the trader to
        // insert a key that was in the reader (red-team round 27, recheck F3).
        Some(TokenError::Absent { .. }) | None => Err(TokenError::Absent {
            hint: format!("insert {}{notes}", expected()),
        }),
        Some(e) => Err(e),
    }
}

/// What absent error `e`, got looking for `stubs`, says beyond "insert <stubs>": the notes of
/// a transport that could not be searched (" (NFC readers were not searched: the PC/SC daemon
/// (pcscd) is not running ...)"), empty when none.
pub fn absent_notes<'e>(e: &'e TokenError, stubs: &[&TokenStub]) -> &'e str {
    let TokenError::Absent { hint } = e else {
        return "";
    };
    let named: Vec<String> = stubs.iter().map(|s| s.describe()).collect();
    hint.strip_prefix("insert ")
        .and_then(|h| h.strip_prefix(named.join(" or ").as_str()))
        .filter(|notes| notes.starts_with(" ("))
        .unwrap_or_default()
}

/// Which of `stubs` has its token present, found as [`locate`] finds it but with no PIN and
/// no touch: the one token a PIN prompt names, so that the PIN goes to that token alone
/// (red-team round 24: one prompt named every enrolled token that takes a PIN, and the PIN
/// typed for a FIDO2 key went to the YubiKey found first, spending one of its tries). The
/// order is [`locate`]'s: a PIV token, then a FIDO2 key, then the soft token. A FIDO2 key
/// that answers only with its PIN (alwaysUv) is named when it is the one key present that
/// might hold the credential: the PIN then confirms it, still before any touch.
///
/// Also returns what the kinds passed over said ([`locate_noting`]): [`dead`] picks the
/// enrolled tokens found dead among them, to be said before the prompt.
pub fn which(
    stubs: &[&TokenStub],
    search: &Search<'_>,
) -> Result<(usize, Vec<TokenError>), TokenError> {
    locate_noting(stubs, &search.without_pin()).map(|f| (f.index, f.passed))
}

/// The enrolled tokens found dead among errors [`locate_noting`] passed over: each says what
/// happened and names the `tapsign token remove` that takes its keyslot out.
pub fn dead(passed: &[TokenError]) -> impl Iterator<Item = &TokenError> {
    passed
        .iter()
        .filter(|e| matches!(e, TokenError::KeyLost { .. }))
}

/// Whether `stubs[named]`'s token is there, found alone as [`which`] finds it (no PIN, no
/// touch), or why not: [`named_error`] of what locating it alone said.
pub fn which_named(
    stubs: &[&TokenStub],
    named: usize,
    search: &Search<'_>,
) -> Result<(), TokenError> {
    let search = search.without_pin();
    match locate(&[stubs[named]], &search) {
        Ok(_) => Ok(()),
        Err(e) => Err(named_error(e, stubs, named, &search)),
    }
}

/// What to say when `stubs[named]`, the token an unlock named, was not found alone (`e`):
/// if another of `stubs` (the enrolled tokens) is present instead, that the named one is not
/// present ([`TokenError::NamedAbsent`]), never that the present one "is not enrolled", nor a
/// reset key's `token remove` of the absent one (red-team round 24, recheck). Looked for with
/// no PIN and no touch. A YubiKey found with its slot changed is said as such: its serial
/// matched. A FIDO2 key that holds no credential of the named one's ([`TokenError::KeyLost`])
/// is another enrolled key when it holds one of theirs, else the named key reset, or a
/// stranger: those two cannot be told apart, and the error stays. A token found dead
/// ([`TokenError::KeyLost`]) while another enrolled token is present names that one and its
/// `--token`.
pub fn named_error(
    e: TokenError,
    stubs: &[&TokenStub],
    named: usize,
    search: &Search<'_>,
) -> TokenError {
    let wanted = stubs[named];
    let lost = matches!(e, TokenError::KeyLost { .. });
    let fido2_lost = lost && wanted.kind() == "fido2";
    if !(matches!(e, TokenError::Absent { .. } | TokenError::WrongToken { .. }) || lost) {
        return e;
    }
    // Another of `stubs` present (only a FIDO2 key's, with `fido2_only`).
    let present = |fido2_only: bool| -> Option<&TokenStub> {
        let others: Vec<&TokenStub> = (stubs.iter().enumerate())
            .filter(|&(i, s)| i != named && (!fido2_only || s.kind() == "fido2"))
            .map(|(_, s)| *s)
            .collect();
        if others.is_empty() {
            return None;
        }
        let found = locate_noting(&others, &search.without_pin()).ok()?;
        Some(others[found.index])
    };
    if (!lost || fido2_lost)
        && let Some(other) = present(fido2_lost)
    {
        return TokenError::NamedAbsent {
            token: wanted.describe(),
            present: other.describe(),
            id: other.id(),
        };
    }
    match e {
        // The named token is dead and another is there: say how to use that one, which
        // "open the keystore with another enrolled token" left to guess (red-team round 25).
        TokenError::KeyLost { what, remove, .. } => TokenError::KeyLost {
            what,
            remove,
            other: present(false)
                .map(|t| format!(" ({} is present: add `--token {}`)", t.describe(), t.id()))
                .unwrap_or_default(),
        },
        e => e,
    }
}

impl Search<'_> {
    /// The same places, with no PIN: to find a token without spending anything.
    pub fn without_pin(&self) -> Search<'_> {
        Search {
            soft_dir: self.soft_dir,
            soft_allowed: self.soft_allowed,
            pin: None,
        }
    }
}

/// The most telling of the errors met while locating ([`keep`]), in the order met.
fn kept(met: Vec<TokenError>) -> Option<TokenError> {
    let mut first = None;
    for e in met {
        keep(&mut first, e);
    }
    first
}

/// Keep the more telling of the errors met while locating: a present-but-wrong token or a PIN
/// problem says more than "absent", so the first such error wins; "absent" stays only if
/// every kind was absent.
fn keep(first: &mut Option<TokenError>, e: TokenError) {
    let absent = |e: &TokenError| matches!(e, TokenError::Absent { .. });
    match first {
        None => *first = Some(e),
        Some(f) if absent(f) && !absent(&e) => *first = Some(e),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fido(label: &str, uv: &str) -> TokenStub {
        TokenStub::Fido2 {
            label: label.into(),
            aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8".into(),
            rp_id: fido2::RP_ID.into(),
            credential_id: "c0ffee".into(),
            salt: "00".repeat(32),
            uv: uv.into(),
        }
    }

    #[test]
    fn a_fido2_stub_names_itself() {
        let s = fido("desk", "required");
        // SHA-256 of the credential id's bytes (c0 ff ee), first 4 bytes.
        assert_eq!(s.id(), "fido2-c47a10dc");
        assert_eq!(
            (s.kind(), s.describe()),
            ("fido2", "FIDO2 key \"desk\"".into())
        );
        assert!(
            s.model()
                .contains("aaguid cb69481e-8ff7-4039-93ec-0a2729a154a8")
        );
        assert!(s.needs_pin() && !fido("desk", "discouraged").needs_pin());
        assert!(s.ecdh_public_key().is_none() && !s.is_insecure());
    }

    fn piv(touch: &str) -> TokenStub {
        TokenStub::Piv {
            serial: 12345678,
            slot: 0x82,
            tag: "0a0b0c0d".into(),
            public_key: "02".repeat(33),
            pin_policy: "once".into(),
            touch_policy: touch.into(),
        }
    }

    #[test]
    fn a_piv_key_whose_touch_is_cached_or_absent_is_warned_of() {
        assert_eq!(piv("always").touch_warning(), None);
        assert_eq!(fido("desk", "discouraged").touch_warning(), None);
        let cached = piv("cached").touch_warning().unwrap();
        assert!(
            cached.starts_with("YubiKey 12345678 (PIV slot R1) has touch policy cached: for 15 s"),
            "{cached}"
        );
        assert!(
            cached.contains("`tapsign token remove piv-12345678-r1-0a0b0c0d`"),
            "{cached}"
        );
        for weak in ["never", "default"] {
            let w = piv(weak).touch_warning().unwrap();
            assert!(w.contains("without a touch"), "{w}");
        }
    }

    #[test]
    fn locating_reports_a_wrong_token_over_an_absent_one() {
        let absent = || TokenError::Absent { hint: "a".into() };
        let wrong = || TokenError::WrongToken {
            found: "x".into(),
            expected: "y".into(),
        };
        let mut first = None;
        keep(&mut first, absent());
        keep(&mut first, wrong());
        keep(&mut first, TokenError::TouchTimeout { secs: 1 });
        assert!(matches!(first, Some(TokenError::WrongToken { .. })));
        let mut first = None;
        keep(&mut first, wrong());
        keep(&mut first, absent());
        assert!(matches!(first, Some(TokenError::WrongToken { .. })));
    }

    /// The note of a transport not searched survives the "insert" naming every enrolled token
    /// (red-team round 27, recheck F3).
    #[test]
    fn absent_notes_are_what_follows_the_insert_of_the_tokens_looked_for() {
        let (a, b) = (fido("desk", "required"), fido("nfc", "required"));
        let hint =
            "insert FIDO2 key \"desk\" or FIDO2 key \"nfc\" (NFC readers were not searched: x)";
        let e = TokenError::Absent { hint: hint.into() };
        assert_eq!(
            absent_notes(&e, &[&a, &b]),
            " (NFC readers were not searched: x)"
        );
        assert_eq!(absent_notes(&e, &[&a]), "");
        let plain = TokenError::Absent {
            hint: "insert FIDO2 key \"desk\"".into(),
        };
        assert_eq!(absent_notes(&plain, &[&a]), "");
        assert_eq!(absent_notes(&TokenError::SoftRefused, &[&a]), "");
    }
}
