//! A virtual YubiKey plugged into a vpcd reader: a thread that owns the card state and
//! serves vpcd over TCP, plus the handle a test uses to pull, insert and touch it.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::apdu::Chainer;
use crate::card::Applets;
use crate::config::{Config, Faults};
use crate::touch::{Touch, TouchMode};
use crate::vpcd::{CardOs, Link};

/// A YubiKey 5's ATR over USB: T=1 offered (the `yubikey` crate connects T=1 only) and the
/// ASCII "YubiKey" in the historical bytes, which is how tools recognise one.
pub const YUBIKEY5_ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

#[derive(Debug, Default)]
struct Plug {
    inserted: bool,
    stop: bool,
    /// A clone of the live connection, so `pull` can cut it from another thread.
    stream: Option<TcpStream>,
    connections: u64,
}

#[derive(Debug)]
struct Shared {
    addr: SocketAddr,
    touch: Touch,
    plug: Mutex<Plug>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Plug> {
        self.plug.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to a running virtual YubiKey. Dropping it unplugs the key and stops its thread.
#[derive(Debug)]
pub struct VirtualYubiKey {
    config: Config,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl VirtualYubiKey {
    /// Starts a factory-fresh key, inserted into the vpcd reader listening on `addr`
    /// (127.0.0.1:35963 is the first reader, :35964 the second). It keeps trying to connect
    /// until vpcd listens.
    pub fn spawn(config: Config, addr: SocketAddr) -> io::Result<VirtualYubiKey> {
        let shared = Arc::new(Shared {
            addr,
            touch: Touch::new(TouchMode::Approve),
            plug: Mutex::new(Plug {
                inserted: true,
                ..Plug::default()
            }),
            changed: Condvar::new(),
        });
        let applets = Applets::new(&config);
        let faults = config.faults.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vyk-{}", config.serial))
            .spawn({
                let shared = Arc::clone(&shared);
                move || card_thread(&shared, applets, &faults)
            })?;
        Ok(VirtualYubiKey {
            config,
            shared,
            thread: Some(thread),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn serial(&self) -> u32 {
        self.config.serial
    }

    /// The touch sensor: set its mode, count touches, touch.
    pub fn touch(&self) -> &Touch {
        &self.shared.touch
    }

    /// Pulls the key out: vpcd sees the connection drop and reports the reader empty. Card
    /// contents survive; the session (PIN, management key, touch cache) does not.
    pub fn pull(&self) {
        let mut plug = self.shared.lock();
        plug.inserted = false;
        if let Some(s) = plug.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(plug);
        self.shared.touch.cancel();
        self.shared.changed.notify_all();
    }

    /// Puts the key back in.
    pub fn insert(&self) {
        self.shared.lock().inserted = true;
        self.shared.changed.notify_all();
    }

    /// Whether vpcd currently holds a connection to this key.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().stream.is_some()
    }

    /// How many times the key connected to vpcd (each insert is one).
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }
}

impl Drop for VirtualYubiKey {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.pull();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What vpcd talks to: the applets behind the chaining layer.
struct Card<'a> {
    applets: &'a mut Applets,
    chainer: &'a mut Chainer,
    touch: &'a Touch,
    faults: &'a Faults,
}

impl CardOs for Card<'_> {
    fn atr(&self) -> Vec<u8> {
        YUBIKEY5_ATR.to_vec()
    }

    // pcscd powers the card down when idle and resets it when a client disconnects with
    // SCARD_RESET_CARD (the `yubikey` crate's drop): both end the applets' sessions. Only a
    // pull is a power cycle for FIDO2 (the key stays on USB power meanwhile).
    fn power_off(&mut self) {
        self.applets.end_session(self.touch);
        self.chainer.clear();
    }

    fn power_on(&mut self) {
        self.power_off();
    }

    fn reset(&mut self) {
        self.power_off();
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if let Some(sw) = self.faults.refusal(apdu) {
            return sw.to_be_bytes().to_vec();
        }
        let (applets, touch) = (&mut *self.applets, self.touch);
        let answer = self.chainer.handle(apdu, |cmd| applets.process(cmd, touch));
        self.faults.apply(apdu, answer)
    }
}

fn card_thread(shared: &Shared, mut applets: Applets, faults: &Faults) {
    let mut chainer = Chainer::default();
    loop {
        let Some(stream) = connect(shared) else {
            return;
        };
        applets.plugged(&shared.touch);
        let mut card = Card {
            applets: &mut applets,
            chainer: &mut chainer,
            touch: &shared.touch,
            faults,
        };
        // An I/O error means vpcd or a pull cut the connection: both are a removal.
        let _ = Link::new(stream).and_then(|mut link| link.serve(&mut card));
        applets.unplugged(&shared.touch);
        chainer.clear();
        shared.lock().stream = None;
    }
}

/// Waits until the key is inserted and vpcd accepts it; `None` once the key is stopped.
fn connect(shared: &Shared) -> Option<TcpStream> {
    let mut plug = shared.lock();
    loop {
        if plug.stop {
            return None;
        }
        if plug.inserted {
            drop(plug);
            let attempt = TcpStream::connect_timeout(&shared.addr, Duration::from_millis(500));
            plug = shared.lock();
            match attempt {
                Ok(s) if plug.inserted && !plug.stop => {
                    plug.stream = s.try_clone().ok();
                    plug.connections += 1;
                    return Some(s);
                }
                Ok(s) => {
                    let _ = s.shutdown(Shutdown::Both);
                    continue;
                }
                // vpcd not listening yet (pcscd still starting): retry shortly.
                Err(_) => {}
            }
        }
        plug = shared
            .changed
            .wait_timeout(plug, Duration::from_millis(20))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
