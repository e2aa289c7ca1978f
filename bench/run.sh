#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/run.sh: PCP MAP create/refresh/delete rates of pcpd and of Debian's miniupnpd-nftables
# (PCP enabled), measured the same way in one run, in a namespace lab of its own.
#
# Usage: bench/run.sh [--smoke] [--build DIR] [--out DIR] [--no-pcpd] [--no-miniupnpd]
#   --smoke        a few seconds in all (tiny counts): proves the harness works; checks that every
#                  request got SUCCESS and exits 1 otherwise; writes to a temp dir unless --out
#   --build DIR    build directory holding src/pcpd/pcpd and bench/pcpd-loadgen (default: build)
#   --out DIR      where results go (default: bench/, i.e. bench/RESULTS.md, bench/results/*.jsonl)
#   --no-pcpd / --no-miniupnpd   measure only the other server
#   --requests N   requests per measurement (default 2000; 40 with --smoke)
#   --pcpd-before BIN  also measure this pcpd binary (label "pcpd-before"), e.g. a build from
#                  before an optimisation, so that before/after ratios come from one run
# Needs root (network namespaces, nftables). Exits 77 when not root, unless CI=true.
#
# Lab (documentation addresses only, RFC 5737): namespace pcpb-cli-$rnd with eth0 192.0.2.10/24,
# router pcpb-rtr-$rnd with lan0 192.0.2.1/24 and wan0 203.0.113.1/24 (a veth whose peer stays in
# the router namespace: the benchmark measures the control plane only). Each server is measured at
# several table sizes ("existing" mappings, all held by the client 192.0.2.10 on distinct internal
# ports): refresh = MAP with the same nonce over the existing mappings; create/delete = rounds of
# creating a batch of new mappings and deleting them again, so the table stays within
# [existing, existing + batch] while measuring (see pcpd-loadgen's header).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
args=("$@")
build=$repo/build
out=
smoke=0
do_pcpd=1
do_mini=1
pcpd_before=
requests_arg=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1 ;;
    --build) build=$(cd "${2:?--build DIR}" && pwd); shift ;;
    --out) out=${2:?--out DIR}; shift ;;
    --no-pcpd) do_pcpd=0 ;;
    --no-miniupnpd) do_mini=0 ;;
    --requests) requests_arg=${2:?--requests N}; shift ;;
    --pcpd-before) pcpd_before=$(realpath "${2:?--pcpd-before BIN}"); shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "run.sh: needs root (CI=true: not skipping)" >&2; exit 1; fi
  echo "run.sh: SKIP: needs root for network namespaces and nftables" >&2
  exit 77
fi

loadgen=$build/bench/pcpd-loadgen
pcpd=$build/src/pcpd/pcpd
[ -x "$loadgen" ] || { echo "run.sh: $loadgen not built (ninja -C $build pcpd-loadgen)" >&2; exit 2; }
if [ $do_pcpd = 1 ] && [ ! -x "$pcpd" ]; then
  echo "run.sh: $pcpd not built (ninja -C $build pcpd); use --no-pcpd to skip it" >&2; exit 2
fi
if [ $do_mini = 1 ] && [ ! -x /usr/sbin/miniupnpd ]; then
  echo "run.sh: installing miniupnpd-nftables (the reference server)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q miniupnpd-nftables >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q miniupnpd-nftables >&2; }
fi

if [ $smoke = 1 ]; then
  pcpd_levels="10 30"; mini_levels="10 30"; requests=40; window=8; timeout_ms=3000
else
  pcpd_levels="100 10000"; mini_levels="100 1000"; requests=2000; window=64; timeout_ms=10000
fi
[ -n "$requests_arg" ] && requests=$requests_arg
fill_base=10000    # existing mappings: internal ports 10000.. (up to 19999 for 10,000)
cycle_base=40000   # create/delete rounds: internal ports 40000..
seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))
batch_for() {   # mappings per create/delete round at a level: max(64, level/10); 8 for --smoke
  if [ $smoke = 1 ]; then echo 8; elif [ $(( $1 / 10 )) -gt 64 ]; then echo $(( $1 / 10 )); else echo 64; fi
}

. "$(dirname "$0")/bench_lab.sh"
bench_lab_init bench   # rnd, tmp, started (PIDs this script started), clean-up at exit
cli=pcpb-cli-$rnd
rtr=pcpb-rtr-$rnd

log() { echo "run.sh: $*" >&2; }

# --- lab ---------------------------------------------------------------------------------------
bench_client_router "$cli" "$rtr"
ip -n "$cli" route add default via 192.0.2.1
ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1
for _ in $(seq 50); do   # wait for DAD-free carrier on the veth (bounded: 5 s)
  ip netns exec "$cli" ping -c1 -W1 192.0.2.1 >/dev/null 2>&1 && break; sleep 0.1
done

if [ -z "$out" ]; then
  if [ $smoke = 1 ]; then out=$tmp/out; else out=$repo/bench; fi
fi
mkdir -p "$out/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
suffix=; [ $smoke = 1 ] && suffix=-smoke
jsonl=$out/results/$stamp$suffix.jsonl
: > "$jsonl"

