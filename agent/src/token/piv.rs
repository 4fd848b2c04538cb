//! The YubiKey PIV token: a P-256 key generated on the card in a retired slot, used for one
//! on-card ECDH per unlock (touch policy Always: the only one it generates).
//!
//! Every call opens the card, does its one job and lets go of it. A PIN is only ever verified
//! on a card connected to exclusively, inside one PC/SC transaction that ends with a card reset
//! ([`super::held`]), so no other local program's command is served with it, during the
//! operation or after; while another program keeps the card open, a PIN use is refused
//! ([`TokenError::InUse`]); other PC/SC clients can use the card right after an unlock. The
//! management-key authentication (and the change of a factory management key, [`super::mgm`])
//! and GENERATE of `token add` run in the same hold.
//!
//! Firmware behaviour this relies on is written up in `firmware-notes/`.

use p256::PublicKey;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};
use yubikey::piv::{self, AlgorithmId, RetiredSlotId, SlotAlgorithmId, SlotId};
use yubikey::{PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use super::held::{HeldCard, holding, pause_for_tests};
use super::mgm::{self, MgmOutcome, Plan};
use super::readers::{call, leave, malformed, open_serial, scan};
use super::{Token, TokenError, TokenStub};
use crate::secret::SecretString;

/// The policies a PIV keyslot was enrolled with, as stored in its stub.
pub fn policy_name(p: PinPolicy) -> &'static str {
    match p {
        PinPolicy::Never => "never",
        PinPolicy::Once => "once",
        PinPolicy::Always => "always",
        PinPolicy::Default => "default",
    }
}

pub fn touch_name(t: TouchPolicy) -> &'static str {
    match t {
        TouchPolicy::Never => "never",
        TouchPolicy::Always => "always",
        TouchPolicy::Cached => "cached",
        TouchPolicy::Default => "default",
    }
}

/// What `token add --piv` asks for.
pub struct EnrollOptions {
    pub serial: Option<u32>,
    /// Retired slot number 1..=20 (R1 = 0x82).
    pub slot: u8,
    pub pin_policy: PinPolicy,
    pub use_existing: bool,
    /// With `use_existing`: adopt a key whose touch policy is never (or unknown).
    pub allow_no_touch: bool,
    /// With `use_existing`: adopt a key whose touch policy is cached.
    pub allow_cached_touch: bool,
    /// With `use_existing`: adopt a key the card says was imported (or does not say was
    /// generated on it). Whoever imported it holds its private key.
    pub allow_imported: bool,
    pub force: bool,
    /// A custom management key (hex), when the card's is not the factory default.
    pub mgm_key: Option<SecretString>,
    /// Leave a factory-default management key in place instead of replacing it with a
    /// random one stored behind the PIN ([`super::mgm`]).
    pub keep_default_mgm_key: bool,
}

/// Retired slot `n` (1..=20) as the card numbers it (0x82..=0x95).
pub fn retired_slot(n: u8) -> Result<RetiredSlotId, TokenError> {
    if !(1..=20).contains(&n) {
        return Err(TokenError::Other(format!(
            "slot R{n} does not exist: use R1 to R20"
        )));
    }
    RetiredSlotId::try_from(0x81 + n)
        .map_err(|_| TokenError::Other(format!("slot R{n} is not a retired slot")))
}

/// Generate (or adopt) the P-256 key on the card and describe it as a keyslot stub.
/// Whether the YubiKey `enroll` would use is there (pcscd running, the card on a reader): the
/// check that needs no touch, made before a touch opens the keystore to enroll it.
pub fn check_present(serial: Option<u32>) -> Result<(), TokenError> {
    open(serial).map(drop)
}

