# bench/bench_lab.sh: sourced by the bench scripts (run.sh, ab.sh, scale.sh, ha_conn_rate.sh):
# a random name suffix, a private temp dir, and the clean-up of everything they made.
#   bench_lab_init TAG  sets rnd (8 hex digits) and tmp (/tmp/pcpd-TAG.XXXXXX), installs the
#                       EXIT/INT/TERM traps
#   bench_ns NAME...    creates network namespaces, deleted at exit
#   started+=(PID)      a process this script started, stopped at exit with stop_pid
#   stop_pid PID        SIGTERM, up to BENCH_STOP_TENTHS (default 50) x 0.1 s, then SIGKILL
#   bench_extra_cleanup if the script defines it, runs at exit before the namespaces go
#   bench_client_router CLI RTR  the client/router lab of run.sh and ab.sh (see below)
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
