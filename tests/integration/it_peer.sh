#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_peer.sh: a PCP PEER mapping fixes the external endpoint of an outbound connection: the remote
# host sees the connection from the client's internal port arrive from the assigned external
# port (not the one masquerade would pick).
# Requirements: R-PEER-7 (PEER creates the mapping), R-PEER-4 (a suggested external port that
# cannot be honoured is an error, so SUCCESS means it was honoured), R-PEER-1 (layout, via pcpc).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_peer
lab_up
conf=$LAB_DIR/pcpd.conf
lab_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_WAN" 9000 "$LAB_DIR/wan9000.log"
r=$LAB_DIR/r

lab_log "baseline: without PEER, masquerade keeps the client's source port"
check "baseline connection 192.0.2.10:40002 -> 203.0.113.100:9000" \
  lab_connect "$LAB_CLI" 203.0.113.100 9000 --sport 40002
grep '^peer' "$LAB_DIR/wan9000.log" | lab_ev

n=$(lab_nonce)
lab_log "PEER tcp 40001 -> 203.0.113.100:9000, suggested external port 50001"
check "R-PEER-7 pcpc peer exits 0" \
  lab_pc "$r.peer" -s 192.0.2.1 peer -p tcp -i 40001 -r 203.0.113.100:9000 -e 50001 -l 300 -n "$n"
ext=$(lab_json "$r.peer" external_port)
check "R-PEER-7 result SUCCESS" lab_eq result "$(lab_json "$r.peer" result)" SUCCESS
check "R-PEER-4 suggested external port honoured" lab_eq external_port "$ext" 50001
check "R-PEER-1 remote peer echoed" \
  lab_eq remote "$(lab_json "$r.peer" remote_address):$(lab_json "$r.peer" remote_port)" 203.0.113.100:9000
echo "  nft list table inet pcpd (PEER element):"
lab_nft_table | grep -E '192\.0\.2\.10 \. tcp \. 40001' | lab_ev
check "R-PEER-7 connection 192.0.2.10:40001 -> 203.0.113.100:9000 gets through" \
  lab_connect "$LAB_CLI" 203.0.113.100 9000 --sport 40001
grep '^peer' "$LAB_DIR/wan9000.log" | lab_ev
check "R-PEER-7 the remote host saw it from 203.0.113.1:$ext (the PEER's external endpoint)" \
  grep -q "^peer 203.0.113.1 $ext\$" "$LAB_DIR/wan9000.log"
check_not "R-PEER-7 ... and not from the internal port 40001" \
  grep -q '^peer 203.0.113.1 40001$' "$LAB_DIR/wan9000.log"

lab_log "refresh with the same nonce keeps the external port"
check "R-PEER-7 refresh exits 0" \
  lab_pc "$r.refresh" -s 192.0.2.1 peer -p tcp -i 40001 -r 203.0.113.100:9000 -l 300 -n "$n"
check "R-PEER-7 refresh returns the same external port" lab_eq external_port "$(lab_json "$r.refresh" external_port)" "$ext"
lab_finish
