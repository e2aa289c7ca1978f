#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/flat.sh: is pcpd as fast at 1,000,000 existing mappings as at 100 (the target: "<= 10 %
# slower")? Two labs side by side, each a client and a router namespace with its own pcpd and
# nftables: "small" holds --small mappings (100), "large" --large (1,000,000). The same
# measurements (refresh, then create/delete) then alternate between the two over --rounds rounds,
# the order swapped every round, so that both see the same machine load; each round gives one
# large/small ratio of req/s and of pcpd's CPU time per request (utime+stime from /proc/PID/stat,
# with the kernel work of its syscalls). The summary prints the median and the range of the
# per-round ratios. bench/scale.sh measures its levels one after the other instead (minutes
# apart on a shared machine), which is why its ratios move by +-10 % from run to run.
#
# Usage: bench/flat.sh [--build DIR] [--pcpd BIN] [--rounds 7] [--requests 100000]
#                      [--small 100] [--large 1000000] [--window 256] [--out FILE] [--perf DIR]
#                      [--perf-round 1] [--pcpd-b BIN]
#   --perf DIR  also `perf record -g` each pcpd during its measurements of round --perf-round
#               (DIR/LAB-OP.data; read with `perf report -i ...`); that round's CPU then includes
#               perf's overhead
#   --pcpd-b BIN  an A/B run: two more labs, small_b and large_b, run BIN with the same levels, and
#               every round measures all four in a rotating order; the summary adds BIN's ratios
#               and BIN's CPU per request over the first binary's at each level
# Writes JSON lines to --out (default bench/results/flat-<stamp>.jsonl), the summary on stderr.
# Needs root; exits 77 when not root unless CI=true.
#
# Lab (RFC 5737 addresses), twice: the client namespace has 192.0.2.9 (the measuring client) and
# 192.0.2.10.. (fill clients, 62,500 TCP mappings each); the router has lan0 192.0.2.1 and wan0
# 203.0.113.1..N (the NAT pool: one address per 60,000 mappings), wan0's veth peer staying in the
# router. Refreshes go round-robin over the mappings of 192.0.2.10 (all of them at --small,
# 62,500 at --large); create/delete rounds of 1,000 new mappings come from 192.0.2.9.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
pcpd=
rounds=7
requests=100000
small=100
large=1000000
window=256
batch=1000
out=
perf_dir=
perf_round=1
pcpd_b=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --pcpd) pcpd=$(realpath "${2:?}"); shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --requests) requests=${2:?}; shift ;;
    --small) small=${2:?}; shift ;;
    --large) large=${2:?}; shift ;;
    --window) window=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --perf) perf_dir=${2:?}; mkdir -p "$perf_dir"; perf_dir=$(realpath "$perf_dir"); shift ;;
    --perf-round) perf_round=${2:?}; shift ;;
    --pcpd-b) pcpd_b=$(realpath "${2:?}"); shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "flat.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "flat.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "flat.sh: SKIP: needs root for network namespaces and nftables" >&2
  exit 77
fi
[ -n "$pcpd" ] || pcpd=$build/src/pcpd/pcpd
loadgen=$build/bench/pcpd-loadgen
for b in "$loadgen" "$pcpd"; do
  [ -x "$b" ] || { echo "flat.sh: $b not built (ninja -C $build pcpd pcpd-loadgen)" >&2; exit 2; }
done
per_client=62500
[ "$small" -ge 1 ] && [ "$large" -gt "$small" ] && [ "$large" -le 10000000 ] ||
  { echo "flat.sh: need 1 <= --small < --large <= 10,000,000" >&2; exit 2; }

. "$(dirname "$0")/bench_lab.sh"
bench_lab_init flat
BENCH_STOP_TENTHS=100
log() { echo "flat.sh: $*" >&2; }
tck=$(getconf CLK_TCK)
seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))
stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$out" ] || out=$repo/bench/results/flat-$stamp.jsonl
mkdir -p "$(dirname "$out")"
: > "$out"
emit() { echo "$1" | tee -a "$out" | sed 's/^/  /' >&2; }

