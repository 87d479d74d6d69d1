#!/usr/bin/env bash
# Builds the release binary, then measures the run engine under load
# (see scripts/bench_engine.py): a burst of 20 triggers and a drain of N queued runs.
# Usage: scripts/bench-engine.sh [--drain N] [--max-concurrent N] [--image IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_engine.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
