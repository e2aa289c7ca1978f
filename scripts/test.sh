#!/usr/bin/env bash
# test.sh: the whole pcpd test suite on a Debian 12 machine, as root:
#   install the build and lab dependencies (scripts/install-deps.sh), configure with warnings as
#   errors, build, and run every test: unit tests (label unit) and the network-namespace
#   integration tests (label netns), with their output on failure.
# Usage: sudo scripts/test.sh [extra ctest arguments, e.g. -L unit or -R it_map]
# Environment: BUILD_DIR (default build), JOBS (default: number of CPUs).
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
cd "$build"
ctest --output-on-failure -j "$jobs" "$@"
