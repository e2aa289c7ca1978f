#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nft_traffic_test.sh: the rules of nft-rules/pcpd.nft with real packets, without pcpd. Three
# namespaces (lan - rtr - wan, veth pairs, documentation addresses); elements are added with the
# nft CLI, and the router has an operator forward chain with policy drop plus the two documented
# lines (`ct status dnat accept`, `ct mark & 0x4 == 0x4 accept`). Checks MAP DNAT, endpoint-
# independent SNAT, PEER SNAT, FILTER (v4 and v6) and IPv6 pinholes.
# Skips (77) without root unless CI=true.
set -u
need_root() {
  if [ "${CI:-}" = "true" ]; then echo "FAIL: $1 (CI=true: this test must run)"; exit 1; fi
  echo "SKIP: $1"; exit 77
}
[ "$(id -u)" = 0 ] || need_root "nft_traffic_test needs root (network namespaces)"
for t in nft ip python3; do command -v $t >/dev/null || need_root "$t not installed"; done
src=${PCPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

rnd=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
LAN=pcpd-lan-$rnd RTR=pcpd-rtr-$rnd WAN=pcpd-wan-$rnd
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for n in $LAN $RTR $WAN; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fails=0 passes=0
check() {  # check "name" cmd...
  local name=$1; shift
  if "$@"; then echo "ok   - $name"; passes=$((passes + 1)); else echo "FAIL - $name"; fails=$((fails + 1)); fi
}
check_not() {  # the command must fail
  local name=$1; shift
  if "$@"; then echo "FAIL - $name"; fails=$((fails + 1)); else echo "ok   - $name"; passes=$((passes + 1)); fi
}

# --- setup -------------------------------------------------------------------------------------
. "$src/tests/integration/three_ns.sh"
three_ns_up "$LAN" "$RTR" "$WAN" 203.0.113.100/24 203.0.113.101/24 2001:db8:ff::100/64 2001:db8:ff::101/64 ||
  { echo "FAIL: lab setup"; exit 1; }
# no route from WAN to 192.0.2.0/24: only translated traffic gets through

R() { ip netns exec "$RTR" "$@"; }
R nft -f "$src/nft-rules/pcpd.nft" || { echo "FAIL: cannot load pcpd.nft"; exit 1; }
R nft -f - <<'NFT' || { echo "FAIL: cannot load the operator table"; exit 1; }
table inet operator {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct status dnat accept
    ct mark & 0x4 == 0x4 accept
    iifname "lan0" accept
  }
}
NFT
R nft add element inet pcpd wan_ifnames '{ "wan0" }'

cat > "$tmp/tool.py" <<'PY'
import socket, sys, time
mode = sys.argv[1]
if mode == "listen":  # listen ADDR PORT LOG: log "peer ADDR PORT" per connection, for 60 s at most
    fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], int(sys.argv[3]))); s.listen(16); s.settimeout(60)
    end = time.time() + 60
    while time.time() < end:
        try:
            c, a = s.accept()
        except socket.timeout:
            break
        with open(sys.argv[4], "a") as f:
            f.write("peer %s %d\n" % (a[0], a[1]))
        c.sendall(b"hi\n"); c.close()
else:  # connect ADDR PORT [SRC SRCPORT]: exit 0 if the server answered within 2 s
    fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(2)
    if len(sys.argv) > 4:
        s.bind((sys.argv[4], int(sys.argv[5])))
    try:
        s.connect((sys.argv[2], int(sys.argv[3])))
        sys.exit(0 if s.recv(3) == b"hi\n" else 1)
    except OSError:
        sys.exit(1)
PY
listen() {  # listen NS ADDR PORT LOG
  ip netns exec "$1" python3 "$tmp/tool.py" listen "$2" "$3" "$4" & pids+=($!)
}
connect() { local ns=$1; shift; ip netns exec "$ns" python3 "$tmp/tool.py" connect "$@"; }
listen "$LAN" 0.0.0.0 8080 "$tmp/lan8080"
listen "$LAN" :: 8081 "$tmp/lan8081"
listen "$WAN" 0.0.0.0 9000 "$tmp/wan9000"
sleep 0.5

