# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# lab.sh: a three-namespace pcpd lab, sourced by scripts/demo.sh and tests/integration/it_*.sh.
#
#   pcpd-cli-R  eth0 192.0.2.10/24 2001:db8:1::10/64  (default routes via the router)
#      |
#   pcpd-rtr-R  lan0 192.0.2.1/24 2001:db8:1::1/64 | wan0 203.0.113.1/24 2001:db8:2::1/64
#      |        forwarding on, nft-rules/example-router.nft + nft-rules/pcpd.nft, runs pcpd
#   pcpd-wan-R  eth0 203.0.113.100/24 2001:db8:2::100/64  (no route to 192.0.2.0/24: only NAT'ed
#               traffic works; IPv6 route to 2001:db8:1::/64 via the router)
#
# R is a random suffix. Usage:
#   source scripts/lab.sh
#   lab_init "name"            root check (exit 77 outside CI), binaries, temp dir, trap, watchdog
#   lab_up                     namespaces, links, addresses, routes, rulesets
#   lab_config FILE [section.key=value ...]   write a pcpd config (TOML values, quoted as TOML)
#   lab_pcpd_start FILE        start pcpd in the router, wait until it listens on 5351
#   lab_pcpd_stop [-9]         stop it (SIGTERM, bounded wait, or SIGKILL)
#   lab_cli|lab_rtr|lab_wan CMD...   run CMD in a namespace
#   lab_pcpc ARGS...           pcpc in the client namespace, bounded by `timeout`
#   lab_pc OUT ARGS...         `pcpc --json ARGS`, output in OUT and printed; lab_json OUT key
#   lab_listen NS PORT LOG     TCP listener logging its peers; lab_connect NS ADDR PORT [opts]
#   lab_nft_table, lab_nft_elements   `nft list table inet pcpd`, one line per element
#   lab_spawn NS LOG CMD...    background command in a namespace; its PID is in LAB_LASTPID
#   check "R-ID text" CMD...   PASS/FAIL line; lab_finish prints the summary and exits
# Everything started is killed by PID and the namespaces are deleted on exit (trap).

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_TOOL="$LAB_SRC/scripts/labtool.py"
LAB_PASS=0
LAB_FAIL=0
LAB_PIDS=()
LAB_NS=()
LAB_PCPD_PID=""
LAB_T0=$(date +%s)

lab_log() { printf '[%3ss] %s\n' "$(($(date +%s) - LAB_T0))" "$*"; }
lab_ev() { sed 's/^/    | /'; }
lab_die() {
  echo "FAIL: $*"
  LAB_FAIL=$((LAB_FAIL + 1))
  exit 1
}

# Root check: skip (77) when not root outside CI; in CI (CI=true) never skip.
lab_require_root() {
  if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then
      echo "FAIL: $1 needs root (network namespaces, nftables) and CI=true forbids skipping"
      exit 1
    fi
    echo "SKIP: $1 needs root (network namespaces, nftables); run: sudo scripts/test.sh"
    exit 77
  fi
}

# Binaries: $PCPD_BUILD_DIR (set by ctest) or $LAB_SRC/build.
lab_find_bins() {
  local b=${PCPD_BUILD_DIR:-$LAB_SRC/build}
  PCPD_BIN=${PCPD_BIN:-$b/src/pcpd/pcpd}
  PCPC_BIN=${PCPC_BIN:-$b/src/pcpc/pcpc}
  [ -x "$PCPD_BIN" ] || lab_die "pcpd binary not found at $PCPD_BIN (build first: ninja -C $b pcpd)"
  [ -x "$PCPC_BIN" ] || lab_die "pcpc binary not found at $PCPC_BIN (build first: ninja -C $b pcpc)"
}

