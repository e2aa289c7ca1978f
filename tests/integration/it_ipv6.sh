#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_ipv6.sh: IPv6 firewall pinholes. Without a mapping the router's forward chain (policy drop)
# keeps the remote host away from [2001:db8:1::10]:8090; a PCP MAP over IPv6 opens a pinhole
# (identity mapping), a delete closes it.
# Requirements: R-MAP-11 (firewall: assigned = internal endpoint), R-MAP-9, R-LIFE-4.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_ipv6
lab_up
conf=$LAB_DIR/pcpd.conf
lab_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8090 "$LAB_DIR/l8090.log"
r=$LAB_DIR/r

check_not "baseline: [2001:db8:1::10]:8090 unreachable from the remote host without a pinhole" \
  lab_connect "$LAB_WAN" 2001:db8:1::10 8090 --timeout 1.5

n=$(lab_nonce)
lab_log "MAP over IPv6: server 2001:db8:1::1, tcp 8090"
check "R-MAP-9 pcpc map over IPv6 exits 0" lab_pc "$r.map" -s 2001:db8:1::1 map -p tcp -i 8090 -l 600 -n "$n"
check "R-MAP-9 result SUCCESS" lab_eq result "$(lab_json "$r.map" result)" SUCCESS
check "R-MAP-11 pinhole is the identity mapping" \
  lab_eq external "$(lab_json "$r.map" external_address) $(lab_json "$r.map" external_port)" "2001:db8:1::10 8090"
echo "  nft list table inet pcpd (pin6):"
lab_nft_table | grep -E '2001:db8:1::10 \. tcp \. 8090' | lab_ev
check "R-MAP-11 pin6 element 2001:db8:1::10 . tcp . 8090 in inet pcpd" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '2001:db8:1::10 . tcp . 8090'"
check "R-MAP-11 remote host connects to [2001:db8:1::10]:8090 through the pinhole" \
  lab_connect "$LAB_WAN" 2001:db8:1::10 8090
check "R-MAP-11 the client's listener saw 2001:db8:2::100" grep -q '^peer 2001:db8:2::100 ' "$LAB_DIR/l8090.log"
check_not "R-MAP-8 the TCP pinhole does not open UDP" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '2001:db8:1::10 . udp . 8090'"

lab_log "delete the pinhole"
check "R-LIFE-4 delete exits 0" lab_pc "$r.del" -s 2001:db8:1::1 map -p tcp -i 8090 -l 0 -n "$n"
check_not "R-LIFE-4 after the delete the remote host is kept out again" \
  lab_connect "$LAB_WAN" 2001:db8:1::10 8090 --timeout 1.5
lab_finish
