#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/ct_load.sh: pcpd on a busy router. For each level of unrelated conntrack entries in the
# router namespace (default 0, 200,000 and 1,000,000, filled by pcpd-ct-fill like a NAT44 office
# router's flows), a fresh lab and pcpd, then bench/ct_load.py:
#   load    plain MAP p50/p99 while one client elects and un-elects at its maximum rate (10/s)
#           and another creates, deletes and lets mappings expire (20/s); pcpd's CPU and its
#           conntrack thread's CPU
#   elect   time until an election's existing (idle) connection carries elected|sticky|mapped
#   delete  time until a deleted mapping's connection is gone
#   touch   `pcpctl ha primary` with 65,536 elected connections: first answer, all re-announced
# The levels run one after the other in the same run (compare them as ratios).
#
# Each level runs twice: mode `index` (the default configuration: pcpd.nft announces the
# mappings' connections, pcpd looks them up) and mode `walk` ([checkpoint] log_group = 0: every
# MAP round walks the table for the mapped bit), side by side.
# Usage: bench/ct_load.sh [--build DIR] [--out FILE] [--levels "0 200000 1000000"] [--seconds S]
#        [--touch N] [--modes "index walk"]
# Writes JSON lines to --out (default bench/results/ct_load-<stamp>.jsonl) and prints a table.
# Needs root. The host's conntrack hash is shared by every namespace: the script raises
# nf_conntrack_max and the hash size for the run and puts them back at exit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
out=
levels="0 200000 1000000"
modes="index walk"
seconds=10
touch_n=65536
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?}" && pwd); shift ;;
    --out) out=${2:?}; shift ;;
    --levels) levels=${2:?}; shift ;;
    --seconds) seconds=${2:?}; shift ;;
    --touch) touch_n=${2:?}; shift ;;
    --modes) modes=${2:?}; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "ct_load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "ct_load.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "ct_load.sh: SKIP: needs root for network namespaces and conntrack" >&2
  exit 77
fi
pcpd=$build/src/pcpd/pcpd
pcpctl=$build/src/pcpctl/pcpctl
fill=$build/bench/pcpd-ct-fill
for b in "$pcpd" "$pcpctl" "$fill"; do [ -x "$b" ] || { echo "ct_load.sh: $b not built" >&2; exit 2; }; done
. "$(dirname "$0")/bench_lab.sh"
bench_lab_init ctload
[ -n "$out" ] || out=$repo/bench/results/ct_load-$(date -u +%Y%m%dT%H%M%SZ).jsonl
mkdir -p "$(dirname "$out")"

max_level=0
for l in $levels; do [ "$l" -gt "$max_level" ] && max_level=$l; done
# pcpd.nft's ct expressions load nf_conntrack, whose sysctls are read below
ip netns add "ctl-probe-$rnd" && ip netns exec "ctl-probe-$rnd" nft -f "$repo/nft-rules/pcpd.nft" && ip netns del "ctl-probe-$rnd"
old_max=$(sysctl -n net.netfilter.nf_conntrack_max)
old_hash=$(cat /sys/module/nf_conntrack/parameters/hashsize)
bench_extra_cleanup() {
  sysctl -qw net.netfilter.nf_conntrack_max="$old_max" || true
  echo "$old_hash" > /sys/module/nf_conntrack/parameters/hashsize || true
}
need=$(( max_level + touch_n + 100000 ))
[ "$need" -gt "$old_max" ] && sysctl -qw net.netfilter.nf_conntrack_max="$need"
# a hash size like a router sized for its table: one bucket per entry, at most 2^20
hash=262144
while [ "$hash" -lt "$need" ] && [ "$hash" -lt 1048576 ]; do hash=$(( hash * 2 )); done
[ "$hash" -gt "$old_hash" ] && echo "$hash" > /sys/module/nf_conntrack/parameters/hashsize

echo "{\"op\":\"machine\",\"kernel\":\"$(uname -r)\",\"nproc\":$(nproc),\"date\":\"$(date -u +%FT%TZ)\",\"git\":\"$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)\",\"hashsize\":$(cat /sys/module/nf_conntrack/parameters/hashsize)}" | tee "$out"

