//! Starting, replacing, signalling and stopping the agent.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tapsign_tests::{World, skip};

#[test]
fn a_second_agent_refuses_to_start_while_one_answers() {
    let mut w = World::new();
    w.start_agent();
    let second = w.run(&["agent"], "");
    second.fails_with(1, "already running");
    w.client().status().unwrap();
}

/// Red-team round 23: a second agent on another socket but the same home shared the audit log
/// and the Kraken nonce files, and one of the two withheld every signature. It refuses to start,
/// naming the agent that holds the home; once that one stops, it starts. Its recheck: a lock
/// file deleted while the agent ran let the second one in, and a second agent with its own
/// state folder (`XDG_STATE_HOME`) but the same keystore was not refused: the folders
/// themselves are held, the state one and the data one.
#[test]
fn a_second_agent_on_another_socket_refuses_a_home_one_serves() {
    let mut w = World::new();
    w.start_agent();
    let other = w.sock.with_file_name("other.sock");
    let second = |env: &[(&str, &std::path::Path)]| {
        // Bounded: an agent that started would serve until stopped.
        let mut cmd = w.cmd_under(&["timeout", "10"], &["agent"]);
        cmd.env("TAPSIGN_SOCK", &other);
        for (k, v) in env {
            cmd.env(k, v);
        }
        w.run_cmd(cmd, "")
    };
    let out = second(&[]);
    out.fails_with(1, "already running on this home");
    out.fails_with(1, &format!("pid {}", w.agent_pid()));
    assert!(!other.exists(), "the refused agent bound its socket");
    // No file in the home to delete.
    assert!(!w.home().join("agent.lock").exists());
    // The keystore shared, the log not: XDG folders, the data one reaching the home by a link.
    let split = w.home().join("split");
    std::fs::create_dir_all(split.join("data")).unwrap();
    std::os::unix::fs::symlink(w.home(), split.join("data").join("tapsign")).unwrap();
    let out = second(&[
        ("TAPSIGN_HOME", std::path::Path::new("")),
        ("HOME", &split),
        ("XDG_DATA_HOME", &split.join("data")),
        ("XDG_STATE_HOME", &split.join("state")),
        ("XDG_CONFIG_HOME", &split.join("config")),
    ]);
    out.fails_with(1, "already running on this home");
    w.client().status().unwrap();
    // SIGKILL leaves no way to release it but the kernel's: the next agent starts.
    w.signal_agent("KILL");
    w.start_agent();
    w.client().status().unwrap();
}

/// Red-team round 23: `tapsign lock` in a shell whose TAPSIGN_SOCK is not the agent's said
/// "cannot reach the agent ... start it", while the agent serving the same home kept its
/// session open: a lock hook locked nothing. It finds that agent by the home it holds and
/// sends it SIGHUP; other commands name it instead of advising a second agent.
#[test]
fn a_lock_with_another_socket_locks_the_agent_serving_this_home() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let elsewhere = w.sock.with_file_name("elsewhere.sock");
    let run = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.env("TAPSIGN_SOCK", &elsewhere);
        w.run_cmd(cmd, "")
    };
    let pid = w.agent_pid();
    let out = run(&["status"]);
    out.fails_with(3, &format!("a tapsign agent (pid {pid}) runs on this home"));
    assert!(!out.stderr.contains("start it with"), "{out:?}");
    let out = run(&["lock"]);
    assert!(
        out.ok()
            .contains(&format!("the agent serving this home (pid {pid})")),
        "{out:?}"
    );
    w.wait_for_status("the session locked", Duration::from_secs(10), |s| {
        s["state"] == "locked"
    });
}

