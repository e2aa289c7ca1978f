#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_wan_change.sh: the WAN address changes under a running pcpd, as DHCP or PPPoE change it.
#   1. A client that stays on its socket (pcp_update_client.py) holds two MAP mappings on
#      203.0.113.1 (ports 8080, 8081); the remote host reaches both.
#   2. wan0 is renumbered to 203.0.113.5 (`ip addr del` + `ip addr add`, no reload): pcpd notices
#      (rtnetlink), moves both mappings to .5 keeping their ports, in one transaction; the epoch
#      resets (R-EPOCH-4); PCP ANNOUNCE and the NAT-PMP address announcement (RFC 6886 §3.2.1,
#      carrying .5) go out; the client gets unsolicited MAP responses for both from the server
#      address it used (Mapping Update, RFC 6887 §14.2, R-ANN-7); after it refreshes 8080 its
#      updates stop, while 8081's go on. The remote host reaches the client through .5, and the
#      kernel holds no element on .1.
#   3. wan0 loses its address: the mappings stay, a refresh gets NETWORK_FAILURE (§7.4). The same
#      address back: nothing moves, no epoch reset, a refresh succeeds on the same port.
#   4. A reload with interfaces.external_address = 203.0.113.7 (an operator's edit): the mappings
#      move there too, with updates to the client.
#   5. The address changes while pcpd is stopped: at its start the restored mappings move to the
#      new address before the first answer, and the epoch resets.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-240}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_wan_change
lab_up
conf=$LAB_DIR/pcpd.conf
# No external_address: pcpd takes wan0's and follows it.
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
lab_listen "$LAB_CLI" 8081 "$LAB_DIR/l8081.log"
events=$LAB_DIR/client.jsonl
lab_spawn "$LAB_CLI" "$events" python3 "$LAB_SRC/tests/integration/pcp_update_client.py" \
  --server 192.0.2.1 --client 192.0.2.10 --ports 8080,8081 --refresh-on-update 8080 --life 120
waitfor() { lab_waitfor "$@"; }
# count EVENT [PORT [EXT]]: lines of the client's output that match
count() {
  python3 - "$events" "$@" <<'PY'
import json, sys
f, ev = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
ext = sys.argv[4] if len(sys.argv) > 4 else None
n = 0
for line in open(f):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o["event"] != ev or (port is not None and o.get("port") != port) or (ext and o.get("ext") != ext):
        continue
    n += 1
print(n)
PY
}
at_least() { [ "$(count "$2" "${3:-}" "${4:-}")" -ge "$1" ]; }
pcpd_said() { grep -q "$1" "$LAB_PCPD_LOG"; }
elements() { lab_rtr nft list map inet pcpd map4_dnat 2>/dev/null; }

lab_log "1. two mappings on 203.0.113.1"
check "the client's two MAP requests are answered SUCCESS on 203.0.113.1" waitfor 10 at_least 2 response "" 203.0.113.1
check "the remote host reaches the client through 203.0.113.1:8080" lab_connect "$LAB_WAN" 203.0.113.1 8080
sleep 2  # an epoch old enough that the reset shows
epoch0=$(lab_stat pcpd_epoch_seconds)

lab_log "2. wan0 renumbered to 203.0.113.5 (no reload)"
# One `ip` process, as a DHCP client's hook renumbers: the two changes milliseconds apart.
printf 'addr del 203.0.113.1/24 dev wan0\naddr add 203.0.113.5/24 dev wan0\n' | lab_rtr ip -batch -
check "pcpd notices (external.address_changed from=203.0.113.1 to=203.0.113.5)" \
  waitfor 5 pcpd_said 'external.address_changed.*from=203.0.113.1 to=203.0.113.5'
check "both mappings moved in one go, ports kept (external.mappings_moved moved=2 port_kept=2)" \
  waitfor 5 pcpd_said 'external.mappings_moved.*moved=2 port_kept=2'
grep -E 'external\.|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "R-EPOCH-4: the epoch resets (epoch.reset reason=external_address_changed)" \
  pcpd_said 'epoch.reset reason=external_address_changed'
check "R-ANN-7: the client gets an unsolicited MAP response for 8080 on 203.0.113.5:8080" \
  waitfor 5 at_least 1 update 8080 203.0.113.5
check "R-ANN-7: ... and for 8081 on 203.0.113.5:8081" waitfor 5 at_least 1 update 8081 203.0.113.5
python3 - "$events" <<'PY' | lab_ev
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["event"] in ("update", "natpmp_announce", "announce"):
        print(f'{o["t"]:.3f} {o["event"]} port={o.get("port", "-")} ext={o.get("ext", "-")}:{o.get("ext_port", "-")} epoch={o["epoch"]} src={o["src"]} len={o.get("length", "-")}')
