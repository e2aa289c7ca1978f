#!/usr/bin/env bash
# sanitize.sh: the test suite under AddressSanitizer + UndefinedBehaviorSanitizer, then the unit
# test binaries under valgrind.
#   1. build-asan: gcc, -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON (every library, daemon and test);
#      ctest -L unit; as root also ctest -L netns, so pcpd/pcpc/pcpctl run sanitized in the
#      namespaces. Errors are fatal (halt_on_error, leaks included: detect_leaks=1) and every
#      sanitizer report is also written to build-asan/sanitizer-logs/: any file there fails the
#      run, even when the process that wrote it was a daemon whose exit status no test looked at.
#   2. build-valgrind: a plain build (valgrind cannot run ASan binaries); every unit test binary
#      once under valgrind --error-exitcode=1 --leak-check=full.
# Usage: scripts/sanitize.sh [--no-netns] [--no-valgrind] [extra ctest arguments]
# Environment: JOBS (default 2), ASAN_BUILD (build-asan), VALGRIND_BUILD (build-valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
jobs=${JOBS:-2}
asan_build=${ASAN_BUILD:-build-asan}
vg_build=${VALGRIND_BUILD:-build-valgrind}
netns=1
valgrind=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --no-netns) netns=0 ;;
    --no-valgrind) valgrind=0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
if [ "$(id -u)" != 0 ] && [ "$netns" = 1 ]; then
  echo "sanitize.sh: not root: the netns tests are skipped (run with sudo)"
  netns=0
fi

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }
declare -A took

t0=$(now)
step "configure $asan_build: -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON (gcc)"
cmake -S "$src" -B "$asan_build" -G Ninja -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON -DPCPD_TESTS=ON >/dev/null
step "build: ninja -C $asan_build"
ninja -C "$asan_build" -j "$jobs"
took[asan_build]=$(( $(now) - t0 ))

logs=$src/$asan_build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export LSAN_OPTIONS="log_path=$logs/lsan"

check_logs() {
  if compgen -G "$logs/*" >/dev/null; then
    echo "sanitize.sh: sanitizer reports in $logs:" >&2
    for f in "$logs"/*; do echo "--- $f" >&2; head -n 60 "$f" >&2; done
    return 1
  fi
}

status=0
t0=$(now)
step "unit tests under ASan/UBSan: ctest -L unit"
(cd "$asan_build" && ctest --output-on-failure -j "$jobs" -L unit "${ctest_args[@]}") || status=1
check_logs || status=1
took[asan_unit]=$(( $(now) - t0 ))

if [ "$netns" = 1 ]; then
  t0=$(now)
  step "integration tests under ASan/UBSan: ctest -L netns (root)"
  (cd "$asan_build" && ctest --output-on-failure -L netns "${ctest_args[@]}") || status=1
  check_logs || status=1
  took[asan_netns]=$(( $(now) - t0 ))
fi

if [ "$valgrind" = 1 ]; then
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  t0=$(now)
  step "configure + build $vg_build (plain, for valgrind)"
  cmake -S "$src" -B "$vg_build" -G Ninja -DPCPD_WERROR=ON -DPCPD_TESTS=ON >/dev/null
  ninja -C "$vg_build" -j "$jobs"
  took[valgrind_build]=$(( $(now) - t0 ))
  # The unit test executables, from ctest's own list (one run per binary, all its cases).
  mapfile -t bins < <(cd "$vg_build" && ctest -N -L unit --show-only=json-v1 | python3 -c '
import json, sys
seen = []
for t in json.load(sys.stdin)["tests"]:
    exe = t["command"][0]
    if exe not in seen:
        seen.append(exe)
print("\n".join(seen))')
  for bin in "${bins[@]}"; do
    t0=$(now)
    step "valgrind $(basename "$bin")"
    if ! (cd "$vg_build/tests" && valgrind --quiet --error-exitcode=1 --leak-check=full \
          --errors-for-leak-kinds=definite,indirect --track-origins=yes "$bin" --no-intro=true \
          --minimal=true); then
      status=1
      echo "valgrind: $(basename "$bin") FAILED" >&2
    fi
    took["valgrind $(basename "$bin")"]=$(( $(now) - t0 ))
  done
fi

step "timings (seconds)"
for k in "${!took[@]}"; do printf '  %-28s %5s\n' "$k" "${took[$k]}"; done | sort
if [ "$status" != 0 ]; then
  echo "sanitize: FAILED" >&2
  exit 1
fi
echo "sanitize: all clean"