/// A listener at `path` that never accepts, as a bot plants one: a backlog of 0, its slot
/// taken by a connection of its own, so that a connect there waits. Kept while the returned
/// pair lives.
fn never_accepting(
    path: &std::path::Path,
) -> (
    std::os::unix::net::UnixListener,
    Vec<std::os::unix::net::UnixStream>,
) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    rustix::net::listen(&listener, 0).unwrap();
    let mut held = Vec::new();
    while let Ok(s) = tapsign_proto::client::connect_waiting(path, Duration::from_millis(100)) {
        held.push(s);
        assert!(held.len() < 64, "a backlog of 0 took 64 connections");
    }
    (listener, held)
}

/// Red-team round 26: a listener that never accepts, where a lock hook looks for the agent
/// (its TAPSIGN_SOCK is not the agent's). `tapsign lock` waited 2 s, found no agent behind the
/// listener to signal, and exited 1 with the agent serving this home still unlocked; `status`
/// said "`tapsign lock` still locks it". The home's agent is locked all the same, and
/// `status` says so of it.
#[test]
fn a_lock_past_a_listener_that_never_accepts_locks_the_agent_serving_this_home() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let planted = w.sock.with_file_name("planted.sock");
    let _plant = never_accepting(&planted);
    let run = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.env("TAPSIGN_SOCK", &planted);
        w.run_cmd(cmd, "")
    };
    let pid = w.agent_pid();
    let out = run(&["status"]);
    out.fails_with(1, "is no agent of yours");
    out.fails_with(
        1,
        &format!("the tapsign agent serving this home (pid {pid})"),
    );
    out.fails_with(1, "`tapsign lock` locks it all the same");
    let out = run(&["lock"]);
    let said = out.ok();
    assert!(
        said.contains(&format!("the agent serving this home (pid {pid})")),
        "{out:?}"
    );
    w.wait_for_status("the session locked", Duration::from_secs(10), |s| {
        s["state"] == "locked" && s["lock_reason"].as_str().unwrap_or("").contains("SIGHUP")
    });
}

