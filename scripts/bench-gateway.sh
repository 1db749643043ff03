#!/usr/bin/env bash
# The gateway benchmark (docs/benchmarks.md): this machine's limits, then a
# 1 GiB file put and got through the gateway with curl (plain HTTP and
# WebDAV) beside the CLI's put and get of the same file, on one `toastyfs
# dev` cluster in the same run; prints each MB/s and the gateway ÷ CLI ratio.
# Usage: scripts/bench-gateway.sh [--mib N] [--rounds N]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
mib=1024 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --mib) mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1 (--mib N, --rounds N)" >&2; exit 2 ;;
  esac
done
need_packages curl:curl
cargo build --release --bin toastyfs
bin="$CARGO_TARGET_DIR/release/toastyfs"
print_limits

work=$(mktemp -d)
base=7400
"$bin" dev --dir "$work/dev" --base-port "$base" >"$work/dev.log" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null; wait $dev 2>/dev/null; rm -rf "$work"' EXIT
meta="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
gateway="http://127.0.0.1:$((base + 20))"
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$gateway/" && break
  sleep 0.2
done
curl -sf -o /dev/null "$gateway/" || { echo "the dev cluster did not start; see $work/dev.log" >&2; exit 1; }

file="$work/data.bin"
head -c "$((mib << 20))" /dev/urandom >"$file"
bytes=$(stat -c %s "$file")

# mbps SECONDS: the file's size over SECONDS, in MB/s.
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
# timed CMD...: runs CMD, prints its wall-clock seconds.
timed() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { echo "failed: $* ($(cat "$work/last.err"))" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

# fresh FILE: makes every 1 MiB block of FILE new content (a counter
# stamped at its start), so no put is deduplicated against an earlier one
# (chunks are content-addressed; every chunk size is a multiple of 1 MiB).
stamp=0
fresh() {
  stamp=$((stamp + 1))
  python3 - "$1" "$stamp" <<'PY'
import struct, sys
path, stamp = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(0, 2)
    size = f.tell()
    for offset in range(0, size, 1 << 20):
        f.seek(offset)
        f.write(struct.pack("<QQ", stamp, offset))
PY
}

declare -A best
keep() { # keep NAME SECONDS: the fastest of the rounds
  [ -n "$2" ] || { echo "the $1 measurement failed; see above" >&2; exit 1; }
  if [ -z "${best[$1]:-}" ] || awk -v a="$2" -v b="${best[$1]}" 'BEGIN { exit !(a < b) }'; then best[$1]=$2; fi
}
echo "== ${mib} MiB, replication factor 3, best of $rounds rounds"
for round in $(seq 1 "$rounds"); do
  fresh "$file"
  keep cli_put "$(timed "$bin" put --meta "$meta" "$file" "/cli-$round.bin")"
  fresh "$file"
  keep http_put "$(timed curl -sf -T "$file" "$gateway/http-$round.bin")"
  fresh "$file"
  keep dav_put "$(timed curl -sf -T "$file" "$gateway/dav/dav-$round.bin")"
  keep cli_get "$(timed "$bin" cat --meta "$meta" "/cli-$round.bin")"
  keep http_get "$(timed curl -sf -o /dev/null "$gateway/http-$round.bin")"
  keep dav_get "$(timed curl -sf -o /dev/null "$gateway/dav/dav-$round.bin")"
done
for op in put get; do
  cli=$(mbps "${best[cli_$op]}")
  for side in http dav; do
    got=$(mbps "${best[${side}_$op]}")
    ratio=$(awk -v g="$got" -v c="$cli" 'BEGIN { printf "%.2f", g / c }')
    printf '%-4s %-4s %6s MB/s   CLI %6s MB/s   ratio %s (target >= 0.85)\n' "$side" "$op" "$got" "$cli" "$ratio"
  done
done
