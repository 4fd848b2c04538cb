//! Faults survived: a full disk while the agent appends to the audit log or reserves Kraken
//! nonces (a small tmpfs of the test's own, filled up), and the agent SIGKILLed in the middle
//! of signing. Each time: a clear error, nothing half-written, nothing lost, and the agent
//! goes on (or starts again) once the fault is gone.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tapsign_proto::SignRequest;
use tapsign_proto::client::Client;
use tapsign_tests::ns::{SmallDisk, private_mounts};
use tapsign_tests::{World, signed};

const KRAKEN_SECRET: &str = "a3Jha2VuLXRlc3Qtc2VjcmV0LWJ5dGVzLTAxMjM0NTY3ODk=";

fn sign_args(key: &str) -> Vec<&str> {
    match key {
        "kr" => vec![
            "sign",
            "kr",
            "--method",
            "POST",
            "--path",
            "/0/private/TradeBalance",
            "--body",
            "asset=ZUSD",
        ],
        _ => vec!["sign", key, "--method", "GET", "--path", "/api/v3/account"],
    }
}

fn kraken_nonce(v: &serde_json::Value) -> u64 {
    let body = v["body"].as_str().unwrap();
    let first = body.split('&').next().unwrap();
    first.strip_prefix("nonce=").unwrap().parse().unwrap()
}

/// A world whose home is a 2 MiB tmpfs, with its agent's own log kept outside it (a full disk
/// must not swallow what the agent says about it).
struct Small {
    // Dropped in this order: the disk is unmounted before the world's home is removed.
    disk: SmallDisk,
    w: World,
    agent_log: tempfile::NamedTempFile,
}

impl Small {
    fn new() -> Small {
        let w = World::new();
        let disk = SmallDisk::mount(w.home(), 2048, 4096);
        Small {
            disk,
            w,
            agent_log: tempfile::NamedTempFile::new().unwrap(),
        }
    }

    fn start_agent(&mut self) {
        let log = self.agent_log.reopen().unwrap();
        self.w.start_agent_with(|c| {
            c.stderr(log);
        });
    }

    /// The agent's log once it says `needle` (`World::agent_said`).
    fn agent_said(&self, needle: &str) -> String {
        tapsign_tests::await_file(self.agent_log.path(), needle)
    }

