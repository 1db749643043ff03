#!/usr/bin/env bash
# The client benchmark (docs/benchmarks.md): this machine's limits, then put/get
# of a 1 GiB file and 10,000 small files on a `toastyfs dev` cluster.
# Usage: scripts/bench-client.sh [--mib N] [--small-files N] [--parallelism N]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
need_packages
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --bin client-bench
limits=$(mktemp)
trap 'rm -f "$limits"' EXIT
print_limits | tee "$limits"
echo "== client on a dev cluster (replication factor 3, all replicas on this one disk)"
"$CARGO_TARGET_DIR/release/client-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" --limits "$limits" "$@"