pub fn enroll(
    opts: &EnrollOptions,
    pin: Option<&SecretString>,
) -> Result<(TokenStub, MgmOutcome), TokenError> {
    let mut yk = open(opts.serial)?;
    let serial = yk.serial().0;
    let reader = yk.name().to_owned();
    let rslot = retired_slot(opts.slot)?;
    let slot = SlotId::Retired(rslot);
    // The PIN is used only inside [`holding`], where no other program's command can be
    // served with it: the metadata, the management key and GENERATE need none.
    let existing = match call(serial, "its slot metadata", || piv::metadata(&mut yk, slot))? {
        Ok(m) => Some(m),
        Err(yubikey::Error::NotFound) => None,
        Err(yubikey::Error::NotSupported) => {
            return Err(TokenError::Other(format!(
                "YubiKey {serial} runs firmware {}, too old to report slot metadata (5.3 or later is needed) — tapsign cannot check what is in the slot",
                yk.version()
            )));
        }
        Err(e) => return Err(card_error(e, serial)),
    };
    // The key's form is checked here, before anything is sent.
    let plan = Plan::new(
        &yk,
        opts.mgm_key.as_ref(),
        opts.keep_default_mgm_key,
        serial,
    )?;
    let (public, pin_policy, touch_policy, outcome) = if opts.use_existing {
        let Some(meta) = existing else {
            return Err(TokenError::Other(format!(
                "slot R{} of YubiKey {serial} is empty: drop --use-existing to generate a key there",
                opts.slot
            )));
        };
        let spki = meta.public.ok_or_else(|| {
            TokenError::Other("the card reports no public key for that slot, so tapsign cannot adopt it: generate a new key there (drop --use-existing; add --force)".into())
        })?;
        let public = PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).map_err(|_| {
            TokenError::Other(format!("slot R{} does not hold a P-256 key: tapsign needs one (generate it without --use-existing)", opts.slot))
        })?;
        // An imported key's private half existed outside the card, and whoever put it there
        // still has it: the keystore would open offline, with no card and no touch. The
        // factory management key is all an import needs (no PIN, no touch), so a program
        // running as the trader can plant one in an empty or wiped slot (red-team round 26).
        // A card that does not say (no origin in the metadata) is treated the same.
        if meta.origin != Some(piv::Origin::Generated) && !opts.allow_imported {
            let how = match meta.origin {
                Some(piv::Origin::Imported) => "was imported, not generated on the card",
                _ => "is not reported as generated on the card (its metadata gives no origin)",
            };
            return Err(TokenError::Other(format!(
                "the key in slot R{} of YubiKey {serial} {how}: whoever imported it holds its private key and could open the keystore without the card or a touch, and any program running as you can import a key with the factory management key. Generate a key on the card instead (drop --use-existing; add --force to replace the key in that slot, or pick another --slot), or, only if you imported this key yourself and keep its private key safe, adopt it with --allow-imported",
                opts.slot
            )));
        }
        let (p, t) = meta
            .policy
            .unwrap_or((PinPolicy::Default, TouchPolicy::Default));
        // A YubiKey's default touch policy is never: an unknown one is no better.
        if matches!(t, TouchPolicy::Never | TouchPolicy::Default) && !opts.allow_no_touch {
            return Err(TokenError::Other(format!(
                "the key in slot R{} of YubiKey {serial} has touch policy {}: any program running as you could unlock the keystore while the card is plugged in, without anyone touching it. Generate a key that asks for a touch instead (drop --use-existing; add --force to replace the key in that slot, or pick another --slot), or adopt this one anyway with --allow-no-touch",
                opts.slot,
                touch_name(t)
            )));
        }
        // Cached answers without a touch for 15 s after any touch: a program running as the
        // trader rides the trader's own touch (firmware-notes/touch-policies.md).
        if matches!(t, TouchPolicy::Cached) && !opts.allow_cached_touch {
            return Err(TokenError::Other(format!(
                "the key in slot R{} of YubiKey {serial} has touch policy cached: for 15 s after each touch on the card, any program running as you could send its own unlock (every key, for as long and as many signatures as it asks) or take the keystore's key itself, without anyone touching it again. Generate a key that asks for a touch every time instead (drop --use-existing; add --force to replace the key in that slot, or pick another --slot), or adopt this one anyway with --allow-cached-touch",
                opts.slot
            )));
        }
        leave(yk);
        let outcome = holding(serial, &reader, |card| {
            if let Some(pin) = pin {
                card.verify_pin(pin)?;
            }
            prove_key(card, u8::from(rslot), &public, serial)?;
            // Adopting needs no management key; a factory one is replaced all the same, as
            // it lets any program running as the trader overwrite the key adopted here.
            match (&plan, pin) {
                (Plan::Managed { .. }, Some(_)) => mgm::authenticate(card, &plan, serial, false),
                _ => Ok(MgmOutcome::Untouched),
            }
        })?;
        (public, p, t, outcome)
    } else {
        if existing.is_some() && !opts.force {
            return Err(TokenError::Other(format!(
                "slot R{} of YubiKey {serial} already holds a key; pick another --slot, or replace it with --force (the old key is lost for good). Adopt it with --use-existing only if you generated it on this card yourself: a key you did not make may be one a program running as you put there, and whoever imported a key holds its private key",
                opts.slot
            )));
        }
        // The management-key authentication and GENERATE run on the card held alone, as the
        // PIN does: the authenticated state is the card's, and on a shared connection
        // another program's GENERATE, IMPORT or SET MANAGEMENT KEY sent between the crate's
        // separate transactions was served as authenticated (red-team round 26, recheck,
        // finding 2).
        leave(yk);
        let (outcome, generated) = holding(serial, &reader, |card| {
            // A wrong PIN fails here, before a key is made, as the unlocks will ask for it.
            // The management key stored behind it is read with it.
            if let Some(pin) = pin {
                card.verify_pin(pin)?;
            }
            let outcome = mgm::authenticate(card, &plan, serial, true)?;
            // Always, and nothing else: Cached would let a program running as the trader ride
            // the trader's touch for 15 s (firmware-notes/touch-policies.md; red-team round 20).
            Ok((
                outcome,
                card.generate_p256(u8::from(rslot), opts.pin_policy)?,
            ))
        })?;
        let unrecorded = |what: &str| unrecorded_key(serial, opts.slot, what);
        let data = generated.map_err(|sw| {
            TokenError::Other(format!(
                "YubiKey {serial} refused the key generation in slot R{} (status {sw:04X}): try again; if it repeats, check the card with `ykman piv info`",
                opts.slot
            ))
        })?;
        // 7F49 len { 86 41 <the point> }.
        let point = match data.as_slice() {
            [0x7F, 0x49, 0x43, 0x86, 0x41, point @ ..] if point.len() == 65 => point,
            [] => return Err(unrecorded("with data too short to read")),
            _ => return Err(unrecorded("with something tapsign cannot read")),
        };
        let public = PublicKey::from_sec1_bytes(point)
            .map_err(|_| unrecorded("with a public key that is not a P-256 point"))?;
        (public, opts.pin_policy, TouchPolicy::Always, outcome)
    };
    let stub = stub(serial, u8::from(rslot), &public, pin_policy, touch_policy);
    Ok((stub, outcome))
}

