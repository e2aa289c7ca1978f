#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_all_ports.sh: an "exposed host" with mappings.allow_all_ports (RFC 6887 §11.1 internal
# port 0; R-MAP-3, R-LIFE-6).
#   1. Off (the default): a MAP for all TCP ports gets UNSUPP_PROTOCOL.
#   2. On: the client gets every TCP port of 203.0.113.1 (external port 0). The remote host
#      reaches it on ports it never mapped one by one (22, 5555), its outbound connection keeps
#      its source port, and the kernel holds map4_dnat_all / map4_snat_all.
#   3. While it holds them, a single-port TCP MAP gets NO_RESOURCES; UDP is unaffected.
#   4. The IPv6 all-ports pinhole admits the remote host on any TCP port of 2001:db8:1::10.
#   5. Protocol TCP with port 0 and lifetime 0 deletes it (R-LIFE-6): the remote host no
#      longer gets through, single-port mappings work again.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-150}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_all_ports
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
r=$LAB_DIR/r
n1=$(lab_nonce) n6=$(lab_nonce)
lab_listen "$LAB_CLI" 22 "$LAB_DIR/listen22.log"
lab_listen "$LAB_CLI" 5555 "$LAB_DIR/listen5555.log"
lab_listen "$LAB_WAN" 9000 "$LAB_DIR/listen9000.log"

lab_log "1. allow_all_ports off (the default)"
lab_pc "$r.0" map -p tcp -i 0 -l 600 -n "$n1"
check "R-MAP-3: all TCP ports are refused with UNSUPP_PROTOCOL" lab_eq result "$(lab_json "$r.0" result)" UNSUPP_PROTOCOL

lab_log "2. allow_all_ports = true: the client takes every TCP port"
lab_ctl_config "$conf" mappings.allow_all_ports=true
check "pcpctl reload" pcpctl reload
lab_pc "$r.1" map -p tcp -i 0 -l 600 -n "$n1"
check "SUCCESS" lab_eq result "$(lab_json "$r.1" result)" SUCCESS
check "... external port 0 (every port, kept)" lab_eq port "$(lab_json "$r.1" external_port)" 0
check "... on 203.0.113.1" lab_eq address "$(lab_json "$r.1" external_address)" 203.0.113.1
lab_nft_elements | grep '_all' | lab_ev
check "the kernel holds map4_dnat_all 203.0.113.1 . tcp : 192.0.2.10" \
  eval 'lab_nft_elements | grep -Eq "^map4_dnat_all: 203\.0\.113\.1 \. (tcp|6) .*: 192\.0\.2\.10$"'
check "... and map4_snat_all 192.0.2.10 . tcp : 203.0.113.1" \
  eval 'lab_nft_elements | grep -Eq "^map4_snat_all: 192\.0\.2\.10 \. (tcp|6) : 203\.0\.113\.1"'
check "the remote host reaches the client on 203.0.113.1:22" lab_connect "$LAB_WAN" 203.0.113.1 22
check "... and on 203.0.113.1:5555" lab_connect "$LAB_WAN" 203.0.113.1 5555 --timeout 1.5
lab_connect "$LAB_CLI" 203.0.113.100 9000 --sport 41234 | lab_ev
check "an outbound connection from port 41234 arrives from 203.0.113.1:41234 (port kept)" \
  grep -q '^peer 203.0.113.1 41234$' "$LAB_DIR/listen9000.log"

lab_log "3. the address's TCP ports are the exposed host's"
lab_pc "$r.2" map -p tcp -i 8080 -l 600 -n "$(lab_nonce)"
check "a single-port TCP MAP gets NO_RESOURCES" lab_eq result "$(lab_json "$r.2" result)" NO_RESOURCES
lab_pc "$r.3" map -p udp -i 8080 -l 600 -n "$(lab_nonce)"
check "UDP is another pool: SUCCESS" lab_eq result "$(lab_json "$r.3" result)" SUCCESS
lab_pc "$r.4" map -p tcp -i 0 -l 600 -n "$(lab_nonce)"
check "another nonce for the all-ports mapping: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.4" result)" NOT_AUTHORIZED

lab_log "4. IPv6: every TCP port of 2001:db8:1::10"
lab_pc "$r.6" -s 2001:db8:1::1 map -p tcp -i 0 -l 600 -n "$n6"
check "SUCCESS, external 2001:db8:1::10 port 0" \
  bash -c "[ '$(lab_json "$r.6" result)' = SUCCESS ] && [ '$(lab_json "$r.6" external_address)' = 2001:db8:1::10 ] && [ '$(lab_json "$r.6" external_port)' = 0 ]"
check "the kernel holds pin6_all 2001:db8:1::10 . tcp" eval 'lab_nft_elements | grep -Eq "^pin6_all: 2001:db8:1::10 \. (tcp|6)"'
check "the remote host reaches [2001:db8:1::10]:5555" lab_connect "$LAB_WAN" 2001:db8:1::10 5555

lab_log "5. deleted with protocol TCP, port 0, lifetime 0"
lab_pc "$r.7" map -p tcp -i 0 -l 0 -n "$n1"
check "R-LIFE-6: SUCCESS" lab_eq result "$(lab_json "$r.7" result)" SUCCESS
check_not "map4_dnat_all is empty" eval 'lab_nft_elements | grep -q "^map4_dnat_all:"'
check_not "the remote host no longer gets through 203.0.113.1:5555" lab_connect "$LAB_WAN" 203.0.113.1 5555 --timeout 1.5
lab_pc "$r.8" map -p tcp -i 8080 -l 600 -n "$(lab_nonce)"
check "a single-port TCP MAP works again" lab_eq result "$(lab_json "$r.8" result)" SUCCESS
check "pcpctl list agrees with the kernel" lab_consistent end
lab_finish
