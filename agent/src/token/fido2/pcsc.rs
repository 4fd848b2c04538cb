//! FIDO2 over PC/SC: the CTAP 2.1 NFC binding (§11.3) on ISO 7816-4 APDUs, for NFC readers
//! (and the virtual key in tests).
//!
//! - SELECT the FIDO applet (AID A0 00 00 06 47 2F 00 01). Its answer ("U2F_V2" or
//!   "FIDO_2_0") says little: YubiKeys answer U2F_V2 and speak CTAP2, so getInfo decides.
//! - NFCCTAP_MSG (80 10 80 00): the CTAP request; P1 = 80 says we poll with
//!   NFCCTAP_GETRESPONSE (80 11 00 00) while the authenticator answers 91 00 (processing, or
//!   waiting for a touch), instead of blocking the reader.
//! - Requests longer than 255 bytes go as a command chain (CLA | 10 on all but the last block);
//!   long answers come in parts: 61 xx, fetched with GET RESPONSE (00 C0 00 00 xx).
//!
//! The search connects to each reader's card shared, to read getInfo: a card that is not a
//! FIDO2 key, or that another program keeps open, is not taken from anyone. From the first
//! operation on a FIDO2 key found (the silent probe, the PIN retries, the assertion), tapsign
//! holds the card alone, as the PIV path does (`token/held.rs`): connected to exclusively
//! (within 3 s, else `busy`), until it is let go of, with a reset when a PIN was used. With the
//! card shared, another program's command could come between getKeyAgreement and
//! getPinUvAuthToken (a wrong-PIN request that regenerates the key agreement key made the
//! right PIN fail as wrong, and the trader blame their typing), or spend a PIN try between the
//! retries read and the PIN's use; nothing it could read, since CTAP encrypts the PIN, the PIN
//! token and the hmac-secret output to the ECDH secret (red-team round 27). Each operation
//! also runs in one transaction with the applet freshly selected.
//!
//! pcscd makes a connect, and libpcsclite a transaction's begin, wait with no bound while
//! another program holds a transaction: every wait for the card here is bounded by
//! [`ALONE_WAIT`] (red-team round 27: an unlock waited silently for as long as another program
//! held one).

use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode};

use super::client::{self, Channel};
use super::ctap::Info;
use super::device::{
    Asserted, AssertionRequest, Authenticator, Location, Registered, Registration, Unreached,
};
use super::error::Fido2Error;
use super::pin_protocol::Protocol;
use crate::token::held::{ALONE_WAIT, NotAlone, connect_exclusive};

/// The FIDO applet's AID (CTAP 2.1 §11.3.3).
pub const FIDO_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01];
/// How often to poll while the authenticator works or waits for a touch.
const POLL: Duration = Duration::from_millis(100);
/// Authenticators give up on a touch after about 30 s; this only stops a wedged one.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The largest data field of a short APDU.
const SHORT: usize = 255;

const SW_OK: u16 = 0x9000;
const SW_UPDATE: u16 = 0x9100;

/// One exchange's failure, before it is known whether it matters.
enum Raw {
    Pcsc(pcsc::Error),
    Sw(u16),
}

/// APDUs to one card, inside a transaction.
struct Apdus<'a> {
    card: &'a Card,
}

impl Apdus<'_> {
    /// Send one APDU; gather a long answer with GET RESPONSE. Returns data and status word.
    fn transmit(&self, apdu: &[u8]) -> Result<(Vec<u8>, u16), pcsc::Error> {
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let mut data = Vec::new();
        let mut next = apdu.to_vec();
        loop {
            let answer = self.card.transmit(&next, &mut buf)?;
            let Some((body, sw)) = answer.split_last_chunk::<2>() else {
                return Err(pcsc::Error::InvalidValue);
            };
            data.extend_from_slice(body);
            let sw = u16::from_be_bytes(*sw);
            if sw >> 8 != 0x61 {
                return Ok((data, sw));
            }
            next = vec![0x00, 0xC0, 0x00, 0x00, sw as u8];
        }
    }

    /// One command, chained into short APDUs when the data is long.
    fn command(
        &self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<(Vec<u8>, u16), Raw> {
        let mut chunks = data.chunks(SHORT).peekable();
        while let Some(chunk) = chunks.next() {
            if chunks.peek().is_none() {
                return self.last(cla, ins, p1, p2, chunk).map_err(Raw::Pcsc);
            }
            let mut apdu = vec![cla | 0x10, ins, p1, p2, chunk.len() as u8];
            apdu.extend_from_slice(chunk);
            match self.transmit(&apdu).map_err(Raw::Pcsc)? {
                (_, SW_OK) => {}
                (_, sw) => return Err(Raw::Sw(sw)),
            }
        }
        self.last(cla, ins, p1, p2, &[]).map_err(Raw::Pcsc)
    }

    fn last(
        &self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        chunk: &[u8],
    ) -> Result<(Vec<u8>, u16), pcsc::Error> {
        let mut apdu = vec![cla, ins, p1, p2];
        if !chunk.is_empty() {
            apdu.push(chunk.len() as u8);
            apdu.extend_from_slice(chunk);
        }
        apdu.push(0x00); // Le: up to 256 bytes, the rest through 61 xx
        self.transmit(&apdu)
    }

    fn select(&self) -> Result<(), Raw> {
        match self.command(0x00, 0xA4, 0x04, 0x00, &FIDO_AID)? {
            (_, SW_OK) => Ok(()),
            (_, sw) => Err(Raw::Sw(sw)),
        }
    }
}

