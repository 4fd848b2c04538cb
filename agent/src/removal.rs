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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pcsc::{Context, ReaderState, Scope, State};
use tapsign_proto::LockSource;

use crate::agent::Agent;
use crate::session::LockReason;

const POLL: Duration = Duration::from_millis(500);

/// Where the session's token sits, and whether the watcher follows it now.
#[derive(Debug, Default)]
pub struct Removal {
    /// The PC/SC reader (or `hid:` location) of the token that opened the session.
    location: Mutex<Option<String>>,
    /// The location the watcher is following now, if any.
    live: Mutex<Option<String>>,
}

impl Removal {
    /// The token that opened (or renewed) the session sits at `location` (`None`: not on
    /// PC/SC or HID, nothing to watch).
    pub fn opened_at(&self, location: Option<String>) {
        *lock(&self.location) = location;
    }

    /// The location to watch: only while a session is open.
    fn watched(&self, agent: &Agent) -> Option<String> {
        if !agent.session().is_unlocked() {
            return None;
        }
        lock(&self.location).clone()
    }

    fn set_live(&self, location: Option<&str>) {
        *lock(&self.live) = location.map(str::to_owned);
    }

    /// The session's token left `location`: forget it and end the session.
    fn removed(&self, agent: &Agent, location: &str, why: &str) {
        *lock(&self.location) = None;
        self.set_live(None);
        agent.lock(LockReason::Other(format!(
            "token removed ({why} in {})",
            describe(location)
        )));
    }

    /// This lock source, as `status` shows it.
    pub fn lock_source(&self) -> LockSource {
        let watched = lock(&self.live).clone();
        LockSource {
            name: "token removal".into(),
            live: watched.is_some(),
            detail: Some(match watched {
                Some(r) => format!("watching {}", describe(&r)),
                None => "watches the PC/SC reader or USB key of the token that opened the session"
                    .into(),
            }),
        }
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

/// Start the watcher; it runs until `stop` is set.
pub fn spawn(
    agent: Arc<Agent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tapsign-removal".into())
        .spawn(move || watch(&agent, &stop))
}

fn watch(agent: &Agent, stop: &AtomicBool) {
    let removal = &agent.removal;
    let mut ctx: Option<Context> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(reader) = removal.watched(agent) else {
            removal.set_live(None);
            std::thread::sleep(POLL);
            continue;
        };
        if let Some(spec) = reader.strip_prefix(HID_PREFIX) {
            removal.set_live(Some(&reader));
            if let Err(why) = follow_hid(spec, &reader, agent, stop) {
                removal.removed(agent, &reader, &why);
            }
            continue;
        }
        if ctx.is_none() {
            match Context::establish(Scope::User) {
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
        removal.set_live(Some(&reader));
        if let Err(why) = follow(c, &reader, agent, stop) {
            removal.removed(agent, &reader, &why);
            ctx = None;
        }
    }
}

/// Follow `reader` while it stays the watched one. Err(why) when the token left.
fn follow(ctx: &Context, reader: &str, agent: &Agent, stop: &AtomicBool) -> Result<(), String> {
    let name = std::ffi::CString::new(reader).map_err(|_| "bad reader name".to_owned())?;
    let mut states = vec![ReaderState::new(name, State::UNAWARE)];
    loop {
        if stop.load(Ordering::Relaxed) || agent.removal.watched(agent).as_deref() != Some(reader) {
            return Ok(());
        }
        match ctx.get_status_change(POLL, &mut states) {
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
