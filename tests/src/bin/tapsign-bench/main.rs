//! `scripts/bench`: how fast tapsign signs and how much memory the agent holds, as tables.
//!
//! One run, one client (`frames`) for every target: a bare frame echo server (the transport
//! limit), the agent with `audit.flush = "incremental_async"` and with `"sync"`, and OpenSSH's
//! ssh-agent signing with Ed25519. Targets are measured in interleaved rounds, so a machine
//! that gets busier halfway slows them all alike. Times vary with the machine; compare runs on
//! the same one. Not a test: nothing here asserts a speed (docs/benchmarks.md).
#![allow(clippy::unwrap_used)] // a benchmark fails loudly by design

mod frames;

use std::path::Path;
use std::time::{Duration, Instant};

use frames::{Conn, Target};
use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::policy::{self, profile::KeyPolicy};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::sign::{self, SignOptions, Stamp};
use tapsign_proto::{PROTOCOL_VERSION, Request, SignRequest};
use tapsign_tests::World;

const ROUNDS: usize = 3;
const SAMPLES: usize = 3000;
const CLIENTS: usize = 8;
const BUSY_FOR: Duration = Duration::from_millis(1500);

fn request(key: &str) -> SignRequest {
    SignRequest {
        key: key.into(),
        method: "POST".into(),
        path: "/api/v3/order".into(),
        query: "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1".into(),
        ..SignRequest::default()
    }
}

fn encoded(req: &Request) -> Vec<u8> {
    tapsign_proto::frame::encode(req).unwrap()
}

/// The agent as a target: hello first, then sign requests for `key`.
fn agent_target(name: &str, w: &World, key: &str) -> Target {
    Target {
        name: name.into(),
        sock: w.sock.clone(),
        hello: Some(encoded(&Request::Hello {
            version: PROTOCOL_VERSION,
            client: "bench".into(),
        })),
        request: encoded(&Request::Sign(request(key))),
        check: |_, got| got.starts_with(b"{\"type\":\"signed\""),
    }
}

/// An agent with `keys` Binance keys (`k0`, `k1`, ...), unlocked, `flush` as configured.
fn agent(flush: &str, keys: usize) -> World {
    let mut w = World::new();
    w.config(&format!(
        "[server]\nmax_connections = 300\n[audit]\nflush = \"{flush}\"\n"
    ));
    w.run(&["token", "add", "--soft"], "").ok();
    for i in 0..keys {
        let name = format!("k{i}");
        w.run(
            &["key", "add", &name, "--exchange", "binance"],
            "bench-api-key\nbench-secret\n",
        )
        .ok();
    }
    w.start_agent();
    w
}

