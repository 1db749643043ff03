#!/usr/bin/env bash
# The client benchmark (docs/benchmarks.md): this machine's limits, then put/get
# of a 1 GiB file and 10,000 small files on a `toastyfs dev` cluster.
# Usage: scripts/bench-client.sh [--mib N] [--small-files N] [--parallelism N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/toastyfs-target}
dpkg -s libclang-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libclang-dev >/dev/null; }
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --bin client-bench
echo "== machine limits"
bash ../shared/bench/machine-limits.sh 2>/dev/null || echo "(machine-limits.sh not found)"
echo "== client on a dev cluster (replication factor 3, all replicas on this one disk)"
"$CARGO_TARGET_DIR/release/client-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" "$@"
