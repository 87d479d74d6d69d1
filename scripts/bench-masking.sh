#!/usr/bin/env bash
# Builds the release binary, then measures what masking secret values costs on a
# log-heavy run (see scripts/bench_masking.py).
# Usage: scripts/bench-masking.sh [-n RUNS] [--lines N] [--image IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_masking.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
