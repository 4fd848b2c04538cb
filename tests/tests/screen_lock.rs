//! The session ends when the trader walks away: screen lock and suspend, as logind and the
//! desktops' screensavers announce them on D-Bus, lock the agent. The buses are private
//! `dbus-daemon`s and the services fakes that own the real names (tests/src/dbus.rs).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use serde_json::Value;
use tapsign_tests::dbus::{Lab, Trigger};
use tapsign_tests::{World, lock_source};

const WAIT: Duration = Duration::from_secs(10);
const API_KEY: &str = "ak-PUBLIC-4711";
const SECRET: &str = "sk-SECRET-0815";

/// Poll `status --json` until `done` holds (bounded); returns that status.
fn wait_for(w: &World, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    w.wait_for_status(what, WAIT, done)
}

fn wait_live(w: &World, name: &str) -> Value {
    wait_for(w, &format!("{name} live"), |st| {
        lock_source(st, name)["live"] == true
    })
}

/// An agent on the lab's buses with one key, its D-Bus sources subscribed.
fn agent_in(lab: &Lab) -> World {
    let mut w = World::new();
    w.setup_key("b", "binance", API_KEY, SECRET);
    w.start_agent_with(|c| lab.env(c));
    for name in [
        "logind-session",
        "logind-sleep",
        "org.freedesktop.ScreenSaver",
        "org.gnome.ScreenSaver",
    ] {
        wait_live(&w, name);
    }
    w
}

fn sign(w: &World) -> tapsign_tests::Run {
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
}

/// Unlock, fire `trigger`, and check the session ended for the reason `names`.
fn locks_on(trigger: Trigger, names: &str) {
    let lab = Lab::start();
    let w = agent_in(&lab);
    let unlocked = w.run(&["unlock"], "");
    unlocked.ok();
    assert!(
        !unlocked.stderr.contains("no screen-lock source"),
        "{unlocked:?}"
    );
    sign(&w).ok();
    lab.fire(trigger);
    let st = wait_for(&w, &format!("{trigger:?} locks"), |st| {
        st["state"] == "locked"
    });
    let reason = st["lock_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(names),
        "lock_reason {reason:?} lacks {names:?}"
    );
    sign(&w).fails_with(4, "locked");
    let audit = w.run(&["audit"], "");
    assert!(audit.ok().contains(names), "the lock is audited: {audit:?}");
}

#[test]
fn logind_session_lock_signal_locks() {
    locks_on(Trigger::SessionLock, "Session.Lock");
}

#[test]
fn logind_locked_hint_true_locks() {
    locks_on(Trigger::LockedHint, "LockedHint");
}

#[test]
fn prepare_for_sleep_locks() {
    locks_on(Trigger::PrepareForSleep, "suspend");
}

#[test]
fn freedesktop_screensaver_active_locks() {
    locks_on(
        Trigger::FreedesktopScreenSaver,
        "org.freedesktop.ScreenSaver",
    );
}

#[test]
fn gnome_screensaver_active_locks() {
    locks_on(Trigger::GnomeScreenSaver, "org.gnome.ScreenSaver");
}

#[test]
fn subscribed_bots_hear_that_a_suspend_ended_the_session() {
    use tapsign_proto::EventKind;
    let lab = Lab::start();
    let w = agent_in(&lab);
    let mut sub = tapsign_proto::client::Client::connect(&w.sock, "bot")
        .unwrap()
        .subscribe()
        .unwrap();
    sub.set_timeout(Some(WAIT)).unwrap();
    w.run(&["unlock"], "").ok();
    assert_eq!(sub.next_event().unwrap().event, EventKind::Unlocked);
    lab.fire(Trigger::PrepareForSleep);
    let e = sub.next_event().unwrap();
    assert_eq!(e.event, EventKind::Locked, "{e:?}");
    assert!(e.reason.unwrap().contains("suspend"));
}

#[test]
fn status_shows_the_sources_live_and_which_session() {
    let lab = Lab::start();
    let mut w = agent_in(&lab);
    let st = w.status();
    let session = lock_source(&st, "logind-session");
    let detail = session["detail"].as_str().unwrap();
    assert!(detail.contains("session/_37"), "{detail}");
    assert!(
        lab.pids_asked().contains(&w.agent_pid()),
        "GetSessionByPID(own pid)"
    );
    // Screensavers no fake plays are listed, not live.
    assert_eq!(lock_source(&st, "org.mate.ScreenSaver")["live"], false);
    let warnings = st["warnings"].to_string();
    assert!(!warnings.contains("no screen-lock source"), "{warnings}");
    let text = w.run(&["status"], "");
    assert!(text.ok().contains("org.gnome.ScreenSaver"), "{text:?}");
    // Stopping the agent with sources live is clean.
    assert_eq!(w.signal_agent("TERM"), Some(0));
}

