//! Lock when the token that opened the session leaves its PC/SC reader: the card pulled, or
//! the whole reader gone (a USB YubiKey is a reader with a built-in card, so pulling it removes
//! the reader). Another card arriving never unlocks anything.
//!
//! A blocking thread follows the one reader the session's token sat in, through
//! `SCardGetStatusChange` with a short timeout, so it notices a new session or shutdown
//! promptly. It never opens a card: other programs' card sessions are left alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pcsc::{Context, ReaderState, Scope, State};

use crate::agent::Agent;

const POLL: Duration = Duration::from_millis(500);

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
    let mut ctx: Option<Context> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(reader) = agent.watched_reader() else {
            agent.set_removal_live(None);
            std::thread::sleep(POLL);
            continue;
        };
        if ctx.is_none() {
            match Context::establish(Scope::User) {
                Ok(c) => ctx = Some(c),
                Err(e) => {
                    // pcscd is gone: the token can no longer be seen, so it cannot be known
                    // to be there. End the session rather than trust it.
                    agent.removed(&reader, &format!("PC/SC unavailable: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = ctx.as_ref() else { continue };
        agent.set_removal_live(Some(&reader));
        if let Err(why) = follow(c, &reader, agent, stop) {
            agent.removed(&reader, &why);
            ctx = None;
        }
    }
}

/// Follow `reader` while it stays the watched one. Err(why) when the token left.
fn follow(ctx: &Context, reader: &str, agent: &Agent, stop: &AtomicBool) -> Result<(), String> {
    let name = std::ffi::CString::new(reader).map_err(|_| "bad reader name".to_owned())?;
    let mut states = vec![ReaderState::new(name, State::UNAWARE)];
    loop {
        if stop.load(Ordering::Relaxed) || agent.watched_reader().as_deref() != Some(reader) {
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