declare -A pid level
# lab NAME LEVEL BIN: namespaces cli-NAME / rtr-NAME, nftables rules, pcpd BIN started
lab() {
  local name=$1 n=$2 bin=$3 cli=pcpf-cli-$1-$rnd rtr=pcpf-rtr-$1-$rnd i nclients naddr
  nclients=$(( (n + per_client - 1) / per_client ))
  naddr=$(( n / 60000 + 2 ))
  bench_scale_lab "$cli" "$rtr" "$naddr" "$nclients"
  mkdir -p "$tmp/$name/state"
  bench_scale_conf "$tmp/$name/pcpd.conf" "$tmp/$name" $(( n + 100000 )) info
  ip netns exec "$rtr" nft -f "$repo/nft-rules/pcpd.nft"
  ip netns exec "$rtr" "$bin" -c "$tmp/$name/pcpd.conf" 2>>"$tmp/$name/pcpd.log" &
  pid[$name]=$!
  started+=("${pid[$name]}")
  level[$name]=$n
  for i in $(seq 200); do
    ip netns exec "$rtr" ss -H -lun 'sport = :5351' | grep -q . && break
    [ "$i" = 200 ] && { log "pcpd ($name) did not start"; cat "$tmp/$name/pcpd.log" >&2; exit 1; }
    sleep 0.05
  done
  for i in $(seq 50); do ip netns exec "$cli" ping -c1 -W1 192.0.2.1 >/dev/null 2>&1 && break; sleep 0.1; done
}

lg() {   # lg NAME CLIENT ARGS...
  local name=$1 client=$2; shift 2
  ip netns exec "pcpf-cli-$name-$rnd" "$loadgen" "$@" --server 192.0.2.1 --client "$client" \
    --label "$name" --seed "$seed" --lifetime 3600 --protocol tcp --timeout-ms 10000 --debug 3
}

fill() {   # fill NAME: clients 192.0.2.10.. in parallel, 62,500 mappings each
  local name=$1 n=${level[$1]} j lo hi pids=() ok
  for j in $(seq 0 $(( (n + per_client - 1) / per_client - 1 ))); do
    lo=$(( j * per_client )); hi=$(( lo + per_client ))
    [ $hi -gt "$n" ] && hi=$n
    lg "$name" "192.0.2.$(( 10 + j ))" fill --count $(( hi - lo )) --base-port 1024 --window 64 \
      > "$tmp/$name/fill-$j.json" &
    pids+=($!)
  done
  for j in "${pids[@]}"; do wait "$j"; done
  ok=$(cat "$tmp/$name"/fill-*.json | python3 -c 'import sys,json; print(sum(json.loads(l)["success"] for l in sys.stdin))')
  # internal ports 5350 and 5351 are refused (R-MAP-15): 2 per fill client of more than 4,326
  [ "$ok" -ge $(( n - 2 * (n + per_client - 1) / per_client )) ] ||
    { log "fill $name: $ok of $n created"; exit 1; }
  level[$name]=$ok
  emit "{\"op\":\"fill\",\"lab\":\"$name\",\"existing\":$ok}"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/${pid[$1]}/stat"; }
measure() {   # measure ROUND NAME OP: one loadgen run, its JSON lines with the CPU per request
  local round=$1 name=$2 op=$3 n=${level[$2]} c0 c1 lines span perf_pid=
  span=$(( n < per_client ? n : per_client ))
  if [ -n "$perf_dir" ] && [ "$round" = "$perf_round" ]; then
    perf record -q -g -p "${pid[$name]}" -o "$perf_dir/$name-$op.data" >/dev/null 2>&1 &
    perf_pid=$!
    started+=("$perf_pid")
    sleep 0.5
  fi
  c0=$(cpu_ticks "$name")
  if [ "$op" = refresh ]; then
    lines=$(lg "$name" 192.0.2.10 refresh --count "$requests" --span "$span" --base-port 1024 \
              --existing "$n" --window "$window")
  else
    lines=$(lg "$name" 192.0.2.9 cycle --count "$requests" --batch $batch --base-port 40000 \
              --existing "$n" --window "$window")
  fi
  c1=$(cpu_ticks "$name")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  echo "$lines" | python3 -c '
import sys, json
lines = [json.loads(l) for l in sys.stdin if l.strip()]
n = sum(l["answered"] for l in lines)
cpu_us = ('"$c1"' - '"$c0"') / '"$tck"' * 1e6
for l in lines:
    l.update(round='"$round"', lab="'"$name"'", cpu_us_per_req=cpu_us / n if n else None)
    print(json.dumps(l))' | while read -r l; do emit "$l"; done
}

log "labs: small ($small mappings) and large ($large), pcpd $pcpd${pcpd_b:+, and small_b / large_b with $pcpd_b}"
labs=(small large)
lab small "$small" "$pcpd"
lab large "$large" "$pcpd"
if [ -n "$pcpd_b" ]; then
  labs+=(small_b large_b)
  lab small_b "$small" "$pcpd_b"
  lab large_b "$large" "$pcpd_b"
fi
log "fill"
for name in "${labs[@]}"; do fill "$name"; done
sleep 1
emit "{\"op\":\"rss\",\"small_kib\":$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/${pid[small]}/status"),\"large_kib\":$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/${pid[large]}/status")}"
# The host's CPU while both labs sit idle (the kernel's own work for the sets, e.g. their garbage
# collection, runs in kworkers and is not in pcpd's CPU time): busy ticks of all CPUs over 5 s.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
b0=$(busy); p0s=$(cpu_ticks small); p0l=$(cpu_ticks large); sleep 5
b1=$(busy); p1s=$(cpu_ticks small); p1l=$(cpu_ticks large)
pct() { awk -v a="$1" -v b="$2" -v t="$tck" 'BEGIN {printf "%.1f", (b - a) / t / 5 * 100}'; }
emit "{\"op\":\"idle\",\"host_busy_percent_of_one_cpu\":$(pct "$b0" "$b1"),\"pcpd_small_percent\":$(pct "$p0s" "$p1s"),\"pcpd_large_percent\":$(pct "$p0l" "$p1l")}"