/// The card answered GENERATE (`how`) with a success whose key could not be read: it made
/// the key, which tapsign did not record. The retry then met "slot R1 already holds a key ...
/// the old key is lost for good", of a key from a second before that nothing uses; a GENERATE
/// answered with no data at all panicked (red-team round 25).
fn unrecorded_key(serial: u32, slot: u8, how: &str) -> TokenError {
    TokenError::Other(format!(
        "YubiKey {serial} answered the key generation {how}, so nothing was enrolled; the card may have made a new key in slot R{slot} all the same, which tapsign did not record and nothing uses: run the same `tapsign token add` again with --force to replace it (if it repeats, check the card with `ykman piv info`)"
    ))
}

/// One test ECDH with the slot: the card must compute what the public key it reported
/// implies, or it does not hold that key. Needs the PIN verified where the key's policy wants
/// it (done by the caller, in the same held card), and a touch where it wants one.
fn prove_key(
    card: &mut HeldCard<'_>,
    slot: u8,
    public: &PublicKey,
    serial: u32,
) -> Result<(), TokenError> {
    let eph = p256::ecdh::EphemeralSecret::try_generate()
        .map_err(|e| TokenError::Other(format!("random number generator failed: {e}")))?;
    let expected = Zeroizing::new(eph.diffie_hellman(public).raw_secret_bytes().to_vec());
    let point = eph.public_key().to_sec1_point(false);
    say!(
        "tapsign: checking that YubiKey {serial} holds the key (one ECDH): touch it now if it blinks"
    );
    let got = card.ecdh(slot, point.as_bytes())?;
    if got.as_slice() != expected.as_slice() {
        return Err(TokenError::Other(format!(
            "YubiKey {serial} answered the test ECDH with something the slot's public key does not imply: it does not hold that key (or misbehaves); nothing was enrolled"
        )));
    }
    Ok(())
}

