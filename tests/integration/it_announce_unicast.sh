#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_announce_unicast.sh: a client like libpcp, with one dual-stack socket bound to [::]:5350
# (pcp_update_client.py --dual-stack), learns of an epoch reset.
#   Linux does not hand 224.0.0.1 to a socket bound to [::], so the multicast ANNOUNCE never
#   reaches it; pcpd also sends each copy unicast to every client whose request it answered
#   (RFC 6887 §14.1.3, R-ANN-4: the address and port the client sends its requests from), from
#   the address the client sent to (R-SEC-5). The epoch reset here is a WAN renumbering, which
#   also sends the Mapping Update to the same socket.
set -u
LAB_WATCHDOG=${LAB_WATCHDOG:-120}
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_announce_unicast
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
lab_pcpd_start "$conf"
events=$LAB_DIR/client.jsonl
lab_spawn "$LAB_CLI" "$events" python3 "$LAB_SRC/tests/integration/pcp_update_client.py" \
  --server 192.0.2.1 --client 192.0.2.10 --ports 9100 --refresh-on-update "" --life 90 --dual-stack
waitfor() { lab_waitfor "$@"; }
count() { # count EVENT [KEY=VALUE...]
  python3 - "$events" "$@" <<'PY'
import json, sys
f, ev = sys.argv[1], sys.argv[2]
want = dict(kv.split("=", 1) for kv in sys.argv[3:])
n = 0
for line in open(f):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o["event"] == ev and all(str(o.get(k)) == v for k, v in want.items()):
        n += 1
print(n)
PY
}
at_least() { [ "$(count "${@:2}")" -ge "$1" ]; }

check "the dual-stack client's MAP from [::]:5350 is answered SUCCESS" waitfor 10 at_least 1 response port=9100 result=0
printf 'addr del 203.0.113.1/24 dev wan0\naddr add 203.0.113.5/24 dev wan0\n' | lab_rtr ip -batch -
check "pcpd resets the epoch (WAN renumbered)" \
  waitfor 5 bash -c "grep -q 'epoch.reset reason=external_address_changed' '$LAB_PCPD_LOG'"
check "R-ANN-4: an ANNOUNCE reaches the client unicast (to 192.0.2.10, from 192.0.2.1)" \
  waitfor 5 at_least 1 announce dst=192.0.2.10 src=192.0.2.1
check "R-ANN-7: the Mapping Update for 9100 reaches the same socket" waitfor 5 at_least 1 update port=9100 ext=203.0.113.5
sleep 2
echo "    ANNOUNCEs received: unicast $(count announce dst=192.0.2.10), multicast $(count announce dst=224.0.0.1)"
check "the unicast copies repeat on the schedule (>= 3 within 2 s: at 0, 0.25, 0.75, 1.75 s)" \
  at_least 3 announce dst=192.0.2.10
check "pcpd logged them (announce.unicast_sent clients=1)" grep -q 'announce.unicast_sent copy=[0-9]* clients=1' "$LAB_PCPD_LOG"
lab_finish
