#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_nonce.sh: clients that lose their nonce (RFC 6887 §11.3 / R-MAP-7, R-OWN-2), and what the
# operator can do about it.
#   1. Default (mappings.nonce_change = refuse): the same host's MAP with another nonce gets
#      NOT_AUTHORIZED; the log names client, mapping and outcome (mapping.nonce_conflict).
#   2. `pcpctl delete -p tcp -i 192.0.2.10:8080` releases it; the new nonce then gets a mapping.
#      A delete of nothing exits 1; a bad endpoint exits 1 with the reason; usage errors exit 2.
#   3. Reload with nonce_change = same_host: the owner's new nonce takes the mapping over (same
#      external port, outcome=replaced); still NOT_AUTHORIZED for a THIRD_PARTY request.
#   4. A NAT-PMP mapping (natpmpc, no nonce) is taken by a PCP request from the same host, even
#      with refuse (outcome=natpmp_taken), keeping its external port.
#   5. `pcpctl flush --client 192.0.2.10` removes all of that host's mappings from pcpd and the
#      kernel.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-150}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_nonce
lab_up
command -v natpmpc >/dev/null || lab_die "natpmpc missing (scripts/install-deps.sh installs it)"
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf" third_party.enabled=true 'third_party.allow=["192.0.2.0/24"]'
lab_pcpd_start "$conf"
n1=$(lab_nonce) n2=$(lab_nonce) n3=$(lab_nonce)
r=$LAB_DIR/r
# has_dnat PORT: inet pcpd holds the DNAT element of 203.0.113.1 tcp PORT
has_dnat() { lab_nft_elements | grep -Eq "^map4_dnat: 203\.0\.113\.1 \. (tcp|6) \. $1( |$)"; }

lab_log "1. refuse (the default)"
lab_pc "$r.1" map -p tcp -i 8080 -l 600 -n "$n1"
check "R-MAP-6 the first MAP succeeds" lab_eq result "$(lab_json "$r.1" result)" SUCCESS
ext=$(lab_json "$r.1" external_port)
check "... and is in the kernel (map4_dnat 203.0.113.1 . tcp . $ext)" has_dnat "$ext"
lab_pc "$r.2" map -p tcp -i 8080 -l 600 -n "$n2"
check "R-MAP-7 the same host with another nonce: NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.2" result)" NOT_AUTHORIZED
grep 'mapping.nonce_conflict' "$LAB_PCPD_LOG" | lab_ev
check "the log names client, mapping and outcome" \
  grep -q 'mapping.nonce_conflict client=192.0.2.10 mapping="map tcp 192.0.2.10:8080 -> 203.0.113.1:'"$ext"'" outcome="refused' "$LAB_PCPD_LOG"
check "pcpctl stats counts it (pcpd_nonce_conflicts_total{outcome=\"refused\"} 1)" \
  lab_eq refused "$(lab_stat 'pcpd_nonce_conflicts_total{outcome="refused"}')" 1

lab_log "2. pcpctl delete"
pcpctl delete -p tcp -i 192.0.2.10:8080 >"$r.del" 2>&1
rc=$?
lab_ev <"$r.del"
check "pcpctl delete -p tcp -i 192.0.2.10:8080 exits 0" test "$rc" = 0
check "... and says what it did" grep -q 'deleted 1 mapping' "$r.del"
check "... logged (mapping.deleted by=pcpctl)" grep -q 'mapping.deleted by=pcpctl internal=192.0.2.10:8080 protocol=tcp' "$LAB_PCPD_LOG"
check_not "... gone from the kernel" has_dnat "$ext"
lab_pc "$r.3" map -p tcp -i 8080 -l 600 -n "$n2"
check "the client's new nonce now gets the mapping" lab_eq result "$(lab_json "$r.3" result)" SUCCESS
pcpctl delete -p tcp -i 192.0.2.10:9999 >"$r.none" 2>&1
rc=$?
lab_ev <"$r.none"
check "pcpctl delete of no mapping exits 1 (no such mapping)" bash -c "[ $rc = 1 ] && grep -q 'no such mapping' '$r.none'"
pcpctl delete -p tcp -i 192.0.2.10 >"$r.bad" 2>&1
rc=$?
lab_ev <"$r.bad"
check "pcpctl delete with a bad endpoint exits 1 naming it" bash -c "[ $rc = 1 ] && grep -q 'ADDRESS:PORT' '$r.bad'"
pcpctl delete -i 192.0.2.10:8080 >"$r.usage" 2>&1
check "pcpctl delete without --protocol is a usage error (exit 2)" test $? = 2

