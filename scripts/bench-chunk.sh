#!/usr/bin/env bash
# The chunk server benchmark (docs/benchmarks.md): this machine's limits, then
# upload/download MB/s of one `toastyfs chunk` on loopback for 1 and 8 MiB
# chunks with 1 and 8 parallel streams.
# Usage: scripts/bench-chunk.sh [--mib N]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
need_packages
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --bin chunk-bench
print_limits
echo "== one chunk server on loopback (nproc: $(nproc))"
"$CARGO_TARGET_DIR/release/chunk-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" "$@"