fn stub(
    serial: u32,
    slot: u8,
    public: &PublicKey,
    pin: PinPolicy,
    touch: TouchPolicy,
) -> TokenStub {
    let compressed = public.to_sec1_point(true).as_bytes().to_vec();
    let tag = hex::encode(&Sha256::digest(&compressed)[..4]);
    TokenStub::Piv {
        serial,
        slot,
        tag,
        public_key: hex::encode(compressed),
        pin_policy: policy_name(pin).into(),
        touch_policy: touch_name(touch).into(),
    }
}

/// Open the YubiKey with `serial`, or the only one present.
fn open(serial: Option<u32>) -> Result<YubiKey, TokenError> {
    let found = scan()?;
    let present = &found.present;
    match serial {
        Some(s) if present.contains(&s) => open_serial(s),
        Some(s) => Err(found.missing(
            &format!("YubiKey {s}"),
            TokenError::Absent {
                hint: format!("insert YubiKey {s}{}", found_note(present)),
            },
        )),
        None => match present.as_slice() {
            [] => Err(found.missing(
                "the YubiKey to use",
                TokenError::Absent {
                    hint: "insert a YubiKey (none found on the PC/SC readers)".into(),
                },
            )),
            [s] => open_serial(*s),
            many => Err(TokenError::Other(format!(
                "{} YubiKeys are present ({}); say which with --serial",
                many.len(),
                many.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
    }
}

fn found_note(present: &[u32]) -> String {
    match present {
        [] => " (no YubiKey found on the PC/SC readers)".into(),
        p => format!(
            " (found {})",
            p.iter()
                .map(|s| format!("YubiKey {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Serials of the YubiKeys on the PC/SC readers; other cards are skipped.
pub fn present_serials() -> Result<Vec<u32>, TokenError> {
    scan().map(|found| found.present)
}

/// A present, enrolled YubiKey, ready for its one ECDH.
pub struct PivToken {
    stub: TokenStub,
    serial: u32,
    slot: SlotId,
    pin: Option<SecretString>,
    reader: Option<String>,
}

impl PivToken {
    /// Find an enrolled YubiKey among `stubs` on the readers; refuses a wrong card before any
    /// touch. Returns the index of the stub it answers for.
    pub fn locate(
        stubs: &[&TokenStub],
        pin: Option<&SecretString>,
    ) -> Result<(usize, PivToken), TokenError> {
        PivToken::locate_noting(stubs, pin, &mut Vec::new())
    }

    /// [`PivToken::locate`], trying every enrolled YubiKey present in `stubs`' order: one
    /// found dead ([`TokenError::KeyLost`]: its slot regenerated or emptied) goes to `passed`,
    /// to be warned of, and the next is tried. The first one found dead ended the look, and a
    /// backup YubiKey plugged in beside it was never used, which the docs promise (red-team
    /// round 25). No PIN is sent here: the one given goes to the token returned alone, and a
    /// caller that must reach one token only (`--token`) passes its stub alone.
    pub fn locate_noting(
        stubs: &[&TokenStub],
        pin: Option<&SecretString>,
        passed: &mut Vec<TokenError>,
    ) -> Result<(usize, PivToken), TokenError> {
        let found = scan()?;
        let here: Vec<usize> = (stubs.iter().enumerate())
            .filter(|(_, s)| {
                matches!(s, TokenStub::Piv { serial, .. } if found.present.contains(serial))
            })
            .map(|(i, _)| i)
            .collect();
        if here.is_empty() {
            let expected = stubs
                .iter()
                .map(|s| s.describe())
                .collect::<Vec<_>>()
                .join(" or ");
            let otherwise = match found.present.as_slice() {
                [] => TokenError::Absent {
                    hint: format!("insert {expected}"),
                },
                p => TokenError::WrongToken {
                    found: p
                        .iter()
                        .map(|s| format!("YubiKey {s}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    expected: expected.clone(),
                },
            };
            return Err(found.missing(&expected, otherwise));
        }
        let (mut dead, mut failed) = (Vec::new(), None);
        for i in here {
            let token = PivToken::new(stubs[i], pin)?;
            match token.check_key() {
                Ok(()) => {
                    passed.extend(dead);
                    return Ok((i, token));
                }
                Err(e @ TokenError::KeyLost { .. }) => dead.push(e),
                // A card that failed to answer (try again) says more than a dead one.
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        let mut dead = dead.into_iter();
        let first = failed.or_else(|| dead.next());
        passed.extend(dead);
        Err(first.unwrap_or_else(|| TokenError::Other("internal: no YubiKey was tried".into())))
    }

    /// The token for `stub`, not yet checked against its card.
    fn new(stub: &TokenStub, pin: Option<&SecretString>) -> Result<PivToken, TokenError> {
        let TokenStub::Piv { serial, slot, .. } = stub else {
            return Err(TokenError::Other("internal: not a PIV stub".into()));
        };
        let slot = SlotId::try_from(*slot)
            .map_err(|_| TokenError::Other(format!("a keyslot names an invalid PIV slot {slot:#x}: the keyslot file is damaged; remove it with `tapsign token remove` and enroll the key again")))?;
        Ok(PivToken {
            stub: stub.clone(),
            serial: *serial,
            slot,
            pin: pin.map(|p| SecretString::from_str_copy(p.expose())),
            reader: None,
        })
    }

    /// The slot must still hold the enrolled key (a regenerated slot would fail only after the
    /// touch otherwise). Metadata needs neither PIN nor touch; old firmware cannot tell.
    ///
    /// Only a P-256 key that is not the enrolled one, or another kind of key, is "another
    /// key": a metadata answer with no public key or one that does not parse is the card's
    /// (or its reader's) fault, and said so. It was taken for a regenerated slot, with advice
    /// to `token remove` a good token (red-team round 25).
    fn check_key(&self) -> Result<(), TokenError> {
        let mut yk = open_serial(self.serial)?;
        let meta = call(self.serial, "its slot metadata", || {
            piv::metadata(&mut yk, self.slot)
        });
        leave(yk);
        match meta? {
            Ok(meta) => match meta.algorithm {
                SlotAlgorithmId::Asymmetric(AlgorithmId::EccP256) => self.same_key(
                    meta.public.as_ref().map(|spki| spki.subject_public_key.raw_bytes()),
                ),
                SlotAlgorithmId::Asymmetric(_) => Err(self.key_lost("holds another kind of key in that slot than the P-256 key enrolled (regenerated or overwritten since)")),
                // No algorithm read (a retired slot holds only asymmetric keys).
                _ => Err(malformed(self.serial, "its slot metadata (no key algorithm)")),
            },
            Err(yubikey::Error::NotFound) => Err(self.key_lost("has that slot empty (its key deleted, or the card's PIV applet reset, since it was enrolled)")),
            Err(yubikey::Error::NotSupported) => Ok(()),
            Err(e) => Err(card_error(e, self.serial)),
        }
    }

    /// Whether the P-256 key the slot metadata reports (`public`, SEC1) is the enrolled one.
    fn same_key(&self, public: Option<&[u8]>) -> Result<(), TokenError> {
        let public = public.and_then(|p| PublicKey::from_sec1_bytes(p).ok());
        let Some(public) = public else {
            return Err(malformed(
                self.serial,
                "its slot metadata (no P-256 public key)",
            ));
        };
        let now = hex::encode(public.to_sec1_point(true).as_bytes());
        if Some(now) != self.stub.ecdh_public_key().map(hex::encode) {
            return Err(self.key_lost("holds another key in that slot than the one enrolled (regenerated or overwritten since)"));
        }
        Ok(())
    }

    /// The card with the enrolled serial is there, but its slot no longer holds the enrolled
    /// key: `slot` says how. A second card with the same serial cannot be told apart (the
    /// card is opened by serial, the first one found), so that is said too.
    fn key_lost(&self, slot: &str) -> TokenError {
        let id = self.stub.id();
        TokenError::KeyLost {
            what: format!(
                "{} {slot}, so it is not the token enrolled as {id} (if another card with serial {} is plugged in, tapsign may have asked that one: unplug it and try again)",
                self.stub.describe(),
                self.serial
            ),
            remove: format!("`tapsign token remove {id}`"),
            other: String::new(),
        }
    }

    fn needs_pin(&self) -> bool {
        matches!(&self.stub, TokenStub::Piv { pin_policy, .. } if pin_policy != "never")
    }
}

impl Token for PivToken {
    fn stub(&self) -> &TokenStub {
        &self.stub
    }

    fn reader(&self) -> Option<String> {
        self.reader.clone()
    }

    fn agree(&mut self, challenge: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        // The card takes the peer point uncompressed (65 bytes); keyslots may store it compressed.
        let peer = PublicKey::from_sec1_bytes(challenge).map_err(|_| {
            TokenError::Other("the keyslot's ephemeral key is not a P-256 point: the keyslot file is damaged; remove it with `tapsign token remove` and enroll the token again".into())
        })?;
        let point = peer.to_sec1_point(false);
        let yk = open_serial(self.serial)?;
        let reader = yk.name().to_owned();
        leave(yk);
        self.reader = Some(reader.clone());
        let pin = match self.needs_pin() {
            true => Some(self.pin.as_ref().ok_or_else(|| TokenError::PinNeeded {
                token: format!("YubiKey {}", self.serial),
            })?),
            false => None,
        };
        let (serial, slot) = (self.serial, u8::from(self.slot));
        // The card alone, one transaction from the PIN check to the reset: no other program's
        // command is served with the PIN verified here (red-team round 26, F4 and recheck).
        holding(serial, &reader, |card| {
            if let Some(pin) = pin {
                // Any local client can start an unlock: never let one spend the last PIN try
                // and block the card.
                if card.pin_tries()? == 1 {
                    return Err(TokenError::PinLastTry {
                        token: format!("YubiKey {serial}"),
                        fix: "verify the PIN once with `yubico-piv-tool -a verify-pin` to reset the count, then unlock again".into(),
                    });
                }
                card.verify_pin(pin)?;
            }
            pause_for_tests();
            say!("tapsign: touch YubiKey {serial} now");
            card.ecdh(slot, point.as_bytes())
        })
    }
}

/// A card or PC/SC failure, with a hint at the fix. Never carries the PIN or key material.
pub fn card_error(e: yubikey::Error, serial: u32) -> TokenError {
    use pcsc::Error as P;
    let which = if serial == 0 {
        "the YubiKey".to_owned()
    } else {
        format!("YubiKey {serial}")
    };
    match e {
        yubikey::Error::PcscError { inner: Some(P::NoService | P::ServiceStopped | P::NoReadersAvailable) } => TokenError::Unavailable {
            hint: "the PC/SC daemon (pcscd) is not running or has no reader: start it (`sudo systemctl start pcscd.socket`) and plug the YubiKey in".into(),
        },
        yubikey::Error::PcscError { inner: Some(P::CommError) } => TokenError::Unavailable {
            hint: "the connection to pcscd broke (was it restarted?): try again".into(),
        },
        yubikey::Error::PcscError { inner: Some(P::RemovedCard | P::ResetCard | P::NoSmartcard | P::UnknownReader | P::ReaderUnavailable) } => {
            TokenError::Absent { hint: format!("{which} was removed: insert it and try again") }
        }
        yubikey::Error::PcscError { inner: Some(P::SharingViolation) } => TokenError::InUse { token: which },
        yubikey::Error::NotFound => TokenError::Absent { hint: format!("insert {which}") },
        // A card pulled mid-operation surfaces as a bare GenericError from the crate, whatever
        // the operation: ask PC/SC whether it is still there before blaming anything else.
        yubikey::Error::GenericError
            if serial != 0 && !present_serials().is_ok_and(|p| p.contains(&serial)) =>
        {
            TokenError::Absent { hint: format!("{which} was removed during the operation: insert it and try again") }
        }
        other => TokenError::Other(format!("{which}: {other} (if this persists, check the card with `ykman piv info`)")),
    }
}
