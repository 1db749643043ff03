#!/usr/bin/env bash
# Fuzzes every target in fuzz/ with AFL++ (cargo-afl) on stable Rust for a
# bounded time each, then prints per target: time run, execs, corpus size
# and crashes (docs/testing.md, "Fuzzing"). Runs resume: a target's queue
# from an earlier run in the same output directory is kept and extended.
# Exits 1 if any target has a crash; each crash is named, to minimise
# (`cargo afl tmin`) and keep under fuzz/regressions/<target>/.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60, all)
# Env:   FUZZ_OUT (default fuzz/out), CARGO_TARGET_DIR (default fuzz/target)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(record_decode path_parse json_bodies range_header auth_headers)
fi
out="${FUZZ_OUT:-$root/fuzz/out}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"

# cargo-afl bundles AFL++ and builds it, with the runtime the targets link
# against, for this toolchain once (`cargo afl config --build`).
if ! command -v cargo-afl >/dev/null; then
    cargo install --locked cargo-afl
fi
if ! config="$(cargo afl config --build 2>&1)"; then
    if ! grep -q "already built" <<<"$config"; then
        echo "$config" >&2
        echo "cargo afl config --build failed (it needs make and a C compiler)" >&2
        exit 2
    fi
fi

(cd "$root/fuzz" && cargo afl build --release)

# No UI, no CPU pinning (the machine is shared), and no fuss about a
# core_pattern that pipes crashes elsewhere: AFL++ sees the crash itself.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_AUTORESUME=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

stat() { sed -n "s/^$1 *: *//p" "$2" 2>/dev/null | head -n1; }

mkdir -p "$out"
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    cargo afl fuzz -V "$seconds" -i "$root/fuzz/corpus/$target" -o "$out/$target" \
        "$CARGO_TARGET_DIR/release/$target" >"$out/$target.log" 2>&1 ||
        { tail -n 20 "$out/$target.log"; exit 2; }
done

status=0
printf '\n%-14s %9s %12s %8s %8s\n' target seconds execs corpus crashes
for target in "${targets[@]}"; do
    stats="$out/$target/default/fuzzer_stats"
    crashes="$(stat saved_crashes "$stats")"
    printf '%-14s %9s %12s %8s %8s\n' "$target" "$(stat run_time "$stats")" \
        "$(stat execs_done "$stats")" "$(stat corpus_count "$stats")" "${crashes:-?}"
    if [ "${crashes:-0}" != 0 ]; then
        status=1
    fi
done
for target in "${targets[@]}"; do
    for crash in "$out/$target"/default/crashes/id:*; do
        [ -e "$crash" ] && echo "crash: $crash"
    done
done
exit "$status"