# --- MAP NAT44 ---------------------------------------------------------------------------------
check_not "no inbound path without a mapping" connect "$WAN" 203.0.113.1 18080
R nft add element inet pcpd map4_dnat '{ 203.0.113.1 . tcp . 18080 timeout 1h : 192.0.2.10 . 8080 }'
R nft add element inet pcpd map4_snat '{ 192.0.2.10 . tcp . 8080 timeout 1h : 203.0.113.1 . 18080 }'
R nft add element inet pcpd map4_snat '{ 192.0.2.10 . tcp . 8082 timeout 1h : 203.0.113.1 . 18082 }'
check "MAP: WAN reaches 192.0.2.10:8080 through 203.0.113.1:18080" connect "$WAN" 203.0.113.1 18080
check "MAP: DNAT only, the client sees the remote address" grep -q '^peer 203.0.113.100 ' "$tmp/lan8080"
check "MAP: outbound from an internal endpoint leaves as its external endpoint (endpoint-independent SNAT)" \
  connect "$LAN" 203.0.113.100 9000 192.0.2.10 8082
check "MAP: the remote saw 203.0.113.1:18082" grep -q '^peer 203.0.113.1 18082$' "$tmp/wan9000"
check "MAP: an endpoint without a mapping is not translated by pcpd (no masquerade here: no answer)" \
  bash -c "! ip netns exec $LAN python3 $tmp/tool.py connect 203.0.113.100 9000 192.0.2.10 8083"

# --- FILTER v4 ---------------------------------------------------------------------------------
R nft add element inet pcpd filt4_on '{ 203.0.113.1 . tcp . 18080 timeout 1h }'
R nft add element inet pcpd filt4_allow '{ 203.0.113.1 . tcp . 18080 . 198.51.100.0/24 . 0-65535 timeout 1h }'
check_not "FILTER: a peer outside the allowed prefix is dropped" connect "$WAN" 203.0.113.1 18080
R nft add element inet pcpd filt4_allow '{ 203.0.113.1 . tcp . 18080 . 203.0.113.100 . 40000 timeout 1h }'
check "FILTER: an allowed (prefix, port) gets through" connect "$WAN" 203.0.113.1 18080 203.0.113.100 40000
check_not "FILTER: same address, other source port, is dropped" connect "$WAN" 203.0.113.1 18080 203.0.113.100 40001
R nft add element inet pcpd filt4_allow '{ 203.0.113.1 . tcp . 18080 . 203.0.113.96/28 . 0-65535 timeout 1h }'
check "FILTER: a prefix with all ports gets through" connect "$WAN" 203.0.113.1 18080 203.0.113.101 40002
R nft flush set inet pcpd filt4_on
check "FILTER: without filt4_on the mapping is open again" connect "$WAN" 203.0.113.1 18080 203.0.113.100 40003
R nft flush map inet pcpd map4_dnat
check_not "MAP: deleting the DNAT element closes the path" connect "$WAN" 203.0.113.1 18080 203.0.113.100 40004

# --- PEER NAT44 --------------------------------------------------------------------------------
R nft add element inet pcpd peer4_snat '{ 192.0.2.10 . tcp . 7000 . 203.0.113.100 . 9000 timeout 1h : 203.0.113.1 . 17000 }'
check "PEER: the flow leaves through 203.0.113.1:17000" connect "$LAN" 203.0.113.100 9000 192.0.2.10 7000
check "PEER: the remote saw 203.0.113.1:17000" grep -q '^peer 203.0.113.1 17000$' "$tmp/wan9000"

# --- IPv6 pinholes and FILTER v6 ---------------------------------------------------------------
check_not "IPv6: no inbound path without a pinhole" connect "$WAN" 2001:db8:1::10 8081
R nft add element inet pcpd pin6 '{ 2001:db8:1::10 . tcp . 8081 timeout 1h }'
check "IPv6: the pinhole admits the connection (ct mark 0x4 accepted by the operator chain)" \
  connect "$WAN" 2001:db8:1::10 8081 2001:db8:ff::100 0
check "IPv6: no translation" grep -q '^peer 2001:db8:ff::100 ' "$tmp/lan8081"
check_not "IPv6: other ports stay closed" connect "$WAN" 2001:db8:1::10 8080
R nft add element inet pcpd filt6_on '{ 2001:db8:1::10 . tcp . 8081 timeout 1h }'
R nft add element inet pcpd filt6_allow '{ 2001:db8:1::10 . tcp . 8081 . 2001:db8:ff::101 . 0-65535 timeout 1h }'
check_not "FILTER v6: a peer not allowed is dropped" connect "$WAN" 2001:db8:1::10 8081 2001:db8:ff::100 41000
check "FILTER v6: the allowed peer gets through" connect "$WAN" 2001:db8:1::10 8081 2001:db8:ff::101 41001
R nft flush set inet pcpd pin6
R nft flush set inet pcpd filt6_on
check_not "IPv6: deleting the pinhole closes it" connect "$WAN" 2001:db8:1::10 8081 2001:db8:ff::101 41002

echo "nft_traffic_test: $passes passed, $fails failed"
[ "$fails" = 0 ]
