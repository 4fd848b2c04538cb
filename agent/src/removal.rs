//! Lock when the token that opened the session leaves: the card pulled from its PC/SC reader,
//! the whole reader gone (a USB YubiKey is a reader with a built-in card, so pulling it removes
//! the reader), or a FIDO2 USB key unplugged. Another token arriving never unlocks anything.
//!
//! A blocking thread follows where the session's token sat:
//! - a PC/SC reader, through `SCardGetStatusChange` with a short timeout, so it notices a new
//!   session or shutdown promptly. It never opens a card: other programs' card sessions are
//!   left alone.
//! - a USB HID device (`hid:<node>#<identity>`), by polling sysfs: the device is gone when its
//!   hidraw node no longer leads to the same USB device (a re-plugged key gets a new identity,
//!   even under the same node name). HID has no change events to wait on.
//!
//! pcsc-lite's client waits for pcscd's answers with no timeout of its own: with pcscd stopped
//! (SIGSTOP) or hung, `SCardGetStatusChange` never returns, and the watcher with it, so a
//! token pulled meanwhile was not seen while `status` still said "watching" (red-team round
//! 26, T1). The watcher stamps each PC/SC call it makes, and a guard thread that makes none
//! locks an open session once a call has waited [`PCSCD_ANSWER`]: a token that cannot be seen
//! cannot be known to be there, as when pcscd is gone. `status` then says the source is not
//! live, and why, until pcscd answers again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};
use tapsign_proto::LockSource;

use crate::agent::Agent;
use crate::session::LockReason;

const POLL: Duration = Duration::from_millis(500);

/// How long a PC/SC call may wait for pcscd before the session locks. A call returns after
/// [`POLL`] when nothing changes; a card busy with another program's long command (a touch)
/// should not hold it up, since pcscd answers a client's "stop waiting" from that client's
/// own thread, not the reader's (read in pcsc-lite, not tried on a real YubiKey). So only a
/// pcscd that does not run should take this long.
pub const PCSCD_ANSWER: Duration = Duration::from_secs(3);

/// The guard's shortest sleep: how late past [`PCSCD_ANSWER`] it may lock.
const GUARD_TICK: Duration = Duration::from_millis(100);

/// Where the session's token sits, and what the watcher is doing.
#[derive(Debug, Default)]
pub struct Removal {
    /// The PC/SC reader (or `hid:` location) of the token that opened the session.
    location: Mutex<Option<String>>,
    /// What the watcher is doing, for `status`.
    state: Mutex<WatchState>,
    /// When the watcher's PC/SC call under way began; `None` while it makes none.
    call_began: Mutex<Option<Instant>>,
}

impl Removal {
    /// The token that opened the session sits at `location` (`None`: not on PC/SC or HID,
    /// nothing to watch). An extend touched on another enrolled token leaves it the one
    /// watched, as docs/defaults.md says ("pulling the token that opened the session always
    /// locks"): moved to the extend's, pulling the one that opened no longer locked while the
    /// other stayed plugged in (red-team round 23, A7).
    pub fn opened_at(&self, location: Option<String>) {
        *lock(&self.location) = location;
    }

    /// The location watched while a session is open.
    #[cfg(test)]
    pub fn location(&self) -> Option<String> {
        lock(&self.location).clone()
    }

    /// The location to watch: only while a session is open.
    fn watched(&self, agent: &Agent) -> Option<String> {
        if !agent.session().is_unlocked() {
            return None;
        }
        lock(&self.location).clone()
    }

    fn set_state(&self, state: WatchState) {
        *lock(&self.state) = state;
    }

    /// The session's token left `location`: forget it and end the session.
    fn removed(&self, agent: &Agent, location: &str, why: &str) {
        *lock(&self.location) = None;
        self.set_state(WatchState::Waiting);
        agent.lock(LockReason::Other(format!(
            "token removed ({why} in {})",
            describe(location)
        )));
    }

    /// This lock source, as `status` shows it; `session_open` says whether a session is.
    pub fn lock_source(&self, session_open: bool) -> LockSource {
        let state = lock(&self.state).clone();
        let session = session_open.then(|| lock(&self.location).clone());
        let source = lock_source(&state, session.as_ref().map(|at| at.as_deref()));
        match self.unanswered() {
            Some(waited) if state != WatchState::Stopped => pcscd_silent(waited),
            _ => source,
        }
    }

