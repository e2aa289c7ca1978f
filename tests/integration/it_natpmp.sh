#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_natpmp.sh: Debian's natpmpc (libnatpmp, an independent NAT-PMP client) against pcpd.
# Requirements: R-VER-3 / R-PMP-1 (NAT-PMP on 5351, IPv4, internal side), R-PMP-2 (opcodes 0 and
# 2), R-PMP-3 (delete = lifetime 0), R-PMP-5 (the same nft table as PCP), RFC 6886 §3.3 (the
# companion port of a client's TCP mapping is not given to another client; the client gets it).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_natpmp
command -v natpmpc >/dev/null || lab_die "natpmpc missing (scripts/install-deps.sh installs it)"
lab_up
conf=$LAB_DIR/pcpd.conf
lab_config "$conf" natpmp.enabled=true mappings.min_lifetime=30
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8082 "$LAB_DIR/l8082.log"

np() { # np OUT ARGS: natpmpc in the client namespace, evidence printed
  local out=$1 rc
  shift
  timeout 20 ip netns exec "$LAB_CLI" natpmpc "$@" >"$out" 2>&1
  rc=$?
  echo "  \$ natpmpc $*   (exit $rc)"
  lab_ev <"$out"
  return $rc
}

lab_log "external address (opcode 0)"
check "R-PMP-2 natpmpc -g 192.0.2.1 exits 0" np "$LAB_DIR/addr" -g 192.0.2.1
check "R-PMP-2 public address 203.0.113.1" grep -q 'Public IP address : 203.0.113.1' "$LAB_DIR/addr"

lab_log "TCP mapping public 40100 -> private 8082, 60 s"
check "R-PMP-2 natpmpc -a 40100 8082 tcp 60 exits 0" np "$LAB_DIR/map" -g 192.0.2.1 -a 40100 8082 tcp 60
check "R-PMP-2 natpmpc reports the mapping" \
  grep -Eq 'Mapped public port 40100 protocol TCP to local port 8082 (lifetime|liftime) 60' "$LAB_DIR/map"
echo "  nft list table inet pcpd:"
lab_nft_table | grep -E '40100|8082' | lab_ev
check "R-PMP-5 DNAT element 203.0.113.1 . tcp . 40100 -> 192.0.2.10 . 8082 in inet pcpd" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '203.0.113.1 . tcp . 40100 .*: 192.0.2.10 . 8082'"
check "R-PMP-2 remote host reaches the client through 203.0.113.1:40100" \
  lab_connect "$LAB_WAN" 203.0.113.1 40100

lab_log "delete: lifetime 0"
check "R-PMP-3 natpmpc -a 40100 8082 tcp 0 exits 0" np "$LAB_DIR/del" -g 192.0.2.1 -a 40100 8082 tcp 0
check_not "R-PMP-3 element gone after the delete" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '203.0.113.1 . tcp . 40100 '"
check_not "R-PMP-3 remote host no longer connects to 203.0.113.1:40100" \
  lab_connect "$LAB_WAN" 203.0.113.1 40100 --timeout 1.5

lab_log "companion port (RFC 6886 §3.3): 192.0.2.10 maps TCP 30040, 192.0.2.11 asks for UDP 30040"
check "natpmpc -a 30040 30040 tcp 600 exits 0" np "$LAB_DIR/c-tcp" -g 192.0.2.1 -a 30040 30040 tcp 600
check "... and gets public TCP 30040" grep -q 'Mapped public port 30040 protocol TCP' "$LAB_DIR/c-tcp"
ip -n "$LAB_CLI" addr add 192.0.2.11/24 dev eth0
# pmp_udp_from SOURCE PORT: a NAT-PMP UDP map request (RFC 6886 §3.3) for PORT, suggesting PORT;
# prints "result=R external=E".
pmp_udp_from() {
  lab_cli timeout 10 python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(3)
port = int(sys.argv[2])
s.sendto(struct.pack("!BBHHHI", 0, 1, 0, port, port, 600), ("192.0.2.1", 5351))
d = s.recv(64)
result, external = struct.unpack("!H", d[2:4])[0], struct.unpack("!H", d[10:12])[0]
print(f"result={result} external={external}")' "$1" "$2"
}
other=$(pmp_udp_from 192.0.2.11 30040)
echo "    192.0.2.11 asked for UDP 30040: $other"
check "another client does not get UDP 30040, the first client's companion (it gets another port)" \
  bash -c "[[ '$other' == result=0\ external=* ]] && [ '$other' != 'result=0 external=30040' ]"
check "natpmpc -a 30040 30040 udp 600 (the first client, its companion) exits 0" \
  np "$LAB_DIR/c-udp" -g 192.0.2.1 -a 30040 30040 udp 600
check "... and gets public UDP 30040" grep -q 'Mapped public port 30040 protocol UDP' "$LAB_DIR/c-udp"
lab_finish