/// Red-team round 26: a bot running as another user planted the default socket folder (no
/// `XDG_RUNTIME_DIR` of root's making), with a listener there that never accepts. The agent
/// refuses that folder, and the trader starts it on another socket; the screen-lock hook,
/// without TAPSIGN_SOCK, waited 2 s on the plant and locked nothing. Another user's socket or
/// folder is no agent of ours: nothing there is waited on, and the agent serving this home is
/// locked by SIGHUP.
#[test]
fn a_lock_hook_past_a_socket_another_user_planted_locks_the_agent_serving_this_home() {
    if !skip::needs_root("planting a socket of another user's") {
        return;
    }
    const NOBODY: u32 = 65534;
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    // The default path under a runtime folder anyone could write to, squatted by nobody.
    let runtime = w.home().join("runtime");
    let folder = runtime.join("tapsign");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let planted = folder.join("agent.sock");
    let _plant = never_accepting(&planted);
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    for p in [&folder, &planted] {
        std::os::unix::fs::lchown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let run = |w: &World, args: &[&str]| {
        let mut cmd = w.cmd(args);
        cmd.env_remove("TAPSIGN_SOCK")
            .env("XDG_RUNTIME_DIR", &runtime);
        w.run_cmd(cmd, "")
    };
    let pid = w.agent_pid();
    let out = run(&w, &["status"]);
    out.fails_with(3, "belongs to uid 65534");
    out.fails_with(
        3,
        &format!("the tapsign agent serving this home (pid {pid})"),
    );
    out.fails_with(3, "`tapsign lock` locks it all the same");
    let started = std::time::Instant::now();
    let out = run(&w, &["lock"]);
    let said = out.ok();
    // A hang guard only: it is not waited on at all, which the message shows.
    assert!(started.elapsed() < Duration::from_secs(30), "{out:?}");
    assert!(said.contains("belongs to uid 65534"), "{out:?}");
    assert!(!said.contains("did not answer"), "{out:?}");
    assert!(
        said.contains(&format!("the agent serving this home (pid {pid})")),
        "{out:?}"
    );
    w.wait_for_status("the session locked", Duration::from_secs(10), |s| {
        s["state"] == "locked" && s["lock_reason"].as_str().unwrap_or("").contains("SIGHUP")
    });
    // No agent on this home: said as such (exit 3), not "start it" where it cannot start.
    w.signal_agent("TERM");
    let out = run(&w, &["lock"]);
    out.fails_with(3, "belongs to uid 65534");
    out.fails_with(3, "a path in a folder of your own");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let mut w = World::new();
    std::fs::create_dir_all(w.sock.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        w.sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // A listener dropped without unlinking leaves a socket file nobody answers on: a crashed agent.
    drop(std::os::unix::net::UnixListener::bind(&w.sock).unwrap());
    assert!(w.sock.exists());
    w.start_agent();
    // The probe that waits for the agent can find the stale socket answering for a moment: a
    // process another test thread forks holds the dropped listener until it execs.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w.agent_log().contains("listening on") {
        assert!(std::time::Instant::now() < deadline, "{}", w.agent_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(w.agent_log().contains("stale socket"), "{}", w.agent_log());
}

#[test]
fn a_file_that_is_not_a_socket_at_the_socket_path_is_left_alone() {
    // A mistyped TAPSIGN_SOCK naming one of the user's files: connecting to it is refused as
    // to a stale socket, and it used to be deleted as one.
    let w = World::new();
    let dir = w.sock.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(&w.sock, "Host prod\n  HostName 10.0.0.1\n").unwrap();
    w.run(&["agent"], "")
        .fails_with(1, "something other than a socket is there");
    let kept = std::fs::read_to_string(&w.sock).unwrap();
    assert_eq!(kept, "Host prod\n  HostName 10.0.0.1\n");
}

#[test]
fn socket_folder_and_socket_are_private() {
    let mut w = World::new();
    w.start_agent();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(w.sock.parent().unwrap()), 0o700);
    assert_eq!(mode(&w.sock), 0o600);
}

#[test]
fn a_socket_folder_others_can_write_is_refused() {
    let w = World::new();
    let dir = w.sock.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    w.run(&["agent"], "")
        .fails_with(1, "can be written by other users");
}

#[test]
fn sigterm_wipes_the_session_and_exits_cleanly() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    assert_eq!(w.signal_agent("TERM"), Some(0));
    assert!(!w.sock.exists(), "the socket is removed on exit");
    let log = w.agent_log();
    assert!(log.contains("locked: agent received SIGTERM"), "{log}");
    w.run(&["audit"], "")
        .ok()
        .contains("SIGTERM")
        .then_some(())
        .expect("the lock is audited");
}

/// Red-team round 22: a `lock` from any program was shown in `status` and the audit log as
/// "locked by `tapsign lock`", with no pid or program, so a bot locking the session before
/// each of the trader's orders was put down to the trader. Both name the program now, as
/// every other decision line does.
#[test]
fn a_lock_request_from_a_program_is_shown_and_audited_with_its_pid_and_program() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    // This test is the program: any client of the user's may lock.
    w.client().lock().unwrap();
    let me = std::env::current_exe().unwrap();
    let said = format!(
        "locked by a `lock` request from pid {} ({})",
        std::process::id(),
        me.display()
    );
    let v = w.status();
    assert_eq!(v["state"], "locked", "{v}");
    assert_eq!(v["lock_reason"], said.as_str(), "{v}");
    let text = w.run(&["status"], "");
    assert!(text.ok().contains(&said), "{text:?}");
    let audit = w.run(&["audit"], "");
    assert!(audit.ok().contains(&format!("lock ({said})")), "{audit:?}");
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap_or_default();
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|l: &serde_json::Value| l["event"]["type"] == "lock")
        .unwrap_or_else(|| panic!("no lock line in {log}"));
    assert_eq!(line["event"]["pid"], std::process::id(), "{line}");
    assert_eq!(line["event"]["exe"], me.display().to_string(), "{line}");
}

