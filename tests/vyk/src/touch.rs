//! The touch sensor, as a test controls it. A real YubiKey blocks the APDU until the user
//! touches, and after ~15 s gives up with `6982` (firmware-notes/touch-timeout.md). Tests pick
//! one of three behaviours and can count touches.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the virtual user answers a touch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchMode {
    /// Touch at once.
    Approve,
    /// Never touch: after `after` the request fails (a real key waits ~15 s). PIV answers
    /// `6982`; FIDO2 answers CTAP2_ERR_OPERATION_DENIED.
    Deny { after: Duration },
    /// Block until the test calls [`Touch::touch`], or fail after `timeout` (PIV `6982`,
    /// FIDO2 CTAP2_ERR_USER_ACTION_TIMEOUT).
    Hold { timeout: Duration },
}

/// What a touch request ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    Touched,
    /// Deny mode: the user declined (PIV answers it like a timeout: `6982`).
    Denied,
    /// Hold mode ran out of time, or the key was pulled.
    TimedOut,
}

#[derive(Debug)]
struct State {
    mode: TouchMode,
    /// Touches that satisfied a request.
    touches: u64,
    /// Requests the card made (touched or not).
    requests: u64,
    /// A request is blocked right now (Hold mode).
    waiting: bool,
    /// The test touched while a request was waiting.
    touched: bool,
    /// Bumped to abort a blocked request (card pulled or stopped).
    cancel_epoch: u64,
}

/// Shared between the card thread and the test.
#[derive(Debug)]
pub struct Touch {
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for Touch {
    fn default() -> Self {
        Touch::new(TouchMode::Approve)
    }
}

impl Touch {
    pub fn new(mode: TouchMode) -> Touch {
        Touch {
            state: Mutex::new(State {
                mode,
                touches: 0,
                requests: 0,
                waiting: false,
                touched: false,
                cancel_epoch: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the card: the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_mode(&self, mode: TouchMode) {
        self.lock().mode = mode;
        self.changed.notify_all();
    }

    /// Touches that satisfied a card request so far.
    pub fn touches(&self) -> u64 {
        self.lock().touches
    }

    /// Touch requests the card made so far (satisfied or not).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Whether the card is blocked waiting for a touch right now.
    pub fn is_waiting(&self) -> bool {
        self.lock().waiting
    }

    /// Waits until the card blocks on a touch (Hold mode). Returns false on timeout.
    pub fn wait_for_request(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| !s.waiting)
            .unwrap_or_else(|e| e.into_inner());
        guard.waiting
    }

    /// The user touches the key. Returns whether a request was waiting for it; a touch
    /// with nothing waiting does nothing, as on a real key.
    pub fn touch(&self) -> bool {
        let mut s = self.lock();
        if !s.waiting {
            return false;
        }
        s.touched = true;
        drop(s);
        self.changed.notify_all();
        true
    }

    /// Aborts a blocked request (the card was pulled).
    pub fn cancel(&self) {
        self.lock().cancel_epoch += 1;
        self.changed.notify_all();
    }

    /// Called by the applet when an operation needs a touch; blocks like the real key.
    pub(crate) fn request(&self) -> TouchOutcome {
        let ticket = self.begin();
        loop {
            if let Some(outcome) = self.poll(&ticket, Duration::from_secs(3600)) {
                return outcome;
            }
        }
    }

    /// Starts a touch request without blocking (the FIDO2 applet answers `91 00` while it
    /// waits); follow with [`Touch::poll`] until it yields, or [`Touch::abandon`].
    pub(crate) fn begin(&self) -> Ticket {
        let mut s = self.lock();
        s.requests += 1;
        let epoch = s.cancel_epoch;
        let ticket = match s.mode {
            TouchMode::Approve => {
                s.touches += 1;
                Ticket::Approved
            }
            TouchMode::Deny { after } => Ticket::Deny {
                epoch,
                deadline: Instant::now() + after,
            },
            TouchMode::Hold { timeout } => {
                s.waiting = true;
                s.touched = false;
                Ticket::Hold {
                    epoch,
                    deadline: Instant::now() + timeout,
                }
            }
        };
        drop(s);
        self.changed.notify_all();
        ticket
    }

    /// Waits at most `wait` for the request's outcome; `None` if it is still open.
    pub(crate) fn poll(&self, ticket: &Ticket, wait: Duration) -> Option<TouchOutcome> {
        let (epoch, deadline, hold) = match *ticket {
            Ticket::Approved => return Some(TouchOutcome::Touched),
            Ticket::Deny { epoch, deadline } => (epoch, deadline, false),
            Ticket::Hold { epoch, deadline } => (epoch, deadline, true),
        };
        let until = deadline.min(Instant::now() + wait);
        let mut s = self.lock();
        while !(hold && s.touched) && s.cancel_epoch == epoch {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let cancelled = s.cancel_epoch != epoch;
        let expired = Instant::now() >= deadline;
        let outcome = if hold && s.touched {
            s.touches += 1;
            TouchOutcome::Touched
        } else if cancelled || (hold && expired) {
            TouchOutcome::TimedOut
        } else if expired {
            TouchOutcome::Denied
        } else {
            return None;
        };
        if hold {
            s.waiting = false;
            s.touched = false;
        }
        drop(s);
        self.changed.notify_all();
        Some(outcome)
    }

    /// Gives up on an open request (the client moved on or the card was reset).
    pub(crate) fn abandon(&self, ticket: Ticket) {
        if let Ticket::Hold { .. } = ticket {
            let mut s = self.lock();
            s.waiting = false;
            s.touched = false;
            drop(s);
            self.changed.notify_all();
        }
    }
}

/// An open touch request (see [`Touch::begin`]).
#[derive(Debug)]
pub(crate) enum Ticket {
    Approved,
    Deny { epoch: u64, deadline: Instant },
    Hold { epoch: u64, deadline: Instant },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn hold_waits_for_the_test_to_touch() {
        let t = Arc::new(Touch::new(TouchMode::Hold {
            timeout: Duration::from_secs(10),
        }));
        let card = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || t.request())
        };
        assert!(t.wait_for_request(Duration::from_secs(5)));
        assert!(t.touch());
        assert_eq!(card.join().unwrap(), TouchOutcome::Touched);
        assert_eq!((t.touches(), t.requests()), (1, 1));
        assert!(!t.touch(), "nothing is waiting any more");
    }

    #[test]
    fn deny_times_out_without_counting_a_touch() {
        let t = Touch::new(TouchMode::Deny {
            after: Duration::from_millis(10),
        });
        assert_eq!(t.request(), TouchOutcome::Denied);
        assert_eq!((t.touches(), t.requests()), (0, 1));
    }

    #[test]
    fn pulling_the_key_releases_a_held_request() {
        let t = Arc::new(Touch::new(TouchMode::Hold {
            timeout: Duration::from_secs(30),
        }));
        let card = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || t.request())
        };
        assert!(t.wait_for_request(Duration::from_secs(5)));
        t.cancel();
        assert_eq!(card.join().unwrap(), TouchOutcome::TimedOut);
        assert_eq!(t.touches(), 0);
    }
}