lab_init() {
  LAB_NAME=$1
  export LC_ALL=C
  lab_require_root "$LAB_NAME"
  local b
  for b in ip nft python3 timeout ss; do
    command -v "$b" >/dev/null || lab_die "missing $b (run scripts/install-deps.sh)"
  done
  [ "${LAB_NO_BINS:-}" = 1 ] || lab_find_bins
  LAB_RND=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  LAB_CLI=pcpd-cli-$LAB_RND
  LAB_RTR=pcpd-rtr-$LAB_RND
  LAB_WAN=pcpd-wan-$LAB_RND
  LAB_DIR=$(mktemp -d "/tmp/pcpd-lab-$LAB_RND.XXXXXX")
  trap lab_cleanup EXIT
  trap 'echo "FAIL: interrupted"; LAB_FAIL=$((LAB_FAIL + 1)); exit 1' INT TERM HUP
  # Watchdog: a test that hangs is terminated (SIGTERM) after LAB_WATCHDOG seconds.
  local main=$$ limit=${LAB_WATCHDOG:-150}
  (
    for _ in $(seq 1 "$limit"); do sleep 1; kill -0 "$main" 2>/dev/null || exit 0; done
    echo "WATCHDOG: $LAB_NAME exceeded $limit s"
    kill -TERM "$main" 2>/dev/null
  ) &
  LAB_WATCHDOG_PID=$!
  LAB_PIDS+=($!)
  disown "$LAB_WATCHDOG_PID"  # killed outright at clean-up: no "Killed" job notice in the output
  lab_log "$LAB_NAME: lab $LAB_RND, logs in $LAB_DIR"
}

lab_cli() { ip netns exec "$LAB_CLI" "$@"; }
lab_rtr() { ip netns exec "$LAB_RTR" "$@"; }
lab_wan() { ip netns exec "$LAB_WAN" "$@"; }

# Starts CMD in namespace NS in the background, output to LOG. `ip netns exec` execs CMD in
# place, so $! is CMD's own PID.
lab_spawn() {
  local ns=$1 log=$2
  shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  LAB_LASTPID=$!
  LAB_PIDS+=("$LAB_LASTPID")
}

# lab_ours PID: PID is still a live child of this shell (guards against PID reuse).
lab_ours() {
  local st state ppid
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r state ppid _ <<<"${st##*) }"
  [ "$state" != Z ] && [ "$ppid" = "$$" ]
}

