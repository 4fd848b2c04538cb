//! Running as a systemd service, without systemd: the agent serves a listening socket passed
//! as fd 3 with `LISTEN_PID`/`LISTEN_FDS` (socket activation), and says `READY=1` on
//! `$NOTIFY_SOCKET` once it serves (Type=notify). The tests do what systemd does: bind, set
//! the variables, dup the socket to fd 3, exec.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tapsign_tests::{World, tapsign_bin};

const WAIT: Duration = Duration::from_secs(20);

/// An agent started by a test; killed if the test fails before stopping it.
struct Agent(Option<Child>);

impl Agent {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// SIGTERM, then its exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let child = self.0.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Wait for it to exit on its own (it refused to start).
    fn exited(mut self) -> Output {
        let mut child = self.0.take().unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > WAIT {
                let _ = child.kill();
                panic!("the agent kept running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tapsign agent` for world `w`, started the way systemd starts a socket-activated service:
/// `fd` becomes fd 3, and LISTEN_PID names the agent's own pid (a shell sets it to `$$`,
/// then execs the agent, which keeps the pid).
fn activated(w: &World, fd: RawFd, env: &[(&str, &str)]) -> Agent {
    let template = w.cmd(&["agent"]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" agent"])
        .arg(tapsign_bin());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "tapsign-agent.socket")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself would keep close-on-exec set: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Agent(Some(cmd.spawn().unwrap()))
}

/// A listening socket at `path` in a private folder, with `mode`, as systemd's
/// tapsign-agent.socket makes it (SocketMode=0600, DirectoryMode=0700).
fn listen_at(path: &Path, mode: u32) -> UnixListener {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let l = UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    l
}

/// Connect and say hello until the agent answers (bounded).
fn wait_served(w: &World, agent: &mut Agent) {
    let start = Instant::now();
    loop {
        if let Ok(mut c) = tapsign_proto::client::Client::connect(&w.sock, "service-test") {
            c.status().unwrap();
            return;
        }
        if let Some(status) = agent.0.as_mut().unwrap().try_wait().unwrap() {
            let out = agent.0.take().unwrap().wait_with_output().unwrap();
            panic!(
                "the agent exited ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(start.elapsed() < WAIT, "the agent did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_agent_serves_the_socket_systemd_passes() {
    let w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    let listener = listen_at(&w.sock, 0o600);
    let mut agent = activated(&w, listener.as_raw_fd(), &[]);
    // systemd keeps its copy; the test drops its own so only the agent can accept.
    drop(listener);
    wait_served(&w, &mut agent);
    // Had the agent bound a socket of its own, it would have found this path answering and
    // refused to start ("already running"): it serves the one it was given.
    w.run(&["unlock"], "").ok();
    w.run(
        &["sign", "b", "--method", "GET", "--path", "/api/v3/account"],
        "",
    )
    .ok();
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("(from systemd)"), "{log}");
    // The socket is systemd's: it stays, so the next connection starts the agent again.
    assert!(w.sock.exists(), "the inherited socket was removed");
}

#[test]
fn a_passed_socket_other_users_can_open_is_refused() {
    let w = World::new();
    // systemd's default SocketMode is 0666: the unit must say 0600.
    let listener = listen_at(&w.sock, 0o666);
    let agent = activated(&w, listener.as_raw_fd(), &[]);
    let out = agent.exited();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("mode 0666") && stderr.contains("SocketMode=0600"),
        "{stderr}"
    );
}

#[test]
fn a_passed_socket_in_a_folder_others_can_write_is_refused() {
    let w = World::new();
    let listener = listen_at(&w.sock, 0o600);
    std::fs::set_permissions(
        w.sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let out = activated(&w, listener.as_raw_fd(), &[]).exited();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("can be written by other users"), "{stderr}");
}

#[test]
fn a_passed_socket_that_is_not_a_listening_stream_is_refused() {
    let w = World::new();
    std::fs::create_dir_all(w.sock.parent().unwrap()).unwrap();
    let datagram = UnixDatagram::bind(&w.sock).unwrap();
    let out = activated(&w, datagram.as_raw_fd(), &[]).exited();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a stream socket"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn listen_fds_meant_for_another_process_are_ignored() {
    // A LISTEN_PID inherited from a parent (here: pid 1) is not for the agent: it binds its
    // own socket as usual.
    let mut w = World::new();
    w.start_agent_with(|c| {
        c.env("LISTEN_PID", "1").env("LISTEN_FDS", "1");
    });
    w.client().status().unwrap();
    assert!(!w.agent_log().contains("from systemd"), "{}", w.agent_log());
}

/// The datagrams the agent sent to `sock` until one contains `want` (bounded).
fn notified(sock: &UnixDatagram, want: &str) -> Vec<String> {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want:?} after {seen:?}: {e}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if seen.last().unwrap().lines().any(|l| l == want) {
            return seen;
        }
    }
}

#[test]
fn readiness_is_notified_once_the_socket_is_served() {
    let w = World::new();
    let notify_path = w.home().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let mut cmd = w.cmd(&["agent"]);
    cmd.env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let agent = Agent(Some(cmd.spawn().unwrap()));
    let ready = notified(&notify, "READY=1");
    let msg = ready.last().unwrap();
    assert!(
        msg.contains(&format!("STATUS=listening on {}", w.sock.display())),
        "{msg}"
    );
    // READY=1 promises the socket is served: the first try connects, no polling.
    w.client().status().unwrap();
    let pid = agent.pid();
    assert!(pid > 0);
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    let stopping = notified(&notify, "STOPPING=1");
    assert!(
        stopping.last().unwrap().contains("STATUS=stopping"),
        "{stopping:?}"
    );
}

#[test]
fn readiness_reaches_an_abstract_notify_socket_with_socket_activation() {
    use std::os::linux::net::SocketAddrExt;
    // systemd's own NOTIFY_SOCKET is abstract: @/org/freedesktop/systemd1/notify/...
    let w = World::new();
    let name = format!(
        "tapsign-test-notify-{}-{}",
        std::process::id(),
        w.home().file_name().unwrap().to_string_lossy()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let notify = UnixDatagram::bind_addr(&addr).unwrap();
    let listener = listen_at(&w.sock, 0o600);
    let at_name = format!("@{name}");
    let agent = activated(&w, listener.as_raw_fd(), &[("NOTIFY_SOCKET", &at_name)]);
    drop(listener);
    notified(&notify, "READY=1");
    w.client().status().unwrap();
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    notified(&notify, "STOPPING=1");
}

/// A listener that takes connections and never answers, with no agent behind it (no pid file):
/// lock signals nothing, says so and what to do, and fails, within its 2 s.
#[test]
fn lock_with_no_agent_behind_the_listener_signals_nothing() {
    let w = World::new();
    let listener = listen_at(&w.sock, 0o600);
    let start = Instant::now();
    w.run(&["lock"], "")
        .fails_with(1, "no tapsign agent to send SIGHUP to");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(listener);
}

/// Under socket activation the process that listens on the socket is systemd, so the socket's
/// peer credentials name systemd, not the agent. When every slot is taken, `tapsign lock`
/// must still signal the agent (through the pid file the agent holds locked), and never the
/// listener: systemd reads SIGHUP as "reload", and the session stayed open while `lock` said
/// it was wiped. Here this test process is the listener; it ignores SIGHUP, so a signal sent
/// to it shows up as a session left open.
#[test]
fn lock_signals_the_agent_not_the_listener_when_every_slot_is_taken() {
    #[allow(unsafe_code)]
    // SAFETY: setting a signal's disposition to SIG_IGN has no handler to race with.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.config("[server]\nmax_connections = 1\nframe_timeout = \"20s\"\n");
    let listener = listen_at(&w.sock, 0o600);
    let mut agent = activated(&w, listener.as_raw_fd(), &[]);
    drop(listener);
    wait_served(&w, &mut agent);
    let retry = |what: &str, f: &mut dyn FnMut() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < WAIT, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    retry("unlock never got a slot", &mut || {
        w.run(&["unlock"], "").code == 0
    });
    // The one general slot, held by a client that said hello; the kept-back one, by a
    // connection that says nothing.
    let mut hog = None;
    retry("the hog never got the general slot", &mut || {
        hog = tapsign_proto::client::Client::connect(&w.sock, "hog").ok();
        hog.as_mut()
            .is_some_and(|c| c.status().is_ok() && c.status().is_ok())
    });
    let silent = std::os::unix::net::UnixStream::connect(&w.sock).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // (Moving the pid file aside now locks the session and the agent writes it anew: see
    // lifecycle.rs. A listener with no agent behind it is the next test.)
    let pid_file = tapsign_proto::path::pid_file(&w.sock);
    let out = w.run(&["lock"], "");
    assert!(
        out.ok().contains(&format!("agent (pid {})", agent.pid())),
        "{out:?}"
    );
    drop((hog, silent));
    retry("the session was not locked by SIGHUP", &mut || {
        let st = w.run(&["status", "--json"], "");
        st.code == 0 && st.stdout.contains("\"locked\"") && st.stdout.contains("SIGHUP")
    });
    assert!(pid_file.exists(), "the running agent keeps its pid file");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!pid_file.exists(), "the pid file outlived the agent");
}
