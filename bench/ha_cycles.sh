#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/ha_cycles.sh: the HA pair's failover figures. Runs tests/integration/ha_cycles.sh (the
# five cycles of an operator's week with 100 messages/s on each elected flow) N times on quiet
# routers and N times with 200,000 unrelated conntrack entries on each router, alternating, and
# prints per cycle: how long until the other router held the VIPs and answered PCP, and the
# longest gap any elected flow saw (median and worst over the runs). A run that fails is
# counted and its log kept.
# Usage: bench/ha_cycles.sh [--runs N] [--fill ENTRIES] [--out FILE] [--build DIR]
# Writes the reports as JSON lines to --out (default bench/results/ha_cycles-<stamp>.jsonl).
# Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
runs=10
fill=200000
out=
while [ $# -gt 0 ]; do
  case $1 in
  --runs) runs=$2; shift 2 ;;
  --fill) fill=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  *) echo "usage: $0 [--runs N] [--fill ENTRIES] [--out FILE] [--build DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ha_cycles: needs root" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${out:-$repo/bench/results/ha_cycles-$stamp.jsonl}
logs=$(mktemp -d /tmp/pcpd-ha-cycles.XXXXXX)
: >"$out"
for i in $(seq 1 "$runs"); do
  for level in 0 "$fill"; do
    rep=$logs/report-$i-$level.txt
    rc=0
    HA_CT_FILL=$([ "$level" = 0 ] || echo "$level") HA_CYCLES_REPORT=$rep PCPD_BUILD_DIR=$build \
      PCPD_SOURCE_DIR=$repo CI=true bash "$repo/tests/integration/ha_cycles.sh" >"$logs/run-$i-$level.log" 2>&1 || rc=$?
    python3 "$repo/bench/ha_cycles_report.py" line --run "$i" --fill "$level" --rc "$rc" "$rep" >>"$out"
    echo "run $i fill $level: exit $rc ($(tail -n 1 "$logs/run-$i-$level.log"))"
  done
done
python3 "$repo/bench/ha_cycles_report.py" table "$out"
echo "raw: $out; logs: $logs"