impl Apdus<'_> {
    /// A failed exchange; a card pulled mid-way shows up as assorted PC/SC errors (pcscd
    /// reports a transaction that no longer exists, for one), so ask whether it is still there.
    fn failed(&self, e: Raw) -> Fido2Error {
        match raw_error(e) {
            Fido2Error::Transport(_) if card_gone(self.card) => Fido2Error::Removed,
            other => other,
        }
    }
}

/// Whether the card left. Asked after a failure, so it may look a little while: pcscd notices
/// a removal on its next poll (~0.4 s), and an answer cut short can come before that.
fn card_gone(card: &Card) -> bool {
    for _ in 0..10 {
        let gone = match card.status2_owned() {
            Ok(s) => !s.status().contains(pcsc::Status::PRESENT),
            Err(e) => pcsc_error(e) == Fido2Error::Removed,
        };
        if gone {
            return true;
        }
        sleep(POLL);
    }
    false
}

impl Channel for Apdus<'_> {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, Fido2Error> {
        let (mut data, mut sw) = self
            .command(0x80, 0x10, 0x80, 0x00, request)
            .map_err(|e| self.failed(e))?;
        let start = Instant::now();
        while sw == SW_UPDATE {
            if start.elapsed() > MAX_WAIT {
                return Err(Fido2Error::Timeout(MAX_WAIT.as_secs()));
            }
            sleep(POLL);
            (data, sw) = self
                .command(0x80, 0x11, 0x00, 0x00, &[])
                .map_err(|e| self.failed(e))?;
        }
        match sw {
            SW_OK => Ok(data),
            sw => Err(raw_error(Raw::Sw(sw))),
        }
    }
}

fn raw_error(e: Raw) -> Fido2Error {
    match e {
        Raw::Pcsc(e) => pcsc_error(e),
        Raw::Sw(sw) => Fido2Error::Transport(format!(
            "the card refused a FIDO2 command (status word {sw:04X})"
        )),
    }
}

/// A PC/SC failure: a card that left is [`Fido2Error::Removed`]; pcscd down says so. A card
/// another program reset is still there: [`PcscAuthenticator::run`] reconnects to it once
/// before an operation, and one reset during an operation is said as such, not as a removal.
pub fn pcsc_error(e: pcsc::Error) -> Fido2Error {
    use pcsc::Error as P;
    match e {
        P::ResetCard => Fido2Error::Transport(
            "another program reset the card during the operation: try again (if it keeps happening, stop the other smart-card program, e.g. `gpgconf --kill scdaemon`)".into(),
        ),
        P::RemovedCard
        | P::NoSmartcard
        | P::UnknownReader
        | P::ReaderUnavailable
        | P::UnpoweredCard => Fido2Error::Removed,
        P::NoService | P::ServiceStopped | P::NoReadersAvailable | P::CommError => {
            Fido2Error::Unavailable(format!(
                "the PC/SC daemon (pcscd) is not running or stopped ({e}): start it (`sudo systemctl start pcscd.socket`) and try again"
            ))
        }
        P::SharingViolation => Fido2Error::InUse,
        e => Fido2Error::Transport(format!("PC/SC failed: {e}")),
    }
}

/// A FIDO2 authenticator on a PC/SC reader.
pub struct PcscAuthenticator {
    card: Option<Card>,
    /// The reader's name, to connect to it again alone ([`PcscAuthenticator::hold_alone`]).
    reader: CString,
    location: Location,
    info: Info,
    /// The card is connected to exclusively: no other program's command reaches it.
    alone: bool,
    /// A PIN was used: reset the card when done, so no PIN token outlives the operation.
    used_pin: bool,
}

