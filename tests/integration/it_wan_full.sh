#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_wan_full.sh: the WAN address changes and the new address has no free port for a mapping
# (RFC 6887 §14.2): the mapping stays behind, and moves as soon as a port is free there.
#   One external port (port_range 20000-20000). 8080 gets 203.0.113.1:20000; wan0 gains .5 and
#   8081 gets 203.0.113.5:20000. wan0 loses .1: 8080 has no port on .5 (no_port=1). The client
#   deletes 8081: within the datapath timer's 5 s 8080 moves to 203.0.113.5:20000, and the remote
#   host reaches it there.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-120}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_wan_full
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf" 'mappings.port_range="20000-20000"'
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
r=$LAB_DIR/r
n1=$(lab_nonce) n2=$(lab_nonce)
pcpd_said() { grep -q "$1" "$LAB_PCPD_LOG"; }
on() { pcpctl list | grep -q "192.0.2.10:$1 -> $2"; }

lab_pc "$r.1" map -p tcp -i 8080 -l 600 -n "$n1"
check "8080 gets 203.0.113.1:20000" lab_eq external "$(lab_json "$r.1" external_address):$(lab_json "$r.1" external_port)" 203.0.113.1:20000
lab_rtr ip addr add 203.0.113.5/24 dev wan0
check "pcpd takes .5 into its pool" lab_waitfor 10 pcpd_said 'external.address_changed.*to=203.0.113.1,203.0.113.5'
lab_pc "$r.2" map -p tcp -i 8081 -l 600 -n "$n2"
check "8081 gets 203.0.113.5:20000 (.1 has no port left)" \
  lab_eq external "$(lab_json "$r.2" external_address):$(lab_json "$r.2" external_port)" 203.0.113.5:20000
# The secondary address (.5) first would take it out with the primary: delete .1 alone, with
# promote_secondaries so .5 stays.
lab_rtr sysctl -qw net.ipv4.conf.wan0.promote_secondaries=1
lab_rtr ip addr del 203.0.113.1/24 dev wan0
check "8080 finds no port on .5 and stays (no_port=1)" lab_waitfor 10 pcpd_said 'external.mappings_moved to=203.0.113.5 moved=0 port_kept=0 no_port=1'
check "pcpctl list: 8080 still on 203.0.113.1:20000" on 8080 203.0.113.1:20000
lab_pc "$r.3" map -p tcp -i 8081 -l 0 -n "$n2"
check "the client deletes 8081" lab_eq result "$(lab_json "$r.3" result)" SUCCESS
check "8080 moves to 203.0.113.5:20000 within 10 s" lab_waitfor 10 on 8080 203.0.113.5:20000
grep -E 'external\.|epoch\.reset' "$LAB_PCPD_LOG" | lab_ev
check "logged: moved=1 no_port=0" pcpd_said 'external.mappings_moved to=203.0.113.5 moved=1 port_kept=1 no_port=0'
check "the remote host reaches the client through 203.0.113.5:20000" lab_connect "$LAB_WAN" 203.0.113.5 20000
lab_finish
