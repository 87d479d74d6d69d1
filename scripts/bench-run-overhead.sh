#!/usr/bin/env bash
# Builds the release binary, then measures run overhead against bare `docker run`,
# start-up time and idle memory (see scripts/bench_run_overhead.py).
# Usage: scripts/bench-run-overhead.sh [-n RUNS] [--image IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_run_overhead.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