impl PcscAuthenticator {
    /// Hold the card alone, from the first operation until it is let go of (see the module's
    /// doc). The search's shared handle is let go and the card connected to again
    /// exclusively by `held.rs`'s [`connect_exclusive`], whose wait is bounded on a thread of
    /// its own: a reconnect of this handle, which stays with its caller, could not be. The
    /// card is asked nothing in between; a card swapped into the reader in that instant is
    /// asked only with the FIDO applet selected again, and refuses a credential it lacks.
    fn hold_alone(&mut self) -> Result<(), Fido2Error> {
        if self.alone {
            return Ok(());
        }
        if let Some(card) = self.card.take()
            && let Err((card, _)) = card.disconnect(Disposition::LeaveCard)
        {
            drop(card);
        }
        let card = connect_exclusive(&self.reader, Protocols::ANY).map_err(|e| match e {
            NotAlone::Held => Fido2Error::InUse,
            NotAlone::Pcsc(e) => pcsc_error(e),
            NotAlone::Lost => {
                Fido2Error::Transport("the PC/SC connect thread ended without an answer".into())
            }
        })?;
        self.card = Some(card);
        self.alone = true;
        Ok(())
    }

    /// Run `f` on the card, held alone, in one transaction, the FIDO applet selected. A card
    /// reset by another program since the last operation is reconnected to, once.
    fn run<R>(
        &mut self,
        mut f: impl FnMut(&mut dyn Channel, &Info) -> Result<R, Fido2Error>,
    ) -> Result<R, Fido2Error> {
        self.hold_alone()?;
        let mut reconnected = false;
        loop {
            let card = self.card.as_mut().ok_or(Fido2Error::Removed)?;
            let tx = match card.transaction2() {
                Ok(tx) => tx,
                // Another handle reset the card since this one last spoke to it (the PIV
                // side of the same YubiKey drops its handle with a reset): the card is there,
                // only this handle must be told. Red-team round 24: `token add --fido2` of
                // the card whose PIV applet had just opened the keystore failed as "removed".
                Err((card, pcsc::Error::ResetCard)) if !reconnected => {
                    card.reconnect(ShareMode::Exclusive, Protocols::ANY, Disposition::LeaveCard)
                        .map_err(pcsc_error)?;
                    reconnected = true;
                    continue;
                }
                Err((card, e)) => {
                    return Err(match pcsc_error(e) {
                        Fido2Error::Transport(_) if card_gone(card) => Fido2Error::Removed,
                        other => other,
                    });
                }
            };
            let mut ch = Apdus { card: &tx };
            match ch.select() {
                Ok(()) => return f(&mut ch, &self.info),
                Err(Raw::Pcsc(pcsc::Error::ResetCard)) if !reconnected => {
                    drop(tx);
                    card.reconnect(ShareMode::Exclusive, Protocols::ANY, Disposition::LeaveCard)
                        .map_err(pcsc_error)?;
                    reconnected = true;
                }
                Err(e) => return Err(raw_error(e)),
            }
        }
    }
}

impl Authenticator for PcscAuthenticator {
    fn location(&self) -> &Location {
        &self.location
    }

    fn info(&mut self) -> Result<Info, Fido2Error> {
        Ok(self.info.clone())
    }

    fn pin_retries(&mut self, protocol: Protocol) -> Result<u32, Fido2Error> {
        self.run(|ch, _| client::pin_retries(ch, protocol))
    }

    fn make_credential(&mut self, req: &Registration<'_>) -> Result<Registered, Fido2Error> {
        self.used_pin |= req.pin.is_some();
        self.run(|ch, info| client::make_credential(ch, info, req))
    }

    fn get_assertion(&mut self, req: &AssertionRequest<'_>) -> Result<Asserted, Fido2Error> {
        self.used_pin |= req.pin.is_some();
        self.run(|ch, info| client::get_assertion(ch, info, req))
    }
}

impl Drop for PcscAuthenticator {
    fn drop(&mut self) {
        // Leave other programs' card sessions alone unless a PIN token may linger.
        let how = if self.used_pin {
            Disposition::ResetCard
        } else {
            Disposition::LeaveCard
        };
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(how);
        }
    }
}

/// What [`devices`] found: the FIDO2 authenticators, and the cards that could not be asked.
pub type Searched = (Vec<Box<dyn Authenticator>>, Vec<Unreached>);

