#!/bin/sh
# Build tapsign's fuzz targets with libFuzzer on the stable toolchain (the coverage flags
# cargo-fuzz passes, for the target triple only so build scripts are not instrumented) and run
# each for a bounded time, starting from its committed seeds (fuzz/seeds/<target>/). CI runs
# `./fuzz/run.sh 40`. A crash fails the run and leaves its input in fuzz/artifacts/<target>/.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   (default: 60 seconds, every target)
set -eu
cd "$(dirname "$0")"
secs="${1:-60}"
[ $# -gt 0 ] && shift
targets="${*:-decode wall keystore config request}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
    cargo build --release --locked --target "$triple" --target-dir target/cov --bins
for t in $targets; do
    mkdir -p "target/corpus/$t" "artifacts/$t"
    echo "fuzz/run.sh: $t for ${secs}s"
    # New inputs go to target/corpus (first folder); the committed seeds are only read.
    if ! "target/cov/$triple/release/$t" "target/corpus/$t" "seeds/$t" \
        -artifact_prefix="artifacts/$t/" -max_len=70000 -max_total_time="$secs" \
        -print_final_stats=1 >"target/$t.log" 2>&1; then
        tail -n 60 "target/$t.log"
        echo "fuzz/run.sh: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    tail -n 4 "target/$t.log"
done
