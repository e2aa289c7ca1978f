#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test.sh: the whole pcpd test suite on a Debian 12 machine, as root:
#   install the build and lab dependencies (scripts/install-deps.sh), configure with warnings as
#   errors, build, and run every test: unit tests (label unit) and the network-namespace
#   integration tests (label netns), with their output on failure.
#   Then, when no ctest arguments were given: the sanitizer and valgrind runs (scripts/sanitize.sh:
#   every unit test and four netns tests under ASan+UBSan, test_wire and test_core under
#   valgrind), and the fuzz targets (scripts/fuzz.sh: a clang ASan+UBSan build, the corpus
#   replayed, FUZZ_SECONDS of libFuzzer per target).
# Usage: sudo scripts/test.sh [extra ctest arguments, e.g. -L unit or -R it_map]
# Environment: BUILD_DIR (default build), JOBS (default: number of CPUs), FUZZ_SECONDS (default
#   10; 0 skips fuzzing), SANITIZE (default 1; 0 skips scripts/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" = 0 ]; then
  step "dependencies (scripts/install-deps.sh)"
  scripts/install-deps.sh
else
  echo "test.sh: not root: skipping the dependency check; the netns tests will skip (run with sudo)"
fi

step "configure: cmake -S . -B $build -G Ninja -DPCPD_WERROR=ON"
cmake -S "$src" -B "$build" -G Ninja -DPCPD_WERROR=ON -DPCPD_TESTS=ON

step "build: ninja -C $build -j $jobs"
ninja -C "$build" -j "$jobs"

step "test: ctest --output-on-failure (unit, then netns)"
status=0
(cd "$build" && ctest --output-on-failure -j "$jobs" "$@") || status=$?

if [ $# -eq 0 ] && [ "${SANITIZE:-1}" != 0 ]; then
  step "sanitizers: scripts/sanitize.sh (ASan+UBSan, valgrind on the $build binaries)"
  VALGRIND_BUILD=$build JOBS=$jobs scripts/sanitize.sh || status=1
fi

fuzz_seconds=${FUZZ_SECONDS:-10}
if [ $# -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
  step "fuzz: scripts/fuzz.sh $fuzz_seconds"
  BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz} JOBS=$jobs scripts/fuzz.sh "$fuzz_seconds" || status=1
fi
exit "$status"