    fn audit_log(&self) -> PathBuf {
        self.w.home().join("audit.log")
    }
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_full_disk_during_an_audit_append_withholds_the_signature_leaves_no_torn_line_and_recovers() {
    if !private_mounts() {
        return;
    }
    let mut d = Small::new();
    d.w.setup_key("b", "binance", "ak", "sk");
    d.start_agent();
    d.w.run(&["unlock"], "").ok();
    d.w.run(&sign_args("b"), "").ok();
    d.disk.leave_free(0);
    // The log's last page may still take a few lines; then a line no longer fits.
    let mut refused = None;
    for _ in 0..200 {
        let before = std::fs::read(d.audit_log()).unwrap();
        let out = d.w.run(&sign_args("b"), "");
        if out.code != 0 {
            refused = Some((before, out));
            break;
        }
    }
    let (before, out) = refused.expect("the full disk never stopped a signature");
    out.fails_with(1, "signature was withheld");
    assert!(out.stderr.contains("audit log"), "{out:?}");
    assert!(!out.stdout.contains("signature"), "{out:?}");
    // Nothing half-written: the file is byte for byte what it was before the refused sign.
    assert_eq!(std::fs::read(d.audit_log()).unwrap(), before);
    d.w.run(&["audit", "verify"], "").ok();
    let st = d.w.run(&["status", "--json"], "");
    assert!(st.ok().contains("cannot be written"), "{st:?}");
    let said = d.agent_said("audit log cannot be written");
    assert!(said.contains("audit log cannot be written"), "{said}");
    // Space again: the next signature goes through, and the chain is whole.
    d.disk.free();
    let v = signed(d.w.run(&sign_args("b"), "").ok());
    assert!(v["query"].as_str().unwrap().contains("signature="));
    assert!(
        !d.w.run(&["status", "--json"], "")
            .ok()
            .contains("cannot be written")
    );
    d.w.run(&["audit", "verify"], "").ok();
    let said = d.agent_said("can be written again");
    assert!(said.contains("can be written again"), "{said}");
}

#[test]
fn a_full_disk_during_a_nonce_reservation_refuses_the_kraken_request_and_recovers() {
    if !private_mounts() {
        return;
    }
    let mut d = Small::new();
    d.w.setup_key("kr", "kraken", "kraken-api-key", KRAKEN_SECRET);
    d.start_agent();
    d.w.run(&["unlock"], "").ok();
    let first = kraken_nonce(&signed(d.w.run(&sign_args("kr"), "").ok()));
    let store = d.w.home().join("kraken-kr.nonce");
    let mark = std::fs::read_to_string(&store).unwrap();
    // A restart: the next Kraken signature must reserve a block first, on a full disk.
    assert_eq!(d.w.signal_agent("KILL"), None);
    d.start_agent();
    d.w.run(&["unlock"], "").ok();
    d.disk.leave_free(0);
    let out = d.w.run(&sign_args("kr"), "");
    out.fails_with(1, "cannot reserve Kraken nonces");
    assert!(out.stderr.contains("free some disk space"), "{out:?}");
    assert!(!out.stdout.contains("API-Sign"), "{out:?}");
    // Nothing half-written: the mark on file is the old one, no temp file is left.
    assert_eq!(std::fs::read_to_string(&store).unwrap(), mark);
    assert_eq!(temp_files(d.w.home()), Vec::<String>::new());
    d.disk.free();
    let next = kraken_nonce(&signed(d.w.run(&sign_args("kr"), "").ok()));
    assert!(next > mark.trim().parse::<u64>().unwrap() && next > first);
    d.w.run(&["audit", "verify"], "").ok();
}

fn request(key: &str) -> SignRequest {
    let (method, path, body) = match key {
        "kr" => ("POST", "/0/private/TradeBalance", "asset=ZUSD"),
        _ => ("GET", "/api/v3/account", ""),
    };
    SignRequest {
        key: key.into(),
        method: method.into(),
        path: path.into(),
        body: body.into(),
        ..SignRequest::default()
    }
}

/// What one round of bots got before the agent was killed.
#[derive(Default)]
struct Got {
    binance: usize,
    kraken: Vec<u64>,
}

fn sign_until_killed(sock: &Path, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Got>> {
    (0..4)
        .map(|i| {
            let (sock, stop) = (sock.to_owned(), Arc::clone(stop));
            std::thread::spawn(move || {
                let mut got = Got::default();
                let Ok(mut c) = Client::connect(&sock, "bot") else {
                    return got;
                };
                let key = if i % 2 == 0 { "kr" } else { "b" };
                while !stop.load(Ordering::Relaxed) {
                    let Ok(s) = c.sign(request(key)) else {
                        break;
                    };
                    match key {
                        "kr" => {
                            let nonce = s.body.split('&').next().unwrap();
                            got.kraken
                                .push(nonce.strip_prefix("nonce=").unwrap().parse().unwrap());
                        }
                        _ => got.binance += 1,
                    }
                }
                got
            })
        })
        .collect()
}

#[test]
fn sigkill_while_signing_loses_no_line_repeats_no_nonce_and_the_agent_starts_again() {
    let mut w = World::new();
    w.setup_key("b", "binance", "ak", "sk");
    w.setup_key("kr", "kraken", "kraken-api-key", KRAKEN_SECRET);
    let (mut binance, mut kraken, mut highest) = (0, 0, 0u64);
    for round in 0..6u64 {
        w.start_agent();
        w.run(&["unlock"], "").ok();
        let stop = Arc::new(AtomicBool::new(false));
        let bots = sign_until_killed(&w.sock, &stop);
        // Kill at a different point each round; the first rounds land in the first Kraken
        // reservation after the start.
        std::thread::sleep(Duration::from_millis(5 + round * 37));
        assert_eq!(w.signal_agent("KILL"), None, "killed, not stopped");
        stop.store(true, Ordering::Relaxed);
        let mut round_nonces = Vec::new();
        for bot in bots {
            let got = bot.join().unwrap();
            binance += got.binance;
            round_nonces.extend(got.kraken);
        }
        // Nonces never repeat or go back, across the kill.
        let got = round_nonces.len();
        kraken += got;
        round_nonces.sort_unstable();
        round_nonces.dedup();
        assert_eq!(
            round_nonces.len(),
            got,
            "round {round}: a nonce was handed out twice"
        );
        if let Some(&low) = round_nonces.first() {
            assert!(low > highest, "round {round}: nonce {low} after {highest}");
            highest = *round_nonces.last().unwrap();
        }
        let store = w.home().join("kraken-kr.nonce");
        if let Ok(text) = std::fs::read_to_string(&store) {
            let mark: u64 = text
                .trim()
                .parse()
                .expect("a whole mark, never half a file");
            assert!(mark >= highest, "round {round}: mark {mark} < {highest}");
        }
        // Every signature a bot got is in the log, and the log is whole.
        w.run(&["audit", "verify"], "").ok();
        let log = std::fs::read_to_string(w.home().join("audit.log")).unwrap();
        let lines = |key: &str| {
            log.lines()
                .filter(|l| {
                    l.contains("\"type\":\"sign\"") && l.contains(&format!("\"key\":\"{key}\""))
                })
                .count()
        };
        assert!(
            lines("b") >= binance,
            "round {round}: signatures missing from the log"
        );
        assert!(
            lines("kr") >= kraken,
            "round {round}: Kraken signatures missing from the log"
        );
    }
    assert!(highest > 0 && binance > 0, "the bots never signed");
    // A last start clears what a reservation cut short, and signs above everything before.
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let next = kraken_nonce(&signed(w.run(&sign_args("kr"), "").ok()));
    assert!(next > highest);
    assert_eq!(temp_files(w.home()), Vec::<String>::new());
}
