#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/ab.sh: before/after comparison of two pcpd binaries for one optimisation.
# On a shared, loaded machine wall-clock rates move by +-40 % between runs, so besides req/s this
# reports pcpd's own CPU time per request (utime+stime of the daemon from /proc/PID/stat, which
# includes the kernel work done in its syscalls, e.g. the nftables commit), and alternates the two
# binaries over --rounds rounds in one lab.
#
# Usage: bench/ab.sh --before BIN --after BIN [--build DIR] [--rounds 3] [--requests 20000]
#                    [--existing 1000] [--perf DIR]
#   --perf DIR  also `perf record` the after binary during each op of round 1 (DIR/refresh.data,
#               DIR/cycle.data; read with `perf report -i ...`); that round's CPU numbers then
#               include perf's overhead
# Prints one JSON line per (round, binary, op) and a summary (medians) on stderr.
# Needs root; exits 77 when not root unless CI=true.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
rounds=3
requests=20000
existing=1000
before=
after=
perf_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --before) before=$(realpath "${2:?}"); shift ;;
    --after) after=$(realpath "${2:?}"); shift ;;
    --build) build=$(cd "${2:?}" && pwd); shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --requests) requests=${2:?}; shift ;;
    --existing) existing=${2:?}; shift ;;
    --perf) perf_dir=${2:?}; mkdir -p "$perf_dir"; perf_dir=$(realpath "$perf_dir"); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "ab.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "ab.sh: SKIP: needs root" >&2; exit 77
fi
[ -x "$before" ] && [ -x "$after" ] || { echo "ab.sh: --before and --after binaries needed" >&2; exit 2; }
loadgen=$build/bench/pcpd-loadgen
[ -x "$loadgen" ] || { echo "ab.sh: $loadgen not built" >&2; exit 2; }

. "$(dirname "$0")/bench_lab.sh"
bench_lab_init ab
cli=pcpab-cli-$rnd
rtr=pcpab-rtr-$rnd

bench_client_router "$cli" "$rtr"
for _ in $(seq 50); do
  ip netns exec "$cli" ping -c1 -W1 192.0.2.1 >/dev/null 2>&1 && break; sleep 0.1
done
seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
lg() { ip netns exec "$cli" "$loadgen" "$@" --server 192.0.2.1 --client 192.0.2.10 --seed "$seed" \
         --window 64 --timeout-ms 10000 --lifetime 3600 --protocol tcp; }

one() {   # one ROUND LABEL BIN
  local round=$1 label=$2 bin=$3 pid t0 t1 line op perf_pid
  rm -rf "$tmp/state"; mkdir -p "$tmp/state"
  cat > "$tmp/pcpd.conf" <<EOF
[interfaces]
internal = ["lan0"]
external = "wan0"
[mappings]
max_per_client = 65535
[announce]
enabled = false
[daemon]
state_dir = "$tmp/state"
log = "stderr"
log_level = "warning"
EOF
  if grep -q -a 'client_rate' "$bin"; then printf '[limits]\nclient_rate = 0\nglobal_rate = 0\n' >> "$tmp/pcpd.conf"; fi
  ip netns exec "$rtr" nft -f "$repo/nft-rules/pcpd.nft"
  ip netns exec "$rtr" "$bin" -c "$tmp/pcpd.conf" 2>"$tmp/pcpd.log" &
  pid=$!
  started+=("$pid")
  for _ in $(seq 100); do ip netns exec "$rtr" ss -H -lun 'sport = :5351' | grep -q . && break; sleep 0.1; done
  lg fill --count "$existing" --base-port 10000 --label "$label" >/dev/null
  for op in refresh cycle; do
    perf_pid=
    if [ -n "$perf_dir" ] && [ "$label" = after ] && [ "$round" = 1 ]; then
      perf record -q -p "$pid" -o "$perf_dir/$op.data" >/dev/null 2>&1 &
      perf_pid=$!
      started+=("$perf_pid")
      sleep 0.5
    fi
    t0=$(cpu_ticks "$pid")
    if [ $op = refresh ]; then
      line=$(lg refresh --count "$requests" --span "$existing" --base-port 10000 --existing "$existing" --label "$label")
    else
      line=$(lg cycle --count "$requests" --batch 500 --base-port 40000 --existing "$existing" --label "$label")
    fi
    t1=$(cpu_ticks "$pid")
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    # cycle: create+delete = 2 x requests, CPU shared between them
    echo "$line" | python3 -c '
import sys, json
lines = [json.loads(l) for l in sys.stdin if l.strip()]
n = sum(l["answered"] for l in lines)
cpu_us = ('"$t1"' - '"$t0"') / '"$tck"' * 1e6
for l in lines:
    l["round"] = '"$round"'
    l["cpu_us_per_req"] = cpu_us / n if n else None
    print(json.dumps(l))'
  done
  kill "$pid"; wait "$pid" || true
  ip netns exec "$rtr" nft flush ruleset
}

out=$tmp/ab.jsonl
for r in $(seq "$rounds"); do
  one "$r" before "$before" | tee -a "$out"
  one "$r" after "$after" | tee -a "$out"
done
python3 - "$out" >&2 <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("ab.sh: medians over rounds (req/s | pcpd CPU us per request)")
for op in ("refresh", "create", "delete"):
    row = {}
    for label in ("before", "after"):
        rs = [r for r in runs if r["server"] == label and r["op"] == op]
        if rs:
            row[label] = (statistics.median(r["req_per_s"] for r in rs),
                          statistics.median(r["cpu_us_per_req"] for r in rs))
    if len(row) == 2:
        b, a = row["before"], row["after"]
        print(f"  {op:8s} before {b[0]:9,.0f}/s {b[1]:6.1f} us | after {a[0]:9,.0f}/s {a[1]:6.1f} us"
              f" | rate x{a[0] / b[0]:.2f}, cpu x{a[1] / b[1]:.2f}")
EOF
