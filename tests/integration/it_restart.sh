#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_restart.sh: kill -9 pcpd and start it again: every mapping (MAP with FILTER and DESCRIPTION,
# PEER, IPv6 pinhole) is still in the kernel and recovered by pcpd: refreshes with the old nonce
# keep the external port, another nonce gets NOT_AUTHORIZED, the epoch is continuous.
# Requirements: R-OWN-5 (nonce survives a restore), R-OWN-2 (NOT_AUTHORIZED for another nonce,
# also for the IPv6 pinhole), R-EPOCH-3 (continuous after a complete restore, no reset),
# R-SEC-4 (no port given away after a restart), R-FLT-6 (filters still enforced).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_restart
lab_up
ip -n "$LAB_WAN" addr add 203.0.113.101/24 dev eth0
conf=$LAB_DIR/pcpd.conf
lab_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
lab_listen "$LAB_CLI" 8090 "$LAB_DIR/l8090.log"
lab_listen "$LAB_WAN" 9000 "$LAB_DIR/wan9000.log"

lab_log "three mappings before the crash"
lab_three_mappings "lab web server"
echo "  elements before (timeouts stripped):"
lab_ev <"$LAB_DIR/before.txt"
check "the table holds the MAP, the PEER and the pinhole" bash -c \
  "grep -q '^map4_dnat: 203.0.113.1 . tcp . $ext ' $LAB_DIR/before.txt && grep -q '192.0.2.10 . tcp . 40001 . 203.0.113.100 . 9000' $LAB_DIR/before.txt && grep -q '2001:db8:1::10 . tcp . 8090' $LAB_DIR/before.txt"

lab_log "kill -9 pcpd (pid $LAB_PCPD_PID), start it again"
sleep 1
lab_pcpd_stop -9
lab_pcpd_start "$conf"
sleep 1
lab_nft_elements >"$LAB_DIR/after.txt"
echo "  diff of the elements before/after the restart (timeouts stripped):"
diff "$LAB_DIR/before.txt" "$LAB_DIR/after.txt" | lab_ev
check "R-OWN-5 every element is still in inet pcpd after the restart" \
  diff -q "$LAB_DIR/before.txt" "$LAB_DIR/after.txt"
check "R-OWN-5 the DESCRIPTION is still on the MAP element (element comment d=...)" \
  grep -q "^map4_dnat: 203.0.113.1 . tcp . $ext comment=.*d=lab web server" "$LAB_DIR/after.txt"

lab_log "refreshes after the restart"
check "R-OWN-5 MAP refresh with the old nonce exits 0" lab_pc "$r.map2" -s 192.0.2.1 map -p tcp -i 8080 -l 900 -n "$n1"
epoch2=$(lab_json "$r.map2" epoch)
check "R-OWN-5 R-SEC-4 MAP refresh keeps the external port" lab_eq external_port "$(lab_json "$r.map2" external_port)" "$ext"
check "R-EPOCH-3 epoch continuous (after >= before)" lab_ge epoch "$epoch2" "$epoch1"
check "R-OWN-5 PEER refresh with the old nonce exits 0" lab_pc "$r.peer2" -s 192.0.2.1 peer -p tcp -i 40001 \
  -r 203.0.113.100:9000 -l 900 -n "$n2"
check "R-OWN-5 PEER refresh keeps the external port" lab_eq external_port "$(lab_json "$r.peer2" external_port)" "$pext"
check "R-OWN-5 pinhole refresh with the old nonce exits 0" lab_pc "$r.pin2" -s 2001:db8:1::1 map -p tcp -i 8090 -l 900 -n "$n3"

lab_pc "$r.badmap" -s 192.0.2.1 map -p tcp -i 8080 -l 900 -n "$bad"
rc=$?
check "R-OWN-2 MAP with another nonce: pcpc exit 1" lab_eq exit "$rc" 1
check "R-OWN-2 MAP with another nonce: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.badmap" result)" NOT_AUTHORIZED
lab_pc "$r.badpin" -s 2001:db8:1::1 map -p tcp -i 8090 -l 900 -n "$bad"
check "R-OWN-2 pinhole with another nonce: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.badpin" result)" NOT_AUTHORIZED
lab_pc "$r.baddel" -s 192.0.2.1 map -p tcp -i 8080 -l 0 -n "$bad"
check "R-OWN-2 delete with another nonce: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.baddel" result)" NOT_AUTHORIZED

lab_log "the data plane after the restart"
check "R-FLT-6 203.0.113.100 still connects to 203.0.113.1:$ext" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.100
check_not "R-FLT-6 203.0.113.101 still kept out" \
  lab_connect "$LAB_WAN" 203.0.113.1 "$ext" --source 203.0.113.101 --timeout 1.5
check "pinhole still admits [2001:db8:1::10]:8090" lab_connect "$LAB_WAN" 2001:db8:1::10 8090
check "PEER still translates 40001 -> $pext" lab_connect "$LAB_CLI" 203.0.113.100 9000 --sport 40001
check "... seen by the remote host from 203.0.113.1:$pext" grep -q "^peer 203.0.113.1 $pext\$" "$LAB_DIR/wan9000.log"
lab_finish