#[test]
fn an_agent_outside_any_session_follows_the_users_graphical_session() {
    // A systemd user unit runs in user@.service: GetSessionByPID fails there.
    let lab = Lab::start_outside_session();
    let w = agent_in(&lab);
    let detail = lock_source(&w.status(), "logind-session")["detail"].to_string();
    assert!(
        detail.contains("graphical session") && detail.contains("_37"),
        "{detail}"
    );
    w.run(&["unlock"], "").ok();
    lab.fire(Trigger::SessionLock);
    wait_for(&w, "Session.Lock locks", |st| st["state"] == "locked");
}

#[test]
fn a_screensaver_that_starts_after_the_agent_is_heard() {
    let mut lab = Lab::start();
    let w = agent_in(&lab);
    let st = w.status();
    assert_eq!(lock_source(&st, "org.mate.ScreenSaver")["live"], false);
    lab.start_screensaver("org.mate.ScreenSaver");
    wait_live(&w, "org.mate.ScreenSaver");
    w.run(&["unlock"], "").ok();
    lab.screensaver_active("org.mate.ScreenSaver", true);
    let st = wait_for(&w, "MATE locks", |st| st["state"] == "locked");
    assert!(
        st["lock_reason"]
            .as_str()
            .unwrap()
            .contains("org.mate.ScreenSaver"),
        "{st:#}"
    );
}

#[test]
fn a_name_taken_and_dropped_many_times_does_not_silence_the_screensavers() {
    // A listener that never read its owner-change stream let zbus's small queue fill, and
    // the whole session-bus connection stopped: no ActiveChanged was heard again, while
    // `status` still said live.
    let mut lab = Lab::start();
    let w = agent_in(&lab);
    w.run(&["unlock"], "").ok();
    lab.stop_screensaver("org.freedesktop.ScreenSaver");
    lab.churn_name("org.freedesktop.ScreenSaver", 20);
    lab.screensaver_active("org.gnome.ScreenSaver", true);
    let st = wait_for(&w, "GNOME locks", |st| st["state"] == "locked");
    assert!(
        st["lock_reason"]
            .as_str()
            .unwrap()
            .contains("org.gnome.ScreenSaver"),
        "{st:#}"
    );
}

#[test]
fn screensaver_deactivating_does_not_lock() {
    let lab = Lab::start();
    let w = agent_in(&lab);
    w.run(&["unlock"], "").ok();
    lab.screensaver_active("org.gnome.ScreenSaver", false);
    // Then a real lock: if the `false` had locked, the reason would name it, not LockedHint.
    lab.fire(Trigger::LockedHint);
    let st = wait_for(&w, "LockedHint locks", |st| st["state"] == "locked");
    assert!(
        st["lock_reason"].as_str().unwrap().contains("LockedHint"),
        "{st:#}"
    );
}

#[test]
fn without_any_bus_the_agent_starts_and_unlock_warns() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    // The harness points both bus addresses at a socket that does not exist.
    w.start_agent();
    let st = wait_for(&w, "sources reported down", |st| {
        ["logind-session", "org.freedesktop.ScreenSaver"]
            .iter()
            .all(|n| {
                lock_source(st, n)["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no "))
            })
    });
    for s in st["lock_sources"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        if name.starts_with("logind") || name.contains("ScreenSaver") {
            assert_eq!(s["live"], false, "{s}");
        }
    }
    let unlocked = w.run(&["unlock"], "");
    unlocked.ok();
    assert!(
        unlocked.stderr.contains("no screen-lock source is live")
            && unlocked.stderr.contains("docs/screen-lock.md"),
        "{unlocked:?}"
    );
    // The agent still works: it signs, and `tapsign lock` still locks.
    sign(&w).ok();
    w.run(&["lock"], "").ok();
}

#[test]
fn a_bus_that_goes_away_turns_its_sources_not_live() {
    let mut lab = Lab::start();
    let w = agent_in(&lab);
    lab.system.kill();
    lab.session.kill();
    let st = wait_for(&w, "sources not live", |st| {
        ["logind-session", "logind-sleep", "org.gnome.ScreenSaver"]
            .iter()
            .all(|n| lock_source(st, n)["live"] == false)
    });
    let detail = lock_source(&st, "logind-session")["detail"].to_string();
    assert!(detail.contains("restart the agent"), "{detail}");
    let unlocked = w.run(&["unlock"], "");
    assert!(
        unlocked.stderr.contains("no screen-lock source is live"),
        "{unlocked:?}"
    );
}

#[test]
fn lock_sources_switched_off_in_the_config_are_not_live() {
    let lab = Lab::start();
    let mut w = World::new();
    w.config("[lock]\nscreen = false\nsuspend = false\n");
    w.start_agent_with(|c| lab.env(c));
    let st = w.status();
    for name in ["logind-session", "logind-sleep", "org.gnome.ScreenSaver"] {
        let s = lock_source(&st, name);
        assert_eq!(s["live"], false, "{s}");
        assert!(s["detail"].as_str().unwrap().contains("config.toml"), "{s}");
    }
    assert!(lab.pids_asked().is_empty(), "logind was not even asked");
}

