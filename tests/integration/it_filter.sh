#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_filter.sh: FILTER (RFC 6887 §13.3) restricts which remote peers a MAP admits, in the kernel.
# The remote namespace has two addresses, 203.0.113.100 and 203.0.113.101.
# Requirements: R-FLT-6 (drop what matches no filter; a refresh without FILTER keeps the filters),
# R-FLT-4 (prefix length in the 128-bit field, pcpc encodes /32 as /128), R-OPT-6 (echoed).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_filter
lab_up
ip -n "$LAB_WAN" addr add 203.0.113.101/24 dev eth0
conf=$LAB_DIR/pcpd.conf
lab_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
lab_listen "$LAB_CLI" 8081 "$LAB_DIR/l8081.log"
r=$LAB_DIR/r

lab_log "control: MAP tcp 8081 without FILTER admits both remote addresses"
check "control MAP without filter exits 0" lab_pc "$r.open" -s 192.0.2.1 map -p tcp -i 8081 -l 600
e0=$(lab_json "$r.open" external_port)
check "control: 203.0.113.100 connects to 203.0.113.1:$e0" lab_connect "$LAB_WAN" 203.0.113.1 "$e0" --source 203.0.113.100
check "control: 203.0.113.101 connects to 203.0.113.1:$e0" lab_connect "$LAB_WAN" 203.0.113.1 "$e0" --source 203.0.113.101

n=$(lab_nonce)
lab_log "MAP tcp 8080 with FILTER 203.0.113.100/32"
check "R-FLT-6 pcpc map --filter exits 0" \
  lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n" --filter 203.0.113.100/32
ext=$(lab_json "$r.map" external_port)
check "R-FLT-6 result SUCCESS" lab_eq result "$(lab_json "$r.map" result)" SUCCESS
filters=$(lab_json "$r.map" options.filters)
echo "    options.filters: $filters"
check "R-OPT-6 FILTER echoed in the response" grep -q '203.0.113.100' <<<"$filters"
echo "  nft list table inet pcpd (filter sets):"
lab_nft_table | grep -E "203\.0\.113\.1 \. tcp \. $ext" | lab_ev
check "R-FLT-6 203.0.113.100 (inside the filter) connects to 203.0.113.1:$ext" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.100
check_not "R-FLT-6 203.0.113.101 (outside the filter) is kept out of 203.0.113.1:$ext" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.101 --timeout 1.5
check_not "R-FLT-6 the client's listener never saw 203.0.113.101 on 8080" \
  grep -q '^peer 203.0.113.101 ' "$LAB_DIR/l8080.log"

lab_log "refresh without FILTER keeps the filter"
check "R-FLT-6 refresh exits 0" lab_pc "$r.refresh" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n"
check_not "R-FLT-6 after the refresh 203.0.113.101 is still kept out" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.101 --timeout 1.5
check "R-FLT-6 after the refresh 203.0.113.100 still connects" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.100

lab_log "FILTER 0.0.0.0/0 clears the filters"
check "R-FLT-4 pcpc map --filter 0.0.0.0/0 exits 0" \
  lab_pc "$r.clear" -s 192.0.2.1 map -p tcp -i 8080 -l 600 -n "$n" --filter 0.0.0.0/0
check "R-FLT-4 after clearing, 203.0.113.101 connects" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.101
lab_finish