fn unlock(w: &World) {
    w.run(&["unlock", "--max-signatures", "1000000"], "").ok();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Latency samples and throughputs of each target, over interleaved rounds.
struct Measured {
    latencies: Vec<Duration>,
    rates: Vec<f64>,
}

fn measure(targets: &[&Target]) -> Vec<Measured> {
    let mut out: Vec<Measured> = targets
        .iter()
        .map(|_| Measured {
            latencies: Vec::new(),
            rates: Vec::new(),
        })
        .collect();
    for _ in 0..ROUNDS {
        for (t, m) in targets.iter().zip(&mut out) {
            m.latencies.extend(frames::latencies(t, SAMPLES));
            m.rates.push(frames::throughput(t, CLIENTS, BUSY_FOR));
        }
    }
    for m in &mut out {
        m.latencies.sort();
    }
    out
}

fn pure_signing() -> f64 {
    let cred = Credential {
        name: "k0".into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("bench-api-key".into()),
        secret: SecretBytes::from_slice(b"bench-secret"),
        passphrase: None,
    };
    let (req, opts, n) = (request("k0"), SignOptions::default(), 20_000u32);
    let start = Instant::now();
    for i in 0..n {
        let stamp = Stamp {
            unix_ms: 1_700_000_000_000 + u64::from(i),
            nonce: [7; 16],
            counter: None,
            session_ends_ms: None,
        };
        std::hint::black_box(sign::sign(&cred, &req, &stamp, &opts).unwrap());
    }
    us(start.elapsed() / n)
}

/// The wall's check of the benchmark's order (parse, deny list, profile, the readings of the
/// signed bytes), in process: the largest share of the agent's own time on a signature.
fn pure_policy() -> f64 {
    let (req, policy, n) = (request("k0"), KeyPolicy::default(), 20_000u32);
    let start = Instant::now();
    for _ in 0..n {
        let checked = policy::check_request(Exchange::Binance, "k0", &policy, &req);
        std::hint::black_box(checked.unwrap());
    }
    us(start.elapsed() / n)
}

/// The check of a request at the parameter cap whose every name is unknown (refused): the
/// most a request can make the check read, sent by a bot to keep the workers busy.
fn policy_at_cap() -> f64 {
    let mut req = request("k0");
    req.query = (0..1020)
        .map(|i| format!("unknown{i:04}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let (policy, n) = (KeyPolicy::default(), 200u32);
    let start = Instant::now();
    for _ in 0..n {
        let refused = policy::check_request(Exchange::Binance, "k0", &policy, &req);
        std::hint::black_box(refused.unwrap_err());
    }
    us(start.elapsed() / n)
}

fn speed_table(targets: &[&Target], m: &[Measured]) {
    let echo = &m[0];
    let (e50, e99) = (
        us(percentile(&echo.latencies, 0.5)),
        us(percentile(&echo.latencies, 0.99)),
    );
    let erate = median(echo.rates.clone());
    println!(
        "| target | p50 µs | p50 / echo | p99 µs | p99 / echo | {CLIENTS} clients, req/s | / echo |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (t, m) in targets.iter().zip(m) {
        let (p50, p99) = (
            us(percentile(&m.latencies, 0.5)),
            us(percentile(&m.latencies, 0.99)),
        );
        let rate = median(m.rates.clone());
        println!(
            "| {} | {p50:.1} | {:.2}× | {p99:.1} | {:.2}× | {rate:.0} | {:.1}% |",
            t.name,
            p50 / e50,
            p99 / e99,
            100.0 * rate / erate
        );
    }
}

/// VmRSS of the agent idle, after the load, and holding 256 greeted connections.
fn memory(w: &World, target: &Target, idle: u64) {
    let pid = w.agent_pid();
    let loaded = rss_kib(pid);
    let conns: Vec<Conn> = (0..256).map(|_| Conn::open(target)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let held = rss_kib(pid);
    drop(conns);
    println!(
        "| agent memory (VmRSS), idle after start | {:.1} MiB |",
        idle as f64 / 1024.0
    );
    println!(
        "| agent memory (VmRSS), after the signing runs | {:.1} MiB |",
        loaded as f64 / 1024.0
    );
    println!(
        "| agent memory (VmRSS), with 256 open connections | {:.1} MiB |",
        held as f64 / 1024.0
    );
}

/// Sign p50 with 1 key in the session and with 1,000, interleaved like the speed rounds.
fn many_keys(one: &Target) {
    let thousand = agent("incremental_async", 1000);
    unlock(&thousand);
    let last = agent_target("1,000 keys", &thousand, "k999");
    // Short rounds, many of them: the two agents differ by a few percent at most, less than
    // a virtual machine drifts over a few seconds, so each round must be brief.
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS * 6 {
        samples[0].extend(frames::latencies(one, SAMPLES / 6));
        samples[1].extend(frames::latencies(&last, SAMPLES / 6));
    }
    let p50: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort();
            us(percentile(s, 0.5))
        })
        .collect();
    println!("| sign p50, 1 key in the session | {:.1} µs |", p50[0]);
    println!(
        "| sign p50, 1,000 keys in the session (signing the last) | {:.1} µs ({:+.1}%) |",
        p50[1],
        100.0 * (p50[1] / p50[0] - 1.0)
    );
}

/// Unlock with a long audit log (the soft token, so the keystore's check is most of it): the
/// first unlock after `LONG_LOG_LINES` signatures were logged since the last one reads them
/// back for credential changes; the next ones, with nothing new, read on from where the last
/// read of the vault record ended (docs/keystore-format.md, "The lineage"). The lines are
/// written while the agent is stopped (it refuses a log that grows by lines it did not write)
/// and it is started again, as after a reboot; it reads the log whole once, at start.
fn long_log() {
    use tapsign_agent::audit::{AuditEvent, AuditLog};
    const LONG_LOG_LINES: usize = 400_000;
    let mut w = agent("incremental_async", 1);
    let timed_unlock = |w: &World| {
        let start = Instant::now();
        unlock(w);
        let took = start.elapsed();
        w.run(&["lock"], "").ok();
        took
    };
    timed_unlock(&w);
    w.signal_agent("TERM");
    let path = w.home().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    let line = AuditEvent::Sign {
        key: "k0".into(),
        kind: Default::default(),
        method: "POST".into(),
        path: "/api/v3/order".into(),
        pid: 4242,
        exe: "/usr/bin/python3.13".into(),
    };
    let batch = vec![(&line, std::time::SystemTime::now()); 1000];
    for _ in 0..LONG_LOG_LINES / batch.len() {
        log.write_lines(&batch).unwrap();
    }
    drop(log);
    w.start_agent();
    // The start-up read of the whole log, done before the trader comes to unlock.
    std::thread::sleep(Duration::from_secs(3));
    let size = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let first = timed_unlock(&w);
    let again: Vec<f64> = (0..5).map(|_| us(timed_unlock(&w)) / 1e3).collect();
    println!(
        "| unlock (soft token), {size:.0} MB of audit log ({LONG_LOG_LINES} signatures) since the last | {:.0} ms |",
        us(first) / 1e3
    );
    println!(
        "| unlock (soft token) again, in that {size:.0} MB log (median of 5) | {:.0} ms |",
        median(again)
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    format!(
        "{cpu}, {cores} cores, Linux {}, load average {load} at the start",
        kernel.trim()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, cmd, sock] = args.as_slice()
        && cmd == "echo-server"
    {
        return frames::echo_server(Path::new(sock));
    }
    println!(
        "tapsign {} benchmark ({} build)\nmachine: {}\n",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine()
    );
    // `TAPSIGN_BENCH_ONLY=long-log`: that table row alone (to look into one change's cost).
    if std::env::var("TAPSIGN_BENCH_ONLY").as_deref() == Ok("long-log") {
        return long_log();
    }
    let scratch = tempfile::tempdir().unwrap();
    let async_agent = agent("incremental_async", 1);
    let idle = rss_kib(async_agent.agent_pid());
    unlock(&async_agent);
    let sync_agent = agent("sync", 1);
    unlock(&sync_agent);
    let a = agent_target("agent, flush = incremental_async", &async_agent, "k0");
    let s = agent_target("agent, flush = sync", &sync_agent, "k0");
    let (_echo_server, echo_sock) = frames::spawn_echo(scratch.path());
    let echo = frames::echo_target(echo_sock, &a.request);
    // What a bot would have signed: the same bytes the agent is sent.
    let ssh = frames::ssh_agent(scratch.path(), &a.request[4..]);
    let mut targets = vec![&echo, &a, &s];
    match &ssh {
        Ok(agent) => targets.push(&agent.target),
        Err(e) => eprintln!("ssh-agent row skipped: {e}"),
    }
    let m = measure(&targets);
    println!(
        "Round trips over a Unix socket, one client ({ROUNDS}×{SAMPLES} samples), and {CLIENTS} \
         clients for {ROUNDS}×{:.1} s (median):\n",
        BUSY_FOR.as_secs_f64()
    );
    speed_table(&targets, &m);
    println!("\n| measure | value |\n|---|---:|");
    println!(
        "| sign, in process (Binance, HMAC-SHA256) | {:.1} µs |",
        pure_signing()
    );
    println!(
        "| policy check, in process (the same order) | {:.1} µs |",
        pure_policy()
    );
    println!(
        "| policy check, in process, 1,020 unknown parameters (refused) | {:.0} µs |",
        policy_at_cap()
    );
    memory(&async_agent, &a, idle);
    many_keys(&a);
    long_log();
    match std::env::var("TAPSIGN_BENCH_UNLOCK") {
        Ok(line) if !line.is_empty() => println!("| unlock on the virtual YubiKey | {line} |"),
        _ => println!(
            "| unlock on the virtual YubiKey | skipped: {} |",
            std::env::var("TAPSIGN_BENCH_UNLOCK_SKIPPED")
                .unwrap_or_else(|_| "run through scripts/bench (needs root and pcscd)".into())
        ),
    }
}
