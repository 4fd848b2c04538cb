#!/bin/sh
# Run the `decode` fuzz target without cargo-fuzz: build with the same coverage flags
# cargo-fuzz passes (only for the target triple, so build scripts are not instrumented),
# seed the corpus with the golden frames, and run libFuzzer for $1 seconds (default 60).
# With cargo-fuzz installed, `cargo +nightly fuzz run decode` does the same.
set -eu
cd "$(dirname "$0")"
secs="${1:-60}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
    cargo +nightly build --release --target "$triple" --target-dir target/cov
mkdir -p corpus/decode artifacts/decode
cp ../proto/tests/golden/*.frame corpus/decode/
exec "target/cov/$triple/release/decode" corpus/decode -artifact_prefix=artifacts/decode/ \
    -max_len=70000 -max_total_time="$secs"
