#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# sanitize.sh: the tests under AddressSanitizer + UndefinedBehaviorSanitizer, then unit test
# binaries under valgrind (memcheck). Two sizes:
#
#   default (CI, ~6 min on 2 cores):
#     1. build-asan: gcc, -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON, Debug at -O0 -g1 (an ASan build at
#        -O2 -g compiles ~8x slower); only what the tests below run: every unit test binary
#        (tests/unit/*.cmake), pcpd, pcpc, pcpctl.
#     2. ctest -L unit (every unit test) under ASan/UBSan.
#     3. as root: the integration tests SANITIZE_NETNS (it_map it_hostile it_natpmp
#        it_datapath_fail): ctest sets PCPD_BUILD_DIR=build-asan, so lab.sh runs the sanitized
#        pcpd/pcpc/pcpctl in the namespaces.
#     4. valgrind --error-exitcode=1 --leak-check=full on test_wire and test_core of the plain
#        build VALGRIND_BUILD (default: build, the tree scripts/test.sh has just built; only these
#        two targets are built when missing). Valgrind cannot run ASan binaries.
#   --full (long, ~20+ min): the whole tree under ASan (fuzz replay, kernel tests, every binary),
#     every netns test, and valgrind on every unit test binary (VALGRIND_BUILD default
#     build-valgrind).
#
# Errors are fatal (halt_on_error, leaks included: detect_leaks=1) and every sanitizer report is
# also written to build-asan/sanitizer-logs/: any file there fails the run, even when the process
# that wrote it was a daemon whose exit status no test looked at.
# Usage: scripts/sanitize.sh [--full] [--no-netns] [--no-valgrind] [extra ctest arguments]
# Environment: JOBS (default 2), ASAN_BUILD (build-asan), VALGRIND_BUILD, SANITIZE_NETNS.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
jobs=${JOBS:-2}
asan_build=${ASAN_BUILD:-build-asan}
full=0
netns=1
valgrind=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    --ci) full=0 ;;
    --no-netns) netns=0 ;;
    --no-valgrind) valgrind=0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
if [ "$full" = 1 ]; then
  vg_build=${VALGRIND_BUILD:-build-valgrind}
else
  vg_build=${VALGRIND_BUILD:-build}
fi
netns_tests=${SANITIZE_NETNS:-"it_map it_hostile it_natpmp it_datapath_fail"}
if [ "$(id -u)" != 0 ] && [ "$netns" = 1 ]; then
  if [ "${CI:-}" = true ]; then
    echo "sanitize.sh: the netns tests need root and CI=true forbids skipping them" >&2
    exit 1
  fi
  echo "sanitize.sh: not root: the netns tests are skipped (run with sudo)"
  netns=0
fi

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }
declare -A took
t_start=$(now)

# The unit test executables, as their fragments name them (pcpd_add_test(NAME ...)).
mapfile -t unit_targets < <(grep -ho 'pcpd_add_test([A-Za-z0-9_]*' tests/unit/*.cmake | cut -d'(' -f2 | sort -u)

t0=$(now)
step "configure $asan_build: -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON, Debug -O0 -g1 (gcc)"
cmake -S "$src" -B "$asan_build" -G Ninja -DPCPD_SANITIZE=ON -DPCPD_WERROR=ON -DPCPD_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DCMAKE_C_FLAGS_DEBUG="-O0 -g1" >/dev/null
if [ "$full" = 1 ]; then
  step "build: ninja -C $asan_build (everything)"
  ninja -C "$asan_build" -j "$jobs"
else
  step "build: ninja -C $asan_build ${unit_targets[*]} pcpd pcpc pcpctl"
  ninja -C "$asan_build" -j "$jobs" "${unit_targets[@]}" pcpd pcpc pcpctl
fi
took[1_asan_build]=$(( $(now) - t0 ))

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
took[2_asan_unit]=$(( $(now) - t0 ))

if [ "$netns" = 1 ]; then
  t0=$(now)
  if [ "$full" = 1 ]; then
    step "integration tests under ASan/UBSan: ctest -L netns (root)"
    (cd "$asan_build" && ctest --output-on-failure -L netns "${ctest_args[@]}") || status=1
  else
    regex="^($(echo "$netns_tests" | tr ' ' '|'))\$"
    step "integration tests under ASan/UBSan (pcpd sanitized in the lab): ctest -R '$regex'"
    (cd "$asan_build" && ctest --output-on-failure -L netns -R "$regex" "${ctest_args[@]}") || status=1
  fi
  check_logs || status=1
  took[3_asan_netns]=$(( $(now) - t0 ))
fi

if [ "$valgrind" = 1 ]; then
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  command -v valgrind >/dev/null || { echo "sanitize.sh: valgrind missing (scripts/install-deps.sh)" >&2; exit 1; }
  t0=$(now)
  if [ "$full" = 1 ]; then
    vg_targets=("${unit_targets[@]}")
  else
    vg_targets=(test_wire test_core)
  fi
  if [ -f "$vg_build/CMakeCache.txt" ] && grep -q '^PCPD_SANITIZE:BOOL=ON' "$vg_build/CMakeCache.txt"; then
    echo "sanitize.sh: $vg_build is a sanitizer build; valgrind needs a plain one" >&2
    exit 1
  fi
  step "build $vg_build (plain, for valgrind): ${vg_targets[*]}"
  [ -f "$vg_build/CMakeCache.txt" ] ||
    cmake -S "$src" -B "$vg_build" -G Ninja -DPCPD_WERROR=ON -DPCPD_TESTS=ON >/dev/null
  ninja -C "$vg_build" -j "$jobs" "${vg_targets[@]}"
  took[4_valgrind_build]=$(( $(now) - t0 ))
  for t in "${vg_targets[@]}"; do
    bin=$(cd "$vg_build" && pwd)/tests/$t
    [ -x "$bin" ] || { echo "valgrind: $bin not found" >&2; status=1; continue; }
    t0=$(now)
    step "valgrind $t"
    if ! (cd "$vg_build/tests" && valgrind --quiet --error-exitcode=1 --leak-check=full \
          --errors-for-leak-kinds=definite,indirect --track-origins=yes "$bin" --no-intro=true \
          --minimal=true); then
      status=1
      echo "valgrind: $t FAILED" >&2
    fi
    took["5_valgrind $t"]=$(( $(now) - t0 ))
  done
fi

took[6_total]=$(( $(now) - t_start ))
step "timings (seconds)"
printf '%s\n' "${!took[@]}" | sort | while IFS= read -r k; do printf '  %-28s %5s\n' "${k#?_}" "${took[$k]}"; done
if [ "$status" != 0 ]; then
  echo "sanitize: FAILED" >&2
  exit 1
fi
echo "sanitize: all clean ($([ "$full" = 1 ] && echo full || echo ci) run, ${took[6_total]} s)"