/// The FIDO2 authenticators on the PC/SC readers (only `only`, if given), and the cards that
/// could not be asked (another program holds them, pcscd went away). Err: why PC/SC could not
/// be searched at all.
pub fn devices(only: Option<&str>) -> Result<Searched, String> {
    let ctx = Context::establish(Scope::User).map_err(|e| match pcsc_error(e) {
        Fido2Error::Unavailable(hint) => format!("NFC readers were not searched: {hint}"),
        other => format!("NFC readers were not searched: {other}"),
    })?;
    let readers = match ctx.list_readers_owned() {
        Ok(r) => r,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(format!("NFC readers were not searched: {}", pcsc_error(e))),
    };
    if let Some(name) = only
        && !readers.iter().any(|r| r.to_bytes() == name.as_bytes())
    {
        let names: Vec<String> = readers
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        return Err(format!(
            "no PC/SC reader is named {name:?} (readers: {})",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ));
    }
    let mut out: Vec<Box<dyn Authenticator>> = Vec::new();
    let mut unreached = Vec::new();
    for reader in readers {
        if only.is_some_and(|n| reader.to_bytes() != n.as_bytes()) {
            continue;
        }
        match open(&reader) {
            Ok(Some(device)) => out.push(Box::new(device)),
            Ok(None) => {}
            Err(why) => unreached.push(Unreached {
                location: Location::Pcsc {
                    reader: reader.to_string_lossy().into_owned(),
                },
                why,
            }),
        }
    }
    Ok((out, unreached))
}

/// The reader's card, if it is a CTAP2 authenticator: `Ok(None)` for no card, or one that is
/// not ours (left as it was). A PC/SC failure that leaves the question open is the error:
/// another program holds the card ([`Fido2Error::InUse`]), pcscd went away
/// ([`Fido2Error::Unavailable`]). Every one was taken for "not a FIDO2 key here", and the
/// trader told to insert the key sitting in the reader (red-team round 27).
///
/// Asked on a thread of its own, for [`ALONE_WAIT`] at most: pcscd makes the connect, and
/// libpcsclite the transaction's begin, wait with no bound while another program holds a
/// transaction; past the bound the card is another program's ([`Fido2Error::InUse`]), and a
/// connect that comes later is let go of.
fn open(reader: &CStr) -> Result<Option<PcscAuthenticator>, Fido2Error> {
    let (send, got) = mpsc::channel();
    let name = reader.to_owned();
    std::thread::spawn(move || {
        if let Err(mpsc::SendError(Ok(Some((card, _))))) = send.send(connect_and_ask(&name)) {
            // Too late: the caller has said the card is in use.
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    });
    let (card, info) = match got.recv_timeout(ALONE_WAIT) {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => return Err(e),
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(Fido2Error::InUse),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(Fido2Error::Transport(
                "the PC/SC connect thread ended without an answer".into(),
            ));
        }
    };
    Ok(Some(PcscAuthenticator {
        card: Some(card),
        reader: reader.to_owned(),
        location: Location::Pcsc {
            reader: reader.to_string_lossy().into_owned(),
        },
        info,
        alone: false,
        used_pin: false,
    }))
}

/// [`open`]'s work: connect to the card shared, and ask for getInfo in a transaction.
fn connect_and_ask(reader: &CStr) -> Result<Option<(Card, Info)>, Fido2Error> {
    // What leaves the question open is said; anything else means this is no key of ours.
    let unsure = |e: Fido2Error| match e {
        Fido2Error::InUse | Fido2Error::Unavailable(_) => Err(e),
        _ => Ok(None),
    };
    let ctx = Context::establish(Scope::User).map_err(pcsc_error)?;
    let mut card = match ctx.connect(reader, ShareMode::Shared, Protocols::ANY) {
        Ok(card) => card,
        Err(e) => return unsure(pcsc_error(e)),
    };
    let info = match card.transaction() {
        Ok(tx) => {
            let mut ch = Apdus { card: &tx };
            match ch.select() {
                Ok(()) => client::info(&mut ch),
                Err(e) => Err(raw_error(e)),
            }
        }
        Err(e) => Err(pcsc_error(e)),
    };
    match info {
        Ok(info) => Ok(Some((card, info))),
        Err(e) => {
            // Not a CTAP2 authenticator: disconnect without the reset a plain drop would do.
            let _ = card.disconnect(Disposition::LeaveCard);
            unsure(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team round 24: a card another handle reset was reported "removed during the
    /// operation" while it sat in the reader.
    #[test]
    fn a_reset_card_is_not_a_removed_card() {
        assert_eq!(pcsc_error(pcsc::Error::RemovedCard), Fido2Error::Removed);
        let reset = pcsc_error(pcsc::Error::ResetCard);
        assert!(
            matches!(&reset, Fido2Error::Transport(m) if m.contains("reset the card")),
            "{reset:?}"
        );
    }
}
