#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench_smoke: proves the benchmark harness works (bench/run.sh --smoke: a few seconds, tiny
# counts, pcpd and miniupnpd-nftables side by side). The full run is documented in
# bench/RESULTS.md. Root only; skips (77) outside CI when not root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "bench_smoke: must run as root in CI" >&2; exit 1; fi
  echo "bench_smoke: SKIP: needs root (network namespaces)"; exit 77
fi
src=${PCPD_SOURCE_DIR:?}
exec bash "$src/bench/run.sh" --smoke --build "${PCPD_BUILD_DIR:?}"
