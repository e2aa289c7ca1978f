#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/scale.sh: pcpd at 100 vs 100,000 vs 1,000,000 existing mappings: create/refresh/
# delete rates, daemon RSS and kernel memory per mapping, and restart time with the mappings
# still in the kernel. Writes JSON lines (one per measurement) to --out (default
# bench/results/scale-<stamp>.jsonl) and a markdown summary on stdout.
#
# Usage: bench/scale.sh [--build DIR] [--levels "100 100000 1000000"] [--requests N] [--out FILE]
#                       [--restart-max SECONDS]   (how long to wait for the restarted pcpd; 120)
#                       [--journal-refreshes N]   (refreshes sent between the two restarts, so that
#                       the kill -9 restart replays a journal of N entries; 0)
# Needs root. Exits 77 when not root, unless CI=true.
#
# Lab (RFC 5737 addresses): client namespace with 192.0.2.9 (the measuring client) and
# 192.0.2.10.. (fill clients, 62,500 TCP mappings each on internal ports 1024..63523, since a
# PCP mapping is keyed by internal address/protocol/port and one address has 64 Ki ports); router
# namespace with lan0 192.0.2.1 and wan0 holding 203.0.113.1..N (pcpd's NAT pool: one external
# address per 60,000 mappings, the pool of one address/protocol having ~64 Ki ports).
# Measured at each level, from 192.0.2.9 with --window 256: create/delete rounds of --batch new
# mappings (table within [level, level+batch]) and refreshes round-robin over the mappings of
# 192.0.2.10. Memory: VmRSS of pcpd (/proc/PID/status) and SUnreclaim of /proc/meminfo (the
# kernel's unreclaimable slab, where nft set elements and their timeouts live), each before the
# fill and at each level; both are host-wide noisy (other processes), so deltas are per level.
# Also, in the same run: the bare UDP echo ceiling (pcpd-echo on 192.0.2.1:5400, 256 in flight)
# and round trip (1 in flight) next to pcpd's one-in-flight refresh latency; and the forwarding
# rate of new flows through the NAT maps at each level: pcpd-echo flood sends raw UDP packets
# from a WAN namespace (203.0.113.200) to the external endpoints of 100 probe mappings of
# 192.0.2.9, every packet a new 5-tuple (so a conntrack miss and a DNAT map lookup); "delivered"
# counts what reaches 192.0.2.9 (an nft counter that then drops them: no ICMP back). The router's
# UDP conntrack timeout is 1 s there so that the host's nf_conntrack_max is not the limit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
levels="100 100000 1000000"
requests=20000
restart_max=120
journal_refreshes=0
batch=1000
window=256
out=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --levels) levels=${2:?}; shift ;;
    --requests) requests=${2:?}; shift ;;
    --restart-max) restart_max=${2:?}; shift ;;
    --journal-refreshes) journal_refreshes=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "scale.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "scale.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "scale.sh: SKIP: needs root for network namespaces and nftables" >&2
  exit 77
fi
loadgen=$build/bench/pcpd-loadgen
pcpd=$build/src/pcpd/pcpd
for b in "$loadgen" "$pcpd"; do
  [ -x "$b" ] || { echo "scale.sh: $b not built (ninja -C $build pcpd pcpd-loadgen pcpd-echo)" >&2; exit 2; }
done

per_client=62500
max=0; for l in $levels; do [ "$l" -gt $max ] && max=$l; done
nclients=$(( (max + per_client - 1) / per_client ))
naddr=$(( max / 60000 + 2 ))
[ $nclients -le 200 ] && [ $naddr -le 250 ] || { echo "scale.sh: level too large" >&2; exit 2; }

. "$(dirname "$0")/bench_lab.sh"
bench_lab_init scale
BENCH_STOP_TENTHS=100   # pcpd writes its restart snapshot at SIGTERM (about 0.5 s at 1,000,000)
cli=pcps-cli-$rnd
rtr=pcps-rtr-$rnd
wan=pcps-wan-$rnd
echo_bin=$build/bench/pcpd-echo
[ -x "$echo_bin" ] || { echo "scale.sh: $echo_bin not built" >&2; exit 2; }
log() { echo "scale.sh: $*" >&2; }

bench_scale_lab "$cli" "$rtr" "$naddr" "$nclients" "$wan"
ip netns exec "$rtr" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1 2>/dev/null ||
  { ip netns exec "$rtr" nft add table ip ctload; ip netns exec "$rtr" nft delete table ip ctload;
    ip netns exec "$rtr" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1; }
