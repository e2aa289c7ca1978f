#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_client_models.sh: the clients we cannot install, replayed from their source
# (client_models.py: Apple mDNSResponder, Tailscale's portmapper, Bitcoin Core), through what a
# router lives through.
#   1. Each gets its mapping (Apple PCP TCP 7000 from port 5353, Tailscale NAT-PMP UDP 41641
#      after its probe, Bitcoin PCP TCP 8333).
#   2. pcpd restarted (SIGTERM, start): the epoch continues, so Apple's RFC 6887 §8.5 check sees
#      no reboot and sends nothing; Tailscale's probe keeps its mapping; Bitcoin renews.
#   3. pcpd rebooted (state and table gone): the epoch restarts, never at 0 (Apple stores 0 as 1
#      and would then see every later answer as another reboot: the storm of issue reports).
#      Apple re-creates once, with a new nonce, from the ANNOUNCE; Tailscale's probe sees the
#      epoch go back and maps again; Bitcoin's renewal makes its mapping anew.
#   4. With mappings.nonce_change = refuse (the default): Apple after wake, a restarted bitcoind
#      and Tailscale's PCP renewals (a new nonce each) get NOT_AUTHORIZED, and each refusal is
#      logged; a Tailscale probe that loses its NAT-PMP answer switches to PCP, which takes the
#      NAT-PMP mapping over (same external port).
#   5. After a reload with nonce_change = same_host: the same requests keep their ports, and
#      Tailscale's release (a fresh nonce) deletes its mapping.
#   6. The WAN address moves to 203.0.113.5: Apple gets the Mapping Update on 5353, sees the
#      epoch reset, re-creates with a new nonce and is mapped on .5 with its port; Bitcoin's
#      renewal reports .5:8333; Tailscale's probe learns .5 and keeps its port. The remote
#      host reaches Apple's and Bitcoin's ports on .5.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-300}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_client_models
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
lab_listen "$LAB_CLI" 7000 "$LAB_DIR/l7000.log"
lab_listen "$LAB_CLI" 8333 "$LAB_DIR/l8333.log"
fifo=$LAB_DIR/commands
mkfifo "$fifo"
ev=$LAB_DIR/models.jsonl
lab_spawn "$LAB_CLI" "$ev" python3 "$LAB_SRC/tests/integration/client_models.py" \
  --server 192.0.2.1 --client 192.0.2.10 --commands "$fifo" --life 220

# n MODEL EVENT [FIELD=VALUE]: how many such events the models printed
n() {
  python3 - "$ev" "$@" <<'PY'
import json, sys
f, model, event = sys.argv[1:4]
want = dict(kv.split("=", 1) for kv in sys.argv[4:])
c = 0
for line in open(f):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("model") == model and o.get("event") == event and all(str(o.get(k)) == v for k, v in want.items()):
        c += 1
print(c)
PY
}
# last MODEL EVENT FIELD: a field of the last such event
last() {
  python3 - "$ev" "$@" <<'PY'
import json, sys
f, model, event, field = sys.argv[1:5]
v = ""
for line in open(f):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("model") == model and o.get("event") == event:
        v = o.get(field, "")
print(v)
PY
}
waitfor() { lab_waitfor "$@"; }
more_than() { [ "$(n "$2" "$3" "${@:4}")" -gt "$1" ]; }
# cmd MODEL VERB: run a model command and wait (15 s at most) until it is done
cmd() {
  local before
  before=$(n "$1" done "cmd=$2")
  echo "$1 $2" >"$fifo"
  waitfor 15 more_than "$before" "$1" done "cmd=$2" || echo "    (model $1 did not finish $2)"
}
ready() { [ "$(n all ready)" -ge 1 ]; }
waitfor 10 ready || lab_die "the client models did not start"
show() { grep -E "\"model\": \"$1\"" "$ev" | grep -v '"done"' | tail -n "${2:-3}" | lab_ev; }
said() { grep -c "$1" "$LAB_PCPD_LOG"; }

