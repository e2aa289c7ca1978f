# SPDX-License-Identifier: GPL-2.0-or-later
# bench/bench_lab.sh: sourced by the bench scripts (run.sh, ab.sh, scale.sh, ha_conn_rate.sh):
# a random name suffix, a private temp dir, and the clean-up of everything they made.
#   bench_lab_init TAG  sets rnd (8 hex digits) and tmp (/tmp/pcpd-TAG.XXXXXX), installs the
#                       EXIT/INT/TERM traps
#   bench_ns NAME...    creates network namespaces, deleted at exit
#   started+=(PID)      a process this script started, stopped at exit with stop_pid
#   stop_pid PID        SIGTERM, up to BENCH_STOP_TENTHS (default 50) x 0.1 s, then SIGKILL
#   bench_extra_cleanup if the script defines it, runs at exit before the namespaces go
#   bench_client_router CLI RTR  the client/router lab of run.sh and ab.sh (see below)
#   bench_scale_lab CLI RTR NADDR NCLIENTS [WAN]  the lab of scale.sh and flat.sh (see below)
#   bench_scale_conf FILE DIR MAX_TOTAL LOG_LEVEL [LIMITS]  their pcpd.conf (see below)
# Only documentation addresses are used inside the namespaces (see each script).

stop_pid() {
  local pid=$1 _
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq "${BENCH_STOP_TENTHS:-50}"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local pid n
  trap - EXIT
  for pid in "${started[@]}"; do stop_pid "$pid"; done
  if declare -F bench_extra_cleanup >/dev/null; then bench_extra_cleanup; fi
  for n in "${bench_namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
}

bench_lab_init() {
  rnd=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  tmp=$(mktemp -d "/tmp/pcpd-$1.XXXXXX")
  started=()
  bench_namespaces=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_ns() {
  local n
  for n in "$@"; do
    ip netns add "$n"
    bench_namespaces+=("$n")
  done
}

# bench_client_router CLI RTR: the two-namespace lab of run.sh and ab.sh. CLI has eth0
# 192.0.2.10/24; RTR has lan0 192.0.2.1/24 (veth to CLI's eth0) and wan0 203.0.113.1/24 (a veth
# whose peer wan0peer stays in RTR, so the external interface is up without a remote host).
bench_client_router() {
  local cli=$1 rtr=$2 l
  bench_ns "$cli" "$rtr"
  ip link add lan0 netns "$rtr" type veth peer name eth0 netns "$cli"
  ip -n "$rtr" link add wan0 type veth peer name wan0peer
  ip -n "$rtr" addr add 192.0.2.1/24 dev lan0
  ip -n "$rtr" addr add 203.0.113.1/24 dev wan0
  for l in lo lan0 wan0 wan0peer; do ip -n "$rtr" link set "$l" up; done
  ip -n "$cli" addr add 192.0.2.10/24 dev eth0
  ip -n "$cli" link set lo up
  ip -n "$cli" link set eth0 up
}

# bench_scale_lab CLI RTR NADDR NCLIENTS [WAN]: the lab of scale.sh and flat.sh. CLI has eth0 with
# 192.0.2.9 (the measuring client) and 192.0.2.10.. (NCLIENTS fill clients) and a default route
# via the router; RTR has lan0 192.0.2.1/24 and wan0 with 203.0.113.1..NADDR (pcpd's NAT pool).
# wan0's veth peer is eth0 203.0.113.200/24 in namespace WAN when given (scale.sh's flood source),
# else wan0peer inside RTR.
bench_scale_lab() {
  local cli=$1 rtr=$2 naddr=$3 nclients=$4 wan=${5:-} i
  bench_ns "$cli" "$rtr"
  ip link add lan0 netns "$rtr" type veth peer name eth0 netns "$cli"
  if [ -n "$wan" ]; then
    bench_ns "$wan"
    ip link add wan0 netns "$rtr" type veth peer name eth0 netns "$wan"
    ip -n "$wan" addr add 203.0.113.200/24 dev eth0
    ip -n "$wan" link set lo up
    ip -n "$wan" link set eth0 up
  else
    ip -n "$rtr" link add wan0 type veth peer name wan0peer
    ip -n "$rtr" link set wan0peer up
  fi
  ip -n "$rtr" addr add 192.0.2.1/24 dev lan0
  for i in $(seq 1 "$naddr"); do ip -n "$rtr" addr add "203.0.113.$i/24" dev wan0; done
  for i in lo lan0 wan0; do ip -n "$rtr" link set "$i" up; done
  ip -n "$cli" addr add 192.0.2.9/24 dev eth0
  for i in $(seq 0 $(( nclients - 1 ))); do ip -n "$cli" addr add "192.0.2.$(( 10 + i ))/24" dev eth0; done
  ip -n "$cli" link set lo up
  ip -n "$cli" link set eth0 up
  ip -n "$cli" route add default via 192.0.2.1
}

# bench_scale_conf FILE DIR MAX_TOTAL LOG_LEVEL [LIMITS]: pcpd.conf for that lab (state and
# control socket in DIR, per-client quota 65,535, ANNOUNCE off). With LIMITS=1 (the default)
# request rate limits are off ([limits] client_rate/global_rate = 0: measure the server); 0 for
# a pcpd older than those keys.
bench_scale_conf() {
  cat > "$1" <<EOF
[interfaces]
internal = ["lan0"]
external = "wan0"

[mappings]
max_per_client = 65535
max_total = $3

[announce]
enabled = false

[daemon]
state_dir = "$2/state"
control_socket = "$2/ctl.sock"
log = "stderr"
log_level = "$4"
EOF
  if [ "${5:-1}" = 1 ]; then printf '\n[limits]\nclient_rate = 0\nglobal_rate = 0\n' >> "$1"; fi
}
