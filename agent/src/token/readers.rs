//! The PC/SC readers and the YubiKeys on them: finding the cards, opening one by serial,
//! letting go of a card that was only read, and calling the `yubikey` crate so that a card's
//! malformed answer is an error, never a panic.
//!
//! The crate slices some answers before checking their length: GET VERSION's three bytes,
//! read when it opens any card on any reader; a generated key's header; a slot's metadata;
//! the management-key challenge. One card that answered GET VERSION with a byte (a worn
//! contact, or another make's PIV applet answering the YubiKey-only command short) made every
//! command that looks for a YubiKey die with a backtrace, in any reader, and the agent's unlock
//! worker with it (red-team round 25). Every such call runs under [`unpanicked`]; the crate's
//! `open_by_serial`, which opens every card in turn, is replaced by [`open_serial`].

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use yubikey::YubiKey;

use super::TokenError;
use super::piv::card_error;

thread_local! {
    /// Set while this thread runs [`unpanicked`]: its panics are answered as errors, so the
    /// panic hook stays quiet (no backtrace under the error the trader reads).
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`, a call into the `yubikey` crate; `None` if it panicked. The panic hook says
/// nothing of such a panic: the caller turns it into an error naming the card. Panics
/// elsewhere, on any thread, are reported by the hook as before.
pub(super) fn unpanicked<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    // What `f` holds (a card handle) is dropped by the unwinding, and not used again.
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.ok()
}

/// [`unpanicked`] for a call that reads `what` from YubiKey `serial`: a panic is the error
/// that says the card answered with something that cannot be read. The crate's own result
/// comes back for the caller to map.
pub(super) fn call<T>(
    serial: u32,
    what: &str,
    f: impl FnOnce() -> Result<T, yubikey::Error>,
) -> Result<Result<T, yubikey::Error>, TokenError> {
    unpanicked(f).ok_or_else(|| malformed(serial, what))
}

/// YubiKey `serial` answered `what` with something too short or malformed to read.
pub(super) fn malformed(serial: u32, what: &str) -> TokenError {
    TokenError::Other(format!(
        "YubiKey {serial} answered {what} with data too short or malformed to read (the card or its reader garbled it): try again; if it repeats, take the card out and insert it again, and check it with `ykman piv info`"
    ))
}

/// What the PC/SC readers hold, as the PIV applet on each card answers.
#[derive(Default)]
pub(super) struct Readers {
    /// The serials of the YubiKeys found.
    pub present: Vec<u32>,
    /// Readers whose card another program holds exclusively (it may be the YubiKey asked
    /// for: no one can tell until it is freed).
    held: Vec<String>,
    /// Readers whose card answered the PIV applet's SELECT but not the YubiKey's GET VERSION
    /// and GET SERIAL as a YubiKey does (a faulty or half-inserted YubiKey, another make's PIV
    /// card): it may be the YubiKey asked for, so "insert it" would be wrong (red-team round
    /// 25: the card sitting in the reader was said "not present: insert it").
    unreadable: Vec<String>,
}

impl Readers {
    /// Why no YubiKey asked for (`wanted`) was found: a card held by another program, or one
    /// that could not be read, is said; else `otherwise`.
    pub fn missing(&self, wanted: &str, otherwise: TokenError) -> TokenError {
        if !self.held.is_empty() {
            return TokenError::InUse {
                token: format!("the card in PC/SC reader {}", self.held.join(", ")),
            };
        }
        match self.unreadable.as_slice() {
            [] => otherwise,
            readers => TokenError::Unreadable {
                reader: readers.join(", "),
                wanted: wanted.to_owned(),
            },
        }
    }
}

/// The cards on the PC/SC readers. A card with no PIV applet is skipped: it is not ours.
pub(super) fn scan() -> Result<Readers, TokenError> {
    let mut found = Readers::default();
    each_card(&mut found, |yk| {
        leave(yk);
        None
    })?;
    Ok(found)
}

/// Open each card on the readers in turn, noting in `found` what each is, until `take`
/// keeps one (it is given the open card; it hands it back to keep it, or lets go of it).
fn each_card(
    found: &mut Readers,
    mut take: impl FnMut(YubiKey) -> Option<YubiKey>,
) -> Result<Option<YubiKey>, TokenError> {
    use pcsc::Error as P;
    let mut ctx = yubikey::reader::Context::open().map_err(|e| card_error(e, 0))?;
    let names: Vec<String> = (ctx.iter().map_err(|e| card_error(e, 0))?)
        .map(|r| r.name().to_string())
        .collect();
    for name in names {
        match open_bounded(&name) {
            // Another program held a transaction on it past the bound: it has the card.
            Opened::TimedOut => found.held.push(name),
            Opened::Done(Some(Ok(yk))) => {
                found.present.push(yk.serial().0);
                if let Some(kept) = take(yk) {
                    return Ok(Some(kept));
                }
            }
            Opened::Done(Some(Err(yubikey::Error::PcscError {
                inner: Some(P::SharingViolation),
            }))) => found.held.push(name),
            // No card, or one with no PIV applet: not ours.
            Opened::Done(Some(Err(
                yubikey::Error::PcscError { .. }
                | yubikey::Error::AppletNotFound { .. }
                | yubikey::Error::NotFound,
            ))) => {}
            // The PIV applet answered, but not with a version and serial a YubiKey gives
            // (a panic: too short for the crate to read).
            Opened::Done(Some(Err(_)) | None) => found.unreadable.push(name),
        }
    }
    Ok(None)
}

/// What [`open_bounded`] got.
enum Opened {
    /// The crate's open: `None` if it panicked.
    Done(Option<Result<YubiKey, yubikey::Error>>),
    /// No answer within [`super::held::ALONE_WAIT`].
    TimedOut,
}

/// The crate's open of the card in reader `name`, on a thread of its own, waited for
/// [`super::held::ALONE_WAIT`] at most. pcscd makes a connect wait, and libpcsclite makes a
/// transaction's begin wait, with no bound, while another program holds a transaction on the
/// card: a program holding one made an unlock wait silently after its "Touch ... when it
/// blinks" for as long as it liked (red-team round 26, recheck). A card opened after the bound
/// is let go of, unused.
fn open_bounded(name: &str) -> Opened {
    let (send, got) = std::sync::mpsc::channel();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let opened = unpanicked(|| {
            let mut ctx = yubikey::reader::Context::open()?;
            let found = ctx.iter()?.find(|r| r.name() == name.as_str());
            found.map_or(Err(yubikey::Error::NotFound), |r| r.open())
        });
        if let Err(std::sync::mpsc::SendError(Some(Ok(yk)))) = send.send(opened) {
            leave(yk);
        }
    });
    match got.recv_timeout(super::held::ALONE_WAIT) {
        Ok(opened) => Opened::Done(opened),
        Err(_) => Opened::TimedOut,
    }
}

/// Open YubiKey `serial`, wherever it sits; the other cards are let go of without a reset.
pub(super) fn open_serial(serial: u32) -> Result<YubiKey, TokenError> {
    let mut found = Readers::default();
    let kept = each_card(&mut found, |yk| {
        if yk.serial().0 == serial {
            return Some(yk);
        }
        leave(yk);
        None
    })?;
    kept.ok_or_else(|| {
        let which = format!("YubiKey {serial}");
        found.missing(
            &which,
            TokenError::Absent {
                hint: format!("insert {which}"),
            },
        )
    })
}

/// Let go of a card that was only read (serial, metadata: no PIN, no key operation) without
/// resetting it. Dropping a handle resets the card, which ends every other program's session
/// on it: one that had verified the PIN (a PIV middleware, a script) would find itself logged
/// out by an unlock's look for its token (red-team round 24). A handle that verified a PIN is
/// still dropped, so the PIN does not outlive the operation.
pub(super) fn leave(yk: YubiKey) {
    // On failure the handle comes back and is dropped: a reset, as before.
    let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
}
