#!/usr/bin/env bash
# Builds the release binary (unless --binary PATH is given), then measures whether the server
# stays fast as the work grows (see scripts/bench_scale.py): list pages and API on 1 000 against
# 1 000 000 runs, a 1 000 000-line log against bare `docker run`, 50 live viewers of a burst
# against none, 100 against 5 000 pipeline folders. Each figure is printed with its baseline.
# Usage: scripts/bench-scale.sh [--binary PATH] [--only lists,finish,viewers,pipelines] [--runs N]
#        [--seconds S] [--clients N] [--lines N] [--viewers N] [--burst-lines N]
#        [--pipelines SMALL,LARGE] [--no-cache] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  case "$arg" in --binary|--binary=*) exec python3 scripts/bench_scale.py "$@" ;; esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_scale.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