#[test]
fn sighup_locks_but_keeps_serving() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let pid = w.agent_pid().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let st = w.run(&["status", "--json"], "");
        if st.ok().contains("\"locked\"") {
            assert!(st.stdout.contains("SIGHUP"), "{st:?}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "SIGHUP did not lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn cli_without_an_agent_says_how_to_start_one() {
    let w = World::new();
    w.run(&["status"], "").fails_with(3, "tapsign agent");
}

#[test]
fn a_symlinked_socket_folder_is_refused() {
    let w = World::new();
    let real = w.home().join("elsewhere");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, w.sock.parent().unwrap()).unwrap();
    w.run(&["agent"], "").fails_with(1, "symbolic link");
}

/// Take the agent's one general slot (max_connections = 1 leaves one more, kept back for
/// `status` and `lock`) with a client that says hello and then sits there.
fn hog_the_general_slot(w: &World) -> tapsign_proto::client::Client {
    let start = std::time::Instant::now();
    loop {
        match tapsign_proto::client::Client::connect(&w.sock, "hog") {
            Ok(c) => {
                // A client that got the kept-back slot is hung up on after one request: make
                // sure this one holds a full slot.
                let mut c = c;
                if c.status().is_ok() && c.status().is_ok() {
                    return c;
                }
            }
            Err(e) => assert_eq!(e.code(), Some(tapsign_proto::ErrorCode::Busy), "{e}"),
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the hog never got the slot"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn unlock_when_free(w: &World) {
    let start = std::time::Instant::now();
    while w.run(&["unlock"], "").code != 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "unlock never got a slot"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn lock_gets_through_on_the_kept_back_slot_when_every_other_is_taken() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[server]\nmax_connections = 1\n");
    w.start_agent();
    unlock_when_free(&w);
    let _hog = hog_the_general_slot(&w);
    let out = w.run(&["lock"], "");
    assert!(!out.ok().contains("SIGHUP"), "{out:?}");
    let st = w.run(&["status", "--json"], "");
    assert!(st.ok().contains("\"locked\""), "{st:?}");
}

#[test]
fn lock_falls_back_to_sighup_when_even_the_kept_back_slot_is_taken() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[server]\nmax_connections = 1\nframe_timeout = \"20s\"\n");
    w.start_agent();
    unlock_when_free(&w);
    let hog = hog_the_general_slot(&w);
    // A connection that says nothing holds the kept-back slot until the frame timeout.
    let silent = std::os::unix::net::UnixStream::connect(&w.sock).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = w.run(&["lock"], "");
    assert!(out.ok().contains("SIGHUP"), "{out:?}");
    drop((hog, silent));
    let start = std::time::Instant::now();
    loop {
        let st = w.run(&["status", "--json"], "");
        if st.code == 0 {
            assert!(
                st.stdout.contains("\"locked\"") && st.stdout.contains("SIGHUP"),
                "{st:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{st:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn an_agent_whose_stderr_reader_has_gone_keeps_unlocking_signing_and_locking() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    // stderr is a pipe nobody reads any more (a journal that went away): every line the agent
    // writes now fails with EPIPE, which must cost the line and nothing else.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    w.start_agent_with(|c| {
        c.stderr(writer);
    });
    let sign = ["sign", "b", "--method", "GET", "--path", "/api/v3/account"];
    for _ in 0..2 {
        w.run(&["unlock"], "").ok();
        let v = tapsign_tests::signed(w.run(&sign, "").ok());
        assert!(v["query"].as_str().unwrap().contains("signature="), "{v}");
        w.run(&["lock"], "").ok();
        w.run(&sign, "").fails_with(4, "locked");
    }
    assert_eq!(
        w.signal_agent("TERM"),
        Some(0),
        "the agent did not stop cleanly"
    );
}

/// Red-team round 18: with its stderr a pipe whose reader stopped (a terminal's window
/// stopped, `tapsign agent 2>&1 | tee` with `tee` sent SIGSTOP, by any process of the user),
/// the agent's next line waited for room in the pipe, holding the session's lock when an
/// unlock replaced a session: `tapsign lock` said it had locked (by SIGHUP) while the secrets
/// stayed in memory for as long as the pipe stayed full. Lines now go through a queue that
/// drops what does not fit: unlocks, replacing unlocks and the lock go through at once.
#[test]
fn an_agent_whose_stderr_is_full_keeps_unlocking_and_locking() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.setup_key("c", "binance", "ak2", "sk2");
    let (reader, writer) = std::io::pipe().unwrap();
    w.start_agent_with(|c| {
        c.stderr(writer);
    });
    // Fill the pipe through a description of its own (non-blocking for this test only: the
    // agent's stays blocking), to the last byte.
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", reader.as_raw_fd()))
        .unwrap();
    for chunk in [4096, 1] {
        while filler.write(&vec![b'.'; chunk]).is_ok() {}
    }
    w.run(&["unlock", "b"], "").ok();
    // Replaces the session: the old one's end is told under the session's lock.
    w.run(&["unlock", "b", "c"], "").ok();
    let lock = w.run(&["lock"], "");
    lock.ok();
    assert!(
        !lock.stdout.contains("SIGHUP") && !lock.stderr.contains("SIGHUP"),
        "the agent did not answer `tapsign lock`: {lock:?}"
    );
    let status = w.run(&["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(v["state"], "locked", "{v}");
    let why = v["lock_reason"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("locked by `tapsign lock`, pid ")
            && why.ends_with(&format!("({})", tapsign_tests::tapsign_bin().display())),
        "{v}"
    );
    drop(reader);
    assert_eq!(w.signal_agent("TERM"), Some(0), "the agent did not stop");
}

fn kill(w: &World, sig: &str) {
    let pid = w.agent_pid().to_string();
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    if sig == "STOP" {
        wait_stopped(w.agent_pid());
    }
}

/// Wait (bounded) until every thread of `pid` is stopped. kill(2) returns once the stop is
/// sent, not once it took effect: a thread running on another CPU stops when that CPU takes
/// the interrupt, which on a loaded virtual machine can come after the test's next writes.
fn wait_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all_stopped = tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // `pid (comm) S ...`: the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            state.starts_with('T') || state.starts_with('t')
        });
        if all_stopped {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not stop"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_stopped_agent_locks_when_it_runs_again() {
    // Stopped, it cannot read the bus: a screen lock or suspend signal can be lost (a bot of
    // the same user can stop it, and flood its bus connection meanwhile).
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    kill(&w, "STOP");
    kill(&w, "CONT");
    let st = w.wait_for_status("locked after SIGCONT", Duration::from_secs(5), |s| {
        s["state"] == "locked"
    });
    assert!(st.to_string().contains("SIGCONT"), "{st}");
}

#[test]
fn lock_does_not_wait_on_a_stopped_agent_and_its_signal_locks_it() {
    // `tapsign lock; swaylock`: a stopped or wedged agent once held the screen locker back
    // for as long as it stayed so.
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    kill(&w, "STOP");
    let started = std::time::Instant::now();
    let out = w.run(&["lock"], "");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.ok().contains("did not answer within 1.8 s"), "{out:?}");
    kill(&w, "CONT");
    w.wait_for_status("locked once running", Duration::from_secs(5), |s| {
        s["state"] == "locked"
    });
}

