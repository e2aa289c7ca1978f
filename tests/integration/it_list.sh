#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_list.sh: `pcpctl list` of a large table. The answer used to be one JSON document
# built in pcpd's memory and written in one go: at 1,000,000 mappings pcpd grew from 190 MB to
# 2.5 GB and answered no request for more than 10 s, and pcpctl gave up. Now pcpd streams one
# mapping per line, in pieces, between requests (src/ctl/ctl_socket.hpp). 60,000 mappings from
# one client (pcpd-loadgen fill), then (the old daemon fails 2 and 4: +155 MB, no end line):
#   1. `pcpctl list --json` is a JSON array with every mapping exactly once, and the text form has
#      one line per mapping;
#   2. pcpd's peak memory (VmHWM) grows by less than 16 MiB over those lists (one document of
#      60,000 mappings is ~150 MB);
#   3. a list whose reader stops for 3 s (a pager) does not hold pcpd: pcpctl stops reading the
#      socket, pcpd's writes wait for it, a MAP request is answered meanwhile, and the list then
#      completes;
#   4. pcpctl exits 1 when the list is cut short (pcpd stopped mid-list) and its --json output is
#      then not a complete array.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_list
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf" mappings.max_per_client=65535 limits.client_rate=0 limits.global_rate=0 \
  'daemon.log_level="info"'
LOADGEN=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-loadgen
[ -x "$LOADGEN" ] || lab_die "pcpd-loadgen not found at $LOADGEN (built with the project)"
lab_pcpd_start "$conf"
pid=$(lab_rtr ss -H -lunp 'sport = :5351' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm")" = pcpd ] || lab_die "pcpd's PID not found"

lab_log "fill: 60,000 MAP mappings from 192.0.2.10 (internal ports 2000-61999)"
lab_cli "$LOADGEN" fill --server 192.0.2.1 --client 192.0.2.10 --count 60000 --base-port 2000 --window 64 \
  --lifetime 3600 --protocol tcp --seed 7 --timeout-ms 10000 >"$LAB_DIR/fill.json" || lab_die "fill"
n=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["success"])' "$LAB_DIR/fill.json")
echo "    created: $n (5350 and 5351 are never mapped, R-MAP-15)"
check "60,000 requests made 59,998 mappings" lab_eq mappings "$n" 59998

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
hwm0=$(hwm)
lab_log "1. pcpctl list --json and pcpctl list"
pcpctl list --json >"$LAB_DIR/list.json"
check "pcpctl list --json exits 0" lab_eq status $? 0
check "the JSON array holds every mapping once, with all its fields (protocol by name, as pcpc)" python3 - "$LAB_DIR/list.json" "$n" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
ports = [int(r["internal"].rsplit(":", 1)[1]) for r in rows]
keys = {"kind", "origin", "protocol", "protocol_number", "internal", "external", "client", "nonce", "lifetime", "remaining",
        "checkpoint", "third_party", "filters", "description"}
# protocol is the name pcpc prints ("tcp"), protocol_number the IANA number.
bad = [r for r in rows if not keys <= set(r) or r["protocol"] != "tcp" or r["protocol_number"] != 6]
print(f"    {len(rows)} entries, {len(set(ports))} distinct internal ports, {len(bad)} without every field"
      " or with protocol other than \"tcp\"/6")
sys.exit(0 if len(rows) == want and len(set(ports)) == want and not bad else 1)
PY
pcpctl list >"$LAB_DIR/list.txt"
check "the text form has one line per mapping" lab_eq lines "$(wc -l <"$LAB_DIR/list.txt")" "$n"
hwm1=$(hwm)
echo "    pcpd VmHWM before the lists: $hwm0 kB, after: $hwm1 kB"
check "pcpd's peak memory grew by less than 16 MiB over the lists" test $((hwm1 - hwm0)) -lt 16384

lab_log "3. a list read by a reader that stops for 3 s, and a MAP request meanwhile"
# The reader takes the first 64 KiB, then stops (pcpctl blocks on the pipe, stops reading the
# socket, and pcpd's writes would block) until the MAP below was answered (at most 20 s), then
# reads the rest. A fixed pause raced the MAP on a loaded machine.
( pcpctl list --json | { head -c 65536 >/dev/null
  for _ in $(seq 1 200); do [ -e "$LAB_DIR/answered" ] && break; sleep 0.1; done
  touch "$LAB_DIR/resumed"; cat >"$LAB_DIR/rest.json"; } ) &
reader=$!
sleep 1
lab_pc "$LAB_DIR/map.json" -s 192.0.2.1 map -p udp -i 9000 -l 600
stalled=$([ -e "$LAB_DIR/resumed" ] && echo no || echo yes)
touch "$LAB_DIR/answered"
check "R-MAP-6 the MAP request is answered SUCCESS while the list waits" lab_eq result "$(lab_json "$LAB_DIR/map.json" result)" SUCCESS
check "... before the list's reader resumed" lab_eq "list still stalled" "$stalled" yes
wait "$reader"
check "the waiting list then completes (it ends with the array's closing bracket)" \
  bash -c "tail -c 3 '$LAB_DIR/rest.json' | grep -q ']'"

lab_log "4. a list cut short: pcpd stopped (kill -9) while a slow reader holds the list"
( pcpctl list --json | { head -c 65536 >/dev/null; sleep 2; cat >"$LAB_DIR/cut.json"; }; echo "${PIPESTATUS[0]}" >"$LAB_DIR/cut.status" ) &
reader=$!
sleep 1
lab_pcpd_stop -9
wait "$reader"
check "pcpctl exits 1 when the list ends before its end line" lab_eq status "$(cat "$LAB_DIR/cut.status")" 1
check_not "... and its --json output is not a complete array" \
  bash -c "tail -c 3 '$LAB_DIR/cut.json' | grep -q ']'"
lab_finish
