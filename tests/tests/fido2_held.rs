//! A FIDO2 key on a PC/SC reader that another program has open, or a pcscd that stops while
//! tapsign waits for the card: the real agent and CLI, a private pcscd and the virtual key
//! (tests/vyk). Needs root and the PC/SC packages; without them each test prints SKIPPED (and
//! fails in CI, where TAPSIGN_VYK_REQUIRE=1).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fido2_support;

use std::ffi::CString;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fido2_support::*;
use tapsign_tests::World;
use tapsign_vyk::{PinProtocol, harness};

/// How long a refusal may take: the 3 s bound, and the processes' own start.
const BOUND: Duration = Duration::from_secs(6);

/// Another program's handle on reader `reader`: connected (`mode`) and, with `tx`, inside a
/// PC/SC transaction, until `release` is sent (or 20 s pass).
fn hold(
    reader: String,
    mode: pcsc::ShareMode,
    tx: bool,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (held, got) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let name = CString::new(reader).unwrap();
        let mut card = ctx.connect(&name, mode, pcsc::Protocols::ANY).unwrap();
        let tx = tx.then(|| card.transaction().unwrap());
        held.send(()).unwrap();
        let _ = wait.recv_timeout(Duration::from_secs(20));
        drop(tx);
    });
    got.recv().unwrap();
    (release, holder)
}

/// An unlock sent straight to the agent, as a bot sends it.
fn bot_unlock(w: &World, pin: Option<&str>) -> Result<(), String> {
    let req = tapsign_proto::UnlockRequest {
        pin: pin.map(|p| tapsign_proto::Pin::new(p.into())),
        ..Default::default()
    };
    w.client()
        .unlock(req)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Red-team round 27, F1: another program holding a PC/SC transaction on the FIDO2 card made
/// `tapsign unlock` wait without a word for as long as it held it, in the CLI's search for
/// the token to name in the PIN prompt and in the agent's. Both now give up within the 3 s
/// bound the PIV path has, with `busy` naming the reader, before any prompt.
#[test]
fn a_fido2_card_another_program_holds_a_transaction_on_is_busy_within_seconds() {
    harness::run(
        &[fido(21_270_001, Some(PIN), &[PinProtocol::Two])],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--name", "held"], &format!("{PIN}\n"));
            add_key(&w);
            agent(&mut w);
            let reader = stack.reader_name(0);
            let (release, holder) = hold(reader.clone(), pcsc::ShareMode::Shared, true);

            let started = Instant::now();
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            let took = started.elapsed();
            out.fails_with(1, "[busy]");
            assert!(out.stderr.contains("held by another program"), "{out:?}");
            assert!(out.stderr.contains(&reader), "names the reader: {out:?}");
            assert!(
                !out.stderr.contains("Touch"),
                "refused before any prompt: {out:?}"
            );
            assert!(took < BOUND, "the CLI was refused after {took:?}");

            // The agent's own search, as a bot's unlock meets it.
            let started = Instant::now();
            let e = bot_unlock(&w, Some(PIN)).unwrap_err();
            let took = started.elapsed();
            assert!(
                e.contains("held by another program") && e.contains(&reader),
                "{e}"
            );
            assert!(took < BOUND, "the agent refused after {took:?}");

            let _ = release.send(());
            holder.join().unwrap();
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        },
    );
}