# Stops one PID we started: SIGTERM (or the given signal), bounded wait, SIGKILL fallback.
lab_kill() {
  local pid=$1 sig=${2:-TERM} i
  lab_ours "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  kill "-$sig" "$pid" 2>/dev/null
  for i in $(seq 1 50); do
    lab_ours "$pid" || break
    sleep 0.1
  done
  lab_ours "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

lab_cleanup() {
  local rc=$? p n
  trap - EXIT INT TERM HUP
  # The watchdog (a shell in `sleep 1`) would take a second to act on SIGTERM.
  [ -n "${LAB_WATCHDOG_PID:-}" ] && lab_ours "$LAB_WATCHDOG_PID" && kill -KILL "$LAB_WATCHDOG_PID" 2>/dev/null
  for p in "${LAB_PIDS[@]}"; do lab_ours "$p" && kill -TERM "$p" 2>/dev/null; done
  # A grace of up to 3 s to exit on their own: a sanitized pcpd or pcpc runs its leak check at
  # exit, and a SIGKILL in the middle of it leaves an empty report that fails scripts/sanitize.sh.
  local alive i
  for i in $(seq 1 30); do
    alive=0
    for p in "${LAB_PIDS[@]}"; do lab_ours "$p" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${LAB_PIDS[@]}"; do lab_kill "$p" KILL >/dev/null 2>&1; done
  for n in "${LAB_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
  if [ -n "${LAB_DIR:-}" ]; then
    if [ "${KEEP:-}" = 1 ]; then echo "logs kept in $LAB_DIR"; else rm -rf "$LAB_DIR"; fi
  fi
  if [ -n "${LAB_NAME:-}" ] && [ -z "${LAB_FINISHED:-}" ]; then
    echo "$LAB_NAME: aborted after $LAB_PASS passed, $LAB_FAIL failed"
    [ "$rc" = 0 ] && rc=1
  fi
  exit "$rc"
}

lab_up() {
  local n
  for n in "$LAB_CLI" "$LAB_RTR" "$LAB_WAN"; do
    ip netns add "$n" || lab_die "ip netns add $n"
    LAB_NS+=("$n")
    # No duplicate address detection: addresses are usable at once (no tentative state).
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$n" link set lo up
  done
  modprobe nf_conntrack 2>/dev/null || true
  ip -n "$LAB_CLI" link add eth0 type veth peer name lan0 netns "$LAB_RTR" || lab_die "veth lan"
  ip -n "$LAB_WAN" link add eth0 type veth peer name wan0 netns "$LAB_RTR" || lab_die "veth wan"

  lab_rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip -n "$LAB_RTR" addr add 192.0.2.1/24 dev lan0
  ip -n "$LAB_RTR" addr add 2001:db8:1::1/64 dev lan0 nodad
  ip -n "$LAB_RTR" addr add 203.0.113.1/24 dev wan0
  ip -n "$LAB_RTR" addr add 2001:db8:2::1/64 dev wan0 nodad
  ip -n "$LAB_RTR" link set lan0 up
  ip -n "$LAB_RTR" link set wan0 up

  ip -n "$LAB_CLI" addr add 192.0.2.10/24 dev eth0
  ip -n "$LAB_CLI" addr add 2001:db8:1::10/64 dev eth0 nodad
  ip -n "$LAB_CLI" link set eth0 up
  ip -n "$LAB_CLI" route add default via 192.0.2.1
  ip -n "$LAB_CLI" -6 route add default via 2001:db8:1::1

  ip -n "$LAB_WAN" addr add 203.0.113.100/24 dev eth0
  ip -n "$LAB_WAN" addr add 2001:db8:2::100/64 dev eth0 nodad
  ip -n "$LAB_WAN" link set eth0 up
  ip -n "$LAB_WAN" -6 route add 2001:db8:1::/64 via 2001:db8:2::1

  lab_rtr nft -f "$LAB_SRC/nft-rules/example-router.nft" || lab_die "nft -f nft-rules/example-router.nft"
  if [ "${LAB_NO_PCPD_NFT:-}" != 1 ]; then
    [ -f "$LAB_SRC/nft-rules/pcpd.nft" ] || lab_die "nft-rules/pcpd.nft is missing"
    lab_rtr nft -f "$LAB_SRC/nft-rules/pcpd.nft" || lab_die "nft -f nft-rules/pcpd.nft"
  fi
  lab_cli ping -c1 -W2 192.0.2.1 >/dev/null || lab_die "client cannot reach the router (IPv4)"
  lab_cli ping -c1 -W2 2001:db8:1::1 >/dev/null || lab_die "client cannot reach the router (IPv6)"
  lab_wan ping -c1 -W2 203.0.113.1 >/dev/null || lab_die "remote host cannot reach the router"
  lab_log "lab up: $LAB_CLI (192.0.2.10) -- $LAB_RTR (192.0.2.1 | 203.0.113.1) -- $LAB_WAN (203.0.113.100)"
}

# lab_config FILE [section.key=value ...]: a complete pcpd config; values are TOML literals,
# e.g. mappings.min_lifetime=2 'nftables.table="pcpd"'.
lab_config() {
  local file=$1 kv key sec k
  shift
  declare -A v=(
    [interfaces.internal]='["lan0"]'
    [interfaces.external]='"wan0"'
    [nftables.table]='"pcpd"'
    [daemon.state_dir]="\"$LAB_DIR/state\""
    [daemon.log]='"stderr"'
    [daemon.log_level]='"debug"'
  )
  for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
  mkdir -p "$LAB_DIR/state"
  : >"$file"
  for sec in interfaces mappings errors third_party natpmp announce nftables daemon limits; do
    local lines=""
    for key in "${!v[@]}"; do
      [ "${key%%.*}" = "$sec" ] || continue
      k=${key#*.}
      lines+="$k = ${v[$key]}"$'\n'
    done
    [ -n "$lines" ] && printf '[%s]\n%s\n\n' "$sec" "$(printf '%s' "$lines" | sort)" >>"$file"
  done
  return 0
}

# lab_pcpd_start CONF: starts pcpd in the router namespace and waits (at most 10 s) until it
# listens on UDP 5351 for IPv4 and IPv6.
lab_pcpd_start() {
  local conf=$1 i
  LAB_PCPD_LOG=$LAB_DIR/pcpd.$(date +%s%N).log
  lab_spawn "$LAB_RTR" "$LAB_PCPD_LOG" "$PCPD_BIN" -c "$conf"
  LAB_PCPD_PID=$LAB_LASTPID
  for i in $(seq 1 100); do
    if ! kill -0 "$LAB_PCPD_PID" 2>/dev/null; then
      echo "pcpd exited during start-up; its log:"
      lab_ev <"$LAB_PCPD_LOG"
      lab_die "pcpd did not start"
    fi
    if lab_rtr ss -Hlun 'sport = :5351' | grep -q '192.0.2.1\|0.0.0.0\|\*' &&
      lab_rtr ss -Hlun 'sport = :5351' | grep -q '2001:db8:1::1\|\[::\]\|\*'; then
      lab_log "pcpd running (pid $LAB_PCPD_PID) after $((i / 10)).$((i % 10)) s"
      return 0
    fi
    sleep 0.1
  done
  lab_ev <"$LAB_PCPD_LOG"
  lab_die "pcpd did not listen on UDP 5351 within 10 s"
}

lab_pcpd_stop() {
  [ -n "$LAB_PCPD_PID" ] || return 0
  if [ "${1:-}" = -9 ]; then lab_kill "$LAB_PCPD_PID" KILL; else lab_kill "$LAB_PCPD_PID" TERM; fi
  LAB_PCPD_PID=""
}

# lab_ctl_config FILE [SECTION.KEY=VALUE ...]: lab_config with daemon.control_socket = LAB_CTL
# ($LAB_DIR/ctl.sock), for the tests that talk to pcpd through pcpctl; dies when the build has no
# pcpctl (PCPCTL_BIN, default <build>/src/pcpctl/pcpctl).
lab_ctl_config() {
  PCPCTL_BIN=${PCPCTL_BIN:-${PCPD_BUILD_DIR:-$LAB_SRC/build}/src/pcpctl/pcpctl}
  [ -x "$PCPCTL_BIN" ] || lab_die "pcpctl binary not found at $PCPCTL_BIN"
  LAB_CTL=$LAB_DIR/ctl.sock
  local file=$1
  shift
  lab_config "$file" "daemon.control_socket=\"$LAB_CTL\"" "$@"
}

# pcpctl ARGS: the build's pcpctl in the router namespace, on LAB_CTL.
pcpctl() { lab_rtr timeout 10 "$PCPCTL_BIN" --socket "$LAB_CTL" "$@"; }

# lab_stat NAME: the value of one `pcpctl stats` sample, NAME as in the Prometheus format
# (labels included, e.g. 'pcpd_bursts_total{outcome="one_transaction"}').
lab_stat() { pcpctl stats --format prometheus | awk -v k="$1" '$1 == k {print $2; exit}'; }

# lab_consistent TAG [N]: `pcpctl list --json` and `nft -j list table inet pcpd` hold the same
# mappings element for element (robust_tool.py consistency), N of them when N is given. The two
# snapshots stay in $LAB_DIR as list.TAG.json and nft.TAG.json.
lab_consistent() {
  pcpctl list --json >"$LAB_DIR/list.$1.json" || return 1
  lab_rtr nft -j list table inet pcpd >"$LAB_DIR/nft.$1.json" || return 1
  python3 "$LAB_SRC/tests/integration/robust_tool.py" consistency --list "$LAB_DIR/list.$1.json" \
    --nft "$LAB_DIR/nft.$1.json" ${2:+--expect "$2"}
}

lab_pcpd_log() { lab_ev <"$LAB_PCPD_LOG"; }

# pcpc in the client namespace, retransmitting for at most LAB_PCPC_TIMEOUT (6) s.
lab_pcpc() { timeout 20 ip netns exec "$LAB_CLI" "$PCPC_BIN" --timeout "${LAB_PCPC_TIMEOUT:-6}" "$@"; }

# lab_pc OUT ARGS...: `pcpc --json ARGS` in the client namespace, stdout to OUT, stderr to
# OUT.err; prints the command, its output and exit status as evidence; returns pcpc's status.
lab_pc() {
  local out=$1 rc
  shift
  lab_pcpc --json "$@" >"$out" 2>"$out.err"
  rc=$?
  echo "  \$ pcpc --json $*   (exit $rc)"
  cat "$out" "$out.err" | lab_ev
  return $rc
}

# lab_json FILE PATH: a value of the last JSON object in FILE (pcpc --json output); PATH is
# dotted (e.g. options.description). Lists and objects are printed as JSON, booleans lowercase.
lab_json() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
text, dec, objs, i = open(sys.argv[1]).read(), json.JSONDecoder(), [], 0
while True:
    i = text.find("{", i)
    if i < 0:
        break
    try:
        o, i = dec.raw_decode(text, i)
        objs.append(o)
    except ValueError:
        i += 1
v = objs[-1] if objs else {}
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
if isinstance(v, bool):
    v = str(v).lower()
elif isinstance(v, (dict, list)):
    v = json.dumps(v, sort_keys=True)
print(v)
EOF
}

lab_nonce() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# lab_three_mappings DESCRIPTION: the mappings the restart tests carry across a restart: MAP
# tcp 8080 with FILTER 203.0.113.100/32 and DESCRIPTION, PEER tcp 40001 -> 203.0.113.100:9000
# (suggested external port 50001) and an IPv6 pinhole tcp 8090, all with lifetime 900 and their
# own nonces. Sets r (response file prefix), n1 n2 n3 (their nonces), bad (another nonce), ext
# and pext (the MAP's and the PEER's external ports), epoch1, and writes the table's elements
# to $LAB_DIR/before.txt.
lab_three_mappings() {
  r=$LAB_DIR/r
  n1=$(lab_nonce) n2=$(lab_nonce) n3=$(lab_nonce) bad=$(lab_nonce)
  check "MAP v4 tcp 8080 + FILTER + DESCRIPTION exits 0" lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 \
    -l 900 -n "$n1" --filter 203.0.113.100/32 --description "$1"
  ext=$(lab_json "$r.map" external_port)
  check "PEER tcp 40001 -> 203.0.113.100:9000 exits 0" lab_pc "$r.peer" -s 192.0.2.1 peer -p tcp -i 40001 \
    -r 203.0.113.100:9000 -e 50001 -l 900 -n "$n2"
  pext=$(lab_json "$r.peer" external_port)
  check "MAP v6 pinhole tcp 8090 exits 0" lab_pc "$r.pin" -s 2001:db8:1::1 map -p tcp -i 8090 -l 900 -n "$n3"
  epoch1=$(lab_json "$r.pin" epoch)
  desc1=$1
  lab_nft_elements >"$LAB_DIR/before.txt"
}

# lab_same_list A B: two `pcpctl list --json` outputs hold the same mappings, every field equal but
# the remaining lifetime (which counts down).
lab_same_list() {
  python3 - "$1" "$2" <<'PY'
import json, sys
def load(f):
    return sorted(json.dumps({k: v for k, v in m.items() if k != "remaining"}, sort_keys=True)
                  for m in json.load(open(f)))
a, b = load(sys.argv[1]), load(sys.argv[2])
print(f"    {len(a)} vs {len(b)} mappings")
for line in sorted(set(a) ^ set(b)):
    print("    differs:", line)
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}

# lab_check_restored TAG N: after a restart, `pcpctl list` equals $LAB_DIR/list.before.json and
# agrees with inet pcpd element for element, N mappings.
lab_check_restored() {
  pcpctl list --json >"$LAB_DIR/list.$1.json"
  check "$1: pcpctl list after the restart = before (nonce, filters, description, lifetime, flags)" \
    lab_same_list "$LAB_DIR/list.before.json" "$LAB_DIR/list.$1.json"
  lab_rtr nft -j list table inet pcpd >"$LAB_DIR/nft.$1.json"
  check "$1: R-HDR-10 the restored table and inet pcpd agree element for element" \
    python3 "$LAB_SRC/tests/integration/robust_tool.py" consistency --list "$LAB_DIR/list.$1.json" \
    --nft "$LAB_DIR/nft.$1.json" --expect "$2"
}

# lab_after_restart TAG (after lab_three_mappings): the mappings are all there with their nonces
# (refresh with the own nonce keeps the port, another nonce is refused) and the kernel holds the
# elements of $LAB_DIR/before.txt.
lab_after_restart() {
  local tag=$1
  lab_nft_elements >"$LAB_DIR/after-$tag.txt"
  check "$tag: every element is still in inet pcpd" diff -q "$LAB_DIR/before.txt" "$LAB_DIR/after-$tag.txt"
  check "$tag: R-OWN-5 MAP refresh with the old nonce exits 0" lab_pc "$r.map-$tag" -s 192.0.2.1 map -p tcp \
    -i 8080 -l 900 -n "$n1" --filter 203.0.113.100/32 --description "$desc1"
  check "$tag: R-SEC-4 MAP refresh keeps the external port" lab_eq external_port \
    "$(lab_json "$r.map-$tag" external_port)" "$ext"
  check "$tag: R-EPOCH-3 epoch continuous" lab_ge epoch "$(lab_json "$r.map-$tag" epoch)" "$epoch1"
  check "$tag: R-OWN-5 PEER refresh with the old nonce exits 0" lab_pc "$r.peer-$tag" -s 192.0.2.1 peer -p tcp \
    -i 40001 -r 203.0.113.100:9000 -l 900 -n "$n2"
  check "$tag: ... PEER external port $pext" lab_eq external_port "$(lab_json "$r.peer-$tag" external_port)" "$pext"
  check "$tag: R-OWN-5 pinhole refresh with the old nonce exits 0" lab_pc "$r.pin-$tag" -s 2001:db8:1::1 map \
    -p tcp -i 8090 -l 900 -n "$n3"
  lab_pc "$r.bad-$tag" -s 192.0.2.1 map -p tcp -i 8080 -l 900 -n "$bad"
  check "$tag: R-OWN-2 MAP with another nonce: NOT_AUTHORIZED" lab_eq result \
    "$(lab_json "$r.bad-$tag" result)" NOT_AUTHORIZED
  lab_pc "$r.badpin-$tag" -s 2001:db8:1::1 map -p tcp -i 8090 -l 900 -n "$bad"
  check "$tag: R-OWN-2 pinhole with another nonce: NOT_AUTHORIZED" lab_eq result \
    "$(lab_json "$r.badpin-$tag" result)" NOT_AUTHORIZED
}


# `nft list table inet pcpd` in the router.
lab_nft_table() { lab_rtr nft list table inet "${LAB_TABLE:-pcpd}"; }

# One line per element of inet pcpd: "set: key [: value] [comment]", timeouts and expiries left
# out, sorted (from `nft -j`): the same mappings give the same lines whatever their age.
lab_nft_elements() {
  lab_rtr nft -j list table inet "${LAB_TABLE:-pcpd}" | python3 "$LAB_TOOL" nft-elements
}

# lab_eq WHAT GOT WANT: prints the comparison and succeeds when equal (for check).
lab_eq() {
  echo "    $1: got '$2', want '$3'"
  [ "$2" = "$3" ]
}

# lab_ge WHAT GOT MIN: integer comparison GOT >= MIN.
lab_ge() {
  echo "    $1: got '$2', want >= '$3'"
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ]
}

