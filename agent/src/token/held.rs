//! A YubiKey held for one PIN use: connected to alone (`SCARD_SHARE_EXCLUSIVE`), in one PC/SC
//! transaction from the PIV applet's SELECT, through the PIN check and the ECDH, to the card
//! reset that ends it.
//!
//! A card's PIN-verified state belongs to the card, not to a PC/SC handle. The `yubikey` crate
//! makes each command its own transaction on a shared connection, so between the end of its
//! VERIFY and the reset on drop, any other program's command reached the card and was served
//! with the PIN tapsign had verified: a program running as the trader, with no PIN, did its own
//! ECDH on the keystore's slot during an ordinary unlock and took the vault key (red-team round
//! 26). A transaction on a shared connection was not enough either: pcscd checks another
//! handle's transaction (`RFCheckSharing`) before its command waits for the reader, so a
//! command that passed that check just before the transaction began ran inside it, after the
//! VERIFY (red-team round 26, recheck). So the card is connected to exclusively, which pcscd
//! grants only while no other handle is connected to it (pcsc-lite `winscard.c`,
//! `SCardConnect`: `SCARD_E_SHARING_VIOLATION` unless `contexts` is
//! `PCSCLITE_SHARING_NO_CONTEXT`; and it refuses every other connect while the exclusive handle
//! lives). With no other handle, no other program's command is queued or can be sent until
//! the exclusive handle is gone, and `SCardDisconnect` resets the card before it clears the
//! exclusive mark (`contexts = PCSCLITE_SHARING_NO_CONTEXT` comes after `IFDPowerICC`), which
//! is also what pcscd does for a client that dies holding it. The transaction and the reset
//! at its end are kept: the reset comes before the lock is released either way.
//!
//! The cost: while another program has the card open (gpg's scdaemon, a YubiKey manager, a
//! browser), tapsign cannot use it for a PIN, and says so ([`TokenError::InUse`]) rather than
//! waiting: other programs' brief probes are waited out for [`ALONE_WAIT`]. See
//! firmware-notes/session-state.md.
//!
//! The crate's transaction type is crate-private, so the few commands a PIN use needs (SELECT,
//! GET SERIAL, VERIFY, the ECDH) are sent here as the crate would send them; the management
//! key's (its metadata, the data objects that store it, SET MANAGEMENT KEY) in [`super::mgm`].

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode, Transaction};
use yubikey::{MgmAlgorithmId, MgmKey, PinPolicy};
use zeroize::Zeroizing;

use super::TokenError;
use super::piv::{card_error, present_serials};
use super::readers::malformed;
use crate::secret::SecretString;

const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
const GET_SERIAL: [u8; 5] = [0x00, 0xF8, 0x00, 0x00, 0x00];
/// A card sends a long answer in pieces (`61xx`); four is more than any answer here.
const PIECES: usize = 4;
/// GET RESPONSE: the next piece of a long answer (`61xx`).
const GET_RESPONSE: [u8; 5] = [0x00, 0xC0, 0x00, 0x00, 0x00];
/// VERIFY with no data: the card answers `63 Cx`, x the PIN tries left, and spends none.
const PIN_TRIES: [u8; 5] = [0x00, 0x20, 0x00, 0x80, 0x00];

/// YubiKey `serial` in reader `reader`, inside the transaction that holds it.
pub(super) struct HeldCard<'c> {
    tx: Transaction<'c>,
    serial: u32,
    /// An answer could not be read (see [`HeldCard::unreadable`]).
    unread: Cell<bool>,
}

/// How long [`holding`] keeps asking for the card to itself while another program has it
/// open: long enough to wait out another program's look at the card (a scan, a status query,
/// a few commands), short enough that a program keeping it open is said at once. pcscd also
/// makes a connect wait, with no bound, while another handle holds a transaction
/// (`SCardConnect`'s "Waiting for release of lock"): that wait counts against this bound too.
pub(super) const ALONE_WAIT: Duration = Duration::from_secs(3);

