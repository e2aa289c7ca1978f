#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_static.sh: [[static]] port forwards (RFC 6887 §11.3 static mappings) as an operator runs
# them on a router.
#   1. Start with tcp 192.0.2.10:22 -> 2222 and an IPv6 pinhole tcp [2001:db8:1::10]:8443: the
#      kernel holds them without a timeout ("static map" comment), the remote host reaches both,
#      pcpctl list shows them as permanent.
#   2. Requests: a MAP for 22 gets 2222 with lifetime 2^32-1 (R-MAP-6); its delete gets
#      NOT_AUTHORIZED (R-LIFE-5); a suggestion of 2222 gets another port (R-MAP-5); pcpctl delete
#      refuses it (exit 1) and pcpctl flush --client leaves it.
#   3. kill -9 and start again: it comes back once, from the journal, with the epoch continued.
#   4. Reload with another set: 22 moves to 2223, 2222 is gone, the pinhole is removed, and a
#      new entry on the client's own dynamic mapping's external port 7000 displaces it
#      (static.displaced, epoch reset) in the same transaction.
#   5. The table is deleted and loaded again (nftables restarted): re-installed without timeout.
#   6. DHCP renumbers wan0 to 203.0.113.5: the static mapping follows, same port.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-180}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_static
lab_up
conf=$LAB_DIR/pcpd.conf
# write_conf ENTRIES: the lab's configuration plus [[static]] tables (TOML text).
write_conf() {
  lab_ctl_config "$conf"
  printf '%s\n' "$1" >>"$conf"
}
write_conf '
[[static]]
protocol = "tcp"
internal = "192.0.2.10:22"
external_port = 2222
description = "ssh to the nas"

[[static]]
protocol = "tcp"
internal = "[2001:db8:1::10]:8443"'
lab_listen "$LAB_CLI" 22 "$LAB_DIR/listen22.log"
lab_listen "$LAB_CLI" 8443 "$LAB_DIR/listen8443.log"
lab_listen "$LAB_CLI" 7001 "$LAB_DIR/listen7001.log"
lab_pcpd_start "$conf"
r=$LAB_DIR/r
pcpd_said() { grep -q "$1" "$LAB_PCPD_LOG"; }
# dnat_line PORT: the map4_dnat element of 203.0.113.1 tcp PORT as `nft list` prints it.
dnat_line() { lab_rtr nft list map inet pcpd map4_dnat | grep -E "${2:-203\.0\.113\.1} \. tcp \. $1 "; }
no_timeout() { ! dnat_line "$@" | grep -Eq 'timeout|expires'; }

lab_log "1. installed at start"
dnat_line 2222 | lab_ev
check "the kernel holds 203.0.113.1 . tcp . 2222 -> 192.0.2.10 . 22, commented 'static map'" \
  eval 'dnat_line 2222 | grep -q "comment \"static map .*d=ssh to the nas\" : 192.0.2.10 . 22"'
check "... without a timeout (it never expires)" no_timeout 2222
check "the pinhole 2001:db8:1::10 . tcp . 8443 is in pin6" \
  eval 'lab_rtr nft list set inet pcpd pin6 | grep -q "2001:db8:1::10 . tcp . 8443 comment \"static map"'
check "the remote host reaches the client through 203.0.113.1:2222" lab_connect "$LAB_WAN" 203.0.113.1 2222
check "... and through the pinhole [2001:db8:1::10]:8443" lab_connect "$LAB_WAN" 2001:db8:1::10 8443
pcpctl list >"$r.list"
lab_ev <"$r.list"
check "pcpctl list shows it permanent, origin=static" \
  grep -q '^map tcp 192.0.2.10:22 -> 203.0.113.1:2222 permanent .*origin=static' "$r.list"
check "the start is logged (static.applied when=start added=2)" pcpd_said 'static.applied when=start added=2'

lab_log "2. requests meet a static mapping"
lab_pc "$r.1" map -p tcp -i 22 -l 600 -n "$(lab_nonce)"
check "R-MAP-6: a MAP for 22 is answered with the static mapping (2222)" \
  lab_eq port "$(lab_json "$r.1" external_port)" 2222
check "... lifetime 2^32-1" lab_eq lifetime "$(lab_json "$r.1" lifetime)" 4294967295
lab_pc "$r.2" map -p tcp -i 22 -l 0 -n "$(lab_nonce)"
check "R-LIFE-5: its delete gets NOT_AUTHORIZED" lab_eq result "$(lab_json "$r.2" result)" NOT_AUTHORIZED
lab_pc "$r.3" map -p tcp -i 2222 -l 600 -n "$(lab_nonce)" -e 2222
check "R-MAP-5: a suggestion of 2222 gets another port" \
  bash -c "[ '$(lab_json "$r.3" result)' = SUCCESS ] && [ '$(lab_json "$r.3" external_port)' != 2222 ]"
