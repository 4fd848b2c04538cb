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
//! Each operation runs in one PC/SC transaction with the applet freshly selected, so another
//! program cannot select something else between the PIN exchange and the request it unlocks.

use std::ffi::CString;
use std::thread::sleep;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode};

use super::client::{self, Channel};
use super::ctap::Info;
use super::device::{
    Asserted, AssertionRequest, Authenticator, Location, Registered, Registration,
};
use super::error::Fido2Error;
use super::pin_protocol::Protocol;

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
    location: Location,
    info: Info,
    /// A PIN was used: reset the card when done, so no PIN token outlives the operation.
    used_pin: bool,
}

impl PcscAuthenticator {
    /// Run `f` on the card in one transaction, the FIDO applet selected. A card reset by
    /// another program since the last operation is reconnected to, once.
    fn run<R>(
        &mut self,
        mut f: impl FnMut(&mut dyn Channel, &Info) -> Result<R, Fido2Error>,
    ) -> Result<R, Fido2Error> {
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
                    card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
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
                    card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
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

/// The FIDO2 authenticators on the PC/SC readers (only `only`, if given). Err: why PC/SC
/// could not be searched at all.
pub fn devices(only: Option<&str>) -> Result<Vec<Box<dyn super::device::Authenticator>>, String> {
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
    for reader in readers {
        if only.is_some_and(|n| reader.to_bytes() != n.as_bytes()) {
            continue;
        }
        if let Some(device) = open(&ctx, &reader) {
            out.push(Box::new(device));
        }
    }
    Ok(out)
}

/// The reader's card, if it is a CTAP2 authenticator. Anything else is not ours and is left
/// as it was.
fn open(ctx: &Context, reader: &CString) -> Option<PcscAuthenticator> {
    let mut card = ctx
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .ok()?;
    let info = card.transaction().ok().and_then(|tx| {
        let mut ch = Apdus { card: &tx };
        match ch.select() {
            Ok(()) => client::info(&mut ch).ok(),
            Err(_) => None,
        }
    });
    let Some(info) = info else {
        // Not a CTAP2 authenticator: disconnect without the reset a plain drop would do.
        let _ = card.disconnect(Disposition::LeaveCard);
        return None;
    };
    Some(PcscAuthenticator {
        card: Some(card),
        location: Location::Pcsc {
            reader: reader.to_string_lossy().into_owned(),
        },
        info,
        used_pin: false,
    })
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
