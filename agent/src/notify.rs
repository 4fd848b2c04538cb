//! Desktop notifications: a touch is needed, a session opened, time or signatures are running
//! out, a session ended (and why).
//!
//! The trader should see when signing becomes possible and when it stops, without watching a
//! terminal. Notifications go to `org.freedesktop.Notifications` on the session bus. They never
//! carry secret material: only counts, durations and the lock reason (which the agent also
//! prints, audits and sends to subscribed bots).
//!
//! No session bus or no notification daemon is normal (a headless box, a test): the first
//! failure is one line in the agent's log, later ones are silent. Each notification is sent
//! from its own task so a slow daemon never holds up a lock or an unlock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify_rust::{Notification, Timeout, Urgency};

use crate::clock::format_duration;
use crate::session::LockReason;

/// A notification daemon that does not answer within this is given up on, for this one.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the agent's desktop notifications, when the configuration allows.
pub struct Notifier {
    enabled: bool,
    /// A failure was already logged.
    failed: Arc<AtomicBool>,
}

impl Notifier {
    pub fn new(enabled: bool) -> Self {
        Notifier {
            enabled,
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A session opened with `keys` key(s) for `ttl`.
    pub fn session_opened(&self, keys: usize, ttl: Duration) {
        self.show(
            "tapsign: session open".into(),
            format!(
                "{keys} key(s) can be signed with for up to {}. Lock your screen or run `tapsign lock` to end it.",
                format_duration(ttl)
            ),
            Urgency::Normal,
        );
    }

    /// The token is waiting for a touch (an unlock or an extend).
    /// `asked` says who asked and for what ("python3 (pid 4242) asks for 8h, 50000
    /// signatures"): any local client of the trader's can start an unlock, and the touch is
    /// the trader's consent to exactly that.
    pub fn touch_needed(&self, token: &str, asked: &str) {
        self.show(
            "tapsign: touch your token".into(),
            format!("{asked}. Touch {token} to allow it; do nothing to refuse."),
            Urgency::Critical,
        );
    }

    /// The session is about to end (`what`: "ends in 5m", "5 signatures left").
    pub fn running_out(&self, what: &str) {
        self.show(
            "tapsign: session ending soon".into(),
            format!("{what}. `tapsign unlock --extend` renews it with a touch."),
            Urgency::Normal,
        );
    }

    /// The session ended.
    pub fn locked(&self, reason: &LockReason) {
        self.show(
            "tapsign: locked".into(),
            format!("The signing session ended: {reason}. Nothing signs until `tapsign unlock`."),
            Urgency::Low,
        );
    }

    fn show(&self, summary: String, body: String, urgency: Urgency) {
        if !self.enabled {
            return;
        }
        // Outside the runtime (unit tests, blocking threads) there is nobody to send it.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let failed = Arc::clone(&self.failed);
        rt.spawn(async move {
            let mut n = Notification::new();
            n.appname("tapsign")
                .summary(&summary)
                .body(&body)
                .icon("dialog-password")
                .urgency(urgency)
                .timeout(Timeout::Milliseconds(8000));
            let why = match tokio::time::timeout(SEND_TIMEOUT, n.show_async()).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the notification daemon did not answer".into(),
            };
            if !failed.swap(true, Ordering::Relaxed) {
                say!(
                    "tapsign agent: desktop notifications are not shown ({why}); set [notifications] enabled = false to stop trying"
                );
            }
        });
    }
}