# lab_connect NS ADDR PORT [labtool connect options]: TCP connect with a banner check.
lab_connect() {
  local ns=$1 to=$2 port=$3
  shift 3
  ip netns exec "$ns" timeout 10 python3 "$LAB_TOOL" connect --to "$to" --port "$port" "$@"
}

# lab_listen NS PORT LOG: background TCP listener (labtool listen), waits until it listens.
lab_listen() {
  local ns=$1 port=$2 log=$3 i
  lab_spawn "$ns" "$log" python3 "$LAB_TOOL" listen --port "$port" --life "${LAB_WATCHDOG:-150}"
  for i in $(seq 1 50); do
    grep -q '^listening' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  lab_die "listener on port $port in $ns did not start"
}

# lab_waitfor SECONDS CMD...: runs CMD until it succeeds, every 0.1 s, for at most SECONDS of
# wall time. Bounded by time, not by a number of tries: on a loaded machine every try (often a
# python3 start) takes longer, and a count of tries let a 10 s wait run for minutes.
lab_waitfor() {
  local end=$((SECONDS + $1)) i
  shift
  for ((i = 0; i < 100000; i++)); do
    "$@" && return 0
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
  return 1
}

check() {
  local what=$1
  shift
  if "$@"; then
    echo "PASS: $what"
    LAB_PASS=$((LAB_PASS + 1))
  else
    echo "FAIL: $what"
    LAB_FAIL=$((LAB_FAIL + 1))
  fi
}

# Inverse check: the command must fail (e.g. a connection that must not get through).
check_not() {
  local what=$1
  shift
  if "$@"; then
    echo "FAIL: $what"
    LAB_FAIL=$((LAB_FAIL + 1))
  else
    echo "PASS: $what"
    LAB_PASS=$((LAB_PASS + 1))
  fi
}

lab_finish() {
  LAB_FINISHED=1
  echo "$LAB_NAME: $LAB_PASS passed, $LAB_FAIL failed"
  if [ "$LAB_FAIL" != 0 ] && [ -n "${LAB_PCPD_LOG:-}" ]; then
    echo "pcpd log (last 60 lines):"
    tail -n 60 "$LAB_PCPD_LOG" | lab_ev
  fi
  [ "$LAB_FAIL" = 0 ] && [ "$LAB_PASS" -gt 0 ] && exit 0
  exit 1
}
