#!/usr/bin/env bash
# A flame graph of the metadata leader committing for one closed-loop client
# (docs/benchmarks.md, "Where a commit's time goes"): meta-bench's first run
# (1 client) is sampled with perf on the busiest `toastyfs meta` process (the
# leader), DWARF call graphs from the release binary's unwind tables, folded
# and drawn with inferno. On-CPU time only: waits (fsync, the network) are
# the gaps the graph does not show.
# Usage: scripts/flamegraph-meta.sh [OUT.svg]   (default docs/flamegraph-commit-1-client.svg)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
need_packages perf:linux-perf
command -v inferno-flamegraph >/dev/null || cargo install inferno
out=${1:-docs/flamegraph-commit-1-client.svg}
cargo build --release --bin toastyfs
cargo build --release -p toastyfs-bench --bin meta-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/meta-bench" --toastyfs "$CARGO_TARGET_DIR/release/toastyfs" --seconds 12 >"$work/bench.txt" 2>&1 &
bench=$!
sleep 4
leader=$(ps -C toastyfs -o pid=,pcpu=,args= | awk '/ meta / {print $2, $1}' | sort -nr | head -1 | awk '{print $2}')
[ -n "$leader" ] || { echo "no toastyfs meta process found" >&2; exit 1; }
perf record -F 499 -g --call-graph dwarf,16384 -p "$leader" -o "$work/perf.data" -- sleep 6 2>/dev/null
wait "$bench" || true
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded.txt"
inferno-flamegraph --title "toastyfs meta leader, 1 client creating files (on-CPU)" <"$work/folded.txt" >"$out"
head -3 "$work/bench.txt"
echo "flame graph: $out ($(wc -l <"$work/folded.txt") stacks)"