lab_log "1. each client gets its mapping"
cmd apple create
check "Apple: mapped on 203.0.113.1:7000" waitfor 5 more_than 0 apple mapped ext=203.0.113.1 port=7000
cmd tailscale probe
check "Tailscale: its probe sees NAT-PMP and PCP" test "$(last tailscale probed pmp)$(last tailscale probed pcp)" = TrueTrue
cmd tailscale create
check "Tailscale: mapped by NAT-PMP on 203.0.113.1:41641" test "$(n tailscale mapped proto=pmp ext=203.0.113.1 port=41641)" -ge 1
cmd bitcoin create
check "Bitcoin: mapped on 203.0.113.1:8333" test "$(n bitcoin mapped ext=203.0.113.1 port=8333)" -ge 1
show apple 2; show tailscale 2; show bitcoin 1
check "the remote host reaches Apple's port through 203.0.113.1:7000" lab_connect "$LAB_WAN" 203.0.113.1 7000

lab_log "2. pcpd restarted (SIGTERM, start): the epoch continues"
maps=$(n apple map_sent)
reboots=$(n apple reboot_detected)
lab_pcpd_stop
lab_pcpd_start "$conf"
sleep 2  # the ANNOUNCE copies at 0, 0.25, 0.75, 1.75 s reach Apple's 5350 socket
check "Apple: the restart's ANNOUNCE passes its epoch check (no reboot detected)" \
  lab_eq reboots "$(n apple reboot_detected)" "$reboots"
check "Apple: it sends nothing" lab_eq maps "$(n apple map_sent)" "$maps"
check "Apple: it heard the ANNOUNCE" test "$(n apple announce)" -ge 1
cmd tailscale probe
check_not "Tailscale: its probe keeps the mapping (no epoch decrease)" test "$(n tailscale mapping_invalidated)" -ge 1
cmd bitcoin renew
check "Bitcoin: its renewal keeps 203.0.113.1:8333" test "$(n bitcoin mapped ext=203.0.113.1 port=8333)" -ge 2

lab_log "3. pcpd rebooted: state and table gone, the epoch starts again"
cmd tailscale renew  # its mapping now remembers the epoch of the last few seconds
lab_pcpd_stop
rm -rf "$LAB_DIR/state"
mkdir -p "$LAB_DIR/state"
lab_rtr nft delete table inet pcpd
lab_rtr nft -f "$LAB_SRC/nft-rules/pcpd.nft" || lab_die "reload pcpd.nft"
maps=$(n apple map_sent)
lab_pcpd_start "$conf"
check "pcpd says so (epoch.reset)" waitfor 5 bash -c "grep -q 'epoch.reset' '$LAB_PCPD_LOG'"
cmd tailscale probe
check "Tailscale: its probe sees the epoch go back and drops the mapping" test "$(n tailscale mapping_invalidated)" -ge 1
check "Apple: the ANNOUNCE makes it detect the reboot" waitfor 5 more_than "$reboots" apple reboot_detected
check "Apple: it re-creates within 5 s (new nonce), mapped on 203.0.113.1:7000" \
  waitfor 8 more_than 1 apple mapped ext=203.0.113.1 port=7000
sleep 3
sent=$(($(n apple map_sent) - maps))
echo "    Apple MAP requests after the reboot: $sent; reboots detected in all: $(n apple reboot_detected)"
check "Apple: no storm - one re-creation (MAP requests after the reboot: $sent)" test "$sent" -le 2
check "Apple: no epoch 0 reached it (every epoch it saw is >= 1)" python3 -c '
import json, sys
eps = [json.loads(l)["epoch"] for l in open(sys.argv[1]) if "\"apple\"" in l and "\"epoch\"" in l]
sys.exit(0 if eps and min(eps) >= 1 else 1)' "$ev"
cmd tailscale create
check "Tailscale: mapped again on 203.0.113.1:41641" test "$(n tailscale mapped proto=pmp ext=203.0.113.1 port=41641)" -ge 2
cmd bitcoin renew
check "Bitcoin: its renewal (same nonce) makes the mapping anew on 203.0.113.1:8333" \
  test "$(n bitcoin mapped ext=203.0.113.1 port=8333)" -ge 3