ip netns exec "$cli" nft -f - <<'EOF'
table inet flood {
  counter delivered { }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 203.0.113.200 counter name delivered drop
  }
}
EOF
ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1
for _ in $(seq 50); do
  ip netns exec "$cli" ping -c1 -W1 192.0.2.1 >/dev/null 2>&1 && break; sleep 0.1
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$out" ] || out=$repo/bench/results/scale-$stamp.jsonl
mkdir -p "$(dirname "$out")"
: > "$out"
seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))

mkdir -p "$tmp/state"
# request rate limits off (measure the server), unless the binary predates those keys
bench_scale_conf "$tmp/pcpd.conf" "$tmp" $(( max + 100000 )) info "$(grep -q -a 'client_rate' "$pcpd" && echo 1 || echo 0)"
ip netns exec "$rtr" nft -f "$repo/nft-rules/pcpd.nft"

wait_udp_5351() {
  for _ in $(seq 600); do
    ip netns exec "$rtr" ss -H -lun 'sport = :5351' | grep -q . && return 0
    sleep 0.05
  done
  return 1
}
start_pcpd() {
  ip netns exec "$rtr" "$pcpd" -c "$tmp/pcpd.conf" 2>>"$tmp/pcpd.log" &
  pcpd_pid=$!
  started+=("$pcpd_pid")
}
tck=$(getconf CLK_TCK)
# pcpd's CPU time (user + system, i.e. with the kernel work of its syscalls) in clock ticks: per
# request it does not move with the load of the (shared) machine the way req/s does.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pcpd_pid/stat"; }
emit_cpu() {   # emit_cpu LEVEL WHAT TICKS0 TICKS1 REQUESTS
  emit "{\"op\":\"cpu\",\"existing\":$1,\"what\":\"$2\",\"requests\":$5,\"cpu_us_per_req\":$(awk -v a="$3" -v b="$4" -v t="$tck" -v n="$5" 'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')}"
}
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pcpd_pid/status"; }
slab_kib() { sed -n 's/^SUnreclaim:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo; }
emit() { echo "$1" | tee -a "$out" | sed 's/^/  /' >&2; }

lg() {   # lg CLIENT ARGS...: defaults for --timeout-ms / --protocol unless ARGS give them
  local client=$1; shift
  local extra=()
  [[ " $* " == *" --timeout-ms "* ]] || extra+=(--timeout-ms 10000)
  [[ " $* " == *" --protocol "* ]] || extra+=(--protocol tcp)
  # shellcheck disable=SC2086  # LG_CPU: pin the client (one_in_flight)
  ip netns exec "$cli" ${LG_CPU:+taskset -c $LG_CPU} "$loadgen" "$@" --server 192.0.2.1 --client "$client" --label pcpd \
    --seed "$seed" --lifetime 3600 --debug 3 "${extra[@]}"
}
rcvbuf_errors() { ip netns exec "$rtr" nstat -az UdpRcvbufErrors | awk '/UdpRcvbufErrors/ {print $2}'; }

fill_to() {   # fill_to FROM TO: clients 192.0.2.10.. in parallel, 62,500 mappings each
  local from=$1 to=$2 j lo hi pids=() t0 t1
  t0=$(date +%s.%N)
  for j in $(seq 0 $(( nclients - 1 ))); do
    lo=$(( j * per_client )); hi=$(( lo + per_client ))
    [ $hi -gt "$to" ] && hi=$to
    [ $lo -lt "$from" ] && lo=$from
    [ $hi -gt $lo ] || continue
    lg "192.0.2.$(( 10 + j ))" fill --count $(( hi - lo )) --base-port $(( 1024 + lo - j * per_client )) \
      --existing "$from" --window 64 > "$tmp/fill-$j.json" &
    pids+=($!)
  done
  for j in "${pids[@]}"; do wait "$j"; done
  t1=$(date +%s.%N)
  local ok
  ok=$(cat "$tmp"/fill-*.json | python3 -c 'import sys,json; print(sum(json.loads(l)["success"] for l in sys.stdin))')
  rm -f "$tmp"/fill-*.json
  emit "{\"op\":\"fill\",\"from\":$from,\"to\":$to,\"success\":$ok,\"seconds\":$(echo "$t1 $t0" | awk '{printf "%.3f", $1 - $2}')}"
}

forward() {   # forward LEVEL: new flows/s delivered through the NAT maps (3 floods of 2 s)
  local level=$1 after f k
  for k in 1 2 3; do
    ip netns exec "$cli" nft reset counter inet flood delivered >/dev/null
    f=$(ip netns exec "$wan" "$echo_bin" flood --targets "$tmp/targets" --source 203.0.113.200 --seconds 2)
    sleep 0.2
    after=$(ip netns exec "$cli" nft list counter inet flood delivered | sed -n 's/.*packets \([0-9]*\).*/\1/p')
    emit "$(echo "$f" | python3 -c 'import sys,json; j=json.loads(sys.stdin.read()); j["existing"]='"$level"'; j["delivered"]='"${after:-0}"'; j["delivered_per_s"]=j["delivered"]/j["elapsed_s"]; print(json.dumps(j))')"
    sleep 1.5   # let the 1 s UDP conntrack entries expire before the next flood
  done
}
echo_rtt() {   # echo_rtt LEVEL WINDOW COUNT [PLACEMENT]: LG_CPU pins the client (one_in_flight)
  # shellcheck disable=SC2086
  emit "$(ip netns exec "$cli" ${LG_CPU:+taskset -c $LG_CPU} "$echo_bin" client --server 192.0.2.1 --port 5400 \
          --client 192.0.2.9 --window "$2" --count "$3" --label echo |
          sed "s/\"existing\":0/\"existing\":$1${4:+,\"placement\":\"$4\"}/")"
}