pcpctl delete -p tcp -i 192.0.2.10:22 >"$r.del" 2>&1
rc=$?
lab_ev <"$r.del"
check "pcpctl delete refuses it (exit 1, names [[static]])" bash -c "[ $rc = 1 ] && grep -q 'static' '$r.del'"
pcpctl flush --client 192.0.2.10 >"$r.flush" 2>&1
lab_ev <"$r.flush"
check "pcpctl flush --client 192.0.2.10 removes only the dynamic one (deleted 1 mapping)" grep -q 'deleted 1 mapping$' "$r.flush"
check "... the static one is still in the kernel" dnat_line 2222
epoch0=$(lab_stat pcpd_epoch_seconds)

lab_log "3. kill -9, start again"
lab_pcpd_stop -9
lab_pcpd_start "$conf"
check "recovered from the state files (mappings.recovered source=journal)" pcpd_said 'mappings.recovered source=journal'
check "the epoch continued (no epoch.reset)" bash -c "! grep -q 'epoch.reset' '$LAB_PCPD_LOG'"
check "the static set was already there (no static.applied)" bash -c "! grep -q 'static.applied' '$LAB_PCPD_LOG'"
one_element() { [ "$(lab_rtr nft list map inet pcpd map4_dnat | grep -c ' 2222 ')" = 1 ]; }
check "one element for 2222" one_element
check "... (no timeout)" no_timeout 2222
check "the remote host still reaches 203.0.113.1:2222" lab_connect "$LAB_WAN" 203.0.113.1 2222
epoch1=$(lab_stat pcpd_epoch_seconds)
check "the epoch went on ($epoch0 -> $epoch1)" test "${epoch1:-0}" -ge "${epoch0:-1}"

lab_log "4. reload: changed, removed, added over a client's dynamic mapping"
lab_pc "$r.4" map -p tcp -i 7000 -l 600 -n "$(lab_nonce)" -e 7000
check "the client maps 7000 on external port 7000" lab_eq port "$(lab_json "$r.4" external_port)" 7000
sleep 1.1  # an epoch old enough that the reset shows
write_conf '
[[static]]
protocol = "tcp"
internal = "192.0.2.10:22"
external_port = 2223

[[static]]
protocol = "tcp"
internal = "192.0.2.10:7001"
external_port = 7000'
check "pcpctl reload succeeds" pcpctl reload
grep -E 'static\.|epoch\.reset' "$LAB_PCPD_LOG" | lab_ev
check "the client's mapping on 7000 is displaced and logged" \
  pcpd_said 'static.displaced mapping="map tcp 192.0.2.10:7000 -> 203.0.113.1:7000" client=192.0.2.10'
check "one transaction: added=1 changed=1 removed=1 displaced=1" \
  pcpd_said 'static.applied when=reload added=1 changed=1 removed=1 kept=0 displaced=1'
check "RFC 6887 §8.5: the epoch resets (reason=static_mapping_displaced)" pcpd_said 'epoch.reset reason=static_mapping_displaced'
check_not "2222 is gone from the kernel" dnat_line 2222
check "2223 is there" dnat_line 2223
# The listing itself must work: a failed `nft list` would make the negative check pass.
check "the pinhole is gone" eval 'pin6=$(lab_rtr nft list set inet pcpd pin6) && ! grep -q 8443 <<<"$pin6"'
check "the remote host reaches 22 through 203.0.113.1:2223" lab_connect "$LAB_WAN" 203.0.113.1 2223
check "... and 7001 through 203.0.113.1:7000" lab_connect "$LAB_WAN" 203.0.113.1 7000
lab_pc "$r.5" map -p tcp -i 7000 -l 600 -n "$(lab_nonce)"
check "the displaced client re-creates on another port" \
  bash -c "[ '$(lab_json "$r.5" result)' = SUCCESS ] && [ '$(lab_json "$r.5" external_port)' != 7000 ]"

lab_log "5. nftables restarted: the table deleted and loaded again"
lab_rtr nft delete table inet pcpd
lab_rtr nft -f "$LAB_SRC/nft-rules/pcpd.nft"
check "pcpd re-installs its mappings (datapath.resynced)" lab_waitfor 15 pcpd_said 'datapath.resynced'
static_back() { dnat_line 2223 && no_timeout 2223; }
check "2223 is back, without a timeout" static_back
check "the remote host reaches 203.0.113.1:2223" lab_connect "$LAB_WAN" 203.0.113.1 2223

lab_log "6. DHCP renumbers wan0 to 203.0.113.5"
printf 'addr del 203.0.113.1/24 dev wan0\naddr add 203.0.113.5/24 dev wan0\n' | lab_rtr ip -batch -
check "pcpd moves the mappings (external.mappings_moved)" lab_waitfor 10 pcpd_said 'external.mappings_moved'
grep -E 'external\.|static\.' "$LAB_PCPD_LOG" | tail -n 4 | lab_ev
check "the static mapping is on 203.0.113.5:2223" lab_waitfor 5 dnat_line 2223 '203\.0\.113\.5'
check "... without a timeout" no_timeout 2223 '203\.0\.113\.5'
check "the remote host reaches 22 through 203.0.113.5:2223" lab_connect "$LAB_WAN" 203.0.113.5 2223
check "pcpctl list: permanent on 203.0.113.5" eval 'pcpctl list | grep -q "192.0.2.10:22 -> 203.0.113.5:2223 permanent"'
lab_finish