lab_log "4. new nonces with nonce_change = refuse (the default)"
errs=$(n apple error result=2)
cmd apple wake
check "Apple after wake (new nonce): NOT_AUTHORIZED" waitfor 8 more_than "$errs" apple error result=2
cmd bitcoin restart
check "restarted bitcoind (new nonce): NOT_AUTHORIZED" test "$(n bitcoin error result=2)" -ge 1
refused=$(said 'mapping.nonce_conflict.*outcome="refused')
check "each refusal is logged with client and mapping ($refused lines)" test "$refused" -ge 2
cmd tailscale probe_losing_pmp
check "Tailscale: with the NAT-PMP answer lost, only PCP counts" test "$(last tailscale probed pmp)" = False
cmd tailscale renew
check "Tailscale: its PCP MAP takes the NAT-PMP mapping over, same port 41641" \
  test "$(n tailscale mapped proto=pcp ext=203.0.113.1 port=41641)" -ge 1
check "... logged as natpmp_taken" bash -c "grep -q 'outcome=natpmp_taken' '$LAB_PCPD_LOG'"
cmd tailscale renew
check "Tailscale: its next PCP renewal (a new nonce) gets NOT_AUTHORIZED" test "$(n tailscale error proto=pcp result=2)" -ge 1

lab_log "5. nonce_change = same_host"
lab_ctl_config "$conf" 'mappings.nonce_change="same_host"'
check "pcpctl reload" pcpctl reload
before=$(n apple mapped port=7000)
cmd apple wake
check "Apple after wake (new nonce): mapped, same port 7000" waitfor 8 more_than "$before" apple mapped port=7000
cmd bitcoin restart
check "restarted bitcoind (new nonce): mapped, same port 8333" test "$(n bitcoin mapped port=8333)" -ge 4
cmd tailscale renew
check "Tailscale: its PCP renewal with a new nonce keeps port 41641" test "$(n tailscale mapped proto=pcp port=41641)" -ge 2
cmd tailscale release
check "Tailscale: its release (a fresh nonce) is answered SUCCESS" test "$(last tailscale released result)" = 0
listed() { pcpctl list | grep -q "$1"; }
check "pcpctl list works here (it lists Apple's mapping)" listed '192.0.2.10:7000'
check_not "... and the mapping is gone" listed '192.0.2.10:41641'
cmd tailscale probe
cmd tailscale create
check "Tailscale: NAT-PMP mapping again on 41641" test "$(n tailscale mapped proto=pmp port=41641)" -ge 3

lab_log "6. the WAN address moves to 203.0.113.5"
printf 'addr del 203.0.113.1/24 dev wan0\naddr add 203.0.113.5/24 dev wan0\n' | lab_rtr ip -batch -
check "pcpd moves the mappings (external.mappings_moved to=203.0.113.5)" \
  waitfor 5 bash -c "grep -q 'external.mappings_moved to=203.0.113.5' '$LAB_PCPD_LOG'"
check "Apple: the Mapping Update on 5353 (epoch reset) makes it re-create; mapped on 203.0.113.5:7000" \
  waitfor 8 more_than 0 apple mapped ext=203.0.113.5 port=7000
check "Apple: that answer came from pcpd's port 5351 to 5353" test "$(last apple mapped src_port)" = 5351
cmd bitcoin renew
check "Bitcoin: its renewal reports 203.0.113.5:8333" test "$(n bitcoin mapped ext=203.0.113.5 port=8333)" -ge 1
cmd tailscale probe
check "Tailscale: its probe learns 203.0.113.5" test "$(last tailscale probed pub_ip)" = 203.0.113.5
cmd tailscale create
check "Tailscale: mapped on 203.0.113.5:41641 (its port kept)" test "$(n tailscale mapped ext=203.0.113.5 port=41641)" -ge 1
show apple 4; show tailscale 3; show bitcoin 1
check "the remote host reaches Apple through 203.0.113.5:7000" lab_connect "$LAB_WAN" 203.0.113.5 7000
check "the remote host reaches Bitcoin through 203.0.113.5:8333" lab_connect "$LAB_WAN" 203.0.113.5 8333
lab_finish
