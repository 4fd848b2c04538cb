//! A measurement, not a test: the unlock-time row of `scripts/bench`. It needs the virtual
//! YubiKey's private PC/SC stack (root, pcscd, vpcd: tests/vyk), which only a libtest test can
//! drive, so it lives here, ignored; `scripts/bench` runs it and hands its `BENCH` line to the
//! benchmark's table.
#![allow(clippy::unwrap_used)] // a measurement fails loudly by design

use std::time::{Duration, Instant};

use tapsign_proto::{Pin, UnlockRequest};
use tapsign_tests::World;
use tapsign_vyk::{Config, harness};

#[test]
#[ignore = "a measurement for scripts/bench; run it there"]
fn unlock_time_on_the_virtual_key() {
    let key = Config {
        serial: 15_100_001,
        ..Config::default()
    };
    harness::run(&[key], |_stack| {
        let mut w = World::new();
        w.run(&["token", "add", "--piv"], "123456\n").ok();
        w.run(
            &["key", "add", "b", "--exchange", "binance"],
            "bench-api-key\nbench-secret\n",
        )
        .ok();
        w.start_agent_with(|c| {
            c.env_remove("TAPSIGN_INSECURE_SOFT_TOKEN");
        });
        let mut client = w.client();
        let mut times: Vec<Duration> = (0..10)
            .map(|_| {
                client.lock().unwrap();
                let start = Instant::now();
                client
                    .unlock(UnlockRequest {
                        pin: Some(Pin::new("123456".into())),
                        ..UnlockRequest::default()
                    })
                    .unwrap();
                start.elapsed()
            })
            .collect();
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "BENCH {:.1} ms (median of 10 over the protocol, touch at once; min {:.1}, max {:.1})",
            ms(times[5]),
            ms(times[0]),
            ms(times[9])
        );
    });
}