# One request in flight: pcpd's refresh and the echo round trip, each with server and client
# pinned to the same CPU and then to two CPUs. On this kind of VM a wake-up across CPUs costs
# ~45 µs more than on the same CPU, for both servers alike, so an unpinned pair can compare two
# different placements (the echo on one CPU, pcpd across two: the 4x of runs F and G).
one_in_flight() {   # one_in_flight LEVEL SPAN
  local place ccpu all=0-$(( $(nproc) - 1 ))
  for place in same cross; do
    ccpu=0
    if [ $place = cross ]; then [ "$(nproc)" -ge 2 ] || continue; ccpu=1; fi
    taskset -a -p -c 0 "$pcpd_pid" >/dev/null
    taskset -a -p -c 0 "$echo_pid" >/dev/null
    emit "$(LG_CPU=$ccpu lg 192.0.2.10 refresh --count 2000 --span "$2" --base-port 1024 --existing "$1" --window 1 |
            sed "s/\"op\":\"refresh\"/\"op\":\"refresh_w1\",\"placement\":\"$place\"/")"
    LG_CPU=$ccpu echo_rtt "$1" 1 2000 "$place"
  done
  taskset -a -p -c "$all" "$pcpd_pid" >/dev/null
  taskset -a -p -c "$all" "$echo_pid" >/dev/null
}

ip netns exec "$rtr" "$echo_bin" server --bind 192.0.2.1 --port 5400 &
echo_pid=$!
started+=("$echo_pid")
start_pcpd
wait_udp_5351 || { log "pcpd did not start"; cat "$tmp/pcpd.log" >&2; exit 1; }
sleep 0.5
log "echo ceiling (256 in flight) and round trip (1 in flight)"
echo_rtt 0 256 200000
echo_rtt 0 1 5000
log "100 probe mappings for the forwarding benchmark"
lg 192.0.2.9 create --count 100 --base-port 30000 --window 64 --protocol udp --list-external "$tmp/targets" >/dev/null
[ "$(wc -l < "$tmp/targets")" = 100 ] || { log "probe mappings failed"; exit 1; }
rss0=$(rss_kib); slab0=$(slab_kib)
emit "{\"op\":\"memory\",\"existing\":0,\"rss_kib\":$rss0,\"sunreclaim_kib\":$slab0}"
have=0
for level in $levels; do
  log "fill $have -> $level"
  fill_to "$have" "$level"
  have=$level
  sleep 1
  rss=$(rss_kib); slab=$(slab_kib)
  emit "{\"op\":\"memory\",\"existing\":$level,\"rss_kib\":$rss,\"sunreclaim_kib\":$slab,\"rss_bytes_per_mapping\":$(( (rss - rss0) * 1024 / level )),\"kernel_bytes_per_mapping\":$(( (slab - slab0) * 1024 / level ))}"
  span=$(( level < per_client ? level : per_client ))
  if [ -n "${SCALE_PERF:-}" ] && [ "$level" = "$max" ]; then   # profile the largest level (debug aid)
    perf record -a -g -o "$SCALE_PERF" -- sleep 8 >/dev/null 2>&1 &
    sleep 0.5
  fi
  log "refresh x$requests at $level (span $span)"
  c0=$(cpu_ticks)
  emit "$(lg 192.0.2.10 refresh --count "$requests" --span "$span" --base-port 1024 --existing "$level" --window $window)"
  c1=$(cpu_ticks)
  emit_cpu "$level" refresh "$c0" "$c1" "$requests"
  log "create/delete x$requests at $level (batch $batch)"
  lg 192.0.2.9 cycle --count "$requests" --batch $batch --base-port 40000 --existing "$level" --window $window |
    while read -r line; do emit "$line"; done
  c2=$(cpu_ticks)
  emit_cpu "$level" create+delete "$c1" "$c2" $(( 2 * requests ))
  log "one in flight: refresh x2000 and echo x2000 at $level, on one CPU and across two"
  one_in_flight "$level" "$span"
  log "forwarding at $level"
  forward "$level"