# Journal compactions (a snapshot of the whole table) during the rounds are part of the large
# level's cost: counted here, in the CPU of the rounds they fall in, and listed at the end.
for name in "${labs[@]}"; do wc -l < "$tmp/$name/pcpd.log" > "$tmp/$name/log-mark"; done
for r in $(seq "$rounds"); do
  # two labs: swapped every round; four: rotated by one every round
  k=$(( r % ${#labs[@]} ))
  [ ${#labs[@]} = 2 ] && k=$(( (r + 1) % 2 ))
  order="${labs[*]:$k} ${labs[*]:0:$k}"
  log "round $r of $rounds ($order)"
  for op in refresh cycle; do
    for name in $order; do measure "$r" "$name" "$op"; done
  done
done
for name in "${labs[@]}"; do
  kill -0 "${pid[$name]}" 2>/dev/null || { log "pcpd ($name) died"; tail -5 "$tmp/$name/pcpd.log" >&2; exit 1; }
  # the snapshots written during the rounds, then the one a stop writes (SIGTERM)
  tail -n +"$(( $(cat "$tmp/$name/log-mark") + 1 ))" "$tmp/$name/pcpd.log" > "$tmp/$name/rounds.log"
  stop_pid "${pid[$name]}"
  tail -n +"$(( $(wc -l < "$tmp/$name/rounds.log") + $(cat "$tmp/$name/log-mark") + 1 ))" "$tmp/$name/pcpd.log" |
    sed 's/^/stop: /' >> "$tmp/$name/rounds.log"
  grep 'mappings.snapshot_written' "$tmp/$name/rounds.log" | while read -r l; do
    emit "{\"op\":\"snapshot\",\"lab\":\"$name\",\"at_stop\":$(case $l in stop:*) echo true ;; *) echo false ;; esac),\"reason\":\"$(sed -n 's/.*reason=\([a-z_]*\).*/\1/p' <<< "$l")\",\"bytes\":$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<< "$l"),\"ms\":$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<< "$l")}"
  done
done
python3 "$(dirname "$0")/flat_report.py" "$out" >&2
log "wrote $out"