wait_udp_5351() {   # until something listens on UDP 5351 in the router (bounded: 10 s)
  for _ in $(seq 100); do
    ip netns exec "$rtr" ss -H -lun 'sport = :5351' | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

lg() {   # lg LABEL ARGS...: one loadgen run from the client namespace, JSON lines to $jsonl
  local label=$1; shift
  ip netns exec "$cli" "$loadgen" "$@" --server 192.0.2.1 --client 192.0.2.10 --label "$label" \
    --window "$window" --seed "$seed" --timeout-ms "$timeout_ms" --lifetime 3600 --protocol tcp --debug 3 \
    | tee -a "$jsonl" | sed 's/^/  /' >&2
}

measure() {   # measure LABEL LEVELS...: fill up to each level, then refresh and create/delete
  local label=$1; shift
  local have=0 level
  for level in "$@"; do
    log "$label: fill $have -> $level mappings"
    lg "$label" fill --count $(( level - have )) --base-port $(( fill_base + have )) --existing "$have"
    have=$level
    log "$label: refresh x$requests at $level"
    lg "$label" refresh --count "$requests" --span "$level" --base-port "$fill_base" --existing "$level"
    log "$label: create/delete x$requests at $level (batch $(batch_for "$level"))"
    lg "$label" cycle --count "$requests" --batch "$(batch_for "$level")" --base-port "$cycle_base" \
      --existing "$level"
  done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- pcpd ---------------------------------------------------------------------------------------
run_pcpd() {   # run_pcpd LABEL BINARY: one pcpd daemon measured at every level
  local label=$1 bin=$2 pid
  rm -rf "$tmp/pcpd-state"; mkdir -p "$tmp/pcpd-state"
  cat > "$tmp/pcpd.conf" <<EOF
[interfaces]
internal = ["lan0"]
external = "wan0"

[mappings]
max_per_client = 20000
max_total = 1000000

[announce]
enabled = false

[daemon]
state_dir = "$tmp/pcpd-state"
log = "stderr"
log_level = "warning"
EOF
  # Request rate limits (RFC 6887 §18.1) would measure the limiter, not the server: off, for
  # binaries that know them.
  if grep -q -a 'client_rate' "$bin"; then
    printf '\n[limits]\nclient_rate = 0\nglobal_rate = 0\n' >> "$tmp/pcpd.conf"
  fi
  ip netns exec "$rtr" nft -f "$repo/nft-rules/pcpd.nft"
  ip netns exec "$rtr" "$bin" -c "$tmp/pcpd.conf" 2>"$tmp/pcpd.log" &
  pid=$!
  started+=("$pid")
  wait_udp_5351 || { log "$label did not start:"; cat "$tmp/pcpd.log" >&2; exit 1; }
  measure "$label" $pcpd_levels
  kill -0 "$pid" 2>/dev/null || { log "$label died:"; cat "$tmp/pcpd.log" >&2; exit 1; }
  kill "$pid"
  wait "$pid" || true
  [ -s "$tmp/pcpd.log" ] && { log "$label log (tail):"; tail -5 "$tmp/pcpd.log" >&2; }
  ip netns exec "$rtr" nft flush ruleset
}
[ $do_pcpd = 1 ] && run_pcpd pcpd "$pcpd"
[ -n "$pcpd_before" ] && run_pcpd pcpd-before "$pcpd_before"

# --- miniupnpd ---------------------------------------------------------------------------------
if [ $do_mini = 1 ]; then
  ref=$repo/bench/miniupnpd
  bash "$ref/patch-miniupnpd.sh" "$tmp/miniupnpd"
  sed -e 's/LAN_IF/lan0/' -e 's/WAN_IF/wan0/' "$ref/miniupnpd.conf" > "$tmp/miniupnpd.conf"
  ip netns exec "$rtr" nft -f "$ref/nft-init.nft"
  # Daemon mode (no -d: its debug logging costs ~15 ms per request); it writes its PID file.
  ip netns exec "$rtr" "$tmp/miniupnpd" -f "$tmp/miniupnpd.conf" -P "$tmp/miniupnpd.pid"
  for _ in $(seq 100); do [ -s "$tmp/miniupnpd.pid" ] && break; sleep 0.1; done
  mini_pid=$(cat "$tmp/miniupnpd.pid")
  started+=("$mini_pid")
  wait_udp_5351 || { log "miniupnpd did not start"; exit 1; }
  measure miniupnpd $mini_levels
  kill "$mini_pid"
  for _ in $(seq 100); do kill -0 "$mini_pid" 2>/dev/null || break; sleep 0.1; done
  ip netns exec "$rtr" nft flush ruleset
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
if [ $smoke = 1 ]; then
  python3 "$repo/bench/report.py" --check "$jsonl"
  log "smoke OK ($(wc -l < "$jsonl") runs)"
else
  notes=()   # hand-written observations and the other benchmarks, appended to RESULTS.md
  [ -f "$repo/bench/notes.md" ] && notes=(--notes "$repo/bench/notes.md")
  [ -f "$repo/bench/perf.md" ] && notes+=(--append "$repo/bench/perf.md")
  btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  python3 "$repo/bench/report.py" --out "$out/RESULTS.md" \
    --command "bench/run.sh ${args[*]}" \
    --load-before "$load_before" --load-after "$load_after" --date "$started_at" \
    --pcpd-rev "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
    --jsonl-name "results/$(basename "$jsonl")" \
    --build-note "\`$build\` (CMAKE_BUILD_TYPE=${btype:-RelWithDebInfo})" \
    "${notes[@]}" "$jsonl"
  log "wrote $out/RESULTS.md and $jsonl"
fi