/// Run `f` with YubiKey `serial` (in PC/SC reader `reader`) held: connected to alone, inside
/// one transaction, so nothing another program sends reaches the card until `f` is done and
/// the card has been reset. The card in the reader must still be that YubiKey (its serial is
/// read inside the transaction). Refused with [`TokenError::InUse`], before anything is sent,
/// when another program keeps the card open for longer than [`ALONE_WAIT`].
pub(super) fn holding<T>(
    serial: u32,
    reader: &str,
    f: impl FnOnce(&mut HeldCard<'_>) -> Result<T, TokenError>,
) -> Result<T, TokenError> {
    let pcsc = |e: pcsc::Error| card_error(yubikey::Error::PcscError { inner: Some(e) }, serial);
    let name = CString::new(reader)
        .map_err(|_| TokenError::Other(format!("PC/SC reader name {reader:?} has a NUL byte")))?;
    let mut card = connect_alone(&name, serial)?;
    let (result, unread, ended) = {
        let tx = card.transaction().map_err(pcsc)?;
        let mut held = HeldCard {
            tx,
            serial,
            unread: Cell::new(false),
        };
        let result = held.open().and_then(|()| f(&mut held));
        // The reset comes inside the transaction: a PIN verified above never reaches another
        // client.
        let HeldCard { tx, unread, .. } = held;
        let ended = match tx.end(Disposition::ResetCard) {
            Ok(()) => true,
            // pcscd releases the lock even when the reset failed; the handle is still the
            // only one on the card, so the disconnect below resets it before anyone else can
            // connect.
            Err((tx, _)) => {
                drop(tx);
                false
            }
        };
        (result, unread.get(), ended)
    };
    let disposition = match ended {
        true => Disposition::LeaveCard,
        false => Disposition::ResetCard,
    };
    // On failure the handle comes back and is dropped, which resets the card too.
    if let Err((card, _)) = card.disconnect(disposition) {
        drop(card);
    }
    // A card pulled during a command leaves no answer to read: the trader needs to hear
    // "removed", as the crate's path said. Asked only now: looking for the card opens it,
    // which would wait for the transaction held above.
    if unread && !present_serials().is_ok_and(|p| p.contains(&serial)) {
        return Err(TokenError::Absent {
            hint: format!(
                "YubiKey {serial} was removed during the operation: insert it and try again"
            ),
        });
    }
    result
}

/// Connect to `reader` exclusively, as [`connect_exclusive`] does, with its refusals said of
/// YubiKey `serial`.
fn connect_alone(reader: &CStr, serial: u32) -> Result<Card, TokenError> {
    match connect_exclusive(reader, Protocols::T1) {
        Ok(card) => Ok(card),
        Err(NotAlone::Held) => Err(TokenError::InUse {
            token: format!("YubiKey {serial}"),
        }),
        Err(NotAlone::Pcsc(e)) => Err(card_error(
            yubikey::Error::PcscError { inner: Some(e) },
            serial,
        )),
        Err(NotAlone::Lost) => Err(TokenError::Other(
            "internal: the PC/SC connect thread ended without an answer".into(),
        )),
    }
}

/// Why [`connect_exclusive`] has no card.
pub(super) enum NotAlone {
    /// Another program kept the card open (or held a transaction on it) past [`ALONE_WAIT`].
    Held,
    /// PC/SC refused the connect otherwise (no card, pcscd gone, ...).
    Pcsc(pcsc::Error),
    /// The connect's thread ended without an answer.
    Lost,
}

/// Connect to `reader` exclusively, retrying while another program has the card open, for
/// [`ALONE_WAIT`] at most. The connect runs on a thread of its own: pcscd makes it wait, with
/// no bound, for another handle's transaction to end (a program holding one made an unlock
/// wait silently for as long as it liked, red-team round 26, recheck). A connect that
/// succeeds after the bound is let go of, unused. The PIV hold and the FIDO2 path both take
/// the card so (fido2/pcsc.rs).
pub(super) fn connect_exclusive(reader: &CStr, protocols: Protocols) -> Result<Card, NotAlone> {
    let (send, got) = mpsc::channel();
    let name = reader.to_owned();
    let until = Instant::now() + ALONE_WAIT;
    std::thread::spawn(move || {
        let connected = Context::establish(Scope::User).and_then(|ctx| {
            loop {
                match ctx.connect(&name, ShareMode::Exclusive, protocols) {
                    Err(pcsc::Error::SharingViolation) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    other => break other,
                }
            }
        });
        if let Err(mpsc::SendError(Ok(card))) = send.send(connected) {
            // Too late: the caller has said the card is in use. Nothing was sent to it.
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    });
    let wait = until.saturating_duration_since(Instant::now()) + Duration::from_millis(500);
    match got.recv_timeout(wait) {
        Ok(Ok(card)) => Ok(card),
        Ok(Err(pcsc::Error::SharingViolation)) | Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(NotAlone::Held)
        }
        Ok(Err(e)) => Err(NotAlone::Pcsc(e)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(NotAlone::Lost),
    }
}

impl HeldCard<'_> {
    /// SELECT the PIV applet and check the card is still YubiKey `serial`.
    fn open(&mut self) -> Result<(), TokenError> {
        let (_, sw) = self.send(&SELECT_PIV, "the PIV applet's SELECT")?;
        if sw != 0x9000 {
            return Err(self.refused("the PIV applet's SELECT", sw));
        }
        let (data, sw) = self.send(&GET_SERIAL, "its serial")?;
        if sw != 0x9000 {
            return Err(self.refused("its serial", sw));
        }
        let read =
            <[u8; 4]>::try_from(data.as_slice()).map_err(|_| self.unreadable("its serial"))?;
        if u32::from_be_bytes(read) != self.serial {
            return Err(TokenError::Removed {
                token: format!("YubiKey {}", self.serial),
            });
        }
        Ok(())
    }

    /// The PIN tries left, read without spending one.
    pub(super) fn pin_tries(&mut self) -> Result<u8, TokenError> {
        match self.send(&PIN_TRIES, "the PIN retry count")? {
            (_, sw) if sw & 0xFFF0 == 0x63C0 => Ok((sw & 0x0F) as u8),
            (_, 0x6983) => Ok(0),
            (_, sw) => Err(self.refused("the PIN retry count", sw)),
        }
    }

    /// VERIFY the PIN (padded with FF to 8 bytes, as the card wants it).
    pub(super) fn verify_pin(&mut self, pin: &SecretString) -> Result<(), TokenError> {
        let token = format!("YubiKey {}", self.serial);
        let pin = pin.expose().as_bytes();
        if pin.len() > 8 {
            return Err(TokenError::Other(format!(
                "a YubiKey PIN has at most 8 characters: check the PIN of {token}"
            )));
        }
        // Its whole size up front: a Vec that grows copies the PIN into a new buffer and frees
        // the old one unwiped.
        let mut apdu = Zeroizing::new(Vec::with_capacity(13));
        apdu.extend_from_slice(&[0x00, 0x20, 0x00, 0x80, 0x08]);
        apdu.extend_from_slice(pin);
        apdu.resize(13, 0xFF);
        match self.send(&apdu, "the PIN check")? {
            (_, 0x9000) => Ok(()),
            (_, 0x6983 | 0x63C0) => Err(TokenError::PinBlocked {
                token,
                fix: "unblock it with the PUK (`ykman piv access unblock-pin`), then try again"
                    .into(),
            }),
            (_, sw) if sw & 0xFFF0 == 0x63C0 => Err(TokenError::PinInvalid {
                token,
                tries_left: u32::from(sw & 0x0F),
            }),
            (_, sw) => Err(self.refused("the PIN check", sw)),
        }
    }

    /// Authenticate with the PIV management key `key` (mutual: the card proves it holds the
    /// key too), as the crate's `YubiKey::authenticate` does. `Ok(false)`: the card refused
    /// the key (or did not prove it holds it). The authenticated state is the card's, like the
    /// verified PIN, so it is only ever reached here, on the card held alone and reset after.
    pub(super) fn authenticate(&mut self, key: &MgmKey) -> Result<bool, TokenError> {
        let what = "the management-key authentication";
        let alg = u8::from(key.algorithm_id());
        let block = match key.algorithm_id() {
            MgmAlgorithmId::ThreeDes => 8,
            _ => 16,
        };
        let head = [0x00, 0x87, alg, 0x9B];
        let mut ask = head.to_vec();
        ask.extend_from_slice(&[0x04, 0x7C, 0x02, 0x80, 0x00]);
        let (data, sw) = self.send(&ask, what)?;
        if sw != 0x9000 {
            return Ok(false);
        }
        // 7C len 80 n witness: the card's challenge, encrypted with the key.
        let witness = match data.as_slice() {
            [0x7C, _, 0x80, n, rest @ ..] if usize::from(*n) == block && rest.len() == block => {
                rest
            }
            _ => return Err(self.unreadable(what)),
        };
        let mut answer = Zeroizing::new(witness.to_vec());
        mgm_block(key, &mut answer, false)?;
        let mut challenge = Zeroizing::new(vec![0u8; block]);
        getrandom::fill(&mut challenge)
            .map_err(|e| TokenError::Other(format!("random number generator failed: {e}")))?;
        let n = block as u8;
        // Sized up front, as the PIN's VERIFY: growing would leave the answer in a freed buffer.
        let mut reply = Zeroizing::new(Vec::with_capacity(head.len() + 7 + 2 * block));
        reply.extend_from_slice(&head);
        reply.extend_from_slice(&[6 + 2 * n, 0x7C, 4 + 2 * n, 0x80, n]);
        reply.extend_from_slice(&answer);
        reply.extend_from_slice(&[0x81, n]);
        reply.extend_from_slice(&challenge);
        let (data, sw) = self.send(&reply, what)?;
        if sw != 0x9000 {
            return Ok(false);
        }
        let proof = match data.as_slice() {
            [0x7C, _, 0x82, n, rest @ ..] if usize::from(*n) == block && rest.len() == block => {
                rest
            }
            _ => return Err(self.unreadable(what)),
        };
        let mut expected = Zeroizing::new(challenge.to_vec());
        mgm_block(key, &mut expected, true)?;
        Ok(expected.as_slice() == proof)
    }

    /// GENERATE a P-256 key in `slot` with PIN policy `pin` and touch policy Always (the card
    /// must be authenticated with the management key): the card's answer (`7F49 ...`), or the
    /// status word it refused with.
    pub(super) fn generate_p256(
        &mut self,
        slot: u8,
        pin: PinPolicy,
    ) -> Result<Result<Zeroizing<Vec<u8>>, u16>, TokenError> {
        let mut template = vec![0xAC, 0x03, 0x80, 0x01, 0x11];
        if pin != PinPolicy::Default {
            template.extend_from_slice(&[0xAA, 0x01, u8::from(pin)]);
        }
        template.extend_from_slice(&[0xAB, 0x01, 0x02]);
        template[1] = (template.len() - 2) as u8;
        let mut apdu = vec![0x00, 0x47, 0x00, slot, template.len() as u8];
        apdu.extend_from_slice(&template);
        apdu.push(0x00);
        match self.send(&apdu, "the key generation")? {
            (data, 0x9000) => Ok(Ok(data)),
            (_, sw) => Ok(Err(sw)),
        }
    }

    /// The ECDH of the P-256 key in `slot` with `point` (SEC1 uncompressed, 65 bytes): the
    /// shared X coordinate. `6982` is the touch not given in time: the caller has verified the
    /// PIN (or the key needs none).
    pub(super) fn ecdh(
        &mut self,
        slot: u8,
        point: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let what = "the ECDH";
        let point_len = u8::try_from(point.len()).ok().filter(|n| *n == 65);
        let Some(n) = point_len else {
            return Err(TokenError::Other(
                "internal: the ECDH point is not 65 bytes".into(),
            ));
        };
        // GENERAL AUTHENTICATE: 7C { 82 (empty: the answer), 85 (the peer point) }.
        let mut apdu = vec![
            0x00,
            0x87,
            0x11,
            slot,
            n + 6,
            0x7C,
            n + 4,
            0x82,
            0x00,
            0x85,
            n,
        ];
        apdu.extend_from_slice(point);
        apdu.push(0x00);
        let (data, sw) = self.send(&apdu, what)?;
        match sw {
            0x9000 => {}
            0x6982 => return Err(TokenError::TouchTimeout { secs: 15 }),
            sw => return Err(self.refused(what, sw)),
        }
        let shared = match data.as_slice() {
            [0x7C, 0x22, 0x82, 0x20, rest @ ..] if rest.len() == 32 => rest,
            _ => return Err(self.unreadable(what)),
        };
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared);
        Ok(out)
    }

    /// Send `apdu`; the answer's data (with every `61xx` piece fetched) and status word. The
    /// buffers are wiped on drop: an ECDH answer is the keystore's key material.
    pub(super) fn send(
        &mut self,
        apdu: &[u8],
        what: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, u16), TokenError> {
        // Room for every piece up front: growing would leave the earlier ones in a freed buffer.
        let mut data = Zeroizing::new(Vec::with_capacity(PIECES * 256));
        let mut buf = Zeroizing::new([0u8; 258]);
        // Borrowed, not copied: the APDU may carry the PIN or the management-key answer,
        // which only its caller's wiped buffer holds.
        let mut next = apdu;
        for _ in 0..PIECES {
            let got = self.tx.transmit(next, &mut buf[..]).map_err(|e| {
                card_error(yubikey::Error::PcscError { inner: Some(e) }, self.serial)
            })?;
            let Some((body, sw)) = got.split_last_chunk::<2>() else {
                return Err(self.unreadable(what));
            };
            data.extend_from_slice(body);
            match *sw {
                [0x61, _] => next = &GET_RESPONSE,
                sw => return Ok((data, u16::from_be_bytes(sw))),
            }
        }
        Err(self.unreadable(what))
    }

    /// The answer to `what` could not be read: the card garbled it, or was pulled during it
    /// (the reader then gives back nothing). Which one is asked once the card is let go of.
    pub(super) fn unreadable(&self, what: &str) -> TokenError {
        self.unread.set(true);
        malformed(self.serial, what)
    }

    /// The card answered `what` with status word `sw`, not a success.
    pub(super) fn refused(&self, what: &str, sw: u16) -> TokenError {
        TokenError::Other(format!(
            "YubiKey {} refused {what} (status {sw:04X}): try again; if it repeats, check the card with `ykman piv info`",
            self.serial
        ))
    }
}

