//! Nothing on the agent's async workers waits on the disk: with the audit log's sync stuck, or
//! its writer stuck, `status`, `lock`, new connections and SIGHUP still get through, and the
//! session is wiped at once.
//!
//! The agent runs in this process, on a runtime shaped like `tapsign agent`'s (two workers),
//! with its audit sink's sync replaced by one the test holds: a disk whose `fdatasync` hangs.
//! The writer is stalled honestly, by holding the `flock` every tapsign writer takes on the
//! log (as a `tapsign key add` stuck on a slow disk would). Each test runs in a child process
//! of its own: the soft token opens only with `TAPSIGN_INSECURE_SOFT_TOKEN=1` in the
//! environment of the process that opens it, and SIGHUP goes to the whole process.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::fs::File;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tapsign_agent::agent::Agent;
use tapsign_agent::audit::{AuditSink, SyncFn};
use tapsign_agent::config::{Config, Flush};
use tapsign_agent::paths::Paths;
use tapsign_agent::server;
use tapsign_agent::systemd::Notifier;
use tapsign_proto::client::Client;
use tapsign_proto::{ErrorCode, SessionState, SignRequest, UnlockRequest};
use tapsign_tests::World;

/// Whether this is the child that runs the test's body; in the parent, run it and check it
/// passed.
fn in_own_process() -> bool {
    if std::env::var("TAPSIGN_INSECURE_SOFT_TOKEN").is_ok_and(|v| v == "1") {
        return true;
    }
    let current = std::thread::current();
    let name = current.name().expect("a libtest thread").to_owned();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env("TAPSIGN_INSECURE_SOFT_TOKEN", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{report}");
    assert!(report.contains("1 passed"), "{name} did not run:\n{report}");
    false
}

/// A disk whose syncs hang while held.
#[derive(Default)]
struct StuckDisk {
    held: Mutex<bool>,
    released: Condvar,
    entered: AtomicUsize,
}

impl StuckDisk {
    fn sync_fn(self: &Arc<Self>) -> SyncFn {
        let disk = Arc::clone(self);
        Arc::new(move |f: &File| {
            disk.entered.fetch_add(1, Ordering::SeqCst);
            let mut held = disk.held.lock().unwrap();
            while *held {
                held = disk.released.wait(held).unwrap();
            }
            f.sync_data()
        })
    }

    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.released.notify_all();
    }
}

/// An agent serving `w`'s socket in this process, with `disk` under its audit log.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    agent: Arc<Agent>,
}

fn start(w: &World, flush: Flush, disk: &Arc<StuckDisk>) -> InProcess {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let paths = Paths::under(w.home(), w.sock.clone());
    let mut config = Config::default();
    config.audit.flush = flush;
    // No desktop buses here: the lock sources under test are the agent's own.
    config.lock.screen = false;
    config.lock.suspend = false;
    config.notifications.enabled = false;
    let sink = AuditSink::open_with(&paths.audit_log(), config.audit, disk.sync_fn());
    let agent = Agent::with_audit(paths, config, true, sink);
    let serving = Arc::clone(&agent);
    let sock = w.sock.clone();
    runtime.spawn(async move {
        let listener = server::bind(&sock).await.unwrap();
        server::serve(serving, listener, &Notifier::none())
            .await
            .unwrap();
    });
    let start = Instant::now();
    while Client::connect(&w.sock, "test").is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "agent not up");
        std::thread::sleep(Duration::from_millis(10));
    }
    InProcess { runtime, agent }
}

fn request() -> SignRequest {
    SignRequest {
        key: "b".into(),
        method: "GET".into(),
        path: "/api/v3/account".into(),
        ..SignRequest::default()
    }
}

/// `f` answers within `limit`.
fn quickly<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < limit,
        "{what} took {took:?} while the disk was stuck"
    );
    out
}

fn unlocked(w: &World) {
    let mut c = Client::connect(&w.sock, "test").unwrap();
    c.unlock(UnlockRequest::default()).unwrap();
}

