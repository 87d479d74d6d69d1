#!/usr/bin/env bash
# Builds the release binary (unless --binary PATH is given), then measures the first run's
# environment setup after a git sync with and without UV_PRE_HEAT (see scripts/bench_preheat.py).
# Usage: scripts/bench-preheat.sh [--binary PATH] [-n REPS] [--requirements "pkg==v ..."]
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  case "$arg" in --binary|--binary=*) exec python3 scripts/bench_preheat.py "$@" ;; esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_preheat.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