fn wait_shown(lab: &Lab, what: &str) -> Vec<tapsign_tests::dbus::Shown> {
    let start = Instant::now();
    loop {
        let shown = lab.notifications();
        if shown.iter().any(|n| n.summary.contains(what)) {
            return shown;
        }
        assert!(
            start.elapsed() < WAIT,
            "no {what:?} notification: {shown:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn notifications_say_opened_and_locked_and_nothing_secret() {
    let lab = Lab::start();
    let w = agent_in(&lab);
    w.run(&["unlock"], "").ok();
    let shown = wait_shown(&lab, "touch your token");
    let touch = shown
        .iter()
        .find(|n| n.summary.contains("touch your token"))
        .unwrap();
    assert!(
        touch.body.contains("soft token"),
        "names the token: {touch:?}"
    );
    assert!(
        touch.body.contains("asked by tapsign (pid"),
        "names who asked: {touch:?}"
    );
    assert!(
        touch
            .body
            .starts_with("Open a session for 8h, 50000 signatures (idle 1h), every key"),
        "names the bounds first: {touch:?}"
    );
    wait_shown(&lab, "session open");
    lab.fire(Trigger::SessionLock);
    let shown = wait_shown(&lab, "locked");
    let locked = shown.iter().find(|n| n.summary.contains("locked")).unwrap();
    assert!(
        locked.body.contains("Session.Lock"),
        "names the reason: {locked:?}"
    );
    for n in &shown {
        assert_eq!(n.app_name, "tapsign");
        let text = format!("{} {}", n.summary, n.body);
        assert!(!text.contains(SECRET) && !text.contains(API_KEY), "{n:?}");
    }
}

#[test]
fn a_budget_running_out_is_notified() {
    let lab = Lab::start();
    let w = agent_in(&lab);
    w.run(&["unlock", "--max-signatures", "10"], "").ok();
    for _ in 0..9 {
        w.run(
            &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
        .ok();
    }
    let shown = wait_shown(&lab, "ending soon");
    let n = shown
        .iter()
        .find(|n| n.summary.contains("ending soon"))
        .unwrap();
    assert!(n.body.contains("1 signature left"), "{n:?}");
}

/// The touch prompt names the keys a bot asked for, so a "name" that is not a stored key's
/// (text or markup dressed as one) must be refused before any prompt is shown: the
/// unlocker looks the names up before it asks for the touch, and this keeps it so.
#[test]
fn a_key_name_no_key_could_have_never_reaches_the_touch_prompt() {
    use tapsign_proto::{ErrorCode, UnlockRequest, client::Client, error::ProtoError};
    let lab = Lab::start();
    let w = agent_in(&lab);
    let mut c = Client::connect(&w.sock, "bot").unwrap();
    let req = UnlockRequest {
        keys: Some(vec!["b</b> routine renewal, nothing new<b>".into()]),
        ..UnlockRequest::default()
    };
    match c.unlock(req) {
        Err(ProtoError::Agent { code, message }) => {
            assert_eq!(code, ErrorCode::UnknownKey, "{message}");
        }
        other => panic!("unlocked with a markup name: {other:?}"),
    }
    // Nothing to wait for when nothing comes: give a stray prompt a moment to arrive.
    std::thread::sleep(Duration::from_millis(300));
    let shown = lab.notifications();
    assert!(
        !shown.iter().any(|n| n.summary.contains("touch")),
        "a prompt was shown: {shown:?}"
    );
    // A real name is prompted for, by name.
    let req = UnlockRequest {
        keys: Some(vec!["b".into()]),
        ..UnlockRequest::default()
    };
    c.unlock(req).unwrap();
    let shown = wait_shown(&lab, "touch your token");
    assert!(
        shown
            .iter()
            .any(|n| n.body.contains("signatures (idle 1h), keys b; asked by")),
        "{shown:?}"
    );
}

#[test]
fn notifications_switched_off_send_nothing() {
    let lab = Lab::start();
    let mut w = World::new();
    w.setup_key("b", "binance", API_KEY, SECRET);
    w.config("[notifications]\nenabled = false\n");
    w.start_agent_with(|c| lab.env(c));
    wait_live(&w, "logind-session");
    w.run(&["unlock"], "").ok();
    lab.fire(Trigger::SessionLock);
    wait_for(&w, "Session.Lock locks", |st| st["state"] == "locked");
    // Nothing to wait for when nothing comes: give a stray notification a moment to arrive.
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.notifications().is_empty(), "{:?}", lab.notifications());
}
