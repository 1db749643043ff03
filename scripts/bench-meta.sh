#!/usr/bin/env bash
# The metadata benchmark (docs/benchmarks.md): this machine's limits, then a
# 3-node toastyfs cluster beside a 3-member etcd cluster, same workload shapes.
# Usage: scripts/bench-meta.sh [--seconds N] [--scale FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/toastyfs-target}
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v protoc >/dev/null || need+=(protobuf-compiler)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --features etcd --bin meta-bench
echo "== machine limits"
bash ../shared/bench/machine-limits.sh 2>/dev/null || echo "(machine-limits.sh not found)"
echo "== metadata service"
"$CARGO_TARGET_DIR/release/meta-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" --etcd "$(command -v etcd)" "$@"
