#!/usr/bin/env bash
# The metadata benchmark (docs/benchmarks.md): this machine's limits, then a
# 3-node toastyfs cluster beside a 3-member etcd cluster, same workload shapes.
# Usage: scripts/bench-meta.sh [--seconds N] [--scale FILES]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
need_packages etcd:etcd-server protoc:protobuf-compiler
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --features etcd --bin meta-bench
print_limits
echo "== metadata service"
"$CARGO_TARGET_DIR/release/meta-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" --etcd "$(command -v etcd)" "$@"
