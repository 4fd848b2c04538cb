//! `scripts/bench`: how fast tapsign signs and how much memory the agent holds, as a table.
//! Times vary with the machine; compare runs on the same one. Not a test: nothing here asserts.
#![allow(clippy::unwrap_used)] // a benchmark fails loudly by design

use std::sync::Arc;
use std::time::{Duration, Instant};

use tapsign_agent::credential::{Credential, Exchange};
use tapsign_agent::secret::{SecretBytes, SecretString};
use tapsign_agent::sign::{self, SignOptions, Stamp};
use tapsign_proto::SignRequest;
use tapsign_tests::World;

fn cred(exchange: Exchange) -> Credential {
    Credential {
        name: "bench".into(),
        exchange,
        api_key: SecretString::new("bench-api-key".into()),
        secret: SecretBytes::from_slice(b"bench-secret-0123456789abcdef"),
        passphrase: None,
    }
}

fn request(exchange: Exchange) -> SignRequest {
    let (path, query) = match exchange {
        Exchange::Upbit => (
            "/v1/orders",
            "market=KRW-BTC&side=bid&volume=0.01&price=100.0&ord_type=limit",
        ),
        _ => (
            "/api/v3/order",
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1",
        ),
    };
    SignRequest {
        key: "bench".into(),
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        body: String::new(),
        kind: Default::default(),
    }
}

fn row(what: &str, value: String, unit: &str) {
    println!("| {what:<52} | {value:>12} | {unit:<10} |");
}

fn pure_signing() {
    for exchange in [Exchange::Upbit, Exchange::Binance] {
        let (c, r, o) = (cred(exchange), request(exchange), SignOptions::default());
        let n = 20_000;
        let start = Instant::now();
        for i in 0..n {
            let stamp = Stamp {
                unix_ms: 1_700_000_000_000 + i,
                nonce: [7; 16],
                counter: None,
            };
            std::hint::black_box(sign::sign(&c, &r, &stamp, &o).unwrap());
        }
        let per = start.elapsed() / n as u32;
        row(
            &format!("sign, in process ({exchange})"),
            format!("{:.1}", per.as_secs_f64() * 1e6),
            "µs/op",
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn through_agent() {
    let mut w = World::new();
    w.setup_key("bench", "binance", "bench-api-key", "bench-secret");
    w.start_agent();
    let pid = w.agent_pid();
    row(
        "agent memory, idle (VmRSS)",
        rss_kib(pid, "VmRSS:").to_string(),
        "KiB",
    );

    let start = Instant::now();
    w.run(&["unlock", "--max-signatures", "1000000"], "").ok();
    row(
        "unlock via the CLI, soft token (process start included)",
        format!("{:.1}", start.elapsed().as_secs_f64() * 1e3),
        "ms",
    );
    row(
        "locked secret memory while unlocked (VmLck)",
        rss_kib(pid, "VmLck:").to_string(),
        "KiB",
    );

    let mut client = w.client();
    let mut lat = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        let t = Instant::now();
        client.sign(request(Exchange::Binance)).unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    row(
        "sign over the socket, 1 client: p50",
        format!("{:.0}", percentile(&lat, 0.5).as_secs_f64() * 1e6),
        "µs",
    );
    row(
        "sign over the socket, 1 client: p99",
        format!("{:.0}", percentile(&lat, 0.99).as_secs_f64() * 1e6),
        "µs",
    );

    let clients = 8;
    let per_client = 2_000;
    let w = Arc::new(w);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                let mut c = w.client();
                for _ in 0..per_client {
                    c.sign(request(Exchange::Binance)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rate = (clients * per_client) as f64 / start.elapsed().as_secs_f64();
    row(
        &format!("sign over the socket, {clients} clients: throughput"),
        format!("{rate:.0}"),
        "signs/s",
    );
    row(
        "agent memory after 21 000 signatures (VmRSS)",
        rss_kib(pid, "VmRSS:").to_string(),
        "KiB",
    );
    w.run(&["lock"], "").ok();
    row(
        "locked secret memory after lock (VmLck)",
        rss_kib(pid, "VmLck:").to_string(),
        "KiB",
    );
}

fn main() {
    println!(
        "tapsign {} benchmark ({} build); every signature is audited (fsync per line)",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!();
    println!("| {:<52} | {:>12} | {:<10} |", "measure", "value", "unit");
    println!("|{}|{}|{}|", "-".repeat(54), "-".repeat(14), "-".repeat(12));
    pure_signing();
    through_agent();
}