    /// Make the PC/SC call `call`, stamped so the guard sees one that does not come back.
    fn pcsc<T>(&self, call: impl FnOnce() -> T) -> T {
        *lock(&self.call_began) = Some(Instant::now());
        let out = call();
        *lock(&self.call_began) = None;
        out
    }

    /// How long the PC/SC call under way has waited, once that is over [`PCSCD_ANSWER`].
    fn unanswered(&self) -> Option<Duration> {
        let began = (*lock(&self.call_began))?;
        Some(began.elapsed()).filter(|waited| *waited >= PCSCD_ANSWER)
    }

    /// How long the guard may sleep before it looks again: until the call under way will have
    /// waited [`PCSCD_ANSWER`], and [`POLL`] at most, so a call begun meanwhile is seen in
    /// time. It looked every [`GUARD_TICK`], ten wakeups a second for the agent's whole life,
    /// though only a call reaching the bound can make it act.
    fn guard_sleep(&self) -> Duration {
        let due = (*lock(&self.call_began))
            .map(|began| (began + PCSCD_ANSWER).saturating_duration_since(Instant::now()));
        due.unwrap_or(POLL).clamp(GUARD_TICK, POLL)
    }

    /// pcscd does not answer the watcher: end the open session (whatever its token: the
    /// watcher, stuck in the call, follows no other location either).
    fn cannot_watch(&self, agent: &Agent, location: &str, waited: Duration) {
        *lock(&self.location) = None;
        agent.lock(LockReason::Other(format!(
            "token removal cannot be seen: pcscd has not answered for {} s (watching {})",
            waited.as_secs(),
            describe(location)
        )));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a session's token location names a USB HID device instead of a PC/SC reader.
pub const HID_PREFIX: &str = "hid:";

/// A watched location for humans: "PC/SC reader X" or "USB key /dev/hidrawN".
pub fn describe(location: &str) -> String {
    match location.strip_prefix(HID_PREFIX) {
        Some(spec) => {
            let node = spec.rsplit_once('#').map_or(spec, |(node, _)| node);
            format!("USB key {node}")
        }
        None => format!("PC/SC reader {location}"),
    }
}

/// What the watcher is doing, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WatchState {
    /// Not running (an agent used in-process, without its server).
    #[default]
    Stopped,
    /// Running, with no token location to follow yet.
    Waiting,
    /// Following this location (a PC/SC reader, or `hid:...`).
    Following(String),
}

/// The `token removal` lock source as `status` shows it. Live whenever pulling the token
/// would lock: the watcher runs and the session (if one is open) was opened by a token that
/// sits somewhere it can watch. `session` is `Some(location)` while a session is open, the
/// location being where its token sat (`None` for a token that sits nowhere: the soft token).
/// A location the watcher has not picked up yet (it looks every [`POLL`]) counts as watched.
pub fn lock_source(state: &WatchState, session: Option<Option<&str>>) -> LockSource {
    let (live, detail) = match (state, session) {
        (WatchState::Stopped, _) => (
            false,
            "the watcher is not running: pulling the token does not lock".to_owned(),
        ),
        (_, Some(Some(at))) => (true, format!("watching {}", describe(at))),
        (WatchState::Following(at), _) => (true, format!("watching {}", describe(at))),
        (WatchState::Waiting, None) => (
            true,
            "no session is open; the next one is ended when its token leaves its PC/SC reader or USB port".to_owned(),
        ),
        (WatchState::Waiting, Some(None)) => (
            false,
            "the session's token sits in no reader or USB port (the soft token): nothing to watch".to_owned(),
        ),
    };
    LockSource {
        name: "token removal".into(),
        live,
        detail: Some(detail),
    }
}

/// `token removal` while the watcher's PC/SC call has waited `waited` for pcscd.
fn pcscd_silent(waited: Duration) -> LockSource {
    LockSource {
        name: "token removal".into(),
        live: false,
        detail: Some(format!(
            "pcscd has not answered for {} s: a token pulled now is not seen, so the agent locks any session open meanwhile; restart pcscd (sudo systemctl restart pcscd)",
            waited.as_secs()
        )),
    }
}

/// Start the watcher and its guard; they run until `stop` is set. (The watcher's handle is
/// returned; the guard never blocks, and ends within [`POLL`].)
pub fn spawn(
    agent: Arc<Agent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (guarded, guard_stop) = (Arc::clone(&agent), Arc::clone(&stop));
    std::thread::Builder::new()
        .name("tapsign-removal-guard".into())
        .spawn(move || guard(&guarded, &guard_stop))?;
    std::thread::Builder::new()
        .name("tapsign-removal".into())
        .spawn(move || watch(&agent, &stop))
}

/// Lock an open session whose token the watcher cannot see because pcscd does not answer.
fn guard(agent: &Agent, stop: &AtomicBool) {
    let removal = &agent.removal;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(removal.guard_sleep());
        if let Some(waited) = removal.unanswered()
            && let Some(location) = removal.watched(agent)
        {
            removal.cannot_watch(agent, &location, waited);
        }
    }
}

