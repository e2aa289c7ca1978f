#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# fuzz.sh: libFuzzer run of every fuzz target (tests/fuzz): configures a clang build with
# -DPCPD_FUZZ=ON in build-fuzz (ASan + UBSan + coverage on the whole tree), builds the targets,
# replays the committed corpus and regressions, then fuzzes each target for SECONDS and prints
# the executions per target. Fails (exit 1) on any crash, leak, sanitizer report or invariant
# failure; the crashing input is left in build-fuzz/artifacts/<target>/ (keep it as a regression:
# tests/fuzz/regressions/<target>/).
# Usage: scripts/fuzz.sh [SECONDS] [--merge]
#   SECONDS  per target (default 20; e.g. 3600 for a long run)
#   --merge  afterwards, minimise what fuzzing found into tests/fuzz/corpus/<target>/ (-merge=1:
#            only inputs that add coverage are kept)
# Environment: BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default: all), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD_DIR:-build-fuzz}
jobs=${JOBS:-2}
seconds=20
merge=0
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [--merge]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done
targets=${FUZZ_TARGETS:-"decode_request decode_response roundtrip natpmp server"}
declare -A max_len=([decode_request]=1200 [decode_response]=1200 [roundtrip]=1200 [natpmp]=64 [server]=4096)

step() { printf '\n==> %s\n' "$*"; }

step "configure: CC=clang CXX=clang++ cmake -B $build -DPCPD_FUZZ=ON -DPCPD_WERROR=ON"
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DPCPD_FUZZ=ON -DPCPD_WERROR=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
step "build: ninja -C $build fuzzers"
ninja -C "$build" -j "$jobs" fuzzers

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
declare -A execs
for t in $targets; do
  bin=$build/tests/fuzz/fuzz_$t
  seeds=$src/tests/fuzz/corpus/$t
  regressions=$src/tests/fuzz/regressions/$t
  work=$build/tests/fuzz/work/$t
  artifacts=$build/artifacts/$t
  log=$build/fuzz-$t.log
  mkdir -p "$seeds" "$regressions" "$work" "$artifacts"
  step "fuzz_$t: replay, then ${seconds}s of fuzzing (log: $log)"
  if ! "$bin" -runs=0 "$seeds" "$regressions" >"$log" 2>&1; then
    tail -n 40 "$log"
    failed+=("$t (replay)")
    continue
  fi
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      -max_len="${max_len[$t]}" -artifact_prefix="$artifacts/" "$work" "$seeds" "$regressions" \
      >>"$log" 2>&1; then
    tail -n 60 "$log"
    failed+=("$t")
  fi
  execs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  echo "fuzz_$t: ${execs[$t]:-?} executions in ${seconds}s, $cov"
  if [ "$merge" = 1 ]; then
    "$bin" -merge=1 -max_len="${max_len[$t]}" "$seeds" "$work" >>"$log" 2>&1
    echo "fuzz_$t: corpus now $(ls "$seeds" | wc -l) files, $(du -sh "$seeds" | cut -f1)"
  fi
done

step "summary (${seconds}s per target)"
for t in $targets; do printf '  fuzz_%-16s %12s executions\n' "$t" "${execs[$t]:-?}"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crash"
