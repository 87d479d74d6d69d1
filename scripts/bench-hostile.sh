#!/usr/bin/env bash
# Builds the release binary (unless --binary PATH is given), then measures the server against
# hostile logs (see scripts/bench_hostile.py): 300 MB without a newline, a full SSE replay of a
# 1 000 000-line log against a plain download, and six parallel downloads of that log.
# Usage: scripts/bench-hostile.sh [--binary PATH] [--mib N] [--lines N] [--limit S] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  case "$arg" in --binary|--binary=*) exec python3 scripts/bench_hostile.py "$@" ;; esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fastflow-target}"
cargo build --release --quiet
exec python3 scripts/bench_hostile.py --binary "$CARGO_TARGET_DIR/release/fastflow" "$@"