PY
check "R-SEC-5: every update came from 192.0.2.1, the address the client sends to, as 60 bytes" python3 -c '
import json, sys
ups = [json.loads(l) for l in open(sys.argv[1]) if "\"update\"" in l]
sys.exit(0 if ups and all(u["src"] == "192.0.2.1" and u["length"] == 60 and u["ext_port"] == u["port"] for u in ups) else 1)' "$events"
check "R-PMP-4: the NAT-PMP address announcement carries 203.0.113.5" waitfor 5 at_least 1 natpmp_announce "" 203.0.113.5
check "R-ANN-3 (our decision): a PCP ANNOUNCE goes out too" waitfor 5 at_least 1 announce
epoch1=$(python3 -c '
import json, sys
print(min(json.loads(l)["epoch"] for l in open(sys.argv[1]) if "\"update\"" in l))' "$events")
echo "    epoch before: $epoch0, in the first update: $epoch1"
check "R-EPOCH-4: the updates carry the new, smaller epoch" test "$epoch1" -lt "$epoch0"
# Copies go out at 0, 0.25, 0.75, 1.75 and 3.75 s: after 4.5 s 8081 (never refreshed) has had 5,
# 8080 stopped after its refresh.
sleep 4.5
u8080=$(count update 8080) u8081=$(count update 8081)
echo "    updates received: 8080 (refreshed after the first) $u8080, 8081 (not refreshed) $u8081"
check "R-ANN-7: the updates repeat for the mapping the client did not refresh (>= 4 in 4.5 s)" test "$u8081" -ge 4
check "R-ANN-7: ... and stop for the one it refreshed (fewer than for the other)" test "$u8080" -lt "$u8081"
check "the remote host reaches the client through 203.0.113.5:8080" lab_connect "$LAB_WAN" 203.0.113.5 8080
check "... and through 203.0.113.5:8081" lab_connect "$LAB_WAN" 203.0.113.5 8081
elements >"$LAB_DIR/dnat.txt"
check_not "the kernel holds no DNAT element on 203.0.113.1 any more" grep -q '203.0.113.1 ' "$LAB_DIR/dnat.txt"
check "pcpctl stats counts them (pcpd_mappings_readdressed_total 2)" lab_eq readdressed "$(lab_stat pcpd_mappings_readdressed_total)" 2

lab_log "3. wan0 without an address, then the same address back"
epochs_reset() { grep -c 'epoch.reset' "$LAB_PCPD_LOG"; }
resets=$(epochs_reset)
lab_rtr ip addr del 203.0.113.5/24 dev wan0
check "pcpd notices the address is gone (external.address_gone mappings_waiting=2)" \
  waitfor 5 pcpd_said 'external.address_gone.*mappings_waiting=2'
lab_pc "$LAB_DIR/gone.json" map -p tcp -i 9000 -l 600
check "§7.4: a MAP meanwhile gets NETWORK_FAILURE" lab_eq result "$(lab_json "$LAB_DIR/gone.json" result)" NETWORK_FAILURE
pcpctl list >"$LAB_DIR/list-gone.txt"
check "the two mappings are kept meanwhile (pcpctl list)" lab_eq mappings "$(grep -c '192.0.2.10:808[01]' "$LAB_DIR/list-gone.txt")" 2
lab_rtr ip addr add 203.0.113.5/24 dev wan0
back() { [ "$(grep -c 'external.address_changed.*to=203.0.113.5' "$LAB_PCPD_LOG")" -ge 2 ]; }
check "pcpd sees it back (external.address_changed ... to=203.0.113.5)" waitfor 5 back
sleep 0.5
check "the same address back is no change: no epoch reset" lab_eq resets "$(epochs_reset)" "$resets"
check "the remote host reaches the client through 203.0.113.5:8080 again" lab_connect "$LAB_WAN" 203.0.113.5 8080

lab_log "4. a reload with interfaces.external_address = 203.0.113.7"
lab_rtr ip addr add 203.0.113.7/24 dev wan0
sleep 0.5
lab_ctl_config "$conf" 'interfaces.external_address=["203.0.113.7"]'
before=$(count update 8081 203.0.113.7)
check "pcpctl reload succeeds" pcpctl reload
check "the mappings move to 203.0.113.7 (external.mappings_moved moved=2)" \
  waitfor 5 pcpd_said 'external.mappings_moved to=203.0.113.7 moved=2'
check "R-ANN-7: the client is told (an update for 8081 on 203.0.113.7)" waitfor 5 at_least $((before + 1)) update 8081 203.0.113.7
check "the remote host reaches the client through 203.0.113.7:8081" lab_connect "$LAB_WAN" 203.0.113.7 8081

lab_log "5. the address changes while pcpd is stopped (the config follows wan0 again)"
lab_pcpd_stop
lab_ctl_config "$conf"
# The secondary (.7) first: deleting the primary (.5) would take the secondaries with it.
printf 'addr del 203.0.113.7/24 dev wan0\naddr del 203.0.113.5/24 dev wan0\naddr add 203.0.113.9/24 dev wan0\n' |
  lab_rtr ip -batch - || lab_die "renumbering wan0 failed"
lab_pcpd_start "$conf"
grep -E 'mappings.recovered|external\.|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "at start the restored mappings move off the gone address (external.mappings_moved ... when=start)" \
  grep -q 'external.mappings_moved to=203.0.113.9 moved=2 port_kept=2 no_port=0 when=start' "$LAB_PCPD_LOG"
check "R-EPOCH-4: the epoch resets for it" grep -q 'epoch.reset reason=external_address_changed' "$LAB_PCPD_LOG"
check "the remote host reaches the client through 203.0.113.9:8081" lab_connect "$LAB_WAN" 203.0.113.9 8081
lab_finish