/// One block of `key`'s cipher over `block`, in place: encrypt, or decrypt.
fn mgm_block(key: &MgmKey, block: &mut [u8], encrypt: bool) -> Result<(), TokenError> {
    use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
    fn run<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
        key: &[u8],
        block: &mut [u8],
        encrypt: bool,
    ) -> Option<()> {
        let cipher = C::new_from_slice(key).ok()?;
        let block = block.try_into().ok()?;
        match encrypt {
            true => cipher.encrypt_block(block),
            false => cipher.decrypt_block(block),
        }
        Some(())
    }
    let bytes = key.as_ref();
    let done = match key.algorithm_id() {
        MgmAlgorithmId::ThreeDes => run::<des::TdesEde3>(bytes, block, encrypt),
        MgmAlgorithmId::Aes128 => run::<aes::Aes128>(bytes, block, encrypt),
        MgmAlgorithmId::Aes192 => run::<aes::Aes192>(bytes, block, encrypt),
        MgmAlgorithmId::Aes256 => run::<aes::Aes256>(bytes, block, encrypt),
    };
    done.ok_or_else(|| {
        TokenError::Other("internal: the management key does not fit its cipher".into())
    })
}

/// Tests only, in debug builds: `TAPSIGN_TEST_PIV_PAUSE_MS` makes a PIN use wait that long (at
/// most 10 s) between the PIN check and the ECDH, so a test can send another program's
/// command in what was the gap between the two. Release builds do not read it.
pub(super) fn pause_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("TAPSIGN_TEST_PIV_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
    }
}