/// Red-team round 27, F1: while a bot's unlock waited on a FIDO2 card another program held,
/// a lock came, and the next unlock was refused `busy` saying the pending one held the turn
/// "until the token gives up waiting for its touch (15 to 30 s)": no touch was asked, and it
/// held the turn for as long as the other program liked. It now says the few seconds it is,
/// and the pending one ends within them.
#[test]
fn an_unlock_refused_behind_one_waiting_on_a_held_fido2_card_is_told_the_truth() {
    harness::run(&[fido(21_270_002, None, &[PinProtocol::Two])], |stack| {
        let mut w = World::new();
        enroll(&w, &["--name", "nopin"], "");
        add_key(&w);
        agent(&mut w);
        let (release, holder) = hold(stack.reader_name(0), pcsc::ShareMode::Shared, true);
        std::thread::scope(|s| {
            let started = Instant::now();
            let first = s.spawn(|| bot_unlock(&w, None));
            w.wait_for_status("the unlock pending", Duration::from_secs(5), |st| {
                st["warnings"].to_string().contains("asked by pid")
            });
            w.run(&["lock"], "").ok();
            let e = bot_unlock(&w, None).unwrap_err();
            assert!(e.contains("about 3 s"), "{e}");
            let first = first.join().unwrap();
            let took = started.elapsed();
            assert!(first.is_err(), "{first:?}");
            assert!(took < BOUND, "the pending unlock held the turn {took:?}");
        });
        let _ = release.send(());
        holder.join().unwrap();
        let out = w.run(&["unlock"], "");
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}

/// Red-team round 27, F2: a FIDO2 card another program holds exclusively was said "not
/// present: insert FIDO2 key ..." (`token_absent`), the PC/SC error thrown away by the reader
/// search. It is `busy`, naming the reader, as the PIV side of the same card says.
#[test]
fn a_fido2_card_held_exclusively_by_another_program_is_busy_not_absent() {
    harness::run(&[fido(21_270_003, None, &[PinProtocol::Two])], |stack| {
        let mut w = World::new();
        enroll(&w, &["--name", "excl"], "");
        add_key(&w);
        agent(&mut w);
        let reader = stack.reader_name(0);
        let (release, holder) = hold(reader.clone(), pcsc::ShareMode::Exclusive, false);
        let out = w.run(&["unlock"], "");
        out.fails_with(1, "[busy]");
        assert!(out.stderr.contains("held by another program"), "{out:?}");
        assert!(
            out.stderr.contains(&format!(
                "if it is the card in PC/SC reader {reader}, that card is held by another program"
            )),
            "{out:?}"
        );
        let _ = release.send(());
        holder.join().unwrap();
        let out = w.run(&["unlock"], "");
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}

/// Red-team round 27, F2: pcscd killed while the agent waited for a FIDO2 card another
/// program held was said "no enrolled token is present: insert FIDO2 key ...". It says pcscd
/// stopped, and once it is back the unlock works.
#[test]
fn pcscd_stopping_while_an_unlock_waits_for_a_fido2_card_is_said_so() {
    harness::run(&[fido(21_270_004, None, &[PinProtocol::Two])], |stack| {
        let mut w = World::new();
        enroll(&w, &["--name", "gone"], "");
        add_key(&w);
        agent(&mut w);
        let (release, holder) = hold(stack.reader_name(0), pcsc::ShareMode::Shared, true);
        let e = std::thread::scope(|s| {
            let unlock = s.spawn(|| bot_unlock(&w, None));
            w.wait_for_status("the unlock pending", Duration::from_secs(5), |st| {
                st["warnings"].to_string().contains("asked by pid")
            });
            // The agent is in its search, waiting for the held card.
            std::thread::sleep(Duration::from_millis(700));
            stack.kill_pcscd().unwrap();
            unlock.join().unwrap().unwrap_err()
        });
        let _ = release.send(());
        holder.join().unwrap();
        assert!(
            e.contains("pcscd") && e.contains("not running or stopped"),
            "{e}"
        );
        assert!(!e.contains("insert FIDO2 key"), "{e}");
        stack.start_pcscd().unwrap();
        let out = w.run(&["unlock"], "");
        assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
    });
}

/// Red-team round 27, F5: the FIDO2 path used the card on a shared connection, in a
/// transaction, so another program's command could still come between the agent's
/// getKeyAgreement and its PIN, or spend a PIN try between the retries read and the PIN's use.
/// From its first question to a FIDO2 key found, tapsign holds the card alone, as the PIV path
/// does: with another program's handle open on it, the unlock is `busy` and the PIN not sent.
#[test]
fn a_fido2_pin_goes_only_to_a_card_no_other_program_has_open() {
    harness::run(
        &[fido(21_270_005, Some(PIN), &[PinProtocol::Two])],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--name", "alone"], &format!("{PIN}\n"));
            add_key(&w);
            agent(&mut w);
            let touch = stack.key(0).touch();
            let asked = touch.requests();
            let (release, holder) = hold(stack.reader_name(0), pcsc::ShareMode::Shared, false);
            let out = w.run(&["unlock"], "999999\n");
            out.fails_with(1, "[busy]");
            assert!(out.stderr.contains("held by another program"), "{out:?}");
            let e = bot_unlock(&w, Some("999999")).unwrap_err();
            assert!(e.contains("held by another program"), "{e}");
            let _ = release.send(());
            holder.join().unwrap();
            assert_eq!(touch.requests(), asked, "no touch asked");
            // The wrong PIN was never sent: the key still has all 8 tries.
            w.run(&["unlock"], "999999\n").fails_with(6, "7 tries left");
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        },
    );
}

/// Red-team round 27, recheck F3: with pcscd not running, `tapsign unlock` printed `Touch
/// FIDO2 key ...` and then "insert FIDO2 key" of a key that was in the reader: the locate
/// over every enrolled token rebuilt the absent error and dropped the FIDO2 search's note
/// that the PC/SC readers were not searched. The CLI says it before any prompt, and the agent
/// says it to a bot.
#[test]
fn an_unlock_with_pcscd_not_running_says_so_not_only_insert() {
    harness::run(
        &[fido(21_270_006, Some(PIN), &[PinProtocol::Two])],
        |stack| {
            let mut w = World::new();
            enroll(&w, &["--name", "NFC key"], &format!("{PIN}\n"));
            add_key(&w);
            agent(&mut w);
            stack.stop_pcscd().unwrap();
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            out.fails_with(6, "[token_absent]");
            assert!(out.stderr.contains("pcscd"), "{out:?}");
            assert!(
                out.stderr.contains("NFC readers were not searched"),
                "{out:?}"
            );
            assert!(
                !out.stderr.contains("Touch"),
                "said before any prompt: {out:?}"
            );
            let e = bot_unlock(&w, Some(PIN)).unwrap_err();
            assert!(e.contains("pcscd") && e.contains("insert FIDO2 key"), "{e}");
            stack.start_pcscd().unwrap();
            let out = w.run(&["unlock"], &format!("{PIN}\n"));
            assert!(out.ok().contains("Unlocked 1 key(s)"), "{out:?}");
        },
    );
}

/// Red-team round 27, recheck F5: with the FIDO2 key not plugged in, a card that is no FIDO2
/// key at all, held by another program (gpg's scdaemon holds its card so by default), was said
/// as the key being held: "close that program", where the truth was most likely "insert the
/// key". No key being found, both are said; still `busy` (protocol.md), so a key another
/// program holds only for a moment opens on the next try.
#[test]
fn a_held_card_with_no_fido2_key_found_says_insert_the_key_too() {
    harness::run(
        &[
            fido(21_270_007, None, &[PinProtocol::Two]),
            piv_key(21_270_008),
        ],
        |stack| {
            let mut w = World::new();
            enroll(
                &w,
                &["--name", "away", "--reader", &stack.reader_name(0)],
                "",
            );
            add_key(&w);
            agent(&mut w);
            stack.pull(0).unwrap();
            let other = stack.reader_name(1);
            let (release, holder) = hold(other.clone(), pcsc::ShareMode::Exclusive, false);
            let out = w.run(&["unlock"], "");
            out.fails_with(1, "[busy]");
            assert!(
                out.stderr.contains("no FIDO2 key was found: insert FIDO2 key \"away\"; or, if it is the card in PC/SC reader"),
                "{out:?}"
            );
            assert!(out.stderr.contains(&other), "{out:?}");
            let e = bot_unlock(&w, None).unwrap_err();
            assert!(e.contains("insert FIDO2 key \"away\""), "{e}");
            let _ = release.send(());
            holder.join().unwrap();
            w.run(&["unlock"], "")
                .fails_with(6, "insert FIDO2 key \"away\"");
        },
    );
}