for level in $levels; do for mode in $modes; do
  cli=ctc-$rnd-$level-$mode
  rtr=ctr-$rnd-$level-$mode
  wan=ctw-$rnd-$level-$mode
  bench_client_router "$cli" "$rtr"
  for i in 11 12; do ip -n "$cli" addr add "192.0.2.$i/24" dev eth0; done
  ip -n "$cli" addr add 192.0.2.9/24 dev eth0
  ip -n "$cli" route add default via 192.0.2.1
  # the remote host 203.0.113.100 on the router's WAN link (wan0's peer)
  bench_ns "$wan"
  ip -n "$rtr" link set wan0peer netns "$wan"
  ip -n "$wan" addr add 203.0.113.100/24 dev wan0peer
  ip -n "$wan" link set lo up
  ip -n "$wan" link set wan0peer up
  ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$rtr" nft -f "$repo/nft-rules/pcpd.nft"
  ip netns exec "$rtr" sysctl -qw net.netfilter.nf_conntrack_events=1
  if [ "$level" -gt 0 ]; then
    ip netns exec "$rtr" "$fill" "$level" --timeout 3600 | sed "s/^/  fill $level: /" >&2
  fi
  dir=$tmp/$level-$mode
  mkdir -p "$dir/state"
  bench_scale_conf "$dir/pcpd.conf" "$dir" 200000 info
  sed -i 's/^\[mappings\]$/[mappings]\nmin_lifetime = 2/' "$dir/pcpd.conf"
  [ "$mode" = walk ] && printf '\n[checkpoint]\nlog_group = 0\n' >> "$dir/pcpd.conf"
  ip netns exec "$rtr" "$pcpd" -c "$dir/pcpd.conf" 2>>"$dir/pcpd.log" &
  pid=$!
  started+=("$pid")
  for _ in $(seq 200); do ip netns exec "$rtr" ss -H -lun 'sport = :5351' | grep -q . && break; sleep 0.05; done
  py=(ip netns exec "$cli" python3 "$repo/bench/ct_load.py" --rtr "$rtr" --wan "$wan" --pcpd "$pid" --pcpctl "$pcpctl"
      --ctl "$dir/ctl.sock" --level "$level" --mode "$mode")
  "${py[@]}" --phase load --seconds "$seconds" | tee -a "$out"
  "${py[@]}" --phase elect | tee -a "$out"
  ip netns exec "$rtr" sysctl -qw net.netfilter.nf_conntrack_events=0  # the fill is not news to anyone
  ip netns exec "$rtr" "$fill" "$touch_n" --offset 500000000 --mark 11 --timeout 3600 | sed "s/^/  fill touch: /" >&2
  ip netns exec "$rtr" sysctl -qw net.netfilter.nf_conntrack_events=1
  "${py[@]}" --phase touch --touch-entries "$touch_n" | tee -a "$out"
  stop_pid "$pid"
  ip netns del "$cli"
  ip netns del "$rtr"
  ip netns del "$wan"
done; done
python3 - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    if "level" in r:
        by.setdefault((r["level"], r.get("mode", "index")), {})[r["phase"]] = r
print("| entries, mode | plain p50 / p99 ms | pcpd CPU s (conntrack thread) | walks, last walk ms | elect max ms | delete max ms | touch: first answer ms, all ms, p99 ms |")
print("|---|---|---|---|---:|---:|---|")
for level, mode in sorted(by):
    d = by[(level, mode)]; l = d.get("load", {}); t = d.get("touch", {})
    lw = l.get("last_walk_s")
    print(f"| {level:,}, {mode} | {l.get('p50_ms')} / {l.get('p99_ms')} | {l.get('pcpd_cpu_s')} ({l.get('conntrack_thread_cpu_s')}) | "
          f"{l.get('walks')}, {round(lw*1000,1) if lw is not None else '-'} | {d.get('elect',{}).get('max_ms')} | "
          f"{d.get('delete',{}).get('max_ms')} | {t.get('first_answer_ms')}, {t.get('all_touched_ms')}, {t.get('p99_ms_meanwhile')} |")
EOF
echo "ct_load.sh: wrote $out" >&2
