# Shared by the bench scripts (sourced, not run): where cargo builds, the
# Debian packages a bench needs, and this machine's limits printed in the
# same run as the figures they are compared with.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/toastyfs-target}

# need_packages CMD:PACKAGE... installs PACKAGE when CMD is missing
# (libclang-dev, which RocksDB's bindings need, always checked).
need_packages() {
  local need=() pair
  dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
}

print_limits() {
  echo "== machine limits"
  bash ../shared/bench/machine-limits.sh 2>/dev/null || echo "(machine-limits.sh not found)"
}