fn watch(agent: &Agent, stop: &AtomicBool) {
    let removal = &agent.removal;
    let mut ctx: Option<Context> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(reader) = removal.watched(agent) else {
            removal.set_state(WatchState::Waiting);
            std::thread::sleep(POLL);
            continue;
        };
        if let Some(spec) = reader.strip_prefix(HID_PREFIX) {
            removal.set_state(WatchState::Following(reader.clone()));
            if let Err(why) = follow_hid(spec, &reader, agent, stop) {
                removal.removed(agent, &reader, &why);
            }
            continue;
        }
        if ctx.is_none() {
            match removal.pcsc(|| Context::establish(Scope::User)) {
                Ok(c) => ctx = Some(c),
                Err(e) => {
                    // pcscd is gone: the token can no longer be seen, so it cannot be known
                    // to be there. End the session rather than trust it.
                    removal.removed(agent, &reader, &format!("PC/SC unavailable: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = ctx.as_ref() else { continue };
        removal.set_state(WatchState::Following(reader.clone()));
        if let Err(why) = follow(c, &reader, agent, stop) {
            removal.removed(agent, &reader, &why);
            ctx = None;
        }
    }
    removal.set_state(WatchState::Stopped);
}

/// Follow `reader` while it stays the watched one. Err(why) when the token left.
fn follow(ctx: &Context, reader: &str, agent: &Agent, stop: &AtomicBool) -> Result<(), String> {
    let name = std::ffi::CString::new(reader).map_err(|_| "bad reader name".to_owned())?;
    let mut states = vec![ReaderState::new(name, State::UNAWARE)];
    loop {
        if stop.load(Ordering::Relaxed) || agent.removal.watched(agent).as_deref() != Some(reader) {
            return Ok(());
        }
        match agent
            .removal
            .pcsc(|| ctx.get_status_change(POLL, &mut states))
        {
            Ok(()) => {
                let s = states[0].event_state();
                if s.intersects(State::EMPTY | State::UNKNOWN | State::UNAVAILABLE | State::IGNORE)
                {
                    return Err("card removed".into());
                }
                states[0].sync_current_state();
            }
            Err(pcsc::Error::Timeout) => {}
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                return Err("reader removed".into());
            }
            Err(e) => return Err(format!("PC/SC failed: {e}")),
        }
    }
}

/// Follow a USB HID device (`<node>#<identity>`) while it stays the watched one. Err(why) when
/// it left.
fn follow_hid(spec: &str, watched: &str, agent: &Agent, stop: &AtomicBool) -> Result<(), String> {
    let (node, id) = spec
        .rsplit_once('#')
        .ok_or_else(|| "bad USB device name".to_owned())?;
    let sys = std::path::Path::new("/sys");
    loop {
        if stop.load(Ordering::Relaxed) || agent.removal.watched(agent).as_deref() != Some(watched)
        {
            return Ok(());
        }
        if !hid_present(sys, node, id) {
            return Err("USB key unplugged".into());
        }
        std::thread::sleep(POLL);
    }
}

/// The hidraw `node` still leads to the USB device `id` (or, with no identity known, still
/// exists).
fn hid_present(sys: &std::path::Path, node: &str, id: &str) -> bool {
    if id.is_empty() {
        return std::path::Path::new(node).exists();
    }
    crate::token::fido2::hid::identity(sys, node).as_deref() == Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_well() {
        assert_eq!(
            describe("Virtual PCD 00 00"),
            "PC/SC reader Virtual PCD 00 00"
        );
        assert_eq!(
            describe("hid:/dev/hidraw3#0003:1050:0407.0042"),
            "USB key /dev/hidraw3"
        );
    }

    /// `status` said `live: false` for token removal while pulling the card did lock: it
    /// reported only the moment the watcher followed a reader, not that it would.
    #[test]
    fn token_removal_is_live_whenever_pulling_the_token_would_lock() {
        let reader = "Yubico YubiKey OTP+FIDO+CCID 00 00";
        let live = |state: &WatchState, session| lock_source(state, session).live;
        assert!(
            live(&WatchState::Waiting, None),
            "locked, the watcher waits"
        );
        assert!(
            live(&WatchState::Waiting, Some(Some(reader))),
            "a session its watcher has not picked up yet"
        );
        let src = lock_source(&WatchState::Following(reader.into()), Some(Some(reader)));
        assert!(src.live);
        assert_eq!(src.name, "token removal");
        assert_eq!(
            src.detail.as_deref(),
            Some("watching PC/SC reader Yubico YubiKey OTP+FIDO+CCID 00 00")
        );
        let soft = lock_source(&WatchState::Waiting, Some(None));
        assert!(!soft.live && soft.detail.unwrap().contains("soft token"));
        assert!(
            !live(&WatchState::Stopped, None),
            "no watcher, nothing locks"
        );
        assert!(!live(&WatchState::Stopped, Some(Some(reader))));
    }

    /// Red-team round 26, T1: with pcscd stopped, the watcher's call never came back and
    /// `status` said "watching" while a pulled token was not seen.
    #[test]
    fn a_pcsc_call_pcscd_does_not_answer_makes_the_source_not_live() {
        let removal = Removal::default();
        removal.set_state(WatchState::Following("Virtual PCD 00 00".into()));
        assert!(removal.lock_source(true).live);
        *lock(&removal.call_began) = Some(Instant::now());
        assert!(removal.unanswered().is_none(), "a call just begun");
        assert!(removal.lock_source(true).live);
        *lock(&removal.call_began) = Instant::now().checked_sub(PCSCD_ANSWER);
        assert!(removal.unanswered().is_some());
        let src = removal.lock_source(true);
        assert!(!src.live);
        assert!(
            src.detail
                .unwrap()
                .contains("pcscd has not answered for 3 s")
        );
        removal.pcsc(|| ());
        assert!(removal.lock_source(true).live, "pcscd answers again");
    }

    /// The guard sleeps until a call could reach the bound, half a second at most, rather
    /// than waking ten times a second; it still locks within [`GUARD_TICK`] of the bound.
    #[test]
    fn the_guard_sleeps_until_a_call_could_reach_the_bound() {
        let removal = Removal::default();
        assert_eq!(removal.guard_sleep(), POLL, "no call under way");
        *lock(&removal.call_began) = Some(Instant::now());
        assert_eq!(removal.guard_sleep(), POLL, "a call just begun");
        *lock(&removal.call_began) = Instant::now().checked_sub(PCSCD_ANSWER - GUARD_TICK * 3);
        let sleep = removal.guard_sleep();
        assert!(sleep <= GUARD_TICK * 3 && sleep > GUARD_TICK, "{sleep:?}");
        *lock(&removal.call_began) = Instant::now().checked_sub(PCSCD_ANSWER * 2);
        assert_eq!(removal.guard_sleep(), GUARD_TICK, "a call past the bound");
    }

    #[test]
    fn an_unplugged_or_replugged_usb_key_is_gone() {
        let sys = tempfile::tempdir().unwrap();
        let node = sys.path().join("class/hidraw/hidraw3");
        std::fs::create_dir_all(&node).unwrap();
        std::os::unix::fs::symlink("../../../0003:1050:0407.0042", node.join("device")).unwrap();
        let id = "0003:1050:0407.0042";
        assert!(hid_present(sys.path(), "/dev/hidraw3", id));
        std::fs::remove_file(node.join("device")).unwrap();
        assert!(!hid_present(sys.path(), "/dev/hidraw3", id));
        std::os::unix::fs::symlink("../../../0003:1050:0407.0043", node.join("device")).unwrap();
        assert!(!hid_present(sys.path(), "/dev/hidraw3", id));
        // No identity known: the node's existence decides.
        let dev = sys.path().join("hidraw9");
        let dev = dev.to_str().unwrap();
        assert!(!hid_present(sys.path(), dev, ""));
        std::fs::write(dev, "").unwrap();
        assert!(hid_present(sys.path(), dev, ""));
    }
}