fn sighup() {
    let pid = std::process::id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn with_the_sync_stuck_status_lock_and_sighup_answer_and_only_sync_mode_signatures_wait() {
    if !in_own_process() {
        return;
    }
    let w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    let disk = Arc::new(StuckDisk::default());
    let agent = start(&w, Flush::Sync, &disk);
    unlocked(&w);
    *disk.held.lock().unwrap() = true;
    // Eight bots sign; in sync mode each waits for its line's sync, which hangs.
    let signers: Vec<_> = (0..8)
        .map(|_| {
            let sock = w.sock.clone();
            std::thread::spawn(move || Client::connect(&sock, "bot").unwrap().sign(request()))
        })
        .collect();
    let start = Instant::now();
    while disk.entered.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no sync started");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        signers.iter().all(|s| !s.is_finished()),
        "a sync-mode signature did not wait for its sync"
    );
    let limit = Duration::from_secs(2);
    // New connections are accepted and greeted; status answers and shows the session.
    let status = quickly("status", limit, || {
        Client::connect(&w.sock, "t").unwrap().status().unwrap()
    });
    assert_eq!(status.state, SessionState::Unlocked);
    // SIGHUP locks at once.
    quickly("SIGHUP", limit, || {
        sighup();
        while agent.agent.status().state == SessionState::Unlocked {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    unlocked(&w);
    quickly("lock", limit, || {
        Client::connect(&w.sock, "t").unwrap().lock().unwrap()
    });
    assert_eq!(agent.agent.status().state, SessionState::Locked);
    // The disk comes back: the waiting signatures, checked before the lock, are withheld
    // (`locked`): none leaves after the lock has answered.
    disk.release();
    for s in signers {
        let e = s.join().unwrap().unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Locked), "{e}");
        assert!(e.to_string().contains("it was withheld"), "{e}");
    }
    drop(agent.runtime);
}

#[test]
fn with_the_sync_stuck_default_mode_signatures_do_not_wait() {
    if !in_own_process() {
        return;
    }
    let w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    let disk = Arc::new(StuckDisk::default());
    *disk.held.lock().unwrap() = true;
    let agent = start(&w, Flush::IncrementalAsync, &disk);
    unlocked(&w);
    let mut bot = Client::connect(&w.sock, "bot").unwrap();
    quickly("100 signatures", Duration::from_secs(5), || {
        for _ in 0..100 {
            bot.sign(request()).unwrap();
        }
    });
    assert!(
        disk.entered.load(Ordering::SeqCst) >= 1,
        "no sync was tried"
    );
    // Every one of them is in the file already.
    let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
    assert_eq!(log.matches("\"type\":\"sign\"").count(), 100);
    disk.release();
    drop(agent.runtime);
}

/// The process holding the log's lock; it lets go when dropped, the test failing or not.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_the_writer_stuck_status_and_lock_still_answer_and_say_so() {
    if !in_own_process() {
        return;
    }
    let w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    let disk = Arc::new(StuckDisk::default());
    let agent = start(&w, Flush::IncrementalAsync, &disk);
    unlocked(&w);
    // Another process holds the log's lock and does not let go (util-linux `flock`).
    // `--no-fork`: the lock's holder is the process the test kills, not a child it forked.
    let mut held = Holder(
        Command::new("flock")
            .arg("--no-fork")
            .arg(w.home().join("audit.log"))
            .args(["-c", "echo held; exec sleep 600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut said = String::new();
    std::io::BufReader::new(held.0.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said.trim(), "held");
    let sock = w.sock.clone();
    let signer = std::thread::spawn(move || Client::connect(&sock, "bot").unwrap().sign(request()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!signer.is_finished(), "signed before its line was written");
    let limit = Duration::from_secs(2);
    let status = quickly("status", limit, || {
        Client::connect(&w.sock, "t").unwrap().status().unwrap()
    });
    assert!(
        status.warnings.iter().any(|w| w.contains("slow to write")),
        "{:?}",
        status.warnings
    );
    quickly("lock", limit, || {
        Client::connect(&w.sock, "t").unwrap().lock().unwrap()
    });
    assert_eq!(agent.agent.status().state, SessionState::Locked);
    // The lock lets go: the signature checked before the lock is recorded, then withheld
    // (the lock has answered meanwhile), and the log's chain is whole.
    drop(held);
    let e = signer.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Locked), "{e}");
    assert!(e.to_string().contains("it was withheld"), "{e}");
    let start = Instant::now();
    while !std::fs::read_to_string(w.home().join("audit.log"))
        .unwrap()
        .contains("\"type\":\"lock\"")
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "lock not recorded"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    w.run(&["audit", "verify"], "").ok();
    drop(agent.runtime);
}
