#!/usr/bin/env bash
# The chunk server benchmark (docs/benchmarks.md): this machine's limits, then
# upload/download MB/s of one `toastyfs chunk` on loopback for 1 and 8 MiB
# chunks with 1 and 8 parallel streams.
# Usage: scripts/bench-chunk.sh [--mib N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/toastyfs-target}
dpkg -s libclang-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libclang-dev >/dev/null; }
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --bin chunk-bench
echo "== machine limits"
bash ../shared/bench/machine-limits.sh 2>/dev/null || echo "(machine-limits.sh not found)"
echo "== one chunk server on loopback (nproc: $(nproc))"
"$CARGO_TARGET_DIR/release/chunk-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" "$@"
