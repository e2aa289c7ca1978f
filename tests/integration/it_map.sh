#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_map.sh: a PCP MAP (NAT44) admits inbound TCP from the remote host to the client; a delete
# (lifetime 0, same nonce) and the expiry of a short lifetime close it again.
# Requirements: R-MAP-9 (assigned endpoint), R-MAP-6 / R-IDEM-1 (refresh keeps the port),
# R-LIFE-4 (delete), R-LIFE-2 (lifetime clamped into [min, max]), R-LIFE-7 (expired mappings
# leave the data plane).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_map
lab_up
conf=$LAB_DIR/pcpd.conf
lab_config "$conf" mappings.min_lifetime=2 mappings.max_lifetime=3600 nftables.grace=1
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
lab_listen "$LAB_CLI" 8081 "$LAB_DIR/l8081.log"
r=$LAB_DIR/r

lab_log "before any mapping"
check_not "R-MAP-9 baseline: no inbound path to 203.0.113.1:18080 without a mapping" \
  lab_connect "$LAB_WAN" 203.0.113.1 18080 --timeout 1.5

n1=$(lab_nonce)
lab_log "MAP tcp 8080, suggested external port 18080, lifetime 600"
check "R-MAP-9 pcpc map exits 0" lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -e 18080 -l 600 -n "$n1"
ext=$(lab_json "$r.map" external_port)
check "R-MAP-9 result SUCCESS" lab_eq result "$(lab_json "$r.map" result)" SUCCESS
check "R-MAP-9 external address is the router's WAN address" \
  lab_eq external_address "$(lab_json "$r.map" external_address)" 203.0.113.1
check "R-MAP-9 internal endpoint echoed" \
  lab_eq internal "$(lab_json "$r.map" internal_address):$(lab_json "$r.map" internal_port)" 192.0.2.10:8080
check "R-LIFE-2 lifetime 600 granted (inside [2, 3600])" lab_eq lifetime "$(lab_json "$r.map" lifetime)" 600
[[ "$ext" =~ ^[0-9]+$ ]] || ext=0
echo "  nft list table inet pcpd (MAP elements):"
lab_nft_table | grep -E "203\.0\.113\.1 \. tcp \. $ext|192\.0\.2\.10 \. tcp \. 8080" | lab_ev
check "R-MAP-9 DNAT element 203.0.113.1 . tcp . $ext -> 192.0.2.10 . 8080 in inet pcpd" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '203.0.113.1 . tcp . $ext .*: 192.0.2.10 . 8080'"
check "R-MAP-9 remote host 203.0.113.100 reaches the client through 203.0.113.1:$ext" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext"
check "R-MAP-9 the client's listener saw the remote host's own address (DNAT only)" \
  grep -q '^peer 203.0.113.100 ' "$LAB_DIR/l8080.log"

lab_log "refresh with the same nonce"
check "R-MAP-6 refresh exits 0" lab_pc "$r.refresh" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n1"
check "R-MAP-6 R-IDEM-1 refresh keeps the external port" lab_eq external_port "$(lab_json "$r.refresh" external_port)" "$ext"

lab_log "delete: lifetime 0 with the same nonce"
check "R-LIFE-4 delete exits 0" lab_pc "$r.del" -s 192.0.2.1 map -p tcp -i 8080 -l 0 -n "$n1"
check "R-LIFE-4 delete answered SUCCESS with lifetime 0" \
  lab_eq result/lifetime "$(lab_json "$r.del" result)/$(lab_json "$r.del" lifetime)" SUCCESS/0
check_not "R-LIFE-4 DNAT element gone after delete" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '203.0.113.1 . tcp . $ext '"
check_not "R-LIFE-4 remote host no longer connects to 203.0.113.1:$ext" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --timeout 1.5

# 6 s, not the minimum: on a loaded machine the checks' own start-up (python, pcpc) once took
# longer than a 2 s lifetime + 1 s grace before the first connection tried.
lab_log "short lifetime: requested 6 s, grace 1"
n2=$(lab_nonce)
check "R-LIFE-2 short MAP exits 0" lab_pc "$r.short" -s 192.0.2.1 map -p tcp -i 8081 -l 6 -n "$n2"
t0=$(date +%s%N) # after the response: the kernel element lives 6 + 1 s from before this
ext2=$(lab_json "$r.short" external_port)
[[ "$ext2" =~ ^[0-9]+$ ]] || ext2=0
check "R-MAP-9 short mapping admits at once (203.0.113.1:$ext2)" lab_connect "$LAB_WAN" 203.0.113.1 "$ext2"
check "R-LIFE-2 lifetime 6 granted" lab_eq lifetime "$(lab_json "$r.short" lifetime)" 6
# lifetime 6 + grace 1 = 7 s in the kernel; wait 9 s from the response.
sleep "$(python3 -c "print(max(0.0, 9 - ($(date +%s%N) - $t0) / 1e9))")"
check_not "R-LIFE-7 after 9 s (lifetime 6 + grace 1) the mapping no longer admits" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext2" --timeout 1.5
check_not "R-LIFE-7 expired DNAT element gone from inet pcpd" \
  bash -c "ip netns exec $LAB_RTR nft list table inet pcpd | grep -q '203.0.113.1 . tcp . $ext2 '"
lab_finish