lab_log "3. reload with nonce_change = same_host"
lab_ctl_config "$conf" third_party.enabled=true 'third_party.allow=["192.0.2.0/24"]' 'mappings.nonce_change="same_host"'
check "pcpctl reload succeeds" pcpctl reload
ext2=$(lab_json "$r.3" external_port)
lab_pc "$r.4" map -p tcp -i 8080 -l 600 -n "$n3"
check "the owner's new nonce takes its mapping over: SUCCESS" lab_eq result "$(lab_json "$r.4" result)" SUCCESS
check "... on the same external port" lab_eq port "$(lab_json "$r.4" external_port)" "$ext2"
check "... logged outcome=replaced" grep -q 'mapping.nonce_conflict client=192.0.2.10 .*outcome=replaced' "$LAB_PCPD_LOG"
lab_pc "$r.5" map -p tcp -i 8080 -l 600 -n "$n1" --third-party 192.0.2.10
check "never through THIRD_PARTY (the option naming the sender itself is refused as malformed)" \
  lab_eq result "$(lab_json "$r.5" result)" MALFORMED_REQUEST
lab_pc "$r.6" map -p tcp -i 7000 -l 600 -n "$n1" --third-party 192.0.2.20
check "THIRD_PARTY makes a mapping for 192.0.2.20" lab_eq result "$(lab_json "$r.6" result)" SUCCESS
lab_pc "$r.7" map -p tcp -i 7000 -l 600 -n "$n2" --third-party 192.0.2.20
check "... and another nonce through THIRD_PARTY is refused, same_host or not" \
  lab_eq result "$(lab_json "$r.7" result)" NOT_AUTHORIZED

lab_log "4. a NAT-PMP mapping taken by PCP from the same host"
lab_ctl_config "$conf" third_party.enabled=true 'third_party.allow=["192.0.2.0/24"]'
check "pcpctl reload (back to refuse)" pcpctl reload
timeout 20 ip netns exec "$LAB_CLI" natpmpc -g 192.0.2.1 -a 9000 9000 tcp 600 >"$r.pmp" 2>&1
lab_ev <"$r.pmp"
pmp_ext=$(sed -n 's/.*Mapped public port \([0-9]*\) protocol TCP.*/\1/p' "$r.pmp" | head -n 1)
check "natpmpc maps TCP 9000 (public port ${pmp_ext:-?})" test -n "$pmp_ext"
lab_pc "$r.8" map -p tcp -i 9000 -l 600 -n "$n1"
check "the same host's PCP MAP takes it over, even with refuse: SUCCESS" lab_eq result "$(lab_json "$r.8" result)" SUCCESS
check "... on the NAT-PMP mapping's port" lab_eq port "$(lab_json "$r.8" external_port)" "${pmp_ext:-0}"
check "... logged outcome=natpmp_taken" grep -q 'mapping.nonce_conflict client=192.0.2.10 .*outcome=natpmp_taken' "$LAB_PCPD_LOG"

lab_log "5. pcpctl flush --client 192.0.2.10"
pcpctl list >"$r.list0"
lab_ev <"$r.list0"
check "before: the kernel holds 192.0.2.10's mapping of port 9000" has_dnat "${pmp_ext:-0}"
pcpctl flush --client 192.0.2.10 >"$r.flush" 2>&1
rc=$?
lab_ev <"$r.flush"
check "pcpctl flush --client 192.0.2.10 exits 0" test "$rc" = 0
# 8080 and 9000 are 192.0.2.10's own, 7000 was made by it for 192.0.2.20 (THIRD_PARTY).
check "... deleted its 3 mappings" grep -q 'deleted 3 mappings' "$r.flush"
pcpctl list >"$r.list1"
check "pcpctl list is empty" test ! -s "$r.list1"
check_not "the kernel holds none of them" eval "lab_nft_elements | grep -q '^map4_dnat: '"
lab_finish
