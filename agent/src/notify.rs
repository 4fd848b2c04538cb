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
use crate::session::{Bounds, LockReason};

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
            touch_body(token, asked),
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

/// Longest a name a client chose (its program's file name, a key name) is shown.
const NAME_MAX: usize = 64;
/// How many of the key names an unlock asks for are shown.
const KEYS_SHOWN: usize = 8;

/// What an unlock asks for, bounds first, then who asks: the trader reads what the touch
/// grants before any name a client chose. `exe` is the client's program as the agent names it
/// (`server::program`): a path, shown by its file name, or, for a client that hid its path,
/// what it calls itself, marked as such.
pub fn asked(exe: &str, pid: u32, extend: bool, bounds: &Bounds, keys: &[String]) -> String {
    let asks = asks(extend, bounds, keys);
    match exe.strip_prefix('/') {
        Some(path) => {
            let program = shown(path.rsplit('/').next().unwrap_or("?"), NAME_MAX);
            format!("{asks}; asked by {program} (pid {pid})")
        }
        // Already cut (`server::program`); bounded here too.
        None => format!("{asks}; asked by pid {pid} ({})", shown(exe, 2 * NAME_MAX)),
    }
}

/// `asked` ([`asked`]), then the credentials replaced or removed since the check before
/// (`changed`, as `status` repeats them): the touch prompt is what the trader sees whoever
/// asked for the unlock, and the check's own answer went to the asker, a bot's as well
/// (red-team round 20, recheck).
pub fn with_changes(asked: String, changed: &[String]) -> String {
    match before_touch(changed) {
        Some(warning) => format!("{asked}. {warning}"),
        None => asked,
    }
}

/// The warning before a touch of the credentials replaced or removed lately (`changed`), if
/// any: in the desktop prompt ([`with_changes`]), and on the terminal of `tapsign unlock`,
/// where a trader with no notification daemon (a server over SSH) saw none (red-team round 21).
pub fn before_touch(changed: &[String]) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let mut list: Vec<String> = (changed.iter().take(KEYS_SHOWN))
        .map(|n| format!("\"{}\"", shown(n, NAME_MAX)))
        .collect();
    if changed.len() > KEYS_SHOWN {
        list.push(format!("{} more", changed.len() - KEYS_SHOWN));
    }
    Some(format!(
        "Before you touch: credential {} replaced or removed lately; if not by you, orders may go to someone else's account (`tapsign status` says when and by what)",
        list.join(", ")
    ))
}

/// What an unlock (or an extend) asks for: the bounds, and the keys a new session opens.
pub fn asks(extend: bool, bounds: &Bounds, keys: &[String]) -> String {
    let list = || {
        let mut list: Vec<String> = keys
            .iter()
            .take(KEYS_SHOWN)
            .map(|n| shown(n, NAME_MAX))
            .collect();
        if keys.len() > KEYS_SHOWN {
            list.push(format!("and {} more", keys.len() - KEYS_SHOWN));
        }
        list.join(", ")
    };
    let keys = match (extend, keys) {
        // An extend names the session's keys: "same keys" hid that it renewed one the
        // keystore no longer held (red-team round 23). The touch's check drops those.
        (true, []) => String::new(),
        (true, _) => format!(
            ", keeping keys {} (less any removed from the keystore or replaced in it since the session opened them)",
            list()
        ),
        (false, []) => ", every key".to_owned(),
        (false, _) => format!(", keys {}", list()),
    };
    format!(
        "{} a session for {}, {} (idle {}){keys}",
        if extend { "Extend" } else { "Open" },
        format_duration(bounds.ttl),
        crate::session::signatures(bounds.max_signatures),
        format_duration(bounds.idle),
    )
}

/// The body of the touch notification for `asked` (from [`asked`]).
fn touch_body(token: &str, asked: &str) -> String {
    format!(
        "{asked}. Touch {} to allow it; do nothing to refuse.",
        shown(token, NAME_MAX)
    )
}

/// `text` as a notification body may show it: at most `max` characters (cut with `…`),
/// control characters and bidirectional overrides escaped (a program named with newlines
/// must not push the real text out of sight below fake lines), and `&`, `<`, `>` as
/// entities (notification daemons may read a body as markup).
pub fn shown(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if crate::audit::hidden(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            ttl: Duration::from_secs(8 * 3600),
            idle: Duration::from_secs(900),
            max_signatures: 50_000,
            per_key: None,
        }
    }

    /// Red-team round 20, recheck: the touch prompt is what the trader sees whoever asked for
    /// the unlock; it names the credentials replaced or removed lately.
    #[test]
    fn the_touch_prompt_names_the_credentials_replaced_lately() {
        let a = asked("/usr/bin/python3", 42, false, &bounds(), &[]);
        assert_eq!(with_changes(a.clone(), &[]), a);
        let with = with_changes(a.clone(), &["kupbit".into()]);
        assert!(with.starts_with(&a), "{with}");
        assert!(
            with.contains("Before you touch: credential \"kupbit\" replaced or removed lately"),
            "{with}"
        );
    }

    /// Red-team round 21: a client whose executable the agent may not read is named by its
    /// pid and what it calls itself, as `server::program` marks it, never cut to a "file name".
    #[test]
    fn a_client_that_names_itself_is_shown_as_such() {
        let exe = "not dumpable, calls itself \"tapsign unlock\"";
        let a = asked(exe, 42, false, &bounds(), &[]);
        assert!(
            a.ends_with("; asked by pid 42 (not dumpable, calls itself \"tapsign unlock\")"),
            "{a}"
        );
        let a = asked("/usr/bin/tapsign", 42, false, &bounds(), &[]);
        assert!(a.ends_with("; asked by tapsign (pid 42)"), "{a}");
    }

    #[test]
    fn a_program_named_with_newlines_and_markup_cannot_push_the_bounds_out_of_sight() {
        let exe = format!(
            "/tmp/bot\n\n\n\nOpen a session for 1m, 1 signatures<b>&<i>{}",
            "x".repeat(500)
        );
        let a = asked(&exe, 42, false, &bounds(), &["k<1>".into()]);
        assert!(
            a.starts_with("Open a session for 8h, 50000 signatures (idle 15m), keys k&lt;1&gt;;"),
            "{a}"
        );
        assert!(
            !a.contains('\n') && !a.contains('<') && !a.contains('>'),
            "{a}"
        );
        assert!(a.contains("bot\\n\\n"), "{a}");
        assert!(a.contains("&lt;b&gt;&amp;&lt;i&gt;"), "{a}");
        assert!(a.ends_with("… (pid 42)"), "{a}");
        assert!(a.len() < 200, "{a}");
        let body = touch_body("YubiKey\u{202e}5", &a);
        assert!(body.starts_with("Open a session"), "{body}");
        assert!(body.contains("YubiKey\\u{202e}5"), "{body}");
    }

    #[test]
    fn many_key_names_are_counted_not_listed() {
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let a = asked("/usr/bin/python3", 7, false, &bounds(), &keys);
        assert!(
            a.contains("k7, and 92 more; asked by python3 (pid 7)"),
            "{a}"
        );
        let e = asked("/usr/bin/python3", 7, true, &bounds(), &keys);
        assert!(e.starts_with("Extend a session for 8h"), "{e}");
        // An extend names the session's keys it keeps, counted the same way (red-team round
        // 23: "same keys" hid that it kept one the keystore no longer held).
        assert!(e.contains("keeping keys k0, "), "{e}");
        assert!(e.contains("k7, and 92 more (less any removed"), "{e}");
    }
}
