#!/usr/bin/env bash
# Builds the release binary (unless --binary PATH is given), then measures the scheduler with
# 1 000 pipelines that each fire every minute (see scripts/bench_scheduler.py): its CPU against
# the same server with the same pipelines unscheduled, and the lag from a slot's time to its
# run being queued (p50 / p99 / max).
# Usage: scripts/bench-scheduler.sh [--binary PATH] [--pipelines N] [--minutes M] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  case "$arg" in --binary|--binary=*) exec python3 scripts/bench_scheduler.py "$@" ;; esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_scheduler.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