done

# Restart with every mapping still in the kernel: time from exec to the first answered request,
# after SIGTERM (snapshot written at the stop) and after kill -9 (snapshot + mapping journal).
restart() {   # restart SIGNAL
  log "restart after $1 with $have mappings in the kernel"
  kill "-$1" "$pcpd_pid"; wait "$pcpd_pid" || true
  local t0 served= n source deadline
  t0=$(date +%s.%N)
  start_pcpd
  deadline=$(( $(date +%s) + restart_max ))
  while [ "$(date +%s)" -lt $deadline ]; do   # bounded by --restart-max
    if lg 192.0.2.10 refresh --count 1 --span 1 --base-port 1024 --window 1 --timeout-ms 100 \
        --existing "$have" 2>/dev/null | grep -q '"success":1'; then
      served=$(date +%s.%N); break
    fi
  done
  sleep 0.5
  # pcpd logs at info "mappings.recovered source=S found=N restored=N ..." once it took them over.
  n=$(grep 'mappings.recovered' "$tmp/pcpd.log" | tail -1 | sed -n 's/.*restored=\([0-9]*\).*/\1/p')
  source=$(grep 'mappings.recovered' "$tmp/pcpd.log" | tail -1 | sed -n 's/.*source=\([a-z_]*\).*/\1/p')
  if [ -n "$served" ]; then
    emit "{\"op\":\"restart\",\"signal\":\"$1\",\"existing\":$have,\"restored\":${n:-0},\"source\":\"${source:-}\",\"seconds_to_first_answer\":$(echo "$served $t0" | awk '{printf "%.3f", $1 - $2}')}"
  else
    emit "{\"op\":\"restart\",\"signal\":\"$1\",\"existing\":$have,\"restored\":${n:-0},\"source\":\"${source:-}\",\"seconds_to_first_answer\":null,\"gave_up_after_s\":$restart_max}"
  fi
}
restart TERM
if [ "$journal_refreshes" -gt 0 ]; then
  span=$(( have < per_client ? have : per_client ))
  log "$journal_refreshes refreshes into the journal before kill -9"
  lg 192.0.2.10 refresh --count "$journal_refreshes" --span "$span" --base-port 1024 --existing "$have" \
    --window $window >/dev/null
  emit "{\"op\":\"journal\",\"existing\":$have,\"refreshes\":$journal_refreshes,\"bytes\":$(stat -c %s "$tmp/state/mappings.journal" 2>/dev/null || echo 0)}"
fi
restart KILL
grep 'mappings.snapshot_written\|mappings.journal' "$tmp/pcpd.log" | tail -8 >&2
emit "{\"op\":\"udp_rcvbuf_errors\",\"count\":$(rcvbuf_errors)}"
kill -0 "$pcpd_pid" 2>/dev/null || { log "pcpd died:"; tail -5 "$tmp/pcpd.log" >&2; exit 1; }
[ -s "$tmp/pcpd.log" ] && { log "pcpd log (tail):"; tail -5 "$tmp/pcpd.log" >&2; }
log "wrote $out"
if [ -n "${SCALE_DEBUG:-}" ]; then log "debug: lab $cli $rtr $wan, $tmp; 120 s to look"; sleep 120; fi