/// `tapsign status` waited for ever on an agent a bot had stopped (SIGSTOP): it waits 5 s for
/// each answer now, and says what to do.
#[test]
fn status_does_not_wait_for_ever_on_a_stopped_agent() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    kill(&w, "STOP");
    // Run with a deadline of its own: a `status` that waits for ever fails the test, rather
    // than hang it.
    let mut status = w.cmd(&["status"]);
    status
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = status.spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            kill(&w, "CONT");
            panic!("status still waits on the stopped agent after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not answer within 5 s"), "{stderr}");
    assert!(stderr.contains("`tapsign lock` still locks it"), "{stderr}");
    kill(&w, "CONT");
    w.run(&["status"], "").ok();
}

/// Red-team round 6: requests a bot queued on its connections while the agent was stopped
/// were served after SIGCONT, before the SIGCONT handler on the accept loop locked (8 to 293
/// signatures of 2,400 in four runs, after `tapsign lock` had said "wiped"). The watchdog
/// now notices the gap, and a request that finds it locks first.
#[test]
fn requests_queued_while_the_agent_was_stopped_are_not_signed() {
    use std::io::Write;
    use tapsign_proto::frame::{decode_body, encode, read_frame};
    use tapsign_proto::{PROTOCOL_VERSION, Request, Response, SignRequest};
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let answer = |s: &mut std::os::unix::net::UnixStream| -> Response {
        decode_body(&read_frame(s).unwrap()).unwrap()
    };
    let mut conns: Vec<_> = (0..24)
        .map(|_| {
            let mut s = std::os::unix::net::UnixStream::connect(&w.sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let hello = Request::Hello {
                version: PROTOCOL_VERSION,
                client: "queued".into(),
            };
            s.write_all(&encode(&hello).unwrap()).unwrap();
            assert!(matches!(answer(&mut s), Response::Hello { .. }));
            s
        })
        .collect();
    let sign = encode(&Request::Sign(SignRequest {
        key: "b".into(),
        method: "GET".into(),
        path: "/api/v3/account".into(),
        query: String::new(),
        body: String::new(),
        kind: Default::default(),
    }))
    .unwrap();
    kill(&w, "STOP");
    for s in &mut conns {
        for _ in 0..40 {
            s.write_all(&sign).unwrap();
        }
    }
    std::thread::sleep(tapsign_agent::watchdog::STALL + Duration::from_millis(500));
    kill(&w, "CONT");
    let mut signed = 0;
    for s in &mut conns {
        for _ in 0..40 {
            if matches!(answer(s), Response::Signed(_)) {
                signed += 1;
            }
        }
    }
    assert_eq!(
        signed,
        0,
        "requests queued during the stop were signed; agent log:\n{}",
        w.agent_log()
    );
    let st = w.status();
    assert_eq!(st["state"], "locked", "{st}");
    let why = st["lock_reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("did not run") || why.contains("SIGCONT"),
        "{why}"
    );
}

/// Wait (bounded) until the session `held` sees is locked because its socket moved.
fn locked_for_a_moved_socket(held: &mut tapsign_proto::client::Client, never: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let st = held.status().unwrap();
        if st.state == tapsign_proto::SessionState::Locked {
            let why = st.lock_reason.unwrap_or_default();
            assert!(why.contains("was moved"), "{why}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{never}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Red-team round 6: the socket's folder is the user's, so a bot could move the agent's
/// socket aside and answer `tapsign lock` from a program of its own at the same path, while the
/// real agent kept signing on the bot's connection. The agent now locks as soon as its path no
/// longer names its socket. Second look: the check ran once every 100 ms, and a bot that timed
/// its swaps to the beat (visible in /proc) kept a decoy at the path 93% of the time unseen;
/// inotify sees every change to the name, so a swap put back at once still locks.
#[test]
fn an_agent_whose_socket_is_moved_aside_locks_even_if_it_is_put_back_at_once() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    let aside = w.sock.with_file_name("hidden.sock");
    let sign = ["sign", "b", "--method", "GET", "--path", "/api/v3/account"];
    for put_back_at_once in [false, true] {
        w.run(&["unlock"], "").ok();
        w.run(&sign, "").ok();
        let mut held = w.client();
        std::fs::rename(&w.sock, &aside).unwrap();
        if put_back_at_once {
            std::fs::rename(&aside, &w.sock).unwrap();
        }
        locked_for_a_moved_socket(
            &mut held,
            &format!("unseen (put back at once: {put_back_at_once})"),
        );
        if !put_back_at_once {
            std::fs::rename(&aside, &w.sock).unwrap();
        }
        // Putting it back is a change too, and locks when its event is read: let that happen
        // before the next session opens (a trader's unlock, which waits for a touch, comes
        // long after it).
        std::thread::sleep(Duration::from_millis(500));
    }
    // Put back, the socket serves again, and a new session is not locked by it.
    w.run(&["unlock"], "").ok();
    w.run(&sign, "").ok();
}

/// Wait (bounded) until `pid_file` holds `text`.
fn pid_file_says(pid_file: &std::path::Path, text: &str, never: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(pid_file).unwrap_or_default() != text {
        assert!(std::time::Instant::now() < deadline, "{never}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Red-team round 7: while every connection slot is taken, `tapsign lock` sends SIGHUP to the
/// pid in the pid file next to the socket (socket activation: systemd is the listener). A bot
/// renamed a file of its own over it, naming another `tapsign agent`, and `tapsign lock` then
/// said "Locked" having signalled that one. The agent now locks on any change to that name
/// and puts its own file back.
#[test]
fn an_agent_whose_pid_file_is_replaced_locks_and_puts_its_own_back() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    let pid_file = tapsign_proto::path::pid_file(&w.sock);
    let agent_pid = std::fs::read_to_string(&pid_file).unwrap();
    w.run(&["unlock"], "").ok();
    let mut held = w.client();
    let decoy = w.sock.with_file_name("decoy.pid");
    std::fs::write(&decoy, "1\n").unwrap();
    std::fs::rename(&decoy, &pid_file).unwrap();
    locked_for_a_moved_socket(&mut held, "a replaced pid file was not seen");
    pid_file_says(&pid_file, &agent_pid, "the pid file was not put back");
    // Second wave: the lock on the file is advisory, so a bot can write another pid into the
    // agent's own file, without a rename. That locks too, and the agent writes its file anew.
    std::thread::sleep(Duration::from_millis(500));
    w.run(&["unlock"], "").ok();
    let mut held = w.client();
    std::fs::write(&pid_file, "1\n").unwrap();
    locked_for_a_moved_socket(&mut held, "a rewritten pid file was not seen");
    pid_file_says(&pid_file, &agent_pid, "the pid file was not written anew");
    // Put back: a new session stays open, and the agent still signs.
    std::thread::sleep(Duration::from_millis(500));
    w.run(&["unlock"], "").ok();
    let sign = ["sign", "b", "--method", "GET", "--path", "/api/v3/account"];
    w.run(&sign, "").ok();
    assert_eq!(w.status()["state"], "unlocked");
}

/// Red-team round 7, second wave: a pid file a bot put there before the agent started, and
/// held locked, kept the agent from writing its own; `tapsign lock` then signalled the pid
/// in the bot's file. The agent now writes its file under a new name and renames it over.
#[test]
fn an_agent_replaces_a_pid_file_planted_before_it_started() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    let pid_file = tapsign_proto::path::pid_file(&w.sock);
    let mut folder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(folder.recursive(true), 0o700);
    folder.create(pid_file.parent().unwrap()).unwrap();
    std::fs::write(&pid_file, "1\n").unwrap();
    let planted = std::fs::File::open(&pid_file).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    #[allow(unsafe_code)]
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&planted),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(locked, 0);
    w.start_agent();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", w.agent_pid())
    );
    drop(planted);
}

/// Red-team round 7, third wave: moving a folder above the socket's folder (or exchanging it
/// with a copy) makes no event in the socket's own folder, and put back before the next beat
/// it went unseen. The agent watches every folder on the socket's path.
#[test]
fn an_agent_locks_when_a_folder_above_its_socket_is_moved_even_if_put_back_at_once() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let mut held = w.client();
    let root = w.sock.parent().unwrap().parent().unwrap().to_path_buf();
    let aside = root.with_extension("aside");
    std::fs::rename(&root, &aside).unwrap();
    std::fs::rename(&aside, &root).unwrap();
    locked_for_a_moved_socket(&mut held, "a folder above the socket moved unseen");
}
